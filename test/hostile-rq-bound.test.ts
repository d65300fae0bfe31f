import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rq1Codec, rq2Codec, rq4Codec } from '../src/codec/rq.js';
import type { RqCodec } from '../src/codec/rq.js';
import { MemStore, type SearchHit } from '../src/index.js';
import type { VectorIndex } from '../src/index/vector-index.js';
import { RQ_MAX_QUERY_BITS } from '../src/kernels/contract.js';
import { kernels } from '../src/kernels/index.js';
import { parseMeta, type JsonValue, type Meta } from '../src/meta.js';
import type { Metric } from '../src/options.js';
import type { ScanQuery } from '../src/scan/code-blocks.js';
import { RqQuery } from '../src/scan/rq-query.js';
import { rotatedDim } from '../src/space/rotation.js';
import { gaussian, rng, storeScore, tempDir } from './helpers.js';

/**
 * The rq query in 1 to 8 bit planes and the rescoring bound that scores candidates again with the
 * 8-bit query (src/search/RESCORING.md, "rq codes"), and the metadata copy every hit hands out, as a
 * hostile user meets them: odd dimensions, sparse, one-hot and 0/1 data, zero and spiked queries,
 * every vector a candidate, cache on and off, reopening; and RqQuery.load against a bit-by-bit
 * packing for every number of planes, loaded again at the same place with another.
 */

const RQ = ['rq1', 'rq2', 'rq4'] as const;
const METRICS: readonly Metric[] = ['cosine', 'dot', 'l2'];

/** The k best exact scores of `vectors` under `q`. */
function bestScores(metric: Metric, q: Float32Array, vectors: readonly Float32Array[], k: number): number[] {
  return vectors
    .map((x) => storeScore(metric, q, x))
    .sort((a, b) => b - a)
    .slice(0, k);
}

/** Vector shapes whose rq bounds fail most often among those tried (up to 1 in 1,000 candidates at 8 bits): sparse, one-hot, 0/1, small integers, heavy-tailed. */
const SHAPES: Record<string, (dim: number, next: () => number) => Float32Array> = {
  gaussian: (dim, next) => Float32Array.from({ length: dim }, () => gaussian(next)),
  oneHot: (dim, next) => {
    const v = new Float32Array(dim);
    v[Math.floor(next() * dim)] = 1;
    return v;
  },
  sparse: (dim, next) => {
    const v = new Float32Array(dim);
    for (let i = 0; i < 3; i++) v[Math.floor(next() * dim)] = gaussian(next);
    return v;
  },
  binary: (dim, next) => Float32Array.from({ length: dim }, () => (next() < 0.5 ? 0 : 1)),
  smallInts: (dim, next) => Float32Array.from({ length: dim }, () => Math.floor(next() * 4)),
  cauchy: (dim, next) => Float32Array.from({ length: dim }, () => Math.tan(Math.PI * (next() - 0.5))),
};

/** The levels the planes at `ptr` hold (bit c of dimension i in plane c, byte i >> 3, bit i & 7). */
function levelsOf(u8: Uint8Array, ptr: number, planeBytes: number, bits: number, dim: number): number[] {
  return Array.from({ length: dim }, (_, i) => {
    let level = 0;
    for (let c = 0; c < bits; c++) if (u8[ptr + c * planeBytes + (i >> 3)]! & (1 << (i & 7))) level |= 1 << c;
    return level;
  });
}

/** `levels` packed a bit at a time, as the planes must hold them: zero past the last dimension. */
function packed(levels: readonly number[], planeBytes: number, bits: number): Uint8Array {
  const out = new Uint8Array(bits * planeBytes);
  levels.forEach((level, i) => {
    for (let c = 0; c < bits; c++) if ((level >> c) & 1) out[c * planeBytes + (i >> 3)]! |= 1 << (i & 7);
  });
  return out;
}

test('RqQuery.load in 1 to 8 planes, odd dimensions to 4096 and hostile values: the planes are a bit-by-bit packing of a nearest level of each dimension, the seen query and its error agree with them, and nothing past the last dimension is set', () => {
  const mem = kernels().memory;
  const next = rng(101);
  const values: Record<string, (dim: number) => Float32Array> = {
    gaussian: (dim) => Float32Array.from({ length: dim }, () => gaussian(next)),
    // Exact halves of the step: (150 − lo) / 98 is 1.5 for levels from 0 to 294 at 2 bits.
    integers: (dim) => Float32Array.from({ length: dim }, (_, i) => (i === 0 ? 3 : i === 1 ? 297 : Math.floor(next() * 300))),
    equal: (dim) => new Float32Array(dim).fill(0.3),
    zero: (dim) => new Float32Array(dim),
    spike: (dim) => {
      const v = new Float32Array(dim);
      v[Math.floor(next() * dim)] = 1e30;
      return v;
    },
    tiny: (dim) => Float32Array.from({ length: dim }, () => (next() - 0.5) * 1e-40),
    huge: (dim) => Float32Array.from({ length: dim }, () => (next() - 0.5) * 1e37),
  };
  // What reaches RqQuery in a store is rotatedDim() of the input (a multiple of 128); the others check the padding.
  for (const dim of [1, 3, 8, 13, 64, rotatedDim(1), 200, rotatedDim(129), 1000, rotatedDim(4096)]) {
    const query = new RqQuery(rq2Codec, dim);
    const room = query.bytes + 32;
    const ptr = mem.alloc(room);
    try {
      for (const [name, make] of Object.entries(values)) {
        const v = make(dim);
        for (let bits = 1; bits <= RQ_MAX_QUERY_BITS; bits++) {
          const where = `dim ${dim}, ${name}, ${bits} bits`;
          // Whatever was there before: the load owns every byte of its planes.
          mem.u8().fill(0xa5, ptr, ptr + room);
          query.load(v, ptr, bits);
          const u8 = mem.u8();
          const levels = levelsOf(u8, ptr, query.planeBytes, bits, dim);
          assert.deepEqual(u8.slice(ptr, ptr + bits * query.planeBytes), packed(levels, query.planeBytes, bits), `${where}: planes`);
          assert.ok(u8.subarray(ptr + bits * query.planeBytes, ptr + room).every((b) => b === 0xa5), `${where}: wrote past its ${bits} planes`);
          const seen = query.seenVector();
          let lo = Infinity;
          let hi = -Infinity;
          for (const x of v) {
            lo = Math.min(lo, x);
            hi = Math.max(hi, x);
          }
          const top = (1 << bits) - 1;
          const delta = Math.fround((hi - lo) / top);
          let errSq = 0;
          for (let i = 0; i < dim; i++) {
            assert.ok(levels[i]! <= top, `${where}: level ${levels[i]} of dimension ${i}`);
            assert.equal(seen[i], Math.fround(lo + Math.fround(delta * levels[i]!)), `${where}: dimension ${i} is not the level its planes hold`);
            // A nearest level: within half a step, give or take the float32 roundings of lo + Δ·level.
            const slack = 2 ** -22 * (Math.abs(lo) + Math.abs(hi));
            assert.ok(Math.abs(v[i]! - seen[i]!) <= delta / 2 + slack, `${where}: dimension ${i}, ${v[i]} taken as ${seen[i]} (step ${delta})`);
            errSq += (v[i]! - seen[i]!) ** 2;
          }
          assert.equal(query.error(v), Math.sqrt(errSq), `${where}: error()`);
        }
      }
    } finally {
      mem.free(ptr, room);
    }
  }
});

test('RqQuery.load again at the same place with another number of planes, or with the same after another vector: planes, seen query and kernel scores are those of a fresh query loaded once, never stale ones', () => {
  const mem = kernels().memory;
  const next = rng(202);
  for (const codec of [rq1Codec, rq2Codec, rq4Codec] as readonly RqCodec[]) {
    const dim = rotatedDim(100);
    const n = 24;
    // Codes of random vectors, as the store writes them, and their scales.
    const stride = codec.strideBytes(dim);
    const codes = new Uint8Array(n * stride);
    const scales = new Float32Array(n);
    for (let j = 0; j < n; j++) scales[j] = codec.encode(Float32Array.from({ length: dim }, () => gaussian(next)), codes.subarray(j * stride, (j + 1) * stride));
    const reused = new RqQuery(codec, dim);
    const codesPtr = mem.alloc(codes.length);
    const scalesPtr = mem.alloc(4 * n);
    const outPtr = mem.alloc(4 * n);
    const ptr = mem.alloc(reused.bytes);
    const freshPtr = mem.alloc(reused.bytes);
    try {
      mem.u8().set(codes, codesPtr);
      mem.f32().set(scales, scalesPtr >> 2);
      const scores = (q: RqQuery, at: number, metric: 'dot' | 'l2') => {
        q.scan(metric, at, codesPtr, scalesPtr, n, stride, outPtr);
        return mem.f32().slice(outPtr >> 2, (outPtr >> 2) + n);
      };
      const a = Float32Array.from({ length: dim }, () => gaussian(next));
      const b = Float32Array.from({ length: dim }, () => gaussian(next) * 3);
      // Same vector, every number of planes and back; then another vector at a count already used.
      const steps: [Float32Array, number][] = [[a, 4], [a, 8], [a, 1], [a, 4], [a, 7], [a, 8], [b, 8], [a, 8], [a, 8], [b, 2], [a, 3], [a, 4]];
      for (const [i, [v, bits]] of steps.entries()) {
        const where = `${codec.name}, step ${i}: ${v === a ? 'a' : 'b'} in ${bits} planes`;
        reused.load(v, ptr, bits);
        const fresh = new RqQuery(codec, dim);
        mem.u8().fill(0, freshPtr, freshPtr + fresh.bytes);
        fresh.load(v, freshPtr, bits);
        const u8 = mem.u8();
        assert.deepEqual(u8.slice(ptr, ptr + bits * reused.planeBytes), u8.slice(freshPtr, freshPtr + bits * fresh.planeBytes), `${where}: planes`);
        assert.deepEqual(reused.seenVector(), fresh.seenVector(), `${where}: seen query`);
        assert.equal(reused.error(v), fresh.error(v), `${where}: error`);
        for (const metric of ['dot', 'l2'] as const) assert.deepEqual(scores(reused, ptr, metric), scores(fresh, freshPtr, metric), `${where}: ${metric} scores`);
      }
    } finally {
      for (const [p, size] of [[codesPtr, codes.length], [scalesPtr, 4 * n], [outPtr, 4 * n], [ptr, reused.bytes], [freshPtr, reused.bytes]] as const) mem.free(p, size);
    }
  }
});

interface Internals {
  readonly index: VectorIndex;
}

test('every vector a candidate (oversample · k ≥ n) over odd dimensions, sparse, one-hot, 0/1, integer and heavy-tailed data, with and without PCA: the bound comes from the scan\'s scores (no candidate is scored again from its code), leaves some unread, and the answer is the exact top k', async () => {
  const n = 60;
  const k = 6;
  const next = rng(303);
  const dims = [1, 3, 7, 9, 127, 129];
  const unread = new Map<string, number>();
  for (const [shapeName, shape] of Object.entries(SHAPES)) {
    for (const codec of RQ) {
      for (const metric of METRICS) {
        const dim = dims[(shapeName.length + codec.length + metric.length) % dims.length]!;
        const pca = dim > 100 && metric === 'dot' ? { dims: 40 } : undefined;
        const where = `${shapeName} ${codec} ${metric} ${dim}-d${pca === undefined ? '' : ' PCA'}`;
        const vectors = Array.from({ length: n }, () => shape(dim, next));
        const store = await MemStore.open(tempDir(), { dim, codec, metric, trainSize: 20, oversample: Math.ceil(n / k), durability: 'none', cache: false, ...(pca === undefined ? {} : { pca }) });
        try {
          await store.add(vectors.map((vector, i) => ({ id: `v${i}`, vector })));
          const index = (store as unknown as Internals).index;
          let again = 0;
          const scoreSlots = index.scoreSlots.bind(index);
          index.scoreSlots = (query: ScanQuery, slots, count, out) => {
            again += count;
            scoreSlots(query, slots, count, out);
          };
          for (let t = 0; t < 8; t++) {
            const q = shape(dim, next);
            const hits = await store.search(q, { k });
            assert.deepEqual(
              hits.map((h) => h.score),
              bestScores(metric, q, vectors, k),
              `${where}, query ${t}`,
            );
            for (const h of hits) assert.equal(h.score, storeScore(metric, q, vectors[Number(h.id.slice(1))]!), `${where}: ${h.id} scores its own vector`);
          }
          const { candidates, skipped } = store.stats().rescoring;
          assert.equal(candidates, 8 * n, `${where}: every vector a candidate`);
          if (pca !== undefined) {
            // No bound covers the part outside the projection: every candidate is read.
            assert.equal(skipped, 0, `${where}: left some unread`);
          } else {
            // Left unread, over all shapes of a codec and metric: one-hot vectors in 1-d are all equal, and tie.
            unread.set(`${codec} ${metric}`, (unread.get(`${codec} ${metric}`) ?? 0) + skipped);
          }
          assert.equal(again, 0, `${where}: scored again from codes`);
        } finally {
          await store.close();
        }
      }
    }
  }
  assert.equal(unread.size, RQ.length * METRICS.length);
  for (const [where, skipped] of unread) assert.ok(skipped > 0, `${where}: read every candidate`);
});

test('a zero query, a query of one huge coordinate, a one-hot query, all-equal and repeated vectors, and k past the store: rq stores answer the exact top k, the same with the cache on and off and after reopening', async () => {
  const dim = 9;
  const next = rng(404);
  const base = Float32Array.from({ length: dim }, () => gaussian(next));
  const vectors = [
    ...Array.from({ length: 30 }, () => Float32Array.from({ length: dim }, () => gaussian(next))),
    // Eight copies of one vector, and eight that differ from it by a last bit.
    ...Array.from({ length: 8 }, () => Float32Array.from(base)),
    ...Array.from({ length: 8 }, (_, i) => {
      const v = Float32Array.from(base);
      const u = new Uint32Array(v.buffer);
      u[i % dim]! ^= 1;
      return v;
    }),
    new Float32Array(dim).fill(0.5),
    new Float32Array(dim).fill(0.5),
  ];
  const items = vectors.map((vector, i) => ({ id: `v${String(i).padStart(2, '0')}`, vector }));
  const spike = new Float32Array(dim);
  spike[4] = 1e11;
  const spiked = Float32Array.from(base);
  spiked[2] = 1e9;
  const oneHot = new Float32Array(dim);
  oneHot[0] = 1;
  const queries = [new Float32Array(dim), spike, spiked, oneHot, Float32Array.from(base), new Float32Array(dim).fill(0.5)];
  for (const codec of RQ) {
    for (const metric of METRICS) {
      const where = `${codec} ${metric}`;
      const dirs = [tempDir(), tempDir()];
      const options = (cache: boolean) => ({ dim, codec, metric, trainSize: 10, oversample: 60, durability: 'none' as const, ...(cache ? {} : { cache: false as const }) });
      const cached = await MemStore.open(dirs[0]!, options(true));
      const uncached = await MemStore.open(dirs[1]!, options(false));
      const answers: string[] = [];
      const answer = (hits: readonly SearchHit[]) => JSON.stringify(hits.map((h) => [h.id, h.score]));
      try {
        for (const s of [cached, uncached]) await s.add(items);
        for (const [t, q] of queries.entries()) {
          for (const k of [1, 10, vectors.length + 5]) {
            const hits = await uncached.search(q, { k });
            assert.deepEqual(
              hits.map((h) => h.score),
              bestScores(metric, q, vectors, k),
              `${where}: query ${t}, k ${k}`,
            );
            // Twice on the cached store: the second may come from its cache.
            for (let r = 0; r < 2; r++) assert.equal(answer(await cached.search(q, { k })), answer(hits), `${where}: query ${t}, k ${k}, cached, search ${r}`);
            answers.push(answer(hits));
          }
        }
      } finally {
        await cached.close();
        await uncached.close();
      }
      const reopened = await MemStore.open(dirs[0]!, options(true));
      try {
        let i = 0;
        for (const q of queries) for (const k of [1, 10, vectors.length + 5]) assert.equal(answer(await reopened.search(q, { k })), answers[i++], `${where}: reopened, k ${k}`);
      } finally {
        await reopened.close();
      }
    }
  }
});

test('metadata with own "__proto__" keys (scalar, null, object, array), "constructor" and other Object.prototype names, numeric keys, nulls, nested arrays and the empty object: hits and get() hand out independent copies with the ordinary prototype, cached or not, after reopening, and set no prototype', async () => {
  const metas: Meta[] = [
    parseMeta('{"__proto__":5,"a":1}')!,
    parseMeta('{"__proto__":null}')!,
    parseMeta('{"__proto__":{"polluted":true},"b":"x"}')!,
    parseMeta('{"__proto__":[1,{"polluted":2}]}')!,
    { constructor: 'c', toString: 1, hasOwnProperty: null, valueOf: true, isPrototypeOf: 'p' },
    { 2: 'b', 1: 'a', x: 'c', '-1': 'd', '01': 'e', 4294967295: 'f' },
    {},
    { a: null, b: null },
    { a: [[1, [2, [3]]], []], b: { c: { d: null } } },
    Object.assign(Object.create(null) as Meta, { z: 1, __proto__x: 2 }),
  ];
  const expected = metas.map((m) => JSON.stringify(m));
  const dir = tempDir();
  const open = () => MemStore.open(dir, { dim: 4, codec: 'rq2', metric: 'cosine', trainSize: 3, durability: 'none' });
  const q = Float32Array.from([1, 1, 2, 3]);
  const check = (meta: JsonValue | undefined, i: number, where: string) => {
    assert.ok(meta !== undefined && typeof meta === 'object' && meta !== null && !Array.isArray(meta), `${where}: metadata ${i}`);
    assert.equal(JSON.stringify(meta), expected[i], `${where}: metadata ${i}`);
    assert.deepEqual(Object.keys(meta), Object.keys(JSON.parse(expected[i]!) as object), `${where}: keys of ${i}`);
    assert.equal(Object.getPrototypeOf(meta), Object.prototype, `${where}: prototype of ${i}`);
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined, `${where}: Object.prototype polluted`);
  };
  // Changes everything a caller can reach in a copy, all the way down.
  const vandalize = (v: JsonValue): void => {
    if (Array.isArray(v)) {
      v.forEach(vandalize);
      v.push('added');
    } else if (typeof v === 'object' && v !== null) {
      for (const key of Object.keys(v)) {
        const x = v[key]!;
        if (typeof x === 'object' && x !== null) vandalize(x);
        else v[key] = 'changed';
      }
      v['added'] = 1;
    }
  };
  let store = await open();
  try {
    await store.add(metas.map((meta, i) => ({ id: `m${i}`, vector: Float32Array.from([1, i, 2, 3]), meta })));
    for (let round = 0; round < 3; round++) {
      if (round === 2) {
        await store.close();
        store = await open();
      }
      for (let i = 0; i < metas.length; i++) {
        const record = await store.get(`m${i}`);
        check(record?.meta as JsonValue | undefined, i, `round ${round}, get`);
        vandalize(record!.meta as JsonValue);
      }
      for (let s = 0; s < 2; s++) {
        const hits = await store.search(q, { k: 20 });
        assert.equal(hits.length, metas.length);
        for (const h of hits) {
          check(h.meta as JsonValue | undefined, Number(h.id.slice(1)), `round ${round}, search ${s}`);
          vandalize(h.meta as JsonValue);
        }
      }
    }
  } finally {
    await store.close();
  }
});
