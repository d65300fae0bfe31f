import type { MemoryRecord, OpenOptions } from '../../src/index.js';
import { rng } from '../../src/random.js';

/** The store the rq kill -9 child writes: small batches reach trainSize within a few acks. */
export const RQ_CHILD_OPTIONS = { dim: 24, metric: 'l2', codec: 'rq2', trainSize: 20, checkpointBytes: 16 * 1024, pages: false } as const satisfies OpenOptions;

/** Batch `i` of the child for `seed`: 3 records, one of them an upsert of an earlier id once there are some. */
export function rqChildBatch(seed: number, i: number): MemoryRecord[] {
  const next = rng(seed * 7919 + i);
  return Array.from({ length: 3 }, (_, j) => {
    const id = j === 2 && i > 0 ? `r${i - 1}-${Math.floor(next() * 3)}` : `r${i}-${j}`;
    return { id, vector: Float32Array.from({ length: RQ_CHILD_OPTIONS.dim }, () => next() * 2 - 1), text: `batch ${i} record ${j}` };
  });
}
