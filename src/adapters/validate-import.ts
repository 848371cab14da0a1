/**
 * Checks an uploaded safetensors file against the manifest: header size and tensor count, names, shapes,
 * dtypes, values (finite and within `max_abs`), mask values. Refusals name at most a few tensors.
 */
import { HtError } from '../errors/domain-error.js';
import type { AdapterTensors } from '../inference/feeds.js';
import { maxAbsOf, type AdapterKindName, type TensorSpec } from '../inference/manifest.js';
import { numel, type TensorTable } from '../inference/tensor-table.js';
import { readSafetensors, SafetensorsError, showName, type SafetensorsFile } from './safetensors.js';

/** Room for `__metadata__` (our exports write four short strings, PEFT writes `{"format": "pt"}`). */
const METADATA_SLACK_BYTES = 64 * 1024;
/** Names a refusal lists before "… and N more": enough to see the pattern, never the whole upload. */
const LISTED_NAMES = 5;

/** The header of one adapter of this kind as a compact writer writes it, offsets at their widest. */
function headerBytes(specs: readonly TensorSpec[]): number {
  const end = specs.reduce((n, s) => n + 4 * numel(s.shape), 0);
  const header = Object.fromEntries(specs.map((s) => [s.name, { dtype: 'F32', shape: s.shape, data_offsets: [end, end] }]));
  return Buffer.byteLength(JSON.stringify(header));
}

/**
 * The longest header an upload may declare: twice the largest kind's (other writers indent or pad) plus the
 * metadata slack. Anything longer holds names the manifest does not have, so it is refused unparsed.
 */
export function headerLimit(kinds: TensorTable['kinds']): number {
  const biggest = Math.max(...Object.values(kinds).map((specs) => headerBytes(specs)));
  return 2 * biggest + METADATA_SLACK_BYTES;
}

/** Reads only the 8-byte header length: a 64 MB header of a million names costs nothing to refuse. */
export function checkHeaderLength(body: unknown, limit: number): void {
  if (!Buffer.isBuffer(body) || body.length < 8) return; // parseUpload names what is wrong with it
  const declared = body.readBigUInt64LE(0);
  // A length beyond the body is not a safetensors file at all: parseUpload says so.
  if (declared > BigInt(limit) && declared <= BigInt(body.length - 8)) {
    throw new HtError(
      'HT_ERR_ADAPTER_MISMATCH',
      `body: the safetensors header is ${declared} bytes; the limit is ${limit} (twice the header of this model's largest adapter kind, plus ${METADATA_SLACK_BYTES} bytes of metadata)`,
    );
  }
}

/** `"a", "b", "c", "d", "e" … and 7 more`: a bounded list, each name cut. */
function listNames(names: readonly string[]): string {
  const shown = names.slice(0, LISTED_NAMES).map((n) => JSON.stringify(showName(n))).join(', ');
  const rest = names.length - LISTED_NAMES;
  return names.length === 0 ? 'none' : rest > 0 ? `${shown} … and ${rest} more` : shown;
}

/** The shortest decimal that reads back as the same float32 (3.4e+38, not 3.3999999521443642e+38). */
function f32(v: number): string {
  for (let p = 1; p <= 9; p++) {
    const s = v.toPrecision(p);
    if (Math.fround(Number(s)) === v) return String(Number(s));
  }
  return String(v);
}

export function parseUpload(body: Buffer | null | undefined): SafetensorsFile {
  if (!Buffer.isBuffer(body) || body.length === 0) {
    throw new HtError('HT_ERR_INVALID_SAFETENSORS', 'body is empty; expected a safetensors file (Content-Type: application/octet-stream)');
  }
  try {
    return readSafetensors(body);
  } catch (e) {
    if (e instanceof SafetensorsError) throw new HtError('HT_ERR_INVALID_SAFETENSORS', `body: ${e.message}`);
    throw e;
  }
}

export function inferKind(file: SafetensorsFile, kinds: readonly AdapterKindName[], given?: AdapterKindName): AdapterKindName {
  if (given) {
    if (!kinds.includes(given)) throw new HtError('HT_ERR_UNKNOWN_ADAPTER_KIND', `querystring.kind is "${given}"; this model has ${JSON.stringify(kinds)}`);
    return given;
  }
  const prefixes = new Set([...file.tensors.keys()].map((n) => n.split('.')[0]!));
  const [only] = prefixes;
  if (prefixes.size !== 1 || !kinds.includes(only as AdapterKindName)) {
    throw new HtError(
      'HT_ERR_ADAPTER_MISMATCH',
      `body: tensor name prefixes are ${listNames([...prefixes])}; expected all "lora." or all "prefix." (or give ?kind=)`,
    );
  }
  return only as AdapterKindName;
}

export function checkTensors(file: SafetensorsFile, kind: AdapterKindName, specs: readonly TensorSpec[]): AdapterTensors {
  if (file.tensors.size > specs.length) {
    throw new HtError('HT_ERR_ADAPTER_MISMATCH', `body: holds ${file.tensors.size} tensors; the limit is ${specs.length} (the tensors of kind ${kind})`);
  }
  const want = new Set(specs.map((s) => s.name));
  const missing = specs.filter((s) => !file.tensors.has(s.name)).map((s) => s.name);
  const extra = [...file.tensors.keys()].filter((n) => !want.has(n));
  if (missing.length || extra.length) {
    throw new HtError('HT_ERR_ADAPTER_MISMATCH', `body: ${kind} tensors missing ${listNames(missing)}; unexpected ${listNames(extra)}`);
  }
  const tensors: AdapterTensors = {};
  for (const spec of specs) {
    const t = file.tensors.get(spec.name)!;
    if (t.dtype !== 'F32') throw new HtError('HT_ERR_ADAPTER_MISMATCH', `body: tensor ${spec.name} has dtype ${t.dtype}; expected F32`);
    if (t.shape.length !== spec.shape.length || t.shape.some((d, i) => d !== spec.shape[i])) {
      throw new HtError('HT_ERR_ADAPTER_MISMATCH', `body: tensor ${spec.name} has shape ${JSON.stringify(t.shape)}; expected ${JSON.stringify(spec.shape)}`);
    }
    checkValues(spec, kind, t.data);
    if (spec.name.endsWith('.mask')) checkMask(spec.name, t.data);
    tensors[spec.name] = t.data;
  }
  return tensors;
}

/**
 * Finite is not enough: values of 3.4e38 overflow the first matmul, every logit becomes NaN and each
 * completion would run to max_tokens. `max_abs` (models/README.md, "Adapter kinds") bounds them.
 */
function checkValues(spec: TensorSpec, kind: AdapterKindName, data: Float32Array): void {
  const bound = maxAbsOf(spec);
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (!Number.isFinite(v)) throw new HtError('HT_ERR_ADAPTER_NOT_FINITE', `body: tensor ${spec.name} holds ${v} at flat index ${i}`);
    if (Math.abs(v) > bound) {
      throw new HtError(
        'HT_ERR_ADAPTER_OUT_OF_RANGE',
        `body: tensor ${spec.name} holds ${f32(v)} at flat index ${i}; the limit is |value| <= ${bound} (manifest adapters.kinds.${kind} tensor max_abs ${bound})`,
      );
    }
  }
}

/** A prefix mask (models/README.md, "Adapter kinds") selects positions: any other value would scale attention scores. */
function checkMask(name: string, data: Float32Array): void {
  const bad = data.findIndex((v) => v !== 0 && v !== 1);
  if (bad >= 0) throw new HtError('HT_ERR_ADAPTER_MISMATCH', `body: tensor ${name} holds ${data[bad]} at flat index ${bad}; a mask holds only 0 and 1`);
  if (!data.includes(1)) throw new HtError('HT_ERR_ADAPTER_MISMATCH', `body: tensor ${name} is all 0: the adapter would attend to no prefix position`);
}
