import assert from 'node:assert/strict';
import { test } from 'node:test';
import { kmeans } from '../src/index/kmeans.js';
import { rng } from '../src/random.js';
import { gaussian } from './helpers.js';

/** `clusters` blobs of `per` points in `dim` dimensions, centers far apart, points in blob order. */
function blobs(clusters: number, per: number, dim: number, seed: number, unit = false): Float32Array {
  const random = rng(seed);
  const out = new Float32Array(clusters * per * dim);
  for (let c = 0; c < clusters; c++) {
    const center = Array.from({ length: dim }, () => gaussian(random) * 10);
    for (let p = 0; p < per; p++) {
      const at = (c * per + p) * dim;
      let length = 0;
      for (let j = 0; j < dim; j++) {
        out[at + j] = center[j]! + gaussian(random) * 0.3;
        length += out[at + j]! ** 2;
      }
      if (unit) for (let j = 0; j < dim; j++) out[at + j] = out[at + j]! / Math.sqrt(length);
    }
  }
  return out;
}

for (const metric of ['l2', 'cosine'] as const) {
  test(`kmeans (${metric}): finds planted clusters, one cluster per blob`, () => {
    const per = 100;
    const result = kmeans(blobs(8, per, 16, 3, metric === 'cosine'), 16, { k: 8, metric, seed: 7 });
    const seen = new Set<number>();
    for (let c = 0; c < 8; c++) {
      const label = result.assignment[c * per]!;
      for (let p = 0; p < per; p++) assert.equal(result.assignment[c * per + p], label, `blob ${c} is split`);
      assert.ok(!seen.has(label), `blobs share cluster ${label}`);
      seen.add(label);
    }
    assert.deepEqual([...result.sizes].sort(), Array(8).fill(per));
  });

  test(`kmeans (${metric}): the objective never increases, and the same seed gives the same clusters`, () => {
    const points = blobs(20, 30, 24, 9, metric === 'cosine');
    const a = kmeans(points, 24, { k: 12, metric, seed: 1, iterations: 15 });
    const b = kmeans(points, 24, { k: 12, metric, seed: 1, iterations: 15 });
    assert.deepEqual(a.centroids, b.centroids);
    assert.deepEqual(a.assignment, b.assignment);
    for (let i = 1; i < a.objective.length; i++) {
      assert.ok(a.objective[i]! <= a.objective[i - 1]! * (1 + 1e-6) + 1e-9, `iteration ${i}: ${a.objective[i - 1]} → ${a.objective[i]}`);
    }
    assert.equal(a.sizes.reduce((x, y) => x + y, 0), 600);
    assert.ok(a.sizes.every((size) => size > 0), 'no empty cluster among 600 distinct points');
    if (metric === 'cosine') {
      for (let c = 0; c < 12; c++) {
        const length = Math.hypot(...a.centroids.subarray(c * 24, (c + 1) * 24));
        assert.ok(Math.abs(length - 1) < 1e-5, `centroid ${c} has length ${length}`);
      }
    }
  });
}

test('kmeans: as many clusters as points puts each point alone; k = 1 is the mean', () => {
  const points = blobs(3, 5, 4, 2);
  const alone = kmeans(points, 4, { k: 15 });
  assert.deepEqual([...alone.sizes], Array(15).fill(1));
  const one = kmeans(points, 4, { k: 1, iterations: 1 });
  for (let j = 0; j < 4; j++) {
    let mean = 0;
    for (let i = 0; i < 15; i++) mean += points[i * 4 + j]! / 15;
    assert.ok(Math.abs(one.centroids[j]! - mean) < 1e-5);
  }
});

test('kmeans: identical points still give every cluster a member, at that point, and no NaN', () => {
  const points = new Float32Array(40).fill(0.5);
  const result = kmeans(points, 4, { k: 3 });
  assert.equal(result.sizes.reduce((x, y) => x + y, 0), 10);
  assert.ok(result.sizes.every((size) => size > 0), `sizes ${[...result.sizes]}`);
  assert.deepEqual([...result.centroids], Array(12).fill(0.5));
});

test('kmeans: k outside 1..n and a ragged point buffer are RangeErrors', () => {
  assert.throws(() => kmeans(new Float32Array(8), 4, { k: 3 }), RangeError);
  assert.throws(() => kmeans(new Float32Array(8), 4, { k: 0 }), RangeError);
  assert.throws(() => kmeans(new Float32Array(9), 4, { k: 1 }), RangeError);
});
