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

export async function createSession(file: string, opts: SessionOptions): Promise<OrtSession> {
  const session = await ort.InferenceSession.create(file, {
    intraOpNumThreads: opts.intraOpThreads,
    // One graph runs at a time per worker; a second pool would only oversubscribe the cores.
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
  });
  return {
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    async run(feeds, fetches) {
      const ortFeeds: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = new ort.Tensor(t.dtype, t.data, t.dims);
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
