/**
 * The adapter codec: one adapter to safetensors bytes and back. Every stored copy and every export is
 * written here with one shape rule, so the disk store, the Redis store and the parameters route cannot
 * drift apart; their layouts differ only in `__metadata__` and tensor order. The bytes are those earlier
 * versions wrote, since stored adapters are read back and the Python side reads exports (test/codec.test.ts
 * holds golden bytes of each layout).
 */
import type { AdapterTensors } from '../inference/feeds.js';
import type { TensorSpec } from '../inference/manifest.js';
import { numel } from '../inference/tensor-table.js';
import { readSafetensors, writeSafetensors, type SafetensorsFile } from './safetensors.js';
import type { AdapterMeta, AdapterRecord } from './types.js';

/** Tells a stored copy (disk, Redis) from an upload or an export. */
const STORED_FORMAT = 'hypert5-adapter';

/** Manifest shapes by tensor name. */
export type ShapeTable = Readonly<Record<string, readonly number[]>>;

export function shapeTable(specs: Iterable<TensorSpec>): ShapeTable {
  const shapes: Record<string, readonly number[]> = {};
  for (const s of specs) shapes[s.name] = s.shape;
  return shapes;
}

/**
 * The one shape rule: the manifest's shape when it names the tensor with as many values, else flat. A record
 * of another model (same tensor names, other sizes) is then still written as it is, never reshaped wrongly.
 */
function shapeOf(name: string, length: number, shapes: ShapeTable): number[] {
  const known = shapes[name];
  return known && numel(known) === length ? [...known] : [length];
}

interface Encoded {
  bytes: Buffer;
  /** The shape each tensor was written with (the disk store records them beside the file). */
  shapes: Record<string, number[]>;
}

function encode(tensors: AdapterTensors, names: readonly string[], shapes: ShapeTable, metadata: Record<string, string>): Encoded {
  const written: Record<string, number[]> = {};
  const entries = names.map((name): [string, { shape: number[]; data: Float32Array }] => {
    const data = tensors[name];
    if (!data) throw new Error(`adapter has no tensor ${name}`);
    const shape = shapeOf(name, data.length, shapes);
    written[name] = shape;
    return [name, { shape, data }];
  });
  return { bytes: writeSafetensors(entries, metadata), shapes: written };
}

/**
 * The disk store's tensors file: the record's tensors in its own order. The metadata names the id and kind it
 * was written for, so a .json swapped or edited afterwards disagrees with it (check-stored.ts).
 */
export function encodeForDisk(record: AdapterRecord, shapes: ShapeTable): Encoded {
  const { meta, tensors } = record;
  return encode(tensors, Object.keys(tensors), shapes, { format: STORED_FORMAT, id: meta.id, kind: meta.kind });
}

/**
 * The Redis value: the whole record in one blob, metadata and recipe included, so a replica that copies it
 * can regenerate its local copy. Tensors are flat: one Redis may serve replicas of different models.
 */
export function encodeForRedis(record: AdapterRecord): Buffer {
  const metadata: Record<string, string> = { format: STORED_FORMAT, meta: JSON.stringify(record.meta) };
  if (record.examples) metadata.examples = JSON.stringify(record.examples);
  return encode(record.tensors, Object.keys(record.tensors), {}, metadata).bytes;
}

/** GET /v1/adapters/:id/parameters: the tensors of `specs` (the model's kind), in manifest order and shape. */
export function encodeForExport(record: AdapterRecord, specs: readonly TensorSpec[]): Buffer {
  const { meta } = record;
  const metadata = { id: meta.id, kind: meta.kind, model: meta.model, fingerprint: meta.fingerprint };
  return encode(record.tensors, specs.map((s) => s.name), shapeTable(specs), metadata).bytes;
}

/** The F32 values by name; a tensor of another dtype has none (check-stored.ts refuses it by name). */
function tensorsOf(file: SafetensorsFile): AdapterTensors {
  const tensors: AdapterTensors = {};
  for (const [name, t] of file.tensors) tensors[name] = t.data;
  return tensors;
}

/** A disk tensors file: the parsed file, which the store checks against its .json and the manifest, and its values. */
export function decodeFromDisk(bytes: Buffer): { file: SafetensorsFile; tensors: AdapterTensors } {
  const file = readSafetensors(bytes);
  return { file, tensors: tensorsOf(file) };
}

/** A Redis value back into the record; throws when it does not parse or describes another id. */
export function decodeFromRedis(id: string, blob: Buffer): AdapterRecord {
  const file = readSafetensors(blob);
  const meta = JSON.parse(file.metadata.meta ?? 'null') as AdapterMeta | null;
  if (!meta || meta.id !== id) throw new Error(`it describes ${meta?.id ?? 'nothing'}`);
  const examples = file.metadata.examples ? (JSON.parse(file.metadata.examples) as AdapterRecord['examples']) : undefined;
  return { meta, tensors: tensorsOf(file), ...(examples ? { examples } : {}) };
}
