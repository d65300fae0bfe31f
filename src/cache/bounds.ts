import { kernelUnderflow, SHIFT_DIM_STEP } from '../kernels/contract.js';
import { kernels, type KernelMetric } from '../kernels/index.js';
import { inputCopied, kernelScratch } from '../kernels/scratch.js';
import { kernelValues, type KernelForm } from '../scan/code-blocks.js';

/**
 * How far a kernel score can move when the query moves (CACHE.md, "The bound"). Scores are what
 * the scan kernels compute on the kernel's view of the query `v` (CodeBlocks.kernelQuery, KernelForm) and a
 * stored code `x` (decoded: x̂):
 *
 *   'cosine'  s(v, x) = v · x̂ / ‖x̂‖      |s(v', x) − s(v, x)| ≤ ‖v' − v‖, and
 *             s(v, x) ≤ b  ⇒  s(v', x) ≤ ‖v'‖ cos(max(0, arccos(b / ‖v‖) − α)), α the angle between v and v'
 *   'dot'     s(v, x) = v · x̂             |s(v', x) − s(v, x)| ≤ ‖v' − v‖ · ‖x̂‖ ≤ ‖v' − v‖ · X, and
 *             s(v, x) ≤ b  ⇒  s(v', x) ≤ X ‖v'‖ cos(max(0, arccos(b / (‖v‖ X)) − α))
 *   'l2'      s(v, x) = −‖v − x̂‖²         s(v, x) ≤ b  ⇒  s(v', x) ≤ −max(0, √−b − ‖v' − v‖)²
 *
 * (Cauchy–Schwarz for the first two, the triangle inequality for the third; each second form
 * is the triangle inequality for angles, tighter than the first by a factor of about sin(arccos b)
 * for a small move of a unit query.) `outsiderBound` maps
 * the bound `b` known for every vector outside a pool under `v` to one under `v'`, with a margin for
 * float32 rounding in the kernels.
 */

/**
 * Rounding margin of a float32 kernel score: a sum of `dim` float32 products, accumulated in
 * float32 lanes, is within about dim · 2⁻²⁴ of the exact sum relative to the sum of |terms|, at
 * most the largest possible score. A margin of 2⁻¹² · (1 + dim / 256) of it covers that many times
 * over; what subnormals lose is not relative, and is taken as the rescoring bound takes it (each
 * float32 operation at most 2⁻¹⁴⁹, an int8 kernel's product of its two scales at most 2⁻¹⁴⁹ times
 * its integer sum, ≤ 127² · dim). The margin only ever turns a hit into a miss. It had been
 * 2⁻¹² · (1 + dim / 256) · (1 + the largest score): at least 2.4 · 10⁻⁴ whatever the scale, so
 * that for vectors of length 10⁻³ and below no near query was ever certified, and a PCA store's
 * look past its candidates, which takes the int8 scan's shift from here, read every vector within
 * that reach (a hostile pass: 1,755 a search at 10⁻³, its cap of 4,096 at 10⁻⁶).
 */
function roundingMargin(dim: number, largestScore: number): number {
  return 2 ** -12 * (1 + dim / 256) * largestScore + kernelUnderflow(dim);
}

/** How far kernel scores may move from query `from` to `next` (their distance), with the rounding margin. */
export interface ScoreShift {
  readonly metric: KernelMetric;
  readonly delta: number;
  readonly margin: number;
  /** The largest ‖x̂‖ in the store ('dot' and 'l2' need it). */
  readonly maxNorm: number;
  /** ‖v‖ and ‖v'‖, and the angle between them (0 when either is 0): the angular bound of 'cosine'. */
  readonly fromNorm: number;
  readonly nextNorm: number;
  readonly angle: number;
  /**
   * The very query the scores were computed for, through the same kernel form: no score moves,
   * whatever the metric's bound would allow (an rq l2 store, whose shift is otherwise unbounded,
   * certifies an exact repeat after writes with it).
   */
  readonly same?: boolean;
}

export function scoreShift(metric: KernelMetric, from: KernelForm, next: KernelForm, maxNorm: number): ScoreShift {
  const length = from.kind === 'float' ? from.vector.length : from.code.length;
  if ((next.kind === 'float' ? next.vector.length : next.code.length) !== length) throw new RangeError('queries of different lengths have no distance');
  const [d2, f2, n2, fn] = shiftSums(from, next, length);
  const delta = Math.sqrt(d2);
  const largest = Math.sqrt(Math.max(f2, n2));
  const far = largest + maxNorm;
  const margin = metric === 'cosine' ? roundingMargin(length, largest) : metric === 'dot' ? roundingMargin(length, largest * maxNorm) : roundingMargin(length, far * far);
  const fromNorm = Math.sqrt(f2);
  const nextNorm = Math.sqrt(n2);
  const angle = fromNorm > 0 && nextNorm > 0 ? Math.acos(clamp(fn / (fromNorm * nextNorm))) : 0;
  return { metric, delta, margin, maxNorm, fromNorm, nextNorm, angle };
}

/**
 * Σ(x − y)², Σx², Σy² and Σxy in float64 over the values of two kernel forms as kernelValues()
 * gives them (float32), in one call of the query_shift kernels (KERNELS.md, "Query shift"): two
 * int8 forms are read as codes, anything else as float32 values, in the same order, so that the
 * same values give the same sums in either form. A JavaScript loop over the two forms took about
 * 3 µs at 512-d, once or twice for every lookup that finds a near entry.
 */
function shiftSums(from: KernelForm, next: KernelForm, length: number): [number, number, number, number] {
  const padded = Math.ceil(length / SHIFT_DIM_STEP) * SHIFT_DIM_STEP;
  const codes = from.kind === 'int8' && next.kind === 'int8';
  const width = codes ? 1 : 4;
  const a = kernelScratch(2 * width * padded + 32);
  inputCopied(from.kind === 'int8' ? from.code : from.vector, length);
  inputCopied(next.kind === 'int8' ? next.code : next.vector, length);
  const b = a + width * padded;
  // Past both queries: a multiple of 8 bytes from the 16-aligned scratch.
  const out = b + width * padded;
  const k = kernels();
  if (codes) {
    const i8 = k.memory.i8();
    i8.set(from.code, a);
    i8.fill(0, a + length, b);
    i8.set(next.code, b);
    i8.fill(0, b + length, out);
    k.queryShiftI8(a, b, from.scale, next.scale, padded, out);
  } else {
    const f32 = k.memory.f32();
    f32.set(kernelValues(from), a >> 2);
    f32.fill(0, (a >> 2) + length, b >> 2);
    f32.set(kernelValues(next), b >> 2);
    f32.fill(0, (b >> 2) + length, out >> 2);
    k.queryShiftF32(a, b, padded, out);
  }
  const f64 = k.memory.f64();
  const at = out >> 3;
  return [f64[at]!, f64[at + 1]!, f64[at + 2]!, f64[at + 3]!];
}

function clamp(c: number): number {
  return c > 1 ? 1 : c < -1 ? -1 : c;
}

/**
 * The largest ‖x̂‖ the kernel divides by (1: 'cosine' scores unit directions) or multiplies by ('dot':
 * the store's largest code norm); 0 for 'l2', which has no angular form.
 */
function reach(shift: ScoreShift): number {
  return shift.metric === 'cosine' ? 1 : shift.metric === 'dot' ? shift.maxNorm : 0;
}

/**
 * The angular form of the bound (CACHE.md, "The bound"): a direction at angle at least
 * arccos(b / (‖v‖ X)) from v is at least that less α from v', and for 'dot' the bound grows with
 * ‖x̂‖, so the largest, X, gives it. Float64 rounding of the arccos near 1 moves it by at most
 * about 4 · 10⁻⁷ of the scale, far inside the margin the caller adds (at least 2⁻¹² of it).
 * Infinity (no bound) when a query or X is 0.
 */
function angularMove(shift: ScoreShift, b: number): number {
  const x = reach(shift);
  if (!(shift.fromNorm > 0 && shift.nextNorm > 0 && x > 0)) return Infinity;
  const apart = Math.acos(clamp(b / (shift.fromNorm * x))) - shift.angle;
  return x * shift.nextNorm * (apart > 0 ? Math.cos(apart) : 1);
}

/**
 * An upper bound, after `shift`, on the kernel score of every stored vector whose score before it
 * was at most `b`. Nondecreasing in `b`.
 */
export function movedScore(shift: ScoreShift, b: number): number {
  if (b === -Infinity) return -Infinity;
  // No bound before the shift, none after. The l2 form below would turn it (or an unbounded shift)
  // into "at most 0", true of −‖q − x‖² but not of an rq code's l2 score, which can be above 0
  // (CACHE.md, "Quiet spells": an answer-only entry, repeated after a write, served a worse id).
  if (b === Infinity) return Infinity;
  if (shift.same === true) return b;
  switch (shift.metric) {
    case 'cosine':
      // The margin also inside the angular form: the old score itself was rounded.
      return Math.min(b + shift.delta, angularMove(shift, b + shift.margin)) + shift.margin;
    case 'dot':
      return Math.min(b + shift.delta * shift.maxNorm, angularMove(shift, b + shift.margin)) + shift.margin;
    case 'l2': {
      if (!(shift.delta < Infinity)) return Infinity;
      const r = Math.sqrt(Math.max(0, -b));
      const closest = Math.max(0, r - shift.delta);
      return -(closest * closest) + shift.margin;
    }
  }
}

/**
 * A score below which every score moves to below `m` (movedScore(shift, s) < m for every s < the
 * result), a little lower than the exact threshold (by 10⁻⁹ of the scale, far more than the
 * inverse's rounding): comparing each pool member's old score with it is one comparison instead of
 * a movedScore() each, whose arccos and cosine cost a near try several microseconds.
 */
export function skipBelow(shift: ScoreShift, m: number): number {
  // Under an unbounded shift (an rq l2 store's) any score may move anywhere: none is skipped. The l2
  // form below takes scores for minus squared distances, at most 0, where "every score moves below m"
  // for any m above the margin; rq l2 kernel scores can be above 0, and it had skipped every member
  // of a pool of every vector below its last candidate, so a near hit's candidates were not the scan's.
  if (!(m > -Infinity) || shift.delta === Infinity) return -Infinity;
  let at: number;
  if (shift.same === true) at = m;
  else switch (shift.metric) {
    case 'cosine':
    case 'dot': {
      const x = reach(shift);
      const linear = m - shift.delta * x - shift.margin;
      at = linear;
      if (shift.fromNorm > 0 && shift.nextNorm > 0 && x > 0) {
        // X ‖v'‖ cos(max(0, φ − α)) < w X ‖v'‖  ⟸  φ > α + arccos(w), φ = arccos((s + margin) / (‖v‖ X)).
        const w = (m - shift.margin) / (x * shift.nextNorm);
        if (w > 1) return Infinity;
        if (w > -1) {
          const turn = shift.angle + Math.acos(w);
          if (turn < Math.PI) at = Math.max(linear, x * shift.fromNorm * Math.cos(turn) - shift.margin);
        }
      }
      break;
    }
    case 'l2': {
      // −max(0, √−s − δ)² + margin < m  ⟸  √−s > δ + √(margin − m).
      const room = shift.margin - m;
      if (room < 0) return Infinity;
      const r = shift.delta + Math.sqrt(room);
      at = -(r * r);
      break;
    }
  }
  return at - 1e-9 * (1 + Math.abs(at));
}

/**
 * An upper bound, under query `next`, on the kernel score of every stored vector whose score under
 * `from` was at most `b`. `maxNorm` is the largest ‖x̂‖ in the store ('dot' needs it).
 */
export function outsiderBound(metric: KernelMetric, b: number, from: Float32Array, next: Float32Array, maxNorm: number): number {
  if (b === -Infinity) return -Infinity;
  return movedScore(scoreShift(metric, { kind: 'float', vector: from }, { kind: 'float', vector: next }, maxNorm), b);
}
