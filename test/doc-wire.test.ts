/**
 * src/store/doc-wire.ts: the common shapes of a document's value read without msgpackr. Whatever
 * it returns must be what msgpackr returns for the same bytes, and whatever it does not know it
 * must leave to msgpackr (undefined).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { decodeWireDoc } from '../src/store/doc-wire.js';

// The state's own settings (src/store/state.ts).
const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });

// Each width msgpack gives an unsigned integer (fixint, uint8, uint16, uint32), and now and then one past uint32 (uint64 or float64).
const uint = fc.oneof(
  { arbitrary: fc.nat({ max: 300 }), weight: 3 },
  { arbitrary: fc.nat({ max: 70_000 }), weight: 3 },
  { arbitrary: fc.integer({ min: 0, max: 0xffff_ffff }), weight: 3 },
  { arbitrary: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), weight: 1 },
);
const ref = fc.tuple(uint, uint, uint, uint);
// Short strings are fixstr, longer ones str8 and str16, and a few past 65,535 bytes str32.
const shortMeta = fc.oneof(fc.string(), fc.string({ unit: 'grapheme', maxLength: 300 }), fc.json());
const meta = fc.oneof({ arbitrary: shortMeta, weight: 20 }, { arbitrary: fc.string({ minLength: 70_000, maxLength: 70_100 }), weight: 1 });
const docOf = (m: fc.Arbitrary<string>) => fc.record({ text: ref, meta: m }, { requiredKeys: [], noNullPrototype: true });
const doc = docOf(meta);

describe('decodeWireDoc', () => {
  it('reads what msgpackr writes for every document the state stores: the same object msgpackr reads back, or undefined (an offset past 2^32 is msgpackr\'s to read)', () => {
    let read = 0;
    fc.assert(
      fc.property(doc, (d) => {
        const bytes = packr.pack(d);
        const fast = decodeWireDoc(bytes);
        const slow: unknown = packr.unpack(bytes);
        assert.deepEqual(slow, d);
        if (fast === undefined) {
          assert.ok(d.text?.some((n) => n > 0xffff_ffff), `only a number past uint32 is left to msgpackr: ${JSON.stringify(d)}`);
          return;
        }
        read++;
        assert.deepEqual(fast, slow);
      }),
      { numRuns: 2000 },
    );
    assert.ok(read > 1000, 'most documents are read without msgpackr');
  });

  it('returns only what msgpackr returns for any bytes, and undefined for other shapes: other keys, a key twice, other value types, trailing bytes, a string that is not UTF-8, a cut value', () => {
    const leftToMsgpackr: Array<[string, Uint8Array]> = [
      ['empty', new Uint8Array(0)],
      ['a map of three', packr.pack({ text: [1, 1, 1, 1], meta: '{}', other: 1 })],
      ['another key', packr.pack({ txt: [1, 1, 1, 1] })],
      ['a key twice', Uint8Array.of(0x82, 0xa4, 0x6d, 0x65, 0x74, 0x61, 0xa0, 0xa4, 0x6d, 0x65, 0x74, 0x61, 0xa0)],
      ['a reference of three', packr.pack({ text: [1, 1, 1] })],
      ['a negative number', packr.pack({ text: [1, -1, 1, 1] })],
      ['a float', packr.pack({ text: [1, 1, 0.5, 1] })],
      ['metadata not a string', packr.pack({ meta: 5 })],
      ['null', packr.pack(null)],
      ['an array', packr.pack([1, 2])],
      ['trailing bytes', Uint8Array.of(...packr.pack({ meta: 'x' }), 0)],
      ['not UTF-8', Uint8Array.of(0x81, 0xa4, 0x6d, 0x65, 0x74, 0x61, 0xa2, 0xc3, 0x28)],
      ['cut in the reference', packr.pack({ text: [1, 300, 70_000, 5] }).subarray(0, 12)],
      ['cut in a string', packr.pack({ meta: 'abcdef' }).subarray(0, 9)],
      ['str8 length past the end', Uint8Array.of(0x81, 0xa4, 0x6d, 0x65, 0x74, 0x61, 0xd9, 9, 0x61)],
    ];
    for (const [what, bytes] of leftToMsgpackr) assert.equal(decodeWireDoc(bytes), undefined, what);
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 40 }), docOf(shortMeta).map((d) => packr.pack(d)).chain((b) => fc.tuple(fc.constant(b), fc.nat(), fc.nat({ max: 255 })).map(([b2, at, v]) => {
        const out = Uint8Array.from(b2);
        if (out.length > 0) out[at % out.length] = v;
        return out;
      }))), (bytes) => {
        const fast = decodeWireDoc(bytes);
        if (fast === undefined) return;
        assert.deepEqual(fast, packr.unpack(bytes));
      }),
      { numRuns: 1500 },
    );
  });
});
