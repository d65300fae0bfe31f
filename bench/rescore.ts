/**
 * What rescoring costs: the p50 of a search with and without rescoring, on one store, alternating
 * (codes only, rescored) over rounds, and the difference per rescored candidate. The lookaside
 * cache is off, so every candidate's full-precision vector is read from the store. Then the same
 * with the full vectors read through memory maps (`mmap`, the default where the native addon is
 * built) against positioned reads (`mmap: false`): two copies of the store, each query searched on
 * both in turn, which goes first alternating, so both timings of a query see the same conditions.
 *
 *   node dist/bench/rescore.js [--data FILE --queries FILE --dim N] [--n 10000] [--rounds 3] [--codec int8]
 *
 * Without --data it uses the 1k WordNet set the project ships.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { benchArgs } from './args.js';
import { MemStore } from '../src/memstore.js';
import type { Dataset } from '../src/cli/datasets.js';
import type { CodecName } from '../src/codec/codec.js';
import { median } from './percentile.js';
import { canMapFiles } from '../io/mmap.js';
import { DATA_OPTIONS, datasetFrom } from './data.js';

async function p50(store: MemStore, queries: readonly Float32Array[], rescore: boolean): Promise<number> {
  const times: number[] = [];
  for (const q of queries) {
    const t = performance.now();
    await store.search(q, { k: 10, rescore });
    times.push(performance.now() - t);
  }
  return median(times);
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
  // Per search, as the store took them: k times its codec's oversample (the default differs by codec).
  const candidates = (after.candidates - before.candidates) / Math.max(1, searches);
  return { codesP50: median(codes), rescoredP50: median(rescored), candidates, read };
}

/**
 * p50 of `queries` (k 10, rescored) on `mapped` (full vectors read through memory maps) and on
 * `plain` (positioned reads), two copies of one store: each query on both in turn, which goes first
 * alternating, over `rounds`; and how many queries got the same answer (ids and scores) from both.
 */
export async function mappedAgainstPlain(mapped: MemStore, plain: MemStore, queries: readonly Float32Array[], rounds: number): Promise<{ mappedP50: number; plainP50: number; same: number; asked: number }> {
  const times = { mapped: [] as number[], plain: [] as number[] };
  let same = 0;
  let asked = 0;
  for (let r = 0; r < rounds; r++) {
    for (const [i, q] of queries.entries()) {
      const order = (i + r) % 2 === 0 ? (['mapped', 'plain'] as const) : (['plain', 'mapped'] as const);
      const answers: Record<string, string> = {};
      for (const which of order) {
        const t = performance.now();
        const hits = await (which === 'mapped' ? mapped : plain).search(q, { k: 10 });
        times[which].push(performance.now() - t);
        answers[which] = hits.map((h) => `${h.id}=${h.score}`).join(' ');
      }
      asked++;
      if (answers['mapped'] === answers['plain']) same++;
    }
  }
  return { mappedP50: median(times.mapped), plainP50: median(times.plain), same, asked };
}

export async function runRescoreBench(data: Dataset, n: number, rounds: number, codec: CodecName, write: (line: string) => void): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'memstore-rescore-'));
  try {
    const build = await MemStore.open(join(dir, 'a'), { dim: data.dim, codec, durability: 'none', cache: false });
    const docs = data.docs.slice(0, n);
    for (let at = 0; at < docs.length; at += 1000) await build.add(docs.slice(at, at + 1000).map((vector, i) => ({ id: `doc-${at + i}`, vector })));
    await build.close();
    cpSync(join(dir, 'a'), join(dir, 'b'), { recursive: true });
    const store = await MemStore.open(join(dir, 'a'), { cache: false, mmap: false });
    const { codesP50: c, rescoredP50: r, candidates, read } = await rescoreCost(store, data.queries, rounds);
    write(`${data.name}: ${docs.length} x ${data.dim}-d, ${codec}, k 10, ${data.queries.length} queries, median of ${rounds} rounds of p50`);
    write(`positioned reads: codes only ${(c * 1000).toFixed(0)} µs, rescored ${(r * 1000).toFixed(0)} µs (${(r / c).toFixed(2)}x); of ${candidates} candidates ${read.toFixed(1)} read on average, ${(((r - c) * 1000) / read).toFixed(2)} µs per vector read`);
    if (!canMapFiles()) {
      write('memory maps: the native addon is not built here (npm run build builds it where a C compiler is at hand)');
      await store.close();
      return;
    }
    const mapped = await MemStore.open(join(dir, 'b'), { cache: false });
    const m = await mappedAgainstPlain(mapped, store, data.queries, rounds);
    await mapped.close();
    await store.close();
    write(
      `rescored, side by side: through memory maps ${(m.mappedP50 * 1000).toFixed(0)} µs, positioned reads ${(m.plainP50 * 1000).toFixed(0)} µs (${(m.mappedP50 / m.plainP50).toFixed(3)}x), ` +
        `${(((m.plainP50 - m.mappedP50) * 1000) / read).toFixed(2)} µs less per vector read; the same answer to ${m.same} of ${m.asked} searches`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = benchArgs('dist/bench/rescore.js', { options: { ...DATA_OPTIONS, rounds: { type: 'string' }, codec: { type: 'string' } } }, { numbers: ['rounds'] });
  const data = datasetFrom(values);
  // MemStore.open refuses a codec it does not know (INVALID_OPTION), as in the other benches.
  const codec = (values.codec ?? 'int8') as CodecName;
  await runRescoreBench(data, values.n === undefined ? data.docs.length : Number(values.n), values.rounds === undefined ? 3 : Number(values.rounds), codec, (line) => process.stdout.write(`${line}\n`));
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/'))) await main();
