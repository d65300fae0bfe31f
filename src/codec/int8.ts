import { maxAbsFinite, scalarSizes, type ScalarCodec } from './codec.js';
import { MemstoreError } from '../errors.js';

/** Largest code magnitude; -128 is never emitted so that negating a code cannot overflow. */
export const INT8_MAX_CODE = 127;

// Adding 1.5 * 2^52 moves any |r| < 2^51 into a binade whose spacing is 1, so the addition
// itself rounds r to an integer with the FPU's ties-to-even; subtracting it back is exact.
const RNE_MAGIC = 6755399441055744;
const MIN_NORMAL_F32 = 2 ** -126;

// One shared scratch pair for the bit cast below; encode must not allocate.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * Symmetric int8: one float32 scale s = fround(max|x| / 127) per vector and two's-complement
 * codes round_half_even(x / s) clamped to [-127, 127]. See CODECS.md.
 */
export const int8Codec: ScalarCodec = {
  name: 'int8',
  bytesPerDim: 1,
  ...scalarSizes(1),
  scaled: true,

  encode(src: Float32Array, out: Uint8Array): number {
    const n = src.length;
    if (out.length < n) throw new MemstoreError('INVALID_ARGUMENT', `int8 code needs ${n} bytes, got ${out.length}`);
    const max = maxAbsFinite(src);
    let s = Math.fround(max / INT8_MAX_CODE);
    if (Math.fround(s * INT8_MAX_CODE) === Infinity) {
      // Only max = 3.4028235e38 (the float32 maximum) rounds s up this far. One float32 step down
      // keeps every decoded value finite; x / s then lands a hair above 127 and rounds to 127.
      f32[0] = s;
      u32[0] = u32[0]! - 1;
      s = f32[0]!;
    }
    // Covers the zero vector and vectors so small that s underflows float32: both decode to zeros.
    if (s === 0) {
      out.fill(0, 0, n);
      return 0;
    }
    for (let i = 0; i < n; i++) {
      let c = src[i]! / s + RNE_MAGIC - RNE_MAGIC;
      // Only a subnormal s can be rounded far enough below max/127 for |c| to pass 127.
      if (c > INT8_MAX_CODE) c = INT8_MAX_CODE;
      else if (c < -INT8_MAX_CODE) c = -INT8_MAX_CODE;
      out[i] = c & 0xff;
    }
    return s;
  },

  /**
   * Each component is rounded to the nearest multiple of s, so it is off by at most s/2; clamping at
   * ±127 adds at most 127 · 2⁻²⁴ · s (s is max/127 rounded to float32). A zero scale (the zero
   * vector, or one so small s underflowed) and a subnormal one give no bound.
   */
  codeError(_code: Uint8Array, scale: number, dim: number): number {
    return scale >= MIN_NORMAL_F32 ? (0.5 + 127 * 2 ** -23) * scale * Math.sqrt(dim) : Infinity;
  },

  decode(code: Uint8Array, scale: number, out: Float32Array): void {
    const n = out.length;
    if (code.length < n) {
      throw new MemstoreError('INVALID_ARGUMENT', `int8 code of ${n} dimensions needs ${n} bytes, got ${code.length}`);
    }
    for (let i = 0; i < n; i++) out[i] = scale * ((code[i]! << 24) >> 24);
  },
};
