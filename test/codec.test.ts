/**
 * The adapter codec writes the bytes the disk store, the Redis store and the parameters route wrote before
 * it existed (stored adapters are read back, the Python side reads exports), and every layout reads back as
 * what was written.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { decodeFromDisk, decodeFromRedis, encodeForDisk, encodeForExport, encodeForRedis, shapeTable } from '../src/adapters/codec.js';
import { DiskAdapterStore } from '../src/adapters/disk-store.js';
import { RedisAdapterStore } from '../src/adapters/redis-store.js';
import type { AdapterMeta, AdapterRecord } from '../src/adapters/types.js';
import type { TensorSpec } from '../src/inference/manifest.js';

const GOLDEN = JSON.parse(readFileSync(new URL('./fixtures/adapter-codec-golden.json', import.meta.url), 'utf8')) as Record<string, string>;
const golden = (key: string): Buffer => Buffer.from(GOLDEN[key]!, 'base64');

const SPECS: TensorSpec[] = [
  { name: 'lora.q.a', dtype: 'float32', shape: [2, 3] },
  { name: 'lora.q.b', dtype: 'float32', shape: [3, 1, 2] },
];
const MANIFEST = { fingerprint: 'fp-1', kinds: { lora: SPECS, prefix: [{ name: 'prefix.k', dtype: 'float32' as const, shape: [2, 2] }] } };
const SHAPES = shapeTable([...MANIFEST.kinds.lora, ...MANIFEST.kinds.prefix]);

const values = (n: number, k: number): Float32Array => Float32Array.from({ length: n }, (_, i) => (i - k) * 0.375 + (i % 3 === 0 ? 1e-7 : 0));
const META: AdapterMeta = { id: 'ad-0123456789abcdef0123456789abcdef', kind: 'lora', model: 'tiny', fingerprint: 'fp-1', num_examples: 2, created_at: 1700000000, source: 'hypermodel' };
const RECORDS: Record<'plain' | 'odd', AdapterRecord> = {
  // Tensors in another order than the manifest's, and a recipe with quotes, a pipe and non-ASCII text.
  plain: {
    meta: META,
    tensors: { 'lora.q.b': values(6, 2), 'lora.q.a': values(6, 5) },
    examples: [{ input: 'Ada "L" | x', output: 'é ✓' }, { input: 'b', output: 'c' }],
  },
  // A tensor with a length the manifest does not give it, one the manifest does not name, no recipe.
  odd: {
    meta: { ...META, id: 'ad-ffffffffffffffffffffffffffffffff', source: 'import', num_examples: 0, owner: 'k1' },
    tensors: { 'lora.q.a': values(6, 1), 'lora.q.b': values(4, 0), 'lora.extra': new Float32Array([-0, 1.5, -2.25]) },
  },
};

const quiet = { error() {}, warn() {} };

/** A Redis that stores every value it is given and keeps the last one. */
function capturingRedis(): { redis: Redis; last: () => Buffer } {
  let blob: Buffer | undefined;
  const redis = { eval: async (_script: string, _keys: number, _key: string, _index: string, value: Buffer) => ((blob = value), 1) };
  return { redis: redis as unknown as Redis, last: () => blob! };
}

describe('adapter codec: the bytes written before it', () => {
  for (const [name, record] of Object.entries(RECORDS)) {
    for (const withManifest of [true, false]) {
      const key = `disk.${name}.${withManifest ? 'manifest' : 'nomanifest'}`;
      it(`the disk store writes ${key} as before`, async () => {
        assert.ok(encodeForDisk(record, withManifest ? SHAPES : {}).bytes.equals(golden(`${key}.safetensors`)));
        const dir = mkdtempSync(path.join(tmpdir(), 'codec-test-'));
        try {
          const store = await DiskAdapterStore.open(dir, quiet, withManifest ? { manifest: MANIFEST } : {});
          await store.put(record);
          assert.ok(readFileSync(path.join(dir, `${record.meta.id}.safetensors`)).equals(golden(`${key}.safetensors`)));
          assert.equal(readFileSync(path.join(dir, `${record.meta.id}.json`), 'utf8'), GOLDEN[`${key}.json`]);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      });
    }
    it(`the Redis store writes redis.${name} as before`, async () => {
      assert.ok(encodeForRedis(record).equals(golden(`redis.${name}`)));
      const { redis, last } = capturingRedis();
      await new RedisAdapterStore(redis, 'p:').put(record);
      assert.ok(last().equals(golden(`redis.${name}`)));
    });
  }

  it('the parameters export is the file it was: manifest order and shapes, id, kind, model, fingerprint', () => {
    assert.ok(encodeForExport(RECORDS.plain, SPECS).equals(golden('route.plain')));
  });

  it('an export of a record that lacks a tensor of its kind names the tensor', () => {
    assert.throws(() => encodeForExport(RECORDS.plain, [...SPECS, { name: 'lora.v.a', dtype: 'float32', shape: [1] }]), /no tensor lora\.v\.a/);
  });
});

// Names as the manifest has them: never integer-like, which JavaScript objects would reorder.
const tensorName = fc.stringMatching(/^[a-z]{1,6}(\.[a-z0-9_]{1,5}){0,3}$/);
const record = fc
  .record({
    tensors: fc.dictionary(tensorName, fc.float32Array({ minLength: 1, maxLength: 12 }), { minKeys: 1, maxKeys: 5, noNullPrototype: true }),
    examples: fc.option(fc.array(fc.record({ input: fc.string(), output: fc.string() }, { noNullPrototype: true }), { minLength: 1, maxLength: 3 }), { nil: undefined }),
    kind: fc.constantFrom('lora' as const, 'prefix' as const),
    /** Whether the manifest gives each tensor a 2-d shape (else it is unknown to the manifest). */
    known: fc.boolean(),
  })
  .map(({ tensors, examples, kind, known }) => {
    const r: AdapterRecord = { meta: { ...META, kind }, tensors, ...(examples ? { examples } : {}) };
    const specs: TensorSpec[] = Object.entries(tensors).map(([name, data]) => ({ name, dtype: 'float32', shape: [1, data.length] }));
    return { record: r, specs: known ? specs : [] };
  });

describe('adapter codec: every layout reads back as written', () => {
  it('Redis: the whole record, recipe included', () => {
    fc.assert(fc.property(record, ({ record: r }) => assert.deepStrictEqual(decodeFromRedis(r.meta.id, encodeForRedis(r)), r)));
  });

  it('disk: the values bit for bit, with manifest shapes where the manifest names the tensor', () => {
    fc.assert(
      fc.property(record, ({ record: r, specs }) => {
        const { bytes, shapes } = encodeForDisk(r, shapeTable(specs));
        const { file, tensors } = decodeFromDisk(bytes);
        assert.deepStrictEqual(tensors, r.tensors);
        assert.deepStrictEqual({ id: file.metadata.id, kind: file.metadata.kind }, { id: r.meta.id, kind: r.meta.kind });
        for (const [name, t] of file.tensors) {
          assert.deepStrictEqual(t.shape, shapes[name]);
          assert.deepStrictEqual(t.shape, specs.length ? [1, r.tensors[name]!.length] : [r.tensors[name]!.length]);
        }
      }),
    );
  });

  it('export: the tensors of the specs, in their order and shape', () => {
    fc.assert(
      fc.property(record, ({ record: r }) => {
        const specs = Object.entries(r.tensors).reverse().map(([name, data]): TensorSpec => ({ name, dtype: 'float32', shape: [data.length, 1] }));
        const { file, tensors } = decodeFromDisk(encodeForExport(r, specs));
        assert.deepStrictEqual([...file.tensors.keys()], specs.map((s) => s.name));
        assert.deepStrictEqual([...file.tensors.values()].map((t) => t.shape), specs.map((s) => s.shape));
        assert.deepStrictEqual(tensors, r.tensors);
      }),
    );
  });

  it('a Redis value written for another id is refused', () => {
    assert.throws(() => decodeFromRedis('ad-ffffffffffffffffffffffffffffffff', encodeForRedis(RECORDS.plain)), /describes ad-0123456789abcdef0123456789abcdef/);
  });
});
