/**
 * Beam search over one job: live beams are decoder rows; finished hypotheses are kept by
 * length-normalized score (sum of log-probabilities / length^length_penalty, as in HF generate).
 */
import type { EncodedInput } from '../inference/encoder.js';
import { logSoftmax } from './logits-processors.js';
import { StopChecker } from './stopping.js';
import { newRow, type ChoiceResult, type FinishReason, type Group, type GroupContext, type GenerationJob, type Row } from './types.js';

interface Beam {
  row: Row;
  score: number;
}

interface Hypothesis {
  tokens: number[];
  text: string;
  score: number;
  finishReason: FinishReason;
}

export class BeamGroup implements Group {
  rows: Row[];
  private beams: Beam[];
  private hyps: Hypothesis[] = [];
  private done = false;
  private readonly k: number;
  private readonly lp: number;
  private readonly stop: StopChecker;

  constructor(
    readonly job: GenerationJob,
    readonly enc: EncodedInput,
    private readonly ctx: GroupContext,
  ) {
    if (job.strategy.type !== 'beam') throw new Error('BeamGroup needs a beam strategy');
    this.k = job.strategy.numBeams;
    this.lp = job.strategy.lengthPenalty;
    this.stop = new StopChecker(job.stop);
    // One live beam at first: k copies of the same start would only give k identical candidates.
    this.beams = [{ row: newRow(ctx.decoderStart), score: 0 }];
    this.rows = this.beams.map((b) => b.row);
  }

  get finished(): boolean {
    return this.done;
  }

  private normalized(score: number, length: number): number {
    return score / Math.pow(Math.max(1, length), this.lp);
  }

  private addHyp(tokens: number[], score: number, finishReason: FinishReason, text: string, length: number): void {
    this.hyps.push({ tokens, text, score: this.normalized(score, length), finishReason });
    this.hyps.sort((a, b) => b.score - a.score);
    if (this.hyps.length > this.k) this.hyps.length = this.k;
  }

  advance(logitsOf: (rowIndex: number) => Float32Array): void {
    const width = 2 * this.k;
    const candidates: { score: number; beam: number; token: number }[] = [];
    this.beams.forEach((beam, b) => {
      const lp = logSoftmax(logitsOf(b));
      // Top `width` tokens of this beam: a candidate outside them can't be in the global top `width`.
      const top: { score: number; token: number }[] = [];
      for (let t = 0; t < lp.length; t++) {
        const s = beam.score + lp[t]!;
        if (top.length < width || s > top[top.length - 1]!.score) {
          top.push({ score: s, token: t });
          top.sort((x, y) => y.score - x.score || x.token - y.token);
          if (top.length > width) top.pop();
        }
      }
      for (const c of top) candidates.push({ ...c, beam: b });
    });
    candidates.sort((x, y) => y.score - x.score || x.beam - y.beam || x.token - y.token);

    const next: Beam[] = [];
    const step = this.beams[0]!.row.tokens.length + 1;
    for (let rank = 0; rank < candidates.length && next.length < this.k; rank++) {
      const c = candidates[rank]!;
      const parent = this.beams[c.beam]!.row;
      if (c.token === this.ctx.eos) {
        if (rank < this.k) this.addHyp(parent.tokens, c.score, 'stop', this.ctx.decode(parent.tokens), step);
        continue;
      }
      const tokens = [...parent.tokens, c.token];
      const text = this.ctx.decode(tokens);
      const at = this.stop.find(text);
      if (at >= 0) {
        if (rank < this.k) this.addHyp(tokens, c.score, 'stop', text.slice(0, at), step);
        continue;
      }
      // Children point at the parent's cache; the decoder copies it into each child's row at the next step.
      next.push({ row: { inputId: c.token, cache: parent.cache, tokens }, score: c.score });
    }

    if (step >= this.job.maxNewTokens) {
      for (const b of next) this.addHyp(b.row.tokens, b.score, 'length', this.ctx.decode(b.row.tokens), step);
      this.finish();
      return;
    }
    const full = this.hyps.length >= this.k;
    const best = next.length ? this.normalized(next[0]!.score, step) : -Infinity;
    if (next.length === 0 || (full && best <= this.hyps[this.hyps.length - 1]!.score)) {
      this.finish();
      return;
    }
    this.beams = next;
    this.rows = next.map((b) => b.row);
  }

  private finish(): void {
    this.done = true;
    this.rows = [];
    // Fewer hypotheses than n only when every beam ended at once: repeat the best rather than drop choices.
    while (this.hyps.length < this.job.n && this.hyps.length > 0) this.hyps.push(this.hyps[0]!);
    const results: ChoiceResult[] = this.hyps.slice(0, this.job.n).map((h, choice) => ({
      choice,
      text: h.text,
      finishReason: h.finishReason,
      tokenIds: h.tokens,
    }));
    this.ctx.events.done(this.job.jobId, results);
  }
}
