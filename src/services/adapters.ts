/**
 * Adapters as a service: get-or-create from examples (content-addressed, never recomputed, concurrent
 * identical requests share one hypermodel run), import from safetensors, fetch, delete.
 */
import type { Config } from '../config/index.js';
import { examplesId, tensorsId } from '../adapters/canonical-id.js';
import type { AdapterRecord, AdapterStore } from '../adapters/types.js';
import { checkTensors, inferKind, parseUpload } from '../adapters/validate-import.js';
import { adapterNotFound } from '../errors/http-error.js';
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
  private readonly inflight = new Map<string, Promise<AdapterRecord>>();

  constructor(
    private readonly config: Config,
    private readonly engine: Engine,
    private readonly store: AdapterStore,
    private readonly metrics: Metrics,
  ) {}

  private get manifest() {
    return this.engine.bundle.manifest;
  }

  /** The stored adapter, if it exists and belongs to this model. */
  async get(id: string): Promise<AdapterRecord | undefined> {
    const r = await this.store.get(id);
    return r && r.meta.fingerprint === this.manifest.fingerprint ? r : undefined;
  }

  async require(id: string, param = 'id'): Promise<AdapterRecord> {
    const r = await this.get(id);
    if (!r) throw adapterNotFound(id, param);
    return r;
  }

  async getOrCreate(examples: readonly Example[], kindIn: AdapterKindName | undefined, param = 'body.examples', kindParam = 'body.kind'): Promise<Obtained> {
    const { bundle, tokenizer, scheduler } = this.engine;
    const kind = checkKind(bundle, kindIn, kindParam);
    checkExamples(this.config, bundle, examples, param);
    const id = examplesId(this.manifest.fingerprint, kind, examples);
    const existing = await this.get(id);
    if (existing) return { record: existing, created: false };
    const running = this.inflight.get(id);
    if (running) return { record: await running, created: false };
    const ids = hyperIds(bundle, tokenizer, examples, param);
    scheduler.admit(1);
    const work = (async () => {
      const tensors = await scheduler.hyper(kind, ids);
      const record: AdapterRecord = {
        meta: {
          id,
          kind,
          model: this.manifest.name,
          fingerprint: this.manifest.fingerprint,
          num_examples: examples.length,
          created_at: Math.floor(Date.now() / 1000),
          source: 'hypermodel',
        },
        tensors,
      };
      await this.store.put(record);
      this.metrics.adaptersCreated.inc({ kind, source: 'hypermodel' });
      return record;
    })();
    this.inflight.set(id, work);
    try {
      return { record: await work, created: true };
    } finally {
      this.inflight.delete(id);
    }
  }

  async import(body: Buffer, kindIn: AdapterKindName | undefined): Promise<Obtained> {
    const { bundle } = this.engine;
    const file = parseUpload(body);
    const kind = inferKind(file, bundle.kinds, kindIn);
    const specs = bundle.table.kinds[kind]!;
    const tensors = checkTensors(file, kind, specs);
    const id = tensorsId(this.manifest.fingerprint, kind, specs, tensors);
    const existing = await this.get(id);
    if (existing) return { record: existing, created: false };
    const record: AdapterRecord = {
      meta: {
        id,
        kind,
        model: this.manifest.name,
        fingerprint: this.manifest.fingerprint,
        num_examples: 0,
        created_at: Math.floor(Date.now() / 1000),
        source: 'import',
      },
      tensors,
    };
    await this.store.put(record);
    this.metrics.adaptersCreated.inc({ kind, source: 'import' });
    return { record, created: true };
  }

  async delete(id: string): Promise<void> {
    if (!(await this.get(id))) throw adapterNotFound(id);
    await this.store.delete(id);
  }

  list() {
    return this.store.list().then((all) => all.filter((m) => m.fingerprint === this.manifest.fingerprint));
  }
}
