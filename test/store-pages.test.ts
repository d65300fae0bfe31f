import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MemStore, MemstoreError, type OpenOptions } from '../src/index.js';
import { statePath } from '../src/store/files.js';
import { bruteForce, clustered, gaussian, perturb, rejectsWith, rng, tempDir, writeStoreConfig } from './helpers.js';

/**
 * The page-clustered index inside a store: clustering at `pages.from`, pages kept across
 * checkpoints and reopening (the index file's PAGE field), `pages: false`, compaction, options.
 * Answers probing one page (`nprobe: 1`) depend on every vector's page and every centroid, so two
 * stores that answer them alike hold the same pages.
 */
const DIM = 24;
const PAGES = { from: 300, maxPage: 24 };
const vectors = clustered(2400, DIM, 21, 30);
const queries = clustered(40, DIM, 22, 30);

function options(extra: OpenOptions = {}): OpenOptions {
  return { dim: DIM, durability: 'none', cache: false, pages: PAGES, ...extra };
}

async function fill(store: MemStore, from = 0, to = vectors.length): Promise<void> {
  for (let i = from; i < to; i += 100) {
    await store.add(vectors.slice(i, Math.min(to, i + 100)).map((vector, j) => ({ id: `v${i + j}`, vector, meta: { g: (i + j) % 4, rare: (i + j) % 97 === 0, one: i + j === 1234 } })));
    // Upserts and deletes between the adds: pages shrink, merge and take replaced codes.
    if (i % 300 === 0 && i > 0) {
      await store.delete([`v${i - 7}`, `v${i - 50}`, `v${i - 99}`]);
      await store.add([{ id: `v${i - 20}`, vector: vectors[i + 1]! }]);
    }
  }
}

async function probeOne(store: MemStore): Promise<string[][]> {
  return Promise.all(queries.map(async (q) => (await store.search(q, { k: 10, nprobe: 1, rescore: false })).map((h) => `${h.id}:${h.score}`)));
}

async function exact(store: MemStore): Promise<string[][]> {
  return Promise.all(queries.map(async (q) => (await store.search(q, { k: 10, exact: true })).map((h) => h.id)));
}

test('store pages: codes are clustered once pages.from vectors are held, and stats() says so', async () => {
  const store = await MemStore.open(tempDir(), options());
  try {
    await store.add(vectors.slice(0, 299).map((vector, i) => ({ id: `v${i}`, vector })));
    const flat = store.stats();
    await store.add([{ id: 'v299', vector: vectors[299]! }]);
    const paged = store.stats();
    assert.ok(paged.pages >= Math.ceil(300 / 24), `${paged.pages} pages`);
    assert.ok(paged.pages > flat.pages, `exact index: ${flat.pages} blocks`);
    assert.equal(paged.nprobe, Math.min(paged.pages, 32));
    // Every record is still found by its own vector, with the default search.
    for (let i = 0; i < 300; i += 13) assert.equal((await store.search(vectors[i]!, { k: 1 }))[0]?.id, `v${i}`);
  } finally {
    await store.close();
  }
});

test('store pages: checkpoints (deltas with moved records) and reopening keep every page: one-page answers are the same', async () => {
  const dir = tempDir();
  // Checkpoints every few batches, so splits between them travel in deltas.
  const store = await MemStore.open(dir, options({ checkpointBytes: 64 * 1024 }));
  await fill(store);
  const before = await probeOne(store);
  const exactBefore = await exact(store);
  const stats = store.stats();
  await store.close();
  const again = await MemStore.open(dir, { pages: PAGES, cache: false });
  try {
    assert.equal(again.stats().pages, stats.pages);
    assert.equal(again.stats().count, stats.count);
    assert.deepEqual(await probeOne(again), before);
    assert.deepEqual(await exact(again), exactBefore);
  } finally {
    await again.close();
  }
});

test('store pages: a store left without close (the log replayed into the pages of the last checkpoint) keeps every record and exact answer', async () => {
  const dir = tempDir();
  const store = await MemStore.open(dir, options({ checkpointBytes: 64 * 1024, durability: 'always' }));
  await fill(store, 0, 1500);
  const exactBefore = await exact(store);
  const count = store.stats().count;
  await store.abandon();
  const again = await MemStore.open(dir, { pages: PAGES, cache: false });
  try {
    assert.equal(again.stats().count, count);
    assert.deepEqual(await exact(again), exactBefore);
    // Splits redone by the replay see their members in load order, so pages may differ from the
    // uninterrupted run's (PAGES.md, "Recovery"); every record is in one, and found by its vector.
    for (let i = 0; i < 1500; i += 11) {
      const id = `v${i}`;
      const rec = await again.get(id);
      if (rec === undefined) continue;
      assert.equal((await again.search(rec.vector, { k: 1 }))[0]?.id, id);
    }
  } finally {
    await again.close();
  }
});

test('store pages: the same writes in the same order build the same pages (deterministic)', async () => {
  const a = await MemStore.open(tempDir(), options());
  const b = await MemStore.open(tempDir(), options({ checkpointBytes: 32 * 1024 }));
  try {
    await fill(a);
    await fill(b);
    assert.equal(a.stats().pages, b.stats().pages);
    assert.deepEqual(await probeOne(a), await probeOne(b));
  } finally {
    await a.close();
    await b.close();
  }
});

test('store pages: compaction re-clusters the pages; records, exact answers and the default search survive it and a reopen', async () => {
  const dir = tempDir();
  const store = await MemStore.open(dir, options());
  await fill(store);
  const exactBefore = await exact(store);
  const count = store.stats().count;
  await store.compact();
  assert.equal(store.stats().count, count);
  assert.deepEqual(await exact(store), exactBefore);
  const after = await probeOne(store);
  await store.close();
  const again = await MemStore.open(dir, { pages: PAGES, cache: false });
  try {
    assert.deepEqual(await probeOne(again), after);
    assert.deepEqual(await exact(again), exactBefore);
  } finally {
    await again.close();
  }
});

test('store pages: pages: false opens a paged store with the exact index, and pages come back when asked again', async () => {
  const dir = tempDir();
  const store = await MemStore.open(dir, options());
  await fill(store, 0, 1200);
  const exactBefore = await exact(store);
  const count = store.stats().count;
  await store.close();

  const flat = await MemStore.open(dir, { pages: false, cache: false });
  try {
    assert.deepEqual(await exact(flat), exactBefore);
    // The exact index probes every block whatever nprobe says.
    assert.deepEqual(
      await Promise.all(queries.map(async (q) => (await flat.search(q, { k: 10, nprobe: 1 })).map((h) => h.id))),
      exactBefore,
    );
    await flat.add([{ id: 'extra', vector: vectors[2000]! }]);
  } finally {
    await flat.close();
  }
  const paged = await MemStore.open(dir, { pages: PAGES, cache: false });
  try {
    assert.ok(paged.stats().pages >= Math.ceil(1200 / 24), `${paged.stats().pages} pages`);
    assert.equal((await paged.search(vectors[2000]!, { k: 1 }))[0]?.id, 'extra');
    assert.equal(paged.stats().count, count + 1);
  } finally {
    await paged.close();
  }
});

test('store pages: with PCA, codes are clustered after training, in the reduced space', async () => {
  const store = await MemStore.open(tempDir(), options({ pca: { dims: 12 }, trainSize: 200 }));
  try {
    await fill(store, 0, 600);
    const s = store.stats();
    assert.equal(s.trained, true);
    assert.equal(s.storedDim, 12);
    assert.ok(s.pages >= Math.ceil(600 / 24), `${s.pages} pages`);
    for (let i = 0; i < 600; i += 37) {
      if (i % 300 === 293 || i % 300 === 250 || i % 300 === 201) continue;
      const hits = await store.search(vectors[i]!, { k: 3, exact: true });
      assert.ok(hits.some((h) => h.id === `v${i}`), `v${i}`);
    }
  } finally {
    await store.close();
  }
});

test('store pages: a filtered search of the pages returns only matching records, best first', async () => {
  const store = await MemStore.open(tempDir(), options());
  try {
    await fill(store);
    for (const q of queries.slice(0, 10)) {
      const hits = await store.search(q, { k: 10, filter: { g: 2 } });
      assert.ok(hits.length > 0);
      for (const h of hits) assert.equal(h.meta?.['g'], 2);
      for (let i = 1; i < hits.length; i++) assert.ok(hits[i - 1]!.score >= hits[i]!.score);
    }
  } finally {
    await store.close();
  }
});

test('store pages: a selective filter (1%, and one record) still returns k results whenever k records match, probing on past nprobe', async () => {
  const store = await MemStore.open(tempDir(), options());
  try {
    await fill(store);
    for (const q of queries.slice(0, 10)) {
      const hits = await store.search(q, { k: 10, filter: { rare: true }, nprobe: 1 });
      assert.equal(hits.length, 10);
      for (const h of hits) assert.equal(h.meta?.['rare'], true);
      const one = await store.search(q, { k: 10, filter: { one: true }, nprobe: 1 });
      assert.deepEqual(one.map((h) => h.id), ['v1234']);
      // A filter that takes a quarter of the records probes four times the pages, here all of
      // them: the exact filtered answer (probing nprobe pages only, the top fills from them).
      assert.deepEqual(await store.search(q, { k: 10, filter: { g: 1 } }), await store.search(q, { k: 10, filter: { g: 1 }, exact: true }));
    }
  } finally {
    await store.close();
  }
});

test('store pages: with the cache on, probing searches repeated with nothing written are answered from memory, near ones from pools scoped to their pages, and every answer equals the uncached store\'s', async () => {
  const cached = await MemStore.open(tempDir(), options({ cache: { entries: 16 } }));
  const plain = await MemStore.open(tempDir(), options());
  try {
    await fill(cached, 0, 1500);
    await fill(plain, 0, 1500);
    assert.ok(cached.stats().pages > 32, 'searches probe some pages only');
    const next = rng(99);
    const asked: Float32Array[] = [];
    let written = 1500;
    for (let step = 0; step < 300; step++) {
      const roll = next();
      if (roll < 0.15) {
        // A write between searches: an upsert of a new vector, or a delete.
        const id = `v${Math.floor(next() * written)}`;
        if (next() < 0.5) await Promise.all([cached.delete([id]), plain.delete([id])]);
        else {
          const record = { id: `w${step}`, vector: vectors[1500 + (step % 900)]! };
          await Promise.all([cached.add([record]), plain.add([record])]);
          written++;
        }
        continue;
      }
      let q: Float32Array;
      if (roll < 0.55 && asked.length > 0) q = asked[Math.floor(next() * asked.length)]!;
      else if (roll < 0.75 && asked.length > 0) q = asked[Math.floor(next() * asked.length)]!.map((x) => x + (next() - 0.5) * 0.01);
      else q = queries[Math.floor(next() * queries.length)]!.map((x) => x + (next() - 0.5) * 0.2);
      asked.push(q);
      const opts = next() < 0.5 ? { k: 10 } : { k: 5, nprobe: 3, filter: { g: 1 } };
      assert.deepEqual(await cached.search(q, opts), await plain.search(q, opts), `step ${step}`);
    }
    const stats = cached.stats().cache;
    assert.ok(stats.exactHits > 0, `${stats.exactHits} exact hits`);
    // Unfiltered near queries that probe their entry's pages (src/cache/CACHE.md, "Searches of the page index").
    assert.ok(stats.nearHits > 0, `${stats.nearHits} near hits`);
  } finally {
    await cached.close();
    await plain.close();
  }
});

test('store pages: bad pages options are INVALID_OPTION, naming nothing half-opened', async () => {
  const bad: unknown[] = ['yes', true, null, [], { maxPage: 8 }, { maxPage: 1e6 }, { maxPage: 20.5 }, { from: 0 }, { from: -1 }, { from: '300' }, { fromm: 300 }, { from: 300, extra: 1 }];
  for (const pages of bad) {
    await assert.rejects(
      MemStore.open(tempDir(), { dim: DIM, pages } as unknown as OpenOptions),
      (e: unknown) => e instanceof MemstoreError && e.code === 'INVALID_OPTION',
      JSON.stringify(pages),
    );
  }
});

test('store pages: a cosine store with a model (PCA, the rq rotation) routes a query to the page whose centroid is nearest it in direction, not to the longest centroid', async () => {
  // Two groups in 8 of 16 dimensions (PCA to 8 keeps them whole), each a page: a tight one about
  // e0, whose centroid is nearly unit (0.99), and a spread one at cosine 0.5 to e1 whose members
  // lean toward e0 by −0.48 to 0.48, whose centroid is about half as long (0.52). Near a member
  // leaning 0.35 or more, a query is nearer in direction to the spread centroid (cosine 0.50 to 0.64,
  // against 0.38 to 0.46 to the tight one) and its nearest records are spread ones, but its dot
  // product with the tight centroid is the larger (0.38 to 0.46, against 0.26 to 0.33): probing
  // one page, only routing on the unit sphere scans the page that holds them.
  const dim = 16;
  const next = rng(31);
  const unit = (v: Float32Array) => {
    const n = Math.hypot(...v);
    return v.map((x) => x / n);
  };
  const items: { id: string; vector: Float32Array }[] = [];
  const queries: Float32Array[] = [];
  for (let i = 0; i < 40; i++) {
    items.push({ id: `tight${i}`, vector: unit(Float32Array.from({ length: dim }, (_, j) => (j === 0 ? 1 : 0) + (j < 8 ? 0.05 * gaussian(next) : 0))) });
    const lean = -0.55 + (1.1 * i) / 39;
    const side = unit(Float32Array.from({ length: dim }, (_, j) => (j >= 2 && j < 8 ? gaussian(next) : 0))).map((x) => x * Math.sqrt(1 - lean * lean));
    const vector = side.map((x, j) => (j === 1 ? 0.5 : 0) + 0.866 * (j === 0 ? lean : x));
    items.push({ id: `spread${i}`, vector });
    if (lean >= 0.4) queries.push(perturb(vector, 0.99, next));
  }
  for (const model of [{ pca: { dims: 8 } }, { codec: 'rq4' as const }]) {
    const store = await MemStore.open(tempDir(), { dim, durability: 'none', cache: false, trainSize: 80, pages: { from: 80, maxPage: 64 }, ...model });
    try {
      await store.add(items);
      assert.equal(store.stats().pages, 2, JSON.stringify(model));
      for (const [i, q] of queries.entries()) {
        const truth = bruteForce('cosine', q, items, 3);
        assert.ok(truth.every((id) => id.startsWith('spread')), `query ${i}: ${truth}`);
        assert.deepEqual((await store.search(q, { k: 3, nprobe: 1 })).map((h) => h.id), truth, `${JSON.stringify(model)}, query ${i}`);
      }
    } finally {
      await store.close();
    }
  }
});

test('opening a paged store sizes the router once: no centroid arrays left behind in linear memory', async () => {
  // Growing the centroids a quarter at a time while loading left about four times their size in
  // the allocator's free lists, resident and never reused (2.6 MB at 368 pages of 512-d). Opened in
  // a fresh process, where nothing freed blocks before.
  const dim = 64;
  const pages = { from: 16, maxPage: 16 };
  const dir = tempDir();
  const store = await MemStore.open(dir, { dim, durability: 'none', cache: false, pages });
  await store.add(clustered(6000, dim, 17, 40).map((vector, i) => ({ id: `v${i}`, vector })));
  await store.close();
  const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'support', 'open-child.js');
  const out = execFileSync(process.execPath, [child, dir, JSON.stringify(pages)], { encoding: 'utf8' });
  const opened = JSON.parse(out) as { pages: number; freeBytes: number };
  assert.ok(opened.pages > 500, `${opened.pages} pages`);
  const centroidBytes = opened.pages * dim * 4;
  assert.ok(opened.freeBytes < centroidBytes, `${opened.freeBytes} bytes in free lists after opening, against ${centroidBytes} of centroids`);
});

async function answers(store: MemStore, queries: readonly Float32Array[]): Promise<string[][]> {
  const out: string[][] = [];
  for (const q of queries) out.push((await store.search(q, { k: 5, nprobe: 1 })).map((h) => `${h.id}:${h.score}`));
  return out;
}

/**
 * A closed store of 2,000 clustered 16-d vectors made with pages of at most 16 (from 64), its page
 * count then, 20 queries and their one-page answers then.
 */
async function smallPages(seed: number): Promise<{ dir: string; small: number; queries: Float32Array[]; before: string[][] }> {
  const dir = tempDir();
  const queries = clustered(20, 16, seed + 1, 12);
  const store = await MemStore.open(dir, { dim: 16, durability: 'none', cache: false, pages: { from: 64, maxPage: 16 } });
  try {
    await store.add(clustered(2000, 16, seed, 12).map((vector, i) => ({ id: `v${i}`, vector })));
    return { dir, small: store.stats().pages, queries, before: await answers(store, queries) };
  } finally {
    await store.close();
  }
}

test('pages settings persist: reopened without them a store keeps its own, reopened with others it takes them from then on, false included', async () => {
  const { dir, small, queries, before } = await smallPages(23);
  // Without options: its pages of at most 16, not the default 192 (which merged them into fewer).
  let store = await MemStore.open(dir, { cache: false });
  assert.equal(store.stats().pages, small);
  assert.deepEqual(await answers(store, queries), before);
  await store.close();
  // Other settings apply at open and stay.
  store = await MemStore.open(dir, { cache: false, pages: { from: 64, maxPage: 128 } });
  const large = store.stats().pages;
  assert.ok(large < small, `${large} pages at maxPage 128, ${small} at 16`);
  const afterChange = await answers(store, queries);
  await store.close();
  store = await MemStore.open(dir, { cache: false });
  assert.equal(store.stats().pages, large);
  assert.deepEqual(await answers(store, queries), afterChange);
  await store.close();
  // false: the exact scan from then on (blocks of 1,024 codes), and on every open after.
  store = await MemStore.open(dir, { cache: false, pages: false });
  assert.equal(store.stats().pages, 2);
  await store.close();
  store = await MemStore.open(dir, { cache: false });
  assert.equal(store.stats().pages, 2);
  await store.close();
  // And back: pages made at open (the store holds past `from`), kept by the next open.
  store = await MemStore.open(dir, { cache: false, pages: { from: 64, maxPage: 16 } });
  const again = store.stats().pages;
  assert.ok(again > 2, `${again} pages`);
  await store.close();
  store = await MemStore.open(dir, { cache: false });
  assert.equal(store.stats().pages, again);
  await store.close();
});

test('pages settings: a field left out keeps the store\'s own (not the default); {} changes nothing; a from raised past the count keeps the pages', async () => {
  const { dir, small, queries, before } = await smallPages(27);
  let store: MemStore;
  // { from } alone: maxPage stays 16 (the default, 192, would merge the pages).
  for (const pages of [{ from: 64 }, {}, { from: 100_000 }]) {
    const state = readFileSync(statePath(dir));
    store = await MemStore.open(dir, { cache: false, pages });
    assert.equal(store.stats().pages, small, JSON.stringify(pages));
    assert.deepEqual(await answers(store, queries), before, JSON.stringify(pages));
    await store.close();
    // The settings the store holds, given again: nothing is rewritten.
    if (pages.from !== 100_000) assert.ok(readFileSync(statePath(dir)).equals(state), `${JSON.stringify(pages)} rewrote the state`);
  }
  // { maxPage } alone: from stays 100,000 (set last), and the pages follow the new maxPage.
  store = await MemStore.open(dir, { cache: false, pages: { maxPage: 128 } });
  const large = store.stats().pages;
  assert.ok(large < small, `${large} pages at maxPage 128, ${small} at 16`);
  await store.close();
  store = await MemStore.open(dir, { cache: false, pages: { maxPage: 16 } });
  assert.ok(store.stats().pages > large, 'back to maxPage 16: pages split again');
  await store.close();
});

test('pages settings: a store whose configuration predates them takes the defaults; a damaged setting is CORRUPTION', async () => {
  const { dir, small } = await smallPages(25);
  const older = { formatVersion: 5, dim: 16, metric: 'cosine', codec: 'int8', pca: null, keepFull: true, trainSize: 4096 };
  await writeStoreConfig(dir, older);
  const store = await MemStore.open(dir, { cache: false });
  assert.ok(store.stats().pages < small, 'the default maxPage (192) merges pages of 16');
  await store.close();
  for (const pages of [{ from: 64, maxPage: 3 }, { from: 0, maxPage: 16 }, { from: 64 }, true, 'x', { from: 64, maxPage: 16, extra: 1 }]) {
    await writeStoreConfig(dir, { ...older, pages });
    await rejectsWith(() => MemStore.open(dir), 'CORRUPTION');
    // Given at open, a valid setting does not repair what the store holds: the record is refused first.
    await rejectsWith(() => MemStore.open(dir, { pages: { from: 64, maxPage: 16 } }), 'CORRUPTION');
  }
});

test('pages settings: pages split at an open for a new maxPage are kept by a close with no write (every later open had split them again); a reopen with pages after pages: false finds the exact index whether or not anything was written in between (the old pages had come back only when nothing was)', async () => {
  const relocatedOf = (store: MemStore) => (store as unknown as { index: { hasRelocated(): boolean } }).index.hasRelocated();
  const { dir, small } = await smallPages(31);
  let store = await MemStore.open(dir, { cache: false, pages: { maxPage: 64 } });
  const large = store.stats().pages;
  assert.ok(large < small, `${large} pages at maxPage 64, ${small} at 16`);
  assert.equal(relocatedOf(store), true, 'the merge at open moved vectors');
  await store.close();
  store = await MemStore.open(dir, { cache: false });
  assert.equal(store.stats().pages, large);
  assert.equal(relocatedOf(store), false, 'nothing moved at this open: the layout was written');
  await store.close();

  const counts: number[] = [];
  for (const between of ['nothing', 'an add'] as const) {
    const { dir: fresh } = await smallPages(31);
    store = await MemStore.open(fresh, { cache: false, pages: false });
    if (between === 'an add') await store.add([{ id: 'late', vector: clustered(1, 16, 99)[0]! }]);
    await store.close();
    // from is the default again (16,384), past the count: the exact index either way.
    store = await MemStore.open(fresh, { cache: false, pages: { maxPage: 16 } });
    counts.push(store.stats().pages);
    await store.close();
  }
  assert.deepEqual(counts, [counts[1], counts[1]]);
  assert.ok(counts[0]! < small / 4, `${counts[0]} blocks of the exact scan, not ${small} pages`);
});
