/**
 * The measurement behind src/arena/ARENA.md, "Why segment files and not LMDB": the same blobs
 * (real WordNet glosses with small msgpack metadata, ~200 bytes each) written into the blob arena
 * and into an LMDB sub-database, both durably in batches; read back at random; then half deleted
 * and the disk use compared after the arena's collection and after LMDB's deletes (plus LMDB's
 * copy-compaction, the only way its file shrinks).
 *
 * Both stores run `--repeat` times, alternating; timings are the median (min-max), disk sizes are
 * the same every run.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/arena-vs-lmdb.js [--n 100000] [--batch 1000] [--reads 20000] [--repeat 3]
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { open, type Database, type RootDatabase } from 'lmdb';
import { pack } from 'msgpackr';
import { BlobArena, type BlobRef } from '../src/arena/arena.js';
import { arenaDir } from '../src/store/files.js';
import { median } from './percentile.js';
import { benchArgs } from './args.js';

interface Options {
  /** Blobs written. @default 100000 */
  n: number;
  /** Blobs per durable commit (arena sync, LMDB transaction). @default 1000 */
  batch: number;
  /** Random single reads timed. @default 20000 */
  reads: number;
  /** Runs per store. @default 3 */
  repeat: number;
}

function optionsFrom(argv: string[]): Options {
  const { values } = benchArgs('dist/bench/arena-vs-lmdb.js', { options: { n: { type: 'string' }, batch: { type: 'string' }, reads: { type: 'string' }, repeat: { type: 'string' } } }, { numbers: ['n', 'batch', 'reads', 'repeat'], argv });
  const number = (v: string | undefined, d: number) => (v === undefined ? d : Number(v));
  return { n: number(values.n, 100_000), batch: number(values.batch, 1000), reads: number(values.reads, 20_000), repeat: number(values.repeat, 3) };
}

/** n blobs: two real glosses as the text (a chunk an agent remembers) and the metadata a store keeps with it. */
function makeBlobs(n: number): Uint8Array[] {
  const path = fileURLToPath(new URL('../../bench/data/wordnet-use512-1k/docs.jsonl', import.meta.url));
  const glosses = readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => (JSON.parse(line) as { text: string }).text);
  return Array.from({ length: n }, (_, i) => {
    const text = `${glosses[i % glosses.length]!} ${glosses[(i * 7 + 3) % glosses.length]!}`;
    return pack({ text, meta: { source: 'wordnet', turn: i, at: 1_700_000_000_000 + i * 1000, tags: ['gloss', 'en'] } });
  });
}

interface DiskUse {
  bytes: number;
  /** Allocated blocks: what `du` shows (LMDB files can be sparse). */
  allocated: number;
}

function diskUse(paths: string[]): DiskUse {
  let bytes = 0;
  let allocated = 0;
  for (const p of paths) {
    const s = statSync(p);
    bytes += s.size;
    allocated += s.blocks * 512;
  }
  return { bytes, allocated };
}

function arenaFiles(dir: string): string[] {
  return readdirSync(arenaDir(dir)).map((name) => join(arenaDir(dir), name));
}

/** A random sample of indices, the same for both stores. */
function sample(n: number, count: number): number[] {
  let x = 12345;
  return Array.from({ length: count }, () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x % n;
  });
}

/** One run of one store. Times in ms or µs, sizes in bytes. */
interface Measured {
  writeMs: number;
  readUs: number;
  read10Us: number;
  reclaimMs: number;
  full: DiskUse;
  afterDeletes: DiskUse;
  reclaimed: DiskUse;
  onlyHalf: DiskUse;
}

async function benchArena(blobs: Uint8Array[], o: Options, picks: number[], dir: string): Promise<Measured> {
  const arena = await BlobArena.open({ dir, generation: 1 });
  const refs: BlobRef[] = [];
  const t0 = performance.now();
  for (let i = 0; i < blobs.length; i += o.batch) {
    for (let j = i; j < Math.min(i + o.batch, blobs.length); j++) refs.push(arena.append(blobs[j]!));
    await arena.sync();
  }
  const writeMs = performance.now() - t0;
  const full = diskUse(arenaFiles(dir));

  const t1 = performance.now();
  for (const i of picks) await arena.read(refs[i]!);
  const readUs = ((performance.now() - t1) * 1000) / picks.length;
  // Ten at once, as a search hands back its top 10.
  const t2 = performance.now();
  for (let k = 0; k + 10 <= picks.length; k += 10) await Promise.all(picks.slice(k, k + 10).map((i) => arena.read(refs[i]!)));
  const read10Us = ((performance.now() - t2) * 1000) / (picks.length / 10);

  const live: Array<[string, BlobRef]> = [];
  for (const [i, ref] of refs.entries()) {
    if (i % 2 === 0) live.push([String(i), ref]);
    else arena.release(ref);
  }
  const afterDeletes = diskUse(arenaFiles(dir));
  const t3 = performance.now();
  const { generation } = await arena.collect(live);
  await arena.finishCollect(generation);
  const reclaimMs = performance.now() - t3;
  const reclaimed = diskUse(arenaFiles(dir));
  await arena.close();

  const halfDir = join(dir, 'half');
  const half = await BlobArena.open({ dir: halfDir, generation: 1 });
  for (let i = 0; i < blobs.length; i += 2) half.append(blobs[i]!);
  await half.close();
  return { writeMs, readUs, read10Us, reclaimMs, full, afterDeletes, reclaimed, onlyHalf: diskUse(arenaFiles(halfDir)) };
}

/** Puts blobs[i] for every i that `keep` accepts, `batch` per durable transaction. */
async function lmdbFill(path: string, blobs: Uint8Array[], batch: number, keep: (i: number) => boolean): Promise<{ env: RootDatabase; db: Database<Buffer, string> }> {
  // As the store opens its state environment: durable commits, no compression.
  const env = open({ path, maxDbs: 4, compression: false });
  const db = env.openDB<Buffer, string>({ name: 'blobs', encoding: 'binary' });
  for (let i = 0; i < blobs.length; i += batch) {
    await db.transaction(() => {
      for (let j = i; j < Math.min(i + batch, blobs.length); j++) {
        const b = blobs[j]!;
        if (keep(j)) void db.put(lmdbKey(j), Buffer.from(b.buffer, b.byteOffset, b.byteLength));
      }
    });
  }
  return { env, db };
}

function lmdbKey(i: number): string {
  return `doc-${i}`;
}

async function benchLmdb(blobs: Uint8Array[], o: Options, picks: number[], dir: string): Promise<Measured> {
  const path = join(dir, 'blobs.mdb');
  const t0 = performance.now();
  const { env, db } = await lmdbFill(path, blobs, o.batch, () => true);
  const writeMs = performance.now() - t0;
  const full = diskUse([path]);

  const t1 = performance.now();
  for (const i of picks) db.get(lmdbKey(i));
  const readUs = ((performance.now() - t1) * 1000) / picks.length;
  const t2 = performance.now();
  for (let k = 0; k + 10 <= picks.length; k += 10) for (const i of picks.slice(k, k + 10)) db.get(lmdbKey(i));
  const read10Us = ((performance.now() - t2) * 1000) / (picks.length / 10);

  for (let i = 0; i < blobs.length; i += o.batch) {
    await db.transaction(() => {
      for (let j = i; j < Math.min(i + o.batch, blobs.length); j++) if (j % 2 === 1) void db.remove(lmdbKey(j));
    });
  }
  const afterDeletes = diskUse([path]);
  // LMDB reuses freed pages but never shrinks its file; a compacting copy is the only way back.
  const compactPath = join(dir, 'compacted.mdb');
  const t3 = performance.now();
  await env.backup(compactPath, true);
  const reclaimMs = performance.now() - t3;
  const reclaimed = diskUse([compactPath]);
  await env.close();

  const halfPath = join(dir, 'half.mdb');
  const half = await lmdbFill(halfPath, blobs, o.batch, (i) => i % 2 === 0);
  await half.env.close();
  return { writeMs, readUs, read10Us, reclaimMs, full, afterDeletes, reclaimed, onlyHalf: diskUse([halfPath]) };
}

const mb = (bytes: number): string => (bytes / 1e6).toFixed(1);

/** "median (min-max)" of a per-run figure. */
function spread(runs: Measured[], pick: (m: Measured) => number, digits: number): string {
  const values = runs.map(pick);
  const f = (v: number): string => v.toFixed(digits);
  return values.length === 1 ? f(values[0]!) : `${f(median(values))} (${f(Math.min(...values))}-${f(Math.max(...values))})`;
}

async function main(): Promise<void> {
  const o = optionsFrom(process.argv.slice(2));
  const blobs = makeBlobs(o.n);
  const payload = blobs.reduce((sum, b) => sum + b.length, 0);
  const picks = sample(o.n, o.reads);
  const cpu = cpus();
  console.log(`# arena vs LMDB: ${o.n} blobs, mean ${(payload / o.n).toFixed(0)} B (${mb(payload)} MB payload), durable commit every ${o.batch}, ${o.repeat} runs each`);
  console.log(`# node ${process.version}, ${cpu.length} cores (${cpu[0]?.model ?? 'unknown'}), ${process.platform}/${process.arch}, tmpdir ${tmpdir()}`);
  const stores = [
    { name: 'arena (segment files)', run: benchArena, reclaim: 'collect + finishCollect', runs: [] as Measured[] },
    { name: 'LMDB sub-database', run: benchLmdb, reclaim: 'compacting copy (env.backup)', runs: [] as Measured[] },
  ];
  for (let r = 0; r < o.repeat; r++) {
    for (const store of stores) {
      const dir = mkdtempSync(join(tmpdir(), 'memstore-arena-bench-'));
      try {
        store.runs.push(await store.run(blobs, o, picks, dir));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  console.log('| store | write blobs/s | read µs, one at a time | read µs, 10 concurrent (per 10) | MB full | MB after deleting half | MB after reclaiming | MB of a store that only held that half | reclaim ms |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const { name, runs, reclaim } of stores) {
    const last = runs[runs.length - 1]!;
    console.log(
      `| ${name} | ${spread(runs, (m) => o.n / (m.writeMs / 1000), 0)} | ${spread(runs, (m) => m.readUs, 1)} | ${spread(runs, (m) => m.read10Us, 1)} | ` +
        `${mb(last.full.bytes)} | ${mb(last.afterDeletes.bytes)} | ${mb(last.reclaimed.bytes)} | ${mb(last.onlyHalf.bytes)} | ${reclaim} ${spread(runs, (m) => m.reclaimMs, 0)} |`,
    );
  }
}

await main();
