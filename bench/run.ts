/**
 * npm run bench: what HyperTuning buys, measured side by side in one run on this machine.
 *   1. adapter creation (HTTP) vs per-task gradient tuning (PyTorch) to the same accuracy
 *   2. per-query cost vs k: hyper adapter vs demonstrations in the prompt
 *   3. HTTP throughput at concurrency 1/4/16/64, one adapter vs one per client, vs PyTorch eager
 *   4. memory; 5. FLOPs per token vs ONNX Runtime's matmul throughput; 6. growth curves
 * Writes bench/results.json and prints markdown tables with the target verdicts.
 * Environment: BENCH_MODEL_DIR (models/default), BENCH_QUICK=1 (seconds per section, a smoke test),
 * BENCH_THREADS (1: ONNX Runtime intra-op threads in the service and the Python side, PyTorch threads),
 * BENCH_WORKERS (cores: the service's inference workers), BENCH_NO_BUILD=1 (serve src/ through tsx, no build), BENCH_CHECKPOINT (the PyTorch checkpoint
 * a trained bundle was exported from; default: its weights rebuilt from the bundle), BENCH_OUT (bench/results.json).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startService } from '../scripts/service-process.js';
import { breakEven, growth, limit, targets, tuningRatios, type HttpResults } from './analyze.js';
import { adapterMemory, createAdapter, creationLatency, load, type Example, type LoadItem } from './http.js';
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
const OUT = resolve(ROOT, process.env.BENCH_OUT ?? 'bench/results.json');
const PYTHON = resolve(ROOT, process.env.BENCH_PYTHON ?? '.venv/bin/python');
const LOAD_S = QUICK ? 1 : 6;
const CONCURRENCY = QUICK ? [1, 4] : [1, 4, 16, 64];
const MEMORY_ADAPTERS = QUICK ? 16 : 256;

const log = (msg: string) => console.error(`[bench] ${msg}`);

function python(args: string[]): void {
  execFileSync(PYTHON, ['bench/torch_baselines.py', ...args, '--bundle', MODEL_DIR, '--threads', String(THREADS), ...(QUICK ? ['--quick'] : [])], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the workload and the manifest are JSON read as plain data
async function httpSections(work: any, manifest: any): Promise<HttpResults> {
  const store = mkdtempSync(join(tmpdir(), 'hypert5-bench-'));
  // BENCH_NO_BUILD: the sources through tsx (smoke tests); otherwise the compiled service, as deployed.
  const entry = process.env.BENCH_NO_BUILD ? ['--import', 'tsx', 'src/server.ts'] : ['dist/server.js'];
  const svc = await startService(process.execPath, entry, {
    cwd: ROOT,
    env: { ...process.env, MODEL_DIR, ADAPTER_STORE_DIR: store, INTRA_OP_THREADS: String(THREADS), WORKERS: String(WORKERS), LOG_LEVEL: 'warn', QUEUE_SIZE: '1024', RATE_LIMIT_PER_MIN: '0', REQUEST_DEADLINE_MS: '0' },
  });
  const pid = svc.proc.pid!;
  const items = work.load.items as LoadItem[];
  const maxTokens = work.load.max_tokens as number;
  try {
    await new Promise((r) => setTimeout(r, 500));
    const idle = rssBytes(pid);
    const kinds = Object.keys(manifest.adapters.kinds);
    const ids: string[] = [];
    for (const it of items) ids.push((await createAdapter(svc.url, it.examples)).id);
    await load(svc.url, pid, ids, items, maxTokens, 4, 4, 1); // warm-up
    const few = await load(svc.url, pid, ids, items, maxTokens, 1, 1, LOAD_S);
    log('4. memory per cached adapter (first, while the heap is small)');
    const memory = await adapterMemory(svc.url, pid, MEMORY_ADAPTERS, manifest.adapters.default_kind);

    log('1. adapter creation latency');
    for (const kind of kinds) for (let j = 0; j < 3; j++) await createAdapter(svc.url, [[`warm-up ${j}`, 'x'.repeat(200)]], kind); // first runs allocate
    const creation = await creationLatency(svc.url, work.creation, kinds);
    // The tuning comparison's own tasks (same examples as the PyTorch side), fresh adapters.
    const sameEpisodes: HttpResults['creation_same_episodes'] = {};
    for (const kind of kinds) {
      for (const k of work.config.tune_ks as number[]) {
        const ms: number[] = [];
        for (const ep of work.tuning_episodes as { demos: Example[] }[]) ms.push((await createAdapter(svc.url, ep.demos.slice(0, k), kind)).ms);
        sameEpisodes[`${kind}:${k}`] = { p50_ms: round(percentile(ms, 50)), p99_ms: round(percentile(ms, 99)), n: ms.length };
      }
    }

    log('3. throughput');
    const cells = [];
    // c = 1 runs every adapter mix sequentially: the baseline each c = A, A-adapter cell is compared with.
    for (const c of CONCURRENCY) {
      for (const adapters of c === 1 ? [1, ...CONCURRENCY.filter((x) => x > 1)] : [1, c]) {
        cells.push(await load(svc.url, pid, ids, items, maxTokens, c, Math.min(adapters, ids.length), LOAD_S));
        const x = cells.at(-1)!;
        log(`   c=${c} adapters=${x.adapters}: ${x.completions_per_s} completions/s, ${x.tokens_per_s} tokens/s`);
        if (svc.proc.exitCode !== null || svc.proc.signalCode !== null) throw new Error(`the service died (${svc.proc.exitCode ?? svc.proc.signalCode})`);
        if (x.non_2xx + x.errors > 0) log(`   warning: ${x.non_2xx} non-2xx answers and ${x.errors} errors`);
      }
    }
    const live = ids.length + MEMORY_ADAPTERS + 3 * kinds.length + creation.reduce((a, r) => a + r.n, 0) + Object.values(sameEpisodes).reduce((a, r) => a + r.n, 0);
    return { idle_rss_mib: MiB(idle), creation, creation_same_episodes: sameEpisodes, load: cells, live_adapters: { few: { adapters: ids.length, cell: few }, many: { adapters: live, cell: cells[0]! } }, memory };
  } catch (err) {
    log(`the HTTP sections failed; the service's last output:\n${svc.output().slice(-4000)}`);
    throw err;
  } finally {
    const { code } = await svc.stop();
    if (code !== 0) log(`warning: the service exited with ${code} after SIGTERM`);
    rmSync(store, { recursive: true, force: true });
  }
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
    log(`workload (${QUICK ? 'quick' : 'full'}), model ${MODEL_DIR}, ${THREADS} threads`);
    python(['workload', '--out', join(tmp, 'workload.json')]);
    const work = JSON.parse(readFileSync(join(tmp, 'workload.json'), 'utf8'));
    const http = await httpSections(work, manifest);
    log('PyTorch and ONNX Runtime sections (the service is stopped)');
    python(['measure', '--workload', join(tmp, 'workload.json'), '--out', join(tmp, 'python.json')]);
    const py = JSON.parse(readFileSync(join(tmp, 'python.json'), 'utf8'));
    const tuning = tuningRatios(http, py);
    const res = {
      meta: { date: new Date().toISOString(), model_dir: MODEL_DIR, model_name: manifest.name, fingerprint: manifest.fingerprint, quick: QUICK, threads: THREADS, workers: WORKERS, cpu: `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}`, node: process.version, max_tokens: work.load.max_tokens, total_seconds: 0, config: work.config },
      http,
      python: py,
      summary: { tuning, limit: limit(http, py), growth: growth(http, py), break_even: breakEven(http, py) },
      targets: targets(http, py, tuning),
    };
    res.meta.total_seconds = Math.round((performance.now() - t0) / 1000);
    writeFileSync(OUT, JSON.stringify(res, null, 1));
    console.log(markdown(res));
    log(`wrote ${OUT} (${res.meta.total_seconds} s)`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
