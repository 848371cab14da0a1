/** Content-addressed adapter ids: the same model, kind and examples (or tensors) always give the same id. */
import { createHash } from 'node:crypto';
import type { AdapterTensors } from '../inference/feeds.js';
import type { AdapterKindName, TensorSpec } from '../inference/manifest.js';
import { ADAPTER_ID_RE } from '../schemas/common.js';

const toId = (hash: ReturnType<typeof createHash>): string => `ad-${hash.digest('hex').slice(0, 32)}`;

/** With ADAPTER_SCOPE=key each key has its own id space: one key's adapter never answers for another's. */
const scope = (owner: string | undefined): string => (owner === undefined ? '' : `owner:${owner}\n`);

/** Examples are hashed as a JSON array of [input, output] pairs, in order: order changes the hypermodel input. */
export function examplesId(fingerprint: string, kind: AdapterKindName, examples: readonly { input: string; output: string }[], owner?: string): string {
  const canonical = JSON.stringify(examples.map((e) => [e.input, e.output]));
  return toId(createHash('sha256').update(`hypert5-adapter:v1\n${scope(owner)}${fingerprint}\n${kind}\nexamples\n${canonical}`));
}

/** Imported adapters: the hash of the tensors themselves (names, shapes and bytes, in manifest order). */
export function tensorsId(fingerprint: string, kind: AdapterKindName, specs: readonly TensorSpec[], tensors: AdapterTensors, owner?: string): string {
  const h = createHash('sha256').update(`hypert5-adapter:v1\n${scope(owner)}${fingerprint}\n${kind}\ntensors\n`);
  for (const s of specs) {
    const t = tensors[s.name]!;
    h.update(`${s.name}:${s.shape.join(',')}\n`);
    h.update(new Uint8Array(t.buffer, t.byteOffset, t.byteLength));
  }
  return toId(h);
}

/** What makes a refined adapter: its parent, the demonstrations it was tuned on, the settings and the step graph. */
export interface RefineRecipe {
  parent: string;
  examples: readonly { input: string; output: string }[];
  steps: number;
  learningRate: number;
  augment: string;
  /** sha256 of the step graph and of its weights file: outside the fingerprint, yet they make the bytes. */
  graphSha256: string;
  weightsSha256: string;
}

/**
 * Refined adapters. The examples are part of the hash as well as the parent: an imported parent's id says
 * nothing of the demonstrations it is refined on.
 */
export function refinedId(fingerprint: string, kind: AdapterKindName, r: RefineRecipe, owner?: string): string {
  const settings = JSON.stringify([r.parent, r.steps, r.learningRate, r.augment, r.graphSha256, r.weightsSha256, r.examples.map((e) => [e.input, e.output])]);
  return toId(createHash('sha256').update(`hypert5-adapter:v1\n${scope(owner)}${fingerprint}\n${kind}\nrefine\n${settings}`));
}

export const isAdapterId = (id: string): boolean => ADAPTER_ID_RE.test(id);
