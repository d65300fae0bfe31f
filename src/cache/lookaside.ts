import { dot, norm as vectorNorm } from '../vector.js';

/**
 * The lookaside cache: remembers the answers to the most recent queries and serves a new query from
 * a remembered one asked with the same options when the two are at least `threshold` cosine-similar
 * (`directional`, for 'cosine' stores, where a query's length does not change its answer) or
 * identical (otherwise: on 'dot' and 'l2' stores [10, 0] and [1, 0] have different answers). Any
 * write clears it, so it never serves data that has changed. It is approximate on cosine stores: a
 * near query gets the remembered query's hits and scores.
 */
export class LookasideCache<T> {
  /** Most recently used last. */
  private entries: { query: Float32Array; norm: number; key: string; value: T }[] = [];
  hits = 0;
  misses = 0;

  constructor(
    private readonly capacity: number,
    private readonly threshold: number,
    private readonly directional = true,
  ) {}

  get(query: Float32Array, key: string): T | undefined {
    const norm = vectorNorm(query);
    let best = -1;
    let bestSim = this.threshold;
    for (let e = this.entries.length - 1; e >= 0; e--) {
      const entry = this.entries[e]!;
      if (entry.key !== key || entry.query.length !== query.length) continue;
      let sim: number;
      if (!this.directional) {
        sim = sameVector(query, entry.query) ? 1 : 0;
      } else {
        const denom = norm * entry.norm;
        // A zero query matches only another zero query.
        sim = denom === 0 ? (norm === entry.norm ? 1 : 0) : dot(query, entry.query) / denom;
      }
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

function sameVector(a: Float32Array, b: Float32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
