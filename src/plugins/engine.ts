/**
 * The inference engine resource: the verified bundle, its tokenizer, and the worker threads that hold
 * the ONNX sessions. Bundle problems stop start-up (before listen); sessions load in the background
 * and /readyz answers HT_ERR_NOT_READY until they are up.
 */
import fp from 'fastify-plugin';
import type { Config } from '../config/index.js';
import { loadBundle, type Bundle } from '../inference/bundle.js';
import { loadTokenizer, type TextTokenizer } from '../inference/tokenizer.js';
import { Scheduler } from '../engine/scheduler.js';
import { spawnThread, WorkerPool } from '../engine/worker-pool.js';

interface Engine {
  bundle: Bundle;
  tokenizer: TextTokenizer;
  scheduler: Scheduler;
}

declare module 'fastify' {
  interface FastifyInstance {
    engine: Engine;
  }
}

interface EngineOptions {
  config: Config;
  /** The inference worker's entry module (default: src/engine/worker-entry); tests give one that injects faults. */
  workerEntry?: URL;
}

export default fp<EngineOptions>(
  async (app, { config, workerEntry }) => {
    const bundle = await loadBundle(config.MODEL_DIR);
    const tokenizer = await loadTokenizer(bundle.dir, bundle.manifest);
    const pool = new WorkerPool(
      { modelDir: bundle.dir, intraOpThreads: config.INTRA_OP_THREADS, maxBatchRows: config.MAX_BATCH_ROWS },
      config.WORKERS,
      {
        step: (rows) => app.metrics.decodeBatchRows.observe(rows),
        hyperBatch: (rows) => app.metrics.hyperBatchRows.observe(rows),
        refineStopped: (steps) => {
          app.metrics.refineStopped.inc();
          app.metrics.refineStoppedSteps.inc(steps);
        },
        batchFailed: (message) => app.log.error({ reason: message }, 'inference batch failed; its requests got HT_ERR_INFERENCE_FAILED'),
        worker: (index, event, detail) => {
          if (event === 'replaced') app.log.warn({ worker: index }, 'inference worker replaced');
          else app.log.error({ worker: index, reason: detail }, event === 'died' ? 'inference worker died; replacing it' : 'inference worker restart failed; retrying');
        },
      },
      { retryAfterS: config.RETRY_AFTER_S, spawn: workerEntry && ((init) => spawnThread(workerEntry, init)) },
    );
    const m = app.metrics;
    const scheduler = new Scheduler(
      pool,
      {
        queueSize: config.QUEUE_SIZE,
        retryAfterS: config.RETRY_AFTER_S,
        deadlineMs: config.REQUEST_DEADLINE_MS,
        priorTokensPerS: config.ADMISSION_PRIOR_TOKENS_PER_S,
        maxBatchRows: config.MAX_BATCH_ROWS,
      },
      {
        depth: (d) => m.queueDepth.set(d),
        load: (backlog, rate) => {
          m.admissionBacklog.set(backlog);
          m.admissionRate.set(rate);
        },
        refused: () => m.admissionRefused.inc(),
        shed: () => m.admissionShed.inc(),
      },
    );
    pool.ready.then(
      () => app.log.info({ model: bundle.manifest.name, fingerprint: bundle.manifest.fingerprint }, 'models loaded'),
      (e: Error) => app.log.error({ err: e }, 'models failed to load'),
    );
    app.decorate('engine', { bundle, tokenizer, scheduler });
    app.addHook('onClose', async () => {
      await scheduler.close();
    });
  },
  { name: 'engine', dependencies: ['metrics'] },
);
