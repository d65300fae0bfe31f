import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { loadFixture } from './helpers.js';
import fc from 'fast-check';
import { f16Codec } from '../src/codec/f16.js';
import { int8Codec } from '../src/codec/int8.js';
import { fp8E4M3Codec, fp8E4M3DecodeTable, fp8E5M2Codec, fp8E5M2DecodeTable } from '../src/codec/fp8.js';
import type { Codec } from '../src/codec/codec.js';

const MIN_NORMAL_F32 = 2 ** -126;
// Norms are summed in double precision; this covers their rounding and nothing else.
const NORM_SLACK = 1 + 1e-9;

interface ScaledSpec {
  readonly codec: Codec;
  /** K in s = fround(max|x| / K). */
  readonly k: number;
  readonly value: (byte: number) => number;
  readonly validCode: (byte: number) => boolean;
  /**
   * The format's bound on |x - s * value| for one element, in exact arithmetic, given q = x / s;
   * and the parameters of the vector bound ||e|| <= rel * ||x|| + s * abs * sqrt(d).
   */
  readonly elementBound: (q: number) => number;
  readonly rel: number;
  readonly abs: number;
  /** Bound relative to |x| for elements in the normal range, or 0 if the codec has none. */
  readonly normalRel: number;
  readonly minNormal: number;
}

const f64 = new Float64Array(1);
const words = new Uint32Array(f64.buffer);
const HIGH = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0;

/** floor(log2(a)) for a positive normal double, read from its exponent bits (Math.log2 can misround). */
function exponentOf(a: number): number {
  f64[0] = a;
  return ((words[HIGH]! >>> 20) & 0x7ff) - 1023;
}

function fp8Spec(codec: Codec, table: Float32Array, k: number, mantissaBits: number, minNormalExp: number, isSpecial: (c: number) => boolean): ScaledSpec {
  return {
    codec,
    k,
    value: (b) => table[b]!,
    validCode: (b) => !isSpecial(b & 0x7f),
    // Half the spacing in q's binade; below the normal range the spacing is that of the subnormals.
    elementBound: (q) => {
      const a = Math.abs(q);
      const e = a >= 2 ** minNormalExp ? exponentOf(a) : minNormalExp;
      return 2 ** (e - mantissaBits - 1);
    },
    rel: 2 ** -(mantissaBits + 1),
    abs: 2 ** (minNormalExp - mantissaBits - 1),
    normalRel: 2 ** -(mantissaBits + 1),
    minNormal: 2 ** minNormalExp,
  };
}

const SCALED: readonly ScaledSpec[] = [
  {
    codec: int8Codec,
    k: 127,
    value: (b) => (b << 24) >> 24,
    validCode: (b) => b !== 0x80,
    elementBound: () => 0.5,
    rel: 0,
    abs: 0.5,
    normalRel: 0,
    minNormal: Infinity,
  },
  fp8Spec(fp8E4M3Codec, fp8E4M3DecodeTable, 448, 3, -6, (m) => m === 0x7f),
  fp8Spec(fp8E5M2Codec, fp8E5M2DecodeTable, 57344, 2, -14, (m) => m >= 0x7c),
];

function norm(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}

function maxAbs(v: Float32Array): number {
  let m = 0;
  for (const x of v) m = Math.max(m, Math.abs(x));
  return m;
}

/** fround(max / k), lowered one float32 step if decoding k * s would overflow (see CODECS.md). */
function expectedScale(max: number, k: number): number {
  const s = new Float32Array([max / k]);
  if (Math.fround(s[0]! * k) === Infinity) new Uint32Array(s.buffer)[0]! -= 1;
  return s[0]!;
}

/**
 * Checks one vector against a scaled codec's contract and returns ||x - x'|| / ||x|| (NaN when
 * the bounds do not apply: a zero or subnormal scale).
 */
function checkScaled(spec: ScaledSpec, x: Float32Array): number {
  const d = x.length;
  const code = new Uint8Array(d);
  const s = spec.codec.encode(x, code);
  assert.equal(s, expectedScale(maxAbs(x), spec.k));
  const out = new Float32Array(d);
  spec.codec.decode(code, s, out);
  for (let i = 0; i < d; i++) {
    assert.ok(spec.validCode(code[i]!), `code 0x${code[i]!.toString(16)} must never be emitted`);
    if (s === 0) assert.equal(code[i], 0);
    // Decoding is one float32 rounding of the exact product, and never overflows.
    assert.ok(Object.is(out[i], Math.fround(s * spec.value(code[i]!))));
    assert.ok(Number.isFinite(out[i]));
  }
  if (s < MIN_NORMAL_F32) return NaN;

  const err = new Float64Array(d);
  for (let i = 0; i < d; i++) {
    const xi = x[i]!;
    // Both terms have few enough significant bits that this difference is exact in double.
    err[i] = Math.abs(xi - s * spec.value(code[i]!));
    const q = xi / s;
    assert.ok(err[i]! <= s * spec.elementBound(q), `x = ${xi}, s = ${s}: error ${err[i]} > ${s * spec.elementBound(q)}`);
    if (Math.abs(q) >= spec.minNormal) assert.ok(err[i]! <= spec.normalRel * Math.abs(xi) * (1 + 2 ** -52));
  }
  const nx = norm(x);
  const b = (spec.rel * (1 + 2 ** -52) * nx + s * spec.abs * Math.sqrt(d)) * NORM_SLACK;
  assert.ok(norm(err) <= b);
  const diff = new Float64Array(d);
  for (let i = 0; i < d; i++) diff[i] = x[i]! - out[i]!;
  const rel = norm(diff) / nx;
  // Plus the float32 rounding of each decoded element: at most 2^-24 of ||s * value|| <= ||x|| + b.
  assert.ok(rel <= ((b + 2 ** -24 * (nx + b)) / nx) * NORM_SLACK, `relative error ${rel}`);
  return rel;
}

/** Half the f16 spacing at |x| (|x| < 65520), from the float32 exponent; exact. */
function f16HalfSpacing(x: number): number {
  const a = Math.abs(x);
  const e = a >= 2 ** -14 ? exponentOf(a) : -14;
  return 2 ** (e - 11);
}

/** Checks one vector against f16's contract and returns ||x - x'|| / ||x||. */
function checkF16(x: Float32Array): number {
  const d = x.length;
  const code = new Uint8Array(2 * d);
  assert.equal(f16Codec.encode(x, code), 1);
  const out = new Float32Array(d);
  f16Codec.decode(code, 1, out);
  const diff = new Float64Array(d);
  let saturated = false;
  for (let i = 0; i < d; i++) {
    const h = code[2 * i]! | (code[2 * i + 1]! << 8);
    assert.notEqual(h & 0x7c00, 0x7c00, 'no Inf/NaN codes');
    const xi = x[i]!;
    diff[i] = xi - out[i]!;
    if (Math.abs(xi) >= 65520) {
      saturated = true;
      assert.equal(out[i], Math.sign(xi) * 65504);
    } else {
      assert.ok(Math.abs(diff[i]!) <= f16HalfSpacing(xi), `x = ${xi} decoded ${out[i]}`);
      if (Math.abs(xi) >= 2 ** -14) assert.ok(Math.abs(diff[i]!) <= 2 ** -11 * Math.abs(xi));
    }
  }
  const nx = norm(x);
  if (saturated || nx === 0) return NaN;
  const rel = norm(diff) / nx;
  assert.ok(rel <= ((2 ** -11 * nx + 2 ** -25 * Math.sqrt(d)) / nx) * NORM_SLACK, `relative error ${rel}`);
  return rel;
}

const anyFinite = fc.float32Array({ noNaN: true, noDefaultInfinity: true, minLength: 1, maxLength: 64 });
// Embedding-like: similar magnitudes, one common power-of-two scale from tiny to huge.
const wellScaled = fc
  .tuple(fc.array(fc.float({ min: -1, max: 1, noNaN: true }), { minLength: 1, maxLength: 64 }), fc.integer({ min: -100, max: 100 }))
  .map(([xs, e]) => Float32Array.from(xs, (v) => v * 2 ** e));
const vectors = fc.oneof(anyFinite, wellScaled);

/** The first 200 rows of the shipped real embedding set. */
function readFixture(): Float32Array[] {
  return loadFixture().docs.slice(0, 200);
}

describe('codec properties', () => {
  for (const spec of SCALED) {
    test(`${spec.codec.name}: random vectors meet the element and vector error bounds`, () => {
      fc.assert(
        fc.property(vectors, (x) => {
          checkScaled(spec, x);
        }),
        { numRuns: 300 },
      );
    });
  }

  test('f16: random vectors meet the element and vector error bounds, and saturate', () => {
    fc.assert(
      fc.property(vectors, (x) => {
        checkF16(x);
      }),
      { numRuns: 300 },
    );
  });

  test('real embeddings (WordNet glosses, USE 512-d) stay within the bounds', (t) => {
    const rows = readFixture();
    assert.equal(rows.length, 200);
    const report = (name: string, errs: number[]): void => {
      const mean = errs.reduce((a, b) => a + b, 0) / errs.length;
      t.diagnostic(`${name}: relative error mean ${mean.toExponential(3)}, max ${Math.max(...errs).toExponential(3)}`);
    };
    for (const spec of SCALED) {
      const errs = rows.map((x) => checkScaled(spec, x));
      assert.ok(errs.every((e) => Number.isFinite(e) && e > 0));
      report(spec.codec.name, errs);
    }
    const errs = rows.map(checkF16);
    assert.ok(errs.every((e) => Number.isFinite(e) && e > 0));
    report('f16', errs);
  });
});
