/**
 * The one typed table of tensor names, read from the manifest: which inputs each graph takes,
 * which of them are adapter tensors (and of which kind), and the per-adapter shapes.
 */
import type { AdapterKindName, GraphName, IoSpec, Manifest, TensorSpec } from './manifest.js';

const CORE_INPUTS = {
  encoder: ['input_ids', 'attention_mask'],
  decoder: ['input_ids', 'self_attention_mask', 'encoder_attention_mask', 'past_key', 'past_value', 'cross_key', 'cross_value'],
  hyper_lora: ['input_ids', 'attention_mask'],
  hyper_prefix: ['input_ids', 'attention_mask'],
} as const satisfies Record<GraphName, readonly string[]>;

const CORE_OUTPUTS = {
  encoder: ['cross_key', 'cross_value'],
  decoder: ['logits', 'new_key', 'new_value'],
} as const;

interface AdapterInput {
  name: string;
  kind: AdapterKindName;
  /** Shape of one adapter (no batch dimension). */
  shape: number[];
  /** Elements of one adapter's tensor. */
  size: number;
}

export interface GraphTable {
  inputs: IoSpec[];
  outputs: IoSpec[];
  core: Record<string, IoSpec>;
  adapters: AdapterInput[];
}

export interface TensorTable {
  graphs: Partial<Record<GraphName, GraphTable>>;
  /** Per kind, its tensors in manifest order. */
  kinds: Partial<Record<AdapterKindName, TensorSpec[]>>;
}

export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

function sameShape(a: readonly (number | string)[], b: readonly (number | string)[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function buildTensorTable(manifest: Manifest, kinds: AdapterKindName[]): TensorTable {
  const byName = new Map<string, { kind: AdapterKindName; spec: TensorSpec }>();
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
  const graphNames: GraphName[] = ['encoder', 'decoder', ...kinds.map((k) => `hyper_${k}` as const)];
  for (const g of graphNames) {
    const spec = manifest.graphs[g]!;
    const core: Record<string, IoSpec> = {};
    const adapters: AdapterInput[] = [];
    for (const io of spec.inputs) {
      const a = byName.get(io.name);
      if (a) {
        const want = ['batch', ...a.spec.shape];
        if (!sameShape(io.shape, want) || io.dtype !== a.spec.dtype) {
          throw new Error(`field graphs.${g}.inputs: ${io.name} is ${io.dtype}${JSON.stringify(io.shape)}; adapters.kinds.${a.kind} gives ${a.spec.dtype}${JSON.stringify(want)}`);
        }
        if (g.startsWith('hyper_')) throw new Error(`field graphs.${g}.inputs: adapter tensor ${io.name} is not an input of a hypermodel`);
        adapters.push({ name: io.name, kind: a.kind, shape: a.spec.shape, size: numel(a.spec.shape) });
        consumed.add(io.name);
      } else if ((CORE_INPUTS[g] as readonly string[]).includes(io.name)) {
        core[io.name] = io;
      } else {
        throw new Error(`field graphs.${g}.inputs: ${io.name} is neither a ${g} input nor an adapter tensor of adapters.kinds`);
      }
    }
    for (const name of CORE_INPUTS[g]) {
      if (!core[name]) throw new Error(`field graphs.${g}.inputs: missing ${name}`);
    }
    const wantOutputs: readonly string[] = g === 'encoder' || g === 'decoder'
      ? CORE_OUTPUTS[g]
      : kindTable[g === 'hyper_lora' ? 'lora' : 'prefix']!.map((t) => t.name);
    const outNames = spec.outputs.map((o) => o.name);
    for (const name of wantOutputs) {
      if (!outNames.includes(name)) throw new Error(`field graphs.${g}.outputs: missing ${name}`);
    }
    graphs[g] = { inputs: spec.inputs, outputs: spec.outputs, core, adapters };
  }
  for (const name of byName.keys()) {
    if (!consumed.has(name)) throw new Error(`field adapters.kinds: tensor ${name} is an input of neither graphs.encoder nor graphs.decoder`);
  }
  return { graphs, kinds: kindTable };
}
