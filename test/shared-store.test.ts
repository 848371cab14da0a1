/** The shared adapter store against a real redis-server: sharing, first-writer-wins, deletes, outages. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DiskAdapterStore } from '../src/adapters/disk-store.js';
import { SharedAdapterStore } from '../src/adapters/shared-store.js';
import type { AdapterRecord } from '../src/adapters/types.js';
import { removeDir, tempDir } from './helper.js';
import { eventually, freePort, RedisServer } from './redis-server.js';

const rec = (n: number, createdAt = 1): AdapterRecord => ({
  meta: { id: `ad-${String(n).padStart(32, '0')}`, kind: 'lora', model: 'm', fingerprint: 'f', num_examples: 1, created_at: createdAt, source: 'import' },
  tensors: { 'lora.a': new Float32Array(6).fill(n), 'lora.b': new Float32Array(3).fill(-n) },
});

interface Logged {
  level: 'info' | 'warn' | 'error';
  msg: string;
}

class Replica {
  readonly logs: Logged[] = [];
  readonly states: boolean[] = [];
  store!: SharedAdapterStore;
  private constructor(
    readonly dir: string,
    readonly disk: DiskAdapterStore,
  ) {}

  static async open(url: string, prefix: string): Promise<Replica> {
    const dir = tempDir();
    const r = new Replica(dir, await DiskAdapterStore.open(dir, { error: () => {} }));
    const log = {
      info: (_o: object, msg: string) => r.logs.push({ level: 'info', msg }),
      warn: (_o: object, msg: string) => r.logs.push({ level: 'warn', msg }),
      error: (_o: object, msg: string) => r.logs.push({ level: 'error', msg }),
    };
    r.store = await SharedAdapterStore.open(r.disk, { url, prefix, timeoutMs: 500, onState: (up) => r.states.push(up) }, log);
    return r;
  }

  warnings(): string[] {
    return this.logs.filter((l) => l.level === 'warn').map((l) => l.msg);
  }

  async close(): Promise<void> {
    await this.store.close();
    removeDir(this.dir);
  }
}

describe('shared adapter store (Redis)', () => {
  let redis: RedisServer;
  before(async () => {
    redis = await RedisServer.start();
  });
  after(() => redis.dispose());

  it('an adapter stored by one replica is found by the other, which keeps a local copy', async () => {
    const a = await Replica.open(redis.url, 't1:');
    const b = await Replica.open(redis.url, 't1:');
    try {
      assert.deepEqual((await a.store.put(rec(1))).created, true);
      assert.equal(await b.disk.get(rec(1).meta.id), undefined);
      const got = await b.store.get(rec(1).meta.id);
      assert.deepEqual(got, rec(1));
      assert.deepEqual(await b.disk.get(rec(1).meta.id), rec(1), 'copied to the local disk store');
      assert.deepEqual((await b.store.list()).map((m) => m.id), [rec(1).meta.id]);
      // The examples an adapter was generated from travel with it (a corrupt local copy can be regenerated).
      const withExamples = { ...rec(2), examples: [{ input: 'a', output: 'b' }] };
      await a.store.put(withExamples);
      assert.deepEqual(await b.store.get(rec(2).meta.id), withExamples);
      assert.deepEqual(a.warnings(), []);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('concurrent puts of one id: exactly one is created and both replicas keep the same copy', async () => {
    const a = await Replica.open(redis.url, 't2:');
    const b = await Replica.open(redis.url, 't2:');
    try {
      for (let round = 0; round < 5; round++) {
        const [x, y] = await Promise.all([a.store.put(rec(10 + round, 100)), b.store.put(rec(10 + round, 200))]);
        assert.equal(Number(x.created) + Number(y.created), 1, `round ${round}: one winner`);
        assert.deepEqual(x.record, y.record);
        const id = rec(10 + round).meta.id;
        assert.deepEqual(await a.disk.get(id), await b.disk.get(id), 'both local copies are the winner');
      }
      // Putting an id that already exists reports the existing adapter, not the new copy.
      const again = await b.store.put(rec(10, 999));
      assert.equal(again.created, false);
      assert.notEqual(again.record.meta.created_at, 999);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a delete on one replica removes the adapter everywhere, local copies included', async () => {
    const a = await Replica.open(redis.url, 't3:');
    const b = await Replica.open(redis.url, 't3:');
    try {
      await a.store.put(rec(3));
      assert.ok(await b.store.get(rec(3).meta.id));
      assert.equal(await b.store.delete(rec(3).meta.id), true);
      await eventually('the delete reaches replica a', async () => (await a.disk.get(rec(3).meta.id)) === undefined);
      assert.equal(await a.store.get(rec(3).meta.id), undefined);
      assert.deepEqual(await a.store.list(), []);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a delete racing reads that copy the adapter from Redis: gone everywhere afterwards, 100 times', async () => {
    const a = await Replica.open(redis.url, 't7:');
    const b = await Replica.open(redis.url, 't7:');
    try {
      for (let t = 0; t < 100; t++) {
        const r = rec(1000 + t);
        const { id } = r.meta;
        await a.store.put(r);
        // b has no local copy: each read asks Redis and writes what it finds to b's disk.
        const reads = Array.from({ length: 10 }, () => b.store.get(id));
        for (let i = 0; i < t % 8; i++) await new Promise((resolve) => setImmediate(resolve));
        // Even trials delete on the reading replica, odd ones on the other (the delete reaches b by pub/sub).
        assert.equal(await (t % 2 ? a : b).store.delete(id), true);
        await Promise.all(reads);
        await eventually(`trial ${t}: the delete reaches b's disk`, async () => (await b.disk.get(id)) === undefined);
        // A read that was still copying when the delete arrived must not have put the copy back.
        assert.equal(await b.store.get(id), undefined, `trial ${t}: b serves it after the delete`);
        assert.equal(await b.disk.get(id), undefined, `trial ${t}: b's disk has it after the delete`);
        assert.equal(await a.store.get(id), undefined, `trial ${t}: a serves it after the delete`);
      }
      assert.deepEqual(await b.store.list(), []);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a Redis outage degrades to local-only with one warning, and work done meanwhile is shared on recovery', async () => {
    const a = await Replica.open(redis.url, 't4:');
    const b = await Replica.open(redis.url, 't4:');
    try {
      await a.store.put(rec(4));
      await redis.stop();
      await eventually('replica a notices', () => a.states.at(-1) === false);
      // Local-only: puts, gets, lists and deletes keep working on each replica.
      assert.equal((await a.store.put(rec(5))).created, true);
      assert.deepEqual(await a.store.get(rec(5).meta.id), rec(5));
      assert.deepEqual(await a.store.get(rec(4).meta.id), rec(4));
      assert.equal(await b.store.get(rec(5).meta.id), undefined);
      assert.equal(await a.store.delete(rec(4).meta.id), true);
      assert.deepEqual((await a.store.list()).map((m) => m.id), [rec(5).meta.id]);
      assert.equal(a.warnings().filter((w) => w.startsWith('Redis unreachable')).length, 1, 'one warning per outage');

      await redis.resume();
      await eventually('replica a reconnects', () => a.states.at(-1) === true);
      await eventually('replica b reconnects', () => b.states.at(-1) === true);
      await eventually('the adapter made during the outage reaches b', async () => (await b.store.get(rec(5).meta.id)) !== undefined);
      assert.ok(a.logs.some((l) => l.level === 'info' && l.msg.startsWith('Redis reachable')));
      // Shared again: a new adapter on b is found by a.
      await b.store.put(rec(6));
      assert.deepEqual(await a.store.get(rec(6).meta.id), rec(6));
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('Redis unreachable at start: the replica starts local-only with a warning and joins when Redis comes', async () => {
    const late = await RedisServer.start();
    await late.stop();
    const a = await Replica.open(late.url, 't5:');
    try {
      assert.ok(a.warnings().some((w) => w.startsWith('Redis is not reachable at start')));
      assert.equal((await a.store.put(rec(7))).created, true);
      await late.resume();
      await eventually('replica a connects', () => a.states.at(-1) === true);
      const b = await Replica.open(late.url, 't5:');
      try {
        await eventually('the adapter made before Redis came reaches b', async () => (await b.store.get(rec(7).meta.id)) !== undefined);
      } finally {
        await b.close();
      }
    } finally {
      await a.close();
      await late.dispose();
    }
  });

  it('a hung Redis (commands time out) is an outage too', async () => {
    const port = await freePort();
    // A TCP server that accepts and never answers: connect succeeds, every command times out.
    const { createServer } = await import('node:net');
    const sockets = new Set<import('node:net').Socket>();
    const mute = createServer((s) => sockets.add(s)).listen(port, '127.0.0.1');
    const a = await Replica.open(`redis://127.0.0.1:${port}`, 't6:');
    try {
      assert.equal((await a.store.put(rec(8))).created, true);
      assert.deepEqual(await a.store.get(rec(8).meta.id), rec(8));
    } finally {
      await a.close();
      for (const s of sockets) s.destroy();
      mute.close();
    }
  });
});
