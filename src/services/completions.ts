/**
 * Completions: resolve the model (base, adapter id, or inline examples), validate the request against
 * the limits, then run one generation job per prompt and gather choices in OpenAI order.
 */
import { randomInt } from 'node:crypto';
import type { Config } from '../config/index.js';
import { HtError, adapterNotFound } from '../errors/http-error.js';
import { isAdapterId } from '../adapters/canonical-id.js';
import type { RowAdapter } from '../inference/feeds.js';
import type { ChoiceResult, FinishReason, GenerationJob, Strategy } from '../generation/types.js';
import type { Engine } from '../plugins/engine.js';
import type { Metrics } from '../plugins/metrics.js';
import { generationCost, hyperCost } from '../scheduler/cost.js';
import type { CompletionBody } from '../schemas/completions.js';
import type { AdapterService } from './adapters.js';
import { checkLimit, promptIds } from './validate.js';

export interface PreparedCompletion {
  /** What the response names as `model`: the adapter id used, or the base model name. */
  model: string;
  prompts: number[][];
  jobs: Omit<GenerationJob, 'jobId'>[];
  n: number;
  promptTokens: number;
  /** Token-steps the jobs may cost (scheduler/cost.ts). */
  cost: number;
}

export interface FinalChoice {
  index: number;
  text: string;
  finish_reason: FinishReason;
  tokens: number;
}

export interface CompletionSink {
  delta(index: number, text: string): void;
}

export class CompletionService {
  constructor(
    private readonly config: Config,
    private readonly engine: Engine,
    private readonly adapters: AdapterService,
    private readonly metrics: Metrics,
  ) {}

  private async resolveAdapter(body: CompletionBody, owner: string | undefined): Promise<{ model: string; adapter: RowAdapter | null }> {
    const base = this.engine.bundle.manifest.name;
    if (body.examples) {
      if (body.model !== base) {
        throw new HtError('HT_ERR_INCOMPATIBLE_PARAMETERS', `body.examples needs body.model to be the base model "${base}"; got ${JSON.stringify(body.model)}`);
      }
      const { record } = await this.adapters.getOrCreate(body.examples, body.adapter_kind, 'body.examples', 'body.adapter_kind', owner);
      return { model: record.meta.id, adapter: { kind: record.meta.kind, tensors: record.tensors } };
    }
    if (body.adapter_kind !== undefined) {
      throw new HtError('HT_ERR_INCOMPATIBLE_PARAMETERS', `body.adapter_kind is "${body.adapter_kind}" but body.examples is missing; it only selects the kind of an inline adapter`);
    }
    if (body.model === base) return { model: base, adapter: null };
    if (isAdapterId(body.model)) {
      const record = await this.adapters.get(body.model, owner);
      if (!record) throw adapterNotFound(body.model, 'body.model');
      return { model: record.meta.id, adapter: { kind: record.meta.kind, tensors: record.tensors } };
    }
    throw new HtError('HT_ERR_MODEL_NOT_FOUND', `body.model is ${JSON.stringify(body.model)}; expected "${base}" or an adapter id (ad-…)`);
  }

  private strategy(body: CompletionBody, promptIndex: number, seed: number): Strategy {
    const g = this.engine.bundle.manifest.generation;
    // Beam search when asked for, or by the manifest's default when the request names no sampling.
    const beams = body.num_beams ?? (body.temperature === undefined && body.top_p === undefined ? g.num_beams : 1);
    const temp = body.temperature ?? 1;
    if (beams > 1) {
      if (body.num_beams !== undefined && temp > 0 && body.temperature !== undefined) {
        throw new HtError('HT_ERR_INCOMPATIBLE_PARAMETERS', `body.num_beams is ${beams} and body.temperature is ${temp}; beam search needs temperature 0 or absent`);
      }
      return { type: 'beam', numBeams: beams, lengthPenalty: 1 };
    }
    if (temp === 0) return { type: 'greedy' };
    return { type: 'sample', temperature: temp, topP: body.top_p ?? 1, seed, promptIndex };
  }

  async prepare(body: CompletionBody, owner?: string): Promise<PreparedCompletion> {
    const c = this.config;
    const { bundle, tokenizer } = this.engine;
    const prompts = typeof body.prompt === 'string' ? [body.prompt] : body.prompt;
    checkLimit('body.prompt length', prompts.length, c.MAX_PROMPTS, 'MAX_PROMPTS');
    const n = body.n ?? 1;
    checkLimit('body.n', n, c.MAX_N, 'MAX_N');
    if (body.num_beams !== undefined) checkLimit('body.num_beams', body.num_beams, c.MAX_BEAMS, 'MAX_BEAMS');
    const maxNewTokens = body.max_tokens ?? Math.min(bundle.manifest.generation.max_new_tokens, c.MAX_TOKENS);
    checkLimit('body.max_tokens', maxNewTokens, c.MAX_TOKENS, 'MAX_TOKENS');
    const stop = body.stop == null ? [] : typeof body.stop === 'string' ? [body.stop] : body.stop;
    checkLimit('body.stop length', stop.length, c.MAX_STOP, 'MAX_STOP');
    const ids = prompts.map((p, i) => promptIds(bundle, tokenizer, p, typeof body.prompt === 'string' ? 'body.prompt' : `body.prompt[${i}]`));
    const seed = body.seed ?? randomInt(0, 2 ** 31);
    const strategies = prompts.map((_, i) => this.strategy(body, i, seed));
    const s0 = strategies[0]!;
    if (s0.type === 'beam' && n > s0.numBeams) {
      throw new HtError('HT_ERR_INCOMPATIBLE_PARAMETERS', `body.n is ${n}; beam search returns at most num_beams (${s0.numBeams}) choices`);
    }
    const cost = ids.reduce((sum, promptIdsI, i) => sum + generationCost({ promptIds: promptIdsI, strategy: strategies[i]!, n, maxNewTokens }), 0);
    // Refuse by cost before an inline adapter's hypermodel pass, so an overloaded server spends nothing on it.
    // The byte length of the examples stands in for their token count (the pass is a small share of the cost).
    const hyper = body.examples ? hyperCost(body.examples.reduce((sum, e) => sum + e.input.length + e.output.length, 0)) : 0;
    this.engine.scheduler.admit(ids.length + (body.examples ? 1 : 0), cost + hyper);
    const { model, adapter } = await this.resolveAdapter(body, owner);
    return {
      model,
      cost,
      prompts: ids,
      n,
      promptTokens: ids.reduce((a, p) => a + p.length, 0),
      jobs: ids.map((promptIdsI, i) => ({
        promptIds: promptIdsI,
        adapter,
        maxNewTokens,
        stop,
        strategy: strategies[i]!,
        n,
        stream: body.stream === true,
      })),
    };
  }

  /**
   * Runs every job; resolves with the choices in OpenAI order (prompt index * n + choice). `cancel` (client
   * gone) and the deadline (REQUEST_DEADLINE_MS) take the jobs out of the batch at the next decode step and
   * settle the result, so nothing waits on work that no one will read.
   */
  run(prepared: PreparedCompletion, sink: CompletionSink | null): { result: Promise<FinalChoice[]>; cancel(reason?: HtError): void } {
    const scheduler = this.engine.scheduler;
    scheduler.admit(prepared.jobs.length, prepared.cost);
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
    const result = new Promise<FinalChoice[]>((resolve, reject) => {
      const out: FinalChoice[] = [];
      let remaining = prepared.jobs.length;
      const finish = (f: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        f();
      };
      fail = (e) => finish(() => reject(e));
      prepared.jobs.forEach((job, p) => {
        const base = p * prepared.n;
        if (settled) return;
        try {
          handles.push(
            scheduler.generate(job, {
              delta: (choice, text) => sink?.delta(base + choice, text),
              done: (choices: ChoiceResult[]) => {
                for (const ch of choices) {
                  out.push({ index: base + ch.choice, text: ch.text, finish_reason: ch.finishReason, tokens: ch.tokenIds.length });
                  this.metrics.generatedTokens.inc(ch.tokenIds.length);
                }
                if (--remaining === 0) finish(() => resolve(out.sort((a, b) => a.index - b.index)));
              },
              failed: (e) => stopAll(e),
            }, request),
          );
        } catch (e) {
          stopAll(e as Error);
        }
      });
    });
    const deadline = this.config.REQUEST_DEADLINE_MS;
    if (deadline > 0 && !settled) {
      timer = setTimeout(
        () => stopAll(new HtError('HT_ERR_DEADLINE_EXCEEDED', `the request did not finish within ${deadline} ms (REQUEST_DEADLINE_MS)`, this.config.RETRY_AFTER_S)),
        deadline,
      );
    }
    return {
      result,
      cancel: (reason) => stopAll(reason ?? new HtError('HT_ERR_CLIENT_CLOSED', 'the client closed the connection')),
    };
  }
}
