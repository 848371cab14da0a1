/**
 * The only module that imports onnxruntime. Everything above speaks in plain typed arrays,
 * so the runtime can be swapped or mocked without touching model code.
 */
import * as ort from 'onnxruntime-node';

type Dtype = 'float32' | 'int64';

export interface HostTensor {
  dtype: Dtype;
  dims: readonly number[];
  data: Float32Array | BigInt64Array;
}

export interface OrtSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, HostTensor>, fetches?: readonly string[]): Promise<Record<string, HostTensor>>;
}

export interface SessionOptions {
  intraOpThreads: number;
}

/**
 * Every graph's session settings besides the thread count. bench/ort-settings.ts measures each alternative
 * against these on the encoder and decoder at batch 1 and 16 (bench/README.md, "ONNX Runtime session
 * settings"); none was faster beyond the spread of interleaved runs, so these stay.
 */
export const SESSION_SETTINGS = {
  // One graph runs at a time per worker; a second pool would only oversubscribe the cores. Measured: parallel
  // execution with 2 inter-op threads ran the decoder 2-5x slower.
  interOpNumThreads: 1,
  executionMode: 'sequential',
  // 'extended' and 'layout' gave bit-identical outputs and the same times; 'basic' and 'disabled' change the
  // outputs' last float32 digits and were no faster ('disabled': the decoder's batch-1 step 1.11x slower).
  graphOptimizationLevel: 'all',
  // ONNX Runtime's defaults, stated because they were measured: without the memory pattern a session holds
  // about 5 MiB less after batch-16 runs but the decoder's batch-1 step ran 1.14x slower; without the arena,
  // no difference beyond the spread in time or in memory.
  enableCpuMemArena: true,
  enableMemPattern: true,
  logSeverityLevel: 3,
} as const satisfies ort.InferenceSession.SessionOptions;

export async function createSession(file: string, opts: SessionOptions): Promise<OrtSession> {
  const session = await ort.InferenceSession.create(file, { ...SESSION_SETTINGS, intraOpNumThreads: opts.intraOpThreads });
  // Each input's last ort.Tensor, reused while the feed is the same array with the same dims: constructing one
  // costs about 1.4 µs, and a per-layer decoder has dozens of inputs that stay put between steps (adapters,
  // cross keys/values), which at batch 1 is 7 % of a step. A Tensor only references its array, so contents
  // rewritten in place are what the next run reads.
  const last = new Map<string, { data: HostTensor['data']; dims: readonly number[]; tensor: ort.Tensor }>();
  const tensorFor = (name: string, t: HostTensor): ort.Tensor => {
    const hit = last.get(name);
    if (hit && hit.data === t.data && hit.dims.length === t.dims.length && hit.dims.every((d, i) => d === t.dims[i])) return hit.tensor;
    const tensor = new ort.Tensor(t.dtype, t.data, t.dims);
    last.set(name, { data: t.data, dims: [...t.dims], tensor });
    return tensor;
  };
  return {
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    async run(feeds, fetches) {
      const ortFeeds: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = tensorFor(name, t);
      const out = fetches ? await session.run(ortFeeds, [...fetches]) : await session.run(ortFeeds);
      const result: Record<string, HostTensor> = {};
      for (const [name, t] of Object.entries(out)) {
        if (t.type !== 'float32' && t.type !== 'int64') throw new Error(`output ${name}: unexpected dtype ${t.type}`);
        result[name] = { dtype: t.type, dims: t.dims, data: t.data as Float32Array | BigInt64Array };
      }
      return result;
    },
  };
}
