/**
 * Admission by cost on a fake clock and a fake worker pool: no workers, no timing. The throughput is the
 * prior or what the test credits, so every expected wait below is exact arithmetic.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HtError } from '../src/errors/domain-error.js';
import { httpStatus } from '../src/errors/handler.js';
import type { ChoiceResult, GenerationJob } from '../src/generation/types.js';
import { ADMIT_SHARE, Admission } from '../src/engine/admission.js';
import { generationCost, jobRows, rowWork } from '../src/engine/cost.js';
import { Scheduler, type SchedulerPool } from '../src/engine/scheduler.js';
import { ThroughputEstimate } from '../src/engine/throughput.js';
import type { GenerationHandlers, GenerationTask, Task } from '../src/engine/jobs.js';
import type { TaskEvents } from '../src/engine/worker-pool.js';

class FakeClock {
  t = 0;
  now(): number {
    return this.t;
  }
}

function refusal(fn: () => void): HtError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof HtError, String(e));
    return e;
  }
  assert.fail('expected a refusal');
}

/** 100 token-steps/s, a 10 s deadline: a newcomer may expect at most 8 s (ADMIT_SHARE). */
function admission(clock: FakeClock, deadlineMs = 10_000): Admission {
  return new Admission({ deadlineMs, priorRate: 100, retryAfterS: 1, clock, estimate: new ThroughputEstimate(100) });
}

describe('cost', () => {
  it('is rows × max_tokens steps weighted by position, plus the prompt, rows being beams or n', () => {
    // Positions 0 … 511 at 1 + p / 32 each: 512 + 512 × 511 / 64.
    assert.equal(rowWork(512), 4600);
    assert.equal(rowWork(1), 1);
    const base = { promptIds: [5, 6, 7], maxNewTokens: 512 };
    assert.equal(generationCost({ ...base, n: 8, strategy: { type: 'sample', temperature: 1, topP: 1, seed: 0, promptIndex: 0 } }), 8 * 4600 + 3);
    assert.equal(generationCost({ ...base, n: 1, strategy: { type: 'beam', numBeams: 4, lengthPenalty: 1 } }), 4 * 4600 + 3);
    assert.equal(jobRows({ n: 2, strategy: { type: 'greedy' } }), 2);
  });
});

describe('throughput estimate', () => {
  it('starts at the prior, rises with work done and falls with busy time that did none', () => {
    const e = new ThroughputEstimate(100, 5, 30);
    assert.equal(e.rate, 100);
    e.record(1000, 5); // (1000 + 100 × 5) / (5 + 5)
    assert.equal(e.rate, 150);
    e.record(0, 30); // half of both fades: (500 + 500) / (2.5 + 30 + 5)
    assert.ok(Math.abs(e.rate - 1000 / 37.5) < 1e-9, String(e.rate));
  });
});

describe('admission', () => {
  it('admits cheap requests behind queued work and refuses one whose expected wait exceeds the deadline', () => {
    const clock = new FakeClock();
    const a = admission(clock);
    a.enter(500, 1, true, {}); // queued: 5 s of work at 100 token-steps/s
    a.check(100); // (500 + 100) / 100 = 6 s <= 8 s
    a.check(300); // exactly 8 s
    const e = refusal(() => a.check(700)); // 12 s
    assert.equal(e.code, 'HT_ERR_OVERLOADED');
    assert.equal(httpStatus(e.code), 429);
    assert.equal(e.retryAfterS, 4, 'retry once 4 s of the backlog drained');
    assert.match(e.message, /500 token-steps.*700 token-steps.*12\.0 s.*100 token-steps\/s.*8\.0 s \(0\.8 × REQUEST_DEADLINE_MS 10000\)/);
    assert.equal(ADMIT_SHARE, 0.8);
    // 10 s of work could never fit behind anything: retry once the whole backlog (5 s) drained.
    assert.equal(refusal(() => a.check(1000)).retryAfterS, 5);
  });

  it('admits anything into an idle service, and nothing is refused on cost without a deadline', () => {
    const clock = new FakeClock();
    admission(clock).check(1e9);
    const none = admission(clock, 0);
    none.enter(1e9, 1, true, {});
    none.check(1e9);
  });

  it('counts the progress of running jobs: the backlog drains at the measured rate', () => {
    const clock = new FakeClock();
    const a = admission(clock);
    const t = a.enter(1000, 4, true, {});
    a.start(t);
    assert.equal(refusal(() => a.check(700)).code, 'HT_ERR_OVERLOADED'); // (1000 + 700) / 100 = 17 s
    clock.t = 5000; // 5 s of busy time with nothing credited: the rate falls to 100 × 5 / 10 = 50
    a.progress(500); // ... and 500 token-steps done bring it to (500 + 500) / 10 = 100
    assert.equal(a.rate, 100);
    assert.equal(Math.round(a.backlog()), 500);
    a.check(300); // (500 + 300) / 100 = 8 s
  });

  it('sheds a queued job whose deadline can no longer be met, and only when others share the service', () => {
    const clock = new FakeClock();
    const a = admission(clock);
    const lone = a.enter(5000, 1, true, {}); // 50 s of work, one request: kept (it delays no one)
    assert.deepEqual(a.doomed([lone]), []);
    a.finish(lone, false);

    const running = a.enter(300, 1, true, {});
    a.start(running);
    const next = a.enter(400, 1, true, {});
    const last = a.enter(400, 1, true, {});
    // At t = 0: next ends at (300 + 400) / 100 = 7 s, last at 11 s: past its 10 s deadline.
    assert.deepEqual(a.doomed([next, last]).map((d) => [d.ticket, d.lateS]), [[last, 1]]);
    // 3 s later with no work credited: the rate is 100 × 5 / 8 = 62.5, the running job is 187.5 token-steps
    // along by that rate, and the next one would end at 3 + (112.5 + 400) / 62.5 = 11.2 s.
    clock.t = 3000;
    const late = a.doomed([next]);
    assert.equal(late.length, 1, 'the measured slowdown sheds the next one too');
    assert.ok(Math.abs(late[0]!.lateS - 1.2) < 1e-9, String(late[0]!.lateS));
  });

  it('counts busy time in worker-seconds: one job on one of two workers halves the time charged', () => {
    const clock = new FakeClock();
    const a = new Admission({ deadlineMs: 10_000, priorRate: 100, retryAfterS: 1, clock, busyShare: () => 0.5, estimate: new ThroughputEstimate(100) });
    a.start(a.enter(1000, 8, true, {}));
    clock.t = 5000;
    a.progress(250); // (250 + 500) / (2.5 + 5): the idle worker's capacity is not lost from the rate
    assert.equal(a.rate, 100);
  });

  it('credits a completed job with the part of its cost the decode steps did not', () => {
    const clock = new FakeClock();
    const a = admission(clock);
    const t = a.enter(1000, 1, true, {});
    a.start(t);
    clock.t = 5000;
    a.progress(200); // a job that stopped after 200 of its 1000 budgeted token-steps
    a.finish(t, true, 200);
    assert.equal(a.rate, (1000 + 100 * 5) / (5 + 5));
  });
});

/** A pool with one worker of `maxRows` rows that runs nothing: the test settles jobs by hand. */
class FakePool implements SchedulerPool {
  ready = Promise.resolve();
  readyCount = 1;
  busyShare = 1;
  rows = 0;
  sent: GenerationTask[] = [];
  private events: TaskEvents | null = null;
  constructor(private readonly maxRows: number) {}
  listen(events: TaskEvents): void {
    this.events = events;
  }
  hasRoom(rows: number): boolean {
    return this.rows === 0 || this.rows + rows <= this.maxRows;
  }
  send(task: Task): void {
    if (task.type !== 'generate') throw new Error('not used');
    task.worker = 0;
    this.sent.push(task);
    this.rows += task.job.n;
  }
  cancel(task: Task): void {
    if (task.type === 'generate') this.rows -= task.job.n;
  }
  /** The worker finished the `i`-th job sent, each choice `tokens` long. */
  finish(i: number, tokens: number): void {
    const task = this.sent[i]!;
    this.rows -= task.job.n;
    const choices: ChoiceResult[] = Array.from({ length: task.job.n }, (_, c) => ({ choice: c, text: '', finishReason: 'length', tokenIds: Array(tokens).fill(3) }));
    if (this.events!.settle(task, true, choices)) task.handlers.done(choices);
    this.events!.room();
  }
  failAll(): void {}
  async close(): Promise<void> {}
}

function job(n: number, maxNewTokens: number): Omit<GenerationJob, 'jobId'> {
  return { promptIds: [], adapter: null, maxNewTokens, stop: [], strategy: { type: 'greedy' }, n, stream: false };
}

async function scheduler(pool: FakePool, clock: FakeClock, queueSize = 16) {
  const events = { refused: 0, shed: 0 };
  const s = new Scheduler(pool, { queueSize, retryAfterS: 1, deadlineMs: 10_000, priorTokensPerS: 100, maxBatchRows: 8, clock }, {
    depth: () => {},
    refused: () => events.refused++,
    shed: () => events.shed++,
  });
  await pool.ready;
  await Promise.resolve();
  return { s, events };
}

function outcome() {
  const o = { done: false, error: null as HtError | null };
  const handlers: GenerationHandlers = {
    delta: () => {},
    done: () => (o.done = true),
    failed: (e) => (o.error = e as HtError),
  };
  return { o, handlers };
}

describe('scheduler', () => {
  it('a full queue refuses with HT_ERR_QUEUE_FULL before looking at cost', async () => {
    const { s, events } = await scheduler(new FakePool(8), new FakeClock(), 2);
    s.admit(2);
    assert.equal(refusal(() => s.admit(3)).code, 'HT_ERR_QUEUE_FULL');
    assert.equal(events.refused, 1);
  });

  it('holds jobs until a batch has room, refuses by cost, and sheds a doomed job before it reaches a worker', async () => {
    const pool = new FakePool(8);
    const clock = new FakeClock();
    const { s, events } = await scheduler(pool, clock);
    const first = outcome();
    assert.equal(generationCost(job(8, 40)), 515);
    s.admit(1, 515);
    s.generate(job(8, 40), first.handlers, {}); // 5.15 s, runs at once
    const second = outcome();
    assert.equal(generationCost(job(8, 20)), 207.5);
    s.admit(1, 207.5); // (515 + 207.5) / 100 = 7.2 s <= 8 s
    s.generate(job(8, 20), second.handlers, {});
    assert.equal(pool.sent.length, 1, 'the batch is full: the second job waits in the scheduler');
    assert.equal(s.outstanding, 2);
    assert.equal(refusal(() => s.admit(1, 160)).code, 'HT_ERR_OVERLOADED'); // (722.5 + 160) / 100 = 8.8 s
    assert.equal(events.refused, 1);
    s.admit(1, 8); // a cheap one still fits

    // 6 s pass and the worker reports no progress: the rate falls to 100 × 5 / 11 = 45.5 and the second job,
    // 4 s from its deadline, would need about 9.9 s. The next scheduling pass sheds it, unsent.
    clock.t = 6000;
    const third = outcome();
    s.generate(job(1, 1), third.handlers, {});
    assert.equal(events.shed, 1);
    assert.equal(second.o.error?.code, 'HT_ERR_DEADLINE_EXCEEDED');
    assert.match(second.o.error.message, /before any compute was spent/);
    assert.equal(pool.sent.length, 1, 'the shed job never reached a worker');

    pool.finish(0, 40);
    assert.equal(first.o.done, true);
    assert.equal(pool.sent.length, 2, 'room again: the next queued job goes out');
    assert.equal(pool.sent[1]!.job.n, 1);
    pool.finish(1, 1);
    assert.equal(third.o.done, true);
    assert.equal(s.outstanding, 0);
  });

  it('a job cancelled while queued never reaches a worker and leaves nothing behind', async () => {
    const pool = new FakePool(8);
    const clock = new FakeClock();
    const { s } = await scheduler(pool, clock);
    s.generate(job(8, 10), outcome().handlers, {});
    const queued = s.generate(job(8, 10), outcome().handlers, {});
    queued.cancel();
    assert.equal(s.outstanding, 1);
    pool.finish(0, 10);
    assert.equal(pool.sent.length, 1);
    assert.equal(s.outstanding, 0);
  });
});
