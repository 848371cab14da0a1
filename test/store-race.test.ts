/**
 * DELETE wins against reads running at the same moment: once a delete has answered, the adapter is gone
 * from the disk and the LRU, and no read that was in flight puts it back. Each race runs 100 times.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { DiskAdapterStore } from '../src/adapters/disk-store.js';
import { LruAdapterStore } from '../src/adapters/lru.js';
import type { AdapterRecord } from '../src/adapters/types.js';
import { makeApp, removeDir, tempDir } from './helper.js';

const TRIALS = 100;
const READERS = 10;

const rec = (n: number): AdapterRecord => ({
  meta: { id: `ad-${String(n).padStart(32, '0')}`, kind: 'lora', model: 'm', fingerprint: 'f', num_examples: 1, created_at: 1, source: 'import' },
  tensors: { 'lora.a': new Float32Array(64).fill(n), 'lora.b': new Float32Array(32).fill(-n) },
});

const noCounts = { hit: () => {}, miss: () => {}, evict: () => {}, bytes: () => {} };

function onDisk(dir: string, id: string): string[] {
  return readdirSync(dir).filter((f) => f.includes(id));
}

describe('a delete racing reads', () => {
  it('disk store: gone afterwards, and no read mistakes the delete for corruption', async () => {
    const dir = tempDir();
    const errors: string[] = [];
    try {
      const disk = await DiskAdapterStore.open(dir, { error: (_o, msg) => errors.push(msg) });
      for (let t = 0; t < TRIALS; t++) {
        const r = rec(t);
        await disk.put(r);
        const reads = Array.from({ length: READERS }, () => disk.get(r.meta.id));
        assert.equal(await disk.delete(r.meta.id), true);
        await Promise.all(reads);
        assert.equal(await disk.get(r.meta.id), undefined, `trial ${t}: get after delete`);
        assert.deepEqual(onDisk(dir, r.meta.id), [], `trial ${t}: files left`);
      }
      assert.deepEqual(readdirSync(path.join(dir, 'quarantine')), [], 'nothing quarantined');
      assert.deepEqual(errors, []);
    } finally {
      removeDir(dir);
    }
  });

  it('LRU over disk: a read that missed the cache never caches a deleted adapter', async () => {
    const dir = tempDir();
    try {
      const disk = await DiskAdapterStore.open(dir, { error: () => {} });
      for (let t = 0; t < TRIALS; t++) {
        const r = rec(t);
        await disk.put(r);
        // A fresh cache each trial: every read misses and goes to the disk, as after a restart.
        const lru = new LruAdapterStore(disk, 1 << 20, noCounts);
        const reads = Array.from({ length: READERS }, () => lru.get(r.meta.id));
        // The delete starts at a different point of the reads' disk I/O each trial.
        for (let i = 0; i < t % 8; i++) await new Promise((resolve) => setImmediate(resolve));
        assert.equal(await lru.delete(r.meta.id), true);
        await Promise.all(reads);
        // A cached copy would answer here without touching the (empty) disk.
        assert.equal(await lru.get(r.meta.id), undefined, `trial ${t}: served after delete`);
        assert.deepEqual(onDisk(dir, r.meta.id), [], `trial ${t}: files left`);
      }
    } finally {
      removeDir(dir);
    }
  });

  it('HTTP with a small cache: GET and completions answer 404 after DELETE answered 200', async () => {
    const dir = tempDir();
    // Room for one LoRA adapter of the tiny model (12 tensors of 2 x 64 x 4 floats).
    const app = await makeApp({ ADAPTER_STORE_DIR: dir, ADAPTER_CACHE_BYTES: 12 * 2 * 64 * 4 * 4 });
    try {
      const filler = (await app.inject({ method: 'POST', url: '/v1/adapters', payload: { examples: [{ input: 'a', output: 'b' }], kind: 'lora' } })).json().id as string;
      const params = (await app.inject(`/v1/adapters/${filler}/parameters`)).rawPayload;
      // Imports: no examples to regenerate from, so a copy served after the delete could only come from the race.
      for (let t = 0; t < TRIALS; t++) {
        const imp = await app.inject({ method: 'POST', url: '/v1/adapters/import', payload: params, headers: { 'content-type': 'application/octet-stream' } });
        assert.equal(imp.statusCode, 201, imp.body);
        const id = imp.json().id as string;
        // Evicts the import from the cache: the reads below miss it and go to the disk.
        assert.equal((await app.inject(`/v1/adapters/${filler}`)).statusCode, 200);
        const reads = Array.from({ length: READERS }, () => app.inject(`/v1/adapters/${id}`));
        const del = await app.inject({ method: 'DELETE', url: `/v1/adapters/${id}` });
        assert.equal(del.statusCode, 200, del.body);
        for (const r of await Promise.all(reads)) assert.ok([200, 404].includes(r.statusCode), r.body);
        assert.equal((await app.inject(`/v1/adapters/${id}`)).statusCode, 404, `trial ${t}: GET after delete`);
        const c = await app.inject({ method: 'POST', url: '/v1/completions', payload: { model: id, prompt: 'x', max_tokens: 1 } });
        assert.equal(c.statusCode, 404, `trial ${t}: completion after delete`);
        assert.equal(existsSync(path.join(dir, `${id}.json`)), false);
      }
    } finally {
      await app.close();
      removeDir(dir);
    }
  });
});
