import { dot, norm as vectorNorm } from '../vector.js';

/**
 * The semantic lookaside cache: remembers the answers to the most recent queries and serves a new
 * query from a remembered one when the two are at least `threshold` cosine-similar and were asked
 * with the same options. Any write clears it, so it never serves data that has changed.
 */
export class LookasideCache<T> {
  /** Most recently used last. */
  private entries: { query: Float32Array; norm: number; key: string; value: T }[] = [];
  hits = 0;
  misses = 0;

  constructor(
    private readonly capacity: number,
    private readonly threshold: number,
  ) {}

  get(query: Float32Array, key: string): T | undefined {
    const norm = vectorNorm(query);
    let best = -1;
    let bestSim = this.threshold;
    for (let e = this.entries.length - 1; e >= 0; e--) {
      const entry = this.entries[e]!;
      if (entry.key !== key || entry.query.length !== query.length) continue;
      const denom = norm * entry.norm;
      // A zero query matches only another zero query.
      const sim = denom === 0 ? (norm === entry.norm ? 1 : 0) : dot(query, entry.query) / denom;
      if (sim >= bestSim) {
        bestSim = sim;
        best = e;
      }
    }
    if (best < 0) {
      this.misses++;
      return undefined;
    }
    const [entry] = this.entries.splice(best, 1);
    this.entries.push(entry!);
    this.hits++;
    return entry!.value;
  }

  set(query: Float32Array, key: string, value: T): void {
    this.entries.push({ query: Float32Array.from(query), norm: vectorNorm(query), key, value });
    if (this.entries.length > this.capacity) this.entries.shift();
  }

  clear(): void {
    this.entries = [];
  }
}
