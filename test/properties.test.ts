/** Property-based (fast-check): example canonicalization, adapter id stability, id format as the path guard. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { examplesId, isAdapterId } from '../src/adapters/canonical-id.js';
import { DiskAdapterStore } from '../src/adapters/disk-store.js';
import { makeApp, removeDir, tempDir } from './helper.js';

// Strings that stress canonical forms: JSON and serialization separators, unicode, empty strings.
const tricky = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 12 }),
  fc.string({ unit: fc.constantFrom('"', ',', '[', ']', '\\', '\n', ' | ', 'in: ', ' out: ', 'é', 'e\u0301', '\u0000', 'a'), maxLength: 8 }),
);
const example = fc.record({ input: tricky, output: tricky });
const examples = fc.array(example, { minLength: 1, maxLength: 6 });
const kind = fc.constantFrom('lora' as const, 'prefix' as const);
const FP = '0123456789abcdef';

describe('adapter ids (properties)', () => {
  it('are a pure function of the examples: copies, JSON round trips and key order give the same id', () => {
    fc.assert(
      fc.property(examples, kind, (ex, k) => {
        const id = examplesId(FP, k, ex);
        assert.ok(isAdapterId(id));
        assert.equal(examplesId(FP, k, JSON.parse(JSON.stringify(ex))), id);
        assert.equal(examplesId(FP, k, ex.map((e) => ({ output: e.output, input: e.input }))), id);
        assert.equal(examplesId(FP, k, ex.map((e) => ({ ...e, note: 'ignored' }))), id);
      }),
      { numRuns: 300 },
    );
  });

  it('differ whenever the examples differ (content, order, split between input and output), or the kind, model or owner', () => {
    fc.assert(
      fc.property(examples, examples, kind, (a, b, k) => {
        const same = JSON.stringify(a.map((e) => [e.input, e.output])) === JSON.stringify(b.map((e) => [e.input, e.output]));
        assert.equal(examplesId(FP, k, a) === examplesId(FP, k, b), same);
        assert.notEqual(examplesId(FP, 'lora', a), examplesId(FP, 'prefix', a));
        assert.notEqual(examplesId(FP, k, a), examplesId('fedcba9876543210', k, a));
        assert.notEqual(examplesId(FP, k, a), examplesId(FP, k, a, 'key-0123456789abcdef'));
        assert.notEqual(examplesId(FP, k, a, 'key-0123456789abcdef'), examplesId(FP, k, a, 'key-fedcba9876543210'));
      }),
      { numRuns: 300 },
    );
    // Moving text between input and output, or across examples, is a different adapter.
    fc.assert(
      fc.property(tricky, tricky, tricky, (x, y, z) => {
        fc.pre(y.length > 0);
        assert.notEqual(examplesId(FP, 'prefix', [{ input: x + y, output: z }]), examplesId(FP, 'prefix', [{ input: x, output: y + z }]));
        assert.notEqual(
          examplesId(FP, 'prefix', [{ input: x, output: y }, { input: z, output: '' }]),
          examplesId(FP, 'prefix', [{ input: x, output: y + z }]),
        );
      }),
    );
  });

  it('are stable across versions (a changed hash would orphan every stored adapter)', () => {
    assert.equal(examplesId(FP, 'prefix', [{ input: 'Ada Lovelace', output: 'Lovelace, A.' }]), 'ad-830da73e5ccd32a24a3a541862a063c8');
    // No unicode normalization: the tokenizer sees the exact bytes, so NFC and NFD are different tasks.
    assert.notEqual(examplesId(FP, 'prefix', [{ input: 'é', output: '' }]), examplesId(FP, 'prefix', [{ input: 'e\u0301', output: '' }]));
  });

  it('only the id format reaches the file system: anything else is refused before a path is built', async () => {
    const dir = tempDir();
    try {
      const store = await DiskAdapterStore.open(dir, { error: () => {} });
      await fc.assert(
        fc.asyncProperty(fc.string({ unit: fc.constantFrom('a', 'd', '-', '0', 'f', '.', '/', '\\', '%', '\u0000'), maxLength: 40 }), async (s) => {
          fc.pre(!isAdapterId(s));
          assert.equal(await store.get(s), undefined);
          assert.equal(await store.delete(s), false);
          assert.equal(await store.recover(s), undefined);
        }),
        { numRuns: 200 },
      );
      fc.assert(
        fc.property(fc.stringMatching(/^ad-[0-9a-f]{32}$/), (id) => {
          assert.ok(isAdapterId(id));
          assert.equal(path.basename(path.join(dir, `${id}.json`)), `${id}.json`);
        }),
      );
    } finally {
      removeDir(dir);
    }
  });
});

describe('adapter ids over HTTP (properties)', () => {
  let app: FastifyInstance;
  before(async () => {
    app = await makeApp({ ADAPTER_CACHE_BYTES: 0 });
  });
  after(() => app.close());

  it('the same examples always answer the same id, the second time from the store', async () => {
    const printable = fc.string({ unit: 'grapheme', minLength: 0, maxLength: 16 });
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ input: printable, output: printable }), { minLength: 1, maxLength: 4 }), kind, async (ex, k) => {
        const first = await app.inject({ method: 'POST', url: '/v1/adapters', payload: { examples: ex, kind: k } });
        assert.ok([200, 201].includes(first.statusCode), first.body);
        const again = await app.inject({ method: 'POST', url: '/v1/adapters', payload: { examples: ex, kind: k } });
        assert.equal(again.statusCode, 200);
        assert.equal(again.json().id, first.json().id);
        assert.equal(again.json().id, examplesId(app.engine.bundle.manifest.fingerprint, k, ex));
        assert.equal(again.json().cached, true);
      }),
      { numRuns: 25 },
    );
  });
});
