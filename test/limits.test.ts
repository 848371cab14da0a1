/**
 * Every request limit, one table: each refusal is 413 or 422 with a message that names the parameter, the
 * limit and the value sent (docs/operations.md).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { BASE, makeApp } from './helper.js';

const ex = (n: number, chars = 1) => Array.from({ length: n }, (_, i) => ({ input: `${i}`.padEnd(chars, 'x'), output: 'y' }));

interface Case {
  name: string;
  url: string;
  body: object;
  status: number;
  code: string;
  /** Fragments the message must contain: parameter, limit, value. */
  says: (string | RegExp)[];
}

const CASES: Case[] = [
  { name: 'body size', url: '/v1/adapters', body: { examples: ex(1, 9000) }, status: 413, code: 'HT_ERR_BODY_TOO_LARGE', says: [/body is \d+ bytes; the limit is 8192 bytes \(BODY_LIMIT_BYTES\)/] },
  { name: 'number of examples', url: '/v1/adapters', body: { examples: ex(5) }, status: 422, code: 'HT_ERR_TOO_MANY_EXAMPLES', says: ['body.examples length', 'is 5', 'limit is 4', 'MAX_EXAMPLES'] },
  { name: 'example length (characters)', url: '/v1/adapters', body: { examples: ex(1, 301) }, status: 422, code: 'HT_ERR_EXAMPLE_TOO_LONG', says: ['body.examples[0].input', 'is 301', 'limit is 300', 'MAX_EXAMPLE_CHARS'] },
  { name: 'examples length (tokens, serialized)', url: '/v1/adapters', body: { examples: ex(4, 300) }, status: 422, code: 'HT_ERR_EXAMPLES_TOO_LONG', says: ['body.examples (serialized, in tokens)', /is \d{4}/, 'limit is 1024', 'hyper_input.max_tokens'] },
  { name: 'inline examples on completions', url: '/v1/completions', body: { model: BASE, prompt: 'a', examples: ex(5) }, status: 422, code: 'HT_ERR_TOO_MANY_EXAMPLES', says: ['body.examples length', 'is 5', 'limit is 4'] },
  { name: 'number of prompts', url: '/v1/completions', body: { model: BASE, prompt: ['a', 'b', 'c', 'd'] }, status: 422, code: 'HT_ERR_LIMIT_EXCEEDED', says: ['body.prompt length', 'is 4', 'limit is 3', 'MAX_PROMPTS'] },
  { name: 'prompt length (tokens)', url: '/v1/completions', body: { model: BASE, prompt: ['ok', 'é'.repeat(200)] }, status: 422, code: 'HT_ERR_INPUT_TOO_LONG', says: ['body.prompt[1] length in tokens', 'is 401', 'limit is 256', 'encoder_input.max_tokens'] },
  { name: 'max_tokens', url: '/v1/completions', body: { model: BASE, prompt: 'a', max_tokens: 33 }, status: 422, code: 'HT_ERR_LIMIT_EXCEEDED', says: ['body.max_tokens', 'is 33', 'limit is 32', 'MAX_TOKENS'] },
  { name: 'n', url: '/v1/completions', body: { model: BASE, prompt: 'a', n: 3 }, status: 422, code: 'HT_ERR_LIMIT_EXCEEDED', says: ['body.n', 'is 3', 'limit is 2', 'MAX_N'] },
  { name: 'num_beams', url: '/v1/completions', body: { model: BASE, prompt: 'a', num_beams: 3 }, status: 422, code: 'HT_ERR_LIMIT_EXCEEDED', says: ['body.num_beams', 'is 3', 'limit is 2', 'MAX_BEAMS'] },
  { name: 'stop sequences', url: '/v1/completions', body: { model: BASE, prompt: 'a', stop: ['a', 'b', 'c'] }, status: 422, code: 'HT_ERR_LIMIT_EXCEEDED', says: ['body.stop length', 'is 3', 'limit is 2', 'MAX_STOP'] },
  { name: 'temperature range', url: '/v1/completions', body: { model: BASE, prompt: 'a', temperature: 2.5 }, status: 422, code: 'HT_ERR_VALIDATION', says: ['body.temperature', '<= 2', '2.5'] },
  { name: 'negative temperature', url: '/v1/completions', body: { model: BASE, prompt: 'a', temperature: -0.1 }, status: 422, code: 'HT_ERR_VALIDATION', says: ['body.temperature', '>= 0', '-0.1'] },
  { name: 'top_p range', url: '/v1/completions', body: { model: BASE, prompt: 'a', top_p: 1.5 }, status: 422, code: 'HT_ERR_VALIDATION', says: ['body.top_p', '<= 1', '1.5'] },
  { name: 'n below 1', url: '/v1/completions', body: { model: BASE, prompt: 'a', n: 0 }, status: 422, code: 'HT_ERR_VALIDATION', says: ['body.n', '>= 1', '0'] },
  { name: 'max_tokens type', url: '/v1/completions', body: { model: BASE, prompt: 'a', max_tokens: 1.5 }, status: 422, code: 'HT_ERR_VALIDATION', says: ['body.max_tokens', 'integer', '1.5'] },
];

describe('limits', () => {
  let app: FastifyInstance;
  before(async () => {
    app = await makeApp({
      BODY_LIMIT_BYTES: 8192, MAX_EXAMPLES: 4, MAX_EXAMPLE_CHARS: 300, MAX_PROMPTS: 3, MAX_TOKENS: 32, MAX_N: 2, MAX_BEAMS: 2, MAX_STOP: 2,
    });
  });
  after(() => app.close());

  for (const c of CASES) {
    it(`${c.name}: ${c.status} ${c.code}`, async () => {
      const r = await app.inject({ method: 'POST', url: c.url, payload: c.body });
      assert.equal(r.statusCode, c.status, r.body);
      const { error } = r.json<{ error: { code: string; message: string } }>();
      assert.equal(error.code, c.code);
      for (const s of c.says) {
        if (typeof s === 'string') assert.ok(error.message.includes(s), `${JSON.stringify(error.message)} lacks ${JSON.stringify(s)}`);
        else assert.match(error.message, s);
      }
    });
  }

  it('at the limits, requests are served', async () => {
    const r = await app.inject({ method: 'POST', url: '/v1/completions', payload: { model: BASE, prompt: ['a', 'b', 'c'], n: 2, max_tokens: 32, stop: ['x', 'y'], temperature: 2, top_p: 0, examples: ex(4) } });
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.json().choices.length, 6);
  });
});
