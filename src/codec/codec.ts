import { MemstoreError } from '../errors.js';

/**
 * A codec turns one float32 vector into the bytes memstore keeps in RAM and back.
 * The byte-level rules of each codec are in `CODECS.md` beside this file.
 */
export type CodecName = ScalarCodecName | RqCodecName;

/** Codecs that keep each dimension in a fixed number of bytes, scored by the element kernels. */
export type ScalarCodecName = 'f32' | 'f16' | 'int8' | 'fp8-e4m3' | 'fp8-e5m2';

/** Rotated quantization, 1, 2 or 4 bits per dimension of a randomly rotated, centered vector (CODECS.md). */
export type RqCodecName = 'rq1' | 'rq2' | 'rq4';

export const CODEC_NAMES: readonly CodecName[] = ['f32', 'f16', 'int8', 'fp8-e4m3', 'fp8-e5m2', 'rq1', 'rq2', 'rq4'];

export function isRqCodec(name: CodecName): name is RqCodecName {
  return name === 'rq1' || name === 'rq2' || name === 'rq4';
}

export interface Codec {
  readonly name: CodecName;
  /** True when a code carries a per-vector float32 scale (int8, fp8, rq); f32 and f16 use scale 1. */
  readonly scaled: boolean;
  /** Bytes of the code of a vector of `dim` dimensions, as stored on disk. */
  codeBytes(dim: number): number;
  /** Bytes a code takes in the scan's memory: codeBytes() zero-padded to what the kernels read per step. */
  strideBytes(dim: number): number;
  /**
   * Encodes `src` into `out[0 .. codeBytes(src.length))` and returns the per-vector scale
   * (1 for unscaled codecs). `src` must be finite; `out` may start at any byte offset.
   */
  encode(src: Float32Array, out: Uint8Array): number;
  /** Decodes `out.length` dimensions of `code` with `scale` into `out`. */
  decode(code: Uint8Array, scale: number, out: Float32Array): void;
  /**
   * An upper bound on ‖x − decode(code)‖ for any vector x of `dim` dimensions that encodes to `code`
   * with `scale`; Infinity where the codec gives none (CODECS.md, "Error bounds"). Never NaN, even
   * for damaged bytes. The bound also holds for the unrounded s · value(code) the kernels score.
   */
  codeError(code: Uint8Array, scale: number, dim: number): number;
}

/** A codec whose every dimension takes `bytesPerDim` bytes (f32, f16, int8, fp8). */
export interface ScalarCodec extends Codec {
  readonly name: ScalarCodecName;
  readonly bytesPerDim: 1 | 2 | 4;
}

/** Kernels read 16 dimensions per step, so element codes are zero-padded to a multiple of 16 dimensions. */
export function scalarSizes(bytesPerDim: 1 | 2 | 4): Pick<Codec, 'codeBytes' | 'strideBytes'> {
  return {
    codeBytes: (dim) => dim * bytesPerDim,
    strideBytes: (dim) => Math.ceil(dim / 16) * 16 * bytesPerDim,
  };
}

/**
 * The largest magnitude in `src`, the input of every per-vector scale. Throws INVALID_VECTOR on
 * NaN or ±Infinity before the caller writes anything: NaN fails every comparison, so it lands in
 * the same branch as a new maximum and is caught there.
 */
export function maxAbsFinite(src: Float32Array): number {
  let max = 0;
  for (let i = 0; i < src.length; i++) {
    const a = Math.abs(src[i]!);
    if (!(a <= max)) {
      if (!Number.isFinite(a)) throw new MemstoreError('INVALID_VECTOR', `dimension ${i} is not finite`);
      max = a;
    }
  }
  return max;
}
