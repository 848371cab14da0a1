import type { AdapterTensors } from '../inference/feeds.js';
import type { AdapterKindName } from '../inference/manifest.js';

export interface AdapterMeta {
  id: string;
  kind: AdapterKindName;
  /** Base model name and fingerprint it belongs to: a retrained model never serves another's adapters. */
  model: string;
  fingerprint: string;
  num_examples: number;
  created_at: number;
  source: 'hypermodel' | 'import';
}

export interface AdapterRecord {
  meta: AdapterMeta;
  tensors: AdapterTensors;
}

export const recordBytes = (r: AdapterRecord): number =>
  Object.values(r.tensors).reduce((n, t) => n + t.byteLength, 0);

/** Where adapters live. In-memory LRU, local disk today; Redis later implements the same interface. */
export interface AdapterStore {
  get(id: string): Promise<AdapterRecord | undefined>;
  put(record: AdapterRecord): Promise<void>;
  delete(id: string): Promise<boolean>;
  list(): Promise<AdapterMeta[]>;
}
