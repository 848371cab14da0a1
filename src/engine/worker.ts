/**
 * The inference worker: owns the ONNX sessions (onnxruntime-node's run blocks its thread, so it must not be
 * the event loop's) and interleaves hypermodel batches with continuous-batching decode steps. worker-entry.ts
 * starts it in a worker thread; `openSession` is the seam where tests wrap a session to make it fail.
 */
import type { MessagePort } from 'node:worker_threads';
import { setImmediate as yieldNow } from 'node:timers/promises';
import { loadBundle, type Bundle } from '../inference/bundle.js';
import { Decoder, decoderGraphs } from '../inference/decoder.js';
import { encode } from '../inference/encoder.js';
import { generateAdapters } from '../inference/hypermodel.js';
import { kindDecoderName, type GraphName } from '../inference/manifest.js';
import { GraphSession } from '../inference/session.js';
import { loadTokenizer } from '../inference/tokenizer.js';
import { HtError, isClientFault } from '../errors/domain-error.js';
import { stepWork } from './cost.js';
import { DecodeBatcher } from './decode-batcher.js';
import { incrementalDecode } from './detokenizer.js';
import { HyperBatcher } from './hyper-batcher.js';
import { RefineRunner } from './refine-runner.js';
import { TrainStep } from '../inference/train-step.js';
import type { FromWorker, ToWorker, WorkerInit } from './protocol.js';
import { StepReport } from './step-report.js';

export type OpenSession = (bundle: Bundle, graph: GraphName, intraOpThreads: number) => Promise<GraphSession>;

export async function startWorker(port: MessagePort, init: WorkerInit, openSession: OpenSession = GraphSession.open): Promise<void> {
  const post = (m: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);
  // The main thread verified hashes and fingerprint before starting us: don't read the weights twice.
  const bundle = await loadBundle(init.modelDir, { verifyHashes: false });
  const m = bundle.manifest;
  const sessions: Partial<Record<GraphName, GraphSession>> = {};
  // A kind decoder is optional: the decoder runs a batch of one kind on it when the bundle has it.
  const kindDecoders = bundle.kinds.map(kindDecoderName).filter((g) => bundle.table.graphs[g]);
  const graphs: GraphName[] = ['encoder', 'decoder', ...kindDecoders, ...bundle.kinds.map((k) => `hyper_${k}` as const)];
  for (const g of graphs) sessions[g] = await openSession(bundle, g, init.intraOpThreads);
  const tok = await loadTokenizer(bundle.dir, m);
  const decoder = new Decoder(decoderGraphs(bundle.table.graphs, sessions), m);

  const steps = new StepReport(post);
  const failed = (jobId: number, error: Error) => {
    steps.flush();
    post({ type: 'failed', jobId, message: error.message, ...(error instanceof HtError && isClientFault(error.code) ? { code: error.code } : {}) });
  };

  const decode = new DecodeBatcher(
    {
      encode: (items) => encode(sessions.encoder!, bundle.table.graphs.encoder!, m, items),
      step: (rows) => {
        // Reported here rather than through the batcher's step hook, which knows only the row count.
        steps.add(rows.length, rows.reduce((sum, r) => sum + stepWork(r.past.length), 0));
        return decoder.step(rows);
      },
    },
    {
      eos: m.special_ids.eos,
      decoderStart: m.special_ids.decoder_start,
      decode: incrementalDecode(tok, m.tokenizer),
      events: {
        delta: (jobId, choice, text) => post({ type: 'delta', jobId, choice, text }),
        done: (jobId, choices) => {
          steps.flush();
          post({ type: 'done', jobId, choices });
        },
        failed,
      },
    },
    init.maxBatchRows,
  );

  const hyper = new HyperBatcher(
    (kind, contexts) => generateAdapters(sessions[`hyper_${kind}`]!, bundle.table, m, kind, contexts),
    init.maxBatchRows,
    {
      batch: (rows) => post({ type: 'hyper-batch', rows }),
      done: (jobId, tensors) => post({ type: 'hyper-done', jobId, tensors }, Object.values(tensors).map((t) => t.buffer as ArrayBuffer)),
      failed,
    },
  );

  const refine = new RefineRunner((kind) => TrainStep.open(bundle, kind), {
    done: (jobId, outcome) => post({ type: 'refine-done', jobId, outcome }, Object.values(outcome.tensors).map((t) => t.buffer as ArrayBuffer)),
    stopped: (jobId, n) => post({ type: 'refine-stopped', jobId, steps: n }),
    failed,
  });

  let running = false;
  let stopping = false;
  const kick = async (): Promise<void> => {
    if (running) return;
    running = true;
    try {
      // Let the rest of this tick's messages in first: the jobs of one request (and of requests sent together)
      // are then admitted, and encoded, as one batch.
      await yieldNow();
      while (!stopping && !(hyper.idle && decode.idle && refine.idle)) {
        await hyper.tick();
        await decode.tick();
        // One Adam step per pass: a long refinement never holds the decode batch for more than a step.
        await refine.tick();
        // Let queued messages in: new requests join at the next step, cancellations take effect.
        await yieldNow();
      }
    } finally {
      running = false;
      steps.flush();
      if (stopping) process.exit(0);
    }
  };

  port.on('message', (msg: ToWorker) => {
    switch (msg.type) {
      case 'stop':
        stopping = true;
        if (!running) process.exit(0);
        return;
      case 'cancel':
        decode.cancel(msg.jobId);
        hyper.cancel(msg.jobId);
        refine.cancel(msg.jobId);
        return;
      case 'generate':
        for (const job of msg.jobs) decode.submit(job);
        break;
      case 'hyper':
        hyper.submit(msg.job);
        break;
      case 'refine':
        refine.submit(msg.job);
        break;
    }
    void kick();
  });
  post({ type: 'ready' });
}
