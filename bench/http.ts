/** The HTTP sections of the bench, against a running service: adapter creation, throughput, memory. */
import autocannon from 'autocannon';
import { mark, type LoadWindow } from './load-check.js';
import { cpuSeconds, MiB, percentile, round, rssBytes, rssSampler } from './stats.js';

export type Example = [string, string];
export interface LoadItem {
  examples: Example[];
  prompts: string[];
}

/** Request n when `adapters` adapters share the load: item n mod adapters, one of that task's own prompts. */
function requestFor(items: LoadItem[], n: number, adapters: number): { item: number; prompt: string } {
  const item = n % adapters;
  const prompts = items[item]!.prompts;
  return { item, prompt: prompts[Math.floor(n / adapters) % prompts.length]! };
}

async function post(url: string, path: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** Creates one adapter; returns its id and the round-trip milliseconds. Throws on anything but 200/201. */
export async function createAdapter(url: string, examples: Example[], kind?: string): Promise<{ id: string; ms: number; cached: boolean }> {
  const t = performance.now();
  const { status, json } = await post(url, '/v1/adapters', { examples: examples.map(([input, output]) => ({ input, output })), ...(kind ? { kind } : {}) });
  const ms = performance.now() - t;
  if (status !== 200 && status !== 201) throw new Error(`POST /v1/adapters: ${status} ${JSON.stringify(json)}`);
  return { id: json.id as string, ms, cached: json.cached === true };
}

/** Section 1: sequential creation latency of fresh adapters (no cache hits), per k and example length. */
export async function creationLatency(url: string, cells: { k: number; length: number; examples: Example[][] }[], kinds: string[]) {
  const rows = [];
  for (const kind of kinds) {
    for (const cell of cells) {
      const ms: number[] = [];
      let cached = 0;
      for (const ex of cell.examples) {
        const r = await createAdapter(url, ex, kind);
        ms.push(r.ms);
        cached += r.cached ? 1 : 0;
      }
      rows.push({ kind, k: cell.k, example_chars: cell.length, n: ms.length, p50_ms: round(percentile(ms, 50)), p99_ms: round(percentile(ms, 99)), cache_hits: cached });
    }
  }
  return rows;
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

export interface LoadCell {
  concurrency: number;
  adapters: number;
  seconds: number;
  completions: number;
  tokens: number;
  /** Generated tokens per completion: below about 16, a cell measures request overhead more than decoding. */
  tokens_per_completion: number;
  /** Prompt tokens per completion (usage.prompt_tokens, eos included). */
  prompt_tokens_per_completion: number;
  completions_per_s: number;
  tokens_per_s: number;
  p50_ms: number;
  p99_ms: number;
  non_2xx: number;
  errors: number;
  peak_rss_mib: number;
  /** CPU cores busy on average: the service process, and this process (the load generator). */
  service_cores: number;
  generator_cores: number;
  /** Decoder steps the service ran (its hypert5_decode_batch_rows histogram): count and mean rows per step. */
  decode_steps: number;
  mean_batch_rows: number;
  /** CPU used by other processes on the machine during the cell (bench/load-check.ts). */
  load: LoadWindow;
}

/**
 * Section 3: closed-loop load at `concurrency` connections for `seconds`, greedy, through 1 adapter or as many
 * distinct adapters as clients (`requestFor`: each adapter gets its own task's prompts).
 */
export async function load(url: string, pid: number, ids: string[], items: LoadItem[], maxTokens: number, concurrency: number, adapters: number, seconds: number): Promise<LoadCell> {
  let i = 0;
  let tokens = 0;
  let completions = 0;
  let promptTokens = 0;
  const lat: number[] = [];
  const rss = rssSampler(pid);
  const steps0 = await metric(url, 'hypert5_decode_batch_rows_count');
  const rows0 = await metric(url, 'hypert5_decode_batch_rows_sum');
  const cellLoad = mark();
  const cpu0 = cpuSeconds(pid);
  const own0 = process.cpuUsage();
  const wall0 = performance.now();
  const inst = autocannon({
    url,
    connections: concurrency,
    duration: seconds,
    timeout: 120,
    requests: [
      {
        method: 'POST',
        path: '/v1/completions',
        headers: { 'content-type': 'application/json' },
        setupRequest: (req) => {
          const { item, prompt } = requestFor(items, i++, adapters);
          return { ...req, body: JSON.stringify({ model: ids[item], prompt, max_tokens: maxTokens, temperature: 0 }) };
        },
        onResponse: (status, body) => {
          if (status !== 200) return;
          const { usage } = JSON.parse(body) as { usage: { completion_tokens: number; prompt_tokens: number } };
          completions += 1;
          tokens += usage.completion_tokens;
          promptTokens += usage.prompt_tokens;
        },
      },
    ],
  });
  inst.on('response', (_c: unknown, status: number, _b: number, ms: number) => {
    if (status === 200) lat.push(ms);
  });
  const r = await inst;
  const wall = (performance.now() - wall0) / 1000;
  const own = process.cpuUsage(own0);
  const others = cellLoad.stop();
  const serviceCores = (cpuSeconds(pid) - cpu0) / wall;
  const steps = (await metric(url, 'hypert5_decode_batch_rows_count')) - steps0;
  const rowSteps = (await metric(url, 'hypert5_decode_batch_rows_sum')) - rows0;
  const secs = r.duration || seconds;
  return {
    concurrency,
    adapters,
    seconds: round(secs),
    completions,
    tokens,
    tokens_per_completion: round(tokens / completions, 1),
    prompt_tokens_per_completion: round(promptTokens / completions, 1),
    completions_per_s: round(completions / secs),
    tokens_per_s: round(tokens / secs),
    p50_ms: round(percentile(lat, 50)),
    p99_ms: round(percentile(lat, 99)),
    non_2xx: r.non2xx,
    errors: r.errors + r.timeouts,
    peak_rss_mib: MiB(rss.stop()),
    service_cores: round(serviceCores),
    generator_cores: round((own.user + own.system) / 1e6 / wall),
    decode_steps: steps,
    mean_batch_rows: round(rowSteps / steps, 1),
    load: others,
  };
}

/** Section 4 (cached adapters): create `n` fresh adapters, then RSS and LRU bytes per adapter. */
export async function adapterMemory(url: string, pid: number, n: number, kind: string) {
  const rss0 = rssBytes(pid);
  const lru0 = await metric(url, 'hypert5_adapter_cache_bytes');
  for (let j = 0; j < n; j++) await createAdapter(url, [[`memory ${j} probe`, `${j}`]], kind);
  await new Promise((r) => setTimeout(r, 500));
  const rss1 = rssBytes(pid);
  const lru1 = await metric(url, 'hypert5_adapter_cache_bytes');
  return {
    kind,
    adapters: n,
    rss_before_mib: MiB(rss0),
    rss_after_mib: MiB(rss1),
    rss_bytes_per_adapter: Math.round((rss1 - rss0) / n),
    lru_bytes_per_adapter: Math.round((lru1 - lru0) / n),
  };
}
