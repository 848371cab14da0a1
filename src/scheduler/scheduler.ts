/**
 * Admission in front of the workers: a bounded number of outstanding jobs. Beyond it a request is
 * refused (429 + Retry-After) instead of queueing without limit; before the models load, 503.
 */
import { HtError } from '../errors/http-error.js';
import type { AdapterTensors } from '../inference/feeds.js';
import type { AdapterKindName } from '../inference/manifest.js';
import type { GenerationJob } from '../generation/types.js';
import type { GenerationHandlers, WorkerPool } from './worker-pool.js';

export class Scheduler {
  private outstanding = 0;
  private state: 'loading' | 'ready' | 'failed' | 'closing' = 'loading';

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

  get ready(): boolean {
    return this.state === 'ready';
  }

  whenReady(): Promise<void> {
    return this.pool.ready;
  }

  /** Reserves room for `jobs` jobs or throws the HTTP error that says why not. */
  admit(jobs: number): void {
    if (this.state === 'closing') throw new HtError('HT_ERR_SHUTTING_DOWN', 'the server is shutting down', this.retryAfterS);
    if (this.state !== 'ready') throw new HtError('HT_ERR_NOT_READY', 'models are still loading', this.retryAfterS);
    if (this.outstanding + jobs > this.queueSize) {
      throw new HtError(
        'HT_ERR_QUEUE_FULL',
        `queue holds ${this.outstanding} jobs and this request adds ${jobs}; the limit is ${this.queueSize} (QUEUE_SIZE)`,
        this.retryAfterS,
      );
    }
  }

  private enter(): () => void {
    this.outstanding++;
    this.onDepth(this.outstanding);
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.outstanding--;
      this.onDepth(this.outstanding);
    };
  }

  generate(job: Omit<GenerationJob, 'jobId'>, handlers: GenerationHandlers): { cancel(): void } {
    const leave = this.enter();
    const handle = this.pool.generate(job, {
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

  async close(): Promise<void> {
    this.state = 'closing';
    await this.pool.close();
  }
}
