/**
 * Admission in front of the workers: a bounded number of outstanding jobs. Beyond it a request is
 * refused (429 + Retry-After) instead of queueing without limit; before the models load, while no worker
 * is up, and once shutdown began, 503.
 */
import { HtError } from '../errors/http-error.js';
import type { AdapterTensors } from '../inference/feeds.js';
import type { AdapterKindName } from '../inference/manifest.js';
import type { GenerationJob } from '../generation/types.js';
import type { Fault } from './protocol.js';
import type { GenerationHandlers, WorkerPool } from './worker-pool.js';

export class Scheduler {
  private depth = 0;
  private state: 'loading' | 'ready' | 'failed' | 'closing' = 'loading';
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly pool: WorkerPool,
    private readonly queueSize: number,
    private readonly retryAfterS: number,
    private readonly onDepth: (depth: number) => void,
  ) {
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

  /** Reserves room for `jobs` jobs or throws the HTTP error that says why not. */
  admit(jobs: number): void {
    if (this.state === 'closing') throw new HtError('HT_ERR_SHUTTING_DOWN', 'the server is shutting down', this.retryAfterS);
    if (this.state !== 'ready') throw new HtError('HT_ERR_NOT_READY', 'models are still loading', this.retryAfterS);
    if (this.pool.readyCount === 0) {
      throw new HtError('HT_ERR_WORKER_RESTARTING', 'no inference worker is up; one is being replaced', this.retryAfterS);
    }
    if (this.depth + jobs > this.queueSize) {
      throw new HtError(
        'HT_ERR_QUEUE_FULL',
        `queue holds ${this.depth} jobs and this request adds ${jobs}; the limit is ${this.queueSize} (QUEUE_SIZE)`,
        this.retryAfterS,
      );
    }
  }

  private enter(): () => void {
    this.depth++;
    this.onDepth(this.depth);
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.depth--;
      this.onDepth(this.depth);
      if (this.depth === 0) for (const w of this.idleWaiters.splice(0)) w();
    };
  }

  generate(job: Omit<GenerationJob, 'jobId'>, handlers: GenerationHandlers): { cancel(): void } {
    const leave = this.enter();
    let handle: { cancel(): void };
    try {
      handle = this.pool.generate(job, {
        delta: handlers.delta,
        done: (c) => {
          leave();
          handlers.done(c);
        },
        failed: (e) => {
          leave();
          handlers.failed(e);
        },
      });
    } catch (e) {
      leave();
      throw e;
    }
    return {
      cancel: () => {
        leave();
        handle.cancel();
      },
    };
  }

  async hyper(kind: AdapterKindName, ids: number[]): Promise<AdapterTensors> {
    const leave = this.enter();
    try {
      return await this.pool.hyper(kind, ids);
    } finally {
      leave();
    }
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
    await this.pool.close();
  }
}
