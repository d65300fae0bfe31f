import assert from 'node:assert/strict';
import { test } from 'node:test';
import { equalRecallLine, qpsAtRecall } from '../bench/equal-recall.js';

test('qpsAtRecall: linear between the two points that bracket the recall, exact at a point, none outside the sweep', () => {
  const sweep = [
    { recall: 0.95, qps: 3000 },
    { recall: 0.9, qps: 4000 },
    { recall: 0.99, qps: 1000 },
  ];
  assert.equal(qpsAtRecall(sweep, 0.9), 4000);
  assert.equal(qpsAtRecall(sweep, 0.99), 1000);
  assert.ok(Math.abs(qpsAtRecall(sweep, 0.925)! - 3500) < 1e-9);
  assert.ok(Math.abs(qpsAtRecall(sweep, 0.97)! - 2000) < 1e-9);
  assert.equal(qpsAtRecall(sweep, 0.89), undefined);
  assert.equal(qpsAtRecall(sweep, 0.995), undefined);
  assert.equal(qpsAtRecall([], 0.9), undefined);
});

test('qpsAtRecall: settings of equal recall take the faster one', () => {
  assert.equal(qpsAtRecall([{ recall: 0.9, qps: 100 }, { recall: 0.9, qps: 300 }, { recall: 0.95, qps: 50 }], 0.9), 300);
});

test('equalRecallLine: a ratio at each of the reference settings and targets both sweeps reach, a dash where memstore\'s does not', () => {
  const ours = [
    { recall: 0.9, qps: 4000 },
    { recall: 0.96, qps: 2000 },
  ];
  const theirs = [
    { setting: 'ef 64', recall: 0.93, qps: 3000 },
    { setting: 'ef 128', recall: 0.97, qps: 1000 },
  ];
  const line = equalRecallLine('memstore', ours, theirs, [0.95, 0.99]);
  // At 0.93 ours is 3000 (3000 / 3000); at 0.97 ours has no figure; at 0.95 ours 2333.3 against theirs 2000.
  assert.match(line, /1\.00x at ef 64 \(0\.930\)/);
  assert.match(line, /– at ef 128 \(0\.970\)/);
  assert.match(line, /1\.17x at 0\.95/);
  assert.doesNotMatch(line, /at 0\.99/);
});
