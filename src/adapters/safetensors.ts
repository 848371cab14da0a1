/**
 * A minimal safetensors reader/writer (https://github.com/huggingface/safetensors, format only):
 * 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}}, raw data.
 * Only F32 tensors are produced or accepted as data; other dtypes are reported by name.
 */

interface TensorEntry {
  dtype: string;
  shape: number[];
  data: Float32Array;
}

export interface SafetensorsFile {
  tensors: Map<string, TensorEntry>;
  metadata: Record<string, string>;
}

export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

const MAX_HEADER_BYTES = 100 * 1024 * 1024;
const MAX_SHOWN_CHARS = 80;

const cut = (text: string): string => (text.length > MAX_SHOWN_CHARS ? `${text.slice(0, MAX_SHOWN_CHARS)}…` : text);

/** A tensor name as messages show it: cut, since a name in an upload can be as long as the header. */
export const showName = (name: string): string => cut(name);

/** Any header value as messages show it: JSON, cut. */
function brief(value: unknown): string {
  try {
    return cut(JSON.stringify(value) ?? String(value));
  } catch {
    return typeof value; // nested too deep to stringify
  }
}

const DTYPE_BYTES: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

export function writeSafetensors(tensors: Iterable<[string, { shape: readonly number[]; data: Float32Array }]>, metadata?: Record<string, string>): Buffer {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  const parts: Float32Array[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    const bytes = t.data.length * 4;
    header[name] = { dtype: 'F32', shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    parts.push(t.data);
    offset += bytes;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so the data starts 8-byte aligned, as the reference writer does.
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let pos = 8 + headerBytes.length;
  for (const p of parts) {
    Buffer.from(p.buffer, p.byteOffset, p.byteLength).copy(out, pos);
    pos += p.byteLength;
  }
  return out;
}

export function readSafetensors(buf: Buffer): SafetensorsFile {
  if (buf.length < 8) throw new SafetensorsError(`file is ${buf.length} bytes; a safetensors file has at least 8`);
  const n = buf.readBigUInt64LE(0);
  if (n > BigInt(Math.min(MAX_HEADER_BYTES, buf.length - 8))) throw new SafetensorsError(`header length ${n} exceeds the file (${buf.length} bytes)`);
  const headerLen = Number(n);
  let header: unknown;
  try {
    header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8'));
  } catch {
    throw new SafetensorsError('header is not valid JSON');
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) throw new SafetensorsError('header is not a JSON object');
  const dataStart = 8 + headerLen;
  const dataLen = buf.length - dataStart;
  const tensors = new Map<string, TensorEntry>();
  let metadata: Record<string, string> = {};
  const ranges: [number, number, string][] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = (raw ?? {}) as Record<string, string>;
      continue;
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e?.dtype !== 'string' || !(e.dtype in DTYPE_BYTES)) throw new SafetensorsError(`tensor ${showName(name)}: unknown dtype ${brief(e?.dtype)}`);
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0)) throw new SafetensorsError(`tensor ${showName(name)}: invalid shape`);
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((o) => Number.isInteger(o) && o >= 0) || off[0] > off[1] || off[1] > dataLen) {
      throw new SafetensorsError(`tensor ${showName(name)}: invalid data_offsets ${brief(off)} (data is ${dataLen} bytes)`);
    }
    const shape = e.shape as number[];
    const numel = shape.reduce((a, b) => a * b, 1);
    const [begin, end] = off as [number, number];
    if (end - begin !== numel * DTYPE_BYTES[e.dtype]!) throw new SafetensorsError(`tensor ${showName(name)}: ${end - begin} bytes for ${e.dtype}${brief(shape)}`);
    ranges.push([begin, end, name]);
    // Non-F32 tensors are returned empty: the caller reports the dtype mismatch by name.
    let data = new Float32Array(0);
    if (e.dtype === 'F32') {
      // Copy: the data may not be 4-byte aligned inside the buffer, and the caller keeps it beyond the request.
      data = new Float32Array(numel);
      Buffer.from(data.buffer).set(buf.subarray(dataStart + begin, dataStart + end));
    }
    tensors.set(name, { dtype: e.dtype, shape, data });
  }
  ranges.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i]![0] < ranges[i - 1]![1]) throw new SafetensorsError(`tensors ${showName(ranges[i - 1]![2])} and ${showName(ranges[i]![2])} overlap`);
  }
  return { tensors, metadata };
}
