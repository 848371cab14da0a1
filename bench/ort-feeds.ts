/**
 * Realistic feeds for the encoder and decoder graphs, captured from the service's own Encoder and Decoder:
 * each row with its own LoRA adapter from the hypermodel, prompts of about 25 tokens, and the decoder at the
 * step whose past holds `pastLen` tokens. Used by bench/ort-settings.ts to time one graph run in isolation.
 */
import { loadBundle } from '../src/inference/bundle.js';
import { Decoder, type DecodeRow } from '../src/inference/decoder.js';
import { encode } from '../src/inference/encoder.js';
import type { RowAdapter } from '../src/inference/feeds.js';
import { generateAdapters } from '../src/inference/hypermodel.js';
import type { HostTensor } from '../src/inference/onnx.js';
import { EMPTY_CACHE } from '../src/inference/self-cache.js';
import { GraphSession } from '../src/inference/session.js';
import { encoderIds, loadTokenizer, serializeExamples } from '../src/inference/tokenizer.js';

export type Feeds = Record<string, HostTensor>;

/** One graph run's inputs and the outputs the service fetches. */
export interface Case {
  graph: 'encoder' | 'decoder';
  batch: number;
  feeds: Feeds;
  fetches: string[];
  /** Tokens per prompt (encoder) or past tokens (decoder). */
  length: number;
}

const copy = (feeds: Feeds): Feeds =>
  Object.fromEntries(Object.entries(feeds).map(([n, t]) => [n, { dtype: t.dtype, dims: [...t.dims], data: t.data.slice() }]));

type Run = (feeds: Feeds, fetches?: readonly string[]) => Promise<Feeds>;
/** A GraphSession stand-in that records the feeds of every run before passing it on. */
const recording = (session: GraphSession, seen: Feeds[]): GraphSession =>
  ({
    run: (async (feeds, fetches) => {
      seen.push(copy(feeds));
      return session.run(feeds, fetches);
    }) as Run,
  }) as unknown as GraphSession;

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

export async function captureCases(modelDir: string, batches: readonly number[], pastLen: number): Promise<Case[]> {
  const bundle = await loadBundle(modelDir, { verifyHashes: false });
  const m = bundle.manifest;
  const tok = await loadTokenizer(bundle.dir, m);
  const [enc, dec, hyper] = await Promise.all((['encoder', 'decoder', 'hyper_lora'] as const).map((g) => GraphSession.open(bundle, g, 1)));
  const B = Math.max(...batches);
  const tasks = Array.from({ length: B }, (_, i) => [
    { input: `hello world foo ${i}`, output: `hello world foo ${i} hello world foo ${i}` },
    { input: 'abc def', output: 'abc def abc def' },
  ]);
  const ctx = tasks.map((t) => encoderIds(tok, m, serializeExamples(m, t)));
  const adapters: RowAdapter[] = (await generateAdapters(hyper!, bundle.table, m, 'lora', ctx)).map((t) => ({ kind: 'lora', tensors: t }));
  const promptIds = Array.from({ length: B }, (_, i) => encoderIds(tok, m, `Dorothy Vaughan, row ${i}`));
  const cases: Case[] = [];
  for (const batch of batches) {
    const items = promptIds.slice(0, batch).map((ids, b) => ({ ids, adapter: adapters[b]! }));
    const encFeeds: Feeds[] = [];
    const encs = await encode(recording(enc!, encFeeds), bundle.table.graphs.encoder!, m, items);
    cases.push({ graph: 'encoder', batch, feeds: encFeeds[0]!, fetches: ['cross_key', 'cross_value'], length: Math.max(...items.map((i) => i.ids.length)) });

    const decFeeds: Feeds[] = [];
    // `decoder` alone, kind decoders left out: the case times decoder.onnx, so its feeds are that graph's.
    const decoder = new Decoder({ decoder: { session: recording(dec!, decFeeds), table: bundle.table.graphs.decoder! } }, m);
    const rows: DecodeRow[] = encs.map((e, b) => ({ inputId: m.special_ids.decoder_start, past: EMPTY_CACHE, enc: e, adapter: adapters[b]! }));
    // Greedy steps until the past holds pastLen tokens; the last step's feeds are the case.
    for (let s = 0; s <= pastLen; s++) {
      const res = await decoder.step(rows);
      rows.forEach((r, b) => {
        r.past = { slot: b, length: s + 1 };
        r.inputId = argmax(res.logits.subarray(b * res.vocab, (b + 1) * res.vocab));
      });
    }
    const { layers } = bundle.table.graphs.decoder!;
    const fetches = ['logits', ...layers.map((l) => l.newKey), ...layers.map((l) => l.newValue)];
    cases.push({ graph: 'decoder', batch, feeds: decFeeds[pastLen]!, fetches, length: pastLen });
  }
  return cases;
}
