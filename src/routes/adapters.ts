/** /v1/adapters: create from examples, import, fetch metadata and parameters, delete. */
import { TypeBoxValidatorCompiler, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { AdapterRecord } from '../adapters/types.js';
import { encodeForExport } from '../adapters/codec.js';
import { adapterNotFound } from '../errors/domain-error.js';
import { Adapter, AdapterParams, CreateAdapterBody, DeletedAdapter, ImportQuery, RefineAdapterBody } from '../schemas/adapters.js';
import { BODY_ERRORS, errors } from '../errors/responses.js';
import { clientGone } from './client-gone.js';

const view = (r: AdapterRecord, cached: boolean): Adapter => ({
  id: r.meta.id,
  object: 'adapter',
  kind: r.meta.kind,
  model: r.meta.model,
  num_examples: r.meta.num_examples,
  created_at: r.meta.created_at,
  cached,
  ...(r.meta.parent !== undefined ? { parent: r.meta.parent } : {}),
  ...(r.meta.refine !== undefined ? { refine: r.meta.refine } : {}),
  ...(r.meta.fit !== undefined ? { fit: r.meta.fit } : {}),
});

const routes: FastifyPluginAsyncTypebox<{ importLimitBytes: number }> = async (app, opts) => {
  /** The adapter named by the path, or 404. */
  const found = async (id: string, owner: string | undefined): Promise<AdapterRecord> => {
    const record = await app.adapters.get(id, owner);
    if (!record) throw adapterNotFound(id);
    return record;
  };

  app.post('/v1/adapters', {
    schema: {
      tags: ['adapters'],
      summary: 'Generate an adapter from few-shot examples (or return the existing one)',
      description:
        'Runs the hypermodel once over the examples. The id is content-addressed (model fingerprint, kind, examples in order): ' +
        'the same examples always give the same id and an existing adapter is never recomputed. ' +
        'Multi-cell spreadsheet rows are sent as one input string with the cells joined by `" | "`. ' +
        'With `refine`, the adapter is then tuned with Adam on the examples themselves, and the answer is the refined adapter ' +
        '(its `parent` is the one-pass adapter, stored too); it is bounded by REQUEST_DEADLINE_MS and stops when the client leaves.',
      body: CreateAdapterBody,
      response: { 200: Adapter, 201: Adapter, ...errors(...BODY_ERRORS, 429, 503, 507) },
    },
  }, async (req, reply) => {
    const valid = app.validator.newAdapter(req.body);
    const gone = clientGone(req, reply);
    const { record, created } = await app.adapters.getOrCreate(valid, req.adapterOwner, gone.signal).finally(() => gone.done());
    return reply.code(created ? 201 : 200).send(view(record, !created));
  });

  app.post('/v1/adapters/:id/refine', {
    schema: {
      tags: ['adapters'],
      summary: 'Refine a stored adapter on a few examples (or return the existing refinement)',
      description:
        'Tunes the stored adapter (made by the hypermodel or imported) with `refine.steps` Adam steps on `examples`, through the ' +
        'bundle\'s training-step graph, and stores the result as a new adapter whose `parent` is `id`. Deterministic and ' +
        'content-addressed (parent, examples, settings, step graph): the same request returns the same adapter. ' +
        'Bounded by REQUEST_DEADLINE_MS (503, nothing stored) and stopped when the client leaves.',
      params: AdapterParams,
      body: RefineAdapterBody,
      response: { 200: Adapter, 201: Adapter, ...errors(...BODY_ERRORS, 404, 429, 503, 507) },
    },
  }, async (req, reply) => {
    const valid = await app.validator.refineStored(req.params.id, req.body, req.adapterOwner);
    const gone = clientGone(req, reply);
    const { record, created } = await app.adapters.refineStored(valid, req.adapterOwner, gone.signal).finally(() => gone.done());
    return reply.code(created ? 201 : 200).send(view(record, !created));
  });

  app.post('/v1/adapters/import', {
    bodyLimit: opts.importLimitBytes,
    // The body is raw bytes (checked by the validator, src/validation/); the schema below only documents it.
    validatorCompiler: (args) => (args.httpPart === 'body' ? (value: unknown) => ({ value }) : TypeBoxValidatorCompiler(args as unknown as Parameters<typeof TypeBoxValidatorCompiler>[0])),
    schema: {
      tags: ['adapters'],
      summary: 'Import adapter parameters from a safetensors file',
      description:
        'The body is a safetensors file (`application/octet-stream`) with exactly the tensors of one adapter kind, ' +
        'named and shaped as in the manifest (no batch dimension), dtype F32, every value finite and within the tensor\'s ' +
        '`max_abs` in the manifest, no other tensors, and a header no longer than twice what those tensors need plus 64 KiB ' +
        'of metadata. The kind is inferred from the tensor ' +
        'names (`lora.` or `prefix.`) unless `kind` is given. The id is the hash of the tensors.',
      querystring: ImportQuery,
      body: Type.Unsafe<Buffer>({ type: 'string', format: 'binary', description: 'safetensors file' }),
      consumes: ['application/octet-stream'],
      response: { 200: Adapter, 201: Adapter, ...errors(...BODY_ERRORS, 507) },
    },
  }, async (req, reply) => {
    const { record, created } = await app.adapters.import(app.validator.import(req.body, req.query), req.adapterOwner);
    return reply.code(created ? 201 : 200).send(view(record, !created));
  });

  app.get('/v1/adapters/:id', {
    schema: {
      tags: ['adapters'],
      summary: 'Adapter metadata',
      params: AdapterParams,
      response: { 200: Adapter, ...errors(404, 422, 500, 503, 507) },
    },
  }, async (req) => view(await found(req.params.id, req.adapterOwner), true));

  app.get('/v1/adapters/:id/parameters', {
    schema: {
      tags: ['adapters'],
      summary: 'Adapter parameters as a safetensors file',
      description: 'Tensor names and shapes as in the manifest `adapters.kinds.<kind>.tensors` (one adapter, no batch dimension), dtype F32.',
      params: AdapterParams,
      response: {
        200: {
          description: 'safetensors file',
          content: { 'application/octet-stream': { schema: Type.Unsafe<Buffer>({ type: 'string', format: 'binary' }) } },
        },
        ...errors(404, 422, 500, 503, 507),
      },
    },
  }, async (req, reply) => {
    const record = await found(req.params.id, req.adapterOwner);
    const specs = app.engine.bundle.table.kinds[record.meta.kind]!;
    const file = encodeForExport(record, specs);
    return reply
      .type('application/octet-stream')
      .header('Content-Disposition', `attachment; filename="${record.meta.id}.safetensors"`)
      .send(file);
  });

  app.delete('/v1/adapters/:id', {
    schema: {
      tags: ['adapters'],
      summary: 'Delete an adapter',
      params: AdapterParams,
      response: { 200: DeletedAdapter, ...errors(404, 422, 500, 503, 507) },
    },
  }, async (req) => {
    if (!(await app.adapters.delete(req.params.id, req.adapterOwner))) throw adapterNotFound(req.params.id);
    return { id: req.params.id, object: 'adapter' as const, deleted: true as const };
  });
};

export default routes;
