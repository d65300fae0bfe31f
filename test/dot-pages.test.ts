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
      const truth = vectors
        .map((v, i) => ({ id: `v${i}`, s: storeScore('dot', q, v) }))
        .sort((a, b) => b.s - a.s)
        .slice(0, 10)
        .map((x) => x.id);
      const hits = await store.search(q, { k: 10 });
      for (const h of hits) assert.equal(h.score, storeScore('dot', q, vectors[Number(h.id.slice(1))]!));
      found += recall(
        hits.map((h) => h.id),
        truth,
      );
    }
    assert.ok(found / queries.length >= 0.95, `recall@10 ${found / queries.length} at nprobe ${store.stats().nprobe} of ${store.stats().pages} pages`);
  } finally {
    await store.close();
  }
});
