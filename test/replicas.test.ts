/**
 * Two service processes, each with its own local adapter store, sharing one real redis-server: what
 * replicas behind a load balancer do. Over HTTP, as a client sees it.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { after, before, describe, it } from 'node:test';
import { readSafetensors, writeSafetensors } from '../src/adapters/safetensors.js';
import { postJson, startService, type ServiceProcess } from '../scripts/service-process.js';
import { BASE, FIXTURE, removeDir, tempDir } from './helper.js';
import { eventually, RedisServer } from './redis-server.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const examples = (tag: string) => [
  { input: `Ada Lovelace ${tag}`, output: 'Lovelace, A.' },
  { input: `Grace Hopper ${tag}`, output: 'Hopper, G.' },
];

describe('two replicas sharing adapters through Redis', () => {
  let redis: RedisServer;
  const dirs: string[] = [];
  let a: ServiceProcess;
  let b: ServiceProcess;

  const replica = (): Promise<ServiceProcess> => {
    const dir = tempDir();
    dirs.push(dir);
    return startService(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH,
        MODEL_DIR: FIXTURE,
        ADAPTER_STORE_DIR: dir,
        REDIS_URL: redis.url,
        INTRA_OP_THREADS: '1',
        LOG_LEVEL: 'warn',
      },
    });
  };

  before(async () => {
    redis = await RedisServer.start();
    [a, b] = await Promise.all([replica(), replica()]);
  });
  after(async () => {
    const stops = await Promise.all([a, b].filter(Boolean).map((s) => s.stop()));
    await redis.dispose();
    for (const d of dirs) removeDir(d);
    for (const s of stops) assert.deepEqual(s, { code: 0, signal: null });
  });

  it('an adapter created on one replica is cached on the other, which completes with it', async () => {
    const first = await postJson(`${a.url}/v1/adapters`, { examples: examples('1'), kind: 'prefix' });
    assert.equal(first.status, 201);
    assert.equal(first.body.cached, false);
    const second = await postJson(`${b.url}/v1/adapters`, { examples: examples('1'), kind: 'prefix' });
    assert.equal(second.status, 200);
    assert.deepEqual(second.body, { ...first.body, cached: true });

    const params = await Promise.all([a, b].map((s) => fetch(`${s.url}/v1/adapters/${first.body.id as string}/parameters`).then((r) => r.arrayBuffer())));
    assert.deepEqual(Buffer.from(params[0]!), Buffer.from(params[1]!), 'both replicas serve the same tensors');

    const c = await postJson(`${b.url}/v1/completions`, { model: first.body.id, prompt: 'Katherine Johnson', max_tokens: 4, temperature: 0 });
    assert.equal(c.status, 200);
    assert.equal(c.body.model, first.body.id);
  });

  it('the same new adapter requested on both replicas at once: one creates it, both return it', async () => {
    const [x, y] = await Promise.all([a, b].map((s) => postJson(`${s.url}/v1/adapters`, { examples: examples('2'), kind: 'lora' })));
    assert.deepEqual([x!.status, y!.status].sort(), [200, 201]);
    assert.equal(x!.body.id, y!.body.id);
    assert.equal(x!.body.created_at, y!.body.created_at, 'the second replica returns the first one\'s adapter');
  });

  it('an imported adapter (which no replica could regenerate) is served by the other replica', async () => {
    const made = await postJson(`${a.url}/v1/adapters`, { examples: examples('3'), kind: 'lora' });
    const file = readSafetensors(Buffer.from(await (await fetch(`${a.url}/v1/adapters/${made.body.id as string}/parameters`)).arrayBuffer()));
    // Different tensors: a "fine-tuned" adapter with its own id.
    const tuned = writeSafetensors([...file.tensors].map(([name, t]) => [name, { shape: t.shape, data: t.data.map((v) => v * 0.5 + 0.01) }]));
    const res = await fetch(`${a.url}/v1/adapters/import`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: tuned });
    assert.equal(res.status, 201);
    const { id } = (await res.json()) as { id: string };
    const onB = await fetch(`${b.url}/v1/adapters/${id}`);
    assert.equal(onB.status, 200);
    const models = (await (await fetch(`${b.url}/v1/models`)).json()) as { data: { id: string }[] };
    assert.equal(models.data[0]!.id, BASE);
    assert.ok(models.data.some((m) => m.id === id), '/v1/models on b lists the adapter imported on a');
  });

  it('a Redis value that does not fit the model is not served: 404 on the other replica, never a 500', async () => {
    const made = await postJson(`${a.url}/v1/adapters`, { examples: examples('5'), kind: 'lora' });
    const id = made.body.id as string;
    const client = new Redis(redis.url);
    let whole: number;
    try {
      const key = `hypert5:adapter:${id}`;
      const value = readSafetensors((await client.getBuffer(key))!);
      whole = [...value.tensors.values()][0]!.data.length;
      // One tensor loses its last value; the metadata (id, kind, model fingerprint) still says it is this adapter.
      const cut = [...value.tensors].map(([name, t], i): [string, { shape: number[]; data: Float32Array }] =>
        i === 0 ? [name, { shape: [t.data.length - 1], data: t.data.slice(0, -1) }] : [name, { shape: t.shape, data: t.data }]);
      await client.set(key, writeSafetensors(cut, value.metadata));
    } finally {
      client.disconnect();
    }
    for (const url of [`${b.url}/v1/adapters/${id}`, `${b.url}/v1/adapters/${id}/parameters`]) {
      const res = await fetch(url);
      assert.equal(res.status, 404, `${url}: ${await res.text()}`);
    }
    const c = await postJson(`${b.url}/v1/completions`, { model: id, prompt: 'Katherine Johnson', max_tokens: 4, temperature: 0 });
    assert.equal(c.status, 404, JSON.stringify(c.body));
    // Replica a keeps its own good copy.
    assert.equal((await fetch(`${a.url}/v1/adapters/${id}`)).status, 200);
    // The same examples on b make the adapter again, and its copy replaces the damaged value in Redis.
    const again = await postJson(`${b.url}/v1/adapters`, { examples: examples('5'), kind: 'lora' });
    assert.equal(again.status, 201, JSON.stringify(again.body));
    assert.equal(again.body.id, id);
    const params = await Promise.all([a, b].map((s) => fetch(`${s.url}/v1/adapters/${id}/parameters`).then((r) => r.arrayBuffer())));
    assert.deepEqual(Buffer.from(params[0]!), Buffer.from(params[1]!));
    const repaired = new Redis(redis.url);
    try {
      const value = readSafetensors((await repaired.getBuffer(`hypert5:adapter:${id}`))!);
      assert.equal([...value.tensors.values()][0]!.data.length, whole, 'the Redis value is whole again');
    } finally {
      repaired.disconnect();
    }
  });

  it('a delete on one replica is seen by the other', async () => {
    const made = await postJson(`${a.url}/v1/adapters`, { examples: examples('4') });
    const id = made.body.id as string;
    assert.equal((await fetch(`${b.url}/v1/adapters/${id}`)).status, 200);
    assert.equal((await fetch(`${b.url}/v1/adapters/${id}`, { method: 'DELETE' })).status, 200);
    await eventually('replica a forgets the adapter', async () => (await fetch(`${a.url}/v1/adapters/${id}`)).status === 404);
  });
});
