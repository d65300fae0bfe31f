#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { MemStore } from '../memstore.js';
import { isMemstoreError, MemstoreError } from '../errors.js';
import { CODEC_NAMES, type CodecName } from '../codec/codec.js';
import { METRICS, type Metric } from '../options.js';
import { exportStore } from '../export/export-store.js';
import { FORMATS, type ExportFormat } from '../export/formats.js';
import { removeTemporariesOnSignal } from '../temporaries.js';
import { importStore } from '../export/import-store.js';
import { Progress } from './progress.js';
import type { BenchFlags } from './bench.js';
import { DEFAULT_K, DEFAULT_OUT, DEFAULT_PCA_LIST } from './args.js';
import { repairStore } from '../store/repair.js';
import { stateBeyondRepair } from '../store/state.js';
import { checkStore, requireStore, type Problem } from '../store/verify.js';
import { importMarkerPath } from '../store/files.js';

/**
 * Output that cannot be written (stdout or stderr on a full device, a pipe its reader closed) is an
 * IO failure of the command: exit status 2, unless it had already failed or found corruption (1,
 * which stands), and a line on stderr when stdout was lost and stderr still takes it. Unhandled, the
 * stream's error had crashed the process with a stack trace and exit status 1, which says
 * corruption: `memstore verify` of a healthy store into /dev/full (a hostile pass). Lost stderr alone
 * (progress, a message) does not fail a command that did its work.
 */
function failOnLostOutput(): void {
  let lost: Error | undefined;
  const report = (e: Error) => {
    if (lost !== undefined) return;
    lost = e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EPIPE') process.stderr.write(`memstore: IO: cannot write the output${code === undefined ? '' : ` (${code})`}\n`);
  };
  process.stdout.on('error', report);
  process.stderr.on('error', () => {});
  process.on('exit', () => {
    // A write that failed just before an exit (`--help` into a full device: the parser exits at once)
    // has not yet reported its error, which the stream already holds.
    const failed = lost ?? process.stdout.errored ?? undefined;
    if (failed === undefined) return;
    report(failed);
    if (process.exitCode === undefined || process.exitCode === 0) process.exitCode = 2;
  });
}
failOnLostOutput();

/** The package's version, read from the package.json two levels above dist/src/cli. */
function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

/** Decimal digits only, as a file's `memstore.dim` is read: Number() took 1e1 and 0x10 too. */
function positiveInt(value: string): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer in decimal digits');
  return n;
}

/**
 * Read-only: what is in the directory, without replaying or changing anything; exit code 1 when it
 * lists problems, as verify (it had exited 0 beside a list of damage: a hostile pass).
 */
async function inspect(dir: string): Promise<void> {
  const report = await checkStore(dir);
  const { problems, arena, vectors, ...rest } = report;
  const summary = (a: typeof arena) => (a === undefined ? undefined : { generation: a.generation, segments: a.segments, blobs: a.blobs, bytes: a.bytes, orphans: a.orphans, tornTail: a.tornTail });
  const out = { ...rest, arena: summary(arena), vectors: summary(vectors), problems };
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  if (problems.length > 0) process.exitCode = 1;
}

/** Every checksum; exit code 1 when anything is damaged, naming file and offset. */
async function verify(dir: string): Promise<void> {
  const report = await checkStore(dir);
  const w = report.wal;
  process.stdout.write(
    `state: ${report.state.records} records checked (${report.state.file})\n` +
      `index: ${report.index.committed} bytes committed (${report.index.file})${report.index.uncommitted === 0 ? '' : `, ${report.index.uncommitted} bytes past them (a checkpoint that never committed; cut at next open)`}\n` +
      `wal: ${w.segments} segments, ${w.bytes} bytes, ${w.recordsAfterCheckpoint} records after checkpoint LSN ${report.checkpoint.lsn}` +
      `${w.tornTail === undefined ? '' : `, torn tail at ${w.tornTail.file}:${w.tornTail.offset} (cut at next open: ${w.tornTail.what})`}\n` +
      `texts: ${report.arena === undefined ? 'unreadable' : `generation ${report.arena.generation}, ${report.arena.segments} segments, ${report.arena.blobs} blobs, ${report.arena.bytes} bytes`}\n` +
      `vectors: ${report.vectors === undefined ? 'unreadable' : `generation ${report.vectors.generation}, ${report.vectors.segments} segments, ${report.vectors.blobs} vectors, ${report.vectors.bytes} bytes`}\n`,
  );
  for (const p of report.problems) {
    process.stdout.write(`${p.code} ${p.file}${p.offset === undefined ? '' : ` at ${p.offset}`}${p.id === undefined ? '' : ` (record ${JSON.stringify(p.id)})`}: ${p.what}\n`);
  }
  if (report.damagedRecords.length > 0) {
    process.stdout.write(`damaged records (${report.damagedRecords.length}): ${report.damagedRecords.map((id) => JSON.stringify(id)).join(', ')}\n`);
  }
  process.stdout.write(report.problems.length === 0 ? 'ok\n' : `${report.problems.length} problem(s); ${verifyAdvice(dir, report.problems)}\n`);
  if (report.problems.length > 0) process.exitCode = 1;
}

/**
 * What to do about what verify found. An import that did not finish is imported again, not repaired
 * (repair refuses it); a file that could not be read is not repaired either (repair cannot read it:
 * a FIFO as a text segment had been met with advice to repair, which then failed on it).
 */
function verifyAdvice(dir: string, problems: readonly Problem[]): string {
  if (problems.some((p) => p.file === importMarkerPath(dir))) return `import into ${dir} again (it starts over)`;
  const unreadable = [...new Set(problems.filter((p) => p.code === 'IO').map((p) => p.file))];
  if (unreadable.length > 0) return `memstore repair cannot read ${unreadable.join(', ')} either: make ${unreadable.length === 1 ? 'it' : 'them'} readable or move ${unreadable.length === 1 ? 'it' : 'them'} away, then verify again`;
  return `memstore repair ${dir} moves the damaged records to a report`;
}

/**
 * `e`, where it is damage that `memstore repair` mends, with that said: compact and export of a
 * damaged store had stopped at its CORRUPTION without a word of what to do (a hostile pass). An
 * unfinished import is imported again, not repaired, and an interrupted repair already says so.
 */
function withRepairAdvice(dir: string, e: unknown): unknown {
  // Paths resolved: the store names its marker by the absolute path, and `memstore compact ki` had
  // advised a repair of a relative ki, which repair then refused (a hostile pass).
  if (!isMemstoreError(e, 'CORRUPTION') || (e.file !== undefined && resolve(e.file) === resolve(importMarkerPath(dir))) || e.message.includes('memstore repair')) return e;
  // A state repair refuses (its errors say what to do instead); the error met may be another's.
  if (stateBeyondRepair(dir)) return e;
  return new MemstoreError('CORRUPTION', `${e.message}; memstore repair ${dir} moves the damaged records to a report, and leaves a store this can run on`, {
    cause: e,
    ...(e.file === undefined ? {} : { file: e.file }),
    ...(e.offset === undefined ? {} : { offset: e.offset }),
    ...(e.id === undefined ? {} : { id: e.id }),
  });
}

async function compact(dir: string): Promise<void> {
  try {
    await compactNow(dir);
  } catch (e) {
    throw withRepairAdvice(dir, e);
  }
}

async function compactNow(dir: string): Promise<void> {
  requireStore(dir);
  const store = await MemStore.open(dir);
  try {
    const before = store.stats();
    await new Progress('compacting, steps').during((onProgress) => store.compact({ onProgress }));
    const after = store.stats();
    process.stdout.write(`${before.count} records: ${before.diskBytes} bytes on disk before, ${after.diskBytes} after\n`);
  } finally {
    await store.close();
  }
}

/** Damaged records to a report, a clean store left behind. */
async function repair(dir: string, flags: { report?: string }): Promise<void> {
  const result = await new Progress('repairing, steps').during((onProgress) => repairStore(dir, { ...(flags.report === undefined ? {} : { report: flags.report }), onProgress }));
  process.stdout.write(
    `removed ${result.removedRecords.length} damaged record(s)${result.removedRecords.length === 0 ? '' : `: ${result.removedRecords.map((id) => JSON.stringify(id)).join(', ')}`}\n` +
      (result.removedKeys > 0 ? `removed ${result.removedKeys} damaged key(s) that named no record\n` : '') +
      (result.indexDamage > 0
        ? `index: ${result.indexDamage} damaged stretch(es), ${result.indexDamageBytes} bytes; a record without a document there is lost without a name (the checkpoint held ${result.checkpointRecords ?? 'an unrecorded number of'} records, ${result.recordsLoaded} were read)\n` +
          (result.possiblyStale > 0 ? `index: ${result.possiblyStale} record(s) read from blocks before a damaged one may be older versions, or deleted since: named in the report as possibly-stale\n` : '')
        : '') +
      `log: ${result.logDamage} damaged stretch(es), ${result.reappliedRecords} record(s) applied again\n` +
      `${result.count} records in the store; report: ${result.report}\n`,
  );
}

const program = new Command()
  .name('memstore')
  .version(version())
  .description('Embedded quantized vector memory: the storage/recall trade-off study and store tools')
  // A usage error (unknown option, missing argument, a value out of range) is bad input: exit 2, as
  // every other refusal; 1 means corruption. Commander has printed the message; inherited by commands.
  .exitOverride((e) => process.exit(e.exitCode === 0 ? 0 : 2));

program
  .command('bench')
  .description('recall, memory and speed of every codec x PCA x rescoring, beside exact float32 and HNSW (default data: the shipped WordNet USE-lite set)')
  .option('--data <file>', 'your embeddings: .fvecs, .npy (float32/float16), .jsonl with an "embedding" field, or raw float32 (.f32, .bin, .raw, .dat, no extension) with --dim')
  .option('--queries <file>', 'query embeddings in the same formats (default: the last 10% of --data, at most 1000)')
  .option('--dim <n>', 'dimension of raw float32 files (and of --synthetic data, default 256)', positiveInt)
  .option('--n <n>', 'use only the first n data vectors, at most as many as there are (--synthetic: how many to make, default 10000)', positiveInt)
  .option('--k <n>', 'neighbours per query', positiveInt, DEFAULT_K)
  .addOption(new Option('--metric <metric>', 'similarity').choices(METRICS).default('cosine'))
  .option('--synthetic', 'use a clustered synthetic data set instead of real embeddings')
  .option('--pca <list>', 'PCA settings to try: none, N% of dims, or N dims, comma separated', DEFAULT_PCA_LIST)
  .option('--codecs <list>', `codecs to try, comma separated (default: all: ${CODEC_NAMES.join(', ')})`)
  .option('--no-hnsw', 'skip the hnswlib-node baseline')
  .option('--no-index', 'skip the page index\'s nprobe sweep of every configuration (recall against queries/s beside hnswlib-node\'s ef sweep)')
  .option('--out <dir>', 'where results.md, results.json and results.svg go', DEFAULT_OUT)
  .option('--json <file>', 'write the JSON report here instead, and the table beside it (its name with .md for .json; a file of that name is kept unless the JSON is there too)')
  .option('--chart <file>', 'write the SVG chart (recall@k against RAM per vector) here instead; the index chart goes beside it, -index.svg')
  .option('--budget <size>', 'RAM budget for a recommendation, e.g. 2GB (needs --count)')
  .option('--count <n>', 'vectors the budget must hold, e.g. 5000000 or 5M')
  .option('--kernels', 'run the distance-kernel micro-benchmarks (tinybench) at the data set\'s dimension instead (the study\'s own options are refused beside it)')
  .option('--quick', 'a small subset (300 vectors, 30 queries, PCA none and 25%) to check the set-up in seconds')
  // Loaded when asked for: the bench's optional packages stay out of every other command.
  .action(async (flags: BenchFlags) => {
    removeTemporariesOnSignal();
    try {
      await (await import('./bench.js')).bench(flags);
    } catch (e) {
      throw benchError(e);
    }
  });

program
  .command('inspect')
  .argument('<dir>', 'store directory')
  .description('print what a store directory holds (configuration, checkpoint, log, arena) without changing it')
  .action((dir: string) => inspect(dir));

program
  .command('verify')
  .argument('<dir>', 'store directory')
  .description('check every checksum of the state, the write-ahead log, the index file, the filter columns and both arenas (texts, vectors); exit code 1 on corruption')
  .action((dir: string) => verify(dir));

program
  .command('compact')
  .argument('<dir>', 'store directory')
  .description('delete expired memories, checkpoint, collect both arenas, re-cluster the pages, rewrite the index and the state file, so disk use tracks live data')
  .action((dir: string) => compact(dir));

program
  .command('repair')
  .argument('<dir>', 'store directory')
  .option('--report <file>', 'where the report goes (default: DIR/repair-<UTC time>.jsonl)')
  .description('move every damaged record (and damaged stretch of the log) to a JSON-lines report with its raw bytes, and leave a clean store')
  .action((dir: string, flags: { report?: string }) => repair(dir, flags));

program
  .command('export')
  .argument('<dir>', 'store directory')
  .requiredOption('--out <file>', 'the file to write (never overwritten)')
  .addOption(new Option('--format <format>', 'file format (default: the --out extension: .jsonl, .arrow, .parquet)').choices(FORMATS))
  .description('write every record (id, vector as added, text, metadata) to a JSONL, Arrow or Parquet file for a bigger engine')
  .action(async (dir: string, flags: { out: string; format?: ExportFormat }) => {
    removeTemporariesOnSignal();
    let exported: Awaited<ReturnType<typeof exportStore>>;
    try {
      exported = await new Progress('exporting records').during((onProgress) => exportStore(dir, flags.out, { ...(flags.format === undefined ? {} : { format: flags.format }), onProgress }));
    } catch (e) {
      throw withRepairAdvice(dir, e);
    }
    const { records, format, metric, dim } = exported;
    // Import reads JSONL as cosine unless told (a store of another metric would come back searching
    // by the wrong one), and takes the dimension from the first vector, which a file of no records lacks.
    const needs = format !== 'jsonl' ? [] : [...(metric === 'cosine' ? [] : [`--metric ${metric}`]), ...(records === 0 ? [`--dim ${dim}`] : [])];
    const told = needs.length === 0 ? '' : `; the file carries no metric or dimension: import it with ${needs.join(' ')}`;
    process.stdout.write(`exported ${records} records to ${flags.out} (${format})${told}\n`);
  });

program
  .command('import')
  .argument('<file>', 'a JSONL, Arrow or Parquet file of { id, vector, text?, meta? } rows')
  .argument('<dir>', 'an existing, empty directory for the new store')
  .addOption(new Option('--format <format>', 'file format (default: the file extension)').choices(FORMATS))
  .option('--dim <n>', 'vector dimension (default: the file\'s)', positiveInt)
  .addOption(new Option('--metric <metric>', 'similarity (default: the one the file names, else cosine)').choices(METRICS))
  .addOption(new Option('--codec <codec>', 'codec of the new store (default int8)').choices(CODEC_NAMES))
  .description('make a new store from the rows of an exported file (a bad row leaves the directory empty)')
  .action(async (file: string, dir: string, flags: { format?: ExportFormat; dim?: number; metric?: Metric; codec?: CodecName }) => {
    removeTemporariesOnSignal();
    const { rows, records, dim } = await new Progress('importing rows').during((onProgress) => importStore(file, dir, { ...flags, onProgress }));
    process.stdout.write(`imported ${rows} rows into ${dir}: ${records} records of ${dim} dimensions\n`);
  });

/**
 * What the bench's own checks throw, as the other tools say it, with a code: a flag or a data file it
 * cannot take is INVALID_ARGUMENT, a file it cannot read IO (they had printed no code, or Node's
 * bare ENOENT text: a hostile pass).
 */
function benchError(e: unknown): unknown {
  if (isMemstoreError(e) || !(e instanceof Error)) return e;
  if (systemCode(e) !== undefined) return new MemstoreError('IO', e.message, { cause: e });
  if (e instanceof InvalidArgumentError || e instanceof RangeError) return new MemstoreError('INVALID_ARGUMENT', e.message, { cause: e });
  return e;
}

/**
 * The system's error code beneath an IO error (ENOENT, ENAMETOOLONG, ...), for a message that does
 * not name it already: "cannot create FILE" alone did not say why.
 */
function systemCode(e: unknown): string | undefined {
  for (let at: unknown = e, depth = 0; at instanceof Error && depth < 8; at = at.cause, depth++) {
    const code = (at as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
  }
  return undefined;
}

program.parseAsync().catch((e: unknown) => {
  if (isMemstoreError(e)) {
    const code = e.code === 'IO' ? systemCode(e.cause) : undefined;
    process.stderr.write(`memstore: ${e.code}: ${e.message}${code === undefined || e.message.includes(code) ? '' : ` (${code})`}\n`);
  }
  else process.stderr.write(`memstore: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = isMemstoreError(e, 'CORRUPTION') ? 1 : 2;
});
