/** Building graph feeds from plain arrays: integer inputs in the dtype the manifest declares, per-row adapter tensors. */
import type { AdapterKindName, IoSpec } from './manifest.js';
import type { HostTensor } from './onnx.js';
import type { AdapterInput, GraphTable } from './tensor-table.js';

/** One adapter: tensor name -> data of the per-adapter shape (no batch dimension). */
export type AdapterTensors = Record<string, Float32Array>;

export interface RowAdapter {
  kind: AdapterKindName;
  tensors: AdapterTensors;
}

export function intTensor(io: IoSpec, data: ArrayLike<number>, dims: number[]): HostTensor {
  if (io.dtype === 'int64') {
    const out = new BigInt64Array(data.length);
    for (let i = 0; i < data.length; i++) out[i] = BigInt(data[i]!);
    return { dtype: 'int64', dims, data: out };
  }
  return { dtype: 'float32', dims, data: Float32Array.from(data) };
}

/**
 * The values an adapter gives one graph input: its tensor whole, or one layer's contiguous slice (a view,
 * not a copy). Throws when the adapter's tensor is missing or of another size (a store bug, not a client error).
 */
export function adapterSlice(adapter: RowAdapter, input: AdapterInput): Float32Array {
  const t = adapter.tensors[input.tensor];
  if (!t || t.length !== input.tensorSize) throw new Error(`adapter tensor ${input.tensor}: expected ${input.tensorSize} values, got ${t?.length ?? 'none'}`);
  return t.subarray(input.offset, input.offset + input.size);
}

/**
 * Every adapter input of a graph, one row per batch row: the row's tensor (or its layer) where it has an
 * adapter of that kind, zeros otherwise (zeros are an exact no-op, models/README.md).
 */
export function adapterFeeds(table: GraphTable, rows: readonly (RowAdapter | null)[]): Record<string, HostTensor> {
  const feeds: Record<string, HostTensor> = {};
  const B = rows.length;
  for (const input of table.adapters) {
    const data = new Float32Array(B * input.size);
    rows.forEach((row, b) => {
      if (row && row.kind === input.kind) data.set(adapterSlice(row, input), b * input.size);
    });
    feeds[input.input] = { dtype: 'float32', dims: [B, ...input.shape], data };
  }
  return feeds;
}

/** Right-pads token id rows into one [B, S] block with a 1/0 mask. */
export function padRight(rows: readonly number[][], pad: number): { ids: number[]; mask: number[]; len: number } {
  const len = Math.max(...rows.map((r) => r.length));
  const ids: number[] = [];
  const mask: number[] = [];
  for (const r of rows) {
    for (let i = 0; i < len; i++) {
      ids.push(i < r.length ? r[i]! : pad);
      mask.push(i < r.length ? 1 : 0);
    }
  }
  return { ids, mask, len };
}
