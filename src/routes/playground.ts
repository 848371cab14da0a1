/**
 * GET /: the playground, a static page that turns examples typed or pasted into it into an adapter and answers
 * queries with it as they are typed, through the public API only (the page holds no server-side logic).
 *
 * Its modules and stylesheet are answered under `/playground/`, open for GET (open-routes.ts): a browser sends no
 * API key for <script> or <link>, so they would be refused anywhere else wherever API keys are configured. Only
 * the files named in ASSETS are served, so a name is looked up, never joined into a path from input. The files are
 * built into dist/playground by `npm run build:playground` (src/playground/tsconfig.json).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyReply } from 'fastify';
import { HtError } from '../errors/domain-error.js';

/** dist/playground, from src/routes (run with tsx) and from dist/routes (built) alike. */
const PLAYGROUND_DIR = fileURLToPath(new URL('../../dist/playground/', import.meta.url));

const JS = 'text/javascript; charset=utf-8';
const PAGE = { file: 'index.html', type: 'text/html; charset=utf-8' };
/** What `/playground/<name>` serves: the page's entry module, the modules it imports, its stylesheet. */
const ASSETS = new Map([
  ['playground.js', { file: 'playground.js', type: JS }],
  ['metadata.js', { file: 'metadata.js', type: JS }],
  ['snippets.js', { file: 'snippets.js', type: JS }],
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
  // Revalidated on every load, so a rebuilt page is never mixed with a cached script.
  const send = async (reply: FastifyReply, target: { file: string; type: string }) =>
    reply.type(target.type).header('cache-control', 'no-cache').send(await load(target.file));

  // Pages for people, not part of the API document: hidden from it.
  app.get('/', { schema: { hide: true } }, async (_req, reply) => send(reply, PAGE));

  app.get('/playground/:asset', {
    // GET only: HEAD, which fastify would add, would be one more open method that no browser needs for a page.
    exposeHeadRoute: false,
    schema: { hide: true, params: Type.Object({ asset: Type.String() }) },
  }, async (req, reply) => {
    const target = ASSETS.get(req.params.asset);
    if (!target) {
      throw new HtError('HT_ERR_NOT_FOUND', `playground file ${JSON.stringify(req.params.asset)} does not exist; the files are ${[...ASSETS.keys()].join(', ')}`);
    }
    return send(reply, target);
  });
};

export default routes;
