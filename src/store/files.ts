import { closeSync, existsSync, fsyncSync, lstatSync, openSync, readdirSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileId } from '../../io/rooted-layer.js';
import { parseSegmentName } from '../../wal/index.js';
import { MemstoreError } from '../errors.js';

/**
 * Every file name a store directory holds comes from here, so that the lock, the state
 * environment and the tools that inspect a directory agree on one layout.
 */
export const FILES = {
  /** Held by the process that has the directory open; holds its pid. */
  lock: 'LOCK',
  /** The LMDB environment holding the last checkpoint (one file plus its `-lock`). */
  state: 'state.mdb',
  /** The write-ahead log's segments (wal/FORMAT.md). */
  wal: 'wal',
  /** The text arena's segment files (src/arena/ARENA.md). */
  arena: 'arena',
  /** The vector arena's segment files: full-precision vectors, one frame each (src/arena/ARENA.md). */
  vectors: 'vectors',
  /**
   * The index file of each generation: per record its id, code, scale and vector place (INDEX.md);
   * beside them, the filter columns a checkpoint persisted (`columns-<number>.col`, INDEX.md).
   */
  index: 'index',
  /**
   * Where `memstore repair` moves a damaged log while it re-applies what it could read from it; only
   * exists during a repair (or after one was interrupted, which the next repair resumes).
   */
  repairLog: 'wal.repair',
  /** Prefix of the reports `memstore repair` writes: `repair-<UTC time>.jsonl`. */
  repairReport: 'repair-',
  /**
   * Written (and made durable) before `memstore import` makes its store, removed once the store is
   * whole: while it exists, the store is an import's that may not have finished, and open refuses it.
   */
  importing: 'IMPORTING',
} as const;

/** What lmdb-js adds to the name of an LMDB data file it opens by its file name, for the environment's lock file. */
const LMDB_LOCK_SUFFIX = '-lock';

/** What the state's rebuild (compaction, repair) writes its copy as, beside the state file, before it renames it into place. */
const STATE_COPY_SUFFIX = '.compact';

/** The copy of the state file at `statePath` a rebuild writes (and removes first: whatever is there is the store's). */
export function stateCopyPath(statePath: string): string {
  return `${statePath}${STATE_COPY_SUFFIX}`;
}

/**
 * Whether `name`, an entry of a store directory, is one of the store's own (FILES, the state
 * environment's lock, a lock's private file before it is linked into place): what a failed or
 * abandoned import may clear, where anything else is the user's.
 */
export function isStoreEntry(name: string): boolean {
  return (
    name === FILES.lock || name.startsWith(`${FILES.lock}.`) || name === FILES.state || name === `${FILES.state}${LMDB_LOCK_SUFFIX}` ||
    name === `${FILES.state}${STATE_COPY_SUFFIX}` || name === `${FILES.state}${STATE_COPY_SUFFIX}${LMDB_LOCK_SUFFIX}` || name === FILES.wal ||
    name === FILES.arena || name === FILES.vectors || name === FILES.index || name === FILES.repairLog || name === FILES.importing
  );
}

/**
 * `path` with every link resolved, as far as it exists (the rest, not there yet, appended as given):
 * a file named through a link to the store (or a link inside it) lands where the link points, so a
 * check on the names alone is not enough. Resolved a component at a time, as the kernel does: `..`
 * after a link leaves where the link leads, not the link's directory (`LA/../B/wal/x`, with LA a
 * link elsewhere, had been read as `B/wal/x` beside LA and let a repair report into another store's
 * log: a hostile pass); a dangling link is followed to where it points, which a write through it
 * makes. At most 40 links, as the kernel follows.
 */
export function realPath(path: string, links = 0): string {
  try {
    return realpathSync(path);
  } catch {
    // Resolved below, component by component.
  }
  const parts = (isAbsolute(path) ? path : `${process.cwd()}${sep}${path}`).split(sep).filter((p) => p !== '' && p !== '.');
  let here: string = sep;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    if (part === '..') {
      here = dirname(here);
      continue;
    }
    const next = join(here, part);
    try {
      here = realpathSync(next);
      continue;
    } catch {
      // Not there, or a link that leads nowhere yet.
    }
    let target: string | undefined;
    try {
      if (links < 40 && lstatSync(next).isSymbolicLink()) target = readlinkSync(next);
    } catch {
      // Not there at all.
    }
    const rest = parts.slice(i + 1).join(sep);
    if (target !== undefined) {
      const from = isAbsolute(target) ? target : `${here}${sep}${target}`;
      return realPath(rest === '' ? from : `${from}${sep}${rest}`, links + 1);
    }
    // Nothing more exists: the rest as given, its `..` taken by name (no link can lie below).
    return resolve(next, rest === '' ? '.' : rest);
  }
  return here;
}

/**
 * The entry of the store in `dir` (FILES: its log, arenas, index, state, lock, markers) that
 * `path` is, or lies inside, links resolved; undefined for any other path, the directory itself
 * and files beside the entries included. A tool's output written there is taken for the store's
 * own (a file named like a log segment inside `wal/`), or goes with it (repair rewrites `wal/`).
 */
export function storeEntryHolding(dir: string, path: string): string | undefined {
  const real = realPath(path);
  const inside = relative(realPath(dir), real);
  if (inside !== '' && !inside.startsWith('..') && !isAbsolute(inside)) {
    const first = inside.split(sep)[0] ?? '';
    if (isStoreEntry(first)) return first;
  }
  // An entry that is itself a link (a store whose wal/ lives on another disk): what lies inside
  // where it points is the store's too (an export there had written a log segment into it).
  for (const entry of STORE_DIRS) {
    const target = join(dir, entry);
    if (!isLink(target)) continue;
    const within = relative(realPath(target), real);
    if (within === '' || (!within.startsWith('..') && !isAbsolute(within))) return entry;
  }
  return undefined;
}

/** The entries of a store that are directories of its files. */
const STORE_DIRS = [FILES.wal, FILES.arena, FILES.vectors, FILES.index, FILES.repairLog] as const;

/** Whether `path` is a symbolic link (false when nothing is there). */
export function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * The store whose entry (storeEntryHolding) `path` is, or lies inside, links resolved: any store up
 * `path`'s ancestors (as named, and with links resolved), a directory holding a state file, not only
 * the one a tool works on. A file written into another store's `wal/` is read as that store's log
 * (or breaks it), one named `IMPORTING` beside its state makes it refuse to open.
 */
export function storeHolding(path: string): { dir: string; entry: string } | undefined {
  for (const parent of storesAbove(path)) {
    const entry = storeEntryHolding(parent, path);
    if (entry !== undefined) return { dir: parent, entry };
  }
  return undefined;
}

/**
 * The store directories (holding a state file or an import's marker) among the ancestors of
 * `path`, those of where its links lead first (the store a file really lands in: a store whose
 * wal/ is a link into another's is judged by the other), then those of its name as given (a store
 * whose wal/ is a link elsewhere, reached through it), nearest first.
 */
export function storesAbove(path: string): string[] {
  const found: string[] = [];
  for (const start of new Set([realPath(path), resolve(path)])) {
    for (let parent = dirname(start); ; parent = dirname(parent)) {
      if ((existsSync(join(parent, FILES.state)) || existsSync(join(parent, FILES.importing))) && !found.includes(parent)) found.push(parent);
      if (dirname(parent) === parent) break;
    }
  }
  return found;
}

/**
 * Whether `name` is one a store gives its own files (FILES' entries, a log segment, an index or
 * columns file, an arena segment): an output of that name, wherever it lies, may be taken for one.
 */
export function isStoreFileName(name: string): boolean {
  return isStoreEntry(name) || parseSegmentName(name) !== undefined || parseIndexFileName(name) !== undefined || parseColumnsFileName(name) !== undefined || parseArenaSegmentName(name) !== undefined || parseArenaSegmentName(name, 'vectors') !== undefined;
}

export function lockPath(dir: string): string {
  return join(dir, FILES.lock);
}

export function statePath(dir: string): string {
  return join(dir, FILES.state);
}

/** The lock file lmdb-js keeps beside an LMDB data file it opens by its file name (`state.mdb-lock` for the state). */
export function lmdbLockPath(dataFile: string): string {
  return `${dataFile}${LMDB_LOCK_SUFFIX}`;
}

export function walDir(dir: string): string {
  return join(dir, FILES.wal);
}

export function importMarkerPath(dir: string): string {
  return join(dir, FILES.importing);
}

export function repairLogDir(dir: string): string {
  return join(dir, FILES.repairLog);
}

/**
 * `repair-20261129T201500Z.jsonl`: a report's name says when the repair ran; the `n`-th of one
 * second, `repair-20261129T201500Z-2.jsonl` and on.
 */
export function repairReportPath(dir: string, at: Date, n = 1): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return join(dir, `${FILES.repairReport}${stamp}${n > 1 ? `-${n}` : ''}.jsonl`);
}

export function indexDir(dir: string): string {
  return join(dir, FILES.index);
}

const INDEX_DIGITS = 6;

/** `<prefix>-<number>.<ext>`, the number zero-padded to INDEX_DIGITS (wider numbers still parse). */
function numberedName(prefix: string, ext: string, n: number): string {
  return `${prefix}-${String(n).padStart(INDEX_DIGITS, '0')}.${ext}`;
}

/** The number a numberedName() declares, or undefined for any other name (a non-canonical spelling included). */
function parseNumberedName(prefix: string, ext: string, name: string): number | undefined {
  const match = new RegExp(`^${prefix}-(\\d{${INDEX_DIGITS},})\\.${ext}$`).exec(name);
  if (match === null) return undefined;
  const n = Number(match[1]);
  if (!Number.isSafeInteger(n) || numberedName(prefix, ext, n) !== name) return undefined;
  return n;
}

/** `index-<generation>.idx`, e.g. `index-000003.idx`. */
export function indexFileName(generation: number): string {
  return numberedName('index', 'idx', generation);
}

/** The generation an index file name declares, or undefined for any other name. */
export function parseIndexFileName(name: string): number | undefined {
  return parseNumberedName('index', 'idx', name);
}

export function indexFilePath(dir: string, generation: number): string {
  return join(indexDir(dir), indexFileName(generation));
}

/** `columns-<number>.col`, e.g. `columns-000004.col`: the filter columns one checkpoint wrote (INDEX.md). */
export function columnsFileName(file: number): string {
  return numberedName('columns', 'col', file);
}

/** The number a columns file name declares, or undefined for any other name. */
export function parseColumnsFileName(name: string): number | undefined {
  return parseNumberedName('columns', 'col', name);
}

export function columnsFilePath(dir: string, file: number): string {
  return join(indexDir(dir), columnsFileName(file));
}

/**
 * The store keeps two blob arenas of the same format: texts, and full-precision vectors. Each has
 * its directory and its file-name prefix, so a file of one is never taken for a file of the other.
 */
export type ArenaSpace = 'texts' | 'vectors';

const SPACES: Record<ArenaSpace, { readonly dir: string; readonly prefix: string }> = {
  texts: { dir: FILES.arena, prefix: 'arena' },
  vectors: { dir: FILES.vectors, prefix: 'vectors' },
};

export function arenaDir(dir: string, space: ArenaSpace = 'texts'): string {
  return join(dir, SPACES[space].dir);
}

/** Zero-padded so a directory listing sorts like the numbers; wider numbers still parse. */
const ARENA_DIGITS = 6;

/** `<prefix>-<generation>-<segment>.blob`, e.g. `arena-000001-000003.blob`, `vectors-000002-000001.blob`. */
export function arenaSegmentName(generation: number, segment: number, space: ArenaSpace = 'texts'): string {
  return `${SPACES[space].prefix}-${String(generation).padStart(ARENA_DIGITS, '0')}-${String(segment).padStart(ARENA_DIGITS, '0')}.blob`;
}

/** The generation and segment number an arena file name declares, or undefined for any other name. */
export function parseArenaSegmentName(name: string, space: ArenaSpace = 'texts'): { generation: number; segment: number } | undefined {
  const match = new RegExp(`^${SPACES[space].prefix}-(\\d{6,})-(\\d{6,})\\.blob$`).exec(name);
  if (match === null) return undefined;
  const generation = Number(match[1]);
  const segment = Number(match[2]);
  if (!Number.isSafeInteger(generation) || !Number.isSafeInteger(segment) || segment < 1) return undefined;
  // One file per (generation, segment): a non-canonical spelling such as extra leading zeros is not ours.
  if (arenaSegmentName(generation, segment, space) !== name) return undefined;
  return { generation, segment };
}

export function arenaSegmentPath(dir: string, generation: number, segment: number, space: ArenaSpace = 'texts'): string {
  return join(arenaDir(dir, space), arenaSegmentName(generation, segment, space));
}

/** fsync of a directory, so that creates, renames and removes in it survive power loss. */
export function syncDirSync(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export { ensureDurableDir } from '../../io/file-layer.js';

/**
 * A file only a store writes (a log segment, an index or columns file, an arena segment) found in
 * `dir`, or undefined. The state file is made before any of them, so one of them without it means
 * the state file was lost: the directory holds a damaged store, not none.
 */
function storeFileIn(dir: string): string | undefined {
  const owned: [string, (name: string) => boolean][] = [
    [walDir(dir), (n) => parseSegmentName(n) !== undefined],
    [indexDir(dir), (n) => parseIndexFileName(n) !== undefined || parseColumnsFileName(n) !== undefined],
    [arenaDir(dir, 'texts'), (n) => parseArenaSegmentName(n, 'texts') !== undefined],
    [arenaDir(dir, 'vectors'), (n) => parseArenaSegmentName(n, 'vectors') !== undefined],
  ];
  for (const [sub, ours] of owned) {
    let names: string[];
    try {
      names = readdirSync(sub);
    } catch {
      continue;
    }
    const name = names.find(ours);
    if (name !== undefined) return join(sub, name);
  }
  return undefined;
}

/**
 * Bytes the names of a store's files take under its directory, at most, with room to spare: the
 * longest are a vector arena segment (`vectors/vectors-000001-000001.blob`, 34), a log segment
 * moved aside by repair (`wal.repair/wal-…log`, 38), a repair report and temporary names holding a
 * pid and a random part.
 */
const ENTRY_NAME_ROOM = 128;

/**
 * INVALID_ARGUMENT when `dir` (resolved) is so long that the store's file names under it would pass
 * the system's limit on a path (PATH_MAX, 4,096 bytes on Linux, 1,024 on macOS): a store opened
 * there failed every checkpoint, compact() and close() with ENAMETOOLONG once its first vector
 * segment was named, or failed its open after making some of its files (a hostile pass).
 */
export function refuseOverlongDir(dir: string): void {
  const limit = process.platform === 'linux' ? 4096 : process.platform === 'darwin' ? 1024 : undefined;
  if (limit === undefined) return;
  const bytes = Buffer.byteLength(dir);
  if (bytes + 1 + ENTRY_NAME_ROOM >= limit) {
    throw new MemstoreError('INVALID_ARGUMENT', `${dir}: a path of ${bytes} bytes leaves too little room for the store's file names under it (the system's limit is ${limit})`, { field: 'dir', file: dir });
  }
}

/**
 * CORRUPTION when an entry of the store in `dir` (its state, log, arenas or index, or a file in
 * one of them) is a file with a second name (a hard-linked copy) or a symbolic link into another
 * store: this one would read that store's records, texts or vectors as its own, and its writes,
 * compactions and collections would change or delete that store's files (a hostile pass: the
 * other store's log segment deleted, its text arena rewritten, all its full vectors collected, a
 * record written into its log). A symbolic link anywhere else (a directory on another disk) is the
 * user's to make. Called before anything is opened.
 */
export function refuseForeignEntries(dir: string): void {
  const home = realPath(dir);
  // Entries linked, state file and all, into a directory that holds them (data on another disk,
  // the lock kept here): that directory's state is this store's own, not another store's.
  const ownState = fileId(statePath(dir));
  // ...and only when its other entries are that directory's too: a state file alone linked to
  // another store's, beside a log and arenas of its own, had passed for this store's, and a repair
  // then rewrote the other store's state (a hostile pass).
  const keptIn = (other: string): boolean => STORE_DIRS.every((e) => !existsSync(join(other, e)) || realPath(join(dir, e)) === realPath(join(other, e)));
  const check = (path: string): void => {
    let link: boolean;
    try {
      const stat = lstatSync(path);
      link = stat.isSymbolicLink();
      // A hard-linked copy (`cp -al`, a backup made with links) shares the file's bytes: LMDB and
      // the log write in place, so each store changed the other's (a review: the copy's first
      // writes made the original CORRUPTION).
      if (stat.isFile() && stat.nlink > 1) {
        throw new MemstoreError('CORRUPTION', `${path} has ${stat.nlink} names: a hard-linked copy shares its bytes, and writes to either store would change the other (copy a store without links)`, { file: path });
      }
    } catch (e) {
      if (e instanceof MemstoreError) throw e;
      return;
    }
    if (!link) return;
    const holder = storeHolding(path);
    if (holder !== undefined && holder.dir !== home && !(ownState !== undefined && fileId(join(holder.dir, FILES.state)) === ownState && keptIn(holder.dir))) {
      throw new MemstoreError('CORRUPTION', `${path} is a link into another store's ${holder.entry} (${holder.dir}): a store's files must be its own`, { file: path });
    }
  };
  for (const name of [FILES.state, `${FILES.state}${LMDB_LOCK_SUFFIX}`, FILES.wal, FILES.arena, FILES.vectors, FILES.index]) {
    const path = join(dir, name);
    check(path);
    let entries: string[];
    try {
      entries = statSync(path).isDirectory() ? readdirSync(path) : [];
    } catch {
      continue;
    }
    for (const entry of entries) check(join(path, entry));
  }
}

/**
 * CORRUPTION when `dir` holds a store's files (storeFileIn) but not its state file, or one that
 * holds no store state (`blank`: no byte, or no key; the state's configuration is committed before
 * any of those files is made): a store that lost it, not a directory without a store. Opening must
 * not make a new state over its files (it deleted their generations as leftovers), and the tools
 * must not say there is no store.
 */
export function refuseLostState(dir: string, blank = false): void {
  const missing = !existsSync(statePath(dir));
  if (!missing && !blank) return;
  const orphan = storeFileIn(dir);
  if (orphan !== undefined) throw new MemstoreError('CORRUPTION', `${dir}: the state file ${missing ? 'is missing' : 'holds no store state'}, though the directory holds a store's files (${orphan})`, { file: statePath(dir) });
}
