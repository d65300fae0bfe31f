import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SweepResult, SweepRow } from '../bench/index-sweep.js';
import { fastestWithin, recommend, RECALL_FLOOR } from '../bench/recommend.js';
import type { StudyRow } from '../bench/study.js';

function row(label: string, bytesPerVector: number, recall10: number, kind: StudyRow['kind'] = 'memstore', fixedBytes = 0): StudyRow {
  return {
    fixedBytes,
    vectors: 1000,
    kind,
    label,
    codec: 'int8',
    pca: 'none',
    storedDim: 512,
    rescore: true,
    bytesPerVector,
    codeBytesPerVector: bytesPerVector - 30,
    compression: 1,
    diskBytesPerVector: 2000,
    recall1: recall10,
    recall10,
    relativeLoss: 1 - recall10,
    qps: 1000,
    p50Us: 500,
    p99Us: 900,
    buildMs: 1,
    rescoredMean: 10,
    rescoredP99: 20,
    pareto: false,
    paretoCodesOnly: false,
  };
}

const rows = [row('small', 100, 0.9), row('middle', 200, 0.96), row('large', 600, 0.999), row('hnsw', 50, 1, 'hnsw-f32')];

test('the recommendation is the best recall that fits the budget; baselines are never recommended', () => {
  const r = recommend(rows, 1000 * 250, 1000, 10);
  assert.equal(r.row?.label, 'middle');
  assert.equal(r.belowFloor, false);
  assert.equal(r.smallestAboveFloor, undefined);
});

test(`a recommendation below recall ${RECALL_FLOOR} says so, and names the smallest configuration that reaches it`, () => {
  const r = recommend(rows, 1000 * 150, 1000, 10);
  assert.equal(r.row?.label, 'small');
  assert.equal(r.belowFloor, true);
  assert.equal(r.smallestAboveFloor?.label, 'middle');
  const none = recommend([row('small', 100, 0.9), row('other', 120, 0.8)], 1000 * 150, 1000, 10);
  assert.equal(none.belowFloor, true);
  assert.equal(none.smallestAboveFloor, undefined);
});

test('nothing fits: no recommendation', () => {
  const r = recommend(rows, 1000 * 10, 1000, 10);
  assert.equal(r.row, undefined);
  assert.equal(r.belowFloor, false);
});

function setting(config: string, nprobe: number, recall10: number, qps: number): SweepRow {
  return { kind: 'pages', config, label: `memstore ${config} pages, nprobe ${nprobe}`, effort: nprobe, recall10, qps, p50Us: 1e6 / qps, p99Us: 2e6 / qps };
}

test('fastestWithin: the most queries/s among the sweep\'s settings at or above the recall floor whose store fits the budget; none is said plainly', () => {
  const sweep: SweepResult = {
    stores: [
      { config: 'int8 pca=none', pages: 64, defaultProbes: 24, maxPage: 192, bytesPerVector: 600, fixedBytes: 0, vectors: 1000 },
      { config: 'int8 pca=128d', pages: 64, defaultProbes: 24, maxPage: 192, bytesPerVector: 200, fixedBytes: 0, vectors: 1000 },
      { config: 'rq1 pca=none', pages: 64, defaultProbes: 24, maxPage: 192, bytesPerVector: 120, fixedBytes: 0, vectors: 1000 },
    ],
    rows: [
      setting('int8 pca=none', 8, 0.97, 9000),
      setting('int8 pca=128d', 8, RECALL_FLOOR - 0.001, 8000),
      setting('int8 pca=128d', 16, RECALL_FLOOR, 5000),
      setting('int8 pca=128d', 32, 0.99, 3000),
      setting('rq1 pca=none', 32, 0.96, 4000),
      { kind: 'hnsw-f32', config: 'hnswlib-node', label: 'hnswlib-node HNSW f32, ef 64', effort: 64, recall10: 0.99, qps: 20000, p50Us: 50, p99Us: 90 },
    ],
  };
  // 1,000 vectors in 250 KB: 250 B each, so int8 without PCA (600 B) does not fit, whatever its speed.
  const got = fastestWithin(sweep, 250_000, 1000, 10);
  assert.equal(got.row?.config, 'int8 pca=128d');
  assert.equal(got.row?.effort, 16, 'the floor itself qualifies; just under it does not');
  assert.match(got.text, /int8 pca=128d, nprobe 16/);
  // 150 B each: only rq1 fits.
  assert.equal(fastestWithin(sweep, 150_000, 1000, 10).row?.config, 'rq1 pca=none');
  // 100 B each: nothing fits; hnswlib-node is never a candidate.
  const none = fastestWithin(sweep, 100_000, 1000, 10);
  assert.equal(none.row, undefined);
  assert.equal(fastestWithin(sweep, 1e12, 1000, 10).row?.config, 'int8 pca=none');
});

test('recommend: a model is a fixed cost, counted once whatever the count, not as its share per vector measured on a small set', () => {
  // Measured on 1,000 vectors: 300 B each, of which 200 B are a 200 KB model's share (100 B per vector beyond it).
  const rows = [row('rq1 pca=none', 300, 0.99, 'memstore', 200_000), row('int8 pca=none', 150, 0.98)];
  // At a million vectors the model is 0.2 B per vector: 100.2 MB against 150 MB.
  assert.equal(recommend(rows, 120e6, 1_000_000, 10).row?.label, 'rq1 pca=none');
  // At a thousand it is most of the store: 300 KB against 150 KB.
  assert.equal(recommend(rows, 200_000, 1000, 10).row?.label, 'int8 pca=none');
  assert.equal(recommend(rows, 299_999, 1000, 10).row?.label, 'int8 pca=none');
  assert.equal(recommend(rows, 300_000, 1000, 10).row?.label, 'rq1 pca=none');
});
