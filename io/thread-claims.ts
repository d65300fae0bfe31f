import { loadAddon } from './native-addon.js';

/**
 * Which threads of this process hold which store directories, through the small native addon in
 * `native/claims.c`, when it is built: shared by every thread of the process, and a thread's claims
 * go when its Node environment is torn down (a worker's terminate() included). The directory lock
 * (src/store/lock.ts) takes over a lock file naming this process that no live thread claims.
 */
export interface ThreadClaims {
  /** Records the calling thread's claim on `path`; false when a thread of this process holds it. */
  claim(path: string): boolean;
  /** Drops the calling thread's claim on `path` (none: nothing happens). */
  release(path: string): void;
  /** Whether a live thread of this process claims `path`. */
  held(path: string): boolean;
  /**
   * Opens `file` and write-locks its first byte by open file description (F_OFD_SETLK) for the
   * calling thread, until unhold(file) or the thread's end; false when another open file
   * description holds that lock (any copy of the addon, any thread, any process). Throws (an Error
   * with the errno's name as its code) where the file system cannot (ENOLCK, EINVAL).
   */
  hold(file: string): boolean;
  /** Drops the calling thread's lock of `file`, closing its descriptor (none: nothing happens). */
  unhold(file: string): void;
  /** Whether an open file description holds the lock of hold() on `file` (false when it is gone). */
  heldElsewhere(file: string): boolean;
}

function load(): ThreadClaims | undefined {
  try {
    const a = (loadAddon('memstore_claims') ?? {}) as Partial<ThreadClaims>;
    const complete = [a.claim, a.release, a.held, a.hold, a.unhold, a.heldElsewhere].every((f) => typeof f === 'function');
    return complete ? (a as ThreadClaims) : undefined;
  } catch {
    return undefined;
  }
}

/** The claims of this process's threads; undefined without the addon. */
export const threadClaims: ThreadClaims | undefined = load();
