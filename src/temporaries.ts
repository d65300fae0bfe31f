import { mkdtempSync, rmSync } from 'node:fs';
import { constants as osConstants } from 'node:os';

/**
 * The temporary files and directories this process is writing now: an export's file beside its
 * output (export/files.ts), an import's store until it is whole (export/import-store.ts), the
 * stores `memstore bench` measures (bench/temp-dirs.ts). A process that
 * dies of a signal leaves its own behind (Ctrl-C during an export had left the partial file, during
 * the bench a store of the data set: hostile passes). A library does not take over its
 * application's signals: the CLI, which owns its process, handles SIGINT, SIGTERM and SIGHUP (a
 * closed terminal or SSH session, which had left a bench's store and an export's file) only while
 * something is on this list (removeTemporariesOnSignal). Handled for the whole command, a signal
 * could not stop one whose main thread was blocked before it had anything to remove: `memstore bench
 * --data FIFO` with no writer waited in open() for ever, deaf to both (a hostile pass), where the
 * signal's default action ends it.
 */
const listed = new Map<string, () => void>();
/** The pauses before each removal pass after the first, when a signal ends the process (removeTemporariesOnSignal). */
const SIGNAL_PASSES_MS = [25, 50, 100, 150, 250];
let watcher: ((any: boolean) => void) | undefined;

/** Lists `path` (before it is made: a signal between its creation and its listing had left it). */
export function listTemporary(path: string, kind: 'file' | 'dir'): void {
  // Retried a few times (Node's own back-off, ENOTEMPTY among the errors it retries): a file made in
  // the directory by an operation already in flight when the removal began fails its last rmdir.
  listCleanup(path, () => rmSync(path, { force: true, recursive: kind === 'dir', maxRetries: kind === 'dir' ? 3 : 0, retryDelay: 5 }));
}

/** Keys of makeTemporaryDir's placeholders: no path begins with a NUL. */
const PLACEHOLDER = '\0making-';
let placeholders = 0;

/**
 * Makes a directory named `prefix` and six characters of mkdtemp's choosing, listed. mkdtemp picks
 * the name, so it cannot be listed before it is made; a placeholder is listed meanwhile, which arms
 * the signal handlers first. Made and then listed, the first bench store was the one temporary
 * listed after its creation: a signal in between, with nothing listed yet, took its default action
 * and left the empty directory (a fresh-clone CI run, 2026-12-06: the test signals as soon as it
 * sees the directory). `make` is mkdtempSync but for tests.
 */
export function makeTemporaryDir(prefix: string, make: (prefix: string) => string = mkdtempSync): string {
  const placeholder = `${PLACEHOLDER}${++placeholders}`;
  listCleanup(placeholder, () => undefined);
  try {
    const dir = make(prefix);
    listTemporary(dir, 'dir');
    return dir;
  } finally {
    unlistTemporary(placeholder);
  }
}

/**
 * Lists what is temporary under `key` as the synchronous function that removes it: an import's
 * entries in a directory that must stay (export/import-store.ts). What `remove` throws is ignored.
 */
export function listCleanup(key: string, remove: () => void): void {
  const before = listed.size;
  listed.set(key, remove);
  if (before === 0) watcher?.(true);
}

/** Takes `path` (or a cleanup's key) off the list (made permanent, or removed by its owner). */
export function unlistTemporary(path: string): void {
  if (listed.delete(path) && listed.size === 0) watcher?.(false);
}

/** Removes everything listed, as a process about to die of a signal does; nothing it removes throws. */
export function removeTemporaries(): void {
  if (listed.size === 0) return;
  const cleanups = [...listed.values()];
  listed.clear();
  runAll(cleanups);
  watcher?.(false);
}

/** Runs each cleanup, whatever the ones before it threw: a path that cannot be removed (under a file, ENOTDIR) had stopped the rest, and the signal's handler with them. */
function runAll(cleanups: readonly (() => void)[]): void {
  for (const remove of cleanups) {
    try {
      remove();
    } catch {
      // Nothing more to do for it in a process about to end.
    }
  }
}

/**
 * For a command line tool, which owns its process: while anything is listed, SIGINT, SIGTERM and
 * SIGHUP remove it all and then end the process by that signal (a shell's status 128 + its number); with
 * nothing listed the signal's default action stands, which ends a process whose main thread is
 * blocked. Called once.
 */
export function removeTemporariesOnSignal(): void {
  const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((signal) => [signal, () => {
    const cleanups = [...listed.values()];
    removeTemporaries();
    // Again after pauses, this thread blocked so that no more of the command runs: a file operation
    // already in libuv's worker threads when the signal came can race the first pass, and one
    // queued behind a slow fsync can land after a second pass 25 ms later (a fresh-clone run under
    // load left an empty bench store directory behind on 2026-12-05; which operation, not pinned
    // down). Five more passes over about half a second: a Ctrl-C ends that much later.
    for (const pause of SIGNAL_PASSES_MS) {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, pause);
      runAll(cleanups);
    }
    // Then die of the signal itself, its default action back: a shell sees 128 + its number. Not
    // process.exit(), which joins libuv's worker threads, and one blocked reading a pipe (an import
    // from a FIFO waiting for rows) never returns: the process had hung in exit.
    for (const [s, h] of handlers) process.off(s, h);
    armed = false;
    process.kill(process.pid, signal);
    // Another thread may take the signal, and this one ran on meanwhile: back in the event loop, the
    // bench made its next store, which the end left behind (under a loaded test run). So nothing
    // more runs here until the signal ends the process; were it somehow not to, exit as it would.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000);
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
