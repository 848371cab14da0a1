/**
 * Adapter bodies. Each named schema (`…Schema`, with an `$id`) is registered once and shown as an OpenAPI
 * component; the export without the suffix is the reference routes use, typed as the schema.
 */
import { Type, type Static } from '@sinclair/typebox';
import { AdapterId, AdapterKind, ref } from './common.js';

export const ExampleSchema = Type.Object(
  {
    input: Type.String({
      description:
        'example input. A spreadsheet row with several cells is sent as one string with the cells joined by `" | "`',
    }),
    output: Type.String({ description: 'the output expected for this input' }),
  },
  { $id: 'Example', title: 'Example', additionalProperties: false, description: 'one few-shot example: an input and the output expected for it' },
);
export type Example = Static<typeof ExampleSchema>;
export const Example = ref(ExampleSchema);

export const Examples = Type.Array(Example, {
  minItems: 1,
  description: 'few-shot examples, in order; the same examples (same order) always give the same adapter id',
});

export const CreateAdapterBodySchema = Type.Object(
  {
    examples: Examples,
    kind: Type.Optional(AdapterKind),
  },
  { $id: 'CreateAdapterBody', title: 'CreateAdapterBody', additionalProperties: false },
);
export type CreateAdapterBody = Static<typeof CreateAdapterBodySchema>;
export const CreateAdapterBody = ref(CreateAdapterBodySchema);

export const AdapterSchema = Type.Object(
  {
    id: AdapterId,
    object: Type.Literal('adapter'),
    kind: AdapterKind,
    model: Type.String({ description: 'base model name (manifest `name`)' }),
    num_examples: Type.Integer({ minimum: 0, description: 'examples it was generated from (0 when imported)' }),
    created_at: Type.Integer({ description: 'Unix time, seconds' }),
    cached: Type.Boolean({ description: 'true when the adapter already existed and was not recomputed' }),
  },
  { $id: 'Adapter', title: 'Adapter' },
);
export type Adapter = Static<typeof AdapterSchema>;
export const Adapter = ref(AdapterSchema);

export const AdapterParams = Type.Object({ id: AdapterId });
export type AdapterParams = Static<typeof AdapterParams>;

export const ImportQuery = Type.Object(
  {
    kind: Type.Optional(AdapterKind),
  },
  { additionalProperties: false },
);
export type ImportQuery = Static<typeof ImportQuery>;

export const DeletedAdapterSchema = Type.Object(
  {
    id: AdapterId,
    object: Type.Literal('adapter'),
    deleted: Type.Literal(true),
  },
  { $id: 'DeletedAdapter', title: 'DeletedAdapter' },
);
export const DeletedAdapter = ref(DeletedAdapterSchema);
