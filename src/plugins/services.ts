/**
 * The validator and the domain services the routes call: adapters (get-or-create, import) and completions.
 * Each receives its dependencies here, so none of them reaches into the app.
 */
import fp from 'fastify-plugin';
import type { Config } from '../config/index.js';
import { AdapterService } from '../services/adapters.js';
import { CompletionService } from '../services/completions.js';
import { fitPlan } from '../services/fit.js';
import { Validator } from '../validation/validator.js';

declare module 'fastify' {
  interface FastifyInstance {
    validator: Validator;
    adapters: AdapterService;
    completions: CompletionService;
  }
}

export default fp<{ config: Config }>(
  async (app, { config }) => {
    const { bundle, tokenizer, scheduler } = app.engine;
    const m = app.metrics;
    // A stored adapter named by a completion must exist: the validator looks it up through the service.
    const validator: Validator = new Validator({ config, bundle, tokenizer, findAdapter: (id, owner) => adapters.get(id, owner) });
    const adapters: AdapterService = new AdapterService({
      manifest: bundle.manifest,
      store: app.adapterStore,
      engine: scheduler,
      recipe: (kind, examples) => validator.recipe(kind, examples),
      refineRecipe: (kind, examples, settings) => validator.refineRecipe(kind, examples, settings),
      retryAfterS: config.RETRY_AFTER_S,
      created: (kind, source) => m.adaptersCreated.inc({ kind, source }),
      refineLimits: { deadlineMs: config.REQUEST_DEADLINE_MS, retryAfterS: config.RETRY_AFTER_S },
      fitPlan: (kind, examples, loo) => fitPlan(bundle, tokenizer, kind, examples, loo),
      refined: (kind, steps, ms) => {
        m.refineSteps.inc({ kind }, steps);
        m.refineDuration.observe({ kind }, ms / 1000);
      },
    });
    const completions = new CompletionService({
      engine: scheduler,
      adapters,
      deadlineMs: config.REQUEST_DEADLINE_MS,
      retryAfterS: config.RETRY_AFTER_S,
      generated: (tokens) => m.generatedTokens.inc(tokens),
    });
    app.decorate('validator', validator);
    app.decorate('adapters', adapters);
    app.decorate('completions', completions);
  },
  { name: 'services', dependencies: ['engine', 'adapter-store', 'metrics'] },
);
