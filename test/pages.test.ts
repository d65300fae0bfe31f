import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { Codec, CodecName } from '../src/codec/codec.js';
import { getCodec } from '../src/codec/index.js';
import { rq1Codec, rq2Codec, rq4Codec } from '../src/codec/rq.js';
import { PageStore, roomFor } from '../src/index/pages.js';
import { rng } from '../src/random.js';
import { CodeBlocks, type ScanQuery } from '../src/scan/code-blocks.js';
import { TopK } from '../src/scan/topk.js';
import { gaussian } from './helpers.js';
import { LinearMemory } from '../src/kernels/memory.js';

// Every block of linear memory made in this file has a canary after it, checked when freed: a kernel that writes past its block fails here.
LinearMemory.guardBlocks = true;

const DIM = 20;

/** A code of `DIM` int8 values derived from `seed`, and a scale. */
function codeOf(seed: number): { code: Uint8Array; scale: number } {
  return { code: Uint8Array.from({ length: DIM }, (_, i) => (seed * 31 + i * 7) & 0xff), scale: 1 + (seed % 5) / 8 };
}

/** codeOf() for `codec`: as many bytes as its codes take (any pattern, the float codecs' NaN and infinity ones too). */
function codeOfFor(codec: Codec): (seed: number) => { code: Uint8Array; scale: number } {
  return (seed) => ({ code: Uint8Array.from({ length: codec.codeBytes(DIM) }, (_, i) => (seed * 31 + i * 7) & 0xff), scale: 1 + (seed % 5) / 8 });
}

/**
 * A PageStore of `pages` pages holding `n` random vectors (slot i in page pageOf(i)), and the
 * CodeBlocks that encoded them, so both hold the same codes. The caller frees both.
 */
function filledPages(codec: Codec, pages: number, n: number, pageOf: (slot: number) => number, next: () => number): { blocks: CodeBlocks; store: PageStore } {
  const blocks = new CodeBlocks(codec, DIM, 64);
  const store = new PageStore(codec, DIM);
  try {
    for (let p = 0; p < pages; p++) store.addPage();
    for (let slot = 0; slot < n; slot++) {
      blocks.put(`v${slot}`, Float32Array.from({ length: DIM }, () => gaussian(next)));
      const { code, scale } = blocks.code(`v${slot}`)!;
      store.add(slot, pageOf(slot), code, scale);
    }
  } catch (e) {
    blocks.free();
    store.free();
    throw e;
  }
  return { blocks, store };
}

/**
 * Random adds, removals, moves, renumbering, replacing, fitting and dropping empty pages on a
 * PageStore of `codec` at `dim`, checked against a model after every step: each slot's page, each
 * page's slots, and each code and scale as given (`codeOf(seed)` makes the code of a seed).
 */
function agreesWithModel(codec: Codec, dim: number, codeOf: (seed: number) => { code: Uint8Array; scale: number }, runs: number, metric?: 'cosine'): void {
  const op = fc.record({
    kind: fc.constantFrom('page', 'add', 'add', 'add', 'remove', 'move', 'renumber', 'replace', 'drop', 'fit'),
    a: fc.nat({ max: 200 }),
    b: fc.nat({ max: 200 }),
  });
  fc.assert(
    fc.property(fc.array(op, { maxLength: 250 }), (ops) => {
      const store = new PageStore(codec, dim, metric);
      // A cosine int8 query: with norms kept, each page's scan reads them and the gather kernel sums them.
      const query: ScanQuery = { vector: Float32Array.from({ length: dim }, (_, i) => Math.sin(i + 1)), metric: 'cosine', int8Query: true };
      // The model: per slot, its page and the seed of its code; per page, its slots in no order.
      const model = new Map<number, { page: number; seed: number }>();
      let pages = 0;
      let seeds = 0;
      try {
        for (const { kind, a, b } of ops) {
          const slots = [...model.keys()];
          if (kind === 'page' || pages === 0) {
            assert.equal(store.addPage(), pages++);
          } else if (kind === 'add') {
            const slot = a;
            if (model.has(slot)) continue;
            const page = b % pages;
            const seed = seeds++;
            const { code, scale } = codeOf(seed);
            store.add(slot, page, code, scale);
            model.set(slot, { page, seed });
          } else if (kind === 'fit') {
            store.fit(a % pages);
          } else if (slots.length === 0) {
            continue;
          } else if (kind === 'remove') {
            const slot = slots[a % slots.length]!;
            store.remove(slot);
            model.delete(slot);
          } else if (kind === 'move') {
            const slot = slots[a % slots.length]!;
            const to = b % pages;
            store.moveTo(slot, to);
            model.get(slot)!.page = to;
          } else if (kind === 'renumber') {
            const from = slots[a % slots.length]!;
            const to = 201 + b;
            if (model.has(to)) continue;
            store.renumber(from, to);
            model.set(to, model.get(from)!);
            model.delete(from);
          } else if (kind === 'replace') {
            const slot = slots[a % slots.length]!;
            const seed = seeds++;
            const { code, scale } = codeOf(seed);
            store.replace(slot, code, scale);
            model.get(slot)!.seed = seed;
          } else if (kind === 'drop') {
            const page = a % pages;
            if ([...model.values()].some((v) => v.page === page)) {
              assert.throws(() => store.removeEmptyPage(page), RangeError);
              continue;
            }
            const moved = store.removeEmptyPage(page);
            assert.equal(moved, pages - 1);
            for (const v of model.values()) if (v.page === moved) v.page = page;
            pages--;
          }
          assert.equal(store.size, model.size);
          assert.equal(store.pageCount, pages);
          for (let page = 0; page < pages; page++) {
            const expected = [...model].filter(([, v]) => v.page === page).map(([slot]) => slot).sort((x, y) => x - y);
            assert.deepEqual([...store.slotsOf(page)].sort((x, y) => x - y), expected, `page ${page}`);
            assert.equal(store.sizeOf(page), expected.length);
          }
          for (const [slot, v] of model) {
            assert.equal(store.pageOf(slot), v.page);
            assert.deepEqual(store.codeAt(slot), codeOf(v.seed));
          }
          if (metric !== undefined) {
            for (let page = 0; page < pages; page++) {
              const n = store.sizeOf(page);
              const scanned = new Float32Array(n);
              store.scorePage(query, page, scanned);
              const gathered = new Float32Array(n);
              store.scoreSlots(query, store.slotsOf(page), n, gathered);
              assert.deepEqual(scanned, gathered, `page ${page}`);
            }
          }
        }
      } finally {
        store.free();
      }
    }),
    { numRuns: runs, seed: 20261130 },
  );
}

test('pages: random adds, removals, moves between pages, renumbering, replacing and dropping empty pages agree with a model', () => {
  agreesWithModel(getCodec('int8'), DIM, codeOf, 150);
});

test('pages of a cosine store keep each code\'s norm through adds, removals, moves, replacing, fitting and dropped pages: every scan gives the score the gather kernel sums, bit for bit (int8, fp8, f16)', () => {
  const kinds = [
    ['cosine', 'int8', true],
    ['dot', 'int8', false],
    [undefined, 'int8', false],
    ['cosine', 'fp8-e4m3', true],
    ['cosine', 'fp8-e5m2', true],
    ['cosine', 'f16', true],
    ['cosine', 'f32', true],
    ['dot', 'fp8-e4m3', false],
    ['l2', 'f32', false],
  ] as const;
  for (const [metric, codec, kept] of kinds) {
    const store = new PageStore(getCodec(codec), DIM, metric);
    try {
      assert.equal(store.cosineNorms, kept, `${metric} ${codec}`);
    } finally {
      store.free();
    }
  }
  agreesWithModel(getCodec('int8'), DIM, codeOf, 40, 'cosine');
  for (const codec of ['fp8-e4m3', 'f16'] as const) agreesWithModel(getCodec(codec), DIM, codeOfFor(getCodec(codec)), 20, 'cosine');
});

for (const codecName of ['int8', 'fp8-e5m2', 'f16'] as const) {
  test(`pages of a cosine store: norms move with their codes when a page grows, shrinks and is fitted (${codecName})`, () => {
    const codec = getCodec(codecName);
    const codeOf = codeOfFor(codec);
    const store = new PageStore(codec, DIM, 'cosine');
    const query: ScanQuery = { vector: Float32Array.from({ length: DIM }, (_, i) => Math.sin(i + 1)), metric: 'cosine', int8Query: true };
    const agree = (): void => {
      const n = store.sizeOf(0);
      const scanned = new Float32Array(n);
      store.scorePage(query, 0, scanned);
      const gathered = new Float32Array(n);
      store.scoreSlots(query, store.slotsOf(0), n, gathered);
      assert.deepEqual(scanned, gathered);
      assert.ok(scanned.some((x) => x !== 0));
    };
    try {
      store.addPage();
      // Past 16 rows the room grows (a copy), removals shrink it (another), fit() to the count.
      for (let slot = 0; slot < 100; slot++) store.add(slot, 0, codeOf(slot + 1).code, codeOf(slot + 1).scale);
      agree();
      for (let slot = 0; slot < 90; slot++) store.remove(slot);
      agree();
      store.fit(0);
      agree();
    } finally {
      store.free();
    }
  });
}

test('pages in the fast-scan layout (rq1, rq2, rq4 at 32, 64 and 128 dimensions): the same model, every code and factor kept byte for byte through lanes, moves between lanes and resized rooms', () => {
  for (const codec of [rq1Codec, rq2Codec, rq4Codec]) {
    for (const dim of [32, 64, 128]) {
      assert.ok(new PageStore(codec, dim).fastScan, `${codec.name} ${dim}-d`);
      // A real code per seed (encoding is deterministic), so its padding bits are zero and its floats finite.
      const cache = new Map<number, { code: Uint8Array; scale: number }>();
      const rqCodeOf = (seed: number) => {
        let c = cache.get(seed);
        if (c === undefined) {
          const next = rng(seed + 1);
          const code = new Uint8Array(codec.codeBytes(dim));
          const scale = codec.encode(Float32Array.from({ length: dim }, () => gaussian(next)), code);
          cache.set(seed, (c = { code, scale }));
        }
        return { code: c.code.slice(), scale: c.scale };
      };
      agreesWithModel(codec, dim, rqCodeOf, 25);
    }
  }
});

test('pages: a scan of every page keeps exactly what a scan of the same codes in slot order keeps, bit for bit (every codec, metric and query form)', () => {
  const next = rng(21);
  for (const codecName of ['int8', 'f16', 'fp8-e4m3', 'f32'] as CodecName[]) {
    const { blocks, store } = filledPages(getCodec(codecName), 9, 700, (slot) => (slot * 7) % 9, next);
    try {
      for (const metric of ['dot', 'cosine', 'l2'] as const) {
        for (const int8Query of [false, true]) {
          const query: ScanQuery = { vector: Float32Array.from({ length: DIM }, () => gaussian(next)), metric, int8Query };
          for (const k of [1, 10, 64]) {
            const expected = new TopK(k);
            blocks.scan(query, expected, undefined);
            const got = new TopK(k);
            store.scan(query, [0, 1, 2, 3, 4, 5, 6, 7, 8], 9, got);
            assert.deepEqual(got.sorted(), expected.sorted(), `${codecName} ${metric} int8 query ${int8Query} k ${k}`);
          }
          // Only some pages: the best of their vectors alone.
          const some = new TopK(20);
          store.scan(query, [2, 5], 2, some);
          for (const { slot } of some.sorted()) assert.ok([2, 5].includes(store.pageOf(slot)));
        }
      }
    } finally {
      blocks.free();
      store.free();
    }
  }
});

test('pages: scoreSlots gives each vector the score a scan gives it, wherever its page holds it (gather kernels, every codec and query form)', () => {
  const next = rng(31);
  for (const codecName of ['int8', 'f16', 'f32'] as CodecName[]) {
    const { blocks, store } = filledPages(getCodec(codecName), 5, 300, (slot) => (slot * 3) % 5, next);
    try {
      const slots = Int32Array.from({ length: 57 }, (_, i) => (i * 37) % 300);
      for (const [metric, int8Query] of [['dot', true], ['cosine', false], ['l2', false]] as const) {
        const query: ScanQuery = { vector: Float32Array.from({ length: DIM }, () => gaussian(next)), metric, int8Query };
        const got = new Float32Array(slots.length);
        const want = new Float32Array(slots.length);
        store.scoreSlots(query, slots, slots.length, got);
        blocks.scoreSlots(query, slots, slots.length, want);
        assert.deepEqual(got, want, `${codecName} ${metric}`);
      }
      assert.throws(() => store.scoreSlots({ vector: new Float32Array(DIM), metric: 'dot', int8Query: false }, slots, 10, new Float32Array(5)), RangeError);
    } finally {
      blocks.free();
      store.free();
    }
  }
});

test('pages: accept is asked only about vectors that could enter the top, and rejected ones stay out', () => {
  const next = rng(5);
  const store = new PageStore(getCodec('int8'), DIM);
  try {
    store.addPage();
    store.addPage();
    const blocks = new CodeBlocks(getCodec('int8'), DIM, 64);
    for (let slot = 0; slot < 400; slot++) {
      blocks.put(`v${slot}`, Float32Array.from({ length: DIM }, () => gaussian(next)));
      const { code, scale } = blocks.code(`v${slot}`)!;
      store.add(slot, slot % 2, code, scale);
    }
    blocks.free();
    const asked: number[] = [];
    const top = new TopK(5);
    store.scan({ vector: Float32Array.from({ length: DIM }, () => gaussian(next)), metric: 'dot', int8Query: true }, [0, 1], 2, top, (slot) => (asked.push(slot), slot % 3 === 0));
    const kept = top.sorted();
    assert.equal(kept.length, 5);
    for (const { slot } of kept) assert.equal(slot % 3, 0);
    assert.ok(asked.length < 400, 'a filter is not asked about every vector');
  } finally {
    store.free();
  }
});

test('pages: a page grows by doubling and shrinks when a quarter full, so memory follows the vectors', () => {
  const store = new PageStore(getCodec('int8'), DIM);
  const few = new PageStore(getCodec('int8'), DIM);
  try {
    store.addPage();
    few.addPage();
    for (let slot = 0; slot < 1000; slot++) {
      const { code, scale } = codeOf(slot);
      store.add(slot, 0, code, scale);
      if (slot >= 990) few.add(slot, 0, code, scale);
    }
    const full = store.bytes;
    for (let slot = 0; slot < 990; slot++) store.remove(slot);
    // The same 10 vectors in the same slots, given to a store that never held more.
    assert.ok(store.bytes <= 2 * few.bytes, `${store.bytes} B held for 10 vectors after 1,000 (${full} B then), ${few.bytes} B in a store given only them`);
    for (let slot = 990; slot < 1000; slot++) assert.deepEqual(store.codeAt(slot), codeOf(slot));
    // A page half emptied keeps its room until fit() gives it what its vectors need.
    const half = new PageStore(getCodec('int8'), DIM);
    try {
      half.addPage();
      for (let slot = 0; slot < 200; slot++) half.add(slot, 0, codeOf(slot).code, codeOf(slot).scale);
      for (let slot = 0; slot < 100; slot++) half.remove(slot);
      const before = half.bytes;
      half.fit(0);
      assert.ok(half.bytes < before, `${half.bytes} B after fit, ${before} B before`);
      for (let slot = 100; slot < 200; slot++) assert.deepEqual(half.codeAt(slot), codeOf(slot));
    } finally {
      half.free();
    }
  } finally {
    store.free();
    few.free();
  }
});

test('pages: bad arguments are RangeErrors, and nothing changes', () => {
  const store = new PageStore(getCodec('int8'), DIM);
  try {
    const page = store.addPage();
    const { code, scale } = codeOf(1);
    assert.throws(() => store.add(-1, page, code, scale), RangeError);
    assert.throws(() => store.add(1.5, page, code, scale), RangeError);
    assert.throws(() => store.add(0, 7, code, scale), RangeError);
    assert.throws(() => store.add(0, page, code.subarray(1), scale), RangeError);
    store.add(0, page, code, scale);
    assert.throws(() => store.add(0, page, code, scale), RangeError, 'a slot holds one vector');
    assert.throws(() => store.remove(1), RangeError);
    assert.throws(() => store.renumber(0, 0), RangeError);
    assert.throws(() => store.pageOf(3), RangeError);
    assert.throws(() => store.removeEmptyPage(page), RangeError);
    assert.equal(store.size, 1);
    assert.deepEqual(store.codeAt(0), codeOf(1));
  } finally {
    store.free();
  }
});

test('pages: rooms are 16 or an eighth step between powers of two, the least that holds the rows', () => {
  assert.deepEqual([0, 1, 16, 17, 18, 19, 20, 31, 32, 33, 36, 200, 256, 257, 1000].map(roomFor), [16, 16, 16, 18, 18, 20, 20, 32, 32, 36, 36, 208, 256, 288, 1024]);
  for (let rows = 1; rows < 5000; rows++) {
    const room = roomFor(rows);
    assert.ok(Number.isInteger(room) && room >= rows && (room === 16 || room < 1.125 * rows + 1e-9), `room ${room} for ${rows}`);
    assert.ok(rows === 1 || roomFor(rows - 1) <= room, `rooms grow with the rows (${rows})`);
  }
});

test('pages: scorePage gives each vector of a page, in slotsOf order, the score scoreSlots gives it; too little room is a RangeError; an empty page writes nothing', () => {
  const next = rng(41);
  for (const codecName of ['int8', 'f16', 'f32'] as CodecName[]) {
    // Page 3 stays empty.
    const { blocks, store } = filledPages(getCodec(codecName), 4, 150, (slot) => slot % 3, next);
    try {
      for (const metric of ['dot', 'cosine', 'l2'] as const) {
        const query: ScanQuery = { vector: Float32Array.from({ length: DIM }, () => gaussian(next)), metric, int8Query: false };
        for (let p = 0; p < 3; p++) {
          const slots = store.slotsOf(p);
          const got = new Float32Array(slots.length);
          store.scorePage(query, p, got);
          const want = new Float32Array(slots.length);
          store.scoreSlots(query, slots, slots.length, want);
          assert.deepEqual(got, want, `${codecName} ${metric} page ${p}`);
          assert.throws(() => store.scorePage(query, p, new Float32Array(slots.length - 1)), RangeError);
        }
        const untouched = new Float32Array([7]);
        store.scorePage(query, 3, untouched);
        assert.deepEqual(untouched, new Float32Array([7]), 'page 3 is empty');
      }
    } finally {
      blocks.free();
      store.free();
    }
  }
});

test('pages: the slot map holds exactly the slots reserved, 4 bytes a slot, and grows past them a quarter at a time', () => {
  const codec = getCodec('int8');
  const store = new PageStore(codec, DIM);
  try {
    store.addPage();
    const row = store.stride + 8;
    // An empty page's room and what does not grow with the slots (the query's scratch).
    const fixed = store.bytes - roomFor(0) * row;
    store.reserveSlots(1000);
    assert.equal(store.bytes - fixed - roomFor(0) * row, 4 * 1000);
    for (let slot = 0; slot < 1000; slot++) {
      const { code, scale } = codeOf(slot);
      store.add(slot, 0, code, scale);
    }
    assert.equal(store.bytes - fixed - roomFor(1000) * row, 4 * 1000, 'no growth while the slots stay within the reservation');
    const { code, scale } = codeOf(1000);
    store.add(1000, 0, code, scale);
    assert.equal(store.bytes - fixed - roomFor(1001) * row, 4 * 1250, 'a quarter more past it');
    store.reserveSlots(10);
    assert.equal(store.bytes - fixed - roomFor(1001) * row, 4 * 1250, 'a smaller reservation shrinks nothing');
    for (let slot = 0; slot <= 1000; slot++) assert.equal(store.pageOf(slot), 0);
  } finally {
    store.free();
  }
});

test('pages: a page past 65,536 rows and more than 65,535 pages keep every slot\'s page and row (the slot map widens from 16 to 32 bits)', () => {
  const codec = getCodec('int8');
  const store = new PageStore(codec, DIM);
  try {
    const rows = 70_000;
    store.addPage();
    for (let slot = 0; slot < rows; slot++) {
      const { code, scale } = codeOf(slot);
      store.add(slot, 0, code, scale);
    }
    // Removing a row moves the page's last row into it: row 69,999's slot now lives at row 5.
    store.remove(5);
    assert.equal(store.has(5), false);
    assert.deepEqual(store.codeAt(rows - 1), codeOf(rows - 1));
    for (const slot of [0, 4, 6, 65_535, 65_536, 65_537, rows - 2]) assert.deepEqual(store.codeAt(slot), codeOf(slot), `slot ${slot}`);
    for (let p = 1; p <= 66_000; p++) store.addPage();
    store.moveTo(rows - 1, 66_000);
    store.moveTo(65_536, 65_535);
    assert.equal(store.pageOf(rows - 1), 66_000);
    assert.equal(store.pageOf(65_536), 65_535);
    assert.deepEqual(store.codeAt(rows - 1), codeOf(rows - 1));
    assert.deepEqual(store.codeAt(65_536), codeOf(65_536));
    // The last page's number moves into an emptied page's, and its vector follows.
    store.moveTo(7, 9);
    store.moveTo(7, 10);
    assert.equal(store.removeEmptyPage(9), 66_000);
    assert.equal(store.pageOf(rows - 1), 9);
    assert.deepEqual(store.codeAt(rows - 1), codeOf(rows - 1));
    assert.equal(store.pageOf(7), 10);
    assert.equal(store.has(-1), false);
    assert.equal(store.has(1.5), false);
    assert.equal(store.has(rows + 10), false);
    assert.throws(() => store.pageOf(1.5), RangeError);
  } finally {
    store.free();
  }
});

test('pages: decodePage decodes every vector of a page, in slotsOf order, as decode does one at a time (int8, fp8, f16, and rq in the fast-scan layout); too little room is a RangeError', () => {
  const next = rng(43);
  const cases: [Codec, number][] = [[getCodec('int8'), DIM], [getCodec('fp8-e4m3'), DIM], [getCodec('f16'), DIM], [rq2Codec, 64], [rq1Codec, 32]];
  for (const [codec, dim] of cases) {
    const store = new PageStore(codec, dim);
    try {
      for (let p = 0; p < 3; p++) store.addPage();
      const code = new Uint8Array(codec.codeBytes(dim));
      // Removals leave rows moved within their page: decodePage reads the rows as they are then.
      for (let slot = 0; slot < 90; slot++) {
        const scale = codec.encode(Float32Array.from({ length: dim }, () => gaussian(next)), code);
        store.add(slot, slot % 3, code, scale);
      }
      for (let slot = 0; slot < 90; slot += 7) store.remove(slot);
      for (let p = 0; p < 3; p++) {
        const slots = store.slotsOf(p);
        const got = new Float32Array((slots.length + 1) * dim).fill(5);
        store.decodePage(p, got);
        const one = new Float32Array(dim);
        slots.forEach((slot, row) => {
          store.decode(slot, one);
          assert.deepEqual(got.subarray(row * dim, (row + 1) * dim), one, `${codec.name} page ${p} row ${row}`);
        });
        assert.ok(got.subarray(slots.length * dim).every((x) => x === 5), 'nothing written past the page');
        assert.throws(() => store.decodePage(p, new Float32Array(slots.length * dim - 1)), RangeError);
      }
    } finally {
      store.free();
    }
  }
});
