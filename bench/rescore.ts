/**
 * What rescoring costs: the p50 of a search with and without rescoring, on one store, alternating
 * (codes only, rescored) over rounds, and the difference per rescored candidate. The lookaside
 * cache is off, so every candidate's full-precision vector is read from the store.
 *
 *   node dist/bench/rescore.js [--data FILE --queries FILE --dim N] [--n 10000] [--rounds 3]
 *
 * Without --data it uses the 1k WordNet set the project ships.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { MemStore } from '../src/memstore.js';
import type { Dataset } from '../src/cli/datasets.js';
import { DATA_OPTIONS, datasetFrom } from './data.js';

async function p50(store: MemStore, queries: readonly Float32Array[], rescore: boolean): Promise<number> {
  const times: number[] = [];
  for (const q of queries) {
    const t = performance.now();
    await store.search(q, { k: 10, rescore });
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1]!;
}

/**
 * The p50 of `queries` (k 10) codes only and rescored, on an open store (its cache off), each the
 * median over `rounds` alternating rounds after one warm-up; rescoring takes k · oversample
 * candidates (`candidates`, a mean per search), and reads the full vectors of those their error
 * bounds do not rule out (`read`, a mean).
 */
export async function rescoreCost(store: MemStore, queries: readonly Float32Array[], rounds: number): Promise<{ codesP50: number; rescoredP50: number; candidates: number; read: number }> {
  await p50(store, queries, true);
  const codes: number[] = [];
  const rescored: number[] = [];
  const before = store.stats().rescoring;
  for (let r = 0; r < rounds; r++) {
    codes.push(await p50(store, queries, false));
    rescored.push(await p50(store, queries, true));
  }
  const after = store.stats().rescoring;
  const searches = after.searches - before.searches;
  const read = (after.candidates - before.candidates - (after.skipped - before.skipped)) / Math.max(1, searches);
  const mid = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  // Per search, as the store took them: k times its codec's oversample (the default differs by codec).
  const candidates = (after.candidates - before.candidates) / Math.max(1, searches);
  return { codesP50: mid(codes), rescoredP50: mid(rescored), candidates, read };
}

export async function runRescoreBench(data: Dataset, n: number, rounds: number, write: (line: string) => void): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'memstore-rescore-'));
  try {
    const build = await MemStore.open(dir, { dim: data.dim, durability: 'none', cache: false });
    const docs = data.docs.slice(0, n);
    for (let at = 0; at < docs.length; at += 1000) await build.add(docs.slice(at, at + 1000).map((vector, i) => ({ id: `doc-${at + i}`, vector })));
    await build.close();
    const store = await MemStore.open(dir, { cache: false });
    const { codesP50: c, rescoredP50: r, candidates, read } = await rescoreCost(store, data.queries, rounds);
    await store.close();
    write(`${data.name}: ${docs.length} x ${data.dim}-d, int8, k 10, ${data.queries.length} queries, median of ${rounds} rounds of p50`);
    write(`codes only ${(c * 1000).toFixed(0)} µs, rescored ${(r * 1000).toFixed(0)} µs (${(r / c).toFixed(2)}x); of ${candidates} candidates ${read.toFixed(1)} read on average, ${(((r - c) * 1000) / read).toFixed(2)} µs per vector read`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { ...DATA_OPTIONS, rounds: { type: 'string' } } });
  const data = datasetFrom(values);
  await runRescoreBench(data, values.n === undefined ? data.docs.length : Number(values.n), values.rounds === undefined ? 3 : Number(values.rounds), (line) => process.stdout.write(`${line}\n`));
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/'))) await main();
