/** The adapter store: survives a restart, quarantines corrupt files, LRU bounded in bytes. */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { DiskAdapterStore } from '../src/adapters/disk-store.js';
import { LruAdapterStore } from '../src/adapters/lru.js';
import type { AdapterRecord } from '../src/adapters/types.js';
import { BASE, makeApp, removeDir, tempDir } from './helper.js';

const EXAMPLES = [{ input: 'Ada Lovelace', output: 'Lovelace, A.' }];

describe('adapter persistence', () => {
  it('a new app on the same store dir keeps adapters (and never recomputes them)', async () => {
    const dir = tempDir();
    try {
      const a = await makeApp({ ADAPTER_STORE_DIR: dir });
      const created = await a.inject({ method: 'POST', url: '/v1/adapters', payload: { examples: EXAMPLES, kind: 'lora' } });
      const id = created.json().id;
      const before = (await a.inject({ method: 'POST', url: '/v1/completions', payload: { model: id, prompt: 'Grace', max_tokens: 6, temperature: 0 } })).json();
      await a.close();

      const b = await makeApp({ ADAPTER_STORE_DIR: dir });
      try {
        const again = await b.inject({ method: 'POST', url: '/v1/adapters', payload: { examples: EXAMPLES, kind: 'lora' } });
        assert.equal(again.statusCode, 200);
        assert.equal(again.json().id, id);
        assert.equal(again.json().created_at, created.json().created_at);
        const after = (await b.inject({ method: 'POST', url: '/v1/completions', payload: { model: id, prompt: 'Grace', max_tokens: 6, temperature: 0 } })).json();
        assert.deepEqual(after.choices, before.choices);
        const models = (await b.inject('/v1/models')).json();
        assert.deepEqual(models.data.map((m: { id: string }) => m.id), [BASE, id]);
      } finally {
        await b.close();
      }
    } finally {
      removeDir(dir);
    }
  });

  it('a corrupt file is quarantined, never served, and regenerated from its examples', async () => {
    const dir = tempDir();
    try {
      const app = await makeApp({ ADAPTER_STORE_DIR: dir, ADAPTER_CACHE_BYTES: 0 });
      try {
        const created = (await app.inject({ method: 'POST', url: '/v1/adapters', payload: { examples: EXAMPLES } })).json();
        const id = created.id;
        const params = (await app.inject(`/v1/adapters/${id}/parameters`)).rawPayload;
        const file = path.join(dir, `${id}.safetensors`);
        const bytes = readFileSync(file);
        bytes[bytes.length - 1]! ^= 0xff;
        writeFileSync(file, bytes);
        // The corrupt copy is never served: the same examples give the same adapter, bit for bit.
        const r = await app.inject(`/v1/adapters/${id}`);
        assert.equal(r.statusCode, 200);
        assert.deepEqual(r.json(), { ...created, cached: true });
        assert.deepEqual(readdirSync(path.join(dir, 'quarantine')).map((f) => f.split('.').at(-1)).sort(), ['json', 'safetensors']);
        assert.deepEqual((await app.inject(`/v1/adapters/${id}/parameters`)).rawPayload, params);
        assert.notDeepEqual(readFileSync(file), bytes);

        // An imported adapter has no examples: corrupt, it is quarantined and gone (404), never served.
        const imp = (await app.inject({ method: 'POST', url: '/v1/adapters/import', payload: params, headers: { 'content-type': 'application/octet-stream' } })).json();
        const impFile = path.join(dir, `${imp.id}.safetensors`);
        const ib = readFileSync(impFile);
        ib[ib.length - 1]! ^= 0xff;
        writeFileSync(impFile, ib);
        const gone = await app.inject(`/v1/adapters/${imp.id}`);
        assert.equal(gone.statusCode, 404);
        assert.equal(gone.json().error.code, 'HT_ERR_ADAPTER_NOT_FOUND');
      } finally {
        await app.close();
      }
    } finally {
      removeDir(dir);
    }
  });

  it('the LRU is bounded in bytes, counts hits, misses and evictions', async () => {
    const dir = tempDir();
    try {
      const disk = await DiskAdapterStore.open(dir, { error: () => {} });
      const counts = { hit: 0, miss: 0, evict: 0, bytes: 0 };
      const lru = new LruAdapterStore(disk, 100, {
        hit: () => counts.hit++,
        miss: () => counts.miss++,
        evict: () => counts.evict++,
        bytes: (b) => (counts.bytes = b),
      });
      const rec = (n: number): AdapterRecord => ({
        meta: { id: `ad-${String(n).padStart(32, '0')}`, kind: 'lora', model: 'm', fingerprint: 'f', num_examples: 1, created_at: 0, source: 'hypermodel' },
        tensors: { 'lora.x': new Float32Array(10).fill(n) },
      });
      await lru.put(rec(1));
      await lru.put(rec(2));
      assert.equal(counts.bytes, 80);
      await lru.get(rec(1).meta.id);
      await lru.put(rec(3));
      assert.equal(counts.evict, 1);
      assert.equal(counts.bytes, 80);
      const two = await lru.get(rec(2).meta.id);
      assert.equal(two!.tensors['lora.x']![0], 2);
      assert.deepEqual({ hit: counts.hit, miss: counts.miss }, { hit: 1, miss: 1 });
      assert.equal(await lru.delete(rec(2).meta.id), true);
      assert.equal(await lru.get(rec(2).meta.id), undefined);
    } finally {
      removeDir(dir);
    }
  });
});
