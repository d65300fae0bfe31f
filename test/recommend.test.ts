import assert from 'node:assert/strict';
import { test } from 'node:test';
import { recommend, RECALL_FLOOR } from '../bench/recommend.js';
import type { StudyRow } from '../bench/study.js';

function row(label: string, bytesPerVector: number, recall10: number, kind: StudyRow['kind'] = 'memstore'): StudyRow {
  return {
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
