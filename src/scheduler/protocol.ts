/** Messages between the main thread and an inference worker. */
import type { AdapterTensors } from '../inference/feeds.js';
import type { AdapterKindName } from '../inference/manifest.js';
import type { ChoiceResult, GenerationJob } from '../generation/types.js';

export interface WorkerInit {
  modelDir: string;
  intraOpThreads: number;
  maxBatchRows: number;
}

export type ToWorker =
  | { type: 'generate'; job: GenerationJob }
  | { type: 'hyper'; jobId: number; kind: AdapterKindName; ids: number[] }
  | { type: 'cancel'; jobId: number };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'fatal'; message: string }
  | { type: 'delta'; jobId: number; choice: number; text: string }
  | { type: 'done'; jobId: number; choices: ChoiceResult[] }
  | { type: 'hyper-done'; jobId: number; tensors: AdapterTensors }
  | { type: 'failed'; jobId: number; message: string }
  | { type: 'step'; rows: number }
  | { type: 'hyper-batch'; rows: number };
