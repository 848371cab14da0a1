/** Prometheus metrics: one registry per app instance (tests build many apps in one process). */
import fp from 'fastify-plugin';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'hypert5_' });
  const m = {
    registry,
    httpDuration: new Histogram({
      name: 'hypert5_http_request_duration_seconds',
      help: 'HTTP request latency by route',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
    cacheHits: new Counter({ name: 'hypert5_adapter_cache_hits_total', help: 'adapter LRU hits', registers: [registry] }),
    cacheMisses: new Counter({ name: 'hypert5_adapter_cache_misses_total', help: 'adapter LRU misses', registers: [registry] }),
    cacheEvictions: new Counter({ name: 'hypert5_adapter_cache_evictions_total', help: 'adapter LRU evictions', registers: [registry] }),
    cacheBytes: new Gauge({ name: 'hypert5_adapter_cache_bytes', help: 'bytes of adapters held in the LRU', registers: [registry] }),
    adaptersCreated: new Counter({ name: 'hypert5_adapters_created_total', help: 'adapters generated or imported', labelNames: ['kind', 'source'], registers: [registry] }),
    queueDepth: new Gauge({ name: 'hypert5_queue_depth', help: 'generation and hypermodel jobs waiting or running', registers: [registry] }),
    decodeBatchRows: new Histogram({
      name: 'hypert5_decode_batch_rows',
      help: 'rows per decoder step (continuous batching)',
      buckets: [1, 2, 4, 8, 16, 32, 64],
      registers: [registry],
    }),
    hyperBatchRows: new Histogram({ name: 'hypert5_hyper_batch_rows', help: 'adapters per hypermodel run', buckets: [1, 2, 4, 8, 16], registers: [registry] }),
    refineSteps: new Counter({ name: 'hypert5_refine_steps_total', help: 'Adam steps of finished adapter refinements (rate() = refine steps/s)', labelNames: ['kind'], registers: [registry] }),
    refineDuration: new Histogram({
      name: 'hypert5_refine_duration_seconds',
      help: 'time one adapter refinement took in its worker (all its steps)',
      labelNames: ['kind'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 1.5, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    refineStopped: new Counter({ name: 'hypert5_refine_cancelled_total', help: 'refinements cancelled (client gone, deadline) before their last step; nothing was stored', registers: [registry] }),
    refineStoppedSteps: new Counter({ name: 'hypert5_refine_cancelled_steps_total', help: 'Adam steps the cancelled refinements had done when their worker dropped them', registers: [registry] }),
    generatedTokens: new Counter({ name: 'hypert5_generated_tokens_total', help: 'completion tokens generated', registers: [registry] }),
    admissionBacklog: new Gauge({ name: 'hypert5_admission_backlog_token_steps', help: 'estimated token-steps of admitted work still ahead', registers: [registry] }),
    admissionRate: new Gauge({ name: 'hypert5_admission_throughput_token_steps_per_second', help: 'measured throughput admission plans with', registers: [registry] }),
    admissionRefused: new Counter({ name: 'hypert5_admission_refused_total', help: 'requests refused with HT_ERR_OVERLOADED before any work (queue full or expected wait past the deadline)', registers: [registry] }),
    admissionShed: new Counter({ name: 'hypert5_admission_shed_total', help: 'queued jobs dropped before any compute because their deadline could no longer be met', registers: [registry] }),
  };
  return m;
}

type Metrics = ReturnType<typeof createMetrics>;

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics;
  }
}

export default fp(
  async (app) => {
    const metrics = createMetrics();
    app.decorate('metrics', metrics);
    app.addHook('onResponse', async (req, reply) => {
      const route = req.routeOptions.url ?? 'unmatched';
      metrics.httpDuration.observe({ method: req.method, route, status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
    });
  },
  { name: 'metrics' },
);
