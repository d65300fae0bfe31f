/** The data sets `memstore bench` studies: the one the repository ships, or a synthetic one. */
import { readFileSync } from 'node:fs';
import { rng } from '../random.js';
import { floats, rowsOf } from './vector-files.js';

export interface Dataset {
  readonly name: string;
  readonly dim: number;
  readonly docs: Float32Array[];
  readonly queries: Float32Array[];
}

/** The real embedding set shipped in the repository (see bench/data/wordnet-use512-1k/README.md). */
export function shippedDataset(): Dataset {
  const dir = new URL('../../../bench/data/wordnet-use512-1k/', import.meta.url);
  const docs = rowsOf(floats(readFileSync(new URL('docs.f32', dir))), 512, 'docs.f32');
  const queries = rowsOf(floats(readFileSync(new URL('queries.f32', dir))), 512, 'queries.f32');
  return { name: 'wordnet-use512-1k (USE-lite embeddings of WordNet glosses, shipped)', dim: 512, docs, queries };
}

/**
 * A clustered synthetic set for when no data is at hand: Gaussian clusters whose centres share a
 * low-rank structure (so PCA has something to find, as with real embeddings), unit-normalized.
 */
export function syntheticDataset(n: number, queries: number, dim: number, seed = 1): Dataset {
  const next = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(Math.max(next(), 1e-12))) * Math.cos(2 * Math.PI * next());
  const rank = Math.max(2, Math.round(dim / 8));
  const basis = Array.from({ length: rank }, () => Float32Array.from({ length: dim }, gauss));
  const centres = Array.from({ length: 64 }, () => {
    const c = new Float32Array(dim);
    for (const b of basis) {
      const w = gauss();
      for (let i = 0; i < dim; i++) c[i]! += (w * b[i]!) / Math.sqrt(rank);
    }
    return c;
  });
  const sample = () => {
    const c = centres[Math.floor(next() * centres.length)]!;
    const v = Float32Array.from(c, (x) => x + 0.35 * gauss());
    const norm = Math.hypot(...v);
    return v.map((x) => x / norm);
  };
  return {
    name: `synthetic (${n} clustered vectors, dim ${dim}, seed ${seed})`,
    dim,
    docs: Array.from({ length: n }, sample),
    queries: Array.from({ length: queries }, sample),
  };
}
