import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rq1Codec, rq2Codec, rq4Codec, type RqCodec } from '../src/codec/rq.js';
import { FastScanRows } from '../src/scan/fast-scan-rows.js';
import { PageStore } from '../src/index/pages.js';
import { referenceFastScan } from '../src/kernels/reference.js';
import { MemStore } from '../src/memstore.js';
import { fastScanBlockBytes, fastScanGroups, nibblesOf, writeLane } from '../src/scan/fast-scan-layout.js';
import { buildLut, lutErrorBound } from '../src/scan/fast-scan-lut.js';
import { CodeBlocks, type ScanQuery } from '../src/scan/code-blocks.js';
import { TopK } from '../src/scan/topk.js';
import { bruteForce, clustered, gaussian, rng, tempDir } from './helpers.js';
import { kernels } from '../src/kernels/index.js';
import { LinearMemory } from '../src/kernels/memory.js';
import { ScorePool } from '../src/scan/score-pool.js';

// Every block of linear memory made in this file has a canary after it, checked when freed: a kernel that writes past its block fails here.
LinearMemory.guardBlocks = true;

const RQ: readonly RqCodec[] = [rq1Codec, rq2Codec, rq4Codec];

/** The scores of the vectors in `slots` under `query`, in that order (scoreSlots into a new array). */
function scoresOf(index: { scoreSlots(query: ScanQuery, slots: Int32Array, n: number, out: Float32Array): void }, query: ScanQuery, slots: Int32Array): Float32Array {
  const out = new Float32Array(slots.length);
  index.scoreSlots(query, slots, slots.length, out);
  return out;
}

/** A real code of a random vector (rotated space: any vector will do) and its factor. */
function encoded(codec: RqCodec, dim: number, next: () => number, scale = 1): { code: Uint8Array; scale: number } {
  const code = new Uint8Array(codec.codeBytes(dim));
  const f = codec.encode(
    Float32Array.from({ length: dim }, () => gaussian(next) * scale),
    code,
  );
  return { code, scale: f };
}

/** The levels u_i of `code` (decoded with factor 1: u_i − m). */
function levelsOf(codec: RqCodec, code: Uint8Array, dim: number): Uint8Array {
  const out = new Float32Array(dim);
  codec.decode(code, 1, out);
  const m = ((1 << codec.bits) - 1) / 2;
  return Uint8Array.from(out, (y) => y + m);
}

/** ⟨ŷ, q⟩ in float64, ŷ = u − m. */
function exactInner(codec: RqCodec, code: Uint8Array, q: Float32Array): number {
  const y = new Float32Array(q.length);
  codec.decode(code, 1, y);
  let sum = 0;
  for (let i = 0; i < q.length; i++) sum += y[i]! * q[i]!;
  return sum;
}

/** The score the fast-scan kernel gives `code` alone in lane 0 of a block, by the reference. */
function referenceScore(codec: RqCodec, dim: number, metric: 'dot' | 'l2', code: Uint8Array, scale: number, q: Float32Array): number {
  const groups = fastScanGroups(codec.bits, dim);
  const block = new Uint8Array(fastScanBlockBytes(groups));
  writeLane(block, 0, nibblesOf(codec.bits, levelsOf(codec, code, dim), dim));
  const scales = new Float32Array(32);
  scales[0] = scale;
  const norms = new Float32Array(32);
  norms[0] = codec.normSquared(code, dim);
  let qNormSq = 0;
  for (const x of q) qNormSq += x * x;
  const { lut, delta, bias } = buildLut(codec.bits, q);
  const out = new Float32Array(32);
  referenceFastScan(metric, lut, groups, delta, bias, Math.fround(qNormSq), block, scales, norms, 1, out);
  return out[0]!;
}

test('fast-scan rows: a code written into a lane (the write kernel) is the layout writeLane() makes, leaves the other 31 lanes as they were, comes back byte for byte, decodes (the decode kernel) as the codec decodes it, bit for bit, alone or a page at a time, and moves between lanes (rq1, rq2, rq4; 32 to 512 dimensions)', () => {
  const next = rng(7);
  const mem = kernels().memory;
  for (const codec of RQ) {
    for (const dim of [32, 64, 96, 128, 512]) {
      const rows = new FastScanRows(codec, dim);
      const groups = fastScanGroups(codec.bits, dim);
      const blockBytes = fastScanBlockBytes(groups);
      const count = 70;
      const bytes = rows.bytesFor(count);
      const blocks = mem.alloc(bytes);
      const area = { codes: blocks, scales: mem.alloc(4 * count), norms: mem.alloc(4 * count), errs: mem.alloc(4 * count) };
      const out = mem.alloc(4 * count * dim);
      try {
        // Random bytes first: what a write leaves of the other lanes is then seen.
        const expected = Uint8Array.from({ length: bytes }, () => Math.floor(next() * 256));
        mem.u8().set(expected, blocks);
        const codes = Array.from({ length: count }, (_, i) => encoded(codec, dim, next, i % 7 === 0 ? 1e-3 : 1 + i));
        for (const [row, c] of codes.entries()) {
          // Rows alternate between codes in a JavaScript buffer and codes in linear memory.
          if (row % 2 === 0) rows.writeCode(area, row, c.code, 0, c.scale);
          else {
            const at = mem.alloc(c.code.length + 3);
            mem.u8().set(c.code, at + 3);
            rows.writeCode(area, row, mem.u8().subarray(at, at + 3 + c.code.length), 3, c.scale);
            mem.free(at, c.code.length + 3);
          }
          const block = expected.subarray(Math.floor(row / 32) * blockBytes, (Math.floor(row / 32) + 1) * blockBytes);
          writeLane(block, row % 32, nibblesOf(codec.bits, levelsOf(codec, c.code, dim), dim));
          assert.deepEqual(mem.u8().subarray(blocks, blocks + bytes), expected, `${codec.name} ${dim}-d: the blocks after writing row ${row}`);
          // The row's three floats: F as given, ‖r‖² and ‖e‖ as the code holds them.
          const f32 = mem.f32();
          assert.ok(Object.is(f32[(area.scales >> 2) + row], Math.fround(c.scale)), `${codec.name} ${dim}-d row ${row}: F`);
          assert.ok(Object.is(f32[(area.norms >> 2) + row], Math.fround(codec.normSquared(c.code, dim))), `${codec.name} ${dim}-d row ${row}: ‖r‖²`);
          assert.ok(Object.is(f32[(area.errs >> 2) + row], Math.fround(codec.residualError(c.code, dim))), `${codec.name} ${dim}-d row ${row}: ‖e‖`);
        }
        const back = new Uint8Array(codec.codeBytes(dim));
        const decoded = new Float32Array(dim);
        const want = new Float32Array(dim);
        rows.decodeRows(area, 0, count, out);
        for (const [row, c] of codes.entries()) {
          rows.readCode(mem.u8(), blocks, row, back);
          const planes = c.code.length - 8;
          assert.deepEqual(back.subarray(0, planes), c.code.subarray(0, planes), `${codec.name} ${dim}-d row ${row}`);
          codec.decode(c.code, c.scale, want);
          rows.decode(area, row, decoded);
          for (let d = 0; d < dim; d++) assert.ok(Object.is(decoded[d], want[d]), `${codec.name} ${dim}-d row ${row} dimension ${d} decoded alone: ${decoded[d]} against ${want[d]}`);
          const page = mem.f32().subarray((out >> 2) + row * dim, (out >> 2) + (row + 1) * dim);
          for (let d = 0; d < dim; d++) assert.ok(Object.is(page[d], want[d]), `${codec.name} ${dim}-d row ${row} dimension ${d} decoded with its page: ${page[d]} against ${want[d]}`);
        }
        // Rows 5..9 alone, at an offset: the kernel starts at any row.
        rows.decodeRows(area, 5, 5, out);
        for (let row = 5; row < 10; row++) {
          codec.decode(codes[row]!.code, codes[row]!.scale, want);
          assert.deepEqual(mem.f32().subarray((out >> 2) + (row - 5) * dim, (out >> 2) + (row - 4) * dim), want, `${codec.name} ${dim}-d row ${row} of a run from row 5`);
        }
        // A code that is not all there (a detached view of linear memory reads as empty) is refused, the blocks untouched.
        const before = mem.u8().slice(blocks, blocks + bytes);
        assert.throws(() => rows.writeCode(area, 0, codes[0]!.code.subarray(0, codes[0]!.code.length - 1), 0, 1), RangeError);
        assert.throws(() => rows.writeCode(area, 0, new Uint8Array(0), 0, 1), RangeError);
        assert.deepEqual(mem.u8().subarray(blocks, blocks + bytes), before);
        // Row 40 (block 1, a high lane) into row 3 (block 0, a low lane), and 5 into 33.
        rows.moveRow(mem.u8(), blocks, 40, blocks, 3);
        rows.moveRow(mem.u8(), blocks, 5, blocks, 33);
        for (let row = 0; row < count; row++) {
          const from = row === 3 ? 40 : row === 33 ? 5 : row;
          rows.readCode(mem.u8(), blocks, row, back);
          const planes = back.length - 8;
          assert.deepEqual(back.subarray(0, planes), codes[from]!.code.subarray(0, planes), `${codec.name} ${dim}-d row ${row} after the moves`);
        }
      } finally {
        mem.free(out, 4 * count * dim);
        for (const at of [area.scales, area.norms, area.errs]) mem.free(at, 4 * count);
        mem.free(blocks, bytes);
        rows.free();
      }
    }
  }
});

test('fast-scan pages: a scan scores each code as the fast-scan kernel does over its nibbles, bit for bit, and scoreSlots and scorePage give every vector the same score (rq1, rq2, rq4; dot and l2)', () => {
  const next = rng(11);
  for (const codec of RQ) {
    for (const dim of [32, 128]) {
      const store = new PageStore(codec, dim);
      const codes: { code: Uint8Array; scale: number }[] = [];
      try {
        // Pages of 1, 31, 32, 33 and 70 rows: partial blocks, one block, several.
        const sizes = [1, 31, 32, 33, 70];
        for (const [page, size] of sizes.entries()) {
          store.addPage();
          for (let r = 0; r < size; r++) {
            const c = encoded(codec, dim, next, 0.1 + next() * 3);
            store.add(codes.length, page, c.code, c.scale);
            codes.push(c);
          }
        }
        // Holes filled by the last row of their page.
        for (const slot of [0, 5, 40, 100]) store.remove(slot);
        const live = codes.map((_, slot) => slot).filter((slot) => store.has(slot));
        // Each row's ‖e‖, ‖r‖² and factor moved with its lane; one call reads them all, in the order asked.
        const asked = Int32Array.from(live).reverse();
        const terms = new Float64Array(3 * asked.length);
        store.rqTermsOf(asked, asked.length, terms);
        for (const [i, slot] of asked.entries()) {
          const { code, scale } = codes[slot]!;
          assert.deepEqual([...terms.subarray(3 * i, 3 * i + 3)], [codec.residualError(code, dim), codec.normSquared(code, dim), scale], `${codec.name} ${dim}-d slot ${slot}`);
          assert.deepEqual(store.codeAt(slot), codes[slot], `${codec.name} ${dim}-d slot ${slot} code`);
        }
        for (const metric of ['dot', 'l2'] as const) {
          const query: ScanQuery = { vector: Float32Array.from({ length: dim }, () => gaussian(next)), metric, int8Query: false };
          const top = new TopK(live.length);
          store.scan(query, [0, 1, 2, 3, 4], 5, top);
          const byScan = new Map(top.sorted().map(({ slot, score }) => [slot, score]));
          assert.equal(byScan.size, live.length);
          for (const slot of live) {
            const want = referenceScore(codec, dim, metric, codes[slot]!.code, codes[slot]!.scale, query.vector);
            assert.ok(Object.is(byScan.get(slot), want), `${codec.name} ${dim}-d ${metric} slot ${slot}: ${byScan.get(slot)} vs ${want}`);
          }
          const slots = Int32Array.from([...live].reverse());
          const gathered = new Float32Array(slots.length);
          store.scoreSlots(query, slots, slots.length, gathered);
          for (const [i, slot] of slots.entries()) assert.ok(Object.is(gathered[i], byScan.get(slot)), `${codec.name} ${metric} gathered slot ${slot}`);
          for (let page = 0; page < sizes.length; page++) {
            const inPage = store.slotsOf(page);
            const scores = new Float32Array(inPage.length);
            store.scorePage(query, page, scores);
            for (const [i, slot] of inPage.entries()) assert.ok(Object.is(scores[i], byScan.get(slot)), `${codec.name} ${metric} page ${page} slot ${slot}`);
          }
        }
      } finally {
        store.free();
      }
    }
  }
});

test('fast-scan pages: a scan\'s estimate is within F · tableError of F · ⟨ŷ, q⟩ for every code (rq1, rq2, rq4; dot and l2)', () => {
  const next = rng(13);
  for (const codec of RQ) {
    const dim = 256;
    const store = new PageStore(codec, dim);
    try {
      store.addPage();
      const codes = Array.from({ length: 200 }, (_, slot) => {
        const c = encoded(codec, dim, next);
        store.add(slot, 0, c.code, c.scale);
        return c;
      });
      for (const metric of ['dot', 'l2'] as const) {
        for (let trial = 0; trial < 5; trial++) {
          // Queries far from Gaussian too: one large coordinate widens every table's step.
          const vector = Float32Array.from({ length: dim }, (_, i) => gaussian(next) * (trial === 4 && i === 7 ? 40 : 1));
          const query: ScanQuery = { vector, metric, int8Query: false };
          const tableError = store.tableError(query);
          assert.ok(tableError > 0, `${codec.name}: ${tableError}`);
          const slots = Int32Array.from(codes.keys());
          const scores = new Float32Array(slots.length);
          store.scoreSlots(query, slots, slots.length, scores);
          let qNormSq = 0;
          for (const x of vector) qNormSq += x * x;
          for (const [i, c] of codes.entries()) {
            const F = c.scale;
            const exact = F * exactInner(codec, c.code, vector);
            // What the score says of F · ⟨ŷ, q⟩ (l2: −(‖q‖² + ‖r‖² − 2p)).
            const estimate = metric === 'dot' ? scores[i]! : (scores[i]! + qNormSq + codec.normSquared(c.code, dim)) / 2;
            const slack = 1e-5 * (Math.abs(exact) + qNormSq + codec.normSquared(c.code, dim));
            assert.ok(Math.abs(estimate - exact) <= F * tableError + slack, `${codec.name} ${metric} ${i}`);
          }
        }
      }
    } finally {
      store.free();
    }
  }
});

test('fast-scan tables: the table brings every code\'s estimate within its maxError of ⟨ŷ, q⟩, and lutErrorBound is never below it (queries from 1e-30 to 1e30, zero, one-hot)', () => {
  const next = rng(17);
  for (const codec of RQ) {
    for (const dim of [32, 128, 512]) {
      const shapes: Float32Array[] = [
        new Float32Array(dim),
        Float32Array.from({ length: dim }, (_, i) => (i === 3 ? 1 : 0)),
        ...[1e-30, 1e-6, 1, 1e6, 1e30].map((s) => Float32Array.from({ length: dim }, () => gaussian(next) * s)),
      ];
      for (const q of shapes) {
        const table = buildLut(codec.bits, q);
        assert.ok(lutErrorBound(codec.bits, q) >= table.maxError, `${codec.name} ${dim}-d: ${lutErrorBound(codec.bits, q)} < ${table.maxError}`);
        const groups = fastScanGroups(codec.bits, dim);
        for (let c = 0; c < 40; c++) {
          const { code } = encoded(codec, dim, next);
          const nibbles = nibblesOf(codec.bits, levelsOf(codec, code, dim), dim);
          let sum = 0;
          for (let g = 0; g < groups; g++) sum += table.lut[g * 16 + nibbles[g]!]!;
          const exact = exactInner(codec, code, q);
          const scale = Math.abs(exact) + 1e-300;
          assert.ok(Math.abs(table.delta * sum + table.bias - exact) <= table.maxError * (1 + 1e-9) + 1e-12 * scale, `${codec.name} ${dim}-d`);
        }
      }
    }
  }
});

test('fast-scan pages: a paged rq store (rotated to 64 dimensions) scanning every page reads some candidates and leaves others to the bound, and answers the exact top k (rq1, rq2, rq4; dot, cosine, l2)', async () => {
  const dim = 48;
  const vectors = clustered(160, dim, 41, 6);
  const items = vectors.map((vector, i) => ({ id: `v${i}`, vector }));
  const queries = clustered(20, dim, 42, 6);
  for (const codec of ['rq1', 'rq2', 'rq4'] as const) {
    for (const metric of ['dot', 'cosine', 'l2'] as const) {
      const store = await MemStore.open(tempDir(), { dim, metric, codec, trainSize: 40, oversample: 16, pages: { from: 64, maxPage: 24 }, durability: 'none', cache: false });
      try {
        await store.add(items);
        assert.ok(store.stats().pages > 1, `${codec} ${metric}: paged`);
        for (const q of queries) assert.deepEqual((await store.search(q, { k: 10, exact: true })).map((h) => h.id), bruteForce(metric, q, items, 10), `${codec} ${metric}`);
        const r = store.stats().rescoring;
        assert.ok(r.skipped > 0, `${codec} ${metric}: none left unread (${JSON.stringify(r)})`);
      } finally {
        await store.close();
      }
    }
  }
});

test('fast-scan pages: a scan that keeps every page\'s scores for a pool makes room for whole blocks of 32 (the kernel writes them), so nothing past its area is written (guarded memory)', () => {
  const next = rng(23);
  const dim = 32;
  const codec = rq2Codec;
  const store = new PageStore(codec, dim);
  try {
    // Ten pages of 100 rows and one of 24: 1,024 rows rounded to 4 (a room with no slack), 1,184
    // once each page is rounded to its blocks. Scanned in that order, the 24-row page comes last, and
    // a kept area sized by rows would end where its kernel's block of 32 does not.
    const sizes = [...Array.from({ length: 10 }, () => 100), 24];
    let slot = 0;
    for (const [page, size] of sizes.entries()) {
      store.addPage();
      for (let r = 0; r < size; r++) {
        const c = encoded(codec, dim, next, 0.1 + next() * 3);
        store.add(slot++, page, c.code, c.scale);
      }
    }
    const query: ScanQuery = { vector: Float32Array.from({ length: dim }, () => gaussian(next)), metric: 'dot', int8Query: false };
    const top = new TopK(20);
    const pool = new ScorePool();
    pool.reset(Infinity, 2048);
    const pages = sizes.map((_, page) => page);
    store.scan(query, pages, pages.length, top, undefined, pool);
    assert.equal(top.size, 20);
    kernels().memory.checkGuards();
  } finally {
    store.free();
  }
  kernels().memory.checkGuards();
});

test('fast-scan codes: scoreSlots gives, bit for bit, the scan\'s score of each code, in blocks and in pages alike (rq1, rq2, rq4; dot and l2)', () => {
  const next = rng(19);
  for (const codec of RQ) {
    for (const dim of [32, 256]) {
      const pages = new PageStore(codec, dim);
      const blocks = new CodeBlocks(codec, dim, 64);
      try {
        pages.addPage();
        const n = 150;
        for (let slot = 0; slot < n; slot++) {
          // Codes of every size: a factor from 1e-3 to 1e3.
          const c = encoded(codec, dim, next, 10 ** (6 * next() - 3));
          pages.add(slot, 0, c.code, c.scale);
          blocks.putCode(`v${slot}`, c.code, c.scale);
        }
        const slots = Int32Array.from({ length: n }, (_, i) => (i * 37) % n);
        for (const metric of ['dot', 'l2'] as const) {
          for (const scale of [1e-3, 1, 1e3]) {
            const query: ScanQuery = { vector: Float32Array.from({ length: dim }, () => gaussian(next) * scale), metric, int8Query: false };
            const top = new TopK(n);
            blocks.scan(query, top);
            const byScan = new Map(top.sorted().map(({ slot, score }) => [slot, score]));
            const scanned = new Float32Array(n);
            blocks.scoreSlots(query, slots, n, scanned);
            const paged = scoresOf(pages, query, slots);
            for (let i = 0; i < n; i++) {
              assert.ok(Object.is(scanned[i], byScan.get(slots[i]!)), `${codec.name} ${dim}-d blocks ${metric} query x${scale}: the gather is the scan's score`);
              assert.ok(Object.is(paged[i], scanned[i]), `${codec.name} ${dim}-d pages ${metric} query x${scale} slot ${slots[i]}: ${paged[i]} against ${scanned[i]}`);
            }
          }
        }
      } finally {
        pages.free();
        blocks.free();
      }
    }
  }
});
