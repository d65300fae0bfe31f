import { kernels, type Kernels } from '../kernels/index.js';
import { rng } from '../random.js';

/**
 * The eigendecomposition of a real symmetric matrix, for PCA's covariance: Householder reduction
 * to tridiagonal form, then the implicit QL method with Wilkinson shifts, accumulating the
 * transformations (EISPACK's tred2 and tql2, as JAMA and ml-matrix carry them), or, for the few
 * eigenvectors PCA keeps, the eigenvalues alone by QL and each vector by inverse iteration (LAPACK's
 * dstein). Here on one float64 array in the kernels' linear memory, transposed against JAMA: the
 * column of the working matrix that an inner loop walks is a contiguous row here, so every inner
 * loop reads memory in order, and the loops that cost (the reduction's symmetric product and
 * rank-two update, the reflectors carried back onto the vectors, inverse iteration's
 * orthogonalization) run as WebAssembly kernels (KERNELS.md, "Eigensolver steps"). ml-matrix
 * (through ml-pca, which the store used before) runs the same steps on arrays of arrays through a
 * Matrix accessor per element. The reduction is cubic in n (about 4/3 n³ flops); with all vectors,
 * the accumulation and QL's rotations, still JavaScript, cost as much again: every eigenvector of a
 * covariance with a decaying spectrum took 0.78 s at 512 and 9.0 s at 1,024, the quarter PCA keeps
 * 0.33 s and 3.0 s in JavaScript, 68–107 ms and 695–777 ms with the kernels (bench/pca.bench.ts,
 * bench/results/pca.md).
 */

/**
 * Eigenvalues in decreasing order (all n), and the unit eigenvectors of the first `count` of them
 * as the rows of `vectors` (count × n, row-major).
 */
export interface SymmetricEigen {
  readonly values: Float64Array;
  readonly count: number;
  readonly vectors: Float64Array;
}

/**
 * The eigenvalues and eigenvectors of the symmetric `n` × `n` matrix `a` (row-major; only its
 * upper triangle is read, `a[i * n + j]` for j ≥ i). `a` is left as it was. `keep`, given the
 * eigenvalues in decreasing order, says how many eigenvectors are wanted (all of them without it);
 * up to PARTIAL_SHARE of n are found by inverse iteration on the tridiagonal form and carried back
 * through the reflectors (tridiagonalVectors), which skips the QL method's rotations of all n
 * vectors: PCA keeps a few of them. The eigenvectors are orthonormal to working precision; one whose eigenvalue repeats
 * is any unit vector of that eigenspace, the same one for the same input. A RangeError for a
 * non-finite entry.
 */
export function symmetricEigen(a: Float64Array, n: number, keep?: (values: Float64Array) => number): SymmetricEigen {
  if (!(Number.isInteger(n) && n > 0) || a.length < n * n) throw new RangeError(`symmetricEigen: a needs ${n} × ${n} entries`);
  // A NaN would make every convergence test false, and the QL steps run off the end of the arrays.
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) if (!Number.isFinite(a[i * n + j]!)) throw new RangeError(`symmetricEigen: entry (${i}, ${j}) is not finite`);
  }
  // The working arrays live in the kernels' linear memory, where the reduction's and the
  // reflectors' inner loops run (KERNELS.md, "Eigensolver steps"); JavaScript reads them through
  // views, taken again after every alloc() (growing the memory detaches the views before it).
  const k = kernels();
  const mem = k.memory;
  const wBytes = n * n * 8;
  const wPtr = mem.alloc(wBytes);
  const dPtr = mem.alloc(n * 8);
  const ePtr = mem.alloc(n * 8);
  let outPtr = 0;
  let outBytes = 0;
  try {
    const views = (): { w: Float64Array; d: Float64Array; e: Float64Array } => {
      const f64 = mem.f64();
      return { w: f64.subarray(wPtr >> 3, (wPtr >> 3) + n * n), d: f64.subarray(dPtr >> 3, (dPtr >> 3) + n), e: f64.subarray(ePtr >> 3, (ePtr >> 3) + n) };
    };
    let { w, d, e } = views();
    // w[j * n + k] is the (k, j) entry of the working matrix V of tred2/tql2: V's columns are w's rows.
    for (let i = 0; i < n; i++) {
      for (let j = i; j < n; j++) {
        const v = a[i * n + j]!;
        w[i * n + j] = v;
        w[j * n + i] = v;
      }
    }
    reduce(k, { w, wPtr, d, dPtr, e, ePtr }, n);
    const values = new Float64Array(n);
    let wanted = n;
    if (keep !== undefined) {
      // The tridiagonal form, and its eigenvalues for keep() (QL without vectors, on copies: d and e still hold the reflectors' terms).
      const diag = new Float64Array(n);
      const off = new Float64Array(n);
      for (let i = 0; i < n; i++) diag[i] = w[i * n + i]!;
      for (let i = 0; i + 1 < n; i++) off[i] = e[i + 1]!;
      values.set(diag);
      diagonalize(undefined, n, values, Float64Array.from(e));
      values.sort().reverse();
      wanted = keep(values);
      if (!(Number.isInteger(wanted) && wanted >= 0 && wanted <= n)) throw new RangeError(`symmetricEigen: keep() asked for ${wanted} of ${n} eigenvectors`);
      if (wanted <= n * PARTIAL_SHARE) {
        // The vectors, then the one inverse iteration is working on.
        outBytes = (wanted + 1) * n * 8;
        outPtr = mem.alloc(outBytes);
        ({ w, d, e } = views());
        const out = mem.f64().subarray(outPtr >> 3, (outPtr >> 3) + wanted * n);
        tridiagonalVectors(k, { wPtr, out, outPtr }, n, d, diag, off, values.subarray(0, wanted));
        return { values, count: wanted, vectors: Float64Array.from(out) };
      }
    }
    accumulate(w, n, d, e);
    diagonalize(w, n, d, e);
    // Decreasing eigenvalues; ties keep their order (the same output for the same input).
    const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => d[y]! - d[x]! || x - y);
    const vectors = new Float64Array(wanted * n);
    for (let r = 0; r < n; r++) {
      const from = order[r]!;
      values[r] = d[from]!;
      if (r < wanted) vectors.set(w.subarray(from * n, from * n + n), r * n);
    }
    return { values, count: wanted, vectors };
  } finally {
    if (outBytes > 0) mem.free(outPtr, outBytes);
    mem.free(ePtr, n * 8);
    mem.free(dPtr, n * 8);
    mem.free(wPtr, wBytes);
  }
}

/** reduce()'s working arrays: views of linear memory and their byte addresses, for the kernels. */
interface Working {
  readonly w: Float64Array;
  readonly wPtr: number;
  readonly d: Float64Array;
  readonly dPtr: number;
  readonly e: Float64Array;
  readonly ePtr: number;
}

/**
 * The largest share of the eigenvectors found by inverse iteration; past it all of them are found by
 * QL and the first ones kept. Measured on 4,096 x 512 sentence embeddings (a scratch script): a fit
 * keeping 128 to 320 axes took 0.71–0.87 s either way within noise at 256, and keeping 500 took 1.9 s
 * by inverse iteration against 0.8–1.3 s for all 512 by QL (presumably the tail's small eigenvalues,
 * close together, make clusters whose vectors are each orthogonalized against all before them).
 */
const PARTIAL_SHARE = 0.5;

/**
 * Inverse iteration steps per eigenvector. From a random start one step already gains about
 * log10(1/ε) digits where the shift is an eigenvalue to working precision (the tests pass with one);
 * the two more are LAPACK dstein's extra steps after convergence, O(n) each, for vectors of a cluster.
 */
const INVERSE_STEPS = 3;

/**
 * The eigenvectors of `wanted` (eigenvalues of the tridiagonal form, decreasing) in the basis of
 * the original matrix: each by inverse iteration on the tridiagonal matrix (diagonal `diag`, `off[i]`
 * coupling i and i + 1) scaled to norm 1, its shift pushed apart from the one before within a
 * cluster and each step orthogonalized against the cluster's vectors found before it (LAPACK's
 * dstein), then carried back through reduce()'s reflectors (u in w's rows, their d[i] in `h`).
 */
function tridiagonalVectors(kernel: Kernels, { wPtr, out, outPtr }: { wPtr: number; out: Float64Array; outPtr: number }, n: number, h: Float64Array, diag: Float64Array, off: Float64Array, wanted: Float64Array): void {
  const k = wanted.length;
  if (k === 0) return;
  let norm = 0;
  for (let i = 0; i < n; i++) norm = Math.max(norm, Math.abs(diag[i]!) + Math.abs(off[i]!) + (i > 0 ? Math.abs(off[i - 1]!) : 0));
  const scale = norm > 0 ? 1 / norm : 1;
  const eps = 2 ** -52;
  // Eigenvalues closer than this (of the scaled matrix, norm 1) form a cluster whose vectors are orthogonalized explicitly.
  const clusterGap = 1e-3;
  const nudge = 10 * eps;
  const dd = new Float64Array(n);
  const dl = new Float64Array(n);
  const du = new Float64Array(n);
  const du2 = new Float64Array(n);
  const swapped = new Uint8Array(n);
  // The working vector right after the vectors (symmetricEigen allocates it), for the kernel that orthogonalizes it.
  const xPtr = outPtr + k * n * 8;
  const x = new Float64Array(out.buffer, out.byteOffset + k * n * 8, n);
  const rand = rngFor(n);
  let clusterStart = 0;
  let shift = 0;
  for (let j = 0; j < k; j++) {
    let mu = wanted[j]! * scale;
    if (j > 0 && (wanted[j - 1]! - wanted[j]!) * scale > clusterGap) clusterStart = j;
    else if (j > 0 && mu > shift - nudge) mu = shift - nudge;
    shift = mu;
    factorShifted(diag, off, n, scale, mu, dd, dl, du, du2, swapped);
    for (let i = 0; i < n; i++) x[i] = 2 * rand() - 1;
    for (let step = 0; step < INVERSE_STEPS; step++) {
      solveFactored(n, dd, dl, du, du2, swapped, x);
      // x −= (v·x) v for each unit vector v of the cluster found before it.
      for (let c = clusterStart; c < j; c++) kernel.eigenReflect(outPtr + c * n * 8, xPtr, n, 1);
      let size = 0;
      for (let i = 0; i < n; i++) size = Math.max(size, Math.abs(x[i]!));
      if (size === 0 || !Number.isFinite(size)) throw new RangeError('symmetricEigen: inverse iteration lost its vector');
      let sum = 0;
      for (let i = 0; i < n; i++) {
        x[i]! /= size;
        sum += x[i]! * x[i]!;
      }
      const unit = 1 / Math.sqrt(sum);
      for (let i = 0; i < n; i++) x[i]! *= unit;
    }
    out.set(x, j * n);
  }
  // Back through the reflectors: v = H(n−1) ⋯ H(1) z, H(m) = I − u uᵀ / h[m] on the first m coordinates.
  for (let j = 0; j < k; j++) {
    const z = outPtr + j * n * 8;
    for (let m = 1; m < n; m++) {
      const hm = h[m]!;
      if (hm !== 0) kernel.eigenReflect(wPtr + m * n * 8, z, m, hm);
    }
  }
}

/**
 * LU with partial pivoting of T·scale − mu·I (LAPACK's dgttrf): U in dd, du and du2, the
 * multipliers in dl, and swapped[i] when rows i and i + 1 were exchanged. A zero pivot becomes the
 * smallest one inverse iteration can use: the shift is an eigenvalue to working precision.
 */
function factorShifted(diag: Float64Array, off: Float64Array, n: number, scale: number, mu: number, dd: Float64Array, dl: Float64Array, du: Float64Array, du2: Float64Array, swapped: Uint8Array): void {
  for (let i = 0; i < n; i++) {
    dd[i] = diag[i]! * scale - mu;
    dl[i] = off[i]! * scale;
    du[i] = off[i]! * scale;
    du2[i] = 0;
    swapped[i] = 0;
  }
  for (let i = 0; i + 1 < n; i++) {
    if (Math.abs(dd[i]!) >= Math.abs(dl[i]!)) {
      if (dd[i] !== 0) {
        const fact = dl[i]! / dd[i]!;
        dl[i] = fact;
        dd[i + 1]! -= fact * du[i]!;
      }
    } else {
      const fact = dd[i]! / dl[i]!;
      dd[i] = dl[i]!;
      dl[i] = fact;
      const temp = du[i]!;
      du[i] = dd[i + 1]!;
      dd[i + 1] = temp - fact * dd[i + 1]!;
      if (i + 2 < n) {
        du2[i] = du[i + 1]!;
        du[i + 1] = -fact * du[i + 1]!;
      }
      swapped[i] = 1;
    }
  }
  const tiny = 2 ** -52;
  for (let i = 0; i < n; i++) if (Math.abs(dd[i]!) < tiny) dd[i] = dd[i]! < 0 ? -tiny : tiny;
}

/** Solves the factored system (LAPACK's dgtts2) for `b`, in place. */
function solveFactored(n: number, dd: Float64Array, dl: Float64Array, du: Float64Array, du2: Float64Array, swapped: Uint8Array, b: Float64Array): void {
  for (let i = 0; i + 1 < n; i++) {
    if (swapped[i] === 0) {
      b[i + 1]! -= dl[i]! * b[i]!;
    } else {
      const temp = b[i]!;
      b[i] = b[i + 1]!;
      b[i + 1] = temp - dl[i]! * b[i]!;
    }
  }
  b[n - 1]! /= dd[n - 1]!;
  if (n > 1) b[n - 2] = (b[n - 2]! - du[n - 2]! * b[n - 1]!) / dd[n - 2]!;
  for (let i = n - 3; i >= 0; i--) b[i] = (b[i]! - du[i]! * b[i + 1]! - du2[i]! * b[i + 2]!) / dd[i]!;
}

/** The start vectors' generator: seeded by the size, so the same input gives the same vectors. */
function rngFor(n: number): () => number {
  return rng(0x5eed0000 + n);
}

/**
 * tred2's reduction: afterwards the diagonal of the tridiagonal form is w's diagonal, e[i] couples
 * i − 1 and i, and the Householder reflector of step i (1 ≤ i < n) is I − u uᵀ / d[i] on the first i
 * coordinates, u = w[i * n, i * n + i) (the identity where d[i] is 0). accumulate() multiplies them out.
 */
function reduce(kernel: Kernels, { w, wPtr, d, dPtr, e, ePtr }: Working, n: number): void {
  for (let j = 0; j < n; j++) d[j] = w[j * n + n - 1]!;
  for (let i = n - 1; i > 0; i--) {
    // Scale to avoid under- and overflow.
    let scale = 0;
    let h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(d[k]!);
    if (scale === 0) {
      e[i] = d[i - 1]!;
      for (let j = 0; j < i; j++) {
        d[j] = w[j * n + i - 1]!;
        w[j * n + i] = 0;
        w[i * n + j] = 0;
      }
    } else {
      // The Householder vector.
      for (let k = 0; k < i; k++) {
        d[k]! /= scale;
        h += d[k]! * d[k]!;
      }
      let f = d[i - 1]!;
      let g = Math.sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h -= f * g;
      d[i - 1] = f - g;
      for (let j = 0; j < i; j++) e[j] = 0;
      // The similarity transformation of the remaining columns.
      for (let j = 0; j < i; j++) {
        f = d[j]!;
        const row = j * n;
        w[i * n + j] = f;
        g = e[j]! + w[row + j]! * f;
        // Σ over k in (j, i) of w[row + k]·d[k], while e[k] += w[row + k]·f.
        if (j + 1 < i) g += kernel.eigenDotAxpy(wPtr + (row + j + 1) * 8, dPtr + (j + 1) * 8, ePtr + (j + 1) * 8, i - 1 - j, f);
        e[j] = g;
      }
      f = 0;
      for (let j = 0; j < i; j++) {
        e[j]! /= h;
        f += e[j]! * d[j]!;
      }
      const hh = f / (h + h);
      for (let j = 0; j < i; j++) e[j]! -= hh * d[j]!;
      for (let j = 0; j < i; j++) {
        const row = j * n;
        kernel.eigenRank2(wPtr + (row + j) * 8, ePtr + j * 8, dPtr + j * 8, i - j, d[j]!, e[j]!);
        d[j] = w[row + i - 1]!;
        w[row + i] = 0;
      }
    }
    d[i] = h;
  }
}

/** tred2's second half: `w` (V transposed) becomes the product of reduce()'s reflectors; d the diagonal, e the subdiagonal (e[0] = 0). */
function accumulate(w: Float64Array, n: number, d: Float64Array, e: Float64Array): void {
  // Accumulate the transformations.
  for (let i = 0; i < n - 1; i++) {
    w[i * n + n - 1] = w[i * n + i]!;
    w[i * n + i] = 1;
    const h = d[i + 1]!;
    const next = (i + 1) * n;
    if (h !== 0) {
      for (let k = 0; k <= i; k++) d[k] = w[next + k]! / h;
      for (let j = 0; j <= i; j++) {
        const row = j * n;
        let g = 0;
        for (let k = 0; k <= i; k++) g += w[next + k]! * w[row + k]!;
        for (let k = 0; k <= i; k++) w[row + k]! -= g * d[k]!;
      }
    }
    for (let k = 0; k <= i; k++) w[next + k] = 0;
  }
  for (let j = 0; j < n; j++) {
    d[j] = w[j * n + n - 1]!;
    w[j * n + n - 1] = 0;
  }
  w[(n - 1) * n + n - 1] = 1;
  e[0] = 0;
}

/** tql2: d becomes the eigenvalues (unsorted), the rows of `w` their eigenvectors; without `w`, tql1 (the eigenvalues alone). */
function diagonalize(w: Float64Array | undefined, n: number, d: Float64Array, e: Float64Array): void {
  for (let i = 1; i < n; i++) e[i - 1] = e[i]!;
  e[n - 1] = 0;
  let f = 0;
  let tst1 = 0;
  const eps = 2 ** -52;
  for (let l = 0; l < n; l++) {
    // The first small subdiagonal element.
    tst1 = Math.max(tst1, Math.abs(d[l]!) + Math.abs(e[l]!));
    let m = l;
    while (m < n) {
      if (Math.abs(e[m]!) <= eps * tst1) break;
      m++;
    }
    // m === l: d[l] is an eigenvalue; otherwise iterate.
    if (m > l) {
      do {
        // The implicit shift.
        let g = d[l]!;
        let p = (d[l + 1]! - g) / (2 * e[l]!);
        let r = Math.hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l]! / (p + r);
        d[l + 1] = e[l]! * (p + r);
        const dl1 = d[l + 1]!;
        let h = g - d[l]!;
        for (let i = l + 2; i < n; i++) d[i]! -= h;
        f += h;
        // The implicit QL transformation.
        p = d[m]!;
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1]!;
        let s = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i]!;
          h = c * p;
          r = Math.hypot(p, e[i]!);
          e[i + 1] = s * r;
          s = e[i]! / r;
          c = p / r;
          p = c * d[i]! - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]!);
          // Accumulate the transformation: rows i and i + 1 of w.
          if (w === undefined) continue;
          const lo = i * n;
          const hi = lo + n;
          for (let k = 0; k < n; k++) {
            const x = w[hi + k]!;
            const y = w[lo + k]!;
            w[hi + k] = s * y + c * x;
            w[lo + k] = c * y - s * x;
          }
        }
        p = (-s * s2 * c3 * el1 * e[l]!) / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]!) > eps * tst1);
    }
    d[l]! += f;
    e[l] = 0;
  }
}
