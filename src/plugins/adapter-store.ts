/**
 * The adapter store resource: a byte-bounded in-memory LRU over the persistent disk store and, when
 * REDIS_URL is set, Redis shared by the replicas behind both (src/adapters/shared-store.ts).
 */
import fp from 'fastify-plugin';
import { Gauge } from 'prom-client';
import type { Config } from '../config/index.js';
import { DiskAdapterStore } from '../adapters/disk-store.js';
import { LruAdapterStore } from '../adapters/lru.js';
import { SharedAdapterStore } from '../adapters/shared-store.js';
import type { AdapterStore } from '../adapters/types.js';

declare module 'fastify' {
  interface FastifyInstance {
    adapterStore: AdapterStore;
  }
}

export default fp<{ config: Config }>(
  async (app, { config }) => {
    const { bundle } = app.engine;
    // Files are written with the manifest's shapes and checked against them (and the kinds) on every read.
    const manifest = { fingerprint: bundle.manifest.fingerprint, kinds: bundle.table.kinds };
    const disk = await DiskAdapterStore.open(config.ADAPTER_STORE_DIR, app.log, { manifest });
    const m = app.metrics;
    const local = new LruAdapterStore(disk, config.ADAPTER_CACHE_BYTES, {
      hit: () => m.cacheHits.inc(),
      miss: () => m.cacheMisses.inc(),
      evict: () => m.cacheEvictions.inc(),
      bytes: (b) => m.cacheBytes.set(b),
    });
    // Shutdown: every adapter whose creation was answered is on disk before the process exits.
    app.addHook('onClose', () => local.flush());
    if (!config.REDIS_URL) {
      app.decorate('adapterStore', local);
      return;
    }
    const redisUp = new Gauge({ name: 'hypert5_adapter_redis_up', help: '1 while the shared Redis adapter store is reachable', registers: [m.registry] });
    const shared = await SharedAdapterStore.open(
      local,
      { url: config.REDIS_URL, prefix: config.REDIS_KEY_PREFIX, timeoutMs: config.REDIS_TIMEOUT_MS, onState: (up) => redisUp.set(up ? 1 : 0), manifest },
      app.log,
    );
    app.decorate('adapterStore', shared);
    app.addHook('onClose', () => shared.close());
  },
  { name: 'adapter-store', dependencies: ['metrics', 'engine'] },
);
