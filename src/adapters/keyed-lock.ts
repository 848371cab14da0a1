/**
 * One operation at a time per key, in arrival order; different keys never wait for each other.
 * The stores use it per adapter id so that a read that fills a cache and a delete never interleave:
 * whichever starts second sees the result of the first, so a finished delete is never undone.
 */
export class KeyedLock {
  /** The last operation queued per key; removed when it finishes and nothing queued behind it. */
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, op: () => Promise<T>): Promise<T> {
    const before = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const done = new Promise<void>((resolve) => (release = resolve));
    const tail = before.then(() => done);
    this.tails.set(key, tail);
    await before;
    try {
      return await op();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}
