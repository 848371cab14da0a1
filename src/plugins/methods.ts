/**
 * HT_ERR_METHOD_NOT_ALLOWED with `Allow` for a known path asked with a method it does not have (TRACE, PUT,
 * QUERY…), instead of HT_ERR_NOT_FOUND, which says the path does not exist. Runs before body parsing, so a
 * body-less QUERY is not a malformed body.
 */
import fp from 'fastify-plugin';
import { HtError } from '../errors/domain-error.js';

export default fp(
  async (app) => {
    const routes: { re: RegExp; methods: Set<string>; static: boolean }[] = [];
    app.addHook('onRoute', (route) => {
      const re = new RegExp(`^${route.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[^/]+/g, '[^/]+')}/?$`);
      const methods = ([] as string[]).concat(route.method);
      const known = routes.find((r) => r.re.source === re.source);
      if (known) for (const m of methods) known.methods.add(m);
      else routes.push({ re, methods: new Set(methods), static: !route.url.includes(':') });
    });
    app.addHook('onRequest', async (req, reply) => {
      const matched = req.routeOptions.url;
      // A matched static route is exact; a matched parametric one may have caught a static path
      // (GET /v1/adapters/import is not GET /v1/adapters/:id with id "import").
      if (matched !== undefined && !matched.includes(':')) return;
      const p = req.url.split('?')[0]!;
      const matches = routes.filter((r) => r.re.test(p));
      // A static path wins over a parametric one, as in the router (/v1/adapters/import is not an id).
      const best = matches.some((r) => r.static) ? matches.filter((r) => r.static) : matches;
      const allowed = new Set(best.flatMap((r) => [...r.methods]));
      if (!allowed.size || allowed.has(req.method) || (matched !== undefined && !best.some((r) => r.static))) return;
      reply.header('Allow', [...allowed].sort().join(', '));
      throw new HtError('HT_ERR_METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${p}; allowed: ${[...allowed].sort().join(', ')}`);
    });
  },
  { name: 'methods' },
);
