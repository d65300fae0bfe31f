import { scalarSizes, type ScalarCodec } from './codec.js';
import { MemstoreError } from '../errors.js';

// One shared scratch pair for bit casts: encode runs once per inserted vector and must not allocate.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

const TWO_POW_112 = 2 ** 112;

/** Largest finite binary16 value; codes never exceed this magnitude. */
export const F16_MAX = 65504;

/**
 * Rounds the float32 with bit pattern `bits` to binary16 (round to nearest, ties to even) and
 * returns the 16-bit code. Magnitudes from 65520 up, which IEEE rounds to infinity, saturate to
 * ±65504, so a finite input never yields an Inf or NaN code. Throws INVALID_VECTOR for Inf/NaN.
 *
 * Working on the float32 bits rounds exactly once; going through an intermediate precision
 * first (e.g. rounding to 11 bits, then to 10) would misround values just past a midpoint.
 */
export function f32BitsToF16(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const mag = bits & 0x7fffffff;
  if (mag >= 0x477ff000) {
    // 0x477ff000 is 65520, the midpoint between 65504 and the first value past the format.
    if (mag >= 0x7f800000) throw new MemstoreError('INVALID_VECTOR', 'f16 cannot encode a non-finite value');
    return sign | 0x7bff;
  }
  if (mag >= 0x38800000) {
    // At or above 2^-14 the result is normal: rebias the exponent (127 -> 15) and drop 13
    // mantissa bits. A round-up carry out of the mantissa correctly bumps the exponent.
    const h = (mag - 0x38000000) >>> 13;
    const rest = mag & 0x1fff;
    return sign | (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1) ? h + 1 : h);
  }
  // At or below 2^-25 (half the smallest subnormal) the result is zero; the exact tie goes to even, i.e. zero.
  if (mag <= 0x33000000) return sign;
  // Subnormal result: the code is |x| / 2^-24 rounded. With the hidden bit restored, |x| =
  // m * 2^(e - 150), so the code is m shifted right by 126 - e (between 14 and 24 here).
  const shift = 126 - (mag >>> 23);
  const m = (mag & 0x7fffff) | 0x800000;
  const h = m >>> shift;
  const rest = m & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  // h + 1 may reach 0x400, which is exactly the smallest normal.
  return sign | (rest > half || (rest === half && (h & 1) === 1) ? h + 1 : h);
}

/** The value of binary16 code `h` (IEEE 754 decoding, including ±Inf and NaN codes). */
export function f16ToF32(h: number): number {
  const mag = h & 0x7fff;
  let v: number;
  if (mag >= 0x7c00) {
    v = mag === 0x7c00 ? Infinity : NaN;
  } else {
    // The same shift-and-multiply the SIMD kernels use; exact for normals and subnormals alike.
    u32[0] = mag << 13;
    v = f32[0]! * TWO_POW_112;
  }
  return (h & 0x8000) === 0 ? v : -v;
}

/**
 * h(E)² for each high byte of a code, E its exponent field: encode rounds a float32 to nearest, so x
 * is within half a gap of value(code), and the larger of the two gaps around a value with exponent
 * E is 2^(max(E, 1) − 25) (the gap below a power of two is half the one above, and the subnormals'
 * 2⁻²⁴ continues the lowest binade's). Decoding is exact. Inf and NaN (E = 31) bound nothing.
 */
const errorSquaredByHighByte = Float64Array.from({ length: 256 }, (_, high) => {
  const e = (high >>> 2) & 0x1f;
  return e === 31 ? Infinity : 2 ** (2 * (Math.max(e, 1) - 26));
});

/** IEEE 754 binary16, two bytes little-endian per dimension, unscaled. See CODECS.md. */
export const f16Codec: ScalarCodec = {
  name: 'f16',
  bytesPerDim: 2,
  ...scalarSizes(2),
  scaled: false,

  encode(src: Float32Array, out: Uint8Array): number {
    const n = src.length;
    if (out.length < n * 2) {
      throw new MemstoreError('INVALID_ARGUMENT', `f16 code needs ${n * 2} bytes, got ${out.length}`);
    }
    // Checked before the first write so a rejected vector leaves `out` untouched.
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(src[i]!)) throw new MemstoreError('INVALID_VECTOR', `dimension ${i} is not finite`);
    }
    for (let i = 0, o = 0; i < n; i++, o += 2) {
      f32[0] = src[i]!;
      const h = f32BitsToF16(u32[0]!);
      out[o] = h & 0xff;
      out[o + 1] = h >>> 8;
    }
    return 1;
  },

  codeError(code: Uint8Array, _scale: number, dim: number): number {
    let sum = 0;
    for (let o = 1, end = 2 * dim; o < end; o += 2) {
      const high = code[o]!;
      // ±65504 takes every float32 from 65488 up, so it bounds nothing.
      if ((high & 0x7f) === 0x7b && code[o - 1] === 0xff) return Infinity;
      sum += errorSquaredByHighByte[high]!;
    }
    if (sum === Infinity) return Infinity;
    return Math.sqrt(sum) * (1 + (dim + 8) * 2 ** -52);
  },

  decode(code: Uint8Array, _scale: number, out: Float32Array): void {
    const n = out.length;
    if (code.length < n * 2) {
      throw new MemstoreError('INVALID_ARGUMENT', `f16 code of ${n} dimensions needs ${n * 2} bytes, got ${code.length}`);
    }
    for (let i = 0, o = 0; i < n; i++, o += 2) {
      out[i] = f16ToF32(code[o]! | (code[o + 1]! << 8));
    }
  },
};
