/**
 * The memory API at scale: `remember` and `recall` over real sentence embeddings (WordNet glosses
 * and their USE-lite vectors from ../shared/datasets, looked up by text so that the embedder's own
 * time, measured by bench/embedder.ts, is left out), then the same recall with the query embedded
 * by USE-lite, as an agent pays it.
 *
 *   node dist/bench/memory-api.js --data DIR [--copies 1] [--namespaces 1] [--queries 500]
 *
 * DIR holds docs.jsonl/docs.f32/queries.jsonl/queries.f32 (wordnet-use512, wordnet-use512-50k).
 * --copies c: every text remembered in c namespaces (c x the memories); --namespaces n: the texts of
 * each copy spread over n namespaces, recall asking one of them.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { benchArgs } from './args.js';
import { useLite } from '../src/embedders/index.js';
import { MemStore } from '../src/memstore.js';
import { median, percentile } from './percentile.js';

const { values } = benchArgs('dist/bench/memory-api.js', { options: { data: { type: 'string' }, copies: { type: 'string' }, namespaces: { type: 'string' }, queries: { type: 'string' } } }, { numbers: ['copies', 'namespaces', 'queries'] });
if (values.data === undefined) throw new Error('--data DIR is required');
const dir = values.data;
const copies = Number(values.copies ?? 1);
const spread = Number(values.namespaces ?? 1);
const DIM = 512;

function texts(name: string): string[] {
  return readFileSync(join(dir, name), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { text: string }).text);
}
function rows(name: string, n: number): Float32Array[] {
  const b = readFileSync(join(dir, name));
  const all = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  return Array.from({ length: n }, (_, i) => all.subarray(i * DIM, (i + 1) * DIM));
}
const docTexts = texts('docs.jsonl');
const queryTexts = texts('queries.jsonl').slice(0, Number(values.queries ?? 500));
const vectors = new Map<string, Float32Array>();
rows('docs.f32', docTexts.length).forEach((v, i) => vectors.set(docTexts[i]!, v));
rows('queries.f32', queryTexts.length).forEach((v, i) => vectors.set(queryTexts[i]!, v));
const lookup = (ts: string[]) => Promise.resolve(ts.map((t) => vectors.get(t)!));

const store = mkdtempSync(join(tmpdir(), 'memstore-memory-bench-'));
try {
  const memory = await MemStore.open(store, { dim: DIM, embed: lookup, durability: 'batch' });
  const started = performance.now();
  for (let c = 0; c < copies; c++) {
    for (let ns = 0; ns < spread; ns++) {
      const mine = docTexts.filter((_, i) => i % spread === ns);
      for (let at = 0; at < mine.length; at += 64) await memory.remember(mine.slice(at, at + 64), { namespace: `c${c}-n${ns}` });
    }
  }
  const rememberS = (performance.now() - started) / 1000;
  const count = memory.stats().count;
  const namespace = 'c0-n0';
  const share = docTexts.filter((_, i) => i % spread === 0).length / count;
  const times: number[] = [];
  for (const q of queryTexts) {
    const t = performance.now();
    await memory.recall(q, { namespace, k: 10 });
    times.push(performance.now() - t);
  }
  const embed = await useLite();
  const embedTimes: number[] = [];
  for (const q of queryTexts.slice(0, 100)) {
    const t = performance.now();
    await embed([q]);
    embedTimes.push(performance.now() - t);
  }
  const s = memory.stats();
  process.stdout.write(
    `| memories | namespaces | recall's namespace holds | remember/s (64 a call, embedding excluded) | recall p50 / p99 µs (embedding excluded) | USE-lite, one query p50 ms | B/vector |\n|---:|---:|---:|---:|---:|---:|---:|\n` +
      `| ${count} | ${copies * spread} | ${(100 * share).toFixed(0)}% | ${(count / rememberS).toFixed(0)} | ${(median(times) * 1000).toFixed(0)} / ${(percentile(times, 99) * 1000).toFixed(0)} | ${median(embedTimes).toFixed(1)} | ${s.bytesPerVector.toFixed(0)} |\n`,
  );
  await memory.close();
} finally {
  rmSync(store, { recursive: true, force: true });
}
