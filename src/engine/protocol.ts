/** Messages between the main thread (worker-pool.ts) and an inference worker (worker.ts). */
import type { AdapterTensors } from '../inference/feeds.js';
import type { ErrorCode } from '../errors/catalogue.js';
import type { ChoiceResult, GenerationJob } from '../generation/types.js';
import type { HyperJob } from './hyper-batcher.js';
import type { RefineJob, RefineOutcome } from './refine-runner.js';

export interface WorkerInit {
  modelDir: string;
  intraOpThreads: number;
  maxBatchRows: number;
}

export type ToWorker =
  /** The generation jobs sent to this worker in one tick of the main thread (worker-pool.ts flush). */
  | { type: 'generate'; jobs: GenerationJob[] }
  | { type: 'hyper'; job: HyperJob }
  | { type: 'refine'; job: RefineJob }
  | { type: 'cancel'; jobId: number }
  /** Finish the step in progress, then exit (terminating a thread inside an ONNX Runtime run aborts the process). */
  | { type: 'stop' };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'fatal'; message: string }
  | { type: 'delta'; jobId: number; choice: number; text: string }
  | { type: 'done'; jobId: number; choices: ChoiceResult[] }
  | { type: 'hyper-done'; jobId: number; tensors: AdapterTensors }
  | { type: 'refine-done'; jobId: number; outcome: RefineOutcome }
  /** A cancelled refinement left the worker after `steps` steps (its job is already settled: metrics only). */
  | { type: 'refine-stopped'; jobId: number; steps: number }
  /** `code`: set when the job itself caused the failure (isClientFault), so the client is told why. */
  | { type: 'failed'; jobId: number; message: string; code?: ErrorCode }
  /**
   * Decode steps since the last report (step-report.ts): each step's rows, and their token-steps weighted by
   * position (cost.ts stepWork), summed, for the throughput.
   */
  | { type: 'steps'; rows: Uint16Array; work: number }
  | { type: 'hyper-batch'; rows: number };
