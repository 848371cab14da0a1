/**
 * One decoder step for a batch of rows with a left-padded self-attention cache
 * (models/README.md: the current token is always the last slot, so rows of different ages share one tensor).
 * The cache lives here, in the graph's layout (self-cache.ts); rows point into it. Every feed buffer is kept
 * across steps: the per-step work outside the graph is the cache gather, the masks and the token ids.
 */
import type { EncodedInput } from './encoder.js';
import type { RowAdapter } from './feeds.js';
import type { Manifest } from './manifest.js';
import type { HostTensor } from './onnx.js';
import { RowTensor } from './row-tensor.js';
import { SelfCache, type CacheRef } from './self-cache.js';
import type { GraphSession } from './session.js';
import type { GraphTable } from './tensor-table.js';

export interface DecodeRow {
  /** The token fed at this step (decoder_start at the first step). */
  inputId: number;
  /** This row's cache: its own from the previous step, a beam parent's, or EMPTY_CACHE. */
  past: CacheRef;
  enc: EncodedInput;
  adapter: RowAdapter | null;
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
  private readonly L: number;
  private readonly H: number;
  private readonly dk: number;
  private readonly cache: SelfCache;
  private readonly crossKey = new RowTensor((n) => new Float32Array(n));
  private readonly crossValue = new RowTensor((n) => new Float32Array(n));
  private readonly encMask: RowTensor<IntBuf>;
  private readonly adapters: { name: string; kind: string; size: number; shape: number[]; rows: RowTensor<Float32Array> }[];
  private selfMask: IntBuf;
  private inputIds: IntBuf;

  constructor(
    private readonly session: GraphSession,
    private readonly table: GraphTable,
    manifest: Manifest,
  ) {
    this.L = manifest.dims.num_decoder_layers;
    this.H = manifest.dims.num_heads;
    this.dk = manifest.dims.d_kv;
    this.cache = new SelfCache(this.L * this.H, this.dk);
    this.encMask = new RowTensor((n) => this.ints('encoder_attention_mask', n));
    this.selfMask = this.ints('self_attention_mask', 0);
    this.inputIds = this.ints('input_ids', 0);
    this.adapters = table.adapters.map((a) => ({ ...a, rows: new RowTensor((n) => new Float32Array(n)) }));
  }

  private ints(io: string, n: number): IntBuf {
    return this.table.core[io]!.dtype === 'int64' ? new BigInt64Array(n) : new Float32Array(n);
  }

  private int(io: string, data: IntBuf, dims: number[]): HostTensor {
    return { dtype: this.table.core[io]!.dtype, dims, data };
  }

  /** Cross K/V, encoder mask and adapter rows: refilled only at the indices that now hold another job's row. */
  private constantFeeds(rows: readonly DecodeRow[]): Record<string, HostTensor> {
    const { L, H, dk } = this;
    const B = rows.length;
    let S = 0;
    for (const r of rows) if (r.enc.srcLen > S) S = r.enc.srcLen;
    const encs = rows.map((r) => r.enc);
    const crossRow = (from: (e: EncodedInput) => Float32Array) => (dst: Float32Array, b: number) => {
      const e = encs[b]!;
      const s = e.srcLen;
      const src = from(e);
      for (let lh = 0; lh < L * H; lh++) {
        dst.set(src.subarray(lh * s * dk, (lh + 1) * s * dk), lh * S * dk);
        dst.fill(0, (lh * S + s) * dk, (lh + 1) * S * dk);
      }
    };
    const dims = [B, L, H, S, dk];
    const feeds: Record<string, HostTensor> = {
      cross_key: { dtype: 'float32', dims, data: this.crossKey.rows(encs, L * H * S * dk, crossRow((e) => e.crossKey)) },
      cross_value: { dtype: 'float32', dims, data: this.crossValue.rows(encs, L * H * S * dk, crossRow((e) => e.crossValue)) },
      encoder_attention_mask: this.int(
        'encoder_attention_mask',
        this.encMask.rows(encs, S, (dst, b) => {
          fillInts(dst, 1, 0, encs[b]!.srcLen);
          fillInts(dst, 0, encs[b]!.srcLen);
        }),
        [B, S],
      ),
    };
    // Zeros for a row without an adapter of the tensor's kind are an exact no-op (models/README.md).
    for (const a of this.adapters) {
      const keys = rows.map((r) => (r.adapter && r.adapter.kind === a.kind ? r.adapter : null));
      const data = a.rows.rows(keys, a.size, (dst, b) => {
        const adapter = keys[b];
        if (!adapter) return void dst.fill(0);
        const t = adapter.tensors[a.name];
        if (!t || t.length !== a.size) throw new Error(`adapter tensor ${a.name}: expected ${a.size} values, got ${t?.length ?? 'none'}`);
        dst.set(t);
      });
      feeds[a.name] = { dtype: 'float32', dims: [B, ...a.shape], data };
    }
    return feeds;
  }

  private reserveInts(io: string, buf: IntBuf, n: number): IntBuf {
    return buf.length >= n ? buf : this.ints(io, Math.max(n, 2 * buf.length));
  }

  async step(rows: readonly DecodeRow[]): Promise<StepResult> {
    const { L, H, dk } = this;
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
    const out = await this.session.run(
      {
        input_ids: this.int('input_ids', inputIds, [B, 1]),
        self_attention_mask: this.int('self_attention_mask', selfMask, [B, W]),
        past_key: { dtype: 'float32', dims: [B, L, H, P, dk], data: past.key },
        past_value: { dtype: 'float32', dims: [B, L, H, P, dk], data: past.value },
        ...this.constantFeeds(rows),
      },
      ['logits', 'new_key', 'new_value'],
    );
    this.cache.commit(out.new_key!.data as Float32Array, out.new_value!.data as Float32Array);
    const logits = out.logits!;
    return { logits: logits.data as Float32Array, vocab: logits.dims[1]! };
  }
}
