/** Process entry: logger, config, timeouts, graceful close, listen. */
import { buildApp } from './app.js';
import { ConfigError, loadConfig } from './config/index.js';
import { shutdown } from './shutdown.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      process.exit(2);
    }
    throw e;
  }
  const app = await buildApp({
    config,
    logger: {
      level: config.LOG_LEVEL,
      // Request bodies are never logged; headers that may carry credentials are redacted.
      redact: ['req.headers.authorization', 'req.headers.cookie'],
    },
  }).catch((e: Error) => {
    console.error(`start-up failed: ${e.message}`);
    process.exit(1);
  });
  app.server.requestTimeout = config.REQUEST_TIMEOUT_MS;
  app.server.keepAliveTimeout = 65_000;

  let closing = false;
  const close = (signal: string) => {
    if (closing) return;
    closing = true;
    shutdown(app, config.SHUTDOWN_DRAIN_MS, signal).then(
      () => process.exit(0),
      (e: Error) => {
        app.log.error({ err: e }, 'close failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => close('SIGINT'));
  process.on('SIGTERM', () => close('SIGTERM'));

  await app.listen({ port: config.PORT, host: config.HOST });
  try {
    await app.engine.scheduler.whenReady();
  } catch (e) {
    app.log.fatal({ err: e }, 'models failed to load');
    await app.close().catch(() => {});
    process.exit(1);
  }
}

void main();
