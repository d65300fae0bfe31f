import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { test } from 'node:test';
import { MemStore, type OpenOptions } from '../src/index.js';
import { gaussian, perturb, rng, tempDir } from './helpers.js';

function vectorOf(next: () => number, dim: number): Float32Array {
  return Float32Array.from({ length: dim }, () => gaussian(next));
}

/**
 * A store replaces its index twice in its life: when its codes are laid out in pages (at
 * `pages.from` vectors) and when it trains (PCA, rq codes). The index it leaves is freed, and
 * nothing may keep it: the lookaside cache's certify() tops, its hot vectors' slot keys and the
 * search path's kept top-k each held the old one (its JavaScript side, about 0.8 MB at 16,384
 * vectors) until the next search, or the next near try, which might never come.
 */

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

async function collected(ref: WeakRef<object>): Promise<boolean> {
  for (let i = 0; i < 6 && ref.deref() !== undefined; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    gc();
  }
  return ref.deref() === undefined;
}

function indexOf(store: MemStore): object {
  return (store as unknown as { index: object }).index;
}

async function leftIndexGoes(options: OpenOptions, before: number, after: number): Promise<void> {
  const dim = 16;
  const random = rng(41);
  const store = await MemStore.open(tempDir(), { dim, ...options });
  try {
    await store.add(Array.from({ length: before }, (_, i) => ({ id: `a${i}`, vector: vectorOf(random, dim) })));
    const q = vectorOf(random, dim);
    await store.search(q, { k: 5 });
    // Near queries: certify() makes its tops, rescoring keeps hot vectors.
    for (let i = 0; i < 10; i++) await store.search(perturb(q, 0.999, random), { k: 5 });
    assert.ok(store.stats().cache.nearHits > 0, 'the near queries were served by the cache');
    const old = new WeakRef(indexOf(store));
    await store.add(Array.from({ length: after }, (_, i) => ({ id: `b${i}`, vector: vectorOf(random, dim) })));
    assert.notEqual(indexOf(store), old.deref(), 'the store replaced its index');
    assert.ok(await collected(old), 'the index the store left is collected before any search');
    const hits = await store.search(q, { k: 5 });
    assert.equal(hits.length, 5);
  } finally {
    await store.close();
  }
}

test('replaced index: the exact index a store leaves when it lays out its pages is not kept alive by the cache or the search path', async () => {
  await leftIndexGoes({ pages: { from: 256 } }, 200, 100);
});

test('replaced index: the buffer a store leaves when it trains (rq2) is not kept alive by the cache or the search path', async () => {
  await leftIndexGoes({ codec: 'rq2', trainSize: 300, pages: false }, 200, 150);
});
