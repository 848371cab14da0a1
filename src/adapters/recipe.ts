/**
 * Recovery: an adapter made by the hypermodel keeps the examples it was made from (its recipe), so a stored
 * copy found corrupt is made again rather than lost. The disk store keeps the recipe in each entry's .json and
 * finds it again in quarantine; the Redis value carries it (codec.ts), so every replica's local copy has one;
 * the adapter service remakes the adapter from it when `remakes` allows.
 */
import { examplesId } from './canonical-id.js';
import type { AdapterMeta, Recipe } from './types.js';

/** The recipe in a quarantined entry's metadata: only one written for `id` that names its examples. */
export function recipeIn(id: string, stored: { meta?: AdapterMeta; examples?: unknown } | null | undefined): Recipe | undefined {
  if (stored?.meta?.id !== id || !Array.isArray(stored.examples)) return undefined;
  return { meta: stored.meta, examples: stored.examples as Recipe['examples'] };
}

/**
 * Whether the recipe still makes adapter `id` under the model `fingerprint`: made by the hypermodel, for this
 * model, and its examples hash to the id. Metadata edited on disk then never puts another adapter under the id,
 * and imported adapters (their id is the hash of their tensors) are never remade.
 */
export function remakes(recipe: Recipe, id: string, fingerprint: string): boolean {
  const { meta, examples } = recipe;
  return meta.source === 'hypermodel' && meta.fingerprint === fingerprint && examplesId(fingerprint, meta.kind, examples, meta.owner) === id;
}
