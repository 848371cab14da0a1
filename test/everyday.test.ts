/**
 * Requests a user would type, through the service, against the shipped model (models/default):
 * three examples of a spreadsheet clean-up task give an adapter, and the frozen model then does the
 * task on new inputs. The examples and queries are written by hand, not drawn from the task
 * generator (test/fixtures/everyday.json). HyperT5-LoRA, the bundle's default kind, gets all ten
 * right (HyperT5-Prefix does not: models/default/README.md).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { DEFAULT_MODEL, makeApp } from './helper.js';

// The training side checks candidate models on the same file (python -m hypert5.train.everyday).
const TASKS = JSON.parse(readFileSync(new URL('./fixtures/everyday.json', import.meta.url), 'utf8')) as {
  name: string;
  examples: [string, string][];
  queries: [string, string][];
}[];

describe('everyday requests on the shipped model', () => {
  let app: FastifyInstance;
  before(async () => {
    app = await makeApp({ MODEL_DIR: DEFAULT_MODEL });
  });
  after(() => app.close());

  for (const task of TASKS) {
    it(task.name, async () => {
      const examples = task.examples.map(([input, output]) => ({ input, output }));
      const created = await app.inject({ method: 'POST', url: '/v1/adapters', payload: { examples } });
      assert.equal(created.statusCode, 201, created.body);
      const adapter = created.json<{ id: string; kind: string }>();
      assert.equal(adapter.kind, 'lora'); // the manifest's default_kind
      const res = await app.inject({
        method: 'POST',
        url: '/v1/completions',
        payload: { model: adapter.id, prompt: task.queries.map(([q]) => q), max_tokens: 32, temperature: 0 },
      });
      assert.equal(res.statusCode, 200, res.body);
      const texts = res.json<{ choices: { index: number; text: string }[] }>().choices
        .sort((a, b) => a.index - b.index)
        .map((c) => c.text);
      assert.deepEqual(texts, task.queries.map(([, want]) => want));
    });
  }
});
