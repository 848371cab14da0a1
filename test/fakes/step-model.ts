/**
 * A deterministic stand-in for the encoder and decoder graphs, so the generation loop, beam search and
 * sampling can be tested without ONNX Runtime.
 *
 * Like the real decoder, a row's logits depend only on what the row carries: its encoder output and the
 * self-attention cache it points at. The fake's "encoder output" is the prompt ids themselves, and its cache
 * of a row is the tokens fed to it so far, kept per row of the previous step as the real decoder keeps K/V;
 * so a loop that pointed a row at another row's cache, skipped a step or reordered beams wrongly would change
 * the logits, and with them the text (and a length that disagrees with the cache throws).
 */
import { DecodeBatcher, type StepModel } from '../../src/engine/decode-batcher.js';
import type { ChoiceResult, GenerationEvents, GenerationJob, GroupContext, Strategy } from '../../src/generation/types.js';
import type { DecodeRow, StepResult } from '../../src/inference/decoder.js';
import type { EncodedInput, EncodeItem } from '../../src/inference/encoder.js';
import { ByteTokenizer } from '../../src/inference/tokenizer.js';

/** The fixture bundle's layout: pad 0 = decoder start, eos 1, bytes at offset 3. */
const DECODER_START = 0;
const EOS = 1;
const OFFSET = 3;
const VOCAB = 256 + OFFSET;

const tokenizer = new ByteTokenizer(OFFSET);
export const encodeText = (text: string): number[] => tokenizer.encode(text);
const decodeIds = (ids: readonly number[]): string => tokenizer.decode(ids);
/** The token of one ASCII character. */
const tok = (ch: string): number => encodeText(ch)[0]!;

/** Next-token logits of a row, from its prompt text and the tokens it generated so far. */
export type NextLogits = (prompt: string, generated: readonly number[]) => Float32Array;

/** Logits where `token` is the clear favourite (about 0.96 probability) and every other token is equally likely. */
function favour(token: number): Float32Array {
  const logits = new Float32Array(VOCAB);
  logits[token] = 10;
  return logits;
}

/**
 * Logits with the given probabilities (keys: one character, or 'EOS'); every token not named gets about
 * 1e-12, so the named probabilities are the distribution to within 1e-9.
 */
export function probs(table: Readonly<Record<string, number>>): Float32Array {
  const logits = new Float32Array(VOCAB).fill(Math.log(1e-12));
  for (const [key, p] of Object.entries(table)) logits[key === 'EOS' ? EOS : tok(key)] = Math.log(p);
  return logits;
}

/** Each prompt's completion is a fixed text, then eos; an unknown prompt answers eos at once. */
export function scripted(scripts: Readonly<Record<string, string>>): NextLogits {
  return (prompt, generated) => {
    const script = encodeText(scripts[prompt] ?? '');
    return favour(generated.length < script.length ? script[generated.length]! : EOS);
  };
}

/**
 * A probability tree: the key is the text generated so far, the value the next-token distribution
 * (see `probs`); a text not in the tree ends with eos.
 */
export function tree(nodes: Readonly<Record<string, Readonly<Record<string, number>>>>): NextLogits {
  return (_prompt, generated) => probs(nodes[decodeIds(generated)] ?? { EOS: 1 });
}

export class FakeStepModel implements StepModel {
  /** The prompts encoded by each encode call. */
  readonly encodeCalls: string[][] = [];
  /** The number of rows of each decode step. */
  readonly stepSizes: number[] = [];
  /** Runs while a step is in flight (after the rows are read, before the result returns): a place to cancel. */
  duringStep: ((stepIndex: number) => void) | null = null;
  /** Per row of the last step, the tokens fed to it so far: its cache. */
  private fed: number[][] = [];

  constructor(private readonly next: NextLogits) {}

  async encode(items: readonly EncodeItem[]): Promise<EncodedInput[]> {
    this.encodeCalls.push(items.map((i) => decodeIds(i.ids)));
    return items.map((i) => ({ crossKey: Float32Array.from(i.ids), crossValue: Float32Array.from(i.ids), srcLen: i.ids.length }));
  }

  async step(rows: readonly DecodeRow[]): Promise<StepResult> {
    const logits = new Float32Array(rows.length * VOCAB);
    const fedNow = rows.map((row, b) => {
      const { slot, length } = row.past;
      const past = slot < 0 ? [] : this.fed[slot];
      if (!past) throw new Error(`row ${b}: cache slot ${slot} not in the previous step's ${this.fed.length} rows`);
      if (past.length !== length) throw new Error(`row ${b}: cache length ${length}, but slot ${slot} holds ${past.length}`);
      const fed = [...past, row.inputId];
      if (fed[0] !== DECODER_START) throw new Error(`row ${b}: cache does not start with the decoder start token`);
      logits.set(this.next(decodeIds(Array.from(row.enc.crossKey)), fed.slice(1)), b * VOCAB);
      return fed;
    });
    const stepIndex = this.stepSizes.length;
    this.stepSizes.push(rows.length);
    // Yield like a real session run does, so that other work (a cancel) can happen while the step is in flight.
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.duringStep?.(stepIndex);
    this.fed = fedNow;
    return { logits, vocab: VOCAB };
  }
}

/** Wraps a model so that the listed calls (0-based, counted per method) throw, as a failing graph would. */
export function withFaults(model: StepModel, fail: { encode?: number[]; step?: number[] }): StepModel {
  let encodes = 0;
  let steps = 0;
  return {
    encode: (items) => ((fail.encode ?? []).includes(encodes++) ? Promise.reject(new Error('encoder failed')) : model.encode(items)),
    step: (rows) => ((fail.step ?? []).includes(steps++) ? Promise.reject(new Error('decoder failed')) : model.step(rows)),
  };
}

/** Collects what the loop reports, per job. */
export class Recorder implements GenerationEvents {
  readonly results = new Map<number, ChoiceResult[]>();
  readonly failures = new Map<number, Error>();
  /** Streamed text per job and choice, one entry per delta. */
  readonly deltas = new Map<string, string[]>();

  delta(jobId: number, choice: number, text: string): void {
    const key = `${jobId}/${choice}`;
    this.deltas.set(key, [...(this.deltas.get(key) ?? []), text]);
  }
  done(jobId: number, choices: ChoiceResult[]): void {
    if (this.results.has(jobId)) throw new Error(`job ${jobId} reported done twice`);
    this.results.set(jobId, choices);
  }
  failed(jobId: number, error: Error): void {
    this.failures.set(jobId, error);
  }

  /** The one result of a job, or a failure naming what the loop reported instead. */
  result(jobId: number): ChoiceResult[] {
    const r = this.results.get(jobId);
    if (!r) throw new Error(`job ${jobId} has no result (failure: ${this.failures.get(jobId)?.message ?? 'none'})`);
    return r;
  }
  text(jobId: number, choice = 0): string {
    return this.result(jobId)[choice]!.text;
  }
}

export function context(events: GenerationEvents): GroupContext {
  return { eos: EOS, decoderStart: DECODER_START, decode: decodeIds, events };
}

let nextJobId = 1;

/** A valid job for `prompt`: greedy, one choice, 32 tokens, no stops, unless overridden. */
export function job(prompt: string, over: Partial<Omit<GenerationJob, 'promptIds'>> & { strategy?: Strategy } = {}): GenerationJob {
  return {
    jobId: nextJobId++,
    promptIds: encodeText(prompt),
    adapter: null,
    maxNewTokens: 32,
    stop: [],
    strategy: { type: 'greedy' },
    n: 1,
    stream: false,
    ...over,
  };
}

/** Ticks until the loop is idle; a loop that never empties fails the test instead of hanging it. */
export async function drain(loop: DecodeBatcher, maxTicks = 500): Promise<number> {
  let ticks = 0;
  while (!loop.idle) {
    if (++ticks > maxTicks) throw new Error(`loop still busy after ${maxTicks} ticks`);
    await loop.tick();
  }
  return ticks;
}

/** The choices of one job run by itself in a fresh loop: the reference a batched run must reproduce. */
export async function runAlone(next: NextLogits, j: GenerationJob): Promise<ChoiceResult[]> {
  const rec = new Recorder();
  const loop = new DecodeBatcher(new FakeStepModel(next), context(rec), 64);
  loop.submit(j);
  await drain(loop);
  return rec.result(j.jobId);
}
