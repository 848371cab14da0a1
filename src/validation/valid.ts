/**
 * Requests the validator accepted. Every field is checked against the config, the manifest and the
 * tokenizer, so the services and the engine trust them as they are.
 */
import type { AdapterRecord } from '../adapters/types.js';
import type { Strategy } from '../generation/types.js';
import type { AdapterTensors } from '../inference/feeds.js';
import type { AdapterKindName, RefineAugment, TensorSpec } from '../inference/manifest.js';
import type { RefineGraph } from '../inference/refine-spec.js';
import type { RefineBatch } from '../inference/train-step.js';

/** Few-shot examples for the hypermodel: a kind the model has, within the count, character and token limits. */
export interface ValidExamples {
  kind: AdapterKindName;
  examples: readonly { input: string; output: string }[];
  /** The serialized examples as the hypermodel reads them. */
  tokenIds: number[];
  /** Asked for: the one-pass adapter is then refined on these examples, and the refined one is the answer. */
  refine?: ValidRefine;
  /** false: store the adapter without its fit report (default: with it). */
  fit?: boolean;
}

/** Refinement settings, defaults filled from the manifest, and the batch it trains on. */
export interface ValidRefine {
  steps: number;
  learningRate: number;
  augment: RefineAugment;
  graph: RefineGraph;
  batch: RefineBatch;
}

/** POST /v1/adapters/{id}/refine: a stored adapter, the demonstrations and the settings. */
export interface ValidRefineStored {
  parent: AdapterRecord;
  examples: readonly { input: string; output: string }[];
  refine: ValidRefine;
}

/** An uploaded adapter: exactly the manifest's tensors of `kind`, in range. */
export interface ValidImport {
  kind: AdapterKindName;
  specs: readonly TensorSpec[];
  tensors: AdapterTensors;
}

/** Which parameters a completion runs with. */
export type ModelChoice =
  | { type: 'base'; name: string }
  /** A stored adapter, found and visible to the caller. */
  | { type: 'stored'; record: AdapterRecord }
  /** Inline examples: the adapter is fetched or generated once the request is admitted. */
  | { type: 'inline'; examples: ValidExamples };

export interface ValidCompletion {
  model: ModelChoice;
  /** Token ids of each prompt, in request order. */
  prompts: number[][];
  /** One per prompt (a sampling seed is per prompt). */
  strategies: Strategy[];
  n: number;
  maxNewTokens: number;
  stop: string[];
  stream: boolean;
  /** OpenAI `logprobs` (0..5 alternatives per token); undefined = not asked. */
  logprobs?: number;
}
