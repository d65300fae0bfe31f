import { kernels, SELECT_BUCKETS } from '../kernels/index.js';

/** Buckets a pass of take() counts scores into by value: bucket_select's. */
const BUCKETS = SELECT_BUCKETS;

/** Bytes of BestIndices' region of linear memory for `room` scores (reserve() lays it out). */
function regionBytes(room: number): number {
  // Scores, taken, boundary, counts, results, then each score's bucket (a byte), rounded to 16.
  return Math.ceil((16 * room + 4 * BUCKETS + 24 + room) / 16) * 16;
}

/** The most scores one bucket of the final ordering may hold before a comparison sort takes over (an insertion sort's cost grows as its square). */
const BUCKET_SORT_LIMIT = 24;

/**
 * The `count` best entries of a whole array of scores, in order: what a TopK of `count` fed every
 * (score, index) keeps and its sortBestFirst() orders (higher score first, the lower index first
 * among equal scores), without a push per entry. The router picks a search's pages this way from
 * the scores of every centroid: through a TopK, choosing 81 pages of 718 and sorting them took
 * about 25 µs of a 400 µs search (GloVe 100k, int8), 147 of 2,388 about 40 µs (GloVe 331k), where
 * the kernel's scores of all of them took 16 and 27 (scratch probes timing the calls). The scores
 * live in linear memory (scoresPointer()), where the router's route_scores kernel writes them, and
 * each round of bucketing is the bucket_select kernel (KERNELS.md, "Router selection"): in
 * JavaScript the selection took 45–48 µs for 160 of 2,825 pages.
 *
 * Branches on scores in no order are what cost (a quickselect of 718 took 15 µs), so the scores
 * are counted into buckets by value, linearly between the least and the greatest, with no branch;
 * the bucket of the count-th best is found from the top; the indices above it are taken, and those
 * in it bucketed again over their own span, until the count is met (a bucket of equal scores gives
 * its lowest indices). A bucket's number only grows with the score (a subtraction, a product by a
 * positive number and a floor are monotone), so every score in a higher bucket beats every score in
 * a lower one, and equal scores always share a bucket. The few taken are ordered by a counting sort
 * over their own span, best first, which keeps index order within a bucket, and an insertion sort
 * within buckets; where one bucket holds too many (scores crowded beside an outlier), by a native
 * sort of their scores, each index then placed at its score's rank.
 *
 * A NaN score has no place in the order, and an infinite one leaves no span to bucket by: take()
 * says so and leaves the caller to rank another way (a TopK). -0 and 0 are the same score, as they
 * are to a TopK.
 */
export class BestIndices {
  private readonly kernels = kernels();
  private readonly mem = this.kernels.memory;
  /** sortBestFirst()'s counts by bucket. */
  private readonly counts = new Int32Array(BUCKETS);
  /** The taken ones best first. */
  private order = new Int32Array(0);
  /** The native sort's fallback: the taken scores, sorted, and how many of each rank were placed. */
  private keys = new Float64Array(0);
  private placed = new Int32Array(0);
  /**
   * Linear memory for `room` scores, for bucket_select (KERNELS.md, "Router selection"): the scores
   * (float64), the indices taken and the boundary bucket's (int32), each one's bucket (a byte), the
   * counts by bucket, and the kernel's four results. A view of it is taken after every reserve(),
   * never kept across one (linear memory may grow and move).
   */
  private room = 0;
  private scoresAt = 0;
  private takenAt = 0;
  private boundaryAt = 0;
  private bucketOfAt = 0;
  private countsAt = 0;
  private resultAt = 0;
  private freed = false;

  /** Bytes of linear memory held. */
  get bytes(): number {
    return this.room === 0 ? 0 : regionBytes(this.room);
  }

  /**
   * Where a caller writes `n` float64 scores for takeWritten() (linear memory, valid until the next
   * call of this object): the router's kernel writes them there, copying nothing.
   */
  scoresPointer(n: number): number {
    this.reserve(n);
    return this.scoresAt;
  }

  /**
   * Writes the indices of the min(count, n) best of `scores[0..n)` into `out`, best first (and
   * their scores into `outScores`, when given); returns how many, or -1 when it cannot rank them
   * (then `out` holds nothing of use): a score is NaN or infinite.
   */
  take(scores: Float64Array, n: number, count: number, out: Int32Array, outScores?: Float64Array): number {
    let least = Infinity;
    let most = -Infinity;
    for (let i = 0; i < n; i++) {
      const s = scores[i]!;
      if (s !== s) return -1;
      if (s < least) least = s;
      if (s > most) most = s;
    }
    const at = this.scoresPointer(n);
    this.mem.f64().set(scores.subarray(0, n), at >> 3);
    return this.takeWritten(n, count, least, most, out, outScores);
  }

  /**
   * take(), for scores already written at scoresPointer(n), by a caller that found the least and the
   * greatest as it made them (the router): every score must lie in [least, most], none NaN. -1 when
   * either bound is infinite.
   */
  takeWritten(n: number, count: number, least: number, most: number, out: Int32Array, outScores?: Float64Array): number {
    const m = Math.min(Math.max(0, Math.floor(count)), n);
    if (m === 0) return 0;
    if (out.length < m || (outScores !== undefined && outScores.length < m)) throw new RangeError(`room for ${out.length} indices, not ${m}`);
    if (!Number.isFinite(least) || !Number.isFinite(most)) return -1;
    if (this.freed) throw new Error('BestIndices used after free()');
    if (n > this.room) throw new RangeError(`${n} scores, room for ${this.room}: scoresPointer(n) first`);
    const scores = this.mem.f64().subarray(this.scoresAt >> 3, (this.scoresAt >> 3) + n);
    const taken = this.mem.i32().subarray(this.takenAt >> 2, (this.takenAt >> 2) + n);
    let c = 0;
    if (m === n) {
      for (let i = 0; i < n; i++) taken[i] = i;
      c = n;
    } else {
      c = this.select(taken, n, m, least, most);
      if (c < 0) return -1;
    }
    const order = this.sortBestFirst(scores, taken, c);
    for (let j = 0; j < m; j++) {
      const index = order[j]!;
      out[j] = index;
      if (outScores !== undefined) outScores[j] = scores[index]!;
    }
    return m;
  }

  /** Gives its linear memory back; unusable after. */
  free(): void {
    if (this.freed) return;
    this.freed = true;
    if (this.room > 0) this.mem.free(this.scoresAt, regionBytes(this.room));
    this.room = 0;
  }

  /**
   * Puts the indices of the m best of scores[0..n) (m < n) into `taken`, returns m; -1 for scores it
   * cannot bucket (bucketing()). Each round is the bucket_select kernel: the first over every score,
   * each later one over the boundary bucket the round before kept, until the count is met.
   */
  private select(taken: Int32Array, n: number, m: number, least: number, most: number): number {
    let c = 0;
    let size = n;
    // 0: every score (address 0 is never a block); then the boundary bucket's positions.
    let indices = 0;
    for (;;) {
      const need = m - c;
      // All equal: the lowest indices.
      if (!(most > least)) {
        const boundary = this.mem.i32();
        for (let j = 0; j < need; j++) taken[c++] = indices === 0 ? j : boundary[(this.boundaryAt >> 2) + j]!;
        return c;
      }
      const { f, scale } = bucketing(least, most);
      if (scale === 0) return -1;
      this.kernels.bucketSelect(this.scoresAt, size, indices, need, f, least * f, scale, this.bucketOfAt, this.countsAt, this.takenAt + 4 * c, this.boundaryAt, this.resultAt);
      const result = this.mem.i32();
      c += result[this.resultAt >> 2]!;
      if (c === m) return c;
      size = result[(this.resultAt >> 2) + 1]!;
      indices = this.boundaryAt;
      least = this.mem.f64()[(this.resultAt >> 3) + 1]!;
      most = this.mem.f64()[(this.resultAt >> 3) + 2]!;
    }
  }

  /** The c indices of `taken` best first, in `order`: equal scores in the order `taken` holds them. */
  private sortBestFirst(scores: Float64Array, taken: Int32Array, c: number): Int32Array {
    const { order, counts } = this;
    let least = Infinity;
    let most = -Infinity;
    for (let j = 0; j < c; j++) {
      const s = scores[taken[j]!]!;
      if (s < least) least = s;
      if (s > most) most = s;
    }
    if (!(most > least)) {
      order.set(taken.subarray(0, c));
      return order;
    }
    const { f, scale } = bucketing(least, most);
    if (scale === 0) return this.sortByKeys(scores, taken, c);
    const top = most * f;
    // A counting sort, best bucket first: (most − s) · scale grows as the score falls.
    counts.fill(0);
    let crowded = 0;
    for (let j = 0; j < c; j++) crowded = Math.max(crowded, ++counts[Math.min(BUCKETS - 1, ((top - scores[taken[j]!]! * f) * scale) | 0)]!);
    if (crowded > BUCKET_SORT_LIMIT) return this.sortByKeys(scores, taken, c);
    for (let b = 0, at = 0; b < BUCKETS; b++) {
      const here = counts[b]!;
      counts[b] = at;
      at += here;
    }
    for (let j = 0; j < c; j++) {
      const index = taken[j]!;
      order[counts[Math.min(BUCKETS - 1, ((top - scores[index]! * f) * scale) | 0)]!++] = index;
    }
    // Within a bucket: only a strictly higher score moves past another, so equal ones keep their order.
    for (let j = 1; j < c; j++) {
      const index = order[j]!;
      const s = scores[index]!;
      let i = j - 1;
      while (i >= 0 && scores[order[i]!]! < s) {
        order[i + 1] = order[i]!;
        i--;
      }
      order[i + 1] = index;
    }
    return order;
  }

  /** sortBestFirst() by a native sort of the scores, each index then placed at its score's rank. */
  private sortByKeys(scores: Float64Array, taken: Int32Array, c: number): Int32Array {
    const { order } = this;
    if (this.keys.length < c) {
      this.keys = new Float64Array(this.room);
      this.placed = new Int32Array(this.room);
    }
    const keys = this.keys.subarray(0, c);
    // + 0 makes -0 a 0: the native sort would put -0 first, where the order counts them equal.
    for (let j = 0; j < c; j++) keys[j] = scores[taken[j]!]! + 0;
    keys.sort();
    const placed = this.placed;
    placed.fill(0, 0, c);
    for (let j = 0; j < c; j++) {
      const index = taken[j]!;
      const s = scores[index]! + 0;
      const lo = firstAtLeast(keys, 0, c, s);
      const hi = firstAtLeast(keys, lo, c, s, true);
      // Ascending keys: the scores equal to s take the places c − hi .. c − lo − 1, best first, in the order they come.
      order[c - hi + placed[lo]!++] = index;
    }
    return order;
  }

  private reserve(n: number): void {
    if (this.freed) throw new Error('BestIndices used after free()');
    if (this.room >= n) return;
    const room = Math.max(n, 2 * this.room, 16);
    const at = this.mem.alloc(regionBytes(room));
    if (this.room > 0) this.mem.free(this.scoresAt, regionBytes(this.room));
    this.room = room;
    this.scoresAt = at;
    this.takenAt = at + 8 * room;
    this.boundaryAt = this.takenAt + 4 * room;
    this.countsAt = this.boundaryAt + 4 * room;
    this.resultAt = this.countsAt + 4 * BUCKETS;
    this.bucketOfAt = this.resultAt + 24;
    this.order = new Int32Array(room);
  }
}

/**
 * How scores in [least, most] (least < most, both finite) go to buckets: bucket ⌊(s·f − least·f) ·
 * scale⌋. f is ½ where most − least overflows to Infinity (halving is exact but for subnormals, and
 * monotone always); scale is 0 where the span is too narrow to divide (a few subnormals: 256 /
 * 5e-324 is infinite), which the caller must rank another way.
 */
function bucketing(least: number, most: number): { f: number; scale: number } {
  const f = Number.isFinite(most - least) ? 1 : 0.5;
  const scale = BUCKETS / (most * f - least * f);
  return { f, scale: Number.isFinite(scale) && scale > 0 ? scale : 0 };
}

/** The first place in `keys[from..n)` (ascending) whose key is at least `s` (`above`: above `s`). */
function firstAtLeast(keys: Float64Array, from: number, n: number, s: number, above = false): number {
  let lo = from;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < s || (above && keys[mid]! === s)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
