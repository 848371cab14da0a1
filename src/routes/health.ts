/** Liveness, readiness and Prometheus metrics. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { HtError } from '../errors/domain-error.js';
import { errors } from '../errors/responses.js';
import { Health } from '../schemas/health.js';

const routes: FastifyPluginAsyncTypebox<{ retryAfterS: number }> = async (app, opts) => {
  app.get('/healthz', {
    schema: { tags: ['health'], summary: 'Alive (the process answers)', response: { 200: Health } },
  }, async () => ({ status: 'ok' }));

  app.get('/readyz', {
    schema: {
      tags: ['health'],
      summary: 'Ready: 503 until the models are loaded, and while the adapter store is full',
      response: { 200: Health, ...errors(503) },
    },
  }, async () => {
    const s = app.engine.scheduler;
    if (s.closing) throw new HtError('HT_ERR_SHUTTING_DOWN', 'the server is shutting down', opts.retryAfterS);
    if (!s.ready) throw new HtError('HT_ERR_NOT_READY', 'models are still loading or an inference worker is being replaced', opts.retryAfterS);
    const store = await app.adapterStore.health?.();
    if (store && !store.ok) throw new HtError('HT_ERR_STORE_UNHEALTHY', store.reason, opts.retryAfterS);
    return { status: 'ready' };
  });

  app.get('/metrics', {
    schema: {
      tags: ['health'],
      summary: 'Prometheus metrics (text exposition format)',
      response: { 200: { description: 'metrics', content: { 'text/plain': { schema: Type.String() } } } },
    },
  }, async (_req, reply) => {
    const body = await app.metrics.registry.metrics();
    return reply.type(app.metrics.registry.contentType).send(body);
  });
};

export default routes;
