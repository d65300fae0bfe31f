import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { nodeFileLayer } from '../../io/file-layer.js';
import { isWalError } from '../../wal/errors.js';
import { segmentName } from '../../wal/format.js';
import { salvageLog } from '../../wal/salvage.js';
import { BlobArena, type ArenaVerifyReport } from '../arena/arena.js';
import { getCodec } from '../codec/index.js';
import { fitsModel } from '../space/vector-space.js';
import { MemstoreError } from '../errors.js';
import { checkPath } from '../input.js';
import { FILES, importMarkerPath, indexFilePath, refuseForeignEntries, refuseLostState, repairLogDir, statePath, walDir } from './files.js';
import { IndexFile, type IndexDamage } from './index-file.js';
import { decodeMutation, type Mutation } from './mutations.js';
import type { VectorPlace } from '../scan/code-blocks.js';
import { DirectoryLock, refuseUnfinishedImport } from './lock.js';
import { environmentKind, newestSegmentLost, refuseMalformedState, StateStore, type Checkpoint, type StoreConfig } from './state.js';
import { codeFits, dictionaryFull, validDictionary } from '../filter/columns.js';
import { readColumnsFile } from './column-file.js';
import { usableColumns } from './column-restore.js';
import { columnsFilePath } from './files.js';

export interface Problem {
  /**
   * 'IO' where a file could not be read at all (its permissions, or a FIFO or a directory where a
   * segment belongs): `memstore repair` does not mend that, since it cannot read the file either;
   * the file must be made readable or moved away. 'CORRUPTION' where bytes were read and failed a
   * check, which repair mends.
   */
  readonly code: 'CORRUPTION' | 'IO';
  readonly file: string;
  readonly offset: number | string | undefined;
  readonly what: string;
  /** The record the damage belongs to, when one is known (state values, texts). */
  readonly id?: string;
}

/** A problem as the checks find it: CORRUPTION unless it says otherwise (problemOf() says IO for an unreadable file). */
type Found = Omit<Problem, 'code'> & { readonly code?: Problem['code'] };

export interface StoreReport {
  readonly dir: string;
  readonly config: StoreConfig;
  readonly checkpoint: Checkpoint;
  readonly trained: boolean;
  /** `records`: records the index file holds, damaged ones included. */
  readonly state: { readonly file: string; readonly records: number };
  /** The index file: its committed length, and bytes past it (a checkpoint that never committed; cut at open, not damage). */
  readonly index: { readonly file: string; readonly committed: number; readonly uncommitted: number };
  readonly wal: { readonly segments: number; readonly firstLsn: number | undefined; readonly lastLsn: number | undefined; readonly bytes: number; readonly recordsAfterCheckpoint: number; readonly tornTail: Omit<Problem, 'code'> | undefined };
  readonly arena: ArenaVerifyReport | undefined;
  readonly vectors: ArenaVerifyReport | undefined;
  /** Damage: `memstore verify` exits 1 when there is any. */
  readonly problems: Problem[];
  /** The ids of damaged records, each once (what `memstore repair` would move to its report). */
  readonly damagedRecords: string[];
}

function problemOf(e: unknown, fallbackFile: string): Found {
  const code = (e instanceof MemstoreError || isWalError(e)) && e.code === 'IO' ? { code: 'IO' as const } : {};
  if (e instanceof MemstoreError) return { ...code, file: e.file ?? fallbackFile, offset: e.offset, what: e.message, ...(e.id === undefined ? {} : { id: e.id }) };
  if (isWalError(e)) return { ...code, file: e.file ?? fallbackFile, offset: e.offset, what: e.message };
  return { file: fallbackFile, offset: undefined, what: e instanceof Error ? e.message : String(e) };
}

/**
 * The columns file the checkpoint names, read as opening reads it (INDEX.md, "Filter columns"): its
 * first damage, or a column opening would refuse, is a problem. One that names another index
 * generation is not read (opening ignores it), and is no problem.
 */
async function checkColumns(dir: string, checkpoint: Checkpoint): Promise<Found[]> {
  const ref = usableColumns(checkpoint);
  if (ref === undefined) return [];
  const path = columnsFilePath(dir, ref.file);
  const problems: Found[] = [];
  let maxValues = 0;
  let field: { name: string; keys: readonly string[]; full: boolean } | undefined;
  try {
    const damage = await readColumnsFile(nodeFileLayer, path, ref.bytes, ref, {
      head(h) {
        maxValues = h.maxValues;
      },
      keys() {},
      field(name, keys) {
        field = { name, keys, full: dictionaryFull(keys, maxValues) };
        // As any writer made them, those before the byte bound included: open makes such a column
        // again from metadata, and the next checkpoint writes it anew; it is not damage.
        if (!validDictionary(keys, maxValues, true)) problems.push({ file: path, offset: `field/${name}`, what: `filter column ${JSON.stringify(name)} has a dictionary no writer makes` });
      },
      codes(first, codes) {
        const bad = codes.findIndex((c) => !codeFits(c, field!.keys.length, field!.full, maxValues));
        if (bad >= 0) problems.push({ file: path, offset: `field/${field!.name}`, what: `filter column ${JSON.stringify(field!.name)}: entry ${first + bad} holds code ${codes[bad]}, which no value has` });
      },
      columnEnd() {},
    });
    if (damage !== undefined) problems.push({ file: damage.file, offset: damage.offset, what: `filter columns file: ${damage.what} (columns from here on are made from metadata)` });
  } catch (e) {
    problems.push(problemOf(e, path));
  }
  return problems;
}

/** INVALID_ARGUMENT unless `dir` holds a store; checked before anything could create a file there. */
export function requireStore(dir: string): void {
  // checkStore() and repairStore() are public: a path that is no string had come out as Node's own TypeError.
  checkPath(dir, 'dir');
  refuseForeignEntries(dir);
  refuseLostState(dir);
  const path = statePath(dir);
  if (!existsSync(path)) {
    // An import killed before its store made a state: the directory is that import's, to do again
    // (it had been "holds no memstore", where MemStore.open names the import; a hostile pass).
    refuseUnfinishedImport(dir);
    throw new MemstoreError('INVALID_ARGUMENT', `${dir} holds no memstore (no ${FILES.state})`);
  }
  const kind = environmentKind(path);
  // No key or no commit beside a store's files: a store that lost its state (its configuration is
  // committed before any of them).
  if (kind === 'empty' || kind === 'unfinished') refuseLostState(dir, true);
  // No commit at all is no LMDB environment yet: opening it made one there (or crashed, on no byte).
  if (kind === 'unfinished') throw new MemstoreError('CORRUPTION', `${path} holds no store state: its creation stopped before LMDB's first pages were written`, { file: path });
  if (kind === 'foreign' || kind === 'empty') throw new MemstoreError('INVALID_ARGUMENT', `${dir} holds no memstore (its ${FILES.state} is an LMDB environment without a store configuration)`, { file: path });
}

/**
 * The directory's lock; none on a read-only file system (EROFS), where its file cannot be made and
 * no writer can change the store through this mount (another, writable mount of the same file
 * system is not seen: README, "Status and limits").
 */
function lockUnlessReadOnly(dir: string): DirectoryLock | undefined {
  try {
    return DirectoryLock.acquire(dir, nodeFileLayer);
  } catch (e) {
    if (e instanceof MemstoreError && (e.cause as NodeJS.ErrnoException | undefined)?.code === 'EROFS') return undefined;
    throw e;
  }
}

/**
 * Reads every checksum of a store without changing a byte: each value of the LMDB state (and that
 * every value belongs to a record), every record of the write-ahead log (listing every damaged
 * stretch, not only the first, and that the log still covers everything after the checkpoint),
 * every blob of the text arena and the text of every record (but those the log rewrites after the
 * checkpoint, whose texts and vectors the log holds itself), that every log record after the
 * checkpoint decodes. Holds the directory lock meanwhile, so a live writer gets in the way with
 * LOCKED rather than with false alarms.
 */
export async function checkStore(dir: string): Promise<StoreReport> {
  // Opening LMDB or taking the lock would create files: a directory without a store is left untouched.
  requireStore(dir);
  const lock = lockUnlessReadOnly(dir);
  let state: StateStore | undefined;
  try {
    refuseMalformedState(dir);
    // A damaged redo record is listed below, and the state read as LMDB holds it (what repair makes of it).
    state = StateStore.open(dir, { readOnly: true, dropDamagedRedo: true });
    const config = state.readConfig();
    // A store's tables without its configuration: a creation stopped between the two commits that
    // make them (a hostile pass, SIGKILL in the first open), which open makes again, as it does one
    // stopped before (CORRUPTION above), and repair refuses; beside a store's files, a lost state.
    if (config === undefined) {
      refuseLostState(dir, true);
      throw new MemstoreError('CORRUPTION', `${statePath(dir)} holds no store configuration: its creation stopped before the configuration was committed (MemStore.open with the store's options makes it there again)`, { file: statePath(dir), offset: 'config' });
    }
    const checkpoint = state.readCheckpoint();
    const trained = state.readTrained();
    const problems: Found[] = [];
    // Open refuses it (CORRUPTION): the store of an import that did not finish may lack rows.
    if (existsSync(importMarkerPath(dir))) problems.push({ file: importMarkerPath(dir), offset: 0, what: 'an import into this directory did not finish: its store may lack rows (import again, which starts over)' });
    const redo = state.droppedRedo;
    if (redo !== undefined) problems.push({ file: statePath(dir), offset: redo.offset ?? 'config/intent', what: `the redo record of a commit cut short is damaged (${redo.message}): what that commit wrote is not known` });
    const pca = trained ? state.readPca(config) : undefined;
    // Open refuses such a store (CORRUPTION), so verify must not call it healthy: an rq store's codes
    // at the input dimension can even have the length its rotated ones have, and pass the check below.
    if (trained && fitsModel(config) && pca === undefined) {
      problems.push({ file: statePath(dir), offset: 'pca', what: 'store is marked trained but holds no PCA or rotation model' });
    }
    const codeBytes = trained ? getCodec(config.codec).codeBytes(pca?.outDim ?? config.dim) : undefined;
    const checked = state.verifyAll();
    problems.push(...checked.problems.map((e) => problemOf(e, statePath(dir))));

    // The index file, read-only and leniently: every damaged stretch is listed, not only the first.
    const indexPath = indexFilePath(dir, checkpoint.indexGeneration);
    const entries = new Map<string, { documented: boolean; code: boolean; place: VectorPlace | undefined }>();
    const indexDamage: IndexDamage[] = [];
    let uncommitted = 0;
    try {
      const { file, read } = await IndexFile.open(
        { files: nodeFileLayer, dir, generation: checkpoint.indexGeneration, committed: checkpoint.indexBytes, readOnly: true, onDamage: (d) => indexDamage.push(d), ...(checkpoint.indexDigest === undefined ? {} : { digest: checkpoint.indexDigest }) },
        {
          upsert(r) {
            const place: VectorPlace | undefined = r.segment === 0 ? undefined : [r.generation, r.segment, r.offset];
            entries.set(r.id(), { documented: r.documented, code: r.hasCode && r.codeBytes === codeBytes, place });
          },
          remove(id) {
            entries.delete(id);
          },
        },
      );
      uncommitted = read.uncommitted;
      await file.close();
    } catch (e) {
      problems.push(problemOf(e, indexPath));
    }
    for (const d of indexDamage) problems.push({ file: d.file, offset: d.offset, what: `index file damage over ${d.end - d.offset} bytes (the records there are lost): ${d.what}` });
    const needPlace = config.keepFull || !trained;
    // Judged once the log is read (below): a record the log upserts or deletes after the checkpoint
    // is what the log says (a repair killed after logging the delete of a record whose damaged
    // document it had dropped left one, which verify had called damage; a hostile pass).
    const undocumented: string[] = [];
    for (const [id, e] of entries) {
      if (trained && !e.code) problems.push({ file: indexPath, offset: `code/${id}`, what: `record ${JSON.stringify(id)} has no code`, id });
      else if (needPlace && e.place === undefined) problems.push({ file: indexPath, offset: `vector/${id}`, what: `record ${JSON.stringify(id)} has no full-precision vector`, id });
      if (!e.documented) continue;
      const damaged = checked.damagedDocs.get(id);
      if (damaged !== undefined) problems.push(problemOf(damaged, statePath(dir)));
      else if (!checked.docs.has(id)) undocumented.push(id);
    }
    for (const [id, error] of checked.damagedDocs) {
      if (entries.get(id)?.documented !== true) problems.push({ ...problemOf(error, statePath(dir)), what: `${error.message}; no record of the index has this document, so its key was damaged` });
    }
    for (const id of checked.docs) {
      const e = entries.get(id);
      if (e === undefined) problems.push({ file: statePath(dir), offset: `docs/${id}`, what: `record ${JSON.stringify(id)} has a document and no index entry`, id });
      else if (!e.documented) problems.push({ file: statePath(dir), offset: `docs/${id}`, what: `a document of ${JSON.stringify(id)}, whose index entry says it has none` });
    }

    problems.push(...(await checkColumns(dir, checkpoint)));

    const repairing = existsSync(repairLogDir(dir));
    if (repairing) {
      problems.push({ file: repairLogDir(dir), offset: undefined, what: 'an interrupted memstore repair left the old log here; run memstore repair again' });
    }
    // An interrupted repair moved the log there itself (reported above).
    if (state.readLogMade() && !existsSync(walDir(dir)) && !repairing) {
      problems.push({ file: walDir(dir), offset: undefined, what: `the write-ahead log directory is missing, and with it any write acknowledged after the checkpoint (log position ${checkpoint.lsn}); memstore repair opens the store as of that checkpoint` });
    }
    const log = await salvageLog(nodeFileLayer, walDir(dir)).catch((e: unknown) => {
      problems.push(problemOf(e, walDir(dir)));
      return undefined;
    });
    for (const d of log?.damage ?? []) {
      const lost = d.lostLsns === undefined ? '' : `, records ${d.lostLsns[0]}..${d.lostLsns[1]} lost`;
      problems.push({ file: d.file, offset: d.offset, what: `WAL damage (${d.reason}) over ${d.end - d.offset} bytes${lost}` });
    }
    const segments = log?.segments ?? [];
    // The newest segment the log made after the checkpoint must still be there (STATE.md, "The log directory").
    let madeSegment: number | undefined;
    try {
      madeSegment = state.readLogSegment();
    } catch {
      // A damaged mark is reported with the other values of the state (verifyAll above).
    }
    if (log !== undefined && existsSync(walDir(dir)) && madeSegment !== undefined && newestSegmentLost(madeSegment, checkpoint.lsn, segments[segments.length - 1]?.firstLsn)) {
      problems.push({ file: join(walDir(dir), segmentName(madeSegment)), offset: undefined, what: `the write-ahead log's newest segment is missing, and with it any write acknowledged after log position ${madeSegment - 1}; memstore repair opens the store as of what the log still holds` });
    }
    const first = segments[0];
    if (first !== undefined && first.firstLsn > checkpoint.lsn + 1) {
      problems.push({ file: first.path, offset: 0, what: `log starts at LSN ${first.firstLsn}, records ${checkpoint.lsn + 1}..${first.firstLsn - 1} after the checkpoint are missing` });
    }
    const records = log?.records ?? [];
    const lastRecord = records[records.length - 1];
    // Records the log upserts or deletes after the checkpoint: opening replays them over the state's
    // documents and the index file's places, which a collection of an arena may have left pointing
    // into the generation it deleted (it moves, in the state, only records unchanged since the
    // checkpoint; the log carries the new texts and vectors themselves). Not damage: skipped below.
    const rewritten = new Set<string>();
    for (const r of records) {
      if (r.lsn <= checkpoint.lsn) continue;
      let m: Mutation;
      try {
        m = decodeMutation(r.payload, { file: walDir(dir), lsn: r.lsn }, { dim: config.dim });
      } catch (e) {
        // Opening would stop at it: damage, as a damaged stretch of the log is.
        problems.push(problemOf(e, walDir(dir)));
        continue;
      }
      for (const id of m.kind === 'add' ? m.records.map((rec) => rec.id) : m.ids) rewritten.add(id);
    }
    for (const id of undocumented) {
      if (!rewritten.has(id)) problems.push({ file: statePath(dir), offset: `docs/${id}`, what: `record ${JSON.stringify(id)} has a document by its index entry, and none in the state`, id });
    }

    let arena: ArenaVerifyReport | undefined;
    try {
      const a = await BlobArena.open({ dir, generation: checkpoint.arenaGeneration, readOnly: true });
      try {
        arena = await a.verify();
        problems.push(...arena.errors);
        for (const entry of state.iterateDocs()) {
          if (entry.error !== undefined || entry.value.text === undefined || rewritten.has(entry.id)) continue;
          try {
            await a.read(entry.value.text);
          } catch (e) {
            problems.push({ ...problemOf(e, statePath(dir)), what: `text of ${JSON.stringify(entry.id)}: ${problemOf(e, '').what}`, id: entry.id });
          }
        }
      } finally {
        await a.close();
      }
    } catch (e) {
      problems.push(problemOf(e, dir));
    }

    let vectors: ArenaVerifyReport | undefined;
    try {
      const a = await BlobArena.open({ dir, space: 'vectors', generation: checkpoint.vectorGeneration, readOnly: true });
      try {
        vectors = await a.verify();
        problems.push(...vectors.errors);
        for (const [id, { place }] of entries) {
          if (place === undefined || rewritten.has(id)) continue;
          const [g, s, offset] = place;
          try {
            await a.read([g, s, offset, config.dim * 4]);
          } catch (e) {
            problems.push({ ...problemOf(e, indexPath), what: `vector of ${JSON.stringify(id)}: ${problemOf(e, '').what}`, id });
          }
        }
      } finally {
        await a.close();
      }
    } catch (e) {
      problems.push(problemOf(e, dir));
    }
    const damagedRecords = [...new Set(problems.flatMap((p) => (p.id === undefined ? [] : [p.id])))];
    return {
      dir,
      config,
      checkpoint,
      trained,
      state: { file: statePath(dir), records: entries.size },
      index: { file: indexPath, committed: checkpoint.indexBytes, uncommitted },
      wal: {
        segments: segments.length,
        firstLsn: first?.firstLsn,
        lastLsn: lastRecord?.lsn ?? (first === undefined ? undefined : first.firstLsn - 1),
        bytes: segments.reduce((n, s) => n + s.fileBytes, 0),
        recordsAfterCheckpoint: records.filter((r) => r.lsn > checkpoint.lsn).length,
        tornTail: log?.tail === undefined ? undefined : { file: log.tail.file, offset: log.tail.offset, what: log.tail.reason },
      },
      arena,
      vectors,
      problems: problems.map((p) => ({ code: 'CORRUPTION', ...p })),
      damagedRecords,
    };
  } finally {
    await state?.close().catch(() => undefined);
    lock?.release();
  }
}
