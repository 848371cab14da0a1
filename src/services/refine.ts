/**
 * Running one refinement for a request: admitted by its cost (engine/cost.ts refineCost), bounded by
 * REQUEST_DEADLINE_MS and by the client staying connected. Either ending first cancels the worker's job between
 * two Adam steps and rejects, so the caller stores nothing.
 */
import { refineCost } from '../engine/cost.js';
import type { RefineJob, RefineOutcome } from '../engine/refine-runner.js';
import { HtError } from '../errors/domain-error.js';
import type { AdapterTensors } from '../inference/feeds.js';
import type { AdapterKindName } from '../inference/manifest.js';
import type { ValidRefine } from '../validation/valid.js';

/** What refinement needs of the engine (the scheduler). */
export interface RefineEngine {
  admit(jobs: number, cost?: number): void;
  refine(spec: Omit<RefineJob, 'jobId'>): { result: Promise<RefineOutcome>; cancel(reason: Error): void };
}

export interface RefineLimits {
  /** REQUEST_DEADLINE_MS (0 = none) and RETRY_AFTER_S, sent with a missed deadline. */
  deadlineMs: number;
  retryAfterS: number;
}

export const refineJobCost = (r: ValidRefine): number => refineCost(r.steps, r.batch.rows, r.batch.srcLen, r.batch.tgtLen);

export async function runRefinement(
  engine: RefineEngine,
  limits: RefineLimits,
  kind: AdapterKindName,
  start: AdapterTensors,
  r: ValidRefine,
  signal?: AbortSignal,
): Promise<RefineOutcome> {
  if (signal?.aborted) throw new HtError('HT_ERR_CLIENT_CLOSED', 'the client closed the connection');
  engine.admit(1, refineJobCost(r));
  const run = engine.refine({ kind, start, batch: r.batch, steps: r.steps, learningRate: r.learningRate });
  const { deadlineMs, retryAfterS } = limits;
  const timer = deadlineMs > 0
    ? setTimeout(() => run.cancel(new HtError('HT_ERR_DEADLINE_EXCEEDED', `refining ${r.steps} steps did not finish within ${deadlineMs} ms (REQUEST_DEADLINE_MS); nothing was stored`, retryAfterS)), deadlineMs)
    : undefined;
  const onAbort = () => run.cancel(new HtError('HT_ERR_CLIENT_CLOSED', 'the client closed the connection during refinement'));
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await run.result;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}
