import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { CentroidRouter, halfNormSq } from '../src/index/router.js';
import { rangeComplement } from '../src/space/range-complement.js';
import { TopK } from '../src/scan/topk.js';
import { dot, squaredDistance } from '../src/vector.js';
import { gaussian, rng } from './helpers.js';

/**
 * The centroid router of the page-clustered index (src/index/router.ts): its answer is the exact
 * nearest pages, in the order a brute-force pass over the same centroids gives, after any sequence
 * of adds, replacements and swap-removals.
 */

/** The `n` best pages by brute force in float64: score (higher is closer) descending, ties to the lower page. */
function bruteForce(centroids: Float32Array[], q: Float32Array, metric: 'dot' | 'l2', n: number): number[] {
  return centroids
    .map((c, page) => ({ page, score: metric === 'dot' ? dot(q, c) : -squaredDistance(q, c) }))
    .sort((a, b) => b.score - a.score || a.page - b.page)
    .slice(0, n)
    .map((x) => x.page);
}

function pagesOf(top: TopK): number[] {
  const n = top.sortBestFirst();
  return Array.from({ length: n }, (_, i) => top.slotAt(i));
}

/**
 * nearestOrder()'s pages and scores, checked against nearest()'s through a TopK of `n` (the same
 * pages, in the same order, with the same scores), then returned.
 */
function orderOf(router: CentroidRouter, q: Float32Array, n: number, offset = 0): number[] {
  const top = new TopK(n);
  router.nearest(q, top, offset);
  const count = top.sortBestFirst();
  const order = new Int32Array(Math.max(1, n));
  const scores = new Float64Array(order.length);
  assert.equal(router.nearestOrder(q, n, order, offset, scores), count);
  const want = Array.from({ length: count }, (_, i) => [top.slotAt(i), top.scoreAt(i)]);
  assert.deepEqual(Array.from({ length: count }, (_, i) => [order[i]!, scores[i]!]), want);
  return Array.from(order.subarray(0, count));
}

/** Scores in float32 (the kernel's) and float64 (brute force) may order near-ties apart: compare the sets' scores instead. */
function sameNearest(got: number[], want: number[], centroids: Float32Array[], q: Float32Array, metric: 'dot' | 'l2'): void {
  const score = (p: number) => (metric === 'dot' ? dot(q, centroids[p]!) : -squaredDistance(q, centroids[p]!));
  assert.equal(got.length, want.length);
  for (let i = 0; i < got.length; i++) {
    assert.ok(Math.abs(score(got[i]!) - score(want[i]!)) <= 1e-4 * Math.max(1, Math.abs(score(want[i]!))), `rank ${i}: page ${got[i]} against ${want[i]}`);
  }
}

/** Applies an add, set or remove (a no-op on an empty router) to the router and to its model, the centroids by page; false for any other op. */
function mutate(router: CentroidRouter, model: Float32Array[], op: string, pick: number, v: Float32Array): boolean {
  if (op === 'add') {
    assert.equal(router.add(v), model.length);
    model.push(v);
  } else if (op === 'set' && model.length > 0) {
    router.set(pick % model.length, v);
    model[pick % model.length] = v;
  } else if (op === 'remove' && model.length > 0) {
    const page = pick % model.length;
    router.removeSwap(page);
    const last = model.pop()!;
    if (page < model.length) model[page] = last;
  } else {
    return op === 'set' || op === 'remove';
  }
  return true;
}

test('router: the nearest pages are the exact nearest centroids, for both metrics, at dimensions that need padding', () => {
  for (const metric of ['dot', 'l2'] as const) {
    for (const dim of [1, 15, 16, 100, 513]) {
      const next = rng(dim);
      const centroids = Array.from({ length: 300 }, () => Float32Array.from({ length: dim }, () => gaussian(next)));
      const router = new CentroidRouter(dim, metric);
      centroids.forEach((c, i) => assert.equal(router.add(c), i));
      assert.equal(router.size, 300);
      const top = new TopK(16);
      for (let t = 0; t < 20; t++) {
        const q = Float32Array.from({ length: dim }, () => gaussian(next));
        router.nearest(q, top);
        sameNearest(pagesOf(top), bruteForce(centroids, q, metric, 16), centroids, q, metric);
        sameNearest(orderOf(router, q, 16), bruteForce(centroids, q, metric, 16), centroids, q, metric);
      }
      router.free();
    }
  }
});

test('router: after random adds, replacements and swap-removals it answers as brute force over the centroids it holds, queries by its metric and vectors by distance', () => {
  const dim = 24;
  fc.assert(
    fc.property(
      // Centroids of very different norms (scale): where the dot product and the distance disagree.
      fc.array(fc.record({ op: fc.constantFrom('add', 'add', 'set', 'remove', 'query', 'place'), pick: fc.nat(), seed: fc.nat(), scale: fc.constantFrom(0.1, 1, 30) }), { maxLength: 120 }),
      fc.constantFrom('dot' as const, 'l2' as const),
      fc.integer({ min: 1, max: 12 }),
      (ops, metric, n) => {
        const router = new CentroidRouter(dim, metric);
        const model: Float32Array[] = [];
        const top = new TopK(n);
        try {
          for (const { op, pick, seed, scale } of ops) {
            const next = rng(seed + 1);
            const v = Float32Array.from({ length: dim }, () => scale * gaussian(next));
            if (mutate(router, model, op, pick, v)) {
              assert.equal(router.size, model.length);
            } else if (op === 'query') {
              router.nearest(v, top);
              sameNearest(pagesOf(top), bruteForce(model, v, metric, n), model, v, metric);
            } else {
              router.nearestByDistance(v, top);
              sameNearest(pagesOf(top), bruteForce(model, v, 'l2', n), model, v, 'l2');
            }
          }
          model.forEach((c, page) => assert.deepEqual(router.centroid(page), c));
        } finally {
          router.free();
        }
      },
    ),
    { numRuns: 150 },
  );
});

test('router: fewer pages than asked gives all of them; an empty router gives none; wrong shapes and pages are RangeErrors', () => {
  const router = new CentroidRouter(8, 'dot');
  const top = new TopK(5);
  router.nearest(new Float32Array(8), top);
  assert.equal(top.size, 0);
  router.add(Float32Array.of(1, 0, 0, 0, 0, 0, 0, 0));
  router.add(Float32Array.of(0, 1, 0, 0, 0, 0, 0, 0));
  router.nearest(Float32Array.of(0, 2, 0, 0, 0, 0, 0, 0), top);
  assert.deepEqual(pagesOf(top), [1, 0]);
  assert.throws(() => router.add(new Float32Array(7)), RangeError);
  assert.throws(() => router.nearest(new Float32Array(9), top), RangeError);
  assert.throws(() => router.set(2, new Float32Array(8)), RangeError);
  assert.throws(() => router.removeSwap(-1), RangeError);
  assert.throws(() => router.centroid(1.5), RangeError);
  router.free();
  assert.throws(() => router.nearest(new Float32Array(8), top));
});

test('router: equal scores go to the lower page, as the scan orders ties', () => {
  const router = new CentroidRouter(16, 'dot');
  const same = Float32Array.from({ length: 16 }, (_, i) => (i === 3 ? 1 : 0));
  for (let i = 0; i < 10; i++) router.add(same);
  const top = new TopK(4);
  router.nearest(same, top);
  assert.deepEqual(pagesOf(top), [0, 1, 2, 3]);
  assert.deepEqual(orderOf(router, same, 4), [0, 1, 2, 3]);
  router.free();
});

test('router: nearestOrder() picks as nearest() does when scores overflow float32 (infinite, or NaN: its fallback), and when few pages are asked of many', () => {
  const next = rng(41);
  const router = new CentroidRouter(8, 'dot');
  for (let i = 0; i < 400; i++) router.add(Float32Array.from({ length: 8 }, () => gaussian(next)));
  for (const n of [1, 3, 50, 399, 400, 500]) orderOf(router, Float32Array.from({ length: 8 }, () => gaussian(next)), n);
  // Centroids past float32's range for products: their scores are ±Infinity, or NaN where +∞ and −∞ meet.
  router.set(5, Float32Array.from({ length: 8 }, (_, i) => (i === 0 ? 3e38 : 0)));
  router.set(9, Float32Array.from({ length: 8 }, (_, i) => (i < 2 ? 3e38 * (i === 0 ? 1 : -1) : 0)));
  for (const n of [1, 4, 20]) {
    orderOf(router, Float32Array.from({ length: 8 }, (_, i) => (i === 0 ? 1e10 : 0)), n);
    orderOf(router, Float32Array.from({ length: 8 }, (_, i) => (i < 2 ? 1e10 : 0)), n);
  }
  router.free();
});

/** `rows` x `cols` with orthonormal rows (Gram–Schmidt over Gaussian rows), as PCA's axes and the rq rotation are. */
function orthonormalRows(rows: number, cols: number, next: () => number): Float64Array[] {
  const out: Float64Array[] = [];
  while (out.length < rows) {
    const r = Float64Array.from({ length: cols }, () => gaussian(next));
    for (const o of out) {
      let d = 0;
      for (let i = 0; i < cols; i++) d += r[i]! * o[i]!;
      for (let i = 0; i < cols; i++) r[i] = r[i]! - d * o[i]!;
    }
    const n = Math.hypot(...r);
    if (n > 1e-6) out.push(r.map((x) => x / n));
  }
  return out;
}

function transpose(rows: Float64Array[]): Float64Array[] {
  return Array.from({ length: rows[0]!.length }, (_, c) => Float64Array.from(rows, (r) => r[c]!));
}

test('router that widens (a dot store\'s): queries rank pages by ⟨q, c⟩ plus ‖q‖ times 3 / √dim of the page\'s spread (its members\' root mean square distance from the centroid), after adds, sets and swap-removals; vectors are still placed by distance; only a dot router without a sphere widens', () => {
  fc.assert(
    fc.property(
      // Spreads about the size of the dot products' spread between pages, where the share decides the order.
      fc.array(fc.record({ op: fc.constantFrom('add', 'add', 'set', 'remove', 'query', 'place'), pick: fc.nat(), seed: fc.nat(), scale: fc.constantFrom(1, 1.3, 30), reach: fc.constantFrom(0, 0.1, 0.3, 0.5, 1) }), { maxLength: 100 }),
      fc.integer({ min: 1, max: 12 }),
      (ops, n) => {
        const dim = 20;
        const router = new CentroidRouter(dim, 'dot', undefined, true);
        const model: Float32Array[] = [];
        const spreads: number[] = [];
        const top = new TopK(n);
        try {
          for (const { op, pick, seed, scale, reach } of ops) {
            const next = rng(seed + 3);
            const v = Float32Array.from({ length: dim }, () => scale * gaussian(next));
            // A spread on the scale of the centroid's norm (none too).
            const spread = Math.sqrt(dot(v, v)) * reach;
            if (op === 'add') {
              assert.equal(router.add(v, spread), model.length);
              model.push(v);
              spreads.push(spread);
            } else if (op === 'set' && model.length > 0) {
              router.set(pick % model.length, v, spread);
              model[pick % model.length] = v;
              spreads[pick % model.length] = spread;
            } else if (op === 'remove' && model.length > 0) {
              const page = pick % model.length;
              router.removeSwap(page);
              const last = model.pop()!;
              const lastSpread = spreads.pop()!;
              if (page < model.length) {
                model[page] = last;
                spreads[page] = lastSpread;
              }
            } else if (op === 'place') {
              router.nearestByDistance(v, top);
              sameNearest(pagesOf(top), bruteForce(model, v, 'l2', n), model, v, 'l2');
            } else if (op === 'query') {
              const qn = Math.sqrt(2 * halfNormSq(v));
              const widened = (p: number) => dot(v, model[p]!) + (qn * 3 * spreads[p]!) / Math.sqrt(dim);
              const want = model.map((_, p) => p).sort((a, b) => widened(b) - widened(a) || a - b).slice(0, n);
              const got = orderOf(router, v, n);
              assert.equal(got.length, want.length);
              got.forEach((p, i) => assert.ok(Math.abs(widened(p) - widened(want[i]!)) <= 1e-4 * Math.max(1, Math.abs(widened(want[i]!))), `rank ${i}: page ${p} against ${want[i]}`));
            }
          }
        } finally {
          router.free();
        }
      },
    ),
    { numRuns: 150 },
  );
  assert.throws(() => new CentroidRouter(8, 'l2', undefined, true), RangeError);
  assert.throws(() => new CentroidRouter(8, 'dot', { center: new Float32Array(8), centerSq: 0 }, true), RangeError);
});

test('router with a sphere: queries rank by the cosine of the input query to each centroid in the input space (μ + Wᵀc\'), after random adds, replacements and swap-removals; vectors are still placed by distance', () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ op: fc.constantFrom('add', 'add', 'set', 'remove', 'query', 'place'), pick: fc.nat(), seed: fc.nat(), scale: fc.constantFrom(0.05, 0.3, 1) }), { maxLength: 80 }),
      // [in, out]; out > in: a padded rotation, orthonormal columns only (the router then gets W and μ).
      fc.constantFrom([12, 12], [12, 5], [17, 16], [5, 12], [3, 16]),
      fc.integer({ min: 1, max: 10 }),
      fc.nat(),
      (ops, [inDim, outDim], n, modelSeed) => {
        const next = rng(modelSeed + 7);
        const padded = outDim! > inDim!;
        const w = padded ? transpose(orthonormalRows(inDim!, outDim!, next)) : orthonormalRows(outDim!, inDim!, next);
        // A mean of unit vectors: inside the unit ball, as a cosine store's is.
        const mu = Float64Array.from({ length: inDim! }, () => gaussian(next));
        const muScale = 0.9 * next() / Math.hypot(...mu);
        for (let i = 0; i < inDim!; i++) mu[i] = mu[i]! * muScale;
        const project = (x: ArrayLike<number>) => Float32Array.from(w, (row) => row.reduce((s, a, i) => s + a * x[i]!, 0));
        const inInput = (c: Float32Array) => Float64Array.from(mu, (m, i) => m + w.reduce((s, row, r) => s + row[i]! * c[r]!, 0));
        const complement = padded ? rangeComplement(Float32Array.from(w.flatMap((row) => [...row])), outDim!, inDim!).complement : undefined;
        const router = new CentroidRouter(outDim!, 'dot', { center: project(mu), centerSq: mu.reduce((s, m) => s + m * m, 0), ...(complement === undefined ? {} : { complement }) });
        const model: Float32Array[] = [];
        const top = new TopK(n);
        try {
          for (const { op, pick, seed, scale } of ops) {
            const g = rng(seed + 1);
            const v = Float32Array.from({ length: outDim! }, () => scale * gaussian(g));
            if (mutate(router, model, op, pick, v)) continue;
            if (op === 'place') {
              router.nearestByDistance(v, top);
              sameNearest(pagesOf(top), bruteForce(model, v, 'l2', n), model, v, 'l2');
              continue;
            }
            const q = Float64Array.from({ length: inDim! }, () => gaussian(g));
            const qn = Math.hypot(...q);
            for (let i = 0; i < inDim!; i++) q[i] = q[i]! / qn;
            const cosine = (c: Float32Array) => {
              const x = inInput(c);
              const nx = Math.hypot(...x);
              return nx === 0 ? 0 : x.reduce((s, a, i) => s + a * q[i]!, 0) / nx;
            };
            router.nearest(project(q), top, mu.reduce((s, m, i) => s + m * q[i]!, 0));
            const got = pagesOf(top);
            assert.deepEqual(orderOf(router, project(q), n, mu.reduce((s, m, i) => s + m * q[i]!, 0)), got);
            const want = model.map((c, page) => ({ page, s: cosine(c) })).sort((a, b) => b.s - a.s || a.page - b.page).slice(0, n);
            assert.equal(got.length, want.length);
            got.forEach((page, i) => assert.ok(Math.abs(cosine(model[page]!) - want[i]!.s) <= 1e-4, `rank ${i}: page ${page} (cosine ${cosine(model[page]!)}) against ${want[i]!.page} (${want[i]!.s})`));
          }
        } finally {
          router.free();
        }
      },
    ),
    {
      numRuns: 200,
      // A swap-removal that must carry the moved centroid's norm (found by a mutant that did not).
      examples: [[[{ op: 'add', pick: 0, seed: 0, scale: 0.05 }, { op: 'add', pick: 0, seed: 0, scale: 0.05 }, { op: 'add', pick: 0, seed: 0, scale: 1 }, { op: 'remove', pick: 0, seed: 0, scale: 0.05 }, { op: 'query', pick: 0, seed: 0, scale: 0.05 }], [12, 12], 1, 863880836]],
    },
  );
});

test('router with a sphere: a center of another dimension, or a sphere on an l2 router, is a RangeError', () => {
  assert.throws(() => new CentroidRouter(8, 'dot', { center: new Float32Array(7), centerSq: 0 }), RangeError);
  assert.throws(() => new CentroidRouter(8, 'l2', { center: new Float32Array(8), centerSq: 0 }), RangeError);
});

test('rangeComplement: an orthonormal basis of what the columns of W leave out (none for orthonormal rows; the padding of a tall isometry, alone or times orthonormal rows)', () => {
  const next = rng(3);
  const flat = (rows: Float64Array[]) => Float32Array.from(rows.flatMap((r) => [...r]));
  const times = (a: Float64Array[], b: Float64Array[]) => a.map((row) => Float64Array.from({ length: b[0]!.length }, (_, j) => row.reduce((s, x, k) => s + x * b[k]![j]!, 0)));
  const cases: { name: string; w: Float64Array[]; range: number }[] = [
    { name: 'orthonormal rows (PCA, 6 of 20)', w: orthonormalRows(6, 20, next), range: 6 },
    { name: 'a square rotation (16)', w: orthonormalRows(16, 16, next), range: 16 },
    { name: 'a tall isometry (3 padded to 16)', w: transpose(orthonormalRows(3, 16, next)), range: 3 },
    { name: 'a tall isometry (12 padded to 16) times orthonormal rows (12 of 40)', w: times(transpose(orthonormalRows(12, 16, next)), orthonormalRows(12, 40, next)), range: 12 },
  ];
  for (const { name, w, range } of cases) {
    const rows = w.length;
    const cols = w[0]!.length;
    const got = rangeComplement(flat(w), rows, cols);
    assert.equal(got.range, range, name);
    const basis = Array.from({ length: got.complement.length / rows }, (_, i) => got.complement.subarray(i * rows, (i + 1) * rows));
    assert.equal(basis.length, rows - range, name);
    for (const [i, v] of basis.entries()) {
      for (const [j, u] of basis.entries()) assert.ok(Math.abs(dot(v, u) - (i === j ? 1 : 0)) < 1e-5, `${name}: basis ${i}, ${j}`);
      for (let c = 0; c < cols; c++) assert.ok(Math.abs(w.reduce((s, row, r) => s + row[c]! * v[r]!, 0)) < 1e-5, `${name}: basis ${i} against column ${c}`);
    }
  }
  assert.throws(() => rangeComplement(new Float32Array(5), 2, 3), RangeError);
});
