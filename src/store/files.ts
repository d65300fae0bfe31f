import { join } from 'node:path';

/**
 * Every file name a store directory holds comes from here, so that the lock, the state
 * environment and the tools that inspect a directory agree on one layout.
 */
export const FILES = {
  /** Held by the process that has the directory open; holds its pid. */
  lock: 'LOCK',
  /** The LMDB environment with configuration, vectors, codes and documents (one file plus its `-lock`). */
  state: 'state.mdb',
} as const;

export function lockPath(dir: string): string {
  return join(dir, FILES.lock);
}

export function statePath(dir: string): string {
  return join(dir, FILES.state);
}
