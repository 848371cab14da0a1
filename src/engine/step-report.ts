/**
 * Decode-step metrics, gathered in the worker and posted in one message per batch of steps rather than one
 * per step. A report goes out before any job settles (so the scheduler credits a job's steps before its
 * completion, as it did step by step), when the worker goes idle, and otherwise every `maxSteps` steps or
 * `maxAgeMs`, so that long jobs still move the throughput estimate.
 */
import type { FromWorker } from './protocol.js';

export class StepReport {
  private rows: number[] = [];
  private work = 0;
  private since = 0;

  constructor(
    private readonly post: (m: FromWorker, transfer: ArrayBuffer[]) => void,
    private readonly maxSteps = 64,
    private readonly maxAgeMs = 100,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** One decode step of `rows` rows and `work` position-weighted token-steps. */
  add(rows: number, work: number): void {
    if (this.rows.length === 0) this.since = this.now();
    this.rows.push(rows);
    this.work += work;
    if (this.rows.length >= this.maxSteps || this.now() - this.since >= this.maxAgeMs) this.flush();
  }

  flush(): void {
    if (this.rows.length === 0) return;
    const rows = Uint16Array.from(this.rows);
    this.post({ type: 'steps', rows, work: this.work }, [rows.buffer]);
    this.rows = [];
    this.work = 0;
  }
}
