import assert from 'node:assert/strict';
import { test } from 'node:test';
import { METRICS } from '../src/options.js';
import { rng } from '../src/random.js';
import { ExactScorer } from '../src/space/exact-scorer.js';
import { VectorSpace } from '../src/space/vector-space.js';
import type { StoreConfig } from '../src/store/state.js';
import { norm } from '../src/vector.js';

function config(metric: StoreConfig['metric'], dim: number): StoreConfig {
  return { formatVersion: 4, dim, metric, codec: 'int8', pca: null, keepFull: true, trainSize: 16 };
}

for (const metric of METRICS) {
  test(`ExactScorer (${metric}): the numbers VectorSpace.exactScore gives, bit for bit, over growing batches`, () => {
    const rand = rng(5);
    for (const dim of [1, 3, 7, 100, 513]) {
      const space = new VectorSpace(config(metric, dim), undefined);
      const scorer = new ExactScorer(metric, dim);
      try {
        for (const n of [1, 5, 40, 17, 100]) {
          const vec = () => Float32Array.from({ length: dim }, () => (rand() * 2 - 1) * 10 ** Math.floor(rand() * 6 - 3));
          const q = vec();
          const xs = Array.from({ length: n }, vec);
          if (n === 5) xs[2] = new Float32Array(dim);
          // Half the norms known beforehand (as the cache's hot vectors give them), half computed.
          const known = xs.map((x, j) => (j % 2 === 0 ? norm(x) : undefined));
          const scores = new Float64Array(n);
          const norms = new Float64Array(n);
          scorer.score(q, norm(q), xs, known, scores, norms);
          xs.forEach((x, j) => {
            const expected = space.exactScore(q, norm(q), x, known[j]);
            assert.ok(Object.is(scores[j], expected), `dim ${dim}, vector ${j}: ${scores[j]} vs ${expected}`);
            if (metric === 'cosine') assert.ok(Object.is(norms[j], norm(x)), `norm of vector ${j}`);
          });
        }
      } finally {
        scorer.free();
        space.free();
      }
    }
  });
}
