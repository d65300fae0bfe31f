import { join } from 'node:path';
import { crc32c, unmaskCrc } from '../io/crc32c.js';
import { WalError, ioError } from './errors.js';
import type { FileLayer } from '../io/file-layer.js';
import { readU32 } from '../io/little-endian.js';
import { WAL_BLOCK_SIZE, WAL_HEADER_SIZE, RecordType, parseSegmentName } from './format.js';

/** One logical record. `payload` may be a view into a buffer shared with other records of its segment. */
export interface WalRecord {
  lsn: number;
  payload: Uint8Array;
}

/**
 * How damage is treated (FORMAT.md, "Reading"). 'recover': the segment is the last of the log, so
 * damage after which nothing valid follows is a torn tail and ends the segment. 'strict': every
 * byte must be a whole record (older segments, and re-reads of bytes already validated).
 */
export type ReadMode = 'recover' | 'strict';

/** Damage at the end of the last segment that a crash explains; everything from `offset` on is dropped. */
export interface TornTail {
  file: string;
  /** End of the last whole record: where the segment is cut. */
  offset: number;
  /** Where the damage itself starts (>= offset; block padding may sit between). */
  damageAt: number;
  /** Bytes after `offset`. */
  droppedBytes: number;
  reason: string;
}

export interface SegmentSummary {
  /** LSN of the last whole record; firstLsn - 1 when the segment holds none. */
  lastLsn: number;
  records: number;
  /** End offset of the last whole record. */
  validEnd: number;
  tail: TornTail | undefined;
}

const NO_PAYLOAD = new Uint8Array(0);
/** LSNs are JavaScript numbers: the high word may use 21 bits (2^53). */
const MAX_LSN_HIGH = 0x1fffff;

/**
 * Parses one segment's bytes into whole records, checking every fragment's checksum, the fragment
 * sequence and the LSN sequence; throws WalError 'CORRUPTION' (file, offset) where the format says so.
 */
export class SegmentReader {
  private pos = 0;
  private expectedLsn: number;
  private records = 0;
  private validEnd = 0;
  private tail: TornTail | undefined;
  private finished = false;
  /** Start offset and LSN of the record whose FIRST fragment was read, while its LAST is pending. */
  private recordStart = -1;
  private recordLsn = 0;
  private parts: Array<[number, number]> = [];

  /**
   * @param length bytes of `bytes` that belong to the segment (the rest is ignored)
   * @param wantPayloads false to validate only (fragmented payloads are then not assembled)
   */
  constructor(
    private readonly bytes: Uint8Array,
    private readonly file: string,
    firstLsn: number,
    private readonly mode: ReadMode,
    private readonly wantPayloads = true,
    private readonly length = bytes.length,
  ) {
    this.expectedLsn = firstLsn;
  }

  /** The next whole record, or undefined at the end of the segment. */
  next(): WalRecord | undefined {
    if (this.finished) return undefined;
    const buf = this.bytes;
    const n = this.length;
    let pos = this.pos;
    for (;;) {
      const room = WAL_BLOCK_SIZE - (pos % WAL_BLOCK_SIZE);
      if (room < WAL_HEADER_SIZE) {
        // Block trailer: padding, whatever its content, carries nothing.
        pos += room;
        continue;
      }
      if (pos >= n) {
        if (this.recordStart >= 0) return this.damage(n, 'record ends before its LAST fragment');
        return this.finish(n);
      }
      if (n - pos < WAL_HEADER_SIZE) return this.damage(pos, isZero(buf, pos, n) ? 'zero-filled tail' : 'truncated header');
      const length = buf[pos + 4]! | (buf[pos + 5]! << 8);
      const type = buf[pos + 6]!;
      if (length === 0 && type === 0 && isZero(buf, pos, pos + WAL_HEADER_SIZE)) return this.damage(pos, 'zero-filled block');
      if (length > room - WAL_HEADER_SIZE) return this.damage(pos, `fragment length ${length} overruns its block`);
      const end = pos + WAL_HEADER_SIZE + length;
      if (end > n) return this.damage(pos, 'truncated fragment');
      if (unmaskCrc(readU32(buf, pos)) !== crc32c(buf, pos + 4, end)) return this.damage(pos, 'checksum mismatch');
      // The checksum holds: what follows are statements of a writer, so a violation is corruption, never a torn write.
      const high = readU32(buf, pos + 11);
      if (high > MAX_LSN_HIGH) throw this.corrupt(pos, 'LSN beyond 2^53');
      const lsn = high * 0x100000000 + readU32(buf, pos + 7);
      if (type === RecordType.FULL || type === RecordType.FIRST) {
        if (this.recordStart >= 0) throw this.corrupt(this.recordStart, 'record without its LAST fragment');
        if (lsn !== this.expectedLsn) {
          throw this.corrupt(pos, `LSN ${lsn} where ${this.expectedLsn} was due (${lsn < this.expectedLsn ? 'went backwards' : 'gap'})`);
        }
        if (type === RecordType.FULL) {
          this.pos = end;
          return this.complete(lsn, end, this.wantPayloads ? buf.subarray(pos + WAL_HEADER_SIZE, end) : NO_PAYLOAD);
        }
        this.recordStart = pos;
        this.recordLsn = lsn;
        this.parts.length = 0;
        this.parts.push([pos + WAL_HEADER_SIZE, end]);
      } else if (type === RecordType.MIDDLE || type === RecordType.LAST) {
        if (this.recordStart < 0) throw this.corrupt(pos, `${type === RecordType.LAST ? 'LAST' : 'MIDDLE'} fragment without FIRST`);
        if (lsn !== this.recordLsn) throw this.corrupt(pos, `fragment LSN ${lsn} inside record ${this.recordLsn}`);
        this.parts.push([pos + WAL_HEADER_SIZE, end]);
        if (type === RecordType.LAST) {
          this.pos = end;
          this.recordStart = -1;
          return this.complete(lsn, end, this.wantPayloads ? this.assemble() : NO_PAYLOAD);
        }
      } else {
        throw this.corrupt(pos, `unknown fragment type ${type}`);
      }
      pos = end;
    }
  }

  /** Valid once next() returned undefined. */
  get summary(): SegmentSummary {
    return { lastLsn: this.expectedLsn - 1, records: this.records, validEnd: this.validEnd, tail: this.tail };
  }

  private complete(lsn: number, end: number, payload: Uint8Array): WalRecord {
    this.records++;
    this.expectedLsn = lsn + 1;
    this.validEnd = end;
    return { lsn, payload };
  }

  private assemble(): Uint8Array {
    let size = 0;
    for (const [from, to] of this.parts) size += to - from;
    const out = new Uint8Array(size);
    let at = 0;
    for (const [from, to] of this.parts) {
      out.set(this.bytes.subarray(from, to), at);
      at += to - from;
    }
    return out;
  }

  private finish(end: number): undefined {
    this.finished = true;
    if (this.validEnd < end) {
      // Only block padding follows the last record: a write torn right after it (padding is written with the next fragment).
      if (this.mode === 'strict') throw this.corrupt(this.validEnd, 'bytes after the last record');
      this.tail ??= this.tornTail(end, 'block padding without a following fragment');
    }
    return undefined;
  }

  private damage(at: number, reason: string): undefined {
    if (this.mode === 'strict') throw this.corrupt(at, reason);
    const lsn = this.recordStart >= 0 ? this.recordLsn : this.expectedLsn;
    const valid = findFragment(this.bytes, this.length, at + 1, lsn);
    if (valid >= 0) throw this.corrupt(at, `${reason}, and a valid fragment follows at offset ${valid}`);
    this.tail = this.tornTail(at, reason);
    this.finished = true;
    return undefined;
  }

  private tornTail(damageAt: number, reason: string): TornTail {
    return { file: this.file, offset: this.validEnd, damageAt, droppedBytes: this.length - this.validEnd, reason };
  }

  private corrupt(offset: number, reason: string): WalError {
    this.finished = true;
    return new WalError('CORRUPTION', `WAL corruption in ${this.file} at offset ${offset}: ${reason}`, { file: this.file, offset });
  }
}

/**
 * Offset of the first checksum-valid fragment at or after `from` whose LSN could follow `minLsn`,
 * or -1. A header is read at every byte offset because the damage may have destroyed the length
 * that says where the next fragment starts; the LSN window and block fit filter out almost every
 * offset before a checksum is computed.
 */
export function findFragment(buf: Uint8Array, n: number, from: number, minLsn: number): number {
  // Every record takes at least one header, so no LSN further ahead than this fits in the bytes left.
  const maxLsn = minLsn + Math.ceil((n - from) / WAL_HEADER_SIZE) + 1;
  for (let q = from; q + WAL_HEADER_SIZE <= n; q++) {
    const type = buf[q + 6]!;
    if (type < RecordType.FULL || type > RecordType.LAST) continue;
    const lsn = readU32(buf, q + 11) * 0x100000000 + readU32(buf, q + 7);
    if (lsn < minLsn || lsn > maxLsn) continue;
    const length = buf[q + 4]! | (buf[q + 5]! << 8);
    const end = q + WAL_HEADER_SIZE + length;
    if ((q % WAL_BLOCK_SIZE) + WAL_HEADER_SIZE + length > WAL_BLOCK_SIZE || end > n) continue;
    if (unmaskCrc(readU32(buf, q)) === crc32c(buf, q + 4, end)) return q;
  }
  return -1;
}

function isZero(buf: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (buf[i] !== 0) return false;
  return true;
}

/** A segment file as the log scan found it. */
export interface ScannedSegment {
  firstLsn: number;
  path: string;
  /** Bytes of whole records (the size after the torn tail, if any, is cut). */
  bytes: number;
  /** Bytes in the file now. */
  fileBytes: number;
  lastLsn: number;
  records: number;
}

export interface LogScan {
  segments: ScannedSegment[];
  /** The torn tail of the last segment, if there is one. */
  tail: TornTail | undefined;
}

/**
 * Reads and validates every segment of the log in `dir` without changing anything: every
 * checksum, the fragment and LSN sequences inside each segment, and LSN continuity across segments
 * (which is how a missing segment shows). Throws WalError 'CORRUPTION' or 'IO'.
 */
export async function scanLog(files: FileLayer, dir: string): Promise<LogScan> {
  let names: string[];
  try {
    names = await files.list(dir);
  } catch (e) {
    throw ioError('listing the log directory', e, dir);
  }
  const found = names
    .map((name) => ({ name, firstLsn: parseSegmentName(name) }))
    .filter((s): s is { name: string; firstLsn: number } => s.firstLsn !== undefined)
    .sort((a, b) => a.firstLsn - b.firstLsn);
  const segments: ScannedSegment[] = [];
  let tail: TornTail | undefined;
  for (const [i, { name, firstLsn }] of found.entries()) {
    const path = join(dir, name);
    const previous = segments[segments.length - 1];
    if (previous !== undefined && firstLsn !== previous.lastLsn + 1) {
      const what = firstLsn > previous.lastLsn + 1 ? 'a gap (missing segment?)' : 'an overlap';
      throw new WalError(
        'CORRUPTION',
        `WAL corruption in ${path} at offset 0: it starts at LSN ${firstLsn} but the previous segment ends at ${previous.lastLsn}, ${what}`,
        { file: path, offset: 0 },
      );
    }
    let bytes: Uint8Array;
    try {
      bytes = await files.readFile(path);
    } catch (e) {
      throw ioError('reading a segment', e, path);
    }
    const reader = new SegmentReader(bytes, path, firstLsn, i === found.length - 1 ? 'recover' : 'strict', false);
    while (reader.next() !== undefined);
    const summary = reader.summary;
    tail = summary.tail;
    segments.push({ firstLsn, path, bytes: summary.validEnd, fileBytes: bytes.length, lastLsn: summary.lastLsn, records: summary.records });
  }
  return { segments, tail };
}
