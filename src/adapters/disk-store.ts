/**
 * Persistent adapter store on local disk: <id>.safetensors (tensors) + <id>.json (metadata and the
 * sha256 of the tensors file). Writes are atomic (temp file, fsync, rename; the .json is written last and
 * is the commit mark), reads verify the checksum, and a corrupt entry is quarantined, never served.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { isAdapterId } from './canonical-id.js';
import { readSafetensors, writeSafetensors } from './safetensors.js';
import type { AdapterMeta, AdapterRecord, AdapterStore, Recipe, Stored } from './types.js';

interface MetaFile {
  meta: AdapterMeta;
  sha256: string;
  shapes: Record<string, number[]>;
  /** What it was generated from: a quarantined entry with examples is regenerated (services/adapters.ts). */
  examples?: { input: string; output: string }[];
}

export interface DiskStoreLogger {
  error(obj: object, msg: string): void;
}

export class DiskAdapterStore implements AdapterStore {
  private readonly writing = new Set<Promise<unknown>>();

  private constructor(
    private readonly dir: string,
    private readonly log: DiskStoreLogger,
    private readonly shapes: Readonly<Record<string, readonly number[]>>,
  ) {}

  /** `shapes`: the manifest's per-adapter tensor shapes, so the files on disk are readable on their own. */
  static async open(dir: string, log: DiskStoreLogger, shapes: Readonly<Record<string, readonly number[]>> = {}): Promise<DiskAdapterStore> {
    await mkdir(path.join(dir, 'quarantine'), { recursive: true });
    // Temp files of writes that a crash interrupted: never an entry (the rename is the commit), just litter.
    for (const name of await readdir(dir)) if (/^\..*\.tmp$/.test(name)) await unlink(path.join(dir, name)).catch(() => {});
    return new DiskAdapterStore(dir, log, shapes);
  }

  private file(id: string, ext: 'json' | 'safetensors'): string {
    // Ids are validated at the HTTP edge too; this keeps any caller from escaping the folder.
    if (!isAdapterId(id)) throw new Error(`invalid adapter id ${JSON.stringify(id)}`);
    return path.join(this.dir, `${id}.${ext}`);
  }

  private async atomicWrite(target: string, data: Buffer | string): Promise<void> {
    const tmp = path.join(this.dir, `.${path.basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, target);
  }

  private async syncDir(): Promise<void> {
    const fh = await open(this.dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  /** Local disk is one replica's own copy: a put (re)writes the entry. */
  async put(record: AdapterRecord): Promise<Stored> {
    const write = this.write(record);
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
    const { meta, tensors } = record;
    const shapes: Record<string, number[]> = {};
    const entries: [string, { shape: number[]; data: Float32Array }][] = [];
    for (const [name, data] of Object.entries(tensors)) {
      const known = this.shapes[name];
      const shape = known && known.reduce((a, b) => a * b, 1) === data.length ? [...known] : [data.length];
      shapes[name] = shape;
      entries.push([name, { shape, data }]);
    }
    const st = writeSafetensors(entries, { format: 'hypert5-adapter', id: meta.id, kind: meta.kind });
    const mf: MetaFile = { meta, sha256: createHash('sha256').update(st).digest('hex'), shapes, ...(record.examples ? { examples: record.examples } : {}) };
    await this.atomicWrite(this.file(meta.id, 'safetensors'), st);
    await this.atomicWrite(this.file(meta.id, 'json'), JSON.stringify(mf));
    await this.syncDir();
  }

  private async quarantine(id: string, reason: string): Promise<void> {
    this.log.error({ adapter: id, reason }, 'corrupt adapter quarantined');
    const stamp = Date.now();
    for (const ext of ['json', 'safetensors'] as const) {
      await rename(this.file(id, ext), path.join(this.dir, 'quarantine', `${id}.${stamp}.${ext}`)).catch(() => {});
    }
  }

  async get(id: string): Promise<AdapterRecord | undefined> {
    let metaText: string;
    try {
      metaText = await readFile(this.file(id, 'json'), 'utf8');
    } catch {
      return undefined;
    }
    let mf: MetaFile;
    let st: Buffer;
    try {
      mf = JSON.parse(metaText) as MetaFile;
      if (!mf?.meta || mf.meta.id !== id || typeof mf.sha256 !== 'string') throw new Error('metadata does not describe this adapter');
      st = await readFile(this.file(id, 'safetensors'));
    } catch (e) {
      await this.quarantine(id, (e as Error).message);
      return undefined;
    }
    const actual = createHash('sha256').update(st).digest('hex');
    if (actual !== mf.sha256) {
      await this.quarantine(id, `sha256 ${actual} differs from the recorded ${mf.sha256}`);
      return undefined;
    }
    try {
      const file = readSafetensors(st);
      const tensors: Record<string, Float32Array> = {};
      for (const [name, t] of file.tensors) tensors[name] = t.data;
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
    const names = (await readdir(qdir).catch(() => [] as string[])).filter((n) => n.startsWith(`${id}.`) && n.endsWith('.json')).sort().reverse();
    for (const name of names) {
      try {
        const mf = JSON.parse(await readFile(path.join(qdir, name), 'utf8')) as MetaFile;
        if (mf?.meta?.id === id && Array.isArray(mf.examples)) return { meta: mf.meta, examples: mf.examples };
      } catch {
        /* a torn or corrupt metadata file: no recipe in it */
      }
    }
    return undefined;
  }

  async delete(id: string): Promise<boolean> {
    let existed = false;
    // The .json goes first: without it the entry no longer exists, whatever happens next.
    for (const ext of ['json', 'safetensors'] as const) {
      try {
        await unlink(this.file(id, ext));
        existed = existed || ext === 'json';
      } catch {
        /* already gone */
      }
    }
    return existed;
  }

  async list(): Promise<AdapterMeta[]> {
    const out: AdapterMeta[] = [];
    for (const name of await readdir(this.dir)) {
      const m = /^(ad-[0-9a-f]{32})\.json$/.exec(name);
      if (!m) continue;
      try {
        out.push((JSON.parse(await readFile(path.join(this.dir, name), 'utf8')) as MetaFile).meta);
      } catch {
        /* unreadable entries are quarantined when fetched */
      }
    }
    return out.sort((a, b) => a.created_at - b.created_at || a.id.localeCompare(b.id));
  }
}
