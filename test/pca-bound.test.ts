import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemStore, type OpenOptions } from '../src/index.js';
import { symmetricEigen } from '../src/pca/eigen.js';
import { fitPca } from '../src/pca/pca.js';
import { BEYOND_ROOM } from '../src/search/search-path.js';
import { gaussian, perturb, readStateRecord, recall, rejectsWith, rng, storeScore, tempDir, writeStateRecord } from './helpers.js';
import { heldLog } from './support/held-log.js';

/**
 * The rescoring bound of a cosine store with PCA (src/search/RESCORING.md, "PCA" and "Past the
 * scan's candidates"): the model keeps the variance along the first axis it drops, each candidate's
 * bound adds what the dropped part may add to its score, and a search takes in the vectors past the
 * scan's candidates whose bounds still reach the k-th best exact score, so that a projection that
 * drops much of the data's variance costs reads, not recall.
 */

/** `n` Gaussian vectors whose components' spreads fall evenly from `high` to `low`: a flat spectrum, as GloVe's. */
function flat(n: number, dim: number, seed: number, high = 1.5, low = 0.5): Float32Array[] {
  const next = rng(seed);
  return Array.from({ length: n }, () => Float32Array.from({ length: dim }, (_, i) => gaussian(next) * (high - ((high - low) * i) / (dim - 1))));
}

/** The sample covariance of `rows` as fitPca() takes it: float64, divided by n − 1. */
function covariance(rows: readonly Float32Array[], dim: number): Float64Array {
  const mean = new Float64Array(dim);
  for (const r of rows) for (let i = 0; i < dim; i++) mean[i]! += r[i]! / rows.length;
  const cov = new Float64Array(dim * dim);
  for (const r of rows) for (let i = 0; i < dim; i++) for (let j = 0; j < dim; j++) cov[i * dim + j]! += ((r[i]! - mean[i]!) * (r[j]! - mean[j]!)) / (rows.length - 1);
  return cov;
}

const DIM = 32;
const id = (i: number) => `v${String(i).padStart(4, '0')}`;

async function flatStore(options: OpenOptions, n = 600, seed = 7): Promise<{ store: MemStore; dir: string; items: { id: string; vector: Float32Array }[] }> {
  const dir = tempDir();
  const store = await MemStore.open(dir, { dim: DIM, pca: { dims: 4 }, trainSize: 300, durability: 'none', ...options });
  const items = flat(n, DIM, seed).map((vector, i) => ({ id: id(i), vector }));
  await store.add(items);
  return { store, dir, items };
}

/** The exact top k over every stored vector, ties by id, with the store's own scores. */
function exactTop(items: readonly { id: string; vector: Float32Array }[], q: Float32Array, k: number, metric: 'cosine' | 'dot' = 'cosine'): string[] {
  return items
    .map((it) => ({ id: it.id, s: storeScore(metric, q, it.vector) }))
    .sort((a, b) => b.s - a.s || (a.id < b.id ? -1 : 1))
    .slice(0, k)
    .map((x) => x.id);
}

test('fitPca keeps the variance along the first axis it drops: the largest eigenvalue of the sample covariance not kept, 0 when every axis is kept', () => {
  const rows = flat(400, 12, 3);
  const values = symmetricEigen(covariance(rows, 12), 12).values;
  for (const dims of [1, 4, 11]) {
    const model = fitPca(rows, 12, { dims });
    assert.ok(Math.abs(model.residualVariance! - values[dims]!) <= 1e-6 * values[0]!, `${dims}: ${model.residualVariance} against ${values[dims]}`);
    assert.ok(model.residualVariance! <= values[dims - 1]!, 'no more than the last kept axis');
  }
  assert.equal(fitPca(rows, 12, { dims: 12 }).residualVariance, 0);
});

for (const [metric, codec] of [
  ['cosine', 'int8'],
  ['cosine', 'f16'],
  ['cosine', 'fp8-e4m3'],
  ['cosine', 'fp8-e5m2'],
  ['dot', 'int8'],
  ['dot', 'fp8-e4m3'],
] as const) {
  test(`a ${metric} store with PCA that drops most of the variance takes in vectors past its candidates (${codec}): recall of the exact top 10 at least 0.95, where rescoring its candidates alone finds less; every score exact`, async () => {
    const { store, items } = await flatStore({ cache: false, codec, metric });
    try {
      const next = rng(99);
      const queries = Array.from({ length: 20 }, (_, i) => perturb(items[i * 29]!.vector, 0.9, next));
      const vectors = new Map(items.map((it) => [it.id, it.vector]));
      let found = 0;
      let alone = 0;
      for (const q of queries) {
        const truth = exactTop(items, q, 10, metric);
        const hits = await store.search(q, { k: 10 });
        for (const h of hits) assert.equal(h.score, storeScore(metric, q, vectors.get(h.id)!), h.id);
        found += recall(hits.map((h) => h.id), truth);
        // What rescoring the scan's k · 4 candidates alone gives (the store's default with PCA).
        const candidates = await store.search(q, { k: 40, rescore: false });
        const rescored = candidates.map((h) => ({ id: h.id, s: storeScore(metric, q, vectors.get(h.id)!) })).sort((a, b) => b.s - a.s);
        alone += recall(rescored.slice(0, 10).map((x) => x.id), truth);
      }
      const r = store.stats().rescoring;
      assert.ok(found / queries.length >= 0.95, `recall ${found / queries.length}`);
      assert.ok(alone < found, `candidates alone ${alone / queries.length}, with the vectors past them ${found / queries.length}`);
      assert.ok(r.beyond > 0 && r.extended > 0, JSON.stringify(r));
      assert.equal(r.capped, 0);
    } finally {
      await store.close();
    }
  });
}

for (const metric of ['cosine', 'dot'] as const) {
  test(`PCA bound: a reopened ${metric} store answers the same (the model keeps its residual variance), and a cache changes no answer, near repeats included`, async () => {
    const { store, dir, items } = await flatStore({ cache: false, metric });
    const next = rng(5);
    const queries = Array.from({ length: 12 }, (_, i) => perturb(items[i * 41]!.vector, 0.92, next));
    const stream = queries.flatMap((q) => [q, q, perturb(q, 0.999, next)]);
    const answers: string[] = [];
    for (const q of stream) answers.push(JSON.stringify(await store.search(q, { k: 8 })));
    await store.close();
    assert.equal(typeof (await readStateRecord(dir, 'pca')).residualVariance, 'number');
    for (const cache of [false, undefined] as const) {
      const again = await MemStore.open(dir, cache === false ? { cache } : {});
      try {
        for (const [i, q] of stream.entries()) assert.equal(JSON.stringify(await again.search(q, { k: 8 })), answers[i], `cache ${cache}, query ${i}`);
        assert.ok(again.stats().rescoring.beyond > 0);
        if (cache === undefined) assert.ok(again.stats().cache.hits > 0, 'the cache served some');
      } finally {
        await again.close();
      }
    }
  });
}

test('PCA bound: an l2 store looks past no candidates (its slack is unbounded), and answers with exact scores as before', async () => {
  const { store, items } = await flatStore({ cache: false, metric: 'l2' });
  try {
    const q = perturb(items[3]!.vector, 0.9, rng(8));
    const hits = await store.search(q, { k: 10 });
    assert.equal(hits.length, 10);
    for (const h of hits) assert.equal(h.score, storeScore('l2', q, items[Number(h.id.slice(1))]!.vector));
    assert.equal(store.stats().rescoring.beyond, 0);
  } finally {
    await store.close();
  }
});

test('PCA bound: past BEYOND_ROOM vectors a search takes in the best of them and counts itself capped; its hits still carry exact scores', async () => {
  const n = BEYOND_ROOM + 900;
  const dir = tempDir();
  // PCA to one axis of 32 nearly alike: the dropped part bounds almost nothing, so the bound reaches most of the store.
  const store = await MemStore.open(dir, { dim: DIM, pca: { dims: 1 }, trainSize: 500, durability: 'none', cache: false });
  try {
    const items = flat(n, DIM, 13, 1.05, 0.95).map((vector, i) => ({ id: id(i), vector }));
    await store.add(items);
    const q = items[17]!.vector;
    const hits = await store.search(q, { k: 10 });
    for (const h of hits) assert.equal(h.score, storeScore('cosine', q, items[Number(h.id.slice(1))]!.vector));
    const r = store.stats().rescoring;
    assert.equal(r.capped, 1, JSON.stringify(r));
    assert.equal(r.beyond, BEYOND_ROOM);
    assert.equal(hits[0]!.id, items[17]!.id, 'the query itself, found among the best the cap took');
  } finally {
    await store.close();
  }
});

test('PCA bound: a filtered search of a page index takes in vectors past its candidates from the pages it scanned: every hit matching the filter, the same answers with the cache', async () => {
  const options: OpenOptions = { dim: DIM, pca: { dims: 4 }, trainSize: 300, durability: 'none', pages: { from: 400, maxPage: 64 } };
  const cached = await MemStore.open(tempDir(), options);
  const plain = await MemStore.open(tempDir(), { ...options, cache: false });
  try {
    const items = flat(1200, DIM, 21).map((vector, i) => ({ id: id(i), vector, meta: { even: i % 2 === 0 } }));
    await cached.add(items);
    await plain.add(items);
    for (const i of [3, 50, 400, 777, 3, 50]) {
      const hits = await plain.search(items[i]!.vector, { k: 10, filter: { even: true } });
      assert.equal(hits.length, 10);
      for (const h of hits) assert.equal(Number(h.id.slice(1)) % 2, 0);
      assert.deepEqual(await cached.search(items[i]!.vector, { k: 10, filter: { even: true } }), hits);
    }
    const r = plain.stats().rescoring;
    assert.ok(r.extended > 0 && r.capped === 0, JSON.stringify(r));
  } finally {
    await cached.close();
    await plain.close();
  }
});

test('PCA bound: a page index whose probed pages hold fewer than the candidates, large k: the cache\'s misses (a second scan) take in what the store without it takes in (a hostile pass: the second scan had collected from the first pages only)', async () => {
  const dim = 100;
  const next = rng(711);
  const items = Array.from({ length: 1053 }, (_, i) => ({ id: `r${i}`, vector: Float32Array.from({ length: dim }, (_, j) => gaussian(next) * (1.5 - j / (dim - 1))) }));
  const options: OpenOptions = { dim, pca: { dims: 2 }, trainSize: 44, oversample: 5, pages: { from: 50, maxPage: 16 }, durability: 'none' };
  const cached = await MemStore.open(tempDir(), { ...options, cache: {} });
  const plain = await MemStore.open(tempDir(), { ...options, cache: false });
  try {
    await cached.add(items);
    await plain.add(items);
    for (let i = 0; i < 20; i++) {
      const q = Float32Array.from({ length: dim }, () => gaussian(next));
      assert.deepEqual(await cached.search(q, { k: 89 }), await plain.search(q, { k: 89 }), `query ${i}`);
    }
    assert.ok(cached.stats().rescoring.beyond > 0);
  } finally {
    await cached.close();
    await plain.close();
  }
});

test('PCA bound: a search that a write overtakes while it reads past its candidates counts once, when it holds (a hostile pass: extended had passed searches)', async () => {
  const next = rng(3);
  const vectors = Array.from({ length: 1500 }, () => Float32Array.from({ length: DIM }, (_, i) => gaussian(next) * (1.5 - i / (DIM - 1))));
  const files = heldLog({ syncReads: false });
  const dir = tempDir();
  let store = await MemStore.open(dir, { dim: DIM, pca: { dims: 2 }, trainSize: 100, durability: 'none', cache: false, files, mmap: false });
  await store.add(vectors.map((vector, i) => ({ id: `a${i}`, vector })));
  await store.close();
  store = await MemStore.open(dir, { cache: false, files, mmap: false });
  try {
    const searching = store.search(vectors[7]!, { k: 10 });
    const writing = store.add([{ id: 'a7', vector: vectors[8]! }]);
    await Promise.all([searching, writing]);
    const r = store.stats().rescoring;
    assert.equal(r.searches, 1);
    assert.ok(r.extended <= 1 && r.capped <= 1 && r.beyond <= r.candidates, JSON.stringify(r));
    assert.equal(r.candidates - r.beyond, 40, 'the scan\'s candidates of one search');
  } finally {
    await store.close();
  }
});

test('PCA bound: a model persisted before it kept its residual variance has no bound (every candidate read, none past them); a residual variance that is negative, NaN, infinite or not a number is CORRUPTION', async () => {
  const { store, dir, items } = await flatStore({ cache: false }, 400);
  await store.close();
  const good = await readStateRecord(dir, 'pca');
  const { residualVariance: _, ...old } = good;
  await writeStateRecord(dir, 'pca', old);
  const reopened = await MemStore.open(dir, { cache: false });
  try {
    for (const it of items.slice(0, 5)) await reopened.search(it.vector, { k: 10 });
    const r = reopened.stats().rescoring;
    assert.deepEqual([r.searches, r.candidates, r.skipped, r.beyond], [5, 5 * 40, 0, 0]);
  } finally {
    await reopened.close();
  }
  for (const bad of [-1, Number.NaN, Infinity, 'wide']) {
    await writeStateRecord(dir, 'pca', { ...good, residualVariance: bad });
    await rejectsWith(() => MemStore.open(dir), 'CORRUPTION');
  }
  await writeStateRecord(dir, 'pca', good);
  const again = await MemStore.open(dir);
  assert.equal(again.stats().count, 400);
  await again.close();
});

// A minute at most: the fault this found (scores written past their array) hung the search for good.
test('PCA bound: near hits whose candidates are hot in the cache take in more vectors past them than they read (chunks wider than the reads): the uncached answer, every score exact', { timeout: 60_000 }, async () => {
  const options: OpenOptions = { dim: DIM, pca: { dims: 4 }, trainSize: 300, durability: 'none' };
  const items = flat(600, DIM, 31).map((vector, i) => ({ id: id(i), vector }));
  const cached = await MemStore.open(tempDir(), { ...options, cache: { entries: 64, bytes: 64 << 20 } });
  const plain = await MemStore.open(tempDir(), { ...options, cache: false });
  try {
    await cached.add(items);
    await plain.add(items);
    const next = rng(17);
    const vectors = new Map(items.map((it) => [it.id, it.vector]));
    for (let round = 0; round < 6; round++) {
      const base = perturb(items[round * 53]!.vector, 0.9, next);
      // Read twice, the candidates' vectors are kept hot; the near queries after are served from the pool.
      for (const q of [base, base, perturb(base, 0.99999, next), perturb(base, 0.99999, next), perturb(base, 0.9999, next)]) {
        const got = await cached.search(q, { k: 4 });
        assert.deepEqual(got, await plain.search(q, { k: 4 }), `round ${round}`);
        for (const h of got) assert.equal(h.score, storeScore('cosine', q, vectors.get(h.id)!));
      }
    }
    const stats = cached.stats();
    assert.ok(stats.cache.nearHits > 0 && stats.cache.fullReadsSaved > 0, JSON.stringify(stats.cache));
    assert.ok(stats.rescoring.beyond > 16 * stats.rescoring.extended / 2, JSON.stringify(stats.rescoring));
  } finally {
    await cached.close();
    await plain.close();
  }
});
