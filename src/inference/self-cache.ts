/**
 * The decoder's self-attention cache for a whole batch, kept in the graph's own layout
 * [B, num_decoder_layers, num_heads, past_len, d_kv], left-padded (models/README.md).
 *
 * Each step's past tensor is gathered from the previous step's past tensor and that step's new chunks, row by
 * row (a row continues its own cache, or a beam parent's), with one memmove per (row, layer × head) into a
 * second preallocated buffer; the two buffers then swap. Nothing is allocated while the capacity suffices.
 * Because the graph puts past_len inside the batch and head dimensions, every step moves each block by one
 * slot: the copy is linear in the cache length, with a memmove's constant, not avoidable without a graph
 * whose cache layout is time-major.
 */

/** Where a row's cache is: its index among the previous step's rows (-1: none yet) and how many steps it holds. */
export interface CacheRef {
  readonly slot: number;
  readonly length: number;
}

export const EMPTY_CACHE: CacheRef = { slot: -1, length: 0 };

/** Past keys (or values): two halves of one buffer, so gathering one from the other is a copyWithin. */
class Halves {
  buf = new Float32Array(0);
  half = 0;
  /** Which half holds the previous step's past (the other receives this step's). */
  cur = 0;

  /** Grows to `need` floats per half, keeping the current half's first `keep` floats. */
  reserve(need: number, keep: number): void {
    if (need <= this.half) return;
    const half = Math.max(need, this.half * 2);
    const next = new Float32Array(2 * half);
    next.set(this.buf.subarray(this.cur * this.half, this.cur * this.half + keep), this.cur * half);
    this.buf = next;
    this.half = half;
  }
}

export class SelfCache {
  private readonly lh: number;
  private readonly key = new Halves();
  private readonly value = new Halves();
  /** The previous step: rows, past_len, each row's cache length before that step. */
  private prevB = 0;
  private prevP = 0;
  private prevLen: number[] = [];
  /** The previous step's new_key / new_value, copied in: [prevB, L, H, 1, d_kv]. */
  private newKey: Float32Array = new Float32Array(0);
  private newValue: Float32Array = new Float32Array(0);
  /** This step, once gathered. */
  private B = 0;
  private P = 0;
  private len: number[] = [];

  constructor(
    layersTimesHeads: number,
    private readonly dk: number,
  ) {
    this.lh = layersTimesHeads;
  }

  /** past_len of the step being gathered. */
  get pastLen(): number {
    return this.P;
  }

  /** Each row's cache length this step (its leading P - length slots are padding). */
  get lengths(): readonly number[] {
    return this.len;
  }

  /**
   * Lays out this step's past keys and values from the previous step's. Throws when a row points at a row the
   * previous step did not have, or claims a length its cache does not have (a loop bug, not a client error).
   */
  gather(refs: readonly CacheRef[]): { key: Float32Array; value: Float32Array } {
    const { lh, dk } = this;
    const B = refs.length;
    let P = 0;
    const len = refs.map((r, b) => {
      if (r.slot < 0) {
        if (r.length !== 0) throw new Error(`row ${b}: cache of length ${r.length} with no slot`);
        return 0;
      }
      if (r.slot >= this.prevB) throw new Error(`row ${b}: cache slot ${r.slot} not in the previous step's ${this.prevB} rows`);
      const n = this.prevLen[r.slot]! + 1;
      if (n !== r.length) throw new Error(`row ${b}: cache length ${r.length}, but slot ${r.slot} holds ${n}`);
      if (n > P) P = n;
      return n;
    });
    const size = B * lh * P * dk;
    const keep = this.prevB * lh * this.prevP * dk;
    this.key.reserve(size, keep);
    this.value.reserve(size, keep);
    const key = this.fill(this.key, refs, len, P, this.newKey);
    const value = this.fill(this.value, refs, len, P, this.newValue);
    this.B = B;
    this.P = P;
    this.len = len;
    return { key, value };
  }

  private fill(h: Halves, refs: readonly CacheRef[], len: readonly number[], P: number, fresh: Float32Array): Float32Array {
    const { lh, dk } = this;
    const src = h.cur * h.half;
    const dst = (1 - h.cur) * h.half;
    const buf = h.buf;
    const prevP = this.prevP;
    for (let b = 0; b < refs.length; b++) {
      const n = len[b]!;
      const i = refs[b]!.slot;
      const old = n - 1;
      for (let j = 0; j < lh; j++) {
        const block = dst + (b * lh + j) * P * dk;
        // Padding slots must read as zeros, as a freshly allocated tensor would (the mask hides them anyway).
        if (P > n) buf.fill(0, block, block + (P - n) * dk);
        if (n === 0) continue;
        const from = src + ((i * lh + j) * prevP + prevP - old) * dk;
        const to = block + (P - n) * dk;
        if (old > 0) buf.copyWithin(to, from, from + old * dk);
        const chunk = (i * lh + j) * dk;
        for (let d = 0; d < dk; d++) buf[to + old * dk + d] = fresh[chunk + d]!;
      }
    }
    return buf.subarray(dst, dst + refs.length * lh * P * dk);
  }

  /** Takes in the step's outputs ([B, L, H, 1, d_kv]): the next gather appends them. */
  commit(newKey: Float32Array, newValue: Float32Array): void {
    // Only now does the gathered half become the previous step's: a failed run leaves the cache as it was.
    this.key.cur = 1 - this.key.cur;
    this.value.cur = 1 - this.value.cur;
    this.newKey = newKey;
    this.newValue = newValue;
    this.prevB = this.B;
    this.prevP = this.P;
    this.prevLen = this.len;
  }
}
