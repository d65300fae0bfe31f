/**
 * The durability benchmarks: insert throughput per durability mode beside a run with the log
 * disabled (same code, log writes discarded), recovery time of a logged store, open time of a
 * checkpointed one, and disk use after deleting half and compacting.
 *
 *   node dist/bench/durability.js [--n 100000] [--quick]
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
  const { values } = benchArgs('dist/bench/durability.js', { options: { n: { type: 'string' }, quick: { type: 'boolean' } } }, { numbers: ['n'] });
  const quick = values.quick === true;
  await runDurabilityBench({
    n: values.n === undefined ? (quick ? 4000 : 100_000) : Number(values.n),
    insertN: quick ? 1000 : 10_000,
    rounds: quick ? 1 : 3,
    write: (line) => process.stdout.write(`${line}\n`),
  });
}
