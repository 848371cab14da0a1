/**
 * ONNX Runtime session settings, each against the service's own (src/inference/onnx.ts SESSION_SETTINGS), on
 * the encoder and decoder graphs at batch 1 and 16, one intra-op thread as a worker runs them.
 *
 *   node --import tsx bench/ort-settings.ts
 *
 * Environment: BENCH_MODEL_DIR (models/default), BENCH_PAIRS (30 pairs of samples per setting and case),
 * BENCH_SAMPLE_MS (about 20 ms of back-to-back runs per sample), BENCH_PAST (16 past tokens at the decoder),
 * BENCH_RSS (0 skips the memory part).
 *
 * Timing: per case and setting, two sessions (the service's settings and the alternative) on the same captured
 * feeds; samples alternate A B B A A B ..., each the mean of K back-to-back runs; the ratio is taken per pair, so
 * drift in the machine's load falls on both sides. Reported: medians and the 10th–90th percentiles of the
 * samples, and the largest absolute difference of any output from the service's settings.
 * Memory: one child process per (graph, setting) opens two sessions of the graph and runs each at batch 16;
 * the resident set grows by what a session costs (bench/ort-rss.ts).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import * as ort from 'onnxruntime-node';
import { SESSION_SETTINGS } from '../src/inference/onnx.js';
import { captureCases, type Case, type Feeds } from './ort-feeds.js';
import { percentile, round } from './stats.js';

const root = path.resolve(import.meta.dirname, '..');
const MODEL_DIR = path.resolve(process.env.BENCH_MODEL_DIR ?? path.join(root, 'models/default'));
const PAIRS = Number(process.env.BENCH_PAIRS ?? 30);
const SAMPLE_MS = Number(process.env.BENCH_SAMPLE_MS ?? 20);
const PAST = Number(process.env.BENCH_PAST ?? 16);

type Options = ort.InferenceSession.SessionOptions;
/** A setting: session options over the service's, and whether outputs go into preallocated tensors. */
interface Setting {
  name: string;
  options: Options;
  preallocate?: boolean;
}

const SERVICE: Options = { ...SESSION_SETTINGS, intraOpNumThreads: 1 };
const SETTINGS: Setting[] = [
  { name: 'optimization disabled', options: { graphOptimizationLevel: 'disabled' } },
  { name: 'optimization basic', options: { graphOptimizationLevel: 'basic' } },
  { name: 'optimization extended', options: { graphOptimizationLevel: 'extended' } },
  { name: 'optimization layout', options: { graphOptimizationLevel: 'layout' } },
  { name: 'CPU memory arena off', options: { enableCpuMemArena: false } },
  { name: 'memory pattern off', options: { enableMemPattern: false } },
  { name: 'parallel, 2 inter-op threads', options: { executionMode: 'parallel', interOpNumThreads: 2 } },
  { name: 'prepacking off', options: { extra: { session: { disable_prepacking: '1' } } } },
  { name: 'preallocated outputs', options: {}, preallocate: true },
];

const graphFile = (c: { graph: string }) => path.join(MODEL_DIR, `${c.graph}.onnx`);
const toOrt = (feeds: Feeds): Record<string, ort.Tensor> =>
  Object.fromEntries(Object.entries(feeds).map(([n, t]) => [n, new ort.Tensor(t.dtype, t.data, t.dims)]));

interface Side {
  session: ort.InferenceSession;
  fetch: string[] | Record<string, ort.Tensor>;
  openMs: number;
}

async function side(c: Case, s: Setting | null, reference: Record<string, ort.Tensor> | null): Promise<Side> {
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(graphFile(c), { ...SERVICE, ...s?.options });
  const openMs = performance.now() - t0;
  const fetch = s?.preallocate
    ? Object.fromEntries(c.fetches.map((n) => [n, new ort.Tensor('float32', new Float32Array(reference![n]!.data.length), reference![n]!.dims)]))
    : c.fetches;
  return { session, fetch, openMs };
}

/** Mean ms of k back-to-back runs. */
async function sample(sd: Side, feeds: Record<string, ort.Tensor>, k: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < k; i++) await sd.session.run(feeds, sd.fetch as string[]);
  return (performance.now() - t0) / k;
}

function maxAbsDiff(a: Record<string, ort.Tensor>, b: Record<string, ort.Tensor>): number {
  let d = 0;
  for (const [n, t] of Object.entries(a)) {
    const x = t.data as Float32Array;
    const y = b[n]!.data as Float32Array;
    for (let i = 0; i < x.length; i++) d = Math.max(d, Math.abs(x[i]! - y[i]!));
  }
  return d;
}

const spread = (xs: number[], digits = 3) => `${round(percentile(xs, 50), digits)} (${round(percentile(xs, 10), digits)}–${round(percentile(xs, 90), digits)})`;
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').trim();

async function timeCase(c: Case): Promise<string[]> {
  const feeds = toOrt(c.feeds);
  const base = await side(c, null, null);
  const reference = await base.session.run(feeds, c.fetches);
  for (let i = 0; i < 5; i++) await sample(base, feeds, 1);
  const k = Math.max(1, Math.round(SAMPLE_MS / (await sample(base, feeds, 10))));
  const lines: string[] = [];
  for (const s of SETTINGS) {
    const alt = await side(c, s, reference);
    const out = await alt.session.run(feeds, alt.fetch as string[]);
    const diff = maxAbsDiff(reference, out);
    await sample(alt, feeds, k);
    const a: number[] = [];
    const b: number[] = [];
    const ratio: number[] = [];
    for (let p = 0; p < PAIRS; p++) {
      // Which side goes first alternates, so that a trend in the machine's load does not favour one.
      let x: number, y: number;
      if (p % 2) {
        y = await sample(alt, feeds, k);
        x = await sample(base, feeds, k);
      } else {
        x = await sample(base, feeds, k);
        y = await sample(alt, feeds, k);
      }
      a.push(x);
      b.push(y);
      ratio.push(y / x);
    }
    await alt.session.release();
    const win = percentile(ratio, 90) < 1 ? ' **faster**' : percentile(ratio, 10) > 1 ? ' slower' : '';
    lines.push(
      `| ${c.graph} | ${c.batch} | ${s.name} | ${spread(a)} | ${spread(b)} | ${spread(ratio)}${win} | ${diff.toExponential(1)} | ${round(base.openMs, 0)} / ${round(alt.openMs, 0)} |`,
    );
    console.error(`${lines.at(-1)}  [load ${loadavg()}]`);
  }
  await base.session.release();
  return lines;
}

/** Resident-set growth per session, measured in a child process per (graph, setting). */
function memory(cases: Case[]): string[] {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ort-rss-'));
  const lines: string[] = [];
  const all: Setting[] = [{ name: 'service settings', options: {} }, ...SETTINGS.filter((s) => /arena|pattern|prepacking/.test(s.name))];
  for (const c of cases.filter((x) => x.batch === 16)) {
    const file = path.join(dir, `${c.graph}.v8`);
    writeFileSync(file, v8.serialize({ feeds: c.feeds, fetches: c.fetches }));
    for (const s of all) {
      const args = ['--import', 'tsx', path.join(import.meta.dirname, 'ort-rss.ts'), graphFile(c), file, JSON.stringify({ ...SERVICE, ...s.options })];
      const res = spawnSync(process.execPath, args, { encoding: 'utf8' });
      if (res.status !== 0) throw new Error(`ort-rss.ts failed: ${res.stderr}`);
      const r = JSON.parse(res.stdout) as { open: number[]; run: number[] };
      const mib = (x: number) => round(x / 2 ** 20, 1);
      lines.push(`| ${c.graph} | ${s.name} | ${mib(r.open[0]!)} / ${mib(r.run[0]!)} | ${mib(r.open[1]!)} / ${mib(r.run[1]!)} |`);
      console.error(lines.at(-1));
    }
  }
  return lines;
}

async function main(): Promise<void> {
  console.log(`load before: ${loadavg()}; onnxruntime-node ${ort.env.versions.common}; ${os.cpus().length} CPUs`);
  const cases = await captureCases(MODEL_DIR, [1, 16], PAST);
  for (const c of cases) console.log(`${c.graph} batch ${c.batch}: ${c.graph === 'encoder' ? 'prompts of' : 'past of'} ${c.length} tokens`);
  const timing = ['| graph | batch | setting | service ms | setting ms | setting / service | max abs diff | open ms (service / setting) |', '|---|---:|---|---|---|---|---|---|'];
  for (const c of cases) timing.push(...(await timeCase(c)));
  console.log(`\nload after timing: ${loadavg()}\n\n${timing.join('\n')}`);
  if (process.env.BENCH_RSS !== '0') {
    const mem = ['| graph | setting | 1st session: open / +run at batch 16 (MiB) | 2nd session: open / +run (MiB) |', '|---|---|---|---|', ...memory(cases)];
    console.log(`\n${mem.join('\n')}\n\nload after memory: ${loadavg()}`);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
