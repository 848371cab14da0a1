/**
 * Access control over a real socket, with raw request lines: every route the app registers, asked in every
 * spelling the router might map onto it (percent-escapes, absolute-form targets, double slashes, dots, case,
 * ;params), is refused without a key; adapter scope and rate limits hold in every spelling; wrong keys from one
 * address run into a 429. Routes are enumerated from the app itself, so a route added later is covered.
 */
import assert from 'node:assert/strict';
import { connect, type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { BASE, makeApp } from './helper.js';

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** One request written byte for byte (the target is not normalised by any client library), one connection. */
function raw(port: number, method: string, target: string, headers: Record<string, string> = {}, body = ''): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.setTimeout(30_000, () => socket.destroy(new Error(`no answer to ${method} ${target}`)));
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const head = text.slice(0, text.indexOf('\r\n\r\n'));
      const [statusLine, ...lines] = head.split('\r\n');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '');
      if (!m) return reject(new Error(`${method} ${target}: no status line in ${JSON.stringify(text.slice(0, 200))}`));
      const h: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        h[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      resolve({ status: Number(m[1]), headers: h, body: text.slice(head.length + 4) });
    });
    const all = { host: `127.0.0.1:${port}`, connection: 'close', ...headers, ...(body ? { 'content-length': String(Buffer.byteLength(body)) } : {}) };
    socket.write(`${method} ${target} HTTP/1.1\r\n${Object.entries(all).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n${body}`);
  });
}

const codeOf = (r: RawResponse): string | undefined => {
  try {
    return (JSON.parse(r.body) as { error?: { code?: string }; code?: string }).error?.code ?? (JSON.parse(r.body) as { code?: string }).code;
  } catch {
    return undefined;
  }
};

/** Every registered route with its methods, read from the router's own listing (printRoutes without common prefixes). */
function listRoutes(app: FastifyInstance): { path: string; methods: string[] }[] {
  const out: { path: string; methods: string[] }[] = [];
  const stack: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^((?:│ {3}| {4})*)[├└]── (.*?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    stack.length = depth;
    const path = (stack[depth - 1] ?? '') + m[2]!;
    stack.push(path);
    if (m[3]) out.push({ path, methods: m[3].split(',').map((s) => s.trim()) });
  }
  return out;
}

/** What the service documents as open; everything else must need a key. */
const OPEN = (path: string, method: string): boolean =>
  ['/', '/healthz', '/readyz', '/metrics', '/openapi.yaml', '/docs'].includes(path) || path.startsWith('/docs/') ||
  (path.startsWith('/playground/') && method === 'GET') || (path === '*' && method === 'OPTIONS');

const hex = (c: string, upper = false): string => {
  const h = c.charCodeAt(0).toString(16).padStart(2, '0');
  return `%${upper ? h.toUpperCase() : h}`;
};

/** Spellings of one concrete path (starting with /) that a router might, or might not, map onto its route. */
function spellings(path: string, origin: string): string[] {
  const segs = path.split('/').slice(1);
  const rest = (i: number) => `/${segs.slice(i).join('/')}`;
  const out = new Set<string>([path, `${path}?x=1`, `${path}#x`]);
  segs.forEach((s, i) => {
    for (const upper of [false, true]) {
      const a = [...segs];
      a[i] = hex(s[0]!, upper) + s.slice(1);
      out.add(`/${a.join('/')}`);
    }
    const b = [...segs];
    b[i] = `%25${hex(s[0]!).slice(1)}${s.slice(1)}`; // double-encoded: %2576 is "%76" after one decode
    out.add(`/${b.join('/')}`);
  });
  const encodedFirst = `/${hex(segs[0]![0]!)}${path.slice(2)}`;
  out.add(path.replace(/[^/]/g, (c) => hex(c, true)));
  for (const p of [path, encodedFirst]) {
    out.add(`${origin}${p}`);
    out.add(`http://other.example${p}`);
    out.add(`HTTP://${origin.slice('http://'.length)}${p}`);
  }
  out.add(`/${path}`);
  out.add(`/${segs[0]}/${rest(1)}`);
  out.add(`${path}/`);
  out.add(`${path}.`);
  out.add(`${path}/.`);
  out.add(`${path}/..`);
  out.add(`/${segs[0]}.${rest(1)}`);
  out.add(`/${segs[0]}/.${rest(1)}`);
  out.add(`/${segs[0]}/%2e${rest(1)}`);
  out.add(`/x/..${path}`);
  out.add(path.toUpperCase());
  out.add(`/${segs[0]!.toUpperCase()}${rest(1)}`);
  out.add(`${path};x=1`);
  out.add(`/${segs[0]};x=1${rest(1)}`);
  out.add(`/${segs[0]}%2f${rest(1).slice(1)}`);
  out.add(`${path}%00`);
  out.add(`${path}%20`);
  out.add(path.replace(/\//g, '\\'));
  return [...out];
}

/** A body each POST route would accept, so that a bypass would show as a 2xx rather than a 4xx. */
function bodyFor(path: string): { headers: Record<string, string>; body: string } {
  if (path.endsWith('/import')) return { headers: { 'content-type': 'application/octet-stream' }, body: 'x'.repeat(16) };
  if (path.endsWith('/completions')) return { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: BASE, prompt: 'a', max_tokens: 1 }) };
  if (path.endsWith('/adapters')) return { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ examples: [{ input: 'p', output: 'q' }] }) };
  return { headers: { 'content-type': 'application/json' }, body: '{}' };
}

/** Refused by the HTTP parser or the URL decoder, before any route or hook could run: not a way in either. */
const refusedBeforeRouting = (r: RawResponse): boolean =>
  r.status === 400 && [undefined, 'FST_ERR_BAD_URL', 'HT_ERR_BAD_REQUEST'].includes(codeOf(r));

const bearer = (k: string) => ({ authorization: `Bearer ${k}` });
const EXAMPLES = [{ input: 'Ada Lovelace', output: 'Lovelace, A.' }];

describe('access control over a real socket', () => {
  let app: FastifyInstance;
  let port: number;
  let origin: string;
  let id: string;
  before(async () => {
    app = await makeApp({ API_KEYS: 'alpha,beta', ADAPTER_SCOPE: 'key', CORS_ORIGINS: 'https://app.example' });
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = (app.server.address() as AddressInfo).port;
    origin = `http://127.0.0.1:${port}`;
    const created = await app.inject({ method: 'POST', url: '/v1/adapters', payload: { examples: EXAMPLES }, headers: bearer('alpha') });
    assert.equal(created.statusCode, 201);
    id = created.json().id;
  });
  after(() => app.close());

  const concrete = (path: string) => path.replace(/:id/g, id).replace(/\*$/, 'x');

  it('the route listing holds every route (the matrix below is not vacuous)', () => {
    const paths = listRoutes(app).map((r) => r.path);
    for (const p of ['/v1/models', '/v1/adapters', '/v1/adapters/import', '/v1/adapters/:id', '/v1/adapters/:id/parameters', '/v1/completions', '/healthz', '/docs', '/docs/json', '/playground/:asset', '*']) {
      assert.ok(paths.includes(p), `${p} missing from ${JSON.stringify(paths)}`);
    }
  });

  it('without a key every guarded route, in every spelling and method, is 401 and never reaches a handler', async () => {
    const wrong: string[] = [];
    let tried = 0;
    for (const route of listRoutes(app)) {
      for (const method of route.methods) {
        if (OPEN(route.path, method)) continue;
        const { headers, body } = method === 'POST' ? bodyFor(route.path) : { headers: {}, body: '' };
        for (const target of spellings(concrete(route.path), origin)) {
          const r = await raw(port, method, target, headers, body);
          tried++;
          if (r.status !== 401 && !refusedBeforeRouting(r)) wrong.push(`${method} ${target} -> ${r.status} ${r.body.slice(0, 80)}`);
          else if (r.status === 401 && method !== 'HEAD') assert.equal(codeOf(r), 'HT_ERR_UNAUTHORIZED', `${method} ${target}`);
        }
      }
    }
    assert.ok(tried > 200, `only ${tried} requests tried`);
    assert.deepEqual(wrong, [], `${wrong.length} of ${tried} requests were not refused:\n${wrong.join('\n')}`);
    // Nothing was deleted on the way: the owner still has the adapter.
    assert.equal((await app.inject({ url: `/v1/adapters/${id}`, headers: bearer('alpha') })).statusCode, 200);
  });

  it('a path that matches no route needs a key too (401, not 404), so nothing unlisted is reachable', async () => {
    for (const [method, target] of [['GET', '/nope'], ['GET', '/v2/models'], ['PUT', '/v1/models'], ['DELETE', '/v1/models'], ['GET', `${origin}/nope`]] as const) {
      const r = await raw(port, method, target);
      assert.equal(r.status, 401, `${method} ${target}: ${r.status} ${r.body}`);
    }
    const keyed = await raw(port, 'GET', '/nope', bearer('alpha'));
    assert.equal(keyed.status, 404);
    assert.equal(codeOf(keyed), 'HT_ERR_NOT_FOUND');
  });

  it('the open routes answer without a key', async () => {
    for (const target of ['/healthz', '/readyz', '/metrics', '/openapi.yaml', '/docs/json', '/docs/static/swagger-initializer.js', `${origin}/healthz`, '/%68ealthz']) {
      const r = await raw(port, 'GET', target);
      assert.equal(r.status, 200, `${target}: ${r.status} ${r.body.slice(0, 120)}`);
    }
    assert.ok([200, 302].includes((await raw(port, 'GET', '/docs')).status));
    // The playground's files (GET only): an unknown name is the route's own 404, whether or not the page is built.
    assert.equal(codeOf(await raw(port, 'GET', '/playground/nope.js')), 'HT_ERR_NOT_FOUND');
    const pre = await raw(port, 'OPTIONS', '/v1/completions', { origin: 'https://app.example', 'access-control-request-method': 'POST' });
    assert.equal(pre.status, 204, 'a CORS preflight needs no key');
    assert.equal(pre.headers['access-control-allow-origin'], 'https://app.example');
  });

  it('with a key, every spelling of a guarded route answers as the route itself would', async () => {
    for (const target of ['/v1/models', '/%761/models', '/v%31/models', `${origin}/v1/models`, '/v1/%6dodels']) {
      const r = await raw(port, 'GET', target, bearer('alpha'));
      assert.equal(r.status, 200, `${target}: ${r.status} ${r.body.slice(0, 120)}`);
    }
  });

  it('ADAPTER_SCOPE=key cannot be crossed by spelling the path differently', async () => {
    const leaks: string[] = [];
    for (const [method, path] of [['GET', `/v1/adapters/${id}`], ['GET', `/v1/adapters/${id}/parameters`], ['DELETE', `/v1/adapters/${id}`]] as const) {
      for (const target of spellings(path, origin)) {
        const r = await raw(port, method, target, bearer('beta'));
        if (r.status < 400) leaks.push(`${method} ${target} -> ${r.status}`);
      }
    }
    for (const target of spellings('/v1/models', origin)) {
      const r = await raw(port, 'GET', target, bearer('beta'));
      if (r.status === 200 && r.body.includes(id)) leaks.push(`GET ${target} lists ${id}`);
    }
    for (const target of spellings('/v1/completions', origin)) {
      const r = await raw(port, 'POST', target, { ...bearer('beta'), 'content-type': 'application/json' }, JSON.stringify({ model: id, prompt: 'a', max_tokens: 1 }));
      if (r.status < 400) leaks.push(`POST ${target} -> ${r.status}`);
    }
    assert.deepEqual(leaks, []);
    assert.equal((await app.inject({ url: `/v1/adapters/${id}`, headers: bearer('alpha') })).statusCode, 200);
  });
});

describe('failed authentication is limited per client address', () => {
  let app: FastifyInstance;
  let port: number;
  before(async () => {
    app = await makeApp({ API_KEYS: 'alpha' });
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = (app.server.address() as AddressInfo).port;
  });
  after(() => app.close());

  it('100 wrong keys from one address end in 429 with Retry-After, even with RATE_LIMIT_PER_MIN=0', async () => {
    const statuses: number[] = [];
    let limited: RawResponse | undefined;
    for (let i = 0; i < 100; i++) {
      const r = await raw(port, 'GET', i % 2 ? '/v1/models' : '/%761/models', bearer(`guess-${i}`));
      statuses.push(r.status);
      if (r.status === 429) limited ??= r;
    }
    assert.ok(limited, `no 429 among ${JSON.stringify(statuses)}`);
    assert.equal(codeOf(limited), 'HT_ERR_RATE_LIMITED');
    assert.match(limited.body, /AUTH_FAILURES_PER_MIN/);
    assert.ok(Number(limited.headers['retry-after']) >= 1, JSON.stringify(limited.headers));
    // Once limited, it stays limited for the window: no answer tells a right guess from a wrong one.
    const first = statuses.indexOf(429);
    assert.ok(statuses.slice(first).every((s) => s === 429), JSON.stringify(statuses));
    assert.ok(statuses.slice(0, first).every((s) => s === 401), JSON.stringify(statuses));
    assert.equal((await raw(port, 'GET', '/v1/models', bearer('alpha'))).status, 429, 'the right key from a limited address is refused too');
    assert.equal((await raw(port, 'GET', '/healthz')).status, 200, 'open routes stay open');
    const elsewhere = await app.inject({ url: '/v1/models', headers: bearer('alpha'), remoteAddress: '10.9.8.7' });
    assert.equal(elsewhere.statusCode, 200, 'another address is not affected');
  });
});

describe('the request rate limit counts every spelling of a route', () => {
  let app: FastifyInstance;
  let port: number;
  before(async () => {
    app = await makeApp({ API_KEYS: 'alpha', RATE_LIMIT_PER_MIN: 3 });
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = (app.server.address() as AddressInfo).port;
  });
  after(() => app.close());

  it('encoded and absolute-form targets spend the same key budget', async () => {
    const statuses: number[] = [];
    for (const target of ['/%761/models', `http://127.0.0.1:${port}/v1/models`, '/v%31/models', '/v1/%6dodels', '/%761/models']) {
      statuses.push((await raw(port, 'GET', target, bearer('alpha'))).status);
    }
    assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
  });
});
