import { TopK } from './topk.js';

/**
 * The stored vectors a pool vouches for when a scan covered some pages of a page index only: those
 * of `pages` (page numbers, ascending) as the index laid its pages out at `layout`
 * (VectorIndex.layoutEpoch). A pool of a scan of every stored vector has none.
 */
export interface PoolScope {
  readonly pages: Int32Array;
  readonly layout: number;
}

/** The pages a search would scan now (VectorIndex.scopeOf), and whether they hold its candidates (else it goes on to more pages). */
export interface SearchScope extends PoolScope {
  readonly complete: boolean;
}

/**
 * `accept` as a scan that collects a pool asks it: each answer kept by slot (`verdicts`), so that
 * collecting asks about no vector twice. Without `accept`, nothing to keep.
 */
export function recordingVerdicts(accept: ((slot: number) => boolean) | undefined): { asked: ((slot: number) => boolean) | undefined; verdicts: Map<number, boolean> | undefined } {
  if (accept === undefined) return { asked: undefined, verdicts: undefined };
  const verdicts = new Map<number, boolean>();
  const asked = (slot: number) => {
    const yes = accept(slot);
    verdicts.set(slot, yes);
    return yes;
  };
  return { asked, verdicts };
}

/**
 * What a scan collects beside its top-k for the lookaside cache's pool: every vector the filter
 * accepts that scores at least its `line`, set once the scan knows its k best:
 *
 *     line = s_k − reach · (mean of the k best scores − s_k)        (s_k: the k-th best score)
 *
 * The pool's depth is thus measured in the query's own spread: a query in a sparse neighbourhood,
 * whose scores fall away fast, gets a deeper pool than one in a crowded one, where the same depth
 * would take in far more vectors. Every vector left out scored below the line, which is the bound
 * the cache's proofs need (CACHE.md). The scan keeps each block's scores until it ends, then one pass
 * of the selection kernel per block finds them, so no second top-k runs over the whole scan.
 *
 * At most `room` members are kept: past that (a reach far too long, or none known yet) only the best
 * `room + 1`, so that memory stays bounded and the best one left out is known. Reused from scan to
 * scan: nothing is allocated per vector, nor per scan while `room` stays.
 */
export class ScorePool {
  private top = new TopK(1);
  private added = 0;
  private reachNow = Infinity;
  /** resetBelow()'s fixed depth below the k-th best score; NaN: the line is measured in spreads (reset()). */
  private dropNow = Number.NaN;
  private spreadNow = 0;
  private lineNow = -Infinity;
  /** Whether the scan left some vector out (one scored below the line). */
  passedOver = false;
  /**
   * What the collected vectors were drawn from, set by the index that scanned: every stored vector
   * (undefined, as reset() leaves it), the pages of a scope, or null when the index collected
   * nothing (a filtered search of a page index).
   */
  scope: PoolScope | null | undefined;

  /**
   * Empties it for a scan that collects within `reach` (>= 0; Infinity takes everything) spreads
   * of the k-th best score, keeping at most the best `room + 1` (room >= 1) of what it collects.
   */
  reset(reach: number, room: number): void {
    if (!(reach >= 0)) throw new RangeError(`reach must be >= 0, got ${reach}`);
    if (!(Number.isInteger(room) && room >= 1)) throw new RangeError(`room must be a positive integer, got ${room}`);
    if (this.top.capacity === room + 1) this.top.clear();
    else this.top = new TopK(room + 1);
    this.reachNow = reach;
    this.dropNow = Number.NaN;
    this.spreadNow = 0;
    this.lineNow = -Infinity;
    this.added = 0;
    this.passedOver = false;
    this.scope = undefined;
  }

  /**
   * Empties it for a scan that collects every vector scoring at least `drop` (>= 0) below the k-th
   * best, in score units rather than spreads: what a scan needs that must hold everything another
   * kernel's top k could come from, given a bound on how far the two kernels' scores differ
   * (search-path.ts, "exact" searches). Keeps at most the best `room + 1`, as reset() does.
   */
  resetBelow(drop: number, room: number): void {
    if (!(drop >= 0)) throw new RangeError(`drop must be >= 0, got ${drop}`);
    this.reset(Infinity, room);
    this.dropNow = drop;
  }

  get reach(): number {
    return this.reachNow;
  }

  /** The spread of the scan's k best: their mean minus the k-th (0 while fewer than k were accepted). */
  get spread(): number {
    return this.spreadNow;
  }

  /** The least score collected (-Infinity while fewer than k were accepted, or with an infinite reach). */
  get line(): number {
    return this.lineNow;
  }

  /** Sets the line from the scan's k best: `kth` the k-th best score (-Infinity: fewer than k), `mean` theirs. */
  setLine(kth: number, mean: number): void {
    this.spreadNow = mean - kth > 0 ? mean - kth : 0;
    const line = kth - (this.dropNow >= 0 ? this.dropNow : this.reachNow === Infinity ? Infinity : this.reachNow * this.spreadNow);
    this.lineNow = Number.isNaN(line) ? -Infinity : line;
  }

  /** Members collected (the scan's count, even past `room`). */
  get collected(): number {
    return this.added;
  }

  /** Whether more than `room` were collected: then only the best `room + 1` are held. */
  get overflowed(): boolean {
    return this.added > this.top.capacity - 1;
  }

  add(slot: number, score: number): void {
    this.added++;
    this.top.push(score, slot);
  }

  /**
   * Ends the collection: sorts the best `first` held (best first, ties by lower slot) ahead of the
   * rest, in no order; returns how many are held. Read them with scoreAt and slotAt.
   */
  sortBestFirst(first: number): number {
    return this.top.sortBestFirst(first);
  }

  /** Ends the collection: the best `first` held ahead of the rest, neither part sorted (TopK.partitionBest); returns how many are held. */
  partitionBest(first: number): number {
    return this.top.partitionBest(first);
  }

  /** TopK.copyTo over what it holds. */
  copyTo(n: number, slots: Int32Array, scores: Float32Array): void {
    this.top.copyTo(n, slots, scores);
  }

  scoreAt(i: number): number {
    return this.top.scoreAt(i);
  }

  slotAt(i: number): number {
    return this.top.slotAt(i);
  }
}
