/**
 * How far the lengths of a page index's vectors spread: a count of them by 1/32 octave of length
 * (1/16 octave of the squared norm), exact and kept as vectors come and go, so that it depends on
 * which vectors the index holds, never on the order they came in (PAGES.md, "Determinism"). A
 * bucket is read off the float64 squared norm: its exponent, then the sixteenth of the octave its
 * significand lies in (Math.log2 of a value in [1, 2), which V8 computes in software, alike on
 * every platform).
 */

/** Buckets per octave of the squared norm. */
const STEPS = 16;
/** Octaves of the squared norm either side of 1 that get buckets of their own; those past them share the last. */
const OCTAVES = 200;
/** Bucket 0 counts zero vectors; buckets 1..BUCKETS - 1 the rest, shortest first. */
const BUCKETS = 2 * OCTAVES * STEPS + 2;

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
  const step = Math.min(STEPS - 1, Math.floor(STEPS * Math.log2(squared / 2 ** exponent)));
  const at = exponent * STEPS + step;
  return Math.min(Math.max(at, -OCTAVES * STEPS), OCTAVES * STEPS) + OCTAVES * STEPS + 1;
}

export class LengthSpread {
  private readonly counts = new Float64Array(BUCKETS);
  private total = 0;
  /** ratio()'s answer while nothing changed since, or -1. */
  private known = -1;

  /** Vectors counted, zero vectors included. */
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
   * The length of the 90th percentile of the vectors that are not zero over that of the 10th, as
   * their buckets' lower edges give it (within 1/32 octave, 2.2%, of the ratio itself): 1 for
   * vectors of one length, and 1 when fewer than one is counted. Zero vectors are left out: a dot
   * product or a distance ranks them by no length of theirs.
   */
  ratio(): number {
    if (this.known >= 0) return this.known;
    const counted = this.total - this.counts[0]!;
    if (counted <= 0) return (this.known = 1);
    const low = Math.max(1, Math.ceil(counted / 10));
    const high = Math.max(1, Math.ceil((9 * counted) / 10));
    let seen = 0;
    let lowBucket = -1;
    let highBucket = -1;
    for (let b = 1; b < BUCKETS && highBucket < 0; b++) {
      seen += this.counts[b]!;
      if (lowBucket < 0 && seen >= low) lowBucket = b;
      if (seen >= high) highBucket = b;
    }
    return (this.known = 2 ** ((highBucket - lowBucket) / (2 * STEPS)));
  }
}
