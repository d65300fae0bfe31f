import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { CODEC_NAMES, getCodec, isRqCodec, type CodecName } from '../src/codec/index.js';
import { isMemstoreError } from '../src/errors.js';

/** Code bytes of a 9-dimensional vector, on disk and in the scan's memory (padded to what the kernels read per step). */
const EXPECTED: Record<CodecName, { code: number; stride: number; scaled: boolean }> = {
  f32: { code: 36, stride: 64, scaled: false },
  f16: { code: 18, stride: 32, scaled: false },
  int8: { code: 9, stride: 16, scaled: true },
  'fp8-e4m3': { code: 9, stride: 16, scaled: true },
  'fp8-e5m2': { code: 9, stride: 16, scaled: true },
  // One 16-byte plane per bit (128 dimensions), then float32 ‖r‖² and ‖r − r̃‖.
  rq1: { code: 24, stride: 24, scaled: true },
  rq2: { code: 40, stride: 40, scaled: true },
  rq4: { code: 72, stride: 72, scaled: true },
};

const SAMPLE = new Float32Array([0.25, -1.5, 3, 0, -0.001, 7.75, -6, 0.5, 1e-3]);

describe('all codecs', () => {
  test('getCodec returns each named codec with the documented shape', () => {
    for (const name of CODEC_NAMES) {
      const c = getCodec(name);
      assert.equal(c.name, name);
      assert.equal(c.codeBytes(9), EXPECTED[name].code);
      assert.equal(c.strideBytes(9), EXPECTED[name].stride);
      assert.equal(c.scaled, EXPECTED[name].scaled);
    }
  });

  test('getCodec rejects unknown names, including Object.prototype keys', () => {
    for (const name of ['f64', 'toString', '']) {
      assert.throws(() => getCodec(name as CodecName), (e: unknown) => isMemstoreError(e, 'INVALID_OPTION'));
    }
  });

  for (const name of CODEC_NAMES) {
    describe(name, () => {
      const codec = getCodec(name);
      const bytes = codec.codeBytes(SAMPLE.length);

      test('encodes into a view at an odd byte offset without touching bytes outside it', () => {
        const aligned = new Uint8Array(bytes);
        const scale = codec.encode(SAMPLE, aligned);
        const backing = new Uint8Array(bytes + 6).fill(0x5a);
        const view = backing.subarray(3, 3 + bytes);
        assert.equal(codec.encode(SAMPLE, view), scale);
        assert.deepEqual(view, aligned);
        assert.deepEqual([...backing.subarray(0, 3), ...backing.subarray(3 + bytes)], new Array<number>(6).fill(0x5a));
        const a = new Float32Array(SAMPLE.length);
        const b = new Float32Array(SAMPLE.length);
        codec.decode(aligned, scale, a);
        codec.decode(view, scale, b);
        assert.deepEqual(b, a);
      });

      test('scaled codecs return a float32 scale; unscaled ones return 1', () => {
        const scale = codec.encode(SAMPLE, new Uint8Array(bytes));
        if (codec.scaled) assert.equal(scale, Math.fround(scale));
        else assert.equal(scale, 1);
      });

      test('NaN or ±Inf anywhere throws INVALID_VECTOR and leaves the output untouched', () => {
        for (const bad of [NaN, Infinity, -Infinity]) {
          for (const at of [0, 4, SAMPLE.length - 1]) {
            const v = Float32Array.from(SAMPLE);
            v[at] = bad;
            const out = new Uint8Array(bytes).fill(0x5a);
            assert.throws(() => codec.encode(v, out), (e: unknown) => isMemstoreError(e, 'INVALID_VECTOR'));
            assert.ok(out.every((b) => b === 0x5a), `${bad} at ${at} wrote to the output`);
          }
        }
      });

      test('too small an output or input buffer throws INVALID_ARGUMENT', () => {
        assert.throws(() => codec.encode(SAMPLE, new Uint8Array(bytes - 1)), (e: unknown) => isMemstoreError(e, 'INVALID_ARGUMENT'));
        assert.throws(
          () => codec.decode(new Uint8Array(bytes - 1), 1, new Float32Array(SAMPLE.length)),
          (e: unknown) => isMemstoreError(e, 'INVALID_ARGUMENT'),
        );
      });

      // rq levels are symmetric about zero (level 0 is −m): their padding is left out by the kernels' sums instead (codec-rq.test.ts).
      if (!isRqCodec(name)) test('an all-zero code decodes to zeros whatever the scale (zero padding is inert)', () => {
        const out = new Float32Array(16).fill(3);
        codec.decode(new Uint8Array(codec.codeBytes(16)), 0.75, out);
        assert.ok(out.every((x) => x === 0));
      });

      test('the empty vector encodes to nothing', () => {
        const s = codec.encode(new Float32Array(0), new Uint8Array(codec.codeBytes(0)));
        assert.equal(s, codec.scaled ? 0 : 1);
      });
    });
  }
});
