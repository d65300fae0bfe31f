import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { MemStore, type OpenOptions } from '../src/index.js';
import { gaussian, loadFixture, nearCenters, rng, tempDir } from './helpers.js';
import { runUntilKilled } from './support/killable.js';
import { oneProbeAnswers, PAGE_WRITES_BATCHES, PAGE_WRITES_CONFIGS, pageWritesOptions, writeBatch } from './support/page-writes.js';

/**
 * Issue rule: the same writes in the same order with the same options build the same pages and
 * answer the same, whether or not the store closed, crashed or checkpointed in between. Reopening
 * keeps each vector's page (the index file) but not slot numbers, row order within pages, or the
 * history of each page's sums: splits take their members by id, and page sums are exact
 * (page-sums.ts), so none of those can matter. One-page answers depend on every vector's page and
 * every centroid, bit for bit.
 */
const HALF = PAGE_WRITES_BATCHES / 2;
const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'support', 'pages-child.js');

async function written(config: string, checkpointBytes?: number): Promise<{ pages: number; answers: string[][] }> {
  const store = await MemStore.open(tempDir(), pageWritesOptions(config, checkpointBytes === undefined ? {} : { checkpointBytes }));
  try {
    for (let b = 0; b < PAGE_WRITES_BATCHES; b++) await writeBatch(store, b);
    return { pages: store.stats().pages, answers: await oneProbeAnswers(store) };
  } finally {
    await store.close();
  }
}

async function finish(dir: string, config: string): Promise<{ pages: number; answers: string[][] }> {
  const store = await MemStore.open(dir, pageWritesOptions(config));
  try {
    for (let b = HALF; b < PAGE_WRITES_BATCHES; b++) await writeBatch(store, b);
    return { pages: store.stats().pages, answers: await oneProbeAnswers(store) };
  } finally {
    await store.close();
  }
}

for (const config of Object.keys(PAGE_WRITES_CONFIGS)) {
  test(`page determinism (${config}): a store closed and reopened halfway builds the pages of one that never closed`, async () => {
    const straight = await written(config);
    const dir = tempDir();
    // Checkpoints every few batches before the close, so the reopen loads a snapshot and deltas.
    const first = await MemStore.open(dir, pageWritesOptions(config, { checkpointBytes: 32 * 1024 }));
    for (let b = 0; b < HALF; b++) await writeBatch(first, b);
    await first.close();
    const reopened = await finish(dir, config);
    assert.ok(straight.pages > 20, `${straight.pages} pages`);
    assert.equal(reopened.pages, straight.pages);
    assert.deepEqual(reopened.answers, straight.answers);
  });
}

test('page determinism (cosine int8, l2 int8 + PCA 12, paged late, trained late): a store killed halfway (kill -9, recovered from its log) builds the pages of one never killed', async () => {
  for (const config of ['cosine int8', 'l2 int8 + PCA 12', 'cosine int8, paged late', 'l2 int8 + PCA 12, trained late']) {
    const straight = await written(config, 32 * 1024);
    const dir = tempDir();
    await runUntilKilled(child, [dir, config, String(HALF)], (line, kill) => {
      if (line === 'written') kill();
    });
    const recovered = await finish(dir, config);
    assert.equal(recovered.pages, straight.pages, config);
    assert.deepEqual(recovered.answers, straight.answers, config);
  }
});

test('page determinism (hostile): magnitudes from 1e-11 to 1e11 (near the limits a store accepts) and duplicates under many ids, reopened halfway, build the same pages', async () => {
  const dim = 8;
  const next = rng(77);
  const base = Array.from({ length: 60 }, () => Float32Array.from({ length: dim }, () => gaussian(next)));
  // Each record: a base vector scaled by 10^-11 .. 10^11, and every tenth a copy of an earlier
  // record's vector under its own id (exact ties in every score).
  const vectorOf = (i: number): Float32Array => {
    if (i % 10 === 9) return vectorOf(i - 7);
    const scale = 10 ** ((i % 23) - 11);
    return base[i % base.length]!.map((x) => x * scale * (1 + (i % 7) / 100));
  };
  const options: OpenOptions = { dim, metric: 'l2', durability: 'none', cache: false, pages: { from: 200, maxPage: 16 } };
  const write = async (store: MemStore, from: number, to: number) => {
    for (let i = from; i < to; i += 50) {
      await store.add(Array.from({ length: 50 }, (_, j) => ({ id: `h${i + j}`, vector: vectorOf(i + j) })));
      if (i >= 300) await store.delete([`h${i - 211}`, `h${i - 100}`]);
    }
  };
  const queries = Array.from({ length: 30 }, (_, q) => vectorOf(q * 13 + 1));
  const answers = async (store: MemStore) =>
    Promise.all(queries.map(async (q) => (await store.search(q, { k: 10, nprobe: 1, rescore: false })).map((h) => `${h.id}:${h.score}`)));
  const straight = await MemStore.open(tempDir(), options);
  await write(straight, 0, 1200);
  const dir = tempDir();
  const first = await MemStore.open(dir, options);
  await write(first, 0, 600);
  await first.close();
  const reopened = await MemStore.open(dir, options);
  await write(reopened, 600, 1200);
  try {
    assert.equal(reopened.stats().pages, straight.stats().pages);
    assert.deepEqual(await answers(reopened), await answers(straight));
  } finally {
    await straight.close();
    await reopened.close();
  }
});

test('page determinism (random): any sequence of adds, upserts, deletes and ids added again, closed and reopened at any point, on any metric, builds the pages of a store never closed', async () => {
  const dim = 6;
  // Vector `v`: near one of 8 centers, made from `v` alone, so both stores get the same one.
  const vectorOf = nearCenters(dim, 1000);
  const queries = Array.from({ length: 12 }, (_, q) => vectorOf(100_000 + q));
  const op = fc.oneof(
    { weight: 3, arbitrary: fc.record({ add: fc.uniqueArray(fc.record({ id: fc.nat({ max: 400 }), v: fc.nat({ max: 1_000_000 }) }), { selector: (r) => r.id, minLength: 1, maxLength: 40 }) }) },
    { weight: 1, arbitrary: fc.record({ del: fc.uniqueArray(fc.nat({ max: 400 }), { minLength: 1, maxLength: 12 }) }) },
  );
  const apply = async (store: MemStore, o: { add: { id: number; v: number }[] } | { del: number[] }) => {
    if ('add' in o) await store.add(o.add.map(({ id, v }) => ({ id: `r${id}`, vector: vectorOf(v) })));
    else await store.delete(o.del.map((id) => `r${id}`));
  };
  const answers = async (store: MemStore) =>
    Promise.all(queries.map(async (q) => (await store.search(q, { k: 5, nprobe: 1, rescore: false })).map((h) => `${h.id}:${h.score}`)));
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 4, maxLength: 30 }), fc.nat(), fc.constantFrom<'cosine' | 'l2' | 'dot'>('cosine', 'l2', 'dot'), async (ops, cutAt, metric) => {
      const options: OpenOptions = { dim, metric, durability: 'none', cache: false, checkpointBytes: 8 * 1024, pages: { from: 48, maxPage: 16 } };
      const cut = cutAt % (ops.length + 1);
      const straight = await MemStore.open(tempDir(), options);
      const dir = tempDir();
      let stopped = await MemStore.open(dir, options);
      try {
        for (const [i, o] of ops.entries()) {
          if (i === cut) {
            await stopped.close();
            stopped = await MemStore.open(dir, options);
          }
          await apply(straight, o);
          await apply(stopped, o);
        }
        assert.equal(stopped.stats().pages, straight.stats().pages);
        assert.deepEqual(await answers(stopped), await answers(straight));
      } finally {
        await straight.close();
        await stopped.close();
      }
    }),
    // A failure shrinks for at most a minute (each run builds three stores) and is reported as found.
    { numRuns: 40, interruptAfterTimeLimit: 60_000, markInterruptAsFailure: false },
  );
});

test('training determinism (rq2 and rq4 + PCA 64, pages off): a store closed and reopened after deletes, before the add that trains it, codes and answers as one never closed (the fit took its samples in slot order, which the deletes and the reopen made differ: another model)', async () => {
  const { docs, queries } = loadFixture();
  for (const codec of ['rq2', 'rq4'] as const) {
    const options: OpenOptions = { dim: 512, codec, pca: { dims: 64 }, trainSize: 600, pages: false, cache: false, durability: 'none' };
    const build = async (reopen: boolean): Promise<string[]> => {
      const dir = tempDir();
      let store = await MemStore.open(dir, options);
      const first = docs.slice(0, 500).map((vector, i) => ({ id: `a${i}`, vector }));
      await store.add(first);
      await store.delete(first.filter((_, i) => i % 10 === 0).map((r) => r.id));
      if (reopen) {
        await store.close();
        store = await MemStore.open(dir, {});
      }
      await store.add(docs.slice(500, 1000).map((vector, i) => ({ id: `b${500 + i}`, vector })));
      try {
        assert.ok(store.stats().trained, 'the second add trained the model');
        return await Promise.all(queries.slice(0, 30).map(async (q) => (await store.search(q, { k: 10, rescore: false })).map((h) => `${h.id}:${h.score}`).join()));
      } finally {
        await store.close();
      }
    };
    assert.deepEqual(await build(true), await build(false), codec);
  }
});
