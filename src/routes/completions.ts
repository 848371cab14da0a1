/** POST /v1/completions: the OpenAI completions API (so the official client works), plus few-shot extensions. */
import { randomBytes } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { HtError } from '../errors/http-error.js';
import { errorBody, toHtError } from '../errors/handler.js';
import { BODY_ERRORS, errors } from '../schemas/common.js';
import { Completion, CompletionBody, type CompletionChunk } from '../schemas/completions.js';
import { SseStream } from './sse.js';

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
    const body = req.body;
    const prepared = await app.completions.prepare(body, req.adapterOwner);
    const id = `cmpl-${randomBytes(12).toString('hex')}`;
    const created = Math.floor(Date.now() / 1000);
    const usage = (completion: number) => ({
      prompt_tokens: prepared.promptTokens,
      completion_tokens: completion,
      total_tokens: prepared.promptTokens + completion,
    });

    if (!body.stream) {
      const run = app.completions.run(prepared, null);
      // A client that hangs up frees its batch slots at the next decode step.
      const onClose = () => {
        if (!reply.raw.writableFinished) run.cancel();
      };
      reply.raw.once('close', onClose);
      // Gone already, while the request was validated or its adapter generated.
      if (req.raw.socket?.destroyed) onClose();
      const choices = await run.result.finally(() => reply.raw.off('close', onClose));
      return {
        id,
        object: 'text_completion' as const,
        created,
        model: prepared.model,
        choices: choices.map((c) => ({ index: c.index, text: c.text, finish_reason: c.finish_reason, logprobs: null })),
        usage: usage(choices.reduce((a, c) => a + c.tokens, 0)),
      };
    }

    // Refusals (queue full, not ready) must still be plain HTTP errors: admit before any byte is sent.
    const streamed = new Map<number, number>();
    let sse: SseStream | null = null;
    const chunk = (index: number, text: string, finish: 'stop' | 'length' | null): CompletionChunk => ({
      id, object: 'text_completion', created, model: prepared.model,
      choices: [{ index, text, finish_reason: finish, logprobs: null }],
    });
    const run = app.completions.run(prepared, {
      delta: (index, text) => {
        streamed.set(index, (streamed.get(index) ?? 0) + text.length);
        sse?.send(chunk(index, text, null));
      },
    });
    sse = new SseStream(reply);
    sse.onClose(() => run.cancel());
    try {
      const choices = await run.result;
      for (const c of choices) sse.send(chunk(c.index, c.text.slice(streamed.get(c.index) ?? 0), c.finish_reason));
      if (body.stream_options?.include_usage) {
        sse.send({ id, object: 'text_completion', created, model: prepared.model, choices: [], usage: usage(choices.reduce((a, c) => a + c.tokens, 0)) });
      }
    } catch (e) {
      const err = e instanceof HtError ? e : toHtError(e as Error, req);
      if (err.status >= 500) req.log.error({ err: e }, 'stream failed');
      sse.send(errorBody(err));
    }
    sse.end();
  });
};

export default routes;
