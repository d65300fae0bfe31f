import { maxAbsFinite, type Codec, type RqCodecName } from './codec.js';
import { MemstoreError } from '../errors.js';
import { rqCodeBytes, rqPlaneBytes, type RqBits } from '../kernels/contract.js';

/**
 * Rotated quantization (CODECS.md, "rq1, rq2, rq4"): the vector given is already rotated and
 * centered by the store's space (src/space/rotation.ts), so its coordinates look alike. Each
 * coordinate becomes a level u_i in [0, 2^bits) of a grid symmetric about zero, ŷ_i = u_i − m with
 * m = (2^bits − 1) / 2, scaled so that ŷ points as close to r as the grid allows; the scale F =
 * ‖r‖² / ⟨ŷ, r⟩ makes F·⟨ŷ, q⟩ an unbiased estimate of ⟨r, q⟩ for a random rotation (RaBitQ).
 */
export interface RqCodec extends Codec {
  readonly name: RqCodecName;
  readonly bits: RqBits;
  /** ‖r‖², as the code keeps it. */
  normSquared(code: Uint8Array, dim: number): number;
  /** ‖r − decode(code)‖ rounded up to float32, as the code keeps it. */
  residualError(code: Uint8Array, dim: number): number;
}

/**
 * A code's ‖e‖ and ‖r‖² (residualError, normSquared) and its factor F (the scale it was stored
 * with), into `out[at..at + 3)`: what the rescoring bound reads of each candidate (VectorIndex.rqTermsOf)
 * where the index holds the code in the codec's own layout.
 */
export function rqTermsOf(codec: RqCodec, code: Uint8Array, scale: number, dim: number, out: Float64Array, at: number): void {
  out[at] = codec.residualError(code, dim);
  out[at + 1] = codec.normSquared(code, dim);
  out[at + 2] = scale;
}

/**
 * The spacing of the uniform quantizer with 2^bits levels that minimizes mean squared error on a
 * Gaussian of unit variance (Max, 1960): after a random rotation the coordinates of a vector of norm
 * ‖r‖ in D dimensions are close to Gaussian with σ = ‖r‖ / √D, so the best grid for a vector is
 * near σ times this.
 */
const GAUSSIAN_STEP: Readonly<Record<RqBits, number>> = { 1: 1.596, 2: 0.9957, 4: 0.3352 };

/** Spacings tried per vector, from 0.7 to 1.3 times the Gaussian one, and the widest grid besides. */
const WINDOW_STEPS = 12;
const WINDOW_LOW = 0.7;
const WINDOW_HIGH = 1.3;

// Scratch reused by every encode: one vector at a time, no allocation per vector once grown.
let levels = new Uint8Array(0);
let best = new Uint8Array(0);
/** The least float32 at or above `x` (x ≥ 0, finite): a bound kept in float32 must not round below the truth. */
export function froundUp(x: number): number {
  const f = Math.fround(x);
  if (f >= x) return f;
  bits32[0] = f;
  u32[0] = u32[0]! + 1;
  return bits32[0]!;
}

const bits32 = new Float32Array(1);
const u32 = new Uint32Array(bits32.buffer);

/**
 * Levels of `r` on the grid of spacing `t` (nearest point, clamped), into `out`; returns cos(ŷ, r)
 * times ‖r‖ (⟨ŷ, r⟩ / ‖ŷ‖), the quantity the search maximizes.
 */
function quantizeAt(r: Float32Array, t: number, top: number, m: number, out: Uint8Array): number {
  let dot = 0;
  let norm = 0;
  const inv = 1 / t;
  // Rounding half up by truncating v + ½ after the clamp (v ≥ 0 there): what Math.round does, cheaper.
  const high = top + 0.5;
  for (let i = 0; i < r.length; i++) {
    const x = r[i]!;
    const v = x * inv + m + 0.5;
    const u = v <= 0 ? 0 : v >= high ? top : v | 0;
    out[i] = u;
    const y = u - m;
    dot += y * x;
    norm += y * y;
  }
  return norm > 0 ? dot / Math.sqrt(norm) : 0;
}

function makeRq(bits: RqBits): RqCodec {
  const name = `rq${bits}` as RqCodecName;
  const top = (1 << bits) - 1;
  const m = top / 2;
  return {
    name,
    bits,
    scaled: true,
    codeBytes: (dim) => rqCodeBytes(bits, dim),
    // The trailing floats must be 4-byte aligned; planes are multiples of 16 bytes, so the code already is.
    strideBytes: (dim) => rqCodeBytes(bits, dim),

    encode(src: Float32Array, out: Uint8Array): number {
      const dim = src.length;
      const bytes = rqCodeBytes(bits, dim);
      if (out.length < bytes) throw new MemstoreError('INVALID_ARGUMENT', `${name} code of ${dim} dimensions needs ${bytes} bytes, got ${out.length}`);
      const max = maxAbsFinite(src);
      out.fill(0, 0, bytes);
      let normSq = 0;
      for (let i = 0; i < dim; i++) normSq += src[i]! * src[i]!;
      if (max === 0 || !(normSq > 0)) return 0;
      if (levels.length < dim) {
        levels = new Uint8Array(dim);
        best = new Uint8Array(dim);
      }
      const u = levels.subarray(0, dim);
      const chosen = best.subarray(0, dim);
      if (bits === 1) {
        for (let i = 0; i < dim; i++) chosen[i] = src[i]! > 0 ? 1 : 0;
      } else {
        // t = max / (m + 0.5) puts the largest coordinate at the edge of the top level: tried too, so
        // a vector far from Gaussian (a few large coordinates) never does worse than that grid.
        const gaussian = (GAUSSIAN_STEP[bits] * Math.sqrt(normSq)) / Math.sqrt(dim);
        let bestScore = quantizeAt(src, max / (m + 0.5), top, m, chosen);
        for (let s = 0; s <= WINDOW_STEPS; s++) {
          const t = gaussian * (WINDOW_LOW + ((WINDOW_HIGH - WINDOW_LOW) * s) / WINDOW_STEPS);
          if (!(t > 0)) continue;
          const score = quantizeAt(src, t, top, m, u);
          if (score > bestScore) {
            bestScore = score;
            chosen.set(u);
          }
        }
      }
      const planeBytes = rqPlaneBytes(dim);
      let dot = 0;
      let ySq = 0;
      for (let i = 0; i < dim; i++) {
        const level = chosen[i]!;
        for (let b = 0; b < bits; b++) if ((level >> b) & 1) out[b * planeBytes + (i >> 3)]! |= 1 << (i & 7);
        const y = level - m;
        dot += y * src[i]!;
        ySq += y * y;
      }
      // dot > 0: every coordinate's level has the sign of the coordinate or is the level nearest zero.
      const factor = Math.fround(normSq / dot);
      if (!(factor > 0 && Number.isFinite(factor))) {
        out.fill(0, 0, bytes);
        return 0;
      }
      // ‖r − F·ŷ‖² = ‖r‖² − 2F⟨ŷ, r⟩ + F²‖ŷ‖², in float64 from the float32 F the estimate uses.
      const errSq = Math.max(0, normSq - 2 * factor * dot + factor * factor * ySq);
      const view = new DataView(out.buffer, out.byteOffset, bytes);
      view.setFloat32(bits * planeBytes, Math.fround(normSq), true);
      view.setFloat32(bits * planeBytes + 4, froundUp(Math.sqrt(errSq)), true);
      return factor;
    },

    decode(code: Uint8Array, scale: number, out: Float32Array): void {
      const dim = out.length;
      const bytes = rqCodeBytes(bits, dim);
      if (code.length < bytes) throw new MemstoreError('INVALID_ARGUMENT', `${name} code of ${dim} dimensions needs ${bytes} bytes, got ${code.length}`);
      const planeBytes = rqPlaneBytes(dim);
      for (let i = 0; i < dim; i++) {
        let level = 0;
        for (let b = 0; b < bits; b++) level |= ((code[b * planeBytes + (i >> 3)]! >> (i & 7)) & 1) << b;
        out[i] = scale * (level - m);
      }
    },

    /** No bound holds for every vector (CODECS.md); each code keeps its own error (residualError), which the probabilistic bound reads. */
    codeError(): number {
      return Infinity;
    },

    normSquared(code: Uint8Array, dim: number): number {
      return new DataView(code.buffer, code.byteOffset, code.byteLength).getFloat32(bits * rqPlaneBytes(dim), true);
    },

    residualError(code: Uint8Array, dim: number): number {
      return new DataView(code.buffer, code.byteOffset, code.byteLength).getFloat32(bits * rqPlaneBytes(dim) + 4, true);
    },
  };
}

export const rq1Codec: RqCodec = makeRq(1);
export const rq2Codec: RqCodec = makeRq(2);
export const rq4Codec: RqCodec = makeRq(4);
