/**
 * Answers for requests Node's HTTP parser refuses before fastify sees them (a 100 KB URL, a control
 * character in a header, a request that is not HTTP, one that arrives too slowly): the catalogue's status
 * and `{"error":{"code","message"}}` body instead of Node's bare 431 or fastify's own shape, then close.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { HtError } from './domain-error.js';
import { errorBody, httpStatus } from './handler.js';

interface ParserError extends Error {
  code?: string;
  reason?: string;
}

function describe(err: ParserError, server: http.Server | undefined): HtError {
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    return new HtError('HT_ERR_HEADERS_TOO_LARGE',
      `the request line and headers are over ${http.maxHeaderSize} bytes, the limit of this server (Node's --max-http-header-size)`);
  }
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    // Either limit may have fired: the whole request's (REQUEST_TIMEOUT_MS; 0 = none) or Node's for the headers.
    const whole = server?.requestTimeout ? `within REQUEST_TIMEOUT_MS (${server.requestTimeout} ms), or its headers ` : '';
    return new HtError('HT_ERR_REQUEST_TIMEOUT',
      `the request did not arrive ${whole}within Node's headersTimeout (${server?.headersTimeout ?? 60_000} ms)`);
  }
  const reason = String(err.reason ?? 'malformed request').slice(0, 100);
  return new HtError('HT_ERR_BAD_REQUEST', `the request is not valid HTTP/1.1: ${reason} (${String(err.code ?? 'unknown').slice(0, 40)})`);
}

/** A response already under way on this connection (keep-alive): writing a status line into it would corrupt it. */
function responding(socket: Socket): boolean {
  const current = (socket as Socket & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
  return current?.headersSent === true;
}

export function clientErrorHandler(this: FastifyInstance, err: ParserError, socket: Socket): void {
  // A reset connection has no one to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  try {
    const e = describe(err, this.server);
    this.log.info({ code: e.code, msg: e.message }, 'request refused by the HTTP parser');
    if (socket.writable && !responding(socket)) {
      const body = JSON.stringify(errorBody(e));
      const status = httpStatus(e.code);
      socket.write(
        `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\n` +
        'Content-Type: application/json; charset=utf-8\r\n' +
        'X-Content-Type-Options: nosniff\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        'Connection: close\r\n\r\n' +
        body,
      );
    }
  } finally {
    // The parser's state is lost: nothing more on this connection can be read as a request.
    socket.destroy();
  }
}
