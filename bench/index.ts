/**
 * The page-clustered index as a store serves it: a MemStore built with its defaults (int8 codes,
 * cosine, pages from `pages.from` vectors on, rescoring on, cache off so each query is searched),
 * closed and reopened, then searched with its default `nprobe`, an `nprobe` sweep and `exact: true`;
 * after `compact()` (which re-clusters the pages) the sweep again; beside hnswlib-node (float32,
 * M 16, efConstruction 200, ef swept), side by side in one run, one query in flight, single thread.
 * Recall@10 is against exact float32 search.
 *
 *   node dist/bench/index.js [--data docs.f32 --queries queries.f32 --dim N] [--n first-N] [--nprobe 16,32,64,128] [--ef 32,64,128,256] [--max-page 192] [--inserts 2000] [--churn 0.2]
 *
 * --inserts: vectors added to the built, reopened store (the docs after the first N, else
 * perturbed copies of the first ones under new ids), timed in batches of 100: the insert rate into
 * a built index; they are deleted again afterwards.
 * --churn: the share of the vectors then deleted and replaced by as many new ones (the docs after
 * the first N and the inserts, else perturbed copies), measured before and after compact().
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import hnswlib from 'hnswlib-node';
import { MemStore } from '../src/memstore.js';
import { rng } from '../src/random.js';
import { exactSearch } from './baselines.js';
import { DATA_OPTIONS, datasetFrom } from './data.js';
import { median } from './percentile.js';

const K = 10;

const { values } = parseArgs({
  options: { ...DATA_OPTIONS, nprobe: { type: 'string' }, ef: { type: 'string' }, 'max-page': { type: 'string' }, inserts: { type: 'string' }, from: { type: 'string' }, churn: { type: 'string' } },
});
const list = (v: string | undefined, d: number[]) => (v === undefined ? d : v.split(',').map(Number));
const all = datasetFrom(values);
const n = Math.min(all.docs.length, values.n === undefined ? all.docs.length : Number(values.n));
const data = { ...all, docs: all.docs.slice(0, n), queries: all.queries.slice(0, 1000) };
const spare = all.docs.slice(n);
const maxPage = values['max-page'] === undefined ? 192 : Number(values['max-page']);
const from = values.from === undefined ? 16384 : Number(values.from);
const inserts = values.inserts === undefined ? 2000 : Number(values.inserts);
const churn = values.churn === undefined ? 0.2 : Number(values.churn);

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
/** The truth over the first N docs, which hnswlib-node is built from. */
const firstTruth = truth;

interface Row {
  setting: string;
  recall: number;
  p50: number;
  qps: number;
}

async function measure(store: MemStore, setting: string, options: { nprobe?: number; exact?: boolean }): Promise<Row> {
  for (const q of data.queries.slice(0, 20)) await store.search(q, { k: K, ...options });
  let found = 0;
  const times: number[] = [];
  const started = performance.now();
  for (const [i, q] of data.queries.entries()) {
    const t = performance.now();
    const hits = await store.search(q, { k: K, ...options });
    times.push(performance.now() - t);
    for (const h of hits) if (truth[i]!.has(h.id)) found++;
  }
  const total = performance.now() - started;
  return { setting, recall: found / (data.queries.length * K), p50: median(times) * 1000, qps: (data.queries.length * 1000) / total };
}

function table(rows: readonly Row[], exactP50: number): string[] {
  return ['| search | recall@10 vs float32 | p50 µs | QPS | speedup over exact: true |', '|---|---:|---:|---:|---:|', ...rows.map((r) => `| ${r.setting} | ${r.recall.toFixed(3)} | ${r.p50.toFixed(0)} | ${r.qps.toFixed(0)} | ${(exactP50 / r.p50).toFixed(1)}x |`)];
}

async function sweep(store: MemStore): Promise<{ rows: Row[]; exactP50: number }> {
  const rows: Row[] = [];
  const s = store.stats();
  rows.push(await measure(store, `default (nprobe ${s.nprobe} of ${s.pages})`, {}));
  for (const nprobe of list(values.nprobe, [16, 32, 64, 128])) rows.push(await measure(store, `nprobe ${nprobe}`, { nprobe }));
  const exact = await measure(store, 'exact: true', { exact: true });
  rows.push(exact);
  return { rows, exactP50: exact.p50 };
}

const lines: string[] = [];
const out = (l = '') => {
  lines.push(l);
  process.stdout.write(`${l}\n`);
};
out(`data: ${data.name}, ${n} x ${data.dim}-d, ${data.queries.length} queries, k ${K}; store: int8, cosine, rescoring on, cache off, pages { from: ${from}, maxPage: ${maxPage} }`);
out();

const dir = mkdtempSync(join(tmpdir(), 'memstore-index-bench-'));
try {
  const started = performance.now();
  let store = await MemStore.open(dir, { dim: data.dim, durability: 'none', cache: false, pages: { from, maxPage } });
  for (let at = 0; at < n; at += 1000) await store.add(data.docs.slice(at, at + 1000).map((vector, j) => ({ id: String(at + j), vector })));
  await store.close();
  const buildS = (performance.now() - started) / 1000;
  const opened = performance.now();
  store = await MemStore.open(dir, { cache: false, pages: { from, maxPage } });
  const openS = (performance.now() - opened) / 1000;
  let s = store.stats();
  out(`built (adds + close) in ${buildS.toFixed(1)} s; reopened in ${openS.toFixed(2)} s; ${s.pages} pages; ${s.bytesPerVector.toFixed(0)} B per vector (stats().bytesPerVector)`);
  out();
  const built = await sweep(store);
  for (const l of table(built.rows, built.exactP50)) out(l);
  out();

  const insertStart = performance.now();
  for (let i = 0; i < inserts; i += 100) {
    const batch = Array.from({ length: Math.min(100, inserts - i) }, (_, j) => ({ id: `new-${i + j}`, vector: newVector(i + j) }));
    await store.add(batch);
  }
  const insertS = (performance.now() - insertStart) / 1000;
  out(`inserted ${inserts} vectors into the built index in batches of 100: ${(inserts / insertS).toFixed(0)} per second`);
  await store.delete(Array.from({ length: inserts }, (_, i) => `new-${i}`));

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
    out(`churn: ${gone.length} vectors (${(100 * churn).toFixed(0)}%) deleted and as many added, in ${churnS.toFixed(1)} s: ${s.pages} pages, ${s.bytesPerVector.toFixed(0)} B per vector`);
    out();
    const churned = await sweep(store);
    for (const l of table(churned.rows, churned.exactP50)) out(l);
    out();
  }

  const compactStart = performance.now();
  await store.compact();
  const compactS = (performance.now() - compactStart) / 1000;
  s = store.stats();
  out(`compact() (re-clusters the pages by k-means over every vector) in ${compactS.toFixed(1)} s: ${s.pages} pages, ${s.bytesPerVector.toFixed(0)} B per vector`);
  out();
  const compacted = await sweep(store);
  for (const l of table(compacted.rows, compacted.exactP50)) out(l);
  out();
  await store.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const index = new hnswlib.HierarchicalNSW('cosine', data.dim);
const hbuilt = performance.now();
index.initIndex({ maxElements: n, m: 16, efConstruction: 200, randomSeed: 100 });
data.docs.forEach((v, i) => index.addPoint(Array.from(v), i));
out(`hnswlib-node (float32, M 16, efConstruction 200), built in ${((performance.now() - hbuilt) / 1000).toFixed(1)} s:`);
out();
out('| ef | recall@10 vs float32 | p50 µs | QPS |');
out('|---:|---:|---:|---:|');
const arrays = data.queries.map((q) => Array.from(q));
for (const ef of list(values.ef, [32, 64, 128, 256])) {
  index.setEf(ef);
  let found = 0;
  const times: number[] = [];
  const started = performance.now();
  arrays.forEach((q, i) => {
    const t = performance.now();
    const { neighbors } = index.searchKnn(q, K);
    times.push(performance.now() - t);
    for (const id of neighbors) if (firstTruth[i]!.has(String(id))) found++;
  });
  const total = performance.now() - started;
  out(`| ${ef} | ${(found / (arrays.length * K)).toFixed(3)} | ${(median(times) * 1000).toFixed(0)} | ${((arrays.length * 1000) / total).toFixed(0)} |`);
}
