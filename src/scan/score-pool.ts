/**
 * What a scan collects beside its top-k for the lookaside cache's pool: every vector the filter
 * accepts that scores at least `line` = (the final k-th best score − `margin`). Every vector left
 * out scored below the line, which is the bound the cache's proofs need (CACHE.md). The scan keeps
 * each block's scores until it ends, then one pass of the selection kernel per block finds them,
 * so no second top-k is kept. Two growing typed arrays, reused from scan to scan: nothing per vector.
 */
export class ScorePool {
  private scoreList = new Float32Array(256);
  private slotList = new Int32Array(256);
  private n = 0;
  private marginNow = Infinity;
  private lineNow = -Infinity;
  /** Whether the scan left some vector out (one scored below the line). */
  passedOver = false;

  /** Empties it for a scan that collects within `margin` (>= 0; Infinity takes everything) of the k-th best score. */
  reset(margin: number): void {
    if (!(margin >= 0)) throw new RangeError(`margin must be >= 0, got ${margin}`);
    this.marginNow = margin;
    this.lineNow = -Infinity;
    this.n = 0;
    this.passedOver = false;
  }

  get margin(): number {
    return this.marginNow;
  }

  /** The least score collected: set by the scan once it knows the k-th best score (-Infinity while fewer than k were accepted). */
  get line(): number {
    return this.lineNow;
  }

  setLine(line: number): void {
    this.lineNow = Number.isNaN(line) ? -Infinity : line;
  }

  get size(): number {
    return this.n;
  }

  add(slot: number, score: number): void {
    if (this.n === this.slotList.length) {
      const scores = new Float32Array(2 * this.n);
      scores.set(this.scoreList);
      this.scoreList = scores;
      const slots = new Int32Array(2 * this.n);
      slots.set(this.slotList);
      this.slotList = slots;
    }
    this.scoreList[this.n] = score;
    this.slotList[this.n++] = slot;
  }

  scoreAt(i: number): number {
    return this.scoreList[i]!;
  }

  slotAt(i: number): number {
    return this.slotList[i]!;
  }
}
