import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { MemStore, type SearchHit } from '../src/index.js';
import { clustered, rng, tempDir } from './helpers.js';

/**
 * An exact search of an int8 dot or cosine store screens its codes with the int8 query and scores
 * only what lies within the screen's bound with the float query (SearchPath.exactByBound). These
 * tests hold it to the float query's scan of every code, which the same store gives with the screen
 * switched off: the same ids in the same order with bit-identical scores, rescored or not, filtered
 * or not, in the exact scan and in the page index.
 */

/** Switches the store's screen for exact searches (a private field: the float scan alone is the reference). */
function setScreen(store: MemStore, on: boolean): void {
  (store as unknown as { searches: { exactScreen: boolean } }).searches.exactScreen = on;
}

async function bothWays(store: MemStore, query: Float32Array, options: Parameters<MemStore['search']>[1]): Promise<{ screened: SearchHit[]; scanned: SearchHit[] }> {
  setScreen(store, true);
  const screened = await store.search(query, options);
  setScreen(store, false);
  const scanned = await store.search(query, options);
  setScreen(store, true);
  return { screened, scanned };
}

function sameAnswer(screened: SearchHit[], scanned: SearchHit[], what: string): void {
  assert.deepEqual(
    screened.map((h) => [h.id, h.score]),
    scanned.map((h) => [h.id, h.score]),
    what,
  );
}

test('exact screen: an int8 store answers exact searches as the float query scan of every code does, rescored or not, filtered or not, flat and paged, for cosine and dot', async () => {
  for (const metric of ['cosine', 'dot'] as const) {
    for (const pages of [false, { from: 300, maxPage: 32 }] as const) {
      const store = await MemStore.open(tempDir(), { dim: 24, metric, durability: 'none', cache: false, pages });
      try {
        const next = rng(metric === 'dot' ? 11 : 12);
        const vectors = clustered(1200, 24, metric === 'dot' ? 5 : 6, 12);
        // Norms over two decades for dot: the bound grows with the largest code norm.
        await store.add(vectors.map((v, i) => ({ id: `v${i}`, vector: metric === 'dot' ? v.map((x) => x * (1 + (i % 10) * 10)) : v, meta: { g: i % 7 } })));
        for (let i = 0; i < 40; i++) {
          const query = vectors[Math.floor(next() * vectors.length)]!.map((x) => x + 0.05 * (next() - 0.5));
          for (const options of [{ k: 10, exact: true }, { k: 25, exact: true, rescore: false }, { k: 5, exact: true, filter: { g: 3 } }, { k: 1, exact: true, rescore: false, filter: { g: { $in: [1, 2] } } }]) {
            const { screened, scanned } = await bothWays(store, query, options);
            sameAnswer(screened, scanned, `${metric} pages ${JSON.stringify(pages)} query ${i} ${JSON.stringify(options)}`);
          }
        }
      } finally {
        await store.close();
      }
    }
  }
});

test('exact screen: ties at the last candidate and components the int8 query rounds away are scored as the float scan scores them', async () => {
  for (const metric of ['cosine', 'dot'] as const) {
    const store = await MemStore.open(tempDir(), { dim: 4, metric, durability: 'none', cache: false });
    try {
      // Many exact duplicates (ties at every rank) beside vectors that score only on components under
      // 1/254 of the query's largest, which its int8 code rounds to 0.
      const records = [
        ...Array.from({ length: 30 }, (_, i) => ({ id: `dup${String(i).padStart(2, '0')}`, vector: [1, 0, 0, 0] })),
        ...Array.from({ length: 30 }, (_, i) => ({ id: `small${i}`, vector: [0.2, (i + 1) * 0.01, 0, 0] })),
        { id: 'target', vector: metric === 'dot' ? [0, 1000, 0, 0] : [0, 1, 0, 0] },
      ];
      await store.add(records);
      for (const query of [new Float32Array([1, 0.003, 0, 0]), new Float32Array([1000, 1, 0, 0]), new Float32Array([1, 1e-3, 1e-4, 0])]) {
        for (const k of [1, 3, 10, 31, 61]) {
          for (const rescore of [true, false]) {
            const { screened, scanned } = await bothWays(store, query, { k, exact: true, rescore });
            sameAnswer(screened, scanned, `${metric} k ${k} rescore ${String(rescore)} query ${query.join(',')}`);
          }
        }
      }
    } finally {
      await store.close();
    }
  }
});

test('exact screen: random stores and queries (property), the screen answers as the float scan does', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom('cosine' as const, 'dot' as const),
      fc.integer({ min: 2, max: 40 }),
      fc.integer({ min: 1, max: 400 }),
      fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      fc.integer({ min: 1, max: 50 }),
      fc.boolean(),
      async (metric, dim, n, seed, k, rescore) => {
        const next = rng(seed);
        // Scales from 1e-3 to 1e3 per vector and a few exact copies: ties and wide score ranges.
        const vectors = Array.from({ length: n }, () => Array.from({ length: dim }, () => (next() - 0.5) * 10 ** Math.floor(next() * 7 - 3)));
        for (let i = 0; i < n / 10; i++) vectors[Math.floor(next() * n)] = [...vectors[0]!];
        const store = await MemStore.open(tempDir(), { dim, metric, durability: 'none', cache: false });
        try {
          await store.add(vectors.map((vector, i) => ({ id: `r${i}`, vector })));
          for (let i = 0; i < 5; i++) {
            const query = new Float32Array(Array.from({ length: dim }, () => (next() - 0.5) * 10 ** Math.floor(next() * 7 - 3)));
            const { screened, scanned } = await bothWays(store, query, { k, exact: true, rescore });
            sameAnswer(screened, scanned, `seed ${seed} query ${i}`);
          }
        } finally {
          await store.close();
        }
      },
    ),
    { numRuns: 60 },
  );
});

test('exact screen: with the lookaside cache on, exact searches (repeated, near-repeated, between writes) answer as an uncached store scanning with the float query', async () => {
  for (const metric of ['cosine', 'dot'] as const) {
    const cached = await MemStore.open(tempDir(), { dim: 16, metric, durability: 'none' });
    const plain = await MemStore.open(tempDir(), { dim: 16, metric, durability: 'none', cache: false });
    setScreen(plain, false);
    try {
      const next = rng(metric === 'dot' ? 21 : 22);
      const vectors = clustered(600, 16, 7, 6);
      const both = async (op: (s: MemStore) => Promise<unknown>): Promise<void> => {
        await op(cached);
        await op(plain);
      };
      await both((s) => s.add(vectors.map((v, i) => ({ id: `v${i}`, vector: v }))));
      const queries = Array.from({ length: 8 }, () => vectors[Math.floor(next() * vectors.length)]!.map((x) => x + 0.1 * (next() - 0.5)));
      for (let round = 0; round < 6; round++) {
        for (const q of queries) {
          const near = q.map((x) => x + 1e-4 * (next() - 0.5));
          for (const query of [q, q, near]) {
            const a = await cached.search(query, { k: 10, exact: true });
            const b = await plain.search(query, { k: 10, exact: true });
            sameAnswer(a, b, `${metric} round ${round}`);
          }
        }
        const id = `v${Math.floor(next() * vectors.length)}`;
        const moved = Float32Array.from(queries[round % queries.length]!, (x) => x * 1.01);
        await both((s) => (round % 2 === 0 ? s.add([{ id, vector: moved }]) : s.delete([id])));
      }
      assert.ok(cached.stats().cache!.exactHits > 0, 'exact repeats are still served');
    } finally {
      await cached.close();
      await plain.close();
    }
  }
});

test('exact screen: a dot store with one code far longer than the rest (the drop takes in the whole store) rests the screen for the next searches, answers unchanged (found by a hostile pass: 2.2x to 3.3x the float scan)', async () => {
  const store = await MemStore.open(tempDir(), { dim: 16, metric: 'dot', durability: 'none', cache: false });
  try {
    const next = rng(31);
    const vectors = clustered(5000, 16, 9, 10);
    await store.add(vectors.map((v, i) => ({ id: `v${i}`, vector: i === 7 ? v.map((x) => x * 1000) : v })));
    const searches = (store as unknown as { searches: { screenRests: number } }).searches;
    for (let i = 0; i < 70; i++) {
      const query = vectors[Math.floor(next() * vectors.length)]!.map((x) => x * -1 + 0.01 * next());
      const { screened, scanned } = await bothWays(store, query, { k: 10, exact: true });
      sameAnswer(screened, scanned, `query ${i}`);
      // The first screen takes in the store: the screen rests for the next 64, then tries again.
      if (i === 0) assert.equal(searches.screenRests, 64);
      if (i === 64) assert.equal(searches.screenRests, 0);
    }
  } finally {
    await store.close();
  }
});

test('exact screen: a filtered exact search of the page index (which collects no pool) scans with the float query at once, without an int8 scan first (found by a hostile pass: 1.46x the float scan)', async () => {
  const store = await MemStore.open(tempDir(), { dim: 16, durability: 'none', cache: false, pages: { from: 200, maxPage: 16 } });
  try {
    const vectors = clustered(800, 16, 13, 8);
    await store.add(vectors.map((v, i) => ({ id: `v${i}`, vector: v, meta: { g: i % 4 } })));
    assert.ok(store.stats().pages > 1);
    const searches = store as unknown as { searches: { screenPool: unknown } };
    const { screened, scanned } = await bothWays(store, vectors[3]!, { k: 10, exact: true, filter: { g: 1 } });
    sameAnswer(screened, scanned, 'filtered');
    assert.equal(searches.searches.screenPool, undefined, 'no int8 screen ran');
    await store.search(vectors[3]!, { k: 10, exact: true });
    assert.notEqual(searches.searches.screenPool, undefined, 'an unfiltered exact search screens');
  } finally {
    await store.close();
  }
});
