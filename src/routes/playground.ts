/**
 * GET /: the playground, a static page that turns examples typed or pasted into it into an adapter and answers
 * queries with it as they are typed, through the public API only (the page holds no server-side logic).
 *
 * The page's script and stylesheet are answered by this same route (`/?asset=playground.js`): `/` is an open
 * route (open-routes.ts) and a browser sends no API key for <script> or <link>, so assets on any other path would
 * be refused wherever API keys are configured. One module, then, since its relative imports would leave `/`.
 * The files are built into dist/playground by `npm run build:playground` (src/playground/tsconfig.json).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { HtError } from '../errors/domain-error.js';

/** dist/playground, from src/routes (run with tsx) and from dist/routes (built) alike. */
const PLAYGROUND_DIR = fileURLToPath(new URL('../../dist/playground/', import.meta.url));

const PAGE = { file: 'index.html', type: 'text/html; charset=utf-8' };
/** `?asset=` names; the page refers to them as `/?asset=<name>`. */
const ASSETS = new Map([
  ['playground.js', { file: 'playground.js', type: 'text/javascript; charset=utf-8' }],
  ['playground.css', { file: 'playground.css', type: 'text/css; charset=utf-8' }],
]);

const routes: FastifyPluginAsyncTypebox<{ dir?: string }> = async (app, opts) => {
  const dir = opts.dir ?? PLAYGROUND_DIR;
  // Read on first use, not at registration: `npm run openapi` and the API itself need no built page.
  const cache = new Map<string, Buffer>();
  const load = async (file: string): Promise<Buffer> => {
    const cached = cache.get(file);
    if (cached) return cached;
    const body = await readFile(path.join(dir, file)).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') throw new HtError('HT_ERR_NOT_FOUND', `the playground is not built: ${file} is missing (npm run build:playground)`);
      throw e;
    });
    cache.set(file, body);
    return body;
  };

  app.get('/', {
    schema: {
      hide: true, // a page for people, not part of the API document
      querystring: Type.Object({ asset: Type.Optional(Type.String()) }),
    },
  }, async (req, reply) => {
    const { asset } = req.query;
    const target = asset === undefined ? PAGE : ASSETS.get(asset);
    if (!target) {
      throw new HtError('HT_ERR_NOT_FOUND', `asset is ${JSON.stringify(asset)}; the playground's assets are ${[...ASSETS.keys()].join(' and ')}`);
    }
    // Revalidated on every load, so a rebuilt page is never mixed with a cached script.
    return reply.type(target.type).header('cache-control', 'no-cache').send(await load(target.file));
  });
};

export default routes;
