/**
 * The symmetric eigensolver behind PCA (src/pca/eigen.ts): A v = λ v for every pair, orthonormal
 * eigenvectors, eigenvalues in decreasing order summing to the trace, on random matrices and on the
 * ones that trouble QL methods (repeated eigenvalues, zeros, rank one, already diagonal, huge and tiny
 * scales); only the upper triangle is read; the same input gives the same bits. And the kernels of
 * its inner loops (KERNELS.md, "Eigensolver steps") against their TypeScript references.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { symmetricEigen } from '../src/pca/eigen.js';
import { kernels, referenceEigenDotAxpy, referenceEigenRank2, referenceEigenReflect } from '../src/kernels/index.js';

/** A symmetric matrix from its upper triangle's entries, row-major. */
function symmetric(n: number, entry: (i: number, j: number) => number): Float64Array {
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      const v = entry(i, j);
      a[i * n + j] = v;
      a[j * n + i] = v;
    }
  }
  return a;
}

/** Uniform numbers in [−0.5, 0.5) from `seed` (xorshift32). */
function xorshift(seed: number): () => number {
  let s = seed | 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32 - 0.5;
  };
}

/** The largest |entry| of A, or 1 for the zero matrix: residuals are measured against it. */
function scaleOf(a: Float64Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m === 0 ? 1 : m;
}

/**
 * Asserts the decomposition of `a` with `keep` eigenvectors (all without it): residuals,
 * orthonormality, order, trace.
 */
function checkDecomposition(a: Float64Array, n: number, label: string, keep?: number): void {
  const { values, count, vectors } = symmetricEigen(a, n, keep === undefined ? undefined : () => keep);
  assert.equal(values.length, n);
  assert.equal(count, keep ?? n);
  assert.equal(vectors.length, count * n);
  const scale = scaleOf(a);
  const tol = 1e-11 * n * scale;
  for (let r = 1; r < n; r++) assert.ok(values[r - 1]! >= values[r]!, `${label}: decreasing at ${r}`);
  for (let r = 0; r < count; r++) {
    for (let i = 0; i < n; i++) {
      let av = 0;
      for (let j = 0; j < n; j++) av += a[i * n + j]! * vectors[r * n + j]!;
      assert.ok(Math.abs(av - values[r]! * vectors[r * n + i]!) <= tol, `${label}: (A v − λ v)[${i}] of pair ${r}`);
    }
    for (let s = r; s < count; s++) {
      let dot = 0;
      for (let j = 0; j < n; j++) dot += vectors[r * n + j]! * vectors[s * n + j]!;
      assert.ok(Math.abs(dot - (r === s ? 1 : 0)) <= 1e-12 * n, `${label}: v${r} · v${s} = ${dot}`);
    }
  }
  let trace = 0;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    trace += a[i * n + i]!;
    sum += values[i]!;
  }
  assert.ok(Math.abs(trace - sum) <= tol, `${label}: Σλ ${sum} against the trace ${trace}`);
}

describe('symmetricEigen (src/pca/eigen.ts)', () => {
  it('random symmetric matrices of 1 to 40 rows: A v = λ v, orthonormal vectors, decreasing values summing to the trace', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer(), fc.constantFrom(1e-150, 1e-3, 1, 1e6, 1e150), (n, seed, scale) => {
        const next = xorshift(seed);
        checkDecomposition(
          symmetric(n, () => next() * scale),
          n,
          `n ${n}, scale ${scale}`,
        );
      }),
      { numRuns: 200 },
    );
  });

  it('asked for the first k eigenvectors only (inverse iteration on the tridiagonal form), the same eigenvalues and k orthonormal eigenvectors, at every k', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.nat(), fc.integer(), fc.constantFrom(1e-150, 1, 1e150), (n, kSeed, seed, scale) => {
        const keep = kSeed % (n + 1);
        const next = xorshift(seed);
        const a = symmetric(n, () => next() * scale);
        checkDecomposition(a, n, `n ${n}, k ${keep}, scale ${scale}`, keep);
        const all = symmetricEigen(a, n).values;
        const some = symmetricEigen(a, n, () => keep).values;
        for (let i = 0; i < n; i++) assert.ok(Math.abs(all[i]! - some[i]!) <= 1e-12 * n * scaleOf(a), `eigenvalue ${i}`);
      }),
      { numRuns: 200 },
    );
  });

  it('keep() is given the eigenvalues in decreasing order, and an answer that is not a count from 0 to n is a RangeError', () => {
    const a = symmetric(5, (i, j) => (i === j ? [2, 9, 4, 7, 1][i]! : 0));
    let seen: number[] = [];
    symmetricEigen(a, 5, (values) => {
      seen = [...values];
      return 2;
    });
    assert.deepEqual(seen, [9, 7, 4, 2, 1]);
    for (const bad of [-1, 6, 1.5, Number.NaN]) assert.throws(() => symmetricEigen(a, 5, () => bad), RangeError, String(bad));
  });

  it('repeated eigenvalues, zeros, rank one, diagonal and already tridiagonal matrices decompose as well', () => {
    const n = 12;
    const cases: Array<[string, Float64Array]> = [
      ['zero', new Float64Array(n * n)],
      ['identity', symmetric(n, (i, j) => (i === j ? 1 : 0))],
      ['diagonal with ties', symmetric(n, (i, j) => (i === j ? [3, 1, 3, 0, -2, 1][i % 6]! : 0))],
      ['rank one', symmetric(n, (i, j) => (i + 1) * (j + 1))],
      ['all ones', symmetric(n, () => 1)],
      ['tridiagonal', symmetric(n, (i, j) => (i === j ? 2 : j === i + 1 ? -1 : 0))],
      ['a zero row', symmetric(n, (i, j) => (i === 4 || j === 4 ? 0 : Math.sin(i * 7 + j)))],
      ['block diagonal', symmetric(n, (i, j) => (Math.floor(i / 4) === Math.floor(j / 4) ? 1 + ((i * j) % 3) : 0))],
    ];
    for (const [label, a] of cases) for (const keep of [undefined, 0, 1, 3, n - 1]) checkDecomposition(a, n, `${label}, keep ${keep ?? 'all'}`, keep);
  });

  it('known spectra: [[2, 1], [1, 2]] has 3 and 1; the path graph\'s Laplacian-like tridiagonal has 2 − 2cos(kπ/(n+1))', () => {
    const two = symmetricEigen(Float64Array.of(2, 1, 1, 2), 2);
    assert.ok(Math.abs(two.values[0]! - 3) < 1e-15 && Math.abs(two.values[1]! - 1) < 1e-15);
    assert.ok(Math.abs(Math.abs(two.vectors[0]!) - Math.SQRT1_2) < 1e-15 && Math.sign(two.vectors[0]!) === Math.sign(two.vectors[1]!));
    const n = 30;
    const { values } = symmetricEigen(
      symmetric(n, (i, j) => (i === j ? 2 : j === i + 1 ? -1 : 0)),
      n,
    );
    const want = Array.from({ length: n }, (_, k) => 2 - 2 * Math.cos(((k + 1) * Math.PI) / (n + 1))).sort((x, y) => y - x);
    for (let k = 0; k < n; k++) assert.ok(Math.abs(values[k]! - want[k]!) < 1e-13, `eigenvalue ${k}: ${values[k]} against ${want[k]}`);
  });

  it('reads only the upper triangle, leaves its input as it was, and gives the same bits for the same input', () => {
    const n = 17;
    const a = symmetric(n, (i, j) => Math.cos(i * 3 + j * 5));
    const lowerJunk = Float64Array.from(a);
    for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) lowerJunk[i * n + j] = 1e9 * (i - j);
    const copy = Float64Array.from(lowerJunk);
    const x = symmetricEigen(a, n);
    const y = symmetricEigen(lowerJunk, n);
    assert.deepEqual(lowerJunk, copy, 'the input is untouched');
    assert.deepEqual(y.values, x.values);
    assert.deepEqual(y.vectors, x.vectors);
    assert.deepEqual(symmetricEigen(a, n), x);
    assert.deepEqual(symmetricEigen(a, n, () => 5), symmetricEigen(lowerJunk, n, () => 5), 'with keep() too');
  });

  it('refuses a size that is not a positive integer or a matrix too short for it (RangeError)', () => {
    for (const n of [0, -1, 1.5, Number.NaN]) assert.throws(() => symmetricEigen(new Float64Array(4), n), RangeError, String(n));
    assert.throws(() => symmetricEigen(new Float64Array(8), 3), RangeError);
  });

  it('refuses a matrix with a NaN or an infinite entry in its upper triangle (RangeError); the lower one is not read', () => {
    for (const bad of [Number.NaN, Infinity, -Infinity]) {
      const a = symmetric(4, (i, j) => (i === 1 && j === 3 ? bad : i + j));
      assert.throws(() => symmetricEigen(a, 4), RangeError, String(bad));
    }
    const lower = symmetric(4, (i, j) => i * j);
    lower[3 * 4 + 1] = Number.NaN;
    checkDecomposition(symmetric(4, (i, j) => i * j), 4, 'without the NaN');
    assert.doesNotThrow(() => symmetricEigen(lower, 4));
  });
});

describe('eigensolver kernels (eigen_dot_axpy, eigen_rank2, eigen_reflect)', () => {
  it('are their references bit for bit at every length 0 to 19 and 67, at addresses a float64 past 16-byte alignment too, leaving the floats after the m-th alone', () => {
    const k = kernels();
    const next = xorshift(77);
    const slot = 80 * 8;
    for (const m of [...Array.from({ length: 20 }, (_, i) => i), 67]) {
      for (const skew of [0, 8]) {
        const base = k.memory.alloc(3 * slot + 16);
        try {
          const [a, b, c] = [0, 1, 2].map((i) => base + skew + i * slot) as [number, number, number];
          const fill = () => {
            const f64 = k.memory.f64();
            for (let i = 0; i < (3 * slot) / 8; i++) f64[((base + skew) >> 3) + i] = next() * 4 - (i % 7 === 0 ? 1e3 : 0);
          };
          const view = (at: number) => k.memory.f64().slice(at >> 3, (at >> 3) + 80);
          const f = next() * 3;
          const g = next() * 3 - 5;

          fill();
          let [row, d, e] = [view(a), view(b), view(c)];
          const want = referenceEigenDotAxpy(row, d, e, m, f);
          assert.equal(k.eigenDotAxpy(a, b, c, m, f), want, `dot, m ${m}`);
          assert.deepEqual(view(c), e, `e, m ${m}`);
          assert.deepEqual(view(a), row, `row unchanged, m ${m}`);

          fill();
          [row, e, d] = [view(a), view(b), view(c)];
          referenceEigenRank2(row, e, d, m, f, g);
          k.eigenRank2(a, b, c, m, f, g);
          assert.deepEqual(view(a), row, `rank 2, m ${m}`);

          fill();
          const [u, z] = [view(a), view(b)];
          referenceEigenReflect(u, z, m, g);
          k.eigenReflect(a, b, m, g);
          assert.deepEqual(view(b), z, `reflect, m ${m}`);
          assert.deepEqual(view(a), u, `u unchanged, m ${m}`);
        } finally {
          k.memory.free(base, 3 * slot + 16);
        }
      }
    }
  });

  it('eigen_reflect with h 1 and a unit u removes u from z (z·u is 0 after, within rounding), and leaves z alone where z·u is 0', () => {
    const k = kernels();
    const n = 33;
    const at = k.memory.alloc(2 * n * 8);
    try {
      const f64 = k.memory.f64();
      const u = Float64Array.from({ length: n }, (_, i) => Math.sin(i + 1));
      const norm = Math.hypot(...u);
      for (let i = 0; i < n; i++) f64[(at >> 3) + i] = u[i]! / norm;
      for (let i = 0; i < n; i++) f64[(at >> 3) + n + i] = Math.cos(3 * i);
      k.eigenReflect(at, at + n * 8, n, 1);
      const after = k.memory.f64();
      let dot = 0;
      for (let i = 0; i < n; i++) dot += after[(at >> 3) + i]! * after[(at >> 3) + n + i]!;
      assert.ok(Math.abs(dot) < 1e-14, `z·u ${dot}`);
      // e_1 and e_2: orthogonal, z unchanged bit for bit.
      after.fill(0, at >> 3, (at >> 3) + 2 * n);
      after[at >> 3] = 1;
      after[(at >> 3) + n + 1] = -0.5;
      k.eigenReflect(at, at + n * 8, n, 1);
      assert.deepEqual(Array.from(k.memory.f64().subarray((at >> 3) + n, (at >> 3) + 2 * n)), Array.from({ length: n }, (_, i) => (i === 1 ? -0.5 : 0)));
    } finally {
      k.memory.free(at, 2 * n * 8);
    }
  });
});
