/** Greedy and sampled decoding: n independent rows sharing one encoder output. */
import type { EncodedInput } from '../inference/encoder.js';
import { applyAll, temperature, topP, type LogitsProcessor } from './logits-processors.js';
import { argmax, mulberry32, rowSeed, sampleFromScores } from './sampler.js';
import { StopChecker } from './stopping.js';
import { TokenLogprobRecorder } from './token-logprobs.js';
import { newRow, type ChoiceResult, type Group, type GroupContext, type GenerationJob, type Row } from './types.js';

interface Live {
  row: Row;
  choice: number;
  rng: (() => number) | null;
  streamed: number;
  /** The text decoded so far (the next token's offset), and its log probabilities when asked for. */
  text: string;
  logprobs: TokenLogprobRecorder | null;
}

export class SampleGroup implements Group {
  rows: Row[] = [];
  private live: Live[] = [];
  private readonly results: ChoiceResult[] = [];
  private readonly stop: StopChecker;
  private readonly processors: LogitsProcessor[] = [];

  constructor(
    readonly job: GenerationJob,
    readonly enc: EncodedInput,
    private readonly ctx: GroupContext,
  ) {
    this.stop = new StopChecker(job.stop);
    const s = job.strategy;
    if (s.type === 'sample') {
      if (s.temperature !== 1) this.processors.push(temperature(s.temperature));
      if (s.topP < 1) this.processors.push(topP(s.topP));
    }
    for (let choice = 0; choice < job.n; choice++) {
      const rng = s.type === 'sample' ? mulberry32(rowSeed(s.seed, s.promptIndex, choice)) : null;
      const logprobs = job.logprobs === undefined ? null : new TokenLogprobRecorder(job.logprobs, (ids) => ctx.decode(ids));
      this.live.push({ row: newRow(ctx.decoderStart), choice, rng, streamed: 0, text: '', logprobs });
    }
    this.rows = this.live.map((l) => l.row);
  }

  get finished(): boolean {
    return this.live.length === 0;
  }

  private pick(l: Live, logits: Float32Array): number {
    if (!l.rng) return argmax(logits);
    return sampleFromScores(applyAll(this.processors, logits), l.rng);
  }

  private finish(l: Live, text: string, finishReason: ChoiceResult['finishReason'], cut = false): void {
    const logprobs = l.logprobs?.result(text, cut);
    this.results.push({ choice: l.choice, text, finishReason, tokenIds: l.row.tokens, ...(logprobs ? { logprobs } : {}) });
  }

  advance(logitsOf: (rowIndex: number) => Float32Array): void {
    const still: Live[] = [];
    this.live.forEach((l, i) => {
      const logits = logitsOf(i);
      const token = this.pick(l, logits);
      const row = l.row;
      if (token === this.ctx.eos) {
        this.finish(l, l.text, 'stop');
        return;
      }
      const prefix = l.logprobs ? row.tokens.slice() : [];
      row.tokens.push(token);
      row.inputId = token;
      const text = this.ctx.decode(row.tokens);
      l.logprobs?.add(logits, prefix, l.text, token, text);
      l.text = text;
      const at = this.stop.find(text);
      if (at >= 0) return this.finish(l, text.slice(0, at), 'stop', true);
      if (row.tokens.length >= this.job.maxNewTokens) return this.finish(l, text, 'length');
      if (this.job.stream) {
        const stable = this.stop.stableLength(text);
        if (stable > l.streamed) {
          this.ctx.events.delta(this.job.jobId, l.choice, text.slice(l.streamed, stable));
          l.streamed = stable;
        }
      }
      still.push(l);
    });
    this.live = still;
    this.rows = still.map((l) => l.row);
    if (this.finished) this.ctx.events.done(this.job.jobId, this.results.sort((a, b) => a.choice - b.choice));
  }
}
