/**
 * Adapters as a service: get-or-create from examples (content-addressed, never recomputed, concurrent
 * identical requests share one hypermodel run), import from safetensors, fetch, delete. A stored copy found
 * corrupt is regenerated from its recorded examples. `owner` (ADAPTER_SCOPE=key) scopes every call to the
 * adapters of one API key; undefined = shared. Requests arrive validated (src/validation/).
 */
import { examplesId, refinedId, tensorsId } from '../adapters/canonical-id.js';
import { remakes } from '../adapters/recipe.js';
import type { AdapterMeta, AdapterRecord, AdapterStore, Recipe } from '../adapters/types.js';
import { StoreFullError } from '../adapters/store-fs.js';
import { HtError } from '../errors/domain-error.js';
import type { AdapterTensors } from '../inference/feeds.js';
import type { AdapterKindName, Manifest } from '../inference/manifest.js';
import type { RefineRequest } from '../validation/refine.js';
import type { ValidExamples, ValidImport, ValidRefine, ValidRefineStored } from '../validation/valid.js';
import { fitCost, looAdapters, scoreFit, type FitEngine, type FitMeta, type FitPlan } from './fit.js';
import { runRefinement, type RefineEngine, type RefineLimits } from './refine.js';

interface Obtained {
  record: AdapterRecord;
  created: boolean;
}

/**
 * The adapter a refinement starts from. A one-pass parent made for this request hands over its tensors as soon as
 * the hypermodel has run, so the steps begin while its fit report is still being scored (on another worker);
 * `record` settles once it is stored.
 */
interface ParentSource {
  id: string;
  kind: AdapterKindName;
  tensors: Promise<AdapterTensors>;
  record: Promise<AdapterRecord>;
}

const storedParent = (record: AdapterRecord): ParentSource => ({
  id: record.meta.id,
  kind: record.meta.kind,
  tensors: Promise.resolve(record.tensors),
  record: Promise.resolve(record),
});

/** What adapter creation needs of the engine: admission, then a hypermodel run (or a refinement), then the fit report. */
interface HyperEngine extends RefineEngine, FitEngine {
  admit(jobs: number, cost?: number): void;
  hyper(kind: AdapterKindName, ids: number[]): Promise<AdapterTensors>;
}

interface AdapterServiceDeps {
  manifest: Pick<Manifest, 'name' | 'fingerprint'>;
  store: AdapterStore;
  engine: HyperEngine;
  /** Re-checks the examples of a quarantined adapter before they are run again. */
  recipe(kind: AdapterKindName, examples: readonly { input: string; output: string }[]): ValidExamples;
  /** Re-checks a quarantined refined adapter's settings and builds its batch; throws when they no longer apply. */
  refineRecipe?(kind: AdapterKindName, examples: readonly { input: string; output: string }[], settings: RefineRequest): ValidRefine;
  /** RETRY_AFTER_S: when a full store may have room again. */
  retryAfterS: number;
  /** An adapter was stored for the first time (metrics). */
  created(kind: AdapterKindName, source: 'hypermodel' | 'regenerated' | 'import' | 'refine'): void;
  /** REQUEST_DEADLINE_MS bounds a refinement (a one-pass run is short and is not bounded); default: no deadline. */
  refineLimits?: RefineLimits;
  /** A refinement finished its steps (metrics). */
  refined?(kind: AdapterKindName, steps: number, ms: number): void;
  /** Tokenizes what the fit report needs (services/fit.ts); without it adapters carry no report. `loo`: plan the leave-one-out adapters. */
  fitPlan?(kind: AdapterKindName, examples: readonly { input: string; output: string }[], loo: boolean): FitPlan;
}

/**
 * The report is measured, not needed: when its decodes are shed (REQUEST_DEADLINE_MS under load) or fail, the
 * adapter is stored without it rather than thrown away (after a refinement, that would waste the steps).
 */
const bestEffort = (fit: Promise<FitMeta>): Promise<FitMeta | undefined> => fit.catch(() => undefined);

export class AdapterService {
  private readonly inflight = new Map<string, Promise<Obtained>>();

  constructor(private readonly deps: AdapterServiceDeps) {}

  private get manifest() {
    return this.deps.manifest;
  }

  private newMeta(id: string, kind: AdapterKindName, numExamples: number, source: AdapterMeta['source'], owner: string | undefined): AdapterMeta {
    return {
      id,
      kind,
      model: this.manifest.name,
      fingerprint: this.manifest.fingerprint,
      num_examples: numExamples,
      created_at: Math.floor(Date.now() / 1000),
      source,
      ...(owner !== undefined ? { owner } : {}),
    };
  }

  /**
   * What the fit report needs, if admission takes its cost on top of the work ahead (it is priced like other
   * work): refused (overload, or past REQUEST_DEADLINE_MS), the adapter is made all the same, without a report.
   */
  private fitPlan(kind: AdapterKindName, examples: readonly { input: string; output: string }[], loo: boolean): FitPlan | undefined {
    const plan = this.deps.fitPlan?.(kind, examples, loo);
    if (!plan) return undefined;
    try {
      this.deps.engine.admit(0, fitCost(plan));
      return plan;
    } catch {
      return undefined;
    }
  }

  private visible(meta: AdapterMeta, owner: string | undefined): boolean {
    return meta.fingerprint === this.manifest.fingerprint && (owner === undefined || meta.owner === owner);
  }

  /** The stored adapter, if it exists, belongs to this model and to `owner`; a quarantined one is regenerated. */
  async get(id: string, owner?: string): Promise<AdapterRecord | undefined> {
    const r = (await this.deps.store.get(id)) ?? (await this.regenerate(id));
    return r && this.visible(r.meta, owner) ? r : undefined;
  }

  /**
   * A corrupt copy was quarantined: when the store kept its examples, and they still hash to the id under this
   * model, run the hypermodel again (the same examples give the same adapter) and store it under the same id.
   */
  private async regenerate(id: string): Promise<AdapterRecord | undefined> {
    const recipe = await this.deps.store.recover?.(id);
    if (!recipe) return undefined;
    if (recipe.meta.source === 'refine') return this.remakeRefined(id, recipe);
    if (!remakes(recipe, id, this.manifest.fingerprint)) return undefined;
    const { meta, examples } = recipe;
    const { record } = await this.generate(id, this.deps.recipe(meta.kind, examples), meta);
    return record;
  }

  /**
   * A quarantined refined adapter: its parent (itself regenerated if need be), its demonstrations and settings
   * make the same bytes again (refinement is deterministic), so it is refined again under the same id when they
   * still hash to it: the same model, step graph and settings. Otherwise it is gone, as an import would be.
   */
  private async remakeRefined(id: string, { meta, examples }: Recipe): Promise<AdapterRecord | undefined> {
    const settings = meta.refine;
    if (meta.fingerprint !== this.manifest.fingerprint || meta.parent === undefined || settings === undefined || !this.deps.refineRecipe) return undefined;
    const parent = await this.get(meta.parent, meta.owner);
    if (!parent) return undefined;
    let r: ValidRefine;
    try {
      r = this.deps.refineRecipe(meta.kind, examples, { steps: settings.steps, learning_rate: settings.learning_rate, augment: settings.augment });
    } catch {
      return undefined; // the bundle lost its step graph, or MAX_REFINE_STEPS was lowered below the steps
    }
    const source = storedParent(parent);
    if (this.refinedIdOf(source, examples, r, meta.owner) !== id) return undefined;
    const running = this.inflight.get(id);
    if (running) return (await running).record;
    const work = this.refine(id, source, examples, r, undefined, undefined, meta);
    this.inflight.set(id, work);
    return (await work.finally(() => this.inflight.delete(id))).record;
  }

  /** One hypermodel run per id at a time; `meta` given = a regeneration that keeps the original metadata. */
  private generate(id: string, valid: ValidExamples, meta?: AdapterMeta, owner?: string): Promise<Obtained> {
    return this.startGenerate(id, valid, meta, owner).stored;
  }

  /** generate, with the tensors as soon as the hypermodel has run (before the fit report and the store). */
  private startGenerate(id: string, valid: ValidExamples, meta?: AdapterMeta, owner?: string): { tensors: Promise<AdapterTensors>; stored: Promise<Obtained> } {
    const running = this.inflight.get(id);
    if (running) {
      const stored = running.then((o) => ({ record: o.record, created: false }));
      return { tensors: stored.then((o) => o.record.tensors), stored };
    }
    const { engine } = this.deps;
    const { kind, examples } = valid;
    // A regeneration keeps the recorded report (the same examples give the same adapter, hence the same fit).
    engine.admit(1);
    const plan = meta || valid.fit === false ? undefined : this.fitPlan(kind, examples, true);
    // The leave-one-out adapters go with the adapter's own run: the hypermodel batcher runs them together.
    const loo = plan ? looAdapters(engine, kind, plan) : null;
    const made = engine.hyper(kind, valid.tokenIds);
    // Each is handled where it is awaited; these keep a failure that comes before then from going unhandled.
    loo?.catch(() => {});
    made.catch(() => {});
    const work = (async () => {
      const tensors = await made;
      const fit = plan ? await bestEffort(scoreFit(engine, kind, tensors, examples, plan, loo)) : undefined;
      const record: AdapterRecord = {
        meta: meta ?? { ...this.newMeta(id, kind, examples.length, 'hypermodel', owner), ...(fit ? { fit } : {}) },
        tensors,
        examples: examples.map((e) => ({ input: e.input, output: e.output })),
      };
      // With a shared store another replica may have stored the same id meanwhile: then its copy is the adapter.
      const stored = await this.save(record);
      if (stored.created) this.deps.created(kind, meta ? 'regenerated' : 'hypermodel');
      return stored;
    })();
    this.inflight.set(id, work);
    return { tensors: made, stored: work.finally(() => this.inflight.delete(id)) };
  }

  /**
   * The one-pass adapter of the examples; with `valid.refine`, the adapter refined from it (the one-pass one is
   * stored too, as its parent). `signal`: the client went away, which stops a refinement between two steps.
   */
  async getOrCreate(valid: ValidExamples, owner?: string, signal?: AbortSignal): Promise<Obtained> {
    const id = examplesId(this.manifest.fingerprint, valid.kind, valid.examples, owner);
    const existing = await this.get(id, owner);
    if (!valid.refine) return existing ? { record: existing, created: false } : this.generate(id, valid, undefined, owner);
    let parent: ParentSource;
    if (existing) parent = storedParent(existing);
    else {
      const { tensors, stored } = this.startGenerate(id, valid, undefined, owner);
      const record = stored.then((o) => o.record);
      // Awaited before the refined adapter is stored; a refinement that fails first leaves it to finish alone.
      record.catch(() => {});
      parent = { id, kind: valid.kind, tensors, record };
    }
    return this.refined(parent, valid.examples, valid.refine, owner, signal, valid.fit !== false);
  }

  /** POST /v1/adapters/{id}/refine: a stored adapter (say, imported) refined on the request's examples. */
  refineStored(valid: ValidRefineStored, owner?: string, signal?: AbortSignal): Promise<Obtained> {
    return this.refined(storedParent(valid.parent), valid.examples, valid.refine, owner, signal, true);
  }

  /**
   * The refined adapter: found by its id, or made (deterministic: the same request gives the same bytes) and
   * stored with its recipe. A cancelled or late refinement rejects before anything is stored. Concurrent identical
   * requests each run (their bytes are equal, and the store keeps the first): one client leaving must not fail another.
   */
  private async refined(
    parent: ParentSource,
    examples: ValidRefineStored['examples'],
    r: ValidRefine,
    owner: string | undefined,
    signal: AbortSignal | undefined,
    withFit: boolean,
  ): Promise<Obtained> {
    const id = this.refinedIdOf(parent, examples, r, owner);
    const existing = await this.get(id, owner);
    if (existing) return { record: existing, created: false };
    return this.refine(id, parent, examples, r, owner, signal, undefined, withFit);
  }

  private refinedIdOf(parent: Pick<ParentSource, 'id' | 'kind'>, examples: ValidRefineStored['examples'], r: ValidRefine, owner: string | undefined): string {
    return refinedId(this.manifest.fingerprint, parent.kind, {
      parent: parent.id,
      examples,
      steps: r.steps,
      learningRate: r.learningRate,
      augment: r.augment,
      graphSha256: r.graph.graphSha256,
      weightsSha256: r.graph.weightsSha256,
    }, owner);
  }

  /**
   * Runs the steps and stores the result once its parent is stored; `meta` given = a regeneration that keeps the
   * original metadata (and report).
   */
  private async refine(
    id: string,
    parent: ParentSource,
    examples: ValidRefineStored['examples'],
    r: ValidRefine,
    owner: string | undefined,
    signal: AbortSignal | undefined,
    keep?: AdapterMeta,
    withFit = false,
  ): Promise<Obtained> {
    const { kind } = parent;
    const plan = withFit && !keep ? this.fitPlan(kind, examples, false) : undefined;
    const start = await parent.tensors;
    const outcome = await runRefinement(this.deps.engine, this.deps.refineLimits ?? { deadlineMs: 0, retryAfterS: this.deps.retryAfterS }, kind, start, r, signal);
    this.deps.refined?.(kind, outcome.steps, outcome.ms);
    // The parent's own report is scored beside the steps; its leave-one-out share is needed from here on.
    const parentRecord = await parent.record;
    // Leave-one-out measures the hypermodel on these examples: a refined adapter reports its parent's.
    const fit = plan ? await bestEffort(scoreFit(this.deps.engine, kind, outcome.tensors, examples, plan, parentRecord.meta.fit?.loo_exact ?? null)) : undefined;
    const meta: AdapterMeta = keep ?? {
      ...this.newMeta(id, kind, examples.length, 'refine', owner),
      ...(fit ? { fit } : {}),
      parent: parent.id,
      refine: { steps: r.steps, learning_rate: r.learningRate, augment: r.augment, loss_first: outcome.lossFirst, loss_last: outcome.lossLast, ms: Math.round(outcome.ms) },
    };
    const stored = await this.save({ meta, tensors: outcome.tensors, examples: examples.map((e) => ({ input: e.input, output: e.output })) });
    if (stored.created) this.deps.created(kind, keep ? 'regenerated' : 'refine');
    return stored;
  }

  async import(valid: ValidImport, owner?: string): Promise<Obtained> {
    const { kind, specs, tensors } = valid;
    const id = tensorsId(this.manifest.fingerprint, kind, specs, tensors, owner);
    const existing = await this.get(id, owner);
    if (existing) return { record: existing, created: false };
    const stored = await this.save({ meta: this.newMeta(id, kind, 0, 'import', owner), tensors });
    if (stored.created) this.deps.created(kind, 'import');
    return stored;
  }

  /** A full disk is the client's to retry later, not an internal error. */
  private async save(record: AdapterRecord): Promise<Obtained> {
    try {
      return await this.deps.store.put(record);
    } catch (e) {
      if (e instanceof StoreFullError) throw new HtError('HT_ERR_STORE_FULL', e.message, this.deps.retryAfterS);
      throw e;
    }
  }

  /** False when there is no such adapter for `owner`. */
  async delete(id: string, owner?: string): Promise<boolean> {
    if (!(await this.get(id, owner))) return false;
    await this.deps.store.delete(id);
    return true;
  }

  list(owner?: string): Promise<AdapterMeta[]> {
    return this.deps.store.list().then((all) => all.filter((m) => this.visible(m, owner)));
  }
}
