import assert from 'node:assert/strict';
import { sep } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { MemStore, type OpenOptions, type SearchOptions } from '../src/index.js';
import type { CodecName } from '../src/codec/codec.js';
import { vectorBounds } from '../src/input.js';
import type { Metric } from '../src/options.js';
import { clustered, rejectsWith, rng, storeScore, tempDir } from './helpers.js';
import { FaultFileLayer } from './support/fault-layer.js';
import { heldLog } from './support/held-log.js';

/**
 * Rescoring guided by error bounds (src/search/RESCORING.md) against hostile data and timing: a
 * rescored answer must be, ids, order and scores bit for bit, the one rescoring every candidate
 * gives. The oracle takes the candidates from a search without rescoring (k · oversample of them:
 * the same scan), scores them with the functions the store's exact kernels reproduce bit for bit
 * (src/vector.ts), and keeps the best k, ties by lower id, as the store does.
 */

type Scored = { id: string; score: number };

function bestFirst(scored: Scored[], k: number): Scored[] {
  return scored.sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).slice(0, k);
}

/** The answer of rescoring every one of the scan's candidates. */
async function rescoreAll(store: MemStore, metric: Metric, vectors: ReadonlyMap<string, Float32Array>, q: Float32Array, k: number, oversample: number, options: SearchOptions = {}): Promise<Scored[]> {
  const candidates = await store.search(q, { ...options, k: k * oversample, rescore: false });
  return bestFirst(
    candidates.map((h) => ({ id: h.id, score: storeScore(metric, q, vectors.get(h.id)!) })),
    k,
  );
}

/** The exact top k over every vector (what rescoring every candidate gives when every vector is one). */
function bruteForce(metric: Metric, vectors: ReadonlyMap<string, Float32Array>, q: Float32Array, k: number): Scored[] {
  return bestFirst(
    [...vectors].map(([id, x]) => ({ id, score: storeScore(metric, q, x) })),
    k,
  );
}

function pairs(hits: readonly Scored[]): [string, number][] {
  return hits.map((h) => [h.id, h.score]);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** `x` with the last bit of its float32 mantissa flipped. */
function lastBit(x: number): number {
  f32[0] = x;
  u32[0] = u32[0]! ^ 1;
  return f32[0]!;
}

type Shape =
  | { kind: 'random'; scale: number; seed: number[] }
  | { kind: 'zero' }
  | { kind: 'onehot'; at: number; sign: number; scale: number }
  | { kind: 'copy'; of: number }
  | { kind: 'lastbit'; of: number; at: number }
  | { kind: 'scaled'; of: number; by: number }
  | { kind: 'small'; seed: number[]; scale: number };

/** Magnitudes of the largest component, from the smallest a store of `metric` accepts to the largest. */
function scales(metric: Metric): number[] {
  return metric === 'cosine' ? [1e-38, 1e-30, 1e-12, 1e-3, 1, 1e3, 1e12, 1e30, 3e38] : [1e-12, 1e-9, 1e-3, 1, 1e3, 1e9, 1e12];
}

function shapeArb(metric: Metric, dim: number): fc.Arbitrary<Shape> {
  const scale = fc.constantFrom(...scales(metric));
  // Components spanning every binade a float32 holds, subnormals included, and exact small integers (ties).
  const unit = fc.oneof(fc.double({ min: -1, max: 1, noNaN: true }), fc.constantFrom(0, 1, -1, 1e-30, -1e-30, 1e-7, 2 ** -149));
  return fc.oneof(
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('random' as const), scale, seed: fc.array(unit, { minLength: dim, maxLength: dim }) }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'zero' as const }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('onehot' as const), at: fc.nat({ max: dim - 1 }), sign: fc.constantFrom(1, -1), scale }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('copy' as const), of: fc.nat() }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('lastbit' as const), of: fc.nat(), at: fc.nat({ max: dim - 1 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('scaled' as const), of: fc.nat(), by: fc.constantFrom(2, 0.5, -1, 1 + 2 ** -20) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('small' as const), seed: fc.array(fc.integer({ min: -2, max: 2 }), { minLength: dim, maxLength: dim }), scale }) },
  );
}

/** Vectors of `shapes`; one a store of `metric` and `codec` would refuse (limits.ts) becomes a one-hot. */
function build(metric: Metric, codec: CodecName, dim: number, shapes: readonly Shape[]): Float32Array[] {
  const bounds = vectorBounds({ metric, codec, dim, pca: null });
  const accepted = (v: Float32Array) => {
    if (!v.every(Number.isFinite)) return false;
    if (bounds === undefined) return true;
    const largest = v.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    return largest === 0 || (largest >= bounds.minLargest && largest <= bounds.max);
  };
  const out: Float32Array[] = [];
  const earlier = (of: number) => (out.length === 0 ? new Float32Array(dim) : out[of % out.length]!);
  for (const s of shapes) {
    let v: Float32Array;
    if (s.kind === 'random' || s.kind === 'small') v = Float32Array.from(s.seed, (x) => x * s.scale);
    else if (s.kind === 'zero') v = new Float32Array(dim);
    else if (s.kind === 'onehot') {
      v = new Float32Array(dim);
      v[s.at] = s.sign * s.scale;
    } else if (s.kind === 'copy') v = Float32Array.from(earlier(s.of));
    else if (s.kind === 'lastbit') {
      v = Float32Array.from(earlier(s.of));
      v[s.at] = lastBit(v[s.at]!);
    } else v = Float32Array.from(earlier(s.of), (x) => x * s.by);
    if (!accepted(v)) {
      v = new Float32Array(dim);
      v[0] = 1;
    }
    out.push(v);
  }
  return out;
}

interface Case {
  metric: Metric;
  codec: CodecName;
  dim: number;
  k: number;
  oversample: number;
  tags: number;
  cache: boolean;
  vectors: Float32Array[];
  queries: Float32Array[];
}

const caseArb: fc.Arbitrary<Case> = fc
  .record({
    metric: fc.constantFrom<Metric>('cosine', 'dot', 'l2'),
    codec: fc.constantFrom<CodecName>('int8', 'int8', 'f32', 'f32', 'f16', 'fp8-e4m3', 'fp8-e5m2'),
    dim: fc.constantFrom(1, 2, 3, 4, 5, 7, 15, 16, 17, 31, 33, 64),
    n: fc.integer({ min: 1, max: 48 }),
    k: fc.integer({ min: 1, max: 16 }),
    oversample: fc.constantFrom(1, 2, 4, 4, 6),
    tags: fc.integer({ min: 1, max: 5 }),
    cache: fc.boolean(),
  })
  .chain(({ metric, codec, dim, n, ...rest }) =>
    fc.record({
      metric: fc.constant(metric),
      codec: fc.constant(codec),
      dim: fc.constant(dim),
      k: fc.constant(rest.k),
      oversample: fc.constant(rest.oversample),
      tags: fc.constant(rest.tags),
      cache: fc.constant(rest.cache),
      vectors: fc.array(shapeArb(metric, dim), { minLength: n, maxLength: n }).map((s) => build(metric, codec, dim, s)),
      queries: fc.array(shapeArb(metric, dim), { minLength: 1, maxLength: 3 }).map((s) => build(metric, codec, dim, s)),
    }),
  );

const id = (i: number) => `v${String(i).padStart(3, '0')}`;

/** Writes `rows` (ids by id()) into a new store in `dir` and closes it: opened again, it reads full vectors from its files. */
async function fill(dir: string, options: OpenOptions, rows: readonly Float32Array[]): Promise<void> {
  const store = await MemStore.open(dir, options);
  await store.add(rows.map((vector, i) => ({ id: id(i), vector })));
  await store.close();
}

test('rescoring on hostile data (magnitudes 1e-38 to 3e38, zero, one-hot, duplicate and last-bit twin vectors, dims 1 to 64, every codec, k past the store, filters, oversample 1 to 6, cache on and off): the answer of rescoring every candidate, bit for bit', async () => {
  await fc.assert(
    fc.asyncProperty(caseArb, async (c) => {
      const store = await MemStore.open(tempDir(), { dim: c.dim, metric: c.metric, codec: c.codec, oversample: c.oversample, durability: 'none', cache: c.cache ? { entries: 2, bytes: 20000 } : false });
      try {
        const vectors = new Map(c.vectors.map((v, i) => [id(i), v]));
        await store.add(c.vectors.map((vector, i) => ({ id: id(i), vector, meta: { t: i % c.tags } })));
        for (const [qi, q] of c.queries.entries()) {
          for (const options of [{}, { filter: { t: 0 } }]) {
            const want = await rescoreAll(store, c.metric, vectors, q, c.k, c.oversample, options);
            const got = await store.search(q, { ...options, k: c.k });
            assert.deepEqual(pairs(got), pairs(want), `query ${qi} ${JSON.stringify(options)}`);
          }
        }
      } finally {
        await store.close();
      }
    }),
    { numRuns: 100 },
  );
});

test('rescoring at 2,000 and more dimensions (int8, f32, f16, fp8-e4m3, fp8-e5m2, every metric, twins a last bit apart): the exact top k, bit for bit, with candidates left unread', async () => {
  for (const dim of [2000, 2049]) {
    for (const metric of ['cosine', 'dot', 'l2'] as const) {
      for (const codec of ['int8', 'f32', 'f16', 'fp8-e4m3', 'fp8-e5m2'] as const) {
        const base = clustered(30, dim, dim + metric.length, 3);
        // Twins a last bit apart, and a copy: exact scores a unit of the last place apart, or tied.
        const rows = [...base, ...base.slice(0, 8).map((v, i) => v.map((x, j) => (j === i ? lastBit(x) : x))), Float32Array.from(base[9]!), Float32Array.from(base[10]!)];
        const store = await MemStore.open(tempDir(), { dim, metric, codec, durability: 'none', cache: false });
        try {
          const vectors = new Map(rows.map((v, i) => [id(i), v]));
          await store.add(rows.map((vector, i) => ({ id: id(i), vector })));
          for (const q of [base[0]!, base[1]!.map((x) => x * 1e3), base[2]!.map((x, j) => (j % 2 === 0 ? x : -x))]) {
            // 40 vectors, k = 10: every vector is a candidate, so rescoring every one is the brute force.
            assert.deepEqual(pairs(await store.search(q, { k: 10 })), pairs(bruteForce(metric, vectors, q, 10)), `${dim} ${metric} ${codec}`);
          }
          assert.ok(store.stats().rescoring.skipped > 0, `${dim} ${metric} ${codec}: ${JSON.stringify(store.stats().rescoring)}`);
        } finally {
          await store.close();
        }
      }
    }
  }
});

test('a dot or l2 store with PCA reads every candidate (no bound skips one of them): an l2 store answers as rescoring every candidate does, and a dot store looks past them too (since 2026-12-06), so its k-th best exact score is never below that answer\'s', async () => {
  for (const metric of ['dot', 'l2'] as const) {
    const rows = clustered(120, 32, 5, 4);
    const store = await MemStore.open(tempDir(), { dim: 32, metric, pca: { dims: 8 }, trainSize: 64, durability: 'none', cache: false });
    try {
      const vectors = new Map(rows.map((v, i) => [id(i), v]));
      await store.add(rows.map((vector, i) => ({ id: id(i), vector })));
      assert.equal(store.stats().storedDim, 8, 'trained');
      for (const q of rows.slice(0, 10)) {
        const hits = await store.search(q, { k: 5 });
        const alone = await rescoreAll(store, metric, vectors, q, 5, 4);
        if (metric === 'l2') assert.deepEqual(pairs(hits), pairs(alone), metric);
        else {
          for (const h of hits) assert.equal(h.score, storeScore(metric, q, vectors.get(h.id)!), h.id);
          hits.forEach((h, i) => assert.ok(h.score >= alone[i]!.score, `rank ${i}: ${h.score} below the candidates' ${alone[i]!.score}`));
        }
      }
      const r = store.stats().rescoring;
      assert.equal(r.searches, 10);
      if (metric === 'l2') {
        assert.equal(r.skipped, 0, metric);
        assert.equal(r.beyond, 0, metric);
      } else {
        // Every candidate is read; of the vectors taken in past them, those whose own bound cannot reach are not.
        assert.ok(r.beyond > 0 && r.skipped <= r.beyond, `${metric}: ${JSON.stringify(r)}`);
      }
    } finally {
      await store.close();
    }
  }
});

test('writes racing rescored searches on a file layer without synchronous reads (dot norms from 1e-6 to 1e6, every metric, cache on and off): each answer is the store\'s before the write or after it, bit for bit', async () => {
  const next = rng(77);
  const dim = 16;
  const landed = { before: 0, after: 0 };
  for (const metric of ['dot', 'cosine', 'l2'] as const) {
    for (const cache of [false, undefined] as const) {
      // Norms over twelve orders of magnitude: an upsert moves a vector's code and error bound far.
      const base = clustered(40, dim, 9, 4);
      const rows = base.map((v, i) => v.map((x) => x * 10 ** ((i % 13) - 6)));
      const files = heldLog({ syncReads: false });
      const dir = tempDir();
      // oversample 4: all 40 records are candidates, so the answer is brute force's.
      const options: OpenOptions = { dim, metric, codec: 'int8', oversample: 4, durability: 'none', files, ...(cache === false ? { cache } : {}) };
      // Reopened: the full vectors are in files now, and every read waits.
      await fill(dir, options, rows);
      const store = await MemStore.open(dir, options);
      try {
        const vectors = new Map(rows.map((v, i) => [id(i), v]));
        for (let round = 0; round < 12; round++) {
          const q = rows[Math.floor(next() * 40)]!.map((x) => x * 10 ** Math.floor(next() * 7 - 3));
          const target = id(Math.floor(next() * 40));
          const moved = base[Math.floor(next() * 40)]!.map((x) => x * 10 ** Math.floor(next() * 13 - 6));
          const before = pairs(bruteForce(metric, vectors, q, 10));
          const after = pairs(bruteForce(metric, new Map([...vectors, [target, moved]]), q, 10));
          // The write is logged and held; the search scans and starts its reads; the write lands
          // while they are in flight (at once, a few microtasks on, or once some reads are done).
          const { reached, release } = files.hold();
          const write = store.add([{ id: target, vector: moved }]);
          await reached;
          const search = store.search(q, { k: 10 });
          const wait = round % 3;
          if (wait === 0) release();
          else if (wait === 1) void Promise.resolve().then(() => Promise.resolve()).then(release);
          else setImmediate(release);
          const [raced] = await Promise.all([search, write]);
          vectors.set(target, moved);
          const got = JSON.stringify(pairs(raced));
          assert.ok(got === JSON.stringify(before) || got === JSON.stringify(after), `${metric} cache ${String(cache)} round ${round}: ${got}`);
          if (JSON.stringify(before) !== JSON.stringify(after)) landed[got === JSON.stringify(after) ? 'after' : 'before']++;
          assert.deepEqual(pairs(await store.search(q, { k: 10 })), after, `${metric} round ${round}, after the write`);
        }
        assert.ok(store.stats().rescoring.skipped > 0, JSON.stringify(store.stats().rescoring));
      } finally {
        await store.close();
      }
    }
  }
  assert.ok(landed.after > 0, `some writes landed while the search read (${JSON.stringify(landed)})`);
});

test('a write landing while a rescored search reads its first k vectors: the vectors read after it, from places taken before it, are not kept hot (f16 and int8, every metric)', async () => {
  const dim = 16;
  for (const codec of ['f16', 'int8'] as const) {
    for (const metric of ['cosine', 'dot', 'l2'] as const) {
      const rows = clustered(40, dim, 13, 4);
      const files = heldLog({ syncReads: false });
      const dir = tempDir();
      // oversample 4: every record is a candidate, so the answer is brute force's.
      const options: OpenOptions = { dim, metric, codec, oversample: 4, durability: 'none', files };
      await fill(dir, options, rows);
      const store = await MemStore.open(dir, options);
      try {
        const vectors = new Map(rows.map((v, i) => [id(i), v]));
        const q = rows[0]!;
        // k = 5 of 20 candidates: the 15 past the first 5 by kernel score are read after the first 5.
        // The second search reads each candidate once; the raced one reads it again, which keeps it hot.
        const candidates = await store.search(q, { k: 20, rescore: false });
        await store.search(q, { k: 5 });
        // Move every candidate past the first 5 next to q (they become the best), in one write that
        // lands while the next search reads its first 5.
        const moved = candidates.slice(5).map((h, i) => ({ id: h.id, vector: q.map((x, j) => x + (j === i ? 0.01 : 0)) }));
        const { reached, release } = files.hold();
        const write = store.add(moved);
        await reached;
        const raced = store.search(q.map((x) => x * 1.5), { k: 5 });
        release();
        await Promise.all([write, raced]);
        for (const m of moved) vectors.set(m.id, m.vector);
        // Searches near q: a moved candidate scored from a stale hot vector would be left out.
        for (const [i, probe] of [q.map((x) => x * 2), q.map((x, j) => x + (j % 3) * 0.05), rows[1]!].entries()) {
          const answer = await store.search(probe, { k: 5 });
          assert.deepEqual(pairs(answer), pairs(await rescoreAll(store, metric, vectors, probe, 5, 4)), `${codec} ${metric} probe ${i}`);
        }
      } finally {
        await store.close();
      }
    }
  }
});

test('a record set aside as damaged while a rescored search waits for its reads: the search answers without it (the slots its scan saw moved), never a RangeError', async () => {
  const dim = 16;
  for (const metric of ['dot', 'cosine', 'l2'] as const) {
    for (const cache of [false, undefined] as const) {
      const rows = clustered(40, dim, 3, 4);
      const disk = new FaultFileLayer({ seed: 3 });
      const dir = tempDir();
      // oversample 4: 40 candidates, so that every record left is one (below).
      const options: OpenOptions = { dim, metric, oversample: 4, ...(cache === false ? { cache } : {}) };
      await fill(dir, { ...options, files: disk }, rows);
      // Damage the full-precision vector of one record; the next read of it finds out.
      const damaged = id(5);
      const [segment] = await disk.list(`${dir}/vectors`);
      const path = `${dir}/vectors/${segment!}`;
      const at = Buffer.from(disk.currentBytes(path)).indexOf(Buffer.from(rows[5]!.buffer));
      assert.ok(at > 0);
      disk.flipBit(path, at + 9, 3);
      const store = await MemStore.open(dir, { ...options, files: disk });
      try {
        const q = rows[0]!;
        // The get sets the record aside (out of the index: the last slot moves into its hole) while
        // the search waits for the reads of its first k candidates.
        const [got, search] = await Promise.allSettled([rejectsWith(() => store.get(damaged), 'CORRUPTION'), store.search(q, { k: 10 })]);
        assert.equal(got.status, 'fulfilled');
        assert.equal(search.status, 'fulfilled', search.status === 'rejected' ? String(search.reason) : '');
        assert.equal(store.stats().damaged, 1);
        const rest = new Map(rows.map((v, i) => [id(i), v] as const).filter(([name]) => name !== damaged));
        // 39 records left, 40 candidates: every one is a candidate.
        assert.deepEqual(pairs(search.value), pairs(bruteForce(metric, rest, q, 10)), `${metric} cache ${String(cache)}`);
        assert.deepEqual(pairs(await store.search(q, { k: 10 })), pairs(bruteForce(metric, rest, q, 10)));
      } finally {
        await store.close();
      }
    }
  }
});

test('default oversample: an int8 store rescores k · 2 candidates, an fp8 store k · 4, an int8 store with PCA k · 4 (beside those its bounds take in past them), and an explicit oversample wins', async () => {
  const dim = 16;
  const rows = clustered(200, dim, 4, 11);
  const cases: { options: OpenOptions; perResult: number }[] = [
    { options: { dim, codec: 'int8' }, perResult: 2 },
    { options: { dim, codec: 'fp8-e4m3' }, perResult: 4 },
    { options: { dim, codec: 'int8', pca: { dims: 8 }, trainSize: 100 }, perResult: 4 },
    { options: { dim, codec: 'int8', oversample: 3 }, perResult: 3 },
    { options: { dim, codec: 'int8', pca: { dims: 8 }, trainSize: 100, oversample: 1 }, perResult: 1 },
  ];
  for (const { options, perResult } of cases) {
    const store = await MemStore.open(tempDir(), { ...options, durability: 'none', cache: false });
    try {
      await store.add(rows.map((vector, i) => ({ id: `r${i}`, vector })));
      const before = store.stats().rescoring;
      for (const q of rows.slice(0, 5)) await store.search(q, { k: 7 });
      const after = store.stats().rescoring;
      assert.equal(after.searches - before.searches, 5, JSON.stringify(options));
      assert.equal(after.candidates - after.beyond - (before.candidates - before.beyond), 5 * 7 * perResult, JSON.stringify(options));
    } finally {
      await store.close();
    }
  }
});

test('deletes landing while every try of a rescored search waits for its reads (slots move each time), until its last try holds writes back: each hit scores its own id\'s vector, never the one that moved into its slot', async () => {
  const dim = 16;
  for (const metric of ['cosine', 'dot', 'l2'] as const) {
    const rows = clustered(60, dim, 21, 3);
    const q = rows[3]!;
    // The last 20 near q, the last nearest: each delete moves one of them into the hole it leaves,
    // so a slot read for the id it had before would score near the top.
    const next = rng(5);
    for (let i = 40; i < 60; i++) rows[i] = q.map((x) => x + 0.002 * (60 - i) * (next() - 0.5));
    const vectors = new Map(rows.map((v, i) => [id(i), v]));
    let onRead: (() => Promise<void>) | undefined;
    // Every read of the vector arena waits for the thread pool, and first runs what the test arms.
    const files = heldLog({
      syncReads: false,
      beforeRead: async (path) => {
        const armed = onRead;
        if (armed !== undefined && path.includes(`${sep}vectors${sep}`)) await armed();
      },
    });
    const dir = tempDir();
    // PCA: no error bound, so every candidate past the first k is read, after the first k were awaited.
    const options: OpenOptions = { dim, metric, codec: 'int8', pca: { dims: 8 }, trainSize: 30, oversample: 4, durability: 'none', cache: false, files };
    await fill(dir, options, rows);
    const store = await MemStore.open(dir, options);
    try {
      // Candidates past the first k by kernel score, each deleted in turn while a try reads its first k:
      // a removal moves the last slot's vector into the hole, and the try after it starts over.
      const victims = (await store.search(q, { k: 20, rescore: false })).slice(6, 14).map((h) => h.id);
      let deletes = 0;
      const landing: Promise<number>[] = [];
      // Each delete lands before the read goes on, unless the search holds writes back: then it waits
      // for the search (awaiting it here would wait for ever).
      onRead = async () => {
        if (deletes >= victims.length) return;
        landing.push(store.delete([victims[deletes++]!]));
        await new Promise((resolve) => setImmediate(resolve));
      };
      const hits = await store.search(q, { k: 5 });
      onRead = undefined;
      await Promise.all(landing);
      assert.ok(deletes > 3, `${metric}: ${deletes} deletes issued, enough for the search to hold writes back for its last try`);
      assert.ok(hits.length > 0, metric);
      for (const h of hits) assert.equal(h.score, storeScore(metric, q, vectors.get(h.id)!), `${metric}: ${h.id} scores its own vector`);
    } finally {
      await store.close();
    }
  }
});

test('hostile rescoring: a store below trainSize (rq codes, PCA) answers with exact scores, not its float32 kernel\'s: under cancellation the float32 sum lost the score and the order', async () => {
  const records = [
    { id: 'a', vector: [1, 0.5, 1] },
    { id: 'z', vector: [1, 1, 1] },
  ];
  const q = [1e8, 1, -1e8];
  for (const extra of [{ codec: 'rq2' }, { codec: 'rq4' }, { codec: 'int8', pca: { dims: 2 } }] as Partial<OpenOptions>[]) {
    const store = await MemStore.open(tempDir(), { dim: 3, metric: 'dot', durability: 'none', ...extra });
    try {
      await store.add(records);
      assert.equal(store.stats().trained, false, JSON.stringify(extra));
      const hits = await store.search(q, { k: 2, exact: true });
      assert.deepEqual(hits.map((h) => h.id), ['z', 'a'], JSON.stringify(extra));
      assert.deepEqual(hits.map((h) => h.score), [1, 0.5], JSON.stringify(extra));
      // Codes only, as asked: the kernel's float32 scores.
      const codes = await store.search(q, { k: 2, rescore: false });
      assert.equal(codes.length, 2);
    } finally {
      await store.close();
    }
  }
});
