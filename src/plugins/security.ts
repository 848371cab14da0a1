/**
 * Who may call what: optional API keys (Authorization: Bearer, compared in constant time), per-key rate
 * limits (@fastify/rate-limit), security headers (@fastify/helmet), CORS only when configured
 * (@fastify/cors), and a cap on wrong keys per client address. Which routes stay open is decided in one place
 * (open-routes.ts), by the matched route, never the raw URL; everything else, unmatched requests included, is guarded.
 */
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import fp from 'fastify-plugin';
import { readFileSync } from 'node:fs';
import type { Config } from '../config/index.js';
import { ConfigError } from '../config/index.js';
import { HtError } from '../errors/domain-error.js';
import { authRefusals } from '../errors/responses.js';
import { AuthFailures } from './auth-failures.js';
import { KeyRing } from './key-ring.js';
import { isOpenPath, isOpenRoute } from './open-routes.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Id of the API key that authenticated this request (sha256 prefix), or null without keys. */
    apiKeyId: string | null;
    /** With ADAPTER_SCOPE=key and keys configured: the owner whose adapters this request sees; else undefined (shared). */
    adapterOwner: string | undefined;
  }
}

/** The configured keys: API_KEYS (comma-separated) and API_KEYS_FILE (one per line, # comments). */
function loadKeys(config: Pick<Config, 'API_KEYS' | 'API_KEYS_FILE'>): string[] {
  const keys = config.API_KEYS.split(',').map((k) => k.trim()).filter(Boolean);
  if (config.API_KEYS_FILE) {
    let text: string;
    try {
      text = readFileSync(config.API_KEYS_FILE, 'utf8');
    } catch (e) {
      throw new ConfigError(`invalid configuration: API_KEYS_FILE=${JSON.stringify(config.API_KEYS_FILE)}: cannot read it (${(e as Error).message})`);
    }
    for (const line of text.split('\n')) {
      const k = line.trim();
      if (k && !k.startsWith('#')) keys.push(k);
    }
  }
  return keys;
}

export default fp<{ config: Config }>(
  async (app, { config }) => {
    const ring = new KeyRing(loadKeys(config));
    const scoped = config.ADAPTER_SCOPE === 'key' && ring.size > 0;
    app.decorateRequest('apiKeyId', null);
    app.decorateRequest('adapterOwner', undefined);

    // Every guarded route documents the refusals this plugin can answer, whatever the configuration.
    app.addHook('onRoute', (route) => {
      if (isOpenPath(route.url, route.method) || !route.schema) return;
      const schema = route.schema as { response?: Record<number, unknown>; security?: unknown };
      schema.response = { ...authRefusals(), ...schema.response };
      schema.security = [{ bearer: [] }];
    });

    await app.register(helmet, {
      // An API, plus the /docs UI, which loads its own scripts and styles.
      contentSecurityPolicy: {
        directives: {
          defaultSrc: ["'self'"],
          imgSrc: ["'self'", 'data:'],
          styleSrc: ["'self'", "'unsafe-inline'"],
          frameAncestors: ["'none'"],
          // The service often speaks plain HTTP behind an ingress: upgrading /docs' assets to https would break it.
          upgradeInsecureRequests: null,
        },
      },
      crossOriginResourcePolicy: { policy: 'same-origin' },
      hsts: false, // TLS ends at the ingress, which owns HSTS.
    });

    const origins = config.CORS_ORIGINS.split(',').map((o) => o.trim()).filter(Boolean);
    if (origins.length) {
      await app.register(cors, {
        origin: origins.includes('*') ? true : origins,
        methods: ['GET', 'POST', 'DELETE'],
        allowedHeaders: ['content-type', 'authorization', 'x-request-id'],
        exposedHeaders: ['retry-after', 'x-request-id'],
        maxAge: 600,
      });
    }

    if (ring.size > 0) {
      const failures = new AuthFailures(config.AUTH_FAILURES_PER_MIN);
      // A root hook: it runs before every route's own hooks (the rate limiter's among them) and for requests that
      // match no route, which are refused here too rather than told apart (HT_ERR_NOT_FOUND or HT_ERR_METHOD_NOT_ALLOWED) to a caller without a key.
      app.addHook('onRequest', async (req, reply) => {
        if (isOpenRoute(req)) return;
        const blockedS = failures.retryAfterS(req.ip);
        if (blockedS > 0) {
          throw new HtError(
            'HT_ERR_RATE_LIMITED',
            `client ${req.ip} reached ${failures.limit} wrong API keys within a minute; the limit is ${failures.limit} (AUTH_FAILURES_PER_MIN), so its requests are refused until the minute ends`,
            blockedS,
          );
        }
        const header = req.headers.authorization;
        const m = typeof header === 'string' ? /^Bearer[ ]+(\S+)\s*$/i.exec(header) : null;
        const id = m ? ring.match(m[1]!) : null;
        if (!id) {
          // Only a presented credential counts: a request without one cannot be a guess.
          if (header !== undefined) failures.fail(req.ip);
          reply.header('WWW-Authenticate', 'Bearer realm="hypert5"');
          throw new HtError('HT_ERR_UNAUTHORIZED', header ? 'the API key in Authorization is not accepted' : 'Authorization: Bearer <API key> is required');
        }
        req.apiKeyId = id;
        if (scoped) req.adapterOwner = id;
      });
    }

    if (config.RATE_LIMIT_PER_MIN > 0) {
      await app.register(rateLimit, {
        global: true,
        max: config.RATE_LIMIT_PER_MIN,
        timeWindow: 60_000,
        allowList: (req) => isOpenRoute(req),
        keyGenerator: (req) => req.apiKeyId ?? `ip:${req.ip}`,
        errorResponseBuilder: (req, ctx) =>
          new HtError(
            'HT_ERR_RATE_LIMITED',
            `${req.apiKeyId ? `API key ${req.apiKeyId}` : `client ${req.ip}`} sent more than ${ctx.max} requests in a minute; the limit is ${ctx.max} (RATE_LIMIT_PER_MIN)`,
            Math.max(1, Math.ceil(ctx.ttl / 1000)),
          ),
      });
    }
    app.log.debug(
      { keys: ring.size, scoped, cors: origins.length > 0, rateLimit: config.RATE_LIMIT_PER_MIN, authFailuresPerMin: config.AUTH_FAILURES_PER_MIN },
      'access control',
    );
  },
  { name: 'security' },
);
