/**
 * The decoder keeps its per-layer cache and feed buffers across steps; whatever the batch does (rows leave,
 * join, beams fork and reorder, prompts of other lengths, adapters of either kind or none, runs that fail,
 * steps that switch between `decoder` and the kind decoders), every feed it gives the graph equals, value for
 * value, the feed rebuilt from scratch from each row's own cache chunks, and each step runs on the graph
 * models/README.md allows: a kind decoder when every row's adapter is of its kind or absent.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mulberry32 } from '../src/generation/sampler.js';
import { Decoder, decoderGraphs, type DecodeRow } from '../src/inference/decoder.js';
import type { EncodedInput } from '../src/inference/encoder.js';
import { adapterFeeds, intTensor, type RowAdapter } from '../src/inference/feeds.js';
import { kindDecoderName, type AdapterKindName, type DecoderGraphName } from '../src/inference/manifest.js';
import type { HostTensor } from '../src/inference/onnx.js';
import type { GraphSession } from '../src/inference/session.js';
import { EMPTY_CACHE, type CacheRef } from '../src/inference/self-cache.js';
import { buildTensorTable, type DecoderTable, type TensorTable } from '../src/inference/tensor-table.js';
import { layeredManifest, type LayeredManifest } from './fakes/layered-manifest.js';

/** A row as the straightforward decoder saw it: its cache as one chunk per earlier step, each [L, H, d_kv]. */
interface RefRow {
  inputId: number;
  keys: Float32Array[];
  values: Float32Array[];
  cache: CacheRef;
  enc: EncodedInput;
  adapter: RowAdapter | null;
}

/** The feeds rebuilt from scratch: every row's chunks copied into fresh left-padded tensors, one per layer. */
function rebuilt(manifest: LayeredManifest, table: DecoderTable, rows: readonly RefRow[]): Record<string, HostTensor> {
  const d = manifest.dims;
  const [L, H, dk] = [d.num_decoder_layers, d.num_heads, d.d_kv];
  const B = rows.length;
  const P = Math.max(...rows.map((r) => r.keys.length));
  const S = Math.max(...rows.map((r) => r.enc.srcLen));
  const selfMask: number[] = [];
  const encMask: number[] = [];
  rows.forEach((r) => {
    for (let j = 0; j <= P; j++) selfMask.push(j < P - r.keys.length ? 0 : 1);
    for (let j = 0; j < S; j++) encMask.push(j < r.enc.srcLen ? 1 : 0);
  });
  const feeds: Record<string, HostTensor> = {
    input_ids: intTensor(table.core.input_ids!, rows.map((r) => r.inputId), [B, 1]),
    self_attention_mask: intTensor(table.core.self_attention_mask!, selfMask, [B, P + 1]),
    encoder_attention_mask: intTensor(table.core.encoder_attention_mask!, encMask, [B, S]),
    ...adapterFeeds(table, rows.map((r) => r.adapter)),
  };
  for (let l = 0; l < L; l++) {
    const pk = new Float32Array(B * H * P * dk);
    const pv = new Float32Array(B * H * P * dk);
    const ck = new Float32Array(B * H * S * dk);
    const cv = new Float32Array(B * H * S * dk);
    rows.forEach((r, b) => {
      const lead = P - r.keys.length;
      const s = r.enc.srcLen;
      for (let h = 0; h < H; h++) {
        const lh = l * H + h;
        r.keys.forEach((chunk, t) => {
          pk.set(chunk.subarray(lh * dk, (lh + 1) * dk), ((b * H + h) * P + lead + t) * dk);
          pv.set(r.values[t]!.subarray(lh * dk, (lh + 1) * dk), ((b * H + h) * P + lead + t) * dk);
        });
        ck.set(r.enc.crossKey.subarray(lh * s * dk, (lh + 1) * s * dk), (b * H + h) * S * dk);
        cv.set(r.enc.crossValue.subarray(lh * s * dk, (lh + 1) * s * dk), (b * H + h) * S * dk);
      }
    });
    const layer = table.layers[l]!;
    feeds[layer.pastKey] = { dtype: 'float32', dims: [B, H, P, dk], data: pk };
    feeds[layer.pastValue] = { dtype: 'float32', dims: [B, H, P, dk], data: pv };
    feeds[layer.crossKey] = { dtype: 'float32', dims: [B, H, S, dk], data: ck };
    feeds[layer.crossValue] = { dtype: 'float32', dims: [B, H, S, dk], data: cv };
  }
  return feeds;
}

/** One run of a fake decoder graph: which graph, and a copy of its feeds (the decoder reuses its buffers). */
interface Run {
  graph: DecoderGraphName;
  feeds: Record<string, HostTensor>;
}

/**
 * A fake session for each decoder graph of `table`, recording every run into `runs`; a run fails while `fail()`
 * says so, else answers zero logits and `newKV(B)`'s keys and values.
 */
function fakeSessions(
  table: TensorTable,
  runs: Run[],
  newKV: (B: number) => { key: Float32Array[]; value: Float32Array[] },
  fail: () => boolean = () => false,
): Partial<Record<DecoderGraphName, GraphSession>> {
  const sessions: Partial<Record<DecoderGraphName, GraphSession>> = {};
  for (const graph of ['decoder', 'decoder_lora', 'decoder_prefix'] as const) {
    const dec = table.graphs[graph];
    if (!dec) continue;
    sessions[graph] = {
      run: async (feeds: Record<string, HostTensor>, fetches: readonly string[]) => {
        runs.push({ graph, feeds: Object.fromEntries(Object.entries(feeds).map(([n, t]) => [n, { ...t, dims: [...t.dims], data: t.data.slice() }])) });
        if (fail()) throw new Error('run failed');
        const B = feeds.input_ids!.dims[0]!;
        const out = newKV(B);
        const [H, dk] = [dec.core['past_key.0']!.shape[1] as number, dec.core['past_key.0']!.shape[3] as number];
        const result: Record<string, HostTensor> = { logits: { dtype: 'float32', dims: [B, 4], data: new Float32Array(B * 4) } };
        dec.layers.forEach((layer, l) => {
          result[layer.newKey] = { dtype: 'float32', dims: [B, H, 1, dk], data: out.key[l]! };
          result[layer.newValue] = { dtype: 'float32', dims: [B, H, 1, dk], data: out.value[l]! };
        });
        assert.deepEqual([...fetches].sort(), Object.keys(result).sort());
        return result;
      },
    } as unknown as GraphSession;
  }
  return sessions;
}

/** The graph models/README.md allows for these rows: the kind decoder of the one kind in use, if the bundle has it. */
function allowedGraph(table: TensorTable, adapters: readonly (RowAdapter | null)[]): DecoderGraphName {
  const used = new Set(adapters.flatMap((a) => (a ? [a.kind] : [])));
  if (used.size > 1) return 'decoder';
  // No adapter at all: any kind decoder computes the same; lora's is taken first.
  const candidates: AdapterKindName[] = used.size === 1 ? [...used] : ['lora', 'prefix'];
  return candidates.map(kindDecoderName).find((g) => table.graphs[g]) ?? 'decoder';
}

/** The adapter pools a walk draws new rows from, in phases, so that its batches are now of one kind, now mixed. */
const POOLS = ['all', 'lora', 'prefix', 'none'] as const;

describe('decoder feeds', () => {
  const variants: { name: string; kindDecoders: AdapterKindName[] }[] = [
    { name: 'decoder only', kindDecoders: [] },
    { name: 'both kind decoders', kindDecoders: ['lora', 'prefix'] },
    { name: 'decoder_prefix only', kindDecoders: ['prefix'] },
  ];
  for (const { name, kindDecoders } of variants) for (const seed of [1, 2, 3, 4, 5, 6]) {
    it(`equal the feeds rebuilt from each row's chunks, step after step (${name}, seed ${seed})`, async () => {
      const manifest = layeredManifest(kindDecoders);
      const table = buildTensorTable(manifest, ['lora', 'prefix']);
      const rand = mulberry32(seed);
      const d = manifest.dims;
      const [L, H, dk] = [d.num_decoder_layers, d.num_heads, d.d_kv];
      const noise = (n: number) => Float32Array.from({ length: n }, () => rand() * 2 - 1);
      const encs: EncodedInput[] = [3, 7, 5, 12].map((s) => ({ srcLen: s, crossKey: noise(L * H * s * dk), crossValue: noise(L * H * s * dk) }));
      const kinds = manifest.adapters.kinds;
      const adapters: Record<(typeof POOLS)[number], (RowAdapter | null)[]> = { all: [null], lora: [null], prefix: [null], none: [null] };
      for (const kind of ['lora', 'prefix'] as const) {
        for (let i = 0; i < 2; i++) {
          const adapter: RowAdapter = { kind, tensors: Object.fromEntries(kinds[kind]!.tensors.map((t) => [t.name, noise(t.shape.reduce((a, b) => a * b, 1))])) };
          adapters.all.push(adapter);
          adapters[kind].push(adapter);
        }
      }
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

      const runs: Run[] = [];
      /** This run's new keys and values, one [B, H, 1, d_kv] array per layer. */
      let out: { key: Float32Array[]; value: Float32Array[] } = { key: [], value: [] };
      let fail = false;
      const newKV = (B: number) => (out = { key: Array.from({ length: L }, () => noise(B * H * dk)), value: Array.from({ length: L }, () => noise(B * H * dk)) });
      const decoder = new Decoder(decoderGraphs(table.graphs, fakeSessions(table, runs, newKV, () => fail)), manifest);

      let pool: (typeof POOLS)[number] = 'all';
      const fresh = (): RefRow => ({ inputId: 0, keys: [], values: [], cache: EMPTY_CACHE, enc: pick(encs), adapter: pick(adapters[pool]) });
      let rows: RefRow[] = [fresh(), fresh()];
      let sawFork = false;
      let sawLeave = false;
      let sawFail = false;
      const graphsRun = new Set<DecoderGraphName>();
      /** A step on `decoder` after one on a kind decoder: buffers the kind decoder did not feed are fed again. */
      let sawReturn = false;
      for (let step = 0; step < 60; step++) {
        fail = step > 0 && rand() < 0.15;
        const stepped = decoder.step(rows.map((r): DecodeRow => ({ inputId: r.inputId, past: r.cache, enc: r.enc, adapter: r.adapter })));
        const graph = allowedGraph(table, rows.map((r) => r.adapter));
        const want = rebuilt(manifest, table.graphs[graph]!, rows);
        if (fail) await assert.rejects(stepped, /run failed/);
        else await stepped;
        const run = runs.at(-1)!;
        assert.equal(run.graph, graph, `step ${step}: the graph`);
        if (graph === 'decoder' && runs.at(-2) && runs.at(-2)!.graph !== 'decoder') sawReturn = true;
        graphsRun.add(graph);
        const fed = run.feeds;
        assert.deepEqual(Object.keys(fed).sort(), Object.keys(want).sort());
        for (const [name, t] of Object.entries(want)) {
          assert.deepEqual(fed[name]!.dims, t.dims, `step ${step}: ${name} dims`);
          assert.deepEqual(fed[name]!.data, t.data, `step ${step}: ${name} values`);
        }
        // A failed run leaves the cache as it was: the same rows step again from the same caches.
        if (fail) {
          sawFail = true;
          continue;
        }
        // Each row's cache grows by this step's chunk ([L, H, d_kv]), at its index in this step.
        const chunk = (per: Float32Array[], b: number) => {
          const c = new Float32Array(L * H * dk);
          per.forEach((layer, l) => c.set(layer.subarray(b * H * dk, (b + 1) * H * dk), l * H * dk));
          return c;
        };
        rows.forEach((r, b) => {
          r.keys = [...r.keys, chunk(out.key, b)];
          r.values = [...r.values, chunk(out.value, b)];
          r.cache = { slot: b, length: r.cache.length + 1 };
          r.inputId = 3 + Math.floor(rand() * 50);
        });
        // The next batch: rows finish, beams fork (children share a parent's cache) and reorder, jobs join.
        const next: RefRow[] = [];
        for (const r of rows) {
          const u = rand();
          if (u < 0.15 && rows.length > 1) sawLeave = true;
          else if (u < 0.3 && rows.length < 10) {
            sawFork = true;
            next.push({ ...r }, { ...r, inputId: r.inputId + 1 });
          } else next.push(r);
        }
        if (rand() < 0.2) next.reverse();
        if (rand() < 0.2) pool = pick(POOLS);
        while (rand() < 0.25 && next.length < 12) next.push(fresh());
        rows = next.length ? next : [fresh()];
      }
      assert.ok(sawFork && sawLeave && sawFail, 'the walk forked beams, dropped rows and failed runs');
      const present: DecoderGraphName[] = ['decoder', ...kindDecoders.map(kindDecoderName)];
      assert.deepEqual([...graphsRun].sort(), present.sort(), 'the walk ran every graph there is');
      if (kindDecoders.length) assert.ok(sawReturn, 'the walk went back to decoder after a kind decoder');
    });
  }

  it('refuses a row whose cache length disagrees with the slot it points at', async () => {
    const manifest = layeredManifest();
    const table = buildTensorTable(manifest, ['lora', 'prefix']);
    const session = { run: async () => ({}) } as unknown as GraphSession;
    const decoder = new Decoder({ decoder: { session, table: table.graphs.decoder! } }, manifest);
    const enc: EncodedInput = { srcLen: 1, crossKey: new Float32Array(64), crossValue: new Float32Array(64) };
    await assert.rejects(decoder.step([{ inputId: 0, past: { slot: 0, length: 1 }, enc, adapter: null }]), /cache slot 0 not in the previous step's 0 rows/);
  });
});

describe('decoder graph choice', () => {
  const kinds = layeredManifest().adapters.kinds;
  const adapterOf = (kind: AdapterKindName): RowAdapter => ({
    kind,
    tensors: Object.fromEntries(kinds[kind]!.tensors.map((t) => [t.name, new Float32Array(t.shape.reduce((a, b) => a * b, 1)).fill(1)])),
  });
  const cases: { has: AdapterKindName[]; rows: (AdapterKindName | null)[]; runs: DecoderGraphName }[] = [
    { has: ['lora', 'prefix'], rows: ['lora', null, 'lora'], runs: 'decoder_lora' },
    { has: ['lora', 'prefix'], rows: ['lora', 'prefix'], runs: 'decoder' },
    { has: ['lora', 'prefix'], rows: [null, 'prefix', 'prefix'], runs: 'decoder_prefix' },
    { has: ['lora', 'prefix'], rows: [null, null], runs: 'decoder_lora' },
    { has: ['prefix'], rows: ['lora'], runs: 'decoder' },
    { has: ['prefix'], rows: [null], runs: 'decoder_prefix' },
    { has: ['lora'], rows: ['prefix', null], runs: 'decoder' },
    { has: [], rows: [null], runs: 'decoder' },
    { has: [], rows: ['lora'], runs: 'decoder' },
  ];
  for (const c of cases) {
    it(`rows ${JSON.stringify(c.rows)} with kind decoders ${JSON.stringify(c.has)} run on ${c.runs}, fed its inputs only`, async () => {
      const manifest = layeredManifest(c.has);
      const table = buildTensorTable(manifest, ['lora', 'prefix']);
      const { num_decoder_layers: L, num_heads: H, d_kv: dk } = manifest.dims;
      const runs: Run[] = [];
      const zeros = (B: number) => ({ key: Array.from({ length: L }, () => new Float32Array(B * H * dk)), value: Array.from({ length: L }, () => new Float32Array(B * H * dk)) });
      const decoder = new Decoder(decoderGraphs(table.graphs, fakeSessions(table, runs, zeros)), manifest);
      const enc: EncodedInput = { srcLen: 2, crossKey: new Float32Array(L * H * 2 * dk), crossValue: new Float32Array(L * H * 2 * dk) };
      await decoder.step(c.rows.map((k) => ({ inputId: 0, past: EMPTY_CACHE, enc, adapter: k ? adapterOf(k) : null })));
      assert.deepEqual(runs.map((r) => r.graph), [c.runs]);
      const adapterInputs = Object.keys(runs[0]!.feeds).filter((n) => n.startsWith('lora.') || n.startsWith('prefix.'));
      assert.deepEqual(adapterInputs.sort(), table.graphs[c.runs]!.adapters.map((a) => a.input).sort());
    });
  }
});
