import { statSync } from 'node:fs';
import { join } from 'node:path';
import { makeBenchDir, removeBenchDir } from './temp-dirs.js';
import { performance } from 'node:perf_hooks';
import type hnswlibModule from 'hnswlib-node';
import type { Metric } from '../src/options.js';
import type { Dataset } from '../src/cli/datasets.js';
import { missing, optionalPackage } from './optional.js';

/** hnswlib-node, when installed (an optional dependency: bench/optional.ts). */
const hnswlib = (await optionalPackage<{ default: typeof hnswlibModule }>('hnswlib-node'))?.default;

/** Whether the HNSW baseline can run here. */
export function hnswAvailable(): boolean {
  return hnswlib !== undefined;
}

/** The line the bench prints when hnswlib-node is missing. */
export const HNSW_MISSING = missing('hnswlib-node', 'the HNSW baseline');

export interface Timed<T> {
  readonly result: T;
  /** Milliseconds per query, in query order. */
  readonly times: number[];
}

function exactScores(metric: Metric, q: Float32Array, docs: readonly Float32Array[], norms: Float64Array, out: Float64Array): void {
  let qq = 0;
  for (let i = 0; i < q.length; i++) qq += q[i]! * q[i]!;
  const qNorm = Math.sqrt(qq);
  for (let j = 0; j < docs.length; j++) {
    const x = docs[j]!;
    let s = 0;
    if (metric === 'l2') {
      for (let i = 0; i < q.length; i++) {
        const d = q[i]! - x[i]!;
        s += d * d;
      }
      out[j] = -s;
    } else {
      for (let i = 0; i < q.length; i++) s += q[i]! * x[i]!;
      const d = qNorm * norms[j]!;
      out[j] = metric === 'dot' ? s : d === 0 ? 0 : s / d;
    }
  }
}

/**
 * Exact search over the float32 vectors in plain JavaScript with float64 accumulation: the ground
 * truth every recall figure is measured against (independent of memstore's code), timed per query
 * so it doubles as the "exact float32" baseline row.
 */
export function exactSearch(data: Dataset, metric: Metric, k: number): ExactRun {
  const norms = Float64Array.from(data.docs, (x) => Math.hypot(...x));
  const scores = new Float64Array(data.docs.length);
  const order = Array.from({ length: data.docs.length }, (_, i) => i);
  const times: number[] = [];
  const tiedK: number[][] = [];
  const tied1: number[][] = [];
  const result = data.queries.map((q) => {
    const t = performance.now();
    exactScores(metric, q, data.docs, norms, scores);
    const sorted = order.slice().sort((a, b) => scores[b]! - scores[a]! || a - b);
    times.push(performance.now() - t);
    const queryNorm = Math.hypot(...q);
    const scaleAt = (row: number) => tieScale(metric, scores[row]!, queryNorm, norms[row]!);
    tiedK.push(atLeastRank(sorted, scores, k, scaleAt));
    tied1.push(atLeastRank(sorted, scores, 1, scaleAt));
    return sorted.slice(0, k);
  });
  return { result, times, tiedK, tied1 };
}

/**
 * How far below the k-th best exact score a row still counts as tied with it: a millionth of that
 * score's scale (tieScale), far under what any codec resolves, and above the float32 rounding that
 * makes the cosines of one direction at two scales differ (by 1e-8: a hostile pass had such copies
 * counted as misses).
 */
const TIE_TOLERANCE = 1e-6;

/**
 * The scale of the k-th row's score: 1 for a cosine (or the score, if larger in magnitude); for a
 * dot product the size of its terms, ‖q‖‖x‖, and for a squared distance (‖q‖ + ‖x‖)², which bound
 * it. Taken as 1 for them too, every row of GloVe as the data sets' script makes it (lengths 7e-6 to
 * 0.02, squared distances about 1e-9) was tied with the 10th, and the truth of 1,000 queries over
 * 331k rows filled a 4 GB heap; taken from the best score instead, one row 10⁷ times the query tied
 * every other row with the 10th (hostile passes).
 */
function tieScale(metric: Metric, score: number, queryNorm: number, rowNorm: number): number {
  if (metric === 'cosine') return Math.max(1, Math.abs(score));
  return metric === 'dot' ? queryNorm * rowNorm : (queryNorm + rowNorm) ** 2;
}

/**
 * The rows of `sorted` (best first by `scores`) scoring at least the one at `rank` (1-based), less
 * TIE_TOLERANCE: the first `rank` and every row tied with the last of them. Any of them is a right
 * answer at that rank: with 200 copies of one vector, a search that returned other copies than the
 * truth's lowest rows had been counted as missing them (recall 0.2 for f32, a hostile pass).
 */
function atLeastRank(sorted: readonly number[], scores: Float64Array, rank: number, scaleAt: (row: number) => number): number[] {
  if (sorted.length <= rank) return sorted.slice();
  const kth = scores[sorted[rank - 1]!]!;
  const line = kth - TIE_TOLERANCE * scaleAt(sorted[rank - 1]!);
  let end = rank;
  while (end < sorted.length && scores[sorted[end]!]! >= line) end++;
  return sorted.slice(0, end);
}

/** exactSearch()'s answers: each query's top k rows (`result`), and the rows any of which is a right answer at rank k and at rank 1 (ties with the k-th and the first included). */
export interface ExactRun extends Timed<number[][]> {
  readonly tiedK: number[][];
  readonly tied1: number[][];
}

export interface HnswOptions {
  /** @default 16 */
  readonly m?: number;
  /** @default 200 */
  readonly efConstruction?: number;
  /** Search breadth. @default 64 */
  readonly efSearch?: number;
}

export interface HnswRun extends Timed<number[][]> {
  readonly buildMs: number;
  /** Bytes of the serialized index per vector (vectors, links, labels). */
  readonly bytesPerVector: number;
  readonly m: number;
  readonly efConstruction: number;
  readonly efSearch: number;
}

const SPACE: Record<Metric, 'cosine' | 'ip' | 'l2'> = { cosine: 'cosine', dot: 'ip', l2: 'l2' };

/** hnswlib-node's float32 HNSW over `docs` (labels: their rows), as every benchmark builds it: M 16, efConstruction 200, seed 100 unless told. */
export function buildHnsw(docs: readonly Float32Array[], dim: number, metric: Metric, options: { m?: number; efConstruction?: number } = {}): hnswlibModule.HierarchicalNSW {
  if (hnswlib === undefined) throw new Error(HNSW_MISSING);
  const index = new hnswlib.HierarchicalNSW(SPACE[metric], dim);
  index.initIndex({ maxElements: docs.length, m: options.m ?? 16, efConstruction: options.efConstruction ?? 200, randomSeed: 100 });
  docs.forEach((v, i) => index.addPoint(Array.from(v), i));
  return index;
}

/** hnswlib-node float32 HNSW, the usual embedded ANN choice, as the baseline to beat on memory. */
export function hnswSearch(data: Dataset, metric: Metric, k: number, options: HnswOptions = {}): HnswRun {
  const m = options.m ?? 16;
  const efConstruction = options.efConstruction ?? 200;
  const efSearch = Math.max(k, options.efSearch ?? 64);
  const started = performance.now();
  const index = buildHnsw(data.docs, data.dim, metric, { m, efConstruction });
  const buildMs = performance.now() - started;
  index.setEf(efSearch);

  const dir = makeBenchDir('memstore-hnsw-');
  let bytesPerVector: number;
  try {
    const file = join(dir, 'index.bin');
    index.writeIndexSync(file);
    bytesPerVector = statSync(file).size / data.docs.length;
  } finally {
    removeBenchDir(dir);
  }

  const queries = data.queries.map((q) => Array.from(q));
  const times: number[] = [];
  const result = queries.map((q) => {
    const t = performance.now();
    const { neighbors } = index.searchKnn(q, Math.min(k, data.docs.length));
    times.push(performance.now() - t);
    return neighbors;
  });
  return { result, times, buildMs, bytesPerVector, m, efConstruction, efSearch };
}
