import { Buffer } from 'node:buffer';
import { types } from 'node:util';
import { MemstoreError } from './errors.js';

/** %TypedArray%.prototype, whose getters read a typed array's internal slots. */
const typedArrayPrototype = Object.getPrototypeOf(Float32Array.prototype) as object;

function intrinsicGetter<T>(name: 'length' | 'buffer' | 'byteOffset'): (this: unknown) => T {
  return Object.getOwnPropertyDescriptor(typedArrayPrototype, name)!.get! as (this: unknown) => T;
}

const lengthOf = intrinsicGetter<number>('length');
const bufferOf = intrinsicGetter<ArrayBufferLike>('buffer');
const byteOffsetOf = intrinsicGetter<number>('byteOffset');

/**
 * The bytes of a Float32Array, as a plain Uint8Array over the same memory, found through its
 * internal slots (as `new Float32Array(v)` in toVector() finds them): getters of a subclass, or own
 * properties named length, buffer or byteOffset, cannot make it read other bits than those a checked
 * copy would hold. Undefined for anything toVector() does not copy as a Float32Array (one of another
 * realm, which it refuses), for what only poses as one (a Proxy, an object whose prototype is
 * Float32Array's), and for an empty one (a detached buffer's length is 0). No copy: an exact cache
 * hit hashes and compares these bytes (sameBytes()), one view where a Float32Array view, the hash's
 * words and memcmp's two byte views had been four objects.
 */
export function float32Bytes(v: unknown): Uint8Array | undefined {
  // isFloat32Array first: it never throws, where instanceof runs a revoked Proxy's trap.
  if (!types.isFloat32Array(v) || !inherits(v)) return undefined;
  const length = lengthOf.call(v);
  if (length === 0) return undefined;
  return new Uint8Array(bufferOf.call(v), byteOffsetOf.call(v), 4 * length);
}

/**
 * Whether `v` is an instance of this realm's Float32Array; false where its prototype chain cannot be
 * walked (a Proxy in it whose trap throws, or a revoked one): the check that copies the query then
 * refuses it as INVALID_VECTOR (a hostile pass: the trap's own error had come out of search(), with
 * no code, the lookaside cache on).
 */
function inherits(v: object): boolean {
  try {
    return v instanceof Float32Array;
  } catch {
    return false;
  }
}

/** Whether two byte views hold the same bytes (memcmp; see sameBits()). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/**
 * a · b in float64. Four accumulators let the CPU overlap the additions (about twice as fast as one
 * running sum): s_j sums the dimensions i ≡ j (mod 4), tail included, and the result is
 * (s0 + s1) + (s2 + s3). The WebAssembly exact kernels (src/kernels/wat.ts, exactKernel) form the
 * same sums in the same order, so an exact score is the same number whichever computes it.
 */
export function dot(a: Float32Array, b: Float32Array): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const n = a.length;
  const end = n - (n % 4);
  let i = 0;
  for (; i < end; i += 4) {
    s0 += a[i]! * b[i]!;
    s1 += a[i + 1]! * b[i + 1]!;
    s2 += a[i + 2]! * b[i + 2]!;
    s3 += a[i + 3]! * b[i + 3]!;
  }
  if (i < n) s0 += a[i]! * b[i]!;
  if (i + 1 < n) s1 += a[i + 1]! * b[i + 1]!;
  if (i + 2 < n) s2 += a[i + 2]! * b[i + 2]!;
  return s0 + s1 + (s2 + s3);
}

export function norm(a: Float32Array): number {
  return Math.sqrt(dot(a, a));
}

/** ‖a − b‖² in float64, with the four accumulators of dot(), in its order. */
export function squaredDistance(a: Float32Array, b: Float32Array): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const n = a.length;
  const end = n - (n % 4);
  let i = 0;
  for (; i < end; i += 4) {
    const d0 = a[i]! - b[i]!;
    const d1 = a[i + 1]! - b[i + 1]!;
    const d2 = a[i + 2]! - b[i + 2]!;
    const d3 = a[i + 3]! - b[i + 3]!;
    s0 += d0 * d0;
    s1 += d1 * d1;
    s2 += d2 * d2;
    s3 += d3 * d3;
  }
  for (let j = 0; i < n; i++, j++) {
    const d = a[i]! - b[i]!;
    if (j === 0) s0 += d * d;
    else if (j === 1) s1 += d * d;
    else s2 += d * d;
  }
  return s0 + s1 + (s2 + s3);
}

/**
 * `c` within [-1, 1], where a cosine lies: rounding puts a vector's cosine with itself at
 * 1.0000000000000002, and a cosine estimated from codes further (Math.acos of one past 1 is NaN).
 */
export function clampCosine(c: number): number {
  return Math.min(1, Math.max(-1, c));
}

/**
 * The score of `x` against the query `q` under `metric` from full-precision vectors, the number
 * ExactScorer gives (float64): q · x; their cosine, 0 when either is zero, within [-1, 1]; or
 * −‖q − x‖.
 */
export function exactScore(metric: 'cosine' | 'dot' | 'l2', q: Float32Array, x: Float32Array): number {
  if (metric === 'l2') return 0 - Math.sqrt(squaredDistance(q, x));
  const d = dot(q, x);
  if (metric === 'dot') return d;
  const denominator = norm(q) * norm(x);
  return denominator === 0 ? 0 : clampCosine(d / denominator);
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
    out = new Float32Array(v);
  } else if (Array.isArray(v)) {
    // Its length read once: a Proxy whose length changed between two reads had been zero-filled past the second (a hostile pass).
    const n = v.length;
    out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
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
    if (!Number.isFinite(out[i]!)) {
      const given = Array.isArray(v) ? (v[i] as number) : out[i]!;
      throw new MemstoreError('INVALID_VECTOR', Number.isFinite(given) ? `${what}[${i}] is ${given}, past float32's largest (3.4028235e38)` : `${what}[${i}] is not finite`, { field: `${what}[${i}]` });
    }
  }
  return out;
}

/**
 * Whether two vectors hold the same bits, compared by the C library's memcmp: a JavaScript loop over
 * 32-bit words took 1.1 µs at 512-d (in a loop, this machine), memcmp 0.17 µs, and an exact cache hit
 * compares one remembered query in full, as a search does the query it encoded or routed last.
 */
export function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  return Buffer.compare(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), new Uint8Array(b.buffer, b.byteOffset, b.byteLength)) === 0;
}
