/**
 * A byte-bounded LRU of adapters in memory, in front of a persistent store (the source of truth).
 * A miss, a put and a delete of one id run one at a time: a read that missed never caches an adapter
 * that a delete removed while the read was on the disk.
 */
import { KeyedLock } from './keyed-lock.js';
import { recordBytes, type AdapterMeta, type AdapterRecord, type AdapterStore, type Recipe, type StoreHealth, type Stored } from './types.js';

export interface CacheObserver {
  hit(): void;
  miss(): void;
  evict(): void;
  bytes(total: number): void;
}

export class LruAdapterStore implements AdapterStore {
  /** Map iteration order is insertion order: re-inserting on use makes the first key the least recent. */
  private readonly entries = new Map<string, { record: AdapterRecord; bytes: number }>();
  private total = 0;
  private readonly lock = new KeyedLock();

  constructor(
    private readonly backing: AdapterStore,
    private readonly maxBytes: number,
    private readonly observer: CacheObserver,
  ) {}

  private remember(record: AdapterRecord): void {
    const bytes = recordBytes(record);
    this.forget(record.meta.id);
    // Too big for the cache: serve it from the backing store each time rather than evict everything.
    if (bytes > this.maxBytes) return;
    while (this.total + bytes > this.maxBytes && this.entries.size) {
      const oldest = this.entries.keys().next().value as string;
      this.forget(oldest);
      this.observer.evict();
    }
    this.entries.set(record.meta.id, { record, bytes });
    this.total += bytes;
    this.observer.bytes(this.total);
  }

  private forget(id: string): void {
    const e = this.entries.get(id);
    if (!e) return;
    this.entries.delete(id);
    this.total -= e.bytes;
    this.observer.bytes(this.total);
  }

  private cached(id: string): AdapterRecord | undefined {
    const e = this.entries.get(id);
    if (!e) return undefined;
    this.entries.delete(id);
    this.entries.set(id, e);
    this.observer.hit();
    return e.record;
  }

  async get(id: string): Promise<AdapterRecord | undefined> {
    const hit = this.cached(id);
    if (hit) return hit;
    return this.lock.run(id, async () => {
      // Another miss of the same id may have filled the cache while this one waited.
      const filled = this.cached(id);
      if (filled) return filled;
      this.observer.miss();
      const record = await this.backing.get(id);
      if (record) this.remember(record);
      return record;
    });
  }

  put(record: AdapterRecord): Promise<Stored> {
    return this.lock.run(record.meta.id, async () => {
      const stored = await this.backing.put(record);
      this.remember(stored.record);
      return stored;
    });
  }

  delete(id: string): Promise<boolean> {
    return this.lock.run(id, async () => {
      const cached = this.entries.has(id);
      this.forget(id);
      return (await this.backing.delete(id)) || cached;
    });
  }

  list(): Promise<AdapterMeta[]> {
    return this.backing.list();
  }

  recover(id: string): Promise<Recipe | undefined> {
    return this.backing.recover ? this.backing.recover(id) : Promise.resolve(undefined);
  }

  async flush(): Promise<void> {
    await this.backing.flush?.();
  }

  health(): Promise<StoreHealth> {
    return this.backing.health ? this.backing.health() : Promise.resolve({ ok: true });
  }
}
