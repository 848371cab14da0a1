/** Checks an uploaded safetensors file against the manifest: names, shapes, dtypes, finiteness, mask values. */
import { HtError } from '../errors/http-error.js';
import type { AdapterTensors } from '../inference/feeds.js';
import type { AdapterKindName, TensorSpec } from '../inference/manifest.js';
import { readSafetensors, SafetensorsError, type SafetensorsFile } from './safetensors.js';

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
  const prefixes = new Set([...file.tensors.keys()].map((n) => n.split('.')[0]));
  const [only] = prefixes;
  if (prefixes.size !== 1 || !kinds.includes(only as AdapterKindName)) {
    throw new HtError(
      'HT_ERR_ADAPTER_MISMATCH',
      `body: tensor name prefixes are ${JSON.stringify([...prefixes])}; expected all "lora." or all "prefix." (or give ?kind=)`,
    );
  }
  return only as AdapterKindName;
}

export function checkTensors(file: SafetensorsFile, kind: AdapterKindName, specs: readonly TensorSpec[]): AdapterTensors {
  const want = new Set(specs.map((s) => s.name));
  const missing = specs.filter((s) => !file.tensors.has(s.name)).map((s) => s.name);
  const extra = [...file.tensors.keys()].filter((n) => !want.has(n));
  if (missing.length || extra.length) {
    throw new HtError('HT_ERR_ADAPTER_MISMATCH', `body: ${kind} tensors missing ${JSON.stringify(missing)}, unexpected ${JSON.stringify(extra)}`);
  }
  const tensors: AdapterTensors = {};
  for (const spec of specs) {
    const t = file.tensors.get(spec.name)!;
    if (t.dtype !== 'F32') throw new HtError('HT_ERR_ADAPTER_MISMATCH', `body: tensor ${spec.name} has dtype ${t.dtype}; expected F32`);
    if (t.shape.length !== spec.shape.length || t.shape.some((d, i) => d !== spec.shape[i])) {
      throw new HtError('HT_ERR_ADAPTER_MISMATCH', `body: tensor ${spec.name} has shape ${JSON.stringify(t.shape)}; expected ${JSON.stringify(spec.shape)}`);
    }
    for (let i = 0; i < t.data.length; i++) {
      if (!Number.isFinite(t.data[i])) throw new HtError('HT_ERR_ADAPTER_NOT_FINITE', `body: tensor ${spec.name} holds ${t.data[i]} at flat index ${i}`);
    }
    if (spec.name.endsWith('.mask')) checkMask(spec.name, t.data);
    tensors[spec.name] = t.data;
  }
  return tensors;
}

/** A prefix mask (models/README.md, "Adapter kinds") selects positions: any other value would scale attention scores. */
function checkMask(name: string, data: Float32Array): void {
  const bad = data.findIndex((v) => v !== 0 && v !== 1);
  if (bad >= 0) throw new HtError('HT_ERR_ADAPTER_MISMATCH', `body: tensor ${name} holds ${data[bad]} at flat index ${bad}; a mask holds only 0 and 1`);
  if (!data.includes(1)) throw new HtError('HT_ERR_ADAPTER_MISMATCH', `body: tensor ${name} is all 0: the adapter would attend to no prefix position`);
}
