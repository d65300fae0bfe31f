import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fitPca } from '../src/pca/pca.js';
import { rng } from '../src/random.js';

/**
 * What fitting PCA costs: `fitPca` (the covariance of the sample, then its eigendecomposition) on
 * 4,096 synthetic vectors (the default `trainSize`) with a decaying spectrum, keeping a quarter of
 * the dimensions, at each `--dims` (milliseconds, the fastest of `--runs`). The fit runs inside the
 * add that reaches `trainSize` and blocks the process meanwhile.
 *
 *   node dist/bench/pca.bench.js [--dims 256,512,1024] [--runs 3]
 */

const ROWS = 4096;

export function runPcaBench(dims: readonly number[], runs: number, write: (line: string) => void): void {
  write(`| dim | fit of ${ROWS} vectors, ms (fastest of ${runs}) | variance kept by dim / 4 axes |`);
  write('|---:|---:|---:|');
  for (const dim of dims) {
    const next = rng(dim);
    // A spectrum that decays as embeddings' do: axis j has a standard deviation of about 1 / √(1 + j/8).
    const rows = Array.from({ length: ROWS }, () => Float32Array.from({ length: dim }, (_, j) => (next() - 0.5) / Math.sqrt(1 + j / 8)));
    let best = Infinity;
    let kept = 0;
    for (let r = 0; r < runs; r++) {
      const t = performance.now();
      kept = fitPca(rows, dim, { dims: Math.max(1, dim >> 2) }).explainedVariance;
      best = Math.min(best, performance.now() - t);
    }
    write(`| ${dim} | ${best.toFixed(0)} | ${kept.toFixed(4)} |`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { dims: { type: 'string' }, runs: { type: 'string' } } });
  const dims = (values.dims ?? '256,512,1024').split(',').map(Number);
  const runs = Number(values.runs ?? 3);
  if (dims.some((d) => !Number.isInteger(d) || d < 1) || !Number.isInteger(runs) || runs < 1) throw new Error('--dims takes positive integers, --runs a positive integer');
  runPcaBench(dims, runs, (line) => process.stdout.write(`${line}\n`));
}
