import { readFileSync } from 'node:fs';
import { GLIBC_TRIM_THRESHOLD, heapTrim, trimThresholdFixer, type HeapTrim } from '../io/heap-trim.js';

/**
 * Gives the C allocator's free memory back to the system once the stores of this thread have had
 * no call for a while (MemStore's `trimWhenIdle`). glibc keeps what each thread frees in that
 * thread's arena, V8's worker threads (compiling, marking) and the main thread's freed buffers: a
 * trim gave back 0.9 to 2.6 MiB (18 to 54 bytes per vector) at rest in the memory bench's processes
 * holding a 50k x 512-d store, and 5 to 7 MiB (100 to 140) in a process that had freed a buffer of
 * 2 MiB before it opened the store, which raises glibc's thresholds (bench/results/memory.md). A
 * trim costs about 1 ms; it runs once per quiet spell, never while calls come faster than the quiet
 * period, on a timer that does not keep the process alive.
 *
 * A trim reaches every arena's free pages but one kind: the free top of an arena of another
 * thread, which only that arena gives back, as it frees, once the top passes glibc's trim
 * threshold. glibc raises that threshold to twice the largest buffer a process has freed (up to
 * 64 MiB), so four V8 worker threads kept 13.8 MB free at their arenas' tops beside a 50k x 512-d
 * store, which no trim gave back: a probe's process held 476 to 549 B per vector of the store at
 * rest, and 279 B with the threshold kept at glibc's default (bench/results/memory.md, which also
 * has what it costs). So the trimmer keeps it there (`fixThreshold`), once, when made.
 *
 * A call reads no clock (it had: a tenth of a microsecond of every cache hit): it marks the spell
 * under way as not quiet, and the timer, at the spell's end, starts another or trims. So the trim
 * comes one to two quiet periods after the last call.
 */
export interface IdleTrimmerOptions {
  /** Milliseconds of a quiet spell: the trim runs after the first one without a call. @default 1000 */
  quietMs?: number;
  /** The trim itself; without it nothing is scheduled. @default none (idleTrimmer() gives the native addon's, io/heap-trim.ts) */
  trim?: HeapTrim;
  /**
   * Called once, by the constructor: keeps the C allocator's trim threshold where the trims need it
   * (true when it did). @default none (idleTrimmer() gives the native addon's, at glibc's default 128 KiB)
   */
  fixThreshold?: () => boolean;
}

export class IdleTrimmer {
  private readonly quietMs: number;
  private trim: HeapTrim | undefined;
  /** A call came during the spell under way: it is not quiet. */
  private called = false;
  /** A call came since the last trim: there may be memory to give back. */
  private owed = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private counts = { trims: 0, released: 0 };
  /** Whether fixThreshold() said it set the threshold. */
  readonly thresholdFixed: boolean;

  constructor(options: IdleTrimmerOptions = {}) {
    this.quietMs = options.quietMs ?? 1000;
    this.trim = options.trim;
    this.thresholdFixed = fixed(options.fixThreshold);
  }

  /** A call of a store: the spell under way is not quiet. */
  touch(): void {
    if (this.trim === undefined) return;
    this.owed = true;
    if (this.timer === undefined) this.arm();
    else this.called = true;
  }

  /** Trims run so far, and how many of them gave memory back. */
  get stats(): { readonly trims: number; readonly released: number } {
    return { ...this.counts };
  }

  private arm(): void {
    this.called = false;
    this.timer = setTimeout(() => this.fire(), this.quietMs);
    this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    const trim = this.trim;
    if (trim === undefined || !this.owed) return;
    if (this.called) {
      this.arm();
      return;
    }
    this.owed = false;
    try {
      this.counts.trims++;
      if (trim()) this.counts.released++;
    } catch {
      // A timer's exception would end the user's process for a courtesy: the trims stop instead.
      this.trim = undefined;
    }
  }
}

/** fixThreshold(), whose failure (a throw) leaves the allocator as it was and is not the caller's. */
function fixed(fixThreshold: (() => boolean) | undefined): boolean {
  try {
    return fixThreshold?.() === true;
  } catch {
    return false;
  }
}

let shared: IdleTrimmer | undefined;

/** @internal This thread's trimmer if a store has made it (tests: a store opened with `trimWhenIdle: false` makes none). */
export function madeIdleTrimmer(): IdleTrimmer | undefined {
  return shared;
}

/**
 * This thread's trimmer, the native addon's trim behind it (a no-op without the addon); made at the
 * first call, which keeps the trim threshold at glibc's default unless the user tuned glibc's malloc.
 */
export function idleTrimmer(): IdleTrimmer {
  if (shared === undefined) {
    const fix = tunedByUser(startEnvironment()) ? undefined : trimThresholdFixer();
    shared = new IdleTrimmer({ trim: heapTrim(), fixThreshold: fix === undefined ? undefined : () => fix(GLIBC_TRIM_THRESHOLD) });
  }
  return shared;
}

/**
 * The environment the process was started with, which glibc read its settings from: /proc/self/environ
 * on Linux, where `process.env` can differ (a worker given `env: {}`, a variable deleted since: a
 * hostile pass found the user's threshold overridden so); `process.env` where it cannot be read.
 */
function startEnvironment(): NodeJS.ProcessEnv {
  let raw: string;
  try {
    raw = readFileSync('/proc/self/environ', 'latin1');
  } catch {
    return process.env;
  }
  const env: NodeJS.ProcessEnv = {};
  for (const entry of raw.split('\0')) {
    const at = entry.indexOf('=');
    if (at > 0) env[entry.slice(0, at)] = entry.slice(at + 1);
  }
  return env;
}

/** The environment variables by which a user sets glibc's malloc thresholds (each one stops glibc adjusting them), as GLIBC_TUNABLES' glibc.malloc.trim_threshold, top_pad, mmap_threshold and mmap_max do. */
const MALLOC_SETTINGS = ['MALLOC_TRIM_THRESHOLD_', 'MALLOC_TOP_PAD_', 'MALLOC_MMAP_THRESHOLD_', 'MALLOC_MMAP_MAX_'];

/**
 * Whether the process was started with glibc's malloc thresholds set (MALLOC_SETTINGS, or their
 * GLIBC_TUNABLES): a threshold the user chose is theirs, and the trimmer leaves it.
 */
export function tunedByUser(env: NodeJS.ProcessEnv): boolean {
  return MALLOC_SETTINGS.some((name) => env[name] !== undefined) || /(^|:)glibc\.malloc\.(trim_threshold|top_pad|mmap_threshold|mmap_max)=/.test(env['GLIBC_TUNABLES'] ?? '');
}
