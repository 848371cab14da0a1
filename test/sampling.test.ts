/** Seeded sampling, temperature and top_p, through the generation loop on a fake model and on the sampler alone. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DecodeBatcher } from '../src/engine/decode-batcher.js';
import { applyAll, temperature, topP } from '../src/generation/logits-processors.js';
import { mulberry32, sampleFromScores } from '../src/generation/sampler.js';
import type { Strategy } from '../src/generation/types.js';
import { context, drain, FakeStepModel, job, probs, Recorder, runAlone, type NextLogits } from './fakes/step-model.js';

/** Eight equally likely letters at every step, for 12 tokens: a seed decides the whole text. */
const uniform: NextLogits = (_prompt, generated) =>
  generated.length < 12 ? probs(Object.fromEntries([...'abcdefgh'].map((c) => [c, 1 / 8]))) : probs({ EOS: 1 });

/** A skewed distribution: a .6, b .3, c .06, d .04 (and eos after 40 tokens). */
const skewed: NextLogits = (_prompt, generated) => (generated.length < 40 ? probs({ a: 0.6, b: 0.3, c: 0.06, d: 0.04 }) : probs({ EOS: 1 }));

const sample = (seed: number, over: Partial<{ temperature: number; topP: number; promptIndex: number }> = {}): Strategy => ({
  type: 'sample',
  temperature: 1,
  topP: 1,
  seed,
  promptIndex: 0,
  ...over,
});

const texts = async (next: NextLogits, strategy: Strategy, n = 1): Promise<string[]> =>
  (await runAlone(next, job('p', { strategy, n, maxNewTokens: 64 }))).map((c) => c.text);

describe('sampling with a seed', () => {
  it('the same seed gives the same text; other seeds give other texts', async () => {
    const [first] = await texts(uniform, sample(42));
    assert.equal(first!.length, 12);
    assert.deepEqual(await texts(uniform, sample(42)), [first]);
    const others = new Set<string>();
    for (const seed of [0, 1, 43, 2 ** 32, 2 ** 53 - 1]) others.add((await texts(uniform, sample(seed)))[0]!);
    assert.equal(others.size, 5);
    assert.ok(!others.has(first!));
  });

  it('the n choices of one request differ from each other and are each reproducible', async () => {
    const choices = await texts(uniform, sample(7), 3);
    assert.equal(new Set(choices).size, 3);
    assert.deepEqual(await texts(uniform, sample(7), 3), choices);
    // Choice 0 does not depend on how many choices were asked for.
    assert.equal((await texts(uniform, sample(7), 1))[0], choices[0]);
  });

  it('each prompt of a request draws its own randomness', async () => {
    const [p0] = await texts(uniform, sample(7, { promptIndex: 0 }));
    const [p1] = await texts(uniform, sample(7, { promptIndex: 1 }));
    assert.notEqual(p0, p1);
  });

  it('a sampled row draws the same tokens whether it runs alone or batched with others that join and leave', async () => {
    const strategy = sample(99);
    const alone = await runAlone(uniform, job('p', { strategy, n: 2 }));
    const rec = new Recorder();
    const loop = new DecodeBatcher(new FakeStepModel(uniform), context(rec), 64);
    const first = job('q', { strategy: sample(1), n: 3 });
    const target = job('p', { strategy, n: 2 });
    loop.submit(first);
    await loop.tick();
    await loop.tick();
    loop.submit(target);
    await loop.tick();
    loop.submit(job('r', { strategy: sample(5), maxNewTokens: 2 }));
    await drain(loop);
    assert.deepEqual(rec.result(target.jobId), alone);
  });
});

describe('temperature', () => {
  it('greedy takes the most likely token every time', async () => {
    assert.deepEqual(await texts(skewed, { type: 'greedy' }), ['a'.repeat(40)]);
  });

  it('a temperature near 0 samples like greedy, down to the smallest positive number', async () => {
    for (const t of [1e-6, 5e-324]) assert.deepEqual(await texts(skewed, sample(3, { temperature: t })), ['a'.repeat(40)], `temperature ${t}`);
  });

  it('temperature 1 samples the other tokens too, in proportion', async () => {
    const [text] = await texts(skewed, sample(3));
    const count = (c: string) => [...text!].filter((x) => x === c).length;
    assert.equal(text!.length, 40);
    assert.ok(count('b') > 0 && count('a') > count('b'), text);
  });

  it('temperature 0 keeps the top score and excludes the rest, so sampling picks the argmax', () => {
    const scores = applyAll([temperature(0)], [0.5, 3, 1]);
    assert.deepEqual(Array.from(scores), [-Infinity, 0, -Infinity]);
    assert.equal(sampleFromScores(scores, mulberry32(7)), 1);
  });

  it('draws follow softmax(logits / t)', () => {
    const logits = [0, 1, 2, 3];
    for (const t of [1, 0.5, 2]) {
      const want = logits.map((l) => Math.exp(l / t));
      const total = want.reduce((a, b) => a + b);
      const rng = mulberry32(1234);
      const counts = [0, 0, 0, 0];
      const draws = 20000;
      for (let i = 0; i < draws; i++) counts[sampleFromScores(applyAll([temperature(t)], logits), rng)]!++;
      counts.forEach((c, i) => assert.ok(Math.abs(c / draws - want[i]! / total) < 0.015, `t=${t} token ${i}: ${c / draws} vs ${want[i]! / total}`));
    }
  });
});

describe('top_p', () => {
  it('top_p 0.5 keeps only the top token (.6 already reaches it)', async () => {
    for (const seed of [1, 2, 3]) assert.deepEqual(await texts(skewed, sample(seed, { topP: 0.5 })), ['a'.repeat(40)]);
  });

  it('top_p 0.85 samples from the two top tokens only; top_p 1 reaches the tail', async () => {
    const nucleus = (await texts(skewed, sample(11, { topP: 0.85 }), 4)).join('');
    assert.deepEqual(new Set(nucleus), new Set('ab'));
    const full = (await texts(skewed, sample(11, { topP: 1 }), 4)).join('');
    assert.ok(full.includes('c') || full.includes('d'), full);
  });

  it('top_p keeps the smallest set of top tokens reaching p, at least one, ties broken by lower id', () => {
    const kept = (p: number, logits: number[]) => [...applyAll([topP(p)], logits)].map((v) => v !== -Infinity);
    assert.deepEqual(kept(0.59, [Math.log(0.1), Math.log(0.6), Math.log(0.3)]), [false, true, false]);
    assert.deepEqual(kept(0.61, [Math.log(0.1), Math.log(0.6), Math.log(0.3)]), [false, true, true]);
    assert.deepEqual(kept(0.01, [1, 1, 1]), [true, false, false]);
  });
});
