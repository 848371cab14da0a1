/**
 * A full disk: a create is refused with 507 and Retry-After, a failed write leaves no file behind, and
 * /readyz is 503 until a write succeeds or the file system shows the space again.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { DiskAdapterStore } from '../src/adapters/disk-store.js';
import { readSafetensors, writeSafetensors } from '../src/adapters/safetensors.js';
import { nodeFs, StoreFullError, type StoreFs } from '../src/adapters/store-fs.js';
import type { AdapterRecord, AdapterStore } from '../src/adapters/types.js';
import { HtError } from '../src/errors/domain-error.js';
import { httpStatus } from '../src/errors/handler.js';
import { AdapterService } from '../src/services/adapters.js';
import { makeApp, removeDir, tempDir } from './helper.js';

const rec = (n: number): AdapterRecord => ({
  meta: { id: `ad-${String(n).padStart(32, '0')}`, kind: 'lora', model: 'm', fingerprint: 'f', num_examples: 1, created_at: 1, source: 'import' },
  tensors: { 'lora.a': new Float32Array(64).fill(n) },
});

const errno = (code: string): NodeJS.ErrnoException => Object.assign(new Error(`${code}: injected`), { code });

/** The real file system, except that the chosen write fails with `code` after writing half its data. */
class FailingFs {
  failWith: string | undefined;
  /** Fail only writes whose file name contains this (all writes when empty). */
  failOn = '';
  free = 0;
  readonly fs: StoreFs = {
    ...nodeFs,
    writeSynced: async (file, data) => {
      if (this.failWith && path.basename(file).includes(this.failOn)) {
        await nodeFs.writeSynced(file, data.slice(0, Math.floor(data.length / 2)));
        throw errno(this.failWith);
      }
      await nodeFs.writeSynced(file, data);
    },
    freeBytes: async () => this.free,
  };
}

const litter = (dir: string): string[] => readdirSync(dir).filter((f) => f !== 'quarantine');

describe('disk store on a full disk (injected ENOSPC)', () => {
  it('the write is refused as StoreFullError, leaves no file, and health is bad until a write succeeds', async () => {
    const dir = tempDir();
    try {
      const f = new FailingFs();
      const store = await DiskAdapterStore.open(dir, { error: () => {} }, { fs: f.fs });
      assert.deepEqual(await store.health(), { ok: true });
      f.failWith = 'ENOSPC';
      await assert.rejects(store.put(rec(1)), (e: Error) => e instanceof StoreFullError && /ADAPTER_STORE_DIR/.test(e.message) && /ENOSPC/.test(e.message));
      assert.deepEqual(litter(dir), [], 'no temp file, no tensors file');
      const h = await store.health();
      assert.equal(h.ok, false);
      assert.match(h.ok ? '' : h.reason, /full.*ENOSPC.*0 bytes are free/);
      // Space comes back, but the probe has not seen it yet: still unhealthy; a successful write clears it.
      f.failWith = undefined;
      assert.equal((await store.health()).ok, false);
      await store.put(rec(2));
      assert.deepEqual(await store.health(), { ok: true });
      assert.deepEqual(await store.get(rec(2).meta.id), rec(2));
    } finally {
      removeDir(dir);
    }
  });

  it('EDQUOT is a full store too; the free-space probe alone makes it healthy again', async () => {
    const dir = tempDir();
    try {
      const f = new FailingFs();
      const store = await DiskAdapterStore.open(dir, { error: () => {} }, { fs: f.fs });
      f.failWith = 'EDQUOT';
      await assert.rejects(store.put(rec(1)), StoreFullError);
      assert.equal((await store.health()).ok, false);
      f.free = 1 << 20;
      assert.deepEqual(await store.health(), { ok: true });
    } finally {
      removeDir(dir);
    }
  });

  it('a failure on the metadata write removes the new tensors file as well', async () => {
    const dir = tempDir();
    try {
      const f = new FailingFs();
      const store = await DiskAdapterStore.open(dir, { error: () => {} }, { fs: f.fs });
      f.failWith = 'ENOSPC';
      f.failOn = '.json.';
      await assert.rejects(store.put(rec(1)), StoreFullError);
      assert.deepEqual(litter(dir), []);
      // An entry that was already there keeps its files: only the metadata rewrite failed.
      f.failWith = undefined;
      await store.put(rec(2));
      f.failWith = 'ENOSPC';
      await assert.rejects(store.put(rec(2)), StoreFullError);
      assert.deepEqual(litter(dir).sort(), [`${rec(2).meta.id}.json`, `${rec(2).meta.id}.safetensors`]);
      assert.deepEqual(await store.get(rec(2).meta.id), rec(2));
    } finally {
      removeDir(dir);
    }
  });

  it('any other write failure also removes the temp file, and is not reported as a full store', async () => {
    const dir = tempDir();
    try {
      const f = new FailingFs();
      const store = await DiskAdapterStore.open(dir, { error: () => {} }, { fs: f.fs });
      f.failWith = 'EIO';
      await assert.rejects(store.put(rec(1)), (e: Error) => !(e instanceof StoreFullError) && /EIO/.test(e.message));
      assert.deepEqual(litter(dir), []);
      assert.deepEqual(await store.health(), { ok: true });
    } finally {
      removeDir(dir);
    }
  });

  it('the service answers a full store with HT_ERR_STORE_FULL (507) and Retry-After', async () => {
    const app = await makeApp();
    try {
      const made = await app.inject({ method: 'POST', url: '/v1/adapters', payload: { examples: [{ input: 'a', output: 'b' }], kind: 'lora' } });
      const params = (await app.inject(`/v1/adapters/${made.json().id}/parameters`)).rawPayload;
      const full: AdapterStore = {
        get: async () => undefined,
        put: async () => {
          throw new StoreFullError('the adapter store (ADAPTER_STORE_DIR) has no space');
        },
        delete: async () => false,
        list: async () => [],
      };
      const service = new AdapterService({
        manifest: app.engine.bundle.manifest,
        store: full,
        engine: app.engine.scheduler,
        recipe: (kind, examples) => app.validator.recipe(kind, examples),
        retryAfterS: 7,
        created: () => {},
      });
      const imported = app.validator.import(params, {});
      const examples = app.validator.newAdapter({ examples: [{ input: 'c', output: 'd' }], kind: 'lora' });
      for (const attempt of [() => service.import(imported), () => service.getOrCreate(examples)]) {
        await assert.rejects(attempt(), (e: unknown) => {
          assert.ok(e instanceof HtError);
          assert.deepEqual([e.code, httpStatus(e.code), e.retryAfterS], ['HT_ERR_STORE_FULL', 507, 7]);
          assert.match(e.message, /ADAPTER_STORE_DIR/);
          return true;
        });
      }
    } finally {
      await app.close();
    }
  });
});

/** A tmpfs of `size` mounted on a new folder, or undefined where mounting is not allowed (not root). */
function mountTmpfs(size: string): string | undefined {
  const dir = mkdtempSync(path.join(tmpdir(), 'hypert5-tmpfs-'));
  if (spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]).status === 0) return dir;
  rmdirSync(dir);
  return undefined;
}

function unmount(dir: string): void {
  spawnSync('umount', [dir]);
  rmdirSync(dir);
}

describe('on a real full file system (tmpfs)', () => {
  const mnt = mountTmpfs('160k');
  it('507 with Retry-After, no temp files, /readyz 503 until a delete frees the space', { skip: mnt ? false : 'mount -t tmpfs is not allowed here' }, async () => {
    const dir = path.join(mnt!, 'adapters');
    const app = await makeApp({ ADAPTER_STORE_DIR: dir, RETRY_AFTER_S: 3 });
    try {
      const first = await app.inject({ method: 'POST', url: '/v1/adapters', payload: { examples: [{ input: 'a', output: 'b' }], kind: 'lora' } });
      assert.equal(first.statusCode, 201, first.body);
      const file = readSafetensors((await app.inject(`/v1/adapters/${first.json().id}/parameters`)).rawPayload);
      const upload = (n: number): Buffer => {
        const tensors = [...file.tensors].map(([name, t]): [string, { shape: number[]; data: Float32Array }] => [name, { shape: t.shape, data: Float32Array.from(t.data) }]);
        tensors[0]![1].data[0] = n; // a different adapter (and id) each time
        return writeSafetensors(tensors);
      };
      const made: string[] = [];
      let refused;
      for (let n = 1; n <= 20 && !refused; n++) {
        const r = await app.inject({ method: 'POST', url: '/v1/adapters/import', payload: upload(n), headers: { 'content-type': 'application/octet-stream' } });
        if (r.statusCode === 201) made.push(r.json().id);
        else refused = r;
      }
      assert.ok(refused, 'the tmpfs never filled up');
      assert.equal(refused.statusCode, 507, refused.body);
      assert.equal(refused.json().error.code, 'HT_ERR_STORE_FULL');
      assert.equal(refused.headers['retry-after'], '3');
      assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'temp files left on the full disk');
      assert.equal(readdirSync(dir).filter((f) => f.endsWith('.safetensors')).length, made.length + 1, 'a tensors file without its metadata');

      const notReady = await app.inject('/readyz');
      assert.equal(notReady.statusCode, 503);
      assert.equal(notReady.json().error.code, 'HT_ERR_STORE_UNHEALTHY');
      assert.match(notReady.json().error.message, /full/);
      assert.equal(notReady.headers['retry-after'], '3');

      assert.equal((await app.inject({ method: 'DELETE', url: `/v1/adapters/${made.pop()}` })).statusCode, 200);
      assert.equal((await app.inject('/readyz')).statusCode, 200);
    } finally {
      await app.close();
      unmount(mnt!);
    }
  });
});
