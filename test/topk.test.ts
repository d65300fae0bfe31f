import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { TopK } from '../src/scan/topk.js';

type Entry = { score: number; slot: number };

/** The total order of a top-k: higher score, then lower slot. */
const byOrder = (a: Entry, b: Entry): number => b.score - a.score || a.slot - b.slot;

/** The `k` best of `entries` by the total order. */
function best(entries: readonly Entry[], k: number): Entry[] {
  return entries.slice().sort(byOrder).slice(0, k);
}

/** A top-k of `capacity` with every entry pushed. */
function pushed(capacity: number, entries: readonly Entry[]): TopK {
  const top = new TopK(capacity);
  for (const e of entries) top.push(e.score, e.slot);
  return top;
}

/** The first `n` entries `top` holds, in its order. */
function held(top: TopK, n: number): Entry[] {
  return Array.from({ length: n }, (_, i) => ({ score: top.scoreAt(i), slot: top.slotAt(i) }));
}

function kept(capacity: number, entries: readonly Entry[]): Entry[] {
  const top = pushed(capacity, entries);
  return held(top, top.sortBestFirst());
}

// Many ties (scores from a handful of values), pushed in any order: what a search with the cache
// off keeps (a heap of k) must be the first k of what the cache's larger pool keeps.
const pushes = fc
  .uniqueArray(fc.integer({ min: 0, max: 500 }), { minLength: 0, maxLength: 120 })
  .chain((slots) => fc.tuple(fc.constant(slots), fc.array(fc.integer({ min: 0, max: 4 }), { minLength: slots.length, maxLength: slots.length })))
  .map(([slots, scores]) => slots.map((slot, i) => ({ slot, score: scores[i]! / 4 })));

test('TopK keeps exactly the k best by (score, then lower slot), whatever the order of the pushes', () => {
  fc.assert(
    fc.property(pushes, fc.integer({ min: 1, max: 40 }), (entries, k) => {
      assert.deepEqual(kept(k, entries), best(entries, k));
    }),
    { numRuns: 500, seed: 7 },
  );
});

test('TopK: the first k of a larger heap are what a heap of k keeps (ties included)', () => {
  fc.assert(
    fc.property(pushes, fc.integer({ min: 1, max: 20 }), fc.integer({ min: 0, max: 60 }), (entries, k, extra) => {
      assert.deepEqual(kept(k + extra, entries).slice(0, k), kept(k, entries));
    }),
    { numRuns: 500, seed: 11 },
  );
});

test('TopK: sortBestFirst(first) sorts the best `first` as a heap of that size keeps them, and holds the rest after them', () => {
  fc.assert(
    fc.property(pushes, fc.integer({ min: 1, max: 60 }), fc.integer({ min: 0, max: 70 }), (entries, capacity, first) => {
      const top = pushed(capacity, entries);
      const n = top.sortBestFirst(first);
      const all = held(top, n);
      const expected = best(entries, capacity);
      assert.equal(n, expected.length);
      const sorted = Math.min(first, n);
      assert.deepEqual(all.slice(0, sorted), expected.slice(0, sorted));
      assert.deepEqual(all.slice(sorted).sort(byOrder), expected.slice(sorted));
    }),
    { numRuns: 500, seed: 13 },
  );
});

test('TopK: partitionBest(first) holds the best `first` ahead of the rest (each part as a set), and ends it', () => {
  fc.assert(
    fc.property(pushes, fc.integer({ min: 1, max: 60 }), fc.integer({ min: 0, max: 70 }), (entries, capacity, first) => {
      const top = pushed(capacity, entries);
      const n = top.partitionBest(first);
      const all = held(top, n);
      const expected = best(entries, capacity);
      assert.equal(n, expected.length);
      const ahead = Math.min(first, n);
      assert.deepEqual(all.slice(0, ahead).sort(byOrder), expected.slice(0, ahead));
      assert.deepEqual(all.slice(ahead).sort(byOrder), expected.slice(ahead));
      assert.throws(() => top.push(1, 0));
    }),
    { numRuns: 500, seed: 14 },
  );
});

test('TopK: a tie with the worst kept entry enters only from a lower slot', () => {
  const top = new TopK(2);
  top.push(1, 5);
  top.push(1, 9);
  assert.equal(top.admits(1), true, 'a tie may enter');
  top.push(1, 7);
  top.push(1, 12);
  top.sortBestFirst();
  assert.deepEqual([top.slotAt(0), top.slotAt(1)], [5, 7]);
});

test('TopK: admits() never refuses what would enter, pushes gated by it keep the same k best, and clear() makes it new', () => {
  fc.assert(
    fc.property(pushes, fc.integer({ min: 1, max: 30 }), (entries, k) => {
      const top = new TopK(k);
      for (let round = 0; round < 2; round++) {
        top.clear();
        for (const e of entries) {
          // What would be kept if pushed now must be admitted.
          const wouldEnter = best([...entries.slice(0, entries.indexOf(e) + 1)], k).some((x) => x.slot === e.slot);
          if (wouldEnter) assert.equal(top.admits(e.score), true);
          if (top.admits(e.score)) top.push(e.score, e.slot);
        }
        assert.equal(top.size, Math.min(k, entries.length));
        assert.deepEqual(top.sorted(), best(entries, k));
        const n = top.sortBestFirst();
        assert.deepEqual(Array.from({ length: n }, (_, i) => ({ score: top.scoreAt(i), slot: top.slotAt(i) })), best(entries, k));
      }
    }),
    { numRuns: 300 },
  );
});

test('TopK: with no room nothing enters, not even +Infinity; a push after sortBestFirst throws', () => {
  const none = new TopK(0);
  assert.equal(none.admits(Infinity), false);
  none.push(Infinity, 0);
  none.push(1, 1);
  assert.equal(none.size, 0);
  assert.equal(none.sortBestFirst(), 0);
  const one = new TopK(1);
  for (let slot = 0; slot < 10; slot++) one.push(slot % 3, slot);
  assert.equal(one.sortBestFirst(), 1);
  assert.deepEqual([one.scoreAt(0), one.slotAt(0)], [2, 2]);
  assert.throws(() => one.push(5, 0));
});

test('TopK: kthBest() is the k-th best score pushed so far (-Infinity before k pushes), and pushes may go on after it', () => {
  fc.assert(
    fc.property(pushes, fc.integer({ min: 1, max: 30 }), fc.integer({ min: 0, max: 120 }), (entries, k, cut) => {
      const top = new TopK(k);
      const at = Math.min(cut, entries.length);
      for (const e of entries.slice(0, at)) top.push(e.score, e.slot);
      const sofar = best(entries.slice(0, at), k);
      assert.equal(top.kthBest(), sofar.length < k ? -Infinity : sofar[k - 1]!.score);
      for (const e of entries.slice(at)) top.push(e.score, e.slot);
      const all = best(entries, k);
      assert.equal(top.kthBest(), all.length < k ? -Infinity : all[k - 1]!.score);
      assert.deepEqual(Array.from({ length: top.sortBestFirst() }, (_, i) => ({ score: top.scoreAt(i), slot: top.slotAt(i) })), all);
    }),
    { numRuns: 400, seed: 11 },
  );
  assert.equal(new TopK(0).kthBest(), -Infinity);
});

test('TopK: floor is what admits() compares with: -Infinity while empty, Infinity with no room', () => {
  const top = new TopK(2);
  assert.equal(top.floor, -Infinity);
  for (const [score, slot] of [[1, 0], [2, 1], [3, 2], [4, 3], [5, 4]] as const) top.push(score, slot);
  assert.ok(top.floor >= 2 && top.floor <= 4);
  assert.equal(top.admits(top.floor), true);
  assert.equal(top.admits(top.floor - 1e-9), false);
  assert.equal(new TopK(0).floor, Infinity);
});

test('TopK: meanBest() is the mean of the k best scores pushed so far (NaN before k pushes)', () => {
  fc.assert(
    fc.property(pushes, fc.integer({ min: 1, max: 30 }), (entries, k) => {
      const top = pushed(k, entries);
      const all = best(entries, k);
      if (all.length < k) assert.ok(Number.isNaN(top.meanBest()));
      else assert.ok(Math.abs(top.meanBest() - all.reduce((sum, e) => sum + e.score, 0) / k) < 1e-12);
    }),
    { numRuns: 300, seed: 13 },
  );
});

test('topk: copyTo copies the best n after sortBestFirst, in order, into typed arrays; n outside 0..size is a RangeError', () => {
  const top = new TopK(5);
  for (const [score, slot] of [[0.5, 3], [0.9, 1], [0.1, 7], [0.7, 2], [0.9, 0], [0.3, 9]] as const) top.push(score, slot);
  top.sortBestFirst(3);
  const slots = new Int32Array(3);
  const scores = new Float32Array(3);
  top.copyTo(3, slots, scores);
  assert.deepEqual([...slots], [0, 1, 2]);
  assert.deepEqual([...scores], [Math.fround(0.9), Math.fround(0.9), Math.fround(0.7)]);
  top.copyTo(0, new Int32Array(0), new Float32Array(0));
  assert.throws(() => top.copyTo(6, new Int32Array(6), new Float32Array(6)), RangeError);
  assert.throws(() => top.copyTo(-1, new Int32Array(1), new Float32Array(1)), RangeError);
});

test('TopK with another tie order keeps the k best by (score, then that order), whatever the order of the pushes', () => {
  // A tie order unlike slot order (a search orders equal scores by id, which slots do not follow).
  const rank = (slot: number) => (slot * 7919) % 503;
  const byRank = (a: number, b: number) => rank(a) < rank(b);
  fc.assert(
    fc.property(pushes, fc.integer({ min: 1, max: 40 }), (entries, k) => {
      const top = new TopK(k, byRank);
      for (const e of entries) top.push(e.score, e.slot);
      const n = top.sortBestFirst();
      const got = Array.from({ length: n }, (_, i) => ({ score: top.scoreAt(i), slot: top.slotAt(i) }));
      const want = entries
        .slice()
        .sort((a, b) => b.score - a.score || rank(a.slot) - rank(b.slot))
        .slice(0, k);
      assert.deepEqual(got, want);
    }),
    { numRuns: 500, seed: 11 },
  );
});
