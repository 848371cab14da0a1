/**
 * Overload by cost against the real server (a child process on models/default unless URL is given):
 *   burst: RATE requests per second for BURST_S seconds (open loop), each n=N, max_tokens=MAX_TOKENS;
 *   batch: BATCH_REQUESTS requests at once, each with BATCH_PROMPTS prompts and max_tokens=MAX_TOKENS.
 * Prompts are a digit and a repeated letter, decoded greedily: on models/default they run to max_tokens.
 * For each it prints the answers by status and code, the share of admitted requests (not refused with 429)
 * that finished with 200, refusal and success latencies, and the decoder work spent versus the tokens
 * delivered in 200 answers (work that a 503 threw away shows up as the difference).
 * Usage: node --import tsx scripts/overload.ts [burst|batch|both]
 * Environment: URL (use a running server), MODEL_DIR (default models/default), RATE=10, BURST_S=30, N=8,
 * MAX_TOKENS=512, BATCH_REQUESTS=24, BATCH_PROMPTS=8, REQUEST_DEADLINE_MS=60000 (given to the server it starts).
 */
import { removeDir, tempDir, DEFAULT_MODEL } from '../test/helper.js';
import { startServer, stopExpectingCleanExit } from '../test/server-process.js';

const num = (name: string, def: number): number => Number(process.env[name] ?? def);
const RATE = num('RATE', 10);
const BURST_S = num('BURST_S', 30);
const N = num('N', 8);
const MAX_TOKENS = num('MAX_TOKENS', 512);
const BATCH_REQUESTS = num('BATCH_REQUESTS', 24);
const BATCH_PROMPTS = num('BATCH_PROMPTS', 8);
const DEADLINE_MS = num('REQUEST_DEADLINE_MS', 60_000);

interface Answer {
  status: number;
  code: string;
  ms: number;
  tokens: number;
  choices: number;
}

async function post(url: string, body: unknown): Promise<Answer> {
  const t0 = performance.now();
  try {
    const res = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const json = (await res.json()) as { error?: { code: string }; usage?: { completion_tokens: number }; choices?: unknown[] };
    return { status: res.status, code: json.error?.code ?? 'ok', ms: performance.now() - t0, tokens: json.usage?.completion_tokens ?? 0, choices: json.choices?.length ?? 0 };
  } catch (e) {
    return { status: 0, code: (e as Error).message, ms: performance.now() - t0, tokens: 0, choices: 0 };
  }
}

async function metrics(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const get = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text)?.[1] ?? NaN);
  return {
    rowSteps: get('hypert5_decode_batch_rows_sum'),
    // Absent before admission by cost existed: NaN, reported as n/a.
    steps: get('hypert5_decode_batch_rows_count'),
    shed: get('hypert5_admission_shed_total'),
    rate: get('hypert5_admission_throughput_token_steps_per_second'),
    backlog: get('hypert5_admission_backlog_token_steps'),
    depth: get('hypert5_queue_depth'),
  };
}

/** Every 5 s until stopped: the throughput admission plans with, the work ahead and the jobs outstanding. */
function sampler(url: string) {
  const t0 = performance.now();
  const points: { s: number; rate: number; backlog: number; jobs: number }[] = [];
  const timer = setInterval(() => {
    void metrics(url).then((m) => points.push({ s: Math.round((performance.now() - t0) / 1000), rate: Math.round(m.rate!), backlog: Math.round(m.backlog!), jobs: m.depth! }), () => {});
  }, 5000);
  return () => {
    clearInterval(timer);
    return points;
  };
}

const pct = (xs: number[], p: number) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!);
};

function summary(name: string, answers: Answer[], before: Record<string, number>, after: Record<string, number>, wallS: number) {
  const byCode: Record<string, number> = {};
  const byStatus: Record<string, number> = {};
  for (const a of answers) {
    byStatus[a.status] = (byStatus[a.status] ?? 0) + 1;
    byCode[`${a.status} ${a.code}`] = (byCode[`${a.status} ${a.code}`] ?? 0) + 1;
  }
  const ok = answers.filter((a) => a.status === 200);
  const refused = answers.filter((a) => a.status === 429);
  const admitted = answers.length - refused.length;
  const rowSteps = after.rowSteps! - before.rowSteps!;
  const delivered = ok.reduce((s, a) => s + a.tokens, 0);
  return {
    scenario: name,
    requests: answers.length,
    wallS: Math.round(wallS),
    byStatus,
    byCode,
    admitted,
    admittedFinishedShare: admitted ? Number((ok.length / admitted).toFixed(3)) : null,
    shedBeforeCompute: Number.isNaN(after.shed!) ? 'n/a' : after.shed! - before.shed!,
    refusalMs: { p50: pct(refused.map((a) => a.ms), 50), p99: pct(refused.map((a) => a.ms), 99), max: pct(refused.map((a) => a.ms), 100) },
    okMs: { p50: pct(ok.map((a) => a.ms), 50), p99: pct(ok.map((a) => a.ms), 99), max: pct(ok.map((a) => a.ms), 100) },
    decoderRowSteps: rowSteps,
    tokensDelivered: delivered,
    tokensPerChoice: ok.length ? Math.round(delivered / ok.reduce((s, a) => s + a.choices, 0)) : null,
    // Each delivered token took one decoder row-step; the rest was spent on answers that never arrived.
    usefulWorkShare: rowSteps ? Number((delivered / rowSteps).toFixed(3)) : null,
  };
}

async function burst(url: string) {
  const before = await metrics(url);
  const stop = sampler(url);
  const t0 = performance.now();
  const pending: Promise<Answer>[] = [];
  const total = Math.round(RATE * BURST_S);
  for (let k = 0; k < total; k++) {
    const due = t0 + (k * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    pending.push(post(url, { model: base, prompt: looping(k), n: N, max_tokens: MAX_TOKENS, temperature: 0 }));
  }
  const answers = await Promise.all(pending);
  const timeline = stop();
  return { ...summary(`burst: ${total} requests over ${BURST_S} s, n=${N}, max_tokens=${MAX_TOKENS}`, answers, before, await metrics(url), (performance.now() - t0) / 1000), timeline };
}

async function batch(url: string) {
  const before = await metrics(url);
  const stop = sampler(url);
  const t0 = performance.now();
  const answers = await Promise.all(
    Array.from({ length: BATCH_REQUESTS }, (_, k) =>
      post(url, {
        model: base,
        prompt: Array.from({ length: BATCH_PROMPTS }, (_, p) => looping(k * BATCH_PROMPTS + p)),
        max_tokens: MAX_TOKENS,
        temperature: 0,
      }),
    ),
  );
  const timeline = stop();
  return { ...summary(`batch: ${BATCH_REQUESTS} requests x ${BATCH_PROMPTS} prompts at once, max_tokens=${MAX_TOKENS}`, answers, before, await metrics(url), (performance.now() - t0) / 1000), timeline };
}

let base = '';
// Greedy decoding of a repeated letter loops until max_tokens on models/default: every request costs its full budget.
const looping = (k: number) => `${k % 10} ${'a'.repeat(24)}`;

async function main(): Promise<void> {
  const which = process.argv[2] ?? 'both';
  let url = process.env.URL ?? '';
  let stop = async () => {};
  if (!url) {
    const dir = tempDir('hypert5-overload-');
    const server = await startServer({
      MODEL_DIR: process.env.MODEL_DIR ?? DEFAULT_MODEL,
      ADAPTER_STORE_DIR: dir,
      LOG_LEVEL: 'error',
      MAX_TOKENS: String(Math.max(512, MAX_TOKENS)),
      MAX_PROMPTS: String(Math.max(32, BATCH_PROMPTS)),
      REQUEST_DEADLINE_MS: String(DEADLINE_MS),
    });
    url = server.url;
    stop = async () => {
      await stopExpectingCleanExit(server);
      removeDir(dir);
    };
  }
  try {
    base = ((await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string }[] }).data[0]!.id;
    const results = [];
    if (which === 'burst' || which === 'both') results.push(await burst(url));
    if (which === 'both') await new Promise((r) => setTimeout(r, 2000));
    if (which === 'batch' || which === 'both') results.push(await batch(url));
    console.log(JSON.stringify(results, null, 2));
  } finally {
    await stop();
  }
}

await main();
