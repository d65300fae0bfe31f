/**
 * Order statistics for the benchmarks, one definition for all of them: the value at quantile `p`
 * (0..1) is the element at floor(p · n) of the sorted values (the last one for p = 1), with no
 * interpolation; NaN when there are none.
 */
export function percentileOfSorted(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/** percentileOfSorted() of values in any order (sorted here, in a copy). */
export function percentile(values: readonly number[], p: number): number {
  return percentileOfSorted([...values].sort((a, b) => a - b), p);
}

export function median(values: readonly number[]): number {
  return percentile(values, 0.5);
}
