/**
 * What a job costs, in token-steps: one decoder row producing one token, weighted by how far into the
 * sequence it is. A decode step reads the row's whole cache, so on models/default a step at position p costs
 * about (1 + p / 32) times the first (n=8 rows: 64 tokens took 1.5 s, 512 took 48 s). A generation job pays
 * for every row it may decode (beams, or n samples) for up to max_tokens steps, plus its encoder pass; a
 * hypermodel run reads the serialized examples once. These are upper bounds (a row may stop early at
 * end-of-sequence); the throughput is measured in the same units (ThroughputEstimate), from the same weights.
 */
import type { GenerationJob } from '../generation/types.js';

/** Cache length at which a step costs twice the first one. */
const POSITION_SCALE = 32;

/** Work of one decode step for a row whose cache holds `position` earlier steps. */
export function stepWork(position: number): number {
  return 1 + position / POSITION_SCALE;
}

/** Work of one row decoding `tokens` tokens: the sum of stepWork over positions 0 … tokens - 1. */
export function rowWork(tokens: number): number {
  return tokens + (tokens * (tokens - 1)) / (2 * POSITION_SCALE);
}

/** Decoder rows a job holds in the batch while it runs (the generation loop admits by the same count). */
export function jobRows(job: Pick<GenerationJob, 'strategy' | 'n'>): number {
  return job.strategy.type === 'beam' ? job.strategy.numBeams : job.n;
}

/** Rows × the work of max_tokens steps, plus the prompt: the encoder reads each prompt token once. */
export function generationCost(job: Pick<GenerationJob, 'strategy' | 'n' | 'maxNewTokens' | 'promptIds'>): number {
  return jobRows(job) * rowWork(job.maxNewTokens) + job.promptIds.length;
}

/**
 * One hypermodel pass over `tokens` serialized example tokens: an encoder pass plus a short decoder pass
 * over the learned queries. On models/default a pass over a short example takes about as long as a few
 * decode steps, so a quarter of a token-step per input token, with a floor for the query pass.
 */
export function hyperCost(tokens: number): number {
  return 16 + Math.ceil(tokens / 4);
}

/**
 * A refinement of `steps` Adam steps on a batch of `rows` rows of `srcLen` + `tgtLen` tokens. Each step is a
 * teacher-forced forward pass over every token of the batch, priced like the hypermodel's encoder pass (a
 * quarter of a token-step per token), times 3 for the backward pass (about twice the forward) and the update,
 * plus a floor per step for the run itself. An estimate: admission corrects its throughput from the work
 * done, and a refinement is credited its whole cost when it finishes.
 */
export function refineCost(steps: number, rows: number, srcLen: number, tgtLen: number): number {
  return steps * (4 + Math.ceil((3 * rows * (srcLen + tgtLen)) / 4));
}
