/** Every route and every error path through fastify.inject, with whole-body assertions on errors. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { readSafetensors, writeSafetensors } from '../src/adapters/safetensors.js';
import { BASE, makeApp } from './helper.js';

const EXAMPLES = [
  { input: 'Ada Lovelace', output: 'Lovelace, A.' },
  { input: 'Grace Hopper', output: 'Hopper, G.' },
];

function errorOf(res: { statusCode: number; json(): unknown }, status: number, code: string): string {
  assert.equal(res.statusCode, status, JSON.stringify(res.json()));
  const body = res.json() as { error: { code: string; message: string } };
  assert.deepEqual(Object.keys(body), ['error']);
  assert.equal(body.error.code, code);
  assert.equal(typeof body.error.message, 'string');
  return body.error.message;
}

describe('routes', () => {
  let app: FastifyInstance;
  before(async () => {
    app = await makeApp({ MAX_EXAMPLES: 4, MAX_EXAMPLE_CHARS: 100, MAX_PROMPTS: 3, MAX_TOKENS: 20, MAX_N: 3, MAX_BEAMS: 3, BODY_LIMIT_BYTES: 4096, IMPORT_LIMIT_BYTES: 200_000 });
  });
  after(() => app.close());

  const post = (url: string, payload: unknown) => app.inject({ method: 'POST', url, payload: payload as object });

  describe('health', () => {
    it('healthz, readyz', async () => {
      assert.deepEqual((await app.inject('/healthz')).json(), { status: 'ok' });
      const r = await app.inject('/readyz');
      assert.equal(r.statusCode, 200);
      assert.deepEqual(r.json(), { status: 'ready' });
    });
    it('request id is echoed', async () => {
      const r = await app.inject({ url: '/healthz', headers: { 'x-request-id': 'abc-123' } });
      assert.equal(r.headers['x-request-id'], 'abc-123');
    });
    it('unknown route is a 404 in the catalogue format', async () => {
      errorOf(await app.inject('/nope'), 404, 'HT_ERR_NOT_FOUND');
    });
  });

  describe('adapters', () => {
    let id = '';
    it('creates (201), then returns the cached one (200) with the same id', async () => {
      const a = await post('/v1/adapters', { examples: EXAMPLES, kind: 'lora' });
      assert.equal(a.statusCode, 201, a.body);
      const body = a.json();
      id = body.id;
      assert.match(id, /^ad-[0-9a-f]{32}$/);
      // The fit report's values are test/fit.test.ts's subject; here only its presence.
      assert.deepEqual({ ...body, created_at: 0, fit: Object.keys(body.fit).sort() }, {
        id, object: 'adapter', kind: 'lora', model: BASE, num_examples: 2, created_at: 0, cached: false, fit: ['demos_exact', 'loo_exact', 'mean_logprob'],
      });
      const b = await post('/v1/adapters', { examples: EXAMPLES, kind: 'lora' });
      assert.equal(b.statusCode, 200);
      assert.equal(b.json().id, id);
      assert.equal(b.json().cached, true);
    });
    it('defaults the kind from the manifest; kind and order change the id', async () => {
      const d = await post('/v1/adapters', { examples: EXAMPLES });
      assert.equal(d.json().kind, 'prefix');
      assert.notEqual(d.json().id, id);
      const rev = await post('/v1/adapters', { examples: [...EXAMPLES].reverse(), kind: 'lora' });
      assert.notEqual(rev.json().id, id);
    });
    it('concurrent identical requests share one adapter', async () => {
      const ex = [{ input: 'x', output: 'y' }];
      const rs = await Promise.all([1, 2, 3].map(() => post('/v1/adapters', { examples: ex })));
      assert.equal(new Set(rs.map((r) => r.json().id)).size, 1);
      assert.equal(rs.filter((r) => r.statusCode === 201).length, 1);
    });
    it('GET metadata', async () => {
      const r = await app.inject(`/v1/adapters/${id}`);
      assert.equal(r.statusCode, 200);
      assert.equal(r.json().id, id);
      assert.equal(r.json().cached, true);
    });
    it('GET parameters: safetensors with the manifest names and shapes', async () => {
      const r = await app.inject(`/v1/adapters/${id}/parameters`);
      assert.equal(r.statusCode, 200);
      assert.equal(r.headers['content-type'], 'application/octet-stream');
      const file = readSafetensors(r.rawPayload);
      const specs = app.engine.bundle.table.kinds.lora!;
      assert.deepEqual([...file.tensors.keys()].sort(), specs.map((s) => s.name).sort());
      for (const s of specs) assert.deepEqual(file.tensors.get(s.name)!.shape, s.shape);
    });
    it('import: a round trip gives a content-hash id; re-import is cached', async () => {
      const params = (await app.inject(`/v1/adapters/${id}/parameters`)).rawPayload;
      const imp = await app.inject({ method: 'POST', url: '/v1/adapters/import', payload: params, headers: { 'content-type': 'application/octet-stream' } });
      assert.equal(imp.statusCode, 201, imp.body);
      assert.equal(imp.json().kind, 'lora');
      assert.equal(imp.json().num_examples, 0);
      assert.notEqual(imp.json().id, id);
      const again = await app.inject({ method: 'POST', url: '/v1/adapters/import?kind=lora', payload: params, headers: { 'content-type': 'application/octet-stream' } });
      assert.equal(again.statusCode, 200);
      assert.equal(again.json().id, imp.json().id);
      // The imported adapter completes exactly like the generated one.
      const c1 = await post('/v1/completions', { model: id, prompt: 'abc', max_tokens: 6, temperature: 0 });
      const c2 = await post('/v1/completions', { model: imp.json().id, prompt: 'abc', max_tokens: 6, temperature: 0 });
      assert.equal(c1.json().choices[0].text, c2.json().choices[0].text);
    });
    it('import errors: not safetensors, wrong names, shapes, dtype, NaN, kind, size', async () => {
      const up = (payload: Buffer, q = '') =>
        app.inject({ method: 'POST', url: `/v1/adapters/import${q}`, payload, headers: { 'content-type': 'application/octet-stream' } });
      errorOf(await up(Buffer.from('not a file')), 422, 'HT_ERR_INVALID_SAFETENSORS');
      const specs = app.engine.bundle.table.kinds.lora!;
      const make = (f: (name: string, shape: number[]) => [number[], Float32Array] | null) =>
        writeSafetensors(specs.flatMap((s) => {
          const r = f(s.name, s.shape);
          return r ? [[s.name, { shape: r[0], data: r[1] }] as [string, { shape: number[]; data: Float32Array }]] : [];
        }));
      const zeros = (shape: number[]) => new Float32Array(shape.reduce((a, b) => a * b, 1));
      assert.match(errorOf(await up(make((n, s) => (n === specs[0]!.name ? null : [s, zeros(s)]))), 422, 'HT_ERR_ADAPTER_MISMATCH'), /missing/);
      assert.match(errorOf(await up(make((n, s) => (n === specs[0]!.name ? [[s[0]! * s[1]!, s[2]!], zeros(s)] : [s, zeros(s)]))), 422, 'HT_ERR_ADAPTER_MISMATCH'), /shape/);
      const nan = make((n, s) => {
        const z = zeros(s);
        if (n === specs[1]!.name) z[3] = NaN;
        return [s, z];
      });
      assert.match(errorOf(await up(nan), 422, 'HT_ERR_ADAPTER_NOT_FINITE'), new RegExp(specs[1]!.name.replace(/\./g, '\\.')));
      errorOf(await up(make((_n, s) => [s, zeros(s)]), '?kind=prefix'), 422, 'HT_ERR_ADAPTER_MISMATCH');
      errorOf(await up(make((_n, s) => [s, zeros(s)]), '?kind=bogus'), 422, 'HT_ERR_VALIDATION');
      // An F16 tensor: same bytes as half the F32 values.
      const f16 = Buffer.from(make((_n, s) => [s, zeros(s)]));
      const hdrLen = Number(f16.readBigUInt64LE(0));
      const hdr = JSON.parse(f16.subarray(8, 8 + hdrLen).toString());
      const first = hdr[specs[0]!.name];
      first.dtype = 'I32';
      const patched = Buffer.from(JSON.stringify(hdr).padEnd(hdrLen, ' '));
      assert.equal(patched.length, hdrLen);
      patched.copy(f16, 8);
      assert.match(errorOf(await up(f16), 422, 'HT_ERR_ADAPTER_MISMATCH'), /dtype I32/);
      errorOf(await up(Buffer.alloc(300_000)), 413, 'HT_ERR_BODY_TOO_LARGE');
    });
    it('DELETE, then 404 everywhere', async () => {
      const d = await app.inject({ method: 'DELETE', url: `/v1/adapters/${id}` });
      assert.deepEqual(d.json(), { id, object: 'adapter', deleted: true });
      errorOf(await app.inject(`/v1/adapters/${id}`), 404, 'HT_ERR_ADAPTER_NOT_FOUND');
      errorOf(await app.inject(`/v1/adapters/${id}/parameters`), 404, 'HT_ERR_ADAPTER_NOT_FOUND');
      errorOf(await app.inject({ method: 'DELETE', url: `/v1/adapters/${id}` }), 404, 'HT_ERR_ADAPTER_NOT_FOUND');
      errorOf(await post('/v1/completions', { model: id, prompt: 'x' }), 404, 'HT_ERR_ADAPTER_NOT_FOUND');
    });
    it('ids are validated against the format (no path traversal)', async () => {
      for (const bad of ['..%2F..%2Fetc%2Fpasswd', 'ad-XYZ', `ad-${'0'.repeat(31)}`, `AD-${'0'.repeat(32)}`]) {
        const m = errorOf(await app.inject(`/v1/adapters/${bad}`), 422, 'HT_ERR_VALIDATION');
        assert.match(m, /params\.id/);
      }
    });
    it('example limits name the parameter, the limit and the value', async () => {
      const five = Array.from({ length: 5 }, (_, i) => ({ input: `${i}`, output: `${i}` }));
      const m = errorOf(await post('/v1/adapters', { examples: five }), 422, 'HT_ERR_TOO_MANY_EXAMPLES');
      assert.match(m, /body\.examples.*5.*limit is 4.*MAX_EXAMPLES/);
      const long = errorOf(await post('/v1/adapters', { examples: [{ input: 'a'.repeat(101), output: 'b' }] }), 422, 'HT_ERR_EXAMPLE_TOO_LONG');
      assert.match(long, /body\.examples\[0\]\.input.*101.*100/);
      errorOf(await post('/v1/adapters', { examples: [] }), 422, 'HT_ERR_VALIDATION');
      errorOf(await post('/v1/adapters', { examples: [{ input: 'a' }] }), 422, 'HT_ERR_VALIDATION');
      errorOf(await post('/v1/adapters', { examples: EXAMPLES, kind: 'ia3' }), 422, 'HT_ERR_VALIDATION');
      errorOf(await post('/v1/adapters', { examples: EXAMPLES, extra: 1 }), 422, 'HT_ERR_VALIDATION');
    });
    it('malformed JSON is 400, too large 413, wrong media type 415', async () => {
      errorOf(await app.inject({ method: 'POST', url: '/v1/adapters', payload: '{"examples": [', headers: { 'content-type': 'application/json' } }), 400, 'HT_ERR_MALFORMED_JSON');
      errorOf(await app.inject({ method: 'POST', url: '/v1/adapters', payload: '', headers: { 'content-type': 'application/json' } }), 400, 'HT_ERR_MALFORMED_JSON');
      errorOf(await post('/v1/adapters', { examples: [{ input: 'a'.repeat(5000), output: 'b' }] }), 413, 'HT_ERR_BODY_TOO_LARGE');
      errorOf(await app.inject({ method: 'POST', url: '/v1/adapters', payload: 'hello', headers: { 'content-type': 'text/plain' } }), 415, 'HT_ERR_UNSUPPORTED_MEDIA_TYPE');
    });
  });

  describe('completions', () => {
    it('base model, greedy: OpenAI response shape and usage', async () => {
      const r = await post('/v1/completions', { model: BASE, prompt: 'Katherine Johnson', max_tokens: 5, temperature: 0 });
      assert.equal(r.statusCode, 200, r.body);
      const b = r.json();
      assert.match(b.id, /^cmpl-/);
      assert.equal(b.object, 'text_completion');
      assert.equal(b.model, BASE);
      assert.equal(b.choices.length, 1);
      assert.deepEqual(Object.keys(b.choices[0]).sort(), ['finish_reason', 'index', 'logprobs', 'text']);
      assert.equal(b.choices[0].finish_reason, 'length');
      assert.deepEqual(b.usage, { prompt_tokens: 18, completion_tokens: 5, total_tokens: 23 });
    });
    it('prompt arrays and n: choices ordered prompt*n + choice', async () => {
      const r = await post('/v1/completions', { model: BASE, prompt: ['a', 'b'], n: 2, max_tokens: 3, temperature: 0.9, seed: 7 });
      assert.deepEqual(r.json().choices.map((c: { index: number }) => c.index), [0, 1, 2, 3]);
      const again = await post('/v1/completions', { model: BASE, prompt: ['a', 'b'], n: 2, max_tokens: 3, temperature: 0.9, seed: 7 });
      assert.deepEqual(again.json().choices, r.json().choices);
    });
    it('inline examples get-or-create the adapter, and the response names it', async () => {
      const r = await post('/v1/completions', { model: BASE, prompt: 'Alan Turing', examples: EXAMPLES, adapter_kind: 'prefix', max_tokens: 4, temperature: 0 });
      assert.equal(r.statusCode, 200, r.body);
      const a = await post('/v1/adapters', { examples: EXAMPLES, kind: 'prefix' });
      assert.equal(a.statusCode, 200);
      assert.equal(r.json().model, a.json().id);
      const viaId = await post('/v1/completions', { model: a.json().id, prompt: 'Alan Turing', max_tokens: 4, temperature: 0 });
      assert.equal(viaId.json().choices[0].text, r.json().choices[0].text);
    });
    it('stop sequences cut the text and finish with "stop"', async () => {
      const full = (await post('/v1/completions', { model: BASE, prompt: 'Katherine Johnson', max_tokens: 12, temperature: 0 })).json().choices[0].text as string;
      const stop = full.slice(3, 5);
      const r = await post('/v1/completions', { model: BASE, prompt: 'Katherine Johnson', max_tokens: 12, temperature: 0, stop: [stop] });
      assert.equal(r.json().choices[0].text, full.slice(0, full.indexOf(stop)));
      assert.equal(r.json().choices[0].finish_reason, 'stop');
    });
    it('beam search returns n best, deterministic', async () => {
      const body = { model: BASE, prompt: 'Grace', max_tokens: 6, num_beams: 3, n: 2 };
      const r = await post('/v1/completions', body);
      assert.equal(r.statusCode, 200, r.body);
      assert.equal(r.json().choices.length, 2);
      assert.deepEqual((await post('/v1/completions', body)).json().choices, r.json().choices);
    });
    it('streaming: SSE chunks that join to the non-streamed text, then [DONE]', async () => {
      const body = { model: BASE, prompt: 'Katherine Johnson', max_tokens: 8, temperature: 0 };
      const plain = (await post('/v1/completions', body)).json();
      const r = await post('/v1/completions', { ...body, stream: true, stream_options: { include_usage: true } });
      assert.equal(r.statusCode, 200);
      assert.match(String(r.headers['content-type']), /^text\/event-stream/);
      const frames = r.body.split('\n\n').filter(Boolean);
      assert.equal(frames.at(-1), 'data: [DONE]');
      const chunks = frames.slice(0, -1).map((f) => JSON.parse(f.replace(/^data: /, '')));
      const text = chunks.flatMap((c) => c.choices.map((ch: { text: string }) => ch.text)).join('');
      assert.equal(text, plain.choices[0].text);
      assert.equal(chunks.at(-2).choices[0].finish_reason, 'length');
      assert.deepEqual(chunks.at(-1).usage, plain.usage);
    });
    it('errors: limits, unknown model, incompatible parameters, validation', async () => {
      let m = errorOf(await post('/v1/completions', { model: BASE, prompt: 'x'.repeat(300) }), 422, 'HT_ERR_INPUT_TOO_LONG');
      assert.match(m, /body\.prompt.*301.*256/);
      m = errorOf(await post('/v1/completions', { model: BASE, prompt: ['a', 'x'.repeat(300)] }), 422, 'HT_ERR_INPUT_TOO_LONG');
      assert.match(m, /body\.prompt\[1\]/);
      m = errorOf(await post('/v1/completions', { model: BASE, prompt: 'a', max_tokens: 21 }), 422, 'HT_ERR_LIMIT_EXCEEDED');
      assert.match(m, /body\.max_tokens is 21; the limit is 20 \(MAX_TOKENS\)/);
      errorOf(await post('/v1/completions', { model: BASE, prompt: ['a', 'b', 'c', 'd'] }), 422, 'HT_ERR_LIMIT_EXCEEDED');
      errorOf(await post('/v1/completions', { model: BASE, prompt: 'a', n: 4 }), 422, 'HT_ERR_LIMIT_EXCEEDED');
      errorOf(await post('/v1/completions', { model: BASE, prompt: 'a', num_beams: 4 }), 422, 'HT_ERR_LIMIT_EXCEEDED');
      errorOf(await post('/v1/completions', { model: BASE, prompt: 'a', num_beams: 2, n: 3 }), 422, 'HT_ERR_INCOMPATIBLE_PARAMETERS');
      errorOf(await post('/v1/completions', { model: BASE, prompt: 'a', num_beams: 2, temperature: 0.7 }), 422, 'HT_ERR_INCOMPATIBLE_PARAMETERS');
      errorOf(await post('/v1/completions', { model: 'gpt-4', prompt: 'a' }), 404, 'HT_ERR_MODEL_NOT_FOUND');
      errorOf(await post('/v1/completions', { model: `ad-${'0'.repeat(32)}`, prompt: 'a' }), 404, 'HT_ERR_ADAPTER_NOT_FOUND');
      errorOf(await post('/v1/completions', { model: `ad-${'0'.repeat(32)}`, prompt: 'a', examples: EXAMPLES }), 422, 'HT_ERR_INCOMPATIBLE_PARAMETERS');
      errorOf(await post('/v1/completions', { model: BASE, prompt: 'a', adapter_kind: 'lora' }), 422, 'HT_ERR_INCOMPATIBLE_PARAMETERS');
      m = errorOf(await post('/v1/completions', { model: BASE, prompt: 'a', temperature: 'hot' }), 422, 'HT_ERR_VALIDATION');
      assert.match(m, /body\.temperature.*"hot"/);
      m = errorOf(await post('/v1/completions', { model: BASE, prompt: 'a', logit_bias: { 5: 1 } }), 422, 'HT_ERR_UNSUPPORTED_PARAMETER');
      assert.match(m, /^body\.logit_bias /);
      errorOf(await post('/v1/completions', { prompt: 'a' }), 422, 'HT_ERR_VALIDATION');
      errorOf(await post('/v1/completions', { model: BASE, prompt: 'a', stop: ['a', 'b', 'c', 'd', 'e'] }), 422, 'HT_ERR_LIMIT_EXCEEDED');
    });
  });

  describe('models and metrics', () => {
    it('GET /v1/models: base model first with its summary', async () => {
      const r = await app.inject('/v1/models');
      const b = r.json();
      assert.equal(b.object, 'list');
      assert.equal(b.data[0].id, BASE);
      assert.equal(b.data[0].summary.default_adapter_kind, 'prefix');
      assert.deepEqual(b.data[0].summary.adapter_kinds, ['lora', 'prefix']);
      assert.equal(b.data[0].summary.prefix_attention, 'gated');
      assert.ok(b.data.slice(1).every((m: { id: string }) => /^ad-/.test(m.id)));
    });
    it('GET /metrics: Prometheus text with the service metrics', async () => {
      const r = await app.inject('/metrics');
      assert.equal(r.statusCode, 200);
      for (const name of ['hypert5_http_request_duration_seconds', 'hypert5_adapter_cache_hits_total', 'hypert5_adapter_cache_misses_total',
        'hypert5_adapter_cache_evictions_total', 'hypert5_adapter_cache_bytes', 'hypert5_queue_depth', 'hypert5_decode_batch_rows',
        'hypert5_generated_tokens_total']) {
        assert.ok(r.body.includes(name), name);
      }
      assert.match(r.body, /route="\/v1\/completions"/);
    });
    it('GET /openapi.yaml and /docs', async () => {
      const y = await app.inject('/openapi.yaml');
      assert.equal(y.statusCode, 200);
      assert.match(y.body, /^openapi: 3/);
      const d = await app.inject('/docs/');
      assert.ok([200, 302].includes(d.statusCode));
    });
  });
});

describe('overload and readiness', () => {
  it('a full queue answers 429 with Retry-After', async () => {
    const app = await makeApp({ QUEUE_SIZE: 1, RETRY_AFTER_S: 3 });
    try {
      const r = await app.inject({ method: 'POST', url: '/v1/completions', payload: { model: BASE, prompt: ['a', 'b'], max_tokens: 2 } });
      errorOf(r, 429, 'HT_ERR_QUEUE_FULL');
      assert.equal(r.headers['retry-after'], '3');
    } finally {
      await app.close();
    }
  });
  it('readyz is 503 with Retry-After before the models load', async () => {
    const app = await makeApp({}, { waitReady: false });
    try {
      const r = await app.inject('/readyz');
      if (r.statusCode === 503) {
        errorOf(r, 503, 'HT_ERR_NOT_READY');
        assert.equal(r.headers['retry-after'], '1');
        const c = await app.inject({ method: 'POST', url: '/v1/completions', payload: { model: BASE, prompt: 'a' } });
        errorOf(c, 503, 'HT_ERR_NOT_READY');
      }
      await app.engine.scheduler.whenReady();
      assert.equal((await app.inject('/readyz')).statusCode, 200);
    } finally {
      await app.close();
    }
  });
});
