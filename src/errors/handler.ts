import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CATALOGUE, type ErrorCode } from './catalogue.js';
import { HtError } from './domain-error.js';
import { unsupportedMediaType } from './media-type.js';
import { validationMessage } from './validation-message.js';

interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

/** Longest message sent: enough to name a parameter, a limit and a value, whatever the client sent. */
const MAX_MESSAGE_CHARS = 1000;
/** Characters of a request path named in a message. */
const PATH_CHARS = 200;
/** The router's limit on one path parameter (fastify's default maxParamLength). */
const MAX_PARAM_LENGTH = 100;

/** Fastify's own errors (parsing, limits) mapped onto the catalogue. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'HT_ERR_MALFORMED_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'HT_ERR_MALFORMED_JSON',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'HT_ERR_MALFORMED_JSON',
  FST_ERR_CTP_BODY_TOO_LARGE: 'HT_ERR_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'HT_ERR_UNSUPPORTED_MEDIA_TYPE',
};

/** The catalogue code for a status when the error itself could not be described. */
const BY_STATUS: Partial<Record<number, ErrorCode>> = {
  400: 'HT_ERR_MALFORMED_JSON',
  404: 'HT_ERR_NOT_FOUND',
  405: 'HT_ERR_METHOD_NOT_ALLOWED',
  413: 'HT_ERR_BODY_TOO_LARGE',
  415: 'HT_ERR_UNSUPPORTED_MEDIA_TYPE',
  422: 'HT_ERR_VALIDATION',
};

const shortPath = (url: string): string => {
  const p = url.split('?')[0]!;
  return p.length > PATH_CHARS ? `${p.slice(0, PATH_CHARS)}…` : p;
};

/** 413 naming the limit that applies to this route and, when the client declared it, the size sent. */
function bodyTooLarge(req: FastifyRequest): HtError {
  const limit = req.routeOptions.bodyLimit;
  const variable = req.routeOptions.url === '/v1/adapters/import' ? 'IMPORT_LIMIT_BYTES' : 'BODY_LIMIT_BYTES';
  const sent = Number(req.headers['content-length']);
  const value = Number.isFinite(sent) && sent > 0 ? `${sent} bytes` : `more than ${limit} bytes`;
  return new HtError('HT_ERR_BODY_TOO_LARGE', `body is ${value}; the limit is ${limit} bytes (${variable})`);
}

function describeError(err: FastifyError | HtError | Error, req: FastifyRequest): HtError {
  if (err instanceof HtError) return err;
  const fe = err as FastifyError;
  // The router's refusals, before any route runs (see frameworkErrors below).
  if (fe.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    return new HtError('HT_ERR_VALIDATION', `a path parameter of ${shortPath(req.url)} is over ${MAX_PARAM_LENGTH} characters; no id is that long`);
  }
  if (fe.code === 'FST_ERR_BAD_URL') return new HtError('HT_ERR_BAD_REQUEST', `the path ${shortPath(req.url)} has an invalid percent-encoding`);
  if (fe.validation) return new HtError('HT_ERR_VALIDATION', validationMessage(fe, req));
  if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || (fe.statusCode === 413 && !fe.code)) return bodyTooLarge(req);
  if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || fe.statusCode === 415) return unsupportedMediaType(req);
  const mapped = fe.code ? FASTIFY_CODES[fe.code] : undefined;
  if (mapped) return new HtError(mapped, fe.message);
  // A SyntaxError from a body parser is the client's malformed body, whatever parser raised it.
  if (fe.statusCode === 400 || err instanceof SyntaxError) return new HtError('HT_ERR_MALFORMED_JSON', fe.message);
  if (fe.statusCode === 413) return new HtError('HT_ERR_BODY_TOO_LARGE', fe.message);
  return new HtError('HT_ERR_INTERNAL', 'internal error');
}

/** Whatever describing the error hit (a stack overflow, a hostile getter), the client still gets a catalogue answer. */
function fallbackError(err: unknown): HtError {
  let status: unknown;
  try {
    status = (err as { statusCode?: unknown } | null)?.statusCode;
  } catch {
    status = undefined;
  }
  const code = typeof status === 'number' ? BY_STATUS[status] : undefined;
  if (!code) return new HtError('HT_ERR_INTERNAL', 'internal error');
  return new HtError(code, `the request was refused (${CATALOGUE[code].meaning}); its details could not be described`);
}

/** The catalogue error for anything thrown while handling a request; never throws itself. */
export function toHtError(err: FastifyError | HtError | Error, req: FastifyRequest): HtError {
  try {
    return describeError(err, req);
  } catch {
    return fallbackError(err);
  }
}

export function errorBody(e: HtError): ErrorBody {
  const message = e.message.length > MAX_MESSAGE_CHARS ? `${e.message.slice(0, MAX_MESSAGE_CHARS - 1)}…` : e.message;
  return { error: { code: e.code, message } };
}

/** The HTTP status of a catalogue code: the one place a code becomes a status. */
export function httpStatus(code: ErrorCode): number {
  return CATALOGUE[code].status;
}

function sendError(reply: FastifyReply, e: HtError): FastifyReply {
  if (e.retryAfterS !== undefined) reply.header('Retry-After', String(e.retryAfterS));
  return reply.code(httpStatus(e.code)).type('application/json').send(errorBody(e));
}

function logRefusal(req: FastifyRequest, err: unknown, e: HtError): void {
  try {
    const status = httpStatus(e.code);
    // A retryable refusal (503 + Retry-After: loading, draining, deadline) is load shedding, not a failure.
    if (status >= 500 && e.retryAfterS === undefined) req.log.error({ err, code: e.code }, 'request failed');
    else if (status >= 500) req.log.warn({ code: e.code, msg: e.message }, 'request refused');
    else req.log.info({ code: e.code, msg: e.message }, 'request refused');
  } catch {
    // The error itself could not be logged (serializing it threw): log that it happened, without it.
    req.log.error({ code: e.code }, 'request failed (the error could not be logged)');
  }
}

/** For fastify's `frameworkErrors` option: the router's own refusals (a bad percent-encoding, an over-long parameter). */
export function frameworkErrorHandler(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  const e = toHtError(err, req);
  logRefusal(req, err, e);
  // No route matched, so the app's onSend hook that adds it does not run.
  reply.header('x-request-id', req.id);
  void sendError(reply, e);
}

/** The one mapping from errors to HTTP: 4xx shown and logged at info, 5xx hidden and logged at error. */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const e = toHtError(err, req);
    logRefusal(req, err, e);
    return sendError(reply, e);
  });
  app.setNotFoundHandler((req, reply) =>
    sendError(reply, new HtError('HT_ERR_NOT_FOUND', `no route ${req.method} ${shortPath(req.url)}`)),
  );
}
