import { existsSync } from 'node:fs';
import { nodeFileLayer } from '../../io/file-layer.js';
import { isWalError } from '../../wal/errors.js';
import { salvageLog } from '../../wal/salvage.js';
import { BlobArena, type ArenaVerifyReport } from '../arena/arena.js';
import { getCodec } from '../codec/index.js';
import { MemstoreError } from '../errors.js';
import { FILES, repairLogDir, statePath, walDir } from './files.js';
import { DirectoryLock } from './lock.js';
import { StateStore, type Checkpoint, type StoreConfig } from './state.js';

export interface Problem {
  readonly file: string;
  readonly offset: number | string | undefined;
  readonly what: string;
  /** The record the damage belongs to, when one is known (state values, texts). */
  readonly id?: string;
}

export interface StoreReport {
  readonly dir: string;
  readonly config: StoreConfig;
  readonly checkpoint: Checkpoint;
  readonly trained: boolean;
  /** `records`: distinct records (ids) in the state, damaged ones included. */
  readonly state: { readonly file: string; readonly records: number };
  readonly wal: { readonly segments: number; readonly firstLsn: number | undefined; readonly lastLsn: number | undefined; readonly bytes: number; readonly recordsAfterCheckpoint: number; readonly tornTail: Problem | undefined };
  readonly arena: ArenaVerifyReport | undefined;
  readonly vectors: ArenaVerifyReport | undefined;
  /** Damage: `memstore verify` exits 1 when there is any. */
  readonly problems: Problem[];
  /** The ids of damaged records, each once (what `memstore repair` would move to its report). */
  readonly damagedRecords: string[];
}

function problemOf(e: unknown, fallbackFile: string): Problem {
  if (e instanceof MemstoreError) return { file: e.file ?? fallbackFile, offset: e.offset, what: e.message, ...(e.id === undefined ? {} : { id: e.id }) };
  if (isWalError(e)) return { file: e.file ?? fallbackFile, offset: e.offset, what: e.message };
  return { file: fallbackFile, offset: undefined, what: e instanceof Error ? e.message : String(e) };
}

/** INVALID_ARGUMENT unless `dir` holds a store; checked before anything could create a file there. */
export function requireStore(dir: string): void {
  if (!existsSync(statePath(dir))) throw new MemstoreError('INVALID_ARGUMENT', `${dir} holds no memstore (no ${FILES.state})`);
}

/**
 * Reads every checksum of a store without changing a byte: each value of the LMDB state (and that
 * every value belongs to a record), every record of the write-ahead log (listing every damaged
 * stretch, not only the first, and that the log still covers everything after the checkpoint),
 * every blob of the text arena and the text of every record. Holds the directory lock meanwhile, so
 * a live writer gets in the way with LOCKED rather than with false alarms.
 */
export async function checkStore(dir: string): Promise<StoreReport> {
  // Opening LMDB or taking the lock would create files: a directory without a store is left untouched.
  requireStore(dir);
  const lock = DirectoryLock.acquire(dir, nodeFileLayer);
  let state: StateStore | undefined;
  try {
    state = StateStore.open(dir);
    const config = state.readConfig();
    if (config === undefined) throw new MemstoreError('INVALID_ARGUMENT', `${dir} holds no memstore`);
    const checkpoint = state.readCheckpoint();
    const trained = state.readTrained();
    const problems: Problem[] = [];
    const pca = trained ? state.readPca() : undefined;
    const codeBytes = trained ? (pca?.outDim ?? config.dim) * getCodec(config.codec).bytesPerDim : undefined;
    const checked = state.verifyAll(codeBytes);
    problems.push(...checked.problems.map((e) => problemOf(e, statePath(dir))));

    if (existsSync(repairLogDir(dir))) {
      problems.push({ file: repairLogDir(dir), offset: undefined, what: 'an interrupted memstore repair left the old log here; run memstore repair again' });
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
    const first = segments[0];
    if (first !== undefined && first.firstLsn > checkpoint.lsn + 1) {
      problems.push({ file: first.path, offset: 0, what: `log starts at LSN ${first.firstLsn}, records ${checkpoint.lsn + 1}..${first.firstLsn - 1} after the checkpoint are missing` });
    }
    const records = log?.records ?? [];
    const lastRecord = records[records.length - 1];

    let arena: ArenaVerifyReport | undefined;
    try {
      const a = await BlobArena.open({ dir, generation: checkpoint.arenaGeneration, readOnly: true });
      try {
        arena = await a.verify();
        problems.push(...arena.errors);
        for (const entry of state.iterateDocs()) {
          if (entry.error !== undefined || entry.value.text === undefined) continue;
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
        for (const entry of state.iteratePlaces()) {
          if (entry.error !== undefined) continue;
          const [g, s, offset] = entry.value;
          try {
            await a.read([g, s, offset, config.dim * 4]);
          } catch (e) {
            problems.push({ ...problemOf(e, statePath(dir)), what: `vector of ${JSON.stringify(entry.id)}: ${problemOf(e, '').what}`, id: entry.id });
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
      state: { file: statePath(dir), records: checked.records },
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
      problems,
      damagedRecords,
    };
  } finally {
    await state?.close().catch(() => undefined);
    lock.release();
  }
}
