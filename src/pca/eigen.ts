/**
 * The eigendecomposition of a real symmetric matrix, for PCA's covariance: Householder reduction
 * to tridiagonal form, then the implicit QL method with Wilkinson shifts, accumulating the
 * transformations (EISPACK's tred2 and tql2, as JAMA and ml-matrix carry them). Here on one
 * Float64Array, and transposed against those: the column of the working matrix that an inner loop
 * walks is a contiguous row here, so every inner loop reads memory in order. ml-matrix (through
 * ml-pca, which the store used before) runs the same steps on arrays of arrays through a Matrix
 * accessor per element. Cubic in n: about 0.6 s at 512 and 4.5 s at 1,024 here, the two halves
 * (reduction, QL) about equal; bench/pca.bench.ts times the whole fit.
 */

/** Eigenvalues in decreasing order, and the unit eigenvector of each as a row of `vectors` (n × n, row-major). */
export interface SymmetricEigen {
  readonly values: Float64Array;
  readonly vectors: Float64Array;
}

/**
 * The eigenvalues and eigenvectors of the symmetric `n` × `n` matrix `a` (row-major; only its
 * upper triangle is read, `a[i * n + j]` for j ≥ i). `a` is left as it was. The eigenvectors are
 * orthonormal to working precision; one whose eigenvalue repeats is any unit vector of that
 * eigenspace, the same one for the same input. A RangeError for a non-finite entry.
 */
export function symmetricEigen(a: Float64Array, n: number): SymmetricEigen {
  if (!(Number.isInteger(n) && n > 0) || a.length < n * n) throw new RangeError(`symmetricEigen: a needs ${n} × ${n} entries`);
  // A NaN would make every convergence test false, and the QL steps run off the end of the arrays.
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) if (!Number.isFinite(a[i * n + j]!)) throw new RangeError(`symmetricEigen: entry (${i}, ${j}) is not finite`);
  }
  // w[j * n + k] is the (k, j) entry of the working matrix V of tred2/tql2: V's columns are w's rows.
  const w = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      const v = a[i * n + j]!;
      w[i * n + j] = v;
      w[j * n + i] = v;
    }
  }
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  tridiagonalize(w, n, d, e);
  diagonalize(w, n, d, e);
  // Decreasing eigenvalues; ties keep their order (the same output for the same input).
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => d[y]! - d[x]! || x - y);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  for (let r = 0; r < n; r++) {
    const from = order[r]!;
    values[r] = d[from]!;
    vectors.set(w.subarray(from * n, from * n + n), r * n);
  }
  return { values, vectors };
}

/** tred2: `w` (V transposed) becomes the accumulated Householder transformations; d the diagonal, e the subdiagonal (e[0] = 0). */
function tridiagonalize(w: Float64Array, n: number, d: Float64Array, e: Float64Array): void {
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
        for (let k = j + 1; k <= i - 1; k++) {
          const v = w[row + k]!;
          g += v * d[k]!;
          e[k]! += v * f;
        }
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
        f = d[j]!;
        g = e[j]!;
        const row = j * n;
        for (let k = j; k <= i - 1; k++) w[row + k]! -= f * e[k]! + g * d[k]!;
        d[j] = w[row + i - 1]!;
        w[row + i] = 0;
      }
    }
    d[i] = h;
  }
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

/** tql2: d becomes the eigenvalues (unsorted), the rows of `w` their eigenvectors. */
function diagonalize(w: Float64Array, n: number, d: Float64Array, e: Float64Array): void {
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
