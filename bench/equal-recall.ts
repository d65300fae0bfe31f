/**
 * QPS at equal recall: how the index benchmark compares memstore's `nprobe` sweep with
 * hnswlib-node's `ef` sweep. Neither sweep hits the other's recalls exactly, so memstore's is
 * interpolated linearly between the two settings whose recalls bracket the target; outside its
 * range there is no figure (a ratio read off an extrapolation would claim what was not measured).
 */

export interface SweepPoint {
  readonly recall: number;
  readonly qps: number;
}

/** QPS at `recall` on the line through the sweep's points, in order of recall; undefined outside their range. */
export function qpsAtRecall(points: readonly SweepPoint[], recall: number): number | undefined {
  const sorted = [...points].sort((a, b) => a.recall - b.recall || b.qps - a.qps);
  for (let i = 0; i < sorted.length; i++) {
    const hi = sorted[i]!;
    if (hi.recall < recall) continue;
    if (hi.recall === recall) return hi.qps;
    const lo = sorted[i - 1];
    if (lo === undefined) return undefined;
    return lo.qps + ((recall - lo.recall) / (hi.recall - lo.recall)) * (hi.qps - lo.qps);
  }
  return undefined;
}

/**
 * One line: memstore's QPS over hnswlib-node's at each of hnswlib-node's recalls (its `ef` settings,
 * `reference`) and at `targets`, where both sweeps reach them; "–" where memstore's does not.
 */
export function equalRecallLine(label: string, sweep: readonly SweepPoint[], reference: readonly (SweepPoint & { readonly setting: string })[], targets: readonly number[]): string {
  const ratio = (recall: number, qps: number): string => {
    const ours = qpsAtRecall(sweep, recall);
    return ours === undefined ? '–' : `${(ours / qps).toFixed(2)}x`;
  };
  const atEf = reference.map((r) => `${ratio(r.recall, r.qps)} at ${r.setting} (${r.recall.toFixed(3)})`);
  const atTargets = targets.flatMap((t) => {
    const theirs = qpsAtRecall(reference, t);
    return theirs === undefined ? [] : [`${ratio(t, theirs)} at ${t}`];
  });
  return `${label}, QPS against hnswlib-node's at equal recall (interpolated): ${[...atEf, ...atTargets].join('; ')}`;
}
