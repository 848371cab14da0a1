/**
 * The batch refinement trains on (models/README.md, "Refinement graphs"), built as the Python reference builds
 * it (training/hypert5/refine.py: augment_pairs, encode_batch): sources and targets with eos appended,
 * truncated to the encoder and generation limits (each counting the eos), right-padded with `pad`.
 */
import { padRight } from './feeds.js';
import type { Manifest, RefineAugment } from './manifest.js';
import { serializeExamples, type TextTokenizer } from './tokenizer.js';
import type { RefineBatch } from './train-step.js';

type Example = { input: string; output: string };

/**
 * The (source, target) rows: the demonstrations, then with leave-one-out and k > 1, for each demonstration
 * the others serialized as the hypermodel reads them followed by it as the query, its output the target.
 */
function refinePairs(manifest: Manifest, examples: readonly Example[], augment: RefineAugment): [string, string][] {
  const rows: [string, string][] = examples.map((e) => [e.input, e.output]);
  if (augment === 'leave-one-out' && examples.length > 1) {
    const h = manifest.hyper_input;
    examples.forEach((e, i) => {
      const others = examples.filter((_, j) => j !== i);
      rows.push([serializeExamples(manifest, others) + h.example_separator + h.input_prefix + e.input + h.output_prefix, e.output]);
    });
  }
  return rows;
}

export function refineBatch(manifest: Manifest, tok: TextTokenizer, examples: readonly Example[], augment: RefineAugment): RefineBatch {
  const { eos, pad } = manifest.special_ids;
  const ids = (text: string, max: number) => [...tok.encode(text).slice(0, max - 1), eos];
  const pairs = refinePairs(manifest, examples, augment);
  const src = padRight(pairs.map(([x]) => ids(x, manifest.encoder_input.max_tokens)), pad);
  const tgt = padRight(pairs.map(([, y]) => ids(y, manifest.generation.max_new_tokens)), pad);
  return { rows: pairs.length, srcLen: src.len, tgtLen: tgt.len, inputIds: src.ids, attentionMask: src.mask, targetIds: tgt.ids, targetMask: tgt.mask };
}
