import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rq2Codec } from '../src/codec/rq.js';
import type { RqCodec } from '../src/codec/rq.js';
import type { VectorIndex } from '../src/index/vector-index.js';
import { RQ_MAX_QUERY_BITS, kernels } from '../src/kernels/index.js';
import { MemStore } from '../src/memstore.js';
import type { Metric } from '../src/options.js';
import type { ScanQuery } from '../src/scan/code-blocks.js';
import { RQ_QUERY_BITS, RqQuery } from '../src/scan/rq-query.js';
import { TopK } from '../src/scan/topk.js';
import { RQ_TABLE_BOUND_SIGMAS, rescoreBound } from '../src/search/rescore-bound.js';
import type { VectorSpace } from '../src/space/vector-space.js';
import { bruteForce, clustered, exactScore, gaussian, rng, tempDir } from './helpers.js';

/**
 * The rq rescoring bound (src/search/RESCORING.md, "rq codes"), taken from the scan's own scores, and
 * the query in bit planes (RqQuery) that the popcount kernels take.
 */

test('rq query: the same vector loaded in 8 planes after 4 is quantized again (the planes are keyed by their count), its rounding far smaller, and 4 again gives the first planes back', () => {
  const dim = 200;
  const query = new RqQuery(rq2Codec, dim);
  const mem = kernels().memory;
  const ptr = mem.alloc(query.bytes);
  try {
    const next = rng(7);
    const v = Float32Array.from({ length: dim }, () => gaussian(next));
    // The kernels read the planes a load wrote, RQ_QUERY_BITS of them here.
    const planes = () => mem.u8().slice(ptr, ptr + RQ_QUERY_BITS * query.planeBytes);
    query.load(v, ptr, RQ_QUERY_BITS);
    const coarse = query.error(v);
    const coarseSeen = query.seenVector();
    const coarsePlanes = planes();
    query.load(v, ptr, RQ_MAX_QUERY_BITS);
    const fine = query.error(v);
    assert.ok(coarse > 0);
    // 255 levels against 15 over the same range: the rounding shrinks about 17 times.
    assert.ok(fine < coarse / 8, `8 planes round to ${fine}, 4 to ${coarse}`);
    assert.notDeepEqual(query.seenVector(), coarseSeen);
    query.load(v, ptr, RQ_QUERY_BITS);
    assert.equal(query.error(v), coarse);
    assert.deepEqual(query.seenVector(), coarseSeen);
    assert.deepEqual(planes(), coarsePlanes);
    for (const bits of [0, 9, 2.5, Number.NaN]) assert.throws(() => query.load(v, ptr, bits), RangeError, String(bits));
  } finally {
    mem.free(ptr, query.bytes);
  }
});

interface Internals {
  readonly index: VectorIndex;
  readonly space: VectorSpace;
}

test('rq bound: from the scan\'s scores alone (the code\'s term at RQ_TABLE_BOUND_SIGMAS and its table\'s rounding times F), whatever the floor, nothing scored again, and above the exact score of nearly every vector (dot, cosine, l2)', async () => {
  const dim = 64;
  const vectors = clustered(400, dim, 21, 8);
  const queries = clustered(12, dim, 22, 8);
  for (const codec of ['rq1', 'rq2', 'rq4'] as const) {
    for (const metric of ['dot', 'cosine', 'l2'] as const satisfies readonly Metric[]) {
      const store = await MemStore.open(tempDir(), { dim, metric, codec, trainSize: 200, durability: 'none', cache: false });
      try {
        await store.add(vectors.map((vector, i) => ({ id: `v${i}`, vector })));
        const { index, space } = store as unknown as Internals;
        const rq = index.codec as RqCodec;
        // The rotation's dimension: the stored one padded (CODECS.md), what the codes and the bound count in.
        const rotated = index.dim;
        const where = `${codec} ${metric}`;
        let below = 0;
        let pairs = 0;
        const scoreSlots = index.scoreSlots.bind(index);
        let scoredAgain = 0;
        index.scoreSlots = (query, slots, n, out) => {
          scoredAgain += n;
          scoreSlots(query, slots, n, out);
        };
        try {
          for (const q of queries) {
            const scan: ScanQuery = space.scanQueryOf(q);
            const offset = scan.offset ?? 0;
            const bound = rescoreBound(index, scan, undefined, offset);
            assert.ok(bound !== undefined, `${where}: a bound`);
            const top = new TopK(vectors.length);
            index.search(scan, top, { exact: true });
            const count = top.sortBestFirst();
            const candidates = Array.from({ length: count }, (_, i) => ({ slot: top.slotAt(i), kernel: top.scoreAt(i) }));
            // Over a floor no estimate reaches, every candidate gets its bound.
            const uppers = bound.uppers(candidates, Infinity);
            const exactOf = (slot: number) => exactScore(metric, q, vectors[Number(index.idAt(slot).slice(1))]!);
            // Over the 10th best exact score, one whose estimate reaches it gets Infinity, the others the same bounds.
            const floor = candidates.map(({ slot }) => exactOf(slot)).sort((a, b) => b - a)[9]!;
            const floored = bound.uppers(candidates, floor);
            let reached = 0;
            candidates.forEach(({ kernel }, i) => {
              const estimate = metric === 'l2' ? -Math.sqrt(Math.max(0, -kernel)) : kernel + offset;
              if (estimate >= floor) reached++;
              assert.equal(floored[i], estimate >= floor ? Infinity : uppers[i], `${where}: candidate ${i} over the floor`);
            });
            assert.ok(reached > 0 && reached < count, `${where}: ${reached} of ${count} estimates reach the floor`);
            assert.ok(bound.uppers(candidates, -Infinity).every((u) => u === Infinity), `${where}: every estimate reaches -Infinity`);
            const tableError = index.tableError(scan);
            assert.ok(tableError > 0 && index.kernelQueryError(scan) === 0, `${where}: the codes are scanned through tables`);
            const queryNorm = Math.hypot(...scan.vector);
            const spread = RQ_TABLE_BOUND_SIGMAS / Math.sqrt(rotated - 1);
            const terms = new Float64Array(3);
            candidates.forEach(({ slot, kernel }, i) => {
              index.rqTermsOf(Int32Array.of(slot), 1, terms);
              const code = index.codeAt(slot);
              const err = rq.residualError(code, rotated);
              assert.deepEqual([...terms], [err, rq.normSquared(code, rotated), terms[2]], `${where}: the terms are the code's`);
              const beta = spread * err * queryNorm + Math.abs(terms[2]!) * tableError;
              const expected = metric === 'l2' ? -Math.sqrt(Math.max(0, -kernel - 2 * beta)) : kernel + offset + beta;
              // The bound is that, and its float32 steps' rounding on top.
              assert.ok(uppers[i]! >= expected && uppers[i]! <= expected + 1e-3 * Math.max(1, Math.abs(expected)), `${where}: ${uppers[i]} against ${expected}`);
              if (uppers[i]! < exactOf(slot)) below++;
              pairs++;
            });
          }
        } finally {
          index.scoreSlots = scoreSlots;
        }
        assert.equal(scoredAgain, 0, `${where}: no candidate scored again`);
        // A bound of high probability, not a proof: 3.5 standard deviations leave about one in 4,300.
        assert.ok(below <= pairs / 200, `${where}: ${below} of ${pairs} exact scores above their bound`);
      } finally {
        await store.close();
      }
    }
  }
});

test('rq rescoring: every vector a candidate, the bound leaves some unread, and the answer is the exact top k (rq1, rq2, rq4; dot, cosine, l2)', async () => {
  const dim = 48;
  const vectors = clustered(60, dim, 31, 4);
  const items = vectors.map((vector, i) => ({ id: `v${i}`, vector }));
  const queries = clustered(20, dim, 32, 4);
  for (const codec of ['rq1', 'rq2', 'rq4'] as const) {
    for (const metric of ['dot', 'cosine', 'l2'] as const) {
      // k 10 with 6 candidates per result: all 60 vectors are candidates.
      const store = await MemStore.open(tempDir(), { dim, metric, codec, trainSize: 30, oversample: 6, durability: 'none', cache: false });
      try {
        await store.add(items);
        for (const q of queries) assert.deepEqual((await store.search(q, { k: 10 })).map((h) => h.id), bruteForce(metric, q, items, 10), `${codec} ${metric}`);
        const r = store.stats().rescoring;
        assert.equal(r.candidates, 60 * queries.length, `${codec} ${metric}: every vector a candidate`);
        assert.ok(r.skipped > 0, `${codec} ${metric}: none left unread (${JSON.stringify(r)})`);
      } finally {
        await store.close();
      }
    }
  }
});
