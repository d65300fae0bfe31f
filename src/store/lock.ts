import { closeSync, openSync, readFileSync, unlinkSync, writeSync, fsyncSync } from 'node:fs';
import { MemstoreError } from '../errors.js';
import { lockPath } from './files.js';

/** Handles of this process, so a second open of the same directory in one process is refused too. */
const heldHere = new Set<string>();

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM means the process exists but belongs to someone else: still alive.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOwner(path: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new MemstoreError('IO', `cannot read lock file ${path}`, { cause: e });
  }
}

/**
 * An exclusive claim on a store directory: a `LOCK` file created with O_EXCL holding the owner's pid.
 * A lock whose pid no longer runs is stale (its process was killed) and is taken over, so a crash
 * never bricks a store. Node has no flock(2), hence the pid check; pid reuse after a crash could make
 * a stale lock look alive, which errs on the safe side (LOCKED, never two writers).
 */
export class DirectoryLock {
  private constructor(private readonly path: string) {}

  static acquire(dir: string): DirectoryLock {
    const path = lockPath(dir);
    if (heldHere.has(path)) {
      throw new MemstoreError('LOCKED', `${dir} is already open in this process`);
    }
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(path, 'wx', 0o644);
        try {
          writeSync(fd, `${process.pid}\n`);
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
        heldHere.add(path);
        return new DirectoryLock(path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new MemstoreError('IO', `cannot create lock file ${path}`, { cause: e });
        }
      }
      const owner = readOwner(path);
      if (owner !== undefined && pidAlive(owner)) {
        throw new MemstoreError('LOCKED', `${dir} is held by process ${owner}`);
      }
      // The lock is stale (or empty: its owner died between create and write). Remove and retry once;
      // if another process wins the race, the retry's O_EXCL fails and reports LOCKED below.
      try {
        unlinkSync(path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
          throw new MemstoreError('IO', `cannot remove stale lock ${path}`, { cause: e });
        }
      }
    }
    throw new MemstoreError('LOCKED', `${dir} was claimed by another process while opening`);
  }

  release(): void {
    heldHere.delete(this.path);
    try {
      unlinkSync(this.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new MemstoreError('IO', `cannot remove lock ${this.path}`, { cause: e });
      }
    }
  }
}
