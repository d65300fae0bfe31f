/**
 * `y` at `x` on the line through `points` (in ascending order of x): linear between the two that
 * bracket it, undefined outside them (a figure read off an extrapolation would claim what was not measured).
 */
export function interpolate<T>(points: readonly T[], x: number, xOf: (p: T) => number, yOf: (p: T) => number): number | undefined {
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1]!;
    const b = points[i]!;
    if (x >= xOf(a) && x <= xOf(b)) return xOf(a) === xOf(b) ? yOf(a) : yOf(a) + ((x - xOf(a)) / (xOf(b) - xOf(a))) * (yOf(b) - yOf(a));
  }
  return undefined;
}
