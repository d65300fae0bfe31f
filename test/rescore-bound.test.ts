import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { getCodec } from '../src/codec/index.js';
import type { CodecName } from '../src/codec/codec.js';
import { FlatIndex } from '../src/index/flat-index.js';
import { PageIndex } from '../src/index/page-index.js';
import type { VectorIndex } from '../src/index/vector-index.js';
import { MemStore } from '../src/memstore.js';
import type { Metric } from '../src/options.js';
import type { ScanQuery } from '../src/scan/code-blocks.js';
import { TopK } from '../src/scan/topk.js';
import { largestCodeError, rescoreBound } from '../src/search/rescore-bound.js';
import { normalized } from '../src/vector.js';
import { bruteForce, clustered, exactScore, tempDir } from './helpers.js';

/**
 * The error bounds that let rescoring leave candidates unread (src/search/RESCORING.md): for every
 * stored vector, the bound from its kernel score is at least its exact score, whatever the data.
 */

interface Case {
  readonly metric: Metric;
  readonly codec: CodecName;
  readonly vectors: Float32Array[];
  readonly query: Float32Array;
}

// Besides any float in [-1, 1]: zeros of both signs, the edges of binades and the midpoints between
// neighbouring fp8 and f16 values (ties), and subnormals.
const component = fc.oneof(
  fc.float({ min: -1, max: 1, noNaN: true }),
  fc.constantFrom(0, -0, 1, -1, 1e-3, -1e-3, 0.5, -0.25, 2 ** -7, 15 / 16, 0.53125, -0.96875, 1 + 2 ** -11, 2 ** -14, 2 ** -25),
  fc.float({ min: Math.fround(-1e-37), max: Math.fround(1e-37), noNaN: true }),
);

const caseArb: fc.Arbitrary<Case> = fc
  .record({
    metric: fc.constantFrom<Metric>('cosine', 'dot', 'l2'),
    codec: fc.constantFrom<CodecName>('int8', 'f32', 'f16', 'fp8-e4m3', 'fp8-e5m2'),
    dim: fc.integer({ min: 1, max: 80 }),
    n: fc.integer({ min: 1, max: 30 }),
    scale: fc.constantFrom(1e-20, 1e-9, 1e-3, 0.1, 1, 30, 1e3, 1e5, 1e12),
    // Mostly the vectors' scale; sometimes a query of subnormals, whose products with a code underflow.
    queryScale: fc.constantFrom<number | undefined>(undefined, undefined, undefined, 1e-44, 1e-40),
    seed: fc.integer(),
  })
  .chain(({ metric, codec, dim, n, scale, queryScale }) =>
    fc.record({
      metric: fc.constant(metric),
      codec: fc.constant(codec),
      vectors: fc.array(fc.array(component, { minLength: dim, maxLength: dim }), { minLength: n, maxLength: n }).map((rows) => rows.map((r) => Float32Array.from(r, (x) => x * scale))),
      query: fc.array(component, { minLength: dim, maxLength: dim }).map((r) => Float32Array.from(r, (x) => x * (queryScale ?? scale))),
    }),
  );

type IndexKind = 'flat' | 'pages';

function check({ metric, codec, vectors, query }: Case, kind: IndexKind = 'flat'): void {
  const dim = query.length;
  // The page index keeps codes and scales in pages of its own (scoreSlots and codeErrorAt read them there): pages of 16, so 30 vectors make two or more.
  const index: VectorIndex & { free(): void } = kind === 'flat' ? new FlatIndex(getCodec(codec), dim, true) : new PageIndex(getCodec(codec), dim, metric, { maxPage: 16 });
  try {
    vectors.forEach((v, i) => index.put(`v${i}`, metric === 'cosine' ? normalized(v) : v));
    const scan: ScanQuery = { vector: metric === 'cosine' ? normalized(query) : query, metric, int8Query: true };
    const kernelQuery = index.kernelQuery(scan);
    let squared = 0;
    for (let i = 0; i < dim; i++) squared += (scan.vector[i]! - kernelQuery[i]!) ** 2;
    assert.equal(index.kernelQueryError(scan), Math.sqrt(squared), 'the query error is the distance to the kernel query');
    const bound = rescoreBound(index, scan, undefined, 0);
    assert.ok(bound !== undefined, `${codec} has an error bound`);
    const top = new TopK(vectors.length);
    index.search(scan, top, { exact: true });
    const count = top.sortBestFirst();
    assert.equal(count, vectors.length);
    const candidates = Array.from({ length: count }, (_, i) => ({ slot: top.slotAt(i), kernel: top.scoreAt(i) }));
    const uppers = bound.uppers(candidates, -Infinity);
    assert.equal(uppers.length, count);
    candidates.forEach(({ slot }, i) => {
      const exact = exactScore(metric, query, vectors[Number(index.idAt(slot).slice(1))]!);
      assert.ok(uppers[i]! >= exact, `${metric} ${codec}: bound ${uppers[i]} below the exact score ${exact} of ${index.idAt(slot)}`);
    });
  } finally {
    index.free();
  }
}

test('rescore bound: no stored vector scores above its bound (int8, f32, f16, fp8-e4m3, fp8-e5m2, every metric, scales 1e-20 to 1e12, subnormal queries)', () => {
  fc.assert(
    fc.property(caseArb, (c) => check(c)),
    { numRuns: 1000 },
  );
});

test('rescore bound: the same over a page index, whose pages keep the codes and scales the bound reads', () => {
  fc.assert(
    fc.property(caseArb, (c) => check(c, 'pages')),
    { numRuns: 300 },
  );
});

test('rescore bound: an fp8 dot score whose products underflow (a subnormal query against a code of scale 1e9) stays under its bound', () => {
  // The kernel's products of 2⁻¹⁴⁹ with the code's values lose up to 2⁻¹⁵⁰ each, then are multiplied by the scale.
  for (const codec of ['fp8-e4m3', 'fp8-e5m2'] as const) {
    for (const vector of [Float32Array.of(0, 0, -1e9, 531249987584), Float32Array.of(0, 0, 3e9, -4.4e11)]) {
      check({ metric: 'dot', codec, vectors: [vector, new Float32Array(4)], query: Float32Array.of(0, 0, 2 ** -149, 0) });
    }
  }
});

test('rescore bound: an int8 query rounded down in every component, against a vector spread evenly, stays under its bound (the int8 query the scan used does not enter it)', () => {
  // Each component after the first sits 0.49 of a step above a multiple of the query's int8 step, so
  // its code rounds down: the int8-query kernel scores the spread vector below its exact score, by
  // more than the code's own error allows.
  const dim = 64;
  const query = Float32Array.from({ length: dim }, (_, i) => (i === 0 ? 127 : 10.49));
  for (const metric of ['cosine', 'dot'] as const) {
    check({ metric, codec: 'int8', vectors: [new Float32Array(dim).fill(1), new Float32Array(dim).fill(0.5)], query });
    check({ metric, codec: 'int8', vectors: [new Float32Array(dim).fill(1)], query }, 'pages');
  }
});

test('rescore bound: finite for f16 and fp8 codes, none for an f16 code holding ±65504 (whatever was clamped there)', () => {
  for (const codec of ['f16', 'fp8-e4m3', 'fp8-e5m2'] as const) {
    const index = new FlatIndex(getCodec(codec), 4, true);
    index.put('a', Float32Array.of(1, 2, 3, 4));
    index.put('b', Float32Array.of(1, 2, 3, 1e6));
    const scan: ScanQuery = { vector: Float32Array.of(1, 0, 0, 0), metric: 'dot', int8Query: true };
    const bound = rescoreBound(index, scan, undefined, 0);
    assert.ok(bound !== undefined, codec);
    const [a, b] = bound.uppers(
      [
        { slot: index.slotOf('a')!, kernel: 1 },
        { slot: index.slotOf('b')!, kernel: 1 },
      ],
      -Infinity,
    );
    assert.ok(Number.isFinite(a), codec);
    assert.equal(Number.isFinite(b), codec !== 'f16', codec);
    index.free();
  }
});

/** ‖x − decode(encode(x))‖ in float64, and the decoded vector's norm as LargestNorm computes it. */
function codeErrorOf(codec: CodecName, x: Float32Array): { error: number; decodedNorm: number } {
  const c = getCodec(codec);
  const code = new Uint8Array(c.codeBytes(x.length));
  const scale = c.encode(x, code);
  const decoded = new Float32Array(x.length);
  c.decode(code, scale, decoded);
  let error = 0;
  let sum = 0;
  for (let i = 0; i < x.length; i++) {
    error += (x[i]! - decoded[i]!) ** 2;
    sum += decoded[i]! * decoded[i]!;
  }
  return { error: Math.sqrt(error), decodedNorm: Math.sqrt(sum) };
}

test('largestCodeError: no vector of an index is farther from its code than the bound from the largest decoded norm (int8, f16, fp8-e4m3, fp8-e5m2, f32; magnitudes from subnormal to 1e4, ties, zeros)', () => {
  const component = fc.oneof(
    fc.float({ min: -1, max: 1, noNaN: true }),
    fc.constantFrom(0, -0, 1, -1, 0.5, 0.75, 0.5625, 0.53125, 2 ** -14, 2 ** -24, 1.5 * 2 ** -24, 2 ** -9, 1.5 * 2 ** -9, 2 ** -16),
  );
  fc.assert(
    fc.property(
      fc.constantFrom<CodecName>('int8', 'f16', 'fp8-e4m3', 'fp8-e5m2', 'f32'),
      fc.integer({ min: 1, max: 40 }),
      fc.array(fc.tuple(fc.constantFrom(1e-42, 1e-38, 1e-20, 1e-3, 1, 300, 1e4), fc.nat()), { minLength: 1, maxLength: 6 }),
      fc.array(component, { minLength: 40, maxLength: 40 }),
      (codec, dim, vectors, values) => {
        const rows = vectors.map(([magnitude, seed]) => Float32Array.from({ length: dim }, (_, i) => Math.fround(magnitude * values[(i + seed) % values.length]!)));
        const measured = rows.map((x) => codeErrorOf(codec, x));
        const maxNorm = Math.max(...measured.map((m) => m.decodedNorm));
        const bound = largestCodeError(codec, maxNorm, dim);
        for (const { error } of measured) assert.ok(error <= bound, `${codec} ${dim}-d: error ${error} above the bound ${bound} (largest norm ${maxNorm})`);
        if (codec === 'f32') assert.equal(bound, 0);
        else assert.ok(Number.isFinite(bound), `${codec}: a finite bound below f16's largest value`);
      },
    ),
    { numRuns: 600 },
  );
});

test('largestCodeError: unit vectors of 512-d get bounds of the size their format rounds to (f16 2⁻¹¹, fp8 2⁻⁴ and 2⁻³ of the norm, int8 ½·√dim/127 of the largest component\'s scale), and none for f16 once an index holds ±65504 or for a codec without a grid', () => {
  const dim = 512;
  const within = (codec: CodecName, low: number, high: number) => {
    const bound = largestCodeError(codec, 1, dim);
    assert.ok(bound >= low && bound <= high, `${codec}: ${bound} not in [${low}, ${high}]`);
  };
  within('f16', 2 ** -11, 2 ** -11 * 1.002);
  within('fp8-e4m3', 2 ** -4, 2 ** -4 * 1.01);
  within('fp8-e5m2', 2 ** -3, 2 ** -3 * 1.01);
  within('int8', (0.5 * Math.sqrt(dim)) / 127, ((0.5 * Math.sqrt(dim)) / 127) * 1.001);
  assert.equal(largestCodeError('f16', 65504, dim), Infinity);
  assert.ok(largestCodeError('f16', 65503, dim) < Infinity);
  // An index of one vector with a component clamped at ±65504: its own norm says so.
  const clamped = Float32Array.from({ length: 8 }, (_, i) => (i === 0 ? 1e6 : 1));
  const { error, decodedNorm } = codeErrorOf('f16', clamped);
  assert.ok(error > 9e5);
  assert.equal(largestCodeError('f16', decodedNorm, 8), Infinity);
  for (const codec of ['rq1', 'rq2', 'rq4'] as const) assert.equal(largestCodeError(codec, 1, dim), Infinity, codec);
  for (const bad of [Number.NaN, Infinity, -1]) assert.equal(largestCodeError('fp8-e4m3', bad, dim), Infinity, String(bad));
});

test('rescore bound: none for a projected (PCA) store', () => {
  const index = new FlatIndex(getCodec('int8'), 4, true);
  index.put('a', Float32Array.of(1, 2, 3, 4));
  const scan: ScanQuery = { vector: Float32Array.of(1, 0, 0, 0), metric: 'dot', int8Query: true };
  assert.equal(rescoreBound(index, scan, Infinity, 0), undefined, 'nothing bounds the dropped part');
  assert.ok(rescoreBound(index, scan, undefined, 0) !== undefined);
  index.free();
});

test('rescoring leaves candidates unread by their bounds, and answers as reading every one does', async () => {
  // 40 vectors, k = 10, four candidates per result: every vector is a candidate, so the answer
  // must be the exact top 10 by brute force.
  for (const metric of ['cosine', 'dot', 'l2'] as const) {
    const vectors = clustered(40, 64, 11, 4);
    const store = await MemStore.open(tempDir(), { dim: 64, metric, oversample: 4, durability: 'none', cache: false });
    try {
      const items = vectors.map((vector, i) => ({ id: `v${i}`, vector }));
      await store.add(items);
      const queries = clustered(30, 64, 12, 4);
      for (const q of queries) {
        const hits = await store.search(q, { k: 10 });
        assert.deepEqual(hits.map((h) => h.id), bruteForce(metric, q, items, 10), metric);
        for (const h of hits) {
          const exact = exactScore(metric, q, vectors[Number(h.id.slice(1))]!);
          assert.ok(Math.abs(h.score - exact) <= 1e-9 * Math.max(1, Math.abs(exact)), `${metric}: ${h.score} against ${exact}`);
        }
      }
      const r = store.stats().rescoring;
      assert.equal(r.searches, queries.length);
      assert.equal(r.candidates, 40 * queries.length);
      assert.ok(r.skipped > 0, `${metric}: no candidate was left unread (${JSON.stringify(r)})`);
      assert.ok(r.skipped <= 30 * queries.length, 'the k best by kernel score are always read');
    } finally {
      await store.close();
    }
  }
});
