/** The domain services routes call: adapters (get-or-create, import) and completions. */
import fp from 'fastify-plugin';
import type { Config } from '../config/index.js';
import { AdapterService } from '../services/adapters.js';
import { CompletionService } from '../services/completions.js';

declare module 'fastify' {
  interface FastifyInstance {
    adapters: AdapterService;
    completions: CompletionService;
  }
}

export default fp<{ config: Config }>(
  async (app, { config }) => {
    const adapters = new AdapterService(config, app.engine, app.adapterStore, app.metrics);
    app.decorate('adapters', adapters);
    app.decorate('completions', new CompletionService(config, app.engine, adapters, app.metrics));
  },
  { name: 'services', dependencies: ['engine', 'adapter-store', 'metrics'] },
);
