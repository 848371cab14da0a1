/**
 * The decoder's self-attention cache for a whole batch, kept in the graph's own layout: one
 * [B, num_heads, past_len, d_kv] tensor per decoder layer, left-padded (models/README.md).
 *
 * Each step's past tensors are gathered from the previous step's past tensors and that step's new chunks, row
 * by row (a row continues its own cache, or a beam parent's), with one memmove per (row, head) of each layer
 * into a second preallocated buffer; the two buffers then swap. Nothing is allocated while the capacity
 * suffices. Because the graph puts past_len inside the batch and head dimensions, every step moves each block
 * by one slot: the copy is linear in the cache length, with a memmove's constant, not avoidable without a
 * graph whose cache layout is time-major.
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

/** One layer's past keys and values with the previous step's new chunk of each ([prevB, H, 1, d_kv]). */
interface Layer {
  key: Halves;
  value: Halves;
  newKey: Float32Array;
  newValue: Float32Array;
}

export class SelfCache {
  private readonly layers: Layer[];
  /** The previous step: rows, past_len, each row's cache length before that step. */
  private prevB = 0;
  private prevP = 0;
  private prevLen: number[] = [];
  /** This step, once gathered. */
  private B = 0;
  private P = 0;
  private len: number[] = [];

  constructor(
    layers: number,
    private readonly heads: number,
    private readonly dk: number,
  ) {
    this.layers = Array.from({ length: layers }, () => ({ key: new Halves(), value: new Halves(), newKey: new Float32Array(0), newValue: new Float32Array(0) }));
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
   * Lays out this step's past keys and values, per layer, from the previous step's. Throws when a row points at
   * a row the previous step did not have, or claims a length its cache does not have (a loop bug, not a client
   * error); then nothing has moved.
   */
  gather(refs: readonly CacheRef[]): { key: Float32Array[]; value: Float32Array[] } {
    const { heads, dk } = this;
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
    const size = B * heads * P * dk;
    const keep = this.prevB * heads * this.prevP * dk;
    const key: Float32Array[] = [];
    const value: Float32Array[] = [];
    for (const layer of this.layers) {
      layer.key.reserve(size, keep);
      layer.value.reserve(size, keep);
      key.push(this.fill(layer.key, refs, len, P, layer.newKey));
      value.push(this.fill(layer.value, refs, len, P, layer.newValue));
    }
    this.B = B;
    this.P = P;
    this.len = len;
    return { key, value };
  }

  private fill(h: Halves, refs: readonly CacheRef[], len: readonly number[], P: number, fresh: Float32Array): Float32Array {
    const { heads, dk } = this;
    const src = h.cur * h.half;
    const dst = (1 - h.cur) * h.half;
    const buf = h.buf;
    const prevP = this.prevP;
    for (let b = 0; b < refs.length; b++) {
      const n = len[b]!;
      const i = refs[b]!.slot;
      const old = n - 1;
      for (let j = 0; j < heads; j++) {
        const block = dst + (b * heads + j) * P * dk;
        // Padding slots must read as zeros, as a freshly allocated tensor would (the mask hides them anyway).
        if (P > n) buf.fill(0, block, block + (P - n) * dk);
        if (n === 0) continue;
        const from = src + ((i * heads + j) * prevP + prevP - old) * dk;
        const to = block + (P - n) * dk;
        if (old > 0) buf.copyWithin(to, from, from + old * dk);
        const chunk = (i * heads + j) * dk;
        for (let d = 0; d < dk; d++) buf[to + old * dk + d] = fresh[chunk + d]!;
      }
    }
    return buf.subarray(dst, dst + refs.length * heads * P * dk);
  }

  /** Takes in the step's outputs, per layer ([B, H, 1, d_kv] each): the next gather appends them. */
  commit(newKey: readonly Float32Array[], newValue: readonly Float32Array[]): void {
    if (newKey.length !== this.layers.length || newValue.length !== this.layers.length) {
      throw new Error(`cache of ${this.layers.length} layers given ${newKey.length} new keys and ${newValue.length} new values`);
    }
    // Only now does the gathered half become the previous step's: a failed run leaves the cache as it was.
    this.layers.forEach((layer, l) => {
      layer.key.cur = 1 - layer.key.cur;
      layer.value.cur = 1 - layer.value.cur;
      layer.newKey = newKey[l]!;
      layer.newValue = newValue[l]!;
    });
    this.prevB = this.B;
    this.prevP = this.P;
    this.prevLen = this.len;
  }
}
