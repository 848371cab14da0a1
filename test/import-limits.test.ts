/**
 * Import limits: a header no longer than the manifest's tensors need (refused before it is parsed), no more
 * tensors than the kind has, values within the manifest's max_abs, short refusals; and the completion path
 * ends a row whose logits go non-finite at once instead of running to max_tokens.
 */
import assert from 'node:assert/strict';
import { copyFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { readSafetensors, writeSafetensors } from '../src/adapters/safetensors.js';
import { checkTensors } from '../src/adapters/validate-import.js';
import { HtError } from '../src/errors/domain-error.js';
import { DecodeBatcher, type StepModel } from '../src/engine/decode-batcher.js';
import type { ChoiceResult, GenerationJob } from '../src/generation/types.js';
import type { EncodedInput } from '../src/inference/encoder.js';
import { loadBundle } from '../src/inference/bundle.js';
import { DEFAULT_ADAPTER_MAX_ABS, maxAbsOf } from '../src/inference/manifest.js';
import { BASE, FIXTURE, makeApp, removeDir, tempDir } from './helper.js';

interface Body {
  error: { code: string; message: string };
}

function errorOf(res: { statusCode: number; body: string }, status: number, code: string): string {
  const body = JSON.parse(res.body) as Body;
  assert.equal(res.statusCode, status, res.body.slice(0, 500));
  assert.equal(body.error.code, code, res.body.slice(0, 500));
  return body.error.message;
}

type Entry = [string, { shape: number[]; data: Float32Array }];
const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** A safetensors file whose header is written by hand: any names, any count, zero-size tensors. */
function rawFile(header: Record<string, unknown>): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const out = Buffer.alloc(8 + json.length);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(out, 8);
  return out;
}

describe('import limits', () => {
  let app: FastifyInstance;
  before(async () => {
    app = await makeApp({ IMPORT_LIMIT_BYTES: 32 * 1024 * 1024, MAX_TOKENS: 20 });
  });
  after(() => app.close());

  const lora = () => app.engine.bundle.table.kinds.lora!;
  const up = (payload: Buffer, q = '') =>
    app.inject({ method: 'POST', url: `/v1/adapters/import${q}`, payload, headers: { 'content-type': 'application/octet-stream' } });
  const filled = (value: (name: string) => number, extra: Entry[] = []): Buffer =>
    writeSafetensors([
      ...lora().map((s): Entry => [s.name, { shape: s.shape, data: new Float32Array(numel(s.shape)).fill(value(s.name)) }]),
      ...extra,
    ]);

  it('a header far longer than the tensors need is refused before it is parsed, with a short answer', async () => {
    // 200,000 zero-size tensors: a 12 MB header of unexpected names.
    const header: Record<string, unknown> = {};
    for (let i = 0; i < 200_000; i++) header[`lora.unexpected.${i}`] = { dtype: 'F32', shape: [0], data_offsets: [0, 0] };
    const file = rawFile(header);
    assert.ok(file.length > 10_000_000);
    const parsed: number[] = [];
    const parse = JSON.parse;
    JSON.parse = ((text: string, reviver?: Parameters<typeof parse>[1]) => {
      parsed.push(text.length);
      return parse(text, reviver);
    }) as typeof JSON.parse;
    let res;
    try {
      res = await up(file);
    } finally {
      JSON.parse = parse;
    }
    const message = errorOf(res, 422, 'HT_ERR_ADAPTER_MISMATCH');
    assert.match(message, /header is \d+ bytes; the limit is \d+/);
    assert.ok(Math.max(0, ...parsed) < 1_000_000, `a ${Math.max(...parsed)}-character string was JSON-parsed`);
    assert.ok(res.body.length < 2048, `the refusal is ${res.body.length} bytes`);
  });

  it('more tensors than the kind has are refused by count', async () => {
    const extra = [0, 1, 2].map((i): Entry => [`lora.extra.${i}`, { shape: [1], data: new Float32Array(1) }]);
    const message = errorOf(await up(filled(() => 0, extra)), 422, 'HT_ERR_ADAPTER_MISMATCH');
    assert.match(message, new RegExp(`holds ${lora().length + 3} tensors; the limit is ${lora().length}`));
  });

  it('a refusal lists at most five names, each shortened, and says how many more', async () => {
    const specs = lora();
    const long = 'x'.repeat(3_000); // twelve such names still fit the header limit
    const renamed = writeSafetensors(specs.map((s, i): Entry => [`lora.renamed.${i}.${long}`, { shape: s.shape, data: new Float32Array(numel(s.shape)) }]));
    const res = await up(renamed);
    const message = errorOf(res, 422, 'HT_ERR_ADAPTER_MISMATCH');
    assert.ok(specs.length > 5);
    assert.match(message, new RegExp(`and ${specs.length - 5} more`));
    assert.ok(message.includes(specs[0]!.name));
    assert.ok(!message.includes(specs[5]!.name));
    assert.ok(res.body.length < 2048, `the refusal is ${res.body.length} bytes`);
  });

  it('every adapter tensor of the fixture declares max_abs', () => {
    for (const kind of app.engine.bundle.kinds) {
      for (const s of app.engine.bundle.table.kinds[kind]!) assert.equal(typeof s.max_abs, 'number', s.name);
    }
  });

  it('finite values beyond max_abs are refused, naming the tensor, the value and the bound', async () => {
    const first = lora()[0]!;
    const message = errorOf(await up(filled(() => 3.4e38)), 422, 'HT_ERR_ADAPTER_OUT_OF_RANGE');
    assert.ok(message.includes(first.name), message);
    assert.match(message, /3\.4\d*e\+38/);
    assert.ok(message.includes(`max_abs ${first.max_abs}`), message);
  });

  it('values at max_abs are accepted, the next float32 above is refused', async () => {
    const bound = new Map(lora().map((s) => [s.name, s.max_abs!]));
    const at = await up(filled((n) => -bound.get(n)!));
    assert.equal(at.statusCode, 201, at.body);
    const target = lora()[1]!;
    const above = new Float32Array([bound.get(target.name)!]);
    new Uint32Array(above.buffer)[0]! += 1;
    assert.ok(above[0]! > bound.get(target.name)!);
    const message = errorOf(await up(filled((n) => (n === target.name ? above[0]! : 0))), 422, 'HT_ERR_ADAPTER_OUT_OF_RANGE');
    assert.ok(message.includes(target.name), message);
  });

  /** An adapter stored before the bound existed: in the store, never through the import checks. */
  async function storeOverflowing(): Promise<string> {
    const id = `ad-${'e'.repeat(32)}`;
    const tensors = Object.fromEntries(lora().map((s) => [s.name, new Float32Array(numel(s.shape)).fill(3.4e38)]));
    const m = app.engine.bundle.manifest;
    await app.adapterStore.put({
      meta: { id, kind: 'lora', model: m.name, fingerprint: m.fingerprint, num_examples: 0, created_at: 0, source: 'import' },
      tensors,
    });
    return id;
  }

  const decodeSteps = async () => (await app.metrics.decodeBatchRows.get()).values.find((v) => v.metricName === 'hypert5_decode_batch_rows_count')?.value ?? 0;

  it('a completion whose logits go non-finite fails after its first step instead of running to max_tokens', async () => {
    const id = await storeOverflowing();
    const before = await decodeSteps();
    const res = await app.inject({ method: 'POST', url: '/v1/completions', payload: { model: id, prompt: 'abc', max_tokens: 20, temperature: 0 } });
    assert.notEqual(res.statusCode, 200, res.body);
    assert.equal((await decodeSteps()) - before, 1);
    // The base model still answers.
    const base = await app.inject({ method: 'POST', url: '/v1/completions', payload: { model: BASE, prompt: 'abc', max_tokens: 3, temperature: 0 } });
    assert.equal(base.statusCode, 200, base.body);
  });

  it('... and the client gets a 422 naming the adapter as the cause', async () => {
    const id = await storeOverflowing();
    const res = await app.inject({ method: 'POST', url: '/v1/completions', payload: { model: id, prompt: 'abc', max_tokens: 20, temperature: 0 } });
    assert.match(errorOf(res, 422, 'HT_ERR_NON_FINITE_LOGITS'), /adapter/);
  });
});

describe('max_abs in the manifest', () => {
  it('a tensor without max_abs (a bundle older than the field) gets the documented default', () => {
    const spec = { name: 'lora.encoder.self.q.a', dtype: 'float32' as const, shape: [1, 2] };
    assert.equal(maxAbsOf(spec), DEFAULT_ADAPTER_MAX_ABS);
    assert.equal(maxAbsOf({ ...spec, max_abs: 7 }), 7);
    const file = (v: number) => readSafetensors(writeSafetensors([[spec.name, { shape: [1, 2], data: new Float32Array([0, v]) }]]));
    assert.doesNotThrow(() => checkTensors(file(DEFAULT_ADAPTER_MAX_ABS), 'lora', [spec]));
    assert.throws(() => checkTensors(file(2 * DEFAULT_ADAPTER_MAX_ABS), 'lora', [spec]), (e: unknown) => e instanceof HtError && e.code === 'HT_ERR_ADAPTER_OUT_OF_RANGE');
  });

  it('the bundle loads without the field and refuses a max_abs that is not a positive number, naming it', async () => {
    const dir = tempDir('hypert5-bundle-');
    try {
      for (const f of readdirSync(FIXTURE)) copyFileSync(path.join(FIXTURE, f), path.join(dir, f));
      const mfile = path.join(dir, 'manifest.json');
      const manifest = JSON.parse(readFileSync(mfile, 'utf8'));
      for (const t of manifest.adapters.kinds.lora.tensors) delete t.max_abs;
      writeFileSync(mfile, JSON.stringify(manifest));
      assert.equal(maxAbsOf((await loadBundle(dir)).table.kinds.lora![0]!), DEFAULT_ADAPTER_MAX_ABS);
      manifest.adapters.kinds.lora.tensors[0].max_abs = 0;
      writeFileSync(mfile, JSON.stringify(manifest));
      await assert.rejects(loadBundle(dir), /field adapters\.kinds\.lora\.tensors\.0\.max_abs/);
    } finally {
      removeDir(dir);
    }
  });
});

describe('safetensors refusals are bounded', () => {
  it('a megabyte name or dtype is cut in the message', () => {
    const name = 'n'.repeat(1_000_000);
    const header = Buffer.from(JSON.stringify({ [name]: { dtype: 'Q'.repeat(1_000_000), shape: [0], data_offsets: [0, 0] } }));
    const buf = Buffer.concat([Buffer.alloc(8), header]);
    buf.writeBigUInt64LE(BigInt(header.length), 0);
    assert.throws(() => readSafetensors(buf), (e: unknown) => e instanceof Error && /unknown dtype/.test(e.message) && e.message.length < 400);
  });
});

describe('the decode loop and non-finite logits', () => {
  const V = 5;
  const job = (jobId: number, adapter: GenerationJob['adapter']): GenerationJob => ({
    jobId, promptIds: [jobId], adapter, maxNewTokens: 10, stop: [], strategy: { type: 'greedy' }, n: 1, stream: false,
  });
  const lora = { kind: 'lora' as const, tensors: {} };

  /**
   * A fake model: the rows of the jobs in `poisoned` get NaN logits from the second step on; the others
   * pick token 4 twice, then eos (1). The encoder output carries the job id (as srcLen) to tell rows apart.
   */
  function run(jobs: GenerationJob[], poisoned: number[]) {
    const failed = new Map<number, Error>();
    const done = new Map<number, ChoiceResult[]>();
    let steps = 0;
    const model: StepModel = {
      encode: async (items) => items.map((it): EncodedInput => ({ crossKey: new Float32Array(0), crossValue: new Float32Array(0), srcLen: it.ids[0]! })),
      step: async (rows) => {
        steps++;
        const logits = new Float32Array(rows.length * V);
        rows.forEach((r, i) => {
          const row = logits.subarray(i * V, (i + 1) * V);
          if (poisoned.includes(r.enc.srcLen) && steps >= 2) row.fill(NaN);
          else row[steps >= 3 ? 1 : 4] = 10;
        });
        return { logits, vocab: V, newKey: rows.map(() => new Float32Array(0)), newValue: rows.map(() => new Float32Array(0)) };
      },
    };
    const loop = new DecodeBatcher(model, {
      eos: 1,
      decoderStart: 0,
      decode: (ids) => ids.join(','),
      events: { delta: () => {}, done: (id, c) => done.set(id, c), failed: (id, e) => failed.set(id, e) },
    }, 8);
    for (const j of jobs) loop.submit(j);
    const drain = async () => {
      for (let i = 0; i < 20 && !loop.idle; i++) await loop.tick();
    };
    return { drain, failed, done, steps: () => steps };
  }

  it('a row with an adapter fails with HT_ERR_NON_FINITE_LOGITS at that step; its batch-mates finish', async () => {
    const { drain, failed, done, steps } = run([job(11, lora), job(12, null)], [11]);
    await drain();
    const e = failed.get(11);
    assert.ok(e instanceof HtError && e.code === 'HT_ERR_NON_FINITE_LOGITS', String(e));
    assert.match(e.message, /lora adapter drove the logits to NaN at generated token 2/);
    assert.equal(done.has(11), false);
    assert.deepEqual(done.get(12)?.map((c) => c.tokenIds), [[4, 4]]);
    assert.equal(steps(), 3);
  });

  it('without an adapter the model itself failed: not a client error', async () => {
    const { drain, failed, steps } = run([job(13, null)], [13]);
    await drain();
    const e = failed.get(13);
    assert.ok(e instanceof Error && !(e instanceof HtError), String(e));
    assert.match(e.message, /base model's logits hold NaN at generated token 2/);
    assert.equal(steps(), 2);
  });
});
