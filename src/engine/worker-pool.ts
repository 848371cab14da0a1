/**
 * Main-thread side of the inference workers: starts them, sends each job to one, routes its events back,
 * and replaces a worker that dies (its in-flight jobs fail with the retryable HT_ERR_WORKER_RESTARTING; the others never notice).
 */
import { Worker } from 'node:worker_threads';
import { HtError } from '../errors/domain-error.js';
import type { ChoiceResult, GenerationJob } from '../generation/types.js';
import { jobRows } from './cost.js';
import type { Task } from './jobs.js';
import type { FromWorker, ToWorker, WorkerInit } from './protocol.js';

/** What the pool needs of a worker thread (tests give it a fake one). */
export type WorkerThread = Pick<Worker, 'postMessage' | 'on' | 'once' | 'terminate' | 'threadId'>;

/** Under tsx (dev, tests) this module is .ts and so is the worker, which then needs tsx too; built, both are .js. */
const underTsx = import.meta.url.endsWith('.ts');
const WORKER_ENTRY = new URL(`./worker-entry${underTsx ? '.ts' : '.js'}`, import.meta.url);

/** Starts the worker thread at `entry`. A .ts entry gets tsx's loader registered first, which workers do not inherit. */
export function spawnThread(entry: URL, workerData: WorkerInit): Worker {
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry, { workerData });
  const boot = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); })`;
  return new Worker(boot, { eval: true, workerData });
}

/** What the scheduler hears from the pool; a job's results go straight to the job's own handlers. */
export interface TaskEvents {
  /** A worker came up or a job left one: jobs held back may go now. */
  room(): void;
  /** A decode step ran: its position-weighted token-steps (the scheduler measures throughput from them). */
  step(work: number): void;
  /**
   * Closes the job's books (`choices`: what a completed generation produced); false when it was already over
   * (cancelled, shed, timed out), and then its result is dropped.
   */
  settle(task: Task, completed: boolean, choices?: ChoiceResult[]): boolean;
}

export interface PoolObserver {
  step(rows: number): void;
  hyperBatch(rows: number): void;
  /** A cancelled refinement stopped in its worker after `steps` Adam steps. */
  refineStopped?(steps: number): void;
  /** A batch failed inside a worker (the ONNX Runtime message, for the log; clients get a code). */
  batchFailed?(message: string): void;
  /** A worker died (`replaced` false) or its replacement is up (`replaced` true). */
  worker?(index: number, event: 'died' | 'replaced' | 'restart-failed', detail: string): void;
}

export interface PoolOptions {
  retryAfterS: number;
  /** First delay before restarting a dead worker, doubled on each failed restart (capped at 30 s). */
  restartDelayMs?: number;
  /** Starts one worker thread (default: spawnThread at WORKER_ENTRY). */
  spawn?: (init: WorkerInit) => WorkerThread;
}

interface Slot {
  worker: WorkerThread;
  ready: boolean;
  /** Jobs sent to it and not yet settled. */
  load: number;
  /** Decoder rows of the generation jobs sent to it and not yet settled. */
  rows: number;
  restarts: number;
  /** Generation jobs sent to it this tick, posted together at the end of it (see `flush`). */
  outbox: GenerationJob[];
}

/** Decoder rows a job holds in its worker's batch (a hypermodel run holds none). */
const rowsOf = (task: Task): number => (task.type === 'generate' ? jobRows(task.job) : 0);

const NO_EVENTS: TaskEvents = { room() {}, step() {}, settle: () => false };

export class WorkerPool {
  private readonly slots: Slot[] = [];
  /** Jobs sent to a worker and not yet settled, by job id. */
  private readonly sent = new Map<number, Task>();
  private closing = false;
  private started = false;
  private flushing = false;
  private events: TaskEvents = NO_EVENTS;
  private readonly spawn: (init: WorkerInit) => WorkerThread;
  readonly ready: Promise<void>;

  constructor(
    private readonly init: WorkerInit,
    count: number,
    private readonly observer: PoolObserver,
    private readonly opts: PoolOptions = { retryAfterS: 1 },
  ) {
    this.spawn = opts.spawn ?? ((data) => spawnThread(WORKER_ENTRY, data));
    const readies: Promise<void>[] = [];
    for (let i = 0; i < count; i++) readies.push(this.start(i));
    this.ready = Promise.all(readies).then(() => {
      this.started = true;
    });
    // Readiness is awaited by whoever starts the app; a failure here must not be an unhandled rejection.
    this.ready.catch(() => {});
  }

  /** Where job events go (the scheduler). */
  listen(events: TaskEvents): void {
    this.events = events;
  }

  /** Starts (or restarts) the worker in slot `index`; resolves when its sessions are loaded. */
  private start(index: number): Promise<void> {
    const w = this.spawn(this.init);
    const prev = this.slots[index];
    this.slots[index] = { worker: w, ready: false, load: 0, rows: 0, restarts: prev?.restarts ?? 0, outbox: [] };
    return new Promise<void>((resolve, reject) => {
      let up = false;
      w.on('message', (m: FromWorker) => {
        if (m.type === 'ready') {
          up = true;
          this.slots[index]!.ready = true;
          this.slots[index]!.restarts = 0;
          resolve();
          this.events.room();
        } else if (m.type === 'fatal') reject(new Error(m.message));
        else this.onMessage(m);
      });
      let dead = false;
      const down = (e: Error) => {
        // 'error' is followed by 'exit': handle the death once.
        if (dead || this.slots[index]?.worker !== w) return;
        dead = true;
        this.slots[index].ready = false;
        reject(e);
        this.failWorker(index, e);
        // Before the first start succeeded a dead worker is a boot failure (the caller exits); after it, replace it.
        if (this.started && !this.closing) this.restart(index, e, up);
      };
      w.on('error', (e: Error) => down(e));
      w.on('exit', (code: number) => down(new Error(`inference worker ${index} exited with code ${code}`)));
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
   * The ready worker whose batch has room for `rows` more rows now (by the decode batcher's own rule: a job
   * bigger than the batch runs alone), the emptiest first; -1 when none has. Jobs sent only when there is
   * room start at the worker's next step instead of queueing there, where no one could shed them.
   */
  /**
   * The ready worker with room for `rows` more decode rows and the fewest already; among equals, the one holding
   * the fewest jobs, so that decoding does not queue behind a refinement or a hypermodel run (neither holds rows)
   * while another worker is idle.
   */
  private roomFor(rows: number): number {
    let best = -1;
    this.slots.forEach((s, i) => {
      if (!s.ready || (s.rows > 0 && s.rows + rows > this.init.maxBatchRows)) return;
      const b = this.slots[best];
      if (!b || s.rows < b.rows || (s.rows === b.rows && s.load < b.load)) best = i;
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

  /** The least-loaded ready worker, or the retryable error that none is up. */
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

  /**
   * Sends a job to a worker: a generation job to one whose batch has room (else the least loaded), a
   * hypermodel job to the least loaded. Throws when no worker is up.
   */
  send(task: Task): void {
    const rows = rowsOf(task);
    const room = task.type === 'generate' ? this.roomFor(rows) : -1;
    const index = room >= 0 ? room : this.pick();
    task.worker = index;
    this.sent.set(task.job.jobId, task);
    const slot = this.slots[index]!;
    slot.load += 1;
    slot.rows += rows;
    if (task.type === 'hyper') return slot.worker.postMessage({ type: 'hyper', job: task.job } satisfies ToWorker);
    if (task.type === 'refine') return slot.worker.postMessage({ type: 'refine', job: task.job } satisfies ToWorker);
    slot.outbox.push(task.job);
    if (!this.flushing) {
      this.flushing = true;
      setImmediate(() => this.flush());
    }
  }

  /**
   * Posts each worker the generation jobs it was sent since the last flush, in one message: the worker admits
   * and encodes them as one batch (the prompts of a request, and the requests that came in with it), and an
   * adapter the jobs share is cloned into the worker once rather than once per prompt.
   */
  private flush(): void {
    this.flushing = false;
    for (const slot of this.slots) {
      if (!slot.outbox.length) continue;
      const jobs = slot.outbox;
      slot.outbox = [];
      slot.worker.postMessage({ type: 'generate', jobs } satisfies ToWorker);
    }
  }

  /** Takes a sent job back: its worker drops it at its next step (or never hears of it, when it was not posted yet). */
  cancel(task: Task): void {
    if (!this.release(task.job.jobId)) return;
    const slot = this.slots[task.worker!]!;
    const queued = slot.outbox.findIndex((j) => j.jobId === task.job.jobId);
    if (queued >= 0) slot.outbox.splice(queued, 1);
    else slot.worker.postMessage({ type: 'cancel', jobId: task.job.jobId } satisfies ToWorker);
  }

  /** Forgets a sent job and frees its room; undefined when it was not (or no longer) outstanding. */
  private release(jobId: number): Task | undefined {
    const task = this.sent.get(jobId);
    if (!task) return undefined;
    this.sent.delete(jobId);
    const slot = this.slots[task.worker!]!;
    slot.load -= 1;
    slot.rows -= rowsOf(task);
    return task;
  }

  private failWorker(index: number, cause: Error): void {
    this.slots[index]!.outbox = [];
    for (const task of [...this.sent.values()]) {
      if (task.worker !== index) continue;
      this.release(task.job.jobId);
      const err = this.closing
        ? new HtError('HT_ERR_SHUTTING_DOWN', 'the server is shutting down', this.opts.retryAfterS)
        : new HtError('HT_ERR_WORKER_RESTARTING', `the inference worker running this request died (${cause.message}); it is being replaced`, this.opts.retryAfterS);
      this.fail(task, err);
    }
  }

  /** Fails every outstanding job with `error` (shutdown past its drain deadline). */
  failAll(error: HtError): void {
    for (const task of [...this.sent.values()]) {
      this.cancel(task);
      this.fail(task, error);
    }
  }

  /** Fails a job its worker no longer runs, unless it was already over. */
  private fail(task: Task, error: Error): void {
    if (!this.events.settle(task, false)) return;
    if (task.type === 'generate') task.handlers.failed(error);
    else task.reject(error);
    this.events.room();
  }

  private onMessage(m: FromWorker): void {
    switch (m.type) {
      case 'steps':
        for (const rows of m.rows) this.observer.step(rows);
        return this.events.step(m.work);
      case 'hyper-batch':
        return this.observer.hyperBatch(m.rows);
      case 'delta': {
        const task = this.sent.get(m.jobId);
        if (task?.type === 'generate' && !task.over) task.handlers.delta(m.choice, m.text);
        return;
      }
      case 'done': {
        const task = this.release(m.jobId);
        if (task?.type !== 'generate') return;
        if (this.events.settle(task, true, m.choices)) task.handlers.done(m.choices);
        return this.events.room();
      }
      case 'hyper-done': {
        const task = this.release(m.jobId);
        if (task?.type === 'hyper' && this.events.settle(task, true)) task.resolve(m.tensors);
        return;
      }
      case 'refine-done': {
        const task = this.release(m.jobId);
        if (task?.type === 'refine' && this.events.settle(task, true)) task.resolve(m.outcome);
        return;
      }
      case 'refine-stopped':
        return this.observer.refineStopped?.(m.steps);
      case 'failed': {
        const task = this.release(m.jobId);
        if (!task) return;
        // A job that caused its own failure (its adapter) hears why; anything else is the batch's fault, logged.
        if (!m.code) this.observer.batchFailed?.(m.message);
        const e = m.code
          ? new HtError(m.code, m.message)
          : new HtError('HT_ERR_INFERENCE_FAILED', 'inference failed for the batch holding this request; the server keeps serving');
        return this.fail(task, e);
      }
      default:
        return;
    }
  }

  /**
   * Asks each worker to stop after its step in progress; `terminate()` only for one that does not exit in time
   * (terminating a thread inside an ONNX Runtime run aborts the whole process).
   */
  async close(graceMs = 10_000): Promise<void> {
    this.closing = true;
    this.flush();
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
