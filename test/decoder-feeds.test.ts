/**
 * The decoder keeps its cache and feed buffers across steps; whatever the batch does (rows leave, join,
 * beams fork and reorder, prompts of other lengths, adapters of either kind or none), every feed it gives the
 * graph equals, value for value, the feed rebuilt from scratch from each row's own cache chunks.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { mulberry32 } from '../src/generation/sampler.js';
import { loadBundle, type Bundle } from '../src/inference/bundle.js';
import { Decoder, type DecodeRow } from '../src/inference/decoder.js';
import type { EncodedInput } from '../src/inference/encoder.js';
import { adapterFeeds, intTensor, type RowAdapter } from '../src/inference/feeds.js';
import type { HostTensor } from '../src/inference/onnx.js';
import type { GraphSession } from '../src/inference/session.js';
import { EMPTY_CACHE, type CacheRef } from '../src/inference/self-cache.js';
import { FIXTURE } from './helper.js';

/** A row as the straightforward decoder saw it: its cache as one chunk per earlier step. */
interface RefRow {
  inputId: number;
  keys: Float32Array[];
  values: Float32Array[];
  cache: CacheRef;
  enc: EncodedInput;
  adapter: RowAdapter | null;
}

/** The feeds rebuilt from scratch: every row's chunks copied into a fresh left-padded tensor. */
function rebuilt(bundle: Bundle, rows: readonly RefRow[]): Record<string, HostTensor> {
  const d = bundle.manifest.dims;
  const [L, H, dk] = [d.num_decoder_layers, d.num_heads, d.d_kv];
  const table = bundle.table.graphs.decoder!;
  const B = rows.length;
  const P = Math.max(...rows.map((r) => r.keys.length));
  const S = Math.max(...rows.map((r) => r.enc.srcLen));
  const pk = new Float32Array(B * L * H * P * dk);
  const pv = new Float32Array(B * L * H * P * dk);
  const ck = new Float32Array(B * L * H * S * dk);
  const cv = new Float32Array(B * L * H * S * dk);
  const selfMask: number[] = [];
  const encMask: number[] = [];
  rows.forEach((r, b) => {
    const lead = P - r.keys.length;
    r.keys.forEach((chunk, t) => {
      for (let lh = 0; lh < L * H; lh++) {
        pk.set(chunk.subarray(lh * dk, (lh + 1) * dk), ((b * L * H + lh) * P + lead + t) * dk);
        pv.set(r.values[t]!.subarray(lh * dk, (lh + 1) * dk), ((b * L * H + lh) * P + lead + t) * dk);
      }
    });
    for (let j = 0; j <= P; j++) selfMask.push(j < lead ? 0 : 1);
    const s = r.enc.srcLen;
    for (let lh = 0; lh < L * H; lh++) {
      ck.set(r.enc.crossKey.subarray(lh * s * dk, (lh + 1) * s * dk), (b * L * H + lh) * S * dk);
      cv.set(r.enc.crossValue.subarray(lh * s * dk, (lh + 1) * s * dk), (b * L * H + lh) * S * dk);
    }
    for (let j = 0; j < S; j++) encMask.push(j < s ? 1 : 0);
  });
  return {
    input_ids: intTensor(table.core.input_ids!, rows.map((r) => r.inputId), [B, 1]),
    self_attention_mask: intTensor(table.core.self_attention_mask!, selfMask, [B, P + 1]),
    past_key: { dtype: 'float32', dims: [B, L, H, P, dk], data: pk },
    past_value: { dtype: 'float32', dims: [B, L, H, P, dk], data: pv },
    cross_key: { dtype: 'float32', dims: [B, L, H, S, dk], data: ck },
    cross_value: { dtype: 'float32', dims: [B, L, H, S, dk], data: cv },
    encoder_attention_mask: intTensor(table.core.encoder_attention_mask!, encMask, [B, S]),
    ...adapterFeeds(table, rows.map((r) => r.adapter)),
  };
}

describe('decoder feeds', () => {
  let bundle: Bundle;
  before(async () => {
    bundle = await loadBundle(FIXTURE);
  });

  for (const seed of [1, 2, 3, 4, 5, 6]) {
    it(`equal the feeds rebuilt from each row's chunks, step after step (seed ${seed})`, async () => {
      const rand = mulberry32(seed);
      const d = bundle.manifest.dims;
      const [L, H, dk] = [d.num_decoder_layers, d.num_heads, d.d_kv];
      const noise = (n: number) => Float32Array.from({ length: n }, () => rand() * 2 - 1);
      const encs: EncodedInput[] = [3, 7, 5, 12].map((s) => ({ srcLen: s, crossKey: noise(L * H * s * dk), crossValue: noise(L * H * s * dk) }));
      const kinds = bundle.manifest.adapters.kinds;
      const adapters: (RowAdapter | null)[] = [null];
      for (const kind of ['lora', 'prefix'] as const) {
        for (let i = 0; i < 2; i++) adapters.push({ kind, tensors: Object.fromEntries(kinds[kind]!.tensors.map((t) => [t.name, noise(t.shape.reduce((a, b) => a * b, 1))])) });
      }
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

      let fed: Record<string, HostTensor> = {};
      let out: { key: Float32Array; value: Float32Array } = { key: new Float32Array(0), value: new Float32Array(0) };
      const session = {
        run: async (feeds: Record<string, HostTensor>) => {
          // The decoder reuses its buffers: keep a copy of what this run was given.
          fed = Object.fromEntries(Object.entries(feeds).map(([n, t]) => [n, { ...t, dims: [...t.dims], data: t.data.slice() }]));
          const B = feeds.input_ids!.dims[0]!;
          out = { key: noise(B * L * H * dk), value: noise(B * L * H * dk) };
          return {
            logits: { dtype: 'float32', dims: [B, 4], data: new Float32Array(B * 4) },
            new_key: { dtype: 'float32', dims: [B, L, H, 1, dk], data: out.key },
            new_value: { dtype: 'float32', dims: [B, L, H, 1, dk], data: out.value },
          } satisfies Record<string, HostTensor>;
        },
      } as unknown as GraphSession;
      const decoder = new Decoder(session, bundle.table.graphs.decoder!, bundle.manifest);

      const fresh = (): RefRow => ({ inputId: 0, keys: [], values: [], cache: EMPTY_CACHE, enc: pick(encs), adapter: pick(adapters) });
      let rows: RefRow[] = [fresh(), fresh()];
      let sawFork = false;
      let sawLeave = false;
      for (let step = 0; step < 40; step++) {
        await decoder.step(rows.map((r): DecodeRow => ({ inputId: r.inputId, past: r.cache, enc: r.enc, adapter: r.adapter })));
        const want = rebuilt(bundle, rows);
        assert.deepEqual(Object.keys(fed).sort(), Object.keys(want).sort());
        for (const [name, t] of Object.entries(want)) {
          assert.deepEqual(fed[name]!.dims, t.dims, `step ${step}: ${name} dims`);
          assert.deepEqual(fed[name]!.data, t.data, `step ${step}: ${name} values`);
        }
        // Each row's cache grows by this step's chunk, at its index in this step.
        rows.forEach((r, b) => {
          r.keys = [...r.keys, out.key.slice(b * L * H * dk, (b + 1) * L * H * dk)];
          r.values = [...r.values, out.value.slice(b * L * H * dk, (b + 1) * L * H * dk)];
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
        while (rand() < 0.25 && next.length < 12) next.push(fresh());
        rows = next.length ? next : [fresh()];
      }
      assert.ok(sawFork && sawLeave, 'the walk forked beams and dropped rows');
    });
  }

  it('refuses a row whose cache length disagrees with the slot it points at', async () => {
    const session = { run: async () => ({}) } as unknown as GraphSession;
    const decoder = new Decoder(session, bundle.table.graphs.decoder!, bundle.manifest);
    const enc: EncodedInput = { srcLen: 1, crossKey: new Float32Array(64), crossValue: new Float32Array(64) };
    await assert.rejects(decoder.step([{ inputId: 0, past: { slot: 0, length: 1 }, enc, adapter: null }]), /cache slot 0 not in the previous step's 0 rows/);
  });
});
