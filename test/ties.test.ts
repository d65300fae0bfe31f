import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemStore, type OpenOptions } from '../src/index.js';
import { clustered, rng, tempDir } from './helpers.js';

/**
 * Equal scores (the same vector stored under several ids, as a RAG memory that embeds one passage
 * twice does) are ordered by id, in the answer and in which of them make the cut: an answer is a
 * function of what is stored, not of slot numbers, which adds and deletes move and a reopen
 * assigns afresh. Codes only and rescored, on the exact scan and on the page index.
 */
const DIM = 16;

const CONFIGS: Record<string, OpenOptions> = {
  'codes only, exact scan': { dim: DIM, rescore: false, cache: false },
  'rescored, exact scan': { dim: DIM, rescore: true, oversample: 1, cache: false },
  'codes only, page index': { dim: DIM, rescore: false, trainSize: 128, pages: { from: 300, maxPage: 32 }, cache: false },
  'rescored, page index, with the cache': { dim: DIM, rescore: true, oversample: 1, trainSize: 128, pages: { from: 300, maxPage: 32 } },
};

describe('equal scores are ordered by id, before and after a reopen', () => {
  for (const [name, options] of Object.entries(CONFIGS)) {
    it(name, async () => {
      const dir = tempDir();
      const data = clustered(400, DIM, 21);
      const next = rng(22);
      const twin = data[5]!;
      // Duplicates of one vector, added and deleted in an order unlike id order.
      const ids = ['t-zz', 't-aa', 't-mm', 't-kk', 't-bb', 't-yy', 't-cc'];
      let store = await MemStore.open(dir, options);
      await store.add(data.map((vector, i) => ({ id: `v${String(i).padStart(3, '0')}`, vector })));
      await store.add(ids.map((id) => ({ id, vector: twin })));
      await store.delete(['v005', 't-kk', 'v100', 'v200']);
      await store.add([{ id: 't-kk', vector: twin }, ...Array.from({ length: 20 }, (_, i) => ({ id: `w${i}`, vector: data[Math.floor(next() * 400)]!.map((x) => x + 0.01) }))]);
      const wanted = ['t-aa', 't-bb', 't-cc'];
      const answer = async () => (await store.search(twin, { k: 3 })).map((h) => h.id);
      const exact = async () => (await store.search(twin, { k: 3, exact: true })).map((h) => h.id);
      assert.deepEqual(await answer(), wanted, 'before a reopen');
      assert.deepEqual(await exact(), wanted, 'exact: true, before a reopen');
      await store.close();
      store = await MemStore.open(dir, { cache: options.cache });
      assert.deepEqual(await answer(), wanted, 'after a reopen');
      assert.deepEqual(await answer(), wanted, 'again (a repeat the cache may answer)');
      await store.compact();
      assert.deepEqual(await answer(), wanted, 'after compact()');
      await store.delete(['t-aa']);
      assert.deepEqual(await answer(), ['t-bb', 't-cc', 't-kk'], 'the next in id order takes the place of a deleted one');
      await store.close();
    });
  }
});
