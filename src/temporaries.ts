import { rmSync } from 'node:fs';

/**
 * The temporary files and directories this process is writing now: an export's file beside its
 * output (export/files.ts), the stores `memstore bench` measures (bench/temp-dirs.ts). A process that
 * dies of a signal leaves its own behind (Ctrl-C during an export had left the partial file, during
 * the bench a store of the data set: hostile passes). A library does not take over its
 * application's signals: the CLI, which owns its process, watches this list (watchTemporaries) and
 * handles SIGINT and SIGTERM only while something is on it. Handled for the whole command, a signal
 * could not stop one whose main thread was blocked before it had anything to remove: `memstore bench
 * --data FIFO` with no writer waited in open() for ever, deaf to both (a hostile pass), where the
 * signal's default action ends it.
 */
const listed = new Map<string, 'file' | 'dir'>();
let watcher: ((any: boolean) => void) | undefined;

/** Lists `path` (before it is made: a signal between its creation and its listing had left it). */
export function listTemporary(path: string, kind: 'file' | 'dir'): void {
  const before = listed.size;
  listed.set(path, kind);
  if (before === 0) watcher?.(true);
}

/** Takes `path` off the list (made permanent, or removed by its owner). */
export function unlistTemporary(path: string): void {
  if (listed.delete(path) && listed.size === 0) watcher?.(false);
}

/** Removes everything listed, as a process about to die of a signal does; nothing it removes throws. */
export function removeTemporaries(): void {
  if (listed.size === 0) return;
  for (const [path, kind] of listed) rmSync(path, { force: true, recursive: kind === 'dir' });
  listed.clear();
  watcher?.(false);
}

/** Calls `watch(true)` when the list stops being empty and `watch(false)` when it becomes empty (at once if it is not). */
export function watchTemporaries(watch: (any: boolean) => void): void {
  watcher = watch;
  if (listed.size > 0) watch(true);
}
