/**
 * One kind's training-step graph (models/README.md, "Refinement graphs"): each run is one Adam step of one
 * adapter on a padded batch of its demonstrations; refining N steps is N runs, each fed the previous run's
 * `updated.*` outputs. The Python reference is training/hypert5/refine_runtime.py (OrtRefiner.run); the
 * service must give the same bytes for the same request, which test/refine-parity.test.ts checks.
 */
import { BundleError, type Bundle } from './bundle.js';
import { intTensor, type AdapterTensors } from './feeds.js';
import type { AdapterKindName, IoSpec } from './manifest.js';
import { createSession, type HostTensor, type OrtSession } from './onnx.js';
import { refineGraph } from './refine-spec.js';

/** A padded batch of (source, target) rows, built by refine-batch.ts: `[rows, srcLen]` and `[rows, tgtLen]`, row-major. */
export interface RefineBatch {
  rows: number;
  srcLen: number;
  tgtLen: number;
  inputIds: number[];
  attentionMask: number[];
  targetIds: number[];
  targetMask: number[];
}

const UPDATED = 'updated.';

/** The adapter being refined and its Adam moments, replaced by each step's outputs. */
export interface RefineState {
  params: AdapterTensors;
  moments: AdapterTensors;
  /** Tensors of the kind the graph does not train (a "peft" prefix's mask), fed as they are. */
  fixed: AdapterTensors;
  /** Updates done so far. */
  done: number;
}

export class TrainStep {
  private constructor(
    private readonly session: OrtSession,
    private readonly inputs: Map<string, IoSpec>,
    /** The adapter tensors the graph updates, in input order. */
    readonly trained: readonly string[],
  ) {}

  /**
   * Opens the step graph of `kind` with ONE intra-op thread whatever INTRA_OP_THREADS says: a reduction
   * split over threads sums in another order, and refinement promises the same bytes for the same request
   * (and the bytes of the Python reference, which runs one thread too).
   */
  static async open(this: void, bundle: Bundle, kind: AdapterKindName): Promise<TrainStep> {
    const where = refineGraph(bundle, kind);
    if ('missing' in where) throw new BundleError(`${bundle.dir}: no training-step graph for kind ${kind}: ${where.missing}`);
    let session: OrtSession;
    try {
      session = await createSession(where.file, { intraOpThreads: 1 });
    } catch (e) {
      throw new BundleError(`${where.file}: ONNX Runtime cannot load it (${(e as Error).message})`);
    }
    const spec = bundle.manifest.graphs[where.graph]!;
    const declared = spec.inputs.map((io) => io.name);
    const absent = declared.filter((n) => !session.inputNames.includes(n));
    const extra = session.inputNames.filter((n) => !declared.includes(n));
    if (absent.length || extra.length) {
      throw new BundleError(`${where.file}: session inputNames differ from manifest.json field graphs.${where.graph}.inputs (declared but absent: ${JSON.stringify(absent)}; present but undeclared: ${JSON.stringify(extra)})`);
    }
    const trained = session.outputNames.filter((n) => n.startsWith(`${UPDATED}${kind}.`)).map((n) => n.slice(UPDATED.length));
    if (trained.length === 0) throw new BundleError(`${where.file}: no output ${UPDATED}${kind}.* (graphs.${where.graph}.outputs)`);
    return new TrainStep(session, new Map(spec.inputs.map((io) => [io.name, io])), trained);
  }

  /** The state before the first step: `start`'s tensors (copied), zero moments. */
  begin(start: AdapterTensors): RefineState {
    const params: AdapterTensors = {};
    const moments: AdapterTensors = {};
    const fixed: AdapterTensors = {};
    for (const [name, t] of Object.entries(start)) {
      if (this.trained.includes(name)) params[name] = Float32Array.from(t);
      else fixed[name] = t;
    }
    for (const name of this.trained) {
      if (!params[name]) throw new Error(`refine: the adapter has no tensor ${name}`);
      moments[`adam_m.${name}`] = new Float32Array(params[name].length);
      moments[`adam_v.${name}`] = new Float32Array(params[name].length);
    }
    return { params, moments, fixed, done: 0 };
  }

  /** The batch's integer inputs, built once per refinement (every step reads the same batch). */
  batchFeeds(b: RefineBatch): Record<string, HostTensor> {
    const io = (name: string): IoSpec => {
      const spec = this.inputs.get(name);
      if (!spec) throw new Error(`refine: the step graph has no input ${name}`);
      return spec;
    };
    return {
      input_ids: intTensor(io('input_ids'), b.inputIds, [b.rows, b.srcLen]),
      attention_mask: intTensor(io('attention_mask'), b.attentionMask, [b.rows, b.srcLen]),
      target_ids: intTensor(io('target_ids'), b.targetIds, [b.rows, b.tgtLen]),
      target_mask: intTensor(io('target_mask'), b.targetMask, [b.rows, b.tgtLen]),
    };
  }

  /** One Adam step: updates `state` in place and returns the loss measured before the update. */
  async step(state: RefineState, batch: Record<string, HostTensor>, learningRate: number): Promise<number> {
    const feeds: Record<string, HostTensor> = {
      ...batch,
      step: { dtype: 'float32', dims: [], data: Float32Array.of(state.done) },
      learning_rate: { dtype: 'float32', dims: [], data: Float32Array.of(learningRate) },
    };
    for (const [name, t] of Object.entries({ ...state.params, ...state.moments, ...state.fixed })) {
      feeds[name] = { dtype: 'float32', dims: this.inputs.get(name)!.shape as number[], data: t };
    }
    let out: Record<string, HostTensor>;
    try {
      out = await this.session.run(feeds);
    } catch (e) {
      const shapes = Object.entries(batch).map(([n, t]) => `${n}:[${t.dims.join(',')}]`).join(' ');
      throw new Error(`train step: run failed (${(e as Error).message}); batch ${shapes}`, { cause: e });
    }
    const take = (name: string): Float32Array => {
      const t = out[`${UPDATED}${name}`];
      if (!t || !(t.data instanceof Float32Array)) throw new Error(`train step: output ${UPDATED}${name} missing`);
      return t.data;
    };
    for (const name of Object.keys(state.params)) state.params[name] = take(name);
    for (const name of Object.keys(state.moments)) state.moments[name] = take(name);
    state.done += 1;
    return (out.loss!.data as Float32Array)[0]!;
  }

  /** The refined adapter (copies, each with its own buffer to transfer): the trained tensors and the fixed ones, in the order of `start`. */
  static adapter(state: RefineState, order: readonly string[]): AdapterTensors {
    const out: AdapterTensors = {};
    for (const name of order) out[name] = (state.params[name] ?? state.fixed[name]!).slice();
    return out;
  }
}
