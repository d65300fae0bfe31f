import assert from 'node:assert/strict';
import { MemStore, type MemoryRecord, type OpenOptions, type SearchHit, type SearchOptions } from '../../src/index.js';
import { tempDir } from '../helpers.js';

/**
 * The same store twice, with the lookaside cache and without it (the oracle): the same writes go to
 * both, and every search must answer hit for hit alike (ids, scores by Object.is, texts, metadata).
 */
export interface CachedPair {
  cached: MemStore;
  plain: MemStore;
  /** The same writes on both. */
  add(records: MemoryRecord[]): Promise<void>;
  del(ids: string[]): Promise<void>;
  /** The same search on both; the answers must be the same. */
  check(q: Float32Array, options: SearchOptions, where: string): Promise<SearchHit[]>;
  close(): Promise<void>;
}

export async function openPair(options: OpenOptions, cache: OpenOptions['cache'] = {}): Promise<CachedPair> {
  const cached = await MemStore.open(tempDir(), { durability: 'none', ...options, cache });
  const plain = await MemStore.open(tempDir(), { durability: 'none', ...options, cache: false });
  return {
    cached,
    plain,
    async add(records) {
      await cached.add(records);
      await plain.add(records);
    },
    async del(ids) {
      assert.equal(await cached.delete(ids), await plain.delete(ids));
    },
    async check(q, o, where) {
      const got = await cached.search(q, o);
      assert.deepEqual(got, await plain.search(q, o), where);
      return got;
    },
    async close() {
      await cached.close();
      await plain.close();
    },
  };
}
