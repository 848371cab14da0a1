/** API keys held as sha256 digests and matched in constant time (no early exit, equal-length compares). */
import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** A key's public id: enough to tell keys apart in logs, metrics and adapter ownership, useless to log in with. */
export const keyId = (key: string): string => `key-${digest(`hypert5-key-id\n${key}`).toString('hex').slice(0, 16)}`;

export class KeyRing {
  private readonly keys: { digest: Buffer; id: string }[];

  constructor(keys: readonly string[]) {
    this.keys = [...new Set(keys)].map((k) => ({ digest: digest(k), id: keyId(k) }));
  }

  get size(): number {
    return this.keys.length;
  }

  /** The id of the matching key, or null. Every key is compared, so timing does not tell which one was close. */
  match(presented: string): string | null {
    const d = digest(presented);
    let found: string | null = null;
    for (const k of this.keys) if (timingSafeEqual(d, k.digest) && found === null) found = k.id;
    return found;
  }
}
