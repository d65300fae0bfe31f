import { join } from 'node:path';
import { crc32c, unmaskCrc } from '../io/crc32c.js';
import { ioError } from './errors.js';
import type { FileLayer } from '../io/file-layer.js';
import { readU32 } from '../io/little-endian.js';
import { WAL_BLOCK_SIZE, WAL_HEADER_SIZE, RecordType, parseSegmentName } from './format.js';
import { findFragment, type TornTail, type WalRecord } from './reader.js';

/** A stretch of a segment that holds no whole record the reader could trust (FORMAT.md, "Salvage"). */
export interface DamagedSpan {
  readonly file: string;
  /** Where the damage starts. */
  readonly offset: number;
  /** Where reading resumed (the next valid fragment), or the end of the file. */
  readonly end: number;
  readonly reason: string;
  /** LSNs of records known to be lost here, inclusive, when the records around the damage say which. */
  readonly lostLsns: readonly [number, number] | undefined;
  /** The damaged bytes, `offset` to `end`, for a report. */
  readonly bytes: Uint8Array;
}

/** Damage that spans no bytes at `offset`: records missing between two that are whole, or segments whose names disagree. */
function stretchOfNoBytes(file: string, offset: number, reason: string, lostLsns: DamagedSpan['lostLsns']): DamagedSpan {
  return { file, offset, end: offset, reason, lostLsns, bytes: new Uint8Array(0) };
}

export interface SalvagedLog {
  /** The segment files in LSN order, with the LSN their names declare and their size. */
  readonly segments: { readonly path: string; readonly firstLsn: number; readonly fileBytes: number }[];
  /** Every whole record whose checksum holds, in LSN order; LSNs may have gaps where damage was. */
  readonly records: WalRecord[];
  readonly damage: DamagedSpan[];
  /** The torn tail of the last segment (what any open would cut): not damage. */
  readonly tail: TornTail | undefined;
}

/**
 * Reads every segment of the log in `dir` and keeps whatever can be trusted, where the normal
 * reader stops at the first damage: after damage it resumes at the next fragment whose checksum
 * holds (the search FORMAT.md describes for telling a torn tail from corruption), records whose
 * LSN repeats an earlier one are skipped, and each damaged stretch is reported with its bytes.
 * Read-only; `memstore verify` lists the damage with it and `memstore repair` re-applies the records.
 */
export async function salvageLog(files: FileLayer, dir: string, afterLsn?: number): Promise<SalvagedLog> {
  let names: string[];
  try {
    names = await files.list(dir);
  } catch (e) {
    if ((e as { code?: unknown }).code === 'ENOENT') return { segments: [], records: [], damage: [], tail: undefined };
    throw ioError('listing the log directory', e, dir);
  }
  const found = names
    .map((name) => ({ name, firstLsn: parseSegmentName(name) }))
    .filter((s): s is { name: string; firstLsn: number } => s.firstLsn !== undefined)
    .sort((a, b) => a.firstLsn - b.firstLsn);
  const segments: SalvagedLog['segments'] = [];
  const records: WalRecord[] = [];
  const damage: DamagedSpan[] = [];
  let tail: TornTail | undefined;
  // With the checkpoint's LSN, the log must hold every record after it: a first segment that starts
  // later lost the ones before it (open reports it; salvage had not).
  let expected: number | undefined = afterLsn === undefined ? undefined : afterLsn + 1;
  /** The LSN after the previous segment's last record (its first when it holds none). */
  let previousNext: number | undefined;
  for (const [i, { name, firstLsn }] of found.entries()) {
    const path = join(dir, name);
    let bytes: Uint8Array;
    try {
      bytes = await files.readFile(path);
    } catch (e) {
      throw ioError('reading a segment', e, path);
    }
    segments.push({ path, firstLsn, fileBytes: bytes.length });
    if (expected !== undefined && firstLsn > expected) {
      damage.push(stretchOfNoBytes(path, 0, `segment starts at LSN ${firstLsn}, records from ${expected} are missing (a lost segment?)`, [expected, firstLsn - 1]));
    } else if (previousNext !== undefined && firstLsn < previousNext) {
      // Its name says it starts before the previous segment's last record: an overlap, which open
      // refuses (FORMAT.md, "Across segments"). Its records already read are skipped below.
      damage.push(stretchOfNoBytes(path, 0, `segment starts at LSN ${firstLsn}, before LSN ${previousNext}, the one after the previous segment's last: the segments overlap`, undefined));
    }
    const segment = salvageSegment(bytes, path, firstLsn, i === found.length - 1);
    for (const r of segment.records) {
      if (expected !== undefined && r.lsn < expected) continue;
      records.push(r);
      expected = r.lsn + 1;
    }
    damage.push(...segment.damage);
    tail = segment.tail;
    previousNext = segment.nextLsn;
    expected = Math.max(expected ?? firstLsn, segment.nextLsn);
  }
  return { segments, records, damage, tail };
}

interface SegmentSalvage {
  records: WalRecord[];
  damage: DamagedSpan[];
  tail: TornTail | undefined;
  /** LSN after the last record seen in the segment (its first LSN when it holds none). */
  nextLsn: number;
}

/** One segment, leniently: see salvageLog. `last`: damage at the end with nothing valid after it is a torn tail. */
export function salvageSegment(bytes: Uint8Array, file: string, firstLsn: number, last: boolean): SegmentSalvage {
  const n = bytes.length;
  const records: WalRecord[] = [];
  const damage: DamagedSpan[] = [];
  let tail: TornTail | undefined;
  let expected = firstLsn;
  let validEnd = 0;
  let open: { lsn: number; start: number; parts: Uint8Array[] } | undefined;
  let pos = 0;

  /** Adds the damaged stretch [start, end), merged with the previous one when they touch. */
  const report = (start: number, end: number, reason: string) => {
    const previous = damage[damage.length - 1];
    if (previous !== undefined && previous.end === start && previous.lostLsns === undefined) {
      damage[damage.length - 1] = { ...previous, end, bytes: bytes.slice(previous.offset, end) };
    } else {
      damage.push({ file, offset: start, end, reason, lostLsns: undefined, bytes: bytes.slice(start, end) });
    }
  };

  /**
   * Records damage at `at` and returns where reading resumes, or -1 when nothing valid follows.
   * `sound`: the fragment there has a checksum that holds and states something no writer writes
   * (an LSN out of order or past 2^53, a MIDDLE or LAST without its FIRST, an unknown type): damage
   * even at the end of the last segment, where open reports it as CORRUPTION (FORMAT.md), not a
   * torn tail any open would cut, which a crash explains. Salvage had called it a torn tail, and
   * repair, seeing no damage, left a log that open refused (found by a hostile pass).
   */
  const damaged = (at: number, reason: string, sound = false): number => {
    const lsn = open?.lsn ?? expected;
    const start = open?.start ?? at;
    open = undefined;
    const resume = findFragment(bytes, n, at + 1, lsn);
    if (resume < 0) {
      if (last && !sound) {
        tail = { file, offset: validEnd, damageAt: at, droppedBytes: n - validEnd, reason };
      } else {
        report(start, n, reason);
      }
      return -1;
    }
    report(start, resume, reason);
    return resume;
  };

  /** Fixes the lost-LSN range of the last damage once the next record's LSN is known. */
  const settleLost = (nextLsn: number) => {
    const d = damage[damage.length - 1];
    if (d !== undefined && d.lostLsns === undefined && nextLsn > expected) damage[damage.length - 1] = { ...d, lostLsns: [expected, nextLsn - 1] };
  };

  while (pos >= 0) {
    const room = WAL_BLOCK_SIZE - (pos % WAL_BLOCK_SIZE);
    if (room < WAL_HEADER_SIZE) {
      pos += room;
      continue;
    }
    if (pos >= n) {
      if (open !== undefined) pos = damaged(n, 'record ends before its LAST fragment');
      else if (validEnd < n && last) tail ??= { file, offset: validEnd, damageAt: validEnd, droppedBytes: n - validEnd, reason: 'block padding without a following fragment' };
      break;
    }
    if (n - pos < WAL_HEADER_SIZE) {
      pos = damaged(pos, 'truncated header');
      continue;
    }
    const length = bytes[pos + 4]! | (bytes[pos + 5]! << 8);
    const type = bytes[pos + 6]!;
    const end = pos + WAL_HEADER_SIZE + length;
    if (length > room - WAL_HEADER_SIZE || end > n || unmaskCrc(readU32(bytes, pos)) !== crc32c(bytes, pos + 4, end)) {
      pos = damaged(pos, length > room - WAL_HEADER_SIZE ? 'fragment length overruns its block' : end > n ? 'truncated fragment' : 'checksum mismatch');
      continue;
    }
    const lsn = readU32(bytes, pos + 11) * 0x100000000 + readU32(bytes, pos + 7);
    const payload = bytes.subarray(pos + WAL_HEADER_SIZE, end);
    if (type === RecordType.FULL || type === RecordType.FIRST) {
      if (open !== undefined || lsn < expected || !Number.isSafeInteger(lsn)) {
        pos = damaged(open?.start ?? pos, open !== undefined ? 'record without its LAST fragment' : `LSN ${lsn} where ${expected} was due`, true);
        continue;
      }
      // A record past the one due with no damage before it: the records between are gone (a
      // reordering or a cut the checksums cannot see; open reports the gap as CORRUPTION).
      const previous = damage[damage.length - 1];
      if (lsn > expected && (previous === undefined || previous.lostLsns !== undefined || previous.end !== pos)) {
        damage.push(stretchOfNoBytes(file, pos, `LSN ${lsn} where ${expected} was due: records ${expected}..${lsn - 1} are missing`, [expected, lsn - 1]));
      }
      settleLost(lsn);
      if (type === RecordType.FULL) {
        records.push({ lsn, payload: Uint8Array.from(payload) });
        expected = lsn + 1;
        validEnd = end;
      } else {
        open = { lsn, start: pos, parts: [payload] };
      }
    } else if ((type === RecordType.MIDDLE || type === RecordType.LAST) && open !== undefined && open.lsn === lsn) {
      open.parts.push(payload);
      if (type === RecordType.LAST) {
        const size = open.parts.reduce((s, p) => s + p.length, 0);
        const whole = new Uint8Array(size);
        let at = 0;
        for (const p of open.parts) {
          whole.set(p, at);
          at += p.length;
        }
        records.push({ lsn, payload: whole });
        expected = lsn + 1;
        validEnd = end;
        open = undefined;
      }
    } else {
      pos = damaged(pos, type === RecordType.MIDDLE || type === RecordType.LAST ? 'fragment without its FIRST' : `unknown fragment type ${type}`, true);
      continue;
    }
    pos = end;
  }
  return { records, damage, tail, nextLsn: expected };
}
