"""Research beside the product: measurements that informed the shipped model but are not part of its recipe."""
