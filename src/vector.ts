import { MemstoreError } from './errors.js';

export function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

export function norm(a: Float32Array): number {
  return Math.sqrt(dot(a, a));
}

export function squaredDistance(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    s += d * d;
  }
  return s;
}

/** A unit-length copy of `v`; the zero vector stays zero (its cosine with anything is 0). */
export function normalized(v: Float32Array): Float32Array {
  const n = norm(v);
  const out = new Float32Array(v.length);
  if (n === 0) return out;
  for (let i = 0; i < v.length; i++) out[i] = v[i]! / n;
  return out;
}

/**
 * Checks that `v` is a Float32Array or number[] of `dim` finite numbers and returns it as a fresh
 * Float32Array (the caller's array may change after the call returns).
 */
export function toVector(v: unknown, dim: number, what: string): Float32Array {
  let out: Float32Array;
  if (v instanceof Float32Array) {
    out = Float32Array.from(v);
  } else if (Array.isArray(v)) {
    out = new Float32Array(v.length);
    for (let i = 0; i < v.length; i++) {
      const x: unknown = v[i];
      if (typeof x !== 'number') throw new MemstoreError('INVALID_VECTOR', `${what}[${i}] is not a number`, { field: `${what}[${i}]` });
      out[i] = x;
    }
  } else {
    throw new MemstoreError('INVALID_VECTOR', `${what} must be a Float32Array or number[]`, { field: what });
  }
  if (out.length !== dim) {
    throw new MemstoreError('DIM_MISMATCH', `${what} has ${out.length} dimensions, the store has ${dim}`, { field: what });
  }
  for (let i = 0; i < out.length; i++) {
    // A finite double can still overflow float32 to ±Infinity on conversion; both are rejected.
    if (!Number.isFinite(out[i]!)) throw new MemstoreError('INVALID_VECTOR', `${what}[${i}] is not finite`, { field: `${what}[${i}]` });
  }
  return out;
}
