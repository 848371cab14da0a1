/**
 * The second validation stage (the first is each route's JSON schema): the semantic limits that need the
 * config, the manifest, the tokenizer or the adapter store. It turns a raw request into a valid one the
 * services and the engine trust; its refusals name the request's parameters (`body.n`, `querystring.kind`).
 */
import { randomInt } from 'node:crypto';
import { isAdapterId } from '../adapters/canonical-id.js';
import type { AdapterRecord } from '../adapters/types.js';
import { checkHeaderLength, checkTensors, headerLimit, inferKind, parseUpload } from '../adapters/validate-import.js';
import type { Config } from '../config/index.js';
import { adapterNotFound, HtError } from '../errors/domain-error.js';
import type { Strategy } from '../generation/types.js';
import type { Bundle } from '../inference/bundle.js';
import type { AdapterKindName } from '../inference/manifest.js';
import type { TextTokenizer } from '../inference/tokenizer.js';
import type { CreateAdapterBody, Example, ImportQuery, RefineAdapterBody } from '../schemas/adapters.js';
import type { CompletionBody } from '../schemas/completions.js';
import { checkExamples, checkKind, checkLimit, hyperIds, promptIds } from './limits.js';
import { checkOpenAiFields } from './openai-fields.js';
import { checkRefine, type RefineRequest } from './refine.js';
import type { ModelChoice, ValidCompletion, ValidExamples, ValidImport, ValidRefine, ValidRefineStored } from './valid.js';

type ValidatorConfig = Pick<Config, 'MAX_EXAMPLES' | 'MAX_EXAMPLE_CHARS' | 'MAX_PROMPTS' | 'MAX_N' | 'MAX_BEAMS' | 'MAX_TOKENS' | 'MAX_STOP' | 'MAX_REFINE_STEPS'>;

interface ValidatorDeps {
  config: ValidatorConfig;
  bundle: Bundle;
  tokenizer: TextTokenizer;
  /** The stored adapter with this id, when it exists and `owner` may use it. */
  findAdapter(id: string, owner: string | undefined): Promise<AdapterRecord | undefined>;
}

export class Validator {
  /** Longest safetensors header an import may declare (fixed by the manifest). */
  private readonly importHeaderLimit: number;

  constructor(private readonly deps: ValidatorDeps) {
    this.importHeaderLimit = headerLimit(deps.bundle.table.kinds);
  }

  /** POST /v1/adapters. */
  newAdapter(body: CreateAdapterBody): ValidExamples {
    const valid = this.examples(body.examples, body.kind, 'body.examples', 'body.kind', body.refine);
    return body.fit === false ? { ...valid, fit: false } : valid;
  }

  /**
   * POST /v1/adapters/{id}/refine: the stored adapter (it must exist), then the examples' counts and characters
   * (they need not fit the hypermodel, which does not read them) and the settings.
   */
  async refineStored(id: string, body: RefineAdapterBody, owner: string | undefined): Promise<ValidRefineStored> {
    const parent = await this.deps.findAdapter(id, owner);
    if (!parent) throw adapterNotFound(id);
    checkExamples(this.deps.config, this.deps.bundle, body.examples, 'body.examples');
    return { parent, examples: body.examples, refine: checkRefine(this.deps, parent.meta.kind, body.examples, body.refine, 'body.refine') };
  }

  /** The examples a quarantined adapter was generated from, to generate it again under the same id. */
  recipe(kind: AdapterKindName, examples: readonly Example[]): ValidExamples {
    return { kind, examples, tokenIds: hyperIds(this.deps.bundle, this.deps.tokenizer, examples, 'examples') };
  }

  /** The settings a quarantined refined adapter was made with, checked again, with its batch rebuilt. */
  refineRecipe(kind: AdapterKindName, examples: readonly Example[], settings: RefineRequest): ValidRefine {
    return checkRefine(this.deps, kind, examples, settings, 'refine');
  }

  /** POST /v1/adapters/import: a safetensors body and the optional `kind` query parameter. */
  import(body: Buffer | undefined, query: ImportQuery): ValidImport {
    const { bundle } = this.deps;
    // Before anything parses the header: its length alone shows an upload far bigger than any adapter.
    checkHeaderLength(body, this.importHeaderLimit);
    const file = parseUpload(body);
    const kind = query.kind !== undefined ? checkKind(bundle, query.kind, 'querystring.kind') : inferKind(file, bundle.kinds);
    const specs = bundle.table.kinds[kind]!;
    return { kind, specs, tensors: checkTensors(file, kind, specs) };
  }

  /**
   * POST /v1/completions: OpenAI fields this server does not implement, the limits, prompt tokens, the decoding
   * strategy, then the model (a stored adapter must exist).
   */
  async completion(body: CompletionBody, owner: string | undefined): Promise<ValidCompletion> {
    const { config: c, bundle, tokenizer } = this.deps;
    // Refused by name before anything is counted, tokenized or looked up.
    checkOpenAiFields(body);
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
    if (s0.type === 'beam' && body.logprobs != null) {
      throw new HtError('HT_ERR_INCOMPATIBLE_PARAMETERS', `body.logprobs is ${body.logprobs} with beam search (num_beams ${s0.numBeams}); log probabilities are returned for greedy and sampled decoding: omit body.logprobs or set body.num_beams to 1`);
    }
    const logprobs = body.logprobs ?? undefined;
    return { model: await this.model(body, owner), prompts: ids, strategies, n, maxNewTokens, stop, stream: body.stream === true, ...(logprobs !== undefined ? { logprobs } : {}) };
  }

  private examples(examples: readonly Example[], kindIn: AdapterKindName | undefined, param: string, kindParam: string, refine?: RefineRequest): ValidExamples {
    const { config, bundle, tokenizer } = this.deps;
    const kind = checkKind(bundle, kindIn, kindParam);
    // Counts and characters first: cheap, and they bound what is tokenized.
    checkExamples(config, bundle, examples, param);
    const tokenIds = hyperIds(bundle, tokenizer, examples, param);
    const refineParam = param.replace(/examples$/, 'refine');
    return { kind, examples, tokenIds, ...(refine ? { refine: checkRefine(this.deps, kind, examples, refine, refineParam) } : {}) };
  }

  private strategy(body: CompletionBody, promptIndex: number, seed: number): Strategy {
    const g = this.deps.bundle.manifest.generation;
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

  private async model(body: CompletionBody, owner: string | undefined): Promise<ModelChoice> {
    const base = this.deps.bundle.manifest.name;
    if (body.examples) {
      if (body.model !== base) {
        throw new HtError('HT_ERR_INCOMPATIBLE_PARAMETERS', `body.examples needs body.model to be the base model "${base}"; got ${JSON.stringify(body.model)}`);
      }
      return { type: 'inline', examples: this.examples(body.examples, body.adapter_kind, 'body.examples', 'body.adapter_kind', body.refine) };
    }
    if (body.refine !== undefined) {
      throw new HtError('HT_ERR_INCOMPATIBLE_PARAMETERS', 'body.refine is set but body.examples is missing; it refines an inline adapter on its examples');
    }
    if (body.adapter_kind !== undefined) {
      throw new HtError('HT_ERR_INCOMPATIBLE_PARAMETERS', `body.adapter_kind is "${body.adapter_kind}" but body.examples is missing; it only selects the kind of an inline adapter`);
    }
    if (body.model === base) return { type: 'base', name: base };
    if (isAdapterId(body.model)) {
      const record = await this.deps.findAdapter(body.model, owner);
      if (!record) throw adapterNotFound(body.model, 'body.model');
      return { type: 'stored', record };
    }
    throw new HtError('HT_ERR_MODEL_NOT_FOUND', `body.model is ${JSON.stringify(body.model)}; expected "${base}" or an adapter id (ad-…)`);
  }
}
