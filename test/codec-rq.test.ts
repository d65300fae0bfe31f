import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { rq1Codec, rq2Codec, rq4Codec, type RqCodec } from '../src/codec/index.js';
import { rqPlaneBytes } from '../src/kernels/contract.js';
import { referenceScanRq } from '../src/kernels/reference.js';
import { fitRotation, randomIsometry, rotatedDim, ROTATION_SEED } from '../src/space/rotation.js';
import { rng } from '../src/random.js';
import { modelMatrix } from './helpers.js';
import { projectorOf } from '../src/pca/projector.js';
import { RQ_BOUND_SIGMAS } from '../src/search/rescore-bound.js';

function gaussian(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

function randomVector(dim: number, rand: () => number, scale = 1): Float32Array {
  return Float32Array.from({ length: dim }, () => gaussian(rand) * scale);
}

function dot64(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

function levelOf(codec: RqCodec, code: Uint8Array, dim: number, i: number): number {
  const planeBytes = rqPlaneBytes(dim);
  let level = 0;
  for (let b = 0; b < codec.bits; b++) level |= ((code[b * planeBytes + (i >> 3)]! >> (i & 7)) & 1) << b;
  return level;
}

const CODECS: readonly RqCodec[] = [rq1Codec, rq2Codec, rq4Codec];

for (const codec of CODECS) {
  describe(`${codec.name} codes (CODECS.md, "rq1, rq2, rq4")`, () => {
    const m = ((1 << codec.bits) - 1) / 2;

    test('the layout: bit planes with dimension i at byte i >> 3, bit i & 7, then float32 ‖r‖² and ‖r − r̃‖; bits past the dimension are 0', () => {
      const rand = rng(11);
      for (const dim of [1, 7, 100, 128, 129, 512]) {
        const r = randomVector(dim, rand);
        const code = new Uint8Array(codec.codeBytes(dim));
        const scale = codec.encode(r, code);
        const planeBytes = rqPlaneBytes(dim);
        assert.equal(code.length, codec.bits * planeBytes + 8);
        const decoded = new Float32Array(dim);
        codec.decode(code, scale, decoded);
        for (let i = 0; i < dim; i++) assert.equal(decoded[i], Math.fround(scale * (levelOf(codec, code, dim, i) - m)));
        for (let b = 0; b < codec.bits; b++) {
          for (let i = dim; i < planeBytes * 8; i++) assert.equal((code[b * planeBytes + (i >> 3)]! >> (i & 7)) & 1, 0, `padding bit ${i} of plane ${b}`);
        }
        const view = new DataView(code.buffer);
        assert.equal(view.getFloat32(codec.bits * planeBytes, true), Math.fround(dot64(r, r)));
        assert.equal(codec.normSquared(code, dim), Math.fround(dot64(r, r)));
        const err = view.getFloat32(codec.bits * planeBytes + 4, true);
        assert.equal(codec.residualError(code, dim), err);
        let e = 0;
        for (let i = 0; i < dim; i++) e += (r[i]! - scale * (levelOf(codec, code, dim, i) - m)) ** 2;
        assert.ok(err >= Math.sqrt(e), `err ${err} below ‖r − r̃‖ ${Math.sqrt(e)}`);
        assert.ok(err <= Math.sqrt(e) * (1 + 2 ** -22) + 1e-30, 'err is ‖r − r̃‖ rounded up to float32, no more');
      }
    });

    test('the scale is fl32(‖r‖² / ⟨ŷ, r⟩), so the decoded vector scores its own vector exactly: ⟨r̃, r⟩ = ‖r‖²', () => {
      const rand = rng(12);
      for (let t = 0; t < 50; t++) {
        const dim = 1 + Math.floor(rand() * 300);
        const r = randomVector(dim, rand, 10 ** (rand() * 6 - 3));
        const code = new Uint8Array(codec.codeBytes(dim));
        const scale = codec.encode(r, code);
        let yr = 0;
        for (let i = 0; i < dim; i++) yr += (levelOf(codec, code, dim, i) - m) * r[i]!;
        assert.ok(yr > 0, '⟨ŷ, r⟩ > 0 for a non-zero vector');
        assert.equal(scale, Math.fround(dot64(r, r) / yr));
        const decoded = new Float32Array(dim);
        codec.decode(code, scale, decoded);
        assert.ok(Math.abs(dot64(decoded, r) - dot64(r, r)) <= 1e-5 * dot64(r, r));
      }
    });

    if (codec.bits === 1) test('one bit is the sign: level 1 exactly for a positive coordinate', () => {
      const r = Float32Array.from([0.5, -0.25, 0, -0, 3, -1e-30, 1e-30]);
      const code = new Uint8Array(codec.codeBytes(r.length));
      codec.encode(r, code);
      assert.deepEqual([...r].map((_, i) => levelOf(codec, code, r.length, i)), [1, 0, 0, 0, 1, 0, 1]);
    });

    test('the zero vector: scale 0, an all-zero code, decoded as zeros', () => {
      for (const dim of [1, 64, 300]) {
        const code = new Uint8Array(codec.codeBytes(dim)).fill(0xa5);
        assert.equal(codec.encode(new Float32Array(dim), code), 0);
        assert.ok(code.every((b) => b === 0));
        const out = new Float32Array(dim).fill(7);
        codec.decode(code, 0, out);
        assert.ok(out.every((x) => x === 0));
      }
    });

    if (codec.bits > 1) test('the searched grid points closer to r than the widest grid does (cosine of ŷ and r)', () => {
      const rand = rng(13);
      for (let t = 0; t < 20; t++) {
        const dim = 256;
        const r = randomVector(dim, rand);
        const code = new Uint8Array(codec.codeBytes(dim));
        codec.encode(r, code);
        const cosine = (levels: (i: number) => number) => {
          let d = 0;
          let n = 0;
          for (let i = 0; i < dim; i++) {
            const y = levels(i) - m;
            d += y * r[i]!;
            n += y * y;
          }
          return d / Math.sqrt(n * dot64(r, r));
        };
        const max = Math.max(...[...r].map(Math.abs));
        const widest = max / (m + 0.5);
        const searched = cosine((i) => levelOf(codec, code, dim, i));
        const plain = cosine((i) => Math.min(2 * m, Math.max(0, Math.round(r[i]! / widest + m))));
        assert.ok(searched >= plain - 1e-12, `searched ${searched} < widest grid ${plain}`);
      }
    });

    test('after the rotation the estimate is unbiased and within its bound for nearly every pair, at rotated dimensions that are powers of two and one that is not', () => {
      // The rotation the store draws (the structured one: no PCA), as the store applies it, on
      // vectors with a common mean removed (what the space hands the codec): dense ones, and spiky
      // ones (a few large coordinates), which a rotation must spread before they quantize well.
      for (const inner of [96, 300, 512]) {
        const projector = projectorOf(fitRotation([], inner, undefined));
        const D = projector.head.outDim;
        const rand = rng(14 + inner);
        const input = (t: number) => {
          const v = randomVector(inner, rand);
          if (t % 2 === 0) return v;
          return v.map((x, i) => (i % 37 === t % 37 ? 20 * x : 0.05 * x));
        };
        let bias = 0;
        let outside = 0;
        const pairs = 3000;
        const code = new Uint8Array(codec.codeBytes(D));
        for (let t = 0; t < pairs; t++) {
          const r = projector.uncentered(input(t));
          const q = projector.uncentered(randomVector(inner, rand));
          const scale = codec.encode(r, code);
          const decoded = new Float32Array(D);
          codec.decode(code, scale, decoded);
          const error = dot64(r, q) - dot64(decoded, q);
          bias += error / Math.sqrt(dot64(r, r) * dot64(q, q));
          const bound = (RQ_BOUND_SIGMAS * codec.residualError(code, D) * Math.sqrt(dot64(q, q))) / Math.sqrt(D - 1);
          if (Math.abs(error) > bound) outside++;
        }
        projector.free();
        // Mean relative error near zero (its standard error is about 0.4 / √3000 for one bit).
        assert.ok(Math.abs(bias / pairs) < 0.02, `${inner} → ${D}: mean relative error ${bias / pairs}`);
        // Three standard deviations: about 0.3% of pairs outside for a Gaussian.
        assert.ok(outside / pairs < 0.01, `${inner} → ${D}: ${outside} of ${pairs} pairs outside the bound`);
      }
    });

    test('the reference kernel scores a rotated code as ⟨r̃, q̂⟩ (dot) and −(‖q̂‖² + ‖r‖² − 2⟨r̃, q̂⟩) (l2)', () => {
      const rand = rng(15);
      const dim = 200;
      const planeBytes = rqPlaneBytes(dim);
      const stride = codec.codeBytes(dim);
      const n = 5;
      const codes = new Uint8Array(n * stride);
      const scales = new Float32Array(n);
      const rs = Array.from({ length: n }, () => randomVector(dim, rand));
      rs.forEach((r, j) => (scales[j] = codec.encode(r, codes.subarray(j * stride, (j + 1) * stride))));
      // A query of 4-bit levels: lo + delta · level.
      const qBits = 4;
      const lo = -1.5;
      const delta = 0.2;
      const levels = Array.from({ length: dim }, () => Math.floor(rand() * 16));
      const planes = new Uint8Array(qBits * planeBytes);
      levels.forEach((l, i) => {
        for (let c = 0; c < qBits; c++) if ((l >> c) & 1) planes[c * planeBytes + (i >> 3)]! |= 1 << (i & 7);
      });
      const qHat = levels.map((l) => Math.fround(lo + Math.fround(delta * l)));
      const corr = Math.fround(m * qHat.reduce((a, b) => a + b, 0));
      const qNormSq = Math.fround(dot64(qHat, qHat));
      for (const metric of ['dot', 'l2'] as const) {
        const out = new Float32Array(n);
        referenceScanRq(codec.bits, metric, planes, { qBits, delta, lo, corr, qNormSq }, codes, scales, n, planeBytes, stride, out);
        rs.forEach((r, j) => {
          const decoded = new Float32Array(dim);
          codec.decode(codes.subarray(j * stride), scales[j]!, decoded);
          const inner = dot64(decoded, qHat);
          const want = metric === 'dot' ? inner : -(qNormSq + dot64(r, r) - 2 * inner);
          assert.ok(Math.abs(out[j]! - want) <= 1e-4 * (Math.abs(want) + 1), `${metric} ${j}: ${out[j]} vs ${want}`);
        });
      }
    });
  });
}

describe('the rotation (src/space/rotation.ts)', () => {
  test('randomIsometry has orthonormal columns and is the same for the same seed', () => {
    for (const [rows, cols] of [
      [128, 100],
      [256, 256],
      [128, 1],
    ] as const) {
      const a = randomIsometry(rows, cols, ROTATION_SEED);
      const b = randomIsometry(rows, cols, ROTATION_SEED);
      assert.deepEqual(a, b);
      for (let i = 0; i < cols; i++) {
        for (let j = i; j < cols; j++) {
          let s = 0;
          for (let r = 0; r < rows; r++) s += a[r * cols + i]! * a[r * cols + j]!;
          assert.ok(Math.abs(s - (i === j ? 1 : 0)) < 1e-12, `column ${i} · column ${j} = ${s}`);
        }
      }
      assert.notDeepEqual(randomIsometry(rows, cols, ROTATION_SEED + 1), a);
    }
    assert.throws(() => randomIsometry(10, 11, 1), RangeError);
  });

  test('rotatedDim rounds up to a multiple of 128, so every plane bit is a dimension', () => {
    assert.deepEqual([1, 100, 128, 129, 384, 512].map(rotatedDim), [128, 128, 128, 256, 384, 512]);
  });

  test('fitRotation without PCA keeps inner products: q · x = q · μ + (Rq) · R(x − μ)', () => {
    const rand = rng(21);
    const dim = 40;
    const rows = Array.from({ length: 50 }, () => randomVector(dim, rand));
    const model = fitRotation(rows, dim, undefined);
    const components = modelMatrix(model);
    assert.equal(model.outDim, 128);
    for (let i = 0; i < dim; i++) assert.ok(Math.abs(model.mean[i]! - rows.reduce((a, r) => a + r[i]!, 0) / rows.length) < 1e-6);
    const project = (v: Float32Array, center: boolean) =>
      Array.from({ length: model.outDim }, (_, o) => {
        let s = 0;
        for (let i = 0; i < dim; i++) s += components[o * dim + i]! * (v[i]! - (center ? model.mean[i]! : 0));
        return s;
      });
    const x = randomVector(dim, rand);
    const q = randomVector(dim, rand);
    const exact = dot64(q, x);
    const viaRotation = dot64(q, model.mean) + dot64(project(q, false), project(x, true));
    assert.ok(Math.abs(exact - viaRotation) < 1e-4 * (1 + Math.abs(exact)), `${exact} vs ${viaRotation}`);
  });

  test('fitRotation with PCA composes the two: components = R · W over PCA output dimensions', () => {
    const rand = rng(22);
    const dim = 20;
    const outDim = 8;
    const w = new Float32Array(outDim * dim);
    for (let r = 0; r < outDim; r++) w[r * dim + r] = 1;
    const pca = { inDim: dim, outDim, mean: new Float32Array(dim).fill(0.5), components: w, explainedVariance: 0.7 };
    const model = fitRotation([randomVector(dim, rand)], dim, pca);
    const r = randomIsometry(128, outDim, ROTATION_SEED);
    assert.equal(model.outDim, 128);
    assert.equal(model.mean, pca.mean);
    assert.equal(model.explainedVariance, 0.7);
    for (let o = 0; o < 128; o++) {
      for (let i = 0; i < dim; i++) assert.equal(model.components[o * dim + i], Math.fround(i < outDim ? r[o * outDim + i]! : 0));
    }
  });
});
