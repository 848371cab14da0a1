/** Builds the fastify app from plugins and routes; listening is server.ts's job. */
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Config } from './config/index.js';
import { fastifyTrustProxy } from './config/trust-proxy.js';
import { installBodyParsers } from './errors/body-parsers.js';
import { clientErrorHandler } from './errors/client-error.js';
import { frameworkErrorHandler, installErrorHandler } from './errors/handler.js';
import adapterStore from './plugins/adapter-store.js';
import engine from './plugins/engine.js';
import methods from './plugins/methods.js';
import metrics from './plugins/metrics.js';
import security from './plugins/security.js';
import services from './plugins/services.js';
import swagger from './plugins/swagger.js';
import adapterRoutes from './routes/adapters.js';
import completionRoutes from './routes/completions.js';
import healthRoutes from './routes/health.js';
import modelRoutes from './routes/models.js';
import playgroundRoutes from './routes/playground.js';

export interface AppOptions {
  config: Config;
  logger?: FastifyServerOptions['logger'];
  /** Routes and schemas only, no model: for generating openapi.yaml. */
  openapiOnly?: boolean;
  /** The inference worker's entry module; only tests set it (a worker that injects faults). */
  workerEntry?: URL;
}

export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const { config } = opts;
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: config.BODY_LIMIT_BYTES,
    requestIdHeader: 'x-request-id',
    // Whose X-Forwarded-For names the client (the per-address limits): src/config/trust-proxy.ts.
    trustProxy: fastifyTrustProxy(config.TRUST_PROXY),
    genReqId: () => randomUUID(),
    // While closing, requests on open connections still get catalogue errors (HT_ERR_SHUTTING_DOWN), not fastify's bare status.
    return503OnClosing: false,
    // Requests Node's HTTP parser (headers too large, malformed, too slow) or the router (bad
    // percent-encoding, over-long parameter) refuses get catalogue bodies too.
    clientErrorHandler,
    frameworkErrors: frameworkErrorHandler,
    ajv: {
      // Refuse what the schema doesn't allow instead of silently dropping or coercing it.
      customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false },
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  installErrorHandler(app);
  // Only JSON (and raw bytes where a route `consumes` them): a text/plain body is a wrong media type (HT_ERR_UNSUPPORTED_MEDIA_TYPE), not a string to validate.
  installBodyParsers(app);
  app.addHook('onSend', async (req, reply) => {
    reply.header('x-request-id', req.id);
  });

  await app.register(metrics);
  await app.register(swagger);
  await app.register(security, { config });
  await app.register(methods);
  if (!opts.openapiOnly) {
    await app.register(engine, { config, workerEntry: opts.workerEntry });
    await app.register(adapterStore, { config });
    await app.register(services, { config });
  }
  await app.register(healthRoutes, { retryAfterS: config.RETRY_AFTER_S });
  await app.register(modelRoutes);
  await app.register(playgroundRoutes);
  await app.register(adapterRoutes, { importLimitBytes: config.IMPORT_LIMIT_BYTES });
  await app.register(completionRoutes);
  return app;
}
