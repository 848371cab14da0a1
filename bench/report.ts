/** The printed report: markdown tables from results.json (bench/README.md's results section is this output). */
import { fmt, spread, type Check, type HttpResults, type Target, type ThroughputRow } from './analyze.js';
import { round } from './stats.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- plain JSON from results.json */
type R = any;

const table = (head: string[], rows: (string | number)[][]): string =>
  [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');

function loadBanner(res: R): string {
  const l = res.meta.load;
  if (!l) return '**FLAGGED: other load was not measured (no /proc), so nothing here is known to be this service alone.**';
  const line = `Other processes: ${l.before.other_cores} cores before the run, ${l.during.other_cores} on average during it (busiest ${l.busiest_interval.other_cores} over ${l.busiest_interval.seconds} s; ${l.cells_over} of ${res.http.load.length} throughput cells over ${l.limit_cores}); interrupts ${l.during.irq_cores}, steal ${l.during.steal_cores}. Load average before: ${res.meta.loadavg_before}.`;
  return res.meta.flagged
    ? `**FLAGGED: other processes used more than ${l.limit_cores} core during this run${l.allowed_by_env ? ' (BENCH_ALLOW_LOAD)' : ''}: the numbers include their interference.** ${line}`
    : line;
}

export function markdown(res: R): string {
  const http: HttpResults = res.http;
  const py = res.python;
  const out: string[] = [];
  const m = res.meta;
  out.push(`Model \`${m.model_name}\` (${m.model_dir}, fingerprint ${m.fingerprint})${m.quick ? ', QUICK mode (smoke test, not a measurement)' : ''}; ${m.cpu}, ${m.threads} thread(s) for ONNX Runtime and PyTorch, ${m.workers} inference worker(s) in the service; ` +
    `onnxruntime ${py.ort_version}, torch ${py.torch_version}; PyTorch model: ${py.torch_model}; ${m.date.slice(0, 10)}, ${m.total_seconds} s in all.`);
  out.push(`\n${loadBanner(res)}`);
  out.push('\n**Run checks** (whether this run measured what it claims)\n');
  out.push(table(['check', 'wanted', 'measured', 'verdict'], res.checks.map((c: Check) => [c.name, c.wanted, c.measured, c.pass ? 'ok' : 'FAILED'])));

  out.push('\n**1. Adapter creation** (`POST /v1/adapters`, fresh examples, sequential; p50 / p99 ms)\n');
  const ks = [...new Set(http.creation.map((r) => r.k))];
  const lens = [...new Set(http.creation.map((r) => r.example_chars))];
  const kinds = [...new Set(http.creation.map((r) => r.kind))];
  out.push(table(['kind', 'chars per input/output', ...ks.map((k) => `k=${k}`)], kinds.flatMap((kind) => lens.map((len) => [kind, len,
    ...ks.map((k) => { const r = http.creation.find((x) => x.kind === kind && x.k === k && x.example_chars === len)!; return `${r.p50_ms} / ${r.p99_ms}`; })]))));
  out.push(`\nPer-task gradient tuning of the same frozen model on the same k examples (${py.tuning.episodes} held-out tasks, Adam lr ${Object.entries(py.tuning.lr as Record<string, number>).map(([kind, lr]) => `${lr} for ${kind}`).join(', ')}, random PEFT init, only the optimiser steps timed), until the mean token accuracy on the tasks' held-out queries (teacher forced; exact match in brackets) reaches the hyper adapters' (checkpoints ${py.tuning.checkpoints.join(', ')} steps). ` +
    'The ratio divides the tuning time by the hypermodel\'s PyTorch time on the same tasks, measured just before it; the HTTP creation time is shown beside it for reference only (another runtime, minutes apart):\n');
  out.push(table(['kind', 'k', 'hyper adapter: accuracy; PyTorch ms (HTTP p50)', 'frozen model', 'tuning: steps, accuracy', 'tuning s per task', 'ratio (vs HTTP)'],
    res.summary.tuning.map((t: R) => [t.kind, t.k, `${t.hyper_accuracy}% (${t.hyper_exact_match}%); ${t.hyper_torch_ms} ms (${t.hyper_http_p50_ms} ms)`, `${t.frozen_accuracy}%`,
      `${t.tuning_steps}${t.tuning_reached ? '' : ' (budget spent, not reached)'}, ${t.tuning_accuracy}% (${t.tuning_exact_match}%)`, t.tuning_seconds,
      `${t.ratio_is_lower_bound ? '>= ' : ''}${t.ratio_spread ? fmt(t.ratio_spread, 'x') : `${t.ratio}x`} (${t.ratio_vs_http}x)`])));

  const pq = py.per_query;
  out.push(`\n**2. Per-query cost vs k** (${pq.kind} hyper adapter vs demonstrations in the prompt; ONNX Runtime, batch 1, ${pq.output_tokens} output tokens, median of ${pq.episodes} tasks)\n`);
  out.push(table(['k', 'prompt tokens (in-context)', 'hyper ms', 'in-context ms', 'hyper MFLOPs', 'in-context MFLOPs', 'in-context / hyper (time)'],
    pq.rows.map((r: R) => [r.k, r.in_context_src_tokens, round(r.hyper_ms), round(r.in_context_ms), round(r.hyper_mflops, 1), round(r.in_context_mflops, 1), `${round(r.in_context_ms / r.hyper_ms, 1)}x`])));
  out.push(`\nSlope per extra example: hyper ${round(pq.fit_ms_per_k.hyper.slope, 3)} ms, in-context ${round(pq.fit_ms_per_k.in_context.slope, 3)} ms (${round(pq.fit_mflops_per_k.in_context.slope, 1)} MFLOPs).`);
  const be = res.summary.break_even;
  if (be && be.queries !== null) out.push(`Break-even at k=${be.k}: creating the adapter (${be.creation_ms} ms over HTTP) costs what ${be.queries} in-context queries cost extra (${be.extra_ms_per_query} ms each).`);
  if (be && be.queries === null) out.push(`No break-even at k=${be.k}: the in-context query was not slower in this run.`);

  const families = [...new Set(m.load_items.map((x: R) => x.family))].join(', ');
  out.push(`\n**3. Serving throughput** (HTTP, autocannon closed loop, greedy, max_tokens ${m.max_tokens}; ${m.load_items.length} held-out tasks with long answers (${families}); ${m.rounds} interleaved rounds of ${m.cell_seconds}-second cells: median (min–max) over rounds)\n`);
  out.push(table(['concurrency', 'adapters', 'tokens/s', 'completions/s', 'tokens per completion', 'p50 ms', 'p99 ms', 'failed', 'decode steps/s', 'rows per step', 'cores busy: service / load generator / others (max)'],
    res.summary.throughput.map((c: ThroughputRow) => [c.concurrency, c.adapters, fmt(c.tokens_per_s), fmt(c.completions_per_s), c.tokens_per_completion, fmt(c.p50_ms), fmt(c.p99_ms), c.failed,
      round(c.decode_steps_per_s.median), c.rows_per_step.median, `${c.service_cores.median} / ${c.generator_cores.median} / ${c.other_cores_max}`])));
  const label: Record<string, string> = { ort: 'ONNX Runtime, Python loop', torch: 'PyTorch eager' };
  out.push('\nThe same requests without HTTP, in the same rounds (each cell next to the HTTP cell it is compared with):\n');
  out.push(table(['generator', 'batch', 'adapters', 'tokens/s', 'completions/s', 'tokens per completion'],
    res.summary.reference.map((x: R) => [label[x.runtime] ?? x.runtime, x.batch, x.adapters, fmt(x.tokens_per_s), fmt(x.completions_per_s), x.tokens_per_completion])));
  const g = http.graphs;
  if (g.length) out.push(`\nThe graphs alone (ONNX Runtime from Python, ${g[0]!.batch} rows, ${g[0]!.src_tokens} prompt tokens, ${g[0]!.past} past tokens, median of ${g[0]!.reps} runs per round): decoder step ${fmt(spread(g.map((x) => x.decoder_ms)), ' ms')}, encoder ${fmt(spread(g.map((x) => x.encoder_ms)), ' ms')}.`);

  const mem = http.memory;
  out.push('\n**4. Memory** (service process RSS)\n');
  out.push(table(['idle (ready)', 'peak under load', `after ${mem.adapters} more adapters`, 'bytes per cached adapter (LRU accounting / RSS delta / float32 tensors)'],
    [[`${http.idle_rss_mib} MiB`, `${Math.max(...http.load.map((c) => c.peak_rss_mib))} MiB`, `${mem.rss_after_mib} MiB`,
      `${mem.lru_bytes_per_adapter} / ${mem.rss_bytes_per_adapter} / ${py.flops.adapter_bytes[mem.kind]} (${mem.kind})`]]));

  const l = res.summary.limit;
  out.push('\n**5. The limit** (FLOPs per generated token, the encoder included, against ONNX Runtime\'s MatMul throughput on all cores)\n');
  out.push(`\nA completion of the batching cell's mean size (${l.prompt_tokens} prompt tokens, ${l.tokens_per_completion} generated): encoder ${round(l.encoder_flops_per_prompt / 1e6, 2)} MFLOPs per prompt (${l.encoder_share_percent}% of the completion), decoding ${round(l.decoder_flops_per_completion / 1e6, 2)} MFLOPs. ` +
    `MatMul peak ${l.matmul_peak_gflops_one_core} GFLOP/s on one core, ${l.matmul_peak_gflops_all_cores} on all ${l.cores} (ideal at ${l.cores} x one core: ${l.ideal_tokens_per_s_cores_times_one} tokens/s).\n`);
  const ms = l.measured;
  const bKey = `http_c${http.batch_concurrency}_a${http.batch_concurrency}`;
  out.push(table(['FLOPs per token', 'ideal tokens/s (all cores)', 'graphs\' own bound', `HTTP c=1`, `HTTP c=${http.batch_concurrency} x ${http.batch_concurrency} adapters`, 'best HTTP cell', 'ONNX Runtime Python loop, b1'],
    [[`${round(l.flops_per_token / 1e6, 3)} M`, l.ideal_tokens_per_s, `${Math.round(ms.graph_bound.tokens_per_s)} (${ms.graph_bound.of_ideal_percent}%)`, `${ms.http_c1.tokens_per_s} (${ms.http_c1.of_ideal_percent}%)`,
      `${round(ms[bKey].tokens_per_s, 1)} (${ms[bKey].of_ideal_percent}%)`, `c=${ms.http_best.concurrency} x ${ms.http_best.adapters}: ${ms.http_best.tokens_per_s} (${ms.http_best.of_ideal_percent}%)`, `${ms.ort_python_b1.tokens_per_s} (${ms.ort_python_b1.of_ideal_percent}%)`]]));
  out.push('\ntokens/s (% of the ideal). The graphs\' own bound: every worker running only the encoder and decoder graphs at the batching concurrency, timed in the same rounds.');

  out.push('\n**6. Growth** (how each cost grows)\n');
  out.push(table(['cost', 'with', 'measured'], res.summary.growth.map((x: R) => [x.cost, x.with, x.measured])));

  out.push(`\n**Targets**${m.quick ? ' (quick mode: a smoke test on whatever bundle it was given, not a measurement)' : ''}${m.flagged ? ' (FLAGGED run: see the checks)' : ''}\n`);
  out.push(table(['target', 'wanted', 'measured', 'verdict'], res.targets.map((t: Target) => [t.name, t.target, t.measured, `${t.pass ? 'met' : 'MISSED'}${t.spread_crosses ? ' (the spread crosses the target)' : ''}`])));
  const missed = res.targets.filter((t: Target) => !t.pass);
  out.push('\n**Verdicts**: ' + (missed.length ? `${missed.length} of ${res.targets.length} targets missed.` : `all ${res.targets.length} targets met.`));
  for (const t of missed) out.push(`- ${t.name}: ${t.why}. What would fix it: ${t.fix}.`);
  return out.join('\n');
}
