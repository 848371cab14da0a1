/**
 * The one rule for what needs an API key: a request is open only when the router matched it to a route on this
 * list. The decision reads the matched route's registered path (`req.routeOptions.url`), never the raw URL: the
 * router percent-decodes and accepts absolute-form targets (`GET http://host/v1/models`), so any test on
 * `req.url` can be spelled around. Anything else, every route added later and every request that matches no
 * route included, is guarded (deny by default). Authentication, the rate limit and adapter scope all ask here.
 */
import type { FastifyRequest } from 'fastify';

/** Registered paths that answer without a key: probes, metrics, the API document, and `/` for a browser page. */
const OPEN_PATHS: readonly string[] = ['/', '/healthz', '/readyz', '/metrics', '/openapi.yaml'];
/** @fastify/swagger-ui registers its page, assets and JSON/YAML copies of the document under this prefix. */
const OPEN_PREFIX = '/docs';
/** The playground page's scripts and stylesheet (a browser sends no key for them), for GET alone. */
const OPEN_GET_PREFIX = '/playground/';

/** True when a route registered at `url` for `method` is open. Only ever given registered paths, never input. */
export function isOpenPath(url: string, method: string | string[]): boolean {
  if (OPEN_PATHS.includes(url) || url === OPEN_PREFIX || url.startsWith(`${OPEN_PREFIX}/`)) return true;
  const methods = ([] as string[]).concat(method);
  const only = (allowed: string) => methods.length > 0 && methods.every((m) => m === allowed);
  if (url.startsWith(OPEN_GET_PREFIX)) return only('GET');
  // @fastify/cors answers preflights on `OPTIONS *` (only when CORS_ORIGINS is set): a browser sends no key there.
  return url === '*' && only('OPTIONS');
}

/** True when the request was routed to an open route; false for guarded routes and for unmatched requests. */
export function isOpenRoute(req: FastifyRequest): boolean {
  const { url, method } = req.routeOptions;
  return url !== undefined && isOpenPath(url, method);
}
