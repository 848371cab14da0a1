"""A package, so that its conftest is ``tests.conftest`` and not a second top-level ``conftest`` module:
training/tests imports names from its own conftest, which pytest also loads as ``conftest``."""
