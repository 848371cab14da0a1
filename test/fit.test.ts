/**
 * The fit report of adapters made from examples: present and in range, deterministic (stored once, the same for
 * the same adapter), loo_exact null for one example, a refined adapter's own demos_exact and mean_logprob with its
 * parent's loo_exact, opt-out with `fit: false`, none for imported adapters. Whether the numbers mean anything
 * needs a trained model: the last suite runs on models/default.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { DEFAULT_MODEL, makeApp, removeDir, tempDir } from './helper.js';

const EXAMPLES = [
  { input: 'Ada Lovelace', output: 'Lovelace, A.' },
  { input: 'Alan Turing', output: 'Turing, A.' },
  { input: 'Grace Hopper', output: 'Hopper, G.' },
];

interface Fit {
  demos_exact: number;
  loo_exact: number | null;
  mean_logprob: number | null;
}

/** A share of k demonstrations: j / k for an integer j in 0..k. */
const isShare = (x: number, k: number) => x >= 0 && x <= 1 && Math.abs(x * k - Math.round(x * k)) < 1e-9;

function inRange(fit: Fit, k: number): void {
  assert.deepEqual(Object.keys(fit).sort(), ['demos_exact', 'loo_exact', 'mean_logprob']);
  assert.ok(isShare(fit.demos_exact, k), String(fit.demos_exact));
  if (k === 1) assert.equal(fit.loo_exact, null);
  else assert.ok(fit.loo_exact !== null && isShare(fit.loo_exact, k), String(fit.loo_exact));
  assert.ok(fit.mean_logprob !== null && fit.mean_logprob <= 0 && Number.isFinite(fit.mean_logprob), String(fit.mean_logprob));
}

describe('fit report (tiny fixture)', () => {
  let app: FastifyInstance;
  let dir: string;
  before(async () => {
    dir = tempDir();
    app = await makeApp({ ADAPTER_STORE_DIR: dir });
  });
  after(async () => {
    await app.close();
    removeDir(dir);
  });

  const create = (body: object) => app.inject({ method: 'POST', url: '/v1/adapters', payload: body });

  it('every adapter made from examples has one, in range, for each kind', async () => {
    for (const kind of ['lora', 'prefix']) {
      const r = await create({ examples: EXAMPLES, kind });
      assert.equal(r.statusCode, 201, r.body);
      inRange(r.json().fit, EXAMPLES.length);
    }
  });

  it('loo_exact is null for one example', async () => {
    const r = await create({ examples: EXAMPLES.slice(0, 1), kind: 'lora' });
    assert.equal(r.statusCode, 201, r.body);
    inRange(r.json().fit, 1);
  });

  it('is stored with the adapter: GET, a cached POST and a fresh server over the same store give the same report', async () => {
    const first = (await create({ examples: EXAMPLES, kind: 'lora' })).json();
    const got = await app.inject({ url: `/v1/adapters/${first.id}` });
    assert.deepEqual(got.json().fit, first.fit);
    const again = await makeApp({ ADAPTER_STORE_DIR: tempDir() });
    try {
      // Computed again from nothing on another server: deterministic.
      const fresh = await again.inject({ method: 'POST', url: '/v1/adapters', payload: { examples: EXAMPLES, kind: 'lora' } });
      assert.equal(fresh.json().id, first.id);
      assert.deepEqual(fresh.json().fit, first.fit);
    } finally {
      await again.close();
    }
  });

  it('mean_logprob is minus the step graph\'s loss at learning rate 0, so refining raises it; loo_exact is the parent\'s', async () => {
    const parent = (await create({ examples: EXAMPLES, kind: 'lora' })).json();
    const r = await create({ examples: EXAMPLES, kind: 'lora', refine: { steps: 30, learning_rate: 0.01 } });
    assert.equal(r.statusCode, 201, r.body);
    const refined = r.json();
    assert.equal(refined.parent, parent.id);
    inRange(refined.fit, EXAMPLES.length);
    assert.equal(refined.fit.loo_exact, parent.fit.loo_exact);
    assert.ok(Math.abs(parent.fit.mean_logprob + refined.refine.loss_first) < 1e-5, `${parent.fit.mean_logprob} vs loss ${refined.refine.loss_first}`);
    assert.ok(refined.fit.mean_logprob > parent.fit.mean_logprob, `${refined.fit.mean_logprob} > ${parent.fit.mean_logprob}`);
  });

  it('fit: false stores the adapter without a report; a bad value is a 422 naming it', async () => {
    const r = await create({ examples: [{ input: 'x', output: 'y' }], kind: 'lora', fit: false });
    assert.equal(r.statusCode, 201, r.body);
    assert.equal(r.json().fit, undefined);
    const bad = await create({ examples: EXAMPLES, fit: 'no' });
    assert.equal(bad.statusCode, 422);
    assert.match(bad.json().error.message, /^body\.fit/);
  });
});

describe('fit report (models/default): it tells consistent examples from inconsistent ones', () => {
  let app: FastifyInstance;
  before(async () => {
    app = await makeApp({ MODEL_DIR: DEFAULT_MODEL });
  });
  after(() => app.close());

  const fitOf = async (examples: typeof EXAMPLES, kind: string): Promise<Fit> => {
    const r = await app.inject({ method: 'POST', url: '/v1/adapters', payload: { examples, kind, fit: true } });
    assert.equal(r.statusCode, 201, r.body);
    return r.json().fit as Fit;
  };

  it('one rule in every example fits; unrelated outputs fit worse on every number', async () => {
    const noise = [{ input: 'Ada Lovelace', output: '42' }, { input: 'Alan Turing', output: 'blue' }, { input: 'Grace Hopper', output: 'Paris, F.' }];
    for (const kind of ['lora', 'prefix']) {
      const good = await fitOf(EXAMPLES, kind);
      const bad = await fitOf(noise, kind);
      inRange(good, 3);
      inRange(bad, 3);
      assert.ok(good.demos_exact > bad.demos_exact, `${kind}: demos_exact ${good.demos_exact} > ${bad.demos_exact}`);
      assert.ok(good.loo_exact! > bad.loo_exact!, `${kind}: loo_exact ${good.loo_exact} > ${bad.loo_exact}`);
      assert.ok(good.mean_logprob! > bad.mean_logprob!, `${kind}: mean_logprob ${good.mean_logprob} > ${bad.mean_logprob}`);
    }
  });
});
