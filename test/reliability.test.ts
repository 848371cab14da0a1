/**
 * Backpressure and faults in one process: the per-request deadline, a client that hangs up, an ONNX Runtime
 * error in one batch, and a worker thread that dies. Each ends with the server still answering.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { FAULTY_WORKER, injectFault } from './fakes/faults.js';
import { BASE, makeApp } from './helper.js';

const LONG = { model: BASE, prompt: 'x', n: 4, max_tokens: 512, temperature: 0 };
const SHORT = { model: BASE, prompt: 'Grace', max_tokens: 4, temperature: 0 };

async function decodeSteps(app: FastifyInstance): Promise<number> {
  const v = (await app.metrics.decodeBatchRows.get()).values.find((x) => x.metricName?.endsWith('_count'));
  return v?.value ?? 0;
}

async function until(cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(10);
  }
}

function errorOf(res: { statusCode: number; json(): unknown }, status: number, code: string): string {
  assert.equal(res.statusCode, status, JSON.stringify(res.json()));
  const body = res.json() as { error: { code: string; message: string } };
  assert.equal(body.error.code, code);
  return body.error.message;
}

describe('backpressure', () => {
  let app: FastifyInstance;
  before(async () => {
    app = await makeApp({ MAX_TOKENS: 512, REQUEST_DEADLINE_MS: 300, RETRY_AFTER_S: 2 });
  });
  after(() => app.close());

  it('a request past REQUEST_DEADLINE_MS is answered 503 with Retry-After and leaves the batch', async () => {
    const r = await app.inject({ method: 'POST', url: '/v1/completions', payload: LONG });
    assert.match(errorOf(r, 503, 'HT_ERR_DEADLINE_EXCEEDED'), /300 ms \(REQUEST_DEADLINE_MS\)/);
    assert.equal(r.headers['retry-after'], '2');
    assert.equal(app.engine.scheduler.outstanding, 0);
    // The worker stopped decoding it: no more steps once the cancel landed.
    await sleep(50);
    const s = await decodeSteps(app);
    await sleep(150);
    assert.equal(await decodeSteps(app), s);
    assert.equal((await app.inject({ method: 'POST', url: '/v1/completions', payload: SHORT })).statusCode, 200);
  });

  it('a client that disconnects frees its batch slots at the next decode step', async () => {
    const slow = await makeApp({ MAX_TOKENS: 512, REQUEST_DEADLINE_MS: 0 });
    try {
      await slow.listen({ port: 0, host: '127.0.0.1' });
      const { port } = slow.server.address() as AddressInfo;
      const before = await decodeSteps(slow);
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/completions', headers: { 'content-type': 'application/json' } });
      req.on('error', () => {});
      req.end(JSON.stringify(LONG));
      await until(async () => (await decodeSteps(slow)) > before + 3);
      assert.equal(slow.engine.scheduler.outstanding, 1);
      req.destroy();
      await until(() => slow.engine.scheduler.outstanding === 0, 1000);
      await sleep(50);
      const s = await decodeSteps(slow);
      await sleep(200);
      assert.equal(await decodeSteps(slow), s, 'the worker still decodes rows of a request whose client left');
      const ok = await slow.inject({ method: 'POST', url: '/v1/completions', payload: SHORT });
      assert.equal(ok.statusCode, 200);
    } finally {
      await slow.close();
    }
  });
});

describe('faults', () => {
  let app: FastifyInstance;
  before(async () => {
    app = await makeApp({ MAX_TOKENS: 512, RETRY_AFTER_S: 1 }, { workerEntry: FAULTY_WORKER });
  });
  after(() => app.close());
  const post = (url: string, payload: object) => app.inject({ method: 'POST', url, payload });

  it('an ONNX Runtime error in a decode step fails that batch with a code; the next request is served', async () => {
    // A plain request's steps run on the LoRA decoder (every row of one kind or none), which the fixture has.
    await injectFault({ kind: 'run-error', graph: 'decoder_lora', times: 1 });
    const failed = await post('/v1/completions', SHORT);
    const m = errorOf(failed, 500, 'HT_ERR_INFERENCE_FAILED');
    assert.doesNotMatch(m, /injected|feeds/, 'internal details stay in the log');
    assert.equal((await post('/v1/completions', SHORT)).statusCode, 200);
    assert.equal(app.engine.scheduler.outstanding, 0);
  });

  it('a failing hypermodel batch fails only the adapter requests in it', async () => {
    const running = post('/v1/completions', { ...LONG, n: 1, max_tokens: 200 });
    await sleep(30);
    await injectFault({ kind: 'run-error', graph: 'hyper_prefix', times: 1 });
    const examples = [{ input: 'fault', output: 'tolerance' }];
    errorOf(await post('/v1/adapters', { examples }), 500, 'HT_ERR_INFERENCE_FAILED');
    assert.equal((await running).statusCode, 200, 'a generation in the decode batch is untouched');
    assert.equal((await post('/v1/adapters', { examples })).statusCode, 201);
  });

  it('an encoder failure fails the requests it was admitting, nothing else', async () => {
    await injectFault({ kind: 'run-error', graph: 'encoder', times: 1 });
    errorOf(await post('/v1/completions', SHORT), 500, 'HT_ERR_INFERENCE_FAILED');
    assert.equal((await post('/v1/completions', SHORT)).statusCode, 200);
  });

  it('a worker thread that dies is replaced; its requests get a retryable 503', async () => {
    const running = post('/v1/completions', LONG);
    await until(() => app.engine.scheduler.outstanding === 1);
    await sleep(50);
    await injectFault({ kind: 'crash' });
    const r = await running;
    errorOf(r, 503, 'HT_ERR_WORKER_RESTARTING');
    assert.equal(r.headers['retry-after'], '1');
    assert.equal(app.engine.scheduler.outstanding, 0);
    // Until the replacement is up, readiness and new work answer 503 rather than hang.
    const during = await app.inject('/readyz');
    if (during.statusCode === 503) errorOf(during, 503, 'HT_ERR_NOT_READY');
    await until(() => app.engine.scheduler.ready, 20_000);
    assert.equal((await app.inject('/readyz')).statusCode, 200);
    const after = await post('/v1/completions', SHORT);
    assert.equal(after.statusCode, 200, after.body);
  });
});
