/**
 * Cross-boundary parity of refinement: the service's refined adapter for a fixed request on the tiny fixture has
 * exactly the bytes (sha256 of every tensor's float32 data) and the losses the Python ONNX Runtime reference
 * gives, the code the evaluation runs (training/hypert5/refine_runtime.py). Both run the step graph on one
 * intra-op thread. Regenerate the golden with training/hypert5/golden_refine.py.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { readSafetensors } from '../src/adapters/safetensors.js';
import { makeApp } from './helper.js';

interface GoldenCase {
  kind: 'lora' | 'prefix';
  examples: { input: string; output: string }[];
  refine: { steps: number; learning_rate?: number; augment: 'none' | 'leave-one-out' };
  parent_sha256: Record<string, string>;
  refined_sha256: Record<string, string>;
  loss_first: number;
  loss_last: number;
}

const GOLDEN = JSON.parse(readFileSync(new URL('./fixtures/refine-golden-tiny.json', import.meta.url), 'utf8')) as { bundle_fingerprint: string; cases: GoldenCase[] };

async function digests(app: FastifyInstance, id: string): Promise<Record<string, string>> {
  const res = await app.inject(`/v1/adapters/${id}/parameters`);
  assert.equal(res.statusCode, 200);
  const out: Record<string, string> = {};
  for (const [name, t] of readSafetensors(res.rawPayload).tensors) {
    out[name] = createHash('sha256').update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)).digest('hex');
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

describe('refinement parity with the Python ONNX Runtime reference (tiny fixture)', () => {
  let app: FastifyInstance;
  before(async () => {
    app = await makeApp();
  });
  after(() => app.close());

  it('the golden was made from this bundle', () => {
    assert.equal(GOLDEN.bundle_fingerprint, app.engine.bundle.manifest.fingerprint);
  });

  for (const [i, c] of GOLDEN.cases.entries()) {
    it(`case ${i} (${c.kind}, ${c.refine.steps} steps, ${c.refine.augment}): identical tensor bytes and losses`, async () => {
      const res = await app.inject({ method: 'POST', url: '/v1/adapters', payload: { examples: c.examples, kind: c.kind, refine: c.refine } });
      assert.equal(res.statusCode, 201, res.body);
      const body = res.json<{ id: string; parent: string; refine: { loss_first: number; loss_last: number } }>();
      // The starting point first: a different parent would explain any difference below.
      assert.deepEqual(await digests(app, body.parent), c.parent_sha256);
      assert.deepEqual(await digests(app, body.id), c.refined_sha256);
      // float32 losses, widened to float64 on both sides: exactly equal.
      assert.equal(body.refine.loss_first, c.loss_first);
      assert.equal(body.refine.loss_last, c.loss_last);
    });
  }
});
