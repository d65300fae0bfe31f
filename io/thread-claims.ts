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
}

function load(): ThreadClaims | undefined {
  try {
    const a = (loadAddon('memstore_claims') ?? {}) as Partial<ThreadClaims>;
    return typeof a.claim === 'function' && typeof a.release === 'function' && typeof a.held === 'function' ? (a as ThreadClaims) : undefined;
  } catch {
    return undefined;
  }
}

/** The claims of this process's threads; undefined without the addon. */
export const threadClaims: ThreadClaims | undefined = load();
