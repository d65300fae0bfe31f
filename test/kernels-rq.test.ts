import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  RQ_BITS,
  RQ_MAX_PLANE_BYTES,
  RQ_MAX_QUERY_BITS,
  RQ_METRICS,
  kernels,
  referenceScanRq,
  type RqBits,
  type RqMetric,
  type RqQueryParams,
} from '../src/kernels/index.js';
import { rng } from '../src/random.js';

/** Copies the operands into the shared linear memory, runs `fn` on their addresses, frees them. */
function inWasm<T>(arrays: readonly ArrayBufferView[], fn: (...ptrs: number[]) => T): T {
  const mem = kernels().memory;
  const ptrs = arrays.map((a) => {
    const ptr = mem.alloc(a.byteLength);
    mem.u8().set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), ptr);
    return ptr;
  });
  try {
    return fn(...ptrs);
  } finally {
    ptrs.forEach((ptr, k) => mem.free(ptr, arrays[k]!.byteLength));
  }
}

function seedOf(text: string): number {
  return [...text].reduce((h, ch) => Math.imul(h, 31) + ch.charCodeAt(0), 17);
}

/**
 * A byte of a bit plane. Planes cycle through densities (empty, full, sparse, dense, uniform) so
 * that lanes see both extremes: a full plane against a full query plane is the most any i8 lane
 * can collect.
 */
function planeByte(kind: number, rand: () => number): number {
  switch (kind % 5) {
    case 0:
      return 0;
    case 1:
      return 0xff;
    case 2:
      return rand() < 0.2 ? 1 << Math.floor(rand() * 8) : 0;
    case 3:
      return 0xff ^ (rand() < 0.2 ? 1 << Math.floor(rand() * 8) : 0);
    default:
      return Math.floor(rand() * 256);
  }
}

/** Factors F_j: zero (both signs), negative, huge enough to overflow to infinity, subnormal, ordinary. */
const SPECIAL_SCALES = [0, -0, -1.5, 3e38, -3e38, 1e-42, 1];

interface RqCase {
  readonly query: Uint8Array;
  readonly params: RqQueryParams;
  readonly codes: Uint8Array;
  readonly scales: Float32Array;
}

function randomCase(bits: RqBits, qBits: number, planeBytes: number, n: number, stride: number, rand: () => number): RqCase {
  const query = new Uint8Array(qBits * planeBytes);
  for (let c = 0; c < qBits; c++) {
    const kind = Math.floor(rand() * 5);
    for (let i = 0; i < planeBytes; i++) query[c * planeBytes + i] = planeByte(kind, rand);
  }
  const codes = new Uint8Array(n * stride);
  const view = new DataView(codes.buffer);
  for (let j = 0; j < n; j++) {
    for (let b = 0; b < bits; b++) {
      const kind = j + b;
      for (let i = 0; i < planeBytes; i++) codes[j * stride + b * planeBytes + i] = planeByte(kind, rand);
    }
    view.setFloat32(j * stride + bits * planeBytes, j % 6 === 0 ? 0 : rand() * 4, true);
    view.setFloat32(j * stride + bits * planeBytes + 4, rand(), true);
    // Bytes past the code, up to the stride, belong to no one: fill them so a kernel reading them shows.
    for (let i = bits * planeBytes + 8; i < stride; i++) codes[j * stride + i] = Math.floor(rand() * 256);
  }
  const scales = Float32Array.from({ length: n }, (_, j) =>
    j % 2 === 0 ? SPECIAL_SCALES[(j >> 1) % SPECIAL_SCALES.length]! : (rand() - 0.3) * 10 ** (rand() * 6 - 3),
  );
  const params: RqQueryParams = {
    qBits,
    delta: rand() * 0.1,
    lo: -rand(),
    corr: (rand() - 0.5) * 50,
    qNormSq: rand() * 3,
  };
  return { query, params, codes, scales };
}

function wasmScanRq(bits: RqBits, metric: RqMetric, rq: RqCase, n: number, planeBytes: number, stride: number): Float32Array {
  const k = kernels();
  return inWasm([rq.query, rq.codes, rq.scales, new Float32Array(Math.max(1, n))], (qPtr, cPtr, sPtr, oPtr) => {
    k.scanRq(bits, metric, qPtr!, rq.params, cPtr!, sPtr!, n, planeBytes, stride, oPtr!);
    return k.memory.f32().slice(oPtr! >> 2, (oPtr! >> 2) + n);
  });
}

function assertSame(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, what);
  for (let j = 0; j < expected.length; j++) {
    assert.ok(Object.is(actual[j], expected[j]), `${what}, vector ${j}: wasm ${actual[j]} vs reference ${expected[j]}`);
  }
}

const PLANE_BYTES = [16, 48, 64, 512];
const QUERY_BITS = [1, 4, 8];
const COUNTS = [0, 1, 3, 5, 17];

describe('rq kernels match referenceScanRq bit for bit', () => {
  for (const bits of RQ_BITS) {
    for (const metric of RQ_METRICS) {
      it(`rq${bits} ${metric}`, () => {
        const rand = rng(seedOf(`rq ${bits} ${metric}`));
        for (const qBits of QUERY_BITS) {
          for (const planeBytes of PLANE_BYTES) {
            for (const n of COUNTS) {
              // The tight stride, and a looser one that leaves bytes no kernel may read between codes.
              for (const stride of [bits * planeBytes + 8, bits * planeBytes + 28]) {
                const rq = randomCase(bits, qBits, planeBytes, n, stride, rand);
                const expected = new Float32Array(n);
                referenceScanRq(bits, metric, rq.query, rq.params, rq.codes, rq.scales, n, planeBytes, stride, expected);
                const actual = wasmScanRq(bits, metric, rq, n, planeBytes, stride);
                assertSame(actual, expected, `qBits ${qBits} planeBytes ${planeBytes} n ${n} stride ${stride}`);
              }
            }
          }
        }
      });
    }
  }

  it('the unchecked export is the kernel scanRq calls', () => {
    const k = kernels();
    const rand = rng(5);
    const rq = randomCase(2, 4, 64, 9, 2 * 64 + 8, rand);
    const expected = wasmScanRq(2, 'l2', rq, 9, 64, 2 * 64 + 8);
    const actual = inWasm([rq.query, rq.codes, rq.scales, new Float32Array(9)], (qPtr, cPtr, sPtr, oPtr) => {
      const { qBits, delta, lo, corr, qNormSq } = rq.params;
      k.scanRqFunction(2, 'l2')(qPtr!, qBits, delta, lo, corr, qNormSq, cPtr!, sPtr!, 9, 64, 2 * 64 + 8, oPtr!);
      return k.memory.f32().slice(oPtr! >> 2, (oPtr! >> 2) + 9);
    });
    assertSame(actual, expected, 'scanRqFunction');
  });
});

describe('rq sums stay exact at their limits', () => {
  /**
   * Every bit set in all four code planes and all eight query planes: every popcount is 8, the most
   * each i8 lane takes per step, so a segment one step too long would wrap a lane, and the dot sum
   * is the largest any code can reach, (2^4 − 1)(2^8 − 1) · 8 · planeBytes.
   */
  function allOnes(planeBytes: number): { expected: Float32Array; actual: Float32Array; dot: number; sumU: number } {
    const bits: RqBits = 4;
    const qBits = RQ_MAX_QUERY_BITS;
    const stride = bits * planeBytes + 8;
    const query = new Uint8Array(qBits * planeBytes).fill(0xff);
    const codes = new Uint8Array(2 * stride).fill(0xff);
    new DataView(codes.buffer).setFloat32(bits * planeBytes, 0, true);
    new DataView(codes.buffer).setFloat32(stride + bits * planeBytes, 0, true);
    // With delta 1 and lo 0 a score is the dot sum itself; with delta 0 and lo 1 it is the sum of levels.
    const scales = new Float32Array([1, 1]);
    const dotParams: RqQueryParams = { qBits, delta: 1, lo: 0, corr: 0, qNormSq: 0 };
    const sumParams: RqQueryParams = { qBits, delta: 0, lo: 1, corr: 0, qNormSq: 0 };
    const rqDot = { query, params: dotParams, codes, scales };
    const rqSum = { query, params: sumParams, codes, scales };
    const expected = new Float32Array(4);
    referenceScanRq(bits, 'dot', query, dotParams, codes, scales, 2, planeBytes, stride, expected.subarray(0, 2));
    referenceScanRq(bits, 'dot', query, sumParams, codes, scales, 2, planeBytes, stride, expected.subarray(2, 4));
    const actual = new Float32Array(4);
    actual.set(wasmScanRq(bits, 'dot', rqDot, 2, planeBytes, stride), 0);
    actual.set(wasmScanRq(bits, 'dot', rqSum, 2, planeBytes, stride), 2);
    return { expected, actual, dot: 15 * 255 * 8 * planeBytes, sumU: 15 * 8 * planeBytes };
  }

  for (const planeBytes of [496, 512, 1008, RQ_MAX_PLANE_BYTES]) {
    it(`all bits set, planeBytes ${planeBytes}`, () => {
      const { expected, actual, dot, sumU } = allOnes(planeBytes);
      assertSame(actual, expected, `planeBytes ${planeBytes}`);
      assert.equal(actual[0], Math.fround(dot));
      assert.equal(actual[2], Math.fround(sumU));
    });
  }

  it('the dot sum at RQ_MAX_PLANE_BYTES fits in i32', () => {
    assert.ok(15 * 255 * 8 * RQ_MAX_PLANE_BYTES < 2 ** 31);
  });
});

/**
 * The gather forms against the contiguous kernels: a table of (code address, scale address) pairs
 * in a shuffled order, with repeats, gives each vector bit for bit its contiguous score.
 */
describe('rq gather kernels score each vector exactly as the contiguous kernels do', () => {
  const k = kernels();

  function orders(n: number, rand: () => number): number[][] {
    const shuffled = Array.from({ length: n }, (_, j) => j);
    for (let j = n - 1; j > 0; j--) {
      const r = Math.floor(rand() * (j + 1));
      [shuffled[j], shuffled[r]] = [shuffled[r]!, shuffled[j]!];
    }
    const repeats = n === 0 ? [] : Array.from({ length: n + 3 }, () => Math.floor(rand() * n));
    return [[], shuffled, repeats];
  }

  for (const bits of RQ_BITS) {
    for (const metric of RQ_METRICS) {
      it(`rq${bits} ${metric}`, () => {
        const rand = rng(seedOf(`gather rq ${bits} ${metric}`));
        for (const qBits of QUERY_BITS) {
          for (const planeBytes of PLANE_BYTES) {
            for (const n of [1, 5, 17]) {
              const stride = bits * planeBytes + 8;
              const rq = randomCase(bits, qBits, planeBytes, n, stride, rand);
              const expected = wasmScanRq(bits, metric, rq, n, planeBytes, stride);
              for (const order of orders(n, rand)) {
                inWasm([rq.query, rq.codes, rq.scales], (qPtr, cPtr, sPtr) => {
                  const table = Int32Array.from(order.flatMap((j) => [cPtr! + j * stride, sPtr! + 4 * j]));
                  inWasm([table, new Float32Array(Math.max(1, order.length))], (tPtr, oPtr) => {
                    const { delta, lo, corr, qNormSq } = rq.params;
                    k.gatherRqFunction(bits, metric)(qPtr!, qBits, delta, lo, corr, qNormSq, tPtr!, order.length, planeBytes, oPtr!);
                    const actual = k.memory.f32().slice(oPtr! >> 2, (oPtr! >> 2) + order.length);
                    order.forEach((j, at) =>
                      assert.ok(
                        Object.is(actual[at], expected[j]),
                        `qBits ${qBits} planeBytes ${planeBytes} vector ${j} at ${at}: ${actual[at]} vs ${expected[j]}`,
                      ),
                    );
                  });
                });
              }
            }
          }
        }
      });
    }
  }
});

describe('scanRq checks the shape of a call', () => {
  const k = kernels();
  const params: RqQueryParams = { qBits: 4, delta: 1, lo: 0, corr: 0, qNormSq: 0 };
  const call = (over: { n?: number; planeBytes?: number; stride?: number; qBits?: number; bits?: number }): void => {
    const planeBytes = over.planeBytes ?? 16;
    const bits = (over.bits ?? 1) as RqBits;
    k.scanRq(bits, 'dot', 16, { ...params, qBits: over.qBits ?? 4 }, 16, 16, over.n ?? 1, planeBytes, over.stride ?? 24, 16);
  };

  it('rejects n that is negative or not an integer', () => {
    assert.throws(() => call({ n: -1 }), RangeError);
    assert.throws(() => call({ n: 1.5 }), RangeError);
    assert.throws(() => call({ n: Number.NaN }), RangeError);
  });

  it('rejects planeBytes that is not a positive multiple of 16 up to RQ_MAX_PLANE_BYTES', () => {
    assert.throws(() => call({ planeBytes: 0 }), RangeError);
    assert.throws(() => call({ planeBytes: 8 }), RangeError);
    assert.throws(() => call({ planeBytes: 24, stride: 1000 }), RangeError);
    assert.throws(() => call({ planeBytes: -16 }), RangeError);
    assert.throws(() => call({ planeBytes: RQ_MAX_PLANE_BYTES + 16, stride: 2 * RQ_MAX_PLANE_BYTES }), RangeError);
  });

  it('rejects a stride shorter than the planes, ‖r‖² and the error, or not an integer', () => {
    assert.throws(() => call({ stride: 23 }), RangeError);
    assert.throws(() => call({ bits: 2, stride: 39 }), RangeError);
    assert.throws(() => call({ bits: 4, planeBytes: 64, stride: 4 * 64 + 7 }), RangeError);
    assert.throws(() => call({ stride: 24.5 }), RangeError);
  });

  it('rejects qBits outside 1..RQ_MAX_QUERY_BITS', () => {
    assert.throws(() => call({ qBits: 0 }), RangeError);
    assert.throws(() => call({ qBits: RQ_MAX_QUERY_BITS + 1 }), RangeError);
    assert.throws(() => call({ qBits: 2.5 }), RangeError);
  });

  it('rejects bits and metrics it has no kernel for', () => {
    assert.throws(() => call({ bits: 3, stride: 56 }), RangeError);
    assert.throws(() => k.scanRqFunction(8 as RqBits, 'dot'), RangeError);
    assert.throws(() => k.gatherRqFunction(1, 'cosine' as RqMetric), RangeError);
  });

  it('accepts the limits themselves, and n = 0 writes nothing', () => {
    const out = inWasm([new Float32Array([7])], (oPtr) => {
      k.scanRq(1, 'dot', 16, { ...params, qBits: RQ_MAX_QUERY_BITS }, 16, 16, 0, 16, 24, oPtr!);
      return k.memory.f32()[oPtr! >> 2];
    });
    assert.equal(out, 7);
  });
});
