/**
 * Refinement through the service: the time one adapter takes to refine, for the request the README recommends
 * (k = 3 demonstrations, 100 Adam steps), on models/default, in-process (app.inject, one worker thread).
 * Reports, per adapter, the request's wall time (hypermodel pass + refinement + store) and the worker's
 * time for the steps (`refine.ms` in the metadata), then the median and the steps per second.
 *
 *   node --import tsx bench/refine.ts
 *
 * Environment: BENCH_MODEL_DIR (models/default), BENCH_REPS (8 adapters, each on other demonstrations),
 * BENCH_STEPS (100), BENCH_KIND (lora), BENCH_AUGMENT (none).
 */
import path from 'node:path';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config/index.js';
import { tempDir } from '../test/helper.js';
import { percentile, round } from './stats.js';

const root = path.resolve(import.meta.dirname, '..');
const MODEL_DIR = path.resolve(process.env.BENCH_MODEL_DIR ?? path.join(root, 'models/default'));
const REPS = Number(process.env.BENCH_REPS ?? 8);
const STEPS = Number(process.env.BENCH_STEPS ?? 100);
const KIND = process.env.BENCH_KIND ?? 'lora';
const AUGMENT = process.env.BENCH_AUGMENT ?? 'none';

const NAMES = ['Ada Lovelace', 'Grace Hopper', 'Alan Turing', 'Katherine Johnson', 'Edsger Dijkstra', 'Barbara Liskov', 'Donald Knuth', 'Frances Allen', 'John Backus', 'Radia Perlman'];

const config = loadConfig({}, { MODEL_DIR, ADAPTER_STORE_DIR: tempDir('hypert5-bench-refine-'), WORKERS: 1, INTRA_OP_THREADS: 1, REQUEST_DEADLINE_MS: 0, LOG_LEVEL: 'warn' });
const app = await buildApp({ config });
await app.ready();
await app.engine.scheduler.whenReady();

const wall: number[] = [];
const worker: number[] = [];
for (let i = 0; i < REPS + 1; i++) {
  // Other demonstrations each time, so nothing is answered from the store.
  const examples = [0, 1, 2].map((j) => {
    const name = NAMES[(i + j * 3) % NAMES.length]!;
    const [first, last] = name.split(' ') as [string, string];
    return { input: `${name} ${i}`, output: `${first[0]}. ${last} ${i}` };
  });
  const t0 = performance.now();
  const res = await app.inject({ method: 'POST', url: '/v1/adapters', payload: { examples, kind: KIND, refine: { steps: STEPS, augment: AUGMENT } } });
  const ms = performance.now() - t0;
  if (res.statusCode !== 201) throw new Error(`refine request: ${res.statusCode} ${res.body}`);
  const refine = res.json<{ refine: { ms: number; loss_first: number; loss_last: number } }>().refine;
  // The first request opens the step graph's session in the worker: reported apart.
  if (i === 0) {
    console.log(`first request (opens the step graph): ${round(ms)} ms`);
    continue;
  }
  wall.push(ms);
  worker.push(refine.ms);
  console.log(`adapter ${i}: request ${round(ms)} ms, steps ${refine.ms} ms, loss ${round(refine.loss_first, 3)} -> ${round(refine.loss_last, 3)}`);
}
const med = percentile(worker, 50);
console.log(`${KIND}, k = 3, ${STEPS} steps, augment ${AUGMENT}, ${REPS} adapters: median request ${round(percentile(wall, 50))} ms, ` +
  `median steps ${round(med)} ms (${round((STEPS * 1000) / med)} steps/s); target <= 1500 ms per adapter`);
await app.close();
