/**
 * Admission by cost. Each admitted job holds a ticket with its cost in token-steps (cost.ts). A request is
 * refused (HT_ERR_OVERLOADED, with a retry delay) when the work ahead of it plus its own would not finish within
 * the deadline at the measured throughput (throughput.ts), and a queued job whose deadline can no longer be met
 * is shed before any compute is spent on it. Work that would only be cancelled at the deadline is never started.
 * Pure logic on an injected clock: the scheduler feeds it events, the tests feed it a fake clock.
 */
import { HtError } from '../errors/domain-error.js';
import { ThroughputEstimate } from './throughput.js';

export interface Clock {
  /** Milliseconds. */
  now(): number;
}

export interface Ticket {
  readonly cost: number;
  /** Decoder rows held while running. */
  readonly rows: number;
  /** Clock time by which the job must be done (Infinity without a deadline). */
  readonly deadlineAt: number;
  /** The request it belongs to (the jobs of one request share it). */
  readonly group: object;
  startedAt: number | null;
}

export interface AdmissionOptions {
  /** REQUEST_DEADLINE_MS; 0 = no deadline: nothing is refused on cost and nothing is shed. */
  deadlineMs: number;
  /** Token-steps per second assumed until measured. */
  priorRate: number;
  /** Least Retry-After, seconds. */
  retryAfterS: number;
  /**
   * Share of the workers that hold a job (default 1). Busy time counts in worker-seconds, so the rate is that of
   * all workers busy: one long job on one of two workers must not make the other look useless.
   */
  busyShare?(): number;
  clock?: Clock;
  estimate?: ThroughputEstimate;
}

/**
 * Share of the deadline a newcomer's expected finish may use. The estimate is an average: the margin keeps
 * admitted work finishing when the speed dips, at the price of a retry for a request near the limit.
 */
export const ADMIT_SHARE = 0.8;

const systemClock: Clock = { now: () => performance.now() };

export class Admission {
  private readonly tickets = new Set<Ticket>();
  private readonly clock: Clock;
  private readonly estimate: ThroughputEstimate;
  private lastMark: number;

  constructor(private readonly opts: AdmissionOptions) {
    this.clock = opts.clock ?? systemClock;
    this.estimate = opts.estimate ?? new ThroughputEstimate(opts.priorRate);
    this.lastMark = this.clock.now();
  }

  /** Measured throughput, token-steps per second. */
  get rate(): number {
    return this.estimate.rate;
  }

  /** Token-steps the running jobs still have to do: each advances at its rows' share of the rate. */
  private runningLeft(): number {
    const now = this.clock.now();
    let rows = 0;
    for (const t of this.tickets) if (t.startedAt !== null) rows += t.rows;
    const perRowS = this.rate / Math.max(1, rows);
    let sum = 0;
    for (const t of this.tickets) {
      if (t.startedAt !== null) sum += Math.max(0, t.cost - ((now - t.startedAt) / 1000) * perRowS * t.rows);
    }
    return sum;
  }

  /** Token-steps still ahead of a newcomer: the queue in full, the running jobs less their progress. */
  backlog(): number {
    this.accrue();
    let queued = 0;
    for (const t of this.tickets) if (t.startedAt === null) queued += t.cost;
    return queued + this.runningLeft();
  }

  /**
   * Throws HT_ERR_OVERLOADED when a request of `cost` token-steps would not finish within ADMIT_SHARE of
   * the deadline behind the work ahead: (backlog + cost) / rate. With nothing outstanding a request is always
   * admitted: nobody waits behind it, and the deadline still bounds it.
   */
  check(cost: number): void {
    const { deadlineMs, retryAfterS } = this.opts;
    if (deadlineMs <= 0 || this.tickets.size === 0) return;
    const ahead = this.backlog();
    const waitS = (ahead + cost) / this.rate;
    const limitS = (ADMIT_SHARE * deadlineMs) / 1000;
    if (waitS <= limitS) return;
    // Retry once enough has drained for this request to fit; if it cannot fit even alone, once all has drained.
    const drainS = cost / this.rate > limitS ? ahead / this.rate : waitS - limitS;
    const rate = Math.round(this.rate);
    throw new HtError(
      'HT_ERR_OVERLOADED',
      `the work ahead (${Math.round(ahead)} token-steps) and this request (${cost} token-steps: rows × max_tokens + prompt) ` +
        `would take about ${waitS.toFixed(1)} s at the measured ${rate} token-steps/s; the limit is ${limitS.toFixed(1)} s ` +
        `(${ADMIT_SHARE} × REQUEST_DEADLINE_MS ${deadlineMs})`,
      Math.max(retryAfterS, Math.ceil(drainS)),
    );
  }

  /** A queued job of request `group`: holds its cost until `finish`. */
  enter(cost: number, rows: number, withDeadline: boolean, group: object): Ticket {
    this.accrue();
    const deadlineAt = withDeadline && this.opts.deadlineMs > 0 ? this.clock.now() + this.opts.deadlineMs : Infinity;
    const t: Ticket = { cost, rows, deadlineAt, group, startedAt: null };
    this.tickets.add(t);
    return t;
  }

  /** Decode steps done: `tokenSteps` of work (cost.ts units), credited as they happen so a long job counts before it ends. */
  progress(tokenSteps: number): void {
    this.accrue();
    this.estimate.record(tokenSteps, 0);
  }

  /** The job went to a worker: from now on its compute is spent. */
  start(t: Ticket): void {
    this.accrue();
    t.startedAt = this.clock.now();
  }

  /**
   * The job left. A completed one is credited with the part of its cost that `progress` did not already
   * count (`doneSteps`: the token-steps it really took), so each finished job counts its whole estimated cost,
   * and a job that stopped early makes the rate, in cost units, higher. A cancelled job gets no more credit.
   */
  finish(t: Ticket, completed: boolean, doneSteps = 0): void {
    if (!this.tickets.has(t)) return;
    this.accrue();
    this.tickets.delete(t);
    if (completed && t.startedAt !== null) this.estimate.record(Math.max(0, t.cost - doneSteps), 0);
  }

  /** Counts the time since the last event as busy time, in worker-seconds, when a job was running. */
  private accrue(): void {
    const now = this.clock.now();
    let running = false;
    for (const t of this.tickets) if (t.startedAt !== null) running = true;
    if (running) this.estimate.record(0, ((now - this.lastMark) / 1000) * (this.opts.busyShare?.() ?? 1));
    this.lastMark = now;
  }

  /**
   * Queued tickets (in `queue` order, first served first) that would finish past their deadline behind the
   * running work and the queue ahead of them. Shedding one leaves its cost out for those behind it. While one
   * request is all the service holds nothing is shed: like a request admitted to an idle server, it delays
   * no one, and the deadline still bounds it.
   */
  doomed(queue: Iterable<Ticket>): { ticket: Ticket; lateS: number }[] {
    this.accrue();
    if (new Set([...this.tickets].map((t) => t.group)).size <= 1) return [];
    const now = this.clock.now();
    const out: { ticket: Ticket; lateS: number }[] = [];
    let ahead = this.runningLeft();
    for (const t of queue) {
      if (t.startedAt !== null) continue;
      const lateS = (now + ((ahead + t.cost) / this.rate) * 1000 - t.deadlineAt) / 1000;
      if (lateS > 0) out.push({ ticket: t, lateS });
      else ahead += t.cost;
    }
    return out;
  }
}
