/** Server-sent events in the OpenAI stream format: `data: <json>\n\n` frames, then `data: [DONE]`. */
import type { FastifyReply } from 'fastify';

export class SseStream {
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

  get isClosed(): boolean {
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
