/**
 * Admission in front of the workers. A request is refused (429 + Retry-After) when it would overflow the
 * bounded number of outstanding jobs (QUEUE_SIZE), or when the work ahead of it and its own would not finish
 * within the deadline at the measured throughput (admission.ts); before the models load, while no worker is up,
 * and once shutdown began, 503. Admitted generation jobs wait here, first come first served, until a worker's
 * batch has room; one whose deadline can no longer be met is shed from this queue before any compute is spent.
 */
import { HtError } from '../errors/http-error.js';
import type { AdapterTensors } from '../inference/feeds.js';
import type { AdapterKindName } from '../inference/manifest.js';
import type { ChoiceResult, GenerationJob } from '../generation/types.js';
import { Admission, type Clock, type Ticket } from './admission.js';
import { generationCost, hyperCost, jobRows, rowWork } from './cost.js';
import type { Fault } from './protocol.js';
import type { GenerationHandlers, WorkerPool } from './worker-pool.js';

/** What the scheduler needs of the worker pool (the tests give it a fake one). */
export type SchedulerPool = Pick<WorkerPool, 'ready' | 'readyCount' | 'hasRoom' | 'busyShare' | 'generate' | 'hyper' | 'failAll' | 'injectFault' | 'close' | 'onRoom' | 'onStep'>;

export interface SchedulerOptions {
  queueSize: number;
  retryAfterS: number;
  /** REQUEST_DEADLINE_MS (0 = none). */
  deadlineMs: number;
  /** Token-steps per second assumed until the throughput is measured. */
  priorTokensPerS: number;
  maxBatchRows: number;
  clock?: Clock;
}

export interface SchedulerObserver {
  depth(depth: number): void;
  /** After each scheduling pass: token-steps ahead and the measured token-steps per second. */
  load?(backlog: number, rate: number): void;
  refused?(): void;
  shed?(): void;
}

/** Work (cost.ts units) a finished job's decode steps took: beams all run to the longest; samples each to their own length. */
function tokenSteps(job: Omit<GenerationJob, 'jobId'>, choices: ChoiceResult[]): number {
  const lengths = choices.map((c) => c.tokenIds.length);
  return job.strategy.type === 'beam' ? jobRows(job) * rowWork(Math.max(0, ...lengths)) : lengths.reduce((a, b) => a + rowWork(b), 0);
}

interface Queued {
  ticket: Ticket;
  job: Omit<GenerationJob, 'jobId'>;
  handlers: GenerationHandlers;
  handle: { cancel(): void } | null;
  /** Settled (done, failed, shed or cancelled): every later event is ignored. */
  over: boolean;
  leave(): void;
}

export class Scheduler {
  private depth = 0;
  private state: 'loading' | 'ready' | 'failed' | 'closing' = 'loading';
  private idleWaiters: (() => void)[] = [];
  private queue: Queued[] = [];
  private pumping = false;
  private reportedAt = -Infinity;
  private readonly clock: Clock;
  private readonly admission: Admission;
  private readonly queueSize: number;
  private readonly retryAfterS: number;
  private readonly deadlineMs: number;
  private readonly maxBatchRows: number;

  constructor(
    private readonly pool: SchedulerPool,
    opts: SchedulerOptions,
    private readonly observer: SchedulerObserver,
  ) {
    this.queueSize = opts.queueSize;
    this.clock = opts.clock ?? { now: () => performance.now() };
    this.retryAfterS = opts.retryAfterS;
    this.deadlineMs = opts.deadlineMs;
    this.maxBatchRows = opts.maxBatchRows;
    this.admission = new Admission({
      deadlineMs: opts.deadlineMs,
      priorRate: opts.priorTokensPerS,
      retryAfterS: opts.retryAfterS,
      busyShare: () => pool.busyShare,
      clock: this.clock,
    });
    pool.onRoom = () => this.pump();
    pool.onStep = (work) => {
      this.admission.progress(work);
      // Long jobs end rarely: refresh the gauges from the steps too, at most once a second.
      const now = this.clock.now();
      if (now - this.reportedAt >= 1000) this.report();
    };
    pool.ready.then(
      () => {
        if (this.state === 'loading') this.state = 'ready';
      },
      () => {
        this.state = 'failed';
      },
    );
  }

  /** Takes work: models loaded, at least one worker up, not shutting down. */
  get ready(): boolean {
    return this.state === 'ready' && this.pool.readyCount > 0;
  }

  get closing(): boolean {
    return this.state === 'closing';
  }

  /** Jobs admitted and not yet finished (waiting or running). */
  get outstanding(): number {
    return this.depth;
  }

  whenReady(): Promise<void> {
    return this.pool.ready;
  }

  /** Measured throughput, token-steps per second. */
  get tokensPerS(): number {
    return this.admission.rate;
  }

  /**
   * Reserves room for `jobs` jobs costing `cost` token-steps, or throws the HTTP error that says why not.
   * Called with the cost unknown (0), it still refuses once the work already ahead would outlast the deadline.
   */
  admit(jobs: number, cost = 0): void {
    if (this.state === 'closing') throw new HtError('HT_ERR_SHUTTING_DOWN', 'the server is shutting down', this.retryAfterS);
    if (this.state !== 'ready') throw new HtError('HT_ERR_NOT_READY', 'models are still loading', this.retryAfterS);
    if (this.pool.readyCount === 0) {
      throw new HtError('HT_ERR_WORKER_RESTARTING', 'no inference worker is up; one is being replaced', this.retryAfterS);
    }
    if (this.depth + jobs > this.queueSize) {
      this.observer.refused?.();
      throw new HtError(
        'HT_ERR_QUEUE_FULL',
        `queue holds ${this.depth} jobs and this request adds ${jobs}; the limit is ${this.queueSize} (QUEUE_SIZE)`,
        this.retryAfterS,
      );
    }
    try {
      this.admission.check(cost);
    } catch (e) {
      this.observer.refused?.();
      throw e;
    }
  }

  private enter(): () => void {
    this.depth++;
    this.observer.depth(this.depth);
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.depth--;
      this.observer.depth(this.depth);
      if (this.depth === 0) for (const w of this.idleWaiters.splice(0)) w();
    };
  }

  /**
   * Queues a generation job; it goes to a worker once a batch has room, unless it is shed or cancelled first.
   * The jobs of one request pass the same `request` object.
   */
  generate(job: Omit<GenerationJob, 'jobId'>, handlers: GenerationHandlers, request: object = {}): { cancel(): void } {
    const ticket = this.admission.enter(generationCost(job), jobRows(job), true, request);
    const q: Queued = { ticket, job, handlers, handle: null, over: false, leave: this.enter() };
    this.queue.push(q);
    this.pump();
    return {
      cancel: () => {
        if (this.settle(q, false)) q.handle?.cancel();
        this.pump();
      },
    };
  }

  /**
   * Marks `q` over; false when it already was. Leaves the queue, the depth count and the admission's books
   * (`doneSteps`: the token-steps a completed job really took).
   */
  private settle(q: Queued, completed: boolean, doneSteps = 0): boolean {
    if (q.over) return false;
    q.over = true;
    if (!q.handle) this.queue = this.queue.filter((x) => x !== q);
    this.admission.finish(q.ticket, completed, doneSteps);
    q.leave();
    return true;
  }

  /** One scheduling pass: shed what can no longer finish in time, then send the queue's head while there is room. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      const doomed = this.queue.length ? this.admission.doomed(this.queue.map((q) => q.ticket)) : [];
      for (const { ticket, lateS } of doomed) {
        const q = this.queue.find((x) => x.ticket === ticket);
        if (!q || !this.settle(q, false)) continue;
        this.observer.shed?.();
        q.handlers.failed(
          new HtError(
            'HT_ERR_DEADLINE_EXCEEDED',
            `the request would finish about ${lateS.toFixed(1)} s past its deadline of ${this.deadlineMs} ms (REQUEST_DEADLINE_MS) at the ` +
              `measured ${Math.round(this.admission.rate)} token-steps/s; it was dropped from the queue before any compute was spent on it`,
            this.retryAfterS,
          ),
        );
      }
      while (this.queue.length && this.pool.hasRoom(this.queue[0]!.ticket.rows)) {
        const q = this.queue.shift()!;
        this.dispatch(q);
      }
    } finally {
      this.pumping = false;
    }
    this.report();
  }

  private report(): void {
    this.reportedAt = this.clock.now();
    this.observer.load?.(this.admission.backlog(), this.admission.rate);
  }

  private dispatch(q: Queued): void {
    this.admission.start(q.ticket);
    try {
      q.handle = this.pool.generate(q.job, {
        delta: (choice, text) => {
          if (!q.over) q.handlers.delta(choice, text);
        },
        done: (c: ChoiceResult[]) => {
          if (!this.settle(q, true, tokenSteps(q.job, c))) return;
          q.handlers.done(c);
          this.pump();
        },
        failed: (e) => {
          if (!this.settle(q, false)) return;
          q.handlers.failed(e);
          this.pump();
        },
      });
    } catch (e) {
      // No worker took it (the last one just died): fail it like a job its worker lost.
      q.handle = { cancel: () => {} };
      if (this.settle(q, false)) q.handlers.failed(e as Error);
    }
  }

  async hyper(kind: AdapterKindName, ids: number[]): Promise<AdapterTensors> {
    const leave = this.enter();
    // A hypermodel run is sent at once (the worker interleaves it with decode steps) and holds its worker meanwhile.
    const ticket = this.admission.enter(hyperCost(ids.length), this.maxBatchRows, false, {});
    this.admission.start(ticket);
    let completed = false;
    try {
      const tensors = await this.pool.hyper(kind, ids);
      completed = true;
      return tensors;
    } finally {
      this.admission.finish(ticket, completed);
      leave();
    }
  }

  /** Fails every job still waiting in the queue with `error`. */
  private failQueued(error: HtError): void {
    for (const q of [...this.queue]) if (this.settle(q, false)) q.handlers.failed(error);
  }

  /** Shutdown, first step: refuse new work (503) and resolve once the admitted work is done or `deadlineMs` passed. */
  async drain(deadlineMs: number): Promise<'drained' | 'deadline'> {
    if (this.state !== 'failed') this.state = 'closing';
    if (this.depth === 0) return 'drained';
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      new Promise<'drained'>((resolve) => this.idleWaiters.push(() => resolve('drained'))),
      new Promise<'deadline'>((resolve) => {
        timer = setTimeout(() => resolve('deadline'), deadlineMs);
      }),
    ]);
    clearTimeout(timer);
    if (outcome === 'deadline') {
      this.failQueued(new HtError('HT_ERR_SHUTTING_DOWN', 'the server is shutting down and this request did not start within SHUTDOWN_DRAIN_MS', this.retryAfterS));
      this.pool.failAll(new HtError('HT_ERR_SHUTTING_DOWN', 'the server is shutting down and this request did not finish within SHUTDOWN_DRAIN_MS', this.retryAfterS));
    }
    return outcome;
  }

  /** Chaos hook for the fault tests. */
  injectFault(fault: Fault): void {
    this.pool.injectFault(fault);
  }

  async close(): Promise<void> {
    this.state = 'closing';
    this.failQueued(new HtError('HT_ERR_SHUTTING_DOWN', 'the server is shutting down', this.retryAfterS));
    await this.pool.close();
  }
}
