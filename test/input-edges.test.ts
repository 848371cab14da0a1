/**
 * Inputs at the edge of what the API accepts, each answered with a clear catalogue error: token-id prompts,
 * empty stop sequences, wrong media types, prototype keys, vanishing temperatures, requests Node's HTTP parser
 * refuses (over a real socket), and streams cut short (HTTP 200 ending with an error event).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { clientErrorHandler } from '../src/errors/client-error.js';
import { applyAll, temperature } from '../src/generation/logits-processors.js';
import { mulberry32, sampleFromScores } from '../src/generation/sampler.js';
import { BASE, makeApp } from './helper.js';

function errorOf(res: { statusCode: number; body: string }, status: number, code: string): string {
  assert.equal(res.statusCode, status, res.body);
  const body = JSON.parse(res.body) as { error: { code: string; message: string } };
  assert.equal(body.error.code, code, res.body);
  return body.error.message;
}

describe('input edges', () => {
  let app: FastifyInstance;
  before(async () => {
    app = await makeApp();
  });
  after(() => app.close());
  const post = (url: string, payload: string | object, contentType = 'application/json') =>
    app.inject({ method: 'POST', url, payload: typeof payload === 'string' ? payload : JSON.stringify(payload), headers: { 'content-type': contentType } });

  it('token-id prompts are refused as such: send text', async () => {
    for (const prompt of [[1, 2, 3], [[1, 2]], [[1, 2], [3]]]) {
      const msg = errorOf(await post('/v1/completions', { model: BASE, prompt }), 422, 'HT_ERR_VALIDATION');
      assert.match(msg, /^body\.prompt .*token ids.*not supported/, msg);
      assert.match(msg, /send the prompt as text/);
    }
    // Other wrong types keep the ordinary message.
    const msg = errorOf(await post('/v1/completions', { model: BASE, prompt: [true] }), 422, 'HT_ERR_VALIDATION');
    assert.doesNotMatch(msg, /token ids/);
  });

  it('empty stop sequences name stop and say empty strings are not allowed', async () => {
    for (const [stop, at] of [[[''], 'body.stop[0]'], [['x', ''], 'body.stop[1]'], ['', 'body.stop']] as const) {
      const msg = errorOf(await post('/v1/completions', { model: BASE, prompt: 'a', stop }), 422, 'HT_ERR_VALIDATION');
      assert.ok(msg.startsWith(`${at} `), msg);
      assert.match(msg, /must not be an empty string/);
    }
  });

  it('a body of a media type the route does not accept is 415, naming the accepted type', async () => {
    const json = JSON.stringify({ model: BASE, prompt: 'a' });
    for (const [url, ct, accepted] of [
      ['/v1/completions', 'application/octet-stream', 'application/json'],
      ['/v1/adapters', 'application/octet-stream', 'application/json'],
      ['/v1/completions', 'text/plain', 'application/json'],
      ['/v1/adapters/import', 'application/json', 'application/octet-stream'],
      ['/v1/adapters/import', 'text/plain', 'application/octet-stream'],
    ] as const) {
      const msg = errorOf(await post(url, json, ct), 415, 'HT_ERR_UNSUPPORTED_MEDIA_TYPE');
      assert.ok(msg.includes(ct) && msg.includes(`send ${accepted}`), `${url} ${ct}: ${msg}`);
    }
  });

  it('a __proto__ or constructor.prototype key is refused by name, not as invalid JSON', async () => {
    const cases: [string, RegExp][] = [
      [`{"model":"${BASE}","prompt":"a","__proto__":{"x":1}}`, /key "__proto__" is not allowed/],
      [`{"model":"${BASE}","prompt":"a","\\u005f_proto__":{}}`, /key "__proto__" is not allowed/],
      [`{"examples":[{"input":"a","output":"b","__proto__":null}]}`, /key "__proto__" is not allowed/],
      [`{"model":"${BASE}","prompt":"a","constructor":{"prototype":{}}}`, /key "constructor" holding "prototype" is not allowed/],
    ];
    for (const [payload, re] of cases) {
      const msg = errorOf(await post('/v1/completions', payload), 422, 'HT_ERR_VALIDATION');
      assert.match(msg, re, payload);
    }
    // "__proto__" as a value, and a constructor key without a prototype, are ordinary data.
    const ok = await post('/v1/completions', { model: BASE, prompt: '"__proto__": 1', max_tokens: 2, temperature: 0 });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.equal(errorOf(await post('/v1/completions', '{"model":"x","prompt":"a","constructor":1}'), 422, 'HT_ERR_VALIDATION'), 'body.constructor must NOT have additional properties (got present)');
    // Malformed JSON is still malformed JSON.
    errorOf(await post('/v1/completions', '{"model":'), 400, 'HT_ERR_MALFORMED_JSON');
  });

  it('a vanishing temperature samples like greedy, with the seed, instead of on NaN', async () => {
    const greedy = await post('/v1/completions', { model: BASE, prompt: 'Ada Lovelace', max_tokens: 8, temperature: 0 });
    assert.equal(greedy.statusCode, 200, greedy.body);
    for (const t of [5e-324, 1e-300, 1e-12]) {
      const r = await post('/v1/completions', { model: BASE, prompt: 'Ada Lovelace', max_tokens: 8, temperature: t, seed: 7, n: 2 });
      assert.equal(r.statusCode, 200, r.body);
      for (const c of r.json().choices) assert.equal(c.text, greedy.json().choices[0].text, `temperature ${t}`);
    }
  });
});

describe('sampling arithmetic', () => {
  it('for any finite logits and any temperature in (0, 2], draws a token among the finite scores, never on NaN', () => {
    const logits = fc.array(fc.double({ min: -1e4, max: 1e4, noNaN: true }), { minLength: 1, maxLength: 12 });
    const temp = fc.oneof(fc.constantFrom(5e-324, 1e-320, 1e-300, 1e-12), fc.double({ min: 5e-324, max: 2, noNaN: true }));
    fc.assert(
      fc.property(logits, temp, fc.integer(), (l, t, seed) => {
        const scores = applyAll([temperature(t)], Float32Array.from(l));
        for (const s of scores) assert.ok(!Number.isNaN(s) && s !== Infinity, `score ${s} at t=${t}`);
        const i = sampleFromScores(scores, mulberry32(seed));
        assert.ok(i >= 0 && i < l.length);
        assert.ok(scores[i]! > -Infinity, `picked an excluded token at t=${t}`);
      }),
      { numRuns: 500 },
    );
  });

  it('a temperature of 5e-324 keeps only the largest logit', () => {
    const scores = applyAll([temperature(5e-324)], [1, 3, 2.9999]);
    for (let seed = 0; seed < 50; seed++) assert.equal(sampleFromScores(scores, mulberry32(seed)), 1);
  });

  it('non-finite scores fall back to the largest finite score instead of an arbitrary token', () => {
    assert.equal(sampleFromScores(Float64Array.from([1, 2, NaN]), mulberry32(1)), 1);
    assert.equal(sampleFromScores(Float64Array.from([1, Infinity, Infinity]), mulberry32(1)), 1);
  });
});

/** Sends raw bytes and reads everything until the server closes. */
function raw(port: number, data: string): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = net.connect(port, '127.0.0.1', () => s.write(data));
    s.on('data', (c) => chunks.push(c));
    s.on('error', () => {}); // the server may close while the request is still being written
    s.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    s.setTimeout(5000, () => s.destroy());
  });
}

function parseRaw(text: string): { status: number; headers: Record<string, string>; body: string } {
  const [head, ...rest] = text.split('\r\n\r\n');
  const [statusLine, ...lines] = head!.split('\r\n');
  const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  return { status: Number(statusLine!.split(' ')[1]), headers, body: rest.join('\r\n\r\n') };
}

describe('requests the HTTP parser refuses (real socket)', () => {
  let app: FastifyInstance;
  let port: number;
  before(async () => {
    app = await makeApp();
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = (app.server.address() as AddressInfo).port;
  });
  after(() => app.close());

  const cases: [string, string, number, string, RegExp][] = [
    ['a 100 KB URL', `GET /${'a'.repeat(100_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 431, 'HT_ERR_HEADERS_TOO_LARGE', /\d+ bytes/],
    ['a header with a control character', 'GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \x01\r\n\r\n', 400, 'HT_ERR_BAD_REQUEST', /HPE_/],
    ['a request line that is not HTTP', 'HELLO\r\n\r\n', 400, 'HT_ERR_BAD_REQUEST', /HPE_/],
  ];
  for (const [what, request, status, code, detail] of cases) {
    it(`${what}: ${status} ${code} in the catalogue's shape, then close`, async () => {
      const res = parseRaw(await raw(port, request));
      assert.equal(res.status, status, JSON.stringify(res));
      assert.match(res.headers['content-type'] ?? '', /^application\/json/);
      assert.equal(res.headers.connection, 'close');
      assert.equal(Number(res.headers['content-length']), Buffer.byteLength(res.body));
      const body = JSON.parse(res.body) as { error: { code: string; message: string } };
      assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message']);
      assert.equal(body.error.code, code);
      assert.match(body.error.message, detail);
    });
  }

  it('a request too slow to arrive is 408 naming REQUEST_TIMEOUT_MS; a response under way is not corrupted', () => {
    // Node checks its timeouts every 30 s (connectionsCheckingInterval), too slow for a test: call the handler directly.
    const fake = (headersSent: boolean) => {
      const out = { written: '', destroyed: false };
      const socket = { writable: true, destroyed: false, _httpMessage: { headersSent }, write: (s: string) => { out.written += s; }, destroy: () => { out.destroyed = true; } };
      return { socket: socket as unknown as net.Socket, out };
    };
    const timeout = Object.assign(new Error('timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' });
    const fresh = fake(false);
    const before = app.server.requestTimeout;
    app.server.requestTimeout = 120_000; // as server.ts sets it from REQUEST_TIMEOUT_MS
    clientErrorHandler.call(app, timeout, fresh.socket);
    app.server.requestTimeout = before;
    const res = parseRaw(fresh.out.written);
    assert.equal(res.status, 408);
    assert.equal(JSON.parse(res.body).error.code, 'HT_ERR_REQUEST_TIMEOUT');
    assert.match(JSON.parse(res.body).error.message, /within REQUEST_TIMEOUT_MS \(120000 ms\), or its headers within Node's headersTimeout \(\d+ ms\)/);
    assert.ok(fresh.out.destroyed);
    const busy = fake(true);
    clientErrorHandler.call(app, Object.assign(new Error('x'), { code: 'HPE_INVALID_METHOD' }), busy.socket);
    assert.equal(busy.out.written, '');
    assert.ok(busy.out.destroyed);
  });

  it('the server keeps serving afterwards', async () => {
    const res = parseRaw(await raw(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    assert.equal(res.status, 200);
  });
});

describe('streams cut short', () => {
  let app: FastifyInstance;
  before(async () => {
    app = await makeApp({ MAX_TOKENS: 512, REQUEST_DEADLINE_MS: 300, RETRY_AFTER_S: 2 });
  });
  after(() => app.close());

  it('keep HTTP 200 and end with one catalogue error event, then [DONE]', async () => {
    const r = await app.inject({
      method: 'POST',
      url: '/v1/completions',
      payload: { model: BASE, prompt: 'x', n: 4, max_tokens: 512, temperature: 0, stream: true },
    });
    assert.equal(r.statusCode, 200);
    assert.match(String(r.headers['content-type']), /^text\/event-stream/);
    const events = r.body.split('\n\n').filter(Boolean);
    assert.equal(events.at(-1), 'data: [DONE]');
    const last = JSON.parse(events.at(-2)!.replace(/^data: /, '')) as Record<string, unknown>;
    assert.deepEqual(last, { error: { code: 'HT_ERR_DEADLINE_EXCEEDED', message: (last.error as { message: string }).message } });
    assert.match((last.error as { message: string }).message, /300 ms \(REQUEST_DEADLINE_MS\)/);
    // Every event before it is an ordinary chunk.
    for (const e of events.slice(0, -2)) assert.equal(JSON.parse(e.replace(/^data: /, '')).object, 'text_completion');
  });

  it('is documented in the OpenAPI document (the streamed chunk and the stream parameter)', () => {
    const doc = app.swagger() as { components: { schemas: Record<string, { description?: string; properties?: Record<string, { description?: string }> }> } };
    const chunk = doc.components.schemas.CompletionChunk!;
    assert.match(chunk.description ?? '', /error event/);
    assert.match(chunk.description ?? '', /HTTP 200/);
    const paths = (app.swagger() as { paths: Record<string, { post?: { requestBody?: { content: Record<string, { schema: { $ref?: string } }> } } }> }).paths;
    // The request body is the named component CompletionBody.
    const body = paths['/v1/completions']!.post!.requestBody!.content['application/json']!.schema;
    assert.equal(body.$ref, '#/components/schemas/CompletionBody');
    const stream = doc.components.schemas.CompletionBody!.properties!.stream!;
    assert.match(stream.description ?? '', /error event/);
  });
});
