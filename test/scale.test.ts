import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemStore, type Metric } from '../src/index.js';
import { clustered, gaussian, perturb, rng, tempDir } from './helpers.js';

/**
 * Bounds that take float32 rounding into account scale with the scores, not with 1: a dot or l2
 * store of short vectors is the same store as one of unit vectors, scaled. Lengths are scaled by
 * powers of two, so the codes are the same codes and every score scales exactly (until subnormals).
 */

const DIM = 32;

/** `n` vectors mostly in a 6-d subspace (PCA to 8 keeps nearly all of it), lengths spread over e^±0.5, times `scale`. */
function subspaced(n: number, scale: number, seed: number): Float32Array[] {
  const next = rng(seed);
  const basis = Array.from({ length: 6 }, () => Float32Array.from({ length: DIM }, () => gaussian(next)));
  return Array.from({ length: n }, () => {
    const c = basis.map(() => gaussian(next));
    const length = Math.exp(next() - 0.5);
    return Float32Array.from({ length: DIM }, (_, i) => scale * length * (0.2 * gaussian(next) + basis.reduce((a, b, j) => a + c[j]! * b[i]!, 0)));
  });
}

test('a dot store with PCA looks past its candidates as far at lengths 2^-20 and 2^-30 as at 1 (the int8 scan\'s shift carried an absolute margin of 2.4e-4: at length 1e-6 every search read its cap of 4,096 vectors past them)', async () => {
  const beyond: number[] = [];
  for (const scale of [1, 2 ** -20, 2 ** -30]) {
    const store = await MemStore.open(tempDir(), { dim: DIM, metric: 'dot', codec: 'int8', pca: { dims: 8 }, trainSize: 2000, durability: 'none', cache: false });
    try {
      const vectors = subspaced(5000, scale, 99);
      await store.add(vectors.map((vector, i) => ({ id: `a${i}`, vector })));
      for (const q of subspaced(40, scale, 7)) assert.equal((await store.search(q, { k: 10 })).length, 10);
      const r = store.stats().rescoring;
      beyond.push(r.beyond / r.searches);
    } finally {
      await store.close();
    }
  }
  for (const [i, b] of beyond.entries()) assert.ok(b <= beyond[0]! + 5, `scale #${i}: ${b} vectors a search past the candidates, against ${beyond[0]} at length 1`);
});

test('the cache certifies a near query of a dot or l2 store of vectors of length 2^-20 as it does at length 1 (its rounding margin had a floor of 2.4e-4, far above such scores: none was ever certified)', async () => {
  for (const metric of ['dot', 'l2'] as const satisfies readonly Metric[]) {
    const near: number[] = [];
    for (const scale of [1, 2 ** -20]) {
      const next = rng(4);
      const vectors = clustered(400, DIM, 8, 10).map((v) => v.map((x) => x * scale));
      const store = await MemStore.open(tempDir(), { dim: DIM, metric, durability: 'none', cache: { entries: 64, pool: 2 } });
      try {
        await store.add(vectors.map((vector, i) => ({ id: `v${i}`, vector })));
        for (let i = 0; i < 8; i++) {
          await store.search(vectors[i]!, { k: 5 });
          await store.search(perturb(vectors[i]!, 0.99999, next), { k: 5 });
        }
        near.push(store.stats().cache.nearHits);
      } finally {
        await store.close();
      }
    }
    assert.ok(near[0]! > 0, `${metric}: near queries certified at length 1`);
    assert.equal(near[1], near[0], `${metric}: as many at length 2^-20`);
  }
});
