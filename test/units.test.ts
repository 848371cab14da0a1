/** Small units: config, safetensors, tokenizer, stopping, sampler, bundle validation messages. */
import assert from 'node:assert/strict';
import { copyFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { readSafetensors, writeSafetensors } from '../src/adapters/safetensors.js';
import { examplesId } from '../src/adapters/canonical-id.js';
import { ConfigError, loadConfig } from '../src/config/index.js';
import { StopChecker } from '../src/generation/stopping.js';
import { applyAll, topP } from '../src/generation/logits-processors.js';
import { mulberry32, rowSeed, sampleFromScores } from '../src/generation/sampler.js';
import { loadBundle } from '../src/inference/bundle.js';
import { ByteTokenizer } from '../src/inference/tokenizer.js';
import { FIXTURE, removeDir, tempDir } from './helper.js';

describe('config', () => {
  it('defaults, coercion, frozen', () => {
    const c = loadConfig({ PORT: '9000' });
    assert.equal(c.PORT, 9000);
    assert.equal(c.HOST, '0.0.0.0');
    assert.equal(c.MODEL_DIR, 'models/default');
    assert.equal(c.ADAPTER_STORE_DIR, './data/adapters');
    assert.ok(Object.isFrozen(c));
  });
  it('bad values fail naming the variable', () => {
    assert.throws(() => loadConfig({ PORT: 'eighty' }), (e: unknown) => e instanceof ConfigError && /PORT/.test(e.message));
    assert.throws(() => loadConfig({ MAX_TOKENS: '0' }), /MAX_TOKENS/);
    assert.throws(() => loadConfig({ LOG_LEVEL: 'loud' }), /LOG_LEVEL/);
  });
});

describe('safetensors', () => {
  it('round trip, aligned header', () => {
    const a = new Float32Array([1, 2, 3, 4, 5, 6]);
    const buf = writeSafetensors([['x', { shape: [2, 3], data: a }], ['y', { shape: [1], data: new Float32Array([7]) }]], { k: 'v' });
    assert.equal((8 + Number(buf.readBigUInt64LE(0))) % 8, 0);
    const f = readSafetensors(buf);
    assert.deepEqual(f.tensors.get('x')!.shape, [2, 3]);
    assert.deepEqual([...f.tensors.get('x')!.data], [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(f.metadata, { k: 'v' });
  });
  it('rejects truncated and lying headers', () => {
    assert.throws(() => readSafetensors(Buffer.alloc(4)), /at least 8/);
    const buf = writeSafetensors([['x', { shape: [2], data: new Float32Array(2) }]]);
    assert.throws(() => readSafetensors(buf.subarray(0, buf.length - 4)), /data_offsets/);
    const huge = Buffer.alloc(16);
    huge.writeBigUInt64LE(1n << 40n, 0);
    assert.throws(() => readSafetensors(huge), /exceeds/);
  });
});

describe('byte tokenizer', () => {
  const tok = new ByteTokenizer(3);
  it('utf-8 bytes + offset; decode skips specials and extra ids, replaces bad bytes', () => {
    assert.deepEqual(tok.encode('aé'), [97 + 3, 0xc3 + 3, 0xa9 + 3]);
    assert.equal(tok.decode([0, 1, 2, 100, 259, 300]), 'a');
    assert.equal(tok.decode([0xc3 + 3]), '\ufffd');
  });
});

describe('stopping and sampling', () => {
  it('finds the earliest stop and holds back possible stop starts', () => {
    const s = new StopChecker(['END', 'x']);
    assert.equal(s.find('abxEND'), 2);
    assert.equal(s.stableLength('abcdE'), 3);
    assert.equal(s.stableLength('ab\ufffd'), 0);
  });
  it('seeded sampling is deterministic; top_p keeps the nucleus', () => {
    const scores = Float64Array.from([0, 1, 2, 3]);
    const draw = (seed: number) => {
      const rng = mulberry32(seed);
      return Array.from({ length: 20 }, () => sampleFromScores(scores, rng));
    };
    assert.deepEqual(draw(5), draw(5));
    assert.notDeepEqual(draw(5), draw(6));
    assert.notEqual(rowSeed(1, 0, 0), rowSeed(1, 0, 1));
    const kept = applyAll([topP(0.8)], [0, 1, 2, 3]); // p = .03 .09 .24 .64
    assert.deepEqual([...kept].map((v) => v === -Infinity), [true, true, false, false]);
  });
  it('adapter ids are content-addressed', () => {
    const ex = [{ input: 'a', output: 'b' }];
    assert.equal(examplesId('f', 'lora', ex), examplesId('f', 'lora', [{ input: 'a', output: 'b' }]));
    assert.notEqual(examplesId('f', 'lora', ex), examplesId('g', 'lora', ex));
    assert.match(examplesId('f', 'prefix', ex), /^ad-[0-9a-f]{32}$/);
  });
});

describe('bundle validation names the file and the field', () => {
  const copy = (): string => {
    const dir = tempDir('hypert5-bundle-');
    for (const f of readdirSync(FIXTURE)) copyFileSync(path.join(FIXTURE, f), path.join(dir, f));
    return dir;
  };
  it('loads the fixture', async () => {
    const b = await loadBundle(FIXTURE);
    assert.deepEqual(b.kinds, ['lora', 'prefix']);
  });
  it('missing bundle, missing file, corrupt file, bad version, bad fingerprint', async () => {
    await assert.rejects(loadBundle('/nonexistent/bundle'), /\/nonexistent\/bundle\/manifest\.json/);
    const dir = copy();
    try {
      const mfile = path.join(dir, 'manifest.json');
      const manifest = JSON.parse(readFileSync(mfile, 'utf8'));
      writeFileSync(path.join(dir, 'decoder.onnx'), 'garbage');
      await assert.rejects(loadBundle(dir), /decoder\.onnx: sha256 .* files\.decoder\.onnx/);
      copyFileSync(path.join(FIXTURE, 'decoder.onnx'), path.join(dir, 'decoder.onnx'));
      writeFileSync(mfile, JSON.stringify({ ...manifest, format_version: 2 }));
      await assert.rejects(loadBundle(dir), /manifest\.json: field format_version is 2/);
      writeFileSync(mfile, JSON.stringify({ ...manifest, fingerprint: '0000000000000000' }));
      await assert.rejects(loadBundle(dir), /field fingerprint/);
      const g = structuredClone(manifest);
      g.graphs.decoder.inputs = g.graphs.decoder.inputs.filter((i: { name: string }) => i.name !== 'past_key');
      writeFileSync(mfile, JSON.stringify(g));
      await assert.rejects(loadBundle(dir), /field graphs\.decoder\.inputs: missing past_key/);
      writeFileSync(mfile, JSON.stringify({ ...manifest, dims: { ...manifest.dims, d_model: 'big' } }));
      await assert.rejects(loadBundle(dir), /field dims\/d_model|field dims\.d_model/);
    } finally {
      removeDir(dir);
    }
  });
});
