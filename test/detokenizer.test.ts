/**
 * The generation loop's incremental decode gives, at every length of a growing token array, exactly the text
 * the tokenizer gives for the whole array: broken and interrupted UTF-8, byte-order marks anywhere, special
 * and unused ids between bytes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { incrementalDecode } from '../src/engine/detokenizer.js';
import { ByteTokenizer } from '../src/inference/tokenizer.js';

const OFFSET = 3;
const tok = new ByteTokenizer(OFFSET);
const id = (byte: number) => byte + OFFSET;

/** Ids biased towards what breaks naive splitting: continuation and lead bytes, a BOM, specials. */
const ids = fc.array(
  fc.oneof(
    fc.integer({ min: 0, max: 255 }).map(id),
    fc.integer({ min: 0x80, max: 0xbf }).map(id),
    fc.constantFrom(0xc3, 0xe2, 0xef, 0xf0, 0xbb, 0xbf, 0x41).map(id),
    fc.constantFrom(0, 1, 2, 256 + OFFSET, 300),
  ),
  { maxLength: 40 },
);

describe('incremental decode', () => {
  it('equals the full decode after every appended token', () => {
    fc.assert(
      fc.property(ids, (all) => {
        const decode = incrementalDecode(tok, { type: 'byte', offset: OFFSET });
        const row: number[] = [];
        for (const x of all) {
          row.push(x);
          assert.equal(decode(row), tok.decode(row), `ids ${JSON.stringify(row)}`);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('a byte-order mark is dropped at the start only, as the full decode drops it', () => {
    const decode = incrementalDecode(tok, { type: 'byte', offset: OFFSET });
    const bom = [0xef, 0xbb, 0xbf].map(id);
    const row = [...bom, id(0x41)];
    assert.equal(decode(row), 'A');
    row.push(...bom, id(0x42));
    assert.equal(decode(row), 'A\ufeffB');
  });

  it('an array that changed under it (not only grew) is decoded afresh', () => {
    const decode = incrementalDecode(tok, { type: 'byte', offset: OFFSET });
    const row = [id(0x61), id(0x62)];
    assert.equal(decode(row), 'ab');
    row[1] = id(0x63);
    assert.equal(decode(row), 'ac');
  });
});
