import { PCA } from 'ml-pca';
import { MemstoreError } from '../errors.js';
import type { PcaOption } from '../options.js';

/**
 * A fitted projection: `components` holds `outDim` rows of `inDim` floats, the principal axes in
 * order of decreasing variance; `mean` is the training sample's mean.
 */
export interface PcaModel {
  readonly inDim: number;
  readonly outDim: number;
  readonly mean: Float32Array;
  readonly components: Float32Array;
  /** Share of the sample's variance the kept axes explain, in [0, 1]. */
  readonly explainedVariance: number;
}

/** Training vectors PCA needs at least: one has no variance to find axes in. */
export const PCA_MIN_ROWS = 2;

/**
 * Fits PCA on `rows` (each of length `inDim`). The covariance matrix is accumulated here in float64
 * (ml-pca's own path goes through generic Matrix accessors and is several times slower); ml-pca does
 * the symmetric eigendecomposition.
 */
export function fitPca(rows: readonly Float32Array[], inDim: number, option: PcaOption): PcaModel {
  const n = rows.length;
  if (n < PCA_MIN_ROWS) throw new MemstoreError('INVALID_OPTION', `PCA needs at least ${PCA_MIN_ROWS} training vectors`);
  const mean = new Float64Array(inDim);
  for (const row of rows) for (let i = 0; i < inDim; i++) mean[i]! += row[i]!;
  for (let i = 0; i < inDim; i++) mean[i]! /= n;

  const cov = new Float64Array(inDim * inDim);
  const centered = new Float64Array(inDim);
  for (const row of rows) {
    for (let i = 0; i < inDim; i++) centered[i] = row[i]! - mean[i]!;
    for (let i = 0; i < inDim; i++) {
      const ci = centered[i]!;
      if (ci === 0) continue;
      const base = i * inDim;
      for (let j = i; j < inDim; j++) cov[base + j]! += ci * centered[j]!;
    }
  }
  const covRows: number[][] = [];
  for (let i = 0; i < inDim; i++) {
    const r = new Array<number>(inDim);
    for (let j = 0; j < inDim; j++) {
      r[j] = (i <= j ? cov[i * inDim + j]! : cov[j * inDim + i]!) / (n - 1);
    }
    covRows.push(r);
  }
  const pca = new PCA(covRows, { isCovarianceMatrix: true });
  const eigenvalues = pca.getEigenvalues().map((v) => Math.max(0, v));
  const total = eigenvalues.reduce((a, b) => a + b, 0);

  let outDim: number;
  if ('dims' in option) {
    if (option.dims > inDim) {
      throw new MemstoreError('INVALID_OPTION', `pca.dims (${option.dims}) exceeds dim (${inDim})`);
    }
    outDim = option.dims;
  } else {
    outDim = inDim;
    let acc = 0;
    for (let d = 0; d < eigenvalues.length; d++) {
      acc += eigenvalues[d]!;
      if (total === 0 || acc / total >= option.variance) {
        outDim = d + 1;
        break;
      }
    }
  }
  const kept = eigenvalues.slice(0, outDim).reduce((a, b) => a + b, 0);
  const u = pca.getEigenvectors();
  const components = new Float32Array(outDim * inDim);
  for (let r = 0; r < outDim; r++) {
    for (let i = 0; i < inDim; i++) components[r * inDim + i] = u.get(i, r);
  }
  return {
    inDim,
    outDim,
    mean: Float32Array.from(mean),
    components,
    explainedVariance: total === 0 ? 1 : kept / total,
  };
}

/** `out = W (x − μ)`: how stored vectors are projected (and queries, for L2). */
export function projectCentered(model: PcaModel, x: Float32Array, out: Float32Array): void {
  const { inDim, outDim, mean, components } = model;
  for (let r = 0; r < outDim; r++) {
    const base = r * inDim;
    let s = 0;
    for (let i = 0; i < inDim; i++) s += components[base + i]! * (x[i]! - mean[i]!);
    out[r] = s;
  }
}

/**
 * `out = W q`: how inner-product queries are projected. Since `q·x ≈ q·μ + (Wq)·W(x − μ)` and `q·μ`
 * is the same for every candidate, centering the query would shift scores without changing ranks
 * while centering only one side keeps the estimate unbiased.
 */
export function projectUncentered(model: PcaModel, q: Float32Array, out: Float32Array): void {
  const { inDim, outDim, components } = model;
  for (let r = 0; r < outDim; r++) {
    const base = r * inDim;
    let s = 0;
    for (let i = 0; i < inDim; i++) s += components[base + i]! * q[i]!;
    out[r] = s;
  }
}

export function dotMean(model: Pick<PcaModel, 'inDim' | 'mean'>, q: Float32Array): number {
  let s = 0;
  for (let i = 0; i < model.inDim; i++) s += q[i]! * model.mean[i]!;
  return s;
}

/** `out = μ + Wᵀ y`: the reconstruction `get` returns when no full-precision copy is kept. */
export function reconstruct(model: PcaModel, y: Float32Array, out: Float32Array): void {
  const { inDim, outDim, mean, components } = model;
  out.set(mean);
  for (let r = 0; r < outDim; r++) {
    const yr = y[r]!;
    const base = r * inDim;
    for (let i = 0; i < inDim; i++) out[i]! += yr * components[base + i]!;
  }
}
