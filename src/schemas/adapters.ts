/**
 * Adapter bodies. Each named schema (`…Schema`, with an `$id`) is registered once and shown as an OpenAPI
 * component; the export without the suffix is the reference routes use, typed as the schema.
 */
import { Type, type Static } from '@sinclair/typebox';
import { REFINE_AUGMENTS } from '../inference/manifest.js';
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

const Examples = Type.Array(Example, {
  minItems: 1,
  description: 'few-shot examples, in order; the same examples (same order) always give the same adapter id',
});

/** Refinement settings: shared by adapter creation, the refine route and inline completion examples. */
export const Refine = Type.Object(
  {
    steps: Type.Integer({ minimum: 1, description: 'Adam steps on the examples, 1 to MAX_REFINE_STEPS (default 200)' }),
    learning_rate: Type.Optional(Type.Number({ minimum: 1e-8, maximum: 1, description: 'Adam learning rate, 1e-8 to 1 (default: the manifest\'s, per kind: refine.kinds.<kind>.learning_rate)' })),
    augment: Type.Optional(Type.Union(REFINE_AUGMENTS.map((a) => Type.Literal(a)), {
      description: '`leave-one-out` also trains on each example predicted from the others in context (2k rows; default: the manifest\'s)',
    })),
  },
  {
    additionalProperties: false,
    description:
      'extension: after the hypermodel\'s one pass, tune the adapter with `steps` Adam steps on its own examples (test-time tuning, ' +
      'started from the hypermodel\'s adapter). Deterministic: the same request gives the same bytes. The refined adapter has its own id ' +
      '(parent id, examples, settings and the step graph\'s sha256); the one-pass adapter is stored too, as its `parent`. ' +
      'HT_ERR_REFINE_UNAVAILABLE when the bundle has no training-step graph for the kind',
  },
);
export type Refine = Static<typeof Refine>;

export const CreateAdapterBodySchema = Type.Object(
  {
    examples: Examples,
    kind: Type.Optional(AdapterKind),
    refine: Type.Optional(Refine),
    fit: Type.Optional(Type.Boolean({
      description: 'extension: false skips the fit report (the adapter then has no `fit`); default true. The report is computed once, when the adapter is first stored',
    })),
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
    // Refined adapters: the adapter refinement started from (the one-pass adapter, or the one named in the refine route).
    parent: Type.Optional(AdapterId),
    refine: Type.Optional(Type.Object({
      steps: Type.Integer(),
      learning_rate: Type.Number(),
      augment: Type.Union(REFINE_AUGMENTS.map((a) => Type.Literal(a))),
      loss_first: Type.Number({ description: 'mean token cross-entropy on the training batch at the first step (before its update)' }),
      loss_last: Type.Number({ description: 'the same at the last step (before its update)' }),
      ms: Type.Number({ description: 'time the Adam steps took in the worker, ms' }),
    }, { description: 'refined adapters: how refinement made it' })),
    fit: Type.Optional(Type.Object({
      demos_exact: Type.Number({ minimum: 0, maximum: 1, description: 'share of its examples whose greedy output equals the expected output exactly' }),
      loo_exact: Type.Union([Type.Number({ minimum: 0, maximum: 1 }), Type.Null()], {
        description: 'k ≥ 2: share of examples the hypermodel gets exactly right from the other k − 1 (refined adapters: the parent\'s); null for k = 1',
      }),
      mean_logprob: Type.Union([Type.Number({ maximum: 0 }), Type.Null()], {
        description: 'mean token log-likelihood of the expected outputs (eos included); null when the bundle has no training-step graph for the kind',
      }),
    }, { description: 'adapters made from examples: how well it fits them (docs/api.md, "Fit report"). Absent for imported adapters and with `fit: false`' })),
  },
  { $id: 'Adapter', title: 'Adapter' },
);
export type Adapter = Static<typeof AdapterSchema>;
export const Adapter = ref(AdapterSchema);

export const AdapterParams = Type.Object({ id: AdapterId });

export const RefineAdapterBodySchema = Type.Object(
  {
    examples: Type.Array(Example, { minItems: 1, description: 'the demonstrations to tune on, in order' }),
    refine: Refine,
  },
  { $id: 'RefineAdapterBody', title: 'RefineAdapterBody', additionalProperties: false },
);
export type RefineAdapterBody = Static<typeof RefineAdapterBodySchema>;
export const RefineAdapterBody = ref(RefineAdapterBodySchema);
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
