import { Type, type Static, type TSchema, type TUnsafe } from '@sinclair/typebox';
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
