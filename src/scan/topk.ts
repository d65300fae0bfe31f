/**
 * The k best (score, slot) pairs seen so far, as a binary min-heap over two typed arrays so that
 * a scan of millions of scores allocates nothing: the root is the score a newcomer must beat.
 */
export class TopK {
  private readonly scores: Float64Array;
  private readonly slots: Int32Array;
  private n = 0;

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

  /** The entries best first; ties keep the lower slot first so results are deterministic. */
  sorted(): { score: number; slot: number }[] {
    const out: { score: number; slot: number }[] = [];
    for (let i = 0; i < this.n; i++) out.push({ score: this.scores[i]!, slot: this.slots[i]! });
    out.sort((a, b) => b.score - a.score || a.slot - b.slot);
    return out;
  }
}
