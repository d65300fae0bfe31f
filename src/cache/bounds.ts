import type { KernelMetric } from '../kernels/index.js';
import type { KernelForm } from '../scan/code-blocks.js';

/**
 * How far a kernel score can move when the query moves (CACHE.md, "The bound"). Scores are what
 * the scan kernels compute on the kernel's view of the query `v` (CodeBlocks.kernelQuery, KernelForm) and a
 * stored code `x` (decoded: x̂):
 *
 *   'cosine'  s(v, x) = v · x̂ / ‖x̂‖      |s(v', x) − s(v, x)| ≤ ‖v' − v‖
 *   'dot'     s(v, x) = v · x̂             |s(v', x) − s(v, x)| ≤ ‖v' − v‖ · ‖x̂‖ ≤ ‖v' − v‖ · X
 *   'l2'      s(v, x) = −‖v − x̂‖²         s(v, x) ≤ b  ⇒  s(v', x) ≤ −max(0, √−b − ‖v' − v‖)²
 *
 * (Cauchy–Schwarz for the first two, the triangle inequality for the third.) `outsiderBound` maps
 * the bound `b` known for every vector outside a pool under `v` to one under `v'`, with a margin for
 * float32 rounding in the kernels.
 */

/**
 * Relative rounding margin of a float32 kernel score: a sum of `dim` float32 products, accumulated in
 * float32 lanes, is within about dim · 2⁻²⁴ of the exact sum relative to the sum of |terms|. A
 * margin of 2⁻¹² · (1 + dim / 256) of the largest possible score covers it many times over; it
 * only ever turns a hit into a miss.
 */
function roundingMargin(dim: number, largestScore: number): number {
  return 2 ** -12 * (1 + dim / 256) * (1 + largestScore);
}

/** How far kernel scores may move from query `from` to `next` (their distance), with the rounding margin. */
export interface ScoreShift {
  readonly metric: KernelMetric;
  readonly delta: number;
  readonly margin: number;
  /** The largest ‖x̂‖ in the store ('dot' and 'l2' need it). */
  readonly maxNorm: number;
}

export function scoreShift(metric: KernelMetric, from: KernelForm, next: KernelForm, maxNorm: number): ScoreShift {
  const length = from.kind === 'float' ? from.vector.length : from.code.length;
  if ((next.kind === 'float' ? next.vector.length : next.code.length) !== length) throw new RangeError('queries of different lengths have no distance');
  // One pass in float64 for the distance and both norms, reading each form where it is (a near try
  // computes this once or twice; dequantized copies would cost it two arrays each time).
  const a = from.kind === 'float' ? from.vector : from.code;
  const b = next.kind === 'float' ? next.vector : next.code;
  const sa = from.kind === 'float' ? 1 : from.scale;
  const sb = next.kind === 'float' ? 1 : next.scale;
  let d2 = 0;
  let f2 = 0;
  let n2 = 0;
  for (let i = 0; i < length; i++) {
    // As kernelQuery() gives each value: float32 (a float form's values are already).
    const x = Math.fround(a[i]! * sa);
    const y = Math.fround(b[i]! * sb);
    d2 += (x - y) * (x - y);
    f2 += x * x;
    n2 += y * y;
  }
  const delta = Math.sqrt(d2);
  const largest = Math.sqrt(Math.max(f2, n2));
  const far = largest + maxNorm;
  const margin = metric === 'cosine' ? roundingMargin(length, largest) : metric === 'dot' ? roundingMargin(length, largest * maxNorm) : roundingMargin(length, far * far);
  return { metric, delta, margin, maxNorm };
}

/**
 * An upper bound, after `shift`, on the kernel score of every stored vector whose score before it
 * was at most `b`. Nondecreasing in `b`.
 */
export function movedScore(shift: ScoreShift, b: number): number {
  if (b === -Infinity) return -Infinity;
  switch (shift.metric) {
    case 'cosine':
      return b + shift.delta + shift.margin;
    case 'dot':
      return b + shift.delta * shift.maxNorm + shift.margin;
    case 'l2': {
      const r = Math.sqrt(Math.max(0, -b));
      const closest = Math.max(0, r - shift.delta);
      return -(closest * closest) + shift.margin;
    }
  }
}

/**
 * An upper bound, under query `next`, on the kernel score of every stored vector whose score under
 * `from` was at most `b`. `maxNorm` is the largest ‖x̂‖ in the store ('dot' needs it).
 */
export function outsiderBound(metric: KernelMetric, b: number, from: Float32Array, next: Float32Array, maxNorm: number): number {
  if (b === -Infinity) return -Infinity;
  return movedScore(scoreShift(metric, { kind: 'float', vector: from }, { kind: 'float', vector: next }, maxNorm), b);
}
