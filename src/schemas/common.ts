import { Type, type TSchema } from '@sinclair/typebox';
import { ERROR_CODES, type ErrorCode } from '../errors/catalogue.js';

/** `ad-` + 32 lowercase hex: also what keeps ids safe to use as file names (no path traversal). */
export const ADAPTER_ID_PATTERN = '^ad-[0-9a-f]{32}$';
export const ADAPTER_ID_RE = new RegExp(ADAPTER_ID_PATTERN);

export const AdapterId = Type.String({
  pattern: ADAPTER_ID_PATTERN,
  description: 'adapter id: `ad-` followed by 32 lowercase hex digits',
  examples: ['ad-0123456789abcdef0123456789abcdef'],
});

export const AdapterKind = Type.Union([Type.Literal('lora'), Type.Literal('prefix')], {
  description: 'adapter kind: `lora` (LoRA on q and v) or `prefix` (key/value prefixes: gated, or PEFT prefix tuning as the model manifest says)',
});

export const ErrorResponse = Type.Object(
  {
    error: Type.Object({
      code: Type.Unsafe<ErrorCode>(Type.String({ enum: ERROR_CODES, description: 'stable error code (see the catalogue in src/errors/catalogue.ts)' })),
      message: Type.String({ description: 'names the parameter, the limit and the value' }),
    }),
  },
  { $id: 'ErrorResponse', title: 'ErrorResponse' },
);

const ErrorRef = Type.Ref('ErrorResponse');

/** Response schemas for the error statuses a route can answer, so every status code is documented. */
export function errors(...statuses: number[]): Record<number, TSchema> {
  const out: Record<number, TSchema> = {};
  for (const s of statuses) out[s] = ErrorRef;
  return out;
}

/** Errors every JSON-body route can answer. */
export const BODY_ERRORS = [400, 413, 415, 422, 500] as const;
