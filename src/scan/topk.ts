/**
 * Whether slot `a` goes before slot `b` among equal scores: a strict total order on slots. The
 * default is the lower slot; a search orders ties by the records' ids (search-path.ts), so that
 * its answer does not depend on slot numbers, which a reopen assigns afresh.
 */
export type TieOrder = (a: number, b: number) => boolean;

const lowerSlot: TieOrder = (a, b) => a < b;

/**
 * The k best (score, slot) pairs seen so far, in two typed arrays so that a scan of millions of
 * scores allocates nothing. "Best" is a total order: higher score, then the tie order (the lower
 * slot unless another is given; it is asked about equal scores only). So it holds
 * exactly the k best of everything pushed, whatever the order of the pushes, and the first k of a
 * larger one's entries are what one of k keeps: the lookaside cache relies on it when it picks a
 * search's candidates from a pool, as the scan would have picked them.
 *
 * Not a heap: entries at or above a floor are appended to a buffer of 2k, and when it is full a
 * selection (quickselect) keeps the k best and raises the floor to the worst of them. A push is an
 * append, and each selection costs O(k) for at least k pushes; a binary heap pays O(log k) per push
 * and its sift's unpredictable branches (bench/results/topk.md: 10k scores into the 140 best took
 * 38 µs, against 53 to 56 with a heap).
 */
export class TopK {
  private readonly scores: Float64Array;
  private readonly slots: Int32Array;
  private n = 0;
  /** Nothing worse than (floorScore, floorSlot) can enter: the worst of the k best at the last selection; floorSlot -1: none yet. */
  private floorScore = -Infinity;
  private floorSlot = -1;
  /** Set by sortBestFirst: the entries are in their final order; no more pushes. */
  private spent = false;

  constructor(
    readonly capacity: number,
    private readonly before: TieOrder = lowerSlot,
  ) {
    const room = Math.max(1, 2 * capacity);
    this.scores = new Float64Array(room);
    this.slots = new Int32Array(room);
    this.clear();
  }

  get size(): number {
    return Math.min(this.n, this.capacity);
  }

  /** Empties it for reuse (a caller that keeps one per query stream allocates nothing per query). */
  clear(): void {
    this.n = 0;
    // Empty, everything enters; with no room, nothing does (push() returns at once).
    this.floorScore = this.capacity > 0 ? -Infinity : Infinity;
    this.floorSlot = -1;
    this.spent = false;
  }

  /** The least score that may still enter: -Infinity until the first selection, Infinity with no room. */
  get floor(): number {
    return this.floorScore;
  }

  /**
   * The k-th best score pushed so far (the worst of the k best), or -Infinity while fewer than k
   * were pushed. Pushes may continue.
   */
  kthBest(): number {
    if (this.n > this.capacity) this.select();
    if (this.n < this.capacity || this.capacity === 0) return -Infinity;
    if (this.floorScore === -Infinity) this.select();
    return this.floorScore;
  }

  /** The mean of the k best scores pushed so far (after kthBest(); NaN while fewer than k were pushed). */
  meanBest(): number {
    if (this.n < this.capacity || this.capacity === 0) return NaN;
    if (this.n > this.capacity) this.select();
    let sum = 0;
    for (let i = 0; i < this.capacity; i++) sum += this.scores[i]!;
    return sum / this.capacity;
  }

  /**
   * False when no entry with `score` can enter (lets callers skip expensive checks, such as filters,
   * for the rest); true may still lose in push(), to the tie on slots or to what came since the floor
   * last rose.
   */
  admits(score: number): boolean {
    return score >= this.floorScore && this.capacity > 0;
  }

  push(score: number, slot: number): void {
    if (this.spent) throw new Error('push after sortBestFirst');
    // The score alone decides almost every push: the tie order only at the floor's own score.
    if (score < this.floorScore || (score === this.floorScore && this.tieBelowFloor(slot))) return;
    if (this.n === this.scores.length) {
      this.select();
      if (score < this.floorScore || (score === this.floorScore && this.tieBelowFloor(slot))) return;
    }
    this.scores[this.n] = score;
    this.slots[this.n++] = slot;
  }

  /** Whether `slot`, scoring exactly the floor's score, cannot enter: no room, or the floor's slot goes first. */
  private tieBelowFloor(slot: number): boolean {
    return this.capacity === 0 || (this.floorSlot >= 0 && this.floorSlot !== slot && this.before(this.floorSlot, slot));
  }

  /** Whether entry i is better than (score, slot): a higher score, or the same and before it in the tie order. */
  private better(i: number, score: number, slot: number): boolean {
    const s = this.scores[i]!;
    // An entry is never before itself: the tie order is asked about two slots only (a search's asks for ids).
    return s > score || (s === score && this.slots[i] !== slot && this.before(this.slots[i]!, slot));
  }

  private swap(i: number, j: number): void {
    const s = this.scores[i]!;
    this.scores[i] = this.scores[j]!;
    this.scores[j] = s;
    const t = this.slots[i]!;
    this.slots[i] = this.slots[j]!;
    this.slots[j] = t;
  }

  /** Keeps the k best in [0, k) (partition()) and raises the floor to the worst of them. */
  private select(): void {
    const k = this.capacity;
    if (this.n > k) {
      this.partition(k, this.n);
      this.n = k;
    }
    if (this.n < k) return;
    let worst = 0;
    for (let i = 1; i < k; i++) if (!this.better(i, this.scores[worst]!, this.slots[worst]!)) worst = i;
    this.floorScore = this.scores[worst]!;
    this.floorSlot = this.slots[worst]!;
  }

  /**
   * Moves the k best of the first n entries into [0, k), in no order (quickselect, Hoare's
   * partition). Scores and slots are read through locals: V8 then keeps the arrays in registers.
   */
  private partition(k: number, n: number): void {
    const scores = this.scores;
    const slots = this.slots;
    const before = this.before;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      // The median of three as the pivot: fewer rounds than the middle entry alone (measured on a
      // search's scan: 11 rounds per selection of 280 entries into 140).
      const mid = this.medianOfThree(lo, (lo + hi) >>> 1, hi);
      const ps = scores[mid]!;
      const pt = slots[mid]!;
      let i = lo;
      let j = hi;
      while (i <= j) {
        for (;;) {
          const s = scores[i]!;
          if (!(s > ps || (s === ps && slots[i] !== pt && before(slots[i]!, pt)))) break;
          i++;
        }
        for (;;) {
          const s = scores[j]!;
          if (s > ps || (s === ps && (slots[j] === pt || before(slots[j]!, pt)))) break;
          j--;
        }
        if (i <= j) this.swap(i++, j--);
      }
      // [lo, j] are at least as good as the pivot, [i, hi] at most; k - 1 falls in one of them or between.
      if (k - 1 <= j) hi = j;
      else if (k - 1 >= i) lo = i;
      else break;
    }
  }

  /** The index, of a, b and c, of the entry between the other two in the total order. */
  private medianOfThree(a: number, b: number, c: number): number {
    const sa = this.scores[a]!;
    const ta = this.slots[a]!;
    const ab = this.better(b, sa, ta);
    const ac = this.better(c, sa, ta);
    if (ab !== ac) return a;
    // b and c are both better than a, or both worse: the median is the worse, or the better, of them.
    const cb = this.better(c, this.scores[b]!, this.slots[b]!);
    return ab === cb ? b : c;
  }

  /** Sifts (score, slot) down from `i` in a heap of the first `n` entries whose root is the worst. */
  private siftDown(i: number, n: number, score: number, slot: number): void {
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      // The worse child moves up, so the worst stays at the root.
      const c = r < n && this.better(l, this.scores[r]!, this.slots[r]!) ? r : l;
      if (this.better(c, score, slot)) break;
      this.scores[i] = this.scores[c]!;
      this.slots[i] = this.slots[c]!;
      i = c;
    }
    this.scores[i] = score;
    this.slots[i] = slot;
  }

  /**
   * Sorts the best `first` entries in place, best first, in the order sorted() gives (ties in the
   * tie order), without an object per entry: read them with scoreAt and slotAt. The entries after
   * them (up to the size) are worse and in no order: a pool that needs the best few sorted does not
   * pay for sorting the rest. No more pushes afterwards. Returns how many entries there are.
   */
  sortBestFirst(first = this.capacity): number {
    if (this.n > this.capacity) this.select();
    const count = this.n;
    const sorted = Math.max(0, Math.min(first, count));
    if (sorted > 0 && sorted < count) this.partition(sorted, count);
    // Heapsort with the worst at the root: each step moves the worst left to the end.
    for (let i = (sorted >> 1) - 1; i >= 0; i--) this.siftDown(i, sorted, this.scores[i]!, this.slots[i]!);
    for (let end = sorted - 1; end > 0; end--) {
      const score = this.scores[end]!;
      const slot = this.slots[end]!;
      this.scores[end] = this.scores[0]!;
      this.slots[end] = this.slots[0]!;
      this.siftDown(0, end, score, slot);
    }
    this.spent = true;
    return count;
  }

  /**
   * Ends it as sortBestFirst() does, but with the best `first` entries only moved ahead of the rest,
   * neither part sorted (the selection without the sort): for a caller that needs which entries are
   * the best, not their order. Returns how many entries there are.
   */
  partitionBest(first: number): number {
    if (this.n > this.capacity) this.select();
    const count = this.n;
    const best = Math.max(0, Math.min(first, count));
    if (best > 0 && best < count) this.partition(best, count);
    this.spent = true;
    return count;
  }

  /**
   * The first `n` entries (after sortBestFirst(): the best `n`, when that many were sorted; or all
   * of them, in no order) into `slots` and `scores`, in one copy each.
   */
  copyTo(n: number, slots: Int32Array, scores: Float32Array): void {
    if (!(n >= 0 && n <= this.size)) throw new RangeError(`n must be within 0..${this.size}, got ${n}`);
    slots.set(this.slots.subarray(0, n));
    scores.set(this.scores.subarray(0, n));
  }

  /** The score of the `i`-th best entry, after sortBestFirst(). */
  scoreAt(i: number): number {
    return this.scores[i]!;
  }

  /** The slot of the `i`-th best entry, after sortBestFirst(). */
  slotAt(i: number): number {
    return this.slots[i]!;
  }

  /** The entries best first; ties in the tie order, so results are deterministic. */
  sorted(): { score: number; slot: number }[] {
    if (this.n > this.capacity) this.select();
    const out: { score: number; slot: number }[] = [];
    for (let i = 0; i < this.n; i++) out.push({ score: this.scores[i]!, slot: this.slots[i]! });
    out.sort((a, b) => b.score - a.score || (a.slot === b.slot ? 0 : this.before(a.slot, b.slot) ? -1 : 1));
    return out;
  }
}
