/**
 * TypeScript greedy decodes equal the PyTorch goldens token for token (golden.json), on the tiny
 * fixture and on the shipped models/default.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { ChoiceResult } from '../src/generation/types.js';
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

  for (const c of golden.cases) {
    it(`${c.name}: token ids equal golden.json`, async () => {
      let adapter = null;
      let model = base;
      if (c.adapter) {
        const res = await app.inject({ method: 'POST', url: '/v1/adapters', payload: { examples: c.adapter.examples, kind: c.adapter.kind } });
        assert.equal(res.statusCode, 201, res.body);
        model = res.json().id;
        const record = (await app.adapters.get(model))!;
        adapter = { kind: record.meta.kind, tensors: record.tensors };
      }
      const { engine } = app;
      const ids = encoderIds(engine.tokenizer, engine.bundle.manifest, c.input);
      const choices = await new Promise<ChoiceResult[]>((resolve, reject) => {
        engine.scheduler.generate(
          { promptIds: ids, adapter, maxNewTokens: c.max_new_tokens, stop: [], strategy: { type: 'greedy' }, n: 1, stream: false },
          { delta: () => {}, done: resolve, failed: reject },
        );
      });
      assert.deepEqual(choices[0]!.tokenIds, c.token_ids);

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
});
