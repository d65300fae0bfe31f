import { loadAddon } from './native-addon.js';

/**
 * The C allocator's free memory given back to the system, through the small native addon in
 * `native/heap.c` when it is built (glibc's malloc_trim(0): about 1 ms in a process holding a 50k
 * store). Process-wide: it returns every arena's whole free pages, whoever freed them, and frees
 * nothing in use. src/idle-trim.ts decides when.
 */
export type HeapTrim = () => boolean;

let loaded: HeapTrim | null | undefined;

/** The trim of this process's C allocator; undefined without the addon. Loaded at the first call. */
export function heapTrim(): HeapTrim | undefined {
  if (loaded === undefined) {
    const addon = (loadAddon('memstore_heap') ?? {}) as { trim?: unknown };
    loaded = typeof addon.trim === 'function' ? (addon.trim as HeapTrim) : null;
  }
  return loaded ?? undefined;
}
