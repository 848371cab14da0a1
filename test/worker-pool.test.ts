/** The worker pool on fake worker threads: routing, and a worker that dies (its jobs fail with a retryable 503, a replacement starts). */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import type { GenerationTask, HyperTask, Task } from '../src/engine/jobs.js';
import type { FromWorker, ToWorker, WorkerInit } from '../src/engine/protocol.js';
import { StepReport } from '../src/engine/step-report.js';
import { WorkerPool, type TaskEvents, type WorkerThread } from '../src/engine/worker-pool.js';
import { HtError } from '../src/errors/domain-error.js';

/** A worker thread that does nothing by itself: the test answers for it and kills it. */
class FakeWorker extends EventEmitter {
  readonly threadId = 1;
  readonly received: ToWorker[] = [];
  postMessage(m: ToWorker): void {
    if (m.type === 'stop') setImmediate(() => this.emit('exit', 0));
    else this.received.push(m);
  }
  async terminate(): Promise<number> {
    this.emit('exit', 1);
    return 1;
  }
  reply(m: FromWorker): void {
    this.emit('message', m);
  }
  die(code: number): void {
    this.emit('exit', code);
  }
}

const ticket = () => ({ cost: 0, rows: 1, deadlineAt: Infinity, group: {}, startedAt: null });

/** What reached each job's own handlers, by job id. */
const done: number[] = [];
const failed = new Map<number, Error>();

let nextId = 1;
function genTask(): GenerationTask {
  const job = { jobId: nextId++, promptIds: [5], adapter: null, maxNewTokens: 4, stop: [], strategy: { type: 'greedy' as const }, n: 1, stream: false };
  const handlers = { delta() {}, done: () => done.push(job.jobId), failed: (e: Error) => failed.set(job.jobId, e) };
  return { type: 'generate', job, ticket: ticket(), handlers, worker: null, over: false };
}
function hyperTask(): HyperTask {
  const job = { jobId: nextId++, kind: 'lora' as const, ids: [7] };
  return { type: 'hyper', job, ticket: ticket(), worker: null, over: false, resolve: () => done.push(job.jobId), reject: (e) => failed.set(job.jobId, e) };
}

/** A pool of `count` fake workers, all up, with its events and observer calls recorded. */
async function upPool(count: number) {
  const workers: FakeWorker[] = [];
  let spawned: (w: FakeWorker) => void = () => {};
  const spawn = (_init: WorkerInit): WorkerThread => {
    const w = new FakeWorker();
    workers.push(w);
    spawned(w);
    return w as unknown as WorkerThread;
  };
  const nextSpawn = () => new Promise<FakeWorker>((resolve) => (spawned = resolve));
  const lifecycle: string[] = [];
  const stepRows: number[] = [];
  const work: number[] = [];
  const pool = new WorkerPool(
    { modelDir: '', intraOpThreads: 1, maxBatchRows: 4 },
    count,
    { step: (rows) => stepRows.push(rows), hyperBatch() {}, worker: (i, event) => lifecycle.push(`${i} ${event}`) },
    { retryAfterS: 3, restartDelayMs: 0, spawn },
  );
  done.length = 0;
  failed.clear();
  let rooms = 0;
  const settled: number[] = [];
  const events: TaskEvents = {
    room: () => rooms++,
    step: (w) => work.push(w),
    settle: (t: Task) => {
      settled.push(t.job.jobId);
      return !t.over;
    },
  };
  pool.listen(events);
  for (const w of workers) w.reply({ type: 'ready' });
  await pool.ready;
  return { pool, workers, nextSpawn, lifecycle, settled, rooms: () => rooms, stepRows, work };
}

describe('worker pool', () => {
  it('sends a generation job to the worker with the fewest rows and routes its result back by id', async () => {
    const { pool, workers, settled } = await upPool(2);
    const a = genTask();
    const b = genTask();
    pool.send(a);
    pool.send(b);
    assert.deepEqual([a.worker, b.worker], [0, 1]);
    // Jobs go out at the end of the tick, those of one worker in one message.
    assert.deepEqual(workers[1]!.received, []);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(workers[1]!.received, [{ type: 'generate', jobs: [b.job] }]);
    workers[1]!.reply({ type: 'done', jobId: b.job.jobId, choices: [] });
    assert.deepEqual(settled, [b.job.jobId], 'the scheduler closes its books');
    assert.deepEqual(done, [b.job.jobId]);
    await pool.close();
  });

  it('among workers with as few rows, a generation job goes to one not busy with a refinement or a hypermodel run', async () => {
    const { pool } = await upPool(2);
    const hyper = hyperTask();
    pool.send(hyper);
    const a = genTask();
    pool.send(a);
    assert.deepEqual([hyper.worker, a.worker], [0, 1]);
    const b = genTask();
    pool.send(b);
    assert.equal(b.worker, 0, 'rows still come first: the worker without decode rows takes the next one');
    await pool.close();
  });

  it('a worker that dies fails only its own jobs with HT_ERR_WORKER_RESTARTING and is replaced', async () => {
    const { pool, workers, nextSpawn, lifecycle, rooms } = await upPool(2);
    const a = genTask();
    const b = genTask();
    const h = hyperTask();
    pool.send(a);
    pool.send(b);
    pool.send(h);
    assert.deepEqual([a.worker, b.worker, h.worker], [0, 1, 0]);
    const replacement = nextSpawn();
    workers[0]!.die(70);

    assert.deepEqual([...failed.keys()].sort(), [a.job.jobId, h.job.jobId]);
    const e = failed.get(a.job.jobId)!;
    assert.ok(e instanceof HtError && e.code === 'HT_ERR_WORKER_RESTARTING', String(e));
    assert.equal(e.retryAfterS, 3);
    assert.match(e.message, /exited with code 70/);
    assert.equal(pool.readyCount, 1);
    // A late message from the dead worker's job changes nothing.
    workers[0]!.reply({ type: 'done', jobId: a.job.jobId, choices: [] });
    assert.deepEqual(done, []);

    const w = await replacement;
    const roomsBefore = rooms();
    w.reply({ type: 'ready' });
    await Promise.resolve();
    assert.equal(pool.readyCount, 2);
    assert.equal(rooms(), roomsBefore + 1, 'held-back jobs are told a worker came up');
    assert.deepEqual(lifecycle, ['0 died', '0 replaced']);

    // The replacement is empty, the survivor still runs b: the next job goes to the replacement.
    const c = genTask();
    pool.send(c);
    assert.equal(c.worker, 0);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(w.received, [{ type: 'generate', jobs: [c.job] }]);
    workers[1]!.reply({ type: 'done', jobId: b.job.jobId, choices: [] });
    assert.deepEqual(done, [b.job.jobId]);
    assert.ok(!failed.has(b.job.jobId));
    await pool.close();
  });

  it('posts the jobs a worker gets in one tick as one message; a job cancelled before that never reaches it', async () => {
    const { pool, workers } = await upPool(1);
    const [a, b, c] = [genTask(), genTask(), genTask()];
    pool.send(a);
    pool.send(b);
    pool.send(c);
    pool.cancel(b);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(workers[0]!.received, [{ type: 'generate', jobs: [a.job, c.job] }]);
    const d = genTask();
    pool.send(d);
    pool.cancel(a);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(workers[0]!.received.slice(1), [{ type: 'cancel', jobId: a.job.jobId }, { type: 'generate', jobs: [d.job] }]);
    await pool.close();
  });

  it('a report of several decode steps counts each step and credits their work once', async () => {
    const { pool, workers, stepRows, work } = await upPool(1);
    workers[0]!.reply({ type: 'steps', rows: Uint16Array.of(3, 4, 1), work: 9.5 });
    assert.deepEqual(stepRows, [3, 4, 1]);
    assert.deepEqual(work, [9.5]);
    await pool.close();
  });

  it('with no worker up, send refuses with the retryable HT_ERR_WORKER_RESTARTING', async () => {
    const { pool, workers } = await upPool(1);
    workers[0]!.die(70);
    assert.throws(() => pool.send(genTask()), (e: unknown) => e instanceof HtError && e.code === 'HT_ERR_WORKER_RESTARTING');
    await pool.close();
  });
});

describe('step reports', () => {
  it('gather steps until flushed, then post them in one message with their work summed', () => {
    const posted: FromWorker[] = [];
    const report = new StepReport((m) => posted.push(m), 3, Infinity);
    report.add(2, 2.5);
    report.add(5, 6);
    assert.equal(posted.length, 0);
    report.flush();
    report.flush();
    assert.deepEqual(posted, [{ type: 'steps', rows: Uint16Array.of(2, 5), work: 8.5 }]);
    for (let i = 0; i < 3; i++) report.add(1, 1);
    assert.deepEqual(posted[1], { type: 'steps', rows: Uint16Array.of(1, 1, 1), work: 3 }, 'a full report goes without a flush');
  });

  it('post a report once it is older than its age limit', () => {
    const posted: FromWorker[] = [];
    let now = 0;
    const report = new StepReport((m) => posted.push(m), 64, 100, () => now);
    report.add(1, 1);
    now = 99;
    report.add(1, 1);
    assert.equal(posted.length, 0);
    now = 100;
    report.add(2, 1);
    assert.deepEqual(posted, [{ type: 'steps', rows: Uint16Array.of(1, 1, 2), work: 3 }]);
  });
});
