/**
 * The OpenAI model list and model object. Named schemas (`…Schema`, with an `$id`) are OpenAPI components;
 * the export without the suffix is the reference routes use, typed as the schema.
 */
import { Type, type Static } from '@sinclair/typebox';
import { PrefixAttention } from '../inference/manifest.js';
import { ref } from './common.js';

export const ModelSummarySchema = Type.Object(
  {
    fingerprint: Type.String(),
    dims: Type.Record(Type.String(), Type.Union([Type.Number(), Type.String(), Type.Boolean()])),
    tokenizer: Type.String({ description: 'tokenizer type' }),
    adapter_kinds: Type.Array(Type.String()),
    default_adapter_kind: Type.String(),
    prefix_attention: Type.Optional(Type.Union(PrefixAttention.anyOf, {
      description: 'how prefix adapters attend (models/README.md): `gated`, or `peft` (HF PEFT prefix tuning, so they convert to and from PEFT); absent without a prefix kind',
    })),
    max_input_tokens: Type.Integer(),
    max_examples: Type.Integer(),
    max_new_tokens: Type.Integer(),
  },
  { $id: 'ModelSummary', title: 'ModelSummary', description: 'the base model\'s manifest, in brief (extension)' },
);

export const ModelSchema = Type.Object(
  {
    id: Type.String({ description: 'base model name, or an adapter id' }),
    object: Type.Literal('model'),
    created: Type.Integer({ description: 'Unix time, seconds: when the adapter was stored, or when the service started' }),
    owned_by: Type.String(),
    kind: Type.Optional(Type.String({ description: 'adapter kind (adapters only)' })),
    summary: Type.Optional(ref(ModelSummarySchema)),
  },
  { $id: 'Model', title: 'Model', description: 'an OpenAI model object: the base model (with `summary`) or an adapter (with `kind`)' },
);
export type Model = Static<typeof ModelSchema>;
export const Model = ref(ModelSchema);

export const ModelListSchema = Type.Object(
  {
    object: Type.Literal('list'),
    data: Type.Array(Model, { description: 'the base model first, then stored adapters' }),
  },
  { $id: 'ModelList', title: 'ModelList' },
);
export type ModelList = Static<typeof ModelListSchema>;
export const ModelList = ref(ModelListSchema);

export const ModelParams = Type.Object({
  id: Type.String({ minLength: 1, description: 'the base model name, or an adapter id (`ad-…`)' }),
});
