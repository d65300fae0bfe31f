/**
 * The durability benchmarks: insert throughput per durability mode beside a run with the log
 * disabled (same code, log writes discarded), recovery time of a logged store, open time of a
 * checkpointed one, disk use after deleting half and compacting, and what checkpoints cost
 * (`--only checkpoints`: that section alone): the checkpoint of many small changed records, a
 * compaction after deleting half, and the checkpoint of a few large ones with the growth of the
 * process's anonymous memory while it runs.
 *
 *   node dist/bench/durability.js [--n 100000] [--quick] [--only checkpoints] [--rounds 3]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { performance } from 'node:perf_hooks';
import { benchArgs } from './args.js';
import { nodeFileLayer, type FileHandle, type FileLayer } from '../io/file-layer.js';
import { MemStore } from '../src/memstore.js';
import type { Durability } from '../src/options.js';
import { walDir } from '../src/store/files.js';
import { shippedDataset } from '../src/cli/datasets.js';
import { median } from './percentile.js';

/** The real file layer, except that writes and fsyncs under `dir` go nowhere: "logging disabled". */
function discarding(dir: string): FileLayer {
  const nothing: FileHandle = {
    read: async () => 0,
    write: async () => undefined,
    sync: async () => undefined,
    truncate: async () => undefined,
    size: async () => 0,
    close: async () => undefined,
  };
  const inside = (path: string) => path === dir || path.startsWith(dir + sep);
  return {
    ...nodeFileLayer,
    open: (path, mode) => (inside(path) ? Promise.resolve(nothing) : nodeFileLayer.open(path, mode)),
    list: (d) => (inside(d) ? Promise.resolve([]) : nodeFileLayer.list(d)),
    exists: (p) => (inside(p) ? Promise.resolve(true) : nodeFileLayer.exists(p)),
    mkdir: (d) => (inside(d) ? Promise.resolve() : nodeFileLayer.mkdir(d)),
    syncDir: (d) => (inside(d) ? Promise.resolve() : nodeFileLayer.syncDir(d)),
    remove: (p) => (inside(p) ? Promise.resolve() : nodeFileLayer.remove(p)),
  };
}

interface Corpus {
  vectors: Float32Array[];
  texts: string[];
}

function corpus(): Corpus {
  const data = shippedDataset();
  const texts = readFileSync(new URL('../../bench/data/wordnet-use512-1k/docs.jsonl', import.meta.url), 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { text: string }).text);
  return { vectors: data.docs, texts };
}

function record(c: Corpus, i: number) {
  return { id: `doc-${i}`, vector: c.vectors[i % c.vectors.length]!, text: c.texts[i % c.texts.length]!, meta: { n: i } };
}

function tempStore(): string {
  return mkdtempSync(join(tmpdir(), 'memstore-durability-'));
}

type Shape = 'single x64 concurrent' | 'batch 100' | 'batch 1000';

async function insertRate(c: Corpus, durability: Durability, logging: boolean, shape: Shape, n: number): Promise<number> {
  const dir = tempStore();
  try {
    const store = await MemStore.open(dir, {
      dim: 512,
      durability,
      cache: false,
      ...(logging ? {} : { files: discarding(walDir(dir)) }),
    });
    const started = performance.now();
    if (shape === 'single x64 concurrent') {
      let next = 0;
      const worker = async () => {
        for (let i = next++; i < n; i = next++) await store.add([record(c, i)]);
      };
      await Promise.all(Array.from({ length: 64 }, worker));
    } else {
      const size = shape === 'batch 100' ? 100 : 1000;
      for (let at = 0; at < n; at += size) await store.add(Array.from({ length: Math.min(size, n - at) }, (_, j) => record(c, at + j)));
    }
    const rate = n / ((performance.now() - started) / 1000);
    await store.close();
    return rate;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function fill(dir: string, c: Corpus, n: number, checkpointBytes?: number): Promise<MemStore> {
  const store = await MemStore.open(dir, { dim: 512, durability: 'none', cache: false, ...(checkpointBytes === undefined ? {} : { checkpointBytes }) });
  for (let at = 0; at < n; at += 1000) await store.add(Array.from({ length: Math.min(1000, n - at) }, (_, j) => record(c, at + j)));
  return store;
}

async function timeOpen(dir: string): Promise<{ ms: number; count: number }> {
  const started = performance.now();
  const store = await MemStore.open(dir, { cache: false });
  const ms = performance.now() - started;
  const count = store.stats().count;
  await store.close();
  return { ms, count };
}

/** RssAnon of this process, bytes (0 where /proc is not there). */
function rssAnon(): number {
  try {
    const m = /RssAnon:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    return m === null ? 0 : Number(m[1]) * 1024;
  } catch {
    return 0;
  }
}

/** Runs `work`, sampling RssAnon every 5 ms: its time, and the most RssAnon grew over its value before. */
async function timedWithPeak(work: () => Promise<void>): Promise<{ ms: number; growth: number }> {
  const before = rssAnon();
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, rssAnon())), 5);
  const started = performance.now();
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  const ms = performance.now() - started;
  return { ms, growth: Math.max(peak, rssAnon()) - before };
}

/** A small record as STATE.md's figures take it: a random 64-d vector, a 120-byte text, five metadata fields. */
function smallRecord(i: number, next: () => number): { id: string; vector: Float32Array; text: string; meta: Record<string, string | number | boolean> } {
  const vector = new Float32Array(64);
  for (let j = 0; j < 64; j++) vector[j] = next() - 0.5;
  const text = `record ${i} `.padEnd(120, 'abcdefghij');
  return { id: `r-${i}`, vector, text, meta: { n: i, kind: i % 2 === 0 ? 'even' : 'odd', score: i / 7, tag: `t${i % 100}`, ok: i % 3 === 0 } };
}

/** A generator of uniform numbers in [0, 1), seeded. */
function uniform(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/** A store in `dir` that took `n` small records (smallRecord(), seeded), in batches of 1,000. */
async function smallStore(dir: string, n: number, seed: number, options: { checkpointBytes?: number }): Promise<MemStore> {
  const next = uniform(seed);
  const store = await MemStore.open(dir, { dim: 64, durability: 'none', cache: false, ...options });
  for (let at = 0; at < n; at += 1000) await store.add(Array.from({ length: Math.min(1000, n - at) }, (_, j) => smallRecord(at + j, next)));
  return store;
}

/**
 * The checkpoint of `n` changed small records: a store that took them with no checkpoint yet
 * (`checkpointBytes` 1 GiB), then `close()`, which writes it (the time of close() is the checkpoint's).
 */
async function checkpointOfSmall(n: number): Promise<{ ms: number; growth: number }> {
  const dir = tempStore();
  try {
    const store = await smallStore(dir, n, 7, { checkpointBytes: 2 ** 30 });
    return await timedWithPeak(() => store.close());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** compact() of a checkpointed store of `n` small records after deleting every second one. */
async function compactAfterDeletes(n: number): Promise<{ ms: number; growth: number }> {
  const dir = tempStore();
  try {
    await (await smallStore(dir, n, 11, {})).close();
    const again = await MemStore.open(dir, { cache: false });
    await again.delete(Array.from({ length: Math.floor(n / 2) }, (_, i) => `r-${2 * i}`));
    const result = await timedWithPeak(() => again.compact());
    await again.close();
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The checkpoint of `count` records whose metadata is about 1 MB each (a 64-d vector, no text). */
async function checkpointOfLarge(count: number): Promise<{ ms: number; growth: number }> {
  const dir = tempStore();
  try {
    const next = uniform(13);
    const store = await MemStore.open(dir, { dim: 64, durability: 'none', cache: false, checkpointBytes: 2 ** 32 });
    for (let i = 0; i < count; i++) {
      const vector = new Float32Array(64);
      for (let j = 0; j < 64; j++) vector[j] = next() - 0.5;
      await store.add([{ id: `big-${i}`, vector, meta: { blob: `${i}:`.padEnd(1_000_000, 'x') } }]);
    }
    // What filling left for V8 to collect is not the checkpoint's.
    (globalThis as { gc?: () => void }).gc?.();
    return await timedWithPeak(() => store.close());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The checkpoint section: each measurement `rounds` times, interleaved, the median shown (each run in this process, one after another). */
export async function runCheckpointBench(options: { n: number; rounds: number; write: (line: string) => void }): Promise<void> {
  const { n, rounds, write } = options;
  const large = Math.max(1, Math.min(300, Math.round(n / 333)));
  const runs = { small: [] as { ms: number; growth: number }[], compact: [] as { ms: number; growth: number }[], large: [] as { ms: number; growth: number }[] };
  for (let round = 0; round < rounds; round++) {
    runs.small.push(await checkpointOfSmall(n));
    runs.compact.push(await compactAfterDeletes(n));
    runs.large.push(await checkpointOfLarge(large));
  }
  const line = (what: string, all: { ms: number; growth: number }[]) => {
    const ms = all.map((r) => r.ms);
    const growth = all.map((r) => r.growth / 2 ** 20);
    write(`| ${what} | ${median(ms).toFixed(0)} | ${Math.min(...ms).toFixed(0)}–${Math.max(...ms).toFixed(0)} | ${median(growth).toFixed(0)} |`);
  };
  write(`## Checkpoints (median of ${rounds} rounds, each measurement in turn; ms, and RssAnon's growth while it ran, MiB${(globalThis as { gc?: unknown }).gc === undefined ? '; run with node --expose-gc for the large records\' growth to start from a collected heap' : ''})\n`);
  write('| what | median ms | range ms | RssAnon growth MiB |');
  write('|---|---:|---:|---:|');
  line(`checkpoint of ${n} changed records (64-d, 120-byte text, 5 metadata fields; close())`, runs.small);
  line(`compact() of ${n} such records after deleting half`, runs.compact);
  line(`checkpoint of ${large} records of 1 MB metadata (close())`, runs.large);
}

function diskBytes(s: MemStore): number {
  return s.stats().diskBytesPerVector * s.stats().count;
}

export async function runDurabilityBench(options: { n: number; insertN: number; rounds: number; write: (line: string) => void }): Promise<void> {
  const { n, insertN, rounds, write } = options;
  const c = corpus();
  // Warm-up (JIT, page cache, native modules) so the first measured cell is not penalized.
  await insertRate(c, 'none', true, 'batch 100', Math.min(insertN, 2000));
  write(`## Insert throughput (512-d USE-lite vectors with their WordNet gloss and metadata; records/s, median of ${rounds} interleaved rounds of ${insertN} records per cell)\n`);
  write('| shape | log disabled | none | batch | always | always / log disabled |');
  write('|---|---:|---:|---:|---:|---:|');
  for (const shape of ['single x64 concurrent', 'batch 100', 'batch 1000'] as const) {
    // Rounds interleave the columns so that machine noise hits each alike; the median of each is shown.
    const runs: Record<'off' | Durability, number[]> = { off: [], none: [], batch: [], always: [] };
    for (let round = 0; round < rounds; round++) {
      runs.off.push(await insertRate(c, 'none', false, shape, insertN));
      for (const mode of ['none', 'batch', 'always'] as const) runs[mode].push(await insertRate(c, mode, true, shape, insertN));
    }
    const [off, none, batch, always] = [median(runs.off), median(runs.none), median(runs.batch), median(runs.always)];
    write(`| ${shape} | ${off.toFixed(0)} | ${none.toFixed(0)} | ${batch.toFixed(0)} | ${always.toFixed(0)} | ${(always / off).toFixed(2)} |`);
  }

  write(`\n## Recovery and open (${n} records of 512-d with text)\n`);
  const logged = tempStore();
  const checkpointed = tempStore();
  const deleted = tempStore();
  const half = tempStore();
  try {
    const a = await fill(logged, c, n, 2 ** 40);
    await a.abandon();
    const recovery = await timeOpen(logged);
    write(`- recovery (replay of ${recovery.count} logged records, no checkpoint): ${(recovery.ms / 1000).toFixed(2)} s`);

    const b = await fill(checkpointed, c, n);
    await b.close();
    const open = await timeOpen(checkpointed);
    write(`- open of a checkpointed store of ${open.count} records: ${(open.ms / 1000).toFixed(2)} s`);

    write(`\n## Disk use after deleting half and compacting (${n} records)\n`);
    const d = await fill(deleted, c, n);
    const before = diskBytes(d);
    await d.delete(Array.from({ length: n / 2 }, (_, i) => `doc-${2 * i}`));
    await d.compact();
    const after = diskBytes(d);
    await d.close();
    const h = await MemStore.open(half, { dim: 512, durability: 'none', cache: false });
    for (let at = 1; at < n; at += 2000) {
      await h.add(Array.from({ length: 1000 }, (_, j) => at + 2 * j).filter((i) => i < n).map((i) => record(c, i)));
    }
    await h.close();
    const hh = await MemStore.open(half, { cache: false });
    const halfBytes = diskBytes(hh);
    const halfCount = hh.stats().count;
    const codeBytes = hh.stats().codeBytesPerVector;
    await hh.close();
    write(`- all ${n}: ${(before / 1e6).toFixed(1)} MB (the log included); half deleted and compacted: ${(after / 1e6).toFixed(1)} MB; a store that only held that half: ${(halfBytes / 1e6).toFixed(1)} MB; ratio ${(after / halfBytes).toFixed(2)}`);
    // The raw size of a record: its vector, its code, its text and its metadata as JSON.
    let raw = 0;
    for (let i = 1; i < n; i += 2) {
      const r = record(c, i);
      raw += r.vector.byteLength + codeBytes + Buffer.byteLength(r.text) + Buffer.byteLength(JSON.stringify(r.meta));
    }
    write(`- an insert-only store at rest (the half, closed): ${(halfBytes / halfCount).toFixed(0)} B per record on disk against ${(raw / halfCount).toFixed(0)} B raw (vector + code + text + metadata): ${(halfBytes / raw).toFixed(2)}x`);
  } finally {
    for (const d of [logged, checkpointed, deleted, half]) rmSync(d, { recursive: true, force: true });
  }
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].split(sep).slice(-2).join('/'));
if (invokedDirectly) {
  const { values } = benchArgs('dist/bench/durability.js', { options: { n: { type: 'string' }, quick: { type: 'boolean' }, only: { type: 'string' }, rounds: { type: 'string' } } }, { numbers: ['n', 'rounds'] });
  const quick = values.quick === true;
  if (values.only !== undefined && values.only !== 'checkpoints') {
    process.stderr.write(`dist/bench/durability.js: --only takes 'checkpoints', got '${values.only}'\n`);
    process.exit(2);
  }
  const rounds = values.rounds === undefined ? (quick ? 1 : 3) : Number(values.rounds);
  const write = (line: string) => process.stdout.write(`${line}\n`);
  if (values.only === 'checkpoints') {
    await runCheckpointBench({ n: values.n === undefined ? (quick ? 4000 : 100_000) : Number(values.n), rounds, write });
    process.exit(0);
  }
  await runDurabilityBench({
    n: values.n === undefined ? (quick ? 4000 : 100_000) : Number(values.n),
    insertN: quick ? 1000 : 10_000,
    rounds,
    write,
  });
  write('');
  await runCheckpointBench({ n: values.n === undefined ? (quick ? 4000 : 100_000) : Number(values.n), rounds, write });
}
