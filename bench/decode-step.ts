/**
 * The decode step against the decoder graph's own time, and a 16-prompt request end to end, for this tree's
 * engine and a baseline tree's, interleaved in one run (a shared, loaded machine drifts between runs).
 *
 *   git archive <baseline commit> src models/default | tar -x -C /tmp/ht-base && ln -s "$PWD/node_modules" /tmp/ht-base/
 *   BENCH_BASELINE_SRC=/tmp/ht-base/src BENCH_BASELINE_MODEL_DIR=/tmp/ht-base/models/default \
 *     node --import tsx bench/decode-step.ts
 *
 * Each side loads its model with its own tree (a baseline of another bundle format reads its own bundle: give
 * its commit's models/default as BENCH_BASELINE_MODEL_DIR; the same model in both, or the comparison means
 * nothing). Environment: BENCH_MODEL_DIR (models/default), BENCH_REPS (15 decoder runs, 8 requests per side),
 * BENCH_STEPS (48 decoder steps per run), BENCH_ONLY (`new`, `new-decoder` or `base`: one side only, for a CPU
 * profile), BENCH_PART (`step`, `request` or both), BENCH_DECODER (`kind`: this tree's side `new` decodes as the
 * service does, on the kind decoder `decoder_lora` when the bundle has it; `decoder`: its side `new-decoder` runs
 * every step on `decoder`; `both`: the two sides interleaved, to compare the graphs on one tree).
 *
 * Decoder: B rows (16 distinct LoRA adapters from the hypermodel, 40-token prompts) decode BENCH_STEPS steps,
 * greedy, past end-of-sequence; per run, the mean step time (`Decoder.step` plus the caller's cache
 * bookkeeping) and the mean time inside the graph's session.run. Request: one worker thread per tree, one
 * request of 16 prompts with one adapter, from sending the jobs to the last result (`new-decoder` has none: a
 * worker runs the graphs the service runs).
 */
import path from 'node:path';
import { loadBundle } from '../src/inference/bundle.js';
import { encode } from '../src/inference/encoder.js';
import type { RowAdapter } from '../src/inference/feeds.js';
import { generateAdapters } from '../src/inference/hypermodel.js';
import type { HostTensor } from '../src/inference/onnx.js';
import { GraphSession } from '../src/inference/session.js';
import { encoderIds, loadTokenizer, serializeExamples } from '../src/inference/tokenizer.js';
import { percentile, round } from './stats.js';

const root = path.resolve(import.meta.dirname, '..');
const MODEL_DIR = path.resolve(process.env.BENCH_MODEL_DIR ?? path.join(root, 'models/default'));
const BASE = process.env.BENCH_BASELINE_SRC;
const BASE_MODEL_DIR = path.resolve(process.env.BENCH_BASELINE_MODEL_DIR ?? MODEL_DIR);
const ONLY = process.env.BENCH_ONLY;
const DECODER = process.env.BENCH_DECODER ?? 'kind';
const PART = process.env.BENCH_PART;
const STEPS = Number(process.env.BENCH_STEPS ?? 48);
const REPS = Number(process.env.BENCH_REPS ?? 15);

type Run = (feeds: Record<string, HostTensor>, fetches?: readonly string[]) => Promise<Record<string, HostTensor>>;
/** What the bench needs of either tree's Decoder (their row shapes differ: chunk lists vs a cache reference). */
interface AnyDecoder {
  step(rows: never[]): Promise<{ logits: Float32Array; vocab: number; newKey?: Float32Array[]; newValue?: Float32Array[] }>;
}
/**
 * Either tree's Decoder: an older tree's takes one session, `(session, table, manifest)`; a newer one's takes every
 * decoder graph, `({ decoder: { session, table }, decoder_lora?: ... }, manifest)`. Their arity tells them apart.
 */
type DecoderCtor = (new (session: { run: Run }, table: unknown, manifest: unknown) => AnyDecoder) &
  (new (graphs: Record<string, { session: { run: Run }; table: unknown }>, manifest: unknown) => AnyDecoder);

/** `new-decoder`: this tree with every step on `decoder`, kind decoders left out. */
type Side = 'base' | 'new' | 'new-decoder';
const OWN_SIDES: Record<string, Side[]> = { kind: ['new'], decoder: ['new-decoder'], both: ['new', 'new-decoder'] };
if (!OWN_SIDES[DECODER]) throw new Error(`BENCH_DECODER=${DECODER}: expected kind, decoder or both`);
const sides = (): Side[] => (ONLY ? [ONLY as Side] : [...(BASE ? ['base' as const] : []), ...OWN_SIDES[DECODER]!]);
const treeOf = (side: Side): string => (side === 'base' ? path.resolve(BASE!) : path.join(root, 'src'));
const modelOf = (side: Side): string => (side === 'base' ? BASE_MODEL_DIR : MODEL_DIR);

const DECODER_GRAPHS = ['decoder', 'decoder_lora', 'decoder_prefix'] as const;

/** What the bench needs of a bundle, loaded by either tree's own code. */
interface AnyBundle {
  manifest: { name: string };
  table: { graphs: Partial<Record<(typeof DECODER_GRAPHS)[number], unknown>> };
}
interface SessionLike {
  run: Run;
}

/**
 * A side's bundle and decoder sessions, through its own tree's loader (the bundle formats may differ): `decoder`,
 * and the kind decoders its tree's table has unless the side runs on `decoder` alone.
 */
async function openSide(side: Side): Promise<{ bundle: AnyBundle; sessions: Map<string, SessionLike> }> {
  const tree = treeOf(side);
  const { loadBundle: load } = (await import(path.join(tree, 'inference/bundle.ts'))) as {
    loadBundle: (dir: string, o: object) => Promise<AnyBundle>;
  };
  const { GraphSession: Session } = (await import(path.join(tree, 'inference/session.ts'))) as {
    GraphSession: { open(b: AnyBundle, g: string, threads: number): Promise<SessionLike> };
  };
  const bundle = await load(modelOf(side), { verifyHashes: false });
  const graphs = DECODER_GRAPHS.filter((g) => bundle.table.graphs[g] && (g === 'decoder' || side !== 'new-decoder'));
  const sessions = new Map<string, SessionLike>();
  for (const g of graphs) sessions.set(g, await Session.open(bundle, g, 1));
  return { bundle, sessions };
}

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

const summary = (xs: number[]) => ({ p50: round(percentile(xs, 50), 3), p25: round(percentile(xs, 25), 3), p75: round(percentile(xs, 75), 3), n: xs.length });

async function main(): Promise<void> {
  const bundle = await loadBundle(MODEL_DIR, { verifyHashes: false });
  const m = bundle.manifest;
  const tok = await loadTokenizer(bundle.dir, m);
  const open = (g: 'encoder' | 'decoder' | 'hyper_lora') => GraphSession.open(bundle, g, 1);
  const [encSession, hyper] = await Promise.all([open('encoder'), open('hyper_lora')]);

  // 16 distinct adapters (copy-like tasks, so that the request's outputs run to 30-40 tokens) and 16 prompts.
  const tasks = Array.from({ length: 16 }, (_, i) => [
    { input: `hello world foo ${i}`, output: `hello world foo ${i} hello world foo ${i}` },
    { input: 'abc def', output: 'abc def abc def' },
  ]);
  const tensors = await generateAdapters(hyper, bundle.table, m, 'lora', tasks.map((t) => encoderIds(tok, m, serializeExamples(m, t))));
  const adapters: RowAdapter[] = tensors.map((t) => ({ kind: 'lora', tensors: t }));
  const prompts = Array.from({ length: 16 }, (_, i) => `Katherine Johnson and Dorothy Vaughan ${i}`);
  const promptIds = prompts.map((p) => encoderIds(tok, m, p));
  const encs = await encode(encSession, bundle.table.graphs.encoder!, m, promptIds.map((ids, i) => ({ ids, adapter: adapters[i]! })));
  console.log(`model ${m.name} (${MODEL_DIR}); prompts of ${promptIds[0]!.length} tokens; ${STEPS} steps per run, ${REPS} runs per cell`);

  let graphMs = 0;
  /** Runs per graph in the current generation, to show which graph a side's steps ran on. */
  const graphRuns = new Map<string, number>();
  const decoders = new Map<Side, { dec: AnyDecoder }>();
  for (const side of sides()) {
    const own = await openSide(side);
    const timed = (g: string, session: SessionLike) => ({ run: (async (feeds, fetches) => {
      const t0 = performance.now();
      const out = await session.run(feeds, fetches);
      graphMs += performance.now() - t0;
      graphRuns.set(g, (graphRuns.get(g) ?? 0) + 1);
      return out;
    }) as Run });
    const { Decoder } = (await import(path.join(treeOf(side), 'inference/decoder.ts'))) as { Decoder: DecoderCtor };
    const { graphs: tables } = own.bundle.table;
    const dec = Decoder.length === 3
      ? new Decoder(timed('decoder', own.sessions.get('decoder')!), tables.decoder, own.bundle.manifest)
      : new Decoder(Object.fromEntries([...own.sessions].map(([g, session]) => [g, { session: timed(g, session), table: tables[g as (typeof DECODER_GRAPHS)[number]] }])), own.bundle.manifest);
    decoders.set(side, { dec });
  }

  /** One generation of STEPS steps at batch B: mean step and graph ms. */
  async function generation(side: Side, B: number): Promise<{ step: number; graph: number }> {
    const { dec } = decoders.get(side)!;
    const rows = Array.from({ length: B }, (_, b) => ({
      inputId: m.special_ids.decoder_start,
      pastKey: [] as Float32Array[],
      pastValue: [] as Float32Array[],
      past: { slot: -1, length: 0 },
      enc: encs[b]!,
      adapter: adapters[b]!,
    }));
    let stepMs = 0;
    graphMs = 0;
    graphRuns.clear();
    for (let s = 0; s < STEPS; s++) {
      const t0 = performance.now();
      const res = await dec.step(rows as never[]);
      rows.forEach((r, b) => {
        // An older engine's rows carry their cache as chunk lists (it returns them); a newer one's point into
        // the decoder's own cache.
        if (res.newKey) {
          r.pastKey.push(res.newKey[b]!);
          r.pastValue.push(res.newValue![b]!);
        } else r.past = { slot: b, length: r.past.length + 1 };
      });
      stepMs += performance.now() - t0;
      rows.forEach((r, b) => (r.inputId = argmax(res.logits.subarray(b * res.vocab, (b + 1) * res.vocab))));
    }
    return { step: stepMs / STEPS, graph: graphMs / STEPS };
  }

  const results: Record<string, unknown> = {};
  if (PART !== 'request') {
    for (const B of [1, 16]) {
      const cells = new Map<string, { step: number[]; graph: number[]; ratio: number[] }>();
      for (const side of sides()) cells.set(side, { step: [], graph: [], ratio: [] });
      for (const side of sides()) {
        await generation(side, B); // warm-up
        console.log(`batch ${B}, ${side}: steps ran on ${JSON.stringify(Object.fromEntries(graphRuns))}`);
      }
      for (let rep = 0; rep < REPS; rep++) {
        // Alternate which side goes first, so that drift in the machine's load falls on both.
        const order = rep % 2 ? sides().reverse() : sides();
        for (const side of order) {
          const r = await generation(side, B);
          const c = cells.get(side)!;
          c.step.push(r.step);
          c.graph.push(r.graph);
          c.ratio.push(r.step / r.graph);
        }
      }
      for (const [side, c] of cells) {
        const row = { step_ms: summary(c.step), graph_ms: summary(c.graph), step_over_graph: summary(c.ratio) };
        results[`decode B=${B} ${side}`] = row;
        console.log(`decode step, batch ${B}, ${side}:`, JSON.stringify(row));
      }
    }
  }

  if (PART !== 'step') results.request = await requestBench(adapters[0]!.tensors, promptIds);
  console.log(JSON.stringify({ results }, null, 1));
}

interface PoolLike {
  ready: Promise<void>;
  listen(e: object): void;
  send(task: object): void;
  close(): Promise<void>;
}

/** A 16-prompt request through one worker thread of each tree, interleaved. */
async function requestBench(adapter: Record<string, Float32Array>, promptIds: number[][]): Promise<unknown> {
  const reps = Math.max(4, Math.round(REPS / 2));
  const pools = new Map<string, { pool: PoolLike; firstRows: number[] }>();
  const requestSides = sides().filter((s) => s !== 'new-decoder');
  for (const side of requestSides) {
    const mod = (await import(path.join(treeOf(side), 'engine/worker-pool.ts'))) as {
      WorkerPool: new (init: object, count: number, observer: object) => PoolLike;
    };
    const rows: number[] = [];
    const pool = new mod.WorkerPool({ modelDir: modelOf(side), intraOpThreads: 1, maxBatchRows: 16 }, 1, {
      step: (r: number) => rows.push(r),
      hyperBatch() {},
    });
    pool.listen({ room() {}, step() {}, settle: () => true });
    await pool.ready;
    pools.set(side, { pool, firstRows: rows });
  }
  let jobId = 1;
  const one = async (side: string): Promise<{ ms: number; tokens: number; firstStepRows: number }> => {
    const { pool, firstRows } = pools.get(side)!;
    firstRows.length = 0;
    let tokens = 0;
    const t0 = performance.now();
    await Promise.all(
      promptIds.map(
        (ids) =>
          new Promise<void>((resolve, reject) => {
            const job = { jobId: jobId++, promptIds: ids, adapter: { kind: 'lora', tensors: adapter }, maxNewTokens: 64, stop: [], strategy: { type: 'greedy' }, n: 1, stream: false };
            const handlers = {
              delta() {},
              done: (choices: { tokenIds: number[] }[]) => {
                tokens += choices[0]!.tokenIds.length;
                resolve();
              },
              failed: reject,
            };
            pool.send({ type: 'generate', job, handlers, ticket: { cost: 0, rows: 1, deadlineAt: Infinity, group: {}, startedAt: null }, worker: null, over: false });
          }),
      ),
    );
    const ms = performance.now() - t0;
    return { ms, tokens: tokens / promptIds.length, firstStepRows: firstRows[0] ?? 0 };
  };
  for (const side of requestSides) await one(side); // warm-up
  const cells = new Map<string, { ms: number[]; tokens: number; firstStepRows: number }>();
  for (let rep = 0; rep < reps; rep++) {
    const order = rep % 2 ? [...requestSides].reverse() : requestSides;
    for (const side of order) {
      // The step metrics may arrive after the last result: give them a moment.
      const r = await one(side);
      await new Promise((res) => setTimeout(res, 20));
      const c = cells.get(side) ?? { ms: [], tokens: r.tokens, firstStepRows: r.firstStepRows };
      c.ms.push(r.ms);
      cells.set(side, c);
    }
  }
  const out: Record<string, unknown> = {};
  for (const [side, c] of cells) {
    out[side] = { request_ms: summary(c.ms), mean_output_tokens: round(c.tokens, 1), first_step_rows: c.firstStepRows };
    console.log(`16-prompt request, ${side}:`, JSON.stringify(out[side]));
  }
  for (const { pool } of pools.values()) await pool.close();
  return out;
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
