import type { RqCodec } from '../codec/rq.js';
import { rqPlaneBytes, type RqMetric } from '../kernels/contract.js';
import { kernels } from '../kernels/index.js';
import type { RqQueryParams } from '../kernels/reference.js';

/**
 * Bits per dimension of a query against rq codes: the query is quantized to this many bit planes
 * so the kernels score with AND and popcount (KERNELS.md, "Rotated codes"). Its rounding error is
 * part of the estimate's error (CODECS.md, "The estimate").
 */
export const RQ_QUERY_BITS = 4;

/**
 * A query as the rq kernels take it: the rotated query's levels in RQ_QUERY_BITS bit planes (written
 * into linear memory by load()) and the constants that turn popcounts into an estimate.
 */
export class RqQuery {
  readonly planeBytes: number;
  private params: RqQueryParams = { qBits: RQ_QUERY_BITS, delta: 0, lo: 0, corr: 0, qNormSq: 0 };
  /** The query as the kernels see it, dimension i = lo + delta · level_i. */
  private readonly seen: Float32Array;
  /** The vector whose planes are at `loadedAt` (a copy), so that a search loading one query for its bound, its cache key and its scan quantizes it once. */
  private readonly loaded: Float32Array;
  /** Where its planes were written; -1: none yet. */
  private loadedAt = -1;

  constructor(
    private readonly codec: RqCodec,
    private readonly dim: number,
  ) {
    this.planeBytes = rqPlaneBytes(dim);
    this.seen = new Float32Array(dim);
    this.loaded = new Float32Array(dim);
  }

  /** Bytes load() writes: the query's bit planes. */
  get bytes(): number {
    return RQ_QUERY_BITS * this.planeBytes;
  }

  /**
   * Quantizes `vector` (dim floats) and writes its bit planes at `ptr`, unless the vector loaded
   * last had the same values and went to the same place: the caller owns `ptr`, so its planes are
   * still there, and equal values give equal planes and constants.
   */
  load(vector: Float32Array, ptr: number): void {
    const dim = this.dim;
    if (ptr === this.loadedAt && vector.length === dim) {
      let same = true;
      for (let i = 0; same && i < dim; i++) same = Object.is(vector[i], this.loaded[i]);
      if (same) return;
    }
    let lo = Infinity;
    let hi = -Infinity;
    let normSq = 0;
    for (let i = 0; i < dim; i++) {
      const v = vector[i]!;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
      normSq += v * v;
    }
    const top = (1 << RQ_QUERY_BITS) - 1;
    const delta = Math.fround((hi - lo) / top);
    const flo = Math.fround(lo);
    const u8 = kernels().memory.u8();
    u8.fill(0, ptr, ptr + this.bytes);
    let sum = 0;
    for (let i = 0; i < dim; i++) {
      let level = delta > 0 ? Math.round((vector[i]! - flo) / delta) : 0;
      if (level < 0) level = 0;
      else if (level > top) level = top;
      const seen = Math.fround(flo + Math.fround(delta * level));
      this.seen[i] = seen;
      sum += seen;
      for (let c = 0; c < RQ_QUERY_BITS; c++) if ((level >> c) & 1) u8[ptr + c * this.planeBytes + (i >> 3)]! |= 1 << (i & 7);
    }
    const m = ((1 << this.codec.bits) - 1) / 2;
    this.params = { qBits: RQ_QUERY_BITS, delta, lo: flo, corr: Math.fround(m * sum), qNormSq: Math.fround(normSq) };
    this.loaded.set(vector.subarray(0, dim));
    this.loadedAt = ptr;
  }

  /** The loaded query as the kernels see it (a copy): lo + delta · level per dimension. */
  seenVector(): Float32Array {
    return Float32Array.from(this.seen);
  }

  /** ‖vector − seenVector()‖ in float64, for the vector last loaded. */
  error(vector: Float32Array): number {
    let sum = 0;
    for (let i = 0; i < this.dim; i++) {
      const d = vector[i]! - this.seen[i]!;
      sum += d * d;
    }
    return Math.sqrt(sum);
  }

  /** Scores `n` codes back to back (stride bytes apart) against the query loaded at `ptr`. */
  scan(metric: RqMetric, ptr: number, codesPtr: number, scalesPtr: number, n: number, stride: number, outPtr: number): void {
    kernels().scanRq(this.codec.bits, metric, ptr, this.params, codesPtr, scalesPtr, n, this.planeBytes, stride, outPtr);
  }

  /** The gather form of scan(): code and scale addresses as i32 pairs at `tablePtr`. */
  gather(metric: RqMetric, ptr: number, tablePtr: number, n: number, outPtr: number): void {
    const p = this.params;
    kernels().gatherRqFunction(this.codec.bits, metric)(ptr, p.qBits, p.delta, p.lo, p.corr, p.qNormSq, tablePtr, n, this.planeBytes, outPtr);
  }
}
