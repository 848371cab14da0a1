/**
 * The error responses each route documents in the OpenAPI document: which statuses it can answer, what each
 * means, and which catalogue codes answer with it. Plugins and schemas name groups of refusals from here,
 * never a status, so the HTTP side of errors lives in this folder.
 */
import { Type, type TSchema } from '@sinclair/typebox';
import { CATALOGUE, ERROR_CODES, type ErrorCode } from './catalogue.js';

export const ErrorResponse = Type.Object(
  {
    error: Type.Object({
      code: Type.Unsafe<ErrorCode>(Type.String({ enum: ERROR_CODES, description: 'stable error code (see the catalogue in src/errors/catalogue.ts)' })),
      message: Type.String({ description: 'names the parameter, the limit and the value' }),
    }),
  },
  { $id: 'ErrorResponse', title: 'ErrorResponse' },
);

/** What each error status means on this API; the codes that answer with it are read from the catalogue. */
const STATUS_MEANING: Record<number, string> = {
  400: 'malformed request: the body is not valid JSON, or the path has an invalid percent-encoding',
  401: 'missing or unknown API key (only when API_KEYS or API_KEYS_FILE is set); with WWW-Authenticate',
  404: 'no such adapter or model',
  413: 'the body is over its size limit (BODY_LIMIT_BYTES; IMPORT_LIMIT_BYTES for the import)',
  415: 'the Content-Type is not one this route accepts',
  422: 'a parameter has the wrong type, format or range, exceeds a limit, or is an OpenAI parameter this server does not implement; the message names it',
  429: 'too much work queued, or too many requests or wrong keys in a minute; retry after Retry-After seconds',
  500: 'internal error (details in the server log only)',
  503: 'not ready, shutting down, past REQUEST_DEADLINE_MS, or an inference worker is being replaced; retry after Retry-After seconds',
  507: 'the adapter store has no space left; retry after Retry-After seconds',
};

/** Never sent to a client (logged only): left out of the documented codes. */
const UNSENT: readonly ErrorCode[] = ['HT_ERR_CLIENT_CLOSED'];

function describeStatus(status: number): string {
  const codes = ERROR_CODES.filter((c) => CATALOGUE[c].status === status && !UNSENT.includes(c));
  const meaning = STATUS_MEANING[status];
  if (meaning === undefined || codes.length === 0) throw new Error(`no documented error for HTTP ${status}`);
  return `${meaning[0]!.toUpperCase()}${meaning.slice(1)} (${codes.join(', ')})`;
}

const RETRY_AFTER = { type: 'integer', minimum: 0, description: 'seconds to wait before retrying' };

/** Response schemas for the error statuses a route can answer, so every status code is documented. */
export function errors(...statuses: number[]): Record<number, TSchema> {
  const out: Record<number, TSchema> = {};
  for (const s of statuses) {
    const schema: TSchema = Type.Ref(ErrorResponse.$id!, { description: describeStatus(s) });
    // Retry-After is sent wherever the refusal is temporary; @fastify/swagger reads `headers` into the response.
    if (s === 429 || s === 503 || s === 507) schema.headers = { 'retry-after': RETRY_AFTER };
    out[s] = schema;
  }
  return out;
}

/** Errors every JSON-body route can answer. */
export const BODY_ERRORS = [400, 413, 415, 422, 500] as const;
/** What a route with an id in its path adds: a bad percent-encoding (400) and a malformed or over-long id (422). */
const PATH_ERRORS = [400, 422] as const;

/** What the authentication plugin adds to every guarded route: a missing or wrong key, too many wrong keys or requests. */
export const authRefusals = (): Record<number, TSchema> => errors(401, 429);

/** Methods whose body fastify parses (so a bad one is refused before the handler), whatever the route does with it. */
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** The refusals fastify itself answers before a route's handler runs, for the routes they can reach. */
export function frameworkRefusals(url: string, methods: readonly string[]): Record<number, TSchema> {
  const out: number[] = [];
  // The router: an invalid percent-encoding (400), a parameter over maxParamLength (422).
  if (url.includes(':')) out.push(...PATH_ERRORS);
  if (methods.some((m) => BODY_METHODS.has(m))) out.push(...BODY_ERRORS);
  return errors(...out);
}

/** The refusals no operation lists, for the OpenAPI document's description. */
export const UNLISTED_REFUSALS =
  'Beyond what each operation lists: a path that exists with another method answers 405 with `Allow` ' +
  '(HT_ERR_METHOD_NOT_ALLOWED), an unknown path 404 (HT_ERR_NOT_FOUND, or 401 first where API keys are set), and a ' +
  "request Node's HTTP parser refuses (a control character in a header, a malformed request line) 400, 408 or 431 " +
  'in the same error shape, after which the connection is closed.';
