/**
 * GET /v1/models and GET /v1/models/{id}: OpenAI model objects for the base model (with its manifest summary)
 * and for the stored adapters, which the `model` field of a completion names.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AdapterMeta } from '../adapters/types.js';
import { isAdapterId } from '../adapters/canonical-id.js';
import { HtError } from '../errors/domain-error.js';
import { errors } from '../errors/responses.js';
import { Model, ModelList, ModelParams } from '../schemas/models.js';

const OWNER = 'hypert5';

const adapterModel = (a: Pick<AdapterMeta, 'id' | 'created_at' | 'kind'>): Model => ({
  id: a.id,
  object: 'model',
  created: a.created_at,
  owned_by: OWNER,
  kind: a.kind,
});

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const started = Math.floor(Date.now() / 1000);
  const baseModel = (): Model => {
    const m = app.engine.bundle.manifest;
    return {
      id: m.name,
      object: 'model',
      created: started,
      owned_by: OWNER,
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
  };

  app.get('/v1/models', {
    schema: {
      tags: ['models'],
      summary: 'List the base model and the stored adapters',
      response: { 200: ModelList, ...errors(500) },
    },
  }, async (req) => {
    const adapters = (await app.adapters.list(req.adapterOwner)).map(adapterModel);
    return { object: 'list' as const, data: [baseModel(), ...adapters] };
  });

  app.get('/v1/models/:id', {
    schema: {
      tags: ['models'],
      summary: 'One model: the base model (with its manifest summary) or a stored adapter',
      description: 'What the OpenAI clients\' `models.retrieve(id)` asks. Reading a stored adapter may regenerate a copy found corrupt, ' +
        'which runs the hypermodel (429, 503) and writes to the store (507).',
      params: ModelParams,
      response: { 200: Model, ...errors(404, 500, 503, 507) },
    },
  }, async (req) => {
    const { id } = req.params;
    const base = app.engine.bundle.manifest.name;
    if (id === base) return baseModel();
    const record = isAdapterId(id) ? await app.adapters.get(id, req.adapterOwner) : undefined;
    if (record) return adapterModel(record.meta);
    throw new HtError('HT_ERR_MODEL_NOT_FOUND',
      `id is ${JSON.stringify(id.length > 100 ? `${id.slice(0, 100)}…` : id)}; expected the base model "${base}" or the id of a stored adapter (ad-…)`);
  });
};

export default routes;
