/** Which media types a route accepts (its schema's `consumes`, else JSON), and the 415 naming them. */
import type { FastifyRequest } from 'fastify';
import { HtError } from './domain-error.js';

export function acceptedMediaTypes(req: FastifyRequest): string[] {
  const consumes = (req.routeOptions.schema as { consumes?: unknown } | undefined)?.consumes;
  return Array.isArray(consumes) && consumes.length > 0 ? consumes.map(String) : ['application/json'];
}

export function unsupportedMediaType(req: FastifyRequest): HtError {
  const sent = String(req.headers['content-type'] ?? '').slice(0, 100);
  const route = `${req.method} ${req.routeOptions.url ?? req.url.split('?')[0]!.slice(0, 100)}`;
  return new HtError('HT_ERR_UNSUPPORTED_MEDIA_TYPE',
    `Content-Type ${JSON.stringify(sent)} is not accepted on ${route}; send ${acceptedMediaTypes(req).join(' or ')}`);
}
