import type { ReadAt } from './arrow-framing.js';
import { dropOutsideParts, endOf, footerIn, MAGIC, moveRowGroup, NUM_ROWS, rowGroupRange, rowGroupsOf, safeNumber } from './parquet-footer.js';
import { fieldOf, ThriftError, type ThriftStruct } from './thrift-compact.js';

/** One row group of a Parquet file: its rows, and the bytes its column chunks take, [start, end). */
export interface RowGroupPlace {
  readonly group: ThriftStruct;
  readonly rows: number;
  readonly start: number;
  readonly end: number;
}

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
    tail = await read(size - 8 - length, length + 8);
  }
  const { footer, start: footerStart } = footerIn(tail, size);
  const groups = rowGroupsOf(footer).map((group, i): RowGroupPlace => ({ group, ...rowGroupRange(group, i, footerStart) }));
  return { footer, rows: safeNumber(fieldOf(footer, NUM_ROWS)?.value, 'the rows'), groups };
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
  const group = structuredClone(place.group);
  moveRowGroup(group, BigInt(MAGIC.length - place.start), 0);
  dropOutsideParts(group);
  return Buffer.concat([MAGIC, bytes, endOf(layout.footer, [group], BigInt(place.rows))]);
}
