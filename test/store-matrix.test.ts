import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { MemStore, type OpenOptions } from '../src/index.js';
import { CODEC_NAMES, isRqCodec, type CodecName } from '../src/codec/codec.js';
import { METRICS, type Metric } from '../src/options.js';
import { bruteForce, clustered, exactScore, recall, tempDir } from './helpers.js';

/**
 * One behaviour suite, run for every codec x PCA x metric x lookaside cache x index (as lmdb-js runs
 * its basic tests per encoding). dim 40 and PCA 24 are deliberately not multiples of 16, so code
 * padding is exercised. The paged configurations cluster the codes into pages of at most 16 from
 * 60 vectors on: few enough pages that a default search probes them all, so every answer is still
 * the exact one, through the page index's splits, merges, checkpoints and reopening.
 */
const DIM = 40;
const N = 240;
const TRAIN = 100;

interface Config {
  codec: CodecName;
  metric: Metric;
  pca: boolean;
  cache: boolean;
  pages: boolean;
}

const configs: Config[] = [];
for (const codec of CODEC_NAMES) {
  for (const metric of METRICS) for (const pca of [false, true]) for (const cache of [false, true]) for (const pages of [false, true]) configs.push({ codec, metric, pca, cache, pages });
}

/** Bytes of every file under `dir`, however deep. */
/** Bytes of the files under `dir`, each rounded up to whole 4 KiB pages: the most of them a map can hold resident. */
function filesBytes(dir: string): number {
  let sum = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    sum += entry.isDirectory() ? filesBytes(path) : Math.ceil(statSync(path).size / 4096) * 4096;
  }
  return sum;
}

function openOptions(c: Config): OpenOptions {
  return {
    dim: DIM,
    codec: c.codec,
    metric: c.metric,
    cache: c.cache ? { entries: 16 } : false,
    durability: 'none',
    pages: c.pages ? { from: 60, maxPage: 16 } : false,
    ...(c.pca ? { pca: { dims: 24 } } : {}),
    ...(trains(c) ? { trainSize: TRAIN } : {}),
  };
}

/** Whether the store fits a model at trainSize: PCA, or the rotation of rq codes. */
function trains(c: Config): boolean {
  return c.pca || isRqCodec(c.codec);
}

/** Dimensions of the stored space: PCA's output, rotated up to a multiple of 128 for rq codes. */
function storedDim(c: Config): number {
  return isRqCodec(c.codec) ? 128 : c.pca ? 24 : DIM;
}

/**
 * What the codes alone must reach: recall@10 and the largest score error relative to the metric's
 * scale. PCA to 24 of 40 dims drops real information (and an l2 estimate omits the dropped
 * components); one or two bits per dimension are coarse by design (their recall comes back with
 * rescoring, the test above).
 */
function codesOnly(c: Config): { recall: number; drift: number } {
  const rq = { rq1: { recall: 0.4, drift: 0.3 }, rq2: { recall: 0.6, drift: 0.15 }, rq4: { recall: 0.75, drift: 0.08 } } as const;
  const own = isRqCodec(c.codec) ? rq[c.codec] : { recall: 0.8, drift: 0.05 };
  return c.pca ? { recall: Math.min(0.5, own.recall), drift: Math.max(0.3, own.drift) } : own;
}

const vectors = clustered(N, DIM, 7);
const items = vectors.map((vector, i) => ({
  id: `doc-${i}`,
  vector,
  text: `text of ${i}`,
  meta: { group: i % 3, tag: i % 2 === 0 ? 'even' : 'odd' },
}));
const queries = clustered(20, DIM, 99);

function basicTests(c: Config): void {
  test('searches before training are exact, and training happens at trainSize', async () => {
    const dir = tempDir();
    const store = await MemStore.open(dir, openOptions(c));
    try {
      const first = items.slice(0, trains(c) ? TRAIN - 1 : 50);
      await store.add(first);
      assert.equal(store.stats().trained, !trains(c));
      if (trains(c)) {
        assert.equal(store.stats().storedDim, DIM);
        for (const q of queries.slice(0, 5)) {
          const hits = await store.search(q, { k: 5 });
          assert.deepEqual(hits.map((h) => h.id), bruteForce(c.metric, q, first, 5));
          for (const h of hits) {
            const it = first.find((x) => x.id === h.id)!;
            assert.ok(Math.abs(h.score - exactScore(c.metric, q, it.vector)) <= 1e-4 * Math.max(1, Math.abs(h.score)));
          }
        }
      }
      await store.add(items.slice(first.length));
      const s = store.stats();
      assert.equal(s.trained, true);
      assert.equal(s.count, N);
      assert.equal(s.storedDim, storedDim(c));
      assert.equal(s.codec, c.codec);
      assert.equal(s.metric, c.metric);
      // RAM per vector: the code, its scale, the 12-byte place of its full vector, and its id's share of the id table.
      const idBytes = items.reduce((sum, it) => sum + Buffer.byteLength(it.id), 0) / N;
      // Plus its share of what the cache and the model (PCA's axes, the rq rotation) hold.
      const cacheShare = (s.cache.bytes + s.modelBytes) / s.count;
      assert.equal(s.modelBytes > 0, c.pca || isRqCodec(c.codec));
      assert.ok(s.bytesPerVector - cacheShare >= s.codeBytesPerVector + 12 + idBytes, `${s.bytesPerVector} B per vector`);
      // In place of the code and scale: pages of at most 16 codes, each in a room of 16 or 20 rows
      // (PAGES.md) of code, scale and slot, or of 32 in the fast-scan layout of rq codes (with the
      // query's table, 16 bytes per group, and the table kernel's copy of the query); each
      // page's centroid as float64 sums and as a row of the router, which starts with room for 64.
      const fastScan = isRqCodec(c.codec);
      const tables = fastScan ? (((s.storedDim * Number(c.codec.slice(2))) / 4) * 16 + 4 * s.storedDim + 16) / s.count : 0;
      const pageRows = (s.pages * (fastScan ? 32 : 20) * (s.codeBytesPerVector + 8)) / s.count + tables;
      const centroids = (s.pages * 8 * s.storedDim + Math.max(64, 2 * s.pages) * 4 * (s.storedDim + 16)) / s.count;
      // A cosine router of a model's space: its center, and at most storedDim rows of what the model's range leaves out (router.ts).
      const sphere = c.metric === 'cosine' && s.modelBytes > 0 ? ((s.storedDim + 1) * s.storedDim * 4) / s.count : 0;
      const pageShare = c.pages ? pageRows + centroids + sphere + 8 - s.codeBytesPerVector - 4 : 0;
      assert.ok(s.bytesPerVector - cacheShare <= s.codeBytesPerVector + 4 + 12 + 3 * (idBytes + 14) + pageShare, `${s.bytesPerVector} B per vector`);
      assert.ok(s.memoryBytes >= s.count * s.codeBytesPerVector + s.cache.bytes + s.modelBytes);
      // The mapped state file's resident pages: some (its meta pages are read at open), and at most
      // the files under dir twice over: when LMDB grows its map it keeps the earlier mapping of the
      // file beside the new one, and a page resident in both counts twice in RSS, as `top` counts it.
      assert.ok(s.mappedBytes !== undefined && s.mappedBytes > 0, `mappedBytes ${s.mappedBytes}`);
      assert.ok(s.mappedBytes <= 2 * filesBytes(dir), `mappedBytes ${s.mappedBytes} of ${filesBytes(dir)} bytes of files`);
    } finally {
      await store.close();
    }
  });

  test('rescored search finds the exact top-k and reports exact scores', async () => {
    const dir = tempDir();
    const store = await MemStore.open(dir, openOptions(c));
    try {
      await store.add(items);
      let total = 0;
      for (const q of queries) {
        const hits = await store.search(q, { k: 10 });
        assert.equal(hits.length, 10);
        for (let i = 1; i < hits.length; i++) assert.ok(hits[i - 1]!.score >= hits[i]!.score, 'best first');
        for (const h of hits) {
          const it = items.find((x) => x.id === h.id)!;
          assert.ok(Math.abs(h.score - exactScore(c.metric, q, it.vector)) <= 1e-4 * Math.max(1, Math.abs(h.score)));
          assert.equal(h.text, it.text);
          assert.deepEqual(h.meta, it.meta);
        }
        total += recall(hits.map((h) => h.id), bruteForce(c.metric, q, items, 10));
      }
      assert.ok(total / queries.length >= 0.95, `recall@10 with rescoring ${total / queries.length}`);
    } finally {
      await store.close();
    }
  });

  test('unrescored search ranks by the quantized codes with scores on the metric scale', async () => {
    const dir = tempDir();
    const store = await MemStore.open(dir, openOptions(c));
    try {
      await store.add(items);
      let total = 0;
      let scoreErr = 0;
      for (const q of queries) {
        const hits = await store.search(q, { k: 10, rescore: false });
        assert.equal(hits.length, 10);
        total += recall(hits.map((h) => h.id), bruteForce(c.metric, q, items, 10));
        for (const h of hits) {
          const x = items.find((it) => it.id === h.id)!.vector;
          const exact = exactScore(c.metric, q, x);
          // Errors relative to the natural scale of each metric: |q||x| for inner products, |q|+|x| for distances.
          const qn = Math.hypot(...q);
          const xn = Math.hypot(...x);
          const scale = c.metric === 'l2' ? qn + xn : c.metric === 'dot' ? qn * xn : 1;
          scoreErr = Math.max(scoreErr, Math.abs(h.score - exact) / scale);
        }
      }
      // The codes alone must still rank sensibly and score on the metric's scale.
      const floor = codesOnly(c);
      assert.ok(total / queries.length >= floor.recall, `recall@10 without rescoring ${total / queries.length}`);
      assert.ok(scoreErr < floor.drift, `estimated scores drift ${scoreErr}`);
    } finally {
      await store.close();
    }
  });

  test('get returns what was added; upsert replaces; delete removes', async () => {
    const dir = tempDir();
    const store = await MemStore.open(dir, openOptions(c));
    try {
      await store.add(items);
      const rec = await store.get('doc-5');
      assert.ok(rec);
      assert.deepEqual(Array.from(rec.vector), Array.from(items[5]!.vector));
      assert.equal(rec.text, 'text of 5');
      assert.deepEqual(rec.meta, items[5]!.meta);

      const replacement = queries[0]!;
      await store.add([{ id: 'doc-5', vector: replacement }]);
      const after = await store.get('doc-5');
      assert.ok(after);
      assert.deepEqual(Array.from(after.vector), Array.from(replacement));
      assert.equal(after.text, undefined, 'an upsert replaces the whole record');
      assert.equal(after.meta, undefined);
      assert.equal(store.stats().count, N);
      const hits = await store.search(replacement, { k: 1 });
      if (c.metric !== 'dot') assert.equal(hits[0]?.id, 'doc-5');

      assert.equal(await store.delete(['doc-5', 'doc-6', 'doc-6', 'missing']), 2);
      assert.equal(await store.get('doc-5'), undefined);
      assert.equal(store.stats().count, N - 2);
      const all = await store.search(replacement, { k: N });
      assert.equal(all.length, N - 2);
      assert.ok(!all.some((h) => h.id === 'doc-5' || h.id === 'doc-6'));
      assert.equal(await store.delete(['doc-5']), 0);
    } finally {
      await store.close();
    }
  });

  test('filters on meta equality and $in return exactly the matching top-k', async () => {
    const dir = tempDir();
    const store = await MemStore.open(dir, openOptions(c));
    try {
      await store.add(items);
      for (const q of queries.slice(0, 5)) {
        const eq = await store.search(q, { k: 5, filter: { tag: 'odd', group: 1 } });
        assert.equal(eq.length, 5);
        for (const h of eq) assert.deepEqual(h.meta, { ...h.meta, tag: 'odd', group: 1 });
        const matching = items.filter((it) => it.meta.tag === 'odd' && it.meta.group === 1);
        assert.ok(recall(eq.map((h) => h.id), bruteForce(c.metric, q, matching, 5)) >= 0.8);

        const inHits = await store.search(q, { k: 8, filter: { group: { $in: [0, 2] } } });
        assert.equal(inHits.length, 8);
        for (const h of inHits) assert.ok(h.meta?.['group'] === 0 || h.meta?.['group'] === 2);
        assert.deepEqual(await store.search(q, { filter: { tag: 'none' } }), []);
      }
    } finally {
      await store.close();
    }
  });

  test('a repeated search gives the same answer, and one after a write sees the write', async () => {
    const dir = tempDir();
    const store = await MemStore.open(dir, openOptions(c));
    try {
      await store.add(items);
      const q = queries[3]!;
      const first = await store.search(q, { k: 5 });
      assert.deepEqual(await store.search(q, { k: 5 }), first);
      assert.equal(store.stats().cache.hits, c.cache ? 1 : 0);
      await store.add([{ id: 'probe', vector: q, text: 'the query itself' }]);
      const after = await store.search(q, { k: 5 });
      if (c.metric !== 'dot') assert.equal(after[0]?.id, 'probe');
      // Under 'dot' the query's own vector scores |q|²: it enters the top 5 exactly when that beats the 5th.
      else assert.equal(after.some((h) => h.id === 'probe'), exactScore('dot', q, q) > first[4]!.score);
      await store.delete(['probe']);
      assert.deepEqual((await store.search(q, { k: 5 })).map((h) => h.id), first.map((h) => h.id));
    } finally {
      await store.close();
    }
  });

  test('close and reopen keeps every record, the training and the answers', async () => {
    const dir = tempDir();
    const first = await MemStore.open(dir, openOptions(c));
    await first.add(items);
    await first.delete(['doc-0']);
    const before = await Promise.all(queries.slice(0, 5).map((q) => first.search(q, { k: 10 })));
    const statsBefore = first.stats();
    if (c.pages) {
      // Clustered, and in pages few enough that a default search probes every one.
      assert.ok(statsBefore.pages >= Math.ceil(N / 16), `${statsBefore.pages} pages`);
      assert.equal(statsBefore.nprobe, statsBefore.pages);
    }
    await first.close();

    const again = await MemStore.open(dir, { cache: c.cache ? { entries: 16 } : false });
    try {
      const s = again.stats();
      assert.equal(s.count, N - 1);
      assert.equal(s.trained, true);
      assert.equal(s.storedDim, statsBefore.storedDim);
      assert.equal(s.codec, c.codec);
      assert.equal(s.metric, c.metric);
      const after = await Promise.all(queries.slice(0, 5).map((q) => again.search(q, { k: 10 })));
      assert.deepEqual(after.map((hs) => hs.map((h) => h.id)), before.map((hs) => hs.map((h) => h.id)));
      assert.equal(await again.get('doc-0'), undefined);
      assert.equal((await again.get('doc-1'))?.text, 'text of 1');
    } finally {
      await again.close();
    }
  });
}

for (const c of configs) {
  describe(`store codec=${c.codec} metric=${c.metric} pca=${c.pca ? 24 : 'none'} cache=${c.cache ? 'on' : 'off'} index=${c.pages ? 'pages' : 'exact'}`, () => basicTests(c));
}
