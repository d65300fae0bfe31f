import { heapTrim, type HeapTrim } from '../io/heap-trim.js';

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
 * A call reads no clock (it had: a tenth of a microsecond of every cache hit): it marks the spell
 * under way as not quiet, and the timer, at the spell's end, starts another or trims. So the trim
 * comes one to two quiet periods after the last call.
 */
export interface IdleTrimmerOptions {
  /** Milliseconds of a quiet spell: the trim runs after the first one without a call. @default 1000 */
  quietMs?: number;
  /** The trim itself; without it nothing is scheduled. @default none (idleTrimmer() gives the native addon's, io/heap-trim.ts) */
  trim?: HeapTrim;
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

  constructor(options: IdleTrimmerOptions = {}) {
    this.quietMs = options.quietMs ?? 1000;
    this.trim = options.trim;
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

let shared: IdleTrimmer | undefined;

/** This thread's trimmer, the native addon's trim behind it (a no-op without the addon). */
export function idleTrimmer(): IdleTrimmer {
  return (shared ??= new IdleTrimmer({ trim: heapTrim() }));
}
