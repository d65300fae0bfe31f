/**
 * The common shapes of a document's value in the state's `docs` table (STATE.md), read without
 * the general MessagePack decoder: every answer of a search reads its document, and msgpackr took
 * about 0.7 µs of the 4.7 a document cost in a 50k search (its setup per call, not the bytes).
 *
 * A value is MessagePack of `{ text?: [generation, segment, offset, length], meta?: string }`, as
 * msgpackr writes it: a fixmap of those keys as fixstr, the reference as a fixarray of four
 * unsigned integers, the metadata as a string. decodeWireDoc() reads exactly that, the whole
 * payload, and returns undefined for anything else (another encoding of a number, a key it does not
 * know, trailing bytes, a string that is not UTF-8): the caller then decodes with msgpackr, so
 * whatever msgpackr made of a value before, it still makes. What it returns is what msgpackr returns
 * for the same bytes (test/doc-wire.test.ts checks both on random documents and random bytes).
 */

export interface WireDoc {
  text?: readonly [number, number, number, number];
  meta?: string;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** 't','e','x','t' and 'm','e','t','a' as fixstr (0xa4 and four bytes), read as one big-endian word after the 0xa4. */
const TEXT = 0x74657874;
const META = 0x6d657461;

/** The unsigned integer at `at` and where it ends, or -1 for another encoding (an int64 past 2^32 included). */
function uintAt(b: Uint8Array, at: number, end: number): number {
  if (at >= end) return -1;
  const tag = b[at]!;
  if (tag <= 0x7f) {
    next = at + 1;
    return tag;
  }
  if (tag === 0xcc && at + 2 <= end) {
    next = at + 2;
    return b[at + 1]!;
  }
  if (tag === 0xcd && at + 3 <= end) {
    next = at + 3;
    return (b[at + 1]! << 8) | b[at + 2]!;
  }
  if (tag === 0xce && at + 5 <= end) {
    next = at + 5;
    return ((b[at + 1]! << 24) | (b[at + 2]! << 16) | (b[at + 3]! << 8) | b[at + 4]!) >>> 0;
  }
  return -1;
}

/** Where the last read ended (uintAt): module state, so that no object is made per number. */
let next = 0;

/** The document `payload` encodes when it has one of the common shapes; undefined otherwise. */
export function decodeWireDoc(payload: Uint8Array): WireDoc | undefined {
  const end = payload.length;
  if (end === 0) return undefined;
  const head = payload[0]!;
  if (head < 0x80 || head > 0x82) return undefined;
  const entries = head & 0x0f;
  let at = 1;
  let text: [number, number, number, number] | undefined;
  let meta: string | undefined;
  for (let e = 0; e < entries; e++) {
    if (at + 5 > end || payload[at] !== 0xa4) return undefined;
    const key = ((payload[at + 1]! << 24) | (payload[at + 2]! << 16) | (payload[at + 3]! << 8) | payload[at + 4]!) >>> 0;
    at += 5;
    if (key === TEXT && text === undefined) {
      if (at >= end || payload[at] !== 0x94) return undefined;
      at++;
      const g = uintAt(payload, at, end);
      if (g < 0) return undefined;
      const s = uintAt(payload, next, end);
      if (s < 0) return undefined;
      const offset = uintAt(payload, next, end);
      if (offset < 0) return undefined;
      const length = uintAt(payload, next, end);
      if (length < 0) return undefined;
      at = next;
      text = [g, s, offset, length];
    } else if (key === META && meta === undefined) {
      if (at >= end) return undefined;
      const tag = payload[at]!;
      let length: number;
      if (tag >= 0xa0 && tag <= 0xbf) {
        length = tag & 0x1f;
        at += 1;
      } else if (tag === 0xd9 && at + 2 <= end) {
        length = payload[at + 1]!;
        at += 2;
      } else if (tag === 0xda && at + 3 <= end) {
        length = (payload[at + 1]! << 8) | payload[at + 2]!;
        at += 3;
      } else if (tag === 0xdb && at + 5 <= end) {
        length = ((payload[at + 1]! << 24) | (payload[at + 2]! << 16) | (payload[at + 3]! << 8) | payload[at + 4]!) >>> 0;
        at += 5;
      } else {
        return undefined;
      }
      if (at + length > end) return undefined;
      try {
        meta = utf8.decode(payload.subarray(at, at + length));
      } catch {
        return undefined;
      }
      at += length;
    } else {
      return undefined;
    }
  }
  if (at !== end) return undefined;
  if (text === undefined) return meta === undefined ? {} : { meta };
  return meta === undefined ? { text } : { text, meta };
}
