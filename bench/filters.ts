/**
 * Filtered search as a store serves it: a MemStore built with its defaults (cache off, so that
 * each query is searched), every record with metadata
 *
 *   { s1, s10, s50: true for every 100th, 10th, 2nd record; ns: one of 100 namespaces; u: unique }
 *
 * closed and reopened, then searched with each filter below and without one, the settings
 * interleaved over 5 rounds (one query in flight). Recall@10 is against the exact float32 top 10
 * among the records the filter matches; "fewest" is the fewest results any query got (k whenever
 * k records match). The first filtered search after opening makes the filter's column: its time is
 * reported apart, with the bytes the columns hold (stats().memoryBytes before and after). Then
 * the store is closed (that checkpoint persists the columns beside the index file: its time and the
 * columns file's bytes are reported), reopened, and each filter's first search timed again: the
 * columns are read from the file instead of being made from every record's metadata.
 *
 *   node dist/bench/filters.js [--data docs.f32 --queries queries.f32 --dim N] [--n first-N] [--pages false] [--queries-n 500]
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { benchArgs } from './args.js';
import { MemStore } from '../src/memstore.js';
import type { Filter } from '../src/options.js';
import { exactSearch } from './baselines.js';
import { DATA_OPTIONS, datasetFrom } from './data.js';
import { median } from './percentile.js';

const K = 10;
const ROUNDS = 5;

const { values } = benchArgs('dist/bench/filters.js', { options: { ...DATA_OPTIONS, pages: { type: 'string' }, 'queries-n': { type: 'string' } } }, { numbers: ['pages', 'queries-n'] });
const all = datasetFrom(values);
const n = Math.min(all.docs.length, values.n === undefined ? all.docs.length : Number(values.n));
const queries = all.queries.slice(0, values['queries-n'] === undefined ? 500 : Number(values['queries-n']));
const docs = all.docs.slice(0, n);
const pages = values.pages === 'false' ? (false as const) : undefined;

const metaOf = (i: number) => ({ s1: i % 100 === 0, s10: i % 10 === 0, s50: i % 2 === 0, ns: `ns-${(i * 37) % 100}`, u: `u-${i}` });

interface Case {
  readonly label: string;
  readonly filter: Filter | undefined;
}

const cases: Case[] = [
  { label: 'none', filter: undefined },
  { label: 's1: true (1%)', filter: { s1: true } },
  { label: 's10: true (10%)', filter: { s10: true } },
  { label: 's50: true (50%)', filter: { s50: true } },
  { label: "ns: 'ns-7' (1%)", filter: { ns: 'ns-7' } },
  { label: 'ns: $in 10 namespaces (10%)', filter: { ns: { $in: Array.from({ length: 10 }, (_, j) => `ns-${j * 10}`) } } },
  { label: 's10 and s50 (10%, two fields)', filter: { s10: true, s50: true } },
  { label: `u: one record (a field of ${n} distinct values)`, filter: { u: `u-${Math.floor(n / 2) + 1}` } },
];

function matches(i: number, filter: Filter | undefined): boolean {
  if (filter === undefined) return true;
  const meta = metaOf(i) as Record<string, unknown>;
  return Object.entries(filter).every(([f, c]) => (c !== null && typeof c === 'object' ? c.$in.includes(meta[f] as never) : meta[f] === c));
}

/** Per case: the ids of the exact float32 top k among the matching records, per query. */
const truths = cases.map((c) => {
  const rows = docs.map((_, i) => i).filter((i) => matches(i, c.filter));
  const found = exactSearch({ name: 'filtered', dim: all.dim, docs: rows.map((i) => docs[i]!), queries }, 'cosine', K).result;
  return { matching: rows.length, truth: found.map((r) => new Set(r.map((j) => String(rows[j]!)))) };
});

const dir = mkdtempSync(join(tmpdir(), 'memstore-filters-bench-'));
try {
  let store = await MemStore.open(dir, { dim: all.dim, durability: 'none', cache: false, ...(pages === false ? { pages } : {}) });
  for (let at = 0; at < n; at += 1000) await store.add(docs.slice(at, at + 1000).map((vector, j) => ({ id: String(at + j), vector, meta: metaOf(at + j) })));
  await store.close();
  const firstOpen = performance.now();
  store = await MemStore.open(dir, { cache: false, ...(pages === false ? { pages } : {}) });
  const firstOpenMs = performance.now() - firstOpen;
  const before = store.stats();
  const firsts: string[] = [];
  for (const c of cases.slice(1)) {
    const t = performance.now();
    await store.search(queries[0]!, { k: K, filter: c.filter! });
    firsts.push(`${c.label.split(' ')[0]} ${(performance.now() - t).toFixed(1)} ms`);
  }
  const after = store.stats();
  process.stdout.write(
    `data: ${all.name}, ${n} x ${all.dim}-d, ${queries.length} queries, k ${K}; store: int8, cosine, rescoring on, cache off, ${before.pages} pages or blocks, default nprobe ${before.nprobe}; settings interleaved, ${ROUNDS} rounds\n` +
      `opened in ${firstOpenMs.toFixed(0)} ms (no columns persisted yet); first search with each filter after opening (makes its field's column): ${firsts.join(', ')}\n` +
      `memoryBytes ${before.memoryBytes} before the columns, ${after.memoryBytes} with them: ${((after.memoryBytes - before.memoryBytes) / n).toFixed(1)} B per vector for ${new Set(cases.flatMap((c) => Object.keys(c.filter ?? {}))).size} fields\n\n`,
  );
  const times = cases.map((): number[] => []);
  const found = cases.map(() => 0);
  const fewest = cases.map(() => Infinity);
  const chunk = Math.ceil(queries.length / ROUNDS);
  for (let r = 0; r < ROUNDS; r++) {
    for (const [ci, c] of cases.entries()) {
      for (let i = r * chunk; i < Math.min(queries.length, (r + 1) * chunk); i++) {
        const t = performance.now();
        const hits = await store.search(queries[i]!, { k: K, ...(c.filter === undefined ? {} : { filter: c.filter }) });
        times[ci]!.push(performance.now() - t);
        fewest[ci] = Math.min(fewest[ci]!, hits.length);
        for (const h of hits) if (truths[ci]!.truth[i]!.has(h.id)) found[ci]!++;
      }
    }
  }
  process.stdout.write('| filter | matching | recall@10 vs float32 among them | p50 µs | QPS | fewest results |\n|---|---:|---:|---:|---:|---:|\n');
  for (const [ci, c] of cases.entries()) {
    const total = times[ci]!.reduce((a, b) => a + b, 0);
    const possible = queries.length * Math.min(K, truths[ci]!.matching);
    process.stdout.write(`| ${c.label} | ${truths[ci]!.matching} | ${(found[ci]! / possible).toFixed(3)} | ${(median(times[ci]!) * 1000).toFixed(0)} | ${((times[ci]!.length * 1000) / total).toFixed(0)} | ${fewest[ci]} |\n`);
  }
  const fields = new Set(cases.flatMap((c) => Object.keys(c.filter ?? {}))).size;
  let t = performance.now();
  await store.close();
  const closeMs = performance.now() - t;
  const columnFiles = readdirSync(join(dir, 'index')).filter((f) => f.startsWith('columns-'));
  const columnBytes = columnFiles.reduce((sum, f) => sum + statSync(join(dir, 'index', f)).size, 0);
  t = performance.now();
  store = await MemStore.open(dir, { cache: false, ...(pages === false ? { pages } : {}) });
  const openMs = performance.now() - t;
  const reopened: string[] = [];
  for (const c of cases.slice(1)) {
    t = performance.now();
    await store.search(queries[0]!, { k: K, filter: c.filter! });
    reopened.push(`${c.label.split(' ')[0]} ${(performance.now() - t).toFixed(1)} ms`);
  }
  process.stdout.write(
    `\nclose, whose checkpoint writes the ${fields} columns: ${closeMs.toFixed(0)} ms; columns file ${columnBytes} bytes (${(columnBytes / n).toFixed(1)} B per record, ${((columnBytes / n - 8) / fields).toFixed(2)} B per record per column beside 8 B of id hash)\n` +
      `reopened in ${openMs.toFixed(0)} ms (columns read from the file); first search with each filter after reopening: ${reopened.join(', ')}\n`,
  );
  await store.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
