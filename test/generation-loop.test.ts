/** The continuous-batching loop on a fake model: joining, leaving, cancelling, stopping, failing. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DecodeBatcher } from '../src/engine/decode-batcher.js';
import { context, drain, encodeText, FakeStepModel, job, Recorder, runAlone, scripted, withFaults } from './fakes/step-model.js';

const SCRIPTS = {
  alpha: 'the quick brown fox',
  beta: 'jumps',
  gamma: 'over the lazy dog!',
  delta: 'abcEND more',
  partial: 'abENx END',
  utf8: 'café',
};
const next = scripted(SCRIPTS);

function setup(maxRows = 64) {
  const rec = new Recorder();
  const model = new FakeStepModel(next);
  const steps: number[] = [];
  const loop = new DecodeBatcher(model, context(rec), maxRows, (rows) => steps.push(rows));
  return { rec, model, loop, steps };
}

async function ticks(loop: DecodeBatcher, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await loop.tick();
}

describe('generation loop: one job', () => {
  it('follows the model to eos: finish "stop", token ids without eos, one decode step per token plus eos', async () => {
    const { rec, model, loop } = setup();
    const j = job('beta');
    loop.submit(j);
    await drain(loop);
    assert.deepEqual(rec.result(j.jobId), [{ choice: 0, text: 'jumps', finishReason: 'stop', tokenIds: encodeText('jumps') }]);
    assert.deepEqual(model.stepSizes, [1, 1, 1, 1, 1, 1]);
    assert.deepEqual(model.encodeCalls, [['beta']]);
  });

  it('max_tokens cuts the text with finish "length" after exactly that many steps', async () => {
    const { rec, model, loop } = setup();
    const j = job('alpha', { maxNewTokens: 3 });
    loop.submit(j);
    await drain(loop);
    assert.deepEqual(rec.result(j.jobId), [{ choice: 0, text: 'the', finishReason: 'length', tokenIds: encodeText('the') }]);
    assert.equal(model.stepSizes.length, 3);
  });

  it('max_tokens equal to the text length still says "length": eos was never generated', async () => {
    const { rec, loop } = setup();
    const j = job('beta', { maxNewTokens: 5 });
    loop.submit(j);
    await drain(loop);
    assert.equal(rec.text(j.jobId), 'jumps');
    assert.equal(rec.result(j.jobId)[0]!.finishReason, 'length');
  });

  it('a stop sequence spread over several tokens ends the row; the text stops before it, the ids include it', async () => {
    const { rec, loop } = setup();
    const j = job('delta', { stop: ['END'] });
    loop.submit(j);
    await drain(loop);
    assert.deepEqual(rec.result(j.jobId), [{ choice: 0, text: 'abc', finishReason: 'stop', tokenIds: encodeText('abcEND') }]);
  });

  it('the earliest of several stop sequences wins; a stop prefix that goes on differently does not stop', async () => {
    const { rec, loop } = setup();
    // 'E' and 'bcE' complete at the same token; 'bcE' starts earlier, though listed later.
    const earliest = job('delta', { stop: ['E', 'bcE', 'more'] });
    const diverging = job('partial', { stop: ['END'] });
    loop.submit(earliest);
    loop.submit(diverging);
    await drain(loop);
    assert.equal(rec.text(earliest.jobId), 'a');
    assert.equal(rec.text(diverging.jobId), 'abENx ');
  });

  it('a stop sequence completed by the last allowed token says "stop", not "length"', async () => {
    const { rec, loop } = setup();
    const j = job('delta', { stop: ['END'], maxNewTokens: 6 });
    loop.submit(j);
    await drain(loop);
    assert.deepEqual([rec.text(j.jobId), rec.result(j.jobId)[0]!.finishReason], ['abc', 'stop']);
  });

  it('streams only text that can no longer change: never a stop sequence start, never half a UTF-8 character', async () => {
    const { rec, loop } = setup();
    const stopped = job('delta', { stop: ['END'], stream: true });
    const accented = job('utf8', { stream: true });
    loop.submit(stopped);
    loop.submit(accented);
    await drain(loop);
    const streamed = (id: number) => rec.deltas.get(`${id}/0`) ?? [];
    // The route sends the rest of the final text after the deltas, so the deltas must be a prefix of it.
    assert.ok('abc'.startsWith(streamed(stopped.jobId).join('')));
    assert.ok(streamed(stopped.jobId).join('').length > 0, 'something was streamed before the stop');
    assert.ok(!streamed(stopped.jobId).join('').includes('E'));
    assert.equal(rec.text(accented.jobId), 'café');
    assert.equal(streamed(accented.jobId).join(''), 'café');
    assert.ok(streamed(accented.jobId).every((d) => !d.includes('\ufffd')));
    assert.equal(rec.deltas.size, 2);
  });

  it('a job that does not stream gets no deltas', async () => {
    const { rec, loop } = setup();
    const j = job('alpha');
    loop.submit(j);
    await drain(loop);
    assert.equal(rec.deltas.size, 0);
    assert.equal(rec.text(j.jobId), SCRIPTS.alpha);
  });
});

describe('generation loop: continuous batching', () => {
  it('jobs joining and leaving mid-flight get the same tokens as when run alone', async () => {
    const alone = {
      alpha: await runAlone(next, job('alpha')),
      beta: await runAlone(next, job('beta', { n: 2 })),
      gamma: await runAlone(next, job('gamma', { maxNewTokens: 9 })),
    };
    const { rec, loop, model } = setup();
    const a = job('alpha');
    const b = job('beta', { n: 2 });
    const c = job('gamma', { maxNewTokens: 9 });
    loop.submit(a);
    await ticks(loop, 3); // a has a 3-step cache when b joins
    loop.submit(b);
    await ticks(loop, 2);
    loop.submit(c); // c joins while a and b are mid-flight; b leaves (after 5 tokens + eos) before a
    await drain(loop);
    assert.deepEqual(rec.result(a.jobId), alone.alpha);
    assert.deepEqual(rec.result(b.jobId), alone.beta);
    assert.deepEqual(rec.result(c.jobId), alone.gamma);
    // They really shared steps: 1 row, then a + b's two, then all four, then b leaves, then c leaves.
    assert.deepEqual(model.stepSizes.slice(0, 7), [1, 1, 1, 3, 3, 4, 4]);
    assert.equal(Math.max(...model.stepSizes), 4);
    assert.equal(model.stepSizes.at(-1), 1);
    assert.deepEqual(model.encodeCalls, [['alpha'], ['beta'], ['gamma']]);
  });

  it('jobs submitted together are encoded together and decoded in one batch', async () => {
    const { rec, loop, model } = setup();
    const jobs = [job('alpha'), job('beta'), job('gamma')];
    for (const j of jobs) loop.submit(j);
    await drain(loop);
    assert.deepEqual(model.encodeCalls, [['alpha', 'beta', 'gamma']]);
    assert.equal(model.stepSizes[0], 3);
    assert.deepEqual(jobs.map((j) => rec.text(j.jobId)), [SCRIPTS.alpha, SCRIPTS.beta, SCRIPTS.gamma]);
  });

  it('onStep reports the rows of every decode step', async () => {
    const { loop, model, steps } = setup();
    loop.submit(job('alpha'));
    await ticks(loop, 2);
    loop.submit(job('beta', { n: 3 }));
    await drain(loop);
    assert.deepEqual(steps, model.stepSizes);
    assert.ok(steps.includes(4));
  });

  it('never decodes more rows than the limit; a waiting job joins when rows leave, in order', async () => {
    const { rec, loop, model } = setup(3);
    const jobs = [job('beta', { n: 2 }), job('alpha'), job('gamma'), job('delta')];
    for (const j of jobs) loop.submit(j);
    await drain(loop);
    assert.ok(model.stepSizes.every((n) => n <= 3), `step sizes ${model.stepSizes.join(',')}`);
    // beta (2 rows) + alpha (1) fill the batch; gamma waits until beta leaves, delta until there is room again.
    assert.deepEqual(model.encodeCalls, [['beta', 'alpha'], ['gamma', 'delta']]);
    assert.deepEqual(jobs.map((j) => rec.text(j.jobId)), [SCRIPTS.beta, SCRIPTS.alpha, SCRIPTS.gamma, SCRIPTS.delta]);
  });

  it('a job wider than the whole batch waits for an empty batch, then runs alone', async () => {
    const { rec, loop, model } = setup(2);
    const small = job('beta');
    const wide = job('alpha', { n: 3, maxNewTokens: 4 });
    loop.submit(small);
    await loop.tick();
    loop.submit(wide);
    await drain(loop);
    assert.deepEqual(model.stepSizes, [1, 1, 1, 1, 1, 1, 3, 3, 3, 3]);
    assert.deepEqual(rec.result(wide.jobId).map((c) => c.text), ['the ', 'the ', 'the ']);
  });
});

describe('generation loop: cancelling', () => {
  it('a job cancelled between steps leaves without a result and without disturbing the others', async () => {
    const alone = { alpha: await runAlone(next, job('alpha')), gamma: await runAlone(next, job('gamma')) };
    const { rec, loop, model } = setup();
    const a = job('alpha');
    const b = job('beta', { n: 2 });
    const c = job('gamma');
    for (const j of [a, b, c]) loop.submit(j);
    await ticks(loop, 2);
    loop.cancel(b.jobId);
    await drain(loop);
    assert.deepEqual(rec.result(a.jobId), alone.alpha);
    assert.deepEqual(rec.result(c.jobId), alone.gamma);
    assert.ok(!rec.results.has(b.jobId) && !rec.failures.has(b.jobId));
    assert.deepEqual(model.stepSizes.slice(0, 3), [4, 4, 2]);
  });

  it('a job cancelled while a step is in flight is dropped from that step; the others advance', async () => {
    const alone = await runAlone(next, job('gamma'));
    const { rec, loop, model } = setup();
    const a = job('alpha');
    const b = job('gamma');
    loop.submit(a);
    loop.submit(b);
    model.duringStep = (i) => {
      if (i === 3) loop.cancel(a.jobId);
    };
    await drain(loop);
    assert.ok(!rec.results.has(a.jobId));
    assert.deepEqual(rec.result(b.jobId), alone);
    assert.deepEqual(model.stepSizes.slice(0, 5), [2, 2, 2, 2, 1]);
  });

  it('a waiting job that is cancelled is never encoded', async () => {
    const { rec, loop, model } = setup(1);
    const a = job('beta');
    const b = job('gamma');
    loop.submit(a);
    loop.submit(b);
    await loop.tick();
    loop.cancel(b.jobId);
    await drain(loop);
    assert.deepEqual(model.encodeCalls, [['beta']]);
    assert.ok(!rec.results.has(b.jobId));
    assert.ok(loop.idle);
  });

  it(
    'a job cancelled while its encoder runs never decodes',
    async () => {
      const rec = new Recorder();
      const model = new FakeStepModel(next);
      const j = job('alpha');
      const loop: DecodeBatcher = new DecodeBatcher(
        {
          encode: async (items) => {
            await new Promise<void>((resolve) => setImmediate(resolve));
            loop.cancel(j.jobId);
            return model.encode(items);
          },
          step: (rows) => model.step(rows),
        },
        context(rec),
        64,
      );
      loop.submit(j);
      await drain(loop);
      assert.deepEqual(model.stepSizes, []);
      assert.ok(!rec.results.has(j.jobId));
    },
  );
});

describe('generation loop: failures', () => {
  it('a failed decode step fails every job in it, the loop empties, and later jobs run', async () => {
    const rec = new Recorder();
    const model = new FakeStepModel(next);
    const loop = new DecodeBatcher(withFaults(model, { step: [2] }), context(rec), 64);
    const a = job('alpha');
    const b = job('beta');
    loop.submit(a);
    loop.submit(b);
    await drain(loop);
    assert.equal(rec.failures.get(a.jobId)?.message, 'decoder failed');
    assert.equal(rec.failures.get(b.jobId)?.message, 'decoder failed');
    assert.equal(rec.results.size, 0);
    const c = job('gamma');
    loop.submit(c);
    await drain(loop);
    assert.equal(rec.text(c.jobId), SCRIPTS.gamma);
  });

  it('a failed encode fails only the jobs it admitted; running jobs finish normally', async () => {
    const rec = new Recorder();
    const loop = new DecodeBatcher(withFaults(new FakeStepModel(next), { encode: [1] }), context(rec), 64);
    const a = job('alpha');
    const b = job('beta');
    const c = job('gamma');
    loop.submit(a);
    await loop.tick();
    loop.submit(b);
    loop.submit(c);
    await drain(loop);
    assert.equal(rec.text(a.jobId), SCRIPTS.alpha);
    assert.equal(rec.failures.get(b.jobId)?.message, 'encoder failed');
    assert.equal(rec.failures.get(c.jobId)?.message, 'encoder failed');
    assert.ok(!rec.failures.has(a.jobId));
  });
});
