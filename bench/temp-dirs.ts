import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTemporaryDir, unlistTemporary } from '../src/temporaries.js';

/**
 * A new temporary directory named `prefix`..., on the process's list of temporaries
 * (src/temporaries.ts) until removeBenchDir(): `memstore bench` stopped by Ctrl-C had left a store of
 * the data set in the system's temporary directory every time (a hostile pass).
 */
export function makeBenchDir(prefix: string): string {
  return makeTemporaryDir(join(tmpdir(), prefix));
}

/** Removes a directory makeBenchDir() made. */
export function removeBenchDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  unlistTemporary(dir);
}
