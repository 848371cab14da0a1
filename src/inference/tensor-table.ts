/**
 * The one typed table of tensor names, read from the manifest: which inputs each graph takes, which of them
 * are adapter tensors (of which kind, whole or one layer), the per-adapter shapes, and the decoder's per-layer
 * keys and values (models/README.md, "Graphs"). A kind decoder present in the bundle gets a table like the
 * decoder's, checked to take exactly the decoder's inputs less the other kind's adapter inputs.
 */
import { ADAPTER_KINDS, kindDecoderName, type AdapterKindName, type DecoderGraphName, type GraphName, type IoSpec, type Manifest, type TensorSpec } from './manifest.js';

const DECODER_CORE = ['input_ids', 'self_attention_mask', 'encoder_attention_mask'] as const;

/** Inputs every graph has under these exact names; the decoder's per-layer ones are DECODER_LAYER_IO. */
const CORE_INPUTS = {
  encoder: ['input_ids', 'attention_mask'],
  decoder: DECODER_CORE,
  decoder_lora: DECODER_CORE,
  decoder_prefix: DECODER_CORE,
  hyper_lora: ['input_ids', 'attention_mask'],
  hyper_prefix: ['input_ids', 'attention_mask'],
} as const satisfies Record<GraphName, readonly string[]>;

const CORE_OUTPUTS = {
  encoder: ['cross_key', 'cross_value'],
  decoder: ['logits'],
} as const;

/**
 * The decoder's per-layer inputs and outputs, each `<name>.<l>` [batch, num_heads, <length>, d_kv]: the
 * length is a dynamic dimension for the inputs and 1 for the outputs (this step's key or value).
 */
const DECODER_LAYER_IO = {
  pastKey: { name: 'past_key', side: 'inputs' },
  pastValue: { name: 'past_value', side: 'inputs' },
  crossKey: { name: 'cross_key', side: 'inputs' },
  crossValue: { name: 'cross_value', side: 'inputs' },
  newKey: { name: 'new_key', side: 'outputs' },
  newValue: { name: 'new_value', side: 'outputs' },
} as const;

/** One decoder layer's graph names. */
type DecoderLayer = Record<keyof typeof DECODER_LAYER_IO, string>;
const LAYER_KEYS = Object.keys(DECODER_LAYER_IO) as (keyof DecoderLayer)[];

/** One graph input fed from an adapter tensor: the whole tensor, or one layer of it (a contiguous slice). */
export interface AdapterInput {
  /** The graph input's name: the tensor's own, or `<tensor>.<l>`. */
  input: string;
  /** The tensor of adapters.kinds.<kind>.tensors it reads. */
  tensor: string;
  kind: AdapterKindName;
  /** The layer (index into the tensor's first dimension) this input feeds; null for the whole tensor. */
  layer: number | null;
  /** Shape of one adapter's input (no batch dimension). */
  shape: number[];
  /** Elements of one adapter's input. */
  size: number;
  /** Where the input's elements start in the tensor's data (layer l of [L, ...rest] is at l * numel(rest)). */
  offset: number;
  /** Elements of the whole tensor, which an adapter must hold. */
  tensorSize: number;
}

export interface GraphTable {
  inputs: IoSpec[];
  outputs: IoSpec[];
  core: Record<string, IoSpec>;
  adapters: AdapterInput[];
}

export interface DecoderTable extends GraphTable {
  /** Per decoder layer, in order: its key/value inputs and outputs. */
  layers: DecoderLayer[];
}

export interface TensorTable {
  /** Every graph the bundle has of those a worker opens; `decoder` is always there once the table is built. */
  graphs: Partial<Record<Exclude<GraphName, DecoderGraphName>, GraphTable>> & Partial<Record<DecoderGraphName, DecoderTable>>;
  /** Per kind, its tensors in manifest order. */
  kinds: Partial<Record<AdapterKindName, TensorSpec[]>>;
}

export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

function sameShape(a: readonly (number | string)[], b: readonly (number | string)[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

const show = (io: { dtype: string; shape: readonly (number | string)[] }): string => `${io.dtype}${JSON.stringify(io.shape)}`;

/** What of the manifest the table reads. */
type TableSource = Pick<Manifest, 'dims' | 'adapters' | 'graphs'>;

type TensorsByName = Map<string, { kind: AdapterKindName; spec: TensorSpec }>;

/** `<tensor>` or `<tensor>.<l>` (l in canonical decimal) for a tensor of the bundle's kinds; null otherwise. */
function parseAdapterInput(name: string, byName: TensorsByName): { tensor: string; layer: number | null } | null {
  if (byName.has(name)) return { tensor: name, layer: null };
  const m = /^(.+)\.(0|[1-9][0-9]*)$/.exec(name);
  return m && byName.has(m[1]!) ? { tensor: m[1]!, layer: Number(m[2]) } : null;
}

function adapterInput(g: GraphName, io: IoSpec, byName: TensorsByName): AdapterInput | null {
  const parsed = parseAdapterInput(io.name, byName);
  if (!parsed) return null;
  const { kind, spec } = byName.get(parsed.tensor)!;
  const where = `field graphs.${g}.inputs: ${io.name}`;
  if (g.startsWith('hyper_')) throw new Error(`${where} is an adapter tensor, not an input of a hypermodel`);
  const { layer } = parsed;
  if (layer !== null && spec.shape.length < 2) {
    throw new Error(`${where} feeds one layer of ${spec.name}, whose shape ${JSON.stringify(spec.shape)} has no layer dimension`);
  }
  if (layer !== null && layer >= spec.shape[0]!) {
    throw new Error(`${where} feeds layer ${layer} of ${spec.name}, which has ${spec.shape[0]} layers`);
  }
  const shape = layer === null ? spec.shape : spec.shape.slice(1);
  const want = { dtype: spec.dtype, shape: ['batch', ...shape] };
  if (!sameShape(io.shape, want.shape) || io.dtype !== want.dtype) {
    throw new Error(`${where} is ${show(io)}; adapters.kinds.${kind} gives ${show(want)}${layer === null ? '' : ` for layer ${layer}`}`);
  }
  const size = numel(shape);
  return { input: io.name, tensor: spec.name, kind, layer, shape, size, offset: layer === null ? 0 : layer * size, tensorSize: numel(spec.shape) };
}

/** Every tensor a graph reads is fed once: by one whole input, or by one input for each of its layers. */
function checkCoverage(g: GraphName, adapters: readonly AdapterInput[], byName: TensorsByName): void {
  const byTensor = new Map<string, AdapterInput[]>();
  for (const a of adapters) byTensor.set(a.tensor, [...(byTensor.get(a.tensor) ?? []), a]);
  for (const [tensor, inputs] of byTensor) {
    const where = `field graphs.${g}.inputs: adapter tensor ${tensor}`;
    const whole = inputs.filter((a) => a.layer === null);
    if (whole.length > 1) throw new Error(`${where} is fed by ${whole.length} inputs named ${tensor}`);
    if (whole.length === 1 && whole.length < inputs.length) {
      throw new Error(`${where} is fed both whole (${tensor}) and per layer (${inputs.find((a) => a.layer !== null)!.input})`);
    }
    if (whole.length === 1) continue;
    const seen = new Set<number>();
    for (const a of inputs) {
      if (seen.has(a.layer!)) throw new Error(`${where}: layer input ${a.input} is declared twice`);
      seen.add(a.layer!);
    }
    const layers = byName.get(tensor)!.spec.shape[0]!;
    for (let l = 0; l < layers; l++) {
      if (!seen.has(l)) throw new Error(`${where} is fed per layer but misses ${tensor}.${l} (it has ${layers} layers)`);
    }
  }
}

/** The decoder's per-layer keys and values: every layer present, [batch, num_heads, <length>, d_kv] float32. */
function decoderLayers(manifest: TableSource, g: DecoderGraphName, spec: { inputs: IoSpec[]; outputs: IoSpec[] }): DecoderLayer[] {
  const { num_decoder_layers: L, num_heads: H, d_kv: dk } = manifest.dims;
  const layers: DecoderLayer[] = [];
  for (let l = 0; l < L; l++) {
    const layer = {} as DecoderLayer;
    for (const key of LAYER_KEYS) {
      const { name, side } = DECODER_LAYER_IO[key];
      const full = `${name}.${l}`;
      const io = spec[side].find((x) => x.name === full);
      if (!io) throw new Error(`field graphs.${g}.${side}: missing ${full} (dims.num_decoder_layers is ${L})`);
      const [batch, heads, length, d] = io.shape;
      const lengthOk = side === 'outputs' ? length === 1 : typeof length === 'string';
      if (io.shape.length !== 4 || typeof batch !== 'string' || heads !== H || !lengthOk || d !== dk || io.dtype !== 'float32') {
        const want = side === 'outputs' ? `["batch",${H},1,${dk}]` : `["batch",${H},"<length>",${dk}]`;
        throw new Error(`field graphs.${g}.${side}: ${full} is ${show(io)}; dims give float32${want}`);
      }
      layer[key] = full;
    }
    layers.push(layer);
  }
  return layers;
}

/**
 * A kind decoder takes what `decoder` takes, less the other kinds' adapter inputs: the same core and per-layer
 * inputs (so that one set of feed buffers serves both graphs) and exactly the decoder's inputs of its kind (the
 * input loop has refused any of another kind).
 */
function checkKindDecoder(kind: AdapterKindName, table: DecoderTable, decoder: DecoderTable): void {
  const g = kindDecoderName(kind);
  for (const [name, io] of Object.entries(table.core)) {
    const want = decoder.core[name]!;
    if (io.dtype !== want.dtype || !sameShape(io.shape, want.shape)) throw new Error(`field graphs.${g}.inputs: ${name} is ${show(io)}; graphs.decoder has ${show(want)}`);
  }
  for (const name of Object.keys(decoder.core)) {
    if (!table.core[name]) throw new Error(`field graphs.${g}.inputs: missing ${name}, an input of graphs.decoder`);
  }
  const own = new Set(table.adapters.map((a) => a.input));
  const want = decoder.adapters.filter((a) => a.kind === kind);
  const missing = want.find((a) => !own.has(a.input));
  if (missing) throw new Error(`field graphs.${g}.inputs: missing ${missing.input}, a ${kind} adapter input of graphs.decoder`);
  const extra = table.adapters.find((a) => !want.some((w) => w.input === a.input));
  if (extra) throw new Error(`field graphs.${g}.inputs: ${extra.input} is not an input of graphs.decoder`);
}

/** The decoder's per-layer input names, every layer's. */
const layerInputs = (layers: readonly DecoderLayer[]): string[] =>
  layers.flatMap((layer) => LAYER_KEYS.filter((k) => DECODER_LAYER_IO[k].side === 'inputs').map((k) => layer[k]));

export function buildTensorTable(manifest: TableSource, kinds: AdapterKindName[]): TensorTable {
  const byName: TensorsByName = new Map();
  const kindTable: TensorTable['kinds'] = {};
  for (const kind of kinds) {
    const tensors = manifest.adapters.kinds[kind]!.tensors;
    kindTable[kind] = tensors;
    for (const spec of tensors) {
      if (!spec.name.startsWith(`${kind}.`)) throw new Error(`field adapters.kinds.${kind}: tensor ${spec.name} does not start with "${kind}."`);
      if (byName.has(spec.name)) throw new Error(`field adapters.kinds.${kind}: tensor ${spec.name} listed twice`);
      byName.set(spec.name, { kind, spec });
    }
  }
  const graphs: TensorTable['graphs'] = {};
  const consumed = new Set<string>();
  const kindDecoders = ADAPTER_KINDS.filter((k) => manifest.graphs[kindDecoderName(k)]);
  for (const kind of kindDecoders) {
    if (!kinds.includes(kind)) throw new Error(`field graphs.${kindDecoderName(kind)}: the bundle has no adapter kind ${kind} (field adapters.kinds)`);
  }
  const graphNames: GraphName[] = ['encoder', 'decoder', ...kindDecoders.map(kindDecoderName), ...kinds.map((k) => `hyper_${k}` as const)];
  for (const g of graphNames) {
    const spec = manifest.graphs[g]!;
    const isDecoder = g === 'decoder' || g === 'decoder_lora' || g === 'decoder_prefix';
    const only = ADAPTER_KINDS.find((k) => kindDecoderName(k) === g);
    const layers = isDecoder ? decoderLayers(manifest, g, spec) : [];
    const coreNames = new Set<string>([...CORE_INPUTS[g], ...layerInputs(layers)]);
    const core: Record<string, IoSpec> = {};
    const adapters: AdapterInput[] = [];
    for (const io of spec.inputs) {
      const a = adapterInput(g, io, byName);
      if (a && only && a.kind !== only) {
        throw new Error(`field graphs.${g}.inputs: ${a.input} is a ${a.kind} adapter input; ${g} takes ${only} ones only`);
      }
      if (a) {
        adapters.push(a);
        // The kind decoders are optional: every tensor must reach the graphs every bundle has.
        if (g === 'encoder' || g === 'decoder') consumed.add(a.tensor);
      } else if (coreNames.has(io.name)) {
        core[io.name] = io;
      } else {
        throw new Error(`field graphs.${g}.inputs: ${io.name} is neither a ${g} input nor an adapter tensor of adapters.kinds`);
      }
    }
    checkCoverage(g, adapters, byName);
    for (const name of CORE_INPUTS[g]) {
      if (!core[name]) throw new Error(`field graphs.${g}.inputs: missing ${name}`);
    }
    const wantOutputs: readonly string[] = isDecoder
      ? CORE_OUTPUTS.decoder
      : g === 'encoder'
        ? CORE_OUTPUTS.encoder
        : kindTable[g === 'hyper_lora' ? 'lora' : 'prefix']!.map((t) => t.name);
    const outNames = spec.outputs.map((o) => o.name);
    for (const name of wantOutputs) {
      if (!outNames.includes(name)) throw new Error(`field graphs.${g}.outputs: missing ${name}`);
    }
    const table = { inputs: spec.inputs, outputs: spec.outputs, core, adapters };
    if (isDecoder) graphs[g] = { ...table, layers };
    else graphs[g] = table;
  }
  for (const kind of kindDecoders) checkKindDecoder(kind, graphs[kindDecoderName(kind)]!, graphs.decoder!);
  for (const name of byName.keys()) {
    if (!consumed.has(name)) throw new Error(`field adapters.kinds: tensor ${name} is an input of neither graphs.encoder nor graphs.decoder`);
  }
  return { graphs, kinds: kindTable };
}
