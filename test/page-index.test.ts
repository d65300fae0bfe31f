import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { getCodec } from '../src/codec/index.js';
import type { CodecName } from '../src/codec/codec.js';
import { FlatIndex } from '../src/index/flat-index.js';
import { PageIndex, defaultProbes, MIN_PROBES, UNEQUAL_PROBE_FACTOR } from '../src/index/page-index.js';
import type { VectorIndex } from '../src/index/vector-index.js';
import type { KernelMetric } from '../src/kernels/index.js';
import type { LoadedRecord, ScanQuery } from '../src/scan/code-blocks.js';
import { ScorePool } from '../src/scan/score-pool.js';
import { TopK } from '../src/scan/topk.js';
import { clustered, gaussian, rng } from './helpers.js';

const DIM = 20;

function top(index: VectorIndex, query: ScanQuery, k: number, options: { exact?: boolean; nprobe?: number } = {}): { score: number; slot: number }[] {
  const t = new TopK(k);
  index.search(query, t, options);
  return t.sorted();
}

/** The record in `slot` as the index file's reader hands it over (LoadedRecord), from recordAt(). */
function loadedOf(index: VectorIndex, slot: number): LoadedRecord {
  const r = index.recordAt(slot);
  const block = new Uint8Array(r.idBytes.length + r.code.length);
  block.set(r.idBytes, 0);
  block.set(r.code, r.idBytes.length);
  return {
    block,
    idAt: 0,
    idLength: r.idBytes.length,
    codeAt: r.idBytes.length,
    codeBytes: r.code.length,
    scale: r.scale,
    generation: r.generation,
    segment: r.segment,
    offset: r.offset,
    documented: r.documented,
    page: r.page,
  };
}

/** Every id's page, by id. */
function pagesById(index: PageIndex): Map<string, number> {
  const out = new Map<string, number>();
  for (let slot = 0; slot < index.size; slot++) out.set(index.idAt(slot), index.recordAt(slot).page);
  return out;
}

type Op = { kind: 'put'; id: number; seed: number } | { kind: 'remove'; id: number } | { kind: 'code'; id: number; seed: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('put' as const), id: fc.nat(150), seed: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('remove' as const), id: fc.nat(150) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('code' as const), id: fc.nat(150), seed: fc.nat() }) },
);

function vectorOf(seed: number): Float32Array {
  const next = rng(seed + 1);
  // A few clusters, so pages form around them; some vectors repeat exactly.
  const centre = seed % 5;
  return Float32Array.from({ length: DIM }, (_, i) => (i % 5 === centre ? 2 : 0) + gaussian(next) * 0.5);
}

for (const [codec, metric] of [['int8', 'cosine'], ['int8', 'dot'], ['f16', 'l2'], ['fp8-e4m3', 'cosine']] as [CodecName, KernelMetric][]) {
  test(`page index (${codec}, ${metric}): any sequence of puts, codes and removals keeps the exact index's slots, records and exact answers (model-based)`, () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 400 }), fc.nat(), (ops, qseed) => {
        const flat = new FlatIndex(getCodec(codec), DIM, true);
        const paged = new PageIndex(getCodec(codec), DIM, metric, { maxPage: 16 });
        try {
          for (const o of ops) {
            const id = `v${o.id}`;
            if (o.kind === 'remove') {
              assert.equal(paged.remove(id), flat.remove(id));
              continue;
            }
            if (o.kind === 'put') {
              const v = vectorOf(o.seed);
              flat.put(id, v);
              paged.put(id, v);
            } else {
              const code = flat.code('v0') ?? { code: new Uint8Array(getCodec(codec).codeBytes(DIM)), scale: 1 };
              flat.putCode(id, code.code, code.scale);
              paged.putCode(id, code.code, code.scale);
            }
            flat.setPlace(id, [1, 1, o.id * 8]);
            paged.setPlace(id, [1, 1, o.id * 8]);
            flat.setDocumented(id, o.id % 2 === 0);
            paged.setDocumented(id, o.id % 2 === 0);
          }
          assert.equal(paged.size, flat.size);
          const sizes = paged.pageSizes();
          assert.equal(sizes.reduce((a, b) => a + b, 0), paged.size);
          assert.ok(sizes.every((n) => n <= 16), `pages of ${sizes.join(',')}`);
          for (let slot = 0; slot < flat.size; slot++) {
            assert.equal(paged.idAt(slot), flat.idAt(slot));
            const a = paged.recordAt(slot);
            const b = flat.recordAt(slot);
            assert.deepEqual([...a.code], [...b.code]);
            assert.deepEqual([...paged.codeAt(slot)], [...a.code]);
            assert.deepEqual([...flat.codeAt(slot)], [...b.code]);
            assert.equal(a.scale, b.scale);
            assert.deepEqual([a.generation, a.segment, a.offset, a.documented], [b.generation, b.segment, b.offset, b.documented]);
            assert.ok(a.page >= 0 && a.page < paged.pages);
            assert.equal(b.page, -1);
          }
          const query: ScanQuery = { vector: vectorOf(qseed), metric, int8Query: true };
          // exact: every page, so the same scores (bit for bit) and ties by slot as the exact scan.
          assert.deepEqual(top(paged, query, 10, { exact: true }), top(flat, query, 10, { exact: true }));
          assert.deepEqual(top(paged, query, 10, { nprobe: paged.pages }), top(flat, query, 10));
          assert.equal(paged.maxNorm() <= flat.maxNorm() + 1e-6 && paged.maxNorm() >= 0, true);
          // Scores of given slots agree with the exact index's too.
          const slots = Int32Array.from({ length: Math.min(flat.size, 40) }, (_, i) => (i * 7) % Math.max(1, flat.size));
          const out = [new Float32Array(slots.length), new Float32Array(slots.length)] as const;
          paged.scoreSlots(query, slots, slots.length, out[0]);
          flat.scoreSlots(query, slots, slots.length, out[1]);
          assert.deepEqual([...out[0]], [...out[1]]);
        } finally {
          flat.free();
          paged.free();
        }
      }),
      { numRuns: 40, seed: 42 },
    );
  });
}

test('page index: records loaded with their pages rebuild the same pages, and nprobe = 1 answers alike', () => {
  const vectors = clustered(1500, DIM, 4, 10);
  const a = new PageIndex(getCodec('int8'), DIM, 'cosine', { maxPage: 32 });
  const b = new PageIndex(getCodec('int8'), DIM, 'cosine', { maxPage: 32 });
  try {
    vectors.forEach((v, i) => {
      a.put(`id-${i}`, v);
      a.setPlace(`id-${i}`, [1, 1, i]);
    });
    for (let i = 0; i < 1500; i += 7) a.remove(`id-${i}`);
    assert.ok(a.pages > 20, `${a.pages} pages`);
    // Loaded in another order than slots (as deltas after a snapshot load them).
    for (let slot = a.size - 1; slot >= 0; slot--) b.loadRecord(loadedOf(a, slot));
    b.loaded();
    assert.equal(b.pages, a.pages);
    assert.deepEqual(b.pageSizes(), a.pageSizes());
    assert.deepEqual(pagesById(b), pagesById(a));
    for (let q = 0; q < 30; q++) {
      const query: ScanQuery = { vector: vectors[q * 41]!, metric: 'cosine', int8Query: true };
      const ids = (ix: PageIndex) => top(ix, query, 10, { nprobe: 1 }).map((h) => ix.idAt(h.slot));
      assert.deepEqual(ids(b), ids(a));
    }
    // Nothing moved: nothing for a checkpoint to write again.
    assert.equal(b.takeRelocated().size, 0);
  } finally {
    a.free();
    b.free();
  }
});

test('page index: a record loaded without a page (written before pages) is routed once loading ends, and reported moved', () => {
  const vectors = clustered(300, DIM, 6, 5);
  const a = new PageIndex(getCodec('int8'), DIM, 'cosine', { maxPage: 32 });
  const b = new PageIndex(getCodec('int8'), DIM, 'cosine', { maxPage: 32 });
  try {
    vectors.forEach((v, i) => a.put(`id-${i}`, v));
    for (let slot = 0; slot < a.size; slot++) {
      const r = loadedOf(a, slot);
      b.loadRecord(slot % 10 === 0 ? { ...r, page: -1 } : r);
    }
    b.loaded();
    assert.equal(b.size, 300);
    const moved = b.takeRelocated();
    for (let i = 0; i < 300; i += 10) assert.ok(moved.has(a.idAt(i)), `${a.idAt(i)} was routed`);
    const sizes = b.pageSizes();
    assert.equal(sizes.reduce((x, y) => x + y, 0), 300);
  } finally {
    a.free();
    b.free();
  }
});

test('page index: every id whose page changed is in takeRelocated(), and a failed checkpoint gives them back', () => {
  const vectors = clustered(2000, DIM, 8, 12);
  const index = new PageIndex(getCodec('int8'), DIM, 'l2', { maxPage: 24 });
  try {
    vectors.slice(0, 500).forEach((v, i) => index.put(`id-${i}`, v));
    index.takeRelocated();
    const before = pagesById(index);
    vectors.slice(500).forEach((v, i) => index.put(`id-${500 + i}`, v));
    for (let i = 0; i < 500; i += 3) index.remove(`id-${i}`);
    const after = pagesById(index);
    const moved = index.takeRelocated();
    let changed = 0;
    for (const [id, page] of before) {
      if (!after.has(id)) {
        assert.ok(!moved.has(id), `removed ${id} is not reported`);
        continue;
      }
      if (after.get(id) !== page) {
        changed++;
        assert.ok(moved.has(id), `${id} moved from page ${page} to ${after.get(id)}`);
      }
    }
    assert.ok(changed > 0, 'splits moved some vectors');
    assert.equal(index.takeRelocated().size, 0);
    index.relocatedAgain([...moved, 'no-such-id']);
    const again = index.takeRelocated();
    assert.equal(again.size, moved.size);
    assert.ok(!again.has('no-such-id'));
  } finally {
    index.free();
  }
});

test('page index: a search probes the default pages, all of them while there are few, and exact scans every one', () => {
  assert.equal(defaultProbes(0), 0);
  assert.equal(defaultProbes(5), 5);
  assert.equal(defaultProbes(MIN_PROBES), MIN_PROBES);
  assert.ok(defaultProbes(1000) > MIN_PROBES && defaultProbes(1000) < 1000);
  const vectors = clustered(4000, DIM, 9, 40);
  const flat = new FlatIndex(getCodec('int8'), DIM, true);
  const paged = new PageIndex(getCodec('int8'), DIM, 'cosine', { maxPage: 16 });
  try {
    vectors.forEach((v, i) => {
      flat.put(`id-${i}`, v);
      paged.put(`id-${i}`, v);
    });
    assert.ok(paged.pages > MIN_PROBES, `${paged.pages} pages`);
    assert.equal(paged.defaultProbes, defaultProbes(paged.pages));
    let found = 0;
    for (let q = 0; q < 50; q++) {
      const query: ScanQuery = { vector: vectors[q * 77]!, metric: 'cosine', int8Query: true };
      const exact = top(flat, query, 10);
      assert.deepEqual(top(paged, query, 10, { exact: true }), exact);
      const probed = top(paged, query, 10);
      assert.equal(probed.length, 10);
      const truth = new Set(exact.map((h) => h.slot));
      found += probed.filter((h) => truth.has(h.slot)).length;
      // One page can only find what it holds.
      assert.ok(top(paged, query, 10, { nprobe: 1 }).length <= 16);
    }
    // Clustered data, pages probed by the default share: most of the exact top 10.
    assert.ok(found / 500 >= 0.9, `recall ${found / 500}`);
  } finally {
    flat.free();
    paged.free();
  }
});

/** `n` vectors in random directions, the i-th of length `lengthOf(i)`. */
function ofLengths(n: number, seed: number, lengthOf: (i: number, next: () => number) => number): Float32Array[] {
  const next = rng(seed);
  return Array.from({ length: n }, (_, i) => {
    const v = Float32Array.from({ length: DIM }, () => gaussian(next));
    const scale = lengthOf(i, next) / Math.hypot(...v);
    return v.map((x) => x * scale);
  });
}

test('page index: the default nprobe follows the lengths of the vectors: 3·√pages for one length, 6·√pages for a dot store of unequal lengths or an l2 store of lengths over many octaves, and the same once reloaded', () => {
  const unit = ofLengths(1500, 8, () => 1);
  const longer = ofLengths(900, 9, (_, next) => 2 + 2 * next());
  const indexes: PageIndex[] = [];
  const make = (metric: KernelMetric): PageIndex => {
    const ix = new PageIndex(getCodec('int8'), DIM, metric, { maxPage: 16 });
    indexes.push(ix);
    return ix;
  };
  try {
    const dotIndex = make('dot');
    unit.forEach((v, i) => dotIndex.put(`u${i}`, v));
    assert.ok(dotIndex.pages > MIN_PROBES, `${dotIndex.pages} pages`);
    assert.equal(dotIndex.defaultProbes, defaultProbes(dotIndex.pages));
    longer.forEach((v, i) => dotIndex.put(`l${i}`, v));
    assert.equal(dotIndex.defaultProbes, defaultProbes(dotIndex.pages, UNEQUAL_PROBE_FACTOR));
    assert.ok(dotIndex.defaultProbes > defaultProbes(dotIndex.pages));
    // Loaded from its records (as opening does), in another order: the same default.
    const reloaded = make('dot');
    for (let slot = dotIndex.size - 1; slot >= 0; slot--) reloaded.loadRecord(loadedOf(dotIndex, slot));
    reloaded.loaded();
    assert.equal(reloaded.pages, dotIndex.pages);
    assert.equal(reloaded.defaultProbes, dotIndex.defaultProbes);
    // The longer vectors gone, one length again.
    longer.forEach((_, i) => dotIndex.remove(`l${i}`));
    assert.equal(dotIndex.defaultProbes, defaultProbes(dotIndex.pages));

    // l2: lengths from 1 to 4 are not many octaves; from 10^-2 to 10^2 are.
    const near = make('l2');
    ofLengths(2400, 10, (_, next) => 1 + 3 * next()).forEach((v, i) => near.put(`n${i}`, v));
    assert.equal(near.defaultProbes, defaultProbes(near.pages));
    const far = make('l2');
    ofLengths(2400, 11, (_, next) => 10 ** (4 * next() - 2)).forEach((v, i) => far.put(`f${i}`, v));
    assert.ok(far.pages > MIN_PROBES, `${far.pages} pages`);
    assert.equal(far.defaultProbes, defaultProbes(far.pages, UNEQUAL_PROBE_FACTOR));

    // A cosine store's vectors are of one length as the kernels see them, whatever they came as.
    const cosine = make('cosine');
    [...unit, ...longer].forEach((v, i) => cosine.put(`c${i}`, v));
    assert.equal(cosine.defaultProbes, defaultProbes(cosine.pages));
  } finally {
    for (const ix of indexes) ix.free();
  }
});

test('page index: a top kept wider than the candidates a search wants (IndexSearch.wanted) scans the pages those need and no more: its best are the narrow top\'s', () => {
  const vectors = clustered(600, DIM, 4, 30);
  const paged = new PageIndex(getCodec('int8'), DIM, 'cosine', { maxPage: 8 });
  try {
    vectors.forEach((v, i) => paged.put(`id-${i}`, v));
    let widerWithout = 0;
    for (let q = 0; q < 40; q++) {
      const query: ScanQuery = { vector: vectors[q * 13]!, metric: 'cosine', int8Query: true };
      for (const nprobe of [1, 2]) {
        const narrow = new TopK(10);
        paged.search(query, narrow, { nprobe });
        const wide = new TopK(40);
        paged.search(query, wide, { nprobe, wanted: 10 });
        const unbounded = new TopK(40);
        paged.search(query, unbounded, { nprobe });
        const want = narrow.sorted();
        assert.deepEqual(wide.sorted().slice(0, want.length), want, `query ${q}, nprobe ${nprobe}`);
        // Without it the wide top goes on to further pages, whose vectors can displace the narrow top's.
        if (unbounded.size > wide.size) widerWithout++;
      }
    }
    assert.ok(widerWithout > 0, 'a wide top without `wanted` scanned more pages');
  } finally {
    paged.free();
  }
});

test('page index: the same vectors in the same order make the same pages and answers (deterministic)', () => {
  const vectors = clustered(3000, DIM, 11, 20);
  const build = () => {
    const index = new PageIndex(getCodec('int8'), DIM, 'cosine', { maxPage: 40, seed: 3 });
    vectors.forEach((v, i) => index.put(`id-${i}`, v));
    for (let i = 0; i < 3000; i += 5) index.remove(`id-${i}`);
    index.recluster();
    return index;
  };
  const a = build();
  const b = build();
  try {
    assert.deepEqual(a.pageSizes(), b.pageSizes());
    assert.deepEqual(pagesById(a), pagesById(b));
    const query: ScanQuery = { vector: vectors[123]!, metric: 'cosine', int8Query: true };
    assert.deepEqual(top(a, query, 10, { nprobe: 3 }), top(b, query, 10, { nprobe: 3 }));
  } finally {
    a.free();
    b.free();
  }
});

test('load staging: codes put, removed and renumbered while a page index loads land in their pages as the slots say', () => {
  const vectors = clustered(400, DIM, 13, 6);
  const a = new PageIndex(getCodec('int8'), DIM, 'cosine', { maxPage: 32 });
  const b = new PageIndex(getCodec('int8'), DIM, 'cosine', { maxPage: 32 });
  try {
    vectors.forEach((v, i) => a.put(`id-${i}`, v));
    b.reserve(a.size, a.idBytes);
    for (let slot = 0; slot < a.size; slot++) b.loadRecord(loadedOf(a, slot));
    // Deletions and upserts during loading (as later blocks of the file bring them): the last slot
    // moves into each hole, and a record loaded again replaces its code.
    for (let i = 0; i < 400; i += 9) {
      assert.equal(b.remove(`id-${i}`), true);
      a.remove(`id-${i}`);
    }
    for (let slot = 0; slot < a.size; slot += 5) b.loadRecord(loadedOf(a, slot));
    b.loaded();
    assert.equal(b.size, a.size);
    for (let slot = 0; slot < a.size; slot++) {
      const id = a.idAt(slot);
      const there = b.slotOf(id);
      assert.ok(there !== undefined, id);
      assert.deepEqual([...b.recordAt(there).code], [...a.recordAt(slot).code], id);
    }
    const sizes = b.pageSizes();
    assert.equal(sizes.reduce((x, y) => x + y, 0), a.size);
    const query: ScanQuery = { vector: vectors[7]!, metric: 'cosine', int8Query: true };
    const ids = (ix: PageIndex) => top(ix, query, 10, { exact: true }).map((h) => `${ix.idAt(h.slot)}:${h.score}`);
    assert.deepEqual(ids(b).sort(), ids(a).sort());
  } finally {
    a.free();
    b.free();
  }
});

test('page index: a pool collected while probing some pages holds exactly the vectors of those pages at or above its line, scoped to them (model-based)', () => {
  fc.assert(
    fc.property(fc.array(op, { minLength: 40, maxLength: 300 }), fc.nat(), fc.integer({ min: 1, max: 40 }), fc.double({ min: 0, max: 4, noNaN: true }), (ops, qseed, probes, reach) => {
      const paged = new PageIndex(getCodec('int8'), DIM, 'cosine', { maxPage: 16 });
      try {
        for (const o of ops) {
          if (o.kind === 'remove') paged.remove(`v${o.id}`);
          else paged.put(`v${o.id}`, vectorOf(o.seed));
        }
        if (paged.size === 0) return;
        const query: ScanQuery = { vector: vectorOf(qseed), metric: 'cosine', int8Query: true };
        const nprobe = Math.min(probes, paged.pages);
        const pool = new ScorePool();
        pool.reset(reach, 10_000);
        const t = new TopK(Math.min(5, paged.size));
        paged.search(query, t, { nprobe, pool });
        const scope = pool.scope;
        assert.ok(scope !== undefined && scope !== null, 'a search of some pages scopes its pool');
        assert.deepEqual([...scope.pages], [...paged.scopePages(query, nprobe)]);
        assert.equal(scope.layout, paged.layoutEpoch());
        const now = paged.scopeOf(query, { nprobe }, t.capacity);
        assert.ok(now !== undefined);
        assert.deepEqual({ pages: [...now.pages], layout: now.layout }, { pages: [...scope.pages], layout: scope.layout });
        assert.equal(now.complete, nprobe === paged.pages || scope.pages.reduce((n, p) => n + paged.pageSizes()[p]!, 0) >= t.capacity);
        assert.equal(paged.scopeOf(query, { nprobe, exact: true }, t.capacity), undefined);
        // Scanning the scope's pages alone finds the search's top.
        const again = new TopK(t.capacity);
        paged.scanPages(query, scope.pages, scope.pages.length, again);
        if (now.complete) assert.deepEqual(again.sorted(), t.sorted());
        const inPages = new Set(scope.pages);
        const slots = Int32Array.from({ length: paged.size }, (_, s) => s);
        const scores = new Float32Array(paged.size);
        paged.scoreSlots(query, slots, paged.size, scores);
        const expected = new Map<number, number>();
        let below = false;
        for (let slot = 0; slot < paged.size; slot++) {
          const page = paged.recordAt(slot).page;
          assert.equal(paged.inScope(scope, slot), inPages.has(page));
          if (!inPages.has(page)) continue;
          if (scores[slot]! >= pool.line) expected.set(slot, scores[slot]!);
          else below = true;
        }
        const held = pool.sortBestFirst(0);
        const got = new Map(Array.from({ length: held }, (_, i) => [pool.slotAt(i), pool.scoreAt(i)] as const));
        assert.deepEqual(got, expected);
        assert.equal(pool.passedOver, below);
      } finally {
        paged.free();
      }
    }),
    { numRuns: 60, seed: 7 },
  );
});

test('page index: an exact search draws its pool from every vector (no scope), a filtered one collects none (null)', () => {
  const paged = new PageIndex(getCodec('int8'), DIM, 'cosine', { maxPage: 16 });
  try {
    for (let i = 0; i < 200; i++) paged.put(`v${i}`, vectorOf(i));
    assert.ok(paged.pages > 4);
    const query: ScanQuery = { vector: vectorOf(999), metric: 'cosine', int8Query: true };
    const pool = new ScorePool();
    pool.reset(Infinity, 1000);
    paged.search(query, new TopK(5), { exact: true, pool });
    assert.equal(pool.scope, undefined);
    assert.equal(pool.sortBestFirst(0), 200, 'an infinite reach takes every vector');
    pool.reset(Infinity, 1000);
    paged.search(query, new TopK(5), { nprobe: 2, pool, accept: (slot) => slot % 2 === 0 });
    assert.equal(pool.scope, null);
    assert.equal(paged.collectsPools({ filter: { tag: 'a' } }), false);
    assert.equal(paged.collectsPools({ nprobe: 2 }), true);
  } finally {
    paged.free();
  }
});
