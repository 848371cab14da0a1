/**
 * The job objects of the main thread, one per request kind. The scheduler creates one when a request is
 * admitted, queues it and keeps its books (`ticket`); the pool sends its `job` to a worker and hands that
 * worker's events back with the same object, so every layer reads the fields it needs from it.
 */
import type { AdapterTensors } from '../inference/feeds.js';
import type { ChoiceResult, GenerationJob } from '../generation/types.js';
import type { Ticket } from './admission.js';
import type { HyperJob } from './hyper-batcher.js';
import type { RefineJob, RefineOutcome } from './refine-runner.js';

/** Where a generation job's events go: the completion service. */
export interface GenerationHandlers {
  delta(choice: number, text: string): void;
  done(choices: ChoiceResult[]): void;
  failed(error: Error): void;
}

interface TaskState {
  readonly ticket: Ticket;
  /** The worker slot it was sent to; null while it waits in the scheduler's queue. */
  worker: number | null;
  /** Settled (done, failed, shed or cancelled): every later event is ignored. */
  over: boolean;
}

export interface GenerationTask extends TaskState {
  readonly type: 'generate';
  readonly job: GenerationJob;
  readonly handlers: GenerationHandlers;
}

export interface HyperTask extends TaskState {
  readonly type: 'hyper';
  readonly job: HyperJob;
  resolve(tensors: AdapterTensors): void;
  reject(error: Error): void;
}

export interface RefineTask extends TaskState {
  readonly type: 'refine';
  readonly job: RefineJob;
  resolve(outcome: RefineOutcome): void;
  reject(error: Error): void;
}

export type Task = GenerationTask | HyperTask | RefineTask;
