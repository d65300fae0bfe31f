import { fileURLToPath } from 'node:url';
import { benchArgs } from './args.js';
import { symmetricEigen } from '../src/pca/eigen.js';
import { fitPca } from '../src/pca/pca.js';
import { rng } from '../src/random.js';

/**
 * What fitting PCA costs: `fitPca` (the covariance of the sample, then its eigendecomposition) on
 * 4,096 synthetic vectors (the default `trainSize`) with a decaying spectrum, keeping a quarter of
 * the dimensions, at each `--dims` (milliseconds, the fastest of `--runs`). The fit runs inside the
 * add that reaches `trainSize` and blocks the process meanwhile. Then its eigendecomposition alone
 * (`symmetricEigen`) on a covariance of the same spectrum: every eigenvector (QL with the
 * transformations accumulated) against the quarter PCA keeps (inverse iteration on the tridiagonal
 * form), and the share of the fit the kept quarter's takes.
 *
 *   node dist/bench/pca.bench.js [--dims 256,512,1024] [--runs 3]
 */

const ROWS = 4096;

export function runPcaBench(dims: readonly number[], runs: number, write: (line: string) => void): void {
  write(`| dim | fit of ${ROWS} vectors, ms (fastest of ${runs}) | variance kept by dim / 4 axes |`);
  write('|---:|---:|---:|');
  for (const dim of dims) {
    const next = rng(dim);
    const rows = Array.from({ length: ROWS }, () => Float32Array.from(decayingRow(dim, next)));
    let best = Infinity;
    let kept = 0;
    for (let r = 0; r < runs; r++) {
      const t = performance.now();
      kept = fitPca(rows, dim, { dims: Math.max(1, dim >> 2) }).explainedVariance;
      best = Math.min(best, performance.now() - t);
    }
    write(`| ${dim} | ${best.toFixed(0)} | ${kept.toFixed(4)} |`);
  }
  write('');
  write(`| dim | eigendecomposition, every eigenvector, ms | the first dim / 4 only, ms | ratio |`);
  write('|---:|---:|---:|---:|');
  for (const dim of dims) {
    const a = covariance(dim);
    const time = (keep?: (values: Float64Array) => number) => {
      let best = Infinity;
      for (let r = 0; r < runs; r++) {
        const t = performance.now();
        symmetricEigen(a, dim, keep);
        best = Math.min(best, performance.now() - t);
      }
      return best;
    };
    const all = time();
    const quarter = time(() => Math.max(1, dim >> 2));
    write(`| ${dim} | ${all.toFixed(0)} | ${quarter.toFixed(0)} | ${(quarter / all).toFixed(2)} |`);
  }
}

/** A random vector whose spectrum decays as embeddings' do: axis j has a standard deviation of about 1 / √(1 + j/8). */
function decayingRow(dim: number, next: () => number): Float64Array {
  return Float64Array.from({ length: dim }, (_, j) => (next() - 0.5) / Math.sqrt(1 + j / 8));
}

/** The covariance (float64, row-major) of 2 · dim vectors with the fit's decaying spectrum. */
function covariance(dim: number): Float64Array {
  const next = rng(dim + 1);
  const rows = Array.from({ length: 2 * dim }, () => decayingRow(dim, next));
  const a = new Float64Array(dim * dim);
  for (const x of rows) {
    for (let i = 0; i < dim; i++) {
      const xi = x[i]!;
      for (let j = i; j < dim; j++) a[i * dim + j]! += xi * x[j]!;
    }
  }
  for (let i = 0; i < dim; i++) for (let j = i; j < dim; j++) a[j * dim + i] = a[i * dim + j]! /= rows.length;
  return a;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = benchArgs('dist/bench/pca.bench.js', { options: { dims: { type: 'string' }, runs: { type: 'string' } } }, { numbers: ['dims', 'runs'] });
  const dims = (values.dims ?? '256,512,1024').split(',').map(Number);
  const runs = Number(values.runs ?? 3);
  if (dims.some((d) => !Number.isInteger(d) || d < 1) || !Number.isInteger(runs) || runs < 1) throw new Error('--dims takes positive integers, --runs a positive integer');
  runPcaBench(dims, runs, (line) => process.stdout.write(`${line}\n`));
}
