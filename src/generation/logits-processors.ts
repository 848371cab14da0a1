/** Logits processors: small composable in-place transforms of one row's scores (float64 for stable sums). */

export type LogitsProcessor = (scores: Float64Array) => void;

/**
 * Divides by t after shifting the largest score to 0 (softmax is unchanged by the shift). Without the shift a
 * tiny t (5e-324) turns scores into ±Infinity and their differences into NaN; with it the largest stays 0,
 * the rest go to -Infinity (excluded), which is the limit as t -> 0: greedy, ties shared (t = 0 included).
 */
export const temperature = (t: number): LogitsProcessor => (scores) => {
  let max = -Infinity;
  for (const s of scores) if (s > max) max = s;
  if (!Number.isFinite(max)) return;
  // The top scores stay exactly 0 even at t = 0, where 0 / 0 would make them NaN.
  for (let i = 0; i < scores.length; i++) {
    const shifted = scores[i]! - max;
    scores[i] = shifted === 0 ? 0 : shifted / t;
  }
};

/** Nucleus filtering: keeps the smallest set of top tokens whose probability reaches p (at least one). */
export const topP = (p: number): LogitsProcessor => (scores) => {
  if (p >= 1) return;
  const order = Array.from(scores.keys()).sort((a, b) => scores[b]! - scores[a]! || a - b);
  const max = scores[order[0]!]!;
  let total = 0;
  for (const s of scores) total += Math.exp(s - max);
  let cum = 0;
  let i = 0;
  for (; i < order.length; i++) {
    cum += Math.exp(scores[order[i]!]! - max) / total;
    if (cum >= p) break;
  }
  for (let j = i + 1; j < order.length; j++) scores[order[j]!] = -Infinity;
};

export function applyAll(processors: readonly LogitsProcessor[], logits: ArrayLike<number>): Float64Array {
  const scores = Float64Array.from(logits);
  for (const proc of processors) proc(scores);
  return scores;
}

/** log softmax in float64, for beam scores. */
export function logSoftmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let total = 0;
  for (let i = 0; i < logits.length; i++) total += Math.exp(logits[i]! - max);
  const lse = max + Math.log(total);
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i]! - lse;
  return out;
}
