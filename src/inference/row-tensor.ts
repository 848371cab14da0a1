/**
 * A batch tensor reused across decode steps whose rows are refilled only where the row at an index changed:
 * cross-attention keys/values, the encoder mask and adapter tensors change only with batch membership, and
 * then only at the indices that now hold another job's row.
 */

type Typed = Float32Array | BigInt64Array;

export class RowTensor<T extends Typed> {
  private buf: T;
  /** The last [B, rowSize] view handed out: the same object while the size holds, so that the session can
   * reuse the runtime tensor it made for it (onnx.ts). */
  private view: T;
  /** What each row index holds now (undefined: unknown, refill). */
  private held: unknown[] = [];
  private rowSize = -1;

  constructor(private readonly make: (n: number) => T) {
    this.buf = make(0);
    this.view = this.buf;
  }

  /**
   * The [B, rowSize] view, row b filled by `fill(dst, b)` unless it already holds `keys[b]`.
   * A changed row size refills every row (the layout moved).
   */
  rows(keys: readonly unknown[], rowSize: number, fill: (dst: T, b: number) => void): T {
    const B = keys.length;
    if (rowSize !== this.rowSize) {
      this.held = [];
      this.rowSize = rowSize;
    }
    if (B * rowSize > this.buf.length) {
      this.buf = this.make(Math.max(B * rowSize, 2 * this.buf.length));
      this.held = [];
    }
    for (let b = 0; b < B; b++) {
      if (this.held[b] === keys[b] && keys[b] !== undefined) continue;
      fill(this.buf.subarray(b * rowSize, (b + 1) * rowSize) as T, b);
      this.held[b] = keys[b];
    }
    if (this.view.buffer !== this.buf.buffer || this.view.length !== B * rowSize) this.view = this.buf.subarray(0, B * rowSize) as T;
    return this.view;
  }
}
