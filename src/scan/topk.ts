/**
 * The k best (score, slot) pairs seen so far, as a binary min-heap over two typed arrays so that
 * a scan of millions of scores allocates nothing: the root is the score a newcomer must beat.
 */
export class TopK {
  private readonly scores: Float64Array;
  private readonly slots: Int32Array;
  private n = 0;
  /** Set by sortBestFirst: the arrays are no longer a heap. */
  private spent = false;

  constructor(readonly capacity: number) {
    this.scores = new Float64Array(capacity);
    this.slots = new Int32Array(capacity);
  }

  get size(): number {
    return this.n;
  }

  /** True when `score` would enter the heap; lets callers skip expensive checks (filters) otherwise. */
  admits(score: number): boolean {
    return this.n < this.capacity || score > this.scores[0]!;
  }

  push(score: number, slot: number): void {
    if (this.spent) throw new Error('push after sortBestFirst');
    if (this.n < this.capacity) {
      let i = this.n++;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (this.scores[parent]! <= score) break;
        this.scores[i] = this.scores[parent]!;
        this.slots[i] = this.slots[parent]!;
        i = parent;
      }
      this.scores[i] = score;
      this.slots[i] = slot;
      return;
    }
    if (!(score > this.scores[0]!)) return;
    this.siftDownFromRoot(score, slot);
  }

  private siftDownFromRoot(score: number, slot: number): void {
    const n = this.n;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.scores[r]! < this.scores[l]! ? r : l;
      if (this.scores[c]! >= score) break;
      this.scores[i] = this.scores[c]!;
      this.slots[i] = this.slots[c]!;
      i = c;
    }
    this.scores[i] = score;
    this.slots[i] = slot;
  }

  /**
   * Sorts the entries in place, best first, in the order sorted() gives (ties: lower slot first),
   * without an object per entry: read them with scoreAt and slotAt. The heap is spent afterwards
   * (no more pushes). Returns how many there are.
   */
  sortBestFirst(): number {
    const count = this.n;
    // Heapsort on the min-heap: the smallest goes to the end, so the array ends best first.
    for (let end = count - 1; end > 0; end--) {
      const score = this.scores[end]!;
      const slot = this.slots[end]!;
      this.scores[end] = this.scores[0]!;
      this.slots[end] = this.slots[0]!;
      this.n = end;
      this.siftDownFromRoot(score, slot);
    }
    this.n = count;
    // Equal scores: lower slot first (insertion sort inside each run of equal scores).
    for (let i = 1; i < count; i++) {
      for (let j = i; j > 0 && this.scores[j - 1] === this.scores[j] && this.slots[j - 1]! > this.slots[j]!; j--) {
        const slot = this.slots[j]!;
        this.slots[j] = this.slots[j - 1]!;
        this.slots[j - 1] = slot;
      }
    }
    this.spent = true;
    return count;
  }

  /** The score of the `i`-th best entry, after sortBestFirst(). */
  scoreAt(i: number): number {
    return this.scores[i]!;
  }

  /** The slot of the `i`-th best entry, after sortBestFirst(). */
  slotAt(i: number): number {
    return this.slots[i]!;
  }

  /** The entries best first; ties keep the lower slot first so results are deterministic. */
  sorted(): { score: number; slot: number }[] {
    const out: { score: number; slot: number }[] = [];
    for (let i = 0; i < this.n; i++) out.push({ score: this.scores[i]!, slot: this.slots[i]! });
    out.sort((a, b) => b.score - a.score || a.slot - b.slot);
    return out;
  }
}
