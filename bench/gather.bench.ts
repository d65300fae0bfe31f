import { fileURLToPath } from 'node:url';
import { Bench } from 'tinybench';
import { getCodec } from '../src/codec/index.js';
import { FlatIndex } from '../src/index/flat-index.js';
import { PageIndex } from '../src/index/page-index.js';
import { rng } from '../src/random.js';
import type { ScanQuery } from '../src/scan/code-blocks.js';
import { TopK } from '../src/scan/topk.js';

/**
 * Micro-benchmark of scoring codes picked by slot (scoreSlots: the gather kernel over scattered
 * codes), what a filter that takes few records costs per record (src/index/matching-scan.ts) and
 * what the cache's near tries cost per pool member: ns per code for 10,000 slots spread over the
 * store, in the exact index's blocks and in the page index's pages, int8 codes, an int8 query, beside
 * a scan of every code of the exact index (the contiguous kernel) per code.
 *
 *   node dist/bench/gather.bench.js
 */

const PICKED = 10_000;

function vectors(n: number, dim: number, seed: number): Float32Array[] {
  const next = rng(seed);
  return Array.from({ length: n }, () => Float32Array.from({ length: dim }, () => next() - 0.5));
}

export async function runGatherBench(write: (line: string) => void): Promise<void> {
  const rows: string[] = [];
  for (const [n, dim] of [
    [100_000, 100],
    [50_000, 512],
  ] as const) {
    const codec = getCodec('int8');
    const flat = new FlatIndex(codec, dim, true);
    const pages = new PageIndex(codec, dim, 'dot', { maxPage: 192 });
    for (const [i, v] of vectors(n, dim, dim).entries()) {
      flat.put(String(i), v);
      pages.put(String(i), v);
    }
    const slots = Int32Array.from({ length: PICKED }, (_, i) => Math.floor((i * n) / PICKED));
    const out = new Float32Array(PICKED);
    const query: ScanQuery = { vector: vectors(1, dim, 7)[0]!, metric: 'dot', int8Query: true };
    const bench = new Bench({ time: 600, warmupTime: 150 });
    bench.add('exact index, scoreSlots', () => flat.scoreSlots(query, slots, PICKED, out));
    bench.add('page index, scoreSlots', () => pages.scoreSlots(query, slots, PICKED, out));
    bench.add('exact index, every code scanned (top 40 kept)', () => flat.search(query, new TopK(40), {}));
    await bench.run();
    for (const task of bench.tasks) {
      const result = task.result;
      if (result === undefined || !('latency' in result)) throw new Error(`benchmark task ${task.name} did not complete`);
      const per = task.name.includes('every code') ? n : PICKED;
      rows.push(`| ${n} x ${dim}-d | ${task.name} | ${((result.latency.p50 * 1e6) / per).toFixed(1)} |`);
    }
    flat.free();
    pages.free();
  }
  write('| store | task | ns per code (p50) |');
  write('|---|---|---:|');
  for (const r of rows) write(r);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await runGatherBench((line) => process.stdout.write(`${line}\n`));
