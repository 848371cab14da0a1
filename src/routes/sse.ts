/** Server-sent events in the OpenAI stream format: `data: <json>\n\n` frames, then `data: [DONE]`. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HtError, isClientFault } from '../errors/domain-error.js';
import { errorBody, toHtError } from '../errors/handler.js';
import type { CompletionChunk } from '../schemas/completions.js';
import type { CompletionSink, RunningCompletion } from '../services/completions.js';

class SseStream {
  private closed = false;

  constructor(private readonly reply: FastifyReply) {
    reply.hijack();
    reply.raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-request-id': String(reply.request.id),
    });
    reply.raw.on('close', () => {
      this.closed = true;
    });
  }

  private get isClosed(): boolean {
    return this.closed || this.reply.raw.destroyed;
  }

  onClose(fn: () => void): void {
    this.reply.raw.on('close', fn);
  }

  send(data: unknown): void {
    if (!this.isClosed) this.reply.raw.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  end(): void {
    if (!this.isClosed) this.reply.raw.end('data: [DONE]\n\n');
  }
}

/** The fields every chunk of one completion repeats. */
type ChunkHead = Omit<CompletionChunk, 'choices' | 'usage'>;

/**
 * Streams one completion: a chunk per piece of text as it is decoded, then each choice's remaining text with its
 * finish_reason, the usage when asked for, and `[DONE]`. The status line is sent when the stream starts, so a
 * failure after that (deadline, drain, a failed batch) becomes one error event instead. A client that hangs up
 * cancels the run.
 */
export async function streamCompletion(
  req: FastifyRequest,
  reply: FastifyReply,
  head: ChunkHead,
  start: (sink: CompletionSink) => RunningCompletion,
  includeUsage: boolean,
): Promise<void> {
  const streamed = new Map<number, number>();
  let sse: SseStream | null = null;
  const chunk = (index: number, text: string, finish: 'stop' | 'length' | null): CompletionChunk => ({
    ...head,
    choices: [{ index, text, finish_reason: finish, logprobs: null }],
  });
  // Refusals (queue full, not ready) must still be plain HTTP errors: the run is admitted before any byte is sent.
  const run = start({
    delta: (index, text) => {
      streamed.set(index, (streamed.get(index) ?? 0) + text.length);
      sse?.send(chunk(index, text, null));
    },
  });
  sse = new SseStream(reply);
  sse.onClose(() => run.cancel());
  try {
    const { choices, usage } = await run.result;
    for (const c of choices) sse.send(chunk(c.index, c.text.slice(streamed.get(c.index) ?? 0), c.finish_reason));
    if (includeUsage) sse.send({ ...head, choices: [], usage });
  } catch (e) {
    const err = e instanceof HtError ? e : toHtError(e as Error, req);
    if (!isClientFault(err.code)) req.log.error({ err: e }, 'stream failed');
    sse.send(errorBody(err));
  }
  sse.end();
}
