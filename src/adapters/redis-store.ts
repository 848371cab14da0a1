/**
 * Adapters in Redis, shared by every replica. One key per adapter holds a safetensors blob whose
 * metadata carries the AdapterMeta; a hash indexes the metadata for listing. Puts are first-writer-wins
 * (SET NX and the index update in one Lua script), so two replicas creating the same id at once store one
 * copy and both serve it. Deletes publish the id so the other replicas drop their local copies.
 */
import type { Redis } from 'ioredis';
import { recordMismatch, type StoreManifest } from './check-stored.js';
import { decodeFromRedis, encodeForRedis } from './codec.js';
import type { AdapterMeta, AdapterRecord, AdapterStore, Stored } from './types.js';

// KEYS: adapter key, index hash. ARGV: blob, id, meta JSON. 1 = stored, 0 = the id was already there.
const PUT_IF_ABSENT = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
  return 1
end
return 0`;

// KEYS: adapter key, index hash. ARGV: blob, id, meta JSON. Replaces a value found corrupt.
const REPLACE = `
redis.call('SET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1`;

// KEYS: adapter key, index hash. ARGV: id, channel. Returns how many keys existed.
const DELETE = `
local n = redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[1])
return n`;

/** A value in Redis that is not a valid adapter: reported and ignored, never served. */
export class CorruptValueError extends Error {
  override name = 'CorruptValueError';
}

export class RedisAdapterStore implements AdapterStore {
  /** Channel on which deleted ids are published. */
  readonly deletedChannel: string;
  private readonly index: string;

  /** `manifest`: values of this model are checked against it when read (kinds, tensor names and sizes). */
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly manifest?: StoreManifest,
  ) {
    this.deletedChannel = `${prefix}deleted`;
    this.index = `${prefix}adapters`;
  }

  private key(id: string): string {
    return `${this.prefix}adapter:${id}`;
  }

  /** A value that does not parse, describes another id or does not fit the model is reported, never served. */
  private decode(id: string, blob: Buffer): AdapterRecord {
    let record: AdapterRecord;
    try {
      record = decodeFromRedis(id, blob);
    } catch (e) {
      throw new CorruptValueError(`the Redis value of ${id} is not a valid adapter: ${(e as Error).message}`);
    }
    const mismatch = this.manifest && recordMismatch(record, this.manifest);
    if (mismatch) throw new CorruptValueError(`the Redis value of ${id} does not match the manifest: ${mismatch}`);
    return record;
  }

  async get(id: string): Promise<AdapterRecord | undefined> {
    const blob = await this.redis.getBuffer(this.key(id));
    return blob ? this.decode(id, blob) : undefined;
  }

  async put(record: AdapterRecord): Promise<Stored> {
    const { id } = record.meta;
    // Twice at most: the existing copy can be deleted between the refused SET and the GET.
    for (let attempt = 0; attempt < 2; attempt++) {
      const stored = await this.redis.eval(PUT_IF_ABSENT, 2, this.key(id), this.index, encodeForRedis(record), id, JSON.stringify(record.meta));
      if (stored === 1) return { record, created: true };
      let existing: AdapterRecord | undefined;
      try {
        existing = await this.get(id);
      } catch (e) {
        if (!(e instanceof CorruptValueError)) throw e;
        // The first writer's copy is damaged: this one, made from the same examples or tensors, replaces it.
        await this.redis.eval(REPLACE, 2, this.key(id), this.index, encodeForRedis(record), id, JSON.stringify(record.meta));
        return { record, created: true };
      }
      if (existing) return { record: existing, created: false };
    }
    throw new Error(`adapter ${id} was deleted in Redis while being stored`);
  }

  async delete(id: string): Promise<boolean> {
    return (await this.redis.eval(DELETE, 2, this.key(id), this.index, id, this.deletedChannel)) === 1;
  }

  async list(): Promise<AdapterMeta[]> {
    const out: AdapterMeta[] = [];
    for (const text of await this.redis.hvals(this.index)) {
      try {
        out.push(JSON.parse(text) as AdapterMeta);
      } catch {
        /* a damaged index entry hides one adapter from the listing; get still finds it */
      }
    }
    return out;
  }
}
