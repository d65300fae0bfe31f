import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { getCodec, f16ToF32, type Codec, type CodecName } from '../src/codec/index.js';
import { fp8E4M3DecodeTable, fp8E5M2DecodeTable, FP8_E4M3_MAX, FP8_E5M2_MAX } from '../src/codec/fp8.js';
import { rng as mulberry32 } from '../src/random.js';

/**
 * Codec.codeError(code, scale, dim) bounds ‖x − decode(code)‖ for every x that encodes to the code
 * (CODECS.md, "Error bounds"), and, for f16 and fp8, is close to the largest such error.
 */

/** The grid of a floating-point code: the value of each magnitude code (sign bit clear), increasing. */
interface Grid {
  readonly name: CodecName;
  /** Largest finite magnitude code; f16 and fp8 codes are monotonic in value up to it. */
  readonly maxCode: number;
  readonly value: (magnitude: number) => number;
  /** The scale maps max|x| onto this (1 for f16, which has no scale). */
  readonly fmax: number;
  readonly signBit: number;
  readonly bytes: 1 | 2;
}

const GRIDS: readonly Grid[] = [
  { name: 'f16', maxCode: 0x7bff, value: f16ToF32, fmax: 1, signBit: 0x8000, bytes: 2 },
  { name: 'fp8-e4m3', maxCode: 0x7e, value: (m) => fp8E4M3DecodeTable[m]!, fmax: FP8_E4M3_MAX, signBit: 0x80, bytes: 1 },
  { name: 'fp8-e5m2', maxCode: 0x7b, value: (m) => fp8E5M2DecodeTable[m]!, fmax: FP8_E5M2_MAX, signBit: 0x80, bytes: 1 },
];

function codeAt(code: Uint8Array, i: number, bytes: 1 | 2): number {
  return bytes === 1 ? code[i]! : code[2 * i]! | (code[2 * i + 1]! << 8);
}

/** ‖x − y‖ in float64. */
function distance(x: Float32Array, y: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += (x[i]! - y[i]!) ** 2;
  return Math.sqrt(sum);
}

/** The gaps from magnitude code m to its neighbours on the grid (0 above the largest finite value). */
function gaps(g: Grid, m: number): { below: number; above: number } {
  const v = g.value(m);
  return { below: m === 0 ? g.value(1) : v - g.value(m - 1), above: m === g.maxCode ? 0 : g.value(m + 1) - v };
}

/**
 * A component for a vector whose largest magnitude is about `max`: anything in range, a value of
 * the grid, a midpoint between two (a tie), a hair inside or outside a rounding boundary, near the
 * saturating largest value (f16: past it), a float32 subnormal, or a zero of either sign.
 */
function component(g: Grid, max: number, random: () => number): number {
  const s = g.name === 'f16' ? 1 : Math.fround(max / g.fmax);
  const sign = random() < 0.5 ? -1 : 1;
  const top = g.name === 'f16' ? Math.min(g.maxCode, 0x7bfe) : g.maxCode;
  const m = Math.floor(random() * (top + 1));
  const v = g.value(m);
  const { below, above } = gaps(g, m);
  switch (Math.floor(random() * 9)) {
    case 0:
      return sign * v * s;
    case 1:
      return sign * (v + above / 2) * s;
    case 2:
      return sign * (v + (above / 2) * (1 - 2 ** -20)) * s;
    case 3:
      return sign * (v - (below / 2) * (1 + 2 ** -20)) * s;
    case 4:
      if (g.name !== 'f16') return sign * max * (1 - random() * 2 ** -22);
      return sign * (random() < 0.02 ? 65488 + random() * 64 : g.value(0x7bfe) + random() * 16);
    case 5:
      return sign * random() * 2 ** -126;
    case 6:
      return random() < 0.5 ? 0 : -0;
    default:
      return sign * random() * max;
  }
}

describe('codec error bounds', () => {
  for (const name of ['f32', 'int8', 'f16', 'fp8-e4m3', 'fp8-e5m2'] as const) {
    test(`${name}: no vector is further from its decoded code than codeError (binade edges, ties, saturation, subnormals, -0, scales 1e-40 to 3e38)`, () => {
      const codec = getCodec(name);
      const g = GRIDS.find((x) => x.name === name) ?? GRIDS[1]!;
      const random = mulberry32(name.length * 7919);
      const maxima = [1e-40, 1e-36, 1e-20, 1e-3, 0.7, 1, 448, 1e3, 65504, 1e20, 3e38];
      let bounded = 0;
      for (let run = 0; run < 3000; run++) {
        const dim = 1 + Math.floor(random() * 80);
        const max = maxima[run % maxima.length]!;
        const x = Float32Array.from({ length: dim }, () => component(g, max, random));
        x[Math.floor(random() * dim)] = random() < 0.5 ? max : -max;
        const code = new Uint8Array(codec.codeBytes(dim));
        const scale = codec.encode(x, code);
        const decoded = new Float32Array(dim);
        codec.decode(code, scale, decoded);
        const bound = codec.codeError(code, scale, dim);
        assert.ok(!Number.isNaN(bound), `${name}: NaN bound`);
        if (bound < Infinity) bounded++;
        const err = distance(x, decoded);
        assert.ok(err <= bound, `${name} dim ${dim} max ${max}: ‖x − x̃‖ = ${err} > ${bound}`);
        if (name === 'fp8-e4m3' || name === 'fp8-e5m2') {
          // The kernels score the unrounded s · value(code): the bound covers it too.
          const exact = Array.from({ length: dim }, (_, i) => scale * g.value(code[i]! & 0x7f) * (code[i]! & 0x80 ? -1 : 1));
          assert.ok(distance(x, exact) <= bound, `${name} dim ${dim} max ${max}: unrounded`);
        }
      }
      // f16 gives up only on codes of ±65504, whatever was clamped there; int8 on zero and subnormal scales.
      assert.ok(bounded > 1500, `${name}: ${bounded} of 3000 bounded`);
    });
  }

  for (const g of GRIDS) {
    test(`${g.name}: codeError is within 10% of the error of a vector built to encode to the same code at the far edge of each component's rounding interval`, () => {
      const codec = getCodec(g.name);
      const random = mulberry32(g.maxCode);
      for (const dim of [16, 64, 512]) {
        for (const max of [1e-3, 1, 300]) {
          for (let run = 0; run < 20; run++) {
            const x = new Float32Array(dim);
            let argmax = 0;
            for (let i = 0; i < dim; i++) {
              const u = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
              x[i] = u * max;
              if (Math.abs(x[i]!) > Math.abs(x[argmax]!)) argmax = i;
            }
            const code = new Uint8Array(codec.codeBytes(dim));
            const scale = codec.encode(x, code);
            const bound = codec.codeError(code, scale, dim);
            const s = g.name === 'f16' ? 1 : scale;
            // Each component moved to the far edge of the larger gap around its value, a hair inside
            // so it still rounds there; the largest stays put so the scale does not change.
            const worst = Float32Array.from(x, (xi, i) => {
              if (g.name !== 'f16' && i === argmax) return xi;
              const c = codeAt(code, i, g.bytes);
              const m = c & ~g.signBit;
              const { below, above } = gaps(g, m);
              const edge = above >= below ? g.value(m) + (above / 2) * (1 - 2 ** -8) : g.value(m) - (below / 2) * (1 - 2 ** -8);
              return Math.fround(s * edge * (c & g.signBit ? -1 : 1));
            });
            const again = new Uint8Array(code.length);
            assert.equal(codec.encode(worst, again), scale, 'the same scale');
            assert.deepEqual(again, code, 'the same code');
            const decoded = new Float32Array(dim);
            codec.decode(code, scale, decoded);
            const err = distance(worst, decoded);
            assert.ok(err <= bound, `${g.name}: ${err} > ${bound}`);
            assert.ok(bound <= 1.1 * err, `${g.name} dim ${dim} max ${max}: bound ${bound} against a reachable ${err}`);
          }
        }
      }
    });
  }

  test('codeError is 0 for f32, never NaN for damaged bytes or scales, and Infinity for the rq codes (their bound is probabilistic, elsewhere)', () => {
    const dim = 8;
    const x = Float32Array.from({ length: dim }, (_, i) => i - 3.5);
    const f32 = getCodec('f32');
    const f32Code = new Uint8Array(f32.codeBytes(dim));
    assert.equal(f32.codeError(f32Code, f32.encode(x, f32Code), dim), 0);
    for (const name of ['int8', 'f16', 'fp8-e4m3', 'fp8-e5m2'] as const) {
      const codec: Codec = getCodec(name);
      for (const fill of [0x00, 0x7f, 0x80, 0xff, 0x7c]) {
        for (const scale of [0, 1, NaN, Infinity, -1]) {
          const bound = codec.codeError(new Uint8Array(codec.codeBytes(dim)).fill(fill), scale, dim);
          assert.ok(bound >= 0, `${name} ${fill} ${scale}: ${bound}`);
        }
      }
    }
    for (const name of ['rq1', 'rq2', 'rq4'] as const) {
      const codec = getCodec(name);
      const code = new Uint8Array(codec.codeBytes(128));
      assert.equal(codec.codeError(code, codec.encode(new Float32Array(128).fill(1), code), 128), Infinity);
    }
  });
});
