import type { ReadAt } from './arrow-framing.js';
import { dropOutsideParts, endOf, FOOTER_MAX_BYTES, footerIn, MAGIC, moveRowGroup, NUM_ROWS, rowGroupRange, rowGroupsOf, safeNumber } from './parquet-footer.js';
import { fieldOf, readStruct, ThriftError, type ThriftStruct } from './thrift-compact.js';

/** One row group of a Parquet file: its rows, and the bytes its column chunks take, [start, end). */
export interface RowGroupPlace {
  readonly group: ThriftStruct;
  readonly rows: number;
  readonly start: number;
  readonly end: number;
  /** Each column chunk's bytes, [start, end) of the file. */
  readonly chunks: readonly { readonly start: number; readonly end: number }[];
}

/**
 * The most bytes a page may say it takes uncompressed. parquet-wasm allocates what a page header
 * says before it decompresses (a 5.7 KB file whose header said 2^31 − 1 took 2.1 GB that its
 * WebAssembly memory kept for good; a hostile pass). Pages hold about 1 MiB by every writer's
 * default and at least one value; memstore's largest value is a 16 MiB text.
 */
const MAX_PAGE_BYTES = 64 << 20;
/** Values a page header is read with at most (its statistics hold a few). */
const PAGE_HEADER_MAX_VALUES = 4096;
// PageHeader
const PH_UNCOMPRESSED_SIZE = 2;
const PH_COMPRESSED_SIZE = 3;

/** What a Parquet file's footer says: the footer itself, its rows, and where each row group lies. */
export interface ParquetLayout {
  readonly footer: ThriftStruct;
  readonly rows: number;
  readonly groups: readonly RowGroupPlace[];
}

/** Bytes read from a file's end at first: most footers fit; a longer one is read again whole. */
const TAIL = 64 * 1024;

/**
 * The layout of the Parquet file of `size` bytes that `read` reads, from its footer alone; each row
 * group's column chunks lie in the file's body (parquet-footer.ts, rowGroupRange()), else a
 * ThriftError.
 */
export async function parquetLayout(read: ReadAt, size: number): Promise<ParquetLayout> {
  if (size < 12 || Buffer.compare(await read(0, MAGIC.length), MAGIC) !== 0) throw new ThriftError('parquet: no magic at the start');
  let tail = await read(size - Math.min(size, TAIL), Math.min(size, TAIL));
  const length = Buffer.from(tail.buffer, tail.byteOffset + tail.length - 8, 4).readUInt32LE(0);
  if (length + 8 > tail.length) {
    if (length + 8 + MAGIC.length > size) throw new ThriftError('parquet: a footer longer than its file');
    if (length > FOOTER_MAX_BYTES) throw new ThriftError(`parquet: a footer of ${length} bytes, more than the ${FOOTER_MAX_BYTES} read`);
    tail = await read(size - 8 - length, length + 8);
  }
  const { footer, start: footerStart } = footerIn(tail, size);
  const groups = rowGroupsOf(footer).map((group, i): RowGroupPlace => ({ group, ...rowGroupRange(group, i, footerStart) }));
  const rows = safeNumber(fieldOf(footer, NUM_ROWS)?.value, 'the rows');
  const sum = groups.reduce((n, g) => n + g.rows, 0);
  if (sum !== rows) throw new ThriftError(`parquet: the footer says ${rows} rows, its row groups ${sum}`);
  return { footer, rows, groups };
}

/** A Parquet file with `layout`'s schema and metadata, and no row group: what a schema is read from. */
export function schemaFile(layout: ParquetLayout): Uint8Array {
  return Buffer.concat([MAGIC, endOf(layout.footer, [], 0n)]);
}

/**
 * A Parquet file of row group `i` of `layout` alone, given its bytes (`[start, end)` of the file):
 * its offsets moved to where the bytes lie in it, and without the page indexes and bloom filters a
 * file keeps elsewhere (parquet-footer.ts, dropOutsideParts()).
 */
export function rowGroupFile(layout: ParquetLayout, i: number, bytes: Uint8Array): Uint8Array {
  const place = layout.groups[i]!;
  if (bytes.length !== place.end - place.start) throw new RangeError(`row group ${i} takes ${place.end - place.start} bytes, given ${bytes.length}`);
  for (const chunk of place.chunks) checkPages(bytes, chunk.start - place.start, chunk.end - place.start, i);
  const group = structuredClone(place.group);
  moveRowGroup(group, BigInt(MAGIC.length - place.start), 0);
  dropOutsideParts(group);
  return Buffer.concat([MAGIC, bytes, endOf(layout.footer, [group], BigInt(place.rows))]);
}

/**
 * Walks the page headers of the column chunk at `[from, to)` of `bytes`: each one must be whole,
 * say no more than MAX_PAGE_BYTES uncompressed, and be followed by its compressed bytes, the last
 * ending where the chunk ends. Throws ThriftError otherwise, before parquet-wasm sees the pages.
 */
function checkPages(bytes: Uint8Array, from: number, to: number, group: number): void {
  for (let at = from; at < to; ) {
    const { struct: header, end } = readStruct(bytes.subarray(0, to), at, PAGE_HEADER_MAX_VALUES);
    const uncompressed = fieldOf(header, PH_UNCOMPRESSED_SIZE)?.value;
    const compressed = fieldOf(header, PH_COMPRESSED_SIZE)?.value;
    if (typeof uncompressed !== 'bigint' || typeof compressed !== 'bigint' || uncompressed < 0n || compressed < 0n) throw new ThriftError(`parquet: row group ${group}: a page header without its sizes at ${at}`);
    if (uncompressed > BigInt(MAX_PAGE_BYTES)) throw new ThriftError(`parquet: row group ${group}: a page of ${uncompressed} bytes uncompressed, more than ${MAX_PAGE_BYTES}`);
    at = end + Number(compressed);
    if (at > to) throw new ThriftError(`parquet: row group ${group}: a page runs past its column chunk`);
  }
}
