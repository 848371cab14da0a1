/**
 * TypeScript greedy decodes equal the PyTorch goldens token for token (golden.json), on the tiny
 * fixture and on the shipped models/default: each case alone (a batch of one kind, on the kind decoder where the
 * bundle has one), then every case at once (a batch mixing LoRA, prefix and plain rows, on `decoder`, and on a
 * kind decoder again as the rows of the other kind finish).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { ChoiceResult } from '../src/generation/types.js';
import type { RowAdapter } from '../src/inference/feeds.js';
import { encoderIds } from '../src/inference/tokenizer.js';
import { DEFAULT_MODEL, FIXTURE, makeApp, type Golden } from './helper.js';

for (const bundle of [FIXTURE, DEFAULT_MODEL]) describe(`golden parity (${path.basename(bundle)})`, () => {
  const golden = JSON.parse(readFileSync(path.join(bundle, 'golden.json'), 'utf8')) as Golden;
  const base = JSON.parse(readFileSync(path.join(bundle, 'manifest.json'), 'utf8')).name as string;
  let app: FastifyInstance;
  before(async () => {
    app = await makeApp({ MODEL_DIR: bundle });
  });
  after(() => app.close());

  type Case = Golden['cases'][number];
  /** The case's model id and adapter: the hypermodel's adapter for its examples, or the base model and none. */
  async function adapterOf(c: Case): Promise<{ model: string; adapter: RowAdapter | null }> {
    if (!c.adapter) return { model: base, adapter: null };
    const res = await app.inject({ method: 'POST', url: '/v1/adapters', payload: { examples: c.adapter.examples, kind: c.adapter.kind } });
    // 200: the same examples' adapter, made by an earlier test.
    assert.ok(res.statusCode === 201 || res.statusCode === 200, res.body);
    const model = res.json().id as string;
    const record = (await app.adapters.get(model))!;
    return { model, adapter: { kind: record.meta.kind, tensors: record.tensors } };
  }
  /** The case's greedy token ids through the scheduler (no HTTP). */
  function greedy(c: Case, adapter: RowAdapter | null, maxNewTokens = c.max_new_tokens): Promise<number[]> {
    const { engine } = app;
    const ids = encoderIds(engine.tokenizer, engine.bundle.manifest, c.input);
    return new Promise<ChoiceResult[]>((resolve, reject) => {
      engine.scheduler.generate(
        { promptIds: ids, adapter, maxNewTokens, stop: [], strategy: { type: 'greedy' }, n: 1, stream: false },
        { delta: () => {}, done: resolve, failed: reject },
      );
    }).then((choices) => choices[0]!.tokenIds);
  }

  for (const c of golden.cases) {
    it(`${c.name}: token ids equal golden.json`, async () => {
      const { model, adapter } = await adapterOf(c);
      const { engine } = app;
      assert.deepEqual(await greedy(c, adapter), c.token_ids);

      const http = await app.inject({
        method: 'POST',
        url: '/v1/completions',
        payload: { model, prompt: c.input, max_tokens: c.max_new_tokens, temperature: 0 },
      });
      assert.equal(http.statusCode, 200, http.body);
      assert.equal(http.json().choices[0].text, engine.tokenizer.decode(c.token_ids));
      assert.equal(http.json().choices[0].text, c.text);
    });
  }

  it('every case at once, in one batch of LoRA, prefix and plain rows, then without the prefix rows: token ids equal golden.json', async () => {
    const kinds = new Set(golden.cases.map((c) => c.adapter?.kind ?? 'none'));
    assert.ok(kinds.has('lora') && kinds.has('prefix'), 'golden.json has a case of each kind, so the batch is mixed');
    const adapters: (RowAdapter | null)[] = [];
    for (const c of golden.cases) adapters.push((await adapterOf(c)).adapter);
    const rows = app.metrics.decodeBatchRows;
    const above = async () => {
      // Steps of more rows than the largest bucket below the number of cases: with 5 cases, steps of all 5.
      const le = Math.max(...[1, 2, 4, 8, 16].filter((b) => b < golden.cases.length));
      const v = (await rows.get()).values;
      const count = v.find((x) => x.metricName === 'hypert5_decode_batch_rows_count')!.value;
      return count - v.find((x) => x.metricName === 'hypert5_decode_batch_rows_bucket' && x.labels.le === le)!.value;
    };
    const before = await above();
    // The prefix rows stop halfway (greedy ids are a prefix of the longer decode's): the plain and LoRA rows then
    // go on from the same cache on the LoRA kind decoder, where the bundle has it.
    const lengths = golden.cases.map((c) => (c.adapter?.kind === 'prefix' ? Math.max(1, Math.ceil(c.token_ids.length / 2)) : c.max_new_tokens));
    // Submitted in one tick: the worker admits them as one batch.
    const ids = await Promise.all(golden.cases.map((c, i) => greedy(c, adapters[i] ?? null, lengths[i])));
    assert.deepEqual(ids, golden.cases.map((c, i) => c.token_ids.slice(0, lengths[i])));
    assert.ok((await above()) > before, 'a step held every case');
  });
});
