/** Mixed-adapter, mixed-strategy concurrent requests give exactly what each request gives alone. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { BASE, makeApp } from './helper.js';

describe('dynamic + continuous batching', () => {
  let app: FastifyInstance;
  before(async () => {
    app = await makeApp({ MAX_BATCH_ROWS: 16 });
  });
  after(() => app.close());

  it('concurrent mixed requests equal the same requests run alone', async () => {
    const mk = async (kind: string, examples: { input: string; output: string }[]) =>
      (await app.inject({ method: 'POST', url: '/v1/adapters', payload: { examples, kind } })).json().id as string;
    const lora = await mk('lora', [{ input: 'Ada Lovelace', output: 'Lovelace, A.' }]);
    const prefix = await mk('prefix', [{ input: '2023-12-25', output: '25/12/2023' }]);
    const prefix2 = await mk('prefix', [{ input: 'red', output: 'rouge' }, { input: 'blue', output: 'bleu' }]);
    const requests = [
      { model: BASE, prompt: 'Katherine Johnson', max_tokens: 12, temperature: 0 },
      { model: lora, prompt: 'Katherine Johnson', max_tokens: 7, temperature: 0 },
      { model: prefix, prompt: ['2024-03-07', 'a much longer prompt than the others, to pad the cross-attention'], max_tokens: 15, temperature: 0 },
      { model: prefix2, prompt: 'green', max_tokens: 9, temperature: 0.8, top_p: 0.9, seed: 42, n: 2 },
      { model: lora, prompt: 'Grace Hopper', max_tokens: 5, num_beams: 3, n: 2 },
      { model: BASE, prompt: 'x', max_tokens: 3, temperature: 1.2, seed: 1 },
      { model: prefix, prompt: 'Zoë Ångström | 2024-03-07', max_tokens: 11, temperature: 0, stop: ['\u0000'] },
    ];
    const run = (body: object) => app.inject({ method: 'POST', url: '/v1/completions', payload: body }).then((r) => {
      assert.equal(r.statusCode, 200, r.body);
      return r.json().choices;
    });
    const alone = [];
    for (const r of requests) alone.push(await run(r));
    const together = await Promise.all(requests.map(run));
    assert.deepEqual(together, alone);
    // Some decoder step really held rows of several requests (no single request here has more than 3 rows).
    const hist = (await app.metrics.decodeBatchRows.get()).values;
    const count = hist.find((v) => v.metricName?.endsWith('_count'))!.value;
    const upTo4 = hist.find((v) => v.labels.le === 4)!.value;
    assert.ok(upTo4 < count, 'no step mixed requests');
    // And once more with a different arrival order.
    const reversed = await Promise.all([...requests].reverse().map(run));
    assert.deepEqual(reversed.reverse(), alone);
  });
});
