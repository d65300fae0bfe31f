import { loadAddon } from './native-addon.js';

/**
 * The C allocator's free memory given back to the system, through the small native addon in
 * `native/heap.c` when it is built (glibc's malloc_trim(0): about 1 ms in a process holding a 50k
 * store). Process-wide: it returns the whole free pages of every arena's free lists and of the main
 * arena's top, whoever freed them, and frees nothing in use (the tops of other threads' arenas:
 * FixTrimThreshold). src/idle-trim.ts decides when.
 */
export type HeapTrim = () => boolean;

/**
 * Keeps glibc's trim threshold at `bytes` from now on (mallopt(M_TRIM_THRESHOLD), native/heap.c):
 * each thread's arena then gives back the free memory at its top as it frees, which malloc_trim
 * cannot reach. Process-wide; true when set, false where the C library is not glibc.
 */
export type FixTrimThreshold = (bytes: number) => boolean;

/** glibc's own default trim threshold (DEFAULT_TRIM_THRESHOLD), the one it starts every process with. */
export const GLIBC_TRIM_THRESHOLD = 128 * 1024;

interface HeapAddon {
  trim?: unknown;
  fixTrimThreshold?: unknown;
}

let loaded: HeapAddon | null | undefined;

function addon(): HeapAddon | undefined {
  if (loaded === undefined) loaded = (loadAddon('memstore_heap') ?? null) as HeapAddon | null;
  return loaded ?? undefined;
}

/** The trim of this process's C allocator; undefined without the addon. Loaded at the first call. */
export function heapTrim(): HeapTrim | undefined {
  const trim = addon()?.trim;
  return typeof trim === 'function' ? (trim as HeapTrim) : undefined;
}

/** The setting of glibc's trim threshold; undefined without the addon (or one built before it had it). */
export function trimThresholdFixer(): FixTrimThreshold | undefined {
  const fix = addon()?.fixTrimThreshold;
  return typeof fix === 'function' ? (fix as FixTrimThreshold) : undefined;
}
