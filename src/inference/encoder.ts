/** The frozen T5 encoder: run once per input; its outputs are the decoder's cross-attention keys/values. */
import { adapterFeeds, intTensor, padRight, type RowAdapter } from './feeds.js';
import type { Manifest } from './manifest.js';
import type { GraphSession } from './session.js';
import type { GraphTable } from './tensor-table.js';

/** One input's cross-attention keys/values, [num_decoder_layers, num_heads, srcLen, d_kv], padding dropped. */
export interface EncodedInput {
  crossKey: Float32Array;
  crossValue: Float32Array;
  srcLen: number;
}

export interface EncodeItem {
  ids: number[];
  adapter: RowAdapter | null;
}

export async function encode(
  session: GraphSession,
  table: GraphTable,
  manifest: Manifest,
  items: readonly EncodeItem[],
): Promise<EncodedInput[]> {
  const B = items.length;
  const { ids, mask, len } = padRight(items.map((i) => i.ids), manifest.special_ids.pad);
  const out = await session.run(
    {
      input_ids: intTensor(table.core.input_ids!, ids, [B, len]),
      attention_mask: intTensor(table.core.attention_mask!, mask, [B, len]),
      ...adapterFeeds(table, items.map((i) => i.adapter)),
    },
    ['cross_key', 'cross_value'],
  );
  const ck = out.cross_key!;
  const cv = out.cross_value!;
  const [, L, H, S, dk] = ck.dims as [number, number, number, number, number];
  const slice = (src: Float32Array, b: number, srcLen: number): Float32Array => {
    const dst = new Float32Array(L * H * srcLen * dk);
    for (let lh = 0; lh < L * H; lh++) {
      const from = ((b * L * H + lh) * S) * dk;
      dst.set(src.subarray(from, from + srcLen * dk), lh * srcLen * dk);
    }
    return dst;
  };
  return items.map((item, b) => ({
    crossKey: slice(ck.data as Float32Array, b, item.ids.length),
    crossValue: slice(cv.data as Float32Array, b, item.ids.length),
    srcLen: item.ids.length,
  }));
}
