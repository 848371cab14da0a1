/** The hypermodel batcher on a fake hypermodel: batches of one kind up to maxRows, oldest first; a failure stays in its batch. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HyperBatcher, type HyperJob } from '../src/engine/hyper-batcher.js';
import type { AdapterTensors } from '../src/inference/feeds.js';
import type { AdapterKindName } from '../src/inference/manifest.js';

/** A hypermodel whose adapter echoes its input (tensor `x` = the ids), failing the calls listed (0-based). */
function fakeHypermodel(failCalls: number[] = []) {
  const calls: { kind: AdapterKindName; contexts: number[][] }[] = [];
  const run = async (kind: AdapterKindName, contexts: readonly number[][]): Promise<AdapterTensors[]> => {
    const call = calls.push({ kind, contexts: contexts.map((c) => [...c]) }) - 1;
    if (failCalls.includes(call)) throw new Error(`hyper_${kind}: run failed`);
    return contexts.map((c) => ({ x: Float32Array.from(c) }));
  };
  return { run, calls };
}

function recorder() {
  const done = new Map<number, number[]>();
  const failed = new Map<number, string>();
  const batches: number[] = [];
  return {
    done,
    failed,
    batches,
    events: {
      batch: (rows: number) => batches.push(rows),
      done: (jobId: number, t: AdapterTensors) => done.set(jobId, Array.from(t.x!)),
      failed: (jobId: number, e: Error) => failed.set(jobId, e.message),
    },
  };
}

const job = (jobId: number, kind: AdapterKindName): HyperJob => ({ jobId, kind, ids: [jobId, jobId + 100] });

async function drain(b: HyperBatcher): Promise<void> {
  for (let i = 0; i < 50 && !b.idle; i++) await b.tick();
  assert.ok(b.idle, 'batcher still busy after 50 ticks');
}

describe('hypermodel batcher', () => {
  it('runs jobs of one kind together, at most maxRows per batch, the oldest kind first', async () => {
    const model = fakeHypermodel();
    const rec = recorder();
    const b = new HyperBatcher(model.run, 2, rec.events);
    for (const j of [job(1, 'lora'), job(2, 'prefix'), job(3, 'lora'), job(4, 'lora'), job(5, 'prefix')]) b.submit(j);
    await drain(b);
    assert.deepEqual(
      model.calls.map((c) => [c.kind, c.contexts.map((ids) => ids[0])]),
      [
        ['lora', [1, 3]],
        ['prefix', [2, 5]],
        ['lora', [4]],
      ],
    );
    assert.deepEqual(rec.batches, [2, 2, 1]);
    // Each job gets the adapter made from its own examples, whatever its place in the batch.
    for (const id of [1, 2, 3, 4, 5]) assert.deepEqual(rec.done.get(id), [id, id + 100]);
    assert.equal(rec.failed.size, 0);
  });

  it('a failed run fails the jobs of its batch only; the next batch runs', async () => {
    const model = fakeHypermodel([0]);
    const rec = recorder();
    const b = new HyperBatcher(model.run, 8, rec.events);
    for (const j of [job(1, 'prefix'), job(2, 'lora'), job(3, 'prefix')]) b.submit(j);
    await drain(b);
    assert.deepEqual([...rec.failed.keys()].sort(), [1, 3]);
    assert.equal(rec.failed.get(1), 'hyper_prefix: run failed');
    assert.deepEqual([...rec.done.keys()], [2]);
  });

  it('a cancelled job never runs', async () => {
    const model = fakeHypermodel();
    const rec = recorder();
    const b = new HyperBatcher(model.run, 8, rec.events);
    b.submit(job(1, 'lora'));
    b.submit(job(2, 'lora'));
    b.cancel(1);
    await drain(b);
    assert.deepEqual(model.calls.map((c) => c.contexts.length), [1]);
    assert.deepEqual([...rec.done.keys()], [2]);
  });
});
