import { randomBytes } from 'node:crypto';
import { accessSync, closeSync, constants, existsSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, resolve, sep } from 'node:path';
import { InvalidArgumentError } from 'commander';
import { shippedDataset, syntheticDataset, type Dataset } from './datasets.js';
import { checkMagnitudes, readVectors } from './vector-files.js';
import { vectorBounds } from '../input.js';
import { isLink, isStoreFileName, realPath, storesAbove } from '../store/files.js';
import { listTemporary, unlistTemporary } from '../temporaries.js';
import { MAX_DIM } from '../options.js';
import { MAX_PCA_DIM } from '../limits.js';
import { PCA_MIN_ROWS } from '../pca/pca.js';
import { DEFAULT_K, DEFAULT_OUT, DEFAULT_PCA_LIST, parseBytes, parseCount, parsePcaList } from './args.js';
import { CHARTS_MISSING, formatTable, machine, renderChart } from '../../bench/report.js';
import { hnswAvailable, HNSW_MISSING } from '../../bench/baselines.js';
import { missing, optionalPackage } from '../../bench/optional.js';
import { Progress, type OnProgress } from './progress.js';
import { fastestWithin, recommend } from '../../bench/recommend.js';
import { matrix, runStudy, studySteps, type StudyConfig } from '../../bench/study.js';
import { formatSweep, renderSweepChart, runIndexSweep, sweepSteps } from '../../bench/index-sweep.js';
import { DEFAULT_OVERSAMPLE, PCA_OVERSAMPLE, type Metric } from '../options.js';
import { CODEC_NAMES, type CodecName } from '../codec/codec.js';
import { kernels } from '../kernels/wasm.js';
import { MemstoreError } from '../errors.js';
import { makeBenchDir, removeBenchDir } from '../../bench/temp-dirs.js';

/** The codecs `--codecs` names (all of them when absent); a usage error for an unknown one. */
export function parseCodecList(list: string | undefined): CodecName[] {
  if (list === undefined) return [...CODEC_NAMES];
  const names = list.split(',').map((s) => s.trim());
  for (const name of names) {
    if (!(CODEC_NAMES as readonly string[]).includes(name)) throw new InvalidArgumentError(`unknown codec ${JSON.stringify(name)} in --codecs (one of ${CODEC_NAMES.join(', ')})`);
  }
  // A codec named twice is studied once (it had run, and printed, the same configurations twice).
  return [...new Set(names)] as CodecName[];
}

/** Flags of `memstore bench`, as commander parses them. */
export interface BenchFlags {
  data?: string;
  queries?: string;
  dim?: number;
  n?: number;
  k: number;
  metric: Metric;
  synthetic?: boolean;
  pca: string;
  codecs?: string;
  hnsw: boolean;
  index: boolean;
  out: string;
  json?: string;
  chart?: string;
  budget?: string;
  count?: string;
  kernels?: boolean;
  quick?: boolean;
}

/**
 * The most dimensions whose PCA settings the default `--pca` list studies: each configuration fits
 * its own model on TRAIN_SIZE vectors, 8 s at 2,048 dimensions and 60 s at 4,096 (bench/results/pca.md,
 * "The eigensolver's inner loops in WebAssembly"), times every codec. Past it a `--pca` list given is studied, up to MAX_PCA_DIM.
 */
const DEFAULT_PCA_MAX_DIM = 2048;

/** The most float32 values --synthetic makes (4 GiB): its vectors are all made in memory first. */
const SYNTHETIC_MAX_VALUES = 2 ** 30;

function loadData(flags: BenchFlags): Dataset {
  const data = loadVectors(flags);
  // A study over no vectors printed a table of NaN and exited 0.
  if (data.docs.length === 0) throw new InvalidArgumentError(`${data.name}: no data vectors to study${flags.queries === undefined && data.queries.length > 0 ? ` (its only ${data.queries.length === 1 ? 'vector is' : `${data.queries.length} vectors are`} held out as queries)` : ''}`);
  if (data.queries.length === 0) throw new InvalidArgumentError(`${flags.queries ?? data.name}: no query vectors`);
  return data;
}

function loadVectors(flags: BenchFlags): Dataset {
  if (flags.synthetic === true) {
    // --data (or --queries) beside --synthetic had been ignored without a word.
    if (flags.data !== undefined || flags.queries !== undefined) throw new InvalidArgumentError('--synthetic makes its own vectors: give it or --data, not both');
    const n = flags.n ?? 10_000;
    const dim = flags.dim ?? 256;
    // Refused before a vector is made: generating them first ran for minutes and gigabytes before the store refused the dimension.
    if (dim > MAX_DIM) throw new InvalidArgumentError(`--dim ${dim}: a store takes at most ${MAX_DIM} dimensions`);
    if (n * dim > SYNTHETIC_MAX_VALUES) throw new InvalidArgumentError(`--synthetic --n ${n} --dim ${dim} is ${n * dim} values; it makes at most ${SYNTHETIC_MAX_VALUES} (4 GiB) in memory: use a smaller set, or --data`);
    return syntheticDataset(n, Math.min(1000, Math.max(10, Math.floor(n / 10))), dim);
  }
  if (flags.data === undefined) {
    if (flags.queries !== undefined) throw new InvalidArgumentError('--queries needs --data');
    const shipped = shippedDataset();
    return { ...shipped, docs: firstN(shipped.docs, flags.n, 'the shipped set') };
  }
  for (const [option, file] of [['--data', flags.data], ['--queries', flags.queries]] as const) if (file === '') throw new InvalidArgumentError(`${option} needs a file name`);
  const docs = readVectors(flags.data, flags.dim);
  let rows = docs.rows;
  let queries: Float32Array[];
  if (flags.queries !== undefined) {
    queries = readVectors(flags.queries, docs.dim, `the data (${flags.data})`).rows;
  } else {
    // Without a query file, hold out the last 10% (at most 1000) of the data as queries.
    const held = Math.min(1000, Math.max(1, Math.floor(rows.length / 10)));
    queries = rows.slice(rows.length - held);
    rows = rows.slice(0, rows.length - held);
  }
  rows = firstN(rows, flags.n, flags.queries === undefined ? `${flags.data} (${queries.length} held out as queries)` : flags.data);
  // As for --synthetic: `--kernels` over a 70,000-d file had run silently for minutes past 2 GB.
  if (docs.dim > MAX_DIM) throw new InvalidArgumentError(`${flags.data}: vectors of ${docs.dim} dimensions; a store takes at most ${MAX_DIM}`);
  return { name: flags.data, dim: docs.dim, docs: rows, queries };
}

/** The first `n` of `rows` (all without `n`); more than there are is refused: a study of fewer vectors than asked had run without a word. */
function firstN(rows: Float32Array[], n: number | undefined, name: string): Float32Array[] {
  if (n === undefined) return rows;
  if (n > rows.length) throw new InvalidArgumentError(`--n ${n}: ${name} holds ${rows.length} data vectors`);
  return rows.slice(0, n);
}

/** Vectors PCA and rq codes train on, in the study's stores and the sweep's. */
const TRAIN_SIZE = 4096;

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/**
 * Writes every one of `files` or none: each to a temporary file beside it first (removed if a signal
 * ends the run), then each renamed into place. A chart that could not be written had left the JSON
 * of the run written and its table not (a hostile pass, `--chart /dev/full`). Returns the paths.
 */
function writeAll(files: readonly { readonly file: string; readonly content: string }[]): string[] {
  const temps: string[] = [];
  try {
    for (const { file, content } of files) {
      mkdirSync(dirname(file), { recursive: true });
      const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
      listTemporary(temp, 'file');
      temps.push(temp);
      writeFileSync(temp, content, { flag: 'wx' });
    }
    files.forEach(({ file }, i) => {
      renameSync(temps[i]!, file);
      unlistTemporary(temps[i]!);
    });
    return files.map(({ file }) => file);
  } finally {
    for (const temp of temps) {
      rmSync(temp, { force: true });
      unlistTemporary(temp);
    }
  }
}

/**
 * Makes sure `file` can be written once the study is done, before it starts: `file` not a directory,
 * and the nearest directory above it that exists writable (write() makes the rest). The study had
 * run for a minute and then failed on EEXIST or EISDIR with nothing written. Nothing is made here:
 * a run refused later for another argument had left its empty --out directory behind.
 */
function checkWritable(file: string, option: string): void {
  const path = resolve(file);
  try {
    if (existsSync(path) && statSync(path).isDirectory()) throw new Error('it is a directory');
    // A device or FIFO in its place would be renamed over (the outputs are written beside, then renamed).
    if (existsSync(path) && !statSync(path).isFile()) throw new Error('it is not a regular file');
    let above = dirname(path);
    while (!existsSync(above) && dirname(above) !== above) above = dirname(above);
    if (!statSync(above).isDirectory()) throw new Error(`${above} is not a directory`);
    accessSync(above, constants.W_OK);
  } catch (e) {
    throw new InvalidArgumentError(`${option} ${file}: cannot be written (${(e as Error).message})`);
  }
}

/**
 * Where the table goes: beside the JSON, under its name with `.md` for `.json` (any case:
 * `results.json` → `results.md`; a name without `.json` gets `.md` added). It was `results.md` in
 * the JSON's directory, whatever the JSON was called: `--json ~/notes/run.json` wrote over
 * `~/notes/results.md`.
 */
export function tableFileFor(jsonFile: string): string {
  const path = resolve(jsonFile);
  return `${/\.json$/i.test(path) ? path.slice(0, -'.json'.length) : path}.md`;
}

/** The files a bench writes: the JSON report, the table, the chart and the index sweep's chart. */
export interface BenchOutputs {
  readonly json: string;
  readonly table: string;
  readonly chart: string;
  readonly indexChart: string;
}

/** How every table this command writes begins. */
const TABLE_HEADING = '# memstore bench\n';

/** The first `bytes` bytes of the file at `path` as UTF-8 (fewer where it is shorter); undefined when it cannot be read. */
function headOf(path: string, bytes: number): string | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const head = Buffer.alloc(bytes);
    return head.subarray(0, readSync(fd, head, 0, head.length, 0)).toString('utf8');
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Whether the file at `path` begins as a table this command writes begins (TABLE_HEADING). */
function writtenByBench(path: string): boolean {
  return headOf(path, Buffer.byteLength(TABLE_HEADING)) === TABLE_HEADING;
}

/** Whether the file at `path` is a JSON report this command writes (its `tool`); false for anything unreadable. */
function reportByBench(path: string): boolean {
  try {
    return (JSON.parse(readFileSync(path, 'utf8')) as { tool?: unknown } | null)?.tool === 'memstore bench';
  } catch {
    return false;
  }
}

/** Whether the file at `path` begins as the charts this command draws do (vega's SVG of marks); false for anything unreadable. */
function chartByBench(path: string): boolean {
  const head = headOf(path, 400);
  return head !== undefined && head.startsWith('<svg') && head.includes('class="marks"');
}

/** The device and inode of the file at `path`, when one is there: two names of one file (a hard link) share them. */
function fileIdOf(path: string): string | undefined {
  try {
    const st = statSync(path);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

/**
 * The files `flags` name, links resolved, refused with a usage error (exit 2) before the study
 * starts (and checked again before they are written) when two of them are the same file, by name
 * or as hard links (`--json c.json --chart c.md` wrote the chart, then the table over it; through a
 * link, `--chart` had written over the JSON), when one is an input of the run (`--chart` over
 * `--data` had replaced the data with the chart), lies inside a store directory or is named as a
 * store's files are (a chart named like a log segment in a store's `wal/` broke that store), is a
 * loop of links, or when a file there is not an earlier run's of its kind: a JSON report, a table
 * beside its JSON (FILE.md is written over only when FILE itself is there too, never when it stands
 * alone), a chart (`--chart notes.txt` had replaced the notes). The table and the index chart go
 * beside the JSON and the chart where links lead.
 */
export function benchOutputs(flags: Pick<BenchFlags, 'out' | 'json' | 'chart'> & Partial<Pick<BenchFlags, 'data' | 'queries'>>): BenchOutputs {
  // An empty --out had put results.json at the root of the file system (`${''}/results.json`).
  if (flags.out === '' && (flags.json === undefined || flags.chart === undefined)) throw new InvalidArgumentError('--out needs a directory name');
  // Resolved as given, not through resolve() or join(), which take `..` by name where the kernel
  // takes it after the link before it (realPath()).
  const json = realPath(flags.json ?? `${flags.out}${sep}results.json`);
  const chart = realPath(flags.chart ?? `${flags.out}${sep}results.svg`);
  const outputs: BenchOutputs = { json, table: realPath(tableFileFor(json)), chart, indexChart: realPath(chart.replace(/(\.svg)?$/, '-index.svg')) };
  const named: [string, string][] = [
    [outputs.json, flags.json === undefined ? '--out (results.json)' : '--json'],
    [outputs.table, flags.json === undefined ? '--out (results.md)' : "--json's table"],
    [outputs.chart, flags.chart === undefined ? '--out (results.svg)' : '--chart'],
    [outputs.indexChart, flags.chart === undefined ? '--out (results-index.svg)' : "--chart's index chart"],
  ];
  const ids = named.map(([path]) => fileIdOf(path));
  for (let i = 0; i < named.length; i++) {
    for (let j = i + 1; j < named.length; j++) {
      if (named[i]![0] === named[j]![0] || (ids[i] !== undefined && ids[i] === ids[j])) throw new InvalidArgumentError(`${named[i]![1]} and ${named[j]![1]} are the same file, ${named[i]![0]}: name files apart`);
    }
  }
  const inputs = ([['--data', flags.data], ['--queries', flags.queries]] as const).filter((x): x is readonly ['--data' | '--queries', string] => x[1] !== undefined && x[1] !== '');
  for (const [i, [path, option]] of named.entries()) {
    for (const [input, file] of inputs) {
      if (realPath(file) === path || (ids[i] !== undefined && fileIdOf(file) === ids[i])) throw new InvalidArgumentError(`${option} ${path} is the ${input} file: the run would write over its own input; name another output`);
    }
    const store = storesAbove(path)[0];
    if (store !== undefined) throw new InvalidArgumentError(`${option} ${path} lies inside the store directory ${store}; write the results elsewhere`);
    if (isStoreFileName(basename(path))) throw new InvalidArgumentError(`${option} ${path} is named as a store's own files are; name the output otherwise`);
    if (isLink(path)) throw new InvalidArgumentError(`${option} ${path} is a loop of links (or a chain too long to follow)`);
  }
  const theirs = (path: string, ours: (p: string) => boolean) => !existsSync(path) || !statSync(path).isFile() || ours(path);
  for (const [path, option, ours, kind] of [[outputs.json, named[0]![1], reportByBench, 'memstore bench report'], [outputs.chart, named[2]![1], chartByBench, 'chart of memstore bench'], [outputs.indexChart, named[3]![1], chartByBench, 'chart of memstore bench']] as const) {
    if (!theirs(path, ours)) throw new InvalidArgumentError(`${option} ${path}: a file is there that no earlier run wrote (not a ${kind}); name another, or move that file`);
  }
  // A table is written over only where an earlier run wrote it: beside its JSON, and starting with
  // the heading a run writes (a user's notes.md beside their own notes.json was written over).
  if (existsSync(outputs.table) && (!existsSync(outputs.json) || !writtenByBench(outputs.table))) {
    throw new InvalidArgumentError(`${named[1]![1]} ${outputs.table}: a table is there that no earlier run wrote beside its JSON; name another${flags.json === undefined ? ' --out' : ' --json'}, or move that file`);
  }
  return outputs;
}

/** The flags of the study that `--kernels` would ignore, as given (those left at their defaults are not named). */
function ignoredByKernels(flags: BenchFlags): string[] {
  const given: [boolean, string][] = [
    [flags.codecs !== undefined, '--codecs'],
    [flags.pca !== DEFAULT_PCA_LIST, '--pca'],
    [flags.budget !== undefined, '--budget'],
    [flags.count !== undefined, '--count'],
    [flags.json !== undefined, '--json'],
    [flags.chart !== undefined, '--chart'],
    [flags.out !== DEFAULT_OUT, '--out'],
    [flags.k !== DEFAULT_K, '--k'],
    [flags.metric !== 'cosine', '--metric'],
    [!flags.hnsw, '--no-hnsw'],
    [!flags.index, '--no-index'],
    [flags.quick === true, '--quick'],
    [flags.n !== undefined, '--n'],
  ];
  return given.filter(([yes]) => yes).map(([, name]) => name);
}

/**
 * `memstore bench --kernels`: the kernel micro-benchmarks at the data's dimension, nothing else. The
 * study's options beside it are refused: `--kernels --codecs bogus --budget 2XB` had run and exited
 * 0, none of them read (a hostile pass).
 */
async function benchKernels(flags: BenchFlags): Promise<void> {
  const ignored = ignoredByKernels(flags);
  if (ignored.length > 0) throw new InvalidArgumentError(`--kernels runs the kernel micro-benchmarks only, at the data's dimension; ${ignored.join(', ')} ${ignored.length === 1 ? 'is' : 'are'} not read there: leave ${ignored.length === 1 ? 'it' : 'them'} out`);
  const data = loadData(flags);
  // Nothing else runs with --kernels, so a missing tinybench is a failure (exit 2), not a part left out.
  if ((await optionalPackage('tinybench')) === undefined) throw new Error(`${missing('tinybench', 'the kernel micro-benchmarks')}, and --kernels runs nothing else`);
  const { runKernelBench } = await import('../../bench/kernels.bench.js');
  await runKernelBench({ dims: [data.dim] });
}

/**
 * The data and queries checked against the magnitudes every store of `configs` takes (vectorBounds():
 * 'dot' and 'l2' stores; f16 codes take less), before anything is built.
 */
function checkDataFits(flags: BenchFlags, data: Dataset, configs: readonly StudyConfig[]): void {
  // A PCA store of fewer vectors never trains: its row had been published under its PCA label with the data's own dimension.
  if (data.docs.length < PCA_MIN_ROWS && configs.some((c) => c.pca !== undefined)) throw new InvalidArgumentError(`--pca: PCA fits on ${PCA_MIN_ROWS} vectors at least, the data holds ${data.docs.length} to store; give --pca none`);
  for (const config of configs) {
    const bounds = vectorBounds({ metric: flags.metric, codec: config.codec, dim: data.dim, pca: config.pca ?? null });
    if (bounds === undefined) continue;
    const store = `a ${flags.metric} store of ${config.codec}${config.pca === undefined ? '' : ' with PCA'}`;
    checkMagnitudes(data.name, data.docs, bounds, store);
    if (flags.queries !== undefined) checkMagnitudes(flags.queries, data.queries, bounds, store);
    else checkMagnitudes(data.name, data.queries, bounds, `${store} (as a query held out of the data)`, data.docs.length);
  }
}

/**
 * What every store of the study needs, checked before anything runs: the search kernels
 * (UNSUPPORTED under `node --jitless`) and a temporary directory to make them in (IO naming TMPDIR).
 * Both had failed the run only after the baselines had run for minutes (a hostile pass).
 */
function checkCanStudy(): void {
  kernels();
  let dir: string;
  try {
    dir = makeBenchDir('memstore-bench-check-');
  } catch (e) {
    throw new MemstoreError('IO', `cannot make a temporary directory in ${tmpdir()} (TMPDIR) for the study's stores`, { cause: e, file: tmpdir() });
  }
  removeBenchDir(dir);
}

export async function bench(flags: BenchFlags): Promise<void> {
  const progress = (line: string) => process.stderr.write(`${line}\n`);
  if (flags.kernels === true) return benchKernels(flags);
  const { json: jsonFile, table: mdFile, chart: chartFile, indexChart: indexChartFile } = benchOutputs(flags);
  // What can be refused without the data is refused before it is read or made.
  const budget = flags.budget === undefined ? undefined : parseBytes(flags.budget);
  const count = flags.count === undefined ? undefined : parseCount(flags.count);
  if ((budget === undefined) !== (count === undefined)) throw new InvalidArgumentError('--budget and --count go together');
  const codecs = parseCodecList(flags.codecs);
  let data = loadData(flags);
  if (flags.quick === true) data = { ...data, name: `${data.name}, --quick subset`, docs: data.docs.slice(0, 300), queries: data.queries.slice(0, 30) };
  const hnsw = flags.hnsw && hnswAvailable();
  if (flags.hnsw && !hnsw) progress(HNSW_MISSING);

  const defaultPca = flags.pca === DEFAULT_PCA_LIST;
  // PCA takes at most MAX_PCA_DIM dimensions: above them a list asking for PCA is refused now (the
  // run had failed at its first PCA setting, minutes in). The default list studies PCA up to
  // DEFAULT_PCA_MAX_DIM only (said so past it), as every configuration fits its own.
  const pcaTakes = data.dim <= MAX_PCA_DIM;
  const pcaByDefault = data.dim <= DEFAULT_PCA_MAX_DIM;
  const pcaList = !pcaByDefault && defaultPca ? 'none' : flags.quick === true && defaultPca ? 'none,25%' : flags.pca;
  const pcas = parsePcaList(pcaList, data.dim);
  if (!pcaTakes && pcas.some((p) => p !== undefined)) throw new InvalidArgumentError(`--pca ${flags.pca}: PCA takes at most ${MAX_PCA_DIM} dimensions, the data has ${data.dim}; give --pca none`);
  if (!pcaByDefault && defaultPca) {
    progress(`memstore bench: ${data.dim} dimensions, ${pcaTakes ? `past the ${DEFAULT_PCA_MAX_DIM} whose PCA settings it studies unasked (each configuration's fit takes minutes past them): give --pca to study some` : `past the ${MAX_PCA_DIM} PCA takes`}: no PCA settings studied`);
  }
  const configs = matrix(pcas, codecs);
  checkDataFits(flags, data, configs);
  // Once every argument is known good: a refused run writes nothing.
  checkWritable(jsonFile, flags.json === undefined ? '--out' : '--json');
  checkWritable(mdFile, flags.json === undefined ? '--out' : "--json's table");
  checkWritable(chartFile, flags.chart === undefined ? '--out' : '--chart');
  // The index sweep's chart too: a directory in its place had failed the run at its end, with the JSON and the study's chart written.
  if (flags.index) checkWritable(indexChartFile, flags.chart === undefined ? '--out (results-index.svg)' : "--chart's index chart");
  checkCanStudy();
  progress(`memstore bench: ${data.name}: ${data.docs.length} vectors, ${data.queries.length} queries, dim ${data.dim}, ${flags.metric}, k=${flags.k}; ${configs.length} configurations x rescoring off/on`);
  // On a terminal, a bar over the steps of the study and of the index sweep after it (counts and an
  // ETA; it had ended with the study, the sweep's minutes left out); in a log, a line per step.
  const bar = process.stderr.isTTY === true ? new Progress('memstore bench, steps') : undefined;
  const own = studySteps(configs.length, hnsw);
  const later = flags.index ? sweepSteps(configs.length, hnsw) : 0;
  const studyAndSweep = async (onStep: OnProgress | undefined) => {
    const { rows, truth } = await runStudy({ data, configs, trainSize: TRAIN_SIZE, k: flags.k, metric: flags.metric, hnsw, laterSteps: later, onProgress: bar === undefined ? progress : () => undefined, ...(onStep === undefined ? {} : { onStep }) });
    const sweep = flags.index ? await runIndexSweep({ data, truth, k: flags.k, metric: flags.metric, hnsw, configs, trainSize: TRAIN_SIZE, onProgress: bar === undefined ? progress : () => undefined, ...(onStep === undefined ? {} : { onStep: (done: number) => onStep(own + done, own + later) }) }) : undefined;
    return { rows, sweep };
  };
  const { rows, sweep } = bar === undefined ? await studyAndSweep(undefined) : await bar.during(studyAndSweep);

  const table = formatTable(rows, flags.k) + (sweep === undefined ? '' : `\n\n${formatSweep(sweep, flags.k)}\n`);
  const rec = budget !== undefined && count !== undefined ? recommend(rows, budget, count, flags.k) : undefined;
  const fastest = budget !== undefined && count !== undefined && sweep !== undefined ? fastestWithin(sweep, budget, count, flags.k) : undefined;
  const advice = rec === undefined ? undefined : fastest === undefined ? rec.text : `${rec.text}\n${fastest.text}`;
  process.stdout.write(`\n${data.name}: ${data.docs.length} vectors, ${data.queries.length} queries, dim ${data.dim}, metric ${flags.metric}\n\n${table}\n`);
  if (advice !== undefined) process.stdout.write(`\n${advice}\n`);

  const m = machine();
  const report = {
    tool: 'memstore bench',
    version: packageVersion(),
    date: new Date().toISOString(),
    machine: m,
    data: { name: data.name, count: data.docs.length, queries: data.queries.length, dim: data.dim },
    options: { k: flags.k, metric: flags.metric, pca: pcaList, quick: flags.quick === true, oversample: { ...DEFAULT_OVERSAMPLE, pcaAtLeast: PCA_OVERSAMPLE }, trainSize: Math.min(TRAIN_SIZE, data.docs.length), hnsw },
    rows,
    ...(sweep === undefined ? {} : { index: sweep }),
    ...(rec === undefined ? {} : { recommendation: { budgetBytes: budget, count, label: rec.row?.label ?? null, text: advice, ...(fastest === undefined ? {} : { fastest: fastest.row === undefined ? null : { config: fastest.row.config, nprobe: fastest.row.effort, recall10: fastest.row.recall10, qps: fastest.row.qps } }) } }),
  };
  const subtitle = [data.name, `${data.docs.length} vectors, ${data.queries.length} queries, dim ${data.dim}, ${flags.metric}, k=${flags.k}; ${m.cpus} cores, Node ${m.node}`];
  const chart = await renderChart(rows, flags.k, subtitle);
  if (chart === undefined) progress(CHARTS_MISSING);
  const sweepChart = sweep === undefined || chart === undefined ? undefined : await renderSweepChart(sweep, flags.k, subtitle);
  const files = [
    { file: jsonFile, content: `${JSON.stringify(report, null, 2)}\n` },
    { file: mdFile, content: `${TABLE_HEADING}\n${subtitle.join(': ')}\n\n${table}\n${advice === undefined ? '' : `\n${advice}\n`}` },
    ...(chart === undefined ? [] : [{ file: chartFile, content: chart }]),
    ...(sweepChart === undefined ? [] : [{ file: indexChartFile, content: sweepChart }]),
  ];
  // Checked again: a file made at an output's name while the study ran (a user's) is not written over.
  benchOutputs(flags);
  const written = writeAll(files);
  progress(`wrote ${written.join(', ')}`);
}
