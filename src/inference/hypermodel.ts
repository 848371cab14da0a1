/** The hypermodel: few-shot examples (already serialized and tokenized) -> one adapter per row. */
import { intTensor, padRight, type AdapterTensors } from './feeds.js';
import type { AdapterKindName, Manifest } from './manifest.js';
import type { GraphSession } from './session.js';
import type { TensorTable } from './tensor-table.js';
import { numel } from './tensor-table.js';

export async function generateAdapters(
  session: GraphSession,
  table: TensorTable,
  manifest: Manifest,
  kind: AdapterKindName,
  contexts: readonly number[][],
): Promise<AdapterTensors[]> {
  const g = table.graphs[`hyper_${kind}`]!;
  const B = contexts.length;
  const { ids, mask, len } = padRight(contexts, manifest.special_ids.pad);
  const specs = table.kinds[kind]!;
  const out = await session.run(
    {
      input_ids: intTensor(g.core.input_ids!, ids, [B, len]),
      attention_mask: intTensor(g.core.attention_mask!, mask, [B, len]),
    },
    specs.map((s) => s.name),
  );
  const result: AdapterTensors[] = contexts.map(() => ({}));
  for (const spec of specs) {
    const t = out[spec.name]!;
    const size = numel(spec.shape);
    if (t.data.length !== B * size) throw new Error(`hyper_${kind}: output ${spec.name} has dims [${t.dims.join(',')}], expected [${B},${spec.shape.join(',')}]`);
    for (let b = 0; b < B; b++) result[b]![spec.name] = (t.data as Float32Array).slice(b * size, (b + 1) * size);
  }
  return result;
}
