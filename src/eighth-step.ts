/**
 * The least of the sizes 2^k · {1, 1.125, ..., 1.875} that is at least `n` (n ≥ 8): how page rooms
 * and the id table's buckets grow. Powers of two leave a third of what they hold unused on average;
 * eighth steps under an eighth, and the sizes stay few, so an allocator's free lists still serve them.
 */
export function eighthStepAtLeast(n: number): number {
  const base = 2 ** Math.floor(Math.log2(n));
  const eighth = base / 8;
  return base + Math.ceil((n - base) / eighth) * eighth;
}
