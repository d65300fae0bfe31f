import { existsSync, lstatSync, readdirSync } from 'node:fs';
import { nodeFileLayer, type FileLayer } from '../../io/file-layer.js';
import { basename, join, resolve } from 'node:path';
import { fileId } from '../../io/rooted-layer.js';
import { threadClaims } from '../../io/thread-claims.js';
import { MemstoreError } from '../errors.js';
import { importMarkerPath, lockPath } from './files.js';
import { asMemstoreError } from './record-errors.js';

const HELD_HERE = Symbol.for('memstore.lockFilesHeld');
/**
 * The lock files this thread holds, so a second open of the same directory in it is refused too:
 * kept on the thread's global object, shared by every copy of memstore loaded in it (a nested
 * node_modules, a plugin with its own). A set of each module's own had let a second copy open a
 * directory the first held, and an acknowledged write was lost (a hostile pass).
 */
const heldHere: Set<string> = ((globalThis as { [HELD_HERE]?: Set<string> })[HELD_HERE] ??= new Set<string>());

/**
 * The third line of a lock file whose holder keeps it open with a write lock by open file
 * description (ThreadClaims.hold()) for as long as it holds the directory: while that lock is
 * there the holder is alive, whichever process, thread or copy of memstore it is; once it is gone
 * (the store closed, its thread ended, its process died) the lock file is stale, even where its
 * pid still runs. A lock file without it is judged by its pid alone, as locks were before.
 */
const HELD_LINE = 'held';

/** Errors of hold() that say the file system keeps no such locks (or the file layer is not the disk's): the lock file then goes without. */
const NO_OFD_LOCKS = new Set(['ENOLCK', 'EINVAL', 'EOPNOTSUPP', 'ENOENT']);

/** A takeover lock older than this whose owner is dead was left by a process that died mid-takeover. */
const STALE_TAKEOVER_MS = 5000;
/** How long an open waits for another process's takeover of a stale lock to finish. */
const TAKEOVER_WAIT_MS = 2000;

/** Whether process `pid` exists (EPERM: it exists, another user's). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM means the process exists but belongs to someone else: still alive.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The text of the lock file at `path`; undefined when it is gone; IO when it cannot be read. */
function lockText(files: FileLayer, path: string): string | undefined {
  let bytes: Uint8Array;
  try {
    bytes = files.readFileSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new MemstoreError('IO', `cannot read lock file ${path}`, { cause: e });
  }
  return new TextDecoder().decode(bytes);
}

/** The pid a lock file (or the import marker, which starts with one) holds; undefined when it is gone; NaN when it holds no pid. */
export function readOwner(files: FileLayer, path: string): number | undefined {
  const text = lockText(files, path);
  return text === undefined ? undefined : ownerIn(text);
}

function ownerIn(text: string): number {
  const pid = Number.parseInt(text.trim(), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : NaN;
}

/**
 * The process importing into `dir` or holding its store open while its import marker is there
 * (EXPORT.md), if it is alive: the pid in the marker, else in the lock. Undefined when neither
 * names a live process: an import that did not finish.
 */
export function liveImporter(dir: string): { pid: number; file: string } | undefined {
  for (const file of [importMarkerPath(dir), lockPath(dir)]) {
    const pid = readOwner(nodeFileLayer, file);
    if (pid !== undefined && !Number.isNaN(pid) && pidAlive(pid)) return { pid, file };
  }
  return undefined;
}

/**
 * When an import into `dir` did not finish (its marker is there, EXPORT.md): CORRUPTION, as its
 * store may lack rows, and the way on is to import again (it starts over), not to open or repair
 * it. LOCKED while the import still runs: its marker is there until it ends, and the advice to empty
 * the directory, taken then, destroyed it (found by a hostile pass).
 */
export function refuseUnfinishedImport(dir: string): void {
  if (!existsSync(importMarkerPath(dir))) return;
  const live = liveImporter(dir);
  if (live !== undefined) throw new MemstoreError('LOCKED', `${dir}: process ${live.pid} is importing into it; wait for it to finish`, { file: live.file });
  throw new MemstoreError('CORRUPTION', `${dir}: an import into it did not finish, so its store may lack rows; import again (it starts over) or empty the directory`, { file: importMarkerPath(dir) });
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function removeIfPresent(files: FileLayer, path: string): void {
  try {
    files.removeSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new MemstoreError('IO', `cannot remove ${path}`, { cause: e });
  }
}

/** What a lock file holds: the owner's pid, then a token of the lock that made it, then HELD_LINE when its holder holds it open locked. */
function lockContent(token: string, held: boolean): string {
  return `${process.pid}\n${token}\n${held ? `${HELD_LINE}\n` : ''}`;
}

/** A lock file this lock made: what it wrote, and the name its open file description lock is kept under (ThreadClaims.hold()), if it took one. */
interface MadeLock {
  readonly content: string;
  readonly heldAs: string | undefined;
}

/**
 * createWithPid() for the directory's lock file, held open with a write lock by open file
 * description (HELD_LINE) where the addon is built and the file system keeps such locks: the lock
 * is taken on the private file before it is linked into place, so the lock file is never there
 * marked and not held. Undefined when the lock file exists.
 */
function createLock(files: FileLayer, path: string, token: string): MadeLock | undefined {
  if (threadClaims !== undefined) {
    const marked = lockContent(token, true);
    const tmp = writePrivate(files, path, marked);
    let held: boolean;
    try {
      held = threadClaims.hold(tmp);
    } catch (e) {
      if (!NO_OFD_LOCKS.has(String((e as NodeJS.ErrnoException).code))) {
        removeIfPresent(files, tmp);
        throw new MemstoreError('IO', `cannot hold lock file ${path}`, { cause: e });
      }
      held = false;
    }
    if (held) {
      let linked = false;
      try {
        linked = linkPrivate(files, tmp, path);
      } finally {
        if (!linked) threadClaims.unhold(tmp);
      }
      return linked ? { content: marked, heldAs: tmp } : undefined;
    }
    removeIfPresent(files, tmp);
  }
  const content = lockContent(token, false);
  return createWithPid(files, path, content) ? { content, heldAs: undefined } : undefined;
}

/**
 * Whether the lock file at `path` (its text `text`) is held by a live holder: by the open file
 * description lock its holder keeps where it says it keeps one (HELD_LINE; any process, thread or
 * copy of memstore) and this process can test it; else by its pid (`alive`).
 */
function lockAlive(path: string, text: string, alive: (pid: number) => boolean): boolean {
  if (threadClaims !== undefined && text.split('\n')[2] === HELD_LINE) {
    try {
      return threadClaims.heldElsewhere(path);
    } catch (e) {
      // A system or file system without such locks here (the holder had them: a file system shared
      // with another system) judges by the pid, as a lock without the line is judged.
      if (!NO_OFD_LOCKS.has(String((e as NodeJS.ErrnoException).code)) || (e as NodeJS.ErrnoException).code === 'ENOENT') throw e;
    }
  }
  const owner = ownerIn(text);
  return !Number.isNaN(owner) && alive(owner);
}

/**
 * Creates `path` holding `content` (this process's pid first), atomically: it is written to a
 * private file first and hard-linked into place, so no one ever sees the file empty. False when it
 * exists.
 */
function createWithPid(files: FileLayer, path: string, content: string): boolean {
  return linkPrivate(files, writePrivate(files, path, content), path);
}

/** A private file beside `path` (its name, then this pid and random bits) holding `content`. */
function writePrivate(files: FileLayer, path: string, content: string): string {
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  files.createSync(tmp, new TextEncoder().encode(content));
  return tmp;
}

/** Hard-links the private file `tmp` as `path`, then removes its own name; false when `path` exists. */
function linkPrivate(files: FileLayer, tmp: string, path: string): boolean {
  try {
    files.linkSync(tmp, path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new MemstoreError('IO', `cannot create lock file ${path}`, { cause: e });
  } finally {
    removeIfPresent(files, tmp);
  }
}

/**
 * Removes the private files (`LOCK.<pid>.<random>`, `LOCK.takeover.<pid>.<random>`) that processes
 * killed between writing a lock and linking it into place left in `dir`, once the lock is taken:
 * no live process links them any more (their pid is gone), and they had piled up (a hostile pass:
 * two after 25 kills). One of a live pid may be another opener's in flight, and stays. A courtesy:
 * a failure to list or remove leaves them, as before, and the lock is taken all the same.
 */
function removeLeftPrivateFiles(files: FileLayer, dir: string, path: string): void {
  const prefix = `${basename(path)}.`;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const rest = name.startsWith(prefix) ? name.slice(prefix.length).replace(/^takeover\./, '') : '';
    const pid = /^(\d+)\.[0-9a-z]+$/.exec(rest)?.[1];
    if (pid === undefined || Number(pid) === process.pid || pidAlive(Number(pid))) continue;
    try {
      files.removeSync(join(dir, name));
    } catch {
      // Left for the next open: it is in no one's way.
    }
  }
}

/** A token no other lock of this or another process holds (52 random bits and the time). */
function newToken(): string {
  return `${Date.now().toString(36)}.${Math.random().toString(36).slice(2)}`;
}

/**
 * An exclusive claim on a store directory: a `LOCK` file holding the owner's pid, created
 * atomically (written aside, hard-linked into place). Node has no flock(2), hence the pid: a lock
 * whose pid no longer runs is stale (its process was killed) and is taken over, so a crash never
 * bricks a store.
 *
 * Taking over is where two openers could race (both see the dead pid, one removes it and creates
 * its own lock, the other removes that one): only the holder of `LOCK.takeover` (created the same
 * atomic way) may remove a stale `LOCK`, and it checks again under it that the lock still holds the
 * dead pid. A takeover lock left by a process that died mid-takeover is removed once its owner is
 * dead and it is older than 5 s. A reused pid can make a stale lock look alive: that errs towards
 * LOCKED, never two writers. A lock naming this very process is judged by the claims of its threads
 * (io/thread-claims.ts): one left by a worker thread that was terminated with the store open is
 * stale; without the addon it stays LOCKED until the process exits.
 *
 * Where the addon is built and the file system keeps locks by open file description, the holder
 * also keeps the lock file open with such a lock (HELD_LINE), and a lock file that says so is judged
 * by that lock alone, whatever its pid: alive while any process, thread or copy of memstore holds
 * it, stale once the holder closed, its thread ended or its process died. A second copy of memstore
 * in one process (its own module state, its own addon) had taken a lock the first held for one its
 * threads had left, and other processes had found a lock left by a terminated worker LOCKED until
 * the worker's process exited (two hostile passes).
 */
export class DirectoryLock {
  /** The thread claim taken with the lock (claimKey()), released with it. */
  private claim: string | undefined;

  private constructor(
    private readonly files: FileLayer,
    private readonly path: string,
    /**
     * The lock file this lock created (fileId()) and what it wrote in it, so that release() removes
     * that file and no other: a file system reuses the inode number of a deleted file at once.
     */
    private readonly created: { readonly id: string | undefined; readonly content: string },
    /** The name the lock file's open file description lock is kept under (createLock()), if it took one. */
    private readonly heldAs: string | undefined,
  ) {}

  /**
   * The lock of `dir`, or LOCKED. Any other failure is IO with the system error as its cause, for
   * every caller: the lock file is the first file made in the directory, so a path that is a file
   * (ENOTDIR), a directory without write permission, a read-only file system, or a full disk under
   * a stale lock's takeover (which verify and repair had let out as Node's own ENOSPC) fail here.
   */
  static acquire(dir: string, files: FileLayer): DirectoryLock {
    try {
      return DirectoryLock.acquireOrThrow(dir, files);
    } catch (e) {
      throw asMemstoreError(e, `locking ${dir}`);
    }
  }

  private static acquireOrThrow(dir: string, files: FileLayer): DirectoryLock {
    const path = lockPath(dir);
    if (heldHere.has(path)) throw new MemstoreError('LOCKED', `${dir} is already open in this process`);
    // The threads of this process first (io/thread-claims.ts, where the addon is built): a claim
    // taken here means no live thread of this process holds the directory, so a lock file naming
    // this process was left by a thread that is gone (a terminated worker) and is stale.
    const key = claimKey(dir);
    const claimed = threadClaims?.claim(key);
    // Claims are by the directory itself, links resolved: this thread's own open of it by another path lands here too.
    if (claimed === false) throw new MemstoreError('LOCKED', `${dir} is already open in this process (in this thread by another path, or in another thread)`, { file: dir });
    try {
      const lock = DirectoryLock.take(dir, files, path, claimed === true);
      lock.claim = claimed === true ? key : undefined;
      return lock;
    } catch (e) {
      if (claimed === true) threadClaims!.release(key);
      throw e;
    }
  }

  /** The lock file's protocol, once this thread may take it; `ownThreadsGone`: a lock naming this process is stale. */
  private static take(dir: string, files: FileLayer, path: string, ownThreadsGone: boolean): DirectoryLock {
    const alive = (pid: number) => (pid === process.pid ? !ownThreadsGone : pidAlive(pid));
    const takeover = `${path}.takeover`;
    const deadline = Date.now() + TAKEOVER_WAIT_MS;
    const token = newToken();
    const made = (lock: MadeLock): DirectoryLock => {
      heldHere.add(path);
      removeLeftPrivateFiles(files, dir, path);
      return new DirectoryLock(files, path, { id: fileId(path), content: lock.content }, lock.heldAs);
    };
    for (;;) {
      const created = createLock(files, path, token);
      if (created !== undefined) return made(created);
      const text = lockText(files, path);
      if (text === undefined) {
        // LOCK was there for the link and gone for the read: released in between, so try again.
        // Unless it is a symbolic link to nothing, which is there for one and gone for the other
        // every time (a hostile pass: open spun for good); any other cause is bounded by the wait.
        if (lstatSync(path, { throwIfNoEntry: false })?.isSymbolicLink() === true || Date.now() > deadline) {
          throw new MemstoreError('IO', `${path} is there but cannot be read (a symbolic link to nothing?)`, { file: path });
        }
        sleepSync(1);
        continue;
      }
      if (lockAlive(path, text, alive)) throw new MemstoreError('LOCKED', `${dir} is held by process ${ownerIn(text)}`);
      if (createWithPid(files, takeover, lockContent(token, false))) {
        try {
          // Under the takeover lock no other opener removes LOCK, but one that finds none makes its
          // own: the lock judged stale is removed only while it is still there, the very file judged
          // (its token is its own). Once it is gone (its holder closed meanwhile), whatever is there
          // is judged afresh: a LOCK made in between by a third opener had been removed, and two
          // processes held the store (an acknowledged write lost: a hostile pass).
          const again = lockText(files, path);
          if (again === text) {
            if (lockAlive(path, again, alive)) throw new MemstoreError('LOCKED', `${dir} is held by process ${ownerIn(again)}`);
            removeIfPresent(files, path);
            const taken = createLock(files, path, token);
            if (taken !== undefined) return made(taken);
          }
        } finally {
          removeIfPresent(files, takeover);
        }
        continue;
      }
      const taker = readOwner(files, takeover);
      if (taker !== undefined && (Number.isNaN(taker) || !pidAlive(taker)) && Date.now() - mtimeOf(files, takeover) > STALE_TAKEOVER_MS) {
        removeIfPresent(files, takeover);
        continue;
      }
      if (Date.now() > deadline) throw new MemstoreError('LOCKED', `${dir} is being taken over by process ${taker ?? 'unknown'}`);
      sleepSync(5);
    }
  }

  /**
   * Lets go of the directory: removes LOCK if it is still this lock's, and the thread's claim in any
   * case. IO when LOCK cannot be read or removed (it is then left in place; this process's claim is
   * released all the same, so this process can open the directory again).
   */
  release(): void {
    heldHere.delete(this.path);
    try {
      // Another holder's lock when the directory was deleted and made again while this one was open
      // (its LOCK is another file, which may have been given the same inode number): removing it
      // would let a third opener in beside that holder.
      const { id, content } = this.created;
      if ((id === undefined || fileId(this.path) === id) && lockText(this.files, this.path) === content) removeIfPresent(this.files, this.path);
    } finally {
      // Once the file is gone (or is another's): held until then, it kept every other opener out.
      if (this.heldAs !== undefined) threadClaims?.unhold(this.heldAs);
      if (this.claim !== undefined) threadClaims?.release(this.claim);
    }
  }

  /**
   * release() on a path already failing with an error of its own, which is the one its caller
   * reports: LOCK that cannot be read or removed then stays, and is not raised over that error
   * (the thread's claim is released either way, as the store's files are closed on such paths).
   */
  releaseAfterFailure(): void {
    try {
      this.release();
    } catch {
      // The caller's error is the one that says what went wrong; this one is its consequence at most.
    }
  }
}

/**
 * What the threads' claims name a directory by: its device and inode, so that two spellings of one
 * directory (a symlink, a relative path, a bind mount) are one claim; a thread taking over a lock
 * that another thread holds under another name would make two writers. The path made absolute where
 * the directory cannot be stat'ed (a file layer that keeps it in memory).
 */
function claimKey(dir: string): string {
  return fileId(dir) ?? resolve(dir);
}


function mtimeOf(files: FileLayer, path: string): number {
  try {
    return files.mtimeSync(path);
  } catch {
    return Date.now();
  }
}
