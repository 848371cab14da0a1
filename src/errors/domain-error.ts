import { CATALOGUE, type ErrorCode } from './catalogue.js';

/**
 * An error with a catalogue code, raised anywhere in the service. It carries no HTTP status: handler.ts
 * alone maps codes to statuses, so the engine, the store and the validator stay free of HTTP.
 */
export class HtError extends Error {
  override name = 'HtError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Seconds after which the same request may succeed (load shedding, a full store, shutdown). */
    readonly retryAfterS?: number,
  ) {
    super(message);
  }
}

/**
 * Whether the caller caused this refusal (its input, its load or its timing) rather than the service failing:
 * a worker reports such an error's code and message as they are; any other failure it hides behind a generic code.
 */
export function isClientFault(code: ErrorCode): boolean {
  return CATALOGUE[code].status < 500;
}

const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v) : String(v));

/** "`param` is VALUE; the limit is LIMIT (why)": the shape of every limit message. */
export function limitError(code: ErrorCode, param: string, value: unknown, limit: number, why?: string): HtError {
  return new HtError(code, `${param} is ${show(value)}; the limit is ${limit}${why ? ` (${why})` : ''}`);
}

export function adapterNotFound(id: string, param = 'id'): HtError {
  return new HtError('HT_ERR_ADAPTER_NOT_FOUND', `${param}: no adapter ${JSON.stringify(id)}`);
}
