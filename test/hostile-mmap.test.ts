/**
 * Hostile cases around the memory-mapped read path:
 *
 * 1. close() called while compact() runs: compact() finishes, or rejects with CLOSED, and the store
 *    reopens whole. close() once closed the index file, LMDB and the arenas under the compaction
 *    (it waited for accepted writes, not for the maintenance gate compact() holds), and compact()
 *    rejected with a raw EBADF, a TypeError or an IO error, by the step close() landed in. Both
 *    `mmap` settings.
 * 2. stats().mappedBytes of a store whose directory path holds a newline: /proc/self/smaps writes
 *    it as \012 in a mapping's path, and the store's path is compared in that form.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { MemStore, MemstoreError } from '../src/index.js';
import { canMapFiles } from '../io/mmap.js';
import { rng, tempDir } from './helpers.js';

const DIM = 64;

function vectors(n: number, seed: number): Float32Array[] {
  const next = rng(seed);
  return Array.from({ length: n }, () => Float32Array.from({ length: DIM }, () => next() * 2 - 1));
}

describe('close() while compact() runs', () => {
  const data = vectors(6000, 1);
  for (const mmap of [true, false]) {
    for (const step of [2, 3, 4, 5, 6]) {
      it(`mmap: ${mmap}, close() after compaction step ${step}: compact() resolves or rejects with a MemstoreError (CLOSED)`, async () => {
        const dir = tempDir();
        const store = await MemStore.open(dir, { dim: DIM, checkpointBytes: 1 << 20, mmap });
        await store.add(data.map((vector, i) => ({ id: `v${i}`, vector, text: `t${i}` })));
        await store.delete(data.slice(0, 3000).map((_, i) => `v${i * 2}`));
        let closing: Promise<void> | undefined;
        let failure: unknown;
        await store
          .compact({
            onProgress: (done) => {
              if (done === step) closing = store.close();
            },
          })
          .catch((e: unknown) => {
            failure = e;
          });
        await closing;
        if (failure !== undefined) {
          const e = failure as Error & { code?: unknown };
          assert.ok(failure instanceof MemstoreError, `compact() rejected with a ${e.constructor.name} (code ${String(e.code)}): ${e.message}`);
          assert.equal(failure.code, 'CLOSED', `compact() rejected with ${failure.code}: ${failure.message}`);
        }
        const again = await MemStore.open(dir, { mmap });
        assert.equal(again.stats().count, 3000);
        await again.close();
      });
    }
  }
});

describe('stats().mappedBytes', { skip: canMapFiles() && process.platform === 'linux' ? false : 'needs the addon and /proc/self/smaps' }, () => {
  it('counts the mapped segments of a store whose path holds a newline', async () => {
    const dir = join(tempDir(), 'line\nbreak');
    const data = vectors(20000, 2);
    let store = await MemStore.open(dir, { dim: DIM, cache: false });
    await store.add(data.map((vector, i) => ({ id: `v${i}`, vector, text: `t${i}` })));
    await store.close();
    store = await MemStore.open(dir, { cache: false });
    for (const q of data.slice(0, 50)) await store.search(q, { k: 10 });
    const stats = store.stats();
    await store.close();
    assert.ok(stats.mappedFiles > 0, 'the searches read through maps');
    assert.ok((stats.mappedBytes ?? 0) > 0, `mappedBytes is ${stats.mappedBytes} with ${stats.mappedFiles} segments mapped and read`);
  });
});
