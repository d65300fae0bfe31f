import { maxAbsFinite, scalarSizes, type ScalarCodec, type ScalarCodecName } from './codec.js';
import { MemstoreError } from '../errors.js';

/** The two OCP 8-bit floating point (OFP8) formats. */
export type Fp8Format = 'e4m3' | 'e5m2';

interface Fp8Layout {
  readonly codecName: ScalarCodecName;
  readonly mantissaBits: number;
  readonly exponentBits: number;
  readonly bias: number;
  /** Magnitude code (sign bit clear) of the largest finite value; encode never goes above it. */
  readonly maxCode: number;
  /** True for E5M2, whose all-ones exponent holds IEEE-style Inf and NaN; E4M3 only has NaN at S.1111.111. */
  readonly ieeeSpecials: boolean;
}

const E4M3: Fp8Layout = { codecName: 'fp8-e4m3', mantissaBits: 3, exponentBits: 4, bias: 7, maxCode: 0x7e, ieeeSpecials: false };
const E5M2: Fp8Layout = { codecName: 'fp8-e5m2', mantissaBits: 2, exponentBits: 5, bias: 15, maxCode: 0x7b, ieeeSpecials: true };

/** The decode table straight from the OFP8 definition: the value of each of the 256 codes. */
function buildDecodeTable(f: Fp8Layout): Float32Array {
  const table = new Float32Array(256);
  const mantissaMask = (1 << f.mantissaBits) - 1;
  const exponentMax = (1 << f.exponentBits) - 1;
  for (let c = 0; c < 256; c++) {
    const e = (c >>> f.mantissaBits) & exponentMax;
    const m = c & mantissaMask;
    let v: number;
    if (f.ieeeSpecials && e === exponentMax) v = m === 0 ? Infinity : NaN;
    else if (!f.ieeeSpecials && e === exponentMax && m === mantissaMask) v = NaN;
    else if (e === 0) v = m * 2 ** (1 - f.bias - f.mantissaBits);
    else v = ((1 << f.mantissaBits) + m) * 2 ** (e - f.bias - f.mantissaBits);
    table[c] = (c & 0x80) === 0 ? v : -v;
  }
  return table;
}

/** Value of each E4M3 code; NaN at 0x7f and 0xff, -0 at 0x80. */
export const fp8E4M3DecodeTable: Float32Array = buildDecodeTable(E4M3);
/** Value of each E5M2 code; ±Inf at 0x7c/0xfc, NaN at 0x7d–0x7f and 0xfd–0xff, -0 at 0x80. */
export const fp8E5M2DecodeTable: Float32Array = buildDecodeTable(E5M2);

/** Largest finite E4M3 value; the per-vector scale maps max|x| onto it. */
export const FP8_E4M3_MAX = 448;
/** Largest finite E5M2 value; the per-vector scale maps max|x| onto it. */
export const FP8_E5M2_MAX = 57344;

// The sign and exponent of a double are read from its high word; the scratch pair avoids per-call
// allocation and the index keeps the read correct on either host byte order.
const f64 = new Float64Array(1);
const f64Words = new Uint32Array(f64.buffer);
const HIGH_WORD = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0;

const MIN_NORMAL_F32 = 2 ** -126;

// Adding 1.5 * 2^52 moves any |r| < 2^51 into a binade whose spacing is 1, so the addition
// itself rounds r to an integer with the FPU's ties-to-even; subtracting it back is exact.
const RNE_MAGIC = 6755399441055744;

/**
 * Makes the scalar encoder for one format. It rounds the double `x` itself (not a float32 of it),
 * so x / s is rounded exactly once; see CODECS.md for why that equals rounding the exact quotient.
 */
function makeEncoder(f: Fp8Layout, table: Float32Array): (x: number) => number {
  const fmax = table[f.maxCode]!;
  const mantissaBits = f.mantissaBits;
  const minNormalExponent = 1 - f.bias;
  const maxCode = f.maxCode;
  // 2^(mantissaBits - e) for each binade e the encoder can meet: scales |x| so that one step of
  // the format's spacing in that binade is 1. Binades below the normal range share the subnormal spacing.
  const maxExponent = (f.maxCode >>> mantissaBits) - f.bias;
  const stepScale = new Float64Array(maxExponent - minNormalExponent + 1);
  for (let e = minNormalExponent; e <= maxExponent; e++) stepScale[e - minNormalExponent] = 2 ** (mantissaBits - e);

  return (x: number): number => {
    f64[0] = x;
    const high = f64Words[HIGH_WORD]!;
    const sign = (high >>> 24) & 0x80;
    const a = Math.abs(x);
    // fmax is representable, so nothing below it rounds past it; everything from fmax up, including
    // what IEEE rounding would send to the next code (NaN in E4M3, Inf in E5M2), saturates here.
    if (!(a < fmax)) {
      if (!Number.isFinite(a)) throw new MemstoreError('INVALID_VECTOR', 'fp8 cannot encode a non-finite value');
      return sign | maxCode;
    }
    const e = Math.max(((high >>> 20) & 0x7ff) - 1023, minNormalExponent);
    // Power-of-two scaling is exact, so the only rounding is this one, to a whole number of steps.
    const steps = a * stepScale[e - minNormalExponent]! + RNE_MAGIC - RNE_MAGIC;
    // Codes are monotonic in magnitude: step counts continue across binades, and a round-up that
    // fills the mantissa carries into the exponent field on its own.
    return sign | (((e - minNormalExponent) << mantissaBits) + steps);
  };
}

/**
 * E4M3 code of `x`: round to nearest, ties to even; magnitudes past 448 saturate to ±448; the sign of
 * zero is kept (-0 and negatives that round to zero give 0x80). Throws INVALID_VECTOR for Inf/NaN.
 */
export const encodeE4M3: (x: number) => number = makeEncoder(E4M3, fp8E4M3DecodeTable);
/**
 * E5M2 code of `x`: round to nearest, ties to even; magnitudes past 57344 saturate to ±57344; the sign of
 * zero is kept (-0 and negatives that round to zero give 0x80). Throws INVALID_VECTOR for Inf/NaN.
 */
export const encodeE5M2: (x: number) => number = makeEncoder(E5M2, fp8E5M2DecodeTable);

/** The code of `x` in `format`; see encodeE4M3 / encodeE5M2. */
export function encodeFp8(x: number, format: Fp8Format): number {
  return format === 'e4m3' ? encodeE4M3(x) : encodeE5M2(x);
}

/**
 * For each code c, G(c)² in float64, where G(c) = h(c) + 2⁻²⁴ · |value(c)| bounds |x/s − value(c)|
 * for any x that encodes to c, plus the float32 rounding of decode (relative part; CODECS.md, "Error
 * bounds"). h(c) is half the larger of the gaps to the neighbouring values of |value(c)|: encode
 * rounds to nearest, and x/s may lie on either side. The largest finite value has no neighbour above;
 * x/s passes it by at most fmax · 2⁻²⁴ (+ an absolute term), far less than the half gap below.
 * Inf and NaN codes, never produced by encode, bound nothing.
 */
function buildErrorSquared(f: Fp8Layout, table: Float32Array): Float64Array {
  const out = new Float64Array(256);
  for (let c = 0; c < 256; c++) {
    const m = c & 0x7f;
    if (m > f.maxCode) {
      out[c] = Infinity;
      continue;
    }
    const v = table[m]!;
    const below = m === 0 ? table[1]! : v - table[m - 1]!;
    const above = m === f.maxCode ? 0 : table[m + 1]! - v;
    const g = Math.max(below, above) / 2 + 2 ** -24 * v;
    out[c] = g * g;
  }
  return out;
}

function makeCodec(f: Fp8Layout, table: Float32Array, fmax: number, encodeOne: (x: number) => number): ScalarCodec {
  const errorSquared = buildErrorSquared(f, table);
  // Per component, in absolute terms: 2⁻¹⁵⁰ for a decoded value that is a float32 subnormal, and
  // fmax · 2⁻¹⁵⁰ by which a saturated x/s can pass fmax when the scale itself is subnormal.
  const absolute = (fmax + 1) * 2 ** -150;
  const saturatedSquared = errorSquared[f.maxCode]!;
  const largestSquared = (fmax * 2 ** -23) ** 2;
  return {
    name: f.codecName,
    bytesPerDim: 1,
    ...scalarSizes(1),
    scaled: true,

    encode(src: Float32Array, out: Uint8Array): number {
      const n = src.length;
      if (out.length < n) {
        throw new MemstoreError('INVALID_ARGUMENT', `${f.codecName} code needs ${n} bytes, got ${out.length}`);
      }
      const max = maxAbsFinite(src);
      const s = Math.fround(max / fmax);
      // Covers the zero vector and vectors so small that s underflows float32: both decode to zeros.
      if (s === 0) {
        out.fill(0, 0, n);
        return 0;
      }
      for (let i = 0; i < n; i++) out[i] = encodeOne(src[i]! / s);
      return s;
    },

    codeError(code: Uint8Array, scale: number, dim: number): number {
      // A damaged scale bounds nothing; a zero one is exact arithmetic below (all codes 0x00).
      if (!(scale >= 0 && scale < Infinity)) return Infinity;
      let sum = 0;
      let saturated = 0;
      for (let i = 0; i < dim; i++) {
        const c = code[i]!;
        if ((c & 0x7f) === f.maxCode) saturated++;
        else sum += errorSquared[c]!;
      }
      if (sum === Infinity) return Infinity;
      // With a normal scale the largest component is within fmax · 2⁻²⁴ of s · fmax, and decodes to
      // within as much again: one of the saturated codes is that one. Each term added is nonnegative,
      // so the float64 sum's rounding stays relative to it.
      if (saturated > 0 && scale >= MIN_NORMAL_F32) sum += (saturated - 1) * saturatedSquared + largestSquared;
      else sum += saturated * saturatedSquared;
      return (scale * Math.sqrt(sum) + absolute * Math.sqrt(dim)) * (1 + (dim + 8) * 2 ** -52);
    },

    decode(code: Uint8Array, scale: number, out: Float32Array): void {
      const n = out.length;
      if (code.length < n) {
        throw new MemstoreError('INVALID_ARGUMENT', `${f.codecName} code of ${n} dimensions needs ${n} bytes, got ${code.length}`);
      }
      for (let i = 0; i < n; i++) out[i] = scale * table[code[i]!]!;
    },
  };
}

/** OFP8 E4M3 with a per-vector float32 scale mapping max|x| to 448. See CODECS.md. */
export const fp8E4M3Codec: ScalarCodec = makeCodec(E4M3, fp8E4M3DecodeTable, FP8_E4M3_MAX, encodeE4M3);
/** OFP8 E5M2 with a per-vector float32 scale mapping max|x| to 57344. See CODECS.md. */
export const fp8E5M2Codec: ScalarCodec = makeCodec(E5M2, fp8E5M2DecodeTable, FP8_E5M2_MAX, encodeE5M2);
