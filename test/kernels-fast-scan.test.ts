import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  FAST_SCAN_LANES,
  FAST_SCAN_MAX_GROUPS,
  RQ_BITS,
  RQ_METRICS,
  kernels,
  referenceFastScan,
  type RqBits,
  type RqMetric,
} from '../src/kernels/index.js';
import { assemble } from '../src/kernels/build.js';
import { DEFAULT_TUNING, generateWat } from '../src/kernels/wat.js';
import { instantiateKernels, type Kernels } from '../src/kernels/wasm.js';
import { rng } from '../src/random.js';
import { fastScanBlockBytes, fastScanGroups, nibblesOf, readLane, writeLane } from '../src/scan/fast-scan-layout.js';
import { buildLut, tableParams, writeTable } from '../src/scan/fast-scan-lut.js';
import { FastScanQuery } from '../src/scan/fast-scan-query.js';
import { rq2Codec } from '../src/codec/rq.js';

/** Copies the operands into the kernels' linear memory (the shared one by default), runs `fn` on their addresses, frees them. */
function inWasm<T>(arrays: readonly ArrayBufferView[], fn: (...ptrs: number[]) => T, k: Kernels = kernels()): T {
  const mem = k.memory;
  const ptrs = arrays.map((a) => {
    const ptr = mem.alloc(Math.max(1, a.byteLength));
    mem.u8().set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), ptr);
    return ptr;
  });
  try {
    return fn(...ptrs);
  } finally {
    ptrs.forEach((ptr, k) => mem.free(ptr, Math.max(1, arrays[k]!.byteLength)));
  }
}

function seedOf(text: string): number {
  return [...text].reduce((h, ch) => Math.imul(h, 31) + ch.charCodeAt(0), 17);
}

function gaussian(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

function assertSame(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, what);
  for (let j = 0; j < expected.length; j++) {
    assert.ok(Object.is(actual[j], expected[j]), `${what}, lane ${j}: wasm ${actual[j]} vs reference ${expected[j]}`);
  }
}

/**
 * Levels of one code. Codes cycle through all-zero, all-top and alternating ones so that lanes see
 * the table's extremes, then uniform ones.
 */
function randomLevels(bits: RqBits, dim: number, kind: number, rand: () => number): Uint8Array {
  const top = (1 << bits) - 1;
  return Uint8Array.from({ length: dim }, (_, i) => {
    switch (kind % 5) {
      case 0:
        return 0;
      case 1:
        return top;
      case 2:
        return i % 2 === 0 ? top : 0;
      default:
        return Math.floor(rand() * (top + 1));
    }
  });
}

/** Factors F: zero (both signs), negative, huge enough to overflow to infinity, subnormal, ordinary. */
const SPECIAL_SCALES = [0, -0, -1.5, 3e38, -3e38, 1e-42, 1];

interface FastScanCase {
  readonly groups: number;
  readonly nBlocks: number;
  /** The levels of each code, in lane order over the blocks (n codes; the last block may be partial). */
  readonly levels: readonly Uint8Array[];
  readonly blocks: Uint8Array;
  readonly scales: Float32Array;
  readonly norms: Float32Array;
}

function randomCodes(bits: RqBits, dim: number, n: number, rand: () => number): FastScanCase {
  const groups = fastScanGroups(bits, dim);
  const nBlocks = Math.ceil(n / FAST_SCAN_LANES);
  const blockBytes = fastScanBlockBytes(groups);
  const blocks = new Uint8Array(nBlocks * blockBytes);
  const levels = Array.from({ length: n }, (_, j) => randomLevels(bits, dim, j, rand));
  levels.forEach((u, j) => {
    const b = Math.floor(j / FAST_SCAN_LANES);
    writeLane(blocks.subarray(b * blockBytes, (b + 1) * blockBytes), j % FAST_SCAN_LANES, nibblesOf(bits, u, dim));
  });
  const lanes = nBlocks * FAST_SCAN_LANES;
  const scales = Float32Array.from({ length: lanes }, (_, j) =>
    j % 2 === 0 ? SPECIAL_SCALES[(j >> 1) % SPECIAL_SCALES.length]! : (rand() - 0.3) * 10 ** (rand() * 6 - 3),
  );
  const norms = Float32Array.from({ length: lanes }, (_, j) => (j % 7 === 0 ? 0 : rand() * 4));
  return { groups, nBlocks, levels, blocks, scales, norms };
}

/** A table of random bytes with runs of 0 and 255, and random float constants. */
function randomTable(groups: number, rand: () => number): { lut: Uint8Array; delta: number; bias: number; qNormSq: number } {
  const lut = Uint8Array.from({ length: groups * 16 }, (_, i) => {
    const kind = Math.floor(i / 16) % 4;
    if (kind === 0) return 255;
    if (kind === 1) return rand() < 0.5 ? 0 : 255;
    return Math.floor(rand() * 256);
  });
  return { lut, delta: Math.fround(rand() * 0.1), bias: Math.fround((rand() - 0.5) * 50), qNormSq: Math.fround(rand() * 3) };
}

type Table = ReturnType<typeof randomTable>;

function wasmFastScan(metric: RqMetric, table: Table, codes: FastScanCase, k: Kernels = kernels()): Float32Array {
  const lanes = codes.nBlocks * FAST_SCAN_LANES;
  return inWasm([table.lut, codes.blocks, codes.scales, codes.norms, new Float32Array(lanes)], (lPtr, bPtr, sPtr, nPtr, oPtr) => {
    k.fastScan(metric, lPtr!, codes.groups, table.delta, table.bias, table.qNormSq, bPtr!, sPtr!, nPtr!, codes.nBlocks, oPtr!);
    return k.memory.f32().slice(oPtr! >> 2, (oPtr! >> 2) + lanes);
  }, k);
}

function referenceScores(metric: RqMetric, table: Table, codes: FastScanCase): Float32Array {
  const out = new Float32Array(codes.nBlocks * FAST_SCAN_LANES);
  referenceFastScan(metric, table.lut, codes.groups, table.delta, table.bias, table.qNormSq, codes.blocks, codes.scales, codes.norms, codes.nBlocks, out);
  return out;
}

/** Dimensions measured: 1024 gives G = 1024 for 4-bit codes, so a block's sums cross several u16 segments. */
const DIMS = [32, 128, 512, 1024];

/** Codes per call: one partial block, whole blocks, and 2 to 5 blocks with a partial last one. */
const COUNTS = [1, 32, 33, 64, 95, 150];

describe('fast-scan kernels match referenceFastScan bit for bit', () => {
  for (const bits of RQ_BITS) {
    for (const metric of RQ_METRICS) {
      it(`rq${bits} ${metric}`, () => {
        const rand = rng(seedOf(`fast scan ${bits} ${metric}`));
        for (const dim of DIMS) {
          for (const n of COUNTS) {
            const codes = randomCodes(bits, dim, n, rand);
            const table = randomTable(codes.groups, rand);
            assertSame(wasmFastScan(metric, table, codes), referenceScores(metric, table, codes), `dim ${dim} n ${n}`);
          }
        }
      });
    }
  }

  /**
   * Any G, not only the multiples of 8 that codes give: odd G and G just past a segment run the
   * single-group loop after the unrolled one, for every unroll the tuning allows.
   */
  it('any number of groups, for every unroll', async () => {
    const rand = rng(12);
    for (const unroll of [1, 2, 4, 8]) {
      const wasm = await assemble(generateWat({ ...DEFAULT_TUNING, fastScanUnroll: unroll }));
      const k = instantiateKernels(new WebAssembly.Module(Uint8Array.from(wasm)));
      for (const groups of [1, 2, 3, 7, 255, 257, 259, 515]) {
        for (const metric of RQ_METRICS) {
          const nBlocks = 1 + Math.floor(rand() * 3);
          const codes: FastScanCase = {
            groups,
            nBlocks,
            levels: [],
            blocks: Uint8Array.from({ length: nBlocks * groups * 16 }, () => Math.floor(rand() * 256)),
            scales: Float32Array.from({ length: 32 * nBlocks }, () => rand() - 0.5),
            norms: Float32Array.from({ length: 32 * nBlocks }, () => rand()),
          };
          const table = randomTable(groups, rand);
          assertSame(wasmFastScan(metric, table, codes, k), referenceScores(metric, table, codes), `unroll ${unroll} G ${groups} ${metric}`);
        }
      }
    }
  });

  it('the unchecked export is the kernel fastScan calls', () => {
    const k = kernels();
    const rand = rng(11);
    const codes = randomCodes(2, 128, 40, rand);
    const table = randomTable(codes.groups, rand);
    const expected = wasmFastScan('l2', table, codes);
    const lanes = codes.nBlocks * FAST_SCAN_LANES;
    const actual = inWasm([table.lut, codes.blocks, codes.scales, codes.norms, new Float32Array(lanes)], (lPtr, bPtr, sPtr, nPtr, oPtr) => {
      k.fastScanFunction('l2')(lPtr!, codes.groups, table.delta, table.bias, table.qNormSq, bPtr!, sPtr!, nPtr!, codes.nBlocks, oPtr!);
      return k.memory.f32().slice(oPtr! >> 2, (oPtr! >> 2) + lanes);
    });
    assertSame(actual, expected, 'fastScanFunction');
  });
});

describe('fast-scan sums stay exact at their limits', () => {
  /**
   * Every table entry 255: each group adds the most a u16 lane can take, so a segment of 258 groups
   * would wrap. With delta 1, bias 0 and F 1 the dot score of every lane is f32(255 · G).
   */
  for (const groups of [256, 257, 258, 513, 1024, 70_000]) {
    it(`every entry 255, G = ${groups}`, () => {
      const rand = rng(groups);
      const blocks = Uint8Array.from({ length: 2 * groups * 16 }, () => Math.floor(rand() * 256));
      const codes: FastScanCase = {
        groups,
        nBlocks: 2,
        levels: [],
        blocks,
        scales: new Float32Array(64).fill(1),
        norms: new Float32Array(64),
      };
      const table = { lut: new Uint8Array(groups * 16).fill(255), delta: 1, bias: 0, qNormSq: 0 };
      const actual = wasmFastScan('dot', table, codes);
      assert.ok(actual.every((score) => score === Math.fround(255 * groups)), `G = ${groups}: ${actual[0]} vs ${255 * groups}`);
    });
  }

  it('a lane sum of 255 · FAST_SCAN_MAX_GROUPS fits in i32', () => {
    assert.ok(255 * FAST_SCAN_MAX_GROUPS < 2 ** 31);
  });
});

describe('fast-scan gather kernels score each vector exactly as the block kernels do', () => {
  const k = kernels();
  for (const bits of RQ_BITS) {
    for (const metric of RQ_METRICS) {
      it(`rq${bits} ${metric}`, () => {
        const rand = rng(seedOf(`gather fast scan ${bits} ${metric}`));
        for (const dim of DIMS) {
          const codes = randomCodes(bits, dim, 150, rand);
          const table = randomTable(codes.groups, rand);
          const expected = wasmFastScan(metric, table, codes);
          const lanes = codes.nBlocks * FAST_SCAN_LANES;
          // Every lane (the unused ones of the last block too) in a shuffled order, then random repeats.
          const order = Array.from({ length: lanes }, (_, j) => j);
          for (let j = lanes - 1; j > 0; j--) {
            const r = Math.floor(rand() * (j + 1));
            [order[j], order[r]] = [order[r]!, order[j]!];
          }
          order.push(...Array.from({ length: 37 }, () => Math.floor(rand() * lanes)));
          inWasm([table.lut, codes.blocks, codes.scales, codes.norms], (lPtr, bPtr, sPtr, nPtr) => {
            const blockBytes = fastScanBlockBytes(codes.groups);
            const quads = Int32Array.from(
              order.flatMap((j) => {
                const b = Math.floor(j / FAST_SCAN_LANES);
                return [bPtr! + b * blockBytes, j % FAST_SCAN_LANES, sPtr! + 4 * j, nPtr! + 4 * j];
              }),
            );
            inWasm([quads, new Float32Array(order.length)], (tPtr, oPtr) => {
              k.gatherFastScanFunction(metric)(lPtr!, codes.groups, table.delta, table.bias, table.qNormSq, tPtr!, order.length, oPtr!);
              const actual = k.memory.f32().slice(oPtr! >> 2, (oPtr! >> 2) + order.length);
              order.forEach((j, at) =>
                assert.ok(Object.is(actual[at], expected[j]), `dim ${dim} lane ${j} at ${at}: ${actual[at]} vs ${expected[j]}`),
              );
            });
          });
        }
      });
    }
  }

  it('n = 0 writes nothing', () => {
    const out = inWasm([new Float32Array([7])], (oPtr) => {
      k.gatherFastScanFunction('dot')(16, 1, 1, 0, 0, 16, 0, oPtr!);
      return k.memory.f32()[oPtr! >> 2];
    });
    assert.equal(out, 7);
  });
});

describe('fast-scan layout', () => {
  it('nibblesOf packs 4 / bits levels per nibble, the first in the lowest bits', () => {
    const rand = rng(3);
    for (const bits of RQ_BITS) {
      const dim = 64;
      const u = randomLevels(bits, dim, 4, rand);
      const nibbles = nibblesOf(bits, u, dim);
      assert.equal(nibbles.length, (dim * bits) / 4);
      for (let g = 0; g < nibbles.length; g++) {
        const expected =
          bits === 1
            ? u[4 * g]! | (u[4 * g + 1]! << 1) | (u[4 * g + 2]! << 2) | (u[4 * g + 3]! << 3)
            : bits === 2
              ? u[2 * g]! | (u[2 * g + 1]! << 2)
              : u[g]!;
        assert.equal(nibbles[g], expected, `rq${bits} nibble ${g}`);
      }
    }
  });

  it('nibblesOf rejects dimensions that are not a positive multiple of 32, and levels too wide', () => {
    assert.throws(() => nibblesOf(1, new Uint8Array(48), 48));
    assert.throws(() => nibblesOf(1, new Uint8Array(0), 0));
    assert.throws(() => nibblesOf(2, new Uint8Array(16), 32));
    assert.throws(() => nibblesOf(2, new Uint8Array(32).fill(4), 32));
  });

  it('writeLane and readLane round-trip every lane, and a write leaves the other lanes alone', () => {
    const rand = rng(4);
    for (const groups of [1, 8, 300]) {
      const block = new Uint8Array(fastScanBlockBytes(groups));
      const lanes = Array.from({ length: FAST_SCAN_LANES }, () => Uint8Array.from({ length: groups }, () => Math.floor(rand() * 16)));
      const order = Array.from({ length: FAST_SCAN_LANES }, (_, j) => j).sort(() => rand() - 0.5);
      for (const lane of order) writeLane(block, lane, lanes[lane]!);
      lanes.forEach((nibbles, lane) => assert.deepEqual(readLane(block, lane, groups), nibbles, `lane ${lane}`));
      // Byte g·16 + j: lane j in the low nibble, lane j + 16 in the high one.
      assert.equal(block[16 * (groups - 1) + 5], lanes[5]![groups - 1]! | (lanes[21]![groups - 1]! << 4));
      const replacement = Uint8Array.from({ length: groups }, () => Math.floor(rand() * 16));
      writeLane(block, 17, replacement);
      lanes[17] = replacement;
      lanes.forEach((nibbles, lane) => assert.deepEqual(readLane(block, lane, groups), nibbles, `after rewrite, lane ${lane}`));
    }
  });

  it('writeLane and readLane reject lanes outside 0..31 and blocks too short', () => {
    const block = new Uint8Array(32);
    assert.throws(() => writeLane(block, 32, new Uint8Array(2)));
    assert.throws(() => writeLane(block, -1, new Uint8Array(2)));
    assert.throws(() => readLane(block, 1.5, 2));
    assert.throws(() => writeLane(block, 0, new Uint8Array(3)));
    assert.throws(() => readLane(block, 0, 3));
  });
});

describe('buildLut', () => {
  /** ⟨ŷ, q⟩ in float64, ŷ_i = u_i − m. */
  function exactInner(bits: RqBits, u: Uint8Array, q: Float32Array): { value: number; magnitude: number } {
    const m = ((1 << bits) - 1) / 2;
    let value = 0;
    let magnitude = 0;
    for (let i = 0; i < q.length; i++) {
      value += (u[i]! - m) * q[i]!;
      magnitude += Math.abs((u[i]! - m) * q[i]!);
    }
    return { value, magnitude };
  }

  for (const bits of RQ_BITS) {
    it(`rq${bits}: delta · S + bias is within maxError of ⟨ŷ, q⟩ for every code`, () => {
      const rand = rng(seedOf(`lut ${bits}`));
      for (const dim of DIMS) {
        const q = Float32Array.from({ length: dim }, () => gaussian(rand) * (rand() < 0.1 ? 10 : 1));
        const { lut, delta, bias, maxError } = buildLut(bits, q);
        const groups = fastScanGroups(bits, dim);
        assert.equal(lut.length, groups * 16);
        assert.equal(delta, Math.fround(delta));
        assert.equal(bias, Math.fround(bias));
        assert.ok(maxError >= (groups * delta) / 2 && maxError <= (groups * delta) / 2 + Math.abs(bias) * 2 ** -24);
        // The widest group spans the whole byte range; every group's least entry is 0.
        assert.ok(lut.includes(255));
        for (let g = 0; g < groups; g++) assert.equal(Math.min(...lut.subarray(g * 16, g * 16 + 16)), 0, `group ${g}`);
        const codes = randomCodes(bits, dim, 64, rand);
        for (const u of codes.levels) {
          const nibbles = nibblesOf(bits, u, dim);
          let sum = 0;
          for (let g = 0; g < groups; g++) sum += lut[g * 16 + nibbles[g]!]!;
          const { value, magnitude } = exactInner(bits, u, q);
          const error = Math.abs(delta * sum + bias - value);
          assert.ok(error <= maxError + magnitude * 2 ** -40, `dim ${dim}: error ${error} > ${maxError}`);
        }
      }
    });
  }

  it('the kernel scores the table as delta · S + bias times F, within maxError and float32 rounding', () => {
    const rand = rng(8);
    const bits: RqBits = 1;
    const dim = 512;
    const q = Float32Array.from({ length: dim }, () => gaussian(rand));
    const table = { ...buildLut(bits, q), qNormSq: 0 };
    const codes = { ...randomCodes(bits, dim, 64, rand), scales: new Float32Array(64).fill(1) };
    const scores = wasmFastScan('dot', table, codes);
    codes.levels.forEach((u, j) => {
      const { value, magnitude } = exactInner(bits, u, q);
      const rounding = 3 * 2 ** -24 * (Math.abs(value) + table.maxError + Math.abs(table.bias)) + magnitude * 2 ** -40;
      assert.ok(Math.abs(scores[j]! - value) <= table.maxError + rounding, `code ${j}: ${scores[j]} vs ${value}`);
    });
  });

  it('each entry is its group value rounded on the grid delta · n + min_g, and bias is Σ min_g', () => {
    const rand = rng(9);
    for (const bits of RQ_BITS) {
      const dim = 128;
      const q = Float32Array.from({ length: dim }, () => gaussian(rand));
      const { lut, delta, bias } = buildLut(bits, q);
      const m = ((1 << bits) - 1) / 2;
      const perNibble = 4 / bits;
      let sumOfMins = 0;
      for (let g = 0; g < (dim * bits) / 4; g++) {
        const values = Array.from({ length: 16 }, (_, n) => {
          let value = 0;
          for (let k = 0; k < perNibble; k++) value += (((n >> (k * bits)) & ((1 << bits) - 1)) - m) * q[g * perNibble + k]!;
          return value;
        });
        const min = Math.min(...values);
        sumOfMins += min;
        values.forEach((value, n) => {
          const error = Math.abs(delta * lut[g * 16 + n]! + min - value);
          assert.ok(error <= delta / 2 + Math.abs(value) * 2 ** -40, `rq${bits} group ${g} entry ${n}: ${error} > ${delta / 2}`);
        });
      }
      assert.ok(Math.abs(bias - sumOfMins) <= Math.abs(sumOfMins) * 2 ** -24 + 1e-12, `rq${bits}: bias ${bias} vs ${sumOfMins}`);
    }
  });

  it('a zero query gives a zero table, step and bias', () => {
    const { lut, delta, bias, maxError } = buildLut(2, new Float32Array(64));
    assert.ok(lut.every((b) => b === 0));
    assert.equal(delta, 0);
    assert.equal(bias, 0);
    assert.equal(maxError, 0);
  });
});

describe('fastScan checks the shape of a call', () => {
  const k = kernels();
  const call = (groups: number, nBlocks: number, metric: RqMetric = 'dot'): void =>
    k.fastScan(metric, 16, groups, 1, 0, 0, 16, 16, 16, nBlocks, 16);

  it('rejects G outside 1..FAST_SCAN_MAX_GROUPS or not an integer', () => {
    assert.throws(() => call(0, 0), RangeError);
    assert.throws(() => call(-1, 0), RangeError);
    assert.throws(() => call(1.5, 0), RangeError);
    assert.throws(() => call(Number.NaN, 0), RangeError);
    assert.throws(() => call(FAST_SCAN_MAX_GROUPS + 1, 0), RangeError);
  });

  it('rejects nBlocks that is negative or not an integer, or blocks past a 32-bit address space', () => {
    assert.throws(() => call(1, -1), RangeError);
    assert.throws(() => call(1, 2.5), RangeError);
    assert.throws(() => call(1, Number.POSITIVE_INFINITY), RangeError);
    assert.throws(() => call(FAST_SCAN_MAX_GROUPS, 33), RangeError);
    assert.throws(() => call(1, 2 ** 25 + 1), RangeError);
  });

  it('rejects metrics it has no kernel for', () => {
    assert.throws(() => call(1, 0, 'cosine' as RqMetric), RangeError);
    assert.throws(() => k.fastScanFunction('cosine' as RqMetric), RangeError);
    assert.throws(() => k.gatherFastScanFunction('cosine' as RqMetric), RangeError);
  });

  it('accepts the limits themselves, and nBlocks = 0 writes nothing', () => {
    const out = inWasm([new Float32Array([7])], (oPtr) => {
      k.fastScan('l2', 16, FAST_SCAN_MAX_GROUPS, 1, 0, 0, 16, 16, 16, 0, oPtr!);
      return k.memory.f32()[oPtr! >> 2];
    });
    assert.equal(out, 7);
  });
});

describe('the table kernel builds a query\'s table as writeTable does, bit for bit', () => {
  it('every bit width, 32 to 1,024 dimensions, queries Gaussian, one-hot, zero, with ties, ±0, huge and tiny', () => {
    const rand = rng(seedOf('tables'));
    const k = kernels();
    for (const bits of RQ_BITS) {
      for (const dim of [32, 64, 96, 128, 512, 1024]) {
        const groups = fastScanGroups(bits, dim);
        const shapes: Float32Array[] = [
          new Float32Array(dim),
          Float32Array.from({ length: dim }, (_, i) => (i % 2 === 0 ? -0 : 0)),
          Float32Array.from({ length: dim }, (_, i) => (i === 5 ? 1 : 0)),
          // Equal coordinates: every group's values tie.
          new Float32Array(dim).fill(0.25),
          Float32Array.from({ length: dim }, () => Math.round(gaussian(rand) * 3) / 4),
          ...[1e-38, 1e-20, 1, 1e20, 5e37].map((s) => Float32Array.from({ length: dim }, () => gaussian(rand) * s)),
        ];
        for (const [si, q] of shapes.entries()) {
          const table = new Uint8Array(groups * 16);
          const want = writeTable(bits, q, table);
          const mem = k.memory;
          const ptrs = [mem.alloc(4 * dim), mem.alloc(16 * groups), mem.alloc(16)] as const;
          try {
            const [qp, tp, out] = ptrs;
            mem.f32().set(q, qp >> 2);
            k.fastScanTableFunction(bits)(qp, groups, tp, out);
            const r = mem.f64().subarray(out >> 3, (out >> 3) + 2);
            const got = tableParams(groups, r[0]!, r[1]!);
            const where = `${bits}-bit ${dim}-d shape ${si}`;
            assert.deepEqual(got, want, where);
            assert.deepEqual(mem.u8().slice(tp, tp + 16 * groups), table, `${where}: table`);
          } finally {
            const sizes = [4 * dim, 16 * groups, 16];
            ptrs.forEach((p, i) => mem.free(p, sizes[i]!));
          }
        }
      }
    }
  });

  /**
   * The kernel takes groups two at a time, one in each f64x2 lane, and an odd last group alone. Codes
   * always have an even G (a multiple of 8), so an odd G is checked against the same query padded
   * with zeros to a whole step: a zero group spans nothing and adds +0 to Σ min_g, so the padded
   * query's tables begin with the odd G's, and its steps are the same.
   */
  it('an odd number of groups: the last one alone gives what the pair steps give it', () => {
    const rand = rng(seedOf('tables odd'));
    const k = kernels();
    const mem = k.memory;
    for (const bits of RQ_BITS) {
      const perNibble = 4 / bits;
      for (const groups of [1, 3, 5, 7, 9, 31]) {
        const padded = fastScanGroups(bits, Math.ceil((groups * perNibble) / 32) * 32);
        const q = new Float32Array(padded * perNibble);
        for (let i = 0; i < groups * perNibble; i++) q[i] = gaussian(rand);
        const run = (g: number): { table: Uint8Array; params: number[] } => {
          const ptrs = [mem.alloc(4 * q.length), mem.alloc(16 * padded), mem.alloc(16)] as const;
          try {
            const [qp, tp, out] = ptrs;
            mem.f32().set(q, qp >> 2);
            k.fastScanTableFunction(bits)(qp, g, tp, out);
            return { table: mem.u8().slice(tp, tp + 16 * g), params: Array.from(mem.f64().subarray(out >> 3, (out >> 3) + 2)) };
          } finally {
            const sizes = [4 * q.length, 16 * padded, 16];
            ptrs.forEach((p, i) => mem.free(p, sizes[i]!));
          }
        };
        const odd = run(groups);
        const whole = run(padded);
        const where = `${bits}-bit, G = ${groups} of ${padded}`;
        assert.deepEqual(odd.params, whole.params, `${where}: delta, Σ min_g`);
        assert.deepEqual(odd.table, whole.table.subarray(0, 16 * groups), `${where}: table`);
        assert.ok(odd.table.some((b) => b !== 0), `${where}: a table with entries`);
      }
    }
  });
});

describe('FastScanQuery.load', () => {
  it('builds the table again for a query whose last component alone differs, and compares a view at an offset by its own values', () => {
    const dim = 128;
    const query = new FastScanQuery(rq2Codec, dim);
    try {
      const next = rng(91);
      const v = Float32Array.from({ length: dim }, () => next() - 0.5);
      query.load(v);
      const first = query.tableError();
      query.load(Float32Array.from(v));
      assert.equal(query.tableError(), first, 'the same bits: the same table');
      // The largest component, last: the table's step (and so its rounding bound) grows with it.
      const tail = Float32Array.from(v);
      tail[dim - 1] = 40;
      query.load(tail);
      const wider = query.tableError();
      assert.ok(wider > first, `the last component counted: ${wider} against ${first}`);
      // A view four floats into a buffer whose first dim floats are v: its own values are compared.
      query.load(v);
      const backing = new Float32Array(dim + 4);
      backing.set(v);
      backing[dim + 3] = 40;
      query.load(backing.subarray(4));
      assert.ok(query.tableError() > first, 'a view at an offset compares its own values, not its buffer\'s first ones');
    } finally {
      query.free();
    }
  });
});
