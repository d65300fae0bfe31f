import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { f16Codec, f16ToF32, f32BitsToF16, F16_MAX } from '../src/codec/f16.js';
import { isMemstoreError } from '../src/errors.js';
import { rng as mulberry32 } from '../src/random.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

function bitsOf(x: number): number {
  f32[0] = x;
  return u32[0]!;
}

function fromBits(b: number): number {
  u32[0] = b;
  return f32[0]!;
}

/** Encodes one float32 value through the bit-level encoder. */
function enc(x: number): number {
  return f32BitsToF16(bitsOf(x));
}

/** IEEE 754 binary16 value of h, written from the definition (independent of the implementation). */
function specValue(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 31) return m === 0 ? s * Infinity : NaN;
  if (e === 0) return s * m * 2 ** -24;
  return s * 2 ** (e - 15) * (1 + m / 1024);
}

const MAX_FINITE = 0x7bff;

// Values of the finite positive halves, indexed by code; the codes are monotonic in value.
const positive = new Float64Array(MAX_FINITE + 1);
for (let h = 0; h <= MAX_FINITE; h++) positive[h] = specValue(h);

/**
 * Reference by exhaustive search over every finite half: nearest value, ties to the even code,
 * sign of x kept. Searching finite values only is what makes saturation fall out.
 */
function nearestByExhaustiveSearch(x: number): number {
  // Beyond twice the largest half every candidate is below |x|, so clamping |x| there keeps the
  // answer and keeps the distances exact in double precision.
  const a = Math.min(Math.abs(x), 2 * 65504);
  let best = 0;
  let bestDist = Infinity;
  for (let h = 0; h <= MAX_FINITE; h++) {
    const d = Math.abs(a - positive[h]!);
    if (d < bestDist || (d === bestDist && (h & 1) === 0)) {
      best = h;
      bestDist = d;
    }
  }
  return (x < 0 || Object.is(x, -0) ? 0x8000 : 0) | best;
}

function hex(h: number): string {
  return '0x' + h.toString(16).padStart(4, '0');
}

describe('f16', () => {
  test('all 65536 codes decode per IEEE 754 binary16', () => {
    for (let h = 0; h < 65536; h++) {
      assert.ok(Object.is(f16ToF32(h), specValue(h)), `${hex(h)}: ${f16ToF32(h)} vs ${specValue(h)}`);
    }
    assert.equal(f16ToF32(0x7bff), F16_MAX);
    assert.equal(f16ToF32(0x3c00), 1);
    assert.equal(f16ToF32(0x0001), 2 ** -24);
    assert.equal(f16ToF32(0x0400), 2 ** -14);
  });

  test('every finite code round-trips through encode, -0 included', () => {
    for (let h = 0; h < 65536; h++) {
      if ((h & 0x7c00) === 0x7c00) continue;
      assert.equal(enc(f16ToF32(h)), h, hex(h));
    }
  });

  test('SIMD decode identity: ((h & 0x7fff) << 13) as float32 times 2^112 is the value, for every finite code', () => {
    let checked = 0;
    for (let h = 0; h < 65536; h++) {
      if ((h & 0x7c00) === 0x7c00) continue;
      const magnitude = Math.fround(fromBits((h & 0x7fff) << 13) * 2 ** 112);
      const v = h & 0x8000 ? -magnitude : magnitude;
      assert.ok(Object.is(v, specValue(h)), hex(h));
      checked++;
    }
    assert.equal(checked, 63488);
  });

  test('encode matches an exhaustive nearest-even search over all halves on sampled floats', () => {
    const rand = mulberry32(11);
    for (let i = 0; i < 1200; i++) {
      // Exponents from well below the smallest subnormal to past the largest finite value.
      const x = Math.fround((rand() < 0.5 ? -1 : 1) * 2 ** (-27 + rand() * 45));
      assert.equal(enc(x), nearestByExhaustiveSearch(x), `x = ${x}`);
    }
    for (let i = 0; i < 200; i++) {
      // Raw random bit patterns: any finite float32.
      const b = Math.floor(rand() * 2 ** 32);
      if ((b & 0x7f800000) === 0x7f800000) continue;
      const x = fromBits(b);
      assert.equal(enc(x), nearestByExhaustiveSearch(x), `x = ${x}`);
    }
  });

  test('midpoints around the subnormal/normal boundary, 1 and the top match the exhaustive search', () => {
    const ranges: [number, number][] = [[0, 24], [0x3f0, 0x410], [0x3bf0, 0x3c10], [0x7be0, MAX_FINITE]];
    for (const [from, to] of ranges) {
      for (let h = from; h < to; h++) {
        const mid = (positive[h]! + positive[h + 1]!) / 2;
        for (const x of [mid, fromBits(bitsOf(mid) + 1), fromBits(bitsOf(mid) - 1)]) {
          assert.equal(enc(x), nearestByExhaustiveSearch(x), `x = ${x}`);
          assert.equal(enc(-x), nearestByExhaustiveSearch(-x), `x = ${-x}`);
        }
      }
    }
  });

  test('every midpoint goes to the even code and one float32 ulp off goes to the nearer (no double rounding)', () => {
    for (let h = 0; h < MAX_FINITE; h++) {
      // Midpoints of adjacent halves have 12 significant bits, so they are exact float32s.
      const mid = (positive[h]! + positive[h + 1]!) / 2;
      const b = bitsOf(mid);
      assert.equal(fromBits(b), mid);
      const even = (h & 1) === 0 ? h : h + 1;
      assert.equal(enc(mid), even, `midpoint of ${hex(h)} and ${hex(h + 1)}`);
      assert.equal(enc(-mid), 0x8000 | even);
      assert.equal(enc(fromBits(b + 1)), h + 1);
      assert.equal(enc(fromBits(b - 1)), h);
      assert.equal(enc(-fromBits(b + 1)), 0x8000 | (h + 1));
      assert.equal(enc(-fromBits(b - 1)), 0x8000 | h);
    }
  });

  test('the classic double-rounding case rounds up', () => {
    // Rounding to 11 bits first would give exactly 1 + 2^-11, a tie that then goes down to 1.
    assert.equal(enc(1 + 2 ** -11 + 2 ** -23), 0x3c01);
    assert.equal(enc(1 + 2 ** -11), 0x3c00);
    assert.equal(enc(1 + 3 * 2 ** -11), 0x3c02);
  });

  test('subnormals', () => {
    assert.equal(enc(2 ** -24), 0x0001);
    assert.equal(enc(2 ** -25), 0x0000, '2^-25 is a tie between 0 and 2^-24: even is 0');
    assert.equal(enc(fromBits(bitsOf(2 ** -25) + 1)), 0x0001);
    assert.equal(enc(3 * 2 ** -25), 0x0002, 'tie between 1 and 2 steps: even is 2');
    assert.equal(enc(5 * 2 ** -25), 0x0002, 'tie between 2 and 3 steps: even is 2');
    assert.equal(enc(2 ** -14 - 2 ** -25), 0x0400, 'tie between 0x3ff and the smallest normal 0x400');
    assert.equal(enc(2 ** -14 - 2 ** -24), 0x03ff);
    assert.equal(enc(1e-45), 0x0000, 'float32 subnormals are far below half the smallest half');
    assert.equal(enc(-(2 ** -24)), 0x8001);
  });

  test('saturation: magnitudes from 65520 up give ±65504 where IEEE gives Inf', () => {
    assert.equal(enc(65504), MAX_FINITE);
    assert.equal(enc(65519.99), MAX_FINITE);
    for (const x of [65520, 65536, 1e10, 3.4028234663852886e38]) {
      assert.equal(enc(x), MAX_FINITE, `x = ${x}`);
      assert.equal(enc(-x), 0x8000 | MAX_FINITE, `x = ${-x}`);
    }
  });

  test('negative zero and negatives that round to zero encode to 0x8000 and decode to -0', () => {
    assert.equal(enc(-0), 0x8000);
    assert.equal(enc(-1e-10), 0x8000);
    assert.equal(enc(0), 0x0000);
    assert.ok(Object.is(f16ToF32(0x8000), -0));
    const out = new Float32Array(1);
    f16Codec.decode(new Uint8Array([0x00, 0x80]), 1, out);
    assert.ok(Object.is(out[0], -0));
  });

  test('non-finite input throws INVALID_VECTOR', () => {
    for (const x of [NaN, Infinity, -Infinity]) {
      assert.throws(() => enc(x), (e: unknown) => isMemstoreError(e, 'INVALID_VECTOR'));
    }
  });

  test('codec: two bytes little-endian per dimension, scale 1', () => {
    const v = new Float32Array([1, -2, 65504, 2 ** -24, -0]);
    const code = new Uint8Array(10);
    assert.equal(f16Codec.encode(v, code), 1);
    assert.deepEqual([...code], [0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00, 0x00, 0x80]);
    const out = new Float32Array(5);
    f16Codec.decode(code, 1, out);
    assert.deepEqual([...out], [1, -2, 65504, 2 ** -24, -0]);
    assert.ok(Object.is(out[4], -0));
  });
});
