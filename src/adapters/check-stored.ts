/**
 * A stored adapter is checked against the model's manifest before it is served: the checksum only proves
 * the tensors file is the one the metadata names, not that either describes an adapter the engine can feed.
 */
import type { AdapterKindName, TensorSpec } from '../inference/manifest.js';
import { tensorsId } from './canonical-id.js';
import type { SafetensorsFile } from './safetensors.js';
import type { AdapterMeta, AdapterRecord } from './types.js';

/** What the store needs of the manifest: the model it serves and the tensors of each kind. */
export interface StoreManifest {
  fingerprint: string;
  kinds: Partial<Record<AdapterKindName, readonly TensorSpec[]>>;
}

const sameShape = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);
const numel = (shape: readonly number[]): number => shape.reduce((n, d) => n * d, 1);

/** A tensor the kind does not have, by name. */
function extraTensor(names: Iterable<string>, specs: readonly TensorSpec[]): string | undefined {
  const known = new Set(specs.map((s) => s.name));
  for (const n of names) if (!known.has(n)) return n;
  return undefined;
}

/** An imported adapter's id is the hash of its tensors: any other tensors under that id were swapped in. */
function importMismatch(id: string, meta: AdapterMeta, specs: readonly TensorSpec[], values: (name: string) => Float32Array, fingerprint: string): string | undefined {
  if (meta.source !== 'import') return undefined;
  const tensors = Object.fromEntries(specs.map((s) => [s.name, values(s.name)]));
  return tensorsId(fingerprint, meta.kind, specs, tensors, meta.owner) !== id ? 'the tensors do not hash to the adapter id' : undefined;
}

/** Why the stored pair (metadata, tensors file) is not a servable adapter `id`; undefined when it is. */
export function storedMismatch(id: string, meta: AdapterMeta, file: SafetensorsFile, manifest: StoreManifest | undefined): string | undefined {
  // The tensors file records what it was written for: a .json edited or swapped afterwards disagrees with it.
  if (file.metadata.id !== undefined && file.metadata.id !== id) return `the tensors file belongs to adapter ${file.metadata.id}`;
  if (file.metadata.kind !== undefined && file.metadata.kind !== meta.kind) {
    return `the metadata says kind ${JSON.stringify(meta.kind)}, the tensors file ${JSON.stringify(file.metadata.kind)}`;
  }
  // Another model's adapters are never served (the service hides them), so they are not judged by this manifest.
  if (!manifest || meta.fingerprint !== manifest.fingerprint) return undefined;
  const specs = manifest.kinds[meta.kind];
  if (!specs) return `kind ${JSON.stringify(meta.kind)} is not one of the model's adapter kinds`;
  for (const spec of specs) {
    const t = file.tensors.get(spec.name);
    if (!t) return `tensor ${spec.name} is missing`;
    if (t.dtype !== 'F32') return `tensor ${spec.name} is ${t.dtype}; the manifest says F32`;
    if (!sameShape(t.shape, spec.shape)) return `tensor ${spec.name} has shape [${t.shape.join(', ')}]; the manifest says [${spec.shape.join(', ')}]`;
  }
  if (file.tensors.size !== specs.length) return `tensor ${extraTensor(file.tensors.keys(), specs) ?? '?'} is not in the manifest's ${meta.kind} adapter`;
  return importMismatch(id, meta, specs, (name) => file.tensors.get(name)!.data, manifest.fingerprint);
}

/**
 * Why a record whose tensors arrive flat (a Redis value: one Redis may serve replicas of several models) is not a
 * servable adapter of this model; undefined when it is, or when it belongs to another model (never served here).
 */
export function recordMismatch(record: AdapterRecord, manifest: StoreManifest): string | undefined {
  const { meta, tensors } = record;
  if (meta.fingerprint !== manifest.fingerprint) return undefined;
  const specs = manifest.kinds[meta.kind];
  if (!specs) return `kind ${JSON.stringify(meta.kind)} is not one of the model's adapter kinds`;
  for (const spec of specs) {
    const data = tensors[spec.name];
    if (!data) return `tensor ${spec.name} is missing`;
    if (data.length !== numel(spec.shape)) return `tensor ${spec.name} has ${data.length} values; the manifest's shape [${spec.shape.join(', ')}] holds ${numel(spec.shape)}`;
  }
  const extra = extraTensor(Object.keys(tensors), specs);
  if (extra !== undefined) return `tensor ${extra} is not in the manifest's ${meta.kind} adapter`;
  return importMismatch(meta.id, meta, specs, (name) => tensors[name]!, manifest.fingerprint);
}
