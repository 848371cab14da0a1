import type { EncodedInput } from '../inference/encoder.js';
import type { RowAdapter } from '../inference/feeds.js';
import { EMPTY_CACHE, type CacheRef } from '../inference/self-cache.js';
import type { TokenLogprobs } from './token-logprobs.js';

export type FinishReason = 'stop' | 'length';

export type Strategy =
  | { type: 'greedy' }
  | { type: 'sample'; temperature: number; topP: number; seed: number; promptIndex: number }
  | { type: 'beam'; numBeams: number; lengthPenalty: number };

/** One prompt of one request, validated: the engine trusts every field. */
export interface GenerationJob {
  jobId: number;
  promptIds: number[];
  adapter: RowAdapter | null;
  maxNewTokens: number;
  stop: string[];
  strategy: Strategy;
  /** Choices to return. */
  n: number;
  stream: boolean;
  /** OpenAI `logprobs`: record each token's log probability and this many alternatives (greedy and sampled only). */
  logprobs?: number;
}

export interface ChoiceResult {
  choice: number;
  text: string;
  finishReason: FinishReason;
  tokenIds: number[];
  /** When the job asked for `logprobs`. */
  logprobs?: TokenLogprobs;
}

export interface GenerationEvents {
  delta(jobId: number, choice: number, text: string): void;
  done(jobId: number, choices: ChoiceResult[]): void;
  failed(jobId: number, error: Error): void;
}

/** One decoder row: a sampled sequence or a live beam. */
export interface Row {
  inputId: number;
  /** Where the decoder holds this row's self-attention cache; the batcher moves it on after each step. */
  cache: CacheRef;
  tokens: number[];
}

export interface GroupContext {
  eos: number;
  decoderStart: number;
  decode(ids: readonly number[]): string;
  events: GenerationEvents;
}

/** The rows of one job and the rule that picks their next tokens. */
export interface Group {
  readonly job: GenerationJob;
  readonly enc: EncodedInput;
  readonly rows: Row[];
  /** Called after a decode step with each row's logits (same order as rows); replaces rows. */
  advance(logitsOf: (rowIndex: number) => Float32Array): void;
  readonly finished: boolean;
}

export function newRow(decoderStart: number): Row {
  return { inputId: decoderStart, cache: EMPTY_CACHE, tokens: [] };
}
