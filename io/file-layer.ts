import { closeSync, constants, fsyncSync, linkSync, openSync, readFileSync, readSync, statSync, unlinkSync, writeSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { dirname } from 'node:path';
import { canMapFiles, mapFile, type MappedFile } from './mmap.js';

/**
 * The file operations the WAL (and any other durable file of the store) goes through, modeled on
 * LevelDB's Env and SQLite's VFS: small enough that a test can implement it in memory and inject
 * faults (test/support/fault-layer.ts), explicit about durability (sync, syncDir) because every guarantee
 * is built on exactly when bytes and directory entries become durable.
 *
 * Failures reject with the platform's error (an Error with a string `code` such as 'ENOENT',
 * 'ENOSPC', 'EIO').
 *
 * An operation must not wait for a call of the store it serves: a search whose reads writes keep
 * moving holds the store's writes back for its last try (src/search/RESCORING.md), so a read that
 * awaits one of that store's writes never ends.
 */
export interface FileLayer {
  /** Opens a file; 'read' and 'readwrite' need it to exist, 'create' makes it when missing. */
  open(path: string, mode: OpenMode): Promise<FileHandle>;
  /** The whole file. */
  readFile(path: string): Promise<Uint8Array>;
  /** Entry names (not paths) of a directory, in no particular order. */
  list(dir: string): Promise<string[]>;
  /** Unlinks a file; durable only after syncDir of its directory. */
  remove(path: string): Promise<void>;
  /** Atomically replaces `to` with `from`; durable only after syncDir of the directory (both, if two). */
  rename(from: string, to: string): Promise<void>;
  /** Creates a directory and its missing parents; no error if it exists. */
  mkdir(dir: string): Promise<void>;
  /** Makes the directory's entries (creates, renames, removes) durable: fsync of the directory. */
  syncDir(dir: string): Promise<void>;
  exists(path: string): Promise<boolean>;

  // Synchronous, for the directory lock: it is taken and released in one step, so that nothing
  // else in this process runs between its checks and its claims.

  /** Creates `path` holding `data`, fsynced before it returns; throws EEXIST when it exists. */
  createSync(path: string, data: Uint8Array): void;
  /** Hard-links `existing` as `path`, atomically; throws EEXIST when `path` exists. Durable only after syncDir. */
  linkSync(existing: string, path: string): void;
  /** The whole file. */
  readFileSync(path: string): Uint8Array;
  /** Unlinks a file; durable only after syncDir of its directory. */
  removeSync(path: string): void;
  /** When the file's contents last changed, in ms since the epoch. */
  mtimeSync(path: string): number;
}

/**
 * 'read': read only. 'readwrite': read and positioned writes, the file must exist. 'create': like
 * 'readwrite' but creates a missing file (never truncates an existing one; the new entry is durable
 * only after syncDir). There is deliberately no append mode: O_APPEND makes Linux ignore the write
 * position, and every writer here tracks its own end offset.
 */
export type OpenMode = 'read' | 'readwrite' | 'create';

export interface FileHandle {
  /** Reads up to `buffer.length` bytes at `position`; resolves to the count (short only at end of file). */
  read(buffer: Uint8Array, position: number): Promise<number>;
  /**
   * The same read, synchronously, where the layer can. Small reads of cached pages cost a few
   * microseconds this way against tens through the thread pool; a cold read blocks the event loop
   * for one disk access, as a page fault on a memory map would.
   */
  readSync?(buffer: Uint8Array, position: number): number;
  /**
   * The file's bytes as of now through a read-only shared memory map (io/mmap.ts), where the layer
   * can map files; undefined for an empty file. Bytes written after are not in it: map again. The
   * caller must not truncate the file below what it mapped while the map is in use (a read of a
   * page past the end of the file kills the process with SIGBUS), and unmaps it before closing.
   */
  map?(): MappedFile | undefined;
  /** Writes all of `data` at `position`, or rejects (some prefix may have been written). */
  write(data: Uint8Array, position: number): Promise<void>;
  /** fsync: the file's bytes and size as of now survive power loss once this resolves. */
  sync(): Promise<void>;
  /** The count of the file's names (0 once it was removed), where the layer can tell. */
  links?(): Promise<number>;
  truncate(length: number): Promise<void>;
  size(): Promise<number>;
  close(): Promise<void>;
}

const OPEN_FLAGS: Record<OpenMode, number> = {
  read: constants.O_RDONLY,
  readwrite: constants.O_RDWR,
  create: constants.O_RDWR | constants.O_CREAT,
};

class NodeFileHandle implements FileHandle {
  /** Present only where the addon loaded, so callers can tell without trying. */
  readonly map: (() => MappedFile | undefined) | undefined;

  constructor(private readonly handle: fsp.FileHandle) {
    this.map = canMapFiles() ? () => mapFile(this.handle.fd) : undefined;
  }

  async read(buffer: Uint8Array, position: number): Promise<number> {
    let done = 0;
    while (done < buffer.length) {
      const { bytesRead } = await this.handle.read(buffer, done, buffer.length - done, position + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done;
  }

  readSync(buffer: Uint8Array, position: number): number {
    let done = 0;
    while (done < buffer.length) {
      const bytesRead = readSync(this.handle.fd, buffer, done, buffer.length - done, position + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done;
  }

  async write(data: Uint8Array, position: number): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.handle.write(data, done, data.length - done, position + done);
      done += bytesWritten;
    }
  }

  sync(): Promise<void> {
    return this.handle.sync();
  }

  truncate(length: number): Promise<void> {
    return this.handle.truncate(length);
  }

  async links(): Promise<number> {
    return (await this.handle.stat()).nlink;
  }

  async size(): Promise<number> {
    return (await this.handle.stat()).size;
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

/**
 * An error (code ENOTREG) for a store's file that is there but is not a regular file: a FIFO in its
 * place blocked the open for good, and a link to a device such as /dev/zero was read without end
 * (found by a hostile pass), so every file is looked at before it is opened or read. A missing file
 * is left to the open, which says so itself.
 */
function notRegular(path: string, what: string): Error {
  return Object.assign(new Error(`${path} is not a regular file (${what})`), { code: 'ENOTREG', path });
}

function kindOf(stat: { isDirectory(): boolean; isFIFO(): boolean; isSocket(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean }): string {
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isSocket()) return 'a socket';
  if (stat.isCharacterDevice() || stat.isBlockDevice()) return 'a device';
  return 'not a file';
}

async function requireRegular(path: string): Promise<void> {
  let stat;
  try {
    stat = await fsp.stat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (!stat.isFile()) throw notRegular(path, kindOf(stat));
}

function requireRegularSync(path: string): void {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (stat !== undefined && !stat.isFile()) throw notRegular(path, kindOf(stat));
}

/** FileLayer over node:fs/promises. */
export const nodeFileLayer: FileLayer = {
  async open(path, mode) {
    await requireRegular(path);
    return new NodeFileHandle(await fsp.open(path, OPEN_FLAGS[mode], 0o644));
  },
  async readFile(path) {
    await requireRegular(path);
    return fsp.readFile(path);
  },
  list(dir) {
    return fsp.readdir(dir);
  },
  remove(path) {
    return fsp.unlink(path);
  },
  rename(from, to) {
    return fsp.rename(from, to);
  },
  async mkdir(dir) {
    await fsp.mkdir(dir, { recursive: true });
  },
  async syncDir(dir) {
    // Windows cannot open a directory for fsync and has no use for it (NTFS journals entries).
    if (process.platform === 'win32') return;
    const handle = await fsp.open(dir, constants.O_RDONLY);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
  async exists(path) {
    try {
      await fsp.access(path);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
  },
  createSync(path, data) {
    const fd = openSync(path, 'wx', 0o644);
    try {
      writeAllSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  },
  linkSync(existing, path) {
    linkSync(existing, path);
  },
  readFileSync(path) {
    requireRegularSync(path);
    return readFileSync(path);
  },
  removeSync(path) {
    unlinkSync(path);
  },
  mtimeSync(path) {
    return statSync(path).mtimeMs;
  },
};

/**
 * Creates `dir` and its missing parents and makes each new entry durable, top down: an entry lives
 * in its parent, so no directory may be durable under a parent whose entry for it is not.
 */
export async function ensureDurableDir(files: FileLayer, dir: string): Promise<void> {
  const missing: string[] = [];
  for (let d = dir; !(await files.exists(d)); d = dirname(d)) {
    missing.push(d);
    if (dirname(d) === d) break;
  }
  if (missing.length === 0) return;
  await files.mkdir(dir);
  for (const d of missing.reverse()) await files.syncDir(dirname(d));
}

/**
 * Writes all of `data` at the descriptor's position: writeSync may write fewer bytes than asked
 * (a device filling up), and the rest goes in further calls; one that writes nothing is an error.
 */
export function writeAllSync(fd: number, data: Uint8Array): void {
  for (let done = 0; done < data.length; ) {
    const n = writeSync(fd, data, done, data.length - done);
    if (n <= 0) throw new Error(`a write of ${data.length - done} bytes wrote none`);
    done += n;
  }
}
