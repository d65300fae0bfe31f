import type { SweepResult, SweepRow } from './index-sweep.js';
import type { StudyRow } from './study.js';

function human(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[u]}`;
}

export interface Recommendation {
  readonly row: StudyRow | undefined;
  /** The recommended row's recall@k is below RECALL_FLOOR (the text says so). */
  readonly belowFloor: boolean;
  /** Then, the smallest configuration measured that reaches the floor, if any did. */
  readonly smallestAboveFloor: StudyRow | undefined;
  readonly text: string;
}

/** Recall@k below which a recommendation says plainly that it is one. */
export const RECALL_FLOOR = 0.95;

/**
 * RAM of `row`'s configuration holding `count` vectors: what grows with the count, measured per
 * vector, times the count, plus what does not (the model).
 */
export function projectedBytes(row: Pick<StudyRow, 'bytesPerVector' | 'fixedBytes' | 'vectors'>, count: number): number {
  const perVector = row.vectors > 0 ? row.bytesPerVector - row.fixedBytes / row.vectors : row.bytesPerVector;
  return count * perVector + row.fixedBytes;
}

/**
 * The memstore configuration with the best recall whose projected RAM (projectedBytes: count x
 * bytes per vector as measured, the model counted once) fits the budget. Disk is projected the same way and shown, not constrained. When the
 * best that fits misses RECALL_FLOOR, the text says so, and names the smallest configuration that
 * reaches it and what that needs.
 */
export function recommend(rows: readonly StudyRow[], budgetBytes: number, count: number, k: number): Recommendation {
  const fits = rows
    .filter((r) => r.kind === 'memstore' && projectedBytes(r, count) <= budgetBytes)
    .sort((a, b) => b.recall10 - a.recall10 || projectedBytes(a, count) - projectedBytes(b, count) || a.p50Us - b.p50Us);
  const best = fits[0];
  const lines = [
    `Budget ${human(budgetBytes)} of RAM for ${count.toLocaleString('en-US')} vectors: at most ${(budgetBytes / count).toFixed(1)} B per vector.`,
    'Projected RAM = count x (code bytes + scale + id overhead) + the model (PCA axes, rq rotation), each as measured on this data:',
  ];
  if (best === undefined) {
    const smallest = [...rows].filter((r) => r.kind === 'memstore').sort((a, b) => projectedBytes(a, count) - projectedBytes(b, count))[0];
    lines.push(`No configuration fits. The smallest, ${smallest?.label ?? 'none'}, needs ${smallest === undefined ? '?' : human(projectedBytes(smallest, count))}.`);
    return { row: undefined, belowFloor: false, smallestAboveFloor: undefined, text: lines.join('\n') };
  }
  const id = best.bytesPerVector - best.fixedBytes / Math.max(1, best.vectors) - best.codeBytesPerVector;
  lines.push(
    `  ${count.toLocaleString('en-US')} x (${best.codeBytesPerVector.toFixed(0)} B code+scale [${best.storedDim} dims] + ${id.toFixed(0)} B id)` +
      `${best.fixedBytes > 0 ? ` + ${human(best.fixedBytes)} model` : ''} = ${human(projectedBytes(best, count))} RAM`,
    `  disk: ${count.toLocaleString('en-US')} x ${best.diskBytesPerVector.toFixed(0)} B = ${human(count * best.diskBytesPerVector)}`,
    `Recommended: ${best.label}: recall@${k} ${best.recall10.toFixed(4)}, p50 ${best.p50Us.toFixed(0)} µs on this data set.`,
  );
  const belowFloor = best.recall10 < RECALL_FLOOR;
  const enough = belowFloor ? rows.filter((r) => r.kind === 'memstore' && r.recall10 >= RECALL_FLOOR).sort((a, b) => projectedBytes(a, count) - projectedBytes(b, count))[0] : undefined;
  if (belowFloor) {
    lines.push(
      `Warning: recall@${k} ${best.recall10.toFixed(4)} is below ${RECALL_FLOOR}: no configuration that fits the budget reaches it.` +
        (enough === undefined ? ` None measured does.` : ` The smallest that does, ${enough.label}, needs ${human(projectedBytes(enough, count))}.`),
    );
  }
  const runnerUp = fits.find((r) => projectedBytes(r, count) < projectedBytes(best, count) && r.recall10 < best.recall10);
  if (runnerUp !== undefined) {
    lines.push(`Next smaller that fits: ${runnerUp.label} (${human(projectedBytes(runnerUp, count))}, recall@${k} ${runnerUp.recall10.toFixed(4)}).`);
  }
  return { row: best, belowFloor, smallestAboveFloor: enough, text: lines.join('\n') };
}

/** The fastest page-index setting of a sweep that reaches RECALL_FLOOR with its store's RAM within the budget. */
export interface FastestSetting {
  readonly row: SweepRow | undefined;
  readonly text: string;
}

/**
 * Among the page index's settings the sweep measured (every configuration, every `nprobe`), the one
 * of most queries/s whose recall@k reaches RECALL_FLOOR and whose store, projected to `count`
 * (projectedBytes: its bytes per vector as measured, pages included, and the model once), fits the budget. Speed is measured at the data set's size, not at
 * `count`, and the text says so.
 */
export function fastestWithin(sweep: SweepResult, budgetBytes: number, count: number, k: number): FastestSetting {
  const stores = new Map(sweep.stores.map((s) => [s.config, s]));
  const bytesOf = (config: string) => {
    const store = stores.get(config);
    return store === undefined ? Infinity : projectedBytes(store, count);
  };
  const fits = sweep.rows.filter((r) => r.kind === 'pages' && r.recall10 >= RECALL_FLOOR && bytesOf(r.config) <= budgetBytes);
  const best = fits.sort((a, b) => b.qps - a.qps || b.recall10 - a.recall10)[0];
  if (best === undefined) return { row: undefined, text: `No setting of the page index's sweep reaches recall@${k} ${RECALL_FLOOR} within the budget.` };
  return {
    row: best,
    text:
      `Fastest within the budget at recall@${k} >= ${RECALL_FLOOR} (the page index's sweep, speed on this data set): ${best.config}, nprobe ${best.effort}: ` +
      `recall@${k} ${best.recall10.toFixed(4)}, ${best.qps.toFixed(0)} queries/s, p50 ${best.p50Us.toFixed(0)} µs; ${human(bytesOf(best.config))} RAM.`,
  };
}
