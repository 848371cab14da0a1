/**
 * The front door of the engine. A request is refused with a retry delay when it would overflow the bounded
 * number of outstanding jobs (QUEUE_SIZE), or when the work ahead of it and its own would not finish within
 * the deadline at the measured throughput (admission.ts); before the models load, while no worker is up and
 * once shutdown began, it is refused too. Admitted generation jobs wait here, first come first served, until
 * a worker's batch has room; one whose deadline can no longer be met is shed from this queue before any
 * compute is spent.
 */
import { HtError } from '../errors/domain-error.js';
import type { AdapterTensors } from '../inference/feeds.js';
import type { AdapterKindName } from '../inference/manifest.js';
import type { ChoiceResult, GenerationJob } from '../generation/types.js';
import { Admission, type Clock } from './admission.js';
import { generationCost, hyperCost, jobRows, refineCost, rowWork } from './cost.js';
import type { GenerationHandlers, GenerationTask, HyperTask, RefineTask, Task } from './jobs.js';
import type { RefineJob, RefineOutcome } from './refine-runner.js';
import type { WorkerPool } from './worker-pool.js';

/** What the scheduler needs of the worker pool (the tests give it a fake one). */
export type SchedulerPool = Pick<WorkerPool, 'ready' | 'readyCount' | 'hasRoom' | 'busyShare' | 'listen' | 'send' | 'cancel' | 'failAll' | 'close'>;

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
function tokenSteps(job: GenerationJob, choices: ChoiceResult[]): number {
  const lengths = choices.map((c) => c.tokenIds.length);
  return job.strategy.type === 'beam' ? jobRows(job) * rowWork(Math.max(0, ...lengths)) : lengths.reduce((a, b) => a + rowWork(b), 0);
}

export class Scheduler {
  private depth = 0;
  private state: 'loading' | 'ready' | 'failed' | 'closing' = 'loading';
  private idleWaiters: (() => void)[] = [];
  /** Admitted generation jobs not yet sent to a worker, first come first served. */
  private queue: GenerationTask[] = [];
  private nextJobId = 1;
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
    pool.listen({
      room: () => this.pump(),
      step: (work) => {
        this.admission.progress(work);
        // Long jobs end rarely: refresh the gauges from the steps too, at most once a second.
        if (this.clock.now() - this.reportedAt >= 1000) this.report();
      },
      settle: (task, completed, choices) => this.settle(task, completed, task.type === 'generate' && choices ? tokenSteps(task.job, choices) : 0),
    });
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
   * Reserves room for `jobs` jobs costing `cost` token-steps, or throws the error that says why not.
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

  /**
   * Queues a generation job; it goes to a worker once a batch has room, unless it is shed or cancelled first.
   * The jobs of one request pass the same `request` object.
   */
  generate(spec: Omit<GenerationJob, 'jobId'>, handlers: GenerationHandlers, request: object = {}): { cancel(): void } {
    const job: GenerationJob = { ...spec, jobId: this.nextJobId++ };
    const ticket = this.admission.enter(generationCost(job), jobRows(job), true, request);
    const task: GenerationTask = { type: 'generate', job, handlers, ticket, worker: null, over: false };
    this.enter();
    this.queue.push(task);
    this.pump();
    return {
      cancel: () => {
        if (this.settle(task, false) && task.worker !== null) this.pool.cancel(task);
        this.pump();
      },
    };
  }

  private enter(): void {
    this.depth++;
    this.observer.depth(this.depth);
  }

  /**
   * Marks `task` over; false when it already was. Leaves the queue, the depth count and the admission's books
   * (`doneSteps`: the token-steps a completed job really took).
   */
  private settle(task: Task, completed: boolean, doneSteps = 0): boolean {
    if (task.over) return false;
    task.over = true;
    if (task.worker === null) this.queue = this.queue.filter((x) => x !== task);
    this.admission.finish(task.ticket, completed, doneSteps);
    this.depth--;
    this.observer.depth(this.depth);
    if (this.depth === 0) for (const w of this.idleWaiters.splice(0)) w();
    return true;
  }

  /** One scheduling pass: shed what can no longer finish in time, then send the queue's head while there is room. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      const doomed = this.queue.length ? this.admission.doomed(this.queue.map((t) => t.ticket)) : [];
      for (const { ticket, lateS } of doomed) {
        const task = this.queue.find((t) => t.ticket === ticket);
        if (!task || !this.settle(task, false)) continue;
        this.observer.shed?.();
        task.handlers.failed(
          new HtError(
            'HT_ERR_DEADLINE_EXCEEDED',
            `the request would finish about ${lateS.toFixed(1)} s past its deadline of ${this.deadlineMs} ms (REQUEST_DEADLINE_MS) at the ` +
              `measured ${Math.round(this.admission.rate)} token-steps/s; it was dropped from the queue before any compute was spent on it`,
            this.retryAfterS,
          ),
        );
      }
      while (this.queue.length && this.pool.hasRoom(this.queue[0]!.ticket.rows)) this.dispatch(this.queue.shift()!);
    } finally {
      this.pumping = false;
    }
    this.report();
  }

  private report(): void {
    this.reportedAt = this.clock.now();
    this.observer.load?.(this.admission.backlog(), this.admission.rate);
  }

  /** Sends a job to a worker; one that no worker takes (the last one just died) fails like a job its worker lost. */
  private dispatch(task: Task): void {
    this.admission.start(task.ticket);
    try {
      this.pool.send(task);
    } catch (e) {
      if (!this.settle(task, false)) return;
      if (task.type === 'generate') task.handlers.failed(e as Error);
      else task.reject(e as Error);
    }
  }

  /** Runs the hypermodel on one example set. It is sent at once (the worker interleaves it with decode steps) and holds its worker meanwhile. */
  hyper(kind: AdapterKindName, ids: number[]): Promise<AdapterTensors> {
    return new Promise((resolve, reject) => {
      const ticket = this.admission.enter(hyperCost(ids.length), this.maxBatchRows, false, {});
      const task: HyperTask = { type: 'hyper', job: { jobId: this.nextJobId++, kind, ids }, ticket, worker: null, over: false, resolve, reject };
      this.enter();
      this.dispatch(task);
    });
  }

  /**
   * Runs a refinement (refine-runner.ts). Like a hypermodel run it is sent at once: its worker interleaves its
   * Adam steps with decode steps. It holds its ticket's cost until it settles; `cancel` (client gone, deadline)
   * rejects the result with `reason` at once and stops the worker's job between two steps.
   */
  refine(spec: Omit<RefineJob, 'jobId'>): { result: Promise<RefineOutcome>; cancel(reason: Error): void } {
    const job: RefineJob = { ...spec, jobId: this.nextJobId++ };
    const cost = refineCost(spec.steps, spec.batch.rows, spec.batch.srcLen, spec.batch.tgtLen);
    let task!: RefineTask;
    const result = new Promise<RefineOutcome>((resolve, reject) => {
      task = { type: 'refine', job, ticket: this.admission.enter(cost, 1, false, {}), worker: null, over: false, resolve, reject };
    });
    this.enter();
    this.dispatch(task);
    return {
      result,
      cancel: (reason) => {
        if (!this.settle(task, false)) return;
        if (task.worker !== null) this.pool.cancel(task);
        task.reject(reason);
        this.pump();
      },
    };
  }

  /** Fails every job still waiting in the queue with `error`. */
  private failQueued(error: HtError): void {
    for (const task of [...this.queue]) if (this.settle(task, false)) task.handlers.failed(error);
  }

  /** Shutdown, first step: refuse new work and resolve once the admitted work is done or `deadlineMs` passed. */
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

  async close(): Promise<void> {
    this.state = 'closing';
    this.failQueued(new HtError('HT_ERR_SHUTTING_DOWN', 'the server is shutting down', this.retryAfterS));
    await this.pool.close();
  }
}
