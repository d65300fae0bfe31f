import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { benchOutputs, tableFileFor } from '../src/cli/bench.js';
import { lineReads, MAX_FILE_BYTES, readVectors, streamReads } from '../src/cli/vector-files.js';
import { CODEC_NAMES } from '../src/codec/codec.js';
import { MAX_PCA_DIM } from '../src/limits.js';
import { MemStore, type MemstoreError } from '../src/index.js';
import { bruteForce, loadFixture, recall, tempDir } from './helpers.js';
import { cliResult } from './support/cli.js';

const run = promisify(execFile);
const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

interface Row {
  kind: string;
  label: string;
  codec: string;
  pca: string;
  rescore: boolean;
  bytesPerVector: number;
  codeBytesPerVector: number;
  fixedBytes: number;
  vectors: number;
  compression: number;
  recall1: number;
  recall10: number;
  relativeLoss: number;
  qps: number;
  p50Us: number;
  p99Us: number;
  buildMs: number;
  pareto: boolean;
  paretoCodesOnly: boolean;
}

test('memstore bench --quick writes a table, a JSON report and a chart whose recall agrees with an independent computation', async () => {
  const out = tempDir();
  const { stdout } = await run(process.execPath, [cli, 'bench', '--quick', '--out', out, '--budget', '1GB', '--count', '5M'], {
    cwd: out,
    maxBuffer: 1 << 24,
  });
  assert.match(stdout, /\| configuration \|/);
  assert.match(stdout, /Recommended: /);
  const report = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as {
    machine: { cpus: number; node: string };
    data: { count: number; queries: number; dim: number };
    options: { k: number; metric: string };
    rows: Row[];
    recommendation: { label: string; budgetBytes: number; count: number };
  };
  assert.deepEqual(report.data, { ...report.data, count: 300, queries: 30, dim: 512 });
  assert.equal(report.options.k, 10);
  assert.ok(report.machine.cpus >= 1);
  const kinds = new Set(report.rows.map((r) => r.kind));
  assert.deepEqual([...kinds].sort(), ['exact-f32', 'hnsw-f32', 'memstore']);
  const mem = report.rows.filter((r) => r.kind === 'memstore');
  assert.equal(mem.length, CODEC_NAMES.length * 2 * 2, 'every codec x PCA {none, 25%} x rescoring {off, on}');
  for (const r of report.rows) {
    for (const v of [r.bytesPerVector, r.recall1, r.recall10, r.qps, r.p50Us, r.p99Us]) assert.ok(Number.isFinite(v) && v >= 0);
    assert.ok(r.recall10 <= 1 && Math.abs(r.relativeLoss - (1 - r.recall10)) < 1e-12);
    assert.equal(typeof r.pareto, 'boolean');
  }
  // The fronts are non-dominated and every other row is dominated by something.
  const dominated = (r: Row, among: Row[]) =>
    among.some((o) => o !== r && o.bytesPerVector <= r.bytesPerVector && o.recall10 >= r.recall10 && (o.bytesPerVector < r.bytesPerVector || o.recall10 > r.recall10));
  const codesOnly = report.rows.filter((r) => !r.rescore);
  for (const r of report.rows) {
    assert.equal(r.pareto, !dominated(r, report.rows), r.label);
    assert.equal(r.paretoCodesOnly, !r.rescore && !dominated(r, codesOnly), r.label);
  }
  assert.ok(report.rows.some((r) => r.paretoCodesOnly));
  // What grows with the count, measured per vector, times the count, and the model once.
  const { budgetBytes, count } = report.recommendation;
  const projected = (r: { bytesPerVector: number; fixedBytes: number; vectors: number }) => (r.bytesPerVector - r.fixedBytes / r.vectors) * count + r.fixedBytes;
  const chosen = mem.find((r) => r.label === report.recommendation.label);
  assert.ok(chosen && projected(chosen) <= budgetBytes);
  assert.ok(!mem.some((r) => projected(r) <= budgetBytes && r.recall10 > chosen.recall10));
  assert.ok(mem.some((r) => r.codec.startsWith('rq') && r.fixedBytes > 0), 'the rq rotation is counted');
  assert.ok(existsSync(join(out, 'results.svg')) && readFileSync(join(out, 'results.svg'), 'utf8').startsWith('<svg'));
  assert.ok(existsSync(join(out, 'results.md')));
  // The page index's nprobe sweep of every configuration beside hnswlib-node's ef sweep: in the table, the JSON and a second chart.
  assert.match(stdout, /memstore int8 pca=none pages, nprobe 1 \|/);
  type SweepRow = { kind: string; config: string; effort: number; recall10: number; qps: number };
  const index = (report as unknown as { index: { stores: { config: string; pages: number; defaultProbes: number; bytesPerVector: number; fixedBytes: number; vectors: number }[]; rows: SweepRow[] } }).index;
  assert.deepEqual(index.stores.map((st) => st.config).sort(), [...new Set(mem.map((r) => r.label.replace(/ rescore=(on|off)$/, '')))].sort(), 'a sweep for every configuration of the matrix');
  for (const st of index.stores) {
    const pages = index.rows.filter((r) => r.kind === 'pages' && r.config === st.config);
    assert.deepEqual(pages.map((r) => r.effort), [...pages.map((r) => r.effort)].sort((x, y) => x - y), st.config);
    assert.equal(pages[0]!.effort, 1, st.config);
    assert.equal(pages.at(-1)!.effort, st.pages, `${st.config}: the sweep ends probing every page`);
    assert.ok(pages.some((r) => r.effort === st.defaultProbes), st.config);
    assert.ok(pages.at(-1)!.recall10 >= pages[0]!.recall10, st.config);
  }
  // Probing every page is the exact scan of the codes, rescored: the answer of exact: true.
  const int8 = index.rows.filter((r) => r.kind === 'pages' && r.config === 'int8 pca=none');
  assert.ok(int8.at(-1)!.recall10 >= 0.95);
  assert.ok(index.rows.some((r) => r.kind === 'hnsw-f32'));
  for (const r of index.rows) assert.ok(r.recall10 >= 0 && r.recall10 <= 1 && r.qps > 0);
  // The fastest setting that reaches 0.95 and fits the budget, by the sweep's own rows.
  const stores = new Map(index.stores.map((st) => [st.config, st]));
  const qualifying = index.rows.filter((r) => r.kind === 'pages' && r.recall10 >= 0.95 && budgetBytes >= projected(stores.get(r.config)!));
  const fastest = (report.recommendation as unknown as { fastest: { config: string; nprobe: number; qps: number } | null }).fastest;
  if (qualifying.length === 0) assert.equal(fastest, null);
  else {
    assert.ok(fastest !== null && qualifying.some((r) => r.config === fastest.config && r.effort === fastest.nprobe && r.qps === fastest.qps));
    assert.ok(!qualifying.some((r) => r.qps > fastest.qps));
    assert.match(stdout, /Fastest within the budget/);
  }
  assert.ok(readFileSync(join(out, 'results-index.svg'), 'utf8').startsWith('<svg'));

  // Recompute two rows independently: the same store configuration, recall against brute force here.
  const { docs, queries } = loadFixture();
  const items = docs.slice(0, 300).map((vector, i) => ({ id: String(i), vector }));
  for (const codec of ['int8', 'fp8-e5m2'] as const) {
    const dir = tempDir();
    const store = await MemStore.open(dir, { dim: 512, codec, cache: false, durability: 'none' });
    await store.add(items);
    let r10 = 0;
    for (const q of queries.slice(0, 30)) {
      const hits = await store.search(q, { k: 10, rescore: false });
      r10 += recall(hits.map((h) => h.id), bruteForce('cosine', q, items, 10));
    }
    await store.close();
    const row = mem.find((r) => r.codec === codec && r.pca === 'none' && !r.rescore)!;
    assert.ok(Math.abs(row.recall10 - r10 / 30) < 1e-9, `${codec}: JSON ${row.recall10}, recomputed ${r10 / 30}`);
  }
});

test('memstore bench rejects a --budget without --count, unreadable data and an unknown codec with exit code 2, and makes no --out directory for them', async () => {
  const out = tempDir();
  await assert.rejects(run(process.execPath, [cli, 'bench', '--quick', '--out', out, '--budget', '1GB']), (e: { code: number }) => e.code === 2);
  await assert.rejects(run(process.execPath, [cli, 'bench', '--data', join(out, 'missing.f32'), '--dim', '8', '--out', out]), (e: { code: number }) => e.code === 2);
  for (const args of [['--budget', '1GB'], ['--codecs', 'int8,rq3'], ['--pca', '300%']]) {
    const fresh = join(tempDir(), 'not-yet', 'results');
    await assert.rejects(run(process.execPath, [cli, 'bench', '--quick', '--out', fresh, ...args]), (e: { code: number }) => e.code === 2, args.join(' '));
    assert.equal(existsSync(join(fresh, '..')), false, `${args.join(' ')}: no directory made`);
  }
});

test('memstore bench rejects an unknown codec in --codecs with exit code 2, and writes nothing', async () => {
  const out = tempDir();
  await assert.rejects(run(process.execPath, [cli, 'bench', '--quick', '--out', out, '--codecs', 'int8,rq3']), (e: { code: number }) => e.code === 2);
  assert.ok(!existsSync(join(out, 'results.json')));
});

test("memstore bench --json FILE puts the table beside it under FILE's name with .md, and leaves a results.md already in that directory as it was", async () => {
  const out = tempDir();
  writeFileSync(join(out, 'results.md'), 'my own notes\n');
  await run(process.execPath, [cli, 'bench', '--quick', '--codecs', 'int8', '--pca', 'none', '--no-hnsw', '--no-index', '--json', join(out, 'run.json'), '--chart', join(out, 'run.svg')], { cwd: out, maxBuffer: 1 << 24 });
  assert.equal(readFileSync(join(out, 'results.md'), 'utf8'), 'my own notes\n');
  assert.match(readFileSync(join(out, 'run.md'), 'utf8'), /\| configuration \|/);
  assert.ok(existsSync(join(out, 'run.json')));
  assert.equal(tableFileFor(join(out, 'report')), join(out, 'report.md'));
  assert.equal(tableFileFor(join(out, 'report.md')), join(out, 'report.md.md'), 'never the JSON file itself');
  assert.equal(tableFileFor(join(out, 'R.JSON')), join(out, 'R.md'));
});

test('memstore bench refuses, before the study, output files that are the same file, and a --json whose table would go over a file that no earlier run wrote beside it (exit 2, the file kept)', async () => {
  const out = tempDir();
  writeFileSync(join(out, 'keep.md'), 'mine\n');
  await assert.rejects(run(process.execPath, [cli, 'bench', '--quick', '--codecs', 'int8', '--pca', 'none', '--no-hnsw', '--no-index', '--json', join(out, 'keep.json')], { cwd: out }), (e: { code: number }) => e.code === 2);
  assert.equal(readFileSync(join(out, 'keep.md'), 'utf8'), 'mine\n');
  assert.ok(!existsSync(join(out, 'keep.json')));
  const clash = (flags: { json?: string; chart?: string }) => assert.throws(() => benchOutputs({ out, ...flags }), (e: Error) => e.name === 'InvalidArgumentError');
  // A JSON file of the user's own beside it is no earlier run's either.
  writeFileSync(join(out, 'keep.json'), '{}');
  clash({ json: join(out, 'keep.json') });
  // An earlier run's pair (its JSON a report, its table begun as a run writes it) is written over, as --json asks.
  writeFileSync(join(out, 'keep.json'), JSON.stringify({ tool: 'memstore bench' }));
  writeFileSync(join(out, 'keep.md'), '# memstore bench\n\nan earlier run\n');
  assert.equal(benchOutputs({ out, json: join(out, 'keep.json') }).table, join(out, 'keep.md'));
  clash({ json: join(out, 'c.json'), chart: join(out, 'c.md') });
  clash({ json: join(out, 'same.svg'), chart: join(out, 'same.svg') });
  clash({ json: join(out, 'x-index.svg'), chart: join(out, 'x.svg') });
  clash({ chart: join(out, 'results.json') });
  const defaults = benchOutputs({ out });
  assert.deepEqual(defaults, { json: join(out, 'results.json'), table: join(out, 'results.md'), chart: join(out, 'results.svg'), indexChart: join(out, 'results-index.svg') });
});

test('memstore bench on fewer vectors than k: the index sweep counts recall as the study does, of the min(k, n) there are to find (it had said 0.3 for every search of 3 vectors)', async () => {
  const out = tempDir();
  await run(process.execPath, [cli, 'bench', '--n', '3', '--codecs', 'int8', '--pca', 'none', '--out', out]);
  const report = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { rows: { rescore: boolean; recall10: number }[]; index: { rows: { label: string; recall10: number }[] } };
  assert.ok(report.index.rows.length > 0);
  for (const row of report.index.rows) assert.equal(row.recall10, 1, row.label);
  for (const row of report.rows.filter((r) => r.rescore)) assert.equal(row.recall10, 1);
});

test('memstore bench --quick reports in its JSON the PCA settings it studied', async () => {
  const out = tempDir();
  await run(process.execPath, [cli, 'bench', '--quick', '--codecs', 'int8', '--out', out]);
  const report = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { options: { pca: string }; rows: { pca: string }[] };
  assert.equal(report.options.pca, 'none,25%');
  assert.deepEqual([...new Set(report.rows.map((r) => r.pca))].length, 2);
});

test('memstore bench prints the code of what it refuses, as every tool does: INVALID_ARGUMENT for a flag or a data file it cannot take (an --n past the data vectors there are among them), IO for a file it cannot read (it had printed no code, or Node\'s bare ENOENT)', async () => {
  const dir = tempDir();
  const empty = join(dir, 'empty.f32');
  writeFileSync(empty, Buffer.alloc(0));
  // Ten vectors of 4, one of them held out as a query: nine data vectors.
  writeFileSync(join(dir, 'ten.f32'), Buffer.from(new Float32Array(40).map((_, i) => Math.sin(i + 1)).buffer));
  for (const [args, code] of [
    [['--synthetic', '--pca', '200%'], 'INVALID_ARGUMENT'],
    [['--synthetic', '--budget', '2GB'], 'INVALID_ARGUMENT'],
    [['--synthetic', '--codecs', 'int9'], 'INVALID_ARGUMENT'],
    [['--data', empty, '--dim', '4'], 'INVALID_ARGUMENT'],
    [['--data', join(dir, 'missing.f32'), '--dim', '4'], 'IO'],
    // More data vectors than there are: the study had run on what there was without a word.
    [['--n', '1001'], 'INVALID_ARGUMENT'],
    [['--data', join(dir, 'ten.f32'), '--dim', '4', '--n', '10'], 'INVALID_ARGUMENT'],
  ] as const) {
    const r = await cliResult(['bench', ...args, '--out', join(dir, 'out')]);
    assert.equal(r.code, 2, args.join(' '));
    assert.ok(r.stderr.trim().split('\n').at(-1)!.startsWith(`memstore: ${code}: `), `${args.join(' ')}: ${r.stderr}`);
  }
});

test('memstore bench stopped by SIGINT, SIGTERM or SIGHUP removes the stores it was measuring from the temporary directory and ends by that signal (status 128 + its number in a shell; it had left them there every time)', { skip: process.platform === 'win32' ? 'POSIX signals' : false }, async () => {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const tmp = tempDir();
    const out = tempDir();
    const child = spawn(process.execPath, [cli, 'bench', '--synthetic', '--n', '4000', '--dim', '64', '--no-hnsw', '--out', out], { stdio: 'ignore', env: { ...process.env, TMPDIR: tmp } });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    let seen = false;
    for (let i = 0; i < 4000 && !seen; i++) {
      seen = readdirSync(tmp).some((name) => name.startsWith('memstore-bench-'));
      if (!seen) await new Promise((r) => setTimeout(r, 5));
    }
    assert.ok(seen, `${signal}: the bench made a store to measure`);
    child.kill(signal);
    assert.equal(await exited, signal);
    // What is left, file by file, so that a failure says which operation raced the removal.
    const left = readdirSync(tmp, { recursive: true }).map(String).filter((name) => name.startsWith('memstore-'));
    assert.deepEqual(left, [], `${signal}: nothing left`);
  }
});

test('memstore bench blocked opening a --data FIFO no one writes to ends on SIGINT, SIGTERM or SIGHUP (its handlers, set for the whole command, could not run while open() waited, and had replaced the default action: only SIGKILL ended it)', { skip: process.platform === 'win32' ? 'POSIX signals and FIFOs' : false }, async () => {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const dir = tempDir();
    const fifo = join(dir, 'data.f32');
    execFileSync('mkfifo', [fifo]);
    const child = spawn(process.execPath, [cli, 'bench', '--data', fifo, '--dim', '4', '--no-hnsw', '--out', join(dir, 'out')], { stdio: 'ignore' });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, sig) => resolve({ code, signal: sig })));
    // Until its main thread waits in open() for a writer (Linux names the wait), or a few seconds where it cannot be seen.
    const wchan = `/proc/${child.pid}/wchan`;
    for (let i = 0; i < 300; i++) {
      if (existsSync(wchan) && readFileSync(wchan, 'utf8').includes('partner')) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const end = await exited;
    clearTimeout(timer);
    assert.ok(end.signal === signal || end.code === 128 + osConstants.signals[signal], `${signal}: ended by it, not by the SIGKILL after 10 s (${JSON.stringify(end)})`);
  }
});

test('memstore bench refuses a --data file of a format it does not read (a .csv, an .npz), where it had read any other extension as raw float32 and benchmarked a CSV as noise with exit 0; raw float32 is read from .f32, .bin, .raw, .dat or no extension', async () => {
  const dir = tempDir();
  const floats = Buffer.from(new Float32Array(64 * 16).map((_, i) => Math.sin(i)).buffer);
  for (const name of ['emb.csv', 'emb.npz', 'emb.txt', 'emb.fbin']) {
    writeFileSync(join(dir, name), floats);
    const r = await cliResult(['bench', '--data', join(dir, name), '--dim', '16', '--no-hnsw', '--no-index', '--out', join(dir, 'out')]);
    assert.equal(r.code, 2, name);
    assert.ok(r.stderr.trim().split('\n').at(-1)!.startsWith('memstore: INVALID_ARGUMENT: '), `${name}: ${r.stderr}`);
  }
  assert.equal(existsSync(join(dir, 'out')), false, 'nothing written');
  for (const name of ['emb.F32', 'emb.bin', 'emb.raw', 'emb.dat', 'emb']) {
    writeFileSync(join(dir, name), floats);
    const r = await cliResult(['bench', '--data', join(dir, name), '--dim', '16', '--codecs', 'int8', '--pca', 'none', '--no-hnsw', '--no-index', '--out', join(dir, `out-${name}`)]);
    assert.equal(r.code, 0, `${name}: ${r.stderr}`);
  }
});

test('memstore bench refuses a JSONL of empty embedding arrays, naming the file, before the study (it had begun one of dimension 0)', async () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'dim0.jsonl'), Array.from({ length: 20 }, () => '{"embedding": []}').join('\n'));
  const r = await cliResult(['bench', '--data', join(dir, 'dim0.jsonl'), '--no-hnsw', '--out', join(dir, 'out')]);
  assert.equal(r.code, 2);
  const last = r.stderr.trim().split('\n').at(-1)!;
  assert.ok(last.startsWith('memstore: INVALID_ARGUMENT: ') && last.includes('dim0.jsonl'), r.stderr);
  assert.ok(!r.stderr.includes('memstore bench: '), 'no study begun');
});

test('memstore bench --kernels refuses data of more dimensions than a store takes, at once (it had run silently for minutes past 2 GB)', async () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'wide.f32'), Buffer.alloc(2 * 70_000 * 4));
  const r = await cliResult(['bench', '--kernels', '--data', join(dir, 'wide.f32'), '--dim', '70000'], { timeoutMs: 60_000 });
  assert.equal(r.code, 2, r.stderr);
  assert.ok(r.stderr.trim().split('\n').at(-1)!.startsWith('memstore: INVALID_ARGUMENT: '), r.stderr);
});

test("memstore bench refuses, before the study, an index chart it could not write (a directory in its place): it had failed at the end, the JSON and the study's chart written", async () => {
  const out = tempDir();
  mkdirSync(join(out, 'results-index.svg'));
  const r = await cliResult(['bench', '--quick', '--codecs', 'int8', '--pca', 'none', '--no-hnsw', '--out', out]);
  assert.equal(r.code, 2, r.stderr);
  assert.ok(!r.stderr.includes('memstore bench: '), 'no study begun');
  assert.deepEqual(readdirSync(out), ['results-index.svg']);
});

test('memstore bench counts a result as a true neighbour when it scores as well as the k-th best: among 200 copies of one vector, f32 had come out at recall 0.2 (any other copies than the lowest rows counted as misses)', async () => {
  const dir = tempDir();
  const dim = 8;
  const rows = 240;
  const v = new Float32Array(rows * dim);
  for (let i = 0; i < rows; i++) for (let j = 0; j < dim; j++) v[i * dim + j] = i < 200 ? (j === 0 ? 1 : 0.5) : Math.cos(i * 7 + j * 3);
  writeFileSync(join(dir, 'dups.f32'), Buffer.from(v.buffer));
  // Queries near the copies: their top 10 is 10 of the 200.
  const q = new Float32Array(5 * dim).map((_, i) => (i % dim === 0 ? 1 : 0.5) + 0.001 * (i % 3));
  writeFileSync(join(dir, 'q.f32'), Buffer.from(q.buffer));
  await run(process.execPath, [cli, 'bench', '--data', join(dir, 'dups.f32'), '--queries', join(dir, 'q.f32'), '--dim', String(dim), '--codecs', 'f32,int8', '--pca', 'none', '--no-hnsw', '--out', join(dir, 'out')]);
  const report = JSON.parse(readFileSync(join(dir, 'out', 'results.json'), 'utf8')) as { rows: Row[]; index: { rows: { label: string; recall10: number }[] } };
  for (const row of report.rows.filter((r) => r.rescore || r.codec === 'f32')) {
    assert.equal(row.recall10, 1, row.label);
    assert.equal(row.recall1, 1, row.label);
  }
  for (const row of report.index.rows) assert.equal(row.recall10, 1, row.label);
});

test('memstore bench refuses --synthetic beside --data or --queries (the file had been ignored without a word) and an empty --data or --queries, exit 2 before anything runs', async () => {
  const dir = tempDir();
  const file = join(dir, 'd.f32');
  writeFileSync(file, Buffer.alloc(64 * 4 * 4));
  for (const args of [['--synthetic', '--data', file, '--dim', '4'], ['--synthetic', '--queries', file], ['--data', ''], ['--data', file, '--dim', '4', '--queries', '']]) {
    const r = await cliResult(['bench', ...args, '--no-hnsw', '--out', join(dir, 'out')]);
    assert.equal(r.code, 2, args.join(' '));
    assert.ok(r.stderr.trim().split('\n').at(-1)!.startsWith('memstore: INVALID_ARGUMENT: '), `${args.join(' ')}: ${r.stderr}`);
    assert.equal(existsSync(join(dir, 'out')), false);
  }
});

test('memstore bench counts as found a result within float32 rounding of the k-th best score: one direction at 200 scales (cosines equal but for 1e-8) had f32 at recall 0.947; and data past the dimensions PCA takes (MAX_PCA_DIM) studies no PCA by default and refuses a --pca that asks for it, at once (it had failed at the first PCA setting, minutes in)', async () => {
  const dir = tempDir();
  const dim = 8;
  const rows = 240;
  const v = new Float32Array(rows * dim);
  for (let i = 0; i < rows; i++) for (let j = 0; j < dim; j++) v[i * dim + j] = i < 200 ? ((j + 1) / 10) * (1 + i * 0.37) : Math.cos(i * 7 + j * 3);
  writeFileSync(join(dir, 'scaled.f32'), Buffer.from(v.buffer));
  const q = new Float32Array(5 * dim).map((_, i) => ((i % dim) + 1) / 10 + 0.0001 * (i % 3));
  writeFileSync(join(dir, 'q.f32'), Buffer.from(q.buffer));
  await run(process.execPath, [cli, 'bench', '--data', join(dir, 'scaled.f32'), '--queries', join(dir, 'q.f32'), '--dim', String(dim), '--codecs', 'f32', '--pca', 'none', '--no-hnsw', '--no-index', '--out', join(dir, 'out')]);
  const report = JSON.parse(readFileSync(join(dir, 'out', 'results.json'), 'utf8')) as { rows: Row[] };
  for (const row of report.rows.filter((r) => r.codec === 'f32')) assert.equal(row.recall10, 1, row.label);

  const wide = MAX_PCA_DIM + 52;
  writeFileSync(join(dir, 'wide.f32'), Buffer.from(new Float32Array(40 * wide).map((_, i) => Math.sin(i * 0.37)).buffer));
  const asked = await cliResult(['bench', '--data', join(dir, 'wide.f32'), '--dim', String(wide), '--pca', 'none,25%', '--codecs', 'int8', '--no-hnsw', '--no-index', '--out', join(dir, 'out-asked')]);
  assert.equal(asked.code, 2, asked.stderr);
  assert.ok(asked.stderr.trim().split('\n').at(-1)!.startsWith('memstore: INVALID_ARGUMENT: '), asked.stderr);
  assert.ok(!asked.stderr.includes('exact float32 search'), 'refused before the study');
  const byDefault = await cliResult(['bench', '--data', join(dir, 'wide.f32'), '--dim', String(wide), '--codecs', 'int8', '--no-hnsw', '--no-index', '--out', join(dir, 'out-default')]);
  assert.equal(byDefault.code, 0, byDefault.stderr);
  const studied = JSON.parse(readFileSync(join(dir, 'out-default', 'results.json'), 'utf8')) as { rows: Row[] };
  assert.deepEqual([...new Set(studied.rows.filter((r) => r.codec === 'int8').map((r) => r.pca))], ['none']);

  // Between 2,048 dimensions and the limit, the default list studies no PCA (each configuration's
  // fit would take minutes), and a --pca given is studied.
  const middle = 2100;
  writeFileSync(join(dir, 'middle.f32'), Buffer.from(new Float32Array(40 * middle).map((_, i) => Math.sin(i * 0.37)).buffer));
  const unasked = await cliResult(['bench', '--data', join(dir, 'middle.f32'), '--dim', String(middle), '--codecs', 'int8', '--no-hnsw', '--no-index', '--out', join(dir, 'out-middle')]);
  assert.equal(unasked.code, 0, unasked.stderr);
  const middleRows = (JSON.parse(readFileSync(join(dir, 'out-middle', 'results.json'), 'utf8')) as { rows: Row[] }).rows;
  assert.deepEqual([...new Set(middleRows.filter((r) => r.codec === 'int8').map((r) => r.pca))], ['none']);
  const given = await cliResult(['bench', '--data', join(dir, 'middle.f32'), '--dim', String(middle), '--pca', 'none,25%', '--codecs', 'int8', '--no-hnsw', '--no-index', '--out', join(dir, 'out-given')]);
  assert.equal(given.code, 0, given.stderr);
  const givenRows = (JSON.parse(readFileSync(join(dir, 'out-given', 'results.json'), 'utf8')) as { rows: Row[] }).rows;
  assert.equal(new Set(givenRows.filter((r) => r.codec === 'int8').map((r) => r.pca)).size, 2, 'none and 25%');
});

// ---- found by a hostile pass of the bench's arguments and files (2026-12-06) ----------------------

/** A bench run that must be refused before its study: exit 2, INVALID_ARGUMENT on stderr, no output written. */
async function refusedBeforeStudy(args: string[], outDir: string, what: string): Promise<void> {
  const before = readdirSync(outDir).sort();
  const r = await cliResult(['bench', '--quick', '--codecs', 'int8', '--pca', 'none', '--no-hnsw', '--no-index', ...args]);
  assert.equal(r.code, 2, `${what}: ${r.stderr}`);
  assert.match(r.stderr, /INVALID_ARGUMENT|error:/, what);
  assert.deepEqual(readdirSync(outDir).sort(), before, `${what}: nothing written`);
}

test('memstore bench refuses outputs that are its own input, that reach another output through a link, that lie inside a store, that are not regular files, or a JSON file there that no run wrote (the chart had replaced the --data file, written over the JSON through a link, and broken a store\'s log)', async () => {
  const dir = tempDir();
  const data = join(dir, 'victim.f32');
  const vectors = new Float32Array(64 * 8).map((_, i) => Math.sin(i));
  writeFileSync(data, Buffer.from(vectors.buffer));
  const dataBytes = readFileSync(data);
  const common = ['--data', data, '--dim', '8'];
  await refusedBeforeStudy([...common, '--json', join(dir, 'r.json'), '--chart', data], dir, 'chart over --data');
  assert.deepEqual(readFileSync(data), dataBytes, 'the data file is intact');
  mkdirSync(join(dir, 'links'));
  symlinkSync(join(dir, 'links', 'r.json'), join(dir, 'links', 'c.svg'));
  await refusedBeforeStudy([...common, '--json', join(dir, 'links', 'r.json'), '--chart', join(dir, 'links', 'c.svg')], join(dir, 'links'), 'chart linked to the JSON');
  const storeDir = join(dir, 'store');
  const store = await MemStore.open(storeDir, { dim: 8 });
  await store.add([{ id: 'a', vector: Array.from(vectors.subarray(0, 8)) }]);
  await store.close();
  await refusedBeforeStudy([...common, '--json', join(dir, 'r.json'), '--chart', join(storeDir, 'wal', 'wal-00000000000000000099.log')], join(storeDir, 'wal'), 'chart inside a store');
  const reopened = await MemStore.open(storeDir);
  assert.equal(reopened.stats().count, 1, 'the store opens');
  await reopened.close();
  await refusedBeforeStudy([...common, '--json', join(dir, 'r.json'), '--chart', '/dev/full'], dir, 'a device as the chart');
  writeFileSync(join(dir, 'mine.json'), '{"mine": true}');
  await refusedBeforeStudy([...common, '--json', join(dir, 'mine.json')], dir, 'a JSON file no run wrote');
  assert.equal(readFileSync(join(dir, 'mine.json'), 'utf8'), '{"mine": true}');
});

test('memstore bench --kernels refuses the study\'s options it would not read (it ran and exited 0 with --codecs bogus --budget 2XB)', async () => {
  for (const args of [['--codecs', 'bogus'], ['--budget', '2XB'], ['--pca', 'none'], ['--json', 'x.json'], ['--k', '5'], ['--metric', 'dot'], ['--no-hnsw'], ['--quick'], ['--n', '100']]) {
    const r = await cliResult(['bench', '--kernels', ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, '', `${args.join(' ')}: nothing ran`);
  }
});

test('memstore bench reads at most streamReads.limit bytes from a --data that is not a regular file (/dev/zero had been read until the process held gigabytes)', { skip: process.platform === 'win32' ? 'no /dev/zero' : false }, () => {
  const limit = streamReads.limit;
  streamReads.limit = 1 << 22;
  try {
    assert.throws(() => readVectors('/dev/zero', 16), (e: { code?: string }) => e.code === 'INVALID_ARGUMENT');
  } finally {
    streamReads.limit = limit;
  }
});

test('memstore bench refuses, before anything is built, data and queries of magnitudes a dot or l2 store of the study cannot take, naming the file (a data vector of 3e38 had been refused as records[200].vector after the ground truth)', async () => {
  const dir = tempDir();
  const rows = new Float32Array(300 * 8).map((_, i) => Math.sin(i));
  rows[200 * 8 + 3] = 3e38;
  const data = join(dir, 'big.f32');
  writeFileSync(data, Buffer.from(rows.buffer));
  for (const metric of ['dot', 'l2']) {
    const r = await cliResult(['bench', '--data', data, '--dim', '8', '--metric', metric, '--codecs', 'int8', '--pca', 'none', '--no-hnsw', '--no-index', '--out', join(dir, 'out')]);
    assert.equal(r.code, 2, r.stderr);
    assert.ok(r.stderr.includes(data) && r.stderr.includes('vector 200'), r.stderr);
    assert.ok(!existsSync(join(dir, 'out')));
  }
  // A cosine store normalizes: the same data is studied.
  const cosine = await cliResult(['bench', '--data', data, '--dim', '8', '--codecs', 'int8', '--pca', 'none', '--no-hnsw', '--no-index', '--out', join(dir, 'out')]);
  assert.equal(cosine.code, 0, cosine.stderr);
});

test('memstore bench reads a .jsonl data file that begins with a byte-order mark, as import does (it was "line 1 is not JSON")', () => {
  const file = join(tempDir(), 'bom.jsonl');
  writeFileSync(file, `\uFEFF${JSON.stringify({ embedding: [1, 2, 3] })}\n${JSON.stringify({ embedding: [4, 5, 6] })}\n`);
  const read = readVectors(file, undefined);
  assert.equal(read.dim, 3);
  assert.deepEqual(read.rows.map((r) => Array.from(r)), [[1, 2, 3], [4, 5, 6]]);
});

test('memstore bench counts the index sweep in its steps: the study tells a total that includes the sweep\'s stores and hnswlib-node\'s sweep, and the sweep goes on from where the study ended (the bar and the time left had ended with the study)', async () => {
  const { runStudy, studySteps } = await import('../bench/study.js');
  const { runIndexSweep, sweepSteps } = await import('../bench/index-sweep.js');
  const { syntheticDataset } = await import('../src/cli/datasets.js');
  const data = syntheticDataset(300, 10, 8);
  const configs = [{ codec: 'int8' as const, pca: undefined }, { codec: 'f16' as const, pca: undefined }];
  const own = studySteps(configs.length, false);
  const later = sweepSteps(configs.length, false);
  const told: [number, number][] = [];
  const { truth } = await runStudy({ data, configs, hnsw: false, laterSteps: later, onStep: (done, total) => told.push([done, total]) });
  assert.ok(told.length > 0 && told.every(([, total]) => total === own + later), JSON.stringify(told));
  assert.deepEqual(told[told.length - 1], [own, own + later], 'the study ends at its own steps, not at the total');
  const swept: number[] = [];
  await runIndexSweep({ data, truth, k: 10, metric: 'cosine', hnsw: false, configs, onStep: (done) => swept.push(done) });
  assert.deepEqual(swept, [1, 2], 'one step a store');
  assert.equal(own + swept[swept.length - 1]!, own + later, 'the sweep ends at the total');
});

test('memstore bench refuses, found by a second pass: an output inside a store directory (its root too, or through a link to it), named as a store\'s files are, a hard link to another output or to --data, a loop of links, and a chart over a file no run drew; the table goes beside the JSON where a link leads', async () => {
  const dir = tempDir();
  const data = join(dir, 'd.f32');
  writeFileSync(data, Buffer.from(new Float32Array(64 * 8).map((_, i) => Math.cos(i)).buffer));
  const common = ['--data', data, '--dim', '8'];
  const storeDir = join(dir, 'store');
  const store = await MemStore.open(storeDir, { dim: 8 });
  await store.close();
  symlinkSync(storeDir, join(dir, 'storelink'));
  await refusedBeforeStudy([...common, '--out', storeDir], storeDir, 'the store itself as --out');
  await refusedBeforeStudy([...common, '--json', join(dir, 'storelink', 'sub', 'r.json')], storeDir, 'inside the store through a link');
  await refusedBeforeStudy([...common, '--json', join(dir, 'wal-00000000000000000003.log')], dir, 'named as a log segment');
  writeFileSync(join(dir, 'a.json'), JSON.stringify({ tool: 'memstore bench' }));
  execFileSync('ln', [join(dir, 'a.json'), join(dir, 'b.svg')]);
  await refusedBeforeStudy([...common, '--json', join(dir, 'a.json'), '--chart', join(dir, 'b.svg')], dir, 'a hard link to the JSON as the chart');
  execFileSync('ln', [data, join(dir, 'dlink.svg')]);
  await refusedBeforeStudy([...common, '--json', join(dir, 'r2.json'), '--chart', join(dir, 'dlink.svg')], dir, 'a hard link to --data as the chart');
  symlinkSync(join(dir, 'loopB'), join(dir, 'loopA'));
  symlinkSync(join(dir, 'loopA'), join(dir, 'loopB'));
  await refusedBeforeStudy([...common, '--json', join(dir, 'loopA')], dir, 'a loop of links');
  writeFileSync(join(dir, 'notes.txt'), 'mine\n');
  await refusedBeforeStudy([...common, '--json', join(dir, 'r3.json'), '--chart', join(dir, 'notes.txt')], dir, 'a chart over notes');
  assert.equal(readFileSync(join(dir, 'notes.txt'), 'utf8'), 'mine\n');
  // Through a dangling link the JSON lands where it leads, and its table beside it there.
  mkdirSync(join(dir, 'elsewhere'));
  symlinkSync(join(dir, 'elsewhere', 'x.json'), join(dir, 'dang.json'));
  const outputs = benchOutputs({ out: dir, json: join(dir, 'dang.json') });
  assert.equal(outputs.json, join(dir, 'elsewhere', 'x.json'));
  assert.equal(outputs.table, join(dir, 'elsewhere', 'x.md'));
});

test('memstore bench takes `..` in an output path as the kernel does, after the link before it: link/../b/x.json with link leading into deep/ is deep/b/x.json, inside the store there, and refused (it had been read as b/x.json beside the link)', async () => {
  const parent = tempDir();
  mkdirSync(join(parent, 'deep', 'a0'), { recursive: true });
  const store = await MemStore.open(join(parent, 'deep', 'b'), { dim: 4 });
  await store.close();
  symlinkSync(join(parent, 'deep', 'a0'), join(parent, 'link'));
  const sneaky = `${parent}/link/../b`;
  assert.throws(() => benchOutputs({ out: sneaky }), (e: Error) => e.name === 'InvalidArgumentError');
  assert.throws(() => benchOutputs({ out: parent, json: `${sneaky}/x.json` }), (e: Error) => e.name === 'InvalidArgumentError');
  assert.equal(benchOutputs({ out: `${parent}/link/..` }).json, join(parent, 'deep', 'results.json'));
});

// ---- found by a hostile pass of the CLI and its data files (2026-12-06, evening) ------------------

test('memstore bench refuses an empty --out (results.json had gone to the root of the file system) and PCA over fewer vectors than it fits on (the untrained row had carried its PCA label), exit 2 with nothing written', async () => {
  const dir = tempDir();
  const data = join(dir, 'd.f32');
  writeFileSync(data, Buffer.from(new Float32Array(64 * 8).map((_, i) => Math.sin(i * 1.3)).buffer));
  const one = join(dir, 'one.f32');
  writeFileSync(one, Buffer.from(new Float32Array(8).map((_, i) => i + 1).buffer));
  const queries = join(dir, 'q.f32');
  writeFileSync(queries, Buffer.from(new Float32Array(2 * 8).map((_, i) => Math.cos(i)).buffer));
  const rootJson = existsSync('/results.json');
  await refusedBeforeStudy(['--data', data, '--dim', '8', '--out', ''], dir, '--out ""');
  assert.equal(existsSync('/results.json'), rootJson, 'nothing at the root');
  await refusedBeforeStudy(['--data', one, '--queries', queries, '--dim', '8', '--pca', 'none,50%', '--out', join(dir, 'pca')], dir, 'PCA over one vector');
});

test('memstore bench names the file it cannot read: a directory as --data, a file past the 2 GiB it reads whole, a .jsonl line past lineReads.limit (EISDIR, a size error and V8\'s string limit had named none, the last with no code); a .jsonl error names the line (blank lines had made vector 2 read as line 5)', () => {
  const dir = tempDir();
  const refused = (file: string, dim?: number): MemstoreError => {
    try {
      readVectors(file, dim);
    } catch (e) {
      assert.equal((e as MemstoreError).code, 'INVALID_ARGUMENT', String(e));
      assert.equal((e as MemstoreError).file, file);
      return e as MemstoreError;
    }
    assert.fail(`${file} was read`);
  };
  refused(dir, 8);
  const big = join(dir, 'big.f32');
  closeSync(openSync(big, 'w'));
  truncateSync(big, MAX_FILE_BYTES + 1);
  refused(big, 8);
  const jsonl = join(dir, 'v.jsonl');
  writeFileSync(jsonl, `{"embedding":[1,2]}\n\n\n\n{"embedding":[1,2,3]}\n`);
  assert.equal(refused(jsonl).field, 'line 5');
  writeFileSync(jsonl, `{"embedding":[1,2]}\n{"embedding":[${'1,'.repeat(40)}1]}\n`);
  const limit = lineReads.limit;
  lineReads.limit = 64;
  try {
    assert.equal(refused(jsonl).field, 'line 2');
  } finally {
    lineReads.limit = limit;
  }
});

test('memstore bench with a TMPDIR it cannot make its stores in, or under node --jitless, stops with exit code 2 (IO, UNSUPPORTED) before the study starts and writes nothing (both had run the baselines first)', async () => {
  for (const [env, node, code] of [[{ TMPDIR: join(tempDir(), 'no-such-dir') }, [], 'IO'], [{}, ['--jitless'], 'UNSUPPORTED']] as const) {
    const out = join(tempDir(), 'results');
    const failed = await new Promise<{ status: number | null; stderr: string }>((resolve) => {
      execFile(process.execPath, [...node, cli, 'bench', '--quick', '--out', out], { env: { ...process.env, ...env } }, (e, _stdout, stderr) => resolve({ status: e === null ? 0 : (e as { code: number }).code, stderr }));
    });
    assert.equal(failed.status, 2, failed.stderr);
    assert.match(failed.stderr, new RegExp(`memstore: ${code}`));
    assert.equal(failed.stderr.includes('configurations x rescoring'), false, 'the study did not start');
    assert.equal(existsSync(out), false, 'nothing written');
  }
});
