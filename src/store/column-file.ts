import type { FileLayer } from '../../io/file-layer.js';
import { crc32c } from '../../io/crc32c.js';
import { checksumHolds, INDEX_HEADER_SIZE, sealChecksum } from './index-file.js';

/**
 * The columns file (INDEX.md, "Filter columns"): the filter columns one checkpoint persisted, beside
 * the index file. A sequence of sealed blocks with the index file's header layout: one HEAD, the
 * KEYS of every entry, then per column one FIELD and the CODES of every entry. An entry is a record
 * the index held (or had set aside as damaged) when the checkpoint was taken, named by a 64-bit
 * hash of its id; a reader finds each loaded record's entry by that hash.
 */

/** The index file's header layout: length u32 | masked CRC-32C u32 | kind u8 | 3 zero bytes | count u32 | first u32. */
export const COLUMN_HEADER_SIZE = INDEX_HEADER_SIZE;
/** Kinds apart from the index file's (1, 2), so that a block of one file is never taken for one of the other. */
export const COLUMN_HEAD = 3;
export const COLUMN_KEYS = 4;
export const COLUMN_FIELD = 5;
export const COLUMN_CODES = 6;
/** The HEAD's version: a reader loads nothing from a file of another. */
export const COLUMNS_VERSION = 1;
/** Entries per KEYS or CODES block: blocks of 512 KiB and 128 KiB, read one at a time. */
export const ENTRIES_PER_BLOCK = 1 << 16;
/** version, maxValues, indexGeneration, indexBytes (low, high 32 bits), columns. */
const HEAD_BYTES = 24;

/** What a columns file says it describes: the index file's prefix [0, indexBytes) of indexGeneration. */
export interface ColumnsStamp {
  readonly indexGeneration: number;
  readonly indexBytes: number;
}

export interface ColumnsHead extends ColumnsStamp {
  readonly entries: number;
  readonly columns: number;
  /** The dictionary room of the writer's columns (FilterColumns.valuesPerField). */
  readonly maxValues: number;
}

/** What a checkpoint writes: per entry its id's hash (two words), and each column's codes per entry. */
export interface ColumnsImage {
  readonly maxValues: number;
  readonly keys: Uint32Array;
  readonly columns: readonly { readonly field: string; readonly keys: readonly string[]; readonly codes: Uint16Array }[];
}

/** The two words naming an id in a columns file: FNV-1a and CRC-32C of its UTF-8, written to `out[at]`, `out[at + 1]`. */
export function idHash(bytes: Uint8Array, out: Uint32Array, at: number): void {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  out[at] = h >>> 0;
  out[at + 1] = crc32c(bytes);
}

function seal(kind: number, count: number, first: number, payload: number): { block: Uint8Array; view: DataView } {
  const block = new Uint8Array(COLUMN_HEADER_SIZE + payload);
  const view = new DataView(block.buffer);
  view.setUint32(0, payload, true);
  block[8] = kind;
  view.setUint32(12, count, true);
  view.setUint32(16, first, true);
  return { block, view };
}

function finish(block: Uint8Array): Uint8Array {
  sealChecksum(block);
  return block;
}

/** UTF-16 code units, not UTF-8: a lone surrogate in a value or field name must come back as it was. */
function putUnits(view: DataView, at: number, s: string): number {
  view.setUint32(at, s.length, true);
  at += 4;
  for (let i = 0; i < s.length; i++, at += 2) view.setUint16(at, s.charCodeAt(i), true);
  return at;
}

/** The blocks of a columns file for `image`, stamped with the index prefix it describes. */
export function encodeColumns(image: ColumnsImage, stamp: ColumnsStamp): Uint8Array[] {
  const entries = image.keys.length / 2;
  const blocks: Uint8Array[] = [];
  const head = seal(COLUMN_HEAD, entries, 0, HEAD_BYTES);
  head.view.setUint32(COLUMN_HEADER_SIZE, COLUMNS_VERSION, true);
  head.view.setUint32(COLUMN_HEADER_SIZE + 4, image.maxValues, true);
  head.view.setUint32(COLUMN_HEADER_SIZE + 8, stamp.indexGeneration, true);
  head.view.setUint32(COLUMN_HEADER_SIZE + 12, stamp.indexBytes % 2 ** 32, true);
  head.view.setUint32(COLUMN_HEADER_SIZE + 16, Math.floor(stamp.indexBytes / 2 ** 32), true);
  head.view.setUint32(COLUMN_HEADER_SIZE + 20, image.columns.length, true);
  blocks.push(finish(head.block));
  for (let first = 0; first < entries; first += ENTRIES_PER_BLOCK) {
    const count = Math.min(ENTRIES_PER_BLOCK, entries - first);
    const b = seal(COLUMN_KEYS, count, first, 8 * count);
    for (let i = 0; i < 2 * count; i++) b.view.setUint32(COLUMN_HEADER_SIZE + 4 * i, image.keys[2 * first + i]!, true);
    blocks.push(finish(b.block));
  }
  for (const column of image.columns) {
    let size = 4 + 2 * column.field.length;
    for (const key of column.keys) size += 4 + 2 * key.length;
    const f = seal(COLUMN_FIELD, column.keys.length, 0, size);
    let at = putUnits(f.view, COLUMN_HEADER_SIZE, column.field);
    for (const key of column.keys) at = putUnits(f.view, at, key);
    blocks.push(finish(f.block));
    for (let first = 0; first < entries; first += ENTRIES_PER_BLOCK) {
      const count = Math.min(ENTRIES_PER_BLOCK, entries - first);
      const b = seal(COLUMN_CODES, count, first, 2 * count);
      for (let i = 0; i < count; i++) b.view.setUint16(COLUMN_HEADER_SIZE + 2 * i, column.codes[first + i]!, true);
      blocks.push(finish(b.block));
    }
  }
  return blocks;
}

/**
 * The checksum the checkpoint names a columns file by: CRC-32C of every block's header in file order.
 * Each header holds its block's length and a checksum of the rest of the block, so the digest
 * names the whole file's bytes, and a reader checks it from the headers alone, before it visits a
 * block: a file from elsewhere (another store's, stamped alike) is never read as this one's.
 */
export function columnsDigest(blocks: readonly Uint8Array[]): number {
  const headers = new Uint8Array(COLUMN_HEADER_SIZE * blocks.length);
  blocks.forEach((b, i) => headers.set(b.subarray(0, COLUMN_HEADER_SIZE), i * COLUMN_HEADER_SIZE));
  return crc32c(headers);
}

/** The file the checkpoint names: the index prefix it describes and its digest (columnsDigest()). */
export interface ColumnsExpected extends ColumnsStamp {
  readonly digest: number;
}

/** What reading a columns file hands over, in file order; views are valid only during the call. */
export interface ColumnsVisitor {
  head(head: ColumnsHead): void;
  /** Entries [first, first + count): words 2i, 2i + 1 are entry first + i's id hash. */
  keys(first: number, words: Uint32Array): void;
  field(name: string, keys: readonly string[]): void;
  codes(first: number, codes: Uint16Array): void;
  /** The codes of the column of the last field() cover every entry. */
  columnEnd(): void;
}

/** Where a columns file stopped being readable, and why. */
export interface ColumnsDamage {
  readonly file: string;
  readonly offset: number;
  readonly what: string;
}

function readUnits(view: DataView, at: number, end: number): { s: string; at: number } | undefined {
  if (at + 4 > end) return undefined;
  const units = view.getUint32(at, true);
  at += 4;
  if (units > (end - at) / 2) return undefined;
  const codes = new Array<number>(units);
  for (let i = 0; i < units; i++, at += 2) codes[i] = view.getUint16(at, true);
  // In pieces: String.fromCharCode takes its units as arguments, and a long value would overflow the stack.
  let s = '';
  for (let i = 0; i < units; i += 8192) s += String.fromCharCode(...codes.slice(i, i + 8192));
  return { s, at };
}

/**
 * Reads `[0, committed)` of a columns file into `visit`. First the block headers: a header cut
 * short or running past `committed`, or headers whose digest is not `expected.digest`, and nothing
 * is visited. Then each block, its checksum checked before a byte of it is parsed, in the order the
 * grammar gives (INDEX.md). Stops at the first block that fails and returns where and why: what was
 * visited before it stays valid (a column whose codes all read was ended by columnEnd()), nothing
 * after it is visited. A HEAD stamped with another index prefix than `expected` is damage too.
 */
export async function readColumnsFile(files: FileLayer, path: string, committed: number, expected: ColumnsExpected, visit: ColumnsVisitor): Promise<ColumnsDamage | undefined> {
  const damage = (offset: number, what: string): ColumnsDamage => ({ file: path, offset, what });
  if (!(await files.exists(path))) return damage(0, `columns file missing; the checkpoint committed ${committed} bytes`);
  const handle = await files.open(path, 'read');
  try {
    const size = await handle.size();
    if (size < committed) return damage(size, `file of ${size} bytes, shorter than its committed length ${committed}`);
    // First the headers alone: a file the digest does not name is not visited at all.
    const headers: Uint8Array[] = [];
    for (let at = 0; at < committed; ) {
      if (at + COLUMN_HEADER_SIZE > committed) return damage(at, 'block header cut short by the committed length');
      const h = new Uint8Array(COLUMN_HEADER_SIZE);
      await handle.read(h, at);
      const length = new DataView(h.buffer).getUint32(0, true);
      if (length > committed - at - COLUMN_HEADER_SIZE) return damage(at, `block of ${length} bytes runs past the committed length ${committed}`);
      headers.push(h);
      at += COLUMN_HEADER_SIZE + length;
    }
    const digest = columnsDigest(headers);
    if (digest !== expected.digest) return damage(0, `blocks of digest ${digest}, the checkpoint names ${expected.digest}: not the file it wrote`);
    let head: ColumnsHead | undefined;
    let keysRead = 0;
    let columnsRead = 0;
    // Entries of the current column's codes read so far; -1 outside a column.
    let codesRead = -1;
    let pos = 0;
    for (const header of headers) {
      const length = new DataView(header.buffer).getUint32(0, true);
      const block = new Uint8Array(COLUMN_HEADER_SIZE + length);
      await handle.read(block, pos);
      const view = new DataView(block.buffer);
      if (!checksumHolds(block)) return damage(pos, 'block checksum mismatch');
      const kind = block[8]!;
      const count = view.getUint32(12, true);
      const first = view.getUint32(16, true);
      if (block[9] !== 0 || block[10] !== 0 || block[11] !== 0) return damage(pos, 'block header padding is not zero');
      const bad = (what: string) => damage(pos, what);
      if (head === undefined) {
        if (kind !== COLUMN_HEAD) return bad(`first block of kind ${kind}, not a HEAD`);
        if (length !== HEAD_BYTES) return bad(`HEAD of ${length} bytes`);
        const version = view.getUint32(COLUMN_HEADER_SIZE, true);
        if (version !== COLUMNS_VERSION) return bad(`columns version ${version}, this memstore reads ${COLUMNS_VERSION}`);
        head = {
          entries: count,
          maxValues: view.getUint32(COLUMN_HEADER_SIZE + 4, true),
          indexGeneration: view.getUint32(COLUMN_HEADER_SIZE + 8, true),
          indexBytes: view.getUint32(COLUMN_HEADER_SIZE + 12, true) + view.getUint32(COLUMN_HEADER_SIZE + 16, true) * 2 ** 32,
          columns: view.getUint32(COLUMN_HEADER_SIZE + 20, true),
        };
        // Every entry takes 8 bytes of KEYS: a count the committed length cannot hold is damage, and
        // must not become a huge allocation (a reader sizes its tables by it).
        if (head.entries > (committed - COLUMN_HEADER_SIZE - HEAD_BYTES) / 8) return bad(`HEAD counts ${head.entries} entries, more than ${committed} bytes can hold`);
        if (head.indexGeneration !== expected.indexGeneration || head.indexBytes !== expected.indexBytes) {
          return bad(`stamped for index generation ${head.indexGeneration} at ${head.indexBytes} bytes, the checkpoint names ${expected.indexGeneration} at ${expected.indexBytes}`);
        }
        visit.head(head);
      } else if (kind === COLUMN_KEYS) {
        if (columnsRead > 0 || codesRead >= 0 || first !== keysRead || count === 0 || count > head.entries - keysRead || length !== 8 * count) return bad('KEYS block out of place or of the wrong size');
        const words = new Uint32Array(2 * count);
        for (let i = 0; i < 2 * count; i++) words[i] = view.getUint32(COLUMN_HEADER_SIZE + 4 * i, true);
        visit.keys(first, words);
        keysRead += count;
      } else if (kind === COLUMN_FIELD) {
        if (keysRead !== head.entries || codesRead >= 0 || columnsRead >= head.columns || first !== 0) return bad('FIELD block out of place');
        const name = readUnits(view, COLUMN_HEADER_SIZE, block.length);
        if (name === undefined) return bad('FIELD block ends inside its name');
        const keys: string[] = [];
        let at = name.at;
        for (let i = 0; i < count; i++) {
          const key = readUnits(view, at, block.length);
          if (key === undefined) return bad('FIELD block ends inside a value');
          keys.push(key.s);
          at = key.at;
        }
        if (at !== block.length) return bad(`FIELD block has ${block.length - at} bytes after its last value`);
        visit.field(name.s, keys);
        codesRead = 0;
        if (head.entries === 0) {
          visit.columnEnd();
          columnsRead++;
          codesRead = -1;
        }
      } else if (kind === COLUMN_CODES) {
        if (codesRead < 0 || first !== codesRead || count === 0 || count > head.entries - codesRead || length !== 2 * count) return bad('CODES block out of place or of the wrong size');
        const codes = new Uint16Array(count);
        for (let i = 0; i < count; i++) codes[i] = view.getUint16(COLUMN_HEADER_SIZE + 2 * i, true);
        visit.codes(first, codes);
        codesRead += count;
        if (codesRead === head.entries) {
          visit.columnEnd();
          columnsRead++;
          codesRead = -1;
        }
      } else {
        return bad(`unknown block kind ${kind}`);
      }
      pos += COLUMN_HEADER_SIZE + length;
    }
    if (head === undefined) return damage(0, 'no HEAD block');
    if (keysRead !== head.entries || codesRead >= 0 || columnsRead !== head.columns) return damage(committed, 'file ends before its last column');
    return undefined;
  } finally {
    await handle.close();
  }
}
