/**
 * How far the lengths of a page index's vectors spread: a count of them by half octave of the
 * squared norm (a quarter octave of the length), exact and kept as vectors come and go, so that it
 * depends on which vectors the index holds, never on the order they came in (PAGES.md,
 * "Determinism"). A bucket is read off the bits of the float64 squared norm (its exponent, and
 * whether its significand is at least √2), so it is the same on every platform.
 */

/** Half octaves either side of a squared norm of 1 that get buckets of their own; those past them share the last. */
const HALF_OCTAVES = 400;
/** Bucket 0 counts zero vectors; buckets 1..2·HALF_OCTAVES + 1 the rest, shortest first. */
const BUCKETS = 2 * HALF_OCTAVES + 2;

const bits = new DataView(new ArrayBuffer(8));

/** The bucket of a vector of squared norm `squared` (finite, at least 0). */
export function lengthBucket(squared: number): number {
  if (!(squared > 0)) return 0;
  bits.setFloat64(0, squared);
  const biased = (bits.getUint32(0) >>> 20) & 0x7ff;
  // A subnormal squared norm lies below every bucket's range: it shares the shortest.
  if (biased === 0) return 1;
  const exponent = biased - 1023;
  // squared / 2^exponent is exact (a power of two), in [1, 2).
  const half = 2 * exponent + (squared / 2 ** exponent >= Math.SQRT2 ? 1 : 0);
  return Math.min(Math.max(half, -HALF_OCTAVES), HALF_OCTAVES) + HALF_OCTAVES + 1;
}

export class LengthSpread {
  private readonly counts = new Float64Array(BUCKETS);
  private total = 0;
  /** spread()'s answer while nothing changed since, or -1. */
  private known = -1;

  /** Vectors counted. */
  get count(): number {
    return this.total;
  }

  /** Counts a vector of squared norm `squared`. */
  add(squared: number): void {
    this.counts[lengthBucket(squared)]!++;
    this.total++;
    this.known = -1;
  }

  /** Takes back a vector add() counted with the same `squared`. */
  remove(squared: number): void {
    const b = lengthBucket(squared);
    if (this.counts[b]! <= 0) throw new RangeError('no vector of that length is counted');
    this.counts[b]!--;
    this.total--;
    this.known = -1;
  }

  /**
   * Half octaves of the squared norm (quarter octaves of the length) from the bucket of the 10th
   * percentile to that of the 90th: 0 or 1 for vectors of one length (a length of 1 in float32
   * lies on either side of a bucket's edge), and about 4·log2(p90 / p10) of their lengths beyond.
   * 0 when nothing is counted.
   */
  spread(): number {
    if (this.known >= 0) return this.known;
    if (this.total === 0) return (this.known = 0);
    const low = Math.max(1, Math.ceil(this.total / 10));
    const high = Math.max(1, Math.ceil((9 * this.total) / 10));
    let seen = 0;
    let lowBucket = -1;
    let highBucket = -1;
    for (let b = 0; b < BUCKETS && highBucket < 0; b++) {
      seen += this.counts[b]!;
      if (lowBucket < 0 && seen >= low) lowBucket = b;
      if (seen >= high) highBucket = b;
    }
    return (this.known = highBucket - lowBucket);
  }
}
