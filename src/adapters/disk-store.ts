/**
 * Persistent adapter store on local disk: <id>.safetensors (tensors) + <id>.json (metadata and the
 * sha256 of the tensors file). Writes are atomic (temp file, fsync, rename; the .json is written last and
 * is the commit mark), and a failed write leaves no file behind. Reads verify the checksum and the
 * manifest (kind, names, shapes, dtypes); an entry that fails is quarantined, never served.
 * Operations on one id run one at a time, so a read never undoes a delete.
 */
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { isAdapterId } from './canonical-id.js';
import { storedMismatch, type StoreManifest } from './check-stored.js';
import { decodeFromDisk, encodeForDisk, shapeTable, type ShapeTable } from './codec.js';
import { KeyedLock } from './keyed-lock.js';
import { recipeIn } from './recipe.js';
import { fullErrno, nodeFs, StoreFullError, type StoreFs } from './store-fs.js';
import type { AdapterMeta, AdapterRecord, AdapterStore, Recipe, StoreHealth, Stored } from './types.js';

interface MetaFile {
  meta: AdapterMeta;
  sha256: string;
  shapes: Record<string, number[]>;
  /** What it was generated from: the recipe of a quarantined entry (recipe.ts). */
  examples?: { input: string; output: string }[];
}

export interface DiskStoreLogger {
  error(obj: object, msg: string): void;
  warn?(obj: object, msg: string): void;
}

export interface DiskStoreOptions {
  /** The model's adapter tensors: files are written with their shapes and checked against them on read. */
  manifest?: StoreManifest;
  fs?: StoreFs;
}

const ENTRY_RE = /^(ad-[0-9a-f]{32})\.(json|safetensors)$/;

export class DiskAdapterStore implements AdapterStore {
  private readonly writing = new Set<Promise<unknown>>();
  private readonly lock = new KeyedLock();
  private readonly shapes: ShapeTable;
  /** Set while the last write failed for lack of space: how many bytes it needed (see health()). */
  private full: { errno: string; bytes: number } | undefined;

  private constructor(
    private readonly dir: string,
    private readonly log: DiskStoreLogger,
    private readonly manifest: StoreManifest | undefined,
    private readonly fs: StoreFs,
  ) {
    this.shapes = shapeTable(Object.values(manifest?.kinds ?? {}).flat());
  }

  static async open(dir: string, log: DiskStoreLogger, opts: DiskStoreOptions = {}): Promise<DiskAdapterStore> {
    const fs = opts.fs ?? nodeFs;
    await fs.mkdir(path.join(dir, 'quarantine'));
    const store = new DiskAdapterStore(dir, log, opts.manifest, fs);
    await store.sweep();
    return store;
  }

  /**
   * Litter of writes that a crash interrupted, never an entry: temp files, and tensors files whose .json
   * (the commit mark) was never written.
   */
  private async sweep(): Promise<void> {
    const names = await this.fs.readdir(this.dir);
    const committed = new Set(names.filter((n) => n.endsWith('.json')));
    const litter = names.filter((n) => /^\..*\.tmp$/.test(n) || (ENTRY_RE.test(n) && n.endsWith('.safetensors') && !committed.has(n.replace(/safetensors$/, 'json'))));
    for (const name of litter) await this.fs.unlink(path.join(this.dir, name)).catch(() => {});
    if (litter.length) this.log.warn?.({ files: litter.slice(0, 5), count: litter.length }, 'removed files of interrupted adapter writes');
  }

  private file(id: string, ext: 'json' | 'safetensors'): string {
    // Ids are validated at the HTTP edge too; this keeps any caller from escaping the folder.
    if (!isAdapterId(id)) throw new Error(`invalid adapter id ${JSON.stringify(id)}`);
    return path.join(this.dir, `${id}.${ext}`);
  }

  private async atomicWrite(target: string, data: Buffer | string): Promise<void> {
    const tmp = path.join(this.dir, `.${path.basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      await this.fs.writeSynced(tmp, data);
      await this.fs.rename(tmp, target);
    } catch (e) {
      // Whatever failed, the temp file goes: on a full disk it would hold the space that is missing.
      await this.fs.unlink(tmp).catch(() => {});
      throw e;
    }
  }

  /** Local disk is one replica's own copy: a put (re)writes the entry. */
  async put(record: AdapterRecord): Promise<Stored> {
    const write = this.lock.run(record.meta.id, () => this.write(record));
    this.writing.add(write);
    try {
      await write;
    } finally {
      this.writing.delete(write);
    }
    return { record, created: true };
  }

  /** Resolves once every write in progress is on disk. */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.writing]);
  }

  private async write(record: AdapterRecord): Promise<void> {
    const { meta } = record;
    const { bytes: st, shapes } = encodeForDisk(record, this.shapes);
    const mf: MetaFile = { meta, sha256: createHash('sha256').update(st).digest('hex'), shapes, ...(record.examples ? { examples: record.examples } : {}) };
    const json = JSON.stringify(mf);
    const [stFile, jsonFile] = [this.file(meta.id, 'safetensors'), this.file(meta.id, 'json')];
    const existed = await this.fs.exists(jsonFile);
    let committed = false;
    try {
      await this.atomicWrite(stFile, st);
      await this.atomicWrite(jsonFile, json);
      committed = true;
      await this.fs.syncDir(this.dir);
    } catch (e) {
      // A new entry whose .json never landed: its tensors file alone is litter, and holds space.
      if (!committed && !existed) await this.fs.unlink(stFile).catch(() => {});
      const errno = fullErrno(e);
      if (!errno) throw e;
      const bytes = st.length + Buffer.byteLength(json);
      this.full = { errno, bytes };
      throw new StoreFullError(`the adapter store (ADAPTER_STORE_DIR) has no space for adapter ${meta.id} (${bytes} bytes): ${errno}`);
    }
    this.full = undefined;
  }

  /**
   * Unhealthy from a write that failed for lack of space until a write succeeds or the file system reports
   * at least the bytes that write needed as free again (space freed by deletes or by an operator).
   */
  async health(): Promise<StoreHealth> {
    const full = this.full;
    if (!full) return { ok: true };
    const free = await this.fs.freeBytes(this.dir).catch(() => 0);
    if (free >= full.bytes) {
      this.full = undefined;
      return { ok: true };
    }
    return { ok: false, reason: `the adapter store (ADAPTER_STORE_DIR) is full: the last write needed ${full.bytes} bytes and failed with ${full.errno}; ${free} bytes are free` };
  }

  private async quarantine(id: string, reason: string): Promise<void> {
    this.log.error({ adapter: id, reason }, 'corrupt adapter quarantined');
    const stamp = Date.now();
    for (const ext of ['json', 'safetensors'] as const) {
      await this.fs.rename(this.file(id, ext), path.join(this.dir, 'quarantine', `${id}.${stamp}.${ext}`)).catch(() => {});
    }
  }

  get(id: string): Promise<AdapterRecord | undefined> {
    return this.lock.run(id, () => this.read(id));
  }

  private async read(id: string): Promise<AdapterRecord | undefined> {
    let metaText: string;
    try {
      metaText = (await this.fs.readFile(this.file(id, 'json'))).toString('utf8');
    } catch {
      return undefined;
    }
    try {
      const mf = JSON.parse(metaText) as MetaFile;
      if (!mf?.meta || mf.meta.id !== id || typeof mf.sha256 !== 'string') throw new Error('metadata does not describe this adapter');
      const st = await this.fs.readFile(this.file(id, 'safetensors'));
      const actual = createHash('sha256').update(st).digest('hex');
      if (actual !== mf.sha256) throw new Error(`sha256 ${actual} differs from the recorded ${mf.sha256}`);
      const { file, tensors } = decodeFromDisk(st);
      const mismatch = storedMismatch(id, mf.meta, file, this.manifest);
      if (mismatch) throw new Error(`does not match the manifest: ${mismatch}`);
      return { meta: mf.meta, tensors, ...(mf.examples ? { examples: mf.examples } : {}) };
    } catch (e) {
      await this.quarantine(id, (e as Error).message);
      return undefined;
    }
  }

  /** The newest quarantined metadata of `id` that still names its examples. */
  async recover(id: string): Promise<Recipe | undefined> {
    if (!isAdapterId(id)) return undefined;
    const qdir = path.join(this.dir, 'quarantine');
    const names = (await this.quarantined(id)).filter((n) => n.endsWith('.json')).sort().reverse();
    for (const name of names) {
      try {
        const recipe = recipeIn(id, JSON.parse((await this.fs.readFile(path.join(qdir, name))).toString('utf8')) as Partial<MetaFile> | null);
        if (recipe) return recipe;
      } catch {
        /* a torn or corrupt metadata file: no recipe in it */
      }
    }
    return undefined;
  }

  private async quarantined(id: string): Promise<string[]> {
    const names = await this.fs.readdir(path.join(this.dir, 'quarantine')).catch(() => [] as string[]);
    return names.filter((n) => n.startsWith(`${id}.`));
  }

  delete(id: string): Promise<boolean> {
    return this.lock.run(id, async () => {
      let existed = false;
      // The .json goes first: without it the entry no longer exists, whatever happens next.
      for (const ext of ['json', 'safetensors'] as const) {
        try {
          await this.fs.unlink(this.file(id, ext));
          existed = existed || ext === 'json';
        } catch {
          /* already gone */
        }
      }
      // Quarantined copies go too: their recipe would otherwise regenerate the deleted adapter.
      for (const name of await this.quarantined(id)) await this.fs.unlink(path.join(this.dir, 'quarantine', name)).catch(() => {});
      return existed;
    });
  }

  async list(): Promise<AdapterMeta[]> {
    const out: AdapterMeta[] = [];
    for (const name of await this.fs.readdir(this.dir)) {
      const m = /^(ad-[0-9a-f]{32})\.json$/.exec(name);
      if (!m) continue;
      try {
        out.push((JSON.parse((await this.fs.readFile(path.join(this.dir, name))).toString('utf8')) as MetaFile).meta);
      } catch {
        /* unreadable entries are quarantined when fetched */
      }
    }
    return out.sort((a, b) => a.created_at - b.created_at || a.id.localeCompare(b.id));
  }
}
