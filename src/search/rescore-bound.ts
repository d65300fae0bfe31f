import type { VectorIndex } from '../index/vector-index.js';
import type { ScanQuery } from '../scan/code-blocks.js';
import { norm } from '../vector.js';
import { isRqCodec, type CodecName } from '../codec/codec.js';
import { F16_MAX } from '../codec/f16.js';
import { FP8_E4M3_MAX, FP8_E5M2_MAX } from '../codec/fp8.js';
import type { RqCodec } from '../codec/rq.js';
import { kernelUnderflow } from '../kernels/contract.js';
import { PCA_BOUND_SIGMAS } from '../space/vector-space.js';

/**
 * How many standard deviations of an rq estimate's error its bound allows (RESCORING.md, "rq
 * codes"): RaBitQ's bound holds with probability at least 1 − 2·exp(−c₀·ε₀²) per candidate. The
 * bound from the scan's own scores (its 4-bit query) takes 3.
 */
export const RQ_BOUND_SIGMAS = 3;

/**
 * The same for a store whose codes are in the fast-scan layout, whose kernels see the query itself
 * through a table: the query's rounding is bounded outright (F · tableError), and the code's error is
 * the only term that holds with high probability, at 3.5 standard deviations, not 3: with nearly all
 * of the bound the code's error, at 3 one candidate in a few thousand was left unread where it would
 * have entered the answer (RESCORING.md, "rq codes").
 */
export const RQ_TABLE_BOUND_SIGMAS = 3.5;

/** A candidate the bound is asked about: its slot and its kernel score. */
export interface BoundCandidate {
  readonly slot: number;
  readonly kernel: number;
}

/**
 * Upper bounds on a candidate's exact score (RESCORING.md has the proofs). Rescoring reads a
 * candidate's full-precision vector only while its bound can still reach the k-th best exact score
 * found so far: one that cannot would not be in the answer, so the answer is the one rescoring
 * every candidate gives.
 */
export interface RescoreBound {
  /**
   * For each candidate, a number no smaller than the exact score of the vector in its slot; or,
   * for a candidate it shows to score below `floor` (a k-th best exact score found so far, which
   * only rises), any number below `floor`. An rq bound gives Infinity to a candidate whose estimate
   * alone reaches `floor` (its bound could only be higher). Infinity: every candidate gets its bound.
   */
  uppers(candidates: readonly BoundCandidate[], floor: number): Float64Array;
}

/** A bound's arrays for one call over its candidates, grown to the largest batch asked. */
interface GatherArrays {
  readonly slots: Int32Array;
  /** Each rq candidate whose terms are read: its place among those uppers() was given. */
  readonly at: Int32Array;
  /** The scalar codes' scores, from the float-query kernels. */
  readonly scores: Float32Array;
  /** rq codes' ‖e‖, ‖r‖² and factor, three for each candidate (VectorIndex.rqTermsOf). */
  readonly terms: Float64Array;
}

/**
 * The arrays of uppers(), grown to the largest batch asked. One for every bound: uppers() uses
 * them within one synchronous call, and a scratch of each bound's own (typed arrays made again at
 * its first call) had cost every rescored search a few microseconds of allocation and collection.
 */
class GatherScratch {
  private size = 0;
  private arrays: GatherArrays = GatherScratch.make(0);

  private static make(size: number): GatherArrays {
    return { slots: new Int32Array(size), at: new Int32Array(size), scores: new Float32Array(size), terms: new Float64Array(3 * size) };
  }

  reserve(n: number): GatherArrays {
    if (n > this.size) {
      this.size = Math.max(n, 2 * this.size, 16);
      this.arrays = GatherScratch.make(this.size);
    }
    return this.arrays;
  }
}

const scratch = new GatherScratch();

/**
 * What the scalar codes' float-query kernels may be off by, at `dim` dimensions: `rounding`,
 * relative to the size of the terms they sum (a float32 sum over dim/4 steps in four lanes, then a
 * few more roundings; twice that, for slack), and `underflow`, lost outright (each float32 operation
 * on subnormals, at most 2⁻¹⁴⁹, and the int8 kernels' product of the two scales, at most 2⁻¹⁴⁹ times
 * the integer sum, ≤ 127² · dim). For dot, `underflow` is taken times N: the fp8 kernels multiply the
 * sum of products, each of which may have lost 2⁻¹⁵⁰, by the scale s, and s ≤ N (the largest
 * component decodes to at least s · 448 / 2).
 */
function scalarKernelError(dim: number): { rounding: number; underflow: number } {
  return { rounding: (dim / 4 + 8) * 2 ** -22, underflow: kernelUnderflow(dim) };
}

/**
 * The bound for `scan` over `index`; undefined where there is none. `dropped` is what the part of a
 * stored vector outside a PCA projection may add to a score (VectorSpace.projectionSlack): undefined
 * without PCA, Infinity where nothing bounds it (then no bound). Scalar codes (int8, fp8, f16, f32)
 * are scored again from their codes in memory by the float-query kernels, which see the query
 * exactly, so the coarse query the scan may have used leaves their bound; rq codes are bounded from
 * the scan's own scores (rqBound). rq scores leave out `offset` (VectorSpace.scanQueryOf). A code
 * whose error bound is Infinity (Codec.codeError) gets an Infinite bound, and is always read.
 */
export function rescoreBound(index: VectorIndex, scan: ScanQuery, dropped: number | undefined, offset: number): RescoreBound | undefined {
  if (dropped === Infinity) return undefined;
  // A projected store's kernels rank by the dot product (kernelMetricOf), whose bounds take the slack as it is.
  const slack = dropped ?? 0;
  // rq codes with PCA look past no candidates (beyondReach()): their own bound takes no slack.
  if (isRqCodec(index.codec.name)) return dropped === undefined ? rqBound(index, scan, offset) : undefined;
  const dim = index.dim;
  const { rounding, underflow } = scalarKernelError(dim);
  const queryNorm = norm(scan.vector);
  const metric = scan.metric;
  // Rounding is relative to the terms summed, Σ|q_i x̃_i| ≤ ‖q‖ N; what underflows is not, and
  // takes N at least 1 (scalarKernelError). A floor of 1 on the first had the bound of vectors of
  // length 10⁻⁶ read every vector within reach of a whole unit (a hostile pass).
  const largest = metric === 'dot' ? index.maxNorm() : 1;
  const norms = Math.max(1, largest);
  // The query as it is: the float-query kernel of every scalar codec sees it exactly.
  const exactQuery: ScanQuery = { ...scan, int8Query: false };
  // Without PCA the code's error adds at most ‖q‖·e (Cauchy–Schwarz). With PCA, whose dropped part
  // is bounded in standard deviations (`slack`), it is taken so too (RESCORING.md, "PCA"): at
  // PCA_BOUND_SIGMAS of ‖q‖·e/√dim, in quadrature with the slack.
  const codeTerm = dropped === undefined ? (worst: number) => worst : (worst: number) => Math.hypot(slack, (PCA_BOUND_SIGMAS * worst) / Math.sqrt(dim));
  return {
    // Every candidate gets its bound, whatever the floor: the float-query kernel is the only way to one.
    uppers(candidates) {
      const n = candidates.length;
      const out = new Float64Array(n);
      if (n === 0) return out;
      const { slots, scores } = scratch.reserve(n);
      for (let i = 0; i < n; i++) slots[i] = candidates[i]!.slot;
      index.scoreSlots(exactQuery, slots, n, scores);
      for (let i = 0; i < n; i++) {
        const kernel = scores[i]!;
        const error = index.codeErrorAt(slots[i]!);
        // A code without an error bound (int8 with a zero or subnormal scale, f16 holding ±65504) bounds nothing: Infinity, never 0 · Infinity.
        if (error === Infinity) {
          out[i] = Infinity;
          continue;
        }
        if (metric === 'cosine') {
          // The kernel divides by the code's norm; ‖x − x̃/‖x̃‖‖ ≤ 2‖x − x̃‖ / (1 + ‖x̃‖) for a unit x
          // (Dunkl–Williams), and ‖x̃‖ ≥ 1 − e_x.
          const direction = error < 1 ? (2 * error) / (2 - error) : 2 * error;
          out[i] = kernel + direction + rounding * (Math.abs(kernel) + 1 + queryNorm) + underflow;
        } else if (metric === 'dot') {
          out[i] = kernel + offset + codeTerm(queryNorm * error) + rounding * (Math.abs(kernel) + queryNorm * largest) + underflow * norms;
        } else {
          out[i] = -Math.sqrt(Math.max(0, -kernel * (1 - rounding) - underflow)) + error;
        }
      }
      return out;
    },
  };
}

/**
 * The grid of an fp8 format as largestCodeError() takes it: its largest value K, `relative` = half
 * the gap above a value of a binade over the binade's least value, 2^−(mantissa bits + 1), and the
 * step of its subnormals (CODECS.md, "fp8-e4m3, fp8-e5m2").
 */
const FP8_GRIDS: Readonly<Record<'fp8-e4m3' | 'fp8-e5m2', { readonly K: number; readonly relative: number; readonly subnormalStep: number }>> = {
  'fp8-e4m3': { K: FP8_E4M3_MAX, relative: 2 ** -4, subnormalStep: 2 ** -9 },
  'fp8-e5m2': { K: FP8_E5M2_MAX, relative: 2 ** -3, subnormalStep: 2 ** -16 },
};

/**
 * An upper bound on the code error (Codec.codeError) of every code of the index, from its largest
 * decoded norm `maxNorm` (VectorIndex.maxNorm); Infinity for a codec this does not know (RESCORING.md,
 * "Past the scan's candidates", has the derivations).
 *
 * - int8: a code's largest component decodes to ±127·s, so s ≤ ‖x̃‖ / 127 ≤ maxNorm / 127 and the
 *   error is at most (½ + 127·2⁻²³)·s·√dim; a zero or subnormal scale holds a vector of components
 *   under 127·2⁻¹²⁶, within √dim·2⁻¹¹⁸ of its decoded code.
 * - fp8: a component with code value v is within s·h + 2⁻²⁴·s·|v| + (K + 1)·2⁻¹⁵⁰ of its decoded
 *   value (codeError's terms), and h ≤ relative·|v| + subnormalStep/2 (a value of the binade
 *   [2^e, 2^(e+1)) has gaps of at most 2^(e − m) either side; a subnormal's are the step). Summed,
 *   e ≤ (relative + 2⁻²⁴)·s‖v‖ + s·(subnormalStep/2)·√dim + (K + 1)·2⁻¹⁵⁰·√dim, with s‖v‖ ≤
 *   maxNorm·(1 + 2⁻²⁴) + 2⁻¹⁵⁰·√dim (decoding rounds each s·v to float32) and s at most that over
 *   K (the largest component, x_max/s ≥ K/(1 + 2⁻²⁴), codes as K) or 2⁻¹²⁶ for a subnormal scale.
 * - f16: a component is within 2⁻¹¹·|x̃_i| + 2⁻²⁵ of its decoded value x̃_i (half the larger gap
 *   around it; the subnormals' step is 2⁻²⁴; decoding is exact), so e ≤ 2⁻¹¹·maxNorm + 2⁻²⁵·√dim;
 *   none once maxNorm reaches 65504, where a code may hold ±65504 (Codec.codeError's Infinity).
 * - f32: none.
 *
 * A last factor of 1 + (dim + 8)·2⁻⁵², as the codecs' own, covers the rounding of maxNorm (a float64
 * sum of dim squares) and of these few operations.
 */
export function largestCodeError(codec: CodecName, maxNorm: number, dim: number): number {
  if (!(maxNorm >= 0 && maxNorm < Infinity)) return Infinity;
  const root = Math.sqrt(dim);
  const rounding = 1 + (dim + 8) * 2 ** -52;
  if (codec === 'f32') return 0;
  if (codec === 'int8') return ((0.5 + 127 * 2 ** -23) * root * maxNorm) / 127 + root * 2 ** -118;
  if (codec === 'f16') return maxNorm >= F16_MAX ? Infinity : (2 ** -11 * maxNorm + 2 ** -25 * root) * rounding;
  if (codec === 'fp8-e4m3' || codec === 'fp8-e5m2') {
    const { K, relative, subnormalStep } = FP8_GRIDS[codec];
    const scaled = maxNorm * (1 + 2 ** -24) + 2 ** -150 * root;
    const scale = Math.max(scaled / K, 2 ** -126);
    return ((relative + 2 ** -24) * scaled + scale * (subnormalStep / 2) * root + (K + 1) * 2 ** -150 * root) * rounding;
  }
  return Infinity;
}

/**
 * For a store with PCA (`dropped`, VectorSpace.projectionSlack, finite), the vectors a scan did not
 * pick (RESCORING.md, "Past the scan's candidates"): how far below a k-th best exact score `T`, less
 * `offset`, a vector's score under the scan's own kernel form may lie with its exact score still
 * reaching `T`. `moved` bounds how far the scan's scores are from the float query's (0 when it
 * scanned with the float query): κ' ≤ κ + moved for the float-query score κ' of a code. What the
 * code's error adds to κ', ⟨Wq, x − x̃⟩, is taken as the projection's dropped part is, at
 * PCA_BOUND_SIGMAS standard deviations, ‖q‖·e/√dim for a rounding error e spread over the
 * dimensions, e at most largestCodeError(); the two together in quadrature, as independent errors.
 * Undefined where there is no such reach: a metric other than dot, an rq codec, an unknown error.
 */
export function beyondReach(index: VectorIndex, scan: ScanQuery, dropped: number, moved: number): number | undefined {
  if (scan.metric !== 'dot' || isRqCodec(index.codec.name) || !(dropped < Infinity)) return undefined;
  const dim = index.dim;
  const largest = index.maxNorm();
  const error = largestCodeError(index.codec.name, largest, dim);
  if (!(error < Infinity)) return undefined;
  const queryNorm = norm(scan.vector);
  const { rounding, underflow } = scalarKernelError(dim);
  const coded = (PCA_BOUND_SIGMAS * queryNorm * error) / Math.sqrt(dim);
  // Rounding relative to ‖q‖ N, underflow with N at least 1, as in rescoreBound().
  return moved + Math.sqrt(dropped * dropped + coded * coded) + 2 * rounding * queryNorm * largest + underflow * Math.max(1, largest);
}

/**
 * The bound of rq codes (RESCORING.md, "rq codes"): with r the stored vector's rotated residual, q'
 * the rotated query and q̂ the query a kernel sees, the estimate's error is ⟨e, q'⟩ + F⟨ŷ, q' − q̂⟩,
 * e = r − F·ŷ. For a random rotation each term is at most ε₀ standard deviations, ‖e‖‖q'‖ / √(D − 1)
 * and ‖r̃‖‖q' − q̂‖ / √(D − 1), with high probability (RaBitQ, Theorem 3.2): a bound that holds for
 * almost every candidate, not a proof. Taken from the scan's scores alone (q̂ in RQ_QUERY_BITS
 * planes, ε₀ = RQ_BOUND_SIGMAS), so that what it costs is a few terms per candidate: rescoring
 * bounds every candidate past the first k of an rq store, those in memory too, where scoring each
 * again with a finer query cost more than the reads it saved (RESCORING.md, "Where a vector is
 * does not change the answer").
 *
 * Pages in the fast-scan layout see the query itself through a table (VectorIndex.tableError): its
 * rounding is no random term but at most F · tableError, for every code, and the code's term alone
 * is probabilistic, at RQ_TABLE_BOUND_SIGMAS.
 * With PCA the part of a vector outside the projection is not kept, and this bounds nothing: none then.
 */
function rqBound(index: VectorIndex, scan: ScanQuery, offset: number): RescoreBound {
  const codec = index.codec as RqCodec;
  const dim = index.dim;
  const queryNorm = norm(scan.vector);
  const tableError = index.tableError(scan);
  const tables = tableError > 0;
  const queryError = index.kernelQueryError(scan);
  // The kernel's float32 steps: a handful of roundings of terms no larger than ‖r̃‖·‖q'‖ (and ‖q'‖² + ‖r‖² for l2).
  const rounding = 16 * 2 ** -24;
  // A table's sum before its bias may exceed ‖r̃‖·‖q'‖: up to (2^B − 1) · Σ|q'_i| times F, rounded too.
  let tableSpan = 0;
  if (tables) {
    for (let i = 0; i < scan.vector.length; i++) tableSpan += Math.abs(scan.vector[i]!);
    tableSpan *= (1 << codec.bits) - 1;
  }
  const l2 = scan.metric === 'l2';
  // ε₀ / √(D − 1): the bound's spread per unit of ‖e‖‖q'‖ (and of ‖r̃‖‖q' − q̂‖).
  const spread = (tables ? RQ_TABLE_BOUND_SIGMAS : RQ_BOUND_SIGMAS) / Math.sqrt(Math.max(1, dim - 1));
  const l2Terms = l2 ? queryNorm * queryNorm : 0;
  /** The bound of a kernel score `kernel` whose error is at most `spreadOf` (0: the estimate itself). */
  const upper = (kernel: number, spreadOf: number): number => (l2 ? -Math.sqrt(Math.max(0, -kernel - 2 * spreadOf)) : kernel + offset + spreadOf);
  return {
    uppers(candidates, floor) {
      const n = candidates.length;
      const out = new Float64Array(n);
      const { slots, at, terms } = scratch.reserve(n);
      // A candidate whose estimate alone reaches the floor is read whatever its terms say (its bound
      // is at least its estimate): Infinity, and no terms read, which cost a few cache misses each.
      let m = 0;
      for (let i = 0; i < n; i++) {
        const kernel = candidates[i]!.kernel;
        if (upper(kernel, 0) >= floor) out[i] = Infinity;
        else (slots[m] = candidates[i]!.slot), (at[m++] = i);
      }
      index.rqTermsOf(slots, m, terms);
      for (let j = 0; j < m; j++) {
        const i = at[j]!;
        const kernel = candidates[i]!.kernel;
        const err = terms[3 * j]!;
        const normSq = terms[3 * j + 1]!;
        const factor = Math.abs(terms[3 * j + 2]!);
        const seen = Math.sqrt(normSq + err * err);
        const spreadOf = spread * (err * queryNorm + seen * queryError) + factor * tableError + rounding * (Math.abs(kernel) + seen * queryNorm + factor * tableSpan + (l2 ? normSq + l2Terms : 0));
        out[i] = upper(kernel, spreadOf);
      }
      return out;
    },
  };
}
