/**
 * The error path cannot fail: whatever a client sends to whatever route (deep nesting, huge arrays, odd keys,
 * wrong types, wrong media types), the answer is a success or a catalogue error `{"error":{"code","message"}}`
 * with the code's status and a bounded message; never a 5xx, never fastify's own error shape.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import Fastify, { type FastifyInstance } from 'fastify';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config/index.js';
import { CATALOGUE, type ErrorCode } from '../src/errors/catalogue.js';
import { installErrorHandler } from '../src/errors/handler.js';
import { summarise } from '../src/errors/summarise.js';
import { BASE, FIXTURE, tempDir } from './helper.js';

/** The longest message an error may carry: enough to name a parameter, a limit and a value. */
const MAX_MESSAGE = 1000;

interface Response {
  statusCode: number;
  body: string;
  headers: Record<string, unknown>;
}

function assertAnswer(res: Response, what: string, opts: { allow5xx?: ErrorCode[] } = {}): void {
  const where = `${what} -> ${res.statusCode} ${res.body.slice(0, 300)}`;
  if (res.statusCode < 400) return;
  if (res.body === '') return assert.ok(res.statusCode < 500, where); // HEAD: no body to check
  let body: unknown;
  assert.doesNotThrow(() => (body = JSON.parse(res.body)), where);
  assert.deepEqual(Object.keys(body as object), ['error'], where);
  const err = (body as { error: Record<string, unknown> }).error;
  assert.deepEqual(Object.keys(err).sort(), ['code', 'message'], where);
  const code = err.code as ErrorCode;
  assert.ok(Object.hasOwn(CATALOGUE, code), `unknown code: ${where}`);
  assert.equal(CATALOGUE[code].status, res.statusCode, where);
  assert.equal(typeof err.message, 'string', where);
  assert.ok((err.message as string).length <= MAX_MESSAGE, `message of ${(err.message as string).length} chars: ${where}`);
  if (res.statusCode >= 500) assert.ok(opts.allow5xx?.includes(code), `5xx: ${where}`);
}

/** Every route of the app, read from fastify's own route tree (so a new route is fuzzed without a test edit). */
function routesOf(app: FastifyInstance): { url: string; methods: string[] }[] {
  const out: { url: string; methods: string[] }[] = [];
  const stack: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^([│├└─ ]*)(\S[^(]*?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    stack.length = Math.max(0, depth - 1);
    stack.push(m[2]!);
    if (m[3]) out.push({ url: stack.join(''), methods: m[3].split(', ') });
  }
  return out;
}

const deepArray = (n: number) => '['.repeat(n) + ']'.repeat(n);
const deepObject = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);
/** Bodies that once broke the error handler: a nested value where the schema wants a string, array or object. */
function deepBodies(n: number): string[] {
  return [
    deepArray(n),
    deepObject(n),
    `{"model":"x","prompt":${deepArray(n)}}`,
    `{"model":"${BASE}","prompt":"a","stop":${deepArray(n)}}`,
    `{"model":"${BASE}","prompt":${deepObject(n)}}`,
    `{"examples":${deepArray(n)}}`,
    `{"examples":[{"input":${deepArray(n)},"output":"b"}]}`,
    `{"examples":[{"input":"a","output":"b"}],"kind":${deepObject(n)}}`,
  ];
}

/** Arbitrary JSON with keys that stress objects (prototype names) and the schemas (the real field names). */
const key = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', 'model', 'prompt',
    'examples', 'input', 'output', 'stop', 'kind', 'n', 'max_tokens', 'temperature', 'stream', ''),
);
const leaf = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom(5e-324, -0, 1e308, -1e308, 2 ** 53, '', BASE, 'ad-0123456789abcdef0123456789abcdef', '\u0000', '\ud800'),
);
const { json } = fc.letrec((tie) => ({
  json: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, fc.array(tie('json'), { maxLength: 5 }), fc.dictionary(key, tie('json'), { maxKeys: 5 })),
}));
/** Close to a valid request, so fuzzing also gets past the schema into the second validation stage and the engine. */
const requestish = fc.record(
  {
    model: fc.oneof(fc.constant(BASE), json),
    prompt: fc.oneof(fc.string({ maxLength: 20 }), fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }), json),
    max_tokens: fc.oneof(fc.integer({ min: -1, max: 4 }), json),
    temperature: fc.oneof(fc.constantFrom(0, 5e-324, 1e-300, 0.7, 2, 2.0001, -0), json),
    n: fc.oneof(fc.integer({ min: 0, max: 3 }), json),
    stop: fc.oneof(fc.constantFrom('', [''], ['x'], null), json),
    stream: fc.oneof(fc.boolean(), json),
    seed: fc.oneof(fc.integer(), json),
    examples: fc.oneof(fc.array(fc.record({ input: fc.string({ maxLength: 8 }), output: fc.string({ maxLength: 8 }) }), { maxLength: 3 }), json),
    kind: fc.oneof(fc.constantFrom('lora', 'prefix', 'x'), json),
    __proto__: json,
  },
  { requiredKeys: [] },
);
/** A request body that prints short in a counterexample (a 100,000-deep body would fill the screen). */
class Body {
  constructor(readonly text: string) {}
  [fc.toStringMethod](): string {
    return this.text.length > 120 ? `${JSON.stringify(this.text.slice(0, 60))}…(${this.text.length} chars)` : JSON.stringify(this.text);
  }
}
const body = fc.oneof(
  json.map((v) => JSON.stringify(v)),
  requestish.map((v) => JSON.stringify(v)),
  fc.tuple(fc.integer({ min: 1, max: 20_000 }), fc.boolean()).map(([n, arr]) => (arr ? deepArray(n) : deepObject(n))),
  fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 1, maxLength: 20_000 }).map((a) => JSON.stringify({ model: BASE, prompt: a })),
  fc.string({ maxLength: 40 }),
).map((text) => new Body(text));
const contentType = fc.oneof(
  { weight: 3, arbitrary: fc.constant('application/json') },
  fc.constantFrom('application/json; charset=utf-8', 'application/octet-stream', 'text/plain', 'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x', 'APPLICATION/JSON', 'application/jsonx', undefined),
);
const segment = fc.oneof(
  fc.constantFrom('ad-0123456789abcdef0123456789abcdef', 'import', '..', '%2e%2e', '%zz', '%', '%E0%A4%A', 'index.html', '', 'a'.repeat(101)),
  fc.string({ maxLength: 12 }).map(encodeURIComponent),
);
const query = fc.oneof(fc.constant(''), fc.dictionary(fc.constantFrom('kind', 'a', '__proto__'), fc.string({ maxLength: 6 }), { maxKeys: 2 })
  .map((q) => `?${new URLSearchParams(q).toString()}`));

describe('the error path', () => {
  let app: FastifyInstance;
  before(async () => {
    // A real logger (to a sink): logging a refusal is part of the error path and must not fail either.
    const sink = new Writable({ write: (_c, _e, cb) => cb() });
    const config = loadConfig({}, { MODEL_DIR: FIXTURE, ADAPTER_STORE_DIR: tempDir(), INTRA_OP_THREADS: 1, WORKERS: 1, MAX_TOKENS: 8 });
    app = await buildApp({ config, logger: { level: 'trace', stream: sink } });
    await app.ready();
    await app.engine.scheduler.whenReady();
  });
  after(() => app.close());

  it('bodies nested 5,000 and 100,000 deep get a catalogue 4xx on every route', async () => {
    const routes = routesOf(app);
    for (const n of [5_000, 100_000]) {
      for (const { url, methods } of routes) {
        for (const method of [...methods, 'POST', 'DELETE']) {
          for (const payload of deepBodies(n)) {
            const u = url.replace(':id', 'ad-0123456789abcdef0123456789abcdef').replace('*', 'x');
            const res = await app.inject({ method: method as 'POST', url: u, payload, headers: { 'content-type': 'application/json' } });
            assertAnswer(res, `${method} ${u} ${payload.slice(0, 60)} (depth ${n})`);
          }
        }
      }
    }
  });

  it('the answer to a deep prompt names the parameter and a short rendering of the value', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/completions', payload: `{"model":"x","prompt":${deepArray(100_000)}}`, headers: { 'content-type': 'application/json' } });
    assert.equal(res.statusCode, 422, res.body);
    const { code, message } = res.json().error;
    assert.equal(code, 'HT_ERR_VALIDATION');
    assert.match(message, /^body\.prompt/);
    assert.ok(message.length < 300, message);
  });

  it('over-long paths and parameters, and bad percent-encodings, get catalogue answers with bounded messages', async () => {
    for (const url of [`/${'a'.repeat(100_000)}`, `/v1/adapters/${'a'.repeat(100_000)}`, `/v1/adapters/${'a'.repeat(101)}/parameters`, '/v1/adapters/%zz']) {
      for (const method of ['GET', 'PUT'] as const) {
        const res = await app.inject({ method, url });
        assertAnswer(res, `${method} ${url.slice(0, 30)}…`);
        assert.ok(res.statusCode >= 400);
      }
    }
  });

  it('arbitrary JSON shapes, media types, methods, paths and queries at every route: never a 5xx, always the catalogue shape', async () => {
    const routes = routesOf(app);
    const urls = routes.map((r) => r.url);
    // The enumeration itself must work, or this property would pass on nothing.
    for (const u of ['/v1/completions', '/v1/adapters', '/v1/adapters/import', '/v1/adapters/:id', '/v1/adapters/:id/parameters', '/v1/models', '/healthz', '/readyz', '/metrics', '/openapi.yaml']) {
      assert.ok(urls.includes(u), `route ${u} not enumerated from ${JSON.stringify(urls)}`);
    }
    const request = fc.record({
      route: fc.constantFrom(...routes),
      // Mostly the route's own method, so bodies reach its parser and schema; sometimes any other.
      method: fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS')),
      segment,
      query,
      body: fc.option(body, { nil: undefined }),
      contentType,
    });
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const method = (r.method ?? r.route.methods[0]!) as 'POST';
        const url = r.route.url.replace(':id', r.segment).replace('*', r.segment) + r.query;
        const headers: Record<string, string> = r.contentType ? { 'content-type': r.contentType } : {};
        const res = await app.inject({ method, url, headers, ...(r.body === undefined ? {} : { payload: r.body.text }) });
        assertAnswer(res, `${method} ${url} [${r.contentType}] ${r.body?.text.slice(0, 200)}`);
      }),
      { numRuns: 400 },
    );
  });
});

describe('building an error cannot fail', () => {
  let app: FastifyInstance;
  before(async () => {
    app = Fastify();
    installErrorHandler(app);
    const hostile = new Proxy(new Error('x'), { get: () => { throw new Error('trap'); }, getPrototypeOf: () => { throw new Error('trap'); } });
    const badValidation = Object.assign(new Error('bad'), { statusCode: 400 });
    Object.defineProperty(badValidation, 'validation', { get: () => { throw new RangeError('Maximum call stack size exceeded'); } });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    app.get('/hostile', async () => { throw hostile; });
    app.get('/bad-validation', async () => { throw badValidation; });
    app.get('/null', async () => { throw null; }); // eslint-disable-line @typescript-eslint/only-throw-error -- the handler must survive a non-Error
    app.get('/string', async () => { throw 'nope'; }); // eslint-disable-line @typescript-eslint/only-throw-error -- the handler must survive a non-Error
    app.post('/cyclic', async (req) => {
      throw Object.assign(new Error('v'), { validation: [{ instancePath: '/a', message: 'must be string', params: {} }], validationContext: 'body', statusCode: 400, body: req.body });
    });
    await app.ready();
  });
  after(() => app.close());

  it('an error whose every property access throws still gets a catalogue 500', async () => {
    const res = await app.inject({ method: 'GET', url: '/hostile' });
    assertAnswer(res, 'hostile', { allow5xx: ['HT_ERR_INTERNAL'] });
    assert.equal(res.json().error.code, 'HT_ERR_INTERNAL');
  });

  it('a 400 whose description throws keeps a catalogue 4xx', async () => {
    const res = await app.inject({ method: 'GET', url: '/bad-validation' });
    assertAnswer(res, 'bad-validation');
    assert.equal(res.statusCode, 400);
  });

  it('non-errors thrown (null, a string) get a catalogue 500', async () => {
    for (const url of ['/null', '/string']) {
      const res = await app.inject({ method: 'GET', url });
      assertAnswer(res, url, { allow5xx: ['HT_ERR_INTERNAL'] });
    }
  });
});

describe('summarise (the rendering of a rejected value)', () => {
  it('is bounded in depth and length and never throws, whatever the value', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    let deep: unknown = 1;
    for (let i = 0; i < 200_000; i++) deep = [deep];
    const throwing = { get x() { throw new Error('getter'); } };
    const proxy = new Proxy({}, { ownKeys: () => { throw new Error('trap'); } });
    for (const v of [cyclic, deep, throwing, proxy, new Array(1_000_000).fill('x'), 'y'.repeat(1_000_000), Buffer.alloc(1 << 20), 10n, Symbol('s'), () => 1]) {
      const s = summarise(v);
      assert.equal(typeof s, 'string');
      assert.ok(s.length <= 201, `${s.length}: ${s.slice(0, 80)}`);
    }
  });

  it('renders small values as JSON, and stops at depth 3', () => {
    assert.equal(summarise([1, 2, 3]), '[1,2,3]');
    assert.equal(summarise({ a: 'b' }), '{"a":"b"}');
    assert.equal(summarise(''), '""');
    assert.equal(summarise(null), 'null');
    assert.equal(summarise([[[[[1]]]]]), '[[[[…]]]]');
    assert.equal(summarise({ a: { b: { c: { d: 1 } } } }), '{"a":{"b":{"c":{…}}}}');
  });
});
