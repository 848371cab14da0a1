/**
 * Fault injection for the reliability tests, from outside the product: an app built with FAULTY_WORKER runs
 * the real inference worker with its graph sessions wrapped (faulty-worker.ts), and `injectFault` arms them
 * over a BroadcastChannel, which reaches every worker thread of the process without a handle on it.
 */
import { BroadcastChannel } from 'node:worker_threads';
import type { GraphName } from '../../src/inference/manifest.js';

/** The next `times` runs of a graph fail as an ONNX Runtime error would, or the worker thread dies. */
export type Fault = { kind: 'run-error'; graph: GraphName; times: number } | { kind: 'crash' };

export type FaultMessage = { type: 'arm'; id: number; fault: Fault } | { type: 'armed'; id: number };

export const FAULT_CHANNEL = 'hypert5-test-faults';

/** The worker entry that wraps the real worker (pass as makeApp's `workerEntry`). */
export const FAULTY_WORKER = new URL('./faulty-worker.ts', import.meta.url);

let nextId = 1;

/**
 * Arms `fault` in the workers of this process; resolves once one of them has it in place, so the next request
 * meets it. A crash is not acknowledged: the worker is gone.
 */
export async function injectFault(fault: Fault): Promise<void> {
  const channel = new BroadcastChannel(FAULT_CHANNEL);
  try {
    const id = nextId++;
    const armed = new Promise<void>((resolve) => {
      channel.onmessage = (ev) => {
        const m = (ev as { data: FaultMessage }).data;
        if (m.type === 'armed' && m.id === id) resolve();
      };
    });
    channel.postMessage({ type: 'arm', id, fault } satisfies FaultMessage);
    if (fault.kind !== 'crash') await armed;
  } finally {
    channel.close();
  }
}
