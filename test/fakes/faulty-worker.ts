/**
 * A test-only inference worker entry: the real worker (src/engine/worker.ts) with each graph session's run
 * wrapped so that an armed fault (faults.ts) fails it as an ONNX Runtime error would, or ends the thread.
 */
import { BroadcastChannel, parentPort, workerData } from 'node:worker_threads';
import type { WorkerInit } from '../../src/engine/protocol.js';
import { startWorker } from '../../src/engine/worker.js';
import type { GraphName } from '../../src/inference/manifest.js';
import { GraphSession } from '../../src/inference/session.js';
import { FAULT_CHANNEL, type FaultMessage } from './faults.js';

/** Runs still to fail, per graph. */
const failing = new Map<GraphName, number>();

const channel = new BroadcastChannel(FAULT_CHANNEL);
channel.onmessage = (ev) => {
  const m = (ev as { data: FaultMessage }).data;
  if (m.type !== 'arm') return;
  // A thread's exit code, as an uncaught native failure would leave it.
  if (m.fault.kind === 'crash') process.exit(70);
  failing.set(m.fault.graph, (failing.get(m.fault.graph) ?? 0) + m.fault.times);
  channel.postMessage({ type: 'armed', id: m.id } satisfies FaultMessage);
};

const port = parentPort!;
startWorker(port, workerData as WorkerInit, async (bundle, graph, threads) => {
  const session = await GraphSession.open(bundle, graph, threads);
  const run = session.run.bind(session);
  session.run = async (feeds, fetches) => {
    const left = failing.get(graph) ?? 0;
    if (left === 0) return run(feeds, fetches);
    failing.set(graph, left - 1);
    throw new Error(`${graph}: run failed (injected fault)`);
  };
  return session;
}).catch((e: unknown) => port.postMessage({ type: 'fatal', message: (e as Error).message }));
