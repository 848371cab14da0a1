/** Small units: config, safetensors, tokenizer, stopping, sampler, bundle validation messages. */
import assert from 'node:assert/strict';
import { copyFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { readSafetensors, writeSafetensors } from '../src/adapters/safetensors.js';
import { checkTensors } from '../src/adapters/validate-import.js';
import { HtError } from '../src/errors/domain-error.js';
import { examplesId } from '../src/adapters/canonical-id.js';
import { ConfigError, loadConfig } from '../src/config/index.js';
import { parseTrustProxy } from '../src/config/trust-proxy.js';
import { StopChecker } from '../src/generation/stopping.js';
import { applyAll, topP } from '../src/generation/logits-processors.js';
import { mulberry32, rowSeed, sampleFromScores } from '../src/generation/sampler.js';
import { loadBundle } from '../src/inference/bundle.js';
import { ByteTokenizer, loadTokenizer } from '../src/inference/tokenizer.js';
import type { Manifest } from '../src/inference/manifest.js';
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
  it('TRUST_PROXY: empty, a hop count, or addresses, ranges and presets; anything else names the entry', () => {
    assert.equal(parseTrustProxy(''), false);
    assert.equal(parseTrustProxy('2'), 2);
    assert.deepEqual(parseTrustProxy('10.0.0.0/8, 192.168.1.7,loopback,fd00::/8'), ['10.0.0.0/8', '192.168.1.7', 'loopback', 'fd00::/8']);
    for (const [bad, named] of [['0', /at least 1/], ['10.0.0.0/33', /"10\.0\.0\.0\/33"/], ['proxy.internal', /"proxy\.internal"/], ['10.0.0.1,', /"" is not/], ['1.2.3.4/8/8', /"1\.2\.3\.4\/8\/8"/]] as const) {
      assert.throws(() => loadConfig({ TRUST_PROXY: bad }), (e: unknown) => e instanceof ConfigError && /TRUST_PROXY/.test(e.message) && named.test(e.message), bad);
    }
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

describe('adapter upload checks', () => {
  // A "peft" prefix kind (models/README.md, "Adapter kinds"): key, value and a 0/1 mask per position.
  const specs = [
    { name: 'prefix.decoder.self.key', dtype: 'float32' as const, shape: [1, 2, 3, 4] },
    { name: 'prefix.decoder.self.mask', dtype: 'float32' as const, shape: [3] },
  ];
  const upload = (mask: number[]) =>
    readSafetensors(writeSafetensors([
      ['prefix.decoder.self.key', { shape: [1, 2, 3, 4], data: new Float32Array(24).fill(0.5) }],
      ['prefix.decoder.self.mask', { shape: [3], data: Float32Array.from(mask) }],
    ]));
  const refusal = (mask: number[]) => {
    try {
      checkTensors(upload(mask), 'prefix', specs);
    } catch (e) {
      assert.ok(e instanceof HtError);
      return `${e.code}: ${e.message}`;
    }
    return 'accepted';
  };

  it('accepts a mask of zeros and ones, zeros first (a shorter prefix)', () => {
    assert.equal(refusal([0, 1, 1]), 'accepted');
    assert.equal(refusal([1, 1, 1]), 'accepted');
  });

  it('refuses mask values other than 0 and 1, and an all-zero mask, naming the tensor', () => {
    assert.match(refusal([1, 0.5, 1]), /^HT_ERR_ADAPTER_MISMATCH: .*prefix\.decoder\.self\.mask holds 0\.5 at flat index 1; a mask holds only 0 and 1/);
    assert.match(refusal([1, 2, 1]), /holds 2 at flat index 1/);
    assert.match(refusal([0, 0, 0]), /is all 0/);
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

describe('tokenizer.json tokenizer', () => {
  it('decodes an empty completion (eos first) to an empty string and drops special ids', async () => {
    const dir = tempDir();
    try {
      writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify({
        version: '1.0', truncation: null, padding: null, added_tokens: [], normalizer: null,
        pre_tokenizer: { type: 'Whitespace' }, post_processor: null, decoder: null,
        model: { type: 'WordLevel', vocab: { '<pad>': 0, '</s>': 1, '<unk>': 2, hello: 3, world: 4 }, unk_token: '<unk>' },
      }));
      const manifest = { tokenizer: { type: 'tokenizers', file: 'tokenizer.json' }, special_ids: { pad: 0, eos: 1, unk: 2, decoder_start: 0 } };
      const tok = await loadTokenizer(dir, manifest as unknown as Manifest);
      assert.deepEqual(tok.encode('hello world'), [3, 4]);
      assert.equal(tok.decode([]), '');
      assert.equal(tok.decode([0, 1]), '');
      assert.equal(tok.decode([3, 1]), 'hello');
    } finally {
      removeDir(dir);
    }
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
  it('refuses a version-1 bundle (stacked decoder inputs), naming how to re-export it', async () => {
    const dir = tempDir('hypert5-bundle-');
    try {
      writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ format: 'hypert5-bundle', format_version: 1 }));
      await assert.rejects(
        loadBundle(dir),
        /manifest\.json: field format_version is 1; this service reads version 2 .*python -m hypert5\.unbundle --bundle <old> --out <dir>.*python -m hypert5\.export --checkpoint <dir> --out <new>/,
      );
    } finally {
      removeDir(dir);
    }
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
      writeFileSync(mfile, JSON.stringify({ ...manifest, format_version: 3 }));
      await assert.rejects(loadBundle(dir), /manifest\.json: field format_version is 3; this service reads version 2/);
      writeFileSync(mfile, JSON.stringify({ ...manifest, fingerprint: '0000000000000000' }));
      await assert.rejects(loadBundle(dir), /field fingerprint/);
      const g = structuredClone(manifest);
      g.graphs.decoder.inputs = g.graphs.decoder.inputs.filter((i: { name: string }) => i.name !== 'past_key.1');
      writeFileSync(mfile, JSON.stringify(g));
      await assert.rejects(loadBundle(dir), /manifest\.json: field graphs\.decoder\.inputs: missing past_key\.1/);
      writeFileSync(mfile, JSON.stringify({ ...manifest, dims: { ...manifest.dims, d_model: 'big' } }));
      await assert.rejects(loadBundle(dir), /field dims\/d_model|field dims\.d_model/);
    } finally {
      removeDir(dir);
    }
  });
});
