import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { getCodec } from '../src/codec/index.js';
import { FlatIndex } from '../src/index/flat-index.js';
import { PageStore } from '../src/index/pages.js';
import { kernels } from '../src/kernels/index.js';
import { CodeBlocks, INDEX_BLOCK_VECTORS, type ScanQuery } from '../src/scan/code-blocks.js';
import { ScorePool } from '../src/scan/score-pool.js';
import { TopK } from '../src/scan/topk.js';
import { rng } from '../src/random.js';

const DIM = 24;

function filled(n: number): { index: FlatIndex; vectors: Float32Array[] } {
  const random = rng(7);
  const index = new FlatIndex(getCodec('int8'), DIM, true);
  const vectors: Float32Array[] = [];
  for (let i = 0; i < n; i++) {
    const v = Float32Array.from({ length: DIM }, () => random() * 2 - 1);
    vectors.push(v);
    index.put(`v${i}`, v);
    index.setPlace(`v${i}`, [1, 1 + (i % 3), i * 8]);
  }
  return { index, vectors };
}

function best(index: FlatIndex, query: ScanQuery, k: number, options: Parameters<FlatIndex['search']>[2]): string[] {
  const top = new TopK(k);
  index.search(query, top, options);
  return top.sorted().map(({ slot }) => index.idAt(slot));
}

test('FlatIndex: its pages are blocks of INDEX_BLOCK_VECTORS codes, and it probes them all', () => {
  const n = INDEX_BLOCK_VECTORS * 2 + 5;
  const { index, vectors } = filled(n);
  try {
    assert.equal(index.size, n);
    assert.equal(index.pages, 3);
    assert.equal(index.defaultProbes, 3);
    const query: ScanQuery = { vector: vectors[n - 1]!, metric: 'dot', int8Query: false };
    const everything = best(index, query, 10, {});
    // The query is a stored vector in the last page: a probe of one page that missed it would show.
    assert.equal(everything[0], `v${n - 1}`);
    assert.deepEqual(best(index, query, 10, { nprobe: 1 }), everything);
    assert.deepEqual(best(index, query, 10, { exact: true }), everything);
  } finally {
    index.free();
  }
});

test('FlatIndex: accept is asked only for slots that would enter the heap, and rejected ones stay out', () => {
  const { index, vectors } = filled(300);
  try {
    const query: ScanQuery = { vector: vectors[0]!, metric: 'dot', int8Query: true };
    const asked: number[] = [];
    const ids = best(index, query, 5, { accept: (slot) => (asked.push(slot), slot % 2 === 1) });
    assert.equal(ids.length, 5);
    for (const id of ids) assert.equal(index.slotOf(id)! % 2, 1);
    assert.ok(asked.length < 300, 'a filter is not asked about every vector');
  } finally {
    index.free();
  }
});

test('FlatIndex: removal keeps places with their ids', () => {
  const { index } = filled(50);
  try {
    assert.equal(index.remove('v3'), true);
    assert.equal(index.remove('v3'), false);
    assert.equal(index.has('v3'), false);
    assert.deepEqual(index.placeOf('v49'), [1, 1 + (49 % 3), 49 * 8]);
    assert.equal(index.placeOf('v3'), undefined);
    // By slot: the same place as by id, for every id, the moved one included; a slot past the end is refused.
    for (let i = 0; i < 50; i++) if (i !== 3) assert.deepEqual(index.placeAt(index.slotOf(`v${i}`)!), index.placeOf(`v${i}`));
    assert.throws(() => index.placeAt(index.size), RangeError);
    assert.throws(() => index.placeAt(-1), RangeError);
  } finally {
    index.free();
  }
});

test('FlatIndex: a pool holds exactly the accepted vectors within its reach (in spreads of the k best) of the k-th best score, each filter verdict asked once', () => {
  const n = INDEX_BLOCK_VECTORS * 2 + 37;
  const { index, vectors } = filled(n);
  try {
    for (const [metric, int8Query] of [['dot', true], ['cosine', false], ['l2', false]] as const) {
      const query: ScanQuery = { vector: vectors[5]!, metric, int8Query };
      // Every vector's score, from a top-k that keeps them all.
      const all = new TopK(n);
      index.search(query, all, {});
      const scores = new Map(all.sorted().map(({ slot, score }) => [slot, score]));
      for (const reach of [0, 0.5, 3, Infinity]) {
        for (const accept of [undefined, (slot: number) => slot % 3 !== 0]) {
          const asked = new Map<number, number>();
          const counted = accept === undefined ? undefined : (slot: number) => (asked.set(slot, (asked.get(slot) ?? 0) + 1), accept(slot));
          const top = new TopK(10);
          const pool = new ScorePool();
          // Room for everything: what it holds is exactly what it collected.
          pool.reset(reach, n);
          index.search(query, top, { accept: counted, pool });
          const held = pool.sortBestFirst(0);
          assert.equal(held, pool.collected);
          // The k best accepted scores, from all of them: their k-th, their mean, the line.
          const best = [...scores].filter(([slot]) => accept?.(slot) ?? true).map(([, score]) => score).sort((a, b) => b - a).slice(0, 10);
          const kth = best[9]!;
          const spread = Math.max(0, best.reduce((sum, x) => sum + x, 0) / 10 - kth);
          assert.ok(Math.abs(pool.spread - spread) <= 1e-9 * (1 + Math.abs(kth)), `spread ${pool.spread} against ${spread}`);
          assert.equal(pool.line, reach === Infinity ? -Infinity : kth - reach * pool.spread);
          const expected = [...scores].filter(([slot, score]) => score >= pool.line && (accept?.(slot) ?? true)).map(([slot]) => slot).sort((a, b) => a - b);
          const got = Array.from({ length: held }, (_, i) => pool.slotAt(i)).sort((a, b) => a - b);
          assert.deepEqual(got, expected, `${metric} reach ${reach}`);
          for (let i = 0; i < held; i++) assert.equal(pool.scoreAt(i), scores.get(pool.slotAt(i)));
          assert.equal(pool.passedOver, [...scores.values()].some((score) => score < pool.line));
          for (const [slot, times] of asked) assert.equal(times, 1, `slot ${slot} asked ${times} times`);
          // The top-k's own candidates are in the pool.
          const count = top.sortBestFirst();
          for (let i = 0; i < count; i++) assert.ok(got.includes(top.slotAt(i)));
        }
      }
    }
  } finally {
    index.free();
  }
});

test('ScorePool: a reach >= 0 and a room >= 1 are required; the line is the k-th best less reach spreads; past its room it holds the best room + 1; reset empties it', () => {
  const pool = new ScorePool();
  for (const bad of [-1, NaN, -Infinity]) assert.throws(() => pool.reset(bad, 10), RangeError);
  for (const bad of [0, 1.5, NaN]) assert.throws(() => pool.reset(1, bad), RangeError);
  pool.reset(1, 2000);
  for (let i = 0; i < 1000; i++) pool.add(i, i / 2);
  assert.equal(pool.collected, 1000);
  assert.equal(pool.overflowed, false);
  assert.equal(pool.sortBestFirst(1), 1000);
  assert.equal(pool.slotAt(0), 999);
  assert.equal(pool.scoreAt(0), 499.5);
  pool.reset(1, 10);
  for (let i = 0; i < 1000; i++) pool.add(i, (i * 7919) % 1000);
  assert.equal(pool.collected, 1000);
  assert.equal(pool.overflowed, true);
  assert.equal(pool.sortBestFirst(11), 11, 'the best room + 1 are held');
  assert.deepEqual(Array.from({ length: 11 }, (_, i) => pool.scoreAt(i)), [999, 998, 997, 996, 995, 994, 993, 992, 991, 990, 989]);
  pool.passedOver = true;
  pool.reset(2, 10);
  pool.setLine(3, 4);
  assert.equal(pool.spread, 1);
  assert.equal(pool.line, 1);
  pool.setLine(-Infinity, NaN);
  assert.equal(pool.line, -Infinity, 'fewer than k accepted: everything is collected');
  pool.setLine(3, 3);
  assert.equal(pool.line, 3, 'ties all along: a spread of 0');
  pool.reset(0, 10);
  assert.equal(pool.collected, 0);
  assert.equal(pool.passedOver, false);
  assert.equal(pool.line, -Infinity);
  assert.equal(pool.reach, 0);
});

for (const [codecName, runs] of [['int8', 60], ['fp8-e4m3', 25], ['f16', 25]] as const) {
  test(`CodeBlocks of a cosine store keep each code's norm through puts, replacements, codes put and records loaded as a checkpoint holds them, and removals across blocks: every scan gives the scores of blocks that keep none, bit for bit (${codecName})`, () => {
    const codec = getCodec(codecName);
    const codeBytes = codec.codeBytes(DIM);
    // int8 codes in the codec's range; any byte pattern for the others (NaN and infinity ones too).
    const byte = (random: () => number): number => (codecName === 'int8' ? Math.floor(random() * 255) - 127 : Math.floor(random() * 256));
    fc.assert(
      fc.property(
        fc.array(fc.record({ kind: fc.constantFrom('put', 'put', 'code', 'load', 'remove'), id: fc.nat({ max: 40 }), seed: fc.nat() }), { maxLength: 120 }),
        (ops) => {
          // Blocks of 8: removals move codes between blocks, and the last block goes when emptied.
          const normed = new CodeBlocks(codec, DIM, 8, true, 'cosine');
          const plain = new CodeBlocks(codec, DIM, 8, true);
          try {
            assert.equal(normed.cosineNorms, true);
            assert.equal(plain.cosineNorms, false);
            for (const { kind, id, seed } of ops) {
              const random = rng(seed + 1);
              const v = Float32Array.from({ length: DIM }, () => random() * 2 - 1);
              if (kind === 'put') {
                normed.put(`v${id}`, v);
                plain.put(`v${id}`, v);
              } else if (kind === 'code') {
                const code = Uint8Array.from({ length: codeBytes }, () => byte(random));
                normed.putCode(`v${id}`, code, 0.5);
                plain.putCode(`v${id}`, code, 0.5);
              } else if (kind === 'load') {
                // A record read in place from an index file's block: its id and code at offsets in it.
                const idBytes = new TextEncoder().encode(`v${id}`);
                const block = new Uint8Array(3 + idBytes.length + codeBytes);
                block.set(idBytes, 3);
                for (let i = 0; i < codeBytes; i++) block[3 + idBytes.length + i] = byte(random);
                const record = { block, idAt: 3, idLength: idBytes.length, codeAt: 3 + idBytes.length, codeBytes, scale: 0.25, generation: 1, segment: 1, offset: 8 * id, documented: false, page: -1 };
                normed.loadRecord(record);
                plain.loadRecord(record);
              } else {
                assert.equal(normed.remove(`v${id}`), plain.remove(`v${id}`));
              }
              const query: ScanQuery = { vector: Float32Array.from({ length: DIM }, (_, i) => Math.cos(i + seed)), metric: 'cosine', int8Query: true };
              const all = (blocks: CodeBlocks): Array<[string, number]> => {
                const top = new TopK(Math.max(1, blocks.size));
                blocks.scan(query, top);
                return top.sorted().map(({ slot, score }) => [blocks.idAt(slot), score]);
              };
              assert.deepEqual(all(normed), all(plain));
              // And each scan score is the one the gather kernel (which sums the norm) gives.
              const slots = Int32Array.from({ length: normed.size }, (_, i) => i);
              const gathered = new Float32Array(slots.length);
              normed.scoreSlots(query, slots, slots.length, gathered);
              const top = new TopK(Math.max(1, normed.size));
              normed.scan(query, top);
              for (const { slot, score } of top.sorted()) assert.equal(score, gathered[slot]);
            }
          } finally {
            normed.free();
            plain.free();
          }
        },
      ),
      { numRuns: runs, seed: 20261202 },
    );
  });
}

test('int8 blocks and pages of a cosine store scan with the stored-norms kernel; of a dot store, or queried by dot, without it', () => {
  const k = kernels();
  const original = k.scanI8CosineNormed;
  let calls = 0;
  // Counted through the kernels' own object, which every scan calls it on.
  (k as { scanI8CosineNormed: typeof original }).scanI8CosineNormed = (...args) => {
    calls++;
    original(...args);
  };
  const random = rng(3);
  const vectors = Array.from({ length: 40 }, () => Float32Array.from({ length: DIM }, () => random() * 2 - 1));
  const cosine: ScanQuery = { vector: vectors[0]!, metric: 'cosine', int8Query: true };
  const dotQuery: ScanQuery = { vector: vectors[0]!, metric: 'dot', int8Query: true };
  const stores = [
    { metric: 'cosine' as const, blocks: new CodeBlocks(getCodec('int8'), DIM, 16, false, 'cosine'), pages: new PageStore(getCodec('int8'), DIM, 'cosine') },
    { metric: 'dot' as const, blocks: new CodeBlocks(getCodec('int8'), DIM, 16, false, 'dot'), pages: new PageStore(getCodec('int8'), DIM, 'dot') },
  ];
  try {
    for (const { metric, blocks, pages } of stores) {
      pages.addPage();
      vectors.forEach((v, i) => {
        blocks.put(`v${i}`, v);
        const { code, scale } = blocks.code(`v${i}`)!;
        pages.add(i, 0, code, scale);
      });
      for (const query of [cosine, dotQuery]) {
        calls = 0;
        blocks.scan(query, new TopK(5));
        pages.scan(query, [0], 1, new TopK(5));
        // Two blocks of 16 and one of 8, and one page.
        assert.equal(calls, metric === 'cosine' && query.metric === 'cosine' ? 4 : 0, `${metric} store, ${query.metric} query`);
      }
    }
  } finally {
    (k as { scanI8CosineNormed: typeof original }).scanI8CosineNormed = original;
    for (const { blocks, pages } of stores) {
      blocks.free();
      pages.free();
    }
  }
});

test('f32, f16 and fp8 blocks and pages of a cosine store scan with the float stored-norms kernel; of an l2 store, or queried by dot, without it', () => {
  const k = kernels();
  const original = k.scanCosineNormedFunction;
  const asked: string[] = [];
  (k as { scanCosineNormedFunction: typeof original }).scanCosineNormedFunction = (codec) => {
    asked.push(codec);
    return original.call(k, codec);
  };
  const random = rng(5);
  const vectors = Array.from({ length: 40 }, () => Float32Array.from({ length: DIM }, () => random() * 2 - 1));
  try {
    for (const codecName of ['f32', 'f16', 'fp8-e4m3', 'fp8-e5m2'] as const) {
      for (const metric of ['cosine', 'l2'] as const) {
        const codec = getCodec(codecName);
        const blocks = new CodeBlocks(codec, DIM, 16, false, metric);
        const pages = new PageStore(codec, DIM, metric);
        try {
          pages.addPage();
          vectors.forEach((v, i) => {
            blocks.put(`v${i}`, v);
            const { code, scale } = blocks.code(`v${i}`)!;
            pages.add(i, 0, code, scale);
          });
          for (const query of [{ vector: vectors[0]!, metric: 'cosine', int8Query: false }, { vector: vectors[0]!, metric: 'dot', int8Query: false }] as ScanQuery[]) {
            asked.length = 0;
            const fromBlocks = new TopK(5);
            blocks.scan(query, fromBlocks);
            const fromPages = new TopK(5);
            pages.scan(query, [0], 1, fromPages);
            // Two blocks of 16 and one of 8, and one page.
            const normed = metric === 'cosine' && query.metric === 'cosine';
            assert.deepEqual(asked, normed ? Array(4).fill(codecName) : [], `${codecName} ${metric} store, ${query.metric} query`);
            // And the same answer either way.
            assert.deepEqual(fromPages.sorted(), fromBlocks.sorted());
          }
        } finally {
          blocks.free();
          pages.free();
        }
      }
    }
  } finally {
    (k as { scanCosineNormedFunction: typeof original }).scanCosineNormedFunction = original;
  }
});
