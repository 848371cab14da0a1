import { Type, type Static } from '@sinclair/typebox';
import { AdapterId, AdapterKind } from './common.js';

export const Example = Type.Object(
  {
    input: Type.String({
      description:
        'example input. A spreadsheet row with several cells is sent as one string with the cells joined by `" | "`',
    }),
    output: Type.String({ description: 'the output expected for this input' }),
  },
  { additionalProperties: false },
);
export type Example = Static<typeof Example>;

export const Examples = Type.Array(Example, {
  minItems: 1,
  description: 'few-shot examples, in order; the same examples (same order) always give the same adapter id',
});

export const CreateAdapterBody = Type.Object(
  {
    examples: Examples,
    kind: Type.Optional(AdapterKind),
  },
  { additionalProperties: false },
);
export type CreateAdapterBody = Static<typeof CreateAdapterBody>;

export const Adapter = Type.Object(
  {
    id: AdapterId,
    object: Type.Literal('adapter'),
    kind: AdapterKind,
    model: Type.String({ description: 'base model name (manifest `name`)' }),
    num_examples: Type.Integer({ minimum: 0, description: 'examples it was generated from (0 when imported)' }),
    created_at: Type.Integer({ description: 'Unix time, seconds' }),
    cached: Type.Boolean({ description: 'true when the adapter already existed and was not recomputed' }),
  },
  { title: 'Adapter' },
);
export type Adapter = Static<typeof Adapter>;

export const AdapterParams = Type.Object({ id: AdapterId });
export type AdapterParams = Static<typeof AdapterParams>;

export const ImportQuery = Type.Object(
  {
    kind: Type.Optional(AdapterKind),
  },
  { additionalProperties: false },
);
export type ImportQuery = Static<typeof ImportQuery>;

export const DeletedAdapter = Type.Object({
  id: AdapterId,
  object: Type.Literal('adapter'),
  deleted: Type.Literal(true),
});
