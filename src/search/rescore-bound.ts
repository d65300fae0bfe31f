import type { VectorIndex } from '../index/vector-index.js';
import type { ScanQuery } from '../scan/code-blocks.js';
import { norm } from '../vector.js';
import { isRqCodec } from '../codec/codec.js';
import type { RqCodec } from '../codec/rq.js';

/**
 * How many standard deviations of an rq estimate's error its bound allows (RESCORING.md, "rq
 * codes"): RaBitQ's bound holds with probability at least 1 − 2·exp(−c₀·ε₀²) per candidate.
 */
export const RQ_BOUND_SIGMAS = 3;

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
  /** For each candidate, a number no smaller than the exact score of the vector in its slot. */
  uppers(candidates: readonly BoundCandidate[]): Float64Array;
}

/**
 * The bound for `scan` over `index`; undefined for a PCA store, where there is none (the residual
 * outside the projection is not kept). Scalar codes (int8, fp8, f16, f32) are scored again by the
 * float-query kernels, so the int8 query the scan may have used adds nothing to their bound; rq
 * codes are bounded from their kernel scores, whose query is `queryError()` away from the scan's
 * (VectorIndex.kernelQueryError) and leaves out `offset` (VectorSpace.scanQueryOf). A code whose
 * error bound is Infinity (Codec.codeError) gets an Infinite bound, and is always read.
 */
export function rescoreBound(index: VectorIndex, scan: ScanQuery, queryError: () => number, projected: boolean, offset: number): RescoreBound | undefined {
  if (isRqCodec(index.codec.name)) return projected ? undefined : rqBound(index, scan, queryError(), offset);
  if (projected) return undefined;
  const dim = index.dim;
  // What the kernel's float32 arithmetic may add, relative to the size of the terms it sums: a
  // float32 sum over dim/4 steps in four lanes, then a few more roundings; twice that, for slack.
  const rounding = (dim / 4 + 8) * 2 ** -22;
  // And what underflow may lose outright: each float32 operation on subnormals, at most 2⁻¹⁴⁹, and
  // the int8 kernels' product of the two scales, at most 2⁻¹⁴⁹ times the integer sum (≤ 127² · dim).
  // For dot, times N: the fp8 kernels multiply the sum of products, each of which may have lost
  // 2⁻¹⁵⁰, by the scale s, and s ≤ N (the largest component decodes to at least s · 448 / 2).
  const underflow = ((127 * 127 + 2) * dim + 16) * 2 ** -149;
  const queryNorm = norm(scan.vector);
  const metric = scan.metric;
  const norms = metric === 'dot' ? Math.max(1, index.maxNorm()) : 1;
  // The query as it is: the float-query kernel of every scalar codec sees it exactly.
  const exactQuery: ScanQuery = { ...scan, int8Query: false };
  let slots = new Int32Array(16);
  let scores = new Float32Array(16);
  return {
    uppers(candidates) {
      const n = candidates.length;
      const out = new Float64Array(n);
      if (n === 0) return out;
      if (slots.length < n) {
        slots = new Int32Array(Math.max(n, 2 * slots.length));
        scores = new Float32Array(slots.length);
      }
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
          out[i] = kernel + queryNorm * error + rounding * (Math.abs(kernel) + queryNorm * norms) + underflow * norms;
        } else {
          out[i] = -Math.sqrt(Math.max(0, -kernel * (1 - rounding) - underflow)) + error;
        }
      }
      return out;
    },
  };
}

/**
 * The bound of rq codes (RESCORING.md, "rq codes"): with r the stored vector's rotated residual, q'
 * the rotated query and q̂ the query the kernel sees (‖q' − q̂‖ = `queryError`), the estimate's error
 * is ⟨e, q'⟩ + F⟨ŷ, q' − q̂⟩, e = r − F·ŷ. For a random rotation each term is at most
 * RQ_BOUND_SIGMAS standard deviations, ‖e‖‖q'‖ / √(D − 1) and ‖r̃‖‖q' − q̂‖ / √(D − 1), with high
 * probability (RaBitQ, Theorem 3.2): a bound that holds for almost every candidate, not a proof.
 * With PCA the part of a vector outside the projection is not kept, and nothing bounds it: none then.
 */
function rqBound(index: VectorIndex, scan: ScanQuery, queryError: number, offset: number): RescoreBound {
  const codec = index.codec as RqCodec;
  const dim = index.dim;
  const spread = RQ_BOUND_SIGMAS / Math.sqrt(Math.max(1, dim - 1));
  const queryNorm = norm(scan.vector);
  // The kernel's float32 steps: a handful of roundings of terms no larger than ‖r̃‖·‖q'‖ (and ‖q'‖² + ‖r‖² for l2).
  const rounding = 16 * 2 ** -24;
  const l2 = scan.metric === 'l2';
  return {
    uppers(candidates) {
      const out = new Float64Array(candidates.length);
      candidates.forEach(({ slot, kernel }, i) => {
        const code = index.codeAt(slot);
        const err = codec.residualError(code, dim);
        const normSq = codec.normSquared(code, dim);
        const seen = Math.sqrt(normSq + err * err);
        const spreadOf = spread * (err * queryNorm + seen * queryError) + rounding * (Math.abs(kernel) + seen * queryNorm + (l2 ? normSq + queryNorm * queryNorm : 0));
        out[i] = l2 ? -Math.sqrt(Math.max(0, -kernel - 2 * spreadOf)) : kernel + offset + spreadOf;
      });
      return out;
    },
  };
}
