/**
 * One decoder step for a batch of rows with a left-padded self-attention cache
 * (models/README.md: the current token is always the last slot, so rows of different ages share one tensor).
 */
import type { EncodedInput } from './encoder.js';
import { adapterFeeds, intTensor, type RowAdapter } from './feeds.js';
import type { Manifest } from './manifest.js';
import type { HostTensor } from './onnx.js';
import type { GraphSession } from './session.js';
import type { GraphTable } from './tensor-table.js';

export interface DecodeRow {
  /** The token fed at this step (decoder_start at the first step). */
  inputId: number;
  /** This row's cache: one [num_decoder_layers, num_heads, d_kv] chunk per earlier step, oldest first. */
  pastKey: readonly Float32Array[];
  pastValue: readonly Float32Array[];
  enc: EncodedInput;
  adapter: RowAdapter | null;
}

export interface StepResult {
  /** [B, vocab] */
  logits: Float32Array;
  vocab: number;
  /** Per row, this step's key/value chunk to append to its cache. */
  newKey: Float32Array[];
  newValue: Float32Array[];
}

export class Decoder {
  private readonly L: number;
  private readonly H: number;
  private readonly dk: number;
  /** Cross K/V and adapter feeds only change when the batch membership changes: reuse them otherwise. */
  private constant: { encs: EncodedInput[]; adapters: (RowAdapter | null)[]; feeds: Record<string, HostTensor> } | null = null;

  constructor(
    private readonly session: GraphSession,
    private readonly table: GraphTable,
    manifest: Manifest,
  ) {
    this.L = manifest.dims.num_decoder_layers;
    this.H = manifest.dims.num_heads;
    this.dk = manifest.dims.d_kv;
  }

  private constantFeeds(rows: readonly DecodeRow[]): Record<string, HostTensor> {
    const c = this.constant;
    if (c && c.encs.length === rows.length && rows.every((r, i) => r.enc === c.encs[i] && r.adapter === c.adapters[i])) return c.feeds;
    const { L, H, dk } = this;
    const B = rows.length;
    const S = Math.max(...rows.map((r) => r.enc.srcLen));
    const ck = new Float32Array(B * L * H * S * dk);
    const cv = new Float32Array(B * L * H * S * dk);
    const mask: number[] = [];
    rows.forEach((r, b) => {
      const s = r.enc.srcLen;
      for (let lh = 0; lh < L * H; lh++) {
        const dst = ((b * L * H + lh) * S) * dk;
        ck.set(r.enc.crossKey.subarray(lh * s * dk, (lh + 1) * s * dk), dst);
        cv.set(r.enc.crossValue.subarray(lh * s * dk, (lh + 1) * s * dk), dst);
      }
      for (let j = 0; j < S; j++) mask.push(j < s ? 1 : 0);
    });
    const dims = [B, L, H, S, dk];
    const feeds: Record<string, HostTensor> = {
      cross_key: { dtype: 'float32', dims, data: ck },
      cross_value: { dtype: 'float32', dims, data: cv },
      encoder_attention_mask: intTensor(this.table.core.encoder_attention_mask!, mask, [B, S]),
      ...adapterFeeds(this.table, rows.map((r) => r.adapter)),
    };
    this.constant = { encs: rows.map((r) => r.enc), adapters: rows.map((r) => r.adapter), feeds };
    return feeds;
  }

  async step(rows: readonly DecodeRow[]): Promise<StepResult> {
    const { L, H, dk } = this;
    const B = rows.length;
    const P = Math.max(...rows.map((r) => r.pastKey.length));
    const pk = new Float32Array(B * L * H * P * dk);
    const pv = new Float32Array(B * L * H * P * dk);
    const selfMask: number[] = [];
    rows.forEach((r, b) => {
      const len = r.pastKey.length;
      const lead = P - len;
      for (let t = 0; t < len; t++) {
        const kChunk = r.pastKey[t]!;
        const vChunk = r.pastValue[t]!;
        for (let lh = 0; lh < L * H; lh++) {
          const dst = (((b * L * H + lh) * P) + lead + t) * dk;
          pk.set(kChunk.subarray(lh * dk, (lh + 1) * dk), dst);
          pv.set(vChunk.subarray(lh * dk, (lh + 1) * dk), dst);
        }
      }
      for (let j = 0; j < P; j++) selfMask.push(j < lead ? 0 : 1);
      selfMask.push(1);
    });
    const out = await this.session.run(
      {
        input_ids: intTensor(this.table.core.input_ids!, rows.map((r) => r.inputId), [B, 1]),
        self_attention_mask: intTensor(this.table.core.self_attention_mask!, selfMask, [B, P + 1]),
        past_key: { dtype: 'float32', dims: [B, L, H, P, dk], data: pk },
        past_value: { dtype: 'float32', dims: [B, L, H, P, dk], data: pv },
        ...this.constantFeeds(rows),
      },
      ['logits', 'new_key', 'new_value'],
    );
    const logits = out.logits!;
    const nk = out.new_key!.data as Float32Array;
    const nv = out.new_value!.data as Float32Array;
    const chunk = L * H * dk;
    return {
      logits: logits.data as Float32Array,
      vocab: logits.dims[1]!,
      newKey: rows.map((_, b) => nk.subarray(b * chunk, (b + 1) * chunk)),
      newValue: rows.map((_, b) => nv.subarray(b * chunk, (b + 1) * chunk)),
    };
  }
}
