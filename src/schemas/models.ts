import { Type, type Static } from '@sinclair/typebox';
import { PrefixAttention } from '../inference/manifest.js';

export const ModelSummary = Type.Object({
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
});

export const Model = Type.Object({
  id: Type.String({ description: 'base model name, or an adapter id' }),
  object: Type.Literal('model'),
  created: Type.Integer(),
  owned_by: Type.String(),
  kind: Type.Optional(Type.String({ description: 'adapter kind (adapters only)' })),
  summary: Type.Optional(ModelSummary),
});
export type Model = Static<typeof Model>;

export const ModelList = Type.Object({
  object: Type.Literal('list'),
  data: Type.Array(Model, { description: 'the base model first, then stored adapters' }),
});
export type ModelList = Static<typeof ModelList>;
