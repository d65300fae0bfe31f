import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { tempDir } from '../helpers.js';

/** Mounts a tmpfs of `megabytes` at a new directory, runs `body`, unmounts; false when it cannot mount (mounting needs root). */
export async function onTmpfs(megabytes: number, body: (mnt: string) => Promise<void>): Promise<boolean> {
  const mnt = tempDir('memstore-tmpfs-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${megabytes}m`, 'tmpfs', mnt], { stdio: 'ignore' });
  } catch {
    rmSync(mnt, { recursive: true, force: true });
    return false;
  }
  try {
    await body(mnt);
  } finally {
    execFileSync('umount', [mnt]);
    rmSync(mnt, { recursive: true, force: true });
  }
  return true;
}

/** Remounts the tmpfs at `mnt` read-only (EROFS for every write through it from then on). */
export function remountReadOnly(mnt: string): void {
  execFileSync('mount', ['-o', 'remount,ro', mnt], { stdio: 'ignore' });
}
