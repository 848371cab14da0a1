/** Token choice: argmax, and seeded sampling (a deterministic PRNG so the same seed gives the same text). */

/** mulberry32: a tiny 32-bit PRNG; quality is ample for choosing tokens, and it is trivially reproducible. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One 32-bit seed per (request seed, prompt, choice), so a row's randomness never depends on its batch. */
export function rowSeed(seed: number, promptIndex: number, choice: number): number {
  let h = 0x811c9dc5;
  const s = BigInt.asUintN(64, BigInt(seed));
  for (const word of [Number(s & 0xffffffffn), Number(s >> 32n), promptIndex, choice]) {
    h = Math.imul(h ^ (word >>> 0), 0x01000193) >>> 0;
    h = Math.imul(h ^ (h >>> 13), 0x5bd1e995) >>> 0;
  }
  return h >>> 0;
}

/** First index of the largest value (the same tie rule as torch.argmax). */
export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  let bestV = x[0]!;
  for (let i = 1; i < x.length; i++) {
    if (x[i]! > bestV) {
      bestV = x[i]!;
      best = i;
    }
  }
  return best;
}

/** First index of the largest score that is a number (+Infinity included, NaN skipped); 0 if there is none. */
function largestNumber(scores: Float64Array): number {
  let best = -1;
  for (let i = 0; i < scores.length; i++) {
    if (!Number.isNaN(scores[i]!) && (best < 0 || scores[i]! > scores[best]!)) best = i;
  }
  return Math.max(best, 0);
}

/** Draws an index from unnormalized scores (−Infinity = excluded) with softmax probabilities. */
export function sampleFromScores(scores: Float64Array, rng: () => number): number {
  let max = -Infinity;
  for (const s of scores) if (s > max) max = s;
  let total = 0;
  const p = new Float64Array(scores.length);
  for (let i = 0; i < scores.length; i++) {
    p[i] = scores[i] === -Infinity ? 0 : Math.exp(scores[i]! - max);
    total += p[i]!;
  }
  // Non-finite scores (+Infinity, NaN) leave no distribution to draw from: take the largest score instead.
  if (!(total > 0 && Number.isFinite(total))) return largestNumber(scores);
  let r = rng() * total;
  let last = 0;
  for (let i = 0; i < p.length; i++) {
    if (p[i] === 0) continue;
    last = i;
    r -= p[i]!;
    if (r < 0) return i;
  }
  return last;
}
