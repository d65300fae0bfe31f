import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemStore } from '../src/index.js';
import { LookasideCache } from '../src/cache/lookaside.js';
import { clustered, tempDir } from './helpers.js';

test('the lookaside cache serves similar queries with the same options and evicts the oldest', () => {
  const cache = new LookasideCache<string>(2, 0.95);
  const a = Float32Array.from([1, 0, 0]);
  const b = Float32Array.from([0, 1, 0]);
  const c = Float32Array.from([0, 0, 1]);
  cache.set(a, 'k', 'A');
  assert.equal(cache.get(Float32Array.from([1, 0.1, 0]), 'k'), 'A', 'cosine 0.995 is similar enough');
  assert.equal(cache.get(Float32Array.from([1, 0.5, 0]), 'k'), undefined, 'cosine 0.89 is not');
  assert.equal(cache.get(a, 'other options'), undefined);
  cache.set(b, 'k', 'B');
  cache.get(a, 'k');
  cache.set(c, 'k', 'C');
  assert.equal(cache.get(b, 'k'), undefined, 'least recently used is evicted');
  assert.equal(cache.get(a, 'k'), 'A');
  assert.equal(cache.get(c, 'k'), 'C');
  assert.equal(cache.hits, 4);
  assert.equal(cache.misses, 3);
});

test('a store counts cache hits, never serves answers older than a write, and hands out copies', async () => {
  const dir = tempDir();
  const v = clustered(50, 32, 5);
  const store = await MemStore.open(dir, { dim: 32, durability: 'none', cache: { entries: 64 } });
  await store.add(v.map((vector, i) => ({ id: `v${i}`, vector, meta: { i } })));
  const first = await store.search(v[0]!, { k: 3 });
  const second = await store.search(v[0]!, { k: 3 });
  assert.deepEqual(second, first);
  assert.deepEqual(store.stats().cache, { hits: 1, misses: 1 });
  second[0]!.id = 'mutated';
  assert.equal((await store.search(v[0]!, { k: 3 }))[0]!.id, first[0]!.id);

  await store.delete([first[0]!.id]);
  const afterDelete = await store.search(v[0]!, { k: 3 });
  assert.ok(!afterDelete.some((h) => h.id === first[0]!.id));
  assert.equal(store.stats().cache.misses, 2);

  await store.search(v[0]!, { k: 4 });
  assert.equal(store.stats().cache.misses, 3, 'different k is a different question');
  await store.close();

  const off = await MemStore.open(dir, { cache: false });
  await off.search(v[0]!, { k: 3 });
  await off.search(v[0]!, { k: 3 });
  assert.deepEqual(off.stats().cache, { hits: 0, misses: 0 });
  await off.close();
});
