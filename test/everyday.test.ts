/**
 * Requests a user would type, through the service, against the shipped model (models/default):
 * three examples of a spreadsheet clean-up task give an adapter, and the frozen model then does the
 * task on new inputs. The examples and queries are written by hand, not drawn from the task
 * generator. HyperT5-LoRA, the bundle's default kind, gets all ten right (HyperT5-Prefix does not:
 * README, "The default model").
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { DEFAULT_MODEL, makeApp } from './helper.js';

const TASKS: { name: string; examples: [string, string][]; queries: [string, string][] }[] = [
  {
    name: 'names to "Surname, I."',
    examples: [['Grace Hopper', 'Hopper, G.'], ['Alan Turing', 'Turing, A.'], ['Katherine Johnson', 'Johnson, K.']],
    queries: [['Ada Lovelace', 'Lovelace, A.'], ['Linus Torvalds', 'Torvalds, L.'], ['Margaret Hamilton', 'Hamilton, M.'],
      ['Tim Berners-Lee', 'Berners-Lee, T.']],
  },
  {
    name: 'ISO dates to day/month/year',
    examples: [['2024-03-07', '07/03/2024'], ['1999-12-31', '31/12/1999'], ['2010-06-15', '15/06/2010']],
    queries: [['2023-11-05', '05/11/2023'], ['1987-01-22', '22/01/1987'], ['2001-09-30', '30/09/2001']],
  },
  {
    name: 'emails to user names',
    examples: [['grace.hopper@navy.mil', 'grace.hopper'], ['alan@turing.org.uk', 'alan'], ['k.johnson@nasa.gov', 'k.johnson']],
    queries: [['ada.lovelace@example.com', 'ada.lovelace'], ['linus@kernel.org', 'linus'], ['mhamilton@mit.edu', 'mhamilton']],
  },
];

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
      const adapter = created.json() as { id: string; kind: string };
      assert.equal(adapter.kind, 'lora'); // the manifest's default_kind
      const res = await app.inject({
        method: 'POST',
        url: '/v1/completions',
        payload: { model: adapter.id, prompt: task.queries.map(([q]) => q), max_tokens: 32, temperature: 0 },
      });
      assert.equal(res.statusCode, 200, res.body);
      const texts = (res.json() as { choices: { index: number; text: string }[] }).choices
        .sort((a, b) => a.index - b.index)
        .map((c) => c.text);
      assert.deepEqual(texts, task.queries.map(([, want]) => want));
    });
  }
});
