/** Messages between the main thread (worker-pool.ts) and an inference worker (worker.ts). */
import type { AdapterTensors } from '../inference/feeds.js';
import type { ErrorCode } from '../errors/catalogue.js';
import type { ChoiceResult, GenerationJob } from '../generation/types.js';
import type { HyperJob } from './hyper-batcher.js';

export interface WorkerInit {
  modelDir: string;
  intraOpThreads: number;
  maxBatchRows: number;
}

export type ToWorker =
  | { type: 'generate'; job: GenerationJob }
  | { type: 'hyper'; job: HyperJob }
  | { type: 'cancel'; jobId: number }
  /** Finish the step in progress, then exit (terminating a thread inside an ONNX Runtime run aborts the process). */
  | { type: 'stop' };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'fatal'; message: string }
  | { type: 'delta'; jobId: number; choice: number; text: string }
  | { type: 'done'; jobId: number; choices: ChoiceResult[] }
  | { type: 'hyper-done'; jobId: number; tensors: AdapterTensors }
  /** `code`: set when the job itself caused the failure (isClientFault), so the client is told why. */
  | { type: 'failed'; jobId: number; message: string; code?: ErrorCode }
  /** `work`: the step's token-steps weighted by position (cost.ts stepWork), for the throughput. */
  | { type: 'step'; rows: number; work: number }
  | { type: 'hyper-batch'; rows: number };
