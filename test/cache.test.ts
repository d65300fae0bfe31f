import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { MemStore, type OpenOptions, type SearchHit, type SearchOptions } from '../src/index.js';
import { movedScore, outsiderBound, scoreShift, skipBelow } from '../src/cache/bounds.js';
import { SketchTable, bitsHash, bytesHash, signSketch } from '../src/cache/sketch.js';
import { referenceHamming as hamming } from '../src/kernels/reference.js';
import { sameBits } from '../src/vector.js';
import type { CodecName } from '../src/codec/codec.js';
import { getCodec, isRqCodec } from '../src/codec/index.js';
import { CodeBlocks } from '../src/scan/code-blocks.js';
import { TopK } from '../src/scan/topk.js';
import type { Metric } from '../src/options.js';
import { clustered, gaussian, perturb, rng, tempDir } from './helpers.js';
import { FaultFileLayer } from './support/fault-layer.js';
import { openPair, sameAnswer } from './support/cached-pair.js';
import { heldLog } from './support/held-log.js';
import { canMapFiles } from '../io/mmap.js';

/**
 * The certified lookaside cache (src/cache/CACHE.md): a hit returns what a search of the store
 * returns now. The differential test runs the same stream of writes and queries (repeats, near
 * repeats at cosine 0.9 to 0.999, fresh ones, with and without filters) on a store with the cache
 * and one without, and requires the same answer every time.
 */

interface Config {
  metric: Metric;
  codec: CodecName;
  pca: boolean;
  rescore: boolean;
  /** The page index from 200 vectors, in pages of 16 to split, some queries probing a few of them. */
  paged?: boolean;
}

const CONFIGS: Config[] = [];
for (const metric of ['cosine', 'dot', 'l2'] as const) {
  for (const [codec, pca, rescore] of [
    ['int8', false, true],
    ['int8', false, false],
    ['fp8-e4m3', false, true],
    ['int8', true, true],
    ['f16', true, false],
    ['rq2', false, true],
    ['rq1', false, false],
    ['rq4', true, true],
  ] as const) {
    CONFIGS.push({ metric, codec, pca, rescore });
  }
  for (const [codec, pca, rescore] of [
    ['int8', false, true],
    ['int8', false, false],
    ['rq2', false, true],
    ['int8', true, true],
  ] as const) {
    CONFIGS.push({ metric, codec, pca, rescore, paged: true });
  }
}

const DIM = 32;

describe('differential: with and without the cache, every answer is the same', () => {
  for (const c of CONFIGS) {
    test(`${c.metric} ${c.codec} pca=${c.pca} rescore=${c.rescore}${c.paged === true ? ' paged' : ''}`, async () => {
      const next = rng(CONFIGS.indexOf(c) + 1);
      const base = clustered(500, DIM, CONFIGS.indexOf(c) + 11, 12);
      const options: OpenOptions = { dim: DIM, metric: c.metric, codec: c.codec, rescore: c.rescore, durability: 'none', trainSize: 200, ...(c.pca ? { pca: { dims: 16 } } : {}), pages: c.paged === true ? { from: 200, maxPage: 16 } : false };
      const cached = await MemStore.open(tempDir(), { ...options, cache: { entries: 16, pool: 3, bytes: 1 << 20 } });
      const plain = await MemStore.open(tempDir(), { ...options, cache: false });
      const tags = ['red', 'green', 'blue'];
      const record = (i: number, v: Float32Array) => ({ id: `r${i}`, vector: v, text: `text ${i} ${next().toFixed(3)}`, meta: { tag: tags[i % 3]!, i } });
      const initial = base.slice(0, 400).map((v, i) => record(i, v));
      await cached.add(initial);
      await plain.add(initial);
      const asked: { q: Float32Array; options: SearchOptions }[] = [];
      let queries = 0;
      for (let step = 0; step < 700; step++) {
        const roll = next();
        if (roll < 0.12) {
          const i = Math.floor(next() * 500);
          const batch = next() < 0.5 ? [record(i, base[i]!)] : [record(i, base[Math.floor(next() * 500)]!.map((x) => x + 0.3 * gaussian(next)))];
          await cached.add(batch);
          await plain.add(batch);
        } else if (roll < 0.17) {
          const ids = [`r${Math.floor(next() * 500)}`, `r${Math.floor(next() * 500)}`];
          assert.equal(await cached.delete(ids), await plain.delete(ids));
        } else {
          let q: Float32Array;
          let opts: SearchOptions;
          const kind = next();
          const previous = asked[Math.floor(next() * asked.length)];
          if (previous !== undefined && kind < 0.4) {
            ({ q, options: opts } = previous);
          } else if (previous !== undefined && kind < 0.8) {
            q = perturb(previous.q, 0.9 + 0.099 * next(), next);
            opts = previous.options;
          } else {
            q = base[Math.floor(next() * 500)]!.map((x) => x + 0.5 * gaussian(next));
            const filter = next() < 0.3 ? { filter: { tag: tags[Math.floor(next() * 3)]! } } : {};
            const nprobe = c.paged === true && next() < 0.5 ? { nprobe: 2 + Math.floor(next() * 6) } : {};
            opts = { k: 1 + Math.floor(next() * 12), ...filter, ...nprobe };
          }
          asked.push({ q, options: opts });
          queries++;
          sameAnswer(await cached.search(q, opts), await plain.search(q, opts), `step ${step}`);
        }
      }
      if (c.paged === true) assert.ok(cached.stats().pages > 7, `pages were made (${cached.stats().pages})`);
      const stats = cached.stats().cache;
      const cache = (cached as unknown as { cache: { recount(): number } }).cache;
      assert.equal(stats.bytes, cache.recount(), 'the running byte count is exact');
      assert.ok(stats.bytes <= 1 << 20, 'within the budget');
      assert.ok(stats.exactHits > 10, `exact hits happened (${JSON.stringify(stats)})`);
      assert.ok(stats.hits + stats.misses === queries, 'every search is a hit or a miss');
      // rq l2 kernel scores carry a term of each vector's own, which no move of the query bounds (CACHE.md):
      // no near hit from codes alone (rescored pools are certified on exact scores, which have no such term).
      if (c.metric === 'l2' && isRqCodec(c.codec) && !c.rescore) assert.ok(stats.nearHits === 0 && stats.boundFailures > 0, `near queries searched (${JSON.stringify(stats)})`);
      // 1-bit codes alone, whose scores are coarse, certify a near query seldom (1 and 4 in this
      // stream's 580 searches for cosine and dot before quiet spells, 0 and 4 since): tried, not asserted.
      else if (c.codec === 'rq1' && !c.rescore) assert.ok(stats.boundFailures > 0, `near queries tried (${JSON.stringify(stats)})`);
      else if (c.metric !== 'dot' || !c.pca) assert.ok(stats.nearHits > 0, `near hits happened (${JSON.stringify(stats)})`);
      await cached.close();
      await plain.close();
    });
  }
});

test('concurrent searches and writes never leave a stale answer behind', async () => {
  const next = rng(99);
  const base = clustered(300, DIM, 5, 6);
  const cached = await MemStore.open(tempDir(), { dim: DIM, durability: 'none', cache: { entries: 8 } });
  const plain = await MemStore.open(tempDir(), { dim: DIM, durability: 'none', cache: false });
  const rec = (i: number, v: Float32Array) => ({ id: `r${i}`, vector: v, text: `t${i}` });
  const initial = base.map((v, i) => rec(i, v));
  await cached.add(initial);
  await plain.add(initial);
  const queries = base.slice(0, 8).map((v) => v.map((x) => x + 0.1 * gaussian(next)));
  for (let round = 0; round < 60; round++) {
    // In one tick: searches that race with writes to the ids they are about to return.
    type Write = { del: string } | { add: ReturnType<typeof rec> };
    const writes = Array.from({ length: 3 }, (): Write => {
      const i = Math.floor(next() * 300);
      return next() < 0.3 ? { del: `r${i}` } : { add: rec(i, queries[Math.floor(next() * 8)]!.map((x) => x + 0.05 * gaussian(next))) };
    });
    const apply = (s: MemStore, w: Write) => ('del' in w ? s.delete([w.del]) : s.add([w.add]));
    const racing: Promise<unknown>[] = [];
    for (const q of queries) racing.push(cached.search(q, { k: 5 }));
    for (const w of writes) racing.push(apply(cached, w));
    for (const q of queries) racing.push(cached.search(q, { k: 5 }));
    await Promise.all(racing);
    for (const w of writes) await apply(plain, w);
    // Afterwards, whatever the cache remembered during the race must not show.
    for (const [i, q] of queries.entries()) sameAnswer(await cached.search(q, { k: 5 }), await plain.search(q, { k: 5 }), `round ${round} query ${i}`);
  }
  assert.ok(cached.stats().cache.hits > 0);
  await cached.close();
  await plain.close();
});

test('sameBits: equal exactly when every bit is (zeros of either sign, NaN payloads, the last byte, views at an offset, other lengths)', () => {
  const next = rng(11);
  for (const length of [1, 3, 64, 511, 512]) {
    const a = Float32Array.from({ length }, () => next() - 0.5);
    const backing = new Float32Array(length + 5);
    backing.set(a, 5);
    const b = backing.subarray(5);
    assert.equal(sameBits(a, b), true);
    for (const at of [0, length >> 1, length - 1]) {
      const c = Float32Array.from(a);
      const bytes = new Uint8Array(c.buffer);
      bytes[4 * at + 3]! ^= 0x80;
      assert.equal(sameBits(a, c), false, `sign of component ${at} of ${length}`);
      bytes[4 * at + 3]! ^= 0x80;
      bytes[4 * at]! ^= 1;
      assert.equal(sameBits(c, a), false, `lowest bit of component ${at} of ${length}`);
    }
    assert.equal(sameBits(a, a.subarray(0, length - 1)), false, 'a prefix');
  }
  assert.equal(sameBits(Float32Array.of(0), Float32Array.of(-0)), false, '0 and -0 are equal numbers, not equal bits');
  const nan = new Float32Array(new Uint32Array([0x7fc00001]).buffer);
  assert.equal(sameBits(nan, new Float32Array(new Uint32Array([0x7fc00001]).buffer)), true, 'one NaN payload');
  assert.equal(sameBits(nan, new Float32Array(new Uint32Array([0x7fc00002]).buffer)), false, 'two NaN payloads');
});

test('a search without options and one with {} answer alike, and neither changes what the next search without options gets', async () => {
  const v = clustered(60, DIM, 3);
  const store = await MemStore.open(tempDir(), { dim: DIM, durability: 'none' });
  await store.add(v.map((vector, i) => ({ id: `v${i}`, vector })));
  const plain = await store.search(v[1]!);
  assert.equal(plain.length, 10, 'k defaults to 10');
  assert.deepEqual(await store.search(v[1]!, {}), plain);
  assert.equal((await store.search(v[2]!, { k: 3 })).length, 3);
  assert.equal((await store.search(v[2]!)).length, 10, 'a k of an earlier search does not stay');
  await store.close();
});

test('an exact repeat with nothing written since is answered without a search, and a write makes it recompute', async () => {
  const v = clustered(200, DIM, 3);
  const store = await MemStore.open(tempDir(), { dim: DIM, durability: 'none' });
  await store.add(v.map((vector, i) => ({ id: `v${i}`, vector, meta: { i } })));
  const first = await store.search(v[0]!, { k: 3 });
  const second = await store.search(v[0]!, { k: 3 });
  assert.deepEqual(second, first);
  assert.equal(store.stats().cache.exactHits, 1);
  second[0]!.id = 'mutated';
  (second[0]!.meta as { i: number }).i = -1;
  assert.deepEqual(await store.search(v[0]!, { k: 3 }), first, 'answers handed out are copies');
  await store.delete([first[0]!.id]);
  const afterDelete = await store.search(v[0]!, { k: 3 });
  assert.ok(!afterDelete.some((h) => h.id === first[0]!.id));
  await store.add([{ id: 'twin', vector: v[0]! }]);
  assert.equal((await store.search(v[0]!, { k: 3 }))[0]!.id, 'twin', 'a new nearest vector enters the remembered pool');
  const before = store.stats().cache.misses;
  await store.search(v[0]!, { k: 4 });
  assert.equal(store.stats().cache.misses, before + 1, 'another k is another question');
  // Answered before the query is checked: only the exact bits of a checked query are, in any form.
  const hits = store.stats().cache.exactHits;
  const answer = await store.search(v[0]!, { k: 4 });
  assert.deepEqual(await store.search(Array.from(v[0]!), { k: 4 }), answer, 'a number[] of the same values');
  const inside = new Float32Array(DIM + 2);
  inside.set(v[0]!, 1);
  assert.deepEqual(await store.search(inside.subarray(1, DIM + 1), { k: 4 }), answer, 'a view of the same bits');
  assert.equal(store.stats().cache.exactHits, hits + 3);
  const changed = Float32Array.from(v[0]!);
  changed[DIM - 1] = Number.NaN;
  await assert.rejects(store.search(changed, { k: 4 }), (e: unknown) => (e as { code?: string }).code === 'INVALID_VECTOR');
  await assert.rejects(store.search(v[0]!.subarray(1), { k: 4 }), (e: unknown) => (e as { code?: string }).code === 'DIM_MISMATCH');
  // The options of a remembered query are checked all the same, and what they throw is a rejection.
  const codeOf = (e: unknown): string | undefined => (e as { code?: string }).code;
  await assert.rejects(store.search(v[0]!, { k: 0 }), (e: unknown) => codeOf(e) === 'INVALID_OPTION');
  await assert.rejects(store.search(v[0]!, { k: 4, kk: 4 } as SearchOptions), (e: unknown) => codeOf(e) === 'INVALID_OPTION');
  const throwing = Object.defineProperty({}, 'k', { enumerable: true, get: () => { throw new Error('no k'); } }) as SearchOptions;
  await assert.rejects(store.search(v[0]!, throwing), (e: unknown) => codeOf(e) === 'INVALID_OPTION' && (e as Error).cause instanceof Error);
  const badFilter = Object.defineProperty({ k: 4 }, 'filter', { enumerable: true, get: () => { throw new Error('no filter'); } }) as SearchOptions;
  await assert.rejects(store.search(v[0]!, badFilter), (e: unknown) => codeOf(e) === 'INVALID_ARGUMENT' && (e as Error).cause instanceof Error);
  assert.equal(store.stats().cache.exactHits, hits + 3, 'none of them was answered');
  await store.close();
  await assert.rejects(store.search(v[0]!, { k: 4 }), (e: unknown) => codeOf(e) === 'CLOSED');
});

test('a Float32Array whose prototype chain cannot be walked (a revoked Proxy in it, a throwing trap) is INVALID_VECTOR with the cache on as off (the trap\'s own error had come out of search())', async () => {
  for (const cache of [undefined, false] as const) {
    const store = await MemStore.open(tempDir(), { dim: 4, durability: 'none', ...(cache === false ? { cache } : {}) });
    await store.add([{ id: 'a', vector: [1, 0, 0, 0] }]);
    await store.search(new Float32Array([1, 0, 0, 0]));
    const { proxy, revoke } = Proxy.revocable(Float32Array.prototype, {});
    const revoked = new Float32Array([1, 0, 0, 0]);
    Object.setPrototypeOf(revoked, proxy);
    revoke();
    const trapped = new Float32Array([1, 0, 0, 0]);
    Object.setPrototypeOf(
      trapped,
      new Proxy(Float32Array.prototype, {
        getPrototypeOf() {
          throw new Error('trap');
        },
      }),
    );
    for (const q of [revoked, trapped]) await assert.rejects(store.search(q), (e: unknown) => (e as { code?: string }).code === 'INVALID_VECTOR', String(cache));
    await store.close();
  }
});

test('bytesHash() of a query\'s bytes is bitsHash() of the query, at any offset and length', () => {
  fc.assert(
    fc.property(fc.array(fc.float(), { minLength: 1, maxLength: 90 }), fc.nat(3), (values, pad) => {
      const buffer = new Float32Array(values.length + pad);
      buffer.set(values, pad);
      const v = buffer.subarray(pad);
      assert.equal(bytesHash(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)), bitsHash(v));
    }),
  );
  assert.notEqual(bytesHash(new Uint8Array(new Float32Array([1, 2]).buffer)), bytesHash(new Uint8Array(new Float32Array([1, 2, 0]).buffer)), 'the length is hashed');
});

test('every option that shapes an answer keys it: a change of one alone, or a filter changed in place between two searches, is another question', async () => {
  const v = clustered(300, DIM, 3);
  const store = await MemStore.open(tempDir(), { dim: DIM, durability: 'none', pages: { from: 100 } });
  const plain = await MemStore.open(tempDir(), { dim: DIM, durability: 'none', pages: { from: 100 }, cache: false });
  const records = v.map((vector, i) => ({ id: `v${i}`, vector, meta: { i, half: i % 2 } }));
  await store.add(records);
  await plain.add(records);
  const q = v[7]!;
  const asked: SearchOptions[] = [{ k: 5 }, { k: 6 }, { k: 6, rescore: false }, { k: 6, rescore: false, exact: true }, { k: 6, rescore: false, nprobe: 1 }, { k: 6, rescore: false, nprobe: 2 }];
  for (const options of [...asked, ...asked]) assert.deepEqual(await store.search(q, options), await plain.search(q, options), JSON.stringify(options));
  assert.equal(store.stats().cache.exactHits, asked.length, 'the second round repeats each');
  const filter: { half: number } = { half: 0 };
  assert.deepEqual(await store.search(q, { k: 5, filter }), await plain.search(q, { k: 5, filter: { half: 0 } }));
  filter.half = 1;
  const changed = await store.search(q, { k: 5, filter });
  assert.ok(changed.every((h) => (h.meta as { half: number }).half === 1), 'the filter as it is now');
  assert.deepEqual(changed, await plain.search(q, { k: 5, filter: { half: 1 } }));
  await store.close();
  await plain.close();
});

test('a near query is served from a pool only when the bound proves it; otherwise it is a bound failure and the search runs', async () => {
  const next = rng(4);
  const v = clustered(400, DIM, 8, 10);
  const store = await MemStore.open(tempDir(), { dim: DIM, durability: 'none', cache: { entries: 64, pool: 2 } });
  await store.add(v.map((vector, i) => ({ id: `v${i}`, vector })));
  await store.search(v[0]!, { k: 5 });
  await store.search(perturb(v[0]!, 0.9999, next), { k: 5 });
  assert.equal(store.stats().cache.nearHits, 1, 'a query at cosine 0.9999 is certified');
  await store.search(perturb(v[0]!, 0.5, next), { k: 5 });
  const s = store.stats().cache;
  assert.equal(s.nearHits, 1);
  assert.equal(s.hits + s.misses, 3);
  await store.close();
});

test('an empty store with the cache on answers nothing, remembers it, and answers the first record once it is added', async () => {
  const store = await MemStore.open(tempDir(), { dim: DIM, durability: 'none' });
  const zero = new Float32Array(DIM);
  assert.deepEqual(await store.search(zero, { k: 100 }), []);
  assert.deepEqual(await store.search(zero, { k: 1 }), []);
  assert.deepEqual(await store.search(zero, { k: 1 }), []);
  await store.add([{ id: 'only', vector: zero }]);
  assert.deepEqual((await store.search(zero, { k: 100 })).map((h) => h.id), ['only']);
  await store.close();
});

test('a pool member that a write replaced is scored again by a near query, whatever its old score said', async () => {
  const next = rng(9);
  const v = clustered(400, DIM, 8, 10);
  const store = await MemStore.open(tempDir(), { dim: DIM, durability: 'none', cache: { entries: 64, pool: 2 } });
  await store.add(v.map((vector, i) => ({ id: `v${i}`, vector })));
  const wide = await store.search(v[0]!, { k: 30, rescore: false });
  await store.search(v[0]!, { k: 5 });
  const near = perturb(v[0]!, 0.9999, next);
  // A member of the pool well below the candidates: its old score alone would leave it unscored.
  const replaced = wide[28]!.id;
  await store.add([{ id: replaced, vector: near }]);
  const before = store.stats().cache.nearHits;
  const hits = await store.search(near, { k: 5 });
  assert.equal(store.stats().cache.nearHits, before + 1, 'served from the pool');
  assert.equal(hits[0]!.id, replaced, 'the replaced vector is now the nearest');
  await store.close();
});

test('hot vectors serve rescoring without reading the full-precision store once read twice, and the byte budget holds', async () => {
  const v = clustered(300, DIM, 12);
  const budget = 64 * 1024;
  const store = await MemStore.open(tempDir(), { dim: DIM, durability: 'none', cache: { entries: 1000, bytes: budget } });
  await store.add(v.map((vector, i) => ({ id: `v${i}`, vector, text: `text ${i}`.repeat(20) })));
  await store.search(v[0]!, { k: 10 });
  await store.search(v[0]!.map((x) => x * 1.0001), { k: 10 });
  // A vector read once is not kept (a fresh query's candidates seldom come back); read again, it is.
  assert.equal(store.stats().cache.fullReadsSaved, 0, JSON.stringify(store.stats().cache));
  await store.search(v[0]!.map((x) => x * 1.0002), { k: 10 });
  assert.ok(store.stats().cache.fullReadsSaved >= 10, JSON.stringify(store.stats().cache));
  for (let i = 0; i < 300; i++) {
    await store.search(v[i]!, { k: 10 });
    assert.ok(store.stats().cache.bytes <= budget, `cache holds ${store.stats().cache.bytes} B, budget ${budget}`);
  }
  assert.ok(store.stats().cache.evictions > 0);
  await store.close();
});

/** A store of `v` (ids v0, v1, ...) written and closed, so that a reopen reads its vectors from the arena's files; its directory. */
async function writtenAndClosed(v: readonly Float32Array[]): Promise<string> {
  const dir = tempDir();
  const writer = await MemStore.open(dir, { dim: DIM, durability: 'none', cache: false });
  await writer.add(v.map((vector, i) => ({ id: `v${i}`, vector })));
  await writer.close();
  return dir;
}

test('hot vectors hold only what rescoring read without a map: read through memory maps (the page cache holds them) none is copied into the cache; read by positioned reads, the same searches take them hot, and answer the same', { skip: canMapFiles() ? false : 'the memory-map addon is not built here' }, async () => {
  const v = clustered(300, DIM, 12);
  const dir = await writtenAndClosed(v);
  const answers: SearchHit[][][] = [];
  for (const mmap of [true, false]) {
    // Reopened: the vectors are read from the arena's files, through maps or not.
    const store = await MemStore.open(dir, { mmap, cache: { entries: 1000 } });
    try {
      const got: SearchHit[][] = [];
      for (let i = 0; i < 4; i++) got.push(await store.search(v[0]!.map((x) => x * (1 + i * 1e-4)), { k: 10 }));
      answers.push(got);
      const stats = store.stats();
      assert.equal(stats.mappedFiles > 0, mmap, JSON.stringify(stats));
      if (mmap) assert.equal(stats.cache.fullReadsSaved, 0, JSON.stringify(stats.cache));
      else assert.ok(stats.cache.fullReadsSaved >= 10, JSON.stringify(stats.cache));
    } finally {
      await store.close();
    }
  }
  assert.deepEqual(answers[0], answers[1]);
});

test('hot vectors: in a batch of candidates some of whose vectors no map covers yet (added in this process), those read out of a map are not kept; once only mapped ones are candidates, no read is saved', { skip: canMapFiles() ? false : 'the memory-map addon is not built here' }, async () => {
  const v = clustered(300, DIM, 12);
  const dir = await writtenAndClosed(v);
  const store = await MemStore.open(dir, { durability: 'none', cache: { entries: 1000 } });
  try {
    const q = v[0]!;
    // Vectors near q added now: their frames are in the segment being appended to, which no map covers.
    const fresh = Array.from({ length: 6 }, (_, i) => ({ id: `new${i}`, vector: q.map((x, j) => x * (1 + 1e-3 * (((i + j) % 5) - 2))) }));
    await store.add(fresh);
    for (let i = 0; i < 4; i++) await store.search(q.map((x) => x * (1 + i * 1e-4)), { k: 10 });
    assert.ok(store.stats().mappedFiles > 0, JSON.stringify(store.stats()));
    // The new vectors were among the candidates and read twice: kept hot, and later reads saved.
    assert.ok(store.stats().cache.fullReadsSaved > 0, JSON.stringify(store.stats().cache));
    await store.delete(fresh.map((r) => r.id));
    const before = store.stats().cache.fullReadsSaved;
    for (let i = 0; i < 4; i++) await store.search(q.map((x) => x * (1 + (i + 5) * 1e-4)), { k: 10 });
    assert.equal(store.stats().cache.fullReadsSaved, before, 'the mapped candidates read beside them were not kept');
  } finally {
    await store.close();
  }
});

test('hot vectors are kept by slot: an upsert drops the one in the slot its id keeps, a delete its own through the removal, and rescoring then reads the new vectors', async () => {
  const next = rng(91);
  const v = clustered(200, DIM, 13, 92);
  const pair = await openPair({ dim: DIM }, { entries: 100, bytes: 1 << 20 });
  try {
    await pair.add(v.map((vector, i) => ({ id: `h${i}`, vector })));
    const q = v[7]!;
    // Three searches near q read its candidates twice: they are hot after.
    for (let i = 0; i < 3; i++) await pair.check(perturb(q, 0.9999, next), { k: 10 }, `warm ${i}`);
    const hot = await pair.cached.search(q, { k: 10 });
    assert.ok(pair.cached.stats().cache.fullReadsSaved > 0, 'candidates were hot');
    // Upsert the best three with vectors far from q, delete the next two, then ask near q again:
    // a hot copy of an old vector would keep them at the top.
    await pair.add(hot.slice(0, 3).map((h, i) => ({ id: h.id, vector: v[150 + i]! })));
    await pair.del(hot.slice(3, 5).map((h) => h.id));
    for (let i = 0; i < 4; i++) {
      const got = await pair.check(perturb(q, 0.9999, next), { k: 10 }, `after the writes ${i}`);
      for (const h of hot.slice(0, 5)) assert.ok(!got.some((g) => g.id === h.id && Math.abs(g.score - h.score) < 1e-6), `${h.id} answered with its old vector`);
    }
  } finally {
    await pair.close();
  }
});

test('cache options: unknown keys and bad values are INVALID_OPTION; false turns it off', async () => {
  const dir = tempDir();
  for (const cache of [{ threshold: 0.9 }, { entries: 0 }, { pool: -1 }, { pool: 'x' }, { bytes: 1.5 }, { pool: 101 }, 'yes']) {
    await assert.rejects(MemStore.open(dir, { dim: DIM, cache: cache as never }), { code: 'INVALID_OPTION' });
  }
  const off = await MemStore.open(dir, { dim: DIM, cache: false });
  await off.add([{ id: 'a', vector: new Float32Array(DIM).fill(1) }]);
  await off.search(new Float32Array(DIM).fill(1));
  await off.search(new Float32Array(DIM).fill(1));
  assert.equal(off.stats().cache.hits + off.stats().cache.misses, 0);
  await off.close();
});

test('bounds: a score moves by at most the bound under every kernel metric (random vectors)', () => {
  const next = rng(7);
  for (let trial = 0; trial < 2000; trial++) {
    const dim = 16;
    const v = Float32Array.from({ length: dim }, () => gaussian(next));
    const w = v.map((x) => x + (next() < 0.5 ? 0.01 : 0.5) * gaussian(next));
    const x = Float32Array.from({ length: dim }, () => gaussian(next) * 2);
    const norm = Math.hypot(...x);
    const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, ai, i) => s + ai * b[i]!, 0);
    const l2 = (a: Float32Array, b: Float32Array) => -a.reduce((s, ai, i) => s + (ai - b[i]!) ** 2, 0);
    for (const [metric, score] of [
      ['cosine', (q: Float32Array) => dot(q, x) / norm],
      ['dot', (q: Float32Array) => dot(q, x)],
      ['l2', (q: Float32Array) => l2(q, x)],
    ] as const) {
      const b = score(v);
      assert.ok(score(w) <= outsiderBound(metric, b, v, w, norm), `${metric} trial ${trial}`);
    }
  }
  assert.equal(outsiderBound('dot', -Infinity, new Float32Array(2), new Float32Array(2), 1), -Infinity);
  assert.throws(() => outsiderBound('dot', 0, new Float32Array(2), new Float32Array(3), 1), RangeError, 'queries of different lengths have no distance');
});

test('bounds: the angular form is tighter than b + ‖v′ − v‖ for a near query, and skipBelow() is a threshold movedScore() agrees with', () => {
  const next = rng(17);
  const unit = (v: Float32Array) => {
    const n = Math.hypot(...v);
    return v.map((x) => x / n);
  };
  const dim = 64;
  for (let trial = 0; trial < 300; trial++) {
    const v = unit(Float32Array.from({ length: dim }, () => gaussian(next)));
    const w = unit(v.map((x) => x + (trial % 3 === 0 ? 0.002 : 0.02) * gaussian(next)));
    const x = 1 + 3 * next();
    for (const metric of ['cosine', 'dot', 'l2'] as const) {
      const shift = scoreShift(metric, { kind: 'float', vector: v }, { kind: 'float', vector: w }, x);
      const scale = metric === 'cosine' ? 1 : x;
      if (metric !== 'l2') {
        // Outsiders at or below half the best score: the linear bound adds the whole distance, the
        // angular one about sin(60°) of it.
        const b = 0.5 * scale;
        const linear = b + shift.delta * scale + shift.margin;
        assert.ok(movedScore(shift, b) < linear - 0.05 * shift.delta * scale, `${metric} trial ${trial}: ${movedScore(shift, b)} against ${linear}`);
      }
      for (let probe = 0; probe < 20; probe++) {
        const m = (metric === 'l2' ? -4 * x * x : 2 * scale * (next() - 0.5)) * next();
        const t = skipBelow(shift, m);
        const s = metric === 'l2' ? -4 * x * x * next() : 2 * scale * (next() - 0.5);
        if (s < t) assert.ok(movedScore(shift, s) < m, `${metric}: ${s} below the threshold ${t} moves to ${movedScore(shift, s)}, not below ${m}`);
        // Right under it too, where a threshold a little too high would fail.
        if (Number.isFinite(t)) assert.ok(movedScore(shift, t - 1e-12 * (1 + Math.abs(t))) < m, `${metric} trial ${trial}: just under ${t}, ${m} is reached`);
        // Not lax: a little above it, the moved score is at m or above (the threshold gives up 1e-9 of the scale only).
        if (Number.isFinite(t)) assert.ok(movedScore(shift, t + 1e-6 * (1 + Math.abs(t))) >= m - 1e-5 * (1 + Math.abs(m)), `${metric} trial ${trial}: threshold ${t} for ${m} is lax`);
      }
    }
  }
  const flat = scoreShift('l2', { kind: 'float', vector: new Float32Array(4) }, { kind: 'float', vector: new Float32Array(4) }, 1);
  assert.equal(skipBelow(flat, 1), Infinity, 'no l2 score moves above its margin');
  assert.equal(skipBelow(flat, -Infinity), -Infinity);
  // The unbounded shift of an rq l2 store, whose kernel scores are estimates and can be above 0:
  // any score may move anywhere, so none is below the threshold, whatever m (it had been +∞ for an m
  // above the margin, which skipped every pool member below the last candidate).
  const unbounded = { ...flat, delta: Infinity };
  for (const m of [5, 1, 0, -1, -1e6]) assert.equal(skipBelow(unbounded, m), -Infinity, `m ${m}`);
  // The same query through the same form (`same`): nothing moves, above 0 or below it.
  const same = { ...unbounded, delta: 0, same: true };
  for (const b of [5, 0.5, 0, -1, -1e6]) assert.equal(movedScore(same, b), b, `b ${b}`);
  assert.equal(movedScore(same, Infinity), Infinity, 'no bound stays none');
  assert.equal(movedScore(same, -Infinity), -Infinity);
  for (const m of [5, 0.5, 0, -1, -1e6]) {
    const t = skipBelow(same, m);
    assert.ok(t < m && t >= m - 1e-8 * (1 + Math.abs(m)), `m ${m}: threshold ${t}`);
  }
});

test('sign sketches: near vectors differ in few bits, opposite ones in all', () => {
  const a = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i + 1));
  assert.equal(hamming(signSketch(a), signSketch(a)), 0);
  assert.equal(hamming(signSketch(a), signSketch(a.map((x) => -x))), 64);
  assert.ok(hamming(signSketch(a), signSketch(a.map((x, i) => x + (i === 3 ? 0.01 : 0)))) <= 1);
});

test('sign sketches: bit i is set exactly when component i is > 0 (zeros of either sign, subnormals, infinities, odd lengths, views at an offset)', () => {
  const special = [0, -0, 1e-45, -1e-45, Infinity, -Infinity, 3.4e38, -3.4e38, 1, -1];
  const next = rng(5);
  for (const length of [1, 31, 32, 33, 100, 512]) {
    const backing = new Float32Array(length + 3);
    for (let i = 0; i < backing.length; i++) backing[i] = next() < 0.3 ? special[Math.floor(next() * special.length)]! : next() - 0.5;
    const v = backing.subarray(3);
    const sketch = signSketch(v);
    assert.equal(sketch.length, Math.ceil(length / 32));
    for (let i = 0; i < length; i++) assert.equal((sketch[i >>> 5]! >>> (i & 31)) & 1, v[i]! > 0 ? 1 : 0, `component ${i} (${v[i]}) of ${length}`);
    for (let i = length; i < 32 * sketch.length; i++) assert.equal((sketch[i >>> 5]! >>> (i & 31)) & 1, 0);
  }
});

test('pools are slots of the index: a removal that moves the last slot into its hole is followed, and the answer stays exact', async () => {
  const next = rng(31);
  const v = clustered(300, DIM, 21, 4);
  const options: OpenOptions = { dim: DIM, durability: 'none', rescore: false };
  const cached = await MemStore.open(tempDir(), { ...options, cache: { entries: 8, pool: 3 } });
  const plain = await MemStore.open(tempDir(), { ...options, cache: false });
  const records = v.map((vector, i) => ({ id: `v${i}`, vector, meta: { i } }));
  await cached.add(records);
  await plain.add(records);
  const q = v[0]!;
  const first = await cached.search(q, { k: 5 });
  // Delete two of the answer and a vector far down the store: the last slots move into their holes,
  // some of them pool members, none of the deleted ids may come back.
  const gone = [first[1]!.id, first[3]!.id, 'v150'];
  assert.equal(await cached.delete(gone), 3);
  await plain.delete(gone);
  const before = cached.stats().cache;
  const again = await cached.search(q, { k: 5 });
  sameAnswer(again, await plain.search(q, { k: 5 }), 'the identical query after the removals');
  assert.ok(!again.some((h) => gone.includes(h.id)));
  assert.equal(cached.stats().cache.exactHits, before.exactHits + 1, 'served from the pool, renumbered, not dropped');
  const near = perturb(q, 0.99999, next);
  const nearHits = cached.stats().cache.nearHits;
  sameAnswer(await cached.search(near, { k: 5 }), await plain.search(near, { k: 5 }), 'a near query after the removals');
  assert.equal(cached.stats().cache.nearHits, nearHits + 1);
  // Move a vector that is not in the pool next to the query: it is touched, so it joins the pool.
  const twin = { id: `v299`, vector: q.map((x) => x * 1.001), meta: { i: 299 } };
  await cached.add([twin]);
  await plain.add([twin]);
  await cached.delete(['v10']);
  await plain.delete(['v10']);
  sameAnswer(await cached.search(q, { k: 5 }), await plain.search(q, { k: 5 }), 'after an upsert and another removal');
  assert.ok((await cached.search(q, { k: 5 })).some((h) => h.id === 'v299'), 'the touched vector joined the pool');
  await cached.close();
  await plain.close();
});

test("a near hit takes the texts and metadata it shares with its entry's answer only while no write came since", async () => {
  const next = rng(43);
  const v = clustered(200, DIM, 8, 5);
  const options: OpenOptions = { dim: DIM, durability: 'none' };
  const cached = await MemStore.open(tempDir(), { ...options, cache: { entries: 8, pool: 3 } });
  const plain = await MemStore.open(tempDir(), { ...options, cache: false });
  const records = v.map((vector, i) => ({ id: `v${i}`, vector, text: `old ${i}`, meta: { i, version: 0 } }));
  await cached.add(records);
  await plain.add(records);
  const q = v[0]!;
  const first = await cached.search(q, { k: 5 });
  const near = () => perturb(q, 0.99999, next);
  const nearHits = cached.stats().cache.nearHits;
  const n1 = near();
  const served = await cached.search(n1, { k: 5 });
  sameAnswer(served, await plain.search(n1, { k: 5 }), 'a near hit, no write since');
  assert.equal(cached.stats().cache.nearHits, nearHits + 1);
  // The hits handed out are copies: changing them changes nothing the cache holds.
  served[0]!.text = 'changed';
  (served[0]!.meta as { version: number }).version = -1;
  const n2 = near();
  sameAnswer(await cached.search(n2, { k: 5 }), await plain.search(n2, { k: 5 }), 'after the caller changed its hits');
  // A write to a result (same vector, new text and metadata): the entry's answer is no longer now.
  const changed = { id: first[0]!.id, vector: v[Number(first[0]!.id.slice(1))]!, text: 'new text', meta: { i: -1, version: 1 } };
  await cached.add([changed]);
  await plain.add([changed]);
  const n3 = near();
  const after = await cached.search(n3, { k: 5 });
  sameAnswer(after, await plain.search(n3, { k: 5 }), 'a near hit after a write');
  assert.equal(after.find((h) => h.id === changed.id)?.text, 'new text');
  assert.equal(cached.stats().cache.nearHits, nearHits + 3, 'all three served from the pool');
  await cached.close();
  await plain.close();
});

test('an entry whose slots the index can no longer renumber (its move log does not reach back) is dropped: a miss, never a wrong answer', async () => {
  const dim = 8;
  const v = clustered(4600, dim, 5, 6);
  const cached = await MemStore.open(tempDir(), { dim, durability: 'none', rescore: false, trainSize: 100000 });
  const records = v.map((vector, i) => ({ id: `v${i}`, vector }));
  await cached.add(records);
  const q = v[4599]!;
  await cached.search(q, { k: 3 });
  // 4,100 removals: more than the index keeps moves for, fewer than the cache's log of touched ids drops.
  await cached.delete(records.slice(0, 4100).map((r) => r.id));
  const before = cached.stats().cache;
  const after = await cached.search(q, { k: 3 });
  assert.equal(after[0]!.id, 'v4599');
  const s = cached.stats().cache;
  assert.equal(s.misses, before.misses + 1);
  assert.equal(s.evictions, before.evictions + 1, 'the entry was dropped');
  await cached.close();
});

test('index: scanSlots scores as scan does, and movesSince replays removals in order', () => {
  const next = rng(17);
  for (const codec of ['int8', 'f16', 'fp8-e4m3'] as const) {
    for (const metric of ['cosine', 'dot', 'l2'] as const) {
      const index = new CodeBlocks(getCodec(codec), 24, 16);
      for (let i = 0; i < 70; i++) index.put(`x${i}`, Float32Array.from({ length: 24 }, () => gaussian(next)));
      const query = { vector: Float32Array.from({ length: 24 }, () => gaussian(next)), metric, int8Query: true };
      const all = new TopK(70);
      index.scan(query, all);
      const bySlot = new Map(all.sorted().map(({ slot, score }) => [slot, score]));
      const slots = Int32Array.from([69, 3, 17, 40, 0, 16, 15]);
      const some = new TopK(slots.length);
      index.scanSlots(query, slots, slots.length, some);
      for (const { slot, score } of some.sorted()) assert.equal(score, bySlot.get(slot), `${codec} ${metric} slot ${slot}`);
      index.free();
    }
  }
  const index = new CodeBlocks(getCodec('int8'), 16, 4);
  for (let i = 0; i < 10; i++) index.put(`x${i}`, new Float32Array(16).fill(i + 1));
  const epoch = index.moveEpoch();
  index.remove('x2'); // x9 (slot 9) moves into slot 2
  index.remove('x9'); // now in slot 2: x8 (slot 8) moves into it
  index.remove('x7'); // the last slot: nothing moves
  const seen: [number, number][] = [];
  assert.ok(index.movesSince(epoch, (hole, from) => seen.push([hole, from])));
  assert.deepEqual(seen, [[2, 9], [2, 8], [7, 7]]);
  assert.equal(index.moveEpoch(), epoch + 3);
  assert.ok(index.movesSince(index.moveEpoch(), () => assert.fail('nothing since now')));
  index.free();
});

test('TopK.sortBestFirst orders as sorted() does, ties by lower slot first', () => {
  const next = rng(5);
  for (let trial = 0; trial < 200; trial++) {
    const capacity = 1 + Math.floor(next() * 40);
    const a = new TopK(capacity);
    const b = new TopK(capacity);
    const n = Math.floor(next() * 80);
    for (let slot = 0; slot < n; slot++) {
      const score = Math.floor(next() * 12) / 4;
      a.push(score, slot);
      b.push(score, slot);
    }
    const count = b.sortBestFirst();
    const expected = a.sorted();
    assert.equal(count, expected.length);
    for (let i = 0; i < count; i++) assert.deepEqual({ score: b.scoreAt(i), slot: b.slotAt(i) }, expected[i], `trial ${trial} at ${i}`);
    assert.throws(() => b.push(1, 0));
  }
});

test('sketch table: the items within the limit and their distances, whatever was removed before', () => {
  const next = rng(3);
  const table = new SketchTable<number>(2);
  const sketches = Array.from({ length: 40 }, () => Uint32Array.from({ length: 2 }, () => (next() * 2 ** 32) >>> 0));
  sketches.forEach((sk, i) => table.add(i, sk));
  for (const gone of [0, 39, 17, 5]) table.delete(gone);
  const query = sketches[9]!;
  const found = new Map<number, number>();
  table.near(query, 20, (item, d) => found.set(item, d));
  const expected = new Map(sketches.flatMap((sk, i) => ([0, 39, 17, 5].includes(i) || hamming(sk, query) > 20 ? [] : [[i, hamming(sk, query)] as const])));
  assert.deepEqual([...found].sort((a, b) => a[0] - b[0]), [...expected].sort((a, b) => a[0] - b[0]));
  assert.equal(found.get(9), 0);
  assert.equal(table.size, 36);
  assert.throws(() => table.near(new Uint32Array(3), 20, () => undefined), RangeError);
  assert.notEqual(bitsHash(new Float32Array([1, 2])), bitsHash(new Float32Array([1, 2, 0])), 'the length is hashed');
});

test('sketch table, model-based: adds and deletes in any order, every width, and near() finds exactly the items within the limit at their distances', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 17 }), fc.array(fc.tuple(fc.boolean(), fc.nat(60)), { maxLength: 200 }), fc.integer(), (words, ops, seed) => {
      const next = rng(seed);
      const table = new SketchTable<number>(words);
      const model = new Map<number, Uint32Array>();
      const sketchOf = () => Uint32Array.from({ length: words }, () => (next() < 0.2 ? 0xffffffff : (next() * 2 ** 32) >>> 0));
      for (const [add, item] of ops) {
        if (add && !model.has(item)) {
          const sketch = sketchOf();
          table.add(item, sketch);
          model.set(item, sketch);
        } else if (!add) {
          table.delete(item);
          model.delete(item);
        }
        const query = next() < 0.3 && model.size > 0 ? [...model.values()][0]! : sketchOf();
        const limit = Math.floor(next() * 32 * words);
        const found = new Map<number, number>();
        table.near(query, limit, (i, d) => found.set(i, d));
        const expected = [...model].map(([i, sk]) => [i, hamming(sk, query)] as const).filter(([, d]) => d <= limit);
        assert.deepEqual([...found].sort((a, b) => a[0] - b[0]), expected.sort((a, b) => a[0] - b[0]));
        assert.equal(table.size, model.size);
      }
    }),
    { numRuns: 60 },
  );
});

test('many entries of wide queries (300 and more remembered, 700-d: sketches of 22 words, 6 kernel steps a row): near and repeated queries answer as the store without the cache, near hits among them', async () => {
  const next = rng(77);
  const dim = 700;
  const pair = await openPair({ dim }, { entries: 1000, pool: 3, bytes: 32 << 20 });
  try {
    const vectors = clustered(600, dim, 9, 78);
    await pair.add(vectors.map((vector, i) => ({ id: `w${i}`, vector })));
    const queries = Array.from({ length: 300 }, (_, i) => perturb(vectors[(i * 7) % vectors.length]!, 0.97, next));
    for (const [i, q] of queries.entries()) await pair.check(q, { k: 5 }, `remembered ${i}`);
    for (const [i, q] of queries.entries()) {
      await pair.check(perturb(q, 0.9995, next), { k: 5 }, `near ${i}`);
      if (i % 3 === 0) await pair.check(q, { k: 5 }, `repeat ${i}`);
    }
    const stats = pair.cached.stats().cache!;
    assert.ok(stats.entries >= 300, `${stats.entries} entries`);
    assert.ok(stats.nearHits > 0 && stats.exactHits >= 100, `near hits ${stats.nearHits}, exact hits ${stats.exactHits}`);
  } finally {
    await pair.close();
  }
});

test('index: the int8 code of the last query is reused only for the same values', () => {
  const next = rng(8);
  const index = new CodeBlocks(getCodec('int8'), 32, 16);
  for (let i = 0; i < 40; i++) index.put(`x${i}`, Float32Array.from({ length: 32 }, () => gaussian(next)));
  const a = { vector: Float32Array.from({ length: 32 }, () => gaussian(next)), metric: 'dot' as const, int8Query: true };
  const b = { vector: a.vector.map((x, i) => (i === 7 ? x * 3 : x)), metric: 'dot' as const, int8Query: true };
  const scores = (q: typeof a) => {
    const top = new TopK(40);
    index.scan(q, top);
    return top.sorted();
  };
  const fresh = new CodeBlocks(getCodec('int8'), 32, 16);
  const kernelA = fresh.kernelQuery(a);
  const kernelB = fresh.kernelQuery(b);
  assert.deepEqual(index.kernelQuery(a), kernelA);
  const first = scores(a);
  assert.deepEqual(index.kernelQuery(b), kernelB, 'another query is encoded again');
  assert.notDeepEqual(scores(b), first);
  assert.deepEqual(scores(a), first);
  assert.deepEqual(index.kernelQuery(a), kernelA);
  index.free();
  fresh.free();
});

test('the shift between two int8 kernel forms is the one between their kernel queries, number for number, and their distance as plain arithmetic gives it', () => {
  const next = rng(12);
  for (const dim of [1, 3, 5, 16, 33, 100, 512]) {
    const index = new CodeBlocks(getCodec('int8'), dim, 16);
    for (let trial = 0; trial < 20; trial++) {
      const a = { vector: Float32Array.from({ length: dim }, () => gaussian(next) * 10 ** (trial % 5 - 2)), metric: 'cosine' as const, int8Query: true };
      const b = { vector: a.vector.map((x) => x + gaussian(next) * 0.01), metric: 'cosine' as const, int8Query: true };
      const formA = index.kernelForm(a);
      const formB = index.kernelForm(b);
      assert.equal(formA.kind, 'int8');
      // The form is a copy: encoding another query does not change it.
      assert.deepEqual(formA.kind === 'int8' ? Float32Array.from(formA.code, (c) => c * formA.scale) : undefined, index.kernelQuery(a));
      for (const metric of ['cosine', 'dot', 'l2'] as const) {
        const fromForms = scoreShift(metric, formA, formB, 3);
        const fromVectors = scoreShift(metric, { kind: 'float', vector: index.kernelQuery(a) }, { kind: 'float', vector: index.kernelQuery(b) }, 3);
        assert.deepEqual(fromForms, fromVectors, `dim ${dim} trial ${trial} ${metric}`);
        // Whatever the scratch held before (a longer query's values past this one's end), the padding is zeros.
        const x = index.kernelQuery(a);
        const y = index.kernelQuery(b);
        const d = Math.sqrt(x.reduce((sum, v, i) => sum + (v - y[i]!) ** 2, 0));
        assert.ok(Math.abs(fromForms.delta - d) <= 1e-12 * (1 + d), `dim ${dim} trial ${trial}: delta ${fromForms.delta} against ${d}`);
        assert.ok(Math.abs(fromForms.nextNorm - Math.hypot(...y)) <= 1e-12 * (1 + fromForms.nextNorm));
      }
      scoreShift('cosine', { kind: 'float', vector: Float32Array.from({ length: dim + 7 }, () => 1e6) }, { kind: 'float', vector: Float32Array.from({ length: dim + 7 }, () => -1e6) }, 0);
    }
    const a = { vector: Float32Array.from({ length: dim }, () => gaussian(next)), metric: 'dot' as const, int8Query: true };
    const into = new Int8Array(dim);
    const placed = index.kernelForm(a, into);
    assert.ok(placed.kind === 'int8' && placed.code === into, 'the code is written where it is asked');
    assert.deepEqual(placed, index.kernelForm(a));
    assert.throws(() => index.kernelForm(a, new Int8Array(dim + 1)), RangeError);
    const float = { vector: new Float32Array(dim).fill(0.5), metric: 'l2' as const, int8Query: false };
    const form = index.kernelForm(float);
    assert.ok(form.kind === 'float' && form.vector === float.vector, 'a float query is its own kernel form');
    assert.throws(() => scoreShift('dot', form, { kind: 'float', vector: new Float32Array(dim + 16) }, 1), RangeError);
    index.free();
  }
});

test('duplicate vectors (kernel-score ties at the k-th place): a store with the cache answers as one without', async () => {
  const next = rng(21);
  const distinct = Array.from({ length: 12 }, () => Float32Array.from({ length: 32 }, () => gaussian(next)));
  // Three copies of each vector under ids whose order differs from the order they are added in.
  const records = distinct.flatMap((vector, i) => [2, 0, 1].map((copy) => ({ id: `d${copy}-${String(i).padStart(2, '0')}`, vector })));
  const cached = await MemStore.open(tempDir(), { dim: 32, trainSize: 8 });
  const plain = await MemStore.open(tempDir(), { dim: 32, trainSize: 8, cache: false });
  try {
    for (const store of [cached, plain]) {
      await store.add(records.slice(0, 20));
      await store.delete(['d2-00', 'd0-01']);
      await store.add(records.slice(20));
    }
    for (const [i, q] of distinct.entries()) {
      for (const options of [{ k: 2, rescore: false }, { k: 4, rescore: false }, { k: 5 }] as SearchOptions[]) {
        for (let again = 0; again < 2; again++) sameAnswer(await cached.search(q, options), await plain.search(q, options), `query ${i} ${JSON.stringify(options)}`);
      }
    }
  } finally {
    await cached.close();
    await plain.close();
  }
});

test('a write the store applies between ranking a search and reading its texts leaves no old text hot: later answers carry the new text', async () => {
  const dim = 16;
  const v = clustered(30, dim, 3, 3);
  // A file layer whose log writes report back when the test says: the write then lands a chosen
  // number of microtasks into a search started in the same step.
  const files = heldLog();
  const cached = await MemStore.open(tempDir(), { dim, durability: 'none', files });
  const plain = await MemStore.open(tempDir(), { dim, durability: 'none', cache: false });
  try {
    const records = v.map((vector, i) => ({ id: `r${i}`, vector, text: `old ${i}`, meta: { i, version: 0 } }));
    await cached.add(records);
    await plain.add(records);
    const q = v[0]!;
    for (let delay = 0; delay < 24; delay++) {
      // Read twice: r0's document and text are kept hot.
      await cached.search(q, { k: 5 });
      await cached.search(q.map((x) => x * 1.01), { k: 5 });
      const record = { id: 'r0', vector: q, text: `new ${delay}`, meta: { i: 0, version: delay + 1 } };
      const { reached, release } = files.hold();
      const write = cached.add([record]);
      await reached;
      release();
      const racing = (async () => {
        for (let i = 0; i < delay; i++) await null;
        return cached.search(q.map((x) => x * (1.02 + delay * 1e-4)), { k: 5 });
      })();
      await Promise.all([write, racing]);
      await plain.add([record]);
      for (const probe of [q.map((x) => x * 1.001), q]) sameAnswer(await cached.search(probe, { k: 5 }), await plain.search(probe, { k: 5 }), `delay ${delay}`);
    }
  } finally {
    await cached.close();
    await plain.close();
  }
});

/**
 * A caller doing everything at once with a cache far too small: dozens of concurrent searches
 * (exact repeats of the same Float32Array, queries a last bit apart, near and fresh ones, filters, k
 * past the store) evicting entries other searches still hold, a query changed in place after its
 * answer, answers changed by the caller, writes racing searches. Every answer must be, bit for bit,
 * what the store without the cache answers.
 */
async function hostileCacheUse(metric: Metric, codec: CodecName, cache: { entries: number; bytes: number; pool: number }, seed: number, asyncReads: boolean): Promise<void> {
  const next = rng(seed);
  const dim = 24;
  const centres = Array.from({ length: 6 }, () => Float32Array.from({ length: dim }, () => gaussian(next)));
  const fresh = () => Float32Array.from(centres[Math.floor(next() * 6)]!, (x) => x + 0.4 * gaussian(next));
  const tags = ['a', 'b', 'c'];
  let serial = 0;
  const record = (i: number, vector: Float32Array) => ({ id: `r${String(i).padStart(3, '0')}`, vector, text: `t${i}:${serial++}`, meta: { tag: tags[i % 3]!, n: { i, s: serial } } });
  const base = Array.from({ length: 100 }, () => fresh());
  // Duplicates: kernel-score ties at every rank.
  for (let i = 0; i < 20; i++) base.push(Float32Array.from(base[i]!));
  const initial = base.map((v, i) => record(i, v));
  const options: OpenOptions = { dim, metric, codec, durability: 'none' };
  const dir = tempDir();
  const disk = asyncReads ? new FaultFileLayer({ seed }) : undefined;
  if (disk !== undefined) {
    // Written, then reopened: vectors and texts are in files, and every read waits.
    const first = await MemStore.open(dir, { ...options, files: disk });
    await first.add(initial);
    await first.close();
  }
  const cached = await MemStore.open(dir, { ...options, cache, ...(disk === undefined ? {} : { files: disk }) });
  const plain = await MemStore.open(tempDir(), { ...options, cache: false });
  const same = (a: SearchHit[], b: SearchHit[], where: string) => assert.deepEqual(a, b, where);
  try {
    if (disk === undefined) await cached.add(initial);
    await plain.add(initial);
    const asked: Float32Array[] = [];
    const choices: SearchOptions[] = [{ k: 5 }, { k: 10 }, { k: 3, filter: { tag: 'b' } }, { k: 4, rescore: false }, { k: 200 }];
    const pick = () => choices[Math.floor(next() * choices.length)]!;
    const query = (): Float32Array => {
      const previous = asked[Math.floor(next() * asked.length)];
      const roll = next();
      let q: Float32Array;
      if (previous !== undefined && roll < 0.35) q = previous;
      else if (previous !== undefined && roll < 0.55) q = Float32Array.from(previous, (x, i) => (i === 0 ? (x === 0 ? 1e-30 : x * (1 + 2 ** -23)) : x));
      else if (previous !== undefined && roll < 0.75) q = Float32Array.from(previous, (x) => x + 0.01 * gaussian(next));
      else q = fresh();
      asked.push(q);
      return q;
    };
    for (let round = 0; round < 3; round++) {
      const burst = Array.from({ length: 24 }, () => ({ q: query(), o: pick() }));
      const got = await Promise.all(burst.map(({ q, o }) => cached.search(q, o)));
      for (const [i, { q, o }] of burst.entries()) same(got[i]!, await plain.search(q, o), `round ${round} burst ${i}`);
      for (const hit of got.flat()) {
        hit.id = 'changed';
        hit.score = -1;
        hit.text = 'changed';
        if (hit.meta !== undefined) (hit.meta as { n: { i: number } }).n.i = -1;
      }
      const again = await Promise.all(burst.slice(0, 8).map(({ q, o }) => cached.search(q, o)));
      for (const [i, { q, o }] of burst.slice(0, 8).entries()) same(again[i]!, await plain.search(q, o), `round ${round}: asked again ${i}`);
      const changed = burst[Math.floor(next() * burst.length)]!;
      const at = Math.floor(next() * dim);
      changed.q[at] = changed.q[at]! + 0.5;
      same(await cached.search(changed.q, changed.o), await plain.search(changed.q, changed.o), `round ${round}: the query changed in place`);
      type Write = { del: string } | { add: ReturnType<typeof record> };
      const writes = Array.from({ length: 3 }, (): Write => {
        const i = Math.floor(next() * 130);
        const roll = next();
        if (roll < 0.3) return { del: `r${String(i).padStart(3, '0')}` };
        return { add: record(i, roll < 0.6 ? Float32Array.from(asked[Math.floor(next() * asked.length)]!) : fresh()) };
      });
      const apply = (s: MemStore, w: Write) => ('del' in w ? s.delete([w.del]) : s.add([w.add]));
      const raced = Array.from({ length: 12 }, () => ({ q: query(), o: pick() }));
      await Promise.all([...raced.slice(0, 6).map(({ q, o }) => cached.search(q, o)), ...writes.map((w) => apply(cached, w)), ...raced.slice(6).map(({ q, o }) => cached.search(q, o))]);
      for (const w of writes) await apply(plain, w);
      for (const [i, { q, o }] of raced.entries()) same(await cached.search(q, o), await plain.search(q, o), `round ${round}: after the race ${i}`);
    }
    const s = cached.stats().cache;
    assert.equal(s.bytes, (cached as unknown as { cache: { recount(): number } }).cache.recount(), 'the running byte count is exact');
    assert.ok(s.bytes <= cache.bytes, `within the budget: ${s.bytes}`);
  } finally {
    await cached.close();
    await plain.close();
  }
}

const TINY_CACHES = [
  { entries: 1, bytes: 1, pool: 0 },
  { entries: 2, bytes: 3000, pool: 0.5 },
  { entries: 4, bytes: 20000, pool: 2.5 },
  { entries: 3, bytes: 70000, pool: 1 },
];

for (const asyncReads of [false, true]) {
  test(`tiny caches, concurrent bursts, repeats a last bit apart, callers changing queries and answers, racing writes${asyncReads ? ', reads that wait' : ''}: every answer is the uncached store's, bit for bit`, async () => {
    let seed = asyncReads ? 500 : 100;
    for (const metric of ['cosine', 'dot', 'l2'] as const) {
      for (const [i, cache] of TINY_CACHES.entries()) await hostileCacheUse(metric, i % 2 === 0 ? 'int8' : 'f32', cache, seed++, asyncReads);
    }
  });
}

describe('pools of a page index are scoped to the pages their search probed', () => {
  /**
   * Two clusters, around axes 0 and 1, make two pages. The query lies between them, nearer the
   * first: `nprobe: 1` scans that page only. A vector added next to the query but on the second's
   * side goes to the second page, so the search does not see it, though it would be its best result.
   */
  const DIM_S = 16;
  const next = rng(77);
  const around = (axis: number) => {
    const v = Float32Array.from({ length: DIM_S }, () => 0.05 * gaussian(next));
    v[axis]! += 1;
    return v;
  };
  const mix = (a: number, b: number) => {
    const v = new Float32Array(DIM_S);
    v[0] = a;
    v[1] = b;
    return v;
  };
  const records = [...Array.from({ length: 40 }, () => around(0)), ...Array.from({ length: 40 }, () => around(1))].map((vector, i) => ({ id: `c${i}`, vector }));
  const q = mix(0.56, 0.44);
  const opts = { k: 5, nprobe: 1 };

  async function pair(): Promise<[MemStore, MemStore]> {
    const options: OpenOptions = { dim: DIM_S, durability: 'none', pages: { from: 64, maxPage: 64 } };
    const cached = await MemStore.open(tempDir(), { ...options, cache: { entries: 8, pool: 3, bytes: 1 << 20 } });
    const plain = await MemStore.open(tempDir(), { ...options, cache: false });
    await cached.add(records);
    await plain.add(records);
    assert.equal(cached.stats().pages, 2);
    return [cached, plain];
  }

  test('a vector added to a page the query does not probe stays out of its pool, for the same query and a near one', async () => {
    const [cached, plain] = await pair();
    sameAnswer(await cached.search(q, opts), await plain.search(q, opts), 'first');
    const x = { id: 'x', vector: mix(0.44, 0.56) };
    await cached.add([x]);
    await plain.add([x]);
    const answer = await plain.search(q, opts);
    assert.ok(!answer.some((h) => h.id === 'x'), 'the search does not see the vector in the other page');
    const before = cached.stats().cache;
    sameAnswer(await cached.search(q, opts), answer, 'the same query after the write');
    const near = mix(0.561, 0.44);
    sameAnswer(await cached.search(near, opts), await plain.search(near, opts), 'a near query');
    const after = cached.stats().cache;
    assert.equal(after.exactHits - before.exactHits, 1, 'the same query was served from its pool');
    assert.equal(after.nearHits - before.nearHits, 1, 'the near query was served from the pool');
    await cached.close();
    await plain.close();
  });

  test('pages that deletes left holding fewer than the candidates: the search goes on to more pages, and the pool does not serve it', async () => {
    const [cached, plain] = await pair();
    // k 18, rescored: 36 candidates, from the one page probed (40 vectors).
    const wide = { k: 18, nprobe: 1 };
    sameAnswer(await cached.search(q, wide), await plain.search(q, wide), 'first');
    // 25 of the first page's 40 go (15 stay, over the 8 under which a page dissolves).
    const gone = Array.from({ length: 25 }, (_, i) => `c${i}`);
    await cached.delete(gone);
    await plain.delete(gone);
    assert.equal(cached.stats().pages, 2);
    const answer = await plain.search(q, wide);
    assert.ok(answer.some((h) => Number(h.id.slice(1)) >= 40), 'the search reached into the second page');
    const before = cached.stats().cache;
    sameAnswer(await cached.search(q, wide), answer, 'the same query after the deletes');
    assert.equal(cached.stats().cache.exactHits, before.exactHits);
    await cached.close();
    await plain.close();
  });

  test('a query routed to other pages since: the pages it now probes outside the pool\'s are scanned in full, and the answer is the search\'s', async () => {
    const [cached, plain] = await pair();
    sameAnswer(await cached.search(q, opts), await plain.search(q, opts), 'first');
    // Vectors on the second cluster's side of the query pull its centroid towards the query, which
    // then probes the second page, where the pool has no member.
    const pull = Array.from({ length: 20 }, (_, i) => {
      const v = Float32Array.from({ length: DIM_S }, () => 0.03 * gaussian(next));
      v[0] = 0.5;
      v[1] = 0.53;
      return { id: `p${i}`, vector: v };
    });
    await cached.add(pull);
    await plain.add(pull);
    assert.equal(cached.stats().pages, 2);
    const before = cached.stats().cache;
    const answer = await plain.search(q, opts);
    assert.ok(answer.every((h) => h.id.startsWith('p')), 'the search probed the second page');
    sameAnswer(await cached.search(q, opts), answer, 'the same query, routed elsewhere');
    assert.equal(cached.stats().cache.exactHits, before.exactHits + 1, 'served: the page outside the scope scanned, the pool\'s page left out');
    // Enough more to split a page: the layout changed, and the entries of the old one go.
    const more = Array.from({ length: 30 }, (_, i) => ({ id: `m${i}`, vector: around(0) }));
    await cached.add(more);
    await plain.add(more);
    assert.ok(cached.stats().pages > 2);
    const evictions = cached.stats().cache.evictions;
    sameAnswer(await cached.search(q, opts), await plain.search(q, opts), 'after the split');
    assert.equal(cached.stats().cache.evictions, evictions + 1, 'the entry of the old layout was dropped when next used');
    await cached.close();
    await plain.close();
  });
});

test('a query on a SharedArrayBuffer, at an offset, is an exact repeat of its own bits and no longer once a component past the hashed ones changes', async () => {
  // 96 dimensions: the hash of a query's bits reads its first 64 words, so a change in the last is
  // told apart by the full comparison alone.
  const dim = 96;
  const v = clustered(40, dim, 3);
  const store = await MemStore.open(tempDir(), { dim, durability: 'none' });
  await store.add(v.map((vector, i) => ({ id: `v${i}`, vector })));
  const q = new Float32Array(new SharedArrayBuffer(4 * (dim + 1)), 4, dim);
  q.set(v[5]!);
  const first = await store.search(q, { k: 3 });
  assert.deepEqual(await store.search(q, { k: 3 }), first);
  assert.equal(store.stats().cache.exactHits, 1);
  q[dim - 1] = -q[dim - 1]! + 0.5;
  await store.search(q, { k: 3 });
  assert.equal(store.stats().cache.exactHits, 1, 'changed bits are another query');
  await store.close();
});

test('a quiet spell: after 4 · entries searches in a row miss, one miss in 8 collects a pool and the others keep their answer alone; an exact repeat is still served, a hit ends the spell, and every answer is the uncached one', async () => {
  const dim = 16;
  const entries = 4;
  const next = rng(404);
  const base = clustered(300, dim, 17, 6);
  const cached = await MemStore.open(tempDir(), { dim, durability: 'none', cache: { entries } });
  const plain = await MemStore.open(tempDir(), { dim, durability: 'none', cache: false });
  try {
    const records = base.map((vector, i) => ({ id: `r${i}`, vector, meta: { i } }));
    await cached.add(records);
    await plain.add(records);
    const fresh = () => base[Math.floor(next() * base.length)]!.map((x) => x + 0.5 * gaussian(next));
    const ask = async (q: Float32Array) => {
      const got = await cached.search(q, { k: 5 });
      sameAnswer(got, await plain.search(q, { k: 5 }), 'quiet spell');
    };
    // 4 · entries misses in a row: every one collects its pool.
    for (let i = 0; i < 4 * entries; i++) await ask(fresh());
    assert.equal(cached.stats().cache.answerOnly, 0);
    assert.equal(cached.stats().cache.hits, 0);
    // 15 more: the 8th of them collects, the other 14 keep their answers alone (the last too).
    let last = fresh();
    for (let i = 0; i < 15; i++) await ask((last = fresh()));
    assert.equal(cached.stats().cache.answerOnly, 14);
    // The last was kept with its answer alone: asked again with nothing written, it is served.
    await ask(last);
    assert.equal(cached.stats().cache.exactHits, 1);
    // The hit ended the spell: the next 4 · entries misses collect their pools again.
    for (let i = 0; i < 4 * entries; i++) await ask(fresh());
    assert.equal(cached.stats().cache.answerOnly, 14);
    await ask(fresh());
    assert.equal(cached.stats().cache.answerOnly, 15, 'and the spell starts again after as many');
    // An entry kept with its answer alone serves no repeat once something was written: it has no pool to prove one.
    const again = fresh();
    await ask(again);
    assert.equal(cached.stats().cache.answerOnly, 16);
    const before = cached.stats().cache;
    const write = [{ id: 'r0', vector: fresh() }];
    await cached.add(write);
    await plain.add(write);
    await ask(again);
    assert.equal(cached.stats().cache.exactHits, before.exactHits, 'after a write, the repeat searched');
    // Nothing can prove an answer kept alone once a write has passed it: it goes at its repeat,
    // without a try of its (empty) pool.
    assert.equal(cached.stats().cache.boundFailures, before.boundFailures, 'no proof tried');
    assert.ok(cached.stats().cache.evictions > before.evictions, 'the answer-only entry dropped');
    assert.equal(cached.stats().cache.hits + cached.stats().cache.misses, 4 * entries * 2 + 15 + 1 + 1 + 2);
  } finally {
    await cached.close();
    await plain.close();
  }
});

test('bounds: no bound stays no bound: movedScore() of +∞ is +∞ for every metric, and an unbounded l2 shift bounds nothing (rq l2 scores can be above 0)', () => {
  const from = { kind: 'float' as const, vector: Float32Array.from([1, 0, 0, 0]) };
  const next = { kind: 'float' as const, vector: Float32Array.from([0.9, 0.1, 0, 0]) };
  for (const metric of ['cosine', 'dot', 'l2'] as const) {
    const shift = scoreShift(metric, from, next, 2);
    assert.equal(movedScore(shift, Infinity), Infinity, metric);
    assert.equal(movedScore(shift, -Infinity), -Infinity, metric);
    assert.ok(Number.isFinite(movedScore(shift, -0.5)), `${metric}: a finite bound moves to a finite one`);
  }
  const unbounded = { metric: 'l2' as const, delta: Infinity, margin: 0, maxNorm: 0, fromNorm: 0, nextNorm: 0, angle: 0 };
  for (const b of [-1e6, -1, -0, 0, 5]) assert.equal(movedScore(unbounded, b), Infinity, `l2, unbounded shift, bound ${b}`);
});

test('cache near: false: exact repeats are answered from memory, near queries always search, answers are the uncached ones, and no pool or sketch is kept', async () => {
  for (const metric of ['cosine', 'dot', 'l2'] as const) {
    const next = rng(41);
    const base = clustered(400, DIM, 43, 8);
    const pair = await openPair({ dim: DIM, metric, pages: false }, { entries: 16, near: false });
    const both = await openPair({ dim: DIM, metric, pages: false }, { entries: 16 });
    try {
      const records = base.map((v, i) => ({ id: `r${i}`, vector: v, meta: { i } }));
      await pair.add(records);
      await both.add(records);
      const queries = Array.from({ length: 12 }, (_, i) => perturb(base[(i * 31) % base.length]!, 0.2, next));
      for (const [i, q] of queries.entries()) await pair.check(q, { k: 5 }, `${metric} first ${i}`);
      let stats = pair.cached.stats().cache;
      assert.equal(stats.misses, queries.length);
      assert.equal(stats.answerOnly, queries.length, 'every miss is remembered with its answer alone');
      // Exact repeats, nothing written: every one from memory.
      for (const [i, q] of queries.entries()) await pair.check(q, { k: 5 }, `${metric} repeat ${i}`);
      stats = pair.cached.stats().cache;
      assert.equal(stats.exactHits, queries.length);
      // Near queries: the same queries with the cache near: true serve some of them; near: false none.
      for (const [i, q] of queries.entries()) {
        const near = q.map((x) => x * (1 + 1e-6) + 1e-7);
        await pair.check(near, { k: 5 }, `${metric} near ${i}`);
        await both.check(q, { k: 5 }, `${metric} near, default, first ${i}`);
        await both.check(near, { k: 5 }, `${metric} near, default ${i}`);
      }
      stats = pair.cached.stats().cache;
      assert.equal(stats.nearHits, 0, 'no near query is served');
      assert.equal(stats.boundFailures, 0, 'no near entry is ever tried');
      assert.ok(both.cached.stats().cache.nearHits > 0, `${metric}: the same near queries are served where near is on`);
      // After a write, an exact repeat searches (an answer alone proves nothing once the store changed).
      await pair.add([{ id: 'new', vector: base[0]!, meta: { i: -1 } }]);
      const exactBefore = pair.cached.stats().cache.exactHits;
      for (const [i, q] of queries.entries()) await pair.check(q, { k: 5 }, `${metric} after a write ${i}`);
      assert.equal(pair.cached.stats().cache.exactHits, exactBefore, 'a repeat after a write searched');
      for (const [i, q] of queries.entries()) await pair.check(q, { k: 5 }, `${metric} repeat after the write ${i}`);
      assert.equal(pair.cached.stats().cache.exactHits, exactBefore + queries.length, 'and was remembered again');
    } finally {
      await pair.close();
      await both.close();
    }
  }
});

test('cache near: a value other than a boolean is INVALID_OPTION naming cache.near', async () => {
  for (const near of ['no', 0, null, 1] as unknown[]) {
    await assert.rejects(
      () => MemStore.open(tempDir(), { dim: 4, cache: { near } as never }),
      (e: { code?: string; field?: string }) => e.code === 'INVALID_OPTION' && e.field === 'cache.near',
    );
  }
});

/**
 * The generator of the hostile pass that found it (a PRNG of 32 bits, Box–Muller for the normal
 * draws): its stream, seed 6, is what makes these near-identical vectors tie.
 */
function passRng(seed: number): { next: () => number; gauss: () => number } {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const gauss = (): number => {
    let u = 0;
    while (u === 0) u = next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
  };
  return { next, gauss };
}

for (const cache of [{}, { pool: 8 }]) {
  test(`rq ties: a near hit orders equal kernel scores as the scan does, by id, and answers as the store without the cache (cache ${JSON.stringify(cache)})`, async () => {
    // 300 vectors 1e11 from the origin, 1e-8 apart relatively, and 20 copies of the first: at rq2 many
    // share a code score and an exact score. The near query is the first with two components one
    // float32 step away. With the pool's ties ordered by slot, v40 (a lower slot than v176, a higher
    // id) came among the first k, v176 was left to its bound, and the near hit answered v40 where
    // the search answers v176 (equal exact scores: the id decides); its exact repeats answered v40 too.
    const dim = 8;
    const r = passRng(6);
    r.next();
    const centre = Array.from({ length: dim }, () => 1e11 * (0.5 + r.next()));
    const records = Array.from({ length: 300 }, (_, i) => ({ id: `v${i}`, vector: centre.map((c) => Math.fround(c + 1e-8 * 1e11 * r.gauss())) }));
    for (let i = 0; i < 20; i++) records.push({ id: `dup${i}`, vector: records[0]!.vector });
    const q1 = Float32Array.from([50234351616, 116317143040, 70216269824, 104211955712, 57076383744, 50453782528, 142092632064, 147055558656]);
    const q2 = Float32Array.from([50234351616, 116317143040, 70216269824, 104211955712, 57076387840, 50453786624, 142092632064, 147055558656]);
    const pair = await openPair({ dim, metric: 'cosine', codec: 'rq2', trainSize: 32 }, cache, { same: (got, want, where) => sameAnswer(got, want, where) });
    try {
      await pair.add(records);
      await pair.check(q1, { k: 3 }, 'the first query (a miss)');
      const near = pair.cached.stats().cache!.nearHits;
      const got = await pair.check(q2, { k: 3 }, 'its near query');
      assert.equal(pair.cached.stats().cache!.nearHits, near + 1, 'the near query is served from the pool');
      assert.ok(got.some((h) => h.id === 'v176') && !got.some((h) => h.id === 'v40'), 'v176 and v40 tie exactly; the lower id, v176, is the answer');
      await pair.check(q2, { k: 3 }, 'its exact repeat');
    } finally {
      await pair.close();
    }
  });
}

test('a filtered search of a page index asked again with the same number[] query, nothing written, is an exact hit with the same answer (its answer was remembered, but only a Float32Array query was looked for: it searched again every time)', async () => {
  const next = rng(77);
  const store = await MemStore.open(tempDir(), { dim: 8, pages: { from: 300, maxPage: 16 } });
  try {
    await store.add(Array.from({ length: 600 }, (_, i) => ({ id: `r${i}`, vector: Array.from({ length: 8 }, () => next() - 0.5), meta: { tag: i % 50 === 0 ? 'rare' : 'common' } })));
    assert.ok(store.stats().pages > 1, 'paged');
    const q = Array.from({ length: 8 }, () => next() - 0.5);
    for (const filter of [{ tag: 'rare' }, { tag: 'common' }]) {
      const first = await store.search(q, { k: 10, filter });
      const before = store.stats().cache;
      const again = await store.search(q, { k: 10, filter });
      const after = store.stats().cache;
      assert.equal(after.exactHits, before.exactHits + 1, `${filter.tag}: an exact hit`);
      assert.equal(after.misses, before.misses, `${filter.tag}: no miss`);
      assert.deepEqual(again, first);
      await store.add([{ id: 'r0', vector: Array.from({ length: 8 }, () => next() - 0.5), meta: { tag: filter.tag } }]);
      const written = store.stats().cache;
      await store.search(q, { k: 10, filter });
      assert.equal(store.stats().cache.exactHits, written.exactHits, `${filter.tag}: after a write it searches again`);
    }
  } finally {
    await store.close();
  }
});
