/**
 * npm run soak: adapters churning through the LRU for SOAK_S seconds (default 600) against the real server.
 * Workers create new adapters (fresh examples each time), complete with them and with older ones (which the
 * small ADAPTER_CACHE_BYTES has evicted, so they come back from disk), and delete some. RSS and heap are
 * sampled every SAMPLE_S; passes when, after a warm-up fifth, the heap grows less than LEAK_MB and RSS less than
 * RSS_LEAK_MB between the first and the last fifth of what is left, every answer was 2xx/404 (a deleted adapter), and nothing answered was lost.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { removeDir, tempDir } from '../test/helper.js';
import { startServer, stopExpectingCleanExit } from '../test/server-process.js';

const num = (name: string, def: number): number => Number(process.env[name] ?? def);
const SOAK_S = num('SOAK_S', 600);
const SAMPLE_S = num('SAMPLE_S', Math.max(1, Math.min(10, SOAK_S / 20)));
const LEAK_MB = num('LEAK_MB', 32);
// RSS also holds allocator arenas and ONNX Runtime buffers that settle slower than the JS heap.
const RSS_LEAK_MB = num('RSS_LEAK_MB', 64);
const WORKERS = num('SOAK_WORKERS', 4);

async function metrics(url: string): Promise<{ rss: number; heap: number; evictions: number; cached: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const get = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, 'm').exec(text)?.[1] ?? NaN);
  return {
    rss: get('hypert5_process_resident_memory_bytes') / 2 ** 20,
    heap: get('hypert5_nodejs_heap_size_used_bytes') / 2 ** 20,
    evictions: get('hypert5_adapter_cache_evictions_total'),
    cached: get('hypert5_adapter_cache_bytes'),
  };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

async function main(): Promise<void> {
  const dir = tempDir('hypert5-soak-');
  const env: Record<string, string> = { ADAPTER_STORE_DIR: dir, LOG_LEVEL: 'warn', ADAPTER_CACHE_BYTES: process.env.ADAPTER_CACHE_BYTES ?? '262144' };
  if (process.env.MODEL_DIR) env.MODEL_DIR = process.env.MODEL_DIR;
  const server = await startServer(env);
  const url = server.url;
  const post = (path: string, body: unknown) => fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const live: string[] = [];
  const deleted = new Set<string>();
  const statuses: Record<string, number> = {};
  const count = (s: number) => (statuses[s] = (statuses[s] ?? 0) + 1);
  let created = 0;
  let stop = false;
  try {
    const worker = async (w: number) => {
      for (let i = 0; !stop; i++) {
        const kind = i % 2 ? 'lora' : 'prefix';
        const a = await post('/v1/adapters', { examples: [{ input: `soak ${w}.${i} ${Date.now()}`, output: `${i}` }, { input: `w${w}`, output: `${i % 7}` }], kind });
        count(a.status);
        if (a.status !== 201) continue;
        const { id } = (await a.json()) as { id: string };
        live.push(id);
        created++;
        const old = live[Math.floor(Math.random() * live.length)]!;
        for (const model of [id, old]) {
          const r = await post('/v1/completions', { model, prompt: `prompt ${i}`, max_tokens: 8, temperature: 0 });
          count(deleted.has(model) && r.status === 404 ? 404 : r.status);
          await r.arrayBuffer();
        }
        if (i % 5 === 4) {
          const victim = live.splice(Math.floor(Math.random() * live.length), 1)[0]!;
          deleted.add(victim);
          count((await fetch(`${url}/v1/adapters/${victim}`, { method: 'DELETE' })).status);
        }
      }
    };
    const samples: { t: number; rss: number; heap: number }[] = [];
    const started = Date.now();
    const workers = Array.from({ length: WORKERS }, (_, w) => worker(w));
    while (Date.now() - started < SOAK_S * 1000) {
      await sleep(SAMPLE_S * 1000);
      const m = await metrics(url);
      samples.push({ t: Math.round((Date.now() - started) / 1000), rss: Math.round(m.rss), heap: Math.round(m.heap) });
    }
    stop = true;
    await Promise.all(workers);
    const end = await metrics(url);

    // Nothing answered is lost: every live adapter still answers, from whichever tier holds it.
    let lost = 0;
    for (const id of live) if ((await fetch(`${url}/v1/adapters/${id}`)).status !== 200) lost++;
    const warm = samples.slice(Math.floor(samples.length / 5));
    const fifth = Math.max(1, Math.floor(warm.length / 5));
    const first = { rss: mean(warm.slice(0, fifth).map((s) => s.rss)), heap: mean(warm.slice(0, fifth).map((s) => s.heap)) };
    const last = { rss: mean(warm.slice(-fifth).map((s) => s.rss)), heap: mean(warm.slice(-fifth).map((s) => s.heap)) };
    const problems: string[] = [];
    if (last.rss - first.rss > RSS_LEAK_MB) problems.push(`RSS grew ${(last.rss - first.rss).toFixed(0)} MiB`);
    if (last.heap - first.heap > LEAK_MB) problems.push(`heap grew ${(last.heap - first.heap).toFixed(0)} MiB`);
    const bad = Object.keys(statuses).filter((s) => !['200', '201', '404'].includes(s));
    if (bad.length) problems.push(`unexpected statuses ${bad.join(', ')}`);
    if (lost) problems.push(`${lost} adapters lost`);
    if (end.evictions === 0) problems.push('the LRU never evicted: raise the churn or lower ADAPTER_CACHE_BYTES');
    console.log(
      JSON.stringify(
        {
          seconds: SOAK_S,
          adaptersCreated: created,
          adaptersLive: live.length,
          adaptersDeleted: deleted.size,
          lruEvictions: end.evictions,
          statuses,
          memoryMiB: { firstFifth: first, lastFifth: last },
          samples,
          ok: problems.length === 0,
          problems,
        },
        null,
        2,
      ),
    );
    process.exitCode = problems.length ? 1 : 0;
  } finally {
    stop = true;
    await stopExpectingCleanExit(server);
    removeDir(dir);
  }
}

await main();
