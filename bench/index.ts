/**
 * The page-clustered index as a store serves it: a MemStore built with its defaults (int8 codes,
 * cosine, pages from `pages.from` vectors on, rescoring on, cache off so each query is searched),
 * closed and reopened, then searched with its default `nprobe`, an `nprobe` sweep and `exact: true`;
 * after `compact()` (which re-clusters the pages) the sweep again; beside hnswlib-node (float32,
 * M 16, efConstruction 200, ef swept), side by side in one run, one query in flight, single thread.
 * Recall@10 is against exact float32 search.
 *
 *   node dist/bench/index.js [--data docs.f32 --queries queries.f32 --dim N] [--n first-N] [--codec int8] [--pca DIMS] [--oversample N] [--nprobe 16,32,64,128] [--ef 32,64,128,256] [--max-page 192] [--inserts 2000] [--churn 0.2] [--filters] [--codes-only] [--exact-float-scan]
 *
 * --inserts: vectors added to the built, reopened store (the docs after the first N, else
 * perturbed copies of the first ones under new ids), timed in batches of 100: the insert rate into
 * a built index; they are deleted again afterwards.
 * --churn: the share of the vectors then deleted and replaced by as many new ones (the docs after
 * the first N and the inserts, else perturbed copies), measured before and after compact().
 * --codec: the store's codec (default int8); rq codes train on the first 4,096 vectors, as PCA does.
 * --pca: reduce to DIMS dimensions by PCA (trained on the first 4,096 vectors) before the codec.
 * --oversample: candidates per result when rescoring (OpenOptions.oversample; default the codec's).
 * --codes-only: the default and the sweep again without rescoring (`rescore: false`), the codes' own ranking.
 * --exact-float-scan: a row more, `exact: true` with the screen switched off (a private switch of
 * the store's search path): the float query scored against every code, which is what an int8 dot
 * or cosine store's exact screen is measured against (README, "How a search runs").
 * --filters: every record gets metadata { s1, s10, s50 } true for 1%, 10% and 50% of them (every
 * 100th, 10th, 2nd), and searches filtered on each are measured after the first sweep: recall
 * against the exact float32 top 10 among the matching records, p50, and the fewest results any
 * query got.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { benchArgs } from './args.js';
import { MemStore } from '../src/memstore.js';
import type { CodecName } from '../src/codec/codec.js';
import { rng } from '../src/random.js';
import { buildHnsw, exactSearch } from './baselines.js';
import { DATA_OPTIONS, datasetFrom } from './data.js';
import { equalRecallLine } from './equal-recall.js';
import { median } from './percentile.js';

const K = 10;

const { values } = benchArgs('dist/bench/index.js', {
  options: { ...DATA_OPTIONS, nprobe: { type: 'string' }, ef: { type: 'string' }, 'max-page': { type: 'string' }, inserts: { type: 'string' }, from: { type: 'string' }, churn: { type: 'string' }, filters: { type: 'boolean' }, 'codes-only': { type: 'boolean' }, 'exact-float-scan': { type: 'boolean' }, codec: { type: 'string' }, pca: { type: 'string' }, oversample: { type: 'string' } },
}, { numbers: ['nprobe', 'ef', 'max-page', 'inserts', 'from', 'churn', 'oversample'] });
const list = (v: string | undefined, d: number[]) => (v === undefined ? d : v.split(',').map(Number));
const all = datasetFrom(values);
const n = Math.min(all.docs.length, values.n === undefined ? all.docs.length : Number(values.n));
const data = { ...all, docs: all.docs.slice(0, n), queries: all.queries.slice(0, 1000) };
const spare = all.docs.slice(n);
const maxPage = values['max-page'] === undefined ? 192 : Number(values['max-page']);
const from = values.from === undefined ? 16384 : Number(values.from);
const inserts = values.inserts === undefined ? 2000 : Number(values.inserts);
const churn = values.churn === undefined ? 0.2 : Number(values.churn);
const codec = (values.codec ?? 'int8') as CodecName;
const pca = values.pca === undefined ? {} : { pca: { dims: Number(values.pca) } };
/** Candidates per result when rescoring (OpenOptions.oversample): the codec's default unless given. */
const oversample = values.oversample === undefined ? {} : { oversample: Number(values.oversample) };

/** The ids of the exact float32 top k of each query over `live` (id, vector). */
function truthOf(live: readonly (readonly [string, Float32Array])[]): Set<string>[] {
  const found = exactSearch({ ...data, docs: live.map(([, v]) => v) }, 'cosine', K).result;
  return found.map((rows) => new Set(rows.map((r) => live[r]![0])));
}

const perturbNext = rng(5);
/** New vector `i` beyond the first N: the next spare doc, else a perturbed copy of a doc. */
function newVector(i: number): Float32Array {
  const spareDoc = spare[i];
  if (spareDoc !== undefined) return spareDoc;
  const base = data.docs[i % n]!;
  return Float32Array.from(base, (x) => x + (perturbNext() - 0.5) * 0.05);
}

let live: [string, Float32Array][] = data.docs.map((v, i) => [String(i), v]);
let truth = truthOf(live);

/** One search setting: a store search with these options, or hnswlib-node at this ef. */
interface Setting {
  readonly label: string;
  readonly run: (q: Float32Array, i: number) => Promise<readonly string[]> | readonly string[];
}

interface Row {
  setting: string;
  recall: number;
  p50: number;
  qps: number;
}

const ROUNDS = 5;

/**
 * Every setting over the queries, interleaved: round r runs the r-th fifth of the queries through
 * each setting in turn, so that a change in the machine's load falls on all settings alike (this
 * machine is shared: measured one after another, the same setting varied 1.5x between runs).
 * Recall is over every query; p50 and QPS over all of a setting's timed queries.
 */
async function measureAll(settings: readonly Setting[], truthNow: readonly Set<string>[]): Promise<Row[]> {
  for (const s of settings) for (const [i, q] of data.queries.slice(0, 20).entries()) await s.run(q, i);
  const times = settings.map((): number[] => []);
  const found = settings.map(() => 0);
  const chunk = Math.ceil(data.queries.length / ROUNDS);
  for (let r = 0; r < ROUNDS; r++) {
    for (const [si, s] of settings.entries()) {
      for (let i = r * chunk; i < Math.min(data.queries.length, (r + 1) * chunk); i++) {
        const t = performance.now();
        const ids = await s.run(data.queries[i]!, i);
        times[si]!.push(performance.now() - t);
        for (const id of ids) if (truthNow[i]!.has(id)) found[si]!++;
      }
    }
  }
  return settings.map((s, si) => {
    const total = times[si]!.reduce((a, b) => a + b, 0);
    return { setting: s.label, recall: found[si]! / (data.queries.length * K), p50: median(times[si]!) * 1000, qps: (times[si]!.length * 1000) / total };
  });
}

function storeSettings(store: MemStore): Setting[] {
  const s = store.stats();
  const search = (options: { nprobe?: number; exact?: boolean; rescore?: boolean }) => async (q: Float32Array) => (await store.search(q, { k: K, ...options })).map((h) => h.id);
  return [
    { label: `memstore default (nprobe ${s.nprobe} of ${s.pages})`, run: search({}) },
    ...list(values.nprobe, [16, 32, 64, 128]).map((nprobe) => ({ label: `memstore nprobe ${nprobe}`, run: search({ nprobe }) })),
    { label: 'memstore exact: true', run: search({ exact: true }) },
    ...(values['exact-float-scan'] === true ? [{ label: 'memstore exact: true, float scan (no screen)', run: withoutScreen(store, search({ exact: true })) }] : []),
    ...(values['codes-only'] === true
      ? [
          { label: 'memstore default, codes only (rescore: false)', run: search({ rescore: false }) },
          ...list(values.nprobe, [16, 32, 64, 128]).map((nprobe) => ({ label: `memstore nprobe ${nprobe}, codes only`, run: search({ nprobe, rescore: false }) })),
        ]
      : []),
  ];
}

/**
 * `run` with the store's exact screen switched off for its one search: a private field, as the
 * tests reach it (test/exact-screen.test.ts); the rows measured interleaved share the store.
 */
function withoutScreen(store: MemStore, run: (q: Float32Array) => Promise<string[]>): (q: Float32Array) => Promise<string[]> {
  const path = (store as unknown as { searches: { exactScreen: boolean } }).searches;
  if (typeof path?.exactScreen !== 'boolean') throw new Error('--exact-float-scan: this build has no exact screen switch');
  return async (q) => {
    path.exactScreen = false;
    try {
      return await run(q);
    } finally {
      path.exactScreen = true;
    }
  };
}

function table(rows: readonly Row[]): string[] {
  const exact = rows.find((r) => r.setting === 'memstore exact: true');
  const hnsw = rows.filter((r) => r.setting.startsWith('hnswlib-node')).map((r) => ({ ...r, setting: r.setting.replace('hnswlib-node ', '') }));
  // The nprobe sweeps, each with its default search (the exact scan is a point of its own).
  const rescored = rows.filter((r) => r.setting.startsWith('memstore') && !r.setting.includes('codes only') && !r.setting.startsWith('memstore exact: true'));
  const codesOnly = rows.filter((r) => r.setting.includes('codes only'));
  return [
    '| search | recall@10 vs float32 | p50 µs | QPS | speedup over exact: true (p50) |',
    '|---|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.setting} | ${r.recall.toFixed(3)} | ${r.p50.toFixed(0)} | ${r.qps.toFixed(0)} | ${exact === undefined ? '' : `${(exact.p50 / r.p50).toFixed(1)}x`} |`),
    ...(hnsw.length === 0
      ? []
      : [
          '',
          equalRecallLine('memstore (rescored)', rescored, hnsw, [0.95, 0.99]),
          ...(codesOnly.length === 0 ? [] : [equalRecallLine('memstore codes only', codesOnly, hnsw, [0.95, 0.99])]),
        ]),
  ];
}

const lines: string[] = [];
const out = (l = '') => {
  lines.push(l);
  process.stdout.write(`${l}\n`);
};
out(`data: ${data.name}, ${n} x ${data.dim}-d, ${data.queries.length} queries, k ${K}; store: ${codec}${values.pca === undefined ? '' : `, PCA to ${values.pca}`}${values.oversample === undefined ? '' : `, oversample ${values.oversample}`}, cosine, rescoring on, cache off, pages { from: ${from}, maxPage: ${maxPage} }; settings measured interleaved, ${ROUNDS} rounds`);
out();

const hnswStarted = performance.now();
const hnsw = buildHnsw(data.docs, data.dim, 'cosine');
const hnswBuildS = (performance.now() - hnswStarted) / 1000;
const hnswSettings: Setting[] = list(values.ef, [32, 64, 128, 256]).map((ef) => ({
  label: `hnswlib-node ef ${ef}`,
  run: (q: Float32Array) => {
    hnsw.setEf(ef);
    return hnsw.searchKnn(Array.from(q), K).neighbors.map(String);
  },
}));

const dir = mkdtempSync(join(tmpdir(), 'memstore-index-bench-'));
try {
  const started = performance.now();
  let store = await MemStore.open(dir, { dim: data.dim, codec, ...pca, ...oversample, durability: 'none', cache: false, pages: { from, maxPage } });
  const metaOf = (i: number) => (values.filters === true ? { meta: { s1: i % 100 === 0, s10: i % 10 === 0, s50: i % 2 === 0 } } : {});
  for (let at = 0; at < n; at += 1000) await store.add(data.docs.slice(at, at + 1000).map((vector, j) => ({ id: String(at + j), vector, ...metaOf(at + j) })));
  await store.close();
  const buildS = (performance.now() - started) / 1000;
  const opened = performance.now();
  store = await MemStore.open(dir, { ...oversample, cache: false, pages: { from, maxPage } });
  const openS = (performance.now() - opened) / 1000;
  let s = store.stats();
  out(`memstore built (adds + close) in ${buildS.toFixed(1)} s, hnswlib-node (float32, M 16, efConstruction 200) in ${hnswBuildS.toFixed(1)} s (${(buildS / hnswBuildS).toFixed(2)}x); reopened in ${openS.toFixed(2)} s; ${s.pages} pages; ${s.bytesPerVector.toFixed(0)} B per vector (stats().bytesPerVector)`);
  out();
  for (const l of table(await measureAll([...storeSettings(store), ...hnswSettings], truth))) out(l);
  out();

  if (values.filters === true) {
    out('filtered searches (default nprobe; a search goes on past it, nearest page first, until it holds its candidates):');
    out();
    out('| filter | matching | recall@10 vs float32 among them | p50 µs | QPS | fewest results | p50 unfiltered, same rounds |');
    out('|---|---:|---:|---:|---:|---:|---:|');
    for (const [field, every] of [['s1', 100], ['s10', 10], ['s50', 2]] as const) {
      const matching = live.filter((_, i) => i % every === 0);
      const filteredTruth = truthOf(matching);
      let fewest = Infinity;
      const filtered: Setting = {
        label: field,
        run: async (q) => {
          const ids = (await store.search(q, { k: K, filter: { [field]: true } })).map((h) => h.id);
          fewest = Math.min(fewest, ids.length);
          return ids;
        },
      };
      const plain: Setting = { label: 'unfiltered', run: async (q) => (await store.search(q, { k: K })).map((h) => h.id) };
      const [f, u] = await measureAll([filtered, plain], filteredTruth);
      out(`| ${field}: true (${100 / every}%) | ${matching.length} | ${f!.recall.toFixed(3)} | ${f!.p50.toFixed(0)} | ${f!.qps.toFixed(0)} | ${fewest} | ${u!.p50.toFixed(0)} |`);
    }
    out();
  }

  const insertStart = performance.now();
  for (let i = 0; i < inserts; i += 100) {
    const batch = Array.from({ length: Math.min(100, inserts - i) }, (_, j) => ({ id: `new-${i + j}`, vector: newVector(i + j) }));
    await store.add(batch);
  }
  const insertS = (performance.now() - insertStart) / 1000;
  out(`inserted ${inserts} vectors into the built index in batches of 100: ${(inserts / insertS).toFixed(0)} per second`);
  await store.delete(Array.from({ length: inserts }, (_, i) => `new-${i}`));

  const compact = async (what: string, withHnsw: boolean): Promise<void> => {
    const compactStart = performance.now();
    await store.compact();
    const compactS = (performance.now() - compactStart) / 1000;
    s = store.stats();
    out(`compact() ${what} (re-clusters the pages) in ${compactS.toFixed(1)} s: ${s.pages} pages, ${s.bytesPerVector.toFixed(0)} B per vector`);
    out();
    for (const l of table(await measureAll([...storeSettings(store), ...(withHnsw ? hnswSettings : [])], truth))) out(l);
    out();
  };
  await compact('after the build', true);

  if (churn > 0) {
    // Every (1/churn)-th vector goes, and as many new ones come.
    const step = Math.max(1, Math.round(1 / churn));
    const gone = live.filter((_, i) => i % step === 0).map(([id]) => id);
    const incoming: [string, Float32Array][] = gone.map((_, j) => [`churn-${j}`, newVector(inserts + j)]);
    const churnStart = performance.now();
    for (let at = 0; at < gone.length; at += 100) {
      await store.delete(gone.slice(at, at + 100));
      await store.add(incoming.slice(at, at + 100).map(([id, vector]) => ({ id, vector })));
    }
    const churnS = (performance.now() - churnStart) / 1000;
    const goneSet = new Set(gone);
    live = [...live.filter(([id]) => !goneSet.has(id)), ...incoming];
    truth = truthOf(live);
    s = store.stats();
    out(`churn after that compaction: ${gone.length} vectors (${(100 * churn).toFixed(0)}%) deleted and as many added, in ${churnS.toFixed(1)} s: ${s.pages} pages, ${s.bytesPerVector.toFixed(0)} B per vector`);
    out();
    for (const l of table(await measureAll(storeSettings(store), truth))) out(l);
    out();
    await compact('after the churn', false);
  }
  await store.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
