/**
 * The worker's refinement jobs: one Adam step of the oldest job per tick, so that decode steps and hypermodel
 * batches interleave with a refinement of hundreds of steps instead of waiting behind it, and a cancel (client
 * gone, deadline) lands between two steps. Each kind's step graph is opened on its first job (most workers
 * never refine, and the graph holds its own copy of the frozen weights).
 */
import type { AdapterTensors } from '../inference/feeds.js';
import type { AdapterKindName } from '../inference/manifest.js';
import type { HostTensor } from '../inference/onnx.js';
import { TrainStep, type RefineBatch, type RefineState } from '../inference/train-step.js';

/** One refinement: `steps` Adam steps of `start` on `batch` (the demonstrations, augmented). */
export interface RefineJob {
  jobId: number;
  kind: AdapterKindName;
  start: AdapterTensors;
  batch: RefineBatch;
  steps: number;
  learningRate: number;
}

export interface RefineOutcome {
  tensors: AdapterTensors;
  /** The loss of the first step and of the last, each measured before its update. */
  lossFirst: number;
  lossLast: number;
  steps: number;
  /** From the first step's start to the last's end, interleaved work included. */
  ms: number;
}

export interface RefineEvents {
  done(jobId: number, outcome: RefineOutcome): void;
  /** A cancelled job left after `steps` of its steps. */
  stopped(jobId: number, steps: number): void;
  failed(jobId: number, error: Error): void;
}

interface Running {
  job: RefineJob;
  state: RefineState | null;
  feeds: Record<string, HostTensor> | null;
  lossFirst: number;
  lossLast: number;
  startedAt: number;
}

export class RefineRunner {
  private queue: Running[] = [];
  private readonly graphs = new Map<AdapterKindName, Promise<TrainStep>>();

  constructor(
    private readonly open: (kind: AdapterKindName) => Promise<TrainStep>,
    private readonly events: RefineEvents,
  ) {}

  submit(job: RefineJob): void {
    this.queue.push({ job, state: null, feeds: null, lossFirst: NaN, lossLast: NaN, startedAt: 0 });
  }

  cancel(jobId: number): void {
    const r = this.queue.find((x) => x.job.jobId === jobId);
    if (!r) return;
    this.queue = this.queue.filter((x) => x !== r);
    this.events.stopped(jobId, r.state?.done ?? 0);
  }

  get idle(): boolean {
    return this.queue.length === 0;
  }

  private graph(kind: AdapterKindName): Promise<TrainStep> {
    let g = this.graphs.get(kind);
    if (!g) {
      g = this.open(kind);
      // A graph that failed to open is tried again by the next job rather than failing every later one.
      g.catch(() => this.graphs.delete(kind));
      this.graphs.set(kind, g);
    }
    return g;
  }

  /** One step of the oldest job (the first tick of a job opens its graph and builds its feeds). */
  async tick(): Promise<void> {
    const r = this.queue[0];
    if (!r) return;
    const { job } = r;
    try {
      const graph = await this.graph(job.kind);
      // Cancelled while its graph was opening.
      if (!this.queue.includes(r)) return;
      if (!r.state) {
        r.state = graph.begin(job.start);
        r.feeds = graph.batchFeeds(job.batch);
        r.startedAt = performance.now();
      }
      const loss = await graph.step(r.state, r.feeds!, job.learningRate);
      if (r.state.done === 1) r.lossFirst = loss;
      r.lossLast = loss;
      // Cancelled while the step ran: its `stopped` event has been sent.
      if (!this.queue.includes(r)) return;
      if (r.state.done < job.steps) return;
      this.queue = this.queue.filter((x) => x !== r);
      const tensors = TrainStep.adapter(r.state, Object.keys(job.start));
      this.events.done(job.jobId, { tensors, lossFirst: r.lossFirst, lossLast: r.lossLast, steps: r.state.done, ms: performance.now() - r.startedAt });
    } catch (e) {
      if (!this.queue.includes(r)) return;
      this.queue = this.queue.filter((x) => x !== r);
      this.events.failed(job.jobId, e as Error);
    }
  }
}
