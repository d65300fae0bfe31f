import { rmSync } from 'node:fs';
import { constants as osConstants } from 'node:os';

/**
 * The temporary files and directories this process is writing now: an export's file beside its
 * output (export/files.ts), the stores `memstore bench` measures (bench/temp-dirs.ts). A process that
 * dies of a signal leaves its own behind (Ctrl-C during an export had left the partial file, during
 * the bench a store of the data set: hostile passes). A library does not take over its
 * application's signals: the CLI, which owns its process, handles SIGINT and SIGTERM only while
 * something is on this list (removeTemporariesOnSignal). Handled for the whole command, a signal
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

/**
 * For a command line tool, which owns its process: while anything is listed, SIGINT and SIGTERM
 * remove it all and end the process as the signal would have (exit status 128 + its number); with
 * nothing listed the signal's default action stands, which ends a process whose main thread is
 * blocked. Called once.
 */
export function removeTemporariesOnSignal(): void {
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((signal) => [signal, () => {
    removeTemporaries();
    process.exit(128 + osConstants.signals[signal]);
  }] as const);
  let armed = false;
  let disarming: NodeJS.Immediate | undefined;
  watcher = (any) => {
    if (any) {
      if (disarming !== undefined) clearImmediate(disarming);
      disarming = undefined;
      if (!armed) for (const [signal, handler] of handlers) process.on(signal, handler);
      armed = true;
      return;
    }
    // Not at once: Node stops a signal's handle with its last listener, and a signal caught but not
    // yet handled is then dropped. The bench removes one store and makes the next in one stretch, and
    // a Ctrl-C there had been ignored (3 of 120 timed signals, a hostile pass). A signal that came in
    // meanwhile is handled in the loop's next poll, before this runs.
    if (armed && disarming === undefined) {
      disarming = setImmediate(() => {
        disarming = undefined;
        for (const [signal, handler] of handlers) process.off(signal, handler);
        armed = false;
      });
    }
  };
  if (listed.size > 0) watcher(true);
}
