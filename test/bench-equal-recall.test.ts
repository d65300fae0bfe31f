import assert from 'node:assert/strict';
import { test } from 'node:test';
import { equalRecallLine, qpsAtRecall } from '../bench/equal-recall.js';
import { formatSweep } from '../bench/index-sweep.js';

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

test('formatSweep: under the table, one line per store configuration comparing its nprobe sweep with hnswlib-node\'s ef sweep; none without hnswlib-node', () => {
  const row = (kind: 'pages' | 'hnsw-f32', config: string, effort: number, recall10: number, qps: number) => ({ kind, config, label: `${config} ${effort}`, effort, recall10, qps, p50Us: 1e6 / qps, p99Us: 2e6 / qps });
  const pages = [row('pages', 'int8', 8, 0.9, 4000), row('pages', 'int8', 16, 0.96, 2000), row('pages', 'rq2', 8, 0.94, 6000), row('pages', 'rq2', 16, 0.99, 3000)];
  const hnsw = [row('hnsw-f32', 'hnswlib-node', 64, 0.93, 3000), row('hnsw-f32', 'hnswlib-node', 128, 0.97, 1000)];
  const stores = [{ config: 'int8', pages: 10, maxPage: 192, bytesPerVector: 600, defaultProbes: 8, fixedBytes: 0, vectors: 1000 }];
  const text = formatSweep({ rows: [...pages, ...hnsw], stores }, 10);
  const ratioLines = text.split('\n').filter((l) => l.includes('at equal recall'));
  assert.equal(ratioLines.length, 2);
  assert.match(ratioLines[0]!, /^memstore int8, .*1\.00x at ef 64 \(0\.930\).*– at ef 128/);
  assert.match(ratioLines[1]!, /^memstore rq2, /);
  assert.equal(formatSweep({ rows: pages, stores }, 10).includes('at equal recall'), false);
});
