import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { dotMean, fitCovariance, fitDual, fitPca, projectCentered, projectUncentered, reconstruct, type PcaModel } from '../src/pca/pca.js';
import type { PcaOption } from '../src/options.js';
import { MemStore } from '../src/index.js';
import { FlatIndex } from '../src/index/flat-index.js';
import { projectorOf } from '../src/pca/projector.js';
import { clustered, loadFixture, tempDir } from './helpers.js';
import { rng } from '../src/random.js';

const DIM = 24;
const rows = clustered(300, DIM, 11, 5);

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

test('components are orthonormal and ordered by decreasing variance', () => {
  const m = fitPca(rows, DIM, { dims: 10 });
  assert.equal(m.outDim, 10);
  const axis = (r: number) => m.components.subarray(r * DIM, (r + 1) * DIM);
  for (let a = 0; a < 10; a++) {
    for (let b = a; b < 10; b++) {
      assert.ok(Math.abs(dot(axis(a), axis(b)) - (a === b ? 1 : 0)) < 1e-4, `axes ${a},${b}`);
    }
  }
  const variances = Array.from({ length: 10 }, (_, r) => {
    const p = rows.map((x) => {
      const out = new Float32Array(10);
      projectCentered(m, x, out);
      return out[r]!;
    });
    return p.reduce((s, v) => s + v * v, 0) / (p.length - 1);
  });
  for (let r = 1; r < 10; r++) assert.ok(variances[r]! <= variances[r - 1]! * (1 + 1e-6), `variance of axis ${r}`);
  assert.ok(m.explainedVariance > 0 && m.explainedVariance < 1);
});

test('{ variance } keeps the fewest axes reaching the requested share', () => {
  const all = fitPca(rows, DIM, { dims: DIM });
  const m = fitPca(rows, DIM, { variance: 0.8 });
  assert.ok(m.explainedVariance >= 0.8);
  if (m.outDim > 1) {
    const fewer = fitPca(rows, DIM, { dims: m.outDim - 1 });
    assert.ok(fewer.explainedVariance < 0.8);
  }
  assert.ok(Math.abs(all.explainedVariance - 1) < 1e-9);
});

test('with every axis kept, q·x = q·μ + (Wq)·W(x − μ) and reconstruction is exact', () => {
  const m = fitPca(rows, DIM, { dims: DIM });
  const q = rows[3]!;
  const x = rows[200]!;
  const wq = new Float32Array(DIM);
  const wx = new Float32Array(DIM);
  projectUncentered(m, q, wq);
  projectCentered(m, x, wx);
  assert.ok(Math.abs(dot(q, x) - (dotMean(m, q) + dot(wq, wx))) < 1e-3 * Math.abs(dot(q, x)) + 1e-3);
  const back = new Float32Array(DIM);
  reconstruct(m, wx, back);
  for (let i = 0; i < DIM; i++) assert.ok(Math.abs(back[i]! - x[i]!) < 1e-4);
});

/** The sample's mean in float64, as fitPca() takes it. */
function meanOf(sample: readonly Float32Array[], dim: number): Float64Array {
  const mean = new Float64Array(dim);
  for (const row of sample) for (let i = 0; i < dim; i++) mean[i]! += row[i]!;
  for (let i = 0; i < dim; i++) mean[i]! /= sample.length;
  return mean;
}

function axisOf(m: PcaModel, r: number): Float32Array {
  return m.components.subarray(r * m.inDim, (r + 1) * m.inDim);
}

function assertOrthonormal(m: PcaModel, what: string): void {
  for (let a = 0; a < m.outDim; a++) {
    for (let b = a; b < m.outDim; b++) assert.ok(Math.abs(dot(axisOf(m, a), axisOf(m, b)) - (a === b ? 1 : 0)) < 1e-5, `${what}: axes ${a}, ${b}`);
  }
}

describe('fewer rows than dimensions: PCA from the Gram matrix', () => {
  // Rows of `rank` random directions with decaying weights (distinct eigenvalues), plus a shared offset.
  function lowRank(n: number, dim: number, rank: number, seed: number): Float32Array[] {
    const next = rng(seed);
    const basis = Array.from({ length: rank }, () => Float32Array.from({ length: dim }, () => next() * 2 - 1));
    return Array.from({ length: n }, () => {
      const row = Float32Array.from({ length: dim }, (_, i) => 0.3 * Math.sin(i));
      for (let k = 0; k < rank; k++) {
        const w = (next() * 2 - 1) / (k + 1);
        for (let i = 0; i < dim; i++) row[i]! += w * basis[k]![i]!;
      }
      return row;
    });
  }

  for (const [n, dim, rank, option] of [
    [20, 160, 19, { dims: 8 }],
    [20, 160, 19, { dims: 40 }],
    [12, 96, 12, { variance: 0.9 }],
    [12, 96, 11, { variance: 1 }],
    [10, 80, 3, { dims: 6 }],
  ] as const) {
    test(`${n} rows of ${dim} dimensions (rank ${rank}), ${JSON.stringify(option)}: the covariance's eigenvalues, axes and their order; past the rank, an orthonormal completion`, () => {
      const sample = lowRank(n, dim, rank, n * 1000 + dim + rank);
      const mean = meanOf(sample, dim);
      const dual = fitPca(sample, dim, option as PcaOption);
      assert.deepEqual(dual, fitDual(sample, mean, dim, option as PcaOption), 'fitPca takes the Gram matrix with at most 1/8 as many rows as dimensions');
      const cov = fitCovariance(sample, mean, dim, option as PcaOption);
      assert.equal(dual.outDim, cov.outDim);
      assert.ok(Math.abs(dual.explainedVariance - cov.explainedVariance) < 1e-9, `explained ${dual.explainedVariance} against ${cov.explainedVariance}`);
      assert.ok(Math.abs(dual.residualVariance! - cov.residualVariance!) < 1e-9 * (1 + cov.residualVariance!), `residual ${dual.residualVariance} against ${cov.residualVariance}`);
      assert.deepEqual(dual.mean, cov.mean);
      assertOrthonormal(dual, 'dual');
      const effective = Math.min(rank, n - 1);
      // Axes with variance are the covariance's (up to sign); the rest carry none of the sample.
      for (let r = 0; r < dual.outDim; r++) {
        if (r < effective) {
          assert.ok(Math.abs(Math.abs(dot(axisOf(dual, r), axisOf(cov, r))) - 1) < 1e-4, `axis ${r}: |cos| ${dot(axisOf(dual, r), axisOf(cov, r))}`);
        } else {
          for (const row of sample) {
            let s = 0;
            for (let i = 0; i < dim; i++) s += axisOf(dual, r)[i]! * (row[i]! - mean[i]!);
            assert.ok(Math.abs(s) < 1e-4, `axis ${r} past the rank holds ${s} of a row`);
          }
        }
      }
    });
  }

  test('more rows than an eighth of the dimensions: fitPca takes the covariance', () => {
    const sample = lowRank(21, 160, 21, 5);
    assert.deepEqual(fitPca(sample, 160, { dims: 8 }), fitCovariance(sample, meanOf(sample, 160), 160, { dims: 8 }));
  });

  test('one feature with 10¹² times the variance of the others (a hostile pass): the other axes are the covariance\'s, not a completion, and the residual variance is what the axes leave', () => {
    const D = 64;
    const N = 40;
    const next = rng(7);
    const sample = Array.from({ length: N }, (_, i) => {
      const v = Float32Array.from({ length: D }, () => next() - 0.5);
      v[0] = (i % 2 ? 1 : -1) * 1e6;
      return v;
    });
    const mean = meanOf(sample, D);
    const option = { dims: 8 };
    const dual = fitDual(sample, mean, D, option);
    const cov = fitCovariance(sample, mean, D, option);
    const captured = (m: PcaModel, r: number) => {
      let sum = 0;
      for (const row of sample) {
        let p = 0;
        for (let i = 0; i < D; i++) p += axisOf(m, r)[i]! * (row[i]! - mean[i]!);
        sum += p * p;
      }
      return sum / (N - 1);
    };
    assertOrthonormal(dual, 'dual');
    for (let r = 1; r < 8; r++) assert.ok(Math.abs(captured(dual, r) - captured(cov, r)) < 1e-3 * captured(cov, r), `axis ${r}: ${captured(dual, r)} against ${captured(cov, r)}`);
    assert.ok(Math.abs(dual.residualVariance! - cov.residualVariance!) < 1e-3 * cov.residualVariance!, `residual ${dual.residualVariance} against ${cov.residualVariance}`);
  });

  test('identical rows (no variance at all): the axes asked for are orthonormal, and explain all of it', () => {
    const sample = Array.from({ length: 5 }, () => Float32Array.from({ length: 40 }, (_, i) => Math.cos(i)));
    const m = fitPca(sample, 40, { dims: 7 });
    assert.equal(m.outDim, 7);
    assertOrthonormal(m, 'rank 0');
    assert.equal(m.explainedVariance, 1);
    assert.equal(m.residualVariance, 0);
  });

  test('past the dimensions the covariance can take in seconds: 40 rows of 2,100 dimensions keep 525 axes, orthonormal, as many rows as have variance found first', () => {
    const sample = lowRank(40, 2100, 40, 7);
    const m = fitPca(sample, 2100, { dims: 525 });
    assert.equal(m.outDim, 525);
    let worst = 0;
    for (let a = 0; a < 525; a += 13) for (let b = a; b < 525; b += 7) worst = Math.max(worst, Math.abs(dot(axisOf(m, a), axisOf(m, b)) - (a === b ? 1 : 0)));
    assert.ok(worst < 1e-5, `worst ${worst}`);
    assert.ok(Math.abs(m.explainedVariance - 1) < 1e-9);
  });
});

test('the projector holds the only copy of the axes: model() gives them back bit for bit, reconstruct() as the reference does', () => {
  const m = fitPca(rows, DIM, { dims: 7 });
  const p = projectorOf(m);
  try {
    assert.equal('components' in p.head, false);
    const back = p.model();
    assert.deepEqual(new Uint32Array(back.components.buffer), new Uint32Array(m.components.buffer));
    assert.deepEqual([back.inDim, back.outDim, back.explainedVariance], [m.inDim, m.outDim, m.explainedVariance]);
    const y = new Float32Array(7).map((_, i) => (i - 3) / 5);
    const want = new Float32Array(DIM);
    reconstruct(m, y, want);
    const got = new Float32Array(DIM);
    p.reconstruct(y, got);
    assert.deepEqual(got, want);
  } finally {
    p.free();
  }
});

test('the projection geometry is worth its recall: uncentered queries beat centered-and-renormalized ones', () => {
  // On real embeddings, reduce to 1/4 of the dims and rank by both geometries against exact cosine.
  const { docs, queries } = loadFixture();
  const m = fitPca(docs, 512, { dims: 64 });
  const stored = docs.map((x) => {
    const out = new Float32Array(64);
    projectCentered(m, x, out);
    return out;
  });
  const unit = (v: Float32Array) => {
    const n = Math.hypot(...v);
    return v.map((x) => x / n);
  };
  const storedUnit = stored.map(unit);
  let right = 0;
  let wrong = 0;
  for (const q of queries) {
    const truth = new Set(docs.map((x, i) => ({ i, s: dot(q, x) })).sort((a, b) => b.s - a.s).slice(0, 10).map((e) => e.i));
    const wq = new Float32Array(64);
    projectUncentered(m, q, wq);
    const cq = new Float32Array(64);
    projectCentered(m, q, cq);
    const cqu = unit(cq);
    const top = (scores: number[]) => scores.map((s, i) => ({ s, i })).sort((a, b) => b.s - a.s).slice(0, 10);
    right += top(stored.map((x) => dot(wq, x))).filter((e) => truth.has(e.i)).length;
    wrong += top(storedUnit.map((x) => dot(cqu, x))).filter((e) => truth.has(e.i)).length;
  }
  assert.ok(right > wrong, `uncentered ${right} vs centered+renormalized ${wrong}`);
});

test('a PCA store persists its model: reopened, it projects new vectors the same way', async () => {
  const dir = tempDir();
  const { docs, queries } = loadFixture();
  const store = await MemStore.open(dir, { dim: 512, pca: { variance: 0.9 }, trainSize: 300, cache: false, durability: 'none' });
  await store.add(docs.slice(0, 400).map((vector, i) => ({ id: `d${i}`, vector })));
  const s = store.stats();
  assert.equal(s.trained, true);
  assert.ok(s.storedDim < 512 && s.storedDim > 1);
  const before = await store.search(queries[0]!, { k: 5, rescore: false });
  await store.close();

  const again = await MemStore.open(dir, { cache: false });
  assert.equal(again.stats().storedDim, s.storedDim);
  assert.deepEqual((await again.search(queries[0]!, { k: 5, rescore: false })).map((h) => h.id), before.map((h) => h.id));
  await again.add(docs.slice(400, 500).map((vector, i) => ({ id: `d${400 + i}`, vector })));
  const self = await again.search(docs[450]!, { k: 1 });
  assert.equal(self[0]?.id, 'd450');
  await again.close();
});

test('PCA with trainSize 1 trains at the second vector, on the first two, without a failed try and its warning at the first; a reopened store trains the same', async () => {
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on('warning', onWarning);
  try {
    const vecs = clustered(6, 8, 3);
    const dir = tempDir();
    const store = await MemStore.open(dir, { dim: 8, pca: { dims: 4 }, trainSize: 1, cache: false });
    await store.add([{ id: 'a', vector: vecs[0]! }]);
    assert.equal(store.stats().trained, false, 'one vector has no variance to train on');
    await store.add([{ id: 'b', vector: vecs[1]! }]);
    assert.equal(store.stats().trained, true);
    await store.add(vecs.slice(2).map((vector, i) => ({ id: `c${i}`, vector })));
    const before = await store.search(vecs[5]!, { k: 3, rescore: false });
    await store.close();
    const again = await MemStore.open(dir);
    assert.deepEqual(await again.search(vecs[5]!, { k: 3, rescore: false }), before);
    await again.close();
    // Warnings are emitted on the next tick: let them come before counting.
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(warnings.map((w) => w.message), []);
  } finally {
    process.off('warning', onWarning);
  }
});

test('a store created without rescoring drops full vectors at training and returns reconstructions', async () => {
  const dir = tempDir();
  const { docs } = loadFixture();
  const store = await MemStore.open(dir, { dim: 512, pca: { dims: 128 }, trainSize: 200, rescore: false, cache: false, durability: 'none' });
  await store.add(docs.slice(0, 250).map((vector, i) => ({ id: `d${i}`, vector })));
  const rec = await store.get('d7');
  assert.ok(rec);
  assert.equal(rec.vector.length, 512);
  const x = docs[7]!;
  const cos = dot(rec.vector, x) / (Math.hypot(...rec.vector) * Math.hypot(...x));
  assert.ok(cos > 0.8 && cos < 0.99999, `reconstruction cosine ${cos}`);
  await store.close();
});

test('a training that fails midway releases no buffered vector: its retry leaves the arena counting what a training at once does', async (t) => {
  const data = clustered(80, DIM, 4, 21);
  const live = async (failAt: number | undefined) => {
    const dir = tempDir();
    const options = { dim: DIM, codec: 'int8', pca: { dims: 8 }, trainSize: 40, rescore: false, cache: false } as const;
    let store = await MemStore.open(dir, options);
    // Closed and reopened: the checkpoint puts the buffered vectors in the arena, where training releases them.
    await store.add(data.slice(0, 39).map((vector, i) => ({ id: `v${i}`, vector })));
    await store.close();
    store = await MemStore.open(dir, options);
    const put = FlatIndex.prototype.put;
    let calls = 0;
    const warnings: unknown[] = [];
    const onWarning = (w: unknown) => warnings.push(w);
    process.on('warning', onWarning);
    // The 40th vector's add makes the first put, and training's re-encoding loop the next 40.
    const spy = t.mock.method(FlatIndex.prototype, 'put', function (this: FlatIndex, ...args: Parameters<FlatIndex['put']>) {
      if (failAt !== undefined && ++calls === 1 + failAt) throw new Error('injected');
      return put.apply(this, args);
    });
    try {
      for (let i = 39; i < data.length; i++) await store.add([{ id: `v${i}`, vector: data[i]! }]);
    } finally {
      spy.mock.restore();
      await new Promise((r) => setImmediate(r));
      process.off('warning', onWarning);
    }
    assert.equal(store.stats().trained, true);
    // Unclamped (stats() clamps at 0): what the next checkpoint persists for the arena.
    const bytes = (store as unknown as { vectors: { countedLiveBytes: number } }).vectors.countedLiveBytes;
    await store.close();
    return { bytes, warnings: warnings.length };
  };
  const once = await live(undefined);
  const retried = await live(20);
  assert.equal(retried.warnings, 1, 'the injected failure was met, and warned of');
  assert.equal(once.warnings, 0);
  assert.equal(retried.bytes, once.bytes);
});

test('stats() counts the model: the mean and the projector, which holds the only copy of the axes', async () => {
  const dir = tempDir();
  const store = await MemStore.open(dir, { dim: DIM, codec: 'int8', pca: { dims: 8 }, trainSize: 40, cache: false });
  // Ranked by the dot product, as the projected store's kernels rank (a cosine store keeps its codes' norms too).
  const plain = await MemStore.open(tempDir(), { dim: 8, codec: 'int8', metric: 'dot', cache: false });
  try {
    const data = clustered(60, DIM, 4, 22);
    await store.add(data.map((vector, i) => ({ id: `v${i}`, vector })));
    await plain.add(data.map((vector, i) => ({ id: `v${i}`, vector: vector.subarray(0, 8) })));
    const s = store.stats();
    assert.equal(s.trained, true);
    // The mean, and the projector's rows (padded to 16 floats per row as the scan kernels take them,
    // though DIM is 24: 32) with its input and output.
    const model = DIM * 4 + (8 * 32 + 32 + 16) * 4;
    assert.equal(s.modelBytes, model);
    assert.equal(s.memoryBytes - plain.stats().memoryBytes, model);
    assert.ok(Math.abs(s.bytesPerVector - plain.stats().bytesPerVector - model / 60) < 1e-9);
  } finally {
    await store.close();
    await plain.close();
  }
});
