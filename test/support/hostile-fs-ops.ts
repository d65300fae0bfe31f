import type { MemoryRecord, OpenOptions } from '../../src/index.js';
import { rng } from '../../src/random.js';

/** The store hostile-fs-child.ts writes (its codec given apart): pages from 700 vectors, of at most 40. */
export const HOSTILE_FS_CHILD = { dim: 40, metric: 'dot', trainSize: 30, checkpointBytes: 64 * 1024, pages: { from: 700, maxPage: 40 } } as const satisfies OpenOptions;

/** Batch `i` of the child for `seed`: 40 new records. */
export function hostileFsBatch(seed: number, i: number): MemoryRecord[] {
  const next = rng(seed * 7919 + i);
  return Array.from({ length: 40 }, (_, j) => ({ id: `s${seed}-${i}-${j}`, vector: Float32Array.from({ length: HOSTILE_FS_CHILD.dim }, () => next() * 2 - 1) }));
}

/** What the child deletes after batch `i`: every third batch, 25 records of the batch before. */
export function hostileFsDeletes(seed: number, i: number): string[] {
  return i % 3 === 2 ? Array.from({ length: 25 }, (_, j) => `s${seed}-${i - 1}-${j}`) : [];
}
