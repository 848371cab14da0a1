/**
 * One decoder step for a batch of rows with a left-padded self-attention cache
 * (models/README.md: the current token is always the last slot, so rows of different ages share one tensor).
 * The cache lives here, in the graph's layout (self-cache.ts: one tensor per layer); rows point into it. Every
 * feed buffer is kept across steps: the per-step work outside the graph is the cache gather, the masks and the
 * token ids.
 *
 * A step runs on a kind decoder (`decoder_lora`, `decoder_prefix`) when the bundle has it and every row's adapter
 * is of that kind or absent, otherwise on `decoder`: the same step without the other kind's branch, so the same
 * logits and keys/values for less work. All the graphs share the cache and the feed buffers; a step feeds only
 * its graph's adapter inputs.
 */
import type { EncodedInput } from './encoder.js';
import { adapterSlice, type RowAdapter } from './feeds.js';
import { ADAPTER_KINDS, kindDecoderName, type AdapterKindName, type DecoderGraphName, type KindDecoderName, type Manifest } from './manifest.js';
import type { HostTensor } from './onnx.js';
import { RowTensor } from './row-tensor.js';
import { SelfCache, type CacheRef } from './self-cache.js';
import type { GraphSession } from './session.js';
import type { AdapterInput, DecoderTable, TensorTable } from './tensor-table.js';

export interface DecodeRow {
  /** The token fed at this step (decoder_start at the first step). */
  inputId: number;
  /** This row's cache: its own from the previous step, a beam parent's, or EMPTY_CACHE. */
  past: CacheRef;
  enc: EncodedInput;
  adapter: RowAdapter | null;
}

/** A decoder graph's session and table. */
interface DecoderGraph {
  session: GraphSession;
  table: DecoderTable;
}

/** `decoder`, and each kind decoder the bundle has. */
export type DecoderGraphs = { decoder: DecoderGraph } & Partial<Record<KindDecoderName, DecoderGraph>>;

/**
 * The decoder graphs that have both a table and a session: `decoder` (which must) and the kind decoders. A
 * caller passes only `decoder`'s session to run every step on it.
 */
export function decoderGraphs(tables: TensorTable['graphs'], sessions: Partial<Record<DecoderGraphName, GraphSession>>): DecoderGraphs {
  const graph = (g: DecoderGraphName): DecoderGraph | undefined => {
    const [session, table] = [sessions[g], tables[g]];
    return session && table ? { session, table } : undefined;
  };
  const decoder = graph('decoder');
  if (!decoder) throw new Error('decoder: no session or no table');
  const graphs: DecoderGraphs = { decoder };
  for (const kind of ADAPTER_KINDS) {
    const g = kindDecoderName(kind);
    const kindGraph = graph(g);
    if (kindGraph) graphs[g] = kindGraph;
  }
  return graphs;
}

/** A graph as the decoder runs it: its adapter inputs, each with the buffer all the graphs share for it. */
interface Runner {
  graph: DecoderGraph;
  adapters: { input: AdapterInput; rows: RowTensor<Float32Array> }[];
  /** logits, then every layer's new key, then every layer's new value. */
  fetches: string[];
}

export interface StepResult {
  /** [B, vocab] */
  logits: Float32Array;
  vocab: number;
}

/** Integer feeds in the dtype the manifest declares (int64 for the shipped graphs). */
type IntBuf = BigInt64Array | Float32Array;

function fillInts(buf: IntBuf, v: number, from: number, to?: number): void {
  if (buf instanceof BigInt64Array) buf.fill(BigInt(v), from, to);
  else buf.fill(v, from, to);
}

export class Decoder {
  private readonly H: number;
  private readonly dk: number;
  private readonly cache: SelfCache;
  /** Per layer, the cross-attention keys (values) of the batch's rows. */
  private readonly crossKey: RowTensor<Float32Array>[];
  private readonly crossValue: RowTensor<Float32Array>[];
  private readonly encMask: RowTensor<IntBuf>;
  private readonly full: Runner;
  private readonly byKind: Partial<Record<AdapterKindName, Runner>> = {};
  /** The graph of a step without adapters: the first kind decoder there is (any computes the same). */
  private readonly plain: Runner;
  /** `decoder`'s table: the core inputs' dtypes and the layers' names, the same in every decoder graph (tensor-table.ts). */
  private readonly table: DecoderTable;
  private selfMask: IntBuf;
  private inputIds: IntBuf;

  constructor(graphs: DecoderGraphs, manifest: Pick<Manifest, 'dims'>) {
    const table = graphs.decoder.table;
    this.table = table;
    const L = table.layers.length;
    this.H = manifest.dims.num_heads;
    this.dk = manifest.dims.d_kv;
    this.cache = new SelfCache(L, this.H, this.dk);
    const floats = () => new RowTensor((n) => new Float32Array(n));
    this.crossKey = Array.from({ length: L }, floats);
    this.crossValue = Array.from({ length: L }, floats);
    this.encMask = new RowTensor((n) => this.ints('encoder_attention_mask', n));
    this.selfMask = this.ints('self_attention_mask', 0);
    this.inputIds = this.ints('input_ids', 0);
    // One buffer per adapter input, whichever graph feeds it: a buffer a step does not feed keeps its contents
    // and the record of which row each index holds, so it is still right when a later step feeds it again.
    const shared = new Map(table.adapters.map((input) => [input.input, floats()]));
    const runner = (graph: DecoderGraph): Runner => ({
      graph,
      adapters: graph.table.adapters.map((input) => {
        const rows = shared.get(input.input);
        if (!rows) throw new Error(`${input.input}: an adapter input of a kind decoder but not of the decoder`);
        return { input, rows };
      }),
      fetches: ['logits', ...graph.table.layers.map((l) => l.newKey), ...graph.table.layers.map((l) => l.newValue)],
    });
    this.full = runner(graphs.decoder);
    for (const kind of ADAPTER_KINDS) {
      const graph = graphs[kindDecoderName(kind)];
      if (graph) this.byKind[kind] = runner(graph);
    }
    this.plain = ADAPTER_KINDS.map((k) => this.byKind[k]).find((r) => r !== undefined) ?? this.full;
  }

  /** The kind decoder when every row's adapter is of its kind or absent, else `decoder`. */
  private runnerFor(rows: readonly DecodeRow[]): Runner {
    let kind: AdapterKindName | null = null;
    for (const r of rows) {
      if (!r.adapter || r.adapter.kind === kind) continue;
      if (kind !== null) return this.full;
      kind = r.adapter.kind;
    }
    return kind === null ? this.plain : (this.byKind[kind] ?? this.full);
  }

  private ints(io: string, n: number): IntBuf {
    return this.table.core[io]!.dtype === 'int64' ? new BigInt64Array(n) : new Float32Array(n);
  }

  private int(io: string, data: IntBuf, dims: number[]): HostTensor {
    return { dtype: this.table.core[io]!.dtype, dims, data };
  }

  /** Cross K/V, encoder mask and adapter rows into `feeds`: refilled only at the indices that now hold another job's row. */
  private constantFeeds(rows: readonly DecodeRow[], adapters: Runner['adapters'], feeds: Record<string, HostTensor>): void {
    const { H, dk } = this;
    const B = rows.length;
    let S = 0;
    for (const r of rows) if (r.enc.srcLen > S) S = r.enc.srcLen;
    const encs = rows.map((r) => r.enc);
    // Layer l of a row's [L, H, srcLen, d_kv] keys is the contiguous block at l * H * srcLen * d_kv.
    const crossRow = (from: (e: EncodedInput) => Float32Array, l: number) => (dst: Float32Array, b: number) => {
      const e = encs[b]!;
      const s = e.srcLen;
      const src = from(e);
      for (let h = 0; h < H; h++) {
        const at = (l * H + h) * s * dk;
        dst.set(src.subarray(at, at + s * dk), h * S * dk);
        dst.fill(0, (h * S + s) * dk, (h + 1) * S * dk);
      }
    };
    const dims = [B, H, S, dk];
    feeds.encoder_attention_mask = this.int(
      'encoder_attention_mask',
      this.encMask.rows(encs, S, (dst, b) => {
        fillInts(dst, 1, 0, encs[b]!.srcLen);
        fillInts(dst, 0, encs[b]!.srcLen);
      }),
      [B, S],
    );
    this.table.layers.forEach((layer, l) => {
      feeds[layer.crossKey] = { dtype: 'float32', dims, data: this.crossKey[l]!.rows(encs, H * S * dk, crossRow((e) => e.crossKey, l)) };
      feeds[layer.crossValue] = { dtype: 'float32', dims, data: this.crossValue[l]!.rows(encs, H * S * dk, crossRow((e) => e.crossValue, l)) };
    });
    // Zeros for a row without an adapter of the tensor's kind are an exact no-op (models/README.md). Each row's
    // adapter of a kind is looked up once per step, not once per input (a kind has one input per tensor and layer).
    const keysOf: Partial<Record<AdapterKindName, (RowAdapter | null)[]>> = {};
    for (const { input, rows: buf } of adapters) {
      const keys = (keysOf[input.kind] ??= rows.map((r) => (r.adapter && r.adapter.kind === input.kind ? r.adapter : null)));
      const data = buf.rows(keys, input.size, (dst, b) => {
        const adapter = keys[b];
        if (adapter) dst.set(adapterSlice(adapter, input));
        else dst.fill(0);
      });
      feeds[input.input] = { dtype: 'float32', dims: [B, ...input.shape], data };
    }
  }

  private reserveInts(io: string, buf: IntBuf, n: number): IntBuf {
    return buf.length >= n ? buf : this.ints(io, Math.max(n, 2 * buf.length));
  }

  async step(rows: readonly DecodeRow[]): Promise<StepResult> {
    const { H, dk } = this;
    const B = rows.length;
    const past = this.cache.gather(rows.map((r) => r.past));
    const P = this.cache.pastLen;
    const len = this.cache.lengths;
    const W = P + 1;
    this.selfMask = this.reserveInts('self_attention_mask', this.selfMask, B * W);
    this.inputIds = this.reserveInts('input_ids', this.inputIds, B);
    const selfMask = this.selfMask.subarray(0, B * W);
    const inputIds = this.inputIds.subarray(0, B);
    for (let b = 0; b < B; b++) {
      // Leading slots a row never filled are padding; its own steps and the current token are attended.
      fillInts(selfMask, 0, b * W, b * W + P - len[b]!);
      fillInts(selfMask, 1, b * W + P - len[b]!, (b + 1) * W);
      fillInts(inputIds, rows[b]!.inputId, b, b + 1);
    }
    const feeds: Record<string, HostTensor> = {
      input_ids: this.int('input_ids', inputIds, [B, 1]),
      self_attention_mask: this.int('self_attention_mask', selfMask, [B, W]),
    };
    const pastDims = [B, H, P, dk];
    this.table.layers.forEach((layer, l) => {
      feeds[layer.pastKey] = { dtype: 'float32', dims: pastDims, data: past.key[l]! };
      feeds[layer.pastValue] = { dtype: 'float32', dims: pastDims, data: past.value[l]! };
    });
    const runner = this.runnerFor(rows);
    this.constantFeeds(rows, runner.adapters, feeds);
    const out = await runner.graph.session.run(feeds, runner.fetches);
    const { layers } = this.table;
    this.cache.commit(
      layers.map((l) => out[l.newKey]!.data as Float32Array),
      layers.map((l) => out[l.newValue]!.data as Float32Array),
    );
    const logits = out.logits!;
    return { logits: logits.data as Float32Array, vocab: logits.dims[1]! };
  }
}
