/**
 * Adapters as a service: get-or-create from examples (content-addressed, never recomputed, concurrent
 * identical requests share one hypermodel run), import from safetensors, fetch, delete. A stored copy found
 * corrupt is regenerated from its recorded examples. `owner` (ADAPTER_SCOPE=key) scopes every call to the
 * adapters of one API key; undefined = shared.
 */
import type { Config } from '../config/index.js';
import { examplesId, tensorsId } from '../adapters/canonical-id.js';
import type { AdapterMeta, AdapterRecord, AdapterStore } from '../adapters/types.js';
import { StoreFullError } from '../adapters/store-fs.js';
import { checkTensors, inferKind, parseUpload } from '../adapters/validate-import.js';
import { adapterNotFound, HtError } from '../errors/http-error.js';
import type { AdapterKindName } from '../inference/manifest.js';
import type { Engine } from '../plugins/engine.js';
import type { Metrics } from '../plugins/metrics.js';
import type { Example } from '../schemas/adapters.js';
import { checkExamples, checkKind, hyperIds } from './validate.js';

export interface Obtained {
  record: AdapterRecord;
  created: boolean;
}

export class AdapterService {
  private readonly inflight = new Map<string, Promise<Obtained>>();

  constructor(
    private readonly config: Config,
    private readonly engine: Engine,
    private readonly store: AdapterStore,
    private readonly metrics: Metrics,
  ) {}

  private get manifest() {
    return this.engine.bundle.manifest;
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

  private visible(meta: AdapterMeta, owner: string | undefined): boolean {
    return meta.fingerprint === this.manifest.fingerprint && (owner === undefined || meta.owner === owner);
  }

  /** The stored adapter, if it exists, belongs to this model and to `owner`; a quarantined one is regenerated. */
  async get(id: string, owner?: string): Promise<AdapterRecord | undefined> {
    const r = (await this.store.get(id)) ?? (await this.regenerate(id));
    return r && this.visible(r.meta, owner) ? r : undefined;
  }

  async require(id: string, param = 'id', owner?: string): Promise<AdapterRecord> {
    const r = await this.get(id, owner);
    if (!r) throw adapterNotFound(id, param);
    return r;
  }

  /**
   * A corrupt copy was quarantined: when the store kept its examples, and they still hash to the id under this
   * model, run the hypermodel again (the same examples give the same adapter) and store it under the same id.
   */
  private async regenerate(id: string): Promise<AdapterRecord | undefined> {
    const recipe = await this.store.recover?.(id);
    if (!recipe) return undefined;
    const { meta, examples } = recipe;
    const fp = this.manifest.fingerprint;
    if (meta.source !== 'hypermodel' || meta.fingerprint !== fp || examplesId(fp, meta.kind, examples, meta.owner) !== id) return undefined;
    const ids = hyperIds(this.engine.bundle, this.engine.tokenizer, examples, 'examples');
    const { record } = await this.generate(id, meta.kind, examples, ids, meta);
    return record;
  }

  /** One hypermodel run per id at a time; `meta` given = a regeneration that keeps the original metadata. */
  private generate(id: string, kind: AdapterKindName, examples: readonly Example[], ids: number[], meta?: AdapterMeta, owner?: string): Promise<Obtained> {
    const running = this.inflight.get(id);
    if (running) return running.then((o) => ({ record: o.record, created: false }));
    const { scheduler } = this.engine;
    scheduler.admit(1);
    const work = (async () => {
      const tensors = await scheduler.hyper(kind, ids);
      const record: AdapterRecord = {
        meta: meta ?? this.newMeta(id, kind, examples.length, 'hypermodel', owner),
        tensors,
        examples: examples.map((e) => ({ input: e.input, output: e.output })),
      };
      // With a shared store another replica may have stored the same id meanwhile: then its copy is the adapter.
      const stored = await this.save(record);
      if (stored.created) this.metrics.adaptersCreated.inc({ kind, source: meta ? 'regenerated' : 'hypermodel' });
      return stored;
    })();
    this.inflight.set(id, work);
    return work.finally(() => this.inflight.delete(id));
  }

  async getOrCreate(
    examples: readonly Example[],
    kindIn: AdapterKindName | undefined,
    param = 'body.examples',
    kindParam = 'body.kind',
    owner?: string,
  ): Promise<Obtained> {
    const { bundle, tokenizer } = this.engine;
    const kind = checkKind(bundle, kindIn, kindParam);
    checkExamples(this.config, bundle, examples, param);
    const id = examplesId(this.manifest.fingerprint, kind, examples, owner);
    const existing = await this.get(id, owner);
    if (existing) return { record: existing, created: false };
    const ids = hyperIds(bundle, tokenizer, examples, param);
    return this.generate(id, kind, examples, ids, undefined, owner);
  }

  async import(body: Buffer, kindIn: AdapterKindName | undefined, owner?: string): Promise<Obtained> {
    const { bundle } = this.engine;
    const file = parseUpload(body);
    const kind = inferKind(file, bundle.kinds, kindIn);
    const specs = bundle.table.kinds[kind]!;
    const tensors = checkTensors(file, kind, specs);
    const id = tensorsId(this.manifest.fingerprint, kind, specs, tensors, owner);
    const existing = await this.get(id, owner);
    if (existing) return { record: existing, created: false };
    const record: AdapterRecord = {
      meta: this.newMeta(id, kind, 0, 'import', owner),
      tensors,
    };
    const stored = await this.save(record);
    if (stored.created) this.metrics.adaptersCreated.inc({ kind, source: 'import' });
    return stored;
  }

  /** A full disk is the client's to retry later (507 + Retry-After), not an internal error. */
  private async save(record: AdapterRecord): Promise<Obtained> {
    try {
      return await this.store.put(record);
    } catch (e) {
      if (e instanceof StoreFullError) throw new HtError('HT_ERR_STORE_FULL', e.message, this.config.RETRY_AFTER_S);
      throw e;
    }
  }

  async delete(id: string, owner?: string): Promise<void> {
    if (!(await this.get(id, owner))) throw adapterNotFound(id);
    await this.store.delete(id);
  }

  list(owner?: string) {
    return this.store.list().then((all) => all.filter((m) => this.visible(m, owner)));
  }
}
