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
 * `Math.hypot(...v)`, computed as V8 computes it (the largest magnitude, then a compensated sum of the
 * squares scaled by it), so the vectors are the ones the spread call made, bit for bit; the spread of
 * hundreds of arguments per vector had been most of the time `--synthetic` took (0.55 s of 10,000 x
 * 256-d against 0.19 s).
 */
function hypot(v: Float32Array): number {
  let max = 0;
  for (let i = 0; i < v.length; i++) max = Math.max(max, Math.abs(v[i]!));
  if (max === 0 || max === Infinity) return max;
  let sum = 0;
  let compensation = 0;
  for (let i = 0; i < v.length; i++) {
    const n = Math.abs(v[i]!) / max;
    const summand = n * n - compensation;
    const preliminary = sum + summand;
    compensation = preliminary - sum - summand;
    sum = preliminary;
  }
  return Math.sqrt(sum) * max;
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
    const v = new Float32Array(dim);
    for (let i = 0; i < dim; i++) v[i] = c[i]! + 0.35 * gauss();
    const norm = hypot(v);
    for (let i = 0; i < dim; i++) v[i] = v[i]! / norm;
    return v;
  };
  return {
    name: `synthetic (${n} clustered vectors, dim ${dim}, seed ${seed})`,
    dim,
    docs: Array.from({ length: n }, sample),
    queries: Array.from({ length: queries }, sample),
  };
}
