import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { MemStore, type Metric, type OpenOptions, type RqCodecName } from '../src/index.js';
import type { RqBits } from '../src/kernels/contract.js';
import { kernels } from '../src/kernels/index.js';
import type { VectorIndex } from '../src/index/vector-index.js';
import { buildLut, lutErrorBound, writeTable } from '../src/scan/fast-scan-lut.js';
import type { VectorSpace } from '../src/space/vector-space.js';
import { openPair } from './support/cached-pair.js';
import { HOSTILE_FS_CHILD, hostileFsBatch, hostileFsDeletes } from './support/hostile-fs-ops.js';
import { runUntilKilled } from './support/killable.js';
import { bruteForce, clustered, exactScore, gaussian, perturb, rng, tempDir } from './helpers.js';

/**
 * Hostile use of the fast-scan layout of rq codes (src/index/PAGES.md "Fast-scan pages",
 * src/kernels/KERNELS.md "Fast scan" and "The table kernel"): the table kernel against writeTable on
 * odd queries, lutErrorBound against the table's maxError, codes moved between lanes, blocks and
 * pages by deletes and upserts, reopen and compaction, kill -9, and the cache on and off.
 */

const BITS: readonly RqBits[] = [1, 2, 4];

interface Internals {
  index: VectorIndex;
  space: VectorSpace;
}

function internals(store: MemStore): Internals {
  return store as unknown as Internals;
}

/** The table and the two numbers the kernel leaves (delta, Σ min_g), by the WebAssembly kernel. */
function kernelTable(bits: RqBits, q: Float32Array): { table: Uint8Array; out: number[] } {
  const k = kernels();
  const groups = (q.length * bits) / 4;
  const scratch = k.memory.alloc(4 * q.length + 16);
  const table = k.memory.alloc(16 * groups);
  try {
    k.memory.f32().set(q, scratch >> 2);
    const outPtr = scratch + 4 * q.length;
    k.fastScanTableFunction(bits)(scratch, groups, table, outPtr);
    const out = Array.from(k.memory.f64().subarray(outPtr >> 3, (outPtr >> 3) + 2));
    return { table: k.memory.u8().slice(table, table + 16 * groups), out };
  } finally {
    k.memory.free(scratch, 4 * q.length + 16);
    k.memory.free(table, 16 * groups);
  }
}

/** Every live record's code in the index is the codec's code of its stored form (what put() wrote), byte for byte, with its scale. */
async function assertCanonicalCodes(store: MemStore, ids: Iterable<string>, where: string): Promise<void> {
  const { index, space } = internals(store);
  const codec = index.codec;
  const want = new Uint8Array(codec.codeBytes(index.dim));
  for (const id of ids) {
    const record = await store.get(id);
    assert.ok(record !== undefined, `${where}: ${id} missing`);
    const scale = codec.encode(space.storedForm(record.vector), want);
    const got = index.code(id);
    assert.ok(got !== undefined, `${where}: ${id} has no code`);
    assert.ok(Object.is(got.scale, scale), `${where}: ${id} scale ${got.scale} vs ${scale}`);
    assert.deepEqual(got.code, want, `${where}: ${id} code`);
  }
}

test('defect: lutErrorBound is never below the first table\'s maxError, for subnormal queries (the bias rounds to a float32 subnormal) and for queries whose bias overflows float32', () => {
  // Before the fix it bounded the bias's float32 rounding by 2^-23 of m · Σ|q| only: 0 for a bias in
  // the subnormal range (which loses up to 2^-150 absolute) and finite for one that overflows
  // (maxError is then Infinity), so the cache's near-query margin (CACHE.md, "Fast-scan pages") was short.
  const shapes = (dim: number, s: number): Float32Array => Float32Array.from({ length: dim }, (_, i) => (s * (((i * 7919) % 13) - 6)) / 6);
  for (const bits of BITS) {
    for (const scale of [1e-40, 1e-42, 1e-45, 1.5e-45, 1e37, 3e38]) {
      for (const dim of [32, 64, 256]) {
        const q = shapes(dim, scale);
        const { maxError } = buildLut(bits, q);
        const bound = lutErrorBound(bits, q);
        assert.ok(bound >= maxError, `rq${bits} ${dim}-d × ${scale}: lutErrorBound ${bound} < maxError ${maxError}`);
      }
    }
    // One subnormal coordinate, the rest zero.
    const one = new Float32Array(32);
    one[5] = 1e-45;
    assert.ok(lutErrorBound(bits, one) >= buildLut(bits, one).maxError, `rq${bits} one-hot 1e-45`);
  }
});

test('held: the table kernel is writeTable bit for bit (the table and the two numbers) on subnormal, ±0, float32-max, all-equal and one-hot queries', () => {
  const special = [0, -0, 1e-45, -1e-45, 1.1754942e-38, -2.5e-44, 3.4028234e38, -3.4028234e38, 1e38, 1, -1, 0.5];
  const value = fc.oneof(fc.float({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom(...special), fc.float({ min: Math.fround(-1e-37), max: Math.fround(1e-37), noNaN: true }));
  for (const bits of BITS) {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.array(value, { minLength: 192, maxLength: 192 }), fc.constantFrom('as drawn', 'all equal', 'one-hot'), (blocks, values, shape) => {
        const dim = 32 * blocks;
        const q = Float32Array.from(values.slice(0, dim));
        if (shape === 'all equal') q.fill(q[0]!);
        if (shape === 'one-hot') {
          const v = q[1]!;
          q.fill(0);
          q[dim - 1] = v;
        }
        const groups = (dim * bits) / 4;
        const table = new Uint8Array(16 * groups);
        const want = writeTable(bits, q, table);
        const got = kernelTable(bits, q);
        assert.deepEqual(got.table, table);
        // tableParams turns the kernel's two numbers into what writeTable returned.
        assert.ok(Object.is(got.out[0], want.delta), `delta ${got.out[0]} vs ${want.delta}`);
        assert.ok(Object.is(Math.fround(got.out[1]!), want.bias), `bias ${got.out[1]} vs ${want.bias}`);
      }),
      { numRuns: 150 },
    );
  }
});

test('held: deletes, upserts and shrinking move codes between lanes, blocks of 1024 and pages, and every live code stays the codec\'s code of its vector, after reopening, regrowing and compacting too (rq1, rq2, rq4; exact index and pages)', async () => {
  const dim = 40;
  const metrics: readonly Metric[] = ['cosine', 'dot', 'l2'];
  let round = 0;
  for (const codec of ['rq1', 'rq2', 'rq4'] as const) {
    for (const pages of [false, { from: 1500, maxPage: 40 }] as const) {
      const metric = metrics[round++ % 3]!;
      const next = rng(100 + round);
      const vectors = clustered(3200, dim, round, 10);
      const dir = tempDir();
      const options: OpenOptions = { dim, metric, codec, trainSize: 100, pages, durability: 'none', cache: false };
      let store = await MemStore.open(dir, options);
      const live = new Set<string>();
      let id = 0;
      const where = `${codec} ${metric} ${pages === false ? 'exact' : 'pages'}`;
      try {
        // Two blocks of 1024 and part of a third; then holes filled from the last block.
        const first = vectors.slice(0, 2100).map((vector) => ({ id: `v${id++}`, vector }));
        await store.add(first);
        for (const r of first) live.add(r.id);
        for (let step = 0; step < 3; step++) {
          const dead = new Set<string>();
          while (dead.size < 300) dead.add(`v${Math.floor(next() * id)}`);
          await store.delete([...dead]);
          for (const d of dead) live.delete(d);
          const ups = new Map<string, Float32Array>();
          for (let i = 0; i < 200; i++) ups.set(`v${Math.floor(next() * id)}`, vectors[2100 + Math.floor(next() * 1100)]!);
          await store.add([...ups].map(([upId, vector]) => ({ id: upId, vector })));
          for (const upId of ups.keys()) live.add(upId);
          await assertCanonicalCodes(store, live, `${where} step ${step}`);
        }
        // Down to 33 records: blocks freed, pages shrunk; then reopened, regrown, compacted.
        const keep = [...live].slice(0, 33);
        await store.delete([...live].filter((x) => !keep.includes(x)));
        live.clear();
        for (const k of keep) live.add(k);
        await assertCanonicalCodes(store, live, `${where} shrunk`);
        assert.equal(store.stats().count, 33);
        await store.close();
        store = await MemStore.open(dir, options);
        await assertCanonicalCodes(store, live, `${where} reopened`);
        const regrown = vectors.slice(0, 1100).map((vector, i) => ({ id: `w${i}`, vector }));
        await store.add(regrown);
        for (const r of regrown) live.add(r.id);
        await store.compact();
        await assertCanonicalCodes(store, live, `${where} regrown and compacted`);
        const q = Float32Array.from({ length: dim }, () => gaussian(next));
        const items = await Promise.all([...live].map(async (x) => ({ id: x, vector: (await store.get(x))!.vector })));
        assert.deepEqual(
          (await store.search(q, { k: 10, exact: true })).map((h) => h.id),
          bruteForce(metric, q, items, 10),
          where,
        );
      } finally {
        await store.close();
      }
    }
  }
});

test('held: rq stores large enough that a pool holds a fraction of them, exact index and pages: exact, near (cosine 0.99999 to 0.998) and rescaled repeats with deletes and upserts between answer as without the cache, and near queries are served', async () => {
  const dim = 64;
  const n = 3000;
  const configs = [
    ['rq1', 'dot', false],
    ['rq2', 'cosine', true],
    ['rq4', 'dot', true],
    ['rq2', 'dot', false],
  ] as const;
  for (const [codec, metric, paged] of configs) {
    const next = rng(dim + codec.length * 13 + metric.length);
    const vectors = clustered(n + 500, dim, dim * 3 + 1, 20);
    const pair = await openPair({ dim, metric, codec, trainSize: 200, pages: paged ? { from: 1000, maxPage: 100 } : false });
    try {
      let id = 0;
      await pair.add(vectors.slice(0, n).map((vector) => ({ id: `v${id++}`, vector })));
      const queries = Array.from({ length: 3 }, () => vectors[Math.floor(next() * n)]!.map((x) => x + 0.2 * gaussian(next)));
      for (let round = 0; round < 2; round++) {
        for (const [qi, q] of queries.entries()) {
          for (const options of [{ k: 5 }, { k: 5, exact: true }, { k: 3, nprobe: 3 }]) {
            const where = `${codec} ${metric} ${paged ? 'pages' : 'exact'} round ${round} query ${qi} ${JSON.stringify(options)}`;
            await pair.check(q, options, where);
            for (const cos of [0.99999, 0.9999, 0.999, 0.998]) await pair.check(perturb(q, cos, next), options, `${where} near ${cos}`);
            await pair.check(
              q.map((x) => x * 1.0001),
              options,
              `${where} rescaled`,
            );
          }
        }
        const dead = new Set<string>();
        for (let i = 0; i < 30; i++) dead.add(`v${Math.floor(next() * id)}`);
        await pair.del([...dead]);
        const ups = new Map<string, Float32Array>();
        for (let i = 0; i < 40; i++) ups.set(`v${Math.floor(next() * id)}`, vectors[n + Math.floor(next() * 500)]!);
        await pair.add([...ups].map(([upId, vector]) => ({ id: upId, vector })));
      }
      assert.ok(pair.cached.stats().cache.nearHits > 0, `${codec} ${metric}: no near query served`);
    } finally {
      await pair.close();
    }
  }
});

test('held: rq codes at dimensions 1, 2, 31, 33 and 129 (rotated to 128 and 256), every metric, deletes and upserts, every vector a candidate: the exact top k, the same ids and scores after reopening and after compacting', async () => {
  for (const dim of [1, 2, 31, 33, 129]) {
    for (const codec of ['rq1', 'rq2', 'rq4'] as const) {
      for (const metric of ['cosine', 'dot', 'l2'] as const) {
        const next = rng(dim * 7 + codec.length + metric.length);
        const vectors = clustered(240, dim, dim + 3, 5);
        const live = new Map<string, Float32Array>();
        const dir = tempDir();
        const options: OpenOptions = { dim, metric, codec, trainSize: 50, oversample: 1000, pages: { from: 120, maxPage: 24 }, durability: 'none', cache: false };
        let store = await MemStore.open(dir, options);
        try {
          const first = vectors.slice(0, 160).map((vector, i) => ({ id: `v${i}`, vector }));
          await store.add(first);
          for (const r of first) live.set(r.id, r.vector);
          const dead = first.filter((_, i) => i % 3 === 0).map((r) => r.id);
          await store.delete(dead);
          for (const d of dead) live.delete(d);
          const ups = vectors.slice(160).map((vector, i) => ({ id: `v${(i * 5) % 160}`, vector }));
          await store.add(ups);
          for (const r of ups) live.set(r.id, r.vector);
          const items = [...live].map(([x, vector]) => ({ id: x, vector }));
          const queries = Array.from({ length: 3 }, () => Float32Array.from({ length: dim }, () => gaussian(next)));
          const answers = async (): Promise<string[]> => {
            const out: string[] = [];
            for (const q of queries) out.push((await store.search(q, { k: 10, exact: true })).map((h) => `${h.id} ${h.score}`).join(','));
            return out;
          };
          const where = `${codec} ${metric} dim ${dim}`;
          for (const q of queries) {
            // Ties (every cosine vector at 1-d is ±1) may go either way: the exact scores of the answer are the best ten.
            const got = (await store.search(q, { k: 10, exact: true })).map((h) => exactScore(metric, q, live.get(h.id)!));
            const want = bruteForce(metric, q, items, 10).map((x) => exactScore(metric, q, live.get(x)!));
            assert.equal(got.length, want.length, where);
            for (const [i, s] of got.entries()) assert.ok(Math.abs(s - want[i]!) <= 1e-9 * (1 + Math.abs(s)), `${where}: rank ${i} ${s} vs ${want[i]}`);
          }
          const before = await answers();
          await store.close();
          store = await MemStore.open(dir, options);
          assert.deepEqual(await answers(), before, `${where} reopened`);
          await store.compact();
          assert.deepEqual(await answers(), before, `${where} compacted`);
        } finally {
          await store.close();
        }
      }
    }
  }
});

test('held: kill -9 of a child adding to a paged rq store (crossing trainSize and pages.from, splits, checkpoints, compactions): every acknowledged record is there, every code is the codec\'s code of its vector, exact searches are exact', async () => {
  const child = fileURLToPath(new URL('./support/hostile-fs-child.js', import.meta.url));
  const next = rng(20261203);
  for (const codec of ['rq1', 'rq2', 'rq4'] as const satisfies readonly RqCodecName[]) {
    const dir = tempDir('memstore-hostile-fs-');
    for (let cycle = 0; cycle < 2; cycle++) {
      const seed = cycle + 1;
      let acked = -1;
      await runUntilKilled(child, [dir, String(seed), codec], (line, kill) => {
        if (line === 'ready') kill(300 + Math.floor(next() * 400));
        else if (line.startsWith('ack ')) acked = Number(line.slice(4));
      });
      const store = await MemStore.open(dir, { cache: false });
      try {
        const ids = new Set(store.ids());
        for (let i = 0; i <= acked; i++) {
          // Batch i + 1 deletes part of batch i: acknowledged, or in flight when the kill came.
          const gone = new Set(hostileFsDeletes(seed, i + 1));
          for (const r of hostileFsBatch(seed, i)) if (!gone.has(r.id)) assert.ok(ids.has(r.id), `${codec} cycle ${cycle}: acknowledged ${r.id} lost`);
        }
        if (internals(store).space.trained) await assertCanonicalCodes(store, ids, `${codec} cycle ${cycle}`);
        const items = await Promise.all([...ids].map(async (x) => ({ id: x, vector: (await store.get(x))!.vector })));
        const q = Float32Array.from({ length: HOSTILE_FS_CHILD.dim }, () => next() * 2 - 1);
        assert.deepEqual(
          (await store.search(q, { k: 10, exact: true })).map((h) => h.id),
          bruteForce('dot', q, items, 10),
          `${codec} cycle ${cycle}`,
        );
      } finally {
        await store.close();
      }
    }
  }
});
