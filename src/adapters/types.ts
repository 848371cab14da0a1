import type { AdapterTensors } from '../inference/feeds.js';
import type { AdapterKindName, RefineAugment } from '../inference/manifest.js';

export interface AdapterMeta {
  id: string;
  kind: AdapterKindName;
  /** Base model name and fingerprint it belongs to: a retrained model never serves another's adapters. */
  model: string;
  fingerprint: string;
  num_examples: number;
  created_at: number;
  /** `refine`: Adam steps on its demonstrations, from the adapter `parent` (src/services/refine.ts). */
  source: 'hypermodel' | 'import' | 'refine';
  /** With ADAPTER_SCOPE=key: the id of the API key that created it (sha256 prefix, never the key). */
  owner?: string;
  /** Refined adapters: the adapter refinement started from. */
  parent?: string;
  /** Refined adapters: how refinement made it. */
  refine?: RefineMeta;
  /** Adapters made from demonstrations: how well it reproduces them (src/services/fit.ts). */
  fit?: FitMeta;
}

interface FitMeta {
  demos_exact: number;
  loo_exact: number | null;
  mean_logprob: number | null;
}

interface RefineMeta {
  steps: number;
  learning_rate: number;
  augment: RefineAugment;
  /** Mean token cross-entropy on the batch at the first step and at the last, each before its update. */
  loss_first: number;
  loss_last: number;
  /** Time the Adam steps took in the worker, ms. */
  ms: number;
}

export interface AdapterRecord {
  meta: AdapterMeta;
  tensors: AdapterTensors;
  /** The few-shot examples it was generated from, kept so that a corrupt copy can be regenerated. */
  examples?: { input: string; output: string }[];
}

/** What a store kept of a corrupt entry it quarantined: enough to regenerate it (recipe.ts says when it may). */
export interface Recipe {
  meta: AdapterMeta;
  examples: { input: string; output: string }[];
}

export const recordBytes = (r: AdapterRecord): number =>
  Object.values(r.tensors).reduce((n, t) => n + t.byteLength, 0);

/** What a put leaves stored under the id: `record` itself (created), or the adapter another writer stored first. */
export interface Stored {
  record: AdapterRecord;
  created: boolean;
}

/** Whether the store can take new adapters; `reason` says why not (shown by /readyz). */
export type StoreHealth = { ok: true } | { ok: false; reason: string };

/**
 * Where adapters live: in-memory LRU, local disk and, with REDIS_URL, Redis shared by the replicas.
 * Ids are content-addressed, so a put never changes what an id means: a store that already holds the id
 * (another replica made it first) keeps its copy and returns it with `created: false`.
 */
export interface AdapterStore {
  get(id: string): Promise<AdapterRecord | undefined>;
  put(record: AdapterRecord): Promise<Stored>;
  delete(id: string): Promise<boolean>;
  list(): Promise<AdapterMeta[]>;
  /** The recipe of a quarantined entry, if the store kept one (disk store). */
  recover?(id: string): Promise<Recipe | undefined>;
  /** Waits for writes in progress (shutdown). */
  flush?(): Promise<void>;
  /** Unhealthy while writes fail for lack of space (disk store). */
  health?(): Promise<StoreHealth>;
}
