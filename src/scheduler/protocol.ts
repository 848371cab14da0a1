/** Messages between the main thread and an inference worker. */
import type { AdapterTensors } from '../inference/feeds.js';
import type { AdapterKindName, GraphName } from '../inference/manifest.js';
import type { ErrorCode } from '../errors/catalogue.js';
import type { ChoiceResult, GenerationJob } from '../generation/types.js';

export interface WorkerInit {
  modelDir: string;
  intraOpThreads: number;
  maxBatchRows: number;
}

/**
 * Chaos hooks for the fault tests (never sent by a request): the next `times` runs of a graph fail as an
 * ONNX Runtime error would, or the worker thread dies.
 */
export type Fault = { kind: 'run-error'; graph: GraphName; times: number } | { kind: 'crash' };

export type ToWorker =
  | { type: 'generate'; job: GenerationJob }
  | { type: 'hyper'; jobId: number; kind: AdapterKindName; ids: number[] }
  | { type: 'cancel'; jobId: number }
  | { type: 'fault'; fault: Fault }
  /** Finish the step in progress, then exit (terminating a thread inside an ONNX Runtime run aborts the process). */
  | { type: 'stop' };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'fatal'; message: string }
  | { type: 'delta'; jobId: number; choice: number; text: string }
  | { type: 'done'; jobId: number; choices: ChoiceResult[] }
  | { type: 'hyper-done'; jobId: number; tensors: AdapterTensors }
  /** `code`: set when the job itself caused the failure (a catalogue 4xx), so the client is told why. */
  | { type: 'failed'; jobId: number; message: string; code?: ErrorCode }
  /** `work`: the step's token-steps weighted by position (scheduler/cost.ts stepWork), for the throughput. */
  | { type: 'step'; rows: number; work: number }
  | { type: 'hyper-batch'; rows: number };
