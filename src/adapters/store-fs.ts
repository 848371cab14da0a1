/**
 * The file system operations the disk store uses, as one replaceable dependency: tests inject failures
 * (a full disk) that a real file system only shows under conditions a unit test cannot set up.
 */
import { access, mkdir, open, readdir, readFile, rename, statfs, unlink } from 'node:fs/promises';

export interface StoreFs {
  /** Creates (or truncates) `file`, writes `data` and fsyncs it. */
  writeSynced(file: string, data: Buffer | string): Promise<void>;
  /** Makes the renames and unlinks in `dir` durable. */
  syncDir(dir: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(file: string): Promise<void>;
  readFile(file: string): Promise<Buffer>;
  readdir(dir: string): Promise<string[]>;
  /** Creates `dir` and its parents when missing. */
  mkdir(dir: string): Promise<void>;
  exists(file: string): Promise<boolean>;
  /** Bytes an unprivileged writer can still use on the file system holding `dir`. */
  freeBytes(dir: string): Promise<number>;
}

async function syncOpened(file: string, flags: string, data?: Buffer | string): Promise<void> {
  const fh = await open(file, flags);
  try {
    if (data !== undefined) await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export const nodeFs: StoreFs = {
  writeSynced: (file, data) => syncOpened(file, 'w', data),
  syncDir: (dir) => syncOpened(dir, 'r'),
  rename,
  unlink,
  readFile: (file) => readFile(file),
  readdir: (dir) => readdir(dir),
  mkdir: async (dir) => void (await mkdir(dir, { recursive: true })),
  exists: (file) => access(file).then(() => true, () => false),
  freeBytes: async (dir) => {
    const s = await statfs(dir);
    return s.bavail * s.bsize;
  },
};

/** The errors that mean "no space for this write" (a full disk, or the user's quota), not a broken store. */
export function fullErrno(e: unknown): 'ENOSPC' | 'EDQUOT' | undefined {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT' ? code : undefined;
}

/** A write refused for lack of space: the caller answers HT_ERR_STORE_FULL, retryable: space may come back. */
export class StoreFullError extends Error {
  override name = 'StoreFullError';
}
