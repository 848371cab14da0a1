/**
 * Completions: admit a validated request, fetch or create its inline adapter, then run one generation job
 * per prompt and gather the choices in OpenAI order, with the token counts of the usage block.
 */
import type { RowAdapter } from '../inference/feeds.js';
import type { ChoiceResult, FinishReason, GenerationJob } from '../generation/types.js';
import { HtError } from '../errors/domain-error.js';
import { generationCost, hyperCost } from '../engine/cost.js';
import type { ValidCompletion } from '../validation/valid.js';
import type { AdapterService } from './adapters.js';
import { refineJobCost } from './refine.js';

type JobSpec = Omit<GenerationJob, 'jobId'>;

/** What completions need of the engine: admission, then generation jobs that report back. */
interface GenerationEngine {
  admit(jobs: number, cost?: number): void;
  generate(
    job: JobSpec,
    handlers: { delta(choice: number, text: string): void; done(choices: ChoiceResult[]): void; failed(error: Error): void },
    request: object,
  ): { cancel(): void };
}

interface CompletionServiceDeps {
  engine: GenerationEngine;
  adapters: Pick<AdapterService, 'getOrCreate'>;
  /** REQUEST_DEADLINE_MS (0 = none) and RETRY_AFTER_S, sent with a missed deadline. */
  deadlineMs: number;
  retryAfterS: number;
  /** Completion tokens generated (metrics). */
  generated(tokens: number): void;
}

interface PreparedCompletion {
  /** What the response names as `model`: the adapter id used, or the base model name. */
  model: string;
  jobs: JobSpec[];
  n: number;
  promptTokens: number;
  /** Token-steps the jobs may cost (engine/cost.ts). */
  cost: number;
}

/** OpenAI's legacy completions `logprobs` object. */
interface ChoiceLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[];
  /** Character offsets in the choice's text (the prompt is not echoed, so the first token is at 0). */
  text_offset: number[];
}

interface FinalChoice {
  index: number;
  text: string;
  finish_reason: FinishReason;
  logprobs: ChoiceLogprobs | null;
}

interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

interface CompletionResult {
  choices: FinalChoice[];
  usage: Usage;
}

export interface CompletionSink {
  delta(index: number, text: string): void;
}

export interface RunningCompletion {
  result: Promise<CompletionResult>;
  /** Stops every job at the next decode step; the result rejects with `reason` (default: the client closed). */
  cancel(reason?: HtError): void;
}

export class CompletionService {
  constructor(private readonly deps: CompletionServiceDeps) {}

  private async adapter(valid: ValidCompletion, owner: string | undefined, signal: AbortSignal | undefined): Promise<{ model: string; adapter: RowAdapter | null }> {
    const m = valid.model;
    if (m.type === 'base') return { model: m.name, adapter: null };
    const record = m.type === 'stored' ? m.record : (await this.deps.adapters.getOrCreate(m.examples, owner, signal)).record;
    return { model: record.meta.id, adapter: { kind: record.meta.kind, tensors: record.tensors } };
  }

  /**
   * Admits the request by its cost, then gets its adapter: an overloaded server spends nothing on a hypermodel
   * pass. `signal`: the client went away, which stops an inline refinement between two steps.
   */
  async prepare(valid: ValidCompletion, owner?: string, signal?: AbortSignal): Promise<PreparedCompletion> {
    const { prompts, strategies, n, maxNewTokens } = valid;
    const cost = prompts.reduce((sum, promptIds, i) => sum + generationCost({ promptIds, strategy: strategies[i]!, n, maxNewTokens }), 0);
    const inline = valid.model.type === 'inline' ? valid.model.examples.examples : undefined;
    // The byte length of the examples stands in for their token count (the pass is a small share of the cost).
    const refine = valid.model.type === 'inline' && valid.model.examples.refine ? refineJobCost(valid.model.examples.refine) : 0;
    const hyper = (inline ? hyperCost(inline.reduce((sum, e) => sum + e.input.length + e.output.length, 0)) : 0) + refine;
    this.deps.engine.admit(prompts.length + (inline ? 1 : 0), cost + hyper);
    const { model, adapter } = await this.adapter(valid, owner, signal);
    return {
      model,
      cost,
      n,
      promptTokens: prompts.reduce((a, p) => a + p.length, 0),
      jobs: prompts.map((promptIds, i) => ({
        promptIds,
        adapter,
        maxNewTokens,
        stop: valid.stop,
        strategy: strategies[i]!,
        n,
        stream: valid.stream,
        ...(valid.logprobs !== undefined ? { logprobs: valid.logprobs } : {}),
      })),
    };
  }

  /**
   * Runs every job; resolves with the choices in OpenAI order (prompt index * n + choice) and the usage.
   * `cancel` (client gone) and the deadline (REQUEST_DEADLINE_MS) take the jobs out of the batch at the next
   * decode step and settle the result, so nothing waits on work that no one will read.
   */
  run(prepared: PreparedCompletion, sink: CompletionSink | null): RunningCompletion {
    const { engine } = this.deps;
    engine.admit(prepared.jobs.length, prepared.cost);
    const request = {};
    const handles: { cancel(): void }[] = [];
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    let fail: (e: Error) => void = () => {};
    const stopAll = (e: Error) => {
      if (settled) return;
      for (const h of handles) h.cancel();
      fail(e);
    };
    const result = new Promise<CompletionResult>((resolve, reject) => {
      const out: FinalChoice[] = [];
      let tokens = 0;
      let remaining = prepared.jobs.length;
      const finish = (f: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        f();
      };
      fail = (e) => finish(() => reject(e));
      const usage = (): Usage => ({ prompt_tokens: prepared.promptTokens, completion_tokens: tokens, total_tokens: prepared.promptTokens + tokens });
      prepared.jobs.forEach((job, p) => {
        const base = p * prepared.n;
        if (settled) return;
        try {
          handles.push(
            engine.generate(job, {
              delta: (choice, text) => sink?.delta(base + choice, text),
              done: (choices: ChoiceResult[]) => {
                for (const ch of choices) {
                  const lp = ch.logprobs;
                  const logprobs = lp ? { tokens: lp.tokens, token_logprobs: lp.tokenLogprobs, top_logprobs: lp.topLogprobs, text_offset: lp.textOffset } : null;
                  out.push({ index: base + ch.choice, text: ch.text, finish_reason: ch.finishReason, logprobs });
                  tokens += ch.tokenIds.length;
                  this.deps.generated(ch.tokenIds.length);
                }
                if (--remaining === 0) finish(() => resolve({ choices: out.sort((a, b) => a.index - b.index), usage: usage() }));
              },
              failed: (e) => stopAll(e),
            }, request),
          );
        } catch (e) {
          stopAll(e as Error);
        }
      });
    });
    const { deadlineMs, retryAfterS } = this.deps;
    if (deadlineMs > 0 && !settled) {
      timer = setTimeout(
        () => stopAll(new HtError('HT_ERR_DEADLINE_EXCEEDED', `the request did not finish within ${deadlineMs} ms (REQUEST_DEADLINE_MS)`, retryAfterS)),
        deadlineMs,
      );
    }
    return {
      result,
      cancel: (reason) => stopAll(reason ?? new HtError('HT_ERR_CLIENT_CLOSED', 'the client closed the connection')),
    };
  }
}
