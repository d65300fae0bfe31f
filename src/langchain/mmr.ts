import type { Metric } from '../options.js';
import { exactScore } from '../vector.js';

/**
 * Maximal marginal relevance (Carbonell and Goldstein, 1998) in the store's own metric: the positions
 * of up to `k` of the candidates, picked one at a time, the first the most relevant, each next the one
 * maximizing `lambda · relevance − (1 − lambda) · (its greatest similarity to one picked)`; ties go
 * to the earlier candidate. `relevance` is each candidate's search score against the query, and
 * similarity between candidates is the store's exact score between them (exactScore), in the same metric. LangChain's helper measured both
 * by cosine whatever the store's metric, so with `lambda` 1 a `dot` store's pick was not its own top
 * k (a hostile pass); here `lambda` 1 gives the candidates in their search order.
 */
export function maximalMarginalRelevance(metric: Metric, relevance: readonly number[], vectors: readonly Float32Array[], lambda: number, k: number): number[] {
  const n = Math.min(relevance.length, vectors.length);
  const picked: number[] = [];
  const taken = new Uint8Array(n);
  const nearestPicked = new Float64Array(n).fill(-Infinity);
  while (picked.length < Math.min(k, n)) {
    let best = -1;
    let bestValue = -Infinity;
    for (let i = 0; i < n; i++) {
      if (taken[i] === 1) continue;
      const value = picked.length === 0 ? relevance[i]! : lambda * relevance[i]! - (1 - lambda) * nearestPicked[i]!;
      if (best < 0 || value > bestValue) {
        best = i;
        bestValue = value;
      }
    }
    taken[best] = 1;
    picked.push(best);
    for (let i = 0; i < n; i++) if (taken[i] === 0) nearestPicked[i] = Math.max(nearestPicked[i]!, exactScore(metric, vectors[i]!, vectors[best]!));
  }
  return picked;
}
