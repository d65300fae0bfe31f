import { EXACT_DIM_STEP } from '../kernels/contract.js';
import { kernels } from '../kernels/index.js';
import type { Metric } from '../options.js';
import { clampCosine } from '../vector.js';

/**
 * Exact scores of many full-precision vectors against one query, in one call of the WebAssembly
 * exact kernels: the vectors are copied side by side into linear memory (zero-padded to a multiple
 * of EXACT_DIM_STEP) and scored together. The scores are, bit for bit, the float64 numbers of
 * vector.ts: dot(q, x) for 'dot'; dot(q, x) / (‖q‖ · ‖x‖) for 'cosine', 0 when either norm is 0;
 * −√squaredDistance(q, x) for 'l2'; 7x faster than vector.ts at 512-d (bench/results/kernels.md).
 * The scratch space grows to the largest batch seen and is kept for the next query.
 */
export class ExactScorer {
  private readonly padded: number;
  private readonly mem = kernels().memory;
  private query: number;
  private capacity = 0;
  private vectors = 0;
  private out = 0;
  private freed = false;

  constructor(
    readonly metric: Metric,
    readonly dim: number,
  ) {
    this.padded = Math.ceil(dim / EXACT_DIM_STEP) * EXACT_DIM_STEP;
    this.query = this.mem.alloc(this.padded * 4);
  }

  /**
   * Writes the score of each of `xs` against `query` (both of length `dim`) into `scores`, and,
   * for cosine, each vector's norm into `norms` unless `known` gives it (the same number norm(x)
   * gives, e.g. kept hot by the cache).
   */
  score(query: Float32Array, queryNorm: number, xs: readonly Float32Array[], known: readonly (number | undefined)[], scores: Float64Array, norms: Float64Array): void {
    this.reserve(xs.length);
    xs.forEach((x, j) => this.load(j, x));
    this.scoreLoaded(query, queryNorm, xs.length, known, scores, norms);
  }

  /** Makes room for a batch of `n` vectors (load() them, then scoreLoaded()); what was loaded may be lost. */
  reserve(n: number): void {
    if (n <= this.capacity) return;
    const capacity = Math.max(n, 2 * this.capacity, 16);
    if (this.capacity > 0) {
      this.mem.free(this.vectors, this.capacity * this.padded * 4);
      this.mem.free(this.out, this.capacity * 16);
    }
    this.vectors = this.mem.alloc(capacity * this.padded * 4);
    this.out = this.mem.alloc(capacity * 16);
    this.capacity = capacity;
  }

  /** Copies `x` (length `dim`) into place `j` of the batch (below the reserved size). */
  load(j: number, x: Float32Array): void {
    const at = (this.vectors >> 2) + j * this.padded;
    const f32 = this.mem.f32();
    f32.set(x, at);
    f32.fill(0, at + this.dim, at + this.padded);
  }

  /**
   * The bytes of the first `n` places of the batch (below the reserved size), for a reader to fill
   * in place of load(): place j at `stride * j`, its `dim` floats then zeros up to the next. A view
   * valid until the next reserve().
   */
  batchBytes(n: number): Uint8Array {
    return this.mem.u8().subarray(this.vectors, this.vectors + n * this.stride);
  }

  /** Bytes from one place of the batch to the next. */
  get stride(): number {
    return this.padded * 4;
  }

  /** The vector loaded at place `j`: a view valid until the next reserve() or load() of that place. */
  loaded(j: number): Float32Array {
    const at = (this.vectors >> 2) + j * this.padded;
    return this.mem.f32().subarray(at, at + this.dim);
  }

  /** score() over the first `n` vectors already load()ed. */
  scoreLoaded(query: Float32Array, queryNorm: number, n: number, known: readonly (number | undefined)[], scores: Float64Array, norms: Float64Array): void {
    if (n === 0) return;
    const f32 = this.mem.f32();
    const q = this.query >> 2;
    f32.set(query, q);
    f32.fill(0, q + this.dim, q + this.padded);
    const k = kernels();
    if (this.metric === 'l2') {
      k.exactSquaredDistance(this.query, this.vectors, n, this.padded, this.out);
      const f64 = this.mem.f64();
      const o = this.out >> 3;
      // 0, not -0, for the vector itself: the score codes-only searches give it too.
      for (let j = 0; j < n; j++) scores[j] = 0 - Math.sqrt(f64[o + j]!);
      return;
    }
    k.exactDotNorm(this.query, this.vectors, n, this.padded, this.out);
    const f64 = this.mem.f64();
    const o = this.out >> 3;
    for (let j = 0; j < n; j++) {
      const d = f64[o + 2 * j]!;
      if (this.metric === 'dot') {
        scores[j] = d;
        continue;
      }
      const xNorm = known[j] ?? Math.sqrt(f64[o + 2 * j + 1]!);
      norms[j] = xNorm;
      const denominator = queryNorm * xNorm;
      scores[j] = denominator === 0 ? 0 : clampCosine(d / denominator);
    }
  }

  /** Returns the scratch space; the scorer is unusable afterwards. */
  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.mem.free(this.query, this.padded * 4);
    if (this.capacity > 0) {
      this.mem.free(this.vectors, this.capacity * this.padded * 4);
      this.mem.free(this.out, this.capacity * 16);
    }
    this.capacity = 0;
  }
}
