/** openapi.yaml (committed) is exactly what the route schemas produce: run `npm run openapi` after changing a route. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { renderOpenapi } from '../src/openapi.js';

it('openapi.yaml matches the routes', async () => {
  const committed = readFileSync(new URL('../openapi.yaml', import.meta.url), 'utf8');
  assert.equal(committed, await renderOpenapi(), 'openapi.yaml is stale: run `npm run openapi`');
});
