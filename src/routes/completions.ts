/** POST /v1/completions: the OpenAI completions API (so the official client works), plus few-shot extensions. */
import { randomBytes } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { BODY_ERRORS, errors } from '../errors/responses.js';
import { clientGone } from './client-gone.js';
import { Completion, CompletionBody } from '../schemas/completions.js';
import { streamCompletion } from './sse.js';

const routes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/v1/completions', {
    // Shed load before the body is even parsed: under overload a refusal must cost next to nothing.
    onRequest: async () => app.engine.scheduler.admit(1),
    schema: {
      tags: ['completions'],
      summary: 'Complete prompts with the base model, a stored adapter, or inline few-shot examples',
      description:
        'OpenAI-compatible. `model` names an adapter id or the base model. Extensions: `examples` (inline few-shot: the adapter is ' +
        'fetched or created, then used; the response `model` is its id), `adapter_kind`, `num_beams`. ' +
        'With `stream: true` the answer is `text/event-stream`: one `data:` line per chunk (schema `CompletionChunk`), then `data: [DONE]`. ' +
        'Multi-cell spreadsheet rows are sent as one prompt string with the cells joined by `" | "`.',
      body: CompletionBody,
      response: {
        200: {
          description: 'the completion; with `stream: true`, server-sent events of CompletionChunk then `data: [DONE]`',
          content: {
            'application/json': { schema: Completion },
            'text/event-stream': { schema: Type.Ref('CompletionChunk') },
          },
        },
        ...errors(...BODY_ERRORS, 404, 429, 503, 507),
      },
    },
  }, async (req, reply) => {
    const valid = await app.validator.completion(req.body, req.adapterOwner);
    // A client that hangs up while its inline adapter is refined stops the refinement.
    const gone = clientGone(req, reply);
    const prepared = await app.completions.prepare(valid, req.adapterOwner, gone.signal).finally(() => gone.done());
    const head = { id: `cmpl-${randomBytes(12).toString('hex')}`, object: 'text_completion' as const, created: Math.floor(Date.now() / 1000), model: prepared.model };
    if (req.body.stream) {
      return streamCompletion(req, reply, head, (sink) => app.completions.run(prepared, sink), req.body.stream_options?.include_usage === true);
    }
    const run = app.completions.run(prepared, null);
    // A client that hangs up frees its batch slots at the next decode step.
    const onClose = () => {
      if (!reply.raw.writableFinished) run.cancel();
    };
    reply.raw.once('close', onClose);
    // Gone already, while the request was validated or its adapter generated.
    if (req.raw.socket?.destroyed) onClose();
    const { choices, usage } = await run.result.finally(() => reply.raw.off('close', onClose));
    return { ...head, choices: choices.map((c) => ({ index: c.index, text: c.text, finish_reason: c.finish_reason, logprobs: c.logprobs })), usage };
  });
};

export default routes;
