/**
 * Files on disk are not trusted: a stored adapter whose metadata or tensors no longer match the manifest
 * (a valid checksum notwithstanding) is quarantined and treated like a corrupt one; files of interrupted
 * writes are swept at start-up.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { tensorsId } from '../src/adapters/canonical-id.js';
import { recordMismatch, type StoreManifest } from '../src/adapters/check-stored.js';
import { DiskAdapterStore } from '../src/adapters/disk-store.js';
import { readSafetensors, writeSafetensors } from '../src/adapters/safetensors.js';
import type { AdapterRecord } from '../src/adapters/types.js';
import type { TensorSpec } from '../src/inference/manifest.js';
import { makeApp, removeDir, tempDir } from './helper.js';

const SPECS: TensorSpec[] = [
  { name: 'lora.a', dtype: 'float32', shape: [2, 3] },
  { name: 'lora.b', dtype: 'float32', shape: [3, 2] },
];
const MANIFEST: StoreManifest = { fingerprint: 'f', kinds: { lora: SPECS, prefix: [{ name: 'prefix.k', dtype: 'float32', shape: [6] }] } };

function imported(seed: number): AdapterRecord {
  const tensors = { 'lora.a': new Float32Array(6).fill(seed), 'lora.b': new Float32Array(6).fill(-seed) };
  const id = tensorsId('f', 'lora', SPECS, tensors);
  return { meta: { id, kind: 'lora', model: 'm', fingerprint: 'f', num_examples: 0, created_at: 1, source: 'import' }, tensors };
}

type Tensors = [string, { shape: number[]; data: Float32Array }][];

/** Replaces the tensors file and records its checksum in the .json, as a careful tamperer would. */
function swapTensors(dir: string, id: string, tensors: Tensors, metadata: Record<string, string>): void {
  const st = writeSafetensors(tensors, metadata);
  writeFileSync(path.join(dir, `${id}.safetensors`), st);
  const jsonFile = path.join(dir, `${id}.json`);
  const mf = JSON.parse(readFileSync(jsonFile, 'utf8'));
  mf.sha256 = createHash('sha256').update(st).digest('hex');
  writeFileSync(jsonFile, JSON.stringify(mf));
}

function editMeta(dir: string, id: string, edit: (meta: Record<string, unknown>) => void): void {
  const jsonFile = path.join(dir, `${id}.json`);
  const mf = JSON.parse(readFileSync(jsonFile, 'utf8'));
  edit(mf.meta);
  writeFileSync(jsonFile, JSON.stringify(mf));
}

const six = (v: number) => new Float32Array(6).fill(v);

const TAMPERINGS: { what: string; reason: RegExp; tamper: (dir: string, r: AdapterRecord) => void }[] = [
  { what: 'the .json kind changed (checksum still valid)', reason: /kind/, tamper: (dir, r) => editMeta(dir, r.meta.id, (m) => (m.kind = 'prefix')) },
  {
    what: 'a tensor with the wrong shape',
    reason: /lora\.a has shape \[3, 2\]; the manifest says \[2, 3\]/,
    tamper: (dir, r) => swapTensors(dir, r.meta.id, [['lora.a', { shape: [3, 2], data: six(1) }], ['lora.b', { shape: [3, 2], data: six(-1) }]], { id: r.meta.id, kind: 'lora' }),
  },
  {
    what: 'a tensor missing and another not in the manifest',
    reason: /lora\.b is missing/,
    tamper: (dir, r) => swapTensors(dir, r.meta.id, [['lora.a', { shape: [2, 3], data: six(1) }], ['lora.c', { shape: [3, 2], data: six(-1) }]], { id: r.meta.id, kind: 'lora' }),
  },
  {
    what: 'an extra tensor',
    reason: /lora\.z is not in the manifest/,
    tamper: (dir, r) =>
      swapTensors(dir, r.meta.id, [['lora.a', { shape: [2, 3], data: six(1) }], ['lora.b', { shape: [3, 2], data: six(1) }], ['lora.z', { shape: [1], data: new Float32Array(1) }]], { id: r.meta.id, kind: 'lora' }),
  },
  {
    what: 'the tensors of another adapter under this id (names and shapes right)',
    reason: /do not hash to the adapter id/,
    tamper: (dir, r) => swapTensors(dir, r.meta.id, [['lora.a', { shape: [2, 3], data: six(9) }], ['lora.b', { shape: [3, 2], data: six(-9) }]], { id: r.meta.id, kind: 'lora' }),
  },
  {
    what: "another adapter's tensors file",
    reason: /belongs to adapter ad-0+1/,
    tamper: (dir, r) => swapTensors(dir, r.meta.id, [['lora.a', { shape: [2, 3], data: six(1) }], ['lora.b', { shape: [3, 2], data: six(-1) }]], { id: `ad-${'0'.repeat(31)}1`, kind: 'lora' }),
  },
];

describe('stored adapters are checked against the manifest on read', () => {
  for (const t of TAMPERINGS) {
    it(`${t.what}: quarantined, logged, not served`, async () => {
      const dir = tempDir();
      const logged: string[] = [];
      try {
        const store = await DiskAdapterStore.open(dir, { error: (o) => logged.push((o as { reason: string }).reason) }, { manifest: MANIFEST });
        const r = imported(1);
        await store.put(r);
        assert.deepEqual(await store.get(r.meta.id), r, 'untouched, it is served');
        t.tamper(dir, r);
        assert.equal(await store.get(r.meta.id), undefined);
        assert.equal(logged.length, 1);
        assert.match(logged[0]!, t.reason);
        assert.deepEqual(readdirSync(path.join(dir, 'quarantine')).map((f) => f.split('.').at(-1)).sort(), ['json', 'safetensors']);
        assert.equal(existsSync(path.join(dir, `${r.meta.id}.json`)), false);
      } finally {
        removeDir(dir);
      }
    });
  }

  it("another model's adapter is not judged by this manifest (the service hides it; a rollback serves it again)", async () => {
    const dir = tempDir();
    try {
      const store = await DiskAdapterStore.open(dir, { error: (o) => assert.fail(JSON.stringify(o)) }, { manifest: MANIFEST });
      const other: AdapterRecord = { ...imported(2), meta: { ...imported(2).meta, fingerprint: 'older' }, tensors: { 'lora.q': new Float32Array(4) } };
      await store.put(other);
      assert.deepEqual(await store.get(other.meta.id), other);
    } finally {
      removeDir(dir);
    }
  });

  it('start-up sweeps tensors files without their .json and temp files, and keeps complete entries', async () => {
    const dir = tempDir();
    try {
      const r = imported(3);
      await (await DiskAdapterStore.open(dir, { error: () => {} }, { manifest: MANIFEST })).put(r);
      const orphan = `ad-${'a'.repeat(32)}.safetensors`;
      writeFileSync(path.join(dir, orphan), writeSafetensors([['lora.a', { shape: [2, 3], data: six(1) }]]));
      writeFileSync(path.join(dir, `.ad-${'b'.repeat(32)}.json.0123456789ab.tmp`), '{"half": ');
      const warned: object[] = [];
      const store = await DiskAdapterStore.open(dir, { error: () => {}, warn: (o) => warned.push(o) }, { manifest: MANIFEST });
      assert.deepEqual(readdirSync(dir).sort(), [`${r.meta.id}.json`, `${r.meta.id}.safetensors`, 'quarantine']);
      assert.equal(warned.length, 1);
      assert.deepEqual(await store.get(r.meta.id), r);
    } finally {
      removeDir(dir);
    }
  });
});

describe('a record whose tensors arrive flat (a Redis value) is checked against the manifest', () => {
  const cases: { what: string; edit: (r: AdapterRecord) => AdapterRecord; reason: RegExp | undefined }[] = [
    { what: 'whole', edit: (r) => r, reason: undefined },
    { what: 'a tensor one value short', edit: (r) => ({ ...r, tensors: { ...r.tensors, 'lora.a': new Float32Array(5) } }), reason: /lora\.a has 5 values; the manifest's shape \[2, 3\] holds 6/ },
    { what: 'a tensor missing', edit: (r) => ({ ...r, tensors: { 'lora.a': r.tensors['lora.a']! } }), reason: /lora\.b is missing/ },
    { what: 'a tensor too many', edit: (r) => ({ ...r, tensors: { ...r.tensors, 'lora.c': six(0) } }), reason: /lora\.c is not in the manifest's lora adapter/ },
    { what: 'a kind the model lacks', edit: (r) => ({ ...r, meta: { ...r.meta, kind: 'ia3' as never } }), reason: /kind "ia3"/ },
    { what: 'an import with other values', edit: (r) => ({ ...r, tensors: { ...r.tensors, 'lora.b': six(9) } }), reason: /do not hash to the adapter id/ },
    { what: "another model's", edit: (r) => ({ ...r, meta: { ...r.meta, fingerprint: 'older' }, tensors: {} }), reason: undefined },
  ];
  for (const c of cases) {
    it(`${c.what}: ${c.reason ? 'refused, with the reason' : 'accepted'}`, () => {
      const why = recordMismatch(c.edit(imported(4)), MANIFEST);
      if (c.reason) assert.match(why ?? '', c.reason);
      else assert.equal(why, undefined);
    });
  }
});

describe('tampered files over HTTP', () => {
  it('an import whose .json kind was changed: 404 on GET, /parameters and completions, never 500', async () => {
    const dir = tempDir();
    const app = await makeApp({ ADAPTER_STORE_DIR: dir, ADAPTER_CACHE_BYTES: 0 });
    try {
      const made = (await app.inject({ method: 'POST', url: '/v1/adapters', payload: { examples: [{ input: 'a', output: 'b' }], kind: 'lora' } })).json();
      const params = (await app.inject(`/v1/adapters/${made.id}/parameters`)).rawPayload;
      const imp = (await app.inject({ method: 'POST', url: '/v1/adapters/import', payload: params, headers: { 'content-type': 'application/octet-stream' } })).json();
      editMeta(dir, imp.id, (m) => (m.kind = 'prefix'));
      for (const req of [{ url: `/v1/adapters/${imp.id}` }, { url: `/v1/adapters/${imp.id}/parameters` }]) {
        const r = await app.inject(req);
        assert.equal(r.statusCode, 404, `${req.url}: ${r.body}`);
      }
      const c = await app.inject({ method: 'POST', url: '/v1/completions', payload: { model: imp.id, prompt: 'x', max_tokens: 2 } });
      assert.equal(c.statusCode, 404, c.body);
    } finally {
      await app.close();
      removeDir(dir);
    }
  });

  it('a generated adapter whose tensors were swapped (checksum recomputed) is regenerated from its examples', async () => {
    const dir = tempDir();
    const app = await makeApp({ ADAPTER_STORE_DIR: dir, ADAPTER_CACHE_BYTES: 0 });
    try {
      const made = (await app.inject({ method: 'POST', url: '/v1/adapters', payload: { examples: [{ input: 'a', output: 'b' }], kind: 'lora' } })).json();
      const params = (await app.inject(`/v1/adapters/${made.id}/parameters`)).rawPayload;
      // The last tensor dropped, the rest flattened: names and shapes no longer the manifest's.
      const file = readSafetensors(readFileSync(path.join(dir, `${made.id}.safetensors`)));
      swapTensors(dir, made.id, [...file.tensors].slice(0, -1).map(([n, t]) => [n, { shape: [t.data.length], data: t.data }]), { id: made.id, kind: 'lora' });
      const r = await app.inject(`/v1/adapters/${made.id}`);
      assert.equal(r.statusCode, 200, r.body);
      assert.deepEqual((await app.inject(`/v1/adapters/${made.id}/parameters`)).rawPayload, params);
      const c = await app.inject({ method: 'POST', url: '/v1/completions', payload: { model: made.id, prompt: 'x', max_tokens: 2 } });
      assert.equal(c.statusCode, 200, c.body);
      // Deleted, it stays deleted: the quarantined recipe goes with it.
      assert.equal((await app.inject({ method: 'DELETE', url: `/v1/adapters/${made.id}` })).statusCode, 200);
      assert.equal((await app.inject(`/v1/adapters/${made.id}`)).statusCode, 404);
      assert.deepEqual(readdirSync(path.join(dir, 'quarantine')), []);
    } finally {
      await app.close();
      removeDir(dir);
    }
  });

  it('a refined adapter found corrupt, its parent too, is refined again from its recipe: the same bytes and metadata', async () => {
    const dir = tempDir();
    const app = await makeApp({ ADAPTER_STORE_DIR: dir, ADAPTER_CACHE_BYTES: 0 });
    try {
      const examples = [{ input: 'a', output: 'b' }, { input: 'cc', output: 'dd' }];
      const made = (await app.inject({ method: 'POST', url: '/v1/adapters', payload: { examples, kind: 'lora', refine: { steps: 3 } } })).json();
      assert.equal(made.refine.steps, 3);
      const params = (await app.inject(`/v1/adapters/${made.id}/parameters`)).rawPayload;
      for (const id of [made.id as string, made.parent as string]) {
        const file = readSafetensors(readFileSync(path.join(dir, `${id}.safetensors`)));
        swapTensors(dir, id, [...file.tensors].slice(0, -1), { id, kind: 'lora' });
      }
      const r = await app.inject(`/v1/adapters/${made.id}`);
      assert.equal(r.statusCode, 200, r.body);
      assert.deepEqual({ ...r.json<Record<string, unknown>>(), cached: made.cached }, made);
      assert.deepEqual((await app.inject(`/v1/adapters/${made.id}/parameters`)).rawPayload, params);
      assert.equal((await app.inject(`/v1/adapters/${made.parent}`)).statusCode, 200);
    } finally {
      await app.close();
      removeDir(dir);
    }
  });
});
