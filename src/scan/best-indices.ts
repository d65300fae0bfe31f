/** Buckets take() sorts scores into by value, to find the few among which the count-th best lies. */
const BUCKETS = 256;

/**
 * The `count` best entries of a whole array of scores, in order: what a TopK of `count` fed every
 * (score, index) keeps and its sortBestFirst() orders (higher score first, the lower index first
 * among equal scores), without a push per entry. The router picks a search's pages this way from
 * the scores of every centroid: through a TopK, choosing 81 pages of 718 and sorting them took
 * about 25 µs of a 400 µs search (GloVe 100k, int8; scratch probes timing the calls), where the
 * kernel's scores of all 718 took 16; this way about 20, and `bench/builds.ts` put the whole search
 * at 0.977 of the build before (no change on rq2 at 50k, 367 pages: 1.011 and 1.033).
 *
 * Branches on random scores are what cost (a quickselect of 718 took 15 µs): so the scores are
 * counted into buckets by value, linearly between the least and the greatest (no branch), the
 * bucket holding the count-th best is found from the top, and one pass takes, in index order, the
 * indices in it and above it, a few more than `count`. Only their scores are sorted (natively);
 * each index then goes to its score's place, the first of a run of equal scores first, as the
 * indices arrive in index order.
 *
 * A NaN score has no place in the order, and an infinite one leaves no span to bucket by: take()
 * says so and leaves the caller to rank another way (a TopK). -0 and 0 are the same score, as they
 * are to a TopK.
 */
export class BestIndices {
  private readonly counts = new Int32Array(BUCKETS);
  private keys = new Float64Array(0);
  private taken = new Int32Array(0);
  private used = new Int32Array(0);

  /**
   * Writes the indices of the min(count, n) best of `scores[0..n)` into `out`, best first (and
   * their scores into `outScores`, when given); returns how many, or -1 when it cannot rank them
   * (then `out` holds nothing of use): a score is NaN or infinite.
   */
  take(scores: Float64Array, n: number, count: number, out: Int32Array, outScores?: Float64Array): number {
    const m = Math.min(Math.max(0, Math.floor(count)), n);
    if (m === 0) return 0;
    if (out.length < m || (outScores !== undefined && outScores.length < m)) throw new RangeError(`room for ${out.length} indices, not ${m}`);
    let least = Infinity;
    let most = -Infinity;
    for (let i = 0; i < n; i++) {
      const s = scores[i]!;
      if (s !== s) return -1;
      if (s < least) least = s;
      if (s > most) most = s;
    }
    if (!Number.isFinite(least) || !Number.isFinite(most)) return -1;
    if (!(most > least)) {
      // All equal: the lowest indices, in order.
      for (let i = 0; i < m; i++) {
        out[i] = i;
        if (outScores !== undefined) outScores[i] = scores[i]!;
      }
      return m;
    }
    if (m < n) {
      const counts = this.counts;
      // Infinite for a span of a few subnormals (256 / 5e-324); 0 for one past float64's range, which buckets every score alike (correct, only slower).
      const scale = BUCKETS / (most - least);
      if (!Number.isFinite(scale)) return -1;
      counts.fill(0);
      for (let i = 0; i < n; i++) counts[Math.min(BUCKETS - 1, ((scores[i]! - least) * scale) | 0)]!++;
      // The bucket of the m-th best: a bucket's index only grows with the score (a subtraction, a
      // product by a positive number and a floor are monotone), so every score in a higher bucket beats every one in it.
      let above = 0;
      let from = BUCKETS - 1;
      while (above + counts[from]! < m) above += counts[from--]!;
      this.reserve(above + counts[from]!);
      const taken = this.taken;
      let c = 0;
      for (let i = 0; i < n; i++) if (Math.min(BUCKETS - 1, ((scores[i]! - least) * scale) | 0) >= from) taken[c++] = i;
      return this.place(scores, c, m, out, outScores);
    }
    this.reserve(n);
    for (let i = 0; i < n; i++) this.taken[i] = i;
    return this.place(scores, n, m, out, outScores);
  }

  /** The best m of the c indices in `taken` (in index order), best first, into `out`. */
  private place(scores: Float64Array, c: number, m: number, out: Int32Array, outScores: Float64Array | undefined): number {
    const taken = this.taken;
    const keys = this.keys.subarray(0, c);
    // + 0 makes -0 a 0: the native sort would put -0 first, where the order counts them equal.
    for (let j = 0; j < c; j++) keys[j] = scores[taken[j]!]! + 0;
    keys.sort();
    const used = this.used;
    used.fill(0, 0, c);
    for (let j = 0; j < c; j++) {
      const index = taken[j]!;
      const s = scores[index]! + 0;
      const lo = lowerBound(keys, c, s);
      const hi = upperBound(keys, c, s, lo);
      // keys ascend: the scores equal to s take the places c − hi .. c − lo − 1 best first, in
      // arrival (index) order; only the first m places are kept.
      const at = c - hi + used[lo]!++;
      if (at >= m) continue;
      out[at] = index;
      if (outScores !== undefined) outScores[at] = scores[index]!;
    }
    return m;
  }

  private reserve(c: number): void {
    if (this.taken.length >= c) return;
    const room = Math.max(c, 2 * this.taken.length);
    this.keys = new Float64Array(room);
    this.taken = new Int32Array(room);
    this.used = new Int32Array(room);
  }
}

/** The first place in `keys[0..n)` (ascending) whose key is not below `s`. */
function lowerBound(keys: Float64Array, n: number, s: number): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < s) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The first place in `keys[from..n)` (ascending) whose key is above `s`. */
function upperBound(keys: Float64Array, n: number, s: number, from: number): number {
  let lo = from;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! <= s) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
