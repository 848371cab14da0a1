/** The inference worker thread's entry module (worker-pool.ts starts it; worker.ts is the worker). */
import { parentPort, workerData } from 'node:worker_threads';
import type { FromWorker, WorkerInit } from './protocol.js';
import { startWorker } from './worker.js';

const port = parentPort!;
startWorker(port, workerData as WorkerInit).catch((e: unknown) => port.postMessage({ type: 'fatal', message: (e as Error).message } satisfies FromWorker));
