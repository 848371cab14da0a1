/**
 * The service's speed in token-steps per second, from the work it did. Decode steps are credited as they
 * happen (a long job counts before it ends); when a job completes, the rest of its estimated cost (cost.ts, an
 * upper bound) is credited too, so the rate is in the same units as the queue's cost and absorbs how far real
 * outputs fall short of max_tokens. Time counts only while work runs, in worker-seconds (the rate is that of
 * all workers busy), and older measurements fade by half every `halfLifeS` seconds of it. Until enough is measured, `prior` weighs in as if observed for `priorS` s.
 */
export class ThroughputEstimate {
  private cost = 0;
  private busyS = 0;

  constructor(
    private readonly prior: number,
    private readonly priorS = 5,
    private readonly halfLifeS = 30,
  ) {}

  /** `cost` token-steps done over `busyS` more seconds of busy time. */
  record(cost: number, busyS: number): void {
    const keep = 2 ** (-busyS / this.halfLifeS);
    this.cost = this.cost * keep + cost;
    this.busyS = this.busyS * keep + busyS;
  }

  /** Token-steps per second. */
  get rate(): number {
    return (this.cost + this.prior * this.priorS) / (this.busyS + this.priorS);
  }
}
