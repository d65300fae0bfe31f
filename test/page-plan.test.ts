import assert from 'node:assert/strict';
import module from 'node:module';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import workerThreads from 'node:worker_threads';
import { MemStore } from '../src/index.js';
import { getCodec } from '../src/codec/index.js';
import { FlatIndex } from '../src/index/flat-index.js';
import { planInputOf, planPages, type PagePlanShape } from '../src/index/page-plan.js';
import { planOffThread, planThreads, startPagePlan } from '../src/index/page-plan-job.js';
import { normalized } from '../src/vector.js';
import { clustered, tempDir } from './helpers.js';
import { runUntilKilled } from './support/killable.js';
import { issueBatch, oneProbeAnswers, PAGE_WRITES_BATCHES, pageWritesOptions, writeBatch } from './support/page-writes.js';

/**
 * Clustering into pages off the write (src/index/PAGES.md, "Clustering off the write"): the plan is
 * made in a worker thread, searches and writes go on meanwhile, the writes made meanwhile are
 * replayed on the new pages, and the pages are those clustering inside the write made: the same
 * however the writes and the plan interleave, after a close, an abandon or a kill -9 in the window.
 */
// The tests' stores are small: their plans go to a worker all the same (as every plan from the default pages.from does).
planThreads.minWork = 0;
const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'support', 'paging-child.js');
const SHAPE: PagePlanShape = { codec: 'int8', dim: 48, metric: 'dot', maxPage: 64, sphere: undefined, inputMean: undefined };

function flatOf(n: number): FlatIndex {
  const flat = new FlatIndex(getCodec('int8'), SHAPE.dim, false, 'dot');
  // Ids out of order: the plan takes them in id order whatever order they came in.
  clustered(n, SHAPE.dim, 7).forEach((v, i) => flat.put(`v${(i * 7919) % n}`, normalized(v)));
  return flat;
}

async function straight(config: string): Promise<{ count: number; pages: number; answers: string[][] }> {
  const store = await MemStore.open(tempDir(), pageWritesOptions(config));
  try {
    for (let b = 0; b < PAGE_WRITES_BATCHES; b++) await writeBatch(store, b);
    return { count: store.stats().count, pages: store.stats().pages, answers: await oneProbeAnswers(store) };
  } finally {
    await store.close();
  }
}

async function answersOf(dir: string, config: string): Promise<{ count: number; pages: number; answers: string[][] }> {
  const store = await MemStore.open(dir, pageWritesOptions(config));
  try {
    return { count: store.stats().count, pages: store.stats().pages, answers: await oneProbeAnswers(store) };
  } finally {
    await store.close();
  }
}

/** Every batch issued at once (writeBatch's writes, none awaited before the next), in call order. */
function issueAll(store: MemStore): Promise<unknown>[] {
  const all: Promise<unknown>[] = [];
  for (let b = 0; b < PAGE_WRITES_BATCHES; b++) all.push(...issueBatch(store, b));
  return all;
}

/** The order in which `writes` resolve, as their positions. */
function resolutionOrder(writes: readonly Promise<unknown>[]): number[] {
  const order: number[] = [];
  writes.forEach((w, i) => void w.then(() => order.push(i)));
  return order;
}

/** Resolves once `store` holds `count` records while its worker still clusters (true), or once `writes` are done without that (false). */
async function appliedWhileClustering(store: MemStore, count: number, writes: readonly Promise<unknown>[]): Promise<boolean> {
  let done = false;
  void Promise.allSettled(writes).then(() => (done = true));
  while (!done) {
    const now = store.stats();
    if (now.clustering && now.count === count) return true;
    await new Promise((resolve) => setImmediate(resolve));
  }
  return false;
}

test('page plan: a worker thread plans the pages this thread plans, and hands the codes and scales back', async () => {
  const flat = flatOf(3_000);
  try {
    const here = planPages(planInputOf(flat, SHAPE));
    const input = planInputOf(flat, SHAPE);
    const codes = input.codes.slice();
    const scales = input.scales.slice();
    const plan = await startPagePlan(input)!.done;
    assert.deepEqual([...plan.pages], [...here]);
    assert.deepEqual(plan.codes, codes);
    assert.deepEqual(plan.scales, scales);
    assert.ok(new Set(here).size > 20, `${new Set(here).size} pages`);
  } finally {
    flat.free();
  }
});

test('page plan: a plan that fails in the worker, a cancelled one and a plan of parts of buffers are refused', async () => {
  const flat = flatOf(600);
  try {
    // A store never sends an unknown codec; a worker's own failure must still reach the store.
    const bad = { ...planInputOf(flat, SHAPE), codec: 'int7' as 'int8' };
    await assert.rejects(startPagePlan(bad)!.done);
    const job = startPagePlan(planInputOf(flat, SHAPE))!;
    job.cancel();
    await assert.rejects(job.done);
    const input = planInputOf(flat, SHAPE);
    assert.throws(() => startPagePlan({ ...input, codes: input.codes.subarray(1) }), RangeError);
    assert.throws(() => planPages({ ...input, scales: input.scales.subarray(1) }), RangeError);
  } finally {
    flat.free();
  }
});

test('pages at pages.from: searches answer while the worker clusters (from the exact scan), and the add that reached it resolves once the pages are in', async () => {
  const dim = 64;
  const n = 4_000;
  const vectors = clustered(n, dim, 11);
  const store = await MemStore.open(tempDir(), { dim, cache: false, pages: { from: n, maxPage: 64 } });
  try {
    await store.add(vectors.slice(0, n - 100).map((vector, i) => ({ id: `v${i}`, vector })));
    let added = false;
    const adding = store.add(vectors.slice(n - 100).map((vector, i) => ({ id: `v${n - 100 + i}`, vector }))).then(() => (added = true));
    while (store.stats().count < n) await new Promise((resolve) => setImmediate(resolve));
    const hits = await store.search(vectors[n - 1]!, { k: 1 });
    assert.equal(hits[0]?.id, `v${n - 1}`);
    assert.equal(added, false);
    assert.equal(store.stats().clustering, true);
    await adding;
    assert.equal(store.stats().clustering, false);
    assert.ok(store.stats().pages > 20, `${store.stats().pages} pages`);
    assert.equal((await store.search(vectors[n - 1]!, { k: 1 }))[0]?.id, `v${n - 1}`);
  } finally {
    await store.close();
  }
});

for (const config of ['cosine int8', 'cosine int8, paged late', 'cosine rq2, trained late', 'l2 int8 + PCA 12, trained late']) {
  test(`pages at pages.from (${config}): writes made while the worker clusters are replayed on its pages, which are those of a store that waited for each write, and acknowledged in the order they were made`, async () => {
    const expected = await straight(config);
    const dir = tempDir();
    const store = await MemStore.open(dir, pageWritesOptions(config));
    let inWindow: boolean;
    try {
      const all = issueAll(store);
      const order = resolutionOrder(all);
      inWindow = await appliedWhileClustering(store, expected.count, all);
      await Promise.all(all);
      // Acknowledged in the order they were made, those that waited for the pages and those that did not.
      assert.deepEqual(order, all.map((_, i) => i));
      assert.equal(store.stats().pages, expected.pages);
      assert.deepEqual(await oneProbeAnswers(store), expected.answers);
    } finally {
      await store.close();
    }
    assert.ok(inWindow, 'no write was made while the worker clustered');
    assert.deepEqual(await answersOf(dir, config), expected);
  });
}

test('pages at pages.from: close() while the worker clusters waits for the pages; abandon() does not, and the next open makes them', async () => {
  const config = 'cosine int8, paged late';
  const expected = await straight(config);
  for (const end of ['close', 'abandon'] as const) {
    const dir = tempDir();
    const store = await MemStore.open(dir, pageWritesOptions(config));
    const all = issueAll(store);
    // Once every write is logged and applied, with the pages still to come.
    assert.ok(await appliedWhileClustering(store, expected.count, all), end);
    await (end === 'close' ? store.close() : store.abandon());
    await Promise.all(all);
    assert.deepEqual(await answersOf(dir, config), expected, end);
  }
});

test('pages at pages.from: compact() called while the worker clusters takes the plan in itself and re-clusters it, as after a store that waited for each write', async () => {
  const config = 'cosine int8, paged late';
  const expectedDir = tempDir();
  const waited = await MemStore.open(expectedDir, pageWritesOptions(config));
  try {
    for (let b = 0; b < PAGE_WRITES_BATCHES; b++) await writeBatch(waited, b);
    await waited.compact();
  } finally {
    await waited.close();
  }
  const expected = await answersOf(expectedDir, config);
  const dir = tempDir();
  const store = await MemStore.open(dir, pageWritesOptions(config));
  try {
    const all = issueAll(store);
    assert.ok(await appliedWhileClustering(store, expected.count, all));
    // Called in the window, with a write after it: no wait for ever (the swap's task and compaction
    // both want the gate), and the write after it lands after it.
    const compacted = store.compact();
    const after = store.add([{ id: 'after', vector: new Float32Array(24).fill(0.5) }]);
    await Promise.all([...all, compacted, after]);
    assert.equal(store.stats().clustering, false);
    assert.equal(store.stats().count, expected.count + 1);
    await store.delete(['after']);
    assert.deepEqual(await oneProbeAnswers(store), expected.answers);
    assert.equal(store.stats().pages, expected.pages);
  } finally {
    await store.close();
  }
});

test('compact(): pages re-clustered in a worker thread are those re-clustering in place makes, and searches answer meanwhile', async () => {
  for (const config of ['cosine int8', 'l2 int8 + PCA 12', 'cosine rq2']) {
    const compacted = async (minWork: number, during?: (store: MemStore) => Promise<void>) => {
      const lowered = planThreads.minWork;
      planThreads.minWork = minWork;
      try {
        const store = await MemStore.open(tempDir(), pageWritesOptions(config));
        try {
          for (let b = 0; b < PAGE_WRITES_BATCHES; b++) await writeBatch(store, b);
          const compacting = store.compact();
          await during?.(store);
          await compacting;
          assert.equal(store.stats().clustering, false);
          return { pages: store.stats().pages, answers: await oneProbeAnswers(store) };
        } finally {
          await store.close();
        }
      } finally {
        planThreads.minWork = lowered;
      }
    };
    const inPlace = await compacted(Infinity);
    let searched = false;
    const inWorker = await compacted(0, async (store) => {
      while (!store.stats().clustering) await new Promise((resolve) => setImmediate(resolve));
      assert.equal((await store.search(new Float32Array(24).fill(0.25), { k: 3 })).length, 3);
      searched = store.stats().clustering;
    });
    assert.ok(searched, `${config}: the search came back after the re-clustering`);
    assert.deepEqual(inWorker, inPlace, config);
  }
});

test('pages at pages.from: a process killed (kill -9) while its worker clusters reopens with every write and the pages of one never killed', async () => {
  const config = 'cosine int8, paged late';
  const expected = await straight(config);
  const dir = tempDir();
  let seen = '';
  await runUntilKilled(child, [dir, config, String(expected.count)], (line, kill) => {
    seen ||= line;
    kill();
  });
  assert.equal(seen, 'window');
  assert.deepEqual(await answersOf(dir, config), expected);
});

/** Runs `body` with `new Worker` throwing ERR_ACCESS_DENIED (as under Node's permission model); resolves to how many were tried. */
async function withoutWorkers(body: () => Promise<void>): Promise<number> {
  const real = workerThreads.Worker;
  const require = module.createRequire(import.meta.url);
  const cjs = require('node:worker_threads') as { Worker: unknown };
  let tried = 0;
  cjs.Worker = class {
    constructor() {
      tried++;
      throw Object.assign(new Error('no threads here'), { code: 'ERR_ACCESS_DENIED' });
    }
  };
  module.syncBuiltinESMExports();
  try {
    await body();
    return tried;
  } finally {
    cjs.Worker = real;
    module.syncBuiltinESMExports();
  }
}

/** The page-writes of `config`, each awaited, in a new store: its pages and one-page answers. */
async function awaitedEach(config: string): Promise<{ pages: number; answers: string[][] }> {
  const store = await MemStore.open(tempDir(), pageWritesOptions(config));
  try {
    for (let b = 0; b < PAGE_WRITES_BATCHES; b++) await writeBatch(store, b);
    assert.equal(store.stats().clustering, false);
    return { pages: store.stats().pages, answers: await oneProbeAnswers(store) };
  } finally {
    await store.close();
  }
}

test('pages at pages.from: where no worker thread can start, the write clusters in its own thread, into the same pages', async () => {
  const config = 'cosine int8';
  const expected = await straight(config);
  let got: { pages: number; answers: string[][] } | undefined;
  const tried = await withoutWorkers(async () => void (got = await awaitedEach(config)));
  assert.equal(tried, 1);
  assert.deepEqual(got, { pages: expected.pages, answers: expected.answers });
});

test('pages at pages.from: a small plan is made inside the write (a worker would cost more than it saves), into the same pages', async () => {
  const config = 'cosine int8';
  const expected = await straight(config);
  const lowered = planThreads.minWork;
  planThreads.minWork = 1 << 16;
  try {
    // 300 vectors of 24 dimensions; every plan from the default pages.from (16,384) goes to a worker.
    assert.equal(planOffThread({ ids: new Array<string>(300), dim: 24 }), false);
    assert.equal(planOffThread({ ids: new Array<string>(16_384), dim: 4 }), true);
    let got: { pages: number; answers: string[][] } | undefined;
    const tried = await withoutWorkers(async () => void (got = await awaitedEach(config)));
    assert.equal(tried, 0);
    assert.deepEqual(got, { pages: expected.pages, answers: expected.answers });
  } finally {
    planThreads.minWork = lowered;
  }
});
