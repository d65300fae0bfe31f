import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemStore } from '../src/index.js';
import { gaussian, recall, rng, storeScore, tempDir } from './helpers.js';

/**
 * A dot store's page index (src/index/PAGES.md, "Search"): a page's best inner product is its best
 * member's, which the mean does not show, so a search ranks pages by how far their members spread
 * from the mean too, not by the mean alone (GloVe as the data sets' script makes it, 100k, dot:
 * recall@10 0.23 at the default nprobe by the mean alone).
 */

const DIM = 16;
/** Past the count at which a store clusters its codes into pages (16,384). */
const N = 20_000;

/** `n` vectors in random directions with lengths spread as e^(0.6·g), g Gaussian: a few long vectors among many short ones, as word vectors are. */
function spreadNorms(n: number, seed: number): Float32Array[] {
  const next = rng(seed);
  return Array.from({ length: n }, () => {
    const v = Float32Array.from({ length: DIM }, () => gaussian(next));
    const length = Math.exp(0.6 * gaussian(next)) / Math.hypot(...v);
    return v.map((x) => x * length);
  });
}

/** The ids (`v<i>`) of the 10 vectors with the largest inner product with `q`. */
function exactTop10(vectors: readonly Float32Array[], q: Float32Array): string[] {
  return vectors
    .map((v, i) => ({ id: `v${i}`, s: storeScore('dot', q, v) }))
    .sort((a, b) => b.s - a.s)
    .slice(0, 10)
    .map((x) => x.id);
}

test('a dot store of vectors of unequal norms: the default search finds at least 0.95 of the exact top 10 through its pages, with exact scores', async () => {
  const dir = tempDir();
  const store = await MemStore.open(dir, { dim: DIM, metric: 'dot', durability: 'none', cache: false });
  try {
    const vectors = spreadNorms(N, 21);
    for (let at = 0; at < N; at += 2000) await store.add(vectors.slice(at, at + 2000).map((vector, i) => ({ id: `v${at + i}`, vector })));
    assert.ok(store.stats().pages > 1, 'paged');
    const next = rng(5);
    const queries = Array.from({ length: 40 }, () => Float32Array.from({ length: DIM }, () => gaussian(next)));
    let found = 0;
    for (const q of queries) {
      const hits = await store.search(q, { k: 10 });
      for (const h of hits) assert.equal(h.score, storeScore('dot', q, vectors[Number(h.id.slice(1))]!));
      found += recall(
        hits.map((h) => h.id),
        exactTop10(vectors, q),
      );
    }
    assert.ok(found / queries.length >= 0.95, `recall@10 ${found / queries.length} at nprobe ${store.stats().nprobe} of ${store.stats().pages} pages`);
  } finally {
    await store.close();
  }
});

/** `n` vectors about `clusters` centres (spread `spread` around each), each scaled to a length e^(σ·g), g Gaussian: overlapping clusters of unequal lengths. */
function clustersOfUnequalLengths(n: number, dim: number, seed: number, options: { clusters: number; spread: number; sigma: number }): { vectors: Float32Array[]; centres: Float32Array[]; next: () => number } {
  const next = rng(seed);
  const centres = Array.from({ length: options.clusters }, () => Float32Array.from({ length: dim }, () => gaussian(next)));
  const vectors = Array.from({ length: n }, (_, i) => {
    const v = Float32Array.from(centres[i % options.clusters]!, (x) => x + options.spread * gaussian(next));
    const length = Math.exp(options.sigma * gaussian(next)) / Math.hypot(...v);
    return v.map((x) => x * length);
  });
  return { vectors, centres, next };
}

test('a dot store of overlapping clusters of unequal lengths: its default search probes 6·√pages and finds at least 0.95 of the exact top 10 (3·√pages found 0.85)', async () => {
  const dim = 32;
  const dir = tempDir();
  const store = await MemStore.open(dir, { dim, metric: 'dot', durability: 'none', cache: false });
  try {
    const { vectors, centres, next } = clustersOfUnequalLengths(N, dim, 21, { clusters: 64, spread: 2, sigma: 0.3 });
    for (let at = 0; at < N; at += 2000) await store.add(vectors.slice(at, at + 2000).map((vector, i) => ({ id: `v${at + i}`, vector })));
    const { pages, nprobe } = store.stats();
    assert.ok(pages > 100, `${pages} pages`);
    assert.equal(nprobe, Math.ceil(6 * Math.sqrt(pages)));
    const queries = Array.from({ length: 60 }, () => Float32Array.from(centres[Math.floor(next() * centres.length)]!, (x) => x + 2 * gaussian(next)));
    let found = 0;
    for (const q of queries) {
      found += recall(
        (await store.search(q, { k: 10 })).map((h) => h.id),
        exactTop10(vectors, q),
      );
    }
    assert.ok(found / queries.length >= 0.95, `recall@10 ${found / queries.length} at nprobe ${nprobe} of ${pages} pages`);
  } finally {
    await store.close();
  }
});

test('a dot store with rq codes counts the lengths of its input vectors, not of their differences from the mean: half of them 100 times longer is 6·√pages, unit vectors 3·√pages', async () => {
  const dim = 32;
  const next = rng(3);
  const direction = Float32Array.from({ length: dim }, () => gaussian(next));
  const unitOf = (v: Float32Array): Float32Array => v.map((x) => x / Math.hypot(...v));
  const along = unitOf(direction);
  const unit = Array.from({ length: 3000 }, () => unitOf(Float32Array.from({ length: dim }, () => gaussian(next))));
  // Near 100 times one direction: each about as far from the mean of all as the unit ones are.
  const mixed = unit.map((v, i) => (i % 2 === 0 ? v : Float32Array.from(along, (x) => 100 * x + gaussian(next))));
  for (const codec of ['rq2', 'rq4', 'int8'] as const) {
    for (const [vectors, factor] of [
      [mixed, 6],
      [unit, 3],
    ] as const) {
      const store = await MemStore.open(tempDir(), { dim, metric: 'dot', codec, durability: 'none', cache: false, trainSize: 1000, pages: { from: 256, maxPage: 16 } });
      try {
        await store.add(vectors.map((vector, i) => ({ id: `v${i}`, vector })));
        const { pages, nprobe } = store.stats();
        assert.ok(pages > 100, `${codec}: ${pages} pages`);
        assert.equal(nprobe, Math.min(pages, Math.ceil(factor * Math.sqrt(pages))), `${codec}, ${factor === 6 ? 'mixed' : 'unit'} lengths`);
      } finally {
        await store.close();
      }
    }
  }
});
