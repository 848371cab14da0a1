/**
 * npm run bench: what HyperTuning buys, measured side by side in one run on this machine.
 *   1. adapter creation vs per-task gradient tuning to the same accuracy (both in PyTorch; HTTP creation too)
 *   2. per-query cost vs k: hyper adapter vs demonstrations in the prompt
 *   3. HTTP throughput at concurrency 1/4/16/64, one adapter vs one per client, in interleaved rounds with
 *      ONNX Runtime's Python loop, PyTorch eager and the graphs' own times (bench/pyloop.py)
 *   4. memory; 5. FLOPs per token (encoder included) vs ONNX Runtime's matmul throughput on all cores; 6. growth
 * Records other processes' CPU use before and during the run (bench/load-check.ts) and refuses to start on a
 * busy machine. Writes bench/results.json, a plot next to it (bench/plot.py), prints markdown tables with the
 * target verdicts and, when writing bench/results.json, puts them in bench/README.md (bench/readme.ts).
 * Environment: BENCH_MODEL_DIR (models/default), BENCH_QUICK=1 (seconds per section, a smoke test; never
 * refuses), BENCH_THREADS (1: ONNX Runtime intra-op threads in the service and the Python side, PyTorch
 * threads), BENCH_WORKERS (cores: the service's inference workers), BENCH_NO_BUILD=1 (serve src/ through tsx,
 * no build), BENCH_CHECKPOINT (the PyTorch checkpoint a trained bundle was exported from; default: its
 * weights rebuilt from the bundle), BENCH_OUT (bench/results.json), BENCH_LOAD_LIMIT (0.1: cores other
 * processes may use), BENCH_ALLOW_LOAD=1 (run on a busy machine anyway; the results are flagged).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startService } from '../scripts/service-process.js';
import { breakEven, checks, growth, limit, reference, targets, throughput, tuningRatios, type GraphTimes, type HttpResults, type RefCell, type RoundCell } from './analyze.js';
import { run, startLineChild } from './children.js';
import { adapterMemory, createAdapter, creationLatency, load, type Example, type LoadItem } from './http.js';
import { canMeasureLoad, idleLoad, monitor, type LoadWindow } from './load-check.js';
import { updateReadme } from './readme.js';
import { markdown } from './report.js';
import { MiB, percentile, round, rssBytes } from './stats.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const QUICK = Boolean(process.env.BENCH_QUICK && process.env.BENCH_QUICK !== '0');
const MODEL_DIR = resolve(ROOT, process.env.BENCH_MODEL_DIR ?? 'models/default');
// One thread by default: on this 2-vCPU machine two intra-op threads make small graphs slower and bimodal
// (spinning workers descheduled; see the README), and the service's HTTP thread needs the other core.
const THREADS = Number(process.env.BENCH_THREADS ?? 1);
// One single-threaded inference worker per core: the service's best setting on this machine (bench/README.md).
const WORKERS = Number(process.env.BENCH_WORKERS ?? cpus().length);
const DEFAULT_OUT = resolve(ROOT, 'bench/results.json');
const OUT = resolve(ROOT, process.env.BENCH_OUT ?? DEFAULT_OUT);
const PYTHON = resolve(ROOT, process.env.BENCH_PYTHON ?? '.venv/bin/python');
const LOAD_LIMIT = Number(process.env.BENCH_LOAD_LIMIT ?? 0.1);
const ALLOW_LOAD = Boolean(process.env.BENCH_ALLOW_LOAD && process.env.BENCH_ALLOW_LOAD !== '0');
// Rounds of interleaved cells: each ratio is taken within a round, the rounds give its spread.
const ROUNDS = QUICK ? 2 : 3;
const CELL_S = QUICK ? 1 : 3;
const CONCURRENCY = QUICK ? [1, 4] : [1, 4, 16, 64];
/** The concurrency (and number of distinct adapters) of the batching targets. */
const B = QUICK ? 4 : 16;
// Room for the longest answers of the load's tasks (up to about 31 bytes, bench/long_items.py) and then some.
const MAX_TOKENS = QUICK ? 24 : 48;
const LOAD_ITEMS = Math.max(...CONCURRENCY);
const MEMORY_ADAPTERS = QUICK ? 16 : 256;
const GRAPH_REPS = QUICK ? 5 : 50;

const log = (msg: string) => console.error(`[bench] ${msg}`);

async function python(args: string[]): Promise<void> {
  await run(PYTHON, ['bench/torch_baselines.py', ...args, '--bundle', MODEL_DIR, '--threads', String(THREADS), ...(QUICK ? ['--quick'] : [])], ROOT);
}

/** One round's steps. The ratios' two sides sit next to each other; odd rounds run the list backwards. */
type Step = { http: [number, number] } | { py: [RefCell['runtime'], number, number] } | { graphs: true };
function schedule(): Step[] {
  const cells: [number, number][] = CONCURRENCY.flatMap((c) => (c === 1 ? [1, ...CONCURRENCY.filter((x) => x > 1)] : c === B ? [1, c] : [c]).map((a): [number, number] => [c, a]));
  const key: Step[] = [{ http: [1, 1] }, { py: ['ort', 1, 1] }, { py: ['torch', 1, 1] }, { http: [1, B] }, { py: ['ort', 1, B] }, { py: ['torch', 1, B] }, { http: [B, B] }, { graphs: true }];
  const rest = cells.filter(([c, a]) => !(c === 1 && (a === 1 || a === B)) && !(c === B && a === B));
  return [...key, ...rest.map((http): Step => ({ http }))];
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the workload and the manifest are JSON read as plain data
async function httpSections(work: any, manifest: any, workloadPath: string): Promise<HttpResults> {
  const store = mkdtempSync(join(tmpdir(), 'hypert5-bench-'));
  const kind = manifest.adapters.default_kind as string;
  // BENCH_NO_BUILD: the sources through tsx (smoke tests); otherwise the compiled service, as deployed.
  const entry = process.env.BENCH_NO_BUILD ? ['--import', 'tsx', 'src/server.ts'] : ['dist/server.js'];
  const [svc, side] = await Promise.all([
    startService(process.execPath, entry, {
      cwd: ROOT,
      env: { ...process.env, MODEL_DIR, ADAPTER_STORE_DIR: store, INTRA_OP_THREADS: String(THREADS), WORKERS: String(WORKERS), LOG_LEVEL: 'warn', QUEUE_SIZE: '1024', RATE_LIMIT_PER_MIN: '0', REQUEST_DEADLINE_MS: '0' },
    }),
    startLineChild(PYTHON, ['bench/pyloop.py', '--bundle', MODEL_DIR, '--workload', workloadPath, '--threads', String(THREADS), '--kind', kind], ROOT),
  ]);
  const pid = svc.proc.pid!;
  const items = work.load.items as LoadItem[];
  try {
    await new Promise((r) => setTimeout(r, 500));
    const idle = rssBytes(pid);
    const kinds = Object.keys(manifest.adapters.kinds);
    const ids: string[] = [];
    for (const it of items) ids.push((await createAdapter(svc.url, it.examples)).id);
    await load(svc.url, pid, ids, items, MAX_TOKENS, 4, 4, 1); // warm-up
    const few = await load(svc.url, pid, ids, items, MAX_TOKENS, 1, 1, CELL_S);
    log('4. memory per cached adapter (first, while the heap is small)');
    const memory = await adapterMemory(svc.url, pid, MEMORY_ADAPTERS, kind);

    log('1. adapter creation latency');
    for (const k of kinds) for (let j = 0; j < 3; j++) await createAdapter(svc.url, [[`warm-up ${j}`, 'x'.repeat(200)]], k); // first runs allocate
    const creation = await creationLatency(svc.url, work.creation, kinds);
    // The tuning comparison's own tasks (same examples as the PyTorch side), fresh adapters.
    const sameEpisodes: HttpResults['creation_same_episodes'] = {};
    for (const k of kinds) {
      for (const n of work.config.tune_ks as number[]) {
        const ms: number[] = [];
        for (const ep of work.tuning_episodes as { demos: Example[] }[]) ms.push((await createAdapter(svc.url, ep.demos.slice(0, n), k)).ms);
        sameEpisodes[`${k}:${n}`] = { p50_ms: round(percentile(ms, 50)), p99_ms: round(percentile(ms, 99)), n: ms.length };
      }
    }

    log(`3. throughput: ${ROUNDS} interleaved rounds of ${CELL_S}-second cells`);
    const cells: RoundCell[] = [];
    const refs: RefCell[] = [];
    const graphs: GraphTimes[] = [];
    const steps = schedule();
    let tokensPerCompletion = MAX_TOKENS / 2;
    for (let r = 0; r < ROUNDS; r++) {
      for (const step of r % 2 ? [...steps].reverse() : steps) {
        if ('http' in step) {
          const [c, a] = step.http;
          const x = { round: r, ...(await load(svc.url, pid, ids, items, MAX_TOKENS, c, Math.min(a, ids.length), CELL_S)) };
          cells.push(x);
          if (c === B && a === B) tokensPerCompletion = x.tokens_per_completion;
          log(`   round ${r} c=${c} adapters=${x.adapters}: ${x.tokens_per_s} tokens/s, ${x.tokens_per_completion} tokens per completion, other load ${x.load.other_cores} cores`);
          if (svc.proc.exitCode !== null || svc.proc.signalCode !== null) throw new Error(`the service died (${svc.proc.exitCode ?? svc.proc.signalCode})`);
          if (x.non_2xx + x.errors > 0) log(`   warning: ${x.non_2xx} non-2xx answers and ${x.errors} errors`);
        } else if ('py' in step) {
          const [runtime, batch, adapters] = step.py;
          refs.push({ round: r, ...(await side.ask<Omit<RefCell, 'round'>>({ cmd: 'loop', runtime, batch, adapters, seconds: CELL_S })) });
          log(`   round ${r} ${runtime} (Python) batch ${batch}, ${adapters} adapters: ${round(refs.at(-1)!.tokens_per_s)} tokens/s`);
        } else {
          graphs.push({ round: r, ...(await side.ask<Omit<GraphTimes, 'round'>>({ cmd: 'graphs', batch: B, past: Math.max(1, Math.round(tokensPerCompletion / 2)), reps: GRAPH_REPS })) });
        }
      }
    }
    const batchCells = cells.filter((c) => c.concurrency === B && c.adapters === B);
    const mean = (f: (c: RoundCell) => number) => batchCells.reduce((a, c) => a + f(c), 0) / batchCells.length;
    const flops = await side.ask<HttpResults['flops']>({ cmd: 'flops', src: Math.round(mean((c) => c.prompt_tokens_per_completion)), new_tokens: Math.max(1, Math.round(mean((c) => c.tokens_per_completion))) });
    const live = ids.length + MEMORY_ADAPTERS + 3 * kinds.length + creation.reduce((a, row) => a + row.n, 0) + Object.values(sameEpisodes).reduce((a, row) => a + row.n, 0);
    return {
      idle_rss_mib: MiB(idle), creation, creation_same_episodes: sameEpisodes, rounds: ROUNDS, batch_concurrency: B, workers: WORKERS,
      load: cells, reference: refs, graphs, flops, live_adapters: { few: { adapters: ids.length, cell: few }, many: { adapters: live, cell: cells[0]! } }, memory,
    };
  } catch (err) {
    log(`the HTTP sections failed; the service's last output:\n${svc.output().slice(-4000)}`);
    throw err;
  } finally {
    await side.close();
    const { code } = await svc.stop();
    if (code !== 0) log(`warning: the service exited with ${code} after SIGTERM`);
    rmSync(store, { recursive: true, force: true });
  }
}

/** Other load before anything starts; refuses a full run on a busy machine unless BENCH_ALLOW_LOAD is set. */
async function loadBefore(): Promise<LoadWindow | null> {
  if (!canMeasureLoad()) {
    log('warning: no /proc here, other load is not measured and the run is flagged');
    return null;
  }
  const before = await idleLoad(QUICK ? 0.5 : 3);
  log(`other processes before the run: ${before.other_cores} cores (limit ${LOAD_LIMIT})`);
  if (before.other_cores > LOAD_LIMIT && !QUICK && !ALLOW_LOAD) {
    throw new Refusal(`other processes use ${before.other_cores} cores (the limit is BENCH_LOAD_LIMIT=${LOAD_LIMIT}): this run would measure them too. ` +
      'Run on a quiet machine, or set BENCH_ALLOW_LOAD=1 to run anyway (results.json and the report then say it was loaded).');
  }
  return before;
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const tmp = mkdtempSync(join(tmpdir(), 'hypert5-bench-work-'));
  try {
    const manifest = JSON.parse(readFileSync(join(MODEL_DIR, 'manifest.json'), 'utf8'));
    if (!process.env.BENCH_NO_BUILD) {
      log('building (npm run build)');
      execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
    }
    const before = await loadBefore();
    const watch = before ? monitor() : null;
    log(`workload (${QUICK ? 'quick' : 'full'}), model ${MODEL_DIR}, ${THREADS} threads`);
    const workloadPath = join(tmp, 'workload.json');
    await python(['workload', '--out', workloadPath]);
    await run(PYTHON, ['bench/long_items.py', '--items', String(LOAD_ITEMS), '--out', join(tmp, 'items.json')], ROOT);
    const work = JSON.parse(readFileSync(workloadPath, 'utf8'));
    // The load is the long-answer tasks, for every side: the Python section's own generators read it too.
    const longItems = JSON.parse(readFileSync(join(tmp, 'items.json'), 'utf8')).items;
    work.load = { items: longItems, max_tokens: MAX_TOKENS };
    writeFileSync(workloadPath, JSON.stringify(work));
    const http = await httpSections(work, manifest, workloadPath);
    log('PyTorch and ONNX Runtime sections (the service is stopped)');
    await python(['measure', '--workload', workloadPath, '--out', join(tmp, 'python.json')]);
    const py = JSON.parse(readFileSync(join(tmp, 'python.json'), 'utf8'));
    const during = watch?.stop() ?? null;
    const cellsOver = http.load.filter((c) => c.load.other_cores > LOAD_LIMIT).length;
    const loadRecord = before && during
      ? { limit_cores: LOAD_LIMIT, allowed_by_env: ALLOW_LOAD, before, during: during.total, busiest_interval: during.intervals.reduce((a, b) => (b.other_cores > a.other_cores ? b : a), during.total), intervals_over: during.intervals.filter((w) => w.other_cores > LOAD_LIMIT).length, intervals: during.intervals.length, cells_over: cellsOver }
      : null;
    const tuning = tuningRatios(http, py);
    const runChecks = loadRecord ? checks(http, loadRecord) : checks(http, { limit_cores: LOAD_LIMIT, before: unmeasured, during: unmeasured, cells_over: http.load.length });
    const res = {
      meta: {
        date: new Date().toISOString(), model_dir: relative(ROOT, MODEL_DIR) || '.', model_name: manifest.name, fingerprint: manifest.fingerprint, quick: QUICK, threads: THREADS, workers: WORKERS,
        cpu: `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}`, node: process.version, max_tokens: MAX_TOKENS, rounds: ROUNDS, cell_seconds: CELL_S, total_seconds: 0, config: work.config,
        load_items: longItems.map((it: { family: string; answer_bytes: number }) => ({ family: it.family, answer_bytes: it.answer_bytes })),
        loadavg_before: readFileSync('/proc/loadavg', 'utf8').trim(),
        load: loadRecord,
        /** True when another process used more than BENCH_LOAD_LIMIT cores before or during the run (or it could not be measured). */
        flagged: !loadRecord || runChecks.some((c) => c.name.startsWith('other processes') && !c.pass),
      },
      http,
      python: py,
      checks: runChecks,
      summary: { throughput: throughput(http), reference: reference(http), tuning, limit: limit(http, py), growth: growth(http, py), break_even: breakEven(http, py) },
      targets: targets(http, py, tuning),
    };
    res.meta.total_seconds = Math.round((performance.now() - t0) / 1000);
    writeFileSync(OUT, JSON.stringify(res, null, 1));
    const png = OUT.replace(/\.json$/, '') + '.png';
    await run(PYTHON, ['bench/plot.py', OUT, png], ROOT);
    const report = markdown(res);
    console.log(report);
    if (OUT === DEFAULT_OUT && !QUICK) updateReadme(resolve(ROOT, 'bench/README.md'), report);
    if (res.meta.flagged) log('warning: FLAGGED: other processes loaded the machine (see checks in the report)');
    log(`wrote ${OUT} and ${png} (${res.meta.total_seconds} s)`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** A run refused before it started (a busy machine): reported in one line, exit status 2. */
class Refusal extends Error {}

const unmeasured: LoadWindow = { seconds: 0, other_cores: NaN, own_cores: NaN, irq_cores: NaN, steal_cores: NaN };

await main().catch((err: unknown) => {
  if (!(err instanceof Refusal)) throw err;
  log(`refused: ${err.message}`);
  process.exitCode = 2;
});
