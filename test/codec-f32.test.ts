import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { f32Codec } from '../src/codec/f32.js';

describe('f32', () => {
  test('four bytes little-endian per dimension, scale 1', () => {
    const code = new Uint8Array(8);
    assert.equal(f32Codec.encode(new Float32Array([1, -2]), code), 1);
    assert.deepEqual([...code], [0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0]);
  });

  test('bit-exact identity on finite float32s, subnormals and -0 included', () => {
    const bits = new Uint32Array(4096);
    let seed = 12345;
    for (let i = 0; i < bits.length; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      // Keep the exponent off all-ones so every pattern is finite.
      bits[i] = (seed & 0x7f800000) === 0x7f800000 ? seed & 0xff7fffff : seed;
    }
    bits.set([0x00000000, 0x80000000, 0x00000001, 0x807fffff, 0x7f7fffff, 0xff7fffff]);
    const v = new Float32Array(bits.buffer);
    const code = new Uint8Array(v.length * 4);
    f32Codec.encode(v, code);
    const out = new Float32Array(v.length);
    f32Codec.decode(code, 1, out);
    assert.deepEqual(new Uint32Array(out.buffer), bits);
  });
});
