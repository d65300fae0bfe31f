import assert from 'node:assert/strict';
import { MemstoreError, type MemstoreErrorCode } from '../../src/errors.js';
import { FaultFileLayer } from './fault-layer.js';

/** The shared set-up of the arena tests: a simulated disk, deterministic blobs, error assertions. */
export const STORE = '/store';

/** A simulated disk holding a durable, empty store directory. */
export async function freshDisk(seed = 1): Promise<FaultFileLayer> {
  const files = new FaultFileLayer({ seed });
  await files.mkdir(STORE);
  await files.syncDir('/');
  return files;
}

/** Deterministic bytes, different for every (length, seed). */
export function blob(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = (seed * 2654435761 + length) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export async function rejectsWith(promise: Promise<unknown>, code: MemstoreErrorCode, where?: { file?: string; offset?: number }): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof MemstoreError, `expected a MemstoreError, got ${String(e)}`);
    assert.equal(e.code, code);
    if (where?.file !== undefined) assert.equal(e.file, where.file);
    if (where?.offset !== undefined) assert.equal(e.offset, where.offset);
    return true;
  });
}
