/**
 * The refinement step alone, three ways on the same batch and starting adapter (bench/refine.ts interleaves them):
 * - `service`: the service's own code (src/inference/train-step.ts TrainStep.step) on onnxruntime-node, as the
 *   worker runs it, here on the main thread;
 * - `bare`: onnxruntime-node's `session.run` of the same graph with the same session options, each step fed the
 *   previous step's output tensors as they come (no copies, no feed checks): what the service's code adds is the
 *   difference between the two;
 * - `torch`: PyTorch eager, the same Adam step (bench/pybench/refine_steps.py), in a Python child.
 * Each is a stepper: a refinement from the hypermodel's adapter with zero moments, advanced one timed step per call,
 * so that the three can take turns step by step.
 */
import * as ort from 'onnxruntime-node';
import type { Bundle } from '../src/inference/bundle.js';
import type { AdapterTensors } from '../src/inference/feeds.js';
import { generateAdapters } from '../src/inference/hypermodel.js';
import type { AdapterKindName, RefineAugment } from '../src/inference/manifest.js';
import { SESSION_SETTINGS } from '../src/inference/onnx.js';
import { refineBatch } from '../src/inference/refine-batch.js';
import { refineGraph, type RefineGraph } from '../src/inference/refine-spec.js';
import { GraphSession } from '../src/inference/session.js';
import { encoderIds, serializeExamples, type TextTokenizer } from '../src/inference/tokenizer.js';
import { TrainStep, type RefineBatch } from '../src/inference/train-step.js';
import type { LineChild } from './children.js';

export type Example = { input: string; output: string };

/** One refinement in progress: each call runs its next step and returns the step's time and loss. */
export type Stepper = () => Promise<{ ms: number; loss: number }>;

/** One k's work: the batch the service would build and the hypermodel's adapter for the demonstrations. */
export interface StepCase {
  k: number;
  batch: RefineBatch;
  start: AdapterTensors;
  learningRate: number;
}

export async function stepCase(bundle: Bundle, tok: TextTokenizer, hyper: GraphSession, kind: AdapterKindName, examples: Example[], augment: RefineAugment): Promise<StepCase> {
  const m = bundle.manifest;
  const [start] = await generateAdapters(hyper, bundle.table, m, kind, [encoderIds(tok, m, serializeExamples(m, examples))]);
  return { k: examples.length, batch: refineBatch(m, tok, examples, augment), start: start!, learningRate: graphOf(bundle, kind).defaults.learning_rate };
}

export function serviceStepper(graph: TrainStep, c: StepCase): Stepper {
  const state = graph.begin(c.start);
  const feeds = graph.batchFeeds(c.batch);
  return async () => {
    const t = performance.now();
    const loss = await graph.step(state, feeds, c.learningRate);
    return { ms: performance.now() - t, loss };
  };
}

function graphOf(bundle: Bundle, kind: AdapterKindName): RefineGraph {
  const where = refineGraph(bundle, kind);
  if ('missing' in where) throw new Error(`${bundle.dir}: no training-step graph: ${where.missing}`);
  return where;
}

/** A session of the kind's step graph with the service's settings (src/inference/onnx.ts), one thread as TrainStep opens it. */
export function bareSession(bundle: Bundle, kind: AdapterKindName): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(graphOf(bundle, kind).file, { ...SESSION_SETTINGS, intraOpNumThreads: 1 });
}

export function bareStepper(session: ort.InferenceSession, bundle: Bundle, kind: AdapterKindName, c: StepCase): Stepper {
  const { batch: b } = c;
  const ints = (xs: number[], cols: number) => new ort.Tensor('int64', BigInt64Array.from(xs, BigInt), [b.rows, cols]);
  const fixed: Record<string, ort.Tensor> = {
    input_ids: ints(b.inputIds, b.srcLen),
    attention_mask: ints(b.attentionMask, b.srcLen),
    target_ids: ints(b.targetIds, b.tgtLen),
    target_mask: ints(b.targetMask, b.tgtLen),
    learning_rate: new ort.Tensor('float32', Float32Array.of(c.learningRate), []),
  };
  const shapes = new Map(bundle.manifest.graphs[graphOf(bundle, kind).graph]!.inputs.map((io) => [io.name, io.shape as number[]]));
  let state: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(c.start)) {
    const dims = shapes.get(name)!;
    if (!session.outputNames.includes(`updated.${name}`)) {
      fixed[name] = new ort.Tensor('float32', t, dims); // not trained (a "peft" prefix's mask)
      continue;
    }
    state[name] = new ort.Tensor('float32', Float32Array.from(t), dims);
    state[`adam_m.${name}`] = new ort.Tensor('float32', new Float32Array(t.length), dims);
    state[`adam_v.${name}`] = new ort.Tensor('float32', new Float32Array(t.length), dims);
  }
  let done = 0;
  return async () => {
    const t = performance.now();
    const out = await session.run({ ...fixed, ...state, step: new ort.Tensor('float32', Float32Array.of(done++), []) });
    const next: Record<string, ort.Tensor> = {};
    for (const name of Object.keys(state)) next[name] = out[`updated.${name}`]!;
    state = next;
    const ms = performance.now() - t;
    return { ms, loss: (out.loss!.data as Float32Array)[0]! };
  };
}

const b64 = (t: Float32Array): string => Buffer.from(t.buffer, t.byteOffset, t.byteLength).toString('base64');

/** PyTorch eager in the Python child: the step's time is taken there, the line protocol is not in it. */
export async function torchStepper(child: LineChild, c: StepCase): Promise<Stepper> {
  const { batch: b } = c;
  await child.ask({
    cmd: 'begin',
    batch: { rows: b.rows, src_len: b.srcLen, tgt_len: b.tgtLen, input_ids: b.inputIds, attention_mask: b.attentionMask, target_ids: b.targetIds, target_mask: b.targetMask },
    start: Object.fromEntries(Object.entries(c.start).map(([n, t]) => [n, b64(t)])),
    learning_rate: c.learningRate,
  });
  return () => child.ask<{ ms: number; loss: number }>({ cmd: 'step' });
}
