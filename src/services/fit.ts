/**
 * The fit report of an adapter made from demonstrations: how well it reproduces them, so a client knows when not
 * to trust it. `demos_exact`: share of demonstrations whose greedy output (up to the manifest's
 * generation.max_new_tokens) equals the output exactly. `mean_logprob`: mean token log-likelihood of the outputs,
 * from one step of the bundle's training-step graph at learning rate 0 on the plain batch (its loss is minus that
 * mean), or null when the bundle has no step graph for the kind. `loo_exact` (k ≥ 2): for each demonstration,
 * the hypermodel reads the other k − 1 and that adapter predicts the one left out greedily; share exactly right.
 * Deterministic (greedy decoding, one-thread step graph), so it is computed once and stored with the adapter.
 */
import { generationCost, hyperCost, refineCost } from '../engine/cost.js';
import type { RefineJob, RefineOutcome } from '../engine/refine-runner.js';
import type { ChoiceResult, GenerationJob } from '../generation/types.js';
import type { Bundle } from '../inference/bundle.js';
import type { AdapterTensors } from '../inference/feeds.js';
import type { AdapterKindName } from '../inference/manifest.js';
import { refineBatch } from '../inference/refine-batch.js';
import { refineGraph } from '../inference/refine-spec.js';
import { encoderIds, serializeExamples, type TextTokenizer } from '../inference/tokenizer.js';
import type { RefineBatch } from '../inference/train-step.js';

type Example = { input: string; output: string };

export interface FitMeta {
  demos_exact: number;
  /** Null for one demonstration, or for a refined adapter whose parent has none. */
  loo_exact: number | null;
  /** Null when the bundle has no training-step graph for the kind. */
  mean_logprob: number | null;
}

/** What scoring needs, tokenized once when the request is validated. */
export interface FitPlan {
  /** Each demonstration's input as the encoder reads it (truncated to encoder_input.max_tokens). */
  prompts: number[][];
  /** For k ≥ 2 (and when asked): the hypermodel's ids of the other k − 1 demonstrations, per demonstration. */
  loo: number[][] | null;
  /** The demonstrations as one training batch, not augmented; null without a step graph. */
  batch: RefineBatch | null;
  maxNewTokens: number;
}

/** What scoring needs of the engine (the scheduler). */
export interface FitEngine {
  hyper(kind: AdapterKindName, ids: number[]): Promise<AdapterTensors>;
  generate(
    job: Omit<GenerationJob, 'jobId'>,
    handlers: { delta(choice: number, text: string): void; done(choices: ChoiceResult[]): void; failed(error: Error): void },
    request?: object,
  ): { cancel(): void };
  refine(spec: Omit<RefineJob, 'jobId'>): { result: Promise<RefineOutcome>; cancel(reason: Error): void };
}

/** `loo`: plan the leave-one-out adapters too (the hypermodel can read these examples). */
export function fitPlan(bundle: Bundle, tok: TextTokenizer, kind: AdapterKindName, examples: readonly Example[], loo: boolean): FitPlan {
  const m = bundle.manifest;
  const max = m.encoder_input.max_tokens;
  const prompts = examples.map((e) => {
    const ids = encoderIds(tok, m, e.input);
    return ids.length <= max ? ids : [...ids.slice(0, max - 1), m.special_ids.eos];
  });
  const others = (i: number) => examples.filter((_, j) => j !== i);
  return {
    prompts,
    // A subset of examples the hypermodel accepted serializes no longer than they do: no limit to check.
    loo: loo && examples.length > 1 ? examples.map((_, i) => encoderIds(tok, m, serializeExamples(m, others(i)))) : null,
    batch: 'missing' in refineGraph(bundle, kind) ? null : refineBatch(m, tok, examples, 'none'),
    maxNewTokens: m.generation.max_new_tokens,
  };
}

/** Token-steps the report may cost (engine/cost.ts): the leave-one-out hypermodel rows, two greedy decodes per demonstration, one step. */
export function fitCost(plan: FitPlan): number {
  const decodes = plan.prompts.reduce((sum, promptIds) => sum + generationCost({ promptIds, strategy: { type: 'greedy' }, n: 1, maxNewTokens: plan.maxNewTokens }), 0);
  const loo = plan.loo ? plan.loo.reduce((sum, ids) => sum + hyperCost(ids.length), 0) + decodes : 0;
  const step = plan.batch ? refineCost(1, plan.batch.rows, plan.batch.srcLen, plan.batch.tgtLen) : 0;
  return decodes + loo + step;
}

/** The leave-one-out adapters, submitted together so the hypermodel batcher runs them as one batch. */
export function looAdapters(engine: FitEngine, kind: AdapterKindName, plan: FitPlan): Promise<AdapterTensors[]> | null {
  return plan.loo ? Promise.all(plan.loo.map((ids) => engine.hyper(kind, ids))) : null;
}

function greedy(engine: FitEngine, kind: AdapterKindName, tensors: AdapterTensors, promptIds: number[], maxNewTokens: number): Promise<string> {
  return new Promise((resolve, reject) => {
    engine.generate(
      { promptIds, adapter: { kind, tensors }, maxNewTokens, stop: [], strategy: { type: 'greedy' }, n: 1, stream: false },
      { delta: () => {}, done: (choices) => resolve(choices[0]?.text ?? ''), failed: reject },
    );
  });
}

const share = (hits: boolean[]): number => hits.filter(Boolean).length / hits.length;

async function meanLogprob(engine: FitEngine, kind: AdapterKindName, tensors: AdapterTensors, batch: RefineBatch | null): Promise<number | null> {
  if (!batch) return null;
  // At learning rate 0 the step leaves the adapter as it is; its loss is minus the mean token log-likelihood.
  const outcome = await engine.refine({ kind, start: tensors, batch, steps: 1, learningRate: 0 }).result;
  return -outcome.lossFirst;
}

/**
 * Scores `tensors` on its demonstrations. `loo`: the leave-one-out adapters (looAdapters) to score, or the share
 * already known (a refined adapter reports its parent's), or null.
 */
export async function scoreFit(
  engine: FitEngine,
  kind: AdapterKindName,
  tensors: AdapterTensors,
  examples: readonly Example[],
  plan: FitPlan,
  loo: Promise<AdapterTensors[]> | number | null,
): Promise<FitMeta> {
  const { prompts, maxNewTokens } = plan;
  const demos = Promise.all(prompts.map((p) => greedy(engine, kind, tensors, p, maxNewTokens)));
  const looShare = async (): Promise<number | null> => {
    if (loo === null || typeof loo === 'number') return loo;
    const adapters = await loo;
    const texts = await Promise.all(adapters.map((t, i) => greedy(engine, kind, t, prompts[i]!, maxNewTokens)));
    return share(texts.map((t, i) => t === examples[i]!.output));
  };
  const [texts, looExact, meanLp] = await Promise.all([demos, looShare(), meanLogprob(engine, kind, tensors, plan.batch)]);
  return { demos_exact: share(texts.map((t, i) => t === examples[i]!.output)), loo_exact: looExact, mean_logprob: meanLp };
}
