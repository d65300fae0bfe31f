import type { FilterTest } from '../filter/columns.js';
import type { ScanQuery } from '../scan/code-blocks.js';
import type { ScorePool } from '../scan/score-pool.js';
import type { TopK } from '../scan/topk.js';

/**
 * What scoring a code picked by its slot costs against scoring it in a contiguous scan of its
 * page or block (`bench/gather.bench.ts`: 4–5 at 100-d, under 1 at 512-d where the scan streams
 * from RAM). A filtered search takes the matching slots when they are fewer than the vectors its
 * scan would visit divided by this.
 */
export const GATHER_COST = 3;

/** Slots scored per kernel call, so that the scratch scores stay small whatever matches. */
const RUN = 4096;

/** What a matching scan needs of its index. */
export interface SlotScorer {
  scoreSlots(query: ScanQuery, slots: Int32Array, count: number, out: Float32Array): void;
}

/**
 * The exact filtered scan: the slots a filter's columns let through (FilterTest.collect), and
 * those codes only, scored a run at a time; `accept` has the last word on each that is good enough
 * to enter the heap (it reads the metadata of a record whose value the columns could not list).
 * With a `pool` (the lookaside cache's), every accepted match at or above the pool's line joins it,
 * as the exact index's full scan collects it: the scores of the matches are kept until the top is
 * known, and a match below the line marks the pool as having passed one over.
 */
export class MatchingScan {
  private slots: Int32Array = new Int32Array(0);
  private readonly scores = new Float32Array(RUN);
  /** Every match's score, kept for the pool (grown as needed). */
  private kept = new Float32Array(0);

  run(index: SlotScorer, query: ScanQuery, top: TopK, test: FilterTest, accept: (slot: number) => boolean, pool?: ScorePool): void {
    const { slots, count } = test.collect(this.slots);
    this.slots = slots;
    if (pool !== undefined && this.kept.length < count) this.kept = new Float32Array(Math.max(count, 2 * this.kept.length));
    for (let from = 0; from < count; from += RUN) {
      const n = Math.min(RUN, count - from);
      const run = slots.subarray(from, from + n);
      index.scoreSlots(query, run, n, this.scores);
      if (pool !== undefined) this.kept.set(this.scores.subarray(0, n), from);
      for (let i = 0; i < n; i++) {
        const score = this.scores[i]!;
        if (top.admits(score) && accept(run[i]!)) top.push(score, run[i]!);
      }
    }
    if (pool === undefined) return;
    pool.setLine(top.kthBest(), top.meanBest());
    for (let i = 0; i < count; i++) {
      const score = this.kept[i]!;
      if (score < pool.line) pool.passedOver = true;
      else if (accept(slots[i]!)) pool.add(slots[i]!, score);
    }
  }
}
