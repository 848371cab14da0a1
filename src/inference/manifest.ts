/** manifest.json as specified in models/README.md (bundle format version 2: the decoder takes one input per layer). */
import { Type, type SchemaOptions, type Static } from '@sinclair/typebox';

/** The adapter kinds a bundle can have: the one list the manifest, the API schemas and the stores use. */
export const ADAPTER_KINDS = ['lora', 'prefix'] as const;
export type AdapterKindName = (typeof ADAPTER_KINDS)[number];
/** An adapter kind as a schema; the API adds its description through `options`. */
export const adapterKindSchema = (options?: SchemaOptions) => Type.Union(ADAPTER_KINDS.map((k) => Type.Literal(k)), options);

const Int = Type.Integer({ minimum: 0 });
const PosInt = Type.Integer({ minimum: 1 });

export const IoSpec = Type.Object({
  name: Type.String({ minLength: 1 }),
  dtype: Type.Union([Type.Literal('float32'), Type.Literal('int64')]),
  shape: Type.Array(Type.Union([Type.Integer({ minimum: 0 }), Type.String({ minLength: 1 })])),
});
export type IoSpec = Static<typeof IoSpec>;

const GraphSpec = Type.Object({
  file: Type.String({ minLength: 1 }),
  inputs: Type.Array(IoSpec),
  outputs: Type.Array(IoSpec),
});

export const TensorSpec = Type.Object({
  name: Type.String({ minLength: 1 }),
  dtype: Type.Literal('float32'),
  shape: Type.Array(PosInt),
  /** Largest |value| an imported tensor may hold (models/README.md, "Adapter kinds"); see maxAbsOf. */
  max_abs: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
});
export type TensorSpec = Static<typeof TensorSpec>;

/**
 * The bound for bundles exported before `max_abs` existed: the loosest the exporter writes. It lies far
 * above what hypermodels and tuned adapters produce (below 6 on models/default) and far below where float32
 * activations overflow (about 1e18), so no legitimate adapter of an older bundle is refused and no import
 * turns every logit into NaN.
 */
export const DEFAULT_ADAPTER_MAX_ABS = 1000;

export const maxAbsOf = (spec: TensorSpec): number => spec.max_abs ?? DEFAULT_ADAPTER_MAX_ABS;

const KindSpec = Type.Object({ tensors: Type.Array(TensorSpec, { minItems: 1 }) });
/** Prefix attention (models/README.md, "Adapter kinds"): "gated" when absent (bundles older than "peft"). */
export const PrefixAttention = Type.Union([Type.Literal('gated'), Type.Literal('peft')]);
const PrefixKindSpec = Type.Composite([KindSpec, Type.Object({ attention: Type.Optional(PrefixAttention) })]);

/** How refinement may augment the demonstrations (models/README.md, "Refinement graphs"). */
export const REFINE_AUGMENTS = ['none', 'leave-one-out'] as const;
export type RefineAugment = (typeof REFINE_AUGMENTS)[number];

/** The step graph of one kind and its defaults. */
const RefineKindSpec = Type.Object({
  graph: Type.Union([Type.Literal('train_step_lora'), Type.Literal('train_step_prefix')]),
  steps: PosInt,
  learning_rate: Type.Number({ exclusiveMinimum: 0 }),
  augment: Type.Union(REFINE_AUGMENTS.map((a) => Type.Literal(a))),
});

/** Optional: bundles without training-step graphs lack it, and refinement is then refused. */
const RefineSpec = Type.Object({
  optimizer: Type.Object({ name: Type.Literal('adam'), beta1: Type.Number(), beta2: Type.Number(), eps: Type.Number() }),
  weights_file: Type.String({ minLength: 1 }),
  kinds: Type.Object({ lora: Type.Optional(RefineKindSpec), prefix: Type.Optional(RefineKindSpec) }),
});

export const Manifest = Type.Object({
  format: Type.Literal('hypert5-bundle'),
  format_version: Type.Integer(),
  name: Type.String({ minLength: 1 }),
  fingerprint: Type.String({ pattern: '^[0-9a-f]{16}$' }),
  files: Type.Record(Type.String(), Type.String({ pattern: '^[0-9a-f]{64}$' })),
  dims: Type.Object({
    vocab_size: PosInt,
    d_model: PosInt,
    d_kv: PosInt,
    num_heads: PosInt,
    d_ff: PosInt,
    num_layers: PosInt,
    num_decoder_layers: PosInt,
    relative_attention_num_buckets: PosInt,
    relative_attention_max_distance: PosInt,
    feed_forward_proj: Type.String(),
    tie_word_embeddings: Type.Boolean(),
    layer_norm_epsilon: Type.Number(),
  }),
  tokenizer: Type.Union([
    Type.Object({ type: Type.Literal('byte'), offset: Int }),
    Type.Object({ type: Type.Literal('tokenizers'), file: Type.String({ minLength: 1 }) }),
  ]),
  special_ids: Type.Object({ pad: Int, eos: Int, unk: Int, decoder_start: Int }),
  encoder_input: Type.Object({ append_eos: Type.Boolean(), max_tokens: PosInt }),
  hyper_input: Type.Object({
    input_prefix: Type.String(),
    output_prefix: Type.String(),
    example_separator: Type.String(),
    max_tokens: PosInt,
    max_examples: PosInt,
  }),
  generation: Type.Object({ max_new_tokens: PosInt, num_beams: PosInt }),
  adapters: Type.Object({
    default_kind: adapterKindSchema(),
    kinds: Type.Object({ lora: Type.Optional(KindSpec), prefix: Type.Optional(PrefixKindSpec) }),
  }),
  graphs: Type.Object({
    encoder: GraphSpec,
    decoder: GraphSpec,
    decoder_lora: Type.Optional(GraphSpec),
    decoder_prefix: Type.Optional(GraphSpec),
    hyper_lora: Type.Optional(GraphSpec),
    hyper_prefix: Type.Optional(GraphSpec),
    train_step_lora: Type.Optional(GraphSpec),
    train_step_prefix: Type.Optional(GraphSpec),
  }),
  refine: Type.Optional(RefineSpec),
  provenance: Type.Optional(Type.Unknown()),
});
export type Manifest = Static<typeof Manifest>;

/**
 * The optional kind decoders: the `decoder` step with one kind's adapter inputs only, which a batch whose rows
 * are all of that kind (or have no adapter) may run on instead (models/README.md, "Graphs").
 */
export type KindDecoderName = `decoder_${AdapterKindName}`;
export const kindDecoderName = (kind: AdapterKindName): KindDecoderName => `decoder_${kind}`;
/** The graphs a decode step may run on: `decoder`, which takes every kind, and the kind decoders. */
export type DecoderGraphName = 'decoder' | KindDecoderName;

/** The graphs a worker opens at boot: encoder, decoder, a hypermodel per adapter kind, and the kind decoders the bundle has. */
export type GraphName = 'encoder' | DecoderGraphName | 'hyper_lora' | 'hyper_prefix';
/** The optional training-step graphs: outside GraphName, which names the graphs every worker opens at boot. */
export type TrainStepGraphName = 'train_step_lora' | 'train_step_prefix';
