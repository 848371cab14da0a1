/** GET /v1/models: the OpenAI model list; the base model first (with its manifest summary), then adapters. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { errors } from '../schemas/common.js';
import { ModelList, type Model } from '../schemas/models.js';

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const started = Math.floor(Date.now() / 1000);
  app.get('/v1/models', {
    schema: {
      tags: ['models'],
      summary: 'List the base model and the stored adapters',
      response: { 200: ModelList, ...errors(500) },
    },
  }, async (req) => {
    const m = app.engine.bundle.manifest;
    const base: Model = {
      id: m.name,
      object: 'model',
      created: started,
      owned_by: 'hypert5',
      summary: {
        fingerprint: m.fingerprint,
        dims: m.dims,
        tokenizer: m.tokenizer.type,
        adapter_kinds: app.engine.bundle.kinds,
        default_adapter_kind: m.adapters.default_kind,
        ...(m.adapters.kinds.prefix ? { prefix_attention: m.adapters.kinds.prefix.attention ?? 'gated' } : {}),
        max_input_tokens: m.encoder_input.max_tokens,
        max_examples: m.hyper_input.max_examples,
        max_new_tokens: m.generation.max_new_tokens,
      },
    };
    const adapters: Model[] = (await app.adapters.list(req.adapterOwner)).map((a) => ({
      id: a.id,
      object: 'model',
      created: a.created_at,
      owned_by: 'hypert5',
      kind: a.kind,
    }));
    return { object: 'list' as const, data: [base, ...adapters] };
  });
};

export default routes;
