/**
 * A graph's session: created once, its input/output names checked against the manifest,
 * feeds checked against inputNames on every run; failures report shapes, never data.
 */
import type { Bundle } from './bundle.js';
import { BundleError } from './bundle.js';
import type { GraphName } from './manifest.js';
import { createSession, type HostTensor, type OrtSession } from './onnx.js';

export class GraphSession {
  private constructor(
    readonly graph: GraphName,
    private readonly session: OrtSession,
  ) {}

  static async open(this: void, bundle: Bundle, graph: GraphName, intraOpThreads: number): Promise<GraphSession> {
    const file = bundle.graphFile(graph);
    let session: OrtSession;
    try {
      session = await createSession(file, { intraOpThreads });
    } catch (e) {
      throw new BundleError(`${file}: ONNX Runtime cannot load it (${(e as Error).message})`);
    }
    const spec = bundle.manifest.graphs[graph]!;
    const check = (field: 'inputs' | 'outputs', actual: readonly string[]) => {
      const declared = spec[field].map((io) => io.name);
      const a = [...actual].sort();
      const d = [...declared].sort();
      if (a.length !== d.length || a.some((n, i) => n !== d[i])) {
        const missing = d.filter((n) => !a.includes(n));
        const extra = a.filter((n) => !d.includes(n));
        throw new BundleError(
          `${file}: session ${field === 'inputs' ? 'inputNames' : 'outputNames'} differ from manifest.json field graphs.${graph}.${field}` +
            ` (declared but absent: ${JSON.stringify(missing)}; present but undeclared: ${JSON.stringify(extra)})`,
        );
      }
    };
    check('inputs', session.inputNames);
    check('outputs', session.outputNames);
    return new GraphSession(graph, session);
  }

  async run(feeds: Record<string, HostTensor>, fetches?: readonly string[]): Promise<Record<string, HostTensor>> {
    // Linear in the number of inputs (a per-layer decoder has dozens, every step): every input fed and as many
    // feeds as inputs means no extra feed; the lists of names are built only for the error.
    const names = this.session.inputNames;
    let fed = 0;
    for (const n of names) if (n in feeds) fed++;
    if (fed !== names.length || Object.keys(feeds).length !== names.length) {
      const missing = names.filter((n) => !(n in feeds));
      const extra = Object.keys(feeds).filter((n) => !names.includes(n));
      throw new Error(`${this.graph}: feeds do not match inputNames (missing ${JSON.stringify(missing)}, extra ${JSON.stringify(extra)})`);
    }
    try {
      return await this.session.run(feeds, fetches);
    } catch (e) {
      const shapes = Object.entries(feeds).map(([n, t]) => `${n}:${t.dtype}[${t.dims.join(',')}]`).join(' ');
      throw new Error(`${this.graph}: run failed (${(e as Error).message}); feeds ${shapes}`, { cause: e });
    }
  }
}
