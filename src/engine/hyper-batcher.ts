/**
 * The hypermodel batcher: queued hypermodel jobs run in batches of one adapter kind (each kind is its own
 * graph), up to maxRows jobs, oldest first. A failed run fails the jobs of its batch and nothing else.
 */
import type { AdapterTensors } from '../inference/feeds.js';
import type { AdapterKindName } from '../inference/manifest.js';

/** One hypermodel request: serialized, tokenized few-shot examples in, one adapter out. */
export interface HyperJob {
  jobId: number;
  kind: AdapterKindName;
  ids: number[];
}

/** Runs the `kind` hypermodel on a batch of token sequences, one adapter per sequence (inference/hypermodel.ts). */
export type RunHypermodel = (kind: AdapterKindName, contexts: readonly number[][]) => Promise<AdapterTensors[]>;

export interface HyperEvents {
  /** A batch of `rows` jobs is about to run. */
  batch(rows: number): void;
  done(jobId: number, tensors: AdapterTensors): void;
  failed(jobId: number, error: Error): void;
}

export class HyperBatcher {
  private queue: HyperJob[] = [];

  constructor(
    private readonly run: RunHypermodel,
    private readonly maxRows: number,
    private readonly events: HyperEvents,
  ) {}

  submit(job: HyperJob): void {
    this.queue.push(job);
  }

  /** Drops a job that has not run yet; one already in a running batch finishes and its result is ignored upstream. */
  cancel(jobId: number): void {
    this.queue = this.queue.filter((j) => j.jobId !== jobId);
  }

  get idle(): boolean {
    return this.queue.length === 0;
  }

  /** Runs one batch: the oldest job's kind, up to maxRows jobs of it. */
  async tick(): Promise<void> {
    const head = this.queue[0];
    if (!head) return;
    const batch = this.queue.filter((j) => j.kind === head.kind).slice(0, this.maxRows);
    this.queue = this.queue.filter((j) => !batch.includes(j));
    this.events.batch(batch.length);
    let out: AdapterTensors[];
    try {
      out = await this.run(head.kind, batch.map((j) => j.ids));
    } catch (e) {
      for (const j of batch) this.events.failed(j.jobId, e as Error);
      return;
    }
    batch.forEach((j, i) => this.events.done(j.jobId, out[i]!));
  }
}
