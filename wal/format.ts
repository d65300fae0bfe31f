/**
 * The byte layout of WAL segments (wal/FORMAT.md is the spec; this file is its single source of
 * constants and the fragment encoder both the writer and the tests use).
 */
import { crc32c, maskCrc } from '../io/crc32c.js';
import { writeU32 } from '../io/little-endian.js';

/** Fragments never cross a multiple of this offset inside a segment file. */
export const WAL_BLOCK_SIZE = 32768;

/** masked CRC-32C (4) | payload length (2) | type (1) | LSN (8), little-endian. */
export const WAL_HEADER_SIZE = 15;

export const RecordType = { FULL: 1, FIRST: 2, MIDDLE: 3, LAST: 4 } as const;

const SEGMENT_NAME = /^wal-(\d{20})\.log$/;

/** `wal-<first LSN, 20 decimal digits>.log`: fixed width so names sort like the LSNs they hold. */
export function segmentName(firstLsn: number): string {
  return `wal-${String(firstLsn).padStart(20, '0')}.log`;
}

/** The first LSN a segment file name declares, or undefined for a name that is not a segment. */
export function parseSegmentName(name: string): number | undefined {
  const digits = SEGMENT_NAME.exec(name)?.[1];
  if (digits === undefined) return undefined;
  const lsn = Number(digits);
  return Number.isSafeInteger(lsn) && lsn >= 1 ? lsn : undefined;
}

/** Bytes a record of `length` payload bytes takes when it starts at segment offset `offset` (padding included). */
export function framedSize(offset: number, length: number): number {
  let pos = offset;
  let left = length;
  do {
    let room = WAL_BLOCK_SIZE - (pos % WAL_BLOCK_SIZE);
    if (room < WAL_HEADER_SIZE) {
      pos += room;
      room = WAL_BLOCK_SIZE;
    }
    const fragment = Math.min(left, room - WAL_HEADER_SIZE);
    pos += WAL_HEADER_SIZE + fragment;
    left -= fragment;
  } while (left > 0);
  return pos - offset;
}

/**
 * Writes the fragments (and any block padding before them) of one record into `out` at `at`,
 * for a record that will sit at segment offset `offset`. Returns the end index in `out`.
 */
export function encodeRecord(out: Uint8Array, at: number, offset: number, lsn: number, payload: Uint8Array): number {
  const lsnLow = lsn >>> 0;
  const lsnHigh = Math.floor(lsn / 0x100000000);
  let pos = at;
  let fileOffset = offset;
  let done = 0;
  let first = true;
  do {
    let room = WAL_BLOCK_SIZE - (fileOffset % WAL_BLOCK_SIZE);
    if (room < WAL_HEADER_SIZE) {
      out.fill(0, pos, pos + room);
      pos += room;
      fileOffset += room;
      room = WAL_BLOCK_SIZE;
    }
    const fragment = Math.min(payload.length - done, room - WAL_HEADER_SIZE);
    const last = done + fragment === payload.length;
    const type = first ? (last ? RecordType.FULL : RecordType.FIRST) : last ? RecordType.LAST : RecordType.MIDDLE;
    out[pos + 4] = fragment & 0xff;
    out[pos + 5] = fragment >>> 8;
    out[pos + 6] = type;
    writeU32(out, pos + 7, lsnLow);
    writeU32(out, pos + 11, lsnHigh);
    // A whole-payload set avoids allocating a subarray view for the common one-fragment record.
    if (first && last) out.set(payload, pos + WAL_HEADER_SIZE);
    else out.set(payload.subarray(done, done + fragment), pos + WAL_HEADER_SIZE);
    const end = pos + WAL_HEADER_SIZE + fragment;
    writeU32(out, pos, maskCrc(crc32c(out, pos + 4, end)));
    fileOffset += end - pos;
    pos = end;
    done += fragment;
    first = false;
  } while (done < payload.length);
  return pos;
}
