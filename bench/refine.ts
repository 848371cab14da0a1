/**
 * Refinement, in one run (bench/README.md, "Refinement"):
 * 1. the step alone, per k: the service's TrainStep on onnxruntime-node, the same graph's bare `session.run`, and
 *    PyTorch eager's Adam step, on the same batch and hypermodel adapter (bench/refine-steps.ts): per k and round,
 *    `BENCH_COMPARE_STEPS` steps of each from the same start, taking turns step by step; every step's loss must
 *    agree (bit for bit between the two onnxruntime-node ways, within 1e-4 for PyTorch), else the bench stops;
 * 2. the service's latency per adapter, in-process (app.inject, the service's default inference workers, one per
 *    core, each with one intra-op thread): for every
 *    k and step count a `POST /v1/adapters` with `refine` (the request's wall time, and `refine.ms`, the worker's
 *    time for the steps), and per k one request without `refine` (hypermodel pass, fit report, store).
 * Both run in every round, so the service's rows and the step rows are measured minutes apart at most.
 * Every request uses other demonstrations (nothing answered from the store), all of one shape per k.
 *
 *   node --import tsx bench/refine.ts
 *
 * Environment: BENCH_MODEL_DIR (models/default), BENCH_KIND (lora), BENCH_AUGMENT (none), BENCH_K (1,3,5),
 * BENCH_STEPS (25,50,100,200), BENCH_ROUNDS (3), BENCH_COMPARE_STEPS (30), BENCH_TORCH (1; 0 leaves PyTorch
 * out), BENCH_PYTHON (.venv/bin/python), BENCH_WORKERS (the service's default).
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config/index.js';
import type { AdapterKindName, RefineAugment } from '../src/inference/manifest.js';
import { refineBatch } from '../src/inference/refine-batch.js';
import { GraphSession } from '../src/inference/session.js';
import { TrainStep } from '../src/inference/train-step.js';
import { tempDir } from '../test/helper.js';
import { startLineChild } from './children.js';
import { mark } from './load-check.js';
import { bareSession, bareStepper, serviceStepper, stepCase, torchStepper, type Example, type Stepper } from './refine-steps.js';
import { percentile, round } from './stats.js';

const root = path.resolve(import.meta.dirname, '..');
const env = process.env;
const MODEL_DIR = path.resolve(env.BENCH_MODEL_DIR ?? path.join(root, 'models/default'));
const KIND = (env.BENCH_KIND ?? 'lora') as AdapterKindName;
const AUGMENT = (env.BENCH_AUGMENT ?? 'none') as RefineAugment;
const list = (v: string | undefined, d: string) => (v ?? d).split(',').map(Number);
const KS = list(env.BENCH_K, '1,3,5');
const STEPS = list(env.BENCH_STEPS, '25,50,100,200');
const ROUNDS = Number(env.BENCH_ROUNDS ?? 3);
const COMPARE_STEPS = Number(env.BENCH_COMPARE_STEPS ?? 30);
const TORCH = env.BENCH_TORCH !== '0';
const PYTHON = path.resolve(root, env.BENCH_PYTHON ?? '.venv/bin/python');
/** Inference workers of the service under test; unset, the service's default (one per core). */
const WORKERS = env.BENCH_WORKERS ? Number(env.BENCH_WORKERS) : undefined;

const NAMES = ['Ada Lovelace', 'Grace Hopper', 'Alan Turing', 'Katherine Johnson', 'Edsger Dijkstra'];
/** k demonstrations of one task (initial + surname); `tag` (fixed width) makes every request's own. */
const demos = (k: number, tag: number): Example[] =>
  NAMES.slice(0, k).map((name) => {
    const [first, last] = name.split(' ') as [string, string];
    const t = String(tag).padStart(3, '0');
    return { input: `${name} ${t}`, output: `${first[0]}. ${last} ${t}` };
  });
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const med = (xs: number[]) => percentile(xs, 50);
const spread = (xs: number[], digits = 1) => `${round(Math.min(...xs), digits)}–${round(Math.max(...xs), digits)}`;
const LOSS_TOLERANCE = 1e-4; // hypert5.refine_check: float reordering only

const config = loadConfig({}, { MODEL_DIR, ADAPTER_STORE_DIR: tempDir('hypert5-bench-refine-'), ...(WORKERS ? { WORKERS } : {}), INTRA_OP_THREADS: 1, REQUEST_DEADLINE_MS: 0, LOG_LEVEL: 'warn' });
const app = await buildApp({ config });
await app.ready();
await app.engine.scheduler.whenReady();
const { bundle, tokenizer } = app.engine;

// The step comparison's cases and runtimes, built before the clock starts.
const hyper = await GraphSession.open(bundle, `hyper_${KIND}`, 1);
const cases = await Promise.all(KS.map((k) => stepCase(bundle, tokenizer, hyper, KIND, demos(k, 0), AUGMENT)));
const graph = await TrainStep.open(bundle, KIND);
const bare = await bareSession(bundle, KIND);
const child = TORCH ? await startLineChild(PYTHON, ['bench/pybench/refine_steps.py', '--bundle', MODEL_DIR, '--kind', KIND, '--threads', '1'], root) : null;
type Way = 'service' | 'bare' | 'torch';
const ways: Way[] = TORCH ? ['service', 'bare', 'torch'] : ['service', 'bare'];
const stepper = async (way: Way, c: (typeof cases)[number]): Promise<Stepper> =>
  way === 'service' ? serviceStepper(graph, c) : way === 'bare' ? bareStepper(bare, bundle, KIND, c) : torchStepper(child!, c);

interface Cell {
  ms: number[];
  losses: number[];
}
/** `steps` steps of each way from the same start, taking turns step by step (the order rotated every step). */
async function lockstep(c: (typeof cases)[number], steps: number): Promise<Record<Way, Cell>> {
  const run = {} as Record<Way, Stepper>;
  const got = {} as Record<Way, Cell>;
  for (const way of ways) {
    run[way] = await stepper(way, c);
    got[way] = { ms: [], losses: [] };
  }
  for (let s = 0; s < steps; s++) {
    for (let i = 0; i < ways.length; i++) {
      const way = ways[(i + s) % ways.length]!;
      const { ms, loss } = await run[way]();
      got[way].ms.push(ms);
      got[way].losses.push(loss);
    }
  }
  return got;
}

let tag = 1;
async function request(k: number, steps: number | null): Promise<{ wall: number; worker: number }> {
  const examples = demos(k, tag++);
  const shape = refineBatch(bundle.manifest, tokenizer, examples, AUGMENT);
  const c = cases[KS.indexOf(k)]!.batch;
  if (shape.srcLen !== c.srcLen || shape.tgtLen !== c.tgtLen) throw new Error(`demonstrations of another shape: ${JSON.stringify(examples)}`);
  const t0 = performance.now();
  const res = await app.inject({ method: 'POST', url: '/v1/adapters', payload: { examples, kind: KIND, ...(steps ? { refine: { steps, augment: AUGMENT } } : {}) } });
  const wall = performance.now() - t0;
  if (res.statusCode !== 201) throw new Error(`POST /v1/adapters: ${res.statusCode} ${res.body}`);
  return { wall, worker: steps ? res.json<{ refine: { ms: number } }>().refine.ms : 0 };
}

// Warm-up: the worker opens its step graph on its first refinement; every runtime sees every shape once.
await request(KS.at(-1)!, 2);
for (const c of cases) await lockstep(c, 2);

const stepMs = new Map<string, number[]>(); // `${k}/${way}` -> per-round median ms per step
const ratio = new Map<string, number[]>(); // `${k}/${way}` -> per-round median over the service's median
const lossGap = new Map<number, number>(); // k -> worst |torch - onnxruntime| first-step loss
const latency = new Map<string, { wall: number[]; worker: number[] }>(); // `${k}/${steps}` (0: no refine)
const push = <T>(m: Map<string, T[]>, key: string, v: T) => m.set(key, [...(m.get(key) ?? []), v]);
const loadBefore = loadavg();
const load = mark();
const t0 = performance.now();
for (let r = 0; r < ROUNDS; r++) {
  for (const c of cases) {
    const got = await lockstep(c, COMPARE_STEPS);
    // The same graph, options and feeds: bit for bit the same losses; PyTorch within float reordering.
    if (got.bare.losses.some((l, s) => l !== got.service.losses[s])) throw new Error(`k=${c.k}: bare session.run and TrainStep disagree`);
    if (got.torch) {
      const gap = Math.max(...got.torch.losses.map((l, s) => Math.abs(l - got.service.losses[s]!)));
      if (gap > LOSS_TOLERANCE) throw new Error(`k=${c.k}: PyTorch and onnxruntime-node losses differ by ${gap}: not the same step`);
      lossGap.set(c.k, Math.max(lossGap.get(c.k) ?? 0, gap));
    }
    for (const way of ways) {
      push(stepMs, `${c.k}/${way}`, med(got[way].ms));
      push(ratio, `${c.k}/${way}`, med(got[way].ms) / med(got.service.ms));
    }
  }
  for (const k of r % 2 ? [...KS].reverse() : KS) {
    for (const steps of [0, ...(r % 2 ? [...STEPS].reverse() : STEPS)]) {
      const { wall, worker } = await request(k, steps || null);
      const cell = latency.get(`${k}/${steps}`) ?? { wall: [], worker: [] };
      cell.wall.push(wall);
      cell.worker.push(worker);
      latency.set(`${k}/${steps}`, cell);
    }
  }
  console.error(`round ${r + 1}/${ROUNDS} done (${round((performance.now() - t0) / 1000, 1)} s, load ${loadavg()})`);
}
const seconds = (performance.now() - t0) / 1000;
const other = load.stop();
await child?.close();
await app.close();

const out: string[] = [];
out.push(`${KIND}, augment ${AUGMENT}, ${ROUNDS} rounds, ${os.cpus().length} CPUs, ${config.WORKERS} inference workers, one intra-op thread everywhere (PyTorch too). ` +
  `Run ${round(seconds, 0)} s; load average before ${loadBefore}, after ${loadavg()}; other processes used ${other.other_cores} cores on average during the run.`);
out.push('', `Step alone, ${COMPARE_STEPS} steps per cell from the hypermodel's adapter (median ms per step: median over rounds, range):`, '');
out.push(`| k | batch (rows, src, tgt) | onnxruntime-node, service TrainStep | bare session.run | PyTorch eager | eager / service | bare / service | max loss gap |`);
out.push('|---|---|---|---|---|---|---|---|');
for (const c of cases) {
  const cell = (way: Way) => {
    const xs = stepMs.get(`${c.k}/${way}`);
    return xs ? `${round(med(xs), 1)} ms (${spread(xs)}), ${round(1000 / med(xs), 0)} steps/s` : '—';
  };
  const rat = (way: Way) => {
    const xs = ratio.get(`${c.k}/${way}`);
    return xs ? `${round(med(xs), 2)} (${spread(xs, 2)})` : '—';
  };
  out.push(`| ${c.k} | ${c.batch.rows}, ${c.batch.srcLen}, ${c.batch.tgtLen} | ${cell('service')} | ${cell('bare')} | ${cell('torch')} | ${rat('torch')} | ${rat('bare')} | ${lossGap.has(c.k) ? lossGap.get(c.k)!.toExponential(1) : '—'} |`);
}
out.push('', 'Through the service, per adapter (median over rounds, range): the request, the steps in the worker (`refine.ms`), the rest (hypermodel pass, fit reports, stores):', '');
out.push('| k | steps | request | steps in the worker | ms per step | outside the steps |');
out.push('|---|---|---|---|---|---|');
for (const k of KS) {
  for (const steps of [0, ...STEPS]) {
    const { wall, worker } = latency.get(`${k}/${steps}`)!;
    const rest = wall.map((w, i) => w - worker[i]!);
    const perStep = worker.map((w) => w / steps);
    out.push(steps === 0
      ? `| ${k} | none | ${round(med(wall), 0)} ms (${spread(wall, 0)}) | — | — | ${round(med(wall), 0)} ms |`
      : `| ${k} | ${steps} | ${round(med(wall), 0)} ms (${spread(wall, 0)}) | ${round(med(worker), 0)} ms (${spread(worker, 0)}) | ${round(med(perStep), 1)} | ${round(med(rest), 0)} ms (${spread(rest, 0)}) |`);
  }
}
console.log(out.join('\n'));
