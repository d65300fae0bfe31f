import assert from 'node:assert/strict';
import { test } from 'node:test';
import { METRICS, type Metric } from '../src/options.js';
import { rng } from '../src/random.js';
import { ExactScorer } from '../src/space/exact-scorer.js';
import { dot, norm, squaredDistance } from '../src/vector.js';

/** The exact score as vector.ts defines it, one vector at a time. */
function reference(metric: Metric, q: Float32Array, qNorm: number, x: Float32Array, xNorm: number | undefined): number {
  if (metric === 'dot') return dot(q, x);
  if (metric === 'l2') return 0 - Math.sqrt(squaredDistance(q, x));
  const d = qNorm * (xNorm ?? norm(x));
  return d === 0 ? 0 : Math.min(1, Math.max(-1, dot(q, x) / d));
}

for (const metric of METRICS) {
  test(`ExactScorer (${metric}): the numbers vector.ts gives, bit for bit, over growing batches`, () => {
    const rand = rng(5);
    for (const dim of [1, 3, 7, 100, 513]) {
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
            const expected = reference(metric, q, norm(q), x, known[j]);
            assert.ok(Object.is(scores[j], expected), `dim ${dim}, vector ${j}: ${scores[j]} vs ${expected}`);
            if (metric === 'cosine') assert.ok(Object.is(norms[j], norm(x)), `norm of vector ${j}`);
          });
        }
      } finally {
        scorer.free();
      }
    }
  });
}
