import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CATALOGUE, type ErrorCode } from './catalogue.js';
import { HtError } from './http-error.js';

interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

/** Fastify's own errors (parsing, limits) mapped onto the catalogue. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'HT_ERR_MALFORMED_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'HT_ERR_MALFORMED_JSON',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'HT_ERR_MALFORMED_JSON',
  FST_ERR_CTP_BODY_TOO_LARGE: 'HT_ERR_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'HT_ERR_UNSUPPORTED_MEDIA_TYPE',
};

/** Value at a JSON pointer such as "/examples/0/input", for naming what was sent. */
function pick(root: unknown, pointer: string): unknown {
  let cur = root;
  for (const part of pointer.split('/').slice(1)) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return cur;
}

function describe(v: unknown): string {
  if (v === undefined) return 'missing';
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 80)}…` : s;
}

function validationMessage(err: FastifyError, req: FastifyRequest): string {
  const first = err.validation?.[0];
  if (!first) return err.message;
  const ctx = err.validationContext ?? 'body';
  const source = { body: req.body, querystring: req.query, params: req.params, headers: req.headers }[ctx];
  const params = (first.params ?? {}) as Record<string, unknown>;
  const path = first.instancePath + (typeof params.missingProperty === 'string' ? `/${params.missingProperty}` : '')
    + (typeof params.additionalProperty === 'string' ? `/${params.additionalProperty}` : '');
  const name = `${ctx}${path.replace(/\//g, '.')}`;
  const value = typeof params.additionalProperty === 'string' ? 'present' : describe(pick(source, path));
  return `${name} ${first.message ?? 'is invalid'} (got ${value})`;
}

/** 413 naming the limit that applies to this route and, when the client declared it, the size sent. */
function bodyTooLarge(req: FastifyRequest): HtError {
  const limit = req.routeOptions.bodyLimit;
  const variable = req.routeOptions.url === '/v1/adapters/import' ? 'IMPORT_LIMIT_BYTES' : 'BODY_LIMIT_BYTES';
  const sent = Number(req.headers['content-length']);
  const value = Number.isFinite(sent) && sent > 0 ? `${sent} bytes` : `more than ${limit} bytes`;
  return new HtError('HT_ERR_BODY_TOO_LARGE', `body is ${value}; the limit is ${limit} bytes (${variable})`);
}

export function toHtError(err: FastifyError | HtError | Error, req: FastifyRequest): HtError {
  if (err instanceof HtError) return err;
  const fe = err as FastifyError;
  if (fe.validation) return new HtError('HT_ERR_VALIDATION', validationMessage(fe, req));
  if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || (fe.statusCode === 413 && !fe.code)) return bodyTooLarge(req);
  const mapped = fe.code ? FASTIFY_CODES[fe.code] : undefined;
  if (mapped) return new HtError(mapped, fe.message);
  // A SyntaxError from a body parser is the client's malformed body, whatever parser raised it.
  if (fe.statusCode === 400 || err instanceof SyntaxError) return new HtError('HT_ERR_MALFORMED_JSON', fe.message);
  if (fe.statusCode === 413) return new HtError('HT_ERR_BODY_TOO_LARGE', fe.message);
  if (fe.statusCode === 415) return new HtError('HT_ERR_UNSUPPORTED_MEDIA_TYPE', fe.message);
  return new HtError('HT_ERR_INTERNAL', 'internal error');
}

export function errorBody(e: HtError): ErrorBody {
  return { error: { code: e.code, message: e.message } };
}

export function sendError(reply: FastifyReply, e: HtError): FastifyReply {
  if (e.retryAfterS !== undefined) reply.header('Retry-After', String(e.retryAfterS));
  return reply.code(e.status).type('application/json').send(errorBody(e));
}

/** The one mapping from errors to HTTP: 4xx shown and logged at info, 5xx hidden and logged at error. */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const e = toHtError(err, req);
    // A retryable refusal (503 + Retry-After: loading, draining, deadline) is load shedding, not a failure.
    if (e.status >= 500 && e.retryAfterS === undefined) req.log.error({ err, code: e.code }, 'request failed');
    else if (e.status >= 500) req.log.warn({ code: e.code, msg: e.message }, 'request refused');
    else req.log.info({ code: e.code, msg: e.message }, 'request refused');
    return sendError(reply, e);
  });
  app.setNotFoundHandler((req, reply) =>
    sendError(reply, new HtError('HT_ERR_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`)),
  );
}

export { CATALOGUE };
