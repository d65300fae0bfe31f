import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exactSearch } from '../bench/baselines.js';
import type { Dataset } from '../src/cli/datasets.js';
import { gaussian, rng } from './helpers.js';

/** `n` Gaussian vectors of `dim` at `scale`. */
function vectors(n: number, dim: number, scale: number, seed: number): Float32Array[] {
  const next = rng(seed);
  return Array.from({ length: n }, () => Float32Array.from({ length: dim }, () => scale * gaussian(next)));
}

test('bench truth: the rows tied with the k-th best are those within a millionth of its score\'s own scale for dot and l2 (the size of its terms), so vectors of length 1e-5 have no ties they do not have (every row had been tied with the 10th: the truth of GloVe as the data sets\' script makes it filled a 4 GB heap), nor rows beside one 1e7 times the query, and copies at any scale still tie', () => {
  for (const metric of ['dot', 'l2'] as const) {
    for (const scale of [1e-5, 1, 1e4]) {
      const data: Dataset = { name: 'tiny', dim: 8, docs: vectors(500, 8, scale, 3), queries: vectors(5, 8, scale, 4) };
      const run = exactSearch(data, metric, 10);
      for (const rows of run.tiedK) assert.equal(rows.length, 10, `${metric} at ${scale}`);
      for (const rows of run.tied1) assert.equal(rows.length, 1, `${metric} at ${scale}`);
      // 40 copies of the first row: a query near them has them all tied at rank 10.
      const copies: Dataset = { ...data, docs: [...Array.from({ length: 40 }, () => data.docs[0]!), ...data.docs.slice(1)], queries: [data.docs[0]!.map((x) => x * 1.001)] };
      assert.equal(exactSearch(copies, metric, 10).tiedK[0]!.length, 40, `${metric} copies at ${scale}`);
    }
  }
  // One row far longer than the rest sets no scale for the others: the 10th is still the 10th alone.
  for (const metric of ['dot', 'l2'] as const) {
    const data: Dataset = { name: 'outlier', dim: 8, docs: vectors(2000, 8, 1, 6), queries: vectors(1, 8, 1, 8) };
    const q = data.queries[0]!;
    const withOutlier: Dataset = { ...data, docs: [q.map((x) => x * 1e7), ...data.docs] };
    assert.equal(exactSearch(withOutlier, metric, 10).tiedK[0]!.length, 10, `${metric} beside a row 1e7 times the query`);
  }
  // Cosines keep their scale of 1: one direction at many lengths ties, whatever the rounding of each.
  const next = rng(9);
  const direction = Float32Array.from({ length: 8 }, () => gaussian(next));
  const scaled: Dataset = { name: 'scaled', dim: 8, docs: [...Array.from({ length: 30 }, (_, i) => direction.map((x) => x * (1 + i * 0.37))), ...vectors(200, 8, 1, 5)], queries: [direction] };
  assert.equal(exactSearch(scaled, 'cosine', 10).tiedK[0]!.length, 30);
});
