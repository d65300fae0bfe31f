import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { MemStore, type MemoryRecord, type SearchHit, type SearchOptions } from '../src/index.js';
import { HotVectors, MAX_SLAB_BYTES } from '../src/cache/hot-vectors.js';
import type { CodecName } from '../src/codec/codec.js';
import type { CacheOptions, Metric } from '../src/options.js';
import { clustered, perturb, rng } from './helpers.js';
import { openPair, type CachedPair } from './support/cached-pair.js';

/**
 * More hostile use of the lookaside cache (src/cache/CACHE.md), aimed at slot-keyed hot vectors and
 * pools, the scan's selection kernel and the per-member pool scores: budgets at both ends of what
 * the options accept, slots moved under hot vectors between a miss and its near repeats, pool members
 * upserted far away or next to the query, filters whose matches change, stores of one to three
 * vectors and all-tied ones, concurrent searches racing writes. The oracle is the same store opened
 * with `cache: false`: answers must be equal hit for hit (ids, scores bit for bit, texts, metadata).
 */

const METRICS: Metric[] = ['cosine', 'dot', 'l2'];

test('a cache budget as large as the options accept (a terabyte, Number.MAX_SAFE_INTEGER): searches answer as without the cache, and hot vectors still serve rescoring', async () => {
  // The hot-vector slab is allocated at its full capacity with its first row: half of such a budget
  // asked V8 for a typed array longer than it makes, and every search that kept a vector hot threw.
  for (const bytes of [2 ** 40, Number.MAX_SAFE_INTEGER]) {
    for (const dim of [4, 512]) {
      const hot = new HotVectors(dim, bytes / 2);
      assert.ok(hot.capacity > 0 && hot.capacity * dim * 4 <= MAX_SLAB_BYTES, `${bytes} B, dim ${dim}: a slab V8 can make (${hot.capacity} rows)`);
      hot.put(3, Float32Array.from({ length: dim }, (_, i) => i), 1);
      assert.equal(hot.view(3)?.full[dim - 1], dim - 1);
    }
    const next = rng(21);
    const dim = 16;
    const base = clustered(80, dim, 22, 4);
    const pair = await openPair({ dim }, { bytes });
    try {
      await pair.add(base.map((vector, i) => ({ id: `b${i}`, vector, text: `t${i}` })));
      for (let step = 0; step < 12; step++) await pair.check(perturb(base[5]!, 0.999, next), { k: 4 }, `${bytes} B, near query ${step}`);
      assert.ok(pair.cached.stats().cache.fullReadsSaved > 0, 'rescoring took hot vectors');
    } finally {
      await pair.close();
    }
  }
});

/** The scan's pool of a store's search path (score-pool.ts), for how much room it made. */
function scanPoolRoom(store: MemStore): number {
  const path = (store as unknown as { searches: { pool: { top: { capacity: number } } } }).searches;
  return path.pool.top.capacity - 1;
}

test('k and the pool at the top of their ranges on a small store: the scan makes room for no more than the store holds, and answers as without the cache', async () => {
  // poolRoom() was twice poolSize(): 2 · 101 · M for pool 100, whatever the store's size (a k of
  // 100,000 made a pool selection of 6,060 entries for 30 vectors, of millions for a larger store).
  for (const metric of METRICS) {
    const dim = 8;
    const base = clustered(30, dim, 31, 3);
    const pair = await openPair({ dim, metric }, { pool: 100 });
    try {
      await pair.add(base.map((vector, i) => ({ id: `p${i}`, vector })));
      for (const o of [{ k: 100_000 }, { k: 100_000, rescore: false }, { k: 3 }] as SearchOptions[]) {
        await pair.check(base[1]!, o, `${metric} ${JSON.stringify(o)}: miss`);
        assert.ok(scanPoolRoom(pair.cached) <= 30, `${metric} ${JSON.stringify(o)}: room for ${scanPoolRoom(pair.cached)}`);
        await pair.check(base[1]!.map((x) => x * 1.0001), o, `${metric} ${JSON.stringify(o)}: near`);
      }
    } finally {
      await pair.close();
    }
  }
});

test('hot vectors and pools when slots move between a miss and its near repeats: a neighbourhood read thrice, other vectors deleted (the last slots move into the holes, across a freed block), new ids near the query taking the freed slots, then near repeats', async () => {
  const next = rng(41);
  const dim = 8;
  let saved = 0;
  let near = 0;
  for (const metric of METRICS) {
    for (const codec of ['int8', 'f32'] as CodecName[]) {
      // Past one block of the index (1,024 vectors): deleting frees the last block, adding makes one again.
      const base = clustered(1040, dim, 42, 6);
      const pair = await openPair({ dim, metric, codec }, { entries: 16, pool: 3 });
      try {
        await pair.add(base.map((vector, i) => ({ id: `s${i}`, vector, text: `t${i}`, meta: { g: i % 2 } })));
        let live = base.map((_, i) => `s${i}`);
        let serial = 0;
        for (let round = 0; round < 3; round++) {
          const q = base[round * 97]!;
          const options: SearchOptions[] = [{ k: 5 }, { k: 5, rescore: false }, { k: 4, filter: { g: 0 } }];
          const before = pair.cached.stats().cache;
          for (const o of options) for (let i = 0; i < 3; i++) await pair.check(i === 0 ? q : perturb(q, 0.9999, next), o, `${metric} ${codec} round ${round} ${JSON.stringify(o)}: warm ${i}`);
          const hits = await pair.check(q, { k: 5 }, `${metric} ${codec} round ${round}: the neighbourhood`);
          const results = new Set(hits.map((h) => h.id));
          // Delete vectors away from the results (low slots, so the last slots move into their holes),
          // and one result.
          const victims = live.filter((id) => !results.has(id)).slice(0, 25);
          victims.push(hits[2]!.id);
          await pair.del(victims);
          live = live.filter((id) => !victims.includes(id));
          // New ids next to the query take the freed slots; an old result is upserted right onto it.
          const fresh = Array.from({ length: 6 }, () => ({ id: `n${serial++}`, vector: perturb(q, 0.99, next), text: `n${serial}`, meta: { g: serial % 2 } }));
          await pair.add([...fresh, { id: hits[0]!.id, vector: Float32Array.from(q), text: 'onto the query', meta: { g: 0 } }]);
          live.push(...fresh.map((r) => r.id));
          for (const o of options) for (let i = 0; i < 3; i++) await pair.check(perturb(q, 0.99995, next), o, `${metric} ${codec} round ${round} ${JSON.stringify(o)}: near after the moves ${i}`);
          for (const o of options) await pair.check(q, o, `${metric} ${codec} round ${round} ${JSON.stringify(o)}: the identical query after the moves`);
          const after = pair.cached.stats().cache;
          saved += after.fullReadsSaved - before.fullReadsSaved;
          near += after.nearHits - before.nearHits;
        }
        // Below one block by now (1,040 - 3 · 20): up past it again, near the query, then back below.
        await pair.add(Array.from({ length: 70 }, (_, i) => ({ id: `m${i}`, vector: perturb(base[0]!, 0.995, next) })));
        for (let i = 0; i < 3; i++) await pair.check(perturb(base[0]!, 0.9999, next), { k: 5 }, `${metric} ${codec} past the block again: ${i}`);
        await pair.del(live.slice(0, 40));
        for (let i = 0; i < 3; i++) await pair.check(perturb(base[0]!, 0.9999, next), { k: 5 }, `${metric} ${codec} across the block: ${i}`);
      } finally {
        await pair.close();
      }
    }
  }
  assert.ok(saved > 0, `hot vectors served rescoring after slots moved (${saved})`);
  assert.ok(near > 0, `near hits after slots moved (${near})`);
});

test('pool members upserted between a miss and its near repeat: onto the query, a hair away, far away, out of and into the filter, deleted and re-added elsewhere', async () => {
  const next = rng(51);
  const dim = 12;
  let near = 0;
  for (const metric of METRICS) {
    const base = clustered(200, dim, 52, 5);
    const pair = await openPair({ dim, metric }, { entries: 8, pool: 4 });
    try {
      const record = (i: number, vector: Float32Array, tag: string): MemoryRecord => ({ id: `u${i}`, vector, text: `${tag}${i}`, meta: { tag } });
      await pair.add(base.map((v, i) => record(i, v, i % 3 === 0 ? 'x' : 'y')));
      const kinds = ['onto', 'hair', 'far', 'out', 'in', 'elsewhere'] as const;
      for (const [round, kind] of kinds.entries()) {
        for (const o of [{ k: 6 }, { k: 6, rescore: false }, { k: 4, filter: { tag: 'x' } }] as SearchOptions[]) {
          const q = base[round * 31 + 3]!;
          const where = `${metric} ${kind} ${JSON.stringify(o)}`;
          await pair.check(q, o, `${where}: miss`);
          await pair.check(perturb(q, 0.99999, next), o, `${where}: near before`);
          // A member of the pool below the candidates, and the last candidate.
          const deep = await pair.plain.search(q, { ...o, k: 20 });
          const member = Number(deep[deep.length - 1]!.id.slice(1));
          const last = Number(deep[(o.k ?? 10) - 1]!.id.slice(1));
          for (const m of [member, last]) {
            if (kind === 'onto') await pair.add([record(m, Float32Array.from(q), 'x')]);
            else if (kind === 'hair') await pair.add([record(m, q.map((x, i) => (i === 0 ? x + 1e-4 : x)), 'x')]);
            else if (kind === 'far') await pair.add([record(m, q.map((x) => -3 * x), 'x')]);
            else if (kind === 'out') await pair.add([record(m, base[m]!, 'y')]);
            else if (kind === 'in') await pair.add([record(m, perturb(q, 0.999, next), 'x')]);
            else {
              await pair.del([`u${m}`]);
              await pair.add([record(m, perturb(q, 0.98, next), 'x')]);
            }
          }
          for (const cos of [0.99999, 0.9999]) await pair.check(perturb(q, cos, next), o, `${where}: near after`);
          await pair.check(q, o, `${where}: identical after`);
        }
      }
      near += pair.cached.stats().cache.nearHits;
    } finally {
      await pair.close();
    }
  }
  assert.ok(near > 20, `near hits happened (${near})`);
});

test('stores of one to three vectors, all of them equal or zero-ish, k past the store, all-zero queries, every metric and codec: the uncached answer through misses, repeats and near repeats, while they empty and fill again', async () => {
  const codecs: CodecName[] = ['int8', 'f16', 'fp8-e4m3', 'f32'];
  for (const metric of METRICS) {
    for (const codec of codecs) {
      const dim = 3;
      const pair = await openPair({ dim, metric, codec }, { entries: 4, pool: 0 });
      try {
        const one = Float32Array.from([1, 2, 3]);
        const queries = [one, Float32Array.from([1, 2, 3.0001]), new Float32Array(dim), Float32Array.from([-1, 0, 0]), Float32Array.from([0, 0, 1e-3])];
        const stream: (MemoryRecord[] | string[])[] = [
          [{ id: 'a', vector: one, text: 'a' }],
          [{ id: 'b', vector: Float32Array.from(one), text: 'b' }],
          [{ id: 'c', vector: Float32Array.from(one), meta: { m: 1 } }],
          ['a'],
          [{ id: 'a', vector: Float32Array.from([3, 2, 1]) }],
          ['b', 'c'],
          ['a'],
          [{ id: 'z', vector: Float32Array.from([2, 4, 6]) }],
        ];
        for (const [step, write] of stream.entries()) {
          if (typeof write[0] === 'string') await pair.del(write as string[]);
          else await pair.add(write as MemoryRecord[]);
          for (const [qi, q] of queries.entries()) {
            for (const o of [{ k: 1 }, { k: 2, rescore: false }, { k: 50 }, { k: 2, filter: { m: 1 } }] as SearchOptions[]) {
              for (let again = 0; again < 2; again++) await pair.check(q, o, `${metric} ${codec} step ${step} query ${qi} ${JSON.stringify(o)} ${again}`);
            }
          }
        }
      } finally {
        await pair.close();
      }
    }
  }
});

test('concurrent searches (identical, near, filtered) racing upserts and deletes of their own results: each answer is the uncached one before the write or after it, and every later one is the uncached one', async () => {
  const next = rng(61);
  const dim = 10;
  for (const metric of METRICS) {
    const base = clustered(120, dim, 62, 4);
    const pair = await openPair({ dim, metric }, { entries: 6, pool: 2 });
    try {
      const record = (i: number, vector: Float32Array, v: number): MemoryRecord => ({ id: `c${i}`, vector, text: `c${i}.${v}`, meta: { g: (i + v) % 2 } });
      await pair.add(base.map((vector, i) => record(i, vector, 0)));
      for (let round = 0; round < 8; round++) {
        const q = base[round * 13]!;
        const asks: { q: Float32Array; o: SearchOptions }[] = [
          { q, o: { k: 5 } },
          { q: perturb(q, 0.9999, next), o: { k: 5 } },
          { q, o: { k: 3, filter: { g: 1 } } },
          { q: perturb(q, 0.99999, next), o: { k: 4, rescore: false } },
        ];
        // Warm: misses, then hot vectors and entries for every ask.
        for (let i = 0; i < 2; i++) for (const a of asks) await pair.check(a.q, a.o, `${metric} round ${round}: warm`);
        const hits = await pair.plain.search(q, { k: 5 });
        const victim = Number(hits[round % 5]!.id.slice(1));
        const write: { del: string[] } | { add: MemoryRecord[] } = round % 3 === 0 ? { del: [`c${victim}`] } : { add: [record(victim, round % 3 === 1 ? q.map((x) => -x) : perturb(q, 0.999, next), round + 1)] };
        const apply = (s: MemStore) => ('del' in write ? s.delete(write.del) : s.add(write.add));
        const before = await Promise.all(asks.map((a) => pair.plain.search(a.q, a.o)));
        const got = await Promise.all([...asks.slice(0, 2).map((a) => pair.cached.search(a.q, a.o)), apply(pair.cached).then(() => undefined), ...asks.slice(2).map((a) => pair.cached.search(a.q, a.o))]);
        await apply(pair.plain);
        const answers = [got[0], got[1], got[3], got[4]];
        for (const [i, a] of asks.entries()) {
          const after = await pair.plain.search(a.q, a.o);
          const answer = answers[i];
          assert.ok(JSON.stringify(answer) === JSON.stringify(before[i]) || JSON.stringify(answer) === JSON.stringify(after), `${metric} round ${round} ask ${i}: before or after the write`);
          await pair.check(a.q, a.o, `${metric} round ${round} ask ${i}: after the race`);
        }
      }
    } finally {
      await pair.close();
    }
  }
});

test('PCA trained in the middle of a stream (entries, pools and hot vectors of the untrained store then gone), with near repeats before and after: the uncached answer', async () => {
  const next = rng(71);
  const dim = 16;
  for (const metric of METRICS) {
    for (const codec of ['int8', 'f16'] as CodecName[]) {
      const base = clustered(160, dim, 72, 5);
      const pair = await openPair({ dim, metric, codec, pca: { dims: 6 }, trainSize: 100 }, { entries: 8, pool: 2 });
      try {
        for (let at = 0; at < 160; at += 20) {
          // Training happens with the write that brings the store to 100 vectors.
          await pair.add(base.slice(at, at + 20).map((vector, i) => ({ id: `q${at + i}`, vector, text: `${at + i}` })));
          const q = base[at]!;
          for (const o of [{ k: 4 }, { k: 4, rescore: false }] as SearchOptions[]) {
            for (let i = 0; i < 3; i++) await pair.check(i === 0 ? q : perturb(q, 0.9999, next), o, `${metric} ${codec} at ${at} ${JSON.stringify(o)}: ${i}`);
          }
          if (at === 60) await pair.del(['q1', 'q2', 'q3']);
        }
      } finally {
        await pair.close();
      }
    }
  }
});

/** What a search gives: its hits, or the code of the MemstoreError it threw (anything else is thrown on). */
async function outcome(store: MemStore, q: unknown, o: SearchOptions): Promise<SearchHit[] | string> {
  try {
    return await store.search(q as Float32Array, o);
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    throw e;
  }
}

test('a query that is a Float32Array in name only (a subclass or own property shadowing byteOffset, buffer or length; a detached buffer; a Proxy; an object posing as one; one of another realm): the answer, or the MemstoreError, of the store without the cache', async () => {
  // The exact-repeat lookup runs before the query is checked and copied, and read its bits through
  // the object's own getters: a query whose byteOffset pointed at a remembered query's bits got that
  // query's answer, and the others threw a TypeError where the store without the cache throws INVALID_VECTOR.
  class ShiftedView extends Float32Array {
    override get byteOffset(): number {
      return 16;
    }
  }
  class LongerView extends Float32Array {
    override get length(): number {
      return 8;
    }
  }
  for (const metric of METRICS) {
    const pair = await openPair({ dim: 4, metric });
    try {
      const remembered = Float32Array.from([1, 2, 3, 4]);
      await pair.add([
        { id: 'near-remembered', vector: Float32Array.from([1, 2, 3, 4]), text: 'r' },
        { id: 'near-asked', vector: Float32Array.from([9, 9, 9, 9]), text: 'a' },
        { id: 'other', vector: Float32Array.from([-1, 0, 2, -3]) },
      ]);
      const o: SearchOptions = { k: 1 };
      for (let i = 0; i < 2; i++) await pair.check(remembered, o, `${metric}: the remembered query ${i}`);
      const memory = new Float32Array([9, 9, 9, 9, 1, 2, 3, 4]).buffer;
      const ownBuffer = Float32Array.from([9, 9, 9, 9]);
      Object.defineProperty(ownBuffer, 'buffer', { value: Float32Array.from(remembered).buffer });
      const ownOffset = new Float32Array(memory, 0, 4);
      Object.defineProperty(ownOffset, 'byteOffset', { value: 16 });
      const detached = Float32Array.from(remembered);
      structuredClone(detached.buffer, { transfer: [detached.buffer] });
      const queries: [string, unknown][] = [
        ['a subclass whose byteOffset points at the remembered bits', new ShiftedView(memory, 0, 4)],
        ['a subclass whose length takes in the remembered bits', new LongerView(memory, 0, 4)],
        ['an own buffer property', ownBuffer],
        ['an own byteOffset property', ownOffset],
        ['a detached buffer', detached],
        ['a Proxy of the remembered query', new Proxy(Float32Array.from(remembered), {})],
        ['an object with Float32Array.prototype', Object.create(Float32Array.prototype) as unknown],
        ['a Float32Array of another realm with the remembered bits', runInNewContext('Float32Array.from([1, 2, 3, 4])') as unknown],
      ];
      for (const [what, q] of queries) {
        const got = await outcome(pair.cached, q, o);
        assert.deepEqual(got, await outcome(pair.plain, q, o), `${metric}: ${what}`);
      }
      // The first one in particular: the asked values' own neighbour, not the remembered query's.
      assert.deepEqual(await outcome(pair.cached, new ShiftedView(memory, 0, 4), o), [{ id: 'near-asked', score: (await pair.plain.search(Float32Array.from([9, 9, 9, 9]), o))[0]!.score, text: 'a' }], metric);
      await pair.check(remembered, o, `${metric}: the remembered query is still answered`);
      assert.ok(pair.cached.stats().cache.exactHits > 0, 'exact repeats were served');
    } finally {
      await pair.close();
    }
  }
});

type StreamOp =
  | { kind: 'search'; how: 'fresh' | 'repeat' | 'hair' | 'near' | 'zero'; at: number; k: number; filter: number; rescore: boolean; times: number }
  | { kind: 'delete'; ids: number[] }
  | { kind: 'upsert'; id: number; from: number; group: number; shift: number }
  | { kind: 'onto'; id: number; at: number; far: boolean };

const STREAM_FILTERS = [undefined, { g: 0 }, { g: { $in: [0, 1] } }, { g: 7 }];

/**
 * pair.add(), where records the store refuses (a vector put onto a query refused as too small) must
 * be refused alike without the cache, and change neither store.
 */
async function addOrBothRefuse(pair: CachedPair, records: MemoryRecord[]): Promise<void> {
  try {
    await pair.add(records);
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code !== 'INVALID_VECTOR') throw e;
    await assert.rejects(pair.plain.add(records), (other: unknown) => (other as { code?: unknown }).code === code);
  }
}

/**
 * pair.check(), where a query the store refuses (a near query of a zero one can fall below the
 * smallest magnitude a query may have, INVALID_VECTOR) must be refused alike without the cache.
 */
async function checkOrBothRefuse(pair: CachedPair, q: Float32Array, options: SearchOptions, where: string): Promise<void> {
  const outcome = async (store: MemStore) => {
    try {
      return { hits: await store.search(q, options) };
    } catch (e) {
      if ((e as { code?: unknown }).code !== 'INVALID_VECTOR') throw e;
      return { refused: 'INVALID_VECTOR' };
    }
  };
  assert.deepEqual(await outcome(pair.cached), await outcome(pair.plain), where);
}

test('random streams on tiny stores of small integer vectors (ties at every rank, one to three dimensions and more), pool 0 to 8, budgets of 1 byte to 4 MiB: every answer is the uncached one', async () => {
  const op: fc.Arbitrary<StreamOp> = fc.oneof(
    { weight: 6, arbitrary: fc.record({ kind: fc.constant('search' as const), how: fc.constantFrom('fresh' as const, 'repeat' as const, 'hair' as const, 'near' as const, 'zero' as const), at: fc.nat(), k: fc.constantFrom(1, 2, 3, 5, 40), filter: fc.nat({ max: STREAM_FILTERS.length - 1 }), rescore: fc.boolean(), times: fc.integer({ min: 1, max: 3 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), ids: fc.array(fc.nat({ max: 24 }), { minLength: 1, maxLength: 4 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('upsert' as const), id: fc.nat({ max: 24 }), from: fc.nat(), group: fc.nat({ max: 2 }), shift: fc.integer({ min: -2, max: 2 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('onto' as const), id: fc.nat({ max: 24 }), at: fc.nat(), far: fc.boolean() }) },
  );
  const arb = fc.record({
    metric: fc.constantFrom(...METRICS),
    codec: fc.constantFrom<CodecName>('int8', 'f32', 'f16', 'fp8-e4m3'),
    dim: fc.constantFrom(1, 2, 3, 6),
    oversample: fc.constantFrom(1, 2, 4),
    cache: fc.constantFrom<CacheOptions>({ entries: 1, bytes: 1, pool: 0 }, { entries: 2, bytes: 4000, pool: 1 }, { entries: 16, bytes: 1 << 22, pool: 2.5 }, { entries: 4, bytes: 60_000, pool: 8 }, { entries: 8, bytes: 1 << 20, near: false }),
    seed: fc.integer({ min: 1, max: 1 << 30 }),
    initial: fc.integer({ min: 1, max: 14 }),
    ops: fc.array(op, { minLength: 10, maxLength: 45 }),
  });
  let near = 0;
  await fc.assert(
    fc.asyncProperty(arb, async (c) => {
      const next = rng(c.seed);
      const centres = Array.from({ length: 3 }, () => Float32Array.from({ length: c.dim }, () => Math.round(8 * next() - 4) || 1));
      const vector = (from: number, shift = 0) => Float32Array.from(centres[from % 3]!, (x, i) => x + (i === from % c.dim ? shift : 0));
      const pair = await openPair({ dim: c.dim, metric: c.metric, codec: c.codec, oversample: c.oversample }, c.cache);
      try {
        const record = (id: number, v: Float32Array, group: number): MemoryRecord => ({ id: `v${id}`, vector: v, text: `t${id}.${group}`, meta: { g: group } });
        await pair.add(Array.from({ length: c.initial }, (_, i) => record(i, vector(i, Math.round(2 * next() - 1)), i % 2)));
        const asked: Float32Array[] = [];
        for (const [step, o] of c.ops.entries()) {
          if (o.kind === 'delete') await pair.del(o.ids.map((i) => `v${i}`));
          else if (o.kind === 'upsert') await pair.add([record(o.id, vector(o.from, o.shift), o.group)]);
          else if (o.kind === 'onto') {
            const q = asked[o.at % Math.max(1, asked.length)];
            if (q !== undefined && q.some((x) => x !== 0)) await addOrBothRefuse(pair, [record(o.id, o.far ? q.map((x) => -2 * x) : Float32Array.from(q), 0)]);
          } else {
            const previous = asked[o.at % Math.max(1, asked.length)];
            let q: Float32Array;
            if (o.how === 'zero') q = new Float32Array(c.dim);
            else if (previous === undefined || o.how === 'fresh') q = vector(o.at, (o.at % 5) - 2);
            else if (o.how === 'repeat') q = previous;
            else if (o.how === 'hair') q = previous.map((x, i) => (i === 0 ? (x === 0 ? 1e-3 : x * (1 + 2 ** -20)) : x));
            else q = previous.map((x) => x + 0.01 * (next() - 0.5) * (Math.abs(x) + 1));
            asked.push(q);
            const filter = STREAM_FILTERS[o.filter];
            const options: SearchOptions = { k: o.k, ...(filter === undefined ? {} : { filter }), ...(o.rescore ? {} : { rescore: false }) };
            for (let t = 0; t < o.times; t++) await checkOrBothRefuse(pair, q, options, `step ${step} ${o.how} ${JSON.stringify(options)} (${t})`);
          }
        }
        near += pair.cached.stats().cache.nearHits;
      } finally {
        await pair.close();
      }
    }),
    { numRuns: Number(process.env.RUNS ?? 60), seed: Number(process.env.SEED ?? 20261130) },
  );
  assert.ok(near > 0, `near hits happened (${near})`);
});

test('an answer-only entry of an rq l2 store, its query repeated exactly after each add of a vector next to it: the uncached answer (rq l2 scores can be above 0, so no bound turns into "at most 0")', async () => {
  // Found by a hostile test: five fresh queries started a quiet spell, the query was remembered with
  // its answer alone (bound +∞), and after an add its repeat was certified from the one id written,
  // by movedScore(shift, +∞) read as 0 in the l2 form: a worse id served, and served again after.
  const dim = 16;
  const random = rng(7);
  const vec = () => Float32Array.from({ length: dim }, () => (random() * 2 - 1) * 100);
  const near = (q: Float32Array) => q.map((x) => x + (random() * 2 - 1) * 2);
  for (const options of [{ k: 1 }, { k: 2, rescore: false }] as SearchOptions[]) {
    const pair = await openPair({ dim, metric: 'l2', codec: 'rq2', oversample: 1, trainSize: 64 }, { entries: 1 });
    try {
      const q = vec();
      const records = Array.from({ length: 200 }, (_, i) => ({ id: `r${i}`, vector: i < 20 ? near(q) : vec() }));
      await pair.add(records);
      for (let i = 0; i < 5; i++) await pair.check(vec(), options, `fresh query ${i}`);
      await pair.check(q, options, 'the query, remembered with its answer alone');
      assert.ok(pair.cached.stats().cache!.answerOnly > 0, 'the quiet spell was reached');
      for (let t = 0; t < 6; t++) {
        await pair.add([{ id: `n${t}`, vector: near(q) }]);
        await pair.check(q, options, `${JSON.stringify(options)}: the exact repeat after adding n${t}`);
      }
    } finally {
      await pair.close();
    }
  }
});

test('an rq l2 store: a query repeated exactly after writes is served from its pool (the same tables give every old vector its old score), with the answer of the store without the cache', async () => {
  const dim = 16;
  const random = rng(11);
  const vec = () => Float32Array.from({ length: dim }, () => (random() * 2 - 1) * 100);
  const near = (q: Float32Array, by: number) => q.map((x) => x + (random() * 2 - 1) * by);
  for (const codec of ['rq1', 'rq2', 'rq4'] as const) {
    for (const options of [{ k: 5 }, { k: 3, rescore: false }] as SearchOptions[]) {
      const pair = await openPair({ dim, metric: 'l2', codec, trainSize: 64 });
      try {
        const q = vec();
        // Near-duplicates of the query among the rest: its best kernel scores can be above 0.
        await pair.add(Array.from({ length: 300 }, (_, i) => ({ id: `r${i}`, vector: i < 10 ? near(q, 2) : i < 40 ? near(q, 20) : vec() })));
        await pair.check(q, options, `${codec}: the query`);
        for (let t = 0; t < 8; t++) {
          // Vectors that enter the answer, vectors that do not, and one that leaves it.
          if (t % 3 === 2) await pair.del([`r${t}`]);
          else await pair.add([{ id: `n${t}`, vector: t % 3 === 0 ? near(q, 1) : vec() }]);
          const before = pair.cached.stats().cache!.exactHits;
          await pair.check(q, options, `${codec} ${JSON.stringify(options)}: the exact repeat after write ${t}`);
          assert.equal(pair.cached.stats().cache!.exactHits, before + 1, `${codec} ${JSON.stringify(options)}: write ${t}, served from the pool`);
        }
        await pair.check(near(q, 0.001), options, `${codec}: a near query`);
        await pair.check(q, options, `${codec}: the query again`);
      } finally {
        await pair.close();
      }
    }
  }
});

test('an rq l2 store whose best kernel scores are above 0 (near-duplicates of the query; rq l2 scores are estimates), smaller than its pools: near queries answer as without the cache', async () => {
  // The shape of what a hostile stream found (magnitudes from 1e-3 to 1e5): under the unbounded shift
  // of an rq l2 store, skipBelow took scores for minus squared distances, at most 0, and for a last
  // candidate above 0 skipped every member of a pool of every vector below it; the near hit's
  // candidates were then not the scan's. The rule itself is pinned in cache.test.ts (bounds); this
  // stream keeps the store-level answer to it.
  const dim = 24;
  const random = rng(43);
  const q = Float32Array.from({ length: dim }, () => (random() * 2 - 1) * 1000);
  const jitter = (v: Float32Array, by: number) => v.map((x) => x + (random() * 2 - 1) * by);
  for (const rescore of [false, true]) {
    const pair = await openPair({ dim, metric: 'l2', codec: 'rq2', trainSize: 100 });
    try {
      const records = [
        ...Array.from({ length: 170 }, (_, i) => ({ id: `d${i}`, vector: jitter(q, 1 + i) })),
        ...Array.from({ length: 30 }, (_, i) => ({ id: `r${i}`, vector: Float32Array.from({ length: dim }, () => (random() * 2 - 1) * 10 ** (random() * 5 - 2)) })),
      ];
      await pair.add(records);
      await pair.check(q, { rescore }, 'the query');
      for (let i = 0; i < 8; i++) await pair.check(jitter(q, 20 * (i + 1)), { rescore }, `near query ${i}`);
    } finally {
      await pair.close();
    }
  }
});
