/**
 * The replica's local store (LRU and disk) in front of Redis shared by all replicas.
 *
 * - get: local first; a local miss asks Redis and keeps a local copy of what it finds.
 * - put: Redis decides (first writer wins), the local store keeps whichever copy won.
 * - delete: Redis and local; Redis publishes the id and every replica drops its local copy.
 * - one id at a time: copying from Redis, storing and deleting an id never interleave on a replica, so a
 *   copy read from Redis before a delete is dropped after it, never written back after the delete.
 * - Redis down (refused, timed out): one warning, then local only. Adapters made or deleted meanwhile
 *   are remembered and replayed to Redis when it is back (imported adapters cannot be regenerated).
 */
import { Redis } from 'ioredis';
import { isAdapterId } from './canonical-id.js';
import type { StoreManifest } from './check-stored.js';
import { KeyedLock } from './keyed-lock.js';
import { CorruptValueError, RedisAdapterStore } from './redis-store.js';
import type { AdapterMeta, AdapterRecord, AdapterStore, Recipe, StoreHealth, Stored } from './types.js';

export interface SharedStoreLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface SharedStoreOptions {
  url: string;
  prefix: string;
  /** Connect and command timeout, ms. */
  timeoutMs: number;
  /** Told whenever Redis becomes usable (true) or not (false). */
  onState?: (up: boolean) => void;
  /** Values of this model read from Redis are checked against it; one that does not fit is ignored, never served. */
  manifest?: StoreManifest;
}

const OFFLINE = Symbol('redis offline');

export class SharedAdapterStore implements AdapterStore {
  private up = false;
  /** Ids stored or deleted locally while Redis was down, replayed when it is back. */
  private readonly pendingPuts = new Set<string>();
  private readonly pendingDeletes = new Set<string>();
  private replaying: Promise<void> | undefined;
  private closed = false;
  private readonly lock = new KeyedLock();

  private constructor(
    private readonly local: AdapterStore,
    private readonly redis: Redis,
    private readonly subscriber: Redis,
    private readonly remote: RedisAdapterStore,
    private readonly log: SharedStoreLogger,
    private readonly onState: (up: boolean) => void,
  ) {}

  /** Connects (waiting at most the timeout); an unreachable Redis is a warning, not a failed start. */
  static async open(local: AdapterStore, opts: SharedStoreOptions, log: SharedStoreLogger): Promise<SharedAdapterStore> {
    const redis = new Redis(opts.url, {
      lazyConnect: true,
      connectTimeout: opts.timeoutMs,
      commandTimeout: opts.timeoutMs,
      // Fail fast while disconnected instead of queueing requests behind a dead server.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: (times) => Math.min(100 * times, 2000),
    });
    // Deletions made on other replicas arrive here. The subscription waits for Redis however long it is
    // away, and ioredis renews it after every reconnection.
    const subscriber = redis.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null, commandTimeout: undefined });
    const remote = new RedisAdapterStore(redis, opts.prefix, opts.manifest);
    const store = new SharedAdapterStore(local, redis, subscriber, remote, log, opts.onState ?? (() => {}));
    redis.on('ready', () => store.markUp());
    redis.on('close', () => store.markDown('connection closed'));
    redis.on('error', (e: Error) => store.markDown(e.message));
    subscriber.on('error', () => {}); // the main connection reports outages
    subscriber.on('message', (_channel: string, id: string) => void store.dropLocal(id));
    store.onState(false);
    const subscribed = subscriber.subscribe(remote.deletedChannel);
    subscribed.catch(() => {});
    const waited = new Promise((resolve) => setTimeout(resolve, opts.timeoutMs).unref());
    await Promise.allSettled([redis.connect(), Promise.race([subscribed, waited])]);
    if (!store.up) log.warn({ redis: redact(opts.url) }, 'Redis is not reachable at start: adapters are local to this replica until it is');
    return store;
  }

  private markUp(): void {
    if (this.up || this.closed) return;
    this.up = true;
    this.onState(true);
    this.log.info({}, 'Redis reachable: adapters are shared with the other replicas');
    void this.replay();
  }

  private markDown(reason: string): void {
    if (!this.up || this.closed) return;
    this.up = false;
    this.onState(false);
    this.log.warn({ reason }, 'Redis unreachable: serving adapters from the local store only until it is back');
  }

  /** Runs one Redis operation; OFFLINE when Redis is down or the operation fails on the connection. */
  private async remoteOp<T>(op: (r: RedisAdapterStore) => Promise<T>): Promise<T | typeof OFFLINE> {
    if (!this.up) return OFFLINE;
    try {
      return await op(this.remote);
    } catch (e) {
      if (e instanceof CorruptValueError) throw e;
      const err = e as Error;
      if (err.name === 'ReplyError') {
        // Redis answered with an error (out of memory, ...): it is up, this one operation stays local.
        this.log.error({ err: err.message }, 'Redis refused an adapter operation; served from the local store');
        return OFFLINE;
      }
      // A timed-out command or a broken connection: Redis is down for us. A fresh connection replaces a
      // possibly hung one; ioredis keeps reconnecting and 'ready' brings us back.
      this.markDown(err.message);
      if (this.redis.status === 'ready') this.redis.disconnect(true);
      return OFFLINE;
    }
  }

  private async replay(): Promise<void> {
    if (this.replaying) return this.replaying;
    this.replaying = (async () => {
      for (const id of [...this.pendingDeletes]) {
        if ((await this.remoteOp((r) => r.delete(id))) === OFFLINE) return;
        this.pendingDeletes.delete(id);
      }
      for (const id of [...this.pendingPuts]) {
        const record = await this.local.get(id);
        if (record && (await this.remoteOp((r) => r.put(record))) === OFFLINE) return;
        this.pendingPuts.delete(id);
      }
    })().finally(() => (this.replaying = undefined));
    return this.replaying;
  }

  private async dropLocal(id: string): Promise<void> {
    if (!isAdapterId(id)) return;
    await this.lock.run(id, () => this.local.delete(id)).catch((e: Error) => this.log.error({ adapter: id, err: e.message }, 'could not drop a deleted adapter locally'));
  }

  async get(id: string): Promise<AdapterRecord | undefined> {
    const mine = await this.local.get(id);
    if (mine) return mine;
    return this.lock.run(id, () => this.copyFromRedis(id));
  }

  private async copyFromRedis(id: string): Promise<AdapterRecord | undefined> {
    let found: AdapterRecord | undefined | typeof OFFLINE;
    try {
      found = await this.remoteOp((r) => r.get(id));
    } catch (e) {
      this.log.error({ adapter: id, err: (e as Error).message }, 'corrupt adapter in Redis ignored');
      return undefined;
    }
    if (found === OFFLINE || !found) return undefined;
    return (await this.local.put(found)).record;
  }

  put(record: AdapterRecord): Promise<Stored> {
    return this.lock.run(record.meta.id, () => this.putLocked(record));
  }

  private async putLocked(record: AdapterRecord): Promise<Stored> {
    const shared = await this.remoteOp((r) => r.put(record));
    if (shared === OFFLINE) {
      this.pendingPuts.add(record.meta.id);
      this.pendingDeletes.delete(record.meta.id);
      return this.local.put(record);
    }
    const kept = await this.local.put(shared.record);
    return { record: kept.record, created: shared.created };
  }

  delete(id: string): Promise<boolean> {
    return this.lock.run(id, () => this.deleteLocked(id));
  }

  private async deleteLocked(id: string): Promise<boolean> {
    const shared = await this.remoteOp((r) => r.delete(id));
    if (shared === OFFLINE) {
      this.pendingDeletes.add(id);
      this.pendingPuts.delete(id);
    }
    const mine = await this.local.delete(id);
    return mine || shared === true;
  }

  async list(): Promise<AdapterMeta[]> {
    const byId = new Map<string, AdapterMeta>();
    for (const m of await this.local.list()) byId.set(m.id, m);
    const shared = await this.remoteOp((r) => r.list());
    if (shared !== OFFLINE) for (const m of shared) if (!this.pendingDeletes.has(m.id)) byId.set(m.id, m);
    return [...byId.values()].sort((a, b) => a.created_at - b.created_at || a.id.localeCompare(b.id));
  }

  /** Quarantined local copies: the local store kept their recipes. */
  recover(id: string): Promise<Recipe | undefined> {
    return this.local.recover ? this.local.recover(id) : Promise.resolve(undefined);
  }

  async flush(): Promise<void> {
    await this.local.flush?.();
  }

  health(): Promise<StoreHealth> {
    return this.local.health ? this.local.health() : Promise.resolve({ ok: true });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.replaying?.catch(() => {});
    for (const c of [this.subscriber, this.redis]) {
      if (c.status === 'ready') await c.quit().catch(() => c.disconnect());
      else c.disconnect();
    }
  }
}

/** The URL without its password, for logs. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}
