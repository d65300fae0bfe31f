import assert from 'node:assert/strict';
import module from 'node:module';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import workerThreads from 'node:worker_threads';
import fc from 'fast-check';
import { MemStore, type OpenOptions } from '../src/index.js';
import { getCodec } from '../src/codec/index.js';
import { FlatIndex } from '../src/index/flat-index.js';
import { PageIndex } from '../src/index/page-index.js';
import { planInputOf, planPages, type PagePlanShape } from '../src/index/page-plan.js';
import { planOffThread, planThreads, startPagePlan } from '../src/index/page-plan-job.js';
import { normalized } from '../src/vector.js';
import { nodeFileLayer, type FileLayer } from '../io/file-layer.js';
import { clustered, nearCenters, tempDir } from './helpers.js';
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
    // Every write waited for the pages.
    assert.equal(store.stats().clustering, false);
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

/** Resolves at the next turn of the event loop. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Counts the turns of the event loop from now until stop(): turn() is the one running. */
function turnTicker(): { turn: () => number; stop: () => Promise<void> } {
  let turn = 0;
  let ticking = true;
  const ticker = (async () => {
    while (ticking) {
      turn++;
      await nextTurn();
    }
  })();
  return {
    turn: () => turn,
    stop: async () => {
      ticking = false;
      await ticker;
    },
  };
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
    await nextTurn();
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
    while (store.stats().count < n) await nextTurn();
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
      while (!store.stats().clustering) await nextTurn();
      assert.equal((await store.search(new Float32Array(24).fill(0.25), { k: 3 })).length, 3);
      searched = store.stats().clustering;
    });
    assert.ok(searched, `${config}: the search came back after the re-clustering`);
    assert.deepEqual(inWorker, inPlace, config);
  }
});

test('pages at pages.from: a process killed (kill -9) while its worker clusters reopens with every write and the pages of one never killed, also with checkpoints due in the window (held back until the pages are in)', async () => {
  const config = 'cosine int8, paged late';
  const expected = await straight(config);
  // 4 KiB: background checkpoints fall due many times over in the window. Taken there, one recorded
  // the exact index past the write that set the clustering off, and the reopen clustered another
  // snapshot into other pages (a hostile pass).
  for (const checkpointBytes of [undefined, 4096]) {
    const dir = tempDir();
    let seen = '';
    await runUntilKilled(child, [dir, config, String(expected.count), ...(checkpointBytes === undefined ? [] : [String(checkpointBytes)])], (line, kill) => {
      seen ||= line;
      kill();
    });
    assert.equal(seen, 'window', String(checkpointBytes));
    assert.deepEqual(await answersOf(dir, config), expected, String(checkpointBytes));
  }
});

test('pages at pages.from: no background checkpoint runs while the worker clusters (the log only grows), and one that fell due runs once the pages are in', async () => {
  const config = 'cosine int8';
  const expected = await straight(config);
  const store = await MemStore.open(tempDir(), pageWritesOptions(config, { checkpointBytes: 1024 }));
  try {
    const all = issueAll(store);
    let done = false;
    void Promise.allSettled(all).then(() => (done = true));
    let seen = 0;
    let longest = 0;
    while (!done) {
      const now = store.stats();
      if (now.clustering) {
        assert.ok(now.walBytes >= longest, `the log shrank from ${longest} to ${now.walBytes} bytes while the worker clustered`);
        longest = now.walBytes;
        seen++;
      }
      await nextTurn();
    }
    await Promise.all(all);
    assert.ok(seen > 0, 'never saw the worker clustering');
    // A checkpoint drops the log before it; due many times over, one starts once the pages are in.
    for (let i = 0; i < 400 && store.stats().walBytes >= longest; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.ok(store.stats().walBytes < longest, `the log is still ${store.stats().walBytes} bytes`);
    assert.deepEqual(await oneProbeAnswers(store), expected.answers);
  } finally {
    await store.close();
  }
});

test('pages at pages.from: writes that cross it, then close() at once, without waiting for them: the close clusters them and checkpoints the pages of a store that awaited each', async () => {
  for (const config of ['cosine int8', 'cosine int8, paged late']) {
    const expected = await straight(config);
    const dir = tempDir();
    const store = await MemStore.open(dir, pageWritesOptions(config));
    const all = issueAll(store);
    // Called before any of them is applied: each crossing write is accepted, and clusters as any other.
    await store.close();
    await Promise.all(all);
    assert.deepEqual(await answersOf(dir, config), expected, config);
  }
});

test('pages at pages.from: writes, compact() and a write after it, issued in the window without waiting, are acknowledged in call order', async () => {
  const config = 'cosine int8, paged late';
  const expected = await straight(config);
  const store = await MemStore.open(tempDir(), pageWritesOptions(config));
  try {
    const all = issueAll(store);
    assert.ok(await appliedWhileClustering(store, expected.count, all));
    all.push(store.compact(), store.delete(['v3']), store.add([{ id: 'late', vector: new Float32Array(24).fill(0.5) }]));
    const order = resolutionOrder(all);
    await Promise.all(all);
    assert.deepEqual(order, all.map((_, i) => i));
  } finally {
    await store.close();
  }
});

test('pages at pages.from: an open that fails after its replay set clustering off ends the worker (it had taken its plan into the freed store later, and warned)', async () => {
  const dim = 64;
  const vectors = clustered(2_600, dim, 13);
  const options: OpenOptions = { dim, cache: false, pages: { from: 2_000, maxPage: 32 } };
  const dir = tempDir();
  const first = await MemStore.open(dir, options);
  await first.add(vectors.slice(0, 2_000).map((vector, i) => ({ id: `v${i}`, vector })));
  await first.add(vectors.slice(2_000).map((vector, i) => ({ id: `w${i}`, vector })));
  // No checkpoint: the next open replays the log, and the replay crosses pages.from.
  await first.abandon();
  let lists = 0;
  const counting: FileLayer = { ...nodeFileLayer, list: async (d) => (lists++, nodeFileLayer.list(d)) };
  const dry = await MemStore.open(dir, { ...options, files: counting });
  assert.ok(dry.stats().pages > 20);
  await dry.abandon();
  const last = lists - 1;
  lists = 0;
  // The open's last listing (its leftovers, after the replay) fails.
  const failing: FileLayer = { ...nodeFileLayer, list: async (d) => (lists++ === last ? Promise.reject(Object.assign(new Error('injected'), { code: 'EIO' })) : nodeFileLayer.list(d)) };
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on('warning', onWarning);
  try {
    await assert.rejects(MemStore.open(dir, { ...options, files: failing }), { code: 'IO' });
    // Long enough for the worker's plan (about 0.3 s here) to have come back had it not been ended.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    assert.deepEqual(warnings, []);
    assert.ok(!process.getActiveResourcesInfo().includes('MessagePort'), process.getActiveResourcesInfo().join());
  } finally {
    process.off('warning', onWarning);
  }
  const reopened = await MemStore.open(dir, options);
  try {
    assert.equal(reopened.stats().count, 2_600);
    assert.ok(reopened.stats().pages > 20);
  } finally {
    await reopened.close();
  }
});

test('pages at pages.from: writes issued in the window past planThreads.maxReplays wait for the pages instead of piling up for the swap', async () => {
  const config = 'cosine int8';
  const expected = await straight(config);
  const limit = planThreads.maxReplays;
  planThreads.maxReplays = 150;
  try {
    const store = await MemStore.open(tempDir(), pageWritesOptions(config));
    try {
      // Batches 0 to 3 reach pages.from (300); the rest are issued one by one while the worker
      // clusters, a little apart, as a loader that does not wait for its writes issues them.
      const all: Promise<unknown>[] = [];
      for (let b = 0; b < 4; b++) all.push(...issueBatch(store, b));
      while (!store.stats().clustering) await nextTurn();
      let most = 0;
      for (let b = 4; b < PAGE_WRITES_BATCHES; b++) {
        all.push(...issueBatch(store, b));
        await new Promise((resolve) => setTimeout(resolve, 2));
        if (store.stats().clustering) most = Math.max(most, store.stats().count);
      }
      await Promise.all(all);
      // The batch that crossed 300, at most 150 writes noted, and those issued before the last of
      // them was applied (a batch of 100 or two). Without the limit every batch issued went in.
      assert.ok(most <= 400 + 150 + 200, `${most} records while the worker clustered`);
      assert.equal(store.stats().count, expected.count);
      assert.deepEqual(await oneProbeAnswers(store), expected.answers);
    } finally {
      await store.close();
    }
  } finally {
    planThreads.maxReplays = limit;
  }
});

test('pages at pages.from: a burst of writes logged before the limit could hold it back is replayed on the pages a step at a time, the event loop turning between steps', async () => {
  const config = 'cosine int8';
  const expected = await straight(config);
  const step = planThreads.replayStep;
  planThreads.replayStep = 100;
  // Which turn of the event loop each put into a page index ran in (the worker's own are not seen here).
  const turns = new Set<number>();
  const put = PageIndex.prototype.put;
  const ticker = turnTicker();
  PageIndex.prototype.put = function (this: PageIndex, id: string, vector: Float32Array) {
    turns.add(ticker.turn());
    put.call(this, id, vector);
  };
  try {
    const store = await MemStore.open(tempDir(), pageWritesOptions(config));
    try {
      // Every batch at once: all logged, and all but the first three applied in the window.
      await Promise.all(issueAll(store));
      assert.ok(turns.size >= 10, `the replay's puts ran in ${turns.size} turns of the event loop`);
      assert.deepEqual(await oneProbeAnswers(store), expected.answers);
    } finally {
      await store.close();
    }
  } finally {
    await ticker.stop();
    PageIndex.prototype.put = put;
    planThreads.replayStep = step;
  }
});

test('a plan from a worker is loaded into its pages a step at a time, the event loop turning between steps, for the first pages and for compact(), and the pages and answers are the same', async () => {
  const config = 'cosine int8';
  const expected = await straight(config);
  const stepMs = planThreads.stepMs;
  // Which turn of the event loop each code loaded into a page index ran in (the worker's own are not seen here).
  let turns = new Set<number>();
  const loadCode = PageIndex.prototype.loadCode;
  const ticker = turnTicker();
  PageIndex.prototype.loadCode = function (this: PageIndex, ...args: Parameters<PageIndex['loadCode']>) {
    turns.add(ticker.turn());
    return loadCode.apply(this, args);
  };
  try {
    const compacted: { pages: number; answers: string[][] }[] = [];
    for (const ms of [0, stepMs]) {
      planThreads.stepMs = ms;
      turns = new Set();
      const store = await MemStore.open(tempDir(), pageWritesOptions(config));
      try {
        for (let b = 0; b < PAGE_WRITES_BATCHES; b++) await writeBatch(store, b);
        // 300 codes at pages.from, loaded 256 at a time at least between two looks at the clock.
        if (ms === 0) assert.ok(turns.size >= 2, `the first pages were loaded in ${turns.size} turns`);
        assert.deepEqual({ count: store.stats().count, pages: store.stats().pages, answers: await oneProbeAnswers(store) }, expected, `stepMs ${ms}`);
        turns = new Set();
        await store.compact();
        // 2,000-odd codes re-clustered: eight steps of 256 and more.
        if (ms === 0) assert.ok(turns.size >= 8, `compaction's pages were loaded in ${turns.size} turns`);
        assert.equal(store.stats().clustering, false);
        compacted.push({ pages: store.stats().pages, answers: await oneProbeAnswers(store) });
      } finally {
        await store.close();
      }
    }
    assert.deepEqual(compacted[0], compacted[1], 'compaction loaded in steps of 256 and in steps of stepMs');
  } finally {
    await ticker.stop();
    PageIndex.prototype.loadCode = loadCode;
    planThreads.stepMs = stepMs;
  }
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

test('pages at pages.from: where no worker thread can start, the write clusters in its own thread, into the same pages', async () => {
  const config = 'cosine int8';
  const expected = await straight(config);
  let got: Awaited<ReturnType<typeof straight>> | undefined;
  const tried = await withoutWorkers(async () => void (got = await straight(config)));
  assert.equal(tried, 1);
  assert.deepEqual(got, expected);
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
    let got: Awaited<ReturnType<typeof straight>> | undefined;
    const tried = await withoutWorkers(async () => void (got = await straight(config)));
    assert.equal(tried, 0);
    assert.deepEqual(got, expected);
  } finally {
    planThreads.minWork = lowered;
  }
});

test('pages at pages.from (random): any writes issued at once across the window, on any metric, give the contents, pages and answers of a store that awaited each, acknowledged in call order', async () => {
  const dim = 6;
  // Vector `v`: near one of 8 centers, made from `v` alone, so both stores get the same one.
  const vectorOf = nearCenters(dim, 2000);
  const queries = Array.from({ length: 12 }, (_, q) => vectorOf(100_000 + q));
  let windows = 0;
  type Op = { add: { id: number; v: number }[] } | { del: number[] } | { compact: true };
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 6, arbitrary: fc.record({ add: fc.uniqueArray(fc.record({ id: fc.nat({ max: 300 }), v: fc.nat({ max: 1_000_000 }) }), { selector: (r) => r.id, minLength: 1, maxLength: 40 }) }) },
    { weight: 2, arbitrary: fc.record({ del: fc.uniqueArray(fc.nat({ max: 300 }), { minLength: 1, maxLength: 12 }) }) },
    { weight: 1, arbitrary: fc.constant({ compact: true as const }) },
  );
  const issue = (store: MemStore, o: Op): Promise<unknown> => {
    if ('add' in o) return store.add(o.add.map(({ id, v }) => ({ id: `r${id}`, vector: vectorOf(v) })));
    if ('del' in o) return store.delete(o.del.map((id) => `r${id}`));
    return store.compact();
  };
  const state = async (store: MemStore, model: Map<string, number>) => {
    assert.equal(store.stats().count, model.size);
    for (const [id, v] of model) assert.deepEqual([...((await store.get(id))?.vector ?? [])], [...vectorOf(v)], id);
    return {
      pages: store.stats().pages,
      answers: await Promise.all(queries.map(async (q) => (await store.search(q, { k: 5, nprobe: 1, rescore: false })).map((h) => `${h.id}:${h.score}`))),
    };
  };
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 8, maxLength: 24 }), fc.array(fc.integer({ min: 1, max: 10 }), { minLength: 1, maxLength: 8 }), fc.constantFrom<'cosine' | 'l2' | 'dot'>('cosine', 'l2', 'dot'), async (ops, waves, metric) => {
      const options: OpenOptions = { dim, metric, durability: 'none', cache: false, checkpointBytes: 8 * 1024, pages: { from: 64, maxPage: 16 } };
      const model = new Map<string, number>();
      for (const o of ops) {
        if ('add' in o) for (const { id, v } of o.add) model.set(`r${id}`, v);
        else if ('del' in o) for (const id of o.del) model.delete(`r${id}`);
      }
      const awaited = await MemStore.open(tempDir(), options);
      const atOnce = await MemStore.open(tempDir(), options);
      let windowed = false;
      try {
        for (const o of ops) await issue(awaited, o);
        // In waves of a few writes issued together, each wave awaited before the next.
        const order: number[] = [];
        for (let at = 0, w = 0; at < ops.length; w++) {
          const size = waves[w % waves.length]!;
          const first = at;
          const wave = ops.slice(first, first + size).map((o, i) => issue(atOnce, o).then(() => order.push(first + i)));
          at += size;
          let done = false;
          void Promise.allSettled(wave).then(() => (done = true));
          while (!done) {
            if (atOnce.stats().clustering && size > 1) windowed = true;
            await nextTurn();
          }
          await Promise.all(wave);
        }
        if (windowed) windows++;
        assert.deepEqual(order, ops.map((_, i) => i));
        assert.equal(atOnce.stats().clustering, false);
        assert.deepEqual(await state(atOnce, model), await state(awaited, model));
      } finally {
        await awaited.close();
        await atOnce.close();
      }
    }),
    { numRuns: Number(process.env['PAGE_PLAN_RUNS'] ?? 25) },
  );
  // Most sequences reach pages.from, and a wave of several writes then falls in the worker's window.
  assert.ok(windows >= 5, `only ${windows} runs wrote while the worker clustered`);
});
