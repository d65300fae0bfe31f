/**
 * The k best (score, slot) pairs seen so far, as a binary heap over two typed arrays so that a scan
 * of millions of scores allocates nothing. "Best" is a total order: higher score, then lower slot.
 * So the heap holds exactly the k best of everything pushed, whatever the order of the pushes, and
 * the first k of a larger heap's entries are what a heap of k keeps: the lookaside cache relies on
 * it when it takes a search's candidates from its larger pool. The root is the worst entry kept.
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

  /** Empties the heap for reuse (a caller that keeps one per query stream allocates nothing per query). */
  clear(): void {
    this.n = 0;
    this.spent = false;
  }

  /**
   * False when no entry with `score` can enter the heap (lets callers skip expensive checks, such as
   * filters, for the rest); true may still lose the tie on slots in push().
   */
  admits(score: number): boolean {
    return this.n < this.capacity || score >= this.scores[0]!;
  }

  /** Whether (s1, slot1) is worse than (s2, slot2): a lower score, or the same score at a higher slot. */
  private static worse(s1: number, slot1: number, s2: number, slot2: number): boolean {
    return s1 < s2 || (s1 === s2 && slot1 > slot2);
  }

  push(score: number, slot: number): void {
    if (this.spent) throw new Error('push after sortBestFirst');
    if (this.n < this.capacity) {
      let i = this.n++;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (!TopK.worse(score, slot, this.scores[parent]!, this.slots[parent]!)) break;
        this.scores[i] = this.scores[parent]!;
        this.slots[i] = this.slots[parent]!;
        i = parent;
      }
      this.scores[i] = score;
      this.slots[i] = slot;
      return;
    }
    if (this.n === 0 || !TopK.worse(this.scores[0]!, this.slots[0]!, score, slot)) return;
    this.siftDownFromRoot(score, slot);
  }

  private siftDownFromRoot(score: number, slot: number): void {
    const n = this.n;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && TopK.worse(this.scores[r]!, this.slots[r]!, this.scores[l]!, this.slots[l]!) ? r : l;
      if (!TopK.worse(this.scores[c]!, this.slots[c]!, score, slot)) break;
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
    // Heapsort: the worst goes to the end each time, so the array ends best first in the total order.
    for (let end = count - 1; end > 0; end--) {
      const score = this.scores[end]!;
      const slot = this.slots[end]!;
      this.scores[end] = this.scores[0]!;
      this.slots[end] = this.slots[0]!;
      this.n = end;
      this.siftDownFromRoot(score, slot);
    }
    this.n = count;
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
