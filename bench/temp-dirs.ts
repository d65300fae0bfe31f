import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The temporary directories the benchmark is using now. A process that dies of a signal leaves
 * its own behind (`memstore bench` stopped by Ctrl-C had left a store of the data set in the system's
 * temporary directory every time: a hostile pass); the CLI, which owns its process, removes these
 * before it exits on SIGINT or SIGTERM.
 */
export const benchDirs = new Set<string>();

/** A new temporary directory named `prefix`..., listed in benchDirs until removeBenchDir(). */
export function makeBenchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  benchDirs.add(dir);
  return dir;
}

/** Removes a directory makeBenchDir() made. */
export function removeBenchDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  benchDirs.delete(dir);
}
