/**
 * Refinement through the API on the tiny fixture: refusals of a bad `refine` (nothing stored), determinism and
 * content addressing, the metadata, the deadline and a client leaving mid-refinement (the job stops early,
 * nothing stored), refining an imported adapter, and a bundle without training-step graphs.
 */
import assert from 'node:assert/strict';
import { copyFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { AdapterService } from '../src/services/adapters.js';
import { fitPlan } from '../src/services/fit.js';
import { BASE, FIXTURE, makeApp, removeDir, tempDir } from './helper.js';

const EXAMPLES = [
  { input: 'Ada Lovelace', output: 'Lovelace, A.' },
  { input: 'Grace Hopper', output: 'Hopper, G.' },
  { input: 'Alan Turing', output: 'Turing, A.' },
];

function errorOf(res: { statusCode: number; json(): unknown }, status: number, code: string): string {
  assert.equal(res.statusCode, status, JSON.stringify(res.json()));
  const body = res.json() as { error: { code: string; message: string } };
  assert.equal(body.error.code, code);
  return body.error.message;
}

async function until(cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(10);
  }
}

async function counter(app: FastifyInstance, name: 'refineStopped' | 'refineStoppedSteps'): Promise<number> {
  return (await app.metrics[name].get()).values[0]?.value ?? 0;
}

const refinedStored = async (app: FastifyInstance) => (await app.adapters.list()).filter((m) => m.source === 'refine');

describe('refine: input validation', () => {
  let app: FastifyInstance;
  before(async () => {
    app = await makeApp({ MAX_REFINE_STEPS: 50 });
  });
  after(() => app.close());
  const post = (payload: object, url = '/v1/adapters') => app.inject({ method: 'POST', url, payload });

  const BAD: [string, object, string, RegExp][] = [
    ['steps 0', { steps: 0 }, 'HT_ERR_VALIDATION', /body\.refine\.steps/],
    ['steps not an integer', { steps: 1.5 }, 'HT_ERR_VALIDATION', /body\.refine\.steps/],
    ['steps missing', { learning_rate: 0.01 }, 'HT_ERR_VALIDATION', /body\.refine.*steps/],
    ['steps past MAX_REFINE_STEPS', { steps: 51 }, 'HT_ERR_LIMIT_EXCEEDED', /body\.refine\.steps is 51; the limit is 50 \(MAX_REFINE_STEPS\)/],
    ['learning_rate 0', { steps: 2, learning_rate: 0 }, 'HT_ERR_VALIDATION', /body\.refine\.learning_rate/],
    ['learning_rate negative', { steps: 2, learning_rate: -0.1 }, 'HT_ERR_VALIDATION', /body\.refine\.learning_rate/],
    ['learning_rate above 1', { steps: 2, learning_rate: 2 }, 'HT_ERR_VALIDATION', /body\.refine\.learning_rate/],
    ['augment unknown', { steps: 2, augment: 'shuffle' }, 'HT_ERR_VALIDATION', /body\.refine\.augment/],
    ['unknown field', { steps: 2, epochs: 3 }, 'HT_ERR_VALIDATION', /body\.refine\.epochs/],
  ];
  for (const [name, refine, code, message] of BAD) {
    it(`${name}: 422 ${code} naming the field, nothing stored`, async () => {
      assert.match(errorOf(await post({ examples: EXAMPLES, refine }), 422, code), message);
      assert.match(errorOf(await post({ model: BASE, prompt: 'x', examples: EXAMPLES, refine }, '/v1/completions'), 422, code), message);
      assert.deepEqual(await app.adapters.list(), []);
    });
  }

  it('refine without examples on a completion is refused', async () => {
    assert.match(errorOf(await post({ model: BASE, prompt: 'x', refine: { steps: 2 } }, '/v1/completions'), 422, 'HT_ERR_INCOMPATIBLE_PARAMETERS'), /body\.refine/);
  });

  it('the refine route: unknown adapter 404, bad refine 422, nothing stored', async () => {
    const id = 'ad-0123456789abcdef0123456789abcdef';
    errorOf(await post({ examples: EXAMPLES, refine: { steps: 2 } }, `/v1/adapters/${id}/refine`), 404, 'HT_ERR_ADAPTER_NOT_FOUND');
    errorOf(await post({ examples: EXAMPLES }, `/v1/adapters/${id}/refine`), 422, 'HT_ERR_VALIDATION');
    assert.deepEqual(await app.adapters.list(), []);
  });
});

describe('refine: determinism, metadata, the refine route', () => {
  let app: FastifyInstance;
  before(async () => {
    app = await makeApp();
  });
  after(() => app.close());
  const post = (payload: object, url = '/v1/adapters') => app.inject({ method: 'POST', url, payload });
  const params = async (id: string) => (await app.inject(`/v1/adapters/${id}/parameters`)).rawPayload;

  it('the same request gives the same id and the same bytes, recomputed after a delete; other steps, another id', async () => {
    const body = { examples: EXAMPLES, kind: 'lora', refine: { steps: 8 } };
    const first = await post(body);
    assert.equal(first.statusCode, 201, first.body);
    const a = first.json<{ id: string; parent: string }>();
    const bytes = await params(a.id);
    const again = await post(body);
    assert.equal(again.statusCode, 200);
    assert.equal(again.json().id, a.id);
    assert.equal(again.json().cached, true);
    // Computed a second time from scratch: bit for bit the same.
    assert.equal((await app.inject({ method: 'DELETE', url: `/v1/adapters/${a.id}` })).statusCode, 200);
    const redo = await post(body);
    assert.equal(redo.statusCode, 201);
    assert.equal(redo.json().id, a.id);
    assert.ok(bytes.equals(await params(a.id)), 'a refinement computed again gives other bytes');
    assert.ok(!bytes.equals(await params(a.parent)), 'the refined adapter is its parent unchanged');
    const other = await post({ ...body, refine: { steps: 9 } });
    assert.notEqual(other.json().id, a.id);
    assert.equal(other.json().parent, a.parent);
    const lr = await post({ ...body, refine: { steps: 8, learning_rate: 0.002 } });
    assert.notEqual(lr.json().id, a.id);
  });

  it('metadata: parent and refine fields; the loss falls on a learnable task', async () => {
    const res = await post({ examples: EXAMPLES, kind: 'lora', refine: { steps: 30, learning_rate: 0.01, augment: 'leave-one-out' } });
    assert.equal(res.statusCode, 201, res.body);
    const body = res.json<{ id: string; parent: string; num_examples: number; refine: Record<string, unknown> }>();
    assert.deepEqual(Object.keys(body.refine).sort(), ['augment', 'learning_rate', 'loss_first', 'loss_last', 'ms', 'steps']);
    assert.equal(body.refine.steps, 30);
    assert.equal(body.refine.learning_rate, 0.01);
    assert.equal(body.refine.augment, 'leave-one-out');
    assert.ok((body.refine.loss_last as number) < (body.refine.loss_first as number), JSON.stringify(body.refine));
    assert.equal(body.num_examples, 3);
    // The one-pass parent is stored too, and the metadata survives a fetch.
    assert.equal((await app.inject(`/v1/adapters/${body.parent}`)).statusCode, 200);
    assert.deepEqual((await app.inject(`/v1/adapters/${body.id}`)).json().refine, body.refine);
    // Defaults come from the manifest.
    const d = (await post({ examples: EXAMPLES, kind: 'prefix', refine: { steps: 2 } })).json().refine;
    const defaults = app.engine.bundle.manifest.refine!.kinds.prefix!;
    assert.equal(d.learning_rate, defaults.learning_rate);
    assert.equal(d.augment, defaults.augment);
  });

  it('a completion with inline examples and refine answers with the refined adapter', async () => {
    const res = await post({ model: BASE, prompt: 'Katherine Johnson', examples: EXAMPLES, adapter_kind: 'lora', refine: { steps: 8 }, max_tokens: 4, temperature: 0 }, '/v1/completions');
    assert.equal(res.statusCode, 200, res.body);
    const made = (await post({ examples: EXAMPLES, kind: 'lora', refine: { steps: 8 } })).json();
    assert.equal(res.json().model, made.id);
  });

  it('an imported adapter is refined by POST /v1/adapters/{id}/refine', async () => {
    const one = (await post({ examples: EXAMPLES.slice(0, 2), kind: 'lora' })).json().id as string;
    const imported = await app.inject({ method: 'POST', url: '/v1/adapters/import', headers: { 'content-type': 'application/octet-stream' }, payload: await params(one) });
    assert.equal(imported.statusCode, 201, imported.body);
    const importedId = imported.json().id as string;
    const body = { examples: EXAMPLES, refine: { steps: 6 } };
    const res = await post(body, `/v1/adapters/${importedId}/refine`);
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.json().parent, importedId);
    assert.equal(res.json().kind, 'lora');
    assert.ok(!(await params(res.json().id)).equals(await params(importedId)));
    const again = await post(body, `/v1/adapters/${importedId}/refine`);
    assert.equal(again.statusCode, 200);
    assert.equal(again.json().id, res.json().id);
    // Other examples, another refined adapter.
    const other = await post({ ...body, examples: EXAMPLES.slice(1) }, `/v1/adapters/${importedId}/refine`);
    assert.notEqual(other.json().id, res.json().id);
  });

  it('a new parent hands its tensors to the steps before its fit report is done; it is stored before its refined adapter', async () => {
    const events: string[] = [];
    const { scheduler } = app.engine;
    const store = app.adapterStore;
    const service = new AdapterService({
      manifest: app.engine.bundle.manifest,
      store: { ...store, put: (r) => (events.push(`stored ${r.meta.source}`), store.put(r)), get: (id) => store.get(id), delete: (id) => store.delete(id), list: () => store.list() },
      engine: {
        admit: (jobs, cost) => scheduler.admit(jobs, cost),
        hyper: (kind, ids) => scheduler.hyper(kind, ids),
        generate: (job, handlers, request) => scheduler.generate(job, handlers, request),
        refine: (spec) => (spec.steps > 1 && events.push('steps'), scheduler.refine(spec)),
      },
      recipe: (kind, examples) => app.validator.recipe(kind, examples),
      retryAfterS: 1,
      created: () => {},
      fitPlan: (kind, examples, loo) => fitPlan(app.engine.bundle, app.engine.tokenizer, kind, examples, loo),
    });
    const examples = [...EXAMPLES, { input: 'Edsger Dijkstra', output: 'Dijkstra, E.' }];
    const made = await service.getOrCreate(app.validator.newAdapter({ examples, kind: 'lora', refine: { steps: 5 } }));
    assert.equal(made.record.meta.source, 'refine');
    // The steps began while the one-pass parent was still being scored; the refined adapter waited for it.
    assert.deepEqual(events, ['steps', 'stored hypermodel', 'stored refine']);
    const parent = await service.get(made.record.meta.parent!);
    assert.equal(parent?.meta.source, 'hypermodel');
    assert.ok(parent.meta.fit, 'the parent has its fit report');
    assert.equal(made.record.meta.fit?.loo_exact, parent.meta.fit.loo_exact);
  });
});

describe('refine: deadline and disconnect', () => {
  const LONG = { examples: EXAMPLES, kind: 'prefix', refine: { steps: 200, augment: 'leave-one-out' } };

  it('past REQUEST_DEADLINE_MS: 503, the job stops early, nothing refined is stored', async () => {
    const app = await makeApp({ REQUEST_DEADLINE_MS: 150, RETRY_AFTER_S: 3 });
    try {
      // Without the fit report: its work on the parent would sit ahead of the refinement in admission's books
      // and a 150 ms deadline would refuse the refinement (429) before it starts, which is not what is tested here.
      const res = await app.inject({ method: 'POST', url: '/v1/adapters', payload: { ...LONG, fit: false } });
      assert.match(errorOf(res, 503, 'HT_ERR_DEADLINE_EXCEEDED'), /150 ms \(REQUEST_DEADLINE_MS\)/);
      assert.equal(res.headers['retry-after'], '3');
      await until(async () => (await counter(app, 'refineStopped')) === 1);
      const steps = await counter(app, 'refineStoppedSteps');
      assert.ok(steps < 200, `the worker ran ${steps} steps`);
      assert.deepEqual(await refinedStored(app), []);
      assert.equal(app.engine.scheduler.outstanding, 0);
    } finally {
      await app.close();
    }
  });

  /** Sends `body` to `url`, hangs up once the one-pass parent is stored and a few steps ran; the refinement must stop early. */
  async function disconnectMidRefinement(url: string, body: object): Promise<void> {
    const app = await makeApp({ REQUEST_DEADLINE_MS: 0 });
    try {
      await app.listen({ port: 0, host: '127.0.0.1' });
      const { port } = app.server.address() as AddressInfo;
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: url, headers: { 'content-type': 'application/json' } });
      req.on('error', () => {});
      req.end(JSON.stringify(body));
      // The one-pass parent is stored before refinement starts; then let a few steps run.
      await until(async () => (await app.adapters.list()).length === 1);
      await sleep(300);
      req.destroy();
      await until(async () => (await counter(app, 'refineStopped')) === 1);
      const steps = await counter(app, 'refineStoppedSteps');
      assert.ok(steps < 200, `the worker ran ${steps} steps`);
      await until(() => app.engine.scheduler.outstanding === 0);
      assert.deepEqual(await refinedStored(app), []);
    } finally {
      await app.close();
    }
  }

  it('a client that disconnects cancels the refinement between two steps; nothing refined is stored', () =>
    disconnectMidRefinement('/v1/adapters', LONG));

  it('a client that disconnects from a completion with inline refine cancels the refinement too', () =>
    disconnectMidRefinement('/v1/completions', { model: BASE, prompt: 'Katherine Johnson', examples: LONG.examples, adapter_kind: LONG.kind, refine: LONG.refine, max_tokens: 4 }));
});

describe('refine: a bundle without training-step graphs', () => {
  let dir: string;
  let app: FastifyInstance;
  before(async () => {
    dir = tempDir('hypert5-no-refine-');
    for (const f of readdirSync(FIXTURE)) if (!f.startsWith('train_step_')) copyFileSync(path.join(FIXTURE, f), path.join(dir, f));
    const m = JSON.parse(readFileSync(path.join(FIXTURE, 'manifest.json'), 'utf8')) as Record<string, Record<string, unknown>>;
    delete m.refine;
    for (const section of ['files', 'graphs'] as const) {
      for (const k of Object.keys(m[section]!)) if (k.startsWith('train_step_')) delete m[section]![k];
    }
    writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(m));
    app = await makeApp({ MODEL_DIR: dir });
  });
  after(async () => {
    await app.close();
    removeDir(dir);
  });

  it('loads, serves one-pass adapters, and refuses refine with a 422 naming the missing graph', async () => {
    assert.equal((await app.inject({ method: 'POST', url: '/v1/adapters', payload: { examples: EXAMPLES, kind: 'lora' } })).statusCode, 201);
    const res = await app.inject({ method: 'POST', url: '/v1/adapters', payload: { examples: EXAMPLES.slice(1), kind: 'lora', refine: { steps: 2 } } });
    assert.match(errorOf(res, 422, 'HT_ERR_REFINE_UNAVAILABLE'), /body\.refine.*train_step_lora\.onnx/);
    assert.equal((await app.adapters.list()).length, 1);
  });
});
