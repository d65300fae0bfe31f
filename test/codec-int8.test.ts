import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { int8Codec } from '../src/codec/int8.js';
import { rng as mulberry32 } from '../src/random.js';

/** Signed value of each code byte. */
function signedCodes(code: Uint8Array): number[] {
  return [...code].map((b) => (b << 24) >> 24);
}

/** round_half_even written from its definition, independent of the implementation's trick. */
function roundHalfEven(r: number): number {
  const f = Math.floor(r);
  const d = r - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

function encode(values: number[]): { s: number; codes: number[] } {
  const code = new Uint8Array(values.length).fill(0xaa);
  const s = int8Codec.encode(new Float32Array(values), code);
  return { s, codes: signedCodes(code) };
}

describe('int8', () => {
  test('ties go to even: with max 127 the scale is exactly 1', () => {
    const { s, codes } = encode([127, 2.5, 3.5, -2.5, -3.5, 0.5, -0.5, 1.5, -1.5, 126.5]);
    assert.equal(s, 1);
    assert.deepEqual(codes, [127, 2, 4, -2, -4, 0, 0, 2, -2, 126]);
  });

  test('scale is fround(max|x| / 127) and codes are round_half_even(x / s), within [-127, 127]', () => {
    const rand = mulberry32(21);
    const v = new Float32Array(512);
    const code = new Uint8Array(512);
    for (let round = 0; round < 50; round++) {
      const magnitude = 10 ** (rand() * 60 - 30);
      let max = 0;
      for (let i = 0; i < v.length; i++) {
        v[i] = (rand() - 0.5) * magnitude;
        max = Math.max(max, Math.abs(v[i]!));
      }
      const s = int8Codec.encode(v, code);
      assert.equal(s, Math.fround(max / 127));
      const codes = signedCodes(code);
      for (let i = 0; i < v.length; i++) {
        assert.equal(codes[i], roundHalfEven(v[i]! / s), `x = ${v[i]}, s = ${s}`);
        assert.ok(codes[i]! >= -127 && codes[i]! <= 127);
      }
      assert.ok(codes.some((c) => Math.abs(c) === 127), 'the largest magnitude maps to ±127');
    }
  });

  test('the exact quotient x / s is rounded: half-integers times a random scale go to even', () => {
    const rand = mulberry32(22);
    const v = new Float32Array(1 + 2 * 127);
    const code = new Uint8Array(v.length);
    for (let round = 0; round < 200; round++) {
      // 16 significant bits keep 127 * s and (k + 0.5) * s exact float32s.
      const s = (1 + Math.floor(rand() * 2 ** 15) * 2 ** -15) * 2 ** Math.floor(rand() * 40 - 20);
      v[0] = 127 * s;
      for (let k = 0; k < 127; k++) {
        v[1 + 2 * k] = (k + 0.5) * s;
        v[2 + 2 * k] = -(k + 0.5) * s;
      }
      assert.equal(int8Codec.encode(v, code), s);
      const codes = signedCodes(code);
      for (let k = 0; k < 127; k++) {
        const even = k % 2 === 0 ? k : k + 1;
        assert.equal(codes[1 + 2 * k], even, `s = ${s}, x / s = ${k + 0.5}`);
        assert.equal(codes[2 + 2 * k], even === 0 ? 0 : -even);
      }
    }
  });

  test('a negative maximum gives -127, never -128', () => {
    assert.deepEqual(encode([-5, 1]).codes, [-127, 25]);
    assert.deepEqual(encode([-3.4028234663852886e38, 3.4028234663852886e38]).codes, [-127, 127]);
  });

  test('the float32 maximum still decodes finite: its scale is lowered one float32 step', () => {
    const max = 3.4028234663852886e38;
    const rounded = Math.fround(max / 127);
    // The plain rule would overflow on decode, which is why the spec lowers s here.
    assert.equal(Math.fround(rounded * 127), Infinity);
    const { s, codes } = encode([max, -max, max / 2]);
    const below = new Float32Array([rounded]);
    new Uint32Array(below.buffer)[0]! -= 1;
    assert.equal(s, below[0]);
    assert.deepEqual(codes, [127, -127, 64]);
    const out = new Float32Array(3);
    int8Codec.decode(new Uint8Array([127, 0x81, 64]), s, out);
    assert.ok(out.every((x) => Number.isFinite(x)));
    assert.ok(Math.abs(out[0]! - max) <= s / 2);
  });

  test('a subnormal scale rounded far down clamps to ±127, never -128', () => {
    // max = 178 * 2^-149; max / 127 = 1.40 * 2^-149 rounds to s = 2^-149, so x / s = ±178.
    const tiny = 178 * 2 ** -149;
    const { s, codes } = encode([-tiny, tiny, 100 * 2 ** -149]);
    assert.equal(s, 2 ** -149);
    assert.deepEqual(codes, [-127, 127, 100]);
  });

  test('zero vector: scale 0, codes 0, decodes to +0 without dividing by zero', () => {
    for (const v of [[0, 0, 0, 0], [-0, 0, -0, -0]]) {
      const code = new Uint8Array(4).fill(0xaa);
      assert.equal(int8Codec.encode(new Float32Array(v), code), 0);
      assert.deepEqual([...code], [0, 0, 0, 0]);
      const out = new Float32Array(4).fill(9);
      int8Codec.decode(code, 0, out);
      for (const x of out) assert.ok(Object.is(x, 0));
    }
  });

  test('a vector whose scale underflows float32 is encoded like the zero vector', () => {
    const { s, codes } = encode([1e-45, -1e-45]);
    assert.equal(s, 0);
    assert.deepEqual(codes, [0, 0]);
  });

  test('negative zero and small negatives give code 0 and decode to +0', () => {
    const { s, codes } = encode([127, -0, -0.4]);
    assert.deepEqual(codes, [127, 0, 0]);
    const out = new Float32Array(3);
    int8Codec.decode(new Uint8Array([127, 0, 0]), s, out);
    assert.ok(Object.is(out[1], 0) && Object.is(out[2], 0));
  });

  test('decode is fround(s * c) with c the two\'s-complement byte', () => {
    const s = Math.fround(0.1);
    const code = new Uint8Array(256);
    for (let b = 0; b < 256; b++) code[b] = b;
    const out = new Float32Array(256);
    int8Codec.decode(code, s, out);
    for (let b = 0; b < 256; b++) {
      const c = b < 128 ? b : b - 256;
      assert.ok(Object.is(out[b], Math.fround(s * c)), `byte ${b}`);
    }
  });
});
