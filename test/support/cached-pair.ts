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

/** The same answer: the same ids, scores within 1e-6 (float32 rounding of one computation done twice), texts and metadata. */
export function sameAnswer(a: SearchHit[], b: SearchHit[], where: string): void {
  assert.deepEqual(
    a.map((h) => h.id),
    b.map((h) => h.id),
    `${where}: ids`,
  );
  for (const [i, h] of a.entries()) {
    assert.ok(Math.abs(h.score - b[i]!.score) <= 1e-6, `${where}: score of ${h.id} ${h.score} vs ${b[i]!.score}`);
    assert.equal(h.text, b[i]!.text, `${where}: text of ${h.id}`);
    assert.deepEqual(h.meta, b[i]!.meta, `${where}: meta of ${h.id}`);
  }
}

/** How openPair() makes and compares its two stores. */
export interface PairOptions {
  /** The directories of the cached store and the plain one (to reopen a pair). @default two new temporary directories */
  readonly dirs?: readonly [string, string];
  /** How check() compares the two answers. @default hit for hit alike (assert.deepEqual) */
  readonly same?: (got: SearchHit[], want: SearchHit[], where: string) => void;
}

export async function openPair(options: OpenOptions, cache: OpenOptions['cache'] = {}, pair: PairOptions = {}): Promise<CachedPair> {
  const [cachedDir, plainDir] = pair.dirs ?? [tempDir(), tempDir()];
  const same = pair.same ?? ((got, want, where) => assert.deepEqual(got, want, where));
  const cached = await MemStore.open(cachedDir, { durability: 'none', ...options, cache });
  const plain = await MemStore.open(plainDir, { durability: 'none', ...options, cache: false });
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
      same(got, await plain.search(q, o), where);
      return got;
    },
    async close() {
      await cached.close();
      await plain.close();
    },
  };
}
