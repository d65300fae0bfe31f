import type { RqCodec } from '../codec/rq.js';
import { RQ_MAX_QUERY_BITS, rqPlaneBytes, type RqMetric } from '../kernels/contract.js';
import { kernels } from '../kernels/index.js';
import type { RqQueryParams } from '../kernels/reference.js';

/**
 * Bits per dimension of a query against rq codes: the query is quantized to this many bit planes
 * so the kernels score with AND and popcount (KERNELS.md, "Rotated codes"). Its rounding error is
 * part of the estimate's error (CODECS.md, "The estimate").
 */
export const RQ_QUERY_BITS = 4;

/**
 * A query as the rq kernels take it: the rotated query's levels in bit planes (RQ_QUERY_BITS of them
 * for a scan; written into linear memory by load()) and the constants that turn popcounts into an
 * estimate.
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
  /** How many planes were written there. */
  private loadedBits = 0;
  /** Each dimension's level, while load() packs them into planes (zero past `dim`, to a multiple of 8), and the same bytes as words. */
  private readonly levels: Uint8Array;
  private readonly levelWords: Uint32Array;

  constructor(
    private readonly codec: RqCodec,
    private readonly dim: number,
  ) {
    this.planeBytes = rqPlaneBytes(dim);
    this.seen = new Float32Array(dim);
    this.loaded = new Float32Array(dim);
    this.levels = new Uint8Array(8 * Math.ceil(dim / 8));
    this.levelWords = new Uint32Array(this.levels.buffer);
  }

  /** Bytes load() may write at `ptr`: the bit planes of the finest query it takes (RQ_MAX_QUERY_BITS). */
  get bytes(): number {
    return RQ_MAX_QUERY_BITS * this.planeBytes;
  }

  /**
   * Quantizes `vector` (dim floats) to `bits` bit planes (1 to RQ_MAX_QUERY_BITS) and writes them at
   * `ptr`, unless the vector loaded last had the same values and went to the same place in as many
   * planes: the caller owns `ptr`, so its planes are still there, and equal values give equal planes
   * and constants.
   */
  load(vector: Float32Array, ptr: number, bits: number): void {
    if (!(Number.isInteger(bits) && bits >= 1 && bits <= RQ_MAX_QUERY_BITS)) throw new RangeError(`an rq query takes 1 to ${RQ_MAX_QUERY_BITS} bit planes, not ${bits}`);
    const dim = this.dim;
    if (ptr === this.loadedAt && bits === this.loadedBits && vector.length === dim) {
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
    const top = (1 << bits) - 1;
    const delta = Math.fround((hi - lo) / top);
    const flo = Math.fround(lo);
    const u8 = kernels().memory.u8();
    const planeBytes = this.planeBytes;
    // Padding bytes past the last dimension stay zero (the kernels AND whole 16-byte steps).
    u8.fill(0, ptr, ptr + bits * planeBytes);
    const levels = this.levels;
    let sum = 0;
    // vector[i] − flo ≥ 0 (flo is the least value, a float32 already), so adding ½ and truncating
    // takes a nearest level without Math.round's call. Not always Math.round's: multiplying by 1/Δ,
    // not dividing, can put a value halfway (or within a rounding of it) just under, and it takes
    // the lower level (147 · (1/98) + ½ truncates to 1, Math.round(147 / 98) is 2). Either is half
    // a step away, and seenVector() and error() report the level taken, which is what the bound counts.
    const inv = delta > 0 ? 1 / delta : 0;
    for (let i = 0; i < dim; i++) {
      let level = ((vector[i]! - flo) * inv + 0.5) | 0;
      if (level > top) level = top;
      levels[i] = level;
      const seen = Math.fround(flo + Math.fround(delta * level));
      this.seen[i] = seen;
      sum += seen;
    }
    // Plane c's byte j holds bit c of the levels of dimensions 8j to 8j + 7. The levels are read four
    // at a time (one per byte of a word, little-endian); bit c of each byte is gathered into a nibble
    // by one multiplication: with x = (w >>> c) & 0x01010101, x · 0x01020408 puts the four bits at
    // bits 24 to 27 and leaves nothing else there (every other product is below 2^20 or past 2^31).
    // A bit at a time, this packing took half of a load at 8 planes.
    const words = this.levelWords;
    const bytes = Math.ceil(dim / 8);
    for (let c = 0; c < bits; c++) {
      const plane = ptr + c * planeBytes;
      for (let j = 0; j < bytes; j++) {
        const low = Math.imul((words[2 * j]! >>> c) & 0x01010101, 0x01020408) >>> 24;
        const high = Math.imul((words[2 * j + 1]! >>> c) & 0x01010101, 0x01020408) >>> 24;
        u8[plane + j] = low | (high << 4);
      }
    }
    const m = ((1 << this.codec.bits) - 1) / 2;
    this.params = { qBits: bits, delta, lo: flo, corr: Math.fround(m * sum), qNormSq: Math.fround(normSq) };
    this.loaded.set(vector.subarray(0, dim));
    this.loadedAt = ptr;
    this.loadedBits = bits;
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
