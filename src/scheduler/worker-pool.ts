/** Main-thread side of the inference workers: starts them, routes jobs and their events. */
import { Worker } from 'node:worker_threads';
import type { AdapterTensors } from '../inference/feeds.js';
import type { AdapterKindName } from '../inference/manifest.js';
import type { ChoiceResult, GenerationJob } from '../generation/types.js';
import type { FromWorker, ToWorker, WorkerInit } from './protocol.js';

export interface GenerationHandlers {
  delta(choice: number, text: string): void;
  done(choices: ChoiceResult[]): void;
  failed(error: Error): void;
}

interface Pending {
  worker: number;
  gen?: GenerationHandlers;
  hyper?: { resolve(t: AdapterTensors): void; reject(e: Error): void };
}

export interface PoolObserver {
  step(rows: number): void;
  hyperBatch(rows: number): void;
}

/** Under tsx (dev, tests) this module is .ts and so is the worker, which then needs tsx too; built, both are .js. */
const underTsx = import.meta.url.endsWith('.ts');
const workerUrl = new URL(`./worker${underTsx ? '.ts' : '.js'}`, import.meta.url);

/** Node 20 does not carry tsx's loader hooks into workers: register them in the worker before importing it. */
function spawn(workerData: WorkerInit): Worker {
  if (!underTsx) return new Worker(workerUrl, { workerData });
  const boot = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(workerUrl.href)}); })`;
  return new Worker(boot, { eval: true, workerData });
}

export class WorkerPool {
  private readonly workers: Worker[] = [];
  private readonly load: number[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closing = false;
  readonly ready: Promise<void>;

  constructor(init: WorkerInit, count: number, private readonly observer: PoolObserver) {
    const readies: Promise<void>[] = [];
    for (let i = 0; i < count; i++) {
      const w = spawn(init);
      this.workers.push(w);
      this.load.push(0);
      readies.push(
        new Promise<void>((resolve, reject) => {
          w.on('message', (m: FromWorker) => {
            if (m.type === 'ready') resolve();
            else if (m.type === 'fatal') reject(new Error(m.message));
            else this.onMessage(i, m);
          });
          w.on('error', (e) => {
            reject(e);
            this.failWorker(i, e);
          });
          w.on('exit', (code) => {
            const e = new Error(`inference worker ${i} exited with code ${code}`);
            reject(e);
            this.failWorker(i, e);
          });
        }),
      );
    }
    this.ready = Promise.all(readies).then(() => undefined);
    // Readiness is awaited by whoever starts the app; a failure here must not be an unhandled rejection.
    this.ready.catch(() => {});
  }

  private failWorker(index: number, e: Error): void {
    for (const [id, p] of this.pending) {
      if (p.worker !== index) continue;
      this.pending.delete(id);
      const err = this.closing ? new Error('shutting down') : e;
      p.gen?.failed(err);
      p.hyper?.reject(err);
    }
  }

  private settle(jobId: number): Pending | undefined {
    const p = this.pending.get(jobId);
    if (p) {
      this.pending.delete(jobId);
      this.load[p.worker]! -= 1;
    }
    return p;
  }

  private onMessage(_worker: number, m: FromWorker): void {
    switch (m.type) {
      case 'step':
        return this.observer.step(m.rows);
      case 'hyper-batch':
        return this.observer.hyperBatch(m.rows);
      case 'delta':
        return this.pending.get(m.jobId)?.gen?.delta(m.choice, m.text);
      case 'done':
        return this.settle(m.jobId)?.gen?.done(m.choices);
      case 'hyper-done':
        return this.settle(m.jobId)?.hyper?.resolve(m.tensors);
      case 'failed': {
        const p = this.settle(m.jobId);
        const e = new Error(m.message);
        p?.gen?.failed(e);
        p?.hyper?.reject(e);
        return;
      }
      default:
        return;
    }
  }

  private pick(): number {
    let best = 0;
    for (let i = 1; i < this.load.length; i++) if (this.load[i]! < this.load[best]!) best = i;
    return best;
  }

  private send(worker: number, msg: ToWorker): void {
    this.workers[worker]!.postMessage(msg);
  }

  generate(job: Omit<GenerationJob, 'jobId'>, handlers: GenerationHandlers): { cancel(): void } {
    const jobId = this.nextId++;
    const worker = this.pick();
    this.pending.set(jobId, { worker, gen: handlers });
    this.load[worker]! += 1;
    this.send(worker, { type: 'generate', job: { ...job, jobId } });
    return {
      cancel: () => {
        if (this.settle(jobId)) this.send(worker, { type: 'cancel', jobId });
      },
    };
  }

  hyper(kind: AdapterKindName, ids: number[]): Promise<AdapterTensors> {
    const jobId = this.nextId++;
    const worker = this.pick();
    this.load[worker]! += 1;
    return new Promise((resolve, reject) => {
      this.pending.set(jobId, { worker, hyper: { resolve, reject } });
      this.send(worker, { type: 'hyper', jobId, kind, ids });
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
