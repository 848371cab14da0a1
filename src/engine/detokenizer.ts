/**
 * The generation loop's `decode`, incremental where it can be exact: a sampled row passes the same token
 * array every step, one token longer, and re-decoding all of it each step costs O(length) per token.
 *
 * For the byte-level tokenizer the text of a byte string splits at any byte that cannot continue a UTF-8
 * sequence (below 0x80 or above 0xBF): before it the WHATWG decoder is either at a character boundary or emits
 * U+FFFD for the incomplete sequence and starts afresh, exactly as decoding the two parts apart does. So a row
 * keeps the text up to its last such byte and decodes only the bytes after it. Only the first part may drop a
 * leading byte-order mark, as decoding the whole would. Other tokenizers (merges, spacing rules) get the full
 * decode.
 */
import type { Manifest } from '../inference/manifest.js';
import type { TextTokenizer } from '../inference/tokenizer.js';

interface RowText {
  /** Ids consumed so far, and the last one (a cheap check that the array only grew). */
  n: number;
  last: number;
  /** Text of the bytes before `tail`. */
  head: string;
  /** Bytes since the last byte that cannot continue a sequence (that byte first). */
  tail: number[];
  /** Whether `tail` starts the row's bytes (it may then start with a byte-order mark, which is dropped). */
  atStart: boolean;
}

const canContinue = (byte: number): boolean => byte >= 0x80 && byte <= 0xbf;

export function incrementalDecode(tok: TextTokenizer, spec: Manifest['tokenizer']): (ids: readonly number[]) => string {
  if (spec.type !== 'byte') return (ids) => tok.decode(ids);
  const offset = spec.offset;
  const first = new TextDecoder('utf-8', { fatal: false });
  const later = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
  const text = (s: RowText): string => (s.tail.length ? (s.atStart ? first : later).decode(Uint8Array.from(s.tail)) : '');
  const rows = new WeakMap<readonly number[], RowText>();
  return (ids) => {
    let s = rows.get(ids);
    if (!s || s.n > ids.length || (s.n > 0 && ids[s.n - 1] !== s.last)) {
      s = { n: 0, last: -1, head: '', tail: [], atStart: true };
      rows.set(ids, s);
    }
    for (let i = s.n; i < ids.length; i++) {
      const id = ids[i]!;
      // Special and unused ids decode to nothing (ByteTokenizer.decode), and do not separate bytes.
      if (id < offset || id >= 256 + offset) continue;
      const byte = id - offset;
      if (!canContinue(byte) && s.tail.length) {
        s.head += text(s);
        s.tail = [];
        s.atStart = false;
      }
      s.tail.push(byte);
    }
    s.n = ids.length;
    s.last = ids.length ? ids[ids.length - 1]! : -1;
    return s.head + text(s);
  };
}
