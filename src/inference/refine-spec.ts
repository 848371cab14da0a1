/**
 * Where a kind's training-step graph lives (models/README.md, "Refinement graphs"), read from the manifest
 * without ONNX Runtime, so the main thread can refuse a refinement the bundle cannot run before admitting it.
 */
import path from 'node:path';
import type { Bundle } from './bundle.js';
import type { AdapterKindName, RefineAugment, TrainStepGraphName } from './manifest.js';

export interface RefineGraph {
  graph: TrainStepGraphName;
  file: string;
  /**
   * sha256 of the step graph and of its weights file. The fingerprint leaves them out (adding them to a bundle
   * keeps every one-pass id), so a refined adapter's id carries them: another step graph, other bytes, another id.
   */
  graphSha256: string;
  weightsSha256: string;
  defaults: { steps: number; learning_rate: number; augment: RefineAugment };
}

/** The step graph of `kind`, or the name of what the bundle lacks for it. */
export function refineGraph(bundle: Bundle, kind: AdapterKindName): RefineGraph | { missing: string } {
  const m = bundle.manifest;
  const spec = m.refine?.kinds[kind];
  if (!m.refine || !spec) return { missing: `train_step_${kind}.onnx (manifest field refine.kinds.${kind})` };
  const graph = m.graphs[spec.graph]!;
  return {
    graph: spec.graph,
    file: path.join(bundle.dir, graph.file),
    graphSha256: m.files[graph.file]!,
    weightsSha256: m.files[m.refine.weights_file]!,
    defaults: { steps: spec.steps, learning_rate: spec.learning_rate, augment: spec.augment },
  };
}
