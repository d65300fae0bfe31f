import { existsSync } from 'node:fs';
import { inspectWal } from '../../wal/wal.js';
import { isWalError } from '../../wal/errors.js';
import type { LogScan } from '../../wal/reader.js';
import { BlobArena, type ArenaVerifyReport } from '../arena/arena.js';
import { getCodec } from '../codec/index.js';
import { MemstoreError } from '../errors.js';
import { FILES, statePath, walDir } from './files.js';
import { DirectoryLock } from './lock.js';
import { StateStore, type Checkpoint, type StoreConfig } from './state.js';

export interface Problem {
  readonly file: string;
  readonly offset: number | string | undefined;
  readonly what: string;
}

export interface StoreReport {
  readonly dir: string;
  readonly config: StoreConfig;
  readonly checkpoint: Checkpoint;
  readonly trained: boolean;
  readonly state: { readonly file: string; readonly records: number };
  readonly wal: { readonly segments: number; readonly firstLsn: number | undefined; readonly lastLsn: number | undefined; readonly bytes: number; readonly recordsAfterCheckpoint: number; readonly tornTail: Problem | undefined };
  readonly arena: ArenaVerifyReport | undefined;
  /** Damage: `memstore verify` exits 1 when there is any. */
  readonly problems: Problem[];
}

function problemOf(e: unknown, fallbackFile: string): Problem {
  if (e instanceof MemstoreError) return { file: e.file ?? fallbackFile, offset: e.offset, what: e.message };
  if (isWalError(e)) return { file: e.file ?? fallbackFile, offset: e.offset, what: e.message };
  return { file: fallbackFile, offset: undefined, what: e instanceof Error ? e.message : String(e) };
}

/**
 * Reads every checksum of a store without changing a byte: each value of the LMDB state, every
 * record of the write-ahead log (and that the log still covers everything after the checkpoint),
 * every blob of the text arena. Holds the directory lock meanwhile, so a live writer gets in the
 * way with LOCKED rather than with false alarms.
 */
export async function checkStore(dir: string): Promise<StoreReport> {
  // Opening LMDB or taking the lock would create files: a directory without a store is left untouched.
  if (!existsSync(statePath(dir))) throw new MemstoreError('INVALID_ARGUMENT', `${dir} holds no memstore (no ${FILES.state})`);
  const lock = DirectoryLock.acquire(dir);
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
    const checked = state.verifyAll(config.dim, codeBytes);
    problems.push(...checked.problems.map((e) => problemOf(e, statePath(dir))));

    let scan: LogScan | undefined;
    try {
      scan = await inspectWal({ dir: walDir(dir) });
    } catch (e) {
      if ((e as { cause?: { code?: unknown } }).cause?.code !== 'ENOENT') problems.push(problemOf(e, walDir(dir)));
    }
    const segments = scan?.segments ?? [];
    const first = segments[0];
    const last = segments[segments.length - 1];
    if (first !== undefined && first.firstLsn > checkpoint.lsn + 1) {
      problems.push({ file: first.path, offset: 0, what: `log starts at LSN ${first.firstLsn}, records ${checkpoint.lsn + 1}..${first.firstLsn - 1} after the checkpoint are missing` });
    }
    const recordsAfterCheckpoint = segments.reduce((n, s) => n + Math.max(0, Math.min(s.records, s.lastLsn - checkpoint.lsn)), 0);

    let arena: ArenaVerifyReport | undefined;
    try {
      const a = await BlobArena.open({ dir, generation: checkpoint.arenaGeneration, readOnly: true });
      try {
        arena = await a.verify();
        problems.push(...arena.errors);
        for (const { id, doc } of state.iterateDocs()) {
          if (doc.text === undefined) continue;
          try {
            await a.read(doc.text);
          } catch (e) {
            problems.push({ ...problemOf(e, statePath(dir)), what: `text of ${id}: ${problemOf(e, '').what}` });
          }
        }
      } finally {
        await a.close();
      }
    } catch (e) {
      problems.push(problemOf(e, dir));
    }
    return {
      dir,
      config,
      checkpoint,
      trained,
      state: { file: statePath(dir), records: checked.records },
      wal: {
        segments: segments.length,
        firstLsn: first?.firstLsn,
        lastLsn: last?.lastLsn,
        bytes: segments.reduce((n, s) => n + s.fileBytes, 0),
        recordsAfterCheckpoint,
        tornTail: scan?.tail === undefined ? undefined : { file: scan.tail.file, offset: scan.tail.offset, what: scan.tail.reason },
      },
      arena,
      problems,
    };
  } finally {
    await state?.close().catch(() => undefined);
    lock.release();
  }
}
