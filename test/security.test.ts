/** Access control: API keys, per-key rate limits, adapters scoped to their key, CORS, headers, ids. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { KeyRing, keyId } from '../src/plugins/key-ring.js';
import { AuthFailures } from '../src/plugins/auth-failures.js';
import { isOpenPath } from '../src/plugins/open-routes.js';
import { BASE, makeApp, removeDir, tempDir } from './helper.js';

const EXAMPLES = [{ input: 'Ada Lovelace', output: 'Lovelace, A.' }];
const bearer = (k: string) => ({ authorization: `Bearer ${k}` });

function errorOf(res: { statusCode: number; json(): unknown }, status: number, code: string): string {
  assert.equal(res.statusCode, status, JSON.stringify(res.json()));
  const body = res.json() as { error: { code: string; message: string } };
  assert.equal(body.error.code, code);
  return body.error.message;
}

describe('key ring', () => {
  it('matches exactly, by digest, and names keys by an id that does not reveal them', () => {
    const ring = new KeyRing(['alpha', 'beta', 'alpha']);
    assert.equal(ring.size, 2);
    assert.equal(ring.match('alpha'), keyId('alpha'));
    assert.equal(ring.match('beta'), keyId('beta'));
    for (const bad of ['', 'alph', 'alphaa', 'ALPHA', 'beta ', 'x'.repeat(10_000)]) assert.equal(ring.match(bad), null, bad);
    assert.match(keyId('alpha'), /^key-[0-9a-f]{16}$/);
    assert.ok(!keyId('alpha').includes('alpha'));
  });
});

describe('open routes', () => {
  it('only the listed registered paths are open; anything else, future routes included, is guarded', () => {
    for (const url of ['/', '/healthz', '/readyz', '/metrics', '/openapi.yaml', '/docs', '/docs/', '/docs/json', '/docs/static/*']) {
      assert.equal(isOpenPath(url, 'GET'), true, url);
    }
    for (const url of ['/v1/models', '/v1/adapters/:id', '/v2/anything', '/docsx', '/healthz/extra', '/metrics2', '*', '/docs-admin',
      '/playground', '/playgroundx', '/playgroundx/:asset', '/v1/playground/:asset']) {
      assert.equal(isOpenPath(url, 'GET'), false, url);
    }
    // The playground's files are open for GET alone.
    assert.equal(isOpenPath('/playground/:asset', 'GET'), true);
    for (const method of ['HEAD', 'POST', 'DELETE', 'OPTIONS', ['GET', 'POST'], []]) {
      assert.equal(isOpenPath('/playground/:asset', method), false, String(method));
    }
    // The CORS preflight route is open for OPTIONS only.
    assert.equal(isOpenPath('*', 'OPTIONS'), true);
    assert.equal(isOpenPath('*', ['OPTIONS', 'GET']), false);
  });
});

describe('wrong-key counter', () => {
  it('refuses an address from its limit-th wrong key until its window ends, then forgets it', () => {
    let t = 1_000_000;
    const f = new AuthFailures(3, 60_000, 100, () => t);
    for (let i = 0; i < 2; i++) f.fail('a');
    assert.equal(f.retryAfterS('a'), 0);
    f.fail('a');
    assert.equal(f.retryAfterS('a'), 60);
    assert.equal(f.retryAfterS('b'), 0, 'other addresses are not affected');
    t += 59_001;
    assert.equal(f.retryAfterS('a'), 1);
    t += 1_000;
    assert.equal(f.retryAfterS('a'), 0, 'a new window starts clean');
    f.fail('a');
    assert.equal(f.retryAfterS('a'), 0);
  });

  it('limit 0 counts nothing', () => {
    const f = new AuthFailures(0);
    for (let i = 0; i < 1000; i++) f.fail('a');
    assert.equal(f.retryAfterS('a'), 0);
  });

  it('remembers a bounded number of addresses, dropping ended windows first, then the oldest', () => {
    let t = 0;
    const f = new AuthFailures(1, 60_000, 3, () => t);
    f.fail('old');
    t += 30_000;
    f.fail('b');
    f.fail('c');
    t += 30_000; // 'old' has ended
    f.fail('d');
    assert.deepEqual(['b', 'c', 'd'].map((a) => f.retryAfterS(a) > 0), [true, true, true]);
    f.fail('e'); // all running: the oldest ('b') makes room
    assert.deepEqual(['b', 'c', 'd', 'e'].map((a) => f.retryAfterS(a) > 0), [false, true, true, true]);
  });
});

describe('API keys', () => {
  let app: FastifyInstance;
  let dir: string;
  before(async () => {
    dir = tempDir();
    const file = path.join(dir, 'keys');
    writeFileSync(file, '# team keys\ngamma\n\n  delta  \n');
    app = await makeApp({ API_KEYS: 'alpha, beta', API_KEYS_FILE: file, ADAPTER_SCOPE: 'key', RATE_LIMIT_PER_MIN: 10 });
  });
  after(async () => {
    await app.close();
    removeDir(dir);
  });

  it('/v1 needs a known key (401 + WWW-Authenticate); health, readiness and metrics stay open', async () => {
    const none = await app.inject('/v1/models');
    assert.match(errorOf(none, 401, 'HT_ERR_UNAUTHORIZED'), /Authorization: Bearer/);
    assert.equal(none.headers['www-authenticate'], 'Bearer realm="hypert5"');
    errorOf(await app.inject({ url: '/v1/models', headers: bearer('nope') }), 401, 'HT_ERR_UNAUTHORIZED');
    errorOf(await app.inject({ url: '/v1/models', headers: { authorization: 'Basic YWxwaGE6' } }), 401, 'HT_ERR_UNAUTHORIZED');
    errorOf(await app.inject({ method: 'POST', url: '/v1/completions', payload: { model: BASE, prompt: 'a' } }), 401, 'HT_ERR_UNAUTHORIZED');
    for (const k of ['alpha', 'beta', 'gamma', 'delta']) assert.equal((await app.inject({ url: '/v1/models', headers: bearer(k) })).statusCode, 200, k);
    for (const url of ['/healthz', '/readyz', '/metrics']) assert.equal((await app.inject(url)).statusCode, 200, url);
  });

  it('adapters are scoped to the key that created them', async () => {
    const a = await app.inject({ method: 'POST', url: '/v1/adapters', payload: { examples: EXAMPLES }, headers: bearer('gamma') });
    assert.equal(a.statusCode, 201);
    const id = a.json().id;
    assert.equal((await app.inject({ url: `/v1/adapters/${id}`, headers: bearer('gamma') })).statusCode, 200);
    // Another key: the adapter does not exist for it, by any route.
    errorOf(await app.inject({ url: `/v1/adapters/${id}`, headers: bearer('delta') }), 404, 'HT_ERR_ADAPTER_NOT_FOUND');
    errorOf(await app.inject({ url: `/v1/adapters/${id}/parameters`, headers: bearer('delta') }), 404, 'HT_ERR_ADAPTER_NOT_FOUND');
    errorOf(await app.inject({ method: 'DELETE', url: `/v1/adapters/${id}`, headers: bearer('delta') }), 404, 'HT_ERR_ADAPTER_NOT_FOUND');
    errorOf(await app.inject({ method: 'POST', url: '/v1/completions', payload: { model: id, prompt: 'a', max_tokens: 2 }, headers: bearer('delta') }), 404, 'HT_ERR_ADAPTER_NOT_FOUND');
    const models = (await app.inject({ url: '/v1/models', headers: bearer('delta') })).json();
    assert.deepEqual(models.data.map((m: { id: string }) => m.id), [BASE]);
    // The same examples under another key are that key's own adapter, with its own id.
    const b = await app.inject({ method: 'POST', url: '/v1/adapters', payload: { examples: EXAMPLES }, headers: bearer('delta') });
    assert.equal(b.statusCode, 201);
    assert.notEqual(b.json().id, id);
  });

  it('per-key rate limit: 429 with Retry-After naming the limit; other keys are not affected', async () => {
    const send = () => app.inject({ url: '/v1/models', headers: bearer('alpha') });
    for (let i = 0; i < 10; i++) await send();
    const last = await send();
    const m = errorOf(last, 429, 'HT_ERR_RATE_LIMITED');
    assert.match(m, /the limit is 10 \(RATE_LIMIT_PER_MIN\)/);
    assert.ok(Number(last.headers['retry-after']) >= 1);
    assert.equal((await app.inject({ url: '/v1/models', headers: bearer('beta') })).statusCode, 200);
    assert.equal((await app.inject('/healthz')).statusCode, 200);
  });

  it('an unreadable API_KEYS_FILE stops start-up naming the variable', async () => {
    await assert.rejects(makeApp({ API_KEYS_FILE: '/nonexistent/keys' }), /API_KEYS_FILE="\/nonexistent\/keys": cannot read it/);
  });
});

describe('behind a proxy (TRUST_PROXY): wrong keys are counted per client, not per proxy', () => {
  const viaProxy = (client: string, key: string, from = '10.0.0.1') => ({ url: '/v1/models', headers: { ...bearer(key), 'x-forwarded-for': client }, remoteAddress: from });
  /** Three wrong keys from client 1.1.1.1 through the proxy at 10.0.0.1 (AUTH_FAILURES_PER_MIN=3). */
  async function lockOut(app: FastifyInstance): Promise<void> {
    for (let i = 0; i < 3; i++) errorOf(await app.inject(viaProxy('1.1.1.1', `guess-${i}`)), 401, 'HT_ERR_UNAUTHORIZED');
    assert.match(errorOf(await app.inject(viaProxy('1.1.1.1', 'alpha')), 429, 'HT_ERR_RATE_LIMITED'), /client 1\.1\.1\.1 /);
  }
  for (const trust of ['10.0.0.0/8', '1']) {
    it(`TRUST_PROXY=${trust}: one client's wrong keys leave the proxy's other clients alone; an untrusted sender cannot pick its address`, async () => {
      const app = await makeApp({ API_KEYS: 'alpha', AUTH_FAILURES_PER_MIN: 3, TRUST_PROXY: trust });
      try {
        await lockOut(app);
        assert.equal((await app.inject(viaProxy('2.2.2.2', 'alpha'))).statusCode, 200, 'another client behind the same proxy');
        if (trust !== '1') {
          // Not from a trusted proxy: its header is not believed, so it is judged as itself (not locked out).
          assert.equal((await app.inject(viaProxy('1.1.1.1', 'alpha', '203.0.113.9'))).statusCode, 200);
        }
      } finally {
        await app.close();
      }
    });
  }
  it('without TRUST_PROXY the header is ignored: every client of the proxy shares its address', async () => {
    const app = await makeApp({ API_KEYS: 'alpha', AUTH_FAILURES_PER_MIN: 3 });
    try {
      for (let i = 0; i < 3; i++) errorOf(await app.inject(viaProxy('1.1.1.1', `guess-${i}`)), 401, 'HT_ERR_UNAUTHORIZED');
      assert.match(errorOf(await app.inject(viaProxy('2.2.2.2', 'alpha')), 429, 'HT_ERR_RATE_LIMITED'), /client 10\.0\.0\.1 /);
    } finally {
      await app.close();
    }
  });
});

describe('headers, CORS, ids', () => {
  let app: FastifyInstance;
  before(async () => {
    app = await makeApp();
  });
  after(() => app.close());

  it('security headers on every answer; no CORS by default', async () => {
    const r = await app.inject({ url: '/v1/models', headers: { origin: 'https://evil.example' } });
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.equal(r.headers['x-frame-options'], 'SAMEORIGIN');
    assert.match(String(r.headers['content-security-policy']), /default-src 'self'/);
    assert.match(String(r.headers['content-security-policy']), /frame-ancestors 'none'/);
    assert.equal(r.headers['access-control-allow-origin'], undefined);
    const pre = await app.inject({ method: 'OPTIONS', url: '/v1/completions', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
    assert.equal(pre.headers['access-control-allow-origin'], undefined);
    assert.ok([200, 302].includes((await app.inject('/docs/')).statusCode));
  });

  it('CORS_ORIGINS allows the listed origins only', async () => {
    const c = await makeApp({ CORS_ORIGINS: 'https://app.example', API_KEYS: 'k' });
    try {
      const pre = await c.inject({ method: 'OPTIONS', url: '/v1/completions', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } });
      assert.equal(pre.statusCode, 204, 'a preflight needs no key');
      assert.equal(pre.headers['access-control-allow-origin'], 'https://app.example');
      const other = await c.inject({ url: '/v1/models', headers: { origin: 'https://evil.example', ...bearer('k') } });
      assert.equal(other.headers['access-control-allow-origin'], undefined);
    } finally {
      await c.close();
    }
  });

  it('adapter ids cannot reach outside the store (format-checked, never a path)', async () => {
    const tries = ['..%2F..%2Fetc%2Fpasswd', '%2e%2e', '..', 'ad-..%2F..%2Fx', `ad-${'0'.repeat(32)}%00`, `ad-${'0'.repeat(32)}.json`, `ad-${'0'.repeat(32)}%2F..`, 'ad-' + 'g'.repeat(32)];
    for (const t of tries) {
      for (const url of [`/v1/adapters/${t}`, `/v1/adapters/${t}/parameters`]) {
        const r = await app.inject(url);
        assert.ok([404, 422].includes(r.statusCode), `${url}: ${r.statusCode}`);
        assert.ok(['HT_ERR_VALIDATION', 'HT_ERR_NOT_FOUND'].includes(r.json().error.code), url);
      }
      const d = await app.inject({ method: 'DELETE', url: `/v1/adapters/${t}` });
      assert.ok([404, 422].includes(d.statusCode), `DELETE ${t}: ${d.statusCode}`);
    }
  });
});
