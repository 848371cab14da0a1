/** Ratios and target verdicts from the raw measurements (bench/results.json's "summary" and "targets"). */
import { cpus } from 'node:os';
import { round } from './stats.js';
import type { LoadCell } from './http.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- the Python half's JSON is read as plain data */
type Py = any;

export interface Target {
  name: string;
  target: string;
  measured: string;
  pass: boolean;
  why?: string;
  fix?: string;
}

export interface HttpResults {
  idle_rss_mib: number;
  creation: { kind: string; k: number; example_chars: number; n: number; p50_ms: number; p99_ms: number }[];
  creation_same_episodes: Record<string, { p50_ms: number; p99_ms: number; n: number }>;
  load: LoadCell[];
  live_adapters: { few: { adapters: number; cell: LoadCell }; many: { adapters: number; cell: LoadCell } };
  memory: { kind: string; adapters: number; rss_bytes_per_adapter: number; lru_bytes_per_adapter: number; rss_before_mib: number; rss_after_mib: number };
}

const cell = (load: LoadCell[], c: number, a: number) => load.find((x) => x.concurrency === c && x.adapters === a);

export function tuningRatios(http: HttpResults, py: Py) {
  return (py.tuning.rows as Py[]).map((t) => {
    const hyperMs = http.creation_same_episodes[`${t.kind}:${t.k}`]!.p50_ms;
    return {
      kind: t.kind as string,
      k: t.k as number,
      hyper_http_p50_ms: hyperMs,
      hyper_torch_ms: round(t.hyper_torch_ms_p50),
      hyper_accuracy: round(100 * t.hyper_accuracy, 1),
      hyper_exact_match: round(100 * t.hyper_exact_match, 1),
      frozen_accuracy: round(100 * t.frozen_accuracy, 1),
      tuning_reached: t.reached as boolean,
      tuning_steps: t.steps as number,
      tuning_accuracy: round(100 * t.accuracy, 1),
      tuning_exact_match: round(100 * t.exact_match, 1),
      tuning_seconds: round(t.seconds_per_task, 3),
      ratio: round((1000 * t.seconds_per_task) / hyperMs, 1),
      ratio_is_lower_bound: !t.reached,
      degenerate: t.hyper_accuracy <= t.frozen_accuracy,
    };
  });
}
export type TuningRow = ReturnType<typeof tuningRatios>[number];

export function targets(http: HttpResults, py: Py, tuning: TuningRow[]): Target[] {
  const list: Target[] = [];
  for (const kind of ['lora', 'prefix']) {
    const rows = tuning.filter((r) => r.kind === kind);
    const bad = rows.filter((r) => r.ratio < 100 || r.degenerate);
    const why = bad.map((r) => {
      if (r.degenerate) return `k=${r.k}: the hyper adapters' token accuracy (${r.hyper_accuracy}%) is not above the frozen model's (${r.frozen_accuracy}%), so matching it is trivial`;
      if (!r.tuning_reached) return `k=${r.k}: tuning did not reach the hyper adapters within its ${r.tuning_steps}-step budget, so the ratio is only a lower bound`;
      return `k=${r.k}: the hyper adapters lift token accuracy only from ${r.frozen_accuracy}% (frozen) to ${r.hyper_accuracy}%, which tuning passes after ${r.tuning_steps} steps of about ${round((1000 * r.tuning_seconds) / Math.max(1, r.tuning_steps), 1)} ms`;
    });
    list.push({
      name: `adapter creation vs per-task ${kind} tuning to the same accuracy`,
      target: '>= 100x faster',
      measured: rows.map((r) => `k=${r.k}: ${r.ratio_is_lower_bound ? '>= ' : ''}${r.ratio}x`).join(', '),
      pass: bad.length === 0,
      ...(bad.length
        ? {
            why: why.join('; '),
            fix: bad.some((r) => r.degenerate)
              ? 'a trained hypermodel (a random or untrained bundle has nothing to match)'
              : bad.every((r) => !r.tuning_reached)
                ? 'a larger tuning step budget (tune_checkpoints in bench/torch_baselines.py)'
                : 'a better hypermodel: the ratio is set by how many tuning steps its adapters are worth, and a stronger hypermodel (more stage-1/2 training, a larger model) is worth more steps; a larger frozen model also makes each step dearer while creation stays one forward pass',
          }
        : {}),
    });
  }
  const rows = py.per_query.rows as Py[];
  const first = rows[0];
  const last = rows.at(-1);
  const hyperGrowth = Math.max(...rows.map((x) => x.hyper_ms)) / Math.min(...rows.map((x) => x.hyper_ms));
  const ctxGrowth = last.in_context_ms / first.in_context_ms;
  // Flat = the fitted trend over the whole k range is under 20 % of the mean (single points are noisy).
  const meanHyper = rows.reduce((a, x) => a + x.hyper_ms, 0) / rows.length;
  const hyperTrend = (py.per_query.fit_ms_per_k.hyper.slope * (last.k - first.k)) / meanHyper;
  const flatPass = Math.abs(hyperTrend) <= 0.2 && ctxGrowth >= 1.5 && last.hyper_mflops === first.hyper_mflops;
  list.push({
    name: `per-query cost vs k (${first.k}..${last.k})`,
    target: 'flat for hyper adapters, growing in-context',
    measured: `hyper ${round(first.hyper_ms)}→${round(last.hyper_ms)} ms (fitted trend ${round(100 * hyperTrend, 1)}% over the range, max/min ${round(hyperGrowth)}x, FLOPs constant); in-context ${round(first.in_context_ms)}→${round(last.in_context_ms)} ms (${round(ctxGrowth)}x, FLOPs ${round(last.in_context_mflops / first.in_context_mflops)}x)`,
    pass: flatPass,
    ...(flatPass ? {} : { why: 'latency noise on a shared machine or too few repetitions (FLOPs are analytic and exact)', fix: 'an idle machine, more repetitions' }),
  });
  // Same request sequence on both sides: the single adapter, and the widest mix run at batch 1.
  const pairs = (py.eager.torch as Py[]).filter((e) => e.batch === 1).map((e) => ({ e, h: cell(http.load, 1, e.adapters) })).filter((p) => p.h);
  const eagerRatios = pairs.map(({ e, h }) => ({ adapters: e.adapters as number, ratio: h!.tokens_per_s / e.tokens_per_s, http: h!.tokens_per_s, eager: e.tokens_per_s as number }));
  const eagerPass = eagerRatios.length > 0 && eagerRatios.every((r) => r.ratio >= 2);
  list.push({
    name: 'HTTP service vs PyTorch eager, concurrency 1',
    target: '>= 2x tokens/s',
    measured: eagerRatios.map((r) => `${r.adapters} adapter${r.adapters > 1 ? 's' : ''}: ${round(r.ratio)}x (${r.http} vs ${round(r.eager, 1)} tokens/s)`).join('; '),
    pass: eagerPass,
    ...(eagerPass ? {} : { why: 'per-request HTTP/JSON and scheduling overhead dominates a model this small', fix: 'several prompts per request, or a model large enough that the decode step dominates' }),
  });
  const c16 = cell(http.load, 16, 16);
  if (!c16) list.push({ name: 'concurrency 16 with 16 distinct adapters vs concurrency 1', target: '>= 4x throughput', measured: 'not measured (quick mode)', pass: false, why: 'quick mode runs concurrency 1 and 4 only', fix: 'the full bench' });
  const c1mix = cell(http.load, 1, 16);
  if (c16 && c1mix) {
    const ratio = c16.tokens_per_s / c1mix.tokens_per_s;
    list.push({
      name: 'concurrency 16 with 16 distinct adapters vs concurrency 1 (same 16 adapters, same requests)',
      target: '>= 4x throughput',
      measured: `${round(ratio)}x tokens/s (${c16.tokens_per_s} vs ${c1mix.tokens_per_s}); ${round(c16.completions_per_s / c1mix.completions_per_s)}x completions/s`,
      pass: ratio >= 4,
      ...(ratio >= 4
        ? {}
        : {
            why: batchingWhy(c1mix, c16, py),
            fix: 'less work per row and step outside the decoder graph in the inference worker, and the encoder run batched across prompts; more cores, one single-threaded worker each',
          }),
    });
  }
  return list;
}

/** Section 5: how far from the hardware. FLOPs of one decode step at batch 1 vs ORT's best matmul rate. */
export function limit(http: HttpResults, py: Py) {
  const peak = py.matmul.peak_gflops * 1e9;
  const perToken = py.flops.per_token_decode_b1['32'];
  const idealTokS = peak / perToken;
  const idealShapeTokS = (py.matmul.decode_b1.gflops * 1e9) / perToken;
  const best = http.load.reduce((a, b) => (b.tokens_per_s > a.tokens_per_s ? b : a));
  const ortPy = py.eager.ort_python[0].tokens_per_s;
  const c1 = cell(http.load, 1, 1)!;
  return {
    flops_per_token: perToken,
    matmul_peak_gflops: round(py.matmul.peak_gflops, 1),
    matmul_peak_gflops_all_cores: round(py.matmul.all_cores.peak_gflops, 1),
    matmul_decode_shape_gflops: round(py.matmul.decode_b1.gflops, 1),
    matmul_decode_b16_gflops: round(py.matmul.decode_b16.gflops, 1),
    ideal_tokens_per_s: Math.round(idealTokS),
    ideal_us_per_token: round(1e6 / idealTokS, 3),
    ideal_tokens_per_s_at_decode_shape: Math.round(idealShapeTokS),
    measured: {
      http_c1: { tokens_per_s: c1.tokens_per_s, of_ideal_percent: round((100 * c1.tokens_per_s) / idealTokS, 3) },
      http_best: { concurrency: best.concurrency, adapters: best.adapters, tokens_per_s: best.tokens_per_s, of_ideal_percent: round((100 * best.tokens_per_s) / idealTokS, 3) },
      ort_python_b1: { tokens_per_s: round(ortPy, 1), of_ideal_percent: round((100 * ortPy) / idealTokS, 3) },
    },
  };
}

/** Section 6: one line per (cost, variable), from the other sections' measurements. */
export function growth(http: HttpResults, py: Py): { cost: string; with: string; measured: string }[] {
  const rows: { cost: string; with: string; measured: string }[] = [];
  const kind = py.kind as string;
  const cr = http.creation.filter((r) => r.kind === kind);
  const ks = [...new Set(cr.map((r) => r.k))].sort((a, b) => a - b);
  const lens = [...new Set(cr.map((r) => r.example_chars))].sort((a, b) => a - b);
  const at = (k: number, len: number) => cr.find((r) => r.k === k && r.example_chars === len)!.p50_ms;
  const kMin = ks[0]!;
  const kMax = ks.at(-1)!;
  rows.push({ cost: `adapter creation (${kind}, HTTP p50)`, with: `k ${kMin}→${kMax} (${lens[0]} chars)`, measured: `${at(kMin, lens[0]!)} → ${at(kMax, lens[0]!)} ms (${round(at(kMax, lens[0]!) / at(kMin, lens[0]!))}x)` });
  if (lens.length > 1) rows.push({ cost: `adapter creation (${kind}, HTTP p50)`, with: `example length ${lens[0]}→${lens.at(-1)} chars (k=${kMax})`, measured: `${at(kMax, lens[0]!)} → ${at(kMax, lens.at(-1)!)} ms (${round(at(kMax, lens.at(-1)!) / at(kMax, lens[0]!))}x)` });
  const pq = py.per_query;
  rows.push({ cost: 'per query, hyper adapter', with: 'k', measured: `${round(pq.fit_ms_per_k.hyper.slope, 3)} ms per example (FLOPs: 0)` });
  rows.push({ cost: 'per query, in-context', with: 'k', measured: `${round(pq.fit_ms_per_k.in_context.slope, 3)} ms per example (${round(pq.fit_mflops_per_k.in_context.slope, 1)} MFLOPs)` });
  const g = py.growth;
  const i0 = g.by_input_length[0];
  const i1 = g.by_input_length.at(-1);
  rows.push({ cost: 'per query (ORT)', with: `input ${i0.src_tokens}→${i1.src_tokens} tokens`, measured: `${round(i0.ms)} → ${round(i1.ms)} ms, ${round(g.fit_ms_per_input_token.slope, 4)} ms per token` });
  const o0 = g.by_output_length[0];
  const o1 = g.by_output_length.at(-1);
  rows.push({ cost: 'per query (ORT)', with: `output ${o0.new_tokens}→${o1.new_tokens} tokens`, measured: `${round(o0.ms)} → ${round(o1.ms)} ms, ${round(g.fit_ms_per_output_token.slope, 4)} ms per token` });
  const d = py.decode_adapters;
  rows.push({ cost: `decode step, batch ${d.batch}`, with: `1 → ${d.batch} distinct adapters in the batch`, measured: `${d.same_adapter_ms} → ${d.distinct_adapters_ms} ms` });
  const { few, many } = http.live_adapters;
  rows.push({ cost: 'completion at concurrency 1, 1 adapter (HTTP p50)', with: `live adapters ${few.adapters} → ${many.adapters}`, measured: `${few.cell.p50_ms} → ${many.cell.p50_ms} ms` });
  rows.push({ cost: 'service memory', with: 'cached adapters', measured: `${http.memory.lru_bytes_per_adapter} bytes per adapter (LRU accounting; RSS delta ${http.memory.rss_bytes_per_adapter})` });
  for (const c of http.load.filter((x) => x.concurrency > 1 && x.adapters === x.concurrency)) {
    const base = cell(http.load, 1, c.adapters);
    if (base) rows.push({ cost: 'throughput (HTTP), same requests', with: `concurrency 1 → ${c.concurrency}, ${c.adapters} distinct adapters`, measured: `${base.tokens_per_s} → ${c.tokens_per_s} tokens/s (${round(c.tokens_per_s / base.tokens_per_s)}x)` });
  }
  for (const c of http.load.filter((x) => x.concurrency > 1 && x.adapters === 1)) {
    const base = cell(http.load, 1, 1)!;
    rows.push({ cost: 'throughput (HTTP), same requests', with: `concurrency 1 → ${c.concurrency}, 1 adapter`, measured: `${base.tokens_per_s} → ${c.tokens_per_s} tokens/s (${round(c.tokens_per_s / base.tokens_per_s)}x)` });
  }
  return rows;
}

/** After how many queries creating an adapter is cheaper than prepending the k demonstrations to each one. */
export function breakEven(http: HttpResults, py: Py) {
  const kind = py.kind as string;
  const rows = (py.per_query.rows as Py[]).filter((r) => http.creation.some((c) => c.kind === kind && c.k === r.k));
  const r = rows.at(-1);
  if (!r) return null;
  const creation = http.creation.filter((c) => c.kind === kind && c.k === r.k).reduce((a, b) => (a.example_chars <= b.example_chars ? a : b));
  const extra = r.in_context_ms - r.hyper_ms;
  return { k: r.k as number, creation_ms: creation.p50_ms, extra_ms_per_query: round(extra), queries: extra > 0 ? Math.ceil(creation.p50_ms / extra) : null };
}

/** Why batching gained less than 4x: where the inference worker's time goes, from the service's own step counts. */
function batchingWhy(c1: LoadCell, c16: LoadCell, py: Py): string {
  const rate = (c: LoadCell) => (c.decode_steps * c.mean_batch_rows) / c.seconds; // row-steps per second
  const graph1 = py.decode_b1.same_adapter_ms;
  const graph16 = py.decode_adapters.distinct_adapters_ms;
  const saturated = c16.service_cores + c16.generator_cores >= 0.9 * cpus().length;
  return `batching multiplied the row-steps decoded per second only ${round(rate(c16) / rate(c1), 1)}x (${Math.round(rate(c1))} → ${Math.round(rate(c16))}; ${c16.mean_batch_rows} rows per step), although the decoder graph alone runs ${py.decode_adapters.batch} rows in ${graph16} ms against 1 row in ${graph1} ms (${round((16 * graph1) / graph16, 1)}x more rows per ms; ONNX Runtime, section 6): the workers' time goes to per-row work around the graph (feeds, cache, one encoder run per prompt, messages, HTTP and JSON), which does not shrink with batching; ` +
    (saturated ? `and the machine is saturated (service ${c16.service_cores} cores, load generator ${c16.generator_cores}, of ${cpus().length})` : `the machine is not saturated (service ${c16.service_cores} cores, load generator ${c16.generator_cores}, of ${cpus().length})`);
}
