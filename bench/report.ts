/** The printed report: markdown tables (bench/README.md's results are this output). */
import type { HttpResults, Target } from './analyze.js';
import { round } from './stats.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- plain JSON from results.json */
type R = any;

const table = (head: string[], rows: (string | number)[][]): string =>
  [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');

export function markdown(res: R): string {
  const http: HttpResults = res.http;
  const py = res.python;
  const out: string[] = [];
  const m = res.meta;
  out.push(`Model \`${m.model_name}\` (${m.model_dir})${m.quick ? ', QUICK mode (smoke test, not a measurement)' : ''}; ${m.cpu}, ${m.threads} thread(s) for ONNX Runtime and PyTorch, ${m.workers} inference worker(s) in the service; ` +
    `onnxruntime ${py.ort_version}, torch ${py.torch_version}; PyTorch model: ${py.torch_model}; ${m.total_seconds} s in all.`);

  out.push('\n**1. Adapter creation** (`POST /v1/adapters`, fresh examples, sequential; p50 / p99 ms)\n');
  const ks = [...new Set(http.creation.map((r) => r.k))];
  const lens = [...new Set(http.creation.map((r) => r.example_chars))];
  const kinds = [...new Set(http.creation.map((r) => r.kind))];
  out.push(table(['kind', 'chars per input/output', ...ks.map((k) => `k=${k}`)], kinds.flatMap((kind) => lens.map((len) => [kind, len,
    ...ks.map((k) => { const r = http.creation.find((x) => x.kind === kind && x.k === k && x.example_chars === len)!; return `${r.p50_ms} / ${r.p99_ms}`; })]))));
  out.push(`\nPer-task gradient tuning of the same frozen model on the same k examples (${py.tuning.episodes} held-out tasks, Adam lr ${Object.entries(py.tuning.lr as Record<string, number>).map(([kind, lr]) => `${lr} for ${kind}`).join(', ')}, random PEFT init, only the optimiser steps timed), until the mean token accuracy on the tasks' held-out queries (teacher forced; exact match in brackets) reaches the hyper adapters' (checkpoints ${py.tuning.checkpoints.join(', ')} steps):\n`);
  out.push(table(['kind', 'k', 'hyper adapter: accuracy; HTTP p50 (PyTorch)', 'frozen model', 'tuning: steps, accuracy', 'tuning s per task', 'ratio'],
    res.summary.tuning.map((t: R) => [t.kind, t.k, `${t.hyper_accuracy}% (${t.hyper_exact_match}%); ${t.hyper_http_p50_ms} ms (${t.hyper_torch_ms} ms)`, `${t.frozen_accuracy}%`,
      `${t.tuning_steps}${t.tuning_reached ? '' : ' (budget spent, not reached)'}, ${t.tuning_accuracy}% (${t.tuning_exact_match}%)`, t.tuning_seconds, `${t.ratio_is_lower_bound ? '>= ' : ''}${t.ratio}x`])));

  const pq = py.per_query;
  out.push(`\n**2. Per-query cost vs k** (${pq.kind} hyper adapter vs demonstrations in the prompt; ONNX Runtime, batch 1, ${pq.output_tokens} output tokens, median of ${pq.episodes} tasks)\n`);
  out.push(table(['k', 'prompt tokens (in-context)', 'hyper ms', 'in-context ms', 'hyper MFLOPs', 'in-context MFLOPs', 'in-context / hyper (time)'],
    pq.rows.map((r: R) => [r.k, r.in_context_src_tokens, round(r.hyper_ms), round(r.in_context_ms), round(r.hyper_mflops, 1), round(r.in_context_mflops, 1), `${round(r.in_context_ms / r.hyper_ms, 1)}x`])));
  out.push(`\nSlope per extra example: hyper ${round(pq.fit_ms_per_k.hyper.slope, 3)} ms, in-context ${round(pq.fit_ms_per_k.in_context.slope, 3)} ms (${round(pq.fit_mflops_per_k.in_context.slope, 1)} MFLOPs).`);
  const be = res.summary.break_even;
  if (be && be.queries !== null) out.push(`Break-even at k=${be.k}: creating the adapter (${be.creation_ms} ms over HTTP) costs what ${be.queries} in-context queries cost extra (${be.extra_ms_per_query} ms each).`);
  if (be && be.queries === null) out.push(`No break-even at k=${be.k}: the in-context query was not slower in this run.`);

  out.push(`\n**3. Serving throughput** (HTTP, autocannon closed loop, greedy, max_tokens ${res.meta.max_tokens}, held-out task prompts)\n`);
  out.push(table(['concurrency', 'adapters', 'completions/s', 'tokens/s', 'p50 ms', 'p99 ms', 'non-2xx', 'decode steps/s', 'rows per step', 'cores busy: service / load generator'],
    http.load.map((c) => [c.concurrency, c.adapters, c.completions_per_s, c.tokens_per_s, c.p50_ms, c.p99_ms, c.non_2xx + c.errors, round(c.decode_steps / c.seconds), c.mean_batch_rows, `${c.service_cores} / ${c.generator_cores}`])));
  const ref = [...py.eager.torch.map((x: R) => ['PyTorch eager', x.batch, x.adapters, round(x.completions_per_s, 1), round(x.tokens_per_s, 1)]),
    ...py.eager.ort_python.map((x: R) => ['ONNX Runtime, Python loop', x.batch, x.adapters, round(x.completions_per_s, 1), round(x.tokens_per_s, 1)])];
  out.push('\nThe same requests without HTTP, same run (batch b = b requests at a time, the HTTP cells with concurrency b):\n');
  out.push(table(['generator', 'batch', 'adapters', 'completions/s', 'tokens/s'], ref));

  const mem = http.memory;
  out.push('\n**4. Memory** (service process RSS)\n');
  out.push(table(['idle (ready)', 'peak under load', `after ${mem.adapters} more adapters`, 'bytes per cached adapter (LRU accounting / RSS delta / float32 tensors)'],
    [[`${http.idle_rss_mib} MiB`, `${Math.max(...http.load.map((c) => c.peak_rss_mib))} MiB`, `${mem.rss_after_mib} MiB`,
      `${mem.lru_bytes_per_adapter} / ${mem.rss_bytes_per_adapter} / ${py.flops.adapter_bytes[mem.kind]} (${mem.kind})`]]));

  const l = res.summary.limit;
  out.push('\n**5. The limit** (FLOPs per generated token / ONNX Runtime matmul throughput on this CPU)\n');
  out.push(`\n${res.meta.threads} thread(s); ORT MatMul peak with all ${py.matmul.all_cores.threads} cores: ${l.matmul_peak_gflops_all_cores} GFLOP/s.\n`);
  out.push(table(['FLOPs per token (batch 1, 32-token input)', 'ORT MatMul peak', 'ORT MatMul at decode shape (b1 / b16)', 'ideal tokens/s at peak (at b1 shape)', 'measured, % of ideal at peak: HTTP c=1 / best HTTP / ORT loop b1'],
    [[`${round(l.flops_per_token / 1e6, 2)} M`, `${l.matmul_peak_gflops} GFLOP/s`, `${l.matmul_decode_shape_gflops} / ${l.matmul_decode_b16_gflops} GFLOP/s`, `${l.ideal_tokens_per_s} (${l.ideal_tokens_per_s_at_decode_shape})`,
      `${l.measured.http_c1.of_ideal_percent}% / ${l.measured.http_best.of_ideal_percent}% / ${l.measured.ort_python_b1.of_ideal_percent}%`]]));

  out.push('\n**6. Growth** (how each cost grows)\n');
  out.push(table(['cost', 'with', 'measured'], res.summary.growth.map((g: R) => [g.cost, g.with, g.measured])));

  out.push(`\n**Targets**${res.meta.quick ? ' (quick mode: a smoke test on whatever bundle it was given, not a measurement)' : ''}\n`);
  out.push(table(['target', 'wanted', 'measured', 'verdict'], res.targets.map((t: Target) => [t.name, t.target, t.measured, t.pass ? 'met' : 'MISSED'])));
  const missed = res.targets.filter((t: Target) => !t.pass);
  out.push('\n**Closing note**: ' + (missed.length ? `${missed.length} of ${res.targets.length} targets missed.` : `all ${res.targets.length} targets met.`));
  for (const t of missed) out.push(`- ${t.name}: ${t.why}. What would fix it: ${t.fix}.`);
  return out.join('\n');
}
