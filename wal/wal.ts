import { join } from 'node:path';
import { WalError, ioError } from './errors.js';
import { ensureDurableDir, nodeFileLayer, type FileHandle, type FileLayer } from '../io/file-layer.js';
import { parseSegmentName, segmentName } from './format.js';
import { SegmentReader, scanLog, type LogScan, type TornTail, type WalRecord } from './reader.js';
import { WalWriter, type Durability, type Segment } from './writer.js';

export interface WalOptions {
  /** Directory of the segment files; created (with its parents) when missing. One writer per directory: the caller holds the lock. */
  dir: string;
  /** @default nodeFileLayer */
  files?: FileLayer;
  /** When an append resolves (see Durability). @default 'always' */
  durability?: Durability;
  /** A segment is rotated before a group would take it past this size (a single larger group still goes whole into one segment). @default 64 MiB */
  segmentBytes?: number;
  /** In 'batch' mode, the longest time between a write and its fsync. @default 5 */
  batchDelayMs?: number;
  /**
   * The lowest LSN the next record may get. A store passes its checkpoint LSN + 1, so LSNs never
   * go backwards even when the log directory was lost or (in 'batch'/'none' mode) lost its tail in
   * a power cut: a log that ends before this is restarted at it, and its segments, whose records the
   * caller says it no longer needs, are removed. @default 1
   */
  startLsn?: number;
  /**
   * Called with the first LSN of each segment a rotation starts, once its file and directory entry
   * are durable and before any record is written to it; a rejection fails the rotation (the
   * appends of that group reject with 'IO', and the next group rotates again). Not called for the
   * segment open() finds or starts: `activeFirstLsn` names it. A store records the newest segment
   * it made, so that an open can tell one deleted since (FORMAT.md, "Rotation").
   */
  onSegment?: (firstLsn: number) => Promise<void>;
}

interface ResolvedOptions {
  dir: string;
  files: FileLayer;
  durability: Durability;
  segmentBytes: number;
  batchDelayMs: number;
  startLsn: number;
  onSegment: ((firstLsn: number) => Promise<void>) | undefined;
}

function resolveOptions(options: WalOptions): ResolvedOptions {
  const resolved: ResolvedOptions = {
    dir: options.dir,
    files: options.files ?? nodeFileLayer,
    durability: options.durability ?? 'always',
    segmentBytes: options.segmentBytes ?? 64 << 20,
    batchDelayMs: options.batchDelayMs ?? 5,
    startLsn: options.startLsn ?? 1,
    onSegment: options.onSegment,
  };
  if (typeof resolved.dir !== 'string' || resolved.dir === '') throw new TypeError('WalOptions.dir must be a non-empty string');
  if (!['always', 'batch', 'none'].includes(resolved.durability)) throw new RangeError(`WalOptions.durability must be 'always', 'batch' or 'none'`);
  if (!Number.isSafeInteger(resolved.segmentBytes) || resolved.segmentBytes < 1) throw new RangeError('WalOptions.segmentBytes must be a positive integer');
  if (!Number.isFinite(resolved.batchDelayMs) || resolved.batchDelayMs < 0) throw new RangeError('WalOptions.batchDelayMs must be a number >= 0');
  if (!Number.isSafeInteger(resolved.startLsn) || resolved.startLsn < 1) throw new RangeError('WalOptions.startLsn must be a positive safe integer');
  return resolved;
}

/**
 * The write-ahead log (wal/FORMAT.md): a directory of segment files holding checksummed records
 * with consecutive LSNs.
 *
 * Open validates the whole log, cuts a torn tail (reported in `recovered`), and throws WalError
 * 'CORRUPTION' for damage a crash cannot explain. append() assigns LSNs in call order; appends of
 * one tick share one write and, in 'always' mode, one fsync.
 */
export class Wal {
  /** The torn tail cut at open, if there was one (a crash mid-write, or damage confined to the last record). */
  readonly recovered: TornTail | undefined;
  private closed = false;
  private maintenance: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly options: ResolvedOptions,
    private readonly segments: Segment[],
    private readonly writer: WalWriter,
    recovered: TornTail | undefined,
  ) {
    this.recovered = recovered;
  }

  static async open(options: WalOptions): Promise<Wal> {
    const o = resolveOptions(options);
    const { files, dir } = o;
    await ensureDir(files, dir);
    const scan = await scanLog(files, dir);
    let segments: Segment[] = scan.segments.map(({ firstLsn, path, bytes, lastLsn }) => ({ firstLsn, path, bytes, lastLsn }));
    const last = segments[segments.length - 1];
    if (last === undefined || last.lastLsn + 1 < o.startLsn) {
      segments = [await restart(files, dir, segments, o.startLsn)];
    }
    const active = segments[segments.length - 1]!;
    let handle: FileHandle | undefined;
    try {
      handle = await files.open(active.path, 'readwrite');
      if (scan.tail !== undefined && scan.tail.file === active.path) {
        // Cut now, durably: the next append must start on a clean end, and the cut must not be undone by a later crash.
        await handle.truncate(active.bytes);
        await handle.sync();
      }
    } catch (e) {
      await handle?.close().catch(() => undefined);
      throw ioError('opening the active segment', e, active.path);
    }
    const writer = new WalWriter(o, segments, handle);
    return new Wal(o, segments, writer, scan.tail);
  }

  /** The first LSN of the active segment (the newest), which appends go to. */
  get activeFirstLsn(): number {
    return this.segments[this.segments.length - 1]!.firstLsn;
  }

  /** LSN of the oldest record still in the log (the next LSN when the log holds none). */
  get firstLsn(): number {
    return this.segments[0]!.firstLsn;
  }

  /** LSN of the last record acknowledged (or found at open); firstLsn - 1 for an empty log. */
  get lastLsn(): number {
    return this.writer.lastLsn;
  }

  /** Bytes of the live segments. */
  get bytes(): number {
    let total = 0;
    for (const s of this.segments) total += s.bytes;
    return total;
  }

  /**
   * Appends one record and resolves with its LSN, when the record is as durable as `durability`
   * says. The payload is read when its group is written (at the latest after the previous group
   * completes): do not change it until the promise settles. Rejects with WalError 'IO' (with
   * `cause`) when the write or fsync of its group fails; the log stays usable and the record's LSN
   * is given to the next append. Rejects with 'CLOSED' after close().
   */
  append(payload: Uint8Array): Promise<number> {
    if (!(payload instanceof Uint8Array)) return Promise.reject(new TypeError('WAL payload must be a Uint8Array'));
    return this.writer.append(payload);
  }

  /** Resolves when every record appended before the call is fsynced; reports a failed background ('batch') fsync. */
  sync(): Promise<void> {
    return this.writer.sync();
  }

  /**
   * Every record with lsn > afterLsn, in LSN order, up to lastLsn as of the call: one segment is
   * read at a time and checked again (any damage now is 'CORRUPTION'). Payloads of single-fragment
   * records are views into the segment's read buffer: copy one to keep it without keeping the
   * whole buffer alive. Throws 'CORRUPTION' when records after afterLsn were already removed
   * (afterLsn < firstLsn - 1). Do not run removeBefore() at the same time.
   */
  replay(afterLsn = 0): AsyncIterable<WalRecord> {
    if (this.closed) throw new WalError('CLOSED', 'the WAL is closed');
    const until = this.lastLsn;
    const snapshot = this.segments.map((s) => ({ ...s }));
    const files = this.options.files;
    return {
      async *[Symbol.asyncIterator]() {
        const first = snapshot[0]!.firstLsn;
        if (afterLsn < first - 1) {
          throw new WalError('CORRUPTION', `WAL records ${afterLsn + 1}..${first - 1} were removed; the log starts at LSN ${first}`, {
            file: snapshot[0]!.path,
            offset: 0,
          });
        }
        for (const [i, segment] of snapshot.entries()) {
          const next = snapshot[i + 1];
          if (next !== undefined && next.firstLsn <= afterLsn + 1) continue;
          if (segment.firstLsn > until) return;
          let bytes: Uint8Array;
          try {
            bytes = await files.readFile(segment.path);
          } catch (e) {
            throw ioError('reading a segment', e, segment.path);
          }
          const reader = new SegmentReader(bytes, segment.path, segment.firstLsn, 'strict', true, Math.min(segment.bytes, bytes.length));
          for (let record = reader.next(); record !== undefined; record = reader.next()) {
            if (record.lsn > afterLsn) yield record;
            // Bytes past the last acknowledged record may be changing under a concurrent commit: never parse them.
            if (record.lsn >= until) return;
          }
          const due = Math.min(until, segment.lastLsn);
          if (reader.summary.lastLsn < due) {
            const end = reader.summary.validEnd;
            throw new WalError('CORRUPTION', `WAL corruption in ${segment.path} at offset ${end}: it ends at LSN ${reader.summary.lastLsn}, ${due} was due`, {
              file: segment.path,
              offset: end,
            });
          }
        }
      },
    };
  }

  /**
   * Starts a new segment after everything appended so far (FORMAT.md, "Rotation"), so that a
   * following removeBefore() can delete a segment a checkpoint has put entirely behind it.
   */
  rotate(): Promise<void> {
    if (this.closed) return Promise.reject(new WalError('CLOSED', 'the WAL is closed'));
    return this.writer.rotateSegment();
  }

  /**
   * Deletes, oldest first, the segments all of whose records have lsn < `lsn` (never the active
   * one), each removal made durable before the next so a crash leaves a contiguous log. Resolves
   * with the number of segments removed.
   */
  removeBefore(lsn: number): Promise<number> {
    if (this.closed) return Promise.reject(new WalError('CLOSED', 'the WAL is closed'));
    const run = this.maintenance.then(() => this.removeSegments(lsn));
    this.maintenance = run.catch(() => undefined);
    return run;
  }

  /** Writes and fsyncs everything appended, then releases the file. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    await this.maintenance;
    await this.writer.close();
  }

  private async removeSegments(lsn: number): Promise<number> {
    const { files, dir } = this.options;
    let removed = 0;
    while (this.segments.length > 1 && this.segments[1]!.firstLsn <= lsn) {
      const oldest = this.segments[0]!;
      try {
        await files.remove(oldest.path);
      } catch (e) {
        if ((e as { code?: unknown }).code !== 'ENOENT') throw ioError('removing a segment', e, oldest.path);
      }
      // Gone from the directory either way; only its durability is in question if syncDir fails.
      this.segments.shift();
      removed++;
      try {
        await files.syncDir(dir);
      } catch (e) {
        throw ioError('syncing the log directory', e, dir);
      }
    }
    return removed;
  }
}

/**
 * The first LSN of the newest segment file in `dir` by its name, or undefined when it holds none
 * (nothing is read but the listing): what an open compares with the newest segment its store made.
 */
export async function newestSegment(files: FileLayer, dir: string): Promise<number | undefined> {
  let names: string[];
  try {
    names = await files.list(dir);
  } catch (e) {
    throw ioError('listing the log directory', e, dir);
  }
  let newest: number | undefined;
  for (const name of names) {
    const lsn = parseSegmentName(name);
    if (lsn !== undefined && (newest === undefined || lsn > newest)) newest = lsn;
  }
  return newest;
}

/** Read-only check of a log directory for `verify`/`inspect`: every checksum, LSN continuity, and the torn tail an open would cut. */
export async function inspectWal(options: { dir: string; files?: FileLayer }): Promise<LogScan> {
  return scanLog(options.files ?? nodeFileLayer, options.dir);
}

async function ensureDir(files: FileLayer, dir: string): Promise<void> {
  try {
    await ensureDurableDir(files, dir);
  } catch (e) {
    throw ioError('creating the log directory', e, dir);
  }
}

/**
 * Starts the log at `startLsn`: removes the old segments oldest first (each durably, so a crash
 * leaves a contiguous suffix that the next open restarts the same way), then creates the new one.
 */
async function restart(files: FileLayer, dir: string, old: Segment[], startLsn: number): Promise<Segment> {
  try {
    for (const segment of old) {
      await files.remove(segment.path);
      await files.syncDir(dir);
    }
    const segment: Segment = { firstLsn: startLsn, path: join(dir, segmentName(startLsn)), bytes: 0, lastLsn: startLsn - 1 };
    const handle = await files.open(segment.path, 'create');
    try {
      await handle.truncate(0);
    } finally {
      await handle.close();
    }
    await files.syncDir(dir);
    return segment;
  } catch (e) {
    throw ioError('starting a new segment', e, dir);
  }
}
