/** Beam search on a fake model whose next-token probabilities are a small hand-made tree. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DecodeBatcher } from '../src/engine/decode-batcher.js';
import type { Strategy } from '../src/generation/types.js';
import { context, drain, encodeText, FakeStepModel, job, Recorder, runAlone, scripted, tree } from './fakes/step-model.js';

/**
 * Greedy takes 'a' (.5) and then one of four equal continuations: 'aw' has probability .125.
 * 'b' is less likely at first (.4), but 'bc' (.38) is the most likely sequence.
 */
const garden = tree({
  '': { a: 0.5, b: 0.4, EOS: 0.1 },
  a: { w: 0.25, x: 0.25, y: 0.25, z: 0.25 },
  b: { c: 0.95, EOS: 0.05 },
});

/** Stopping at once ('' : .5) beats the longer 'abc' (.45 * .99^3) on total log-probability, not per token. */
const shortOrLong = tree({
  '': { EOS: 0.5, a: 0.45, b: 0.05 },
  a: { b: 0.99, EOS: 0.01 },
  ab: { c: 0.99, EOS: 0.01 },
  abc: { EOS: 0.99, d: 0.01 },
});

const beam = (numBeams: number, lengthPenalty = 1): Strategy => ({ type: 'beam', numBeams, lengthPenalty });

const texts = async (next: Parameters<typeof runAlone>[0], strategy: Strategy, over: { n?: number; maxNewTokens?: number; stop?: string[] } = {}) =>
  (await runAlone(next, job('p', { strategy, ...over }))).map((c) => c.text);

describe('beam search', () => {
  it('finds the more likely sequence that greedy misses', async () => {
    assert.deepEqual(await texts(garden, { type: 'greedy' }), ['aw']);
    const [best] = await runAlone(garden, job('p', { strategy: beam(2) }));
    assert.deepEqual(best, { choice: 0, text: 'bc', finishReason: 'stop', tokenIds: encodeText('bc') });
  });

  it('one beam is greedy', async () => {
    assert.deepEqual(await texts(garden, beam(1)), ['aw']);
  });

  it('returns the n best hypotheses, best first', async () => {
    const choices = await runAlone(garden, job('p', { strategy: beam(2), n: 2 }));
    assert.deepEqual(
      choices.map((c) => [c.choice, c.text, c.finishReason]),
      [
        [0, 'bc', 'stop'],
        [1, 'aw', 'stop'],
      ],
    );
  });

  it('starts from one live row, then keeps num_beams rows', async () => {
    const rec = new Recorder();
    const model = new FakeStepModel(garden);
    const loop = new DecodeBatcher(model, context(rec), 64);
    loop.submit(job('p', { strategy: beam(3) }));
    await drain(loop);
    assert.equal(model.stepSizes[0], 1);
    assert.ok(model.stepSizes.slice(1).every((n) => n === 3), model.stepSizes.join(','));
  });

  it('length penalty 0 ranks by total log-probability, 1 by log-probability per token', async () => {
    assert.deepEqual(await texts(shortOrLong, beam(2, 0), { n: 2 }), ['', 'abc']);
    assert.deepEqual(await texts(shortOrLong, beam(2, 1), { n: 2 }), ['abc', '']);
  });

  it('max_tokens ends the live beams with finish "length"', async () => {
    const choices = await runAlone(garden, job('p', { strategy: beam(2), n: 2, maxNewTokens: 1 }));
    assert.deepEqual(
      choices.map((c) => [c.text, c.finishReason]),
      [
        ['a', 'length'],
        ['b', 'length'],
      ],
    );
  });

  it('a stop sequence across tokens ends a hypothesis: text before it, ids through it', async () => {
    const chatty = tree({ '': { h: 0.9, EOS: 0.1 }, h: { i: 0.9, EOS: 0.1 }, hi: { '.': 0.9, EOS: 0.1 }, 'hi.': { '.': 0.9, EOS: 0.1 } });
    assert.deepEqual(await runAlone(chatty, job('p', { strategy: beam(2), stop: ['..'] })), [
      { choice: 0, text: 'hi', finishReason: 'stop', tokenIds: encodeText('hi..') },
    ]);
    assert.deepEqual(await texts(chatty, beam(2)), ['hi..']);
  });

  it('is deterministic, and gives the same hypotheses batched with other jobs joining and leaving', async () => {
    const alone = await runAlone(garden, job('p', { strategy: beam(3), n: 3 }));
    assert.deepEqual(await runAlone(garden, job('p', { strategy: beam(3), n: 3 })), alone);

    // Other rows use a different model per prompt: route by prompt so the beam job still sees `garden`.
    const greedyScripts = scripted({ q: 'long greedy neighbour', r: 'xy' });
    const mixed = (prompt: string, generated: readonly number[]) => (prompt === 'p' ? garden(prompt, generated) : greedyScripts(prompt, generated));
    const rec = new Recorder();
    const model = new FakeStepModel(mixed);
    const loop = new DecodeBatcher(model, context(rec), 64);
    loop.submit(job('q'));
    await loop.tick();
    const target = job('p', { strategy: beam(3), n: 3 });
    loop.submit(target);
    loop.submit(job('r', { strategy: beam(2) }));
    await drain(loop);
    assert.deepEqual(rec.result(target.jobId), alone);
    assert.equal(model.stepSizes[1], 3);
  });
});
