/**
 * OpenAI `logprobs` on /v1/completions: the legacy completions shape, values that are log probabilities, the
 * chosen token on top under greedy decoding, sampled decoding, the refusals (streaming, beam search), and the
 * official client parsing it.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import OpenAI from 'openai';
import { BASE, makeApp } from './helper.js';

const GREEDY = { model: BASE, prompt: 'Katherine Johnson', max_tokens: 6, temperature: 0 };

interface Logprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[];
  text_offset: number[];
}

function checkShape(lp: Logprobs, text: string, top: number): void {
  const n = lp.tokens.length;
  assert.ok(n > 0);
  assert.equal(lp.token_logprobs.length, n);
  assert.equal(lp.top_logprobs.length, n);
  assert.equal(lp.text_offset.length, n);
  assert.equal(lp.tokens.join(''), text);
  let offset = 0;
  lp.tokens.forEach((t, i) => {
    assert.equal(lp.text_offset[i], offset);
    offset += t.length;
    assert.ok(lp.token_logprobs[i]! <= 0 && Number.isFinite(lp.token_logprobs[i]), String(lp.token_logprobs[i]));
    const alts = Object.entries(lp.top_logprobs[i]!);
    // The N most likely, plus the chosen token when it is not among them (two ids may share a text).
    assert.ok(alts.length >= 1 && alts.length <= top + 1, `${alts.length} alternatives for logprobs ${top}`);
    assert.equal(lp.top_logprobs[i]![t], lp.token_logprobs[i]);
    for (const [, v] of alts) assert.ok(v <= 0);
  });
}

describe('logprobs on /v1/completions', () => {
  let app: FastifyInstance;
  before(async () => {
    app = await makeApp();
  });
  after(() => app.close());

  const post = (body: object) => app.inject({ method: 'POST', url: '/v1/completions', payload: body });

  it('greedy: the legacy shape, and the chosen token is the most likely one at every position', async () => {
    const plain = await post(GREEDY);
    const r = await post({ ...GREEDY, logprobs: 3 });
    assert.equal(r.statusCode, 200, r.body);
    const choice = r.json().choices[0];
    assert.equal(choice.text, plain.json().choices[0].text, 'asking for logprobs changes nothing else');
    checkShape(choice.logprobs, choice.text, 3);
    choice.logprobs.top_logprobs.forEach((tops: Record<string, number>, i: number) => {
      assert.equal(Math.max(...Object.values(tops)), choice.logprobs.token_logprobs[i]);
    });
  });

  it('logprobs 0 gives the chosen token alone at each position', async () => {
    const r = await post({ ...GREEDY, logprobs: 0 });
    assert.equal(r.statusCode, 200, r.body);
    const lp = r.json().choices[0].logprobs as Logprobs;
    checkShape(lp, r.json().choices[0].text, 0);
    for (const tops of lp.top_logprobs) assert.equal(Object.keys(tops).length, 1);
  });

  it('sampled decoding with n = 2: each choice has its own, and the same seed gives the same numbers', async () => {
    const body = { ...GREEDY, temperature: 1.5, seed: 7, n: 2, logprobs: 2 };
    const [a, b] = [await post(body), await post(body)];
    assert.equal(a.statusCode, 200, a.body);
    for (const c of a.json().choices) checkShape(c.logprobs, c.text, 2);
    assert.deepEqual(a.json().choices, b.json().choices);
  });

  it('a stop sequence cuts the tokens with the text', async () => {
    const full = (await post({ ...GREEDY, logprobs: 1 })).json().choices[0];
    assert.ok(full.text.length >= 2, full.text);
    const stop = full.text.slice(1);
    const r = await post({ ...GREEDY, logprobs: 1, stop });
    const c = r.json().choices[0];
    assert.equal(c.text, full.text.slice(0, 1));
    for (const o of c.logprobs.text_offset) assert.ok(o < c.text.length);
  });

  it('without logprobs, choices carry logprobs: null', async () => {
    const r = await post(GREEDY);
    assert.equal(r.json().choices[0].logprobs, null);
  });

  it('with stream: true or beam search: 422 naming body.logprobs', async () => {
    for (const extra of [{ stream: true }, { num_beams: 2 }]) {
      const r = await post({ ...GREEDY, ...extra, logprobs: 1 });
      assert.equal(r.statusCode, 422, r.body);
      assert.equal(r.json().error.code, 'HT_ERR_INCOMPATIBLE_PARAMETERS');
      assert.match(r.json().error.message, /^body\.logprobs is 1 /);
    }
  });

  it('above 5: a validation error naming the field', async () => {
    const r = await post({ ...GREEDY, logprobs: 6 });
    assert.equal(r.statusCode, 422, r.body);
    assert.match(r.json().error.message, /^body\.logprobs/);
  });
});

describe('logprobs through the official openai client', () => {
  let app: FastifyInstance;
  before(async () => {
    app = await makeApp();
    await app.listen({ port: 0, host: '127.0.0.1' });
  });
  after(() => app.close());

  it('parses choices[0].logprobs', async () => {
    const baseURL = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/v1`;
    const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0 });
    const c = await client.completions.create({ ...GREEDY, logprobs: 2 });
    const lp = c.choices[0]!.logprobs!;
    assert.ok(lp.tokens && lp.token_logprobs && lp.top_logprobs && lp.text_offset);
    assert.equal(lp.tokens.join(''), c.choices[0]!.text);
    assert.ok(lp.token_logprobs.every((v) => v <= 0));
  });
});
