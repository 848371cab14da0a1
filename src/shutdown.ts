/**
 * Graceful shutdown (SIGTERM): refuse new work with HT_ERR_SHUTTING_DOWN (readyz too, so the load balancer
 * moves on), let admitted requests finish for up to SHUTDOWN_DRAIN_MS, cancel what is left the same way, then close: the
 * listener, open connections, the adapter store (flushed) and the inference workers.
 */
import type { FastifyInstance } from 'fastify';

export async function shutdown(app: FastifyInstance, drainMs: number, signal: string): Promise<void> {
  const started = Date.now();
  const inflight = app.engine.scheduler.outstanding;
  app.log.info({ signal, inflight, drainMs }, 'shutting down: draining in-flight requests');
  const outcome = await app.engine.scheduler.drain(drainMs);
  // Responses are written once their jobs settle; connections still open after a grace second are cut.
  const cut = setTimeout(() => app.server.closeAllConnections(), Math.max(1000, drainMs - (Date.now() - started))).unref();
  app.server.closeIdleConnections();
  await app.close();
  clearTimeout(cut);
  app.log.info({ outcome, ms: Date.now() - started }, 'shut down');
}
