/**
 * Main-thread side of the inference workers: starts them, routes jobs and their events, and replaces a
 * worker that dies (its in-flight jobs fail with a retryable 503; the others never notice).
 */
import { Worker } from 'node:worker_threads';
import { HtError } from '../errors/http-error.js';
import type { AdapterTensors } from '../inference/feeds.js';
import type { AdapterKindName } from '../inference/manifest.js';
import type { ChoiceResult, GenerationJob } from '../generation/types.js';
import { jobRows } from './cost.js';
import type { Fault, FromWorker, ToWorker, WorkerInit } from './protocol.js';

export interface GenerationHandlers {
  delta(choice: number, text: string): void;
  done(choices: ChoiceResult[]): void;
  failed(error: Error): void;
}

interface Pending {
  worker: number;
  /** Decoder rows the job holds in its worker's batch (0 for a hypermodel run). */
  rows: number;
  gen?: GenerationHandlers;
  hyper?: { resolve(t: AdapterTensors): void; reject(e: Error): void };
}

export interface PoolObserver {
  step(rows: number): void;
  hyperBatch(rows: number): void;
  /** A batch failed inside a worker (the ONNX Runtime message, for the log; clients get a code). */
  batchFailed?(message: string): void;
  /** A worker died (`replaced` false) or its replacement is up (`replaced` true). */
  worker?(index: number, event: 'died' | 'replaced' | 'restart-failed', detail: string): void;
}

export interface PoolOptions {
  retryAfterS: number;
  /** First delay before restarting a dead worker, doubled on each failed restart (capped at 30 s). */
  restartDelayMs?: number;
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

interface Slot {
  worker: Worker;
  ready: boolean;
  load: number;
  /** Decoder rows of the generation jobs sent to it and not yet settled. */
  rows: number;
  restarts: number;
}

export class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closing = false;
  private started = false;
  readonly ready: Promise<void>;
  /** Called when a worker comes up, so whoever holds jobs back (the scheduler) can send them. */
  onRoom: () => void = () => {};
  /** Called after every decode step with its position-weighted token-steps (the scheduler measures throughput from them). */
  onStep: (work: number) => void = () => {};

  constructor(
    private readonly init: WorkerInit,
    count: number,
    private readonly observer: PoolObserver,
    private readonly opts: PoolOptions = { retryAfterS: 1 },
  ) {
    const readies: Promise<void>[] = [];
    for (let i = 0; i < count; i++) readies.push(this.start(i));
    this.ready = Promise.all(readies).then(() => {
      this.started = true;
    });
    // Readiness is awaited by whoever starts the app; a failure here must not be an unhandled rejection.
    this.ready.catch(() => {});
  }

  /** Starts (or restarts) the worker in slot `index`; resolves when its sessions are loaded. */
  private start(index: number): Promise<void> {
    const w = spawn(this.init);
    const prev = this.slots[index];
    this.slots[index] = { worker: w, ready: false, load: 0, rows: 0, restarts: prev?.restarts ?? 0 };
    return new Promise<void>((resolve, reject) => {
      let up = false;
      w.on('message', (m: FromWorker) => {
        if (m.type === 'ready') {
          up = true;
          this.slots[index]!.ready = true;
          this.slots[index]!.restarts = 0;
          resolve();
          this.onRoom();
        } else if (m.type === 'fatal') reject(new Error(m.message));
        else this.onMessage(m);
      });
      let dead = false;
      const down = (e: Error) => {
        // 'error' is followed by 'exit': handle the death once.
        if (dead || this.slots[index]?.worker !== w) return;
        dead = true;
        this.slots[index]!.ready = false;
        reject(e);
        this.failWorker(index, e);
        // Before the first start succeeded a dead worker is a boot failure (the caller exits); after it, replace it.
        if (this.started && !this.closing) this.restart(index, e, up);
      };
      w.on('error', (e) => down(e));
      w.on('exit', (code) => down(new Error(`inference worker ${index} exited with code ${code}`)));
    });
  }

  private restart(index: number, cause: Error, wasUp: boolean): void {
    const slot = this.slots[index]!;
    if (wasUp) this.observer.worker?.(index, 'died', cause.message);
    const base = this.opts.restartDelayMs ?? 100;
    const delay = Math.min(30_000, base * 2 ** slot.restarts);
    slot.restarts += 1;
    setTimeout(() => {
      if (this.closing) return;
      this.start(index).then(
        () => this.observer.worker?.(index, 'replaced', `worker ${index} is up again`),
        (e: Error) => this.observer.worker?.(index, 'restart-failed', e.message),
      );
    }, delay).unref();
  }

  /** Workers whose sessions are loaded and that take jobs. */
  get readyCount(): number {
    return this.slots.filter((s) => s.ready).length;
  }

  /**
   * The ready worker whose batch has room for `rows` more rows now (by the generation loop's own rule: a job
   * bigger than the batch runs alone), the emptiest first; -1 when none has. Jobs sent only when there is
   * room start at the worker's next step instead of queueing there, where no one could shed them.
   */
  private roomFor(rows: number): number {
    let best = -1;
    this.slots.forEach((s, i) => {
      if (!s.ready || (s.rows > 0 && s.rows + rows > this.init.maxBatchRows)) return;
      if (best < 0 || s.rows < this.slots[best]!.rows) best = i;
    });
    return best;
  }

  hasRoom(rows: number): boolean {
    return this.roomFor(rows) >= 0;
  }

  /** Share of the ready workers that hold a job (busy time counts in worker-seconds: see ThroughputEstimate). */
  get busyShare(): number {
    const ready = this.slots.filter((s) => s.ready);
    return ready.length ? ready.filter((s) => s.load > 0).length / ready.length : 0;
  }

  private failWorker(index: number, cause: Error): void {
    for (const [id, p] of this.pending) {
      if (p.worker !== index) continue;
      this.pending.delete(id);
      const err = this.closing
        ? new HtError('HT_ERR_SHUTTING_DOWN', 'the server is shutting down', this.opts.retryAfterS)
        : new HtError('HT_ERR_WORKER_RESTARTING', `the inference worker running this request died (${cause.message}); it is being replaced`, this.opts.retryAfterS);
      p.gen?.failed(err);
      p.hyper?.reject(err);
    }
    this.slots[index]!.load = 0;
    this.slots[index]!.rows = 0;
  }

  /** Fails every outstanding job with `error` (shutdown past its drain deadline). */
  failAll(error: HtError): void {
    for (const [id, p] of [...this.pending]) {
      this.pending.delete(id);
      this.send(p.worker, { type: 'cancel', jobId: id });
      this.slots[p.worker]!.load -= 1;
      this.slots[p.worker]!.rows -= p.rows;
      p.gen?.failed(error);
      p.hyper?.reject(error);
    }
  }

  private settle(jobId: number): Pending | undefined {
    const p = this.pending.get(jobId);
    if (p) {
      this.pending.delete(jobId);
      this.slots[p.worker]!.load -= 1;
      this.slots[p.worker]!.rows -= p.rows;
    }
    return p;
  }

  private onMessage(m: FromWorker): void {
    switch (m.type) {
      case 'step':
        this.observer.step(m.rows);
        return this.onStep(m.work);
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
        if (!p) return;
        // A job that caused its own failure (its adapter) hears why; anything else is the batch's fault, logged.
        if (!m.code) this.observer.batchFailed?.(m.message);
        const e = m.code
          ? new HtError(m.code, m.message)
          : new HtError('HT_ERR_INFERENCE_FAILED', 'inference failed for the batch holding this request; the server keeps serving');
        p.gen?.failed(e);
        p.hyper?.reject(e);
        return;
      }
      default:
        return;
    }
  }

  private pick(): number {
    let best = -1;
    this.slots.forEach((s, i) => {
      if (s.ready && (best < 0 || s.load < this.slots[best]!.load)) best = i;
    });
    if (best < 0) {
      throw new HtError('HT_ERR_WORKER_RESTARTING', 'no inference worker is up; one is being replaced', this.opts.retryAfterS);
    }
    return best;
  }

  private send(worker: number, msg: ToWorker): void {
    this.slots[worker]!.worker.postMessage(msg);
  }

  generate(job: Omit<GenerationJob, 'jobId'>, handlers: GenerationHandlers): { cancel(): void } {
    const jobId = this.nextId++;
    const rows = jobRows(job);
    const room = this.roomFor(rows);
    const worker = room >= 0 ? room : this.pick();
    this.pending.set(jobId, { worker, rows, gen: handlers });
    this.slots[worker]!.load += 1;
    this.slots[worker]!.rows += rows;
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
    this.slots[worker]!.load += 1;
    return new Promise((resolve, reject) => {
      this.pending.set(jobId, { worker, rows: 0, hyper: { resolve, reject } });
      this.send(worker, { type: 'hyper', jobId, kind, ids });
    });
  }

  /** Chaos hook for the fault tests: every ready worker applies the fault. */
  injectFault(fault: Fault): void {
    this.slots.forEach((s, i) => s.ready && this.send(i, { type: 'fault', fault }));
  }

  /**
   * Asks each worker to stop after its step in progress; `terminate()` only for one that does not exit in time
   * (terminating a thread inside an ONNX Runtime run aborts the whole process).
   */
  async close(graceMs = 10_000): Promise<void> {
    this.closing = true;
    await Promise.all(
      this.slots.map(async ({ worker }) => {
        if (worker.threadId < 0) return;
        const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
        worker.postMessage({ type: 'stop' } satisfies ToWorker);
        let timer: NodeJS.Timeout | undefined;
        const late = await Promise.race([exited.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs)))]);
        clearTimeout(timer);
        if (late) await worker.terminate();
      }),
    );
  }
}
