/** Over a real socket: the official openai client against the server (completions, streaming). */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import OpenAI from 'openai';
import { BASE, makeApp } from './helper.js';

describe('end to end with the openai client', () => {
  let app: FastifyInstance;
  let client: OpenAI;
  let baseURL: string;
  before(async () => {
    app = await makeApp();
    await app.listen({ port: 0, host: '127.0.0.1' });
    baseURL = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/v1`;
    client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0 });
  });
  after(() => app.close());

  it('lists models, base first', async () => {
    const page = await client.models.list();
    assert.equal(page.data[0]!.id, BASE);
  });

  it('completes with an adapter created over HTTP', async () => {
    const res = await fetch(`${baseURL}/adapters`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ examples: [{ input: 'Ada Lovelace', output: 'Lovelace, A.' }], kind: 'prefix' }),
    });
    assert.equal(res.status, 201);
    const { id } = (await res.json()) as { id: string };
    const c = await client.completions.create({ model: id, prompt: 'Katherine Johnson', max_tokens: 6, temperature: 0 });
    assert.equal(c.object, 'text_completion');
    assert.equal(c.model, id);
    assert.equal(c.choices[0]!.finish_reason, 'length');
    assert.equal(c.usage!.completion_tokens, 6);
  });

  it('streams chunks that join to the non-streamed text', async () => {
    const params = { model: BASE, prompt: ['Katherine Johnson', 'Grace'], max_tokens: 8, temperature: 0 };
    const plain = await client.completions.create(params);
    const stream = await client.completions.create({ ...params, stream: true });
    const texts = ['', ''];
    const finish: (string | null)[] = [null, null];
    for await (const chunk of stream) {
      for (const ch of chunk.choices) {
        texts[ch.index] += ch.text;
        if (ch.finish_reason) finish[ch.index] = ch.finish_reason;
      }
    }
    assert.deepEqual(texts, plain.choices.map((c) => c.text));
    assert.deepEqual(finish, ['length', 'length']);
  });

  it('errors reach the client as API errors with status and code', async () => {
    await assert.rejects(
      client.completions.create({ model: 'nope', prompt: 'a' }),
      (e: unknown) => e instanceof OpenAI.APIError && e.status === 404 && (e.error as { code?: string }).code === 'HT_ERR_MODEL_NOT_FOUND',
    );
  });
});
