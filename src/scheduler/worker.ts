/**
 * Inference worker entry: owns the ONNX sessions (onnxruntime-node's run blocks its thread, so it must
 * not be the event loop's) and interleaves hypermodel batches with continuous-batching decode steps.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { setImmediate as yieldNow } from 'node:timers/promises';
import { loadBundle, type Bundle } from '../inference/bundle.js';
import { Decoder } from '../inference/decoder.js';
import { encode } from '../inference/encoder.js';
import { generateAdapters } from '../inference/hypermodel.js';
import type { AdapterKindName, GraphName } from '../inference/manifest.js';
import { GraphSession } from '../inference/session.js';
import { loadTokenizer } from '../inference/tokenizer.js';
import { HtError } from '../errors/http-error.js';
import { GenerationLoop } from '../generation/loop.js';
import { stepWork } from './cost.js';
import type { FromWorker, ToWorker, WorkerInit } from './protocol.js';

const port = parentPort!;
const init = workerData as WorkerInit;
const post = (m: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

interface HyperJob {
  jobId: number;
  kind: AdapterKindName;
  ids: number[];
}

async function start(): Promise<void> {
  // The main thread verified hashes and fingerprint before starting us: don't read the weights twice.
  const bundle: Bundle = await loadBundle(init.modelDir, { verifyHashes: false });
  const m = bundle.manifest;
  const sessions: Partial<Record<GraphName, GraphSession>> = {};
  const graphs: GraphName[] = ['encoder', 'decoder', ...bundle.kinds.map((k) => `hyper_${k}` as const)];
  for (const g of graphs) sessions[g] = await GraphSession.open(bundle, g, init.intraOpThreads);
  const tok = await loadTokenizer(bundle.dir, m);
  const decoder = new Decoder(sessions.decoder!, bundle.table.graphs.decoder!, m);

  const loop = new GenerationLoop(
    {
      encode: (items) => encode(sessions.encoder!, bundle.table.graphs.encoder!, m, items),
      step: (rows) => {
        // Reported here rather than through the loop's step hook, which knows only the row count.
        post({ type: 'step', rows: rows.length, work: rows.reduce((sum, r) => sum + stepWork(r.pastKey.length), 0) });
        return decoder.step(rows);
      },
    },
    {
      eos: m.special_ids.eos,
      decoderStart: m.special_ids.decoder_start,
      decode: (ids) => tok.decode(ids),
      events: {
        delta: (jobId, choice, text) => post({ type: 'delta', jobId, choice, text }),
        done: (jobId, choices) => post({ type: 'done', jobId, choices }),
        failed: (jobId, error) =>
          post({ type: 'failed', jobId, message: error.message, ...(error instanceof HtError && error.status < 500 ? { code: error.code } : {}) }),
      },
    },
    init.maxBatchRows,
  );

  let hyperQueue: HyperJob[] = [];
  const runHyper = async (): Promise<void> => {
    const kind = hyperQueue[0]!.kind;
    const batch = hyperQueue.filter((j) => j.kind === kind).slice(0, init.maxBatchRows);
    hyperQueue = hyperQueue.filter((j) => !batch.includes(j));
    post({ type: 'hyper-batch', rows: batch.length });
    try {
      const out = await generateAdapters(sessions[`hyper_${kind}`]!, bundle.table, m, kind, batch.map((j) => j.ids));
      batch.forEach((j, i) => {
        const tensors = out[i]!;
        post({ type: 'hyper-done', jobId: j.jobId, tensors }, Object.values(tensors).map((t) => t.buffer as ArrayBuffer));
      });
    } catch (e) {
      for (const j of batch) post({ type: 'failed', jobId: j.jobId, message: (e as Error).message });
    }
  };

  let running = false;
  let stopping = false;
  const kick = async (): Promise<void> => {
    if (running) return;
    running = true;
    try {
      while (!stopping && (hyperQueue.length || !loop.idle)) {
        if (hyperQueue.length) await runHyper();
        await loop.tick();
        // Let queued messages in: new requests join at the next step, cancellations take effect.
        await yieldNow();
      }
    } finally {
      running = false;
      if (stopping) process.exit(0);
    }
  };

  port.on('message', (msg: ToWorker) => {
    if (msg.type === 'stop') {
      stopping = true;
      if (!running) process.exit(0);
      return;
    }
    if (msg.type === 'generate') loop.submit(msg.job);
    else if (msg.type === 'hyper') hyperQueue.push({ jobId: msg.jobId, kind: msg.kind, ids: msg.ids });
    else if (msg.type === 'fault') {
      if (msg.fault.kind === 'crash') process.exit(70);
      else sessions[msg.fault.graph]?.failNext(msg.fault.times);
      return;
    } else if (msg.type === 'cancel') {
      loop.cancel(msg.jobId);
      hyperQueue = hyperQueue.filter((j) => j.jobId !== msg.jobId);
      return;
    }
    void kick();
  });
  post({ type: 'ready' });
}

start().catch((e: unknown) => post({ type: 'fatal', message: (e as Error).message }));
