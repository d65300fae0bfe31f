import { closeSync, existsSync, fstatSync, fsyncSync, lstatSync, openSync, readFileSync, readSync, renameSync, rmSync, writeSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { nodeFileLayer, writeAllSync } from '../../io/file-layer.js';
import { salvageLog } from '../../wal/salvage.js';
import { MemstoreError } from '../errors.js';
import { checkPath } from '../input.js';
import { MemStore } from '../memstore.js';
import { repairLogDir, repairReportPath, statePath, storeEntryHolding, storeHolding, syncDirSync, walDir } from './files.js';
import { segmentName } from '../../wal/format.js';
import { DirectoryLock, refuseUnfinishedImport } from './lock.js';
import { decodeMutation, type BatchShape, type Mutation } from './mutations.js';
import { keyName, malformedStatePage, newestSegmentLost, READABLE_FORMAT_VERSIONS, RECORD_TABLES, salvageState, StateStore } from './state.js';
import { requireStore } from './verify.js';
import { asMemstoreError } from './record-errors.js';
import type { IndexDamage } from './index-file.js';

/** What `memstore repair` did. */
export interface RepairResult {
  readonly dir: string;
  /** The JSON-lines report: every damaged record, key and log stretch, with its raw bytes. */
  readonly report: string;
  /** Ids of the records moved out of the store (to the report). */
  readonly removedRecords: string[];
  /** Damaged state keys that named no record (not UTF-8), removed. */
  readonly removedKeys: number;
  /** Damaged stretches of the write-ahead log (a log directory found missing counts as one). */
  readonly logDamage: number;
  /** Log records after the checkpoint that were read and applied again. */
  readonly reappliedRecords: number;
  /** Records in the store afterwards. */
  readonly count: number;
  /**
   * Damaged stretches of the index file, and their bytes. A record without a document that was in
   * one is lost without a name (nothing else holds its id): compare `checkpointRecords` with
   * `recordsLoaded` to see how many such records there were at most.
   */
  readonly indexDamage: number;
  readonly indexDamageBytes: number;
  /** Records the checkpoint said it held (undefined for a checkpoint written before it said). */
  readonly checkpointRecords: number | undefined;
  /** Records read from the index file at open, before the log was applied again. */
  readonly recordsLoaded: number;
  /**
   * Records kept whose last entry in the index file lies in a block before a damaged one, and that the
   * log did not write again: a damaged delta may have held a newer version of each (its vector then
   * is the older version's, its text and metadata the newer's) or its deletion. Each is named in the
   * report (kind `possibly-stale`); nothing in the store tells them from records the damage missed.
   */
  readonly possiblyStale: number;
}

/** Where a repair records the checkpoint LSN the old log continues from, inside the moved log directory. */
const FROM_LSN_FILE = 'REPAIR-FROM-LSN';

function b64(bytes: Uint8Array | undefined): string | undefined {
  return bytes === undefined ? undefined : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** The bytes of a damaged stretch of a file, as far as they exist (for the report). */
function readStretch(path: string, from: number, to: number): Uint8Array | undefined {
  try {
    const fd = openSync(path, 'r');
    try {
      const size = fstatSync(fd).size;
      const start = Math.min(from, size);
      const bytes = Buffer.alloc(Math.max(0, Math.min(to, size) - start));
      const n = readSync(fd, bytes, 0, bytes.length, start);
      return bytes.subarray(0, n);
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
}

/** An append-only JSON-lines file, fsynced before the repair changes anything it describes. */
class ReportFile {
  private readonly fd: number;

  constructor(readonly path: string) {
    try {
      this.fd = openSync(path, 'wx', 0o644);
    } catch (e) {
      // A report is evidence: one that exists is never overwritten.
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new MemstoreError('INVALID_ARGUMENT', `repair report ${path} already exists; name another`, { cause: e, field: 'report' });
      throw new MemstoreError('IO', `cannot create the repair report ${path}`, { cause: e, file: path });
    }
  }

  /**
   * Appends a line, all of its bytes: writeSync may write fewer than asked (a device filling up
   * inside the line), and a report cut inside its last line had been left as repair exited 0.
   */
  line(value: object): void {
    try {
      writeAllSync(this.fd, Buffer.from(`${JSON.stringify(value)}\n`));
    } catch (e) {
      throw new MemstoreError('IO', `cannot write the repair report ${this.path}`, { cause: e, file: this.path });
    }
  }

  sync(): void {
    fsyncSync(this.fd);
  }

  close(): void {
    fsyncSync(this.fd);
    closeSync(this.fd);
  }
}

/**
 * The default report's path: named by the second, and by its count within it when a report of that
 * second is there (a second repair in one second had refused the name it chose itself).
 */
function freeReportPath(dir: string): string {
  const at = new Date();
  let n = 1;
  while (existsSync(repairReportPath(dir, at, n))) n++;
  return repairReportPath(dir, at, n);
}

/**
 * Moves every damaged record of a store to a report and leaves a clean store (LevelDB's RepairDB,
 * SQLite's .recover are the models; STATE.md, "Damage and repair", is the protocol):
 *
 * 0. A state file with a part LMDB would read past (inside its own pages, not in a value) is
 *    rewritten from every part that reads, without LMDB, before anything opens it; each part passed
 *    over goes to the report with its page's bytes (salvageState()).
 * 1. The log is read leniently; every damaged stretch goes to the report with its bytes. If there is
 *    any, the log directory is moved to `wal.repair` (with the checkpoint LSN it continues from) and
 *    the store opens on a new log: every readable record after the checkpoint is logged and applied
 *    again, in order. A repair interrupted after the move resumes from `wal.repair`.
 * 2. Every record is read whole (vector, document, text); each one that fails a check goes to the
 *    report with the raw bytes of its values and whatever of it still reads, and is deleted.
 * 3. Compaction rewrites the arena and the state without them; then `wal.repair` goes.
 *
 * The report is fsynced before anything it describes is removed. Afterwards `memstore verify` finds
 * nothing. A state whose main tree or configuration is damaged so is beyond it, as is one cut
 * short or not LMDB's: restore state.mdb from a copy.
 */
export async function repairStore(dir: string, options: { report?: string; onProgress?: (done: number, total: number) => void } = {}): Promise<RepairResult> {
  // Another program's LMDB environment named state.mdb is refused there, before a byte is rebuilt
  // (the rebuild keeps only what a store's tables hold, and had dropped everything of that program's).
  requireStore(dir);
  // An empty name had come back as IO "cannot create the repair report " (ENOENT).
  if (options.report !== undefined) checkPath(options.report, 'report');
  refuseReportInside(dir, options.report);
  // Refused before its report is made, as open refuses it: an import that did not finish is
  // imported again (it starts over), and a report left in the directory had made that import
  // refuse a directory no longer empty.
  refuseUnfinishedImport(dir);
  // Steps: the state rebuilt, the log salvaged, the store opened, the log re-applied, damage found, damaged records moved out, compaction.
  const step = (done: number) => options.onProgress?.(done, 7);
  const lock = DirectoryLock.acquire(dir, nodeFileLayer);
  // Until the store takes it over (it releases it at close, or itself when opening fails).
  let holdingLock = true;
  let store: MemStore | undefined;
  let report: ReportFile | undefined;
  try {
    const moved = repairLogDir(dir);
    let fromLsn: number;
    let checkpointRecords: number | undefined;
    let madeSegment: number | undefined;
    let shape: BatchShape;
    const resuming = existsSync(moved);
    // A part of the state's trees LMDB would read past (it ends the process there): the state is
    // rebuilt from every part that reads, before LMDB opens it, and the parts passed over go to the
    // report, fsynced before the file that held them is replaced. The records they held are then
    // found below, as records whose documents are missing.
    const malformed = malformedStatePage(dir);
    if (malformed !== undefined) {
      await salvageState(dir, (skipped) => {
        report = new ReportFile(options.report ?? freeReportPath(dir));
        // What the walk found first, so that the report says why the state was rewritten even where
        // the salvage passed over nothing (a free list or an overflow run claiming a page a tree holds).
        report.line({ kind: 'state-damage', file: statePath(dir), page: malformed.page, offset: malformed.page * malformed.pageSize, reason: malformed.what, partsPassedOver: skipped.length });
        for (const part of skipped) {
          report.line({ kind: 'state-page', file: statePath(dir), table: part.table, page: part.page, offset: part.page * part.pageSize, node: part.node ?? null, reason: part.what, bytes: b64(readStretch(statePath(dir), part.page * part.pageSize, (part.page + 1) * part.pageSize)) });
        }
        report.sync();
      });
    }
    const look = StateStore.open(dir, { readOnly: true, dropDamagedRedo: true });
    try {
      // A version named is a configuration (one of a format this memstore does not read is refused below, as such).
      if (look.formatVersionNamed() === undefined && look.readConfig() === undefined) throw new MemstoreError('CORRUPTION', `${dir}: the state holds no configuration`, { file: statePath(dir) });
    } finally {
      await look.close();
    }
    // First the state, from a sequential read: damaged values and keys go to the report, and every
    // sound value is put back in key order (a damaged key can break the order LMDB's lookups need).
    // Opened before the report is made: a state LMDB cannot open is refused with no report left behind.
    const state = StateStore.open(dir, { dropDamagedRedo: true });
    try {
      // A store of a format this memstore does not read, and one whose configuration it cannot read,
      // are refused before a byte is rebuilt: the rebuild keeps only the tables of this format, and
      // had dropped a format-4 store's codes and vectors with no line in the report.
      const version = state.formatVersionNamed();
      if (version !== undefined && !READABLE_FORMAT_VERSIONS.includes(version)) {
        throw new MemstoreError('INVALID_ARGUMENT', `${dir} holds a store of format version ${version}; this memstore reads and repairs ${READABLE_FORMAT_VERSIONS.join(' and ')}: use the memstore that wrote it`, { file: statePath(dir) });
      }
      // Read before the rebuild, which keeps the configuration as it is: one that cannot be read
      // refuses the repair with nothing touched.
      const config = state.readConfig();
      if (config === undefined) throw new MemstoreError('CORRUPTION', `${dir}: the state holds no configuration`, { file: statePath(dir) });
      shape = { dim: config.dim };
      report ??= new ReportFile(options.report ?? freeReportPath(dir));
      // What that commit wrote is not known: the records it left half written are found below.
      const redo = state.droppedRedo;
      if (redo !== undefined) report.line({ kind: 'redo', file: statePath(dir), offset: redo.offset, reason: redo.message });
      for (const { table, key, value } of await state.rebuildWithoutDamage()) {
        report.line({ kind: 'value', table, key: keyName(key), keyBytes: b64(key), bytes: b64(value) });
      }
      report.sync();
      const checkpoint = state.readCheckpoint();
      fromLsn = checkpoint.lsn;
      checkpointRecords = checkpoint.records;
      madeSegment = state.readLogSegment();
    } finally {
      await state.close();
    }
    step(1);
    if (resuming) {
      const marker = join(moved, FROM_LSN_FILE);
      // A repair writes its marker into the log before it moves the log there: without one, the
      // directory is not an interrupted repair's (its read had come out as Node's ENOENT, an IO error).
      if (!regularFileAt(marker)) throw new MemstoreError('CORRUPTION', `${moved} holds no ${FROM_LSN_FILE}, so it is not what an interrupted repair leaves: move it away (or back to wal/ if it is the log) and repair again`, { file: marker });
      fromLsn = Number(readFileSync(marker, 'utf8'));
      if (!Number.isSafeInteger(fromLsn)) throw new MemstoreError('CORRUPTION', `${marker} is unreadable`, { file: marker });
    }
    const log = await salvageLog(nodeFileLayer, resuming ? moved : walDir(dir), fromLsn);
    // A store whose log directory is gone opens only through here (MemStore.open refuses it): the
    // writes acknowledged after the checkpoint went with it, and how many is not known.
    const logLost = !resuming && !existsSync(walDir(dir));
    if (logLost) {
      report.line({ kind: 'log-missing', file: walDir(dir), afterLsn: fromLsn, lostAfterCheckpoint: 'unknown', reason: 'the write-ahead log directory is missing: every write acknowledged after the checkpoint is lost' });
    }
    // The newest segment the log made after the checkpoint is gone (MemStore.open refuses the store):
    // the store opens on what the log still holds, and records its newest segment again.
    if (!resuming && !logLost && madeSegment !== undefined && newestSegmentLost(madeSegment, fromLsn, log.segments[log.segments.length - 1]?.firstLsn)) {
      report.line({ kind: 'log-segment-missing', file: join(walDir(dir), segmentName(madeSegment)), afterLsn: madeSegment - 1, lostAfterCheckpoint: 'unknown', reason: "the write-ahead log's newest segment is missing: every write acknowledged in it is lost" });
    }
    for (const d of log.damage) {
      report.line({
        kind: 'log',
        file: d.file,
        offset: d.offset,
        end: d.end,
        reason: d.reason,
        lostLsns: d.lostLsns ?? null,
        lostAfterCheckpoint: d.lostLsns === undefined ? 'unknown' : d.lostLsns[1] > fromLsn,
        bytes: b64(d.bytes),
      });
    }
    const salvaged: Mutation[] = [];
    for (const r of log.records) {
      if (r.lsn <= fromLsn) continue;
      try {
        salvaged.push(decodeMutation(r.payload, { file: walDir(dir), lsn: r.lsn }, shape));
      } catch (e) {
        report.line({ kind: 'log-record', lsn: r.lsn, reason: e instanceof Error ? e.message : String(e), bytes: b64(r.payload) });
      }
    }
    report.sync();
    step(2);
    const rewriteLog = resuming || log.damage.length > 0 || salvaged.length < log.records.filter((r) => r.lsn > fromLsn).length;
    if (rewriteLog && !resuming) {
      // For what it throws: a FIFO there would hold the open below for ever; a file there is written over.
      regularFileAt(join(walDir(dir), FROM_LSN_FILE));
      const marker = openSync(join(walDir(dir), FROM_LSN_FILE), 'w', 0o644);
      try {
        writeSync(marker, String(fromLsn));
        fsyncSync(marker);
      } finally {
        closeSync(marker);
      }
      renameSync(walDir(dir), moved);
      syncDirSync(dir);
    }

    holdingLock = false;
    // Leniently: damaged stretches of the index file are skipped and reported below.
    const indexDamage: IndexDamage[] = [];
    const indexBlocks = new Map<string, number>();
    store = await MemStore.openWith(dir, {}, { lock, repairing: true, indexDamage, indexBlocks });
    for (const d of indexDamage) {
      report.line({ kind: 'index', file: d.file, offset: d.offset, end: d.end, reason: d.what, bytes: b64(readStretch(d.file, d.offset, d.end)) });
    }
    report.sync();
    // What the index file gave, before the open replayed the log: a count taken after it had hidden records lost without a name.
    const recordsLoaded = indexBlocks.size;
    step(3);
    let reapplied = 0;
    if (rewriteLog) {
      // Every record after the checkpoint, again and in order: a prefix applied by an interrupted
      // repair is harmless, since upserts and deletes replayed in order end in the same state.
      for (const m of salvaged) {
        await store.reapply(m);
        reapplied++;
      }
    }
    step(4);
    const damage = await store.findDamage();
    const removed = [...damage.records.keys()];
    for (const [id, error] of damage.records) {
      const raw = store.rawValues(Buffer.from(id, 'utf8'));
      report.line({
        kind: 'record',
        id,
        error: { file: error.file, offset: error.offset, what: error.message },
        salvaged: await store.salvage(id),
        raw: Object.fromEntries(RECORD_TABLES.map((t) => [t, b64(raw[t])])),
      });
    }
    for (const { key, error } of damage.keys) {
      const raw = store.rawValues(key);
      report.line({ kind: 'key', key: keyName(key), error: { file: error.file, offset: error.offset, what: error.message }, raw: Object.fromEntries(RECORD_TABLES.map((t) => [t, b64(raw[t])])) });
    }
    report.sync();
    // Read from a block before a damaged stretch: a delta in the damage may have replaced or deleted
    // them, and nothing the store keeps tells (INDEX.md, "Reading"). Named, kept as read.
    const lastDamage = Math.max(-1, ...indexDamage.map((d) => d.offset));
    const touched = new Set<string>();
    // The log after the checkpoint wrote these again (the open replayed it, or the repair did above).
    for (const m of salvaged) for (const id of m.kind === 'add' ? m.records.map((r) => r.id) : m.ids) touched.add(id);
    let possiblyStale = 0;
    for (const [id, block] of indexBlocks) {
      if (block >= lastDamage || touched.has(id) || damage.records.has(id)) continue;
      report.line({ kind: 'possibly-stale', id, block, reason: 'read from an index block before a damaged one, which may have held a newer version of it or its deletion' });
      possiblyStale++;
    }
    indexBlocks.clear();
    report.sync();
    step(5);
    if (removed.length > 0) await store.delete(removed);
    await store.dropDamagedKeys();
    // Compaction writes a new index generation from memory: the damaged stretches are not in it.
    store.forgetIndexDamage();
    step(6);
    await store.compact();
    step(7);
    if (existsSync(moved)) {
      rmSync(moved, { recursive: true, force: true });
      syncDirSync(dir);
    }
    const result: RepairResult = {
      dir,
      report: report.path,
      removedRecords: removed,
      removedKeys: damage.keys.length,
      logDamage: log.damage.length + (logLost ? 1 : 0),
      reappliedRecords: reapplied,
      count: store.stats().count,
      indexDamage: indexDamage.length,
      indexDamageBytes: indexDamage.reduce((n, d) => n + (d.end - d.offset), 0),
      checkpointRecords,
      recordsLoaded,
      possiblyStale,
    };
    report.line({ kind: 'summary', ...result });
    await store.close();
    store = undefined;
    return result;
  } catch (e) {
    if (store !== undefined) await store.close().catch(() => undefined);
    if (holdingLock) lock.releaseAfterFailure();
    // A log that cannot be listed (wal/ not a directory) had come out as the log's own error, and a
    // wal.repair that is not a directory as Node's ENOTDIR, with no code of ours (a hostile pass).
    throw asMemstoreError(e, `repairing ${dir}`);
  } finally {
    report?.close();
  }
}

/**
 * Whether a regular file is at `path`, where a repair keeps its marker (false when nothing is);
 * CORRUPTION when something else is: opened, a FIFO there waited for a peer for ever (a hostile pass).
 */
function regularFileAt(path: string): boolean {
  let stats: Stats;
  try {
    stats = lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new MemstoreError('IO', `cannot check ${path}`, { cause: e, file: path });
  }
  if (!stats.isFile()) throw new MemstoreError('CORRUPTION', `${path} is not a regular file; a repair keeps its marker there: remove it`, { file: path });
  return true;
}

/**
 * INVALID_ARGUMENT when the report would be written inside one of the store's own entries (its
 * log, arenas, index, or the log a repair moves aside): a report in `wal/` was deleted with the
 * damaged log it describes. Beside them, in the store's directory, is where it goes by default.
 */
function refuseReportInside(dir: string, report: string | undefined): void {
  if (report === undefined) return;
  // Links resolved: a report named through a link into wal/ was written there, then deleted with
  // it; one inside another store's wal/ broke that store's log.
  const own = storeEntryHolding(dir, report);
  const holder = own === undefined ? storeHolding(report) : { dir, entry: own };
  if (holder !== undefined) {
    throw new MemstoreError('INVALID_ARGUMENT', `the report ${report} would be inside the ${holder.entry} of the store in ${holder.dir}; write it elsewhere`, { field: 'report', file: report });
  }
}
