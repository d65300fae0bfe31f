import { fileURLToPath } from 'node:url';
import { benchArgs } from './args.js';
import { symmetricEigen } from '../src/pca/eigen.js';
import { DUAL_SHARE, fitCovariance, fitPca } from '../src/pca/pca.js';
import { rng } from '../src/random.js';

/**
 * What fitting PCA costs: `fitPca` (the covariance of the sample, then its eigendecomposition) on
 * 4,096 synthetic vectors (the default `trainSize`) with a decaying spectrum, keeping a quarter of
 * the dimensions, at each `--dims` (milliseconds, the fastest of `--runs`). The fit runs inside the
 * add that reaches `trainSize` and blocks the process meanwhile. Then its eigendecomposition alone
 * (`symmetricEigen`) on a covariance of the same spectrum: every eigenvector (QL with the
 * transformations accumulated) against the quarter PCA keeps (inverse iteration on the tridiagonal
 * form), and the share of the fit the kept quarter's takes. With `--rows` at most DUAL_SHARE of
 * the dimensions, fitPca() fits from the rows' Gram matrix (pca.ts, fitDual): the fit by the
 * covariance is then timed beside it, in the same process.
 *
 *   node dist/bench/pca.bench.js [--dims 256,512,1024] [--runs 3] [--rows 4096]
 */

/** What runPcaBench() measures. */
export interface PcaBenchOptions {
  readonly dims: readonly number[];
  /** Fits timed per configuration, the fastest kept. */
  readonly runs: number;
  /** Vectors fitted on: the default `trainSize`, 4,096, from the command line. */
  readonly rows: number;
}

export function runPcaBench({ dims, runs, rows: rowCount }: PcaBenchOptions, write: (line: string) => void): void {
  const dual = (dim: number): boolean => rowCount <= DUAL_SHARE * dim;
  const side = dims.some(dual);
  write(`| dim | fit of ${rowCount} vectors, ms (fastest of ${runs}) | variance kept by dim / 4 axes |${side ? ' by the covariance, ms | ratio |' : ''}`);
  write(`|---:|---:|---:|${side ? '---:|---:|' : ''}`);
  for (const dim of dims) {
    const next = rng(dim);
    const rows = Array.from({ length: rowCount }, () => Float32Array.from(decayingRow(dim, next)));
    const option = { dims: Math.max(1, dim >> 2) };
    const fastest = (fit: () => number): { ms: number; kept: number } => {
      let ms = Infinity;
      let kept = 0;
      for (let r = 0; r < runs; r++) {
        const t = performance.now();
        kept = fit();
        ms = Math.min(ms, performance.now() - t);
      }
      return { ms, kept };
    };
    const fit = fastest(() => fitPca(rows, dim, option).explainedVariance);
    let extra = '';
    if (side) {
      const mean = new Float64Array(dim);
      for (const row of rows) for (let i = 0; i < dim; i++) mean[i]! += row[i]!;
      for (let i = 0; i < dim; i++) mean[i]! /= rows.length;
      const byCovariance = dual(dim) ? fastest(() => fitCovariance(rows, mean, dim, option).explainedVariance) : undefined;
      extra = byCovariance === undefined ? ' – | – |' : ` ${byCovariance.ms.toFixed(0)} | ${(fit.ms / byCovariance.ms).toFixed(2)} |`;
    }
    write(`| ${dim} | ${fit.ms.toFixed(0)} | ${fit.kept.toFixed(4)} |${extra}`);
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
  const { values } = benchArgs('dist/bench/pca.bench.js', { options: { dims: { type: 'string' }, runs: { type: 'string' }, rows: { type: 'string' } } }, { numbers: ['dims', 'runs', 'rows'] });
  const dims = (values.dims ?? '256,512,1024').split(',').map(Number);
  const runs = Number(values.runs ?? 3);
  const rows = Number(values.rows ?? 4096);
  if (dims.some((d) => !Number.isInteger(d) || d < 1) || !Number.isInteger(runs) || runs < 1 || !Number.isInteger(rows) || rows < 2) {
    throw new Error('--dims takes positive integers, --runs a positive integer, --rows an integer of at least 2');
  }
  runPcaBench({ dims, runs, rows }, (line) => process.stdout.write(`${line}\n`));
}
