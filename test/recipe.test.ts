/** Recovery: which quarantined metadata is a recipe, and which recipe may remake an adapter id. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { examplesId } from '../src/adapters/canonical-id.js';
import { recipeIn, remakes } from '../src/adapters/recipe.js';
import type { AdapterMeta, Recipe } from '../src/adapters/types.js';

const FP = 'fp-1';
const EXAMPLES = [{ input: 'Ada Lovelace', output: 'Lovelace, A.' }];
const ID = examplesId(FP, 'lora', EXAMPLES, 'k1');
const META: AdapterMeta = { id: ID, kind: 'lora', model: 'tiny', fingerprint: FP, num_examples: 1, created_at: 1, source: 'hypermodel', owner: 'k1' };
const RECIPE: Recipe = { meta: META, examples: EXAMPLES };

describe('recipe', () => {
  it('is read from metadata written for the id that names its examples', () => {
    assert.deepEqual(recipeIn(ID, { meta: META, examples: EXAMPLES }), RECIPE);
    assert.equal(recipeIn(ID, { meta: META }), undefined);
    assert.equal(recipeIn(ID, { meta: META, examples: 'Ada' }), undefined);
    assert.equal(recipeIn('ad-ffffffffffffffffffffffffffffffff', { meta: META, examples: EXAMPLES }), undefined);
    assert.equal(recipeIn(ID, null), undefined);
  });

  it('remakes its id only when made by the hypermodel of this model from examples that hash to the id', () => {
    assert.equal(remakes(RECIPE, ID, FP), true);
    assert.equal(remakes(RECIPE, ID, 'fp-2'), false, 'another model');
    assert.equal(remakes({ ...RECIPE, meta: { ...META, source: 'import' } }, ID, FP), false, 'imported');
    assert.equal(remakes({ ...RECIPE, examples: [{ input: 'Ada', output: 'Lovelace, A.' }] }, ID, FP), false, 'examples edited');
    assert.equal(remakes({ ...RECIPE, meta: { ...META, kind: 'prefix' } }, ID, FP), false, 'kind edited');
    assert.equal(remakes({ ...RECIPE, meta: { ...META, owner: 'k2' } }, ID, FP), false, 'owner edited');
  });
});
