/** The adapter store resource: persistent disk store behind a byte-bounded in-memory LRU. */
import fp from 'fastify-plugin';
import type { Config } from '../config/index.js';
import { DiskAdapterStore } from '../adapters/disk-store.js';
import { LruAdapterStore } from '../adapters/lru.js';
import type { AdapterStore } from '../adapters/types.js';

declare module 'fastify' {
  interface FastifyInstance {
    adapterStore: AdapterStore;
  }
}

export default fp<{ config: Config }>(
  async (app, { config }) => {
    const shapes: Record<string, number[]> = {};
    for (const specs of Object.values(app.engine.bundle.table.kinds)) for (const s of specs) shapes[s.name] = s.shape;
    const disk = await DiskAdapterStore.open(config.ADAPTER_STORE_DIR, app.log, shapes);
    const m = app.metrics;
    const store = new LruAdapterStore(disk, config.ADAPTER_CACHE_BYTES, {
      hit: () => m.cacheHits.inc(),
      miss: () => m.cacheMisses.inc(),
      evict: () => m.cacheEvictions.inc(),
      bytes: (b) => m.cacheBytes.set(b),
    });
    app.decorate('adapterStore', store);
  },
  { name: 'adapter-store', dependencies: ['metrics', 'engine'] },
);
