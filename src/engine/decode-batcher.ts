/**
 * The continuous decode batcher: every step decodes all live rows of all admitted jobs together; finished
 * rows leave, waiting jobs join at the next step (their encoder runs once, then they share the left-padded
 * cache). It runs over a StepModel, so tests drive it with a fake model.
 */
import type { DecodeRow, StepResult } from '../inference/decoder.js';
import type { EncodedInput, EncodeItem } from '../inference/encoder.js';
import { HtError } from '../errors/domain-error.js';
import { BeamGroup } from '../generation/beam.js';
import { SampleGroup } from '../generation/sample-group.js';
import type { GenerationJob, Group, GroupContext } from '../generation/types.js';
import { jobRows } from './cost.js';

export interface StepModel {
  encode(items: readonly EncodeItem[]): Promise<EncodedInput[]>;
  /**
   * Decodes one token for each row. A row's `past` points at a row of the previous call (the model keeps the
   * caches): a failed call leaves them as they were.
   */
  step(rows: readonly DecodeRow[]): Promise<StepResult>;
}

/**
 * Logits holding NaN or ±Infinity pick no token (argmax would return 0 at every step until max_tokens).
 * With an adapter, the adapter is the cause (values that pass import can still be out of range for this
 * model, and stored adapters predate the bound): HT_ERR_NON_FINITE_LOGITS naming it. Without one, the model itself failed.
 */
function checkFinite(g: Group, logits: Float32Array): void {
  for (let j = 0; j < logits.length; j++) {
    const v = logits[j]!;
    if (Number.isFinite(v)) continue;
    const row = Math.floor(j / (logits.length / g.rows.length));
    const at = `at generated token ${g.rows[row]!.tokens.length + 1}`;
    const adapter = g.job.adapter;
    if (!adapter) throw new Error(`the base model's logits hold ${v} ${at}`);
    throw new HtError(
      'HT_ERR_NON_FINITE_LOGITS',
      `model: the ${adapter.kind} adapter drove the logits to ${v} ${at}; its parameters are out of range for this model (import it again within the manifest's max_abs, or create it again)`,
    );
  }
}

export class DecodeBatcher {
  private waiting: GenerationJob[] = [];
  private groups: Group[] = [];
  /** Jobs out of `waiting` whose encoder is running: a cancel arriving meanwhile is remembered here. */
  private encoding = new Map<number, { cancelled: boolean }>();

  constructor(
    private readonly model: StepModel,
    private readonly ctx: GroupContext,
    private readonly maxRows: number,
    private readonly onStep: (rows: number) => void = () => {},
  ) {}

  submit(job: GenerationJob): void {
    this.waiting.push(job);
  }

  cancel(jobId: number): void {
    this.waiting = this.waiting.filter((j) => j.jobId !== jobId);
    this.groups = this.groups.filter((g) => g.job.jobId !== jobId);
    const enc = this.encoding.get(jobId);
    if (enc) enc.cancelled = true;
  }

  get idle(): boolean {
    return this.waiting.length === 0 && this.groups.length === 0 && this.encoding.size === 0;
  }

  private liveRows(): number {
    return this.groups.reduce((n, g) => n + g.rows.length, 0);
  }

  /** Admits waiting jobs that fit (a job bigger than the whole batch still runs, alone). */
  private async admit(): Promise<void> {
    let rows = this.liveRows();
    const admitted: GenerationJob[] = [];
    while (this.waiting.length) {
      const need = jobRows(this.waiting[0]!);
      if (rows + need > this.maxRows && rows > 0) break;
      admitted.push(this.waiting.shift()!);
      rows += need;
    }
    if (!admitted.length) return;
    const marks = admitted.map((j) => {
      const mark = { cancelled: false };
      this.encoding.set(j.jobId, mark);
      return mark;
    });
    let encs: EncodedInput[];
    try {
      encs = await this.model.encode(admitted.map((j) => ({ ids: j.promptIds, adapter: j.adapter })));
    } catch (e) {
      admitted.forEach((j, i) => {
        if (!marks[i]!.cancelled) this.ctx.events.failed(j.jobId, e as Error);
      });
      return;
    } finally {
      for (const j of admitted) this.encoding.delete(j.jobId);
    }
    admitted.forEach((job, i) => {
      if (marks[i]!.cancelled) return;
      const enc = encs[i]!;
      this.groups.push(job.strategy.type === 'beam' ? new BeamGroup(job, enc, this.ctx) : new SampleGroup(job, enc, this.ctx));
    });
  }

  /** One scheduling step: admit, decode once, advance every group. */
  async tick(): Promise<void> {
    await this.admit();
    const groups = this.groups.filter((g) => !g.finished && g.rows.length > 0);
    if (!groups.length) return;
    const decodeRows: DecodeRow[] = [];
    for (const g of groups) {
      for (const r of g.rows) {
        decodeRows.push({ inputId: r.inputId, past: r.cache, enc: g.enc, adapter: g.job.adapter });
      }
    }
    this.onStep(decodeRows.length);
    let result: StepResult;
    try {
      result = await this.model.step(decodeRows);
    } catch (e) {
      for (const g of groups) this.ctx.events.failed(g.job.jobId, e as Error);
      this.groups = this.groups.filter((g) => !groups.includes(g));
      return;
    }
    const V = result.vocab;
    let offset = 0;
    for (const g of groups) {
      // A group cancelled while the step ran is no longer in this.groups: skip it.
      if (!this.groups.includes(g)) {
        offset += g.rows.length;
        continue;
      }
      const base = offset;
      // The decoder now holds each row's cache, one step longer, at the row's index in this step.
      g.rows.forEach((r, i) => {
        r.cache = { slot: base + i, length: r.cache.length + 1 };
      });
      offset += g.rows.length;
      try {
        checkFinite(g, result.logits.subarray(base * V, (base + g.rows.length) * V));
        g.advance((i) => result.logits.subarray((base + i) * V, (base + i + 1) * V));
      } catch (e) {
        this.ctx.events.failed(g.job.jobId, e as Error);
        this.groups = this.groups.filter((x) => x !== g);
      }
    }
    this.groups = this.groups.filter((g) => !g.finished);
  }
}
