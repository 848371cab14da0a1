/**
 * The fields clients of the official OpenAI libraries send to /v1/completions: each works, or is refused with a
 * 422 naming it; the neutral values those clients and the tools built on them send are accepted and change
 * nothing. GET /v1/models/{id} answers what `models.retrieve(id)` asks. The table in docs/api.md says the same.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import OpenAI from 'openai';
import { CompletionBodySchema } from '../src/schemas/completions.js';
import { BASE, makeApp } from './helper.js';

const EXAMPLES = [{ input: 'Ada Lovelace', output: 'Lovelace, A.' }];
/** Greedy, so any change to the answer a field makes would show. */
const PLAIN = { model: BASE, prompt: 'Katherine Johnson', max_tokens: 4, temperature: 0 };

/** Field -> a value that would change the answer, which this server does not implement. */
const REFUSED: Record<string, unknown> = {
  echo: true,
  suffix: ' the end',
  best_of: 2,
  presence_penalty: 0.5,
  frequency_penalty: -1,
  logit_bias: { 50256: -100 },
};

/** Field -> the neutral values accepted. */
const NEUTRAL: Record<string, unknown[]> = {
  // logprobs itself is implemented (test/logprobs.test.ts): null asks for nothing.
  logprobs: [null],
  echo: [false],
  suffix: [null, ''],
  best_of: [null, 1],
  presence_penalty: [0, null],
  frequency_penalty: [0, null],
  logit_bias: [{}, null],
  user: ['user-1234'],
};

describe('OpenAI completion fields', () => {
  let app: FastifyInstance;
  let plainText: string;
  before(async () => {
    app = await makeApp();
    const r = await app.inject({ method: 'POST', url: '/v1/completions', payload: PLAIN });
    assert.equal(r.statusCode, 200, r.body);
    plainText = r.json().choices[0].text;
  });
  after(() => app.close());

  for (const [field, value] of Object.entries(REFUSED)) {
    it(`${field}: ${JSON.stringify(value)} is refused with a 422 naming it`, async () => {
      const r = await app.inject({ method: 'POST', url: '/v1/completions', payload: { ...PLAIN, [field]: value } });
      assert.equal(r.statusCode, 422, r.body);
      const { code, message } = r.json().error as { code: string; message: string };
      assert.equal(code, 'HT_ERR_UNSUPPORTED_PARAMETER');
      assert.ok(message.startsWith(`body.${field} is `), message);
      assert.match(message, /not supported by this server: omit body\.\w+ or send /);
    });
  }

  for (const [field, values] of Object.entries(NEUTRAL)) {
    for (const value of values) {
      it(`${field}: ${JSON.stringify(value)} is accepted and changes nothing`, async () => {
        const r = await app.inject({ method: 'POST', url: '/v1/completions', payload: { ...PLAIN, [field]: value } });
        assert.equal(r.statusCode, 200, r.body);
        assert.equal(r.json().choices[0].text, plainText);
        assert.equal(r.json().choices[0].logprobs, null);
      });
    }
  }

  it('best_of equal to n is accepted (n choices, as without it)', async () => {
    const r = await app.inject({ method: 'POST', url: '/v1/completions', payload: { ...PLAIN, n: 2, best_of: 2 } });
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.json().choices.length, 2);
  });

  it('the refusal comes before the model is looked up (the field is named, not the unknown model)', async () => {
    const r = await app.inject({ method: 'POST', url: '/v1/completions', payload: { ...PLAIN, model: 'nope', echo: true } });
    assert.equal(r.statusCode, 422);
    assert.match(r.json().error.message, /^body\.echo is true/);
  });

  it('a value of the wrong type is a validation error naming the field', async () => {
    for (const [field, value] of [['logprobs', 'yes'], ['presence_penalty', 3], ['best_of', 0], ['logit_bias', { 1: 'x' }]] as const) {
      const r = await app.inject({ method: 'POST', url: '/v1/completions', payload: { ...PLAIN, [field]: value } });
      assert.equal(r.statusCode, 422, `${field}: ${r.body}`);
      assert.equal(r.json().error.code, 'HT_ERR_VALIDATION');
      assert.match(r.json().error.message, new RegExp(`^body\\.${field}`));
    }
  });
});

describe('GET /v1/models/{id}', () => {
  let app: FastifyInstance;
  let adapterId: string;
  before(async () => {
    app = await makeApp({ API_KEYS: 'alpha,beta', ADAPTER_SCOPE: 'key' });
    const r = await app.inject({ method: 'POST', url: '/v1/adapters', payload: { examples: EXAMPLES, kind: 'lora' }, headers: { authorization: 'Bearer alpha' } });
    assert.equal(r.statusCode, 201, r.body);
    adapterId = r.json().id;
  });
  after(() => app.close());

  const get = (id: string, key = 'alpha') => app.inject({ url: `/v1/models/${encodeURIComponent(id)}`, headers: { authorization: `Bearer ${key}` } });

  it('the base model: the same object as the first entry of the list', async () => {
    const list = await app.inject({ url: '/v1/models', headers: { authorization: 'Bearer alpha' } });
    const r = await get(BASE);
    assert.equal(r.statusCode, 200, r.body);
    assert.deepEqual(r.json(), list.json().data[0]);
    assert.equal(r.json().object, 'model');
  });

  it('an adapter: its id, kind and creation time, as in the list', async () => {
    const r = await get(adapterId);
    assert.equal(r.statusCode, 200, r.body);
    const list = await app.inject({ url: '/v1/models', headers: { authorization: 'Bearer alpha' } });
    assert.deepEqual(r.json(), list.json().data.find((m: { id: string }) => m.id === adapterId));
    assert.deepEqual(Object.keys(r.json()).sort(), ['created', 'id', 'kind', 'object', 'owned_by']);
    assert.equal(r.json().kind, 'lora');
  });

  it('anything else is 404 HT_ERR_MODEL_NOT_FOUND naming the id, and another key\'s adapter is not shown', async () => {
    for (const [id, key] of [['nope', 'alpha'], ['ad-0123456789abcdef0123456789abcdef', 'alpha'], [adapterId, 'beta'], [`${BASE}x`, 'alpha']] as const) {
      const r = await get(id, key);
      assert.equal(r.statusCode, 404, `${id}: ${r.body}`);
      assert.equal(r.json().error.code, 'HT_ERR_MODEL_NOT_FOUND');
      assert.ok(r.json().error.message.includes(JSON.stringify(id)), r.json().error.message);
    }
  });

  it('needs a key like every /v1 route', async () => {
    const r = await app.inject({ url: `/v1/models/${BASE}` });
    assert.equal(r.statusCode, 401);
  });
});

describe('the official openai client over a real port', () => {
  let app: FastifyInstance;
  let client: OpenAI;
  before(async () => {
    app = await makeApp();
    await app.listen({ port: 0, host: '127.0.0.1' });
    const baseURL = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/v1`;
    client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0 });
  });
  after(() => app.close());

  it('models.retrieve: the base model, and NotFoundError for an unknown id', async () => {
    const m = await client.models.retrieve(BASE);
    assert.equal(m.id, BASE);
    assert.equal(m.object, 'model');
    await assert.rejects(client.models.retrieve('gpt-3.5-turbo-instruct'),
      (e: unknown) => e instanceof OpenAI.NotFoundError && (e.error as { code?: string }).code === 'HT_ERR_MODEL_NOT_FOUND');
  });

  it('completions.create with every neutral value the client can send', async () => {
    const c = await client.completions.create({
      ...PLAIN, user: 'u-1', echo: false, suffix: null, best_of: 1, logprobs: null, presence_penalty: 0, frequency_penalty: 0, logit_bias: {},
    });
    assert.equal(c.object, 'text_completion');
    assert.equal(c.choices.length, 1);
    assert.equal(c.choices[0]!.logprobs, null);
  });

  it('a refused field reaches the client as UnprocessableEntityError with the code and the field', async () => {
    await assert.rejects(client.completions.create({ ...PLAIN, logit_bias: { 50256: -100 } }), (e: unknown) => {
      assert.ok(e instanceof OpenAI.UnprocessableEntityError, String(e));
      const err = e.error as { code?: string; message?: string };
      assert.equal(err.code, 'HT_ERR_UNSUPPORTED_PARAMETER');
      assert.match(err.message ?? '', /^body\.logit_bias /);
      return true;
    });
  });
});

describe('the field table in docs/api.md', () => {
  /** `| \`field\` | status | notes |` rows of the OpenAI completions table. */
  const rows = new Map<string, string>();
  const doc = readFileSync(new URL('../docs/api.md', import.meta.url), 'utf8');
  const table = doc.slice(doc.indexOf('## OpenAI completions fields'), doc.indexOf('## Models'));
  for (const m of table.matchAll(/^\| `(\w+)` \| ([^|]+?) \|/gm)) rows.set(m[1]!, m[2]!);

  it('has a row for every field of the request body, and says what the server does', () => {
    const fields = Object.keys(CompletionBodySchema.properties);
    assert.deepEqual([...rows.keys()].sort(), fields.sort());
    for (const field of Object.keys(REFUSED)) assert.equal(rows.get(field), 'refused', field);
    assert.equal(rows.get('user'), 'accepted and ignored');
    const extensions = ['examples', 'adapter_kind', 'num_beams', 'refine'];
    for (const field of extensions) assert.equal(rows.get(field), 'extension', field);
    for (const [field, status] of rows) {
      if (!(field in REFUSED) && field !== 'user' && !extensions.includes(field)) assert.equal(status, 'supported', field);
    }
  });
});
