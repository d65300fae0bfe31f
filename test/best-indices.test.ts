import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { kernels } from '../src/kernels/index.js';
import { BestIndices } from '../src/scan/best-indices.js';
import { TopK } from '../src/scan/topk.js';
import { rng } from './helpers.js';

/** What a TopK of `count` keeps of every (scores[i], i), best first: the order BestIndices promises. */
function byTopK(scores: Float64Array, count: number): { order: number[]; scores: number[] } {
  const top = new TopK(Math.min(count, scores.length));
  for (let i = 0; i < scores.length; i++) top.push(scores[i]!, i);
  const n = top.sortBestFirst();
  return { order: Array.from({ length: n }, (_, i) => top.slotAt(i)), scores: Array.from({ length: n }, (_, i) => top.scoreAt(i)) };
}

function taken(scores: Float64Array, count: number, best = new BestIndices()): { found: number; order: number[]; scores: number[] } {
  const out = new Int32Array(Math.max(1, count));
  const outScores = new Float64Array(out.length);
  const found = best.take(scores, scores.length, count, out, outScores);
  const n = Math.max(0, found);
  return { found, order: Array.from(out.subarray(0, n)), scores: Array.from(outScores.subarray(0, n)) };
}

// Scores from few values (many ties, -0 beside 0) or from anywhere finite (spans from subnormal to huge).
const fewValues = fc.array(fc.constantFrom(-1, -0.5, -0, 0, 0.25, 0.5, 1), { minLength: 0, maxLength: 300 });
const anyFinite = fc.array(fc.double({ noNaN: true, noDefaultInfinity: true }), { minLength: 0, maxLength: 300 });
const cosines = fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: 0, maxLength: 800 });
// Crowds beside outliers: most scores within a hair of each other, a few far off either side.
const crowded = fc
  .tuple(fc.array(fc.double({ min: 0.5, max: 0.5 + 1e-9, noNaN: true }), { minLength: 1, maxLength: 400 }), fc.array(fc.constantFrom(-1e6, 1e6, 3, -3, 1e300, -1e300), { maxLength: 4 }), fc.nat())
  .map(([crowd, outliers, at]) => {
    const all = crowd.slice();
    for (const o of outliers) all.splice(at % (all.length + 1), 0, o);
    return all;
  });

/** Whether two different scores lie closer than BestIndices can bucket (where it may answer -1). */
function tooClose(values: readonly number[]): boolean {
  const sorted = [...new Set(values.map((v) => v + 0))].sort((a, b) => a - b);
  return sorted.some((v, i) => i > 0 && v - sorted[i - 1]! < 1e-300);
}

test('BestIndices: the same indices in the same order, and scores, as a TopK pushed every score (ties to the lower index)', () => {
  const best = new BestIndices();
  fc.assert(
    fc.property(fc.oneof(fewValues, anyFinite, cosines, crowded), fc.integer({ min: 0, max: 320 }), (values, count) => {
      const scores = Float64Array.from(values);
      const got = taken(scores, count, best);
      if (got.found === -1 && tooClose(values)) return;
      const want = byTopK(scores, count);
      assert.equal(got.found, want.order.length);
      assert.deepEqual(got.order, want.order);
      assert.deepEqual(got.scores.map((s) => s + 0), want.scores.map((s) => s + 0));
    }),
    { numRuns: 1000, seed: 5 },
  );
});

test('BestIndices: scores crowded beside an outlier are bucketed again until the count is met, and ordered (a native sort where a bucket crowds)', () => {
  const next = rng(3);
  const values = Array.from({ length: 2000 }, () => 0.25 + 1e-7 * next());
  values[700] = 50;
  values[1300] = -1e9;
  for (const count of [1, 2, 10, 147, 1999]) {
    const scores = Float64Array.from(values);
    assert.deepEqual(taken(scores, count).order, byTopK(scores, count).order, `count ${count}`);
  }
});

test('BestIndices: a span past float64 (scores near ±1.8e308) is bucketed by halves', () => {
  const scores = Float64Array.from([1.7e308, -1.7e308, 0, 1, -1, 1.7e308, 2]);
  assert.deepEqual(taken(scores, 4).order, byTopK(scores, 4).order);
});

test('BestIndices: scores a few subnormals apart cannot be bucketed: -1 (the caller ranks another way)', () => {
  assert.equal(new BestIndices().take(Float64Array.from([1, 0, 5e-324, 1e-323, 2]), 5, 3, new Int32Array(3)), -1);
});

test('BestIndices: every score equal takes the lowest indices in order', () => {
  const got = taken(new Float64Array(50).fill(0.3), 7);
  assert.deepEqual(got.order, [0, 1, 2, 3, 4, 5, 6]);
});

test('BestIndices: -0 and 0 are one score, ordered by index', () => {
  const got = taken(Float64Array.from([0, -0, 0, -1, -0]), 4);
  assert.deepEqual(got.order, [0, 1, 2, 4]);
});

/** takeWritten() over `scores`, written where scoresPointer() says, with the bounds the caller claims. */
function written(scores: Float64Array, count: number, least: number, most: number): number {
  const best = new BestIndices();
  try {
    const at = best.scoresPointer(scores.length);
    kernels().memory.f64().set(scores, at >> 3);
    return best.takeWritten(scores.length, count, least, most, new Int32Array(Math.max(1, count)));
  } finally {
    best.free();
  }
}

test('BestIndices: a NaN or an infinite score is refused with -1 (the caller ranks another way), by take() and by takeWritten()', () => {
  for (const odd of [Number.NaN, Infinity, -Infinity]) {
    const scores = Float64Array.from([0.1, 0.2, odd, 0.3]);
    assert.equal(new BestIndices().take(scores, 4, 2, new Int32Array(2)), -1, String(odd));
  }
  assert.equal(written(Float64Array.from([0.1, 0.2]), 1, Number.NaN, Number.NaN), -1);
  assert.equal(written(Float64Array.from([0.1, Infinity]), 1, 0.1, Infinity), -1);
  assert.equal(written(Float64Array.from([0.1, 0.3, 0.2]), 2, 0.1, 0.3), 2);
});

test('BestIndices: a count of 0, or past n, takes none, or all', () => {
  const scores = Float64Array.from([0.5, 0.9, 0.1]);
  assert.equal(new BestIndices().take(scores, 3, 0, new Int32Array(1)), 0);
  assert.deepEqual(taken(scores, 10).order, [1, 0, 2]);
});

test('BestIndices: too little room for the answer is a RangeError', () => {
  assert.throws(() => new BestIndices().take(Float64Array.from([1, 2, 3]), 3, 3, new Int32Array(2)), RangeError);
  assert.throws(() => new BestIndices().take(Float64Array.from([1, 2, 3]), 3, 2, new Int32Array(2), new Float64Array(1)), RangeError);
});
