import { Type, type Static, type TSchema, type TUnsafe } from '@sinclair/typebox';
import { CATALOGUE, ERROR_CODES, type ErrorCode } from '../errors/catalogue.js';
import { adapterKindSchema } from '../inference/manifest.js';

/** `ad-` + 32 lowercase hex: also what keeps ids safe to use as file names (no path traversal). */
const ADAPTER_ID_PATTERN = '^ad-[0-9a-f]{32}$';
export const ADAPTER_ID_RE = new RegExp(ADAPTER_ID_PATTERN);

export const AdapterId = Type.String({
  pattern: ADAPTER_ID_PATTERN,
  description: 'adapter id: `ad-` followed by 32 lowercase hex digits',
  examples: ['ad-0123456789abcdef0123456789abcdef'],
});

export const AdapterKind = adapterKindSchema({
  description: 'adapter kind: `lora` (LoRA on q and v) or `prefix` (key/value prefixes: gated, or PEFT prefix tuning as the model manifest says)',
});

/**
 * A reference to a named schema, typed as that schema. Named schemas are registered once (named.ts, through
 * the swagger plugin), so the OpenAPI document shows them as components and routes only point at them.
 */
export function ref<T extends TSchema>(schema: T, options: { description?: string } = {}): TUnsafe<Static<T>> {
  if (typeof schema.$id !== 'string') throw new Error('ref() needs a schema with an $id');
  return Type.Unsafe<Static<T>>(Type.Ref(schema.$id, options));
}

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
    const schema: TSchema = ref(ErrorResponse, { description: describeStatus(s) });
    // Retry-After is sent wherever the refusal is temporary; @fastify/swagger reads `headers` into the response.
    if (s === 429 || s === 503 || s === 507) schema.headers = { 'retry-after': RETRY_AFTER };
    out[s] = schema;
  }
  return out;
}

/** Errors every JSON-body route can answer. */
export const BODY_ERRORS = [400, 413, 415, 422, 500] as const;
/** What a route with an id in its path adds: a bad percent-encoding (400) and a malformed or over-long id (422). */
export const PATH_ERRORS = [400, 422] as const;
