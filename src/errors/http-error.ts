import { CATALOGUE, type ErrorCode } from './catalogue.js';

/** An error a client caused or may retry; the handler shows its message (4xx) or hides it (5xx). */
export class HtError extends Error {
  override name = 'HtError';
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly retryAfterS?: number,
  ) {
    super(message);
    this.status = CATALOGUE[code].status;
  }
}

const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v) : String(v));

/** "`param` is VALUE; the limit is LIMIT (why)": the shape of every limit message. */
export function limitError(code: ErrorCode, param: string, value: unknown, limit: number, why?: string): HtError {
  return new HtError(code, `${param} is ${show(value)}; the limit is ${limit}${why ? ` (${why})` : ''}`);
}

export function adapterNotFound(id: string, param = 'id'): HtError {
  return new HtError('HT_ERR_ADAPTER_NOT_FOUND', `${param}: no adapter ${JSON.stringify(id)}`);
}
