/**
 * Wrong API keys counted per client address in fixed one-minute windows. Past the limit the address is refused
 * before its key is even compared, until the window ends: otherwise the one right guess among the refusals would
 * still answer 200 and the limit would not slow guessing at all. Kept in memory, per replica.
 */
export class AuthFailures {
  private readonly windows = new Map<string, { count: number; resetAt: number }>();

  /**
   * @param limit wrong keys per address per window before it is refused; 0 turns the counting off
   * @param maxAddresses addresses remembered at once, so a flood of sources cannot grow the map without bound
   */
  constructor(
    readonly limit: number,
    private readonly windowMs = 60_000,
    private readonly maxAddresses = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds until `address` may try again, or 0 when it is not refused. */
  retryAfterS(address: string): number {
    if (this.limit === 0) return 0;
    const w = this.windows.get(address);
    if (!w) return 0;
    const left = w.resetAt - this.now();
    if (left <= 0) {
      this.windows.delete(address);
      return 0;
    }
    return w.count >= this.limit ? Math.max(1, Math.ceil(left / 1000)) : 0;
  }

  /** Counts one wrong key from `address`. */
  fail(address: string): void {
    if (this.limit === 0) return;
    const t = this.now();
    const w = this.windows.get(address);
    if (w && w.resetAt > t) {
      w.count++;
      return;
    }
    this.windows.delete(address);
    if (this.windows.size >= this.maxAddresses) this.evict(t);
    this.windows.set(address, { count: 1, resetAt: t + this.windowMs });
  }

  /**
   * Windows are (re)inserted when they start, so the map's order is the order they end in: drop ended ones from the
   * front, then, if every window is still running, the one closest to its end.
   */
  private evict(t: number): void {
    for (const [a, w] of this.windows) {
      if (w.resetAt > t) break;
      this.windows.delete(a);
    }
    if (this.windows.size >= this.maxAddresses) this.windows.delete(this.windows.keys().next().value!);
  }
}
