/**
 * Ratios and target verdicts from the raw measurements (bench/results.json's "summary" and "targets").
 *
 * Every target is a ratio of two numbers measured in the same run and, where the bench can arrange it, the
 * same time window: the throughput cells, the Python loops and the graph timings run in interleaved rounds
 * (bench/run.ts), and each ratio is taken within a round, so the spread of the per-round ratios shows how
 * far the machine moved it. A verdict reads the median; `spread_crosses` says when the spread straddles the
 * threshold, i.e. the verdict is not settled by this run.
 */
import { round } from './stats.js';
import type { LoadCell } from './http.js';
import type { LoadWindow } from './load-check.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- the Python half's JSON is read as plain data */
type Py = any;

/** Median and range over repeats (rounds, tasks); `n` values. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

export interface Target {
  name: string;
  target: string;
  /** The threshold on `ratio` (higher is better), when the target is one ratio. */
  threshold?: number;
  ratio?: Spread | null;
  measured: string;
  pass: boolean;
  spread_crosses?: boolean;
  why?: string;
  fix?: string;
}

export type RoundCell = LoadCell & { round: number };

/** One cell of a Python generator (bench/pyloop.py "loop"), in a round. */
export interface RefCell {
  round: number;
  runtime: 'ort' | 'torch';
  batch: number;
  adapters: number;
  seconds: number;
  completions: number;
  tokens: number;
  completions_per_s: number;
  tokens_per_s: number;
  cores: number;
}

/** The graphs' own times in a round (bench/pyloop.py "graphs"). */
export interface GraphTimes {
  round: number;
  batch: number;
  past: number;
  src_tokens: number;
  reps: number;
  encoder_ms: number;
  decoder_ms: number;
}

export interface HttpResults {
  idle_rss_mib: number;
  creation: { kind: string; k: number; example_chars: number; n: number; p50_ms: number; p99_ms: number }[];
  creation_same_episodes: Record<string, { p50_ms: number; p99_ms: number; n: number }>;
  rounds: number;
  /** The concurrency of the batching targets (16; 4 in quick mode). */
  batch_concurrency: number;
  workers: number;
  load: RoundCell[];
  reference: RefCell[];
  graphs: GraphTimes[];
  /** Analytic FLOPs of one completion of the batching cell's mean length (bench/pybench/flops.py). */
  flops: { src: number; new_tokens: number; kind: string; encoder: number; decoder: number; per_completion: number };
  live_adapters: { few: { adapters: number; cell: LoadCell }; many: { adapters: number; cell: LoadCell } };
  memory: { kind: string; adapters: number; rss_bytes_per_adapter: number; lru_bytes_per_adapter: number; rss_before_mib: number; rss_after_mib: number };
}

export function spread(xs: number[]): Spread | null {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (!v.length) return null;
  const mid = v.length >> 1;
  return { median: round(v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2, 3), min: round(v[0]!, 3), max: round(v.at(-1)!, 3), n: v.length };
}

export const fmt = (s: Spread | null | undefined, unit = ''): string =>
  !s ? 'n/a' : s.n === 1 || s.min === s.max ? `${round(s.median, 2)}${unit}` : `${round(s.median, 2)}${unit} (${round(s.min, 2)}–${round(s.max, 2)})`;

const rounds = (http: HttpResults) => [...Array(http.rounds).keys()];
const cellAt = (http: HttpResults, r: number, c: number, a: number) => http.load.find((x) => x.round === r && x.concurrency === c && x.adapters === a);
const refAt = (http: HttpResults, r: number, runtime: string, b: number, a: number) => http.reference.find((x) => x.round === r && x.runtime === runtime && x.batch === b && x.adapters === a);

/** Per-round ratio of two measurements taken in the same round. */
function perRound(http: HttpResults, num: (r: number) => number | undefined, den: (r: number) => number | undefined): Spread | null {
  return spread(rounds(http).map((r) => (num(r) ?? NaN) / (den(r) ?? NaN)));
}

/** The graph-time bound on tokens/s: every worker running only the graphs, batch b, for completions of `tokens` tokens. */
function graphBound(g: GraphTimes, tokens: number, workers: number): number {
  const perCompletionMs = g.encoder_ms / g.batch + (tokens * g.decoder_ms) / g.batch;
  return (workers * tokens * 1000) / perCompletionMs;
}

/** Section 3: the rounds of each (concurrency, adapters) cell folded into medians and ranges. */
export function throughput(http: HttpResults) {
  const keys = [...new Map(http.load.map((c) => [`${c.concurrency}:${c.adapters}`, c])).values()];
  return keys.map(({ concurrency, adapters }) => {
    const cs = http.load.filter((x) => x.concurrency === concurrency && x.adapters === adapters);
    const sum = (f: (c: RoundCell) => number) => cs.reduce((a, c) => a + f(c), 0);
    return {
      concurrency,
      adapters,
      rounds: cs.length,
      tokens_per_s: spread(cs.map((c) => c.tokens_per_s))!,
      completions_per_s: spread(cs.map((c) => c.completions_per_s))!,
      tokens_per_completion: round(sum((c) => c.tokens) / sum((c) => c.completions), 1),
      p50_ms: spread(cs.map((c) => c.p50_ms))!,
      p99_ms: spread(cs.map((c) => c.p99_ms))!,
      decode_steps_per_s: spread(cs.map((c) => c.decode_steps / c.seconds))!,
      rows_per_step: spread(cs.map((c) => c.mean_batch_rows))!,
      service_cores: spread(cs.map((c) => c.service_cores))!,
      generator_cores: spread(cs.map((c) => c.generator_cores))!,
      other_cores_max: Math.max(...cs.map((c) => c.load.other_cores)),
      failed: sum((c) => c.non_2xx + c.errors),
      peak_rss_mib: Math.max(...cs.map((c) => c.peak_rss_mib)),
    };
  });
}
export type ThroughputRow = ReturnType<typeof throughput>[number];

/** The Python generators' cells folded over rounds. */
export function reference(http: HttpResults) {
  const keys = [...new Map(http.reference.map((c) => [`${c.runtime}:${c.batch}:${c.adapters}`, c])).values()];
  return keys.map(({ runtime, batch, adapters }) => {
    const cs = http.reference.filter((x) => x.runtime === runtime && x.batch === batch && x.adapters === adapters);
    return { runtime, batch, adapters, rounds: cs.length, tokens_per_s: spread(cs.map((c) => c.tokens_per_s))!, completions_per_s: spread(cs.map((c) => c.completions_per_s))!,
      tokens_per_completion: round(cs.reduce((a, c) => a + c.tokens, 0) / cs.reduce((a, c) => a + c.completions, 0), 1) };
  });
}

export function tuningRatios(http: HttpResults, py: Py) {
  return (py.tuning.rows as Py[]).map((t) => {
    // Both sides in PyTorch, in the same window: the hypermodel's forward pass on each task's k examples,
    // then the tuning steps of the same tasks (bench/pybench/tuning.py compare()). Per-task lists, when the
    // Python side records them, give the spread; the medians alone give the ratio.
    const perTask: number[] = Array.isArray(t.seconds_each) && Array.isArray(t.hyper_torch_ms_each)
      ? (t.seconds_each as number[]).map((s, j) => (1000 * s) / (t.hyper_torch_ms_each as number[])[j]!)
      : [];
    const ratio = (1000 * t.seconds_per_task) / t.hyper_torch_ms_p50;
    const hyperHttp = http.creation_same_episodes[`${t.kind}:${t.k}`]?.p50_ms ?? NaN;
    return {
      kind: t.kind as string,
      k: t.k as number,
      hyper_http_p50_ms: hyperHttp,
      hyper_torch_ms: round(t.hyper_torch_ms_p50),
      hyper_accuracy: round(100 * t.hyper_accuracy, 1),
      hyper_exact_match: round(100 * t.hyper_exact_match, 1),
      frozen_accuracy: round(100 * t.frozen_accuracy, 1),
      tuning_reached: t.reached as boolean,
      tuning_steps: t.steps as number,
      tuning_accuracy: round(100 * t.accuracy, 1),
      tuning_exact_match: round(100 * t.exact_match, 1),
      tuning_seconds: round(t.seconds_per_task, 3),
      /** PyTorch tuning time over PyTorch creation time: the target's ratio. */
      ratio: round(ratio, 1),
      ratio_spread: perTask.length ? spread(perTask) : null,
      /** PyTorch tuning time over HTTP creation time (another runtime, minutes apart): for reference only. */
      ratio_vs_http: round((1000 * t.seconds_per_task) / hyperHttp, 1),
      ratio_is_lower_bound: !t.reached,
      degenerate: t.hyper_accuracy <= t.frozen_accuracy,
    };
  });
}
export type TuningRow = ReturnType<typeof tuningRatios>[number];

function verdict(name: string, target: string, threshold: number, ratio: Spread | null, measured: string, miss: { why: string; fix: string }): Target {
  const pass = ratio !== null && ratio.median >= threshold;
  const crosses = ratio !== null && ratio.min < threshold && ratio.max >= threshold;
  return { name, target, threshold, ratio, measured, pass, spread_crosses: crosses, ...(pass ? {} : miss) };
}

/**
 * Per-query cost flat in k, one-sided: the claim is that a hyper adapter's query does not get dearer with k,
 * so only growth counts. Growth = the fitted trend over the k range relative to the mean; it fails when that
 * exceeds the points' own scatter around the fit (largest residual over the mean) and a 10 % floor.
 */
function flatInK(py: Py): Target {
  const rows = py.per_query.rows as Py[];
  const first = rows[0];
  const last = rows.at(-1);
  const fit = py.per_query.fit_ms_per_k.hyper;
  const mean = rows.reduce((a, x) => a + x.hyper_ms, 0) / rows.length;
  const growth = (fit.slope * (last.k - first.k)) / mean;
  const scatter = Math.max(...rows.map((x) => Math.abs(x.hyper_ms - (fit.intercept + fit.slope * x.k)))) / mean;
  const tolerance = Math.max(0.1, scatter);
  const ctxGrowth = last.in_context_ms / first.in_context_ms;
  const pass = growth <= tolerance && ctxGrowth >= 1.5 && last.hyper_mflops === first.hyper_mflops;
  return {
    name: `per-query cost vs k (${first.k}..${last.k})`,
    target: 'hyper adapters: no growth beyond the scatter (one-sided); in-context: >= 1.5x',
    measured: `hyper ${round(first.hyper_ms)}→${round(last.hyper_ms)} ms, fitted growth ${round(100 * growth, 1)}% over the range against a tolerance of ${round(100 * tolerance, 1)}% (scatter ${round(100 * scatter, 1)}%), FLOPs constant; in-context ${round(first.in_context_ms)}→${round(last.in_context_ms)} ms (${round(ctxGrowth)}x, FLOPs ${round(last.in_context_mflops / first.in_context_mflops)}x)`,
    pass,
    ...(pass ? {} : { why: growth > tolerance ? 'the hyper query got dearer with k beyond the noise, although its FLOPs do not change: look for k-dependent work outside the graphs' : 'the in-context query did not grow: check the prompts include the demonstrations', fix: 'an idle machine and more repetitions, then a profile' }),
  };
}

export function targets(http: HttpResults, py: Py, tuning: TuningRow[]): Target[] {
  const list: Target[] = [];
  for (const kind of ['lora', 'prefix']) {
    const rows = tuning.filter((r) => r.kind === kind);
    if (!rows.length) continue;
    const bad = rows.filter((r) => r.ratio < 100 || r.degenerate);
    const worst = rows.reduce((a, b) => (b.ratio < a.ratio ? b : a));
    const why = bad.map((r) => {
      if (r.degenerate) return `k=${r.k}: the hyper adapters' token accuracy (${r.hyper_accuracy}%) is not above the frozen model's (${r.frozen_accuracy}%), so matching it is trivial`;
      if (!r.tuning_reached) return `k=${r.k}: tuning did not reach the hyper adapters within its ${r.tuning_steps}-step budget, so the ratio is only a lower bound`;
      return `k=${r.k}: the hyper adapters lift token accuracy only from ${r.frozen_accuracy}% (frozen) to ${r.hyper_accuracy}%, which tuning passes after ${r.tuning_steps} steps of about ${round((1000 * r.tuning_seconds) / Math.max(1, r.tuning_steps), 1)} ms`;
    });
    list.push({
      name: `adapter creation vs per-task ${kind} tuning to the same accuracy (both in PyTorch, same tasks)`,
      target: '>= 100x faster',
      threshold: 100,
      ratio: worst.ratio_spread ?? spread([worst.ratio]),
      measured: rows.map((r) => `k=${r.k}: ${r.ratio_is_lower_bound ? '>= ' : ''}${r.ratio_spread ? fmt(r.ratio_spread, 'x') : `${r.ratio}x`}`).join(', ') +
        (rows.some((r) => r.ratio_spread) ? ' (median and range over tasks)' : ' (medians; the per-task spread is not recorded)'),
      pass: bad.length === 0,
      spread_crosses: rows.some((r) => r.ratio_spread && r.ratio_spread.min < 100 && r.ratio_spread.max >= 100),
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
  list.push(flatInK(py));

  const B = http.batch_concurrency;
  const overhead = { why: 'per-request HTTP/JSON, scheduling and worker messages around the same graphs', fix: 'less work per request outside the graphs (bench/decode-step.ts profiles the step)' };
  for (const [runtime, threshold, label] of [['torch', 2, 'PyTorch eager'], ['ort', 1.2, "ONNX Runtime's Python loop"]] as const) {
    const byA = [1, B].map((a) => ({ a, s: perRound(http, (r) => cellAt(http, r, 1, a)?.tokens_per_s, (r) => refAt(http, r, runtime, 1, a)?.tokens_per_s) }));
    const worst = byA.reduce((x, y) => ((y.s?.median ?? -Infinity) < (x.s?.median ?? -Infinity) ? y : x));
    const t = verdict(`HTTP service vs ${label}, concurrency 1`, `>= ${threshold}x tokens/s`, threshold, worst.s,
      byA.map(({ a, s }) => `${a} adapter${a > 1 ? 's' : ''}: ${fmt(s, 'x')}`).join('; ') + ' (per-round ratios: median (min–max))', overhead);
    list.push(t);
  }

  const batching = perRound(http, (r) => cellAt(http, r, B, B)?.tokens_per_s, (r) => cellAt(http, r, 1, B)?.tokens_per_s);
  const cB = throughput(http).find((x) => x.concurrency === B && x.adapters === B);
  const c1 = throughput(http).find((x) => x.concurrency === 1 && x.adapters === B);
  list.push(verdict(`concurrency ${B} with ${B} distinct adapters vs concurrency 1 (same ${B} adapters, same requests)`, '>= 8x tokens/s', 8, batching,
    `${fmt(batching, 'x')} tokens/s (per-round ratios; ${fmt(cB?.tokens_per_s)} vs ${fmt(c1?.tokens_per_s)} tokens/s)`,
    { why: cB && c1 ? batchingWhy(c1, cB, http) : 'the cells are missing', fix: 'less work per row and step outside the decoder graph, the encoder batched across requests, more cores' }));

  const ofBound = perRound(http, (r) => cellAt(http, r, B, B)?.tokens_per_s, (r) => {
    const g = http.graphs.find((x) => x.round === r);
    const c = cellAt(http, r, B, B);
    return g && c ? graphBound(g, c.tokens_per_completion, http.workers) : undefined;
  });
  list.push(verdict(`concurrency ${B} x ${B} adapters vs the graphs' own bound (the workers running only the encoder and decoder graphs at batch ${B})`, '>= 75%', 0.75, ofBound,
    `${fmt(ofBound ? { ...ofBound, median: 100 * ofBound.median, min: 100 * ofBound.min, max: 100 * ofBound.max } : null, '%')} (per round, graphs timed in the same round)`,
    { why: 'the time around the graphs (feeds, cache, scheduling, messages, HTTP) is a large share of each step', fix: 'less per-step work around the graphs; re-exported graphs lower the bound itself' }));
  return list;
}

/** Why batching gained less than 8x: where the workers' time goes, from the service's own step counts. */
function batchingWhy(c1: ThroughputRow, cB: ThroughputRow, http: HttpResults): string {
  const g = spread(http.graphs.map((x) => x.decoder_ms));
  return `the row-steps decoded per second grew ${round((cB.decode_steps_per_s.median * cB.rows_per_step.median) / (c1.decode_steps_per_s.median * c1.rows_per_step.median), 1)}x ` +
    `(${cB.rows_per_step.median} rows per step over ${http.workers} workers; the decoder graph alone runs ${http.graphs[0]?.batch ?? '?'} rows in ${fmt(g, ' ms')}); ` +
    `cores busy: service ${cB.service_cores.median}, load generator ${cB.generator_cores.median}`;
}

/**
 * Section 5: how far from the hardware. One completion's FLOPs (the encoder over its prompt plus its decode
 * steps, at the batching cell's mean lengths) per generated token, against ONNX Runtime's MatMul peak on all
 * cores (the service runs one single-threaded worker per core).
 */
export function limit(http: HttpResults, py: Py) {
  const f = http.flops;
  const perToken = f.per_completion / Math.max(1, f.new_tokens);
  const peakAll = py.matmul.all_cores.peak_gflops * 1e9;
  const peakOne = py.matmul.peak_gflops * 1e9;
  const ideal = peakAll / perToken;
  const tp = throughput(http);
  const B = http.batch_concurrency;
  const pick = (c: number, a: number) => tp.find((x) => x.concurrency === c && x.adapters === a)?.tokens_per_s.median ?? NaN;
  const best = tp.reduce((a, b) => (b.tokens_per_s.median > a.tokens_per_s.median ? b : a));
  const ortB1 = reference(http).find((x) => x.runtime === 'ort' && x.batch === 1 && x.adapters === 1)?.tokens_per_s.median ?? NaN;
  const bounds = spread(http.graphs.map((g) => graphBound(g, cellAt(http, g.round, B, B)?.tokens_per_completion ?? f.new_tokens, http.workers)));
  const pct = (x: number) => round((100 * x) / ideal, 2);
  return {
    prompt_tokens: f.src,
    tokens_per_completion: f.new_tokens,
    encoder_flops_per_prompt: f.encoder,
    decoder_flops_per_completion: f.decoder,
    flops_per_token: Math.round(perToken),
    encoder_share_percent: round((100 * f.encoder) / f.per_completion, 1),
    matmul_peak_gflops_one_core: round(py.matmul.peak_gflops, 1),
    matmul_peak_gflops_all_cores: round(py.matmul.all_cores.peak_gflops, 1),
    cores: py.matmul.all_cores.threads as number,
    ideal_tokens_per_s: Math.round(ideal),
    ideal_tokens_per_s_cores_times_one: Math.round((py.matmul.all_cores.threads * peakOne) / perToken),
    graph_bound_tokens_per_s: bounds,
    measured: {
      http_c1: { tokens_per_s: pick(1, 1), of_ideal_percent: pct(pick(1, 1)) },
      [`http_c${B}_a${B}`]: { tokens_per_s: pick(B, B), of_ideal_percent: pct(pick(B, B)) },
      http_best: { concurrency: best.concurrency, adapters: best.adapters, tokens_per_s: best.tokens_per_s.median, of_ideal_percent: pct(best.tokens_per_s.median) },
      ort_python_b1: { tokens_per_s: round(ortB1, 1), of_ideal_percent: pct(ortB1) },
      graph_bound: { tokens_per_s: bounds?.median ?? NaN, of_ideal_percent: pct(bounds?.median ?? NaN) },
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
  const tp = throughput(http);
  for (const c of tp.filter((x) => x.concurrency > 1)) {
    const ratio = perRound(http, (r) => cellAt(http, r, c.concurrency, c.adapters)?.tokens_per_s, (r) => cellAt(http, r, 1, c.adapters)?.tokens_per_s);
    if (ratio) rows.push({ cost: 'throughput (HTTP), same requests', with: `concurrency 1 → ${c.concurrency}, ${c.adapters} adapter${c.adapters > 1 ? 's' : ''}`, measured: `${fmt(c.tokens_per_s)} tokens/s, ${fmt(ratio, 'x')} the concurrency-1 cell (per round)` });
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

export interface Check {
  name: string;
  wanted: string;
  measured: string;
  pass: boolean;
}

/** Whether the run measured what it claims to: the machine was quiet, outputs long, cells repeated and clean. */
export function checks(http: HttpResults, load: { limit_cores: number; before: LoadWindow; during: LoadWindow; cells_over: number }): Check[] {
  const tp = throughput(http);
  const tokens = http.load.reduce((a, c) => a + c.tokens, 0) / Math.max(1, http.load.reduce((a, c) => a + c.completions, 0));
  const failed = tp.reduce((a, c) => a + c.failed, 0);
  const worstCell = Math.max(...http.load.map((c) => c.load.other_cores));
  return [
    { name: 'other processes before the run', wanted: `<= ${load.limit_cores} core`, measured: `${load.before.other_cores} cores over ${load.before.seconds} s`, pass: load.before.other_cores <= load.limit_cores },
    { name: 'other processes during the run', wanted: `<= ${load.limit_cores} core on average and in every throughput cell`, measured: `${load.during.other_cores} cores on average over ${load.during.seconds} s; ${load.cells_over} of ${http.load.length} cells over (worst ${round(worstCell, 3)})`, pass: load.during.other_cores <= load.limit_cores && load.cells_over === 0 },
    { name: 'generated tokens per completion (throughput cells)', wanted: '>= 16 on average', measured: `${round(tokens, 1)} (cells: ${round(Math.min(...tp.map((c) => c.tokens_per_completion)), 1)}–${round(Math.max(...tp.map((c) => c.tokens_per_completion)), 1)})`, pass: tokens >= 16 },
    { name: 'interleaved rounds per cell', wanted: '>= 3', measured: String(http.rounds), pass: http.rounds >= 3 },
    { name: 'failed requests in the throughput cells', wanted: '0', measured: String(failed), pass: failed === 0 },
  ];
}
