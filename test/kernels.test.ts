import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { ScalarCodecName } from '../src/codec/codec.js';
import { f16ToF32, fp8E4M3DecodeTable, fp8E5M2DecodeTable, getScalarCodec } from '../src/codec/index.js';
import {
  BYTES_PER_DIM,
  KERNEL_CODECS,
  KERNEL_METRICS,
  LinearMemory,
  MAX_I8_DIM,
  isScaled,
  kernels,
  referenceScan,
  referenceScanI8,
  referenceScanI8CosineNormed,
  FLOAT_NORMED_CODECS,
  referenceFloatCodeNorm,
  int8CodeNorm,
  referenceRowMaxAbs,
  referenceSelectAtLeast,
  referenceRouteScores,
  referenceBucketSelect,
  ROUTE_PLAIN,
  ROUTE_SPHERE,
  ROUTE_WIDEN,
  SELECT_BUCKETS,
  referenceSumMultiples,
  referenceHamming,
  referenceQueryShift,
  referenceSignSketch,
  type KernelMetric,
} from '../src/kernels/index.js';
import { decodeE4M3, decodeE5M2, decodeF16 } from '../src/kernels/reference.js';
import { rng } from '../src/random.js';
import { inputCopied, kernelScratch } from '../src/kernels/scratch.js';
import { dot, squaredDistance } from '../src/vector.js';

function gaussian(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

/** Code values the codecs can produce: everything but NaN/Inf patterns, and -128 for int8. */
const VALID: Readonly<Record<ScalarCodecName, (bits: number) => boolean>> = {
  f32: () => true,
  f16: (h) => (h & 0x7c00) !== 0x7c00,
  int8: (b) => b !== 0x80,
  'fp8-e4m3': (b) => (b & 0x7f) !== 0x7f,
  'fp8-e5m2': (b) => (b & 0x7c) !== 0x7c,
};

/** Subnormal codes (exponent field zero) for f16 and fp8, the extremes ±127 for int8, small f32 values. */
function specialValue(codec: ScalarCodecName, rand: () => number): number {
  const sign = rand() < 0.5 ? 1 : 0;
  switch (codec) {
    case 'f32':
      return gaussian(rand) * 1e-3;
    case 'f16':
      return (sign << 15) | Math.floor(rand() * 1024);
    case 'int8':
      return sign ? 127 : -127;
    case 'fp8-e4m3':
      return (sign << 7) | Math.floor(rand() * 8);
    case 'fp8-e5m2':
      return (sign << 7) | Math.floor(rand() * 4);
  }
}

function randomValue(codec: ScalarCodecName, rand: () => number): number {
  if (codec === 'f32') return gaussian(rand) * 2;
  const range = codec === 'f16' ? 65536 : 256;
  for (;;) {
    const bits = Math.floor(rand() * range);
    if (VALID[codec](bits)) return codec === 'int8' ? (bits << 24) >> 24 : bits;
  }
}

/**
 * n codes of `dim` dimensions cycling through four kinds (random, special, random, all-zero), so
 * that n = 3 already meets subnormals or int8 extremes and n = 4 an all-zero code.
 */
function randomCodes(codec: ScalarCodecName, n: number, dim: number, rand: () => number): Uint8Array {
  const bytes = new Uint8Array(n * dim * BYTES_PER_DIM[codec]);
  const f32 = new Float32Array(bytes.buffer);
  const u16 = new Uint16Array(bytes.buffer, 0, bytes.length >> 1);
  const i8 = new Int8Array(bytes.buffer);
  for (let j = 0; j < n; j++) {
    const kind = j % 4;
    for (let i = 0; i < dim; i++) {
      const at = j * dim + i;
      const value = kind === 3 ? 0 : kind === 1 ? specialValue(codec, rand) : randomValue(codec, rand);
      if (codec === 'f32') f32[at] = value;
      else if (codec === 'f16') u16[at] = value;
      else if (codec === 'int8') i8[at] = value;
      else bytes[at] = value;
    }
  }
  return bytes;
}

function randomScales(n: number, rand: () => number): Float32Array {
  return Float32Array.from({ length: n }, () => 10 ** (rand() * 4 - 3));
}

function randomQuery(dim: number, rand: () => number): Float32Array {
  return Float32Array.from({ length: dim }, () => gaussian(rand));
}

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

function wasmScan(
  codec: ScalarCodecName,
  metric: KernelMetric,
  q: Float32Array,
  codes: Uint8Array,
  scales: Float32Array,
  n: number,
  dim: number,
): Float32Array {
  const k = kernels();
  return inWasm([q, codes, scales, new Float32Array(n)], (qPtr, cPtr, sPtr, oPtr) => {
    k.scan(codec, metric, qPtr!, cPtr!, sPtr!, n, dim, oPtr!);
    return k.memory.f32().slice(oPtr! >> 2, (oPtr! >> 2) + n);
  });
}

/** Unscaled value of dimension i of code j, by the reference's arithmetic decode. */
function decoded(codec: ScalarCodecName, codes: Uint8Array, at: number): number {
  const view = new DataView(codes.buffer, codes.byteOffset);
  switch (codec) {
    case 'f32':
      return view.getFloat32(4 * at, true);
    case 'f16':
      return decodeF16(view.getUint16(2 * at, true));
    case 'int8':
      return view.getInt8(at);
    case 'fp8-e4m3':
      return decodeE4M3(view.getUint8(at));
    case 'fp8-e5m2':
      return decodeE5M2(view.getUint8(at));
  }
}

const U = 2 ** -24;

/**
 * Allowed |wasm − reference| for vector j. Decoding is exact in both, so the only difference is
 * float32 rounding in the kernel (the float64 reference is exact by comparison). Every term of a
 * sum passes through at most h = 2 (tree within a step) + dim/16 (accumulator chain) + 2
 * (horizontal sum) float32 additions plus a rounded product, and standard summation analysis bounds
 * the error by γ_h · Σ|term| ≈ h · u · Σ|term| with u = 2^-24. The final scale multiply, the
 * reference's own rounding to float32, and for l2 the rounding of s·d and of q − s·d add a few u
 * more; the margin of 8 (12 for l2, whose differences are also rounded before squaring) covers them.
 * This is a bound, not a fudge: it scales with the magnitudes, never with the result alone.
 */
function tolerance(
  codec: ScalarCodecName,
  metric: KernelMetric,
  q: Float32Array,
  codes: Uint8Array,
  scale: number,
  j: number,
  dim: number,
  result: number,
): number {
  const h = dim / 16 + (metric === 'l2' ? 12 : 8);
  let absDot = 0;
  let norm = 0;
  let l2 = 0;
  for (let i = 0; i < dim; i++) {
    const d = decoded(codec, codes, j * dim + i);
    absDot += Math.abs(q[i]! * d);
    norm += d * d;
    l2 += (Math.abs(q[i]!) + Math.abs(scale * d)) ** 2;
  }
  if (metric === 'dot') return h * U * Math.abs(scale) * absDot;
  if (metric === 'l2') return h * U * l2;
  return norm === 0 ? 0 : h * U * (absDot / Math.sqrt(norm) + Math.abs(result));
}

describe('float-query kernels match the TypeScript reference', () => {
  const dims = [16, 32, 48, 384, 512];
  const counts = [1, 2, 3, 4, 7, 33];
  for (const codec of KERNEL_CODECS) {
    for (const metric of KERNEL_METRICS) {
      it(`${codec} ${metric}`, () => {
        const rand = rng([...`${codec} ${metric}`].reduce((h, ch) => Math.imul(h, 31) + ch.charCodeAt(0), 7));
        for (const dim of dims) {
          for (const n of counts) {
            const q = randomQuery(dim, rand);
            const codes = randomCodes(codec, n, dim, rand);
            const scales = randomScales(n, rand);
            const expected = new Float32Array(n);
            referenceScan(codec, metric, q, codes, scales, n, dim, expected);
            const actual = wasmScan(codec, metric, q, codes, scales, n, dim);
            for (let j = 0; j < n; j++) {
              const s = isScaled(codec) ? scales[j]! : 1;
              const tol = tolerance(codec, metric, q, codes, s, j, dim, expected[j]!);
              const diff = Math.abs(actual[j]! - expected[j]!);
              assert.ok(
                diff <= tol,
                `dim ${dim} n ${n} vector ${j}: wasm ${actual[j]} vs reference ${expected[j]} (|diff| ${diff} > ${tol})`,
              );
              if (j % 4 === 3 && metric !== 'l2') assert.equal(actual[j], 0, 'all-zero code');
            }
          }
        }
      });
    }
  }
});

/**
 * The gather kernels against the contiguous ones: a table of (code address, scale address) pairs,
 * in any order and with repeats, must give each vector bit for bit its contiguous score (the cache
 * certifies answers on the premise that a pool scores as the scan does).
 */
describe('gather kernels score each vector exactly as the contiguous kernels do', () => {
  const k = kernels();

  /** A table visiting vectors `order` of the n stored from cPtr/sPtr. */
  function table(order: readonly number[], cPtr: number, sPtr: number, stride: number): Int32Array {
    return Int32Array.from(order.flatMap((j) => [cPtr + j * stride, sPtr + 4 * j]));
  }

  function orders(n: number, rand: () => number): number[][] {
    const shuffled = Array.from({ length: n }, (_, j) => j);
    for (let j = n - 1; j > 0; j--) {
      const r = Math.floor(rand() * (j + 1));
      [shuffled[j], shuffled[r]] = [shuffled[r]!, shuffled[j]!];
    }
    const repeats = Array.from({ length: n + 3 }, () => Math.floor(rand() * n));
    return [[], [n - 1], shuffled, repeats];
  }

  for (const codec of KERNEL_CODECS) {
    for (const metric of KERNEL_METRICS) {
      it(`${codec} ${metric}`, () => {
        const rand = rng([...`gather ${codec} ${metric}`].reduce((h, ch) => Math.imul(h, 31) + ch.charCodeAt(0), 11));
        for (const dim of [16, 48, 512]) {
          for (const n of [1, 5, 9, 33]) {
            const q = randomQuery(dim, rand);
            const codes = randomCodes(codec, n, dim, rand);
            const scales = randomScales(n, rand);
            const expected = wasmScan(codec, metric, q, codes, scales, n, dim);
            for (const order of orders(n, rand)) {
              inWasm([q, codes, scales], (qPtr, cPtr, sPtr) => {
                const t = table(order, cPtr!, sPtr!, dim * BYTES_PER_DIM[codec]);
                inWasm([t, new Float32Array(Math.max(1, order.length))], (tPtr, oPtr) => {
                  k.gatherFunction(codec, metric)(qPtr!, tPtr!, order.length, dim, oPtr!);
                  const actual = k.memory.f32().slice(oPtr! >> 2, (oPtr! >> 2) + order.length);
                  order.forEach((j, at) => assert.ok(Object.is(actual[at], expected[j]), `dim ${dim} vector ${j} at ${at}: ${actual[at]} vs ${expected[j]}`));
                });
              });
            }
          }
        }
      });
    }
  }

  for (const metric of ['dot', 'cosine'] as const) {
    it(`int8 query, ${metric}`, () => {
      const rand = rng(metric === 'dot' ? 21 : 22);
      for (const dim of [16, 48, 512]) {
        for (const n of [1, 5, 9, 33]) {
          const q = new Int8Array(randomCodes('int8', 1, dim, rand).buffer);
          const codes = new Int8Array(randomCodes('int8', n, dim, rand).buffer);
          const scales = randomScales(n, rand);
          const expected = inWasm([q, codes, scales, new Float32Array(n)], (qPtr, cPtr, sPtr, oPtr) => {
            k.scanI8(metric, qPtr!, 0.01, cPtr!, sPtr!, n, dim, oPtr!);
            return k.memory.f32().slice(oPtr! >> 2, (oPtr! >> 2) + n);
          });
          for (const order of orders(n, rand)) {
            inWasm([q, codes, scales], (qPtr, cPtr, sPtr) => {
              const t = table(order, cPtr!, sPtr!, dim);
              inWasm([t, new Float32Array(Math.max(1, order.length))], (tPtr, oPtr) => {
                k.gatherI8Function(metric)(qPtr!, 0.01, tPtr!, order.length, dim, oPtr!);
                const actual = k.memory.f32().slice(oPtr! >> 2, (oPtr! >> 2) + order.length);
                order.forEach((j, at) => assert.ok(Object.is(actual[at], expected[j]), `dim ${dim} vector ${j} at ${at}: ${actual[at]} vs ${expected[j]}`));
              });
            });
          }
        }
      }
    });
  }
});

describe('in-register decode is exact for every finite code value', () => {
  /**
   * A one-hot query makes the dot score exactly the decoded value of that dimension (the other
   * products are zeros), so each scan reads one dimension of every code bit for bit.
   */
  function decodeAll(codec: ScalarCodecName, values: readonly number[], dim: number): void {
    const n = Math.ceil(values.length / dim);
    const codes = new Uint8Array(n * dim * BYTES_PER_DIM[codec]);
    const view = new DataView(codes.buffer);
    values.forEach((bits, at) => (BYTES_PER_DIM[codec] === 2 ? view.setUint16(2 * at, bits, true) : view.setUint8(at, bits)));
    const scales = new Float32Array(n).fill(1);
    const q = new Float32Array(dim);
    for (let i = 0; i < dim; i++) {
      q.fill(0);
      q[i] = 1;
      const actual = wasmScan(codec, 'dot', q, codes, scales, n, dim);
      for (let j = 0; j < n; j++) {
        const at = j * dim + i;
        if (at >= values.length) continue;
        // + 0 because the sum of a −0 product with +0 products is +0.
        assert.equal(actual[j], decoded(codec, codes, at) + 0, `${codec} code 0x${values[at]!.toString(16)}`);
      }
    }
  }

  const finite = (codec: ScalarCodecName, count: number): number[] =>
    Array.from({ length: count }, (_, bits) => bits).filter(VALID[codec]);

  it('fp8-e4m3: all 254 non-NaN bytes', () => decodeAll('fp8-e4m3', finite('fp8-e4m3', 256), 256));
  it('fp8-e5m2: all 248 finite bytes', () => decodeAll('fp8-e5m2', finite('fp8-e5m2', 256), 256));
  it('f16: all 63488 finite half-words', () => decodeAll('f16', finite('f16', 65536), 512));
  it('int8: all 255 codes in [-127, 127]', () => {
    decodeAll('int8', Array.from({ length: 255 }, (_, k) => (k - 127) & 0xff), 256);
  });
});

describe('kernels agree with the codecs', () => {
  it('the reference decoders equal the codec decode rules on every finite code', () => {
    for (let b = 0; b < 256; b++) {
      if (VALID['fp8-e4m3'](b)) assert.equal(decodeE4M3(b), fp8E4M3DecodeTable[b], `e4m3 0x${b.toString(16)}`);
      if (VALID['fp8-e5m2'](b)) assert.equal(decodeE5M2(b), fp8E5M2DecodeTable[b], `e5m2 0x${b.toString(16)}`);
    }
    for (let h = 0; h < 65536; h++) if (VALID.f16(h)) assert.equal(decodeF16(h), f16ToF32(h));
  });

  /**
   * Codes written by the real encoders, scored against the codec's own decode (fl32(s · value)
   * per element). The tolerance is the summation bound above plus one rounding per decoded
   * element, which the codec applies and the kernel (scaling the sum once) does not.
   */
  it('scores of encoded vectors match scores of their codec-decoded floats', () => {
    const rand = rng(99);
    const dim = 384;
    const n = 9;
    for (const codec of KERNEL_CODECS) {
      const c = getScalarCodec(codec);
      const codes = new Uint8Array(n * c.codeBytes(dim));
      const scales = new Float32Array(n);
      const decodedCodes = new Float32Array(n * dim);
      for (let j = 0; j < n; j++) {
        const v = Float32Array.from({ length: dim }, () => gaussian(rand) * (j === 0 ? 1e3 : 0.05));
        if (j === 1) v.fill(0, 0, dim / 2);
        const code = codes.subarray(j * c.codeBytes(dim), (j + 1) * c.codeBytes(dim));
        scales[j] = c.encode(v, code);
        c.decode(code, scales[j]!, decodedCodes.subarray(j * dim, (j + 1) * dim));
      }
      const q = randomQuery(dim, rand);
      const decodedBytes = new Uint8Array(decodedCodes.buffer);
      for (const metric of KERNEL_METRICS) {
        const actual = wasmScan(codec, metric, q, codes, scales, n, dim);
        const expected = new Float32Array(n);
        referenceScan('f32', metric, q, decodedBytes, scales, n, dim, expected);
        for (let j = 0; j < n; j++) {
          const s = isScaled(codec) ? scales[j]! : 1;
          const tol = tolerance(codec, metric, q, codes, s, j, dim, expected[j]!) * (1 + 2 / (dim / 16 + 8));
          assert.ok(
            Math.abs(actual[j]! - expected[j]!) <= tol,
            `${codec} ${metric} vector ${j}: wasm ${actual[j]} vs decoded ${expected[j]} (tolerance ${tol})`,
          );
        }
      }
    }
  });
});

describe('int8-query kernels', () => {
  const k = kernels();

  function run(
    metric: 'dot' | 'cosine',
    q: Int8Array,
    qScale: number,
    codes: Int8Array,
    scales: Float32Array,
    n: number,
    dim: number,
  ): Float32Array {
    return inWasm([q, codes, scales, new Float32Array(n)], (qPtr, cPtr, sPtr, oPtr) => {
      k.scanI8(metric, qPtr!, qScale, cPtr!, sPtr!, n, dim, oPtr!);
      return k.memory.f32().slice(oPtr! >> 2, (oPtr! >> 2) + n);
    });
  }

  const int8Codes = (n: number, dim: number, rand: () => number): Int8Array =>
    new Int8Array(randomCodes('int8', n, dim, rand).buffer);

  it('integer part is exact: with unit scales the dot score is the integer sum', () => {
    const rand = rng(7);
    for (const dim of [16, 32, 48, 384, 512]) {
      for (const n of [1, 3, 4, 5, 9, 33]) {
        const q = int8Codes(1, dim, rand);
        const codes = int8Codes(n, dim, rand);
        const actual = run('dot', q, 1, codes, new Float32Array(n).fill(1), n, dim);
        for (let j = 0; j < n; j++) {
          let sum = 0;
          for (let i = 0; i < dim; i++) sum += q[i]! * codes[j * dim + i]!;
          assert.equal(actual[j], sum, `dim ${dim} vector ${j}`);
        }
      }
    }
  });

  for (const metric of ['dot', 'cosine'] as const) {
    it(`${metric}: bit-exact with the reference`, () => {
      const rand = rng(metric.length);
      for (const dim of [16, 32, 48, 384, 512]) {
        for (const n of [1, 2, 3, 4, 5, 7, 33]) {
          const q = int8Codes(1, dim, rand);
          const qScale = 10 ** (rand() * 4 - 3);
          const codes = int8Codes(n, dim, rand);
          const scales = randomScales(n, rand);
          const expected = new Float32Array(n);
          referenceScanI8(metric, q, qScale, codes, scales, n, dim, expected);
          assert.deepEqual(run(metric, q, qScale, codes, scales, n, dim), expected, `dim ${dim} n ${n}`);
        }
      }
    });
  }

  /** scanI8CosineNormed over `codes` with the norms int8CodeNorm() gives them. */
  function runNormed(q: Int8Array, qScale: number, codes: Int8Array, n: number, dim: number): Float32Array {
    const bytes = new Uint8Array(codes.buffer, codes.byteOffset, n * dim);
    const norms = Float32Array.from({ length: n }, (_, j) => int8CodeNorm(bytes, j * dim, dim));
    return inWasm([q, codes, norms, new Float32Array(n)], (qPtr, cPtr, nPtr, oPtr) => {
      k.scanI8CosineNormed(qPtr!, qScale, cPtr!, nPtr!, n, dim, oPtr!);
      return k.memory.f32().slice(oPtr! >> 2, (oPtr! >> 2) + n);
    });
  }

  it('cosine with stored norms gives every score of the summing kernel and of its reference, bit for bit', () => {
    const rand = rng(11);
    for (const dim of [16, 32, 48, 112, 384, 512]) {
      for (const n of [1, 2, 3, 4, 5, 7, 33]) {
        const q = int8Codes(1, dim, rand);
        const qScale = 10 ** (rand() * 4 - 3);
        const codes = int8Codes(n, dim, rand);
        // A code of zeros among them: norm 0, score 0 in both.
        if (n > 2) codes.fill(0, dim, 2 * dim);
        const scales = randomScales(n, rand);
        const summed = run('cosine', q, qScale, codes, scales, n, dim);
        const normed = runNormed(q, qScale, codes, n, dim);
        assert.deepEqual(normed, summed, `dim ${dim} n ${n}`);
        const bytes = new Uint8Array(codes.buffer, codes.byteOffset, n * dim);
        const expected = new Float32Array(n);
        referenceScanI8CosineNormed(q, qScale, codes, Float32Array.from({ length: n }, (_, j) => int8CodeNorm(bytes, j * dim, dim)), n, dim, expected);
        assert.deepEqual(normed, expected, `dim ${dim} n ${n}`);
      }
    }
  });

  it('cosine with stored norms matches at MAX_I8_DIM, where Σc² is rounded on its way to float32', () => {
    const dim = MAX_I8_DIM;
    const q = new Int8Array(dim).fill(-128);
    const codes = new Int8Array(2 * dim).fill(-127);
    codes.fill(113, dim);
    const scales = new Float32Array(2).fill(1);
    // 127² · 131056 is past 2^24: the conversion rounds, and the stored norm must round the same way.
    assert.ok(127 * 127 * dim > 2 ** 24);
    assert.deepEqual(runNormed(q, 1, codes, 2, dim), run('cosine', q, 1, codes, scales, 2, dim));
  });

  it('does not overflow at MAX_I8_DIM, even with -128 bytes', () => {
    const dim = MAX_I8_DIM;
    const q = new Int8Array(dim).fill(-128);
    const codes = new Int8Array(2 * dim).fill(-128);
    codes.fill(127, dim);
    const scales = new Float32Array(2).fill(1);
    const [largest, smallest] = run('dot', q, 1, codes, scales, 2, dim);
    assert.equal(largest, Math.fround(128 * 128 * dim));
    assert.equal(smallest, Math.fround(-128 * 127 * dim));
    const expected = new Float32Array(2);
    referenceScanI8('cosine', q, 1, codes, scales, 2, dim, expected);
    assert.deepEqual(run('cosine', q, 1, codes, scales, 2, dim), expected);
  });

  it('rejects dims it cannot accumulate exactly or that are not multiples of 16', () => {
    assert.throws(() => k.scanI8('dot', 16, 1, 16, 16, 1, MAX_I8_DIM + 16, 16), RangeError);
    assert.throws(() => k.scanI8('dot', 16, 1, 16, 16, 1, 24, 16), RangeError);
    assert.throws(() => k.scan('f32', 'dot', 16, 16, 16, 1, 0, 16), RangeError);
    assert.throws(() => k.scan('f32', 'dot', 16, 16, 16, -1, 16, 16), RangeError);
  });
});

describe('float cosine kernels with stored norms', () => {
  const k = kernels();

  /** Codes of every byte pattern: the random kinds of randomCodes, and raw random bytes (NaN and infinity patterns, damaged codes) after them. */
  function anyCodes(codec: (typeof FLOAT_NORMED_CODECS)[number], n: number, dim: number, rand: () => number): Uint8Array {
    const bytes = randomCodes(codec, n, dim, rand);
    if (codec === 'f32') return bytes;
    const raw = Math.floor(n / 2) * dim * BYTES_PER_DIM[codec];
    for (let i = bytes.length - raw; i < bytes.length; i++) bytes[i] = Math.floor(rand() * 256);
    return bytes;
  }

  for (const codec of FLOAT_NORMED_CODECS) {
    it(`${codec}: the norms kernel gives referenceFloatCodeNorm()'s norm, and the stored-norms kernel every score of the summing one, bit for bit`, () => {
      const rand = rng(codec.length * 7 + 1);
      for (const dim of [16, 32, 48, 112, 384, 512, 1024]) {
        for (const n of [1, 2, 3, 4, 5, 7, 33]) {
          const codes = anyCodes(codec, n, dim, rand);
          const q = randomQuery(dim, rand);
          // Scales the summing kernel is handed and never reads for cosine.
          const scales = randomScales(n, rand);
          const [norms, summed, normed] = inWasm([q, codes, scales, new Float32Array(n), new Float32Array(n), new Float32Array(n)], (qPtr, cPtr, sPtr, nPtr, aPtr, bPtr) => {
            k.floatNorms(codec, cPtr!, n, dim, nPtr!);
            k.scan(codec, 'cosine', qPtr!, cPtr!, sPtr!, n, dim, aPtr!);
            k.scanCosineNormedFunction(codec)(qPtr!, cPtr!, nPtr!, n, dim, bPtr!);
            const f32 = k.memory.f32();
            return [nPtr!, aPtr!, bPtr!].map((ptr) => f32.slice(ptr >> 2, (ptr >> 2) + n));
          });
          assert.deepEqual(normed, summed, `${codec} dim ${dim} n ${n}`);
          const replayed = Float32Array.from({ length: n }, (_, j) => referenceFloatCodeNorm(codec, codes, j * dim * BYTES_PER_DIM[codec], dim));
          assert.deepEqual(norms, replayed, `${codec} dim ${dim} n ${n}`);
        }
      }
    });
  }

  it('referenceFloatCodeNorm() of a code shorter than its padding is the norm of the padded code (the padding is zeros)', () => {
    const rand = rng(5);
    for (const codec of FLOAT_NORMED_CODECS) {
      for (const dim of [1, 7, 17, 100]) {
        const padded = Math.ceil(dim / 16) * 16;
        const codes = randomCodes(codec, 1, padded, rand);
        codes.fill(0, dim * BYTES_PER_DIM[codec]);
        const [norm] = inWasm([codes, new Float32Array(1)], (cPtr, nPtr) => {
          k.floatNorms(codec, cPtr!, 1, padded, nPtr!);
          return [k.memory.f32()[nPtr! >> 2]!];
        });
        assert.equal(referenceFloatCodeNorm(codec, codes, 0, dim), norm, `${codec} ${dim}`);
      }
    }
  });

  it('a code whose squares sum to 0 (zeros; float32 values whose squares underflow) scores 0 with its stored norm, as summed', () => {
    const dim = 32;
    const q = Float32Array.from({ length: dim }, (_, i) => i + 1);
    for (const codec of FLOAT_NORMED_CODECS) {
      // The first code zeros; the second the least value of its codec in every dimension (for f32,
      // 2^-149, whose square is 0 in float32 while its products with the query are not).
      const codes = new Uint8Array(2 * dim * BYTES_PER_DIM[codec]);
      if (codec === 'f32') new Float32Array(codes.buffer).fill(2 ** -149, dim);
      else if (codec === 'f16') new Uint16Array(codes.buffer).fill(1, dim);
      else codes.fill(1, dim);
      const [summed, normed] = inWasm([q, codes, new Float32Array(2).fill(1), new Float32Array(2), new Float32Array(2), new Float32Array(2)], (qPtr, cPtr, sPtr, nPtr, aPtr, bPtr): [Float32Array, Float32Array] => {
        k.floatNorms(codec, cPtr!, 2, dim, nPtr!);
        k.scan(codec, 'cosine', qPtr!, cPtr!, sPtr!, 2, dim, aPtr!);
        k.scanCosineNormedFunction(codec)(qPtr!, cPtr!, nPtr!, 2, dim, bPtr!);
        const f32 = k.memory.f32();
        return [f32.slice(aPtr! >> 2, (aPtr! >> 2) + 2), f32.slice(bPtr! >> 2, (bPtr! >> 2) + 2)];
      });
      assert.deepEqual(normed, summed, codec);
      assert.equal(normed[0], 0, `${codec}: zeros`);
      if (codec === 'f32') assert.equal(normed[1], 0, 'f32: squares that underflow');
      else assert.ok(normed[1]! > 0, `${codec}: the least subnormal squares to a float32 above 0`);
    }
  });
});

describe('LinearMemory', () => {
  // These tests name the addresses the allocator hands out, which guard zones would move.
  let guarded = false;
  before(() => {
    guarded = LinearMemory.guardBlocks;
    LinearMemory.guardBlocks = false;
  });
  after(() => {
    LinearMemory.guardBlocks = guarded;
  });

  it('returns 16-byte aligned, non-zero, non-overlapping blocks', () => {
    const mem = new LinearMemory(new WebAssembly.Memory({ initial: 1 }));
    let end = 0;
    for (const bytes of [1, 3, 16, 17, 100, 0, 4096]) {
      const ptr = mem.alloc(bytes);
      assert.equal(ptr % 16, 0);
      assert.ok(ptr > 0 && ptr >= end);
      end = ptr + bytes;
    }
  });

  it('reuses a freed block of the same size before growing', () => {
    const mem = new LinearMemory(new WebAssembly.Memory({ initial: 1 }));
    const a = mem.alloc(1000);
    const b = mem.alloc(1000);
    mem.alloc(16);
    mem.free(a, 1000);
    assert.equal(mem.alloc(24), mem.used - 32, 'other sizes bump-allocate');
    assert.equal(mem.alloc(1000), a);
    mem.free(b, 1000);
    assert.equal(mem.freeBytes, 1008);
    assert.equal(mem.alloc(1000), b);
  });

  it('gives back the bump region when the topmost block is freed', () => {
    const mem = new LinearMemory(new WebAssembly.Memory({ initial: 1 }));
    mem.alloc(64);
    const used = mem.used;
    const top = mem.alloc(256);
    mem.free(top, 256);
    assert.equal(mem.used, used);
    assert.equal(mem.freeBytes, 0);
  });

  it('rejects frees of addresses it never handed out', () => {
    const mem = new LinearMemory(new WebAssembly.Memory({ initial: 1 }));
    const a = mem.alloc(32);
    mem.alloc(32);
    assert.throws(() => mem.free(a + 8, 32), RangeError);
    assert.throws(() => mem.free(0, 32), RangeError);
    assert.throws(() => mem.free(1 << 20, 32), RangeError);
  });

  it('grows on demand, keeps the data, and hands out fresh views after growth', () => {
    const mem = new LinearMemory(new WebAssembly.Memory({ initial: 1 }));
    const a = mem.alloc(4096);
    const before = mem.f32();
    before.fill(1.5, a >> 2, (a >> 2) + 1024);
    assert.equal(mem.f32(), before, 'views are cached while the memory does not grow');
    const big = mem.alloc(3 * 65536);
    assert.equal(before.length, 0, 'growth detached the old view');
    const after = mem.f32();
    assert.ok(after.byteLength >= big + 3 * 65536);
    assert.equal(mem.u8().byteLength, after.byteLength);
    assert.deepEqual(after.slice(a >> 2, (a >> 2) + 1024), new Float32Array(1024).fill(1.5));
    mem.u8().fill(7, big, big + 3 * 65536);
    assert.equal(mem.u8()[big + 3 * 65536 - 1], 7);
  });

  it('live blocks never overlap under any sequence of allocs and frees', () => {
    const sizes = [16, 48, 100, 1024, 70000];
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 4 })), { maxLength: 60 }), (ops) => {
        const mem = new LinearMemory(new WebAssembly.Memory({ initial: 1 }));
        const live: { ptr: number; bytes: number }[] = [];
        for (const [allocate, which] of ops) {
          if (allocate || live.length === 0) {
            const bytes = sizes[which]!;
            const ptr = mem.alloc(bytes);
            assert.equal(ptr % 16, 0);
            assert.ok(ptr + bytes <= mem.u8().byteLength);
            for (const other of live) assert.ok(ptr + bytes <= other.ptr || other.ptr + other.bytes <= ptr);
            live.push({ ptr, bytes });
          } else {
            const [block] = live.splice(which % live.length, 1);
            mem.free(block!.ptr, block!.bytes);
          }
        }
      }),
      { numRuns: 200 },
    );
  });

  it('kernels see memory grown after they were instantiated', () => {
    const k = kernels();
    const dim = 16;
    const q = k.memory.alloc(dim * 4);
    const fillerBytes = k.memory.u8().byteLength;
    const filler = k.memory.alloc(fillerBytes);
    const codes = k.memory.alloc(dim * 4);
    const out = k.memory.alloc(4);
    k.memory.f32().fill(1, q >> 2, (q >> 2) + dim);
    k.memory.f32().fill(2, codes >> 2, (codes >> 2) + dim);
    k.scan('f32', 'dot', q, codes, 0, 1, dim, out);
    assert.equal(k.memory.f32()[out >> 2], 32);
    k.memory.free(out, 4);
    k.memory.free(codes, dim * 4);
    k.memory.free(filler, fillerBytes);
    k.memory.free(q, dim * 4);
  });
});

describe('exact kernels: the same float64 numbers as vector.ts', () => {
  /** Runs both exact kernels on `xs` against `q` (each zero-padded to a multiple of 4) and checks every number bit for bit. */
  function agree(q: Float32Array, xs: readonly Float32Array[]): void {
    const k = kernels();
    const mem = k.memory;
    const dim = q.length;
    const padded = Math.ceil(dim / 4) * 4;
    const qPtr = mem.alloc(padded * 4);
    const xPtr = mem.alloc(Math.max(1, xs.length) * padded * 4);
    const outPtr = mem.alloc(Math.max(1, xs.length) * 16);
    try {
      const f32 = mem.f32();
      f32.fill(0, qPtr >> 2, (qPtr >> 2) + padded);
      f32.set(q, qPtr >> 2);
      f32.fill(0, xPtr >> 2, (xPtr >> 2) + xs.length * padded);
      xs.forEach((x, j) => f32.set(x, (xPtr >> 2) + j * padded));
      k.exactDotNorm(qPtr, xPtr, xs.length, padded, outPtr);
      let f64 = mem.f64();
      xs.forEach((x, j) => {
        assert.ok(Object.is(f64[(outPtr >> 3) + 2 * j], dot(q, x)), `dot of vector ${j}, dim ${dim}: ${f64[(outPtr >> 3) + 2 * j]} vs ${dot(q, x)}`);
        assert.ok(Object.is(f64[(outPtr >> 3) + 2 * j + 1], dot(x, x)), `squared norm of vector ${j}, dim ${dim}`);
      });
      k.exactSquaredDistance(qPtr, xPtr, xs.length, padded, outPtr);
      f64 = mem.f64();
      xs.forEach((x, j) => assert.ok(Object.is(f64[(outPtr >> 3) + j], squaredDistance(q, x)), `squared distance of vector ${j}, dim ${dim}`));
    } finally {
      mem.free(qPtr, padded * 4);
      mem.free(xPtr, Math.max(1, xs.length) * padded * 4);
      mem.free(outPtr, Math.max(1, xs.length) * 16);
    }
  }

  it('agrees on gaussian vectors of every dim from 1 to 40, and 100, 384, 512, 1536', () => {
    const rand = rng(11);
    for (const dim of [...Array.from({ length: 40 }, (_, i) => i + 1), 100, 384, 512, 1536]) {
      const vec = () => Float32Array.from({ length: dim }, () => gaussian(rand));
      agree(vec(), Array.from({ length: 5 }, vec));
    }
  });

  it('agrees on arbitrary float32 values: huge, tiny, subnormal, signed zeros, infinities', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 70 }).chain((dim) =>
          fc.tuple(
            fc.float32Array({ minLength: dim, maxLength: dim, noNaN: true }),
            fc.array(fc.float32Array({ minLength: dim, maxLength: dim, noNaN: true }), { minLength: 0, maxLength: 4 }),
          ),
        ),
        ([q, xs]) => agree(q, xs),
      ),
      { numRuns: 300, seed: 20261129 },
    );
  });

  it('refuses a dim that is not a positive multiple of 4', () => {
    const k = kernels();
    assert.throws(() => k.exactDotNorm(0, 0, 1, 6, 0), RangeError);
    assert.throws(() => k.exactSquaredDistance(0, 0, 1, 0, 0), RangeError);
    assert.throws(() => k.exactDotNorm(0, 0, -1, 8, 0), RangeError);
  });
});

describe('selection kernel: the positions at or above a floor', () => {
  /** Runs select_at_least on `scores` with `floor` and returns the positions it wrote. */
  function select(scores: Float32Array, floor: number): number[] {
    const k = kernels();
    const mem = k.memory;
    const at = mem.alloc(Math.max(1, scores.length) * 4);
    // One more slot than needed, filled with a sentinel: the kernel must write nothing past n.
    const out = mem.alloc((scores.length + 1) * 4);
    try {
      mem.f32().set(scores, at >> 2);
      mem.i32().fill(-7, out >> 2, (out >> 2) + scores.length + 1);
      const count = k.selectAtLeast(at, scores.length, floor, out);
      const written = Array.from(mem.i32().subarray(out >> 2, (out >> 2) + count));
      assert.equal(mem.i32()[(out >> 2) + scores.length], -7, 'nothing written past n positions');
      return written;
    } finally {
      mem.free(out, (scores.length + 1) * 4);
      mem.free(at, Math.max(1, scores.length) * 4);
    }
  }

  it('agrees with the reference on arbitrary scores and floors, every length mod 4 (NaN never selected)', () => {
    fc.assert(
      fc.property(fc.float32Array({ minLength: 0, maxLength: 70 }), fc.oneof(fc.float({ noNaN: true }), fc.constantFrom(-Infinity, Infinity, 0, -0)), (scores, floor) => {
        assert.deepEqual(select(scores, floor), referenceSelectAtLeast(scores, floor));
      }),
      { numRuns: 500, seed: 20261130 },
    );
  });

  it('selects a score equal to the floor, and nothing above Infinity or at NaN', () => {
    const scores = Float32Array.from([0.5, 0.25, 0.5, 1, NaN, -Infinity, Infinity]);
    assert.deepEqual(select(scores, 0.5), [0, 2, 3, 6]);
    assert.deepEqual(select(scores, -Infinity), [0, 1, 2, 3, 5, 6]);
    assert.deepEqual(select(scores, Infinity), [6]);
    assert.deepEqual(select(scores, NaN), []);
    assert.deepEqual(select(new Float32Array(0), 0), []);
  });

  it('writes every position when all pass, in order, for a block of 1024', () => {
    const scores = Float32Array.from({ length: 1024 }, (_, i) => i % 7);
    assert.deepEqual(select(scores, 0), Array.from({ length: 1024 }, (_, i) => i));
    assert.deepEqual(select(scores, 6), Array.from({ length: 1024 }, (_, i) => i).filter((i) => i % 7 === 6));
  });
});

describe('int8 rows kernels: norms and decoding of many codes at once', () => {
  it('int8_norms gives int8CodeNorm() of each code bit for bit, extreme codes included', () => {
    const k = kernels();
    const mem = k.memory;
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 70 }), fc.integer({ min: 0, max: 9 }), fc.integer(), (dim, n, seed) => {
        const padded = Math.ceil(dim / 16) * 16;
        const next = rng(seed);
        const codes = new Int8Array(n * padded);
        for (let r = 0; r < n; r++) {
          for (let i = 0; i < dim; i++) {
            const u = next();
            codes[r * padded + i] = u < 0.1 ? 127 : u < 0.2 ? -127 : u < 0.25 ? -128 : Math.round(next() * 254 - 127);
          }
        }
        const at = mem.alloc(codes.length + 16);
        // One norm more than n, a sentinel: nothing is written past the n norms.
        const out = mem.alloc(4 * n + 4);
        try {
          mem.i8().set(codes, at);
          mem.f32()[(out >> 2) + n] = 12345;
          k.int8Norms(at, n, padded, out);
          const u8 = new Uint8Array(codes.buffer);
          for (let r = 0; r < n; r++) assert.ok(Object.is(mem.f32()[(out >> 2) + r], int8CodeNorm(u8, r * padded, dim)), `code ${r}`);
          assert.equal(mem.f32()[(out >> 2) + n], 12345);
        } finally {
          mem.free(out, 4 * n + 4);
          mem.free(at, codes.length + 16);
        }
      }),
      { numRuns: 300, seed: 20261208 },
    );
    // The largest sum: 127² at the most dimensions int8 kernels take stays exact in i32.
    const dim = MAX_I8_DIM;
    const at = mem.alloc(dim);
    const out = mem.alloc(4);
    try {
      mem.i8().fill(-127, at, at + dim);
      k.int8Norms(at, 1, dim, out);
      assert.equal(mem.f32()[out >> 2], Math.fround(Math.sqrt(Math.fround(127 * 127 * dim))));
    } finally {
      mem.free(out, 4);
      mem.free(at, dim);
    }
  });

  it('int8_decode decodes as the int8 codec does, bit for bit, rows of any dim back to back and nothing past them', () => {
    const k = kernels();
    const mem = k.memory;
    const codec = getScalarCodec('int8');
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 6 }), fc.array(fc.float({ noNaN: true, noDefaultInfinity: true }), { minLength: 6, maxLength: 6 }), fc.integer(), (dim, n, scales, seed) => {
        const stride = Math.ceil(dim / 16) * 16;
        const next = rng(seed);
        const codes = new Uint8Array(n * stride);
        for (let i = 0; i < codes.length; i++) codes[i] = Math.floor(next() * 256);
        const codesAt = mem.alloc(codes.length);
        const scalesAt = mem.alloc(4 * n);
        const out = mem.alloc(4 * n * dim + 4);
        try {
          mem.u8().set(codes, codesAt);
          mem.f32().set(scales.slice(0, n), scalesAt >> 2);
          mem.f32()[(out >> 2) + n * dim] = 12345;
          k.int8Decode(codesAt, stride, scalesAt, n, dim, out);
          const want = new Float32Array(dim);
          for (let r = 0; r < n; r++) {
            codec.decode(codes.subarray(r * stride, r * stride + dim), Math.fround(scales[r]!), want);
            for (let i = 0; i < dim; i++) assert.ok(Object.is(mem.f32()[(out >> 2) + r * dim + i], want[i]), `row ${r}, value ${i}`);
          }
          assert.equal(mem.f32()[(out >> 2) + n * dim], 12345);
        } finally {
          mem.free(out, 4 * n * dim + 4);
          mem.free(scalesAt, 4 * n);
          mem.free(codesAt, codes.length);
        }
      }),
      { numRuns: 300, seed: 20261208 },
    );
  });
});

describe('router selection kernels: route scores, and the first round of bucketing', () => {
  it('route_scores gives the reference its scores bit for bit in every mode, and the least and greatest (NaN once any is)', () => {
    const k = kernels();
    const mem = k.memory;
    const score = fc.oneof({ weight: 8, arbitrary: fc.float() }, { weight: 1, arbitrary: fc.constantFrom(NaN, Infinity, -Infinity, 0, -0) });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(score, fc.double({ noNaN: true, min: -1e6, max: 1e6 })), { minLength: 0, maxLength: 40 }),
        fc.constantFrom(ROUTE_PLAIN, ROUTE_SPHERE, ROUTE_WIDEN),
        fc.double({ noNaN: true, min: -10, max: 10 }),
        fc.double({ noNaN: true, min: 0, max: 10 }),
        (pages, mode, offset, qn) => {
          const n = pages.length;
          const ks = Float32Array.from(pages.map((p) => p[0]));
          const coef = Float64Array.from(pages.map((p) => p[1]));
          const kAt = mem.alloc(4 * n + 16);
          const coefAt = mem.alloc(8 * n + 16);
          // One float64 more than n, a sentinel: nothing is written past the n scores.
          const outAt = mem.alloc(8 * n + 16);
          const bounds = mem.alloc(16);
          try {
            mem.f32().set(ks, kAt >> 2);
            mem.f64().set(coef, coefAt >> 3);
            mem.f64()[(outAt >> 3) + n] = 12345;
            k.routeScores(kAt, n, mode, offset, qn, coefAt, outAt, bounds);
            const want = referenceRouteScores(ks, mode, offset, qn, coef);
            const got = Array.from(mem.f64().subarray(outAt >> 3, (outAt >> 3) + n));
            for (let j = 0; j < n; j++) assert.ok(Object.is(got[j], want.scores[j]), `page ${j}: ${got[j]} against ${want.scores[j]}`);
            assert.equal(mem.f64()[(outAt >> 3) + n], 12345);
            assert.ok(Object.is(mem.f64()[bounds >> 3], want.least), `least ${mem.f64()[bounds >> 3]} against ${want.least}`);
            assert.ok(Object.is(mem.f64()[(bounds >> 3) + 1], want.most), `most ${mem.f64()[(bounds >> 3) + 1]} against ${want.most}`);
          } finally {
            mem.free(bounds, 16);
            mem.free(outAt, 8 * n + 16);
            mem.free(coefAt, 8 * n + 16);
            mem.free(kAt, 4 * n + 16);
          }
        },
      ),
      { numRuns: 400, seed: 20261208 },
    );
  });

  it('bucket_select takes, keeps and counts as the reference does (its least and greatest kept too), over every score or a list of positions read in place, on crowded, tied and spread scores', () => {
    const k = kernels();
    const mem = k.memory;
    const values = fc.oneof(
      fc.array(fc.constantFrom(-1, -0.5, -0, 0, 0.25, 0.5, 1), { minLength: 2, maxLength: 300 }),
      fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: 2, maxLength: 600 }),
      fc.array(fc.double({ noNaN: true, noDefaultInfinity: true }), { minLength: 2, maxLength: 200 }),
    );
    fc.assert(
      fc.property(values, fc.nat(), fc.option(fc.integer({ min: 1, max: 2 ** 31 - 1 }), { nil: undefined }), (list, pick, subset) => {
        const s = Float64Array.from(list);
        // A later round reads the positions the round before kept (increasing), from the boundary it writes to.
        const positions = subset === undefined ? undefined : Array.from(s, (_, i) => i).filter((i) => (subset >> i % 31) & 1);
        const scored = positions ?? Array.from(s, (_, i) => i);
        const n = scored.length;
        if (n < 2) return;
        let least = Infinity;
        let most = -Infinity;
        for (const i of scored) {
          least = Math.min(least, s[i]!);
          most = Math.max(most, s[i]!);
        }
        if (!(most > least)) return;
        // BestIndices' bucketing: halves where the span overflows; none where it is too narrow.
        const f = Number.isFinite(most - least) ? 1 : 0.5;
        const scale = SELECT_BUCKETS / (most * f - least * f);
        if (!(Number.isFinite(scale) && scale > 0)) return;
        const need = 1 + (pick % n);
        const want = referenceBucketSelect(s, need, f, least * f, scale, positions);
        const sAt = mem.alloc(8 * s.length);
        const bucketOf = mem.alloc(n + 16);
        const counts = mem.alloc(4 * SELECT_BUCKETS);
        const taken = mem.alloc(4 * n);
        const boundary = mem.alloc(4 * n);
        const out = mem.alloc(24);
        try {
          mem.f64().set(s, sAt >> 3);
          if (positions !== undefined) mem.i32().set(positions, boundary >> 2);
          // Stale counts from an earlier call: the kernel zeroes them.
          mem.i32().fill(99, counts >> 2, (counts >> 2) + SELECT_BUCKETS);
          k.bucketSelect(sAt, n, positions === undefined ? 0 : boundary, need, f, least * f, scale, bucketOf, counts, taken, boundary, out);
          const i32 = mem.i32();
          const c = i32[out >> 2]!;
          const kept = i32[(out >> 2) + 1]!;
          assert.deepEqual(Array.from(i32.subarray(taken >> 2, (taken >> 2) + c)), want.taken);
          assert.deepEqual(Array.from(i32.subarray(boundary >> 2, (boundary >> 2) + kept)), want.boundary);
          assert.deepEqual(Array.from(i32.subarray(counts >> 2, (counts >> 2) + SELECT_BUCKETS)), want.counts);
          assert.ok(c <= need && c + kept >= need, `taken ${c} and kept ${kept} against ${need}`);
          if (kept > 0) {
            assert.equal(mem.f64()[(out >> 3) + 1], want.least);
            assert.equal(mem.f64()[(out >> 3) + 2], want.most);
          }
        } finally {
          for (const [at, bytes] of [[out, 24], [boundary, 4 * n], [taken, 4 * n], [counts, 4 * SELECT_BUCKETS], [bucketOf, n + 16], [sAt, 8 * s.length]] as const) mem.free(at, bytes);
        }
      }),
      { numRuns: 400, seed: 20261208 },
    );
  });
});

describe('sign-sketch kernels: signs to bits, and bits apart', () => {
  /** Runs sign_sketch on `v` (zero-padded to whole words) and returns the words it wrote; the word after them must stay untouched. */
  function sketch(v: Float32Array): Uint32Array {
    const k = kernels();
    const mem = k.memory;
    const words = Math.ceil(v.length / 32);
    const at = mem.alloc(Math.max(1, words) * 128);
    const out = mem.alloc((words + 1) * 4);
    try {
      mem.f32().fill(0, at >> 2, (at >> 2) + words * 32);
      mem.f32().set(v, at >> 2);
      mem.i32().fill(-7, out >> 2, (out >> 2) + words + 1);
      k.signSketch(at, words, out);
      assert.equal(mem.i32()[(out >> 2) + words], -7, 'nothing written past the words');
      return Uint32Array.from(mem.i32().subarray(out >> 2, (out >> 2) + words));
    } finally {
      mem.free(out, (words + 1) * 4);
      mem.free(at, Math.max(1, words) * 128);
    }
  }

  /** Runs hamming_rows over `rows` (each `step` · 4 words) against `q` and returns the counts; the int32 after them must stay untouched. */
  function distances(rows: Uint32Array[], q: Uint32Array, step: number): number[] {
    const k = kernels();
    const mem = k.memory;
    const stride = 4 * step;
    const at = mem.alloc(Math.max(1, rows.length * stride) * 4);
    const qAt = mem.alloc(Math.max(1, stride) * 4);
    const out = mem.alloc((rows.length + 1) * 4);
    try {
      const i32 = mem.i32();
      rows.forEach((r, i) => i32.set(r, (at >> 2) + i * stride));
      i32.set(q, qAt >> 2);
      i32.fill(-7, out >> 2, (out >> 2) + rows.length + 1);
      k.hammingRows(at, rows.length, step, qAt, out);
      assert.equal(mem.i32()[(out >> 2) + rows.length], -7, 'nothing written past n rows');
      return Array.from(mem.i32().subarray(out >> 2, (out >> 2) + rows.length));
    } finally {
      mem.free(out, (rows.length + 1) * 4);
      mem.free(qAt, Math.max(1, stride) * 4);
      mem.free(at, Math.max(1, rows.length * stride) * 4);
    }
  }

  it('sign_sketch sets bit i exactly when component i is > 0: zeros of either sign, subnormals, infinities, every length', () => {
    const special = [0, -0, 1e-45, -1e-45, 1.17549435e-38, -1.17549435e-38, Infinity, -Infinity, 3.4028235e38, -3.4028235e38, 1, -1];
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constantFrom(...special), fc.float({ noNaN: true })), { minLength: 1, maxLength: 1100 }), (values) => {
        const v = Float32Array.from(values);
        assert.deepEqual(sketch(v), referenceSignSketch(v));
      }),
      { numRuns: 300, seed: 20261203 },
    );
  });

  it('hamming_rows counts the bits each row differs in, for 0 to 70 rows of 1 to 9 steps', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 0, max: 70 }), fc.integer(), (step, n, seed) => {
        const next = rng(seed);
        const word = () => (next() < 0.1 ? 0xffffffff : next() < 0.2 ? 0 : (next() * 2 ** 32) >>> 0);
        const q = Uint32Array.from({ length: 4 * step }, word);
        const rows = Array.from({ length: n }, () => Uint32Array.from({ length: 4 * step }, word));
        assert.deepEqual(distances(rows, q, step), rows.map((r) => referenceHamming(r, q)));
      }),
      { numRuns: 300, seed: 20261203 },
    );
  });

  it('hamming_rows: all bits apart at 64 steps (8,192 bits) counts every one (no lane overflows); rows of no bits are 0 apart', () => {
    const ones = new Uint32Array(256).fill(0xffffffff);
    assert.deepEqual(distances([ones, new Uint32Array(256)], new Uint32Array(256), 64), [8192, 0]);
    assert.deepEqual(distances([new Uint32Array(0), new Uint32Array(0)], new Uint32Array(0), 0), [0, 0]);
  });
});

describe('query-shift kernels: the distance and norms of two kernel queries', () => {
  /** Runs query_shift_i8 over two codes (zero-padded to a multiple of 4) and returns its four sums. */
  function shiftI8(a: Int8Array, sa: number, b: Int8Array, sb: number): number[] {
    const k = kernels();
    const mem = k.memory;
    const n = Math.ceil(a.length / 4) * 4;
    const at = mem.alloc(2 * n + 48);
    try {
      mem.i8().fill(0, at, at + 2 * n);
      mem.i8().set(a, at);
      mem.i8().set(b, at + n);
      const out = at + 2 * n + ((8 - ((at + 2 * n) % 8)) % 8);
      mem.f64().fill(NaN, out >> 3, (out >> 3) + 5);
      k.queryShiftI8(at, at + n, sa, sb, n, out);
      assert.ok(Number.isNaN(mem.f64()[(out >> 3) + 4]), 'nothing written past four sums');
      return Array.from(mem.f64().subarray(out >> 3, (out >> 3) + 4));
    } finally {
      mem.free(at, 2 * n + 48);
    }
  }

  /** The same over two float32 queries. */
  function shiftF32(a: Float32Array, b: Float32Array): number[] {
    const k = kernels();
    const mem = k.memory;
    const n = Math.ceil(a.length / 4) * 4;
    const at = mem.alloc(8 * n + 40);
    try {
      mem.f32().fill(0, at >> 2, (at >> 2) + 2 * n);
      mem.f32().set(a, at >> 2);
      mem.f32().set(b, (at >> 2) + n);
      const out = at + 8 * n;
      mem.f64().fill(NaN, out >> 3, (out >> 3) + 5);
      k.queryShiftF32(at, at + 4 * n, n, out);
      assert.ok(Number.isNaN(mem.f64()[(out >> 3) + 4]), 'nothing written past four sums');
      return Array.from(mem.f64().subarray(out >> 3, (out >> 3) + 4));
    } finally {
      mem.free(at, 8 * n + 40);
    }
  }

  const values = (code: Int8Array, scale: number) => Float32Array.from(code, (c) => c * scale);

  it('int8 codes and their float32 values give the reference sums, bit for bit, at every length', () => {
    const scale = fc.oneof(fc.float({ min: Math.fround(1e-30), max: Math.fround(1e30), noNaN: true }), fc.constantFrom(0, 1, Math.fround(1 / 127), Math.fround(3.4028235e38 / 127)));
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 600 }), fc.integer(), scale, scale, (length, seed, sa, sb) => {
        const next = rng(seed);
        const code = () => Int8Array.from({ length }, () => Math.round(next() * 254) - 127);
        const a = code();
        const b = code();
        const expected = referenceQueryShift(values(a, sa), values(b, sb));
        assert.deepEqual(shiftI8(a, sa, b, sb), expected);
        assert.deepEqual(shiftF32(values(a, sa), values(b, sb)), expected);
      }),
      { numRuns: 300, seed: 20261203 },
    );
  });

  it('float32 queries of any values give the reference sums (zeros of both signs, subnormals, huge values)', () => {
    const value = fc.oneof(fc.float({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom(0, -0, 1e-45, -1e-45, 3.4028235e38, -3.4028235e38));
    fc.assert(
      fc.property(fc.array(fc.tuple(value, value), { maxLength: 300 }), (pairs) => {
        const a = Float32Array.from(pairs, (p) => p[0]);
        const b = Float32Array.from(pairs, (p) => p[1]);
        assert.deepEqual(shiftF32(a, b), referenceQueryShift(a, b));
      }),
      { numRuns: 300, seed: 20261203 },
    );
  });
});

it('kernel scratch: a view of linear memory detached by growth is refused as an input (inputCopied), not copied in as nothing', () => {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const view = new Float32Array(memory.buffer, 64, 100);
  inputCopied(view, 100);
  memory.grow(1);
  assert.equal(view.length, 0, 'growth detaches the view');
  assert.throws(() => inputCopied(view, 100), RangeError);
  const at = kernelScratch(1 << 16);
  assert.equal(at % 16, 0, '16-byte aligned');
  assert.equal(kernelScratch(16), at, 'a smaller request takes the same block');
});

it('linear memory, guarded: a write past a block is caught when it is freed and by checkGuards; a free of another size is refused; unguarded blocks free as before', () => {
  const mem = new LinearMemory();
  const was = LinearMemory.guardBlocks;
  LinearMemory.guardBlocks = false;
  const plain = mem.alloc(40);
  LinearMemory.guardBlocks = true;
  try {
    const a = mem.alloc(40);
    const b = mem.alloc(100);
    mem.u8().fill(7, a, a + 48);
    mem.checkGuards();
    mem.free(a, 40);
    // The freed block (with its guard) is handed out again at the same size.
    assert.equal(mem.alloc(33), a);
    mem.u8()[b + 112] = 1;
    assert.throws(() => mem.checkGuards(), RangeError);
    assert.throws(() => mem.free(b, 100), RangeError);
    const c = mem.alloc(16);
    assert.throws(() => mem.free(c, 32), RangeError);
    mem.free(c, 16);
  } finally {
    LinearMemory.guardBlocks = was;
  }
  mem.free(plain, 40);
});

describe('page-sum kernels: the largest magnitude of each row, and the rows summed on a grid', () => {
  /** Float32 values of every kind a decoded page can hold, and those no codec makes (±∞, NaN), in rows of `dim`. */
  const values = fc.oneof(
    fc.float({ noDefaultInfinity: false }),
    fc.constantFrom(0, -0, 2 ** -149, -(2 ** -149), 3e38, -3e38, 0.5, -0.5, 0.49999997, 1.5, -2.5, Infinity, -Infinity, NaN),
    fc.float({ min: -1, max: 1, noNaN: true }),
  );
  const block = fc.integer({ min: 1, max: 13 }).chain((dim) => fc.tuple(fc.constant(dim), fc.array(fc.array(values, { minLength: dim, maxLength: dim }), { minLength: 0, maxLength: 9 })));

  /** Runs both kernels on `rows` and returns what they wrote; the float and int32 past each output must stay untouched. */
  function run(dim: number, rows: number[][], up: number, start: Int32Array): { maxes: number[]; sums: Int32Array } {
    const k = kernels();
    const mem = k.memory;
    const n = rows.length;
    const at = mem.alloc(Math.max(1, n * dim) * 4);
    const out = mem.alloc((n + 1) * 4);
    const sums = mem.alloc((dim + 1) * 4);
    try {
      mem.f32().set(rows.flat(), at >> 2);
      mem.f32().fill(-7, out >> 2, (out >> 2) + n + 1);
      mem.i32().set(start, sums >> 2);
      mem.i32()[(sums >> 2) + dim] = -7;
      k.rowMaxAbs(at, n, dim, out);
      k.sumMultiples(at, n, dim, up, sums);
      assert.equal(mem.f32()[(out >> 2) + n], -7, 'nothing written past the maxima');
      assert.equal(mem.i32()[(sums >> 2) + dim], -7, 'nothing written past the sums');
      return { maxes: Array.from(mem.f32().subarray(out >> 2, (out >> 2) + n)), sums: Int32Array.from(mem.i32().subarray(sums >> 2, (sums >> 2) + dim)) };
    } finally {
      mem.free(sums, (dim + 1) * 4);
      mem.free(out, (n + 1) * 4);
      mem.free(at, Math.max(1, n * dim) * 4);
    }
  }

  it('match the TypeScript reference bit for bit on any values, grids and starting sums, any dimension (whole steps of 4 and tails)', () => {
    fc.assert(
      fc.property(block, fc.integer({ min: -160, max: 29 }), fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), { minLength: 13, maxLength: 13 }), ([dim, rows], shift, start) => {
        const flat = Float32Array.from(rows.flat());
        // A grid as page sums choose one: every finite multiple below 2^30 in magnitude (the kernel's
        // contract; a page's are below 2^22), the finite values' largest in [2^E, 2^(E+1)).
        let largest = 0;
        for (const x of flat) if (Number.isFinite(x) && Math.abs(x) > largest) largest = Math.abs(x);
        const e = largest === 0 ? 0 : Math.floor(Math.log2(largest)) + (2 ** Math.floor(Math.log2(largest)) > largest ? -1 : 0);
        const up = 2 ** (shift - e);
        const want = Int32Array.from(start.slice(0, dim));
        referenceSumMultiples(flat, dim, up, want);
        const got = run(dim, rows, up, Int32Array.from(start.slice(0, dim)));
        assert.deepEqual(got.maxes, referenceRowMaxAbs(flat, dim));
        assert.deepEqual(got.sums, want);
      }),
      { numRuns: 500 },
    );
  });

  it('at the page sizes and dimensions stores use (192 rows of 100, 128 and 512), ±∞ counting 0 and NaN passed over', () => {
    const next = rng(17);
    for (const dim of [100, 128, 512]) {
      const rows = Array.from({ length: 192 }, () => Array.from({ length: dim }, () => Math.fround((next() - 0.5) * 2)));
      rows[3]![7] = Infinity;
      rows[5]![dim - 1] = -Infinity;
      rows[9]![0] = NaN;
      const flat = Float32Array.from(rows.flat());
      const want = new Int32Array(dim);
      referenceSumMultiples(flat, dim, 2 ** 21, want);
      const got = run(dim, rows, 2 ** 21, new Int32Array(dim));
      assert.deepEqual(got.sums, want, `${dim}-d`);
      assert.deepEqual(got.maxes, referenceRowMaxAbs(flat, dim), `${dim}-d`);
      assert.equal(got.maxes[3], Infinity);
      assert.ok(got.maxes[9]! < 1, 'the NaN is passed over');
    }
  });
});
