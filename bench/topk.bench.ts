import { fileURLToPath } from 'node:url';
import { Bench } from 'tinybench';
import { rng } from '../src/random.js';
import { TopK } from '../src/scan/topk.js';

/**
 * Micro-benchmark of the top-k selection a scan runs over its kernel scores (src/scan/topk.ts):
 * µs to push every score of a scan (skipping those admits() refuses, as the scan does) into a TopK
 * of k and sort it, for the store's usual k: 10 (codes only), 40 (rescoring's candidates) and 140
 * (the lookaside cache's pool, of which a search sorts only its 40 candidates).
 *
 *   node dist/bench/topk.bench.js
 */

function scores(n: number, seed: number): Float32Array {
  const next = rng(seed);
  return Float32Array.from({ length: n }, () => next() * 2 - 1);
}

function select(all: Float32Array, k: number, sorted = k): number {
  const top = new TopK(k);
  for (let slot = 0; slot < all.length; slot++) {
    const score = all[slot]!;
    if (top.admits(score)) top.push(score, slot);
  }
  return top.sortBestFirst(sorted);
}

export async function runTopKBench(write: (line: string) => void): Promise<void> {
  const bench = new Bench({ time: 400, warmupTime: 150 });
  for (const n of [10_000, 50_000]) {
    const all = scores(n, n);
    for (const k of [10, 40, 140]) bench.add(`${n} scores, k ${k}`, () => void select(all, k));
    // What a search that misses the cache does: keeps the pool of 140, sorts its 40 candidates.
    bench.add(`${n} scores, k 140, best 40 sorted`, () => void select(all, 140, 40));
  }
  await bench.run();
  write('| task | µs per selection (p50) |');
  write('|---|---:|');
  for (const task of bench.tasks) {
    const result = task.result;
    if (result === undefined || !('latency' in result)) throw new Error(`benchmark task ${task.name} did not complete`);
    write(`| ${task.name} | ${(result.latency.p50 * 1000).toFixed(1)} |`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await runTopKBench((line) => process.stdout.write(`${line}\n`));
