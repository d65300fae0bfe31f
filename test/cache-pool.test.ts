import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LookasideCache, type CacheQuery } from '../src/cache/lookaside.js';
import { getCodec } from '../src/codec/index.js';
import { FlatIndex } from '../src/index/flat-index.js';
import { rng } from '../src/random.js';
import type { ScanQuery } from '../src/scan/code-blocks.js';
import { ScorePool } from '../src/scan/score-pool.js';
import { TopK } from '../src/scan/topk.js';

const DIM = 32;

/** What SearchPath does for a search that misses: the scan with a pool at the cache's reach, then remember(). */
function missAndRemember(cache: LookasideCache<string>, index: FlatIndex, vector: Float32Array, candidates: number) {
  const scan: ScanQuery = { vector, metric: 'cosine', int8Query: true };
  const q: CacheQuery = { query: vector, key: 'k', filter: undefined, candidates, scanQuery: () => scan, kernelForm: () => index.kernelForm(scan), scope: () => undefined };
  const pool = new ScorePool();
  pool.reset(cache.poolReach(q), cache.poolRoom(q));
  const top = new TopK(candidates);
  index.search(scan, top, { pool });
  top.sortBestFirst(candidates);
  // Every score, to check the entry's bound against.
  const all = new TopK(index.size);
  index.search(scan, all, {});
  const scores = all.sorted();
  return { entry: cache.remember(q, scan, index, top, pool), scores, reach: cache.poolReach(q) };
}

test('cache pools: the first miss measures the reach, later pools stay near poolSize() and never pass twice it, and every vector outside scores at most the bound', () => {
  const random = rng(3);
  const index = new FlatIndex(getCodec('int8'), DIM, false);
  const vectors: Float32Array[] = [];
  for (let i = 0; i < 5000; i++) {
    const v = Float32Array.from({ length: DIM }, () => random() * 2 - 1);
    vectors.push(v);
    index.put(`v${i}`, v);
  }
  try {
    const cache = new LookasideCache<string>({ entries: 8, pool: 2.5, bytes: 1 << 22, near: true });
    const candidates = 40;
    const wanted = cache.poolSize(candidates);
    const sizes: number[] = [];
    for (let i = 0; i < 60; i++) {
      const query = Float32Array.from({ length: DIM }, () => random() * 2 - 1);
      const { entry, scores, reach } = missAndRemember(cache, index, query, candidates);
      const members = new Set(Array.from(entry.slots.subarray(0, entry.size)));
      if (i === 0) {
        // Nothing known yet: the scan took everything and the best `wanted` were kept.
        assert.equal(entry.size, wanted);
        assert.equal(entry.bound, scores[wanted]!.score);
      }
      assert.ok(Number.isFinite(reach) && reach > 0, `reach ${reach}`);
      assert.ok(entry.size <= 2 * wanted, `pool of ${entry.size}`);
      for (const { slot, score } of scores) if (!members.has(slot)) assert.ok(score <= entry.bound, `slot ${slot} scores ${score} above the bound ${entry.bound}`);
      for (const { slot } of scores.slice(0, candidates)) assert.ok(members.has(slot), 'the candidates are in the pool');
      sizes.push(entry.size);
    }
    const later = sizes.slice(10).sort((a, b) => a - b);
    const median = later[later.length >> 1]!;
    assert.ok(median >= wanted / 2 && median <= 2 * wanted, `median pool ${median}, wanted ${wanted}`);
  } finally {
    index.free();
  }
});

test('score pools: resetBelow(drop) collects every vector within drop of the k-th best score (in score units), holds at most room + 1, and refuses a negative or NaN drop', () => {
  const pool = new ScorePool();
  pool.resetBelow(0.25, 8);
  pool.setLine(0.5, 0.9);
  assert.equal(pool.line, 0.25);
  // The spread is still measured (the cache's reach adapts from it), but does not move the line.
  assert.ok(Math.abs(pool.spread - 0.4) < 1e-12);
  // Fewer than k accepted: no k-th best, everything is collected.
  pool.setLine(-Infinity, Number.NaN);
  assert.equal(pool.line, -Infinity);
  // reset() goes back to lines measured in spreads.
  pool.reset(2, 8);
  pool.setLine(0.5, 0.75);
  assert.equal(pool.line, 0);
  for (const bad of [-1e-9, Number.NaN]) assert.throws(() => pool.resetBelow(bad, 8), RangeError);
  pool.resetBelow(0, 2);
  for (let slot = 0; slot < 5; slot++) pool.add(slot, slot / 10);
  assert.equal(pool.collected, 5);
  assert.equal(pool.overflowed, true);
});
