import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseBytes, parseCount, parsePcaList } from '../src/cli/args.js';
import { parseCodecList } from '../src/cli/bench.js';
import { syntheticDataset } from '../src/cli/datasets.js';
import { rng } from '../src/random.js';
import { readVectors } from '../src/cli/vector-files.js';
import { isMemstoreError, MemStore } from '../src/index.js';
import { cliResult } from './support/cli.js';
import { tempDir } from './helpers.js';
import { execFile, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

function run(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { timeout: 60_000 }, (error, _stdout, stderr) => resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stderr }));
  });
}

const rows = [Float32Array.from([1, -2, 0.5]), Float32Array.from([0.25, 3, -1])];

function npy(descr: string, body: Buffer, shape = '(2, 3)'): Buffer {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), body]);
}

test('readVectors reads .fvecs, .npy (f4, f2), .jsonl and raw float32 to the same rows', () => {
  const dir = tempDir();
  const raw = Buffer.from(new Float32Array([...rows[0]!, ...rows[1]!]).buffer);
  writeFileSync(join(dir, 'a.f32'), raw);
  const fvecs = Buffer.concat(rows.map((r) => {
    const b = Buffer.alloc(4 + r.byteLength);
    b.writeInt32LE(3, 0);
    Buffer.from(r.buffer).copy(b, 4);
    return b;
  }));
  writeFileSync(join(dir, 'a.fvecs'), fvecs);
  writeFileSync(join(dir, 'a.npy'), npy('<f4', raw));
  const halves = Buffer.alloc(12);
  [0x3c00, 0xc000, 0x3800, 0x3400, 0x4200, 0xbc00].forEach((h, i) => halves.writeUInt16LE(h, i * 2));
  writeFileSync(join(dir, 'b.npy'), npy('<f2', halves));
  writeFileSync(join(dir, 'a.jsonl'), rows.map((r) => JSON.stringify({ text: 'x', embedding: Array.from(r) })).join('\n') + '\n');
  for (const [file, dim] of [['a.f32', 3], ['a.fvecs', undefined], ['a.npy', undefined], ['b.npy', undefined], ['a.jsonl', undefined]] as const) {
    const r = readVectors(join(dir, file), dim);
    assert.equal(r.dim, 3, file);
    assert.deepEqual(r.rows.map((x) => Array.from(x)), rows.map((x) => Array.from(x)), file);
  }
});

test('readVectors rejects what it cannot read with a MemstoreError', () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'odd.f32'), Buffer.alloc(10));
  writeFileSync(join(dir, 'bad.npy'), npy('<i8', Buffer.alloc(48)));
  writeFileSync(join(dir, 'bad.jsonl'), '{"embedding": [1, 2]}\n{"embedding": [1]}\n');
  // Not JSON (NaN), a number past float32 (∞ there), a line that is no object, and NaN in the other formats.
  writeFileSync(join(dir, 'nan.jsonl'), '{"embedding": [1, 2]}\n{"embedding": [NaN, 2]}\n');
  writeFileSync(join(dir, 'huge.jsonl'), '{"embedding": [1, 1e39]}\n');
  writeFileSync(join(dir, 'null.jsonl'), 'null\n');
  writeFileSync(join(dir, 'nan.npy'), npy('<f4', Buffer.from(Float32Array.from([1, 2, 3, 4, Number.NaN, 6]).buffer)));
  writeFileSync(join(dir, 'inf.f32'), Buffer.from(Float32Array.from([1, Number.POSITIVE_INFINITY, 3]).buffer));
  // A header in JSON's quotes (not what numpy writes), and one whose length runs past the file.
  const jsonHeader = '{"descr": "<f4", "fortran_order": false, "shape": (2, 3), }';
  writeFileSync(join(dir, 'json.npy'), Buffer.concat([Buffer.from('\x93NUMPY\x01\x00', 'latin1'), Buffer.from([jsonHeader.length, 0]), Buffer.from(jsonHeader, 'latin1'), Buffer.alloc(24)]));
  writeFileSync(join(dir, 'short.npy'), npy('<f4', Buffer.alloc(24)).subarray(0, 20));
  // Bytes past the shape (a row more than it says), and a key given twice: both had been read as the first (2, 3).
  writeFileSync(join(dir, 'long.npy'), npy('<f4', Buffer.alloc(36)));
  writeFileSync(join(dir, 'twice.npy'), npy("<f4', 'descr': '<f2", Buffer.alloc(24)));
  for (const [file, dim] of [['odd.f32', 3], ['odd.f32', undefined], ['bad.npy', undefined], ['json.npy', undefined], ['short.npy', undefined], ['long.npy', undefined], ['twice.npy', undefined], ['bad.jsonl', undefined], ['nan.jsonl', undefined], ['huge.jsonl', undefined], ['null.jsonl', undefined], ['nan.npy', undefined], ['inf.f32', 3]] as const) {
    assert.throws(() => readVectors(join(dir, file), dim), (e) => isMemstoreError(e, 'INVALID_ARGUMENT'), file);
  }
  writeFileSync(join(dir, 'ok.jsonl'), '{"embedding": [1, 2]}\n');
  assert.throws(() => readVectors(join(dir, 'ok.jsonl'), 3), (e) => isMemstoreError(e, 'DIM_MISMATCH'));
});

test('the synthetic set is deterministic, unit-length and of the asked shape', () => {
  const a = syntheticDataset(50, 5, 32, 3);
  const b = syntheticDataset(50, 5, 32, 3);
  assert.equal(a.docs.length, 50);
  assert.equal(a.queries.length, 5);
  assert.deepEqual(Array.from(a.docs[7]!), Array.from(b.docs[7]!));
  for (const v of a.docs) assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-5);
});

test('the synthetic set is the one earlier versions made, bit for bit (its length taken by Math.hypot over the vector), so that bench results over it compare across versions', () => {
  for (const [n, dim, seed] of [
    [300, 256, 1],
    [40, 7, 9],
    [20, 1, 2],
  ] as const) {
    const made = syntheticDataset(n, 10, dim, seed);
    // The generator as it was: the same draws, each vector scaled by Math.hypot of its float32 values.
    const next = rng(seed);
    const gauss = () => Math.sqrt(-2 * Math.log(Math.max(next(), 1e-12))) * Math.cos(2 * Math.PI * next());
    const rank = Math.max(2, Math.round(dim / 8));
    const basis = Array.from({ length: rank }, () => Float32Array.from({ length: dim }, gauss));
    const centres = Array.from({ length: 64 }, () => {
      const c = new Float32Array(dim);
      for (const b of basis) {
        const w = gauss();
        for (let i = 0; i < dim; i++) c[i]! += (w * b[i]!) / Math.sqrt(rank);
      }
      return c;
    });
    const sample = () => {
      const c = centres[Math.floor(next() * centres.length)]!;
      const v = Float32Array.from(c, (x) => x + 0.35 * gauss());
      const norm = Math.hypot(...v);
      return v.map((x) => x / norm);
    };
    const docs = Array.from({ length: n }, sample);
    const queries = Array.from({ length: 10 }, sample);
    assert.deepEqual(made.docs, docs, `${n} x ${dim}`);
    assert.deepEqual(made.queries, queries, `${n} x ${dim}`);
  }
});

test('sizes, counts and PCA lists parse as documented', () => {
  assert.equal(parseBytes('2GB'), 2e9);
  assert.equal(parseBytes('512MiB'), 512 * 2 ** 20);
  assert.equal(parseBytes('1.5g'), 1.5e9);
  assert.equal(parseCount('5M'), 5_000_000);
  assert.equal(parseCount('2.5k'), 2500);
  assert.throws(() => parseBytes('lots'), RangeError);
  assert.deepEqual(parsePcaList('none,50%,25%', 512), [undefined, { dims: 256 }, { dims: 128 }]);
  assert.deepEqual(parsePcaList('100, 0', 512), [{ dims: 100 }, undefined]);
  assert.throws(() => parsePcaList('600', 512), RangeError);
  // 0% had meant one dimension; past 100% is no fraction of the vector either.
  assert.throws(() => parsePcaList('0%', 512), RangeError);
  assert.throws(() => parsePcaList('150%', 512), RangeError);
  assert.deepEqual(parsePcaList('0.1%', 512), [{ dims: 1 }]);
  // A setting named twice, in any spelling, is studied once; a count of nothing is refused.
  assert.deepEqual(parsePcaList('none,100%,0', 512), [undefined]);
  assert.deepEqual(parsePcaList('25%,128,none', 512), [{ dims: 128 }, undefined]);
  assert.throws(() => parseCount('0'), RangeError);
  assert.throws(() => parseCount('0.0001k'), RangeError);
  // A codec named twice is studied once.
  assert.deepEqual(parseCodecList('int8, rq2,int8'), ['int8', 'rq2']);
});

test('memstore bench refuses, with exit code 2 and before any work, data with no vectors left to study (a table of NaN, exit 0, before), a --synthetic --dim past what a store takes and a --synthetic set past 4 GiB (both had run for minutes and gigabytes)', async () => {
  const dir = tempDir();
  const npyFile = (name: string, count: number) => {
    writeFileSync(join(dir, name), npy('<f4', Buffer.from(new Float32Array(count * 4).fill(1).buffer), `(${count}, 4)`));
    return join(dir, name);
  };
  const cases: [string[], RegExp][] = [
    [['--data', npyFile('none.npy', 0)], /no data vectors/],
    [['--data', npyFile('one.npy', 1)], /held out as queries/],
    [['--synthetic', '--dim', '70000', '--n', '10'], /at most 65536 dimensions/],
    [['--synthetic', '--n', '1000000000', '--dim', '4'], /at most 1073741824/],
  ];
  for (const [args, message] of cases) {
    const r = await run([cli, 'bench', ...args, '--no-hnsw', '--no-index', '--out', join(dir, 'out')]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
});

test('memstore bench refuses an output it cannot write before the study starts (it had run the whole study, then failed on EEXIST or EISDIR), exit code 2', async () => {
  const dir = tempDir();
  const file = join(dir, 'a-file');
  writeFileSync(file, 'taken');
  for (const args of [['--out', file], ['--json', dir], ['--chart', dir]]) {
    const r = await run([cli, 'bench', '--quick', '--no-hnsw', '--no-index', ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`${args[0]} .*cannot be written`), args.join(' '));
    assert.doesNotMatch(r.stderr, /configurations/, 'refused before the study started');
  }
});

test('memstore compact reports the bytes the directory held before and after, also when every record was deleted (it had said 0 bytes before)', async () => {
  const dir = tempDir();
  const store = await MemStore.open(dir, { dim: 16 });
  await store.add(Array.from({ length: 2000 }, (_, i) => ({ id: `r${i}`, vector: Array.from({ length: 16 }, (_, d) => Math.sin(i + d)), text: 'x'.repeat(200) })));
  await store.delete(Array.from({ length: 2000 }, (_, i) => `r${i}`));
  const before = store.stats().diskBytes;
  await store.close();
  assert.ok(before > 0);
  const { code, stdout } = await cliResult(['compact', dir]);
  assert.equal(code, 0);
  const m = /^0 records: (\d+) bytes on disk before, (\d+) after$/m.exec(stdout);
  assert.ok(m !== null, stdout);
  assert.ok(Number(m[1]) > Number(m[2]), `compaction gave bytes back: ${stdout}`);
  assert.ok(Number(m[1]) >= before * 0.5, `the bytes before are the directory's (${m[1]} against stats ${before})`);
});

test('memstore import --dim takes decimal digits only, as a file\'s memstore.dim is read (1e1 and 0x10 had passed)', async () => {
  const file = join(tempDir(), 'rows.jsonl');
  writeFileSync(file, `${JSON.stringify({ id: 'a', vector: Array.from({ length: 16 }, () => 1) })}\n`);
  for (const dim of ['1e1', '0x10', '16.0', ' 16', '-16', '0']) {
    const { code } = await cliResult(['import', file, tempDir(), '--dim', dim]);
    assert.equal(code, 2, dim);
  }
  assert.equal((await cliResult(['import', file, tempDir(), '--dim', '16'])).code, 0);
});

test('output the CLI cannot write (stdout or stderr on a full device) is exit status 2 with a line on stderr, not a crash with status 1, which says corruption; corruption found stays 1', { skip: existsSync('/dev/full') ? false : 'no /dev/full' }, async () => {
  const dir = join(tempDir(), 'store');
  const store = await MemStore.open(dir, { dim: 3 });
  await store.add([{ id: 'a', vector: [1, 2, 3], text: 'the text of a' }]);
  await store.close();
  const full = openSync('/dev/full', 'w');
  try {
    const runTo = (args: string[], to: 'stdout' | 'stderr') =>
      spawnSync(process.execPath, [cli, ...args], { stdio: ['ignore', to === 'stdout' ? full : 'pipe', to === 'stderr' ? full : 'pipe'], encoding: 'utf8' });
    const healthy = runTo(['verify', dir], 'stdout');
    assert.equal(healthy.status, 2, healthy.stderr);
    assert.ok(healthy.stderr.includes('IO') && !healthy.stderr.includes('Unhandled'), healthy.stderr);
    for (const args of [['inspect', dir], ['compact', dir], ['--help'], ['--version']]) assert.equal(runTo(args, 'stdout').status, 2, args.join(' '));
    // A failed command's status is its own: 2 for a store that is not there, with its message lost.
    assert.equal(runTo(['verify', join(dir, 'nothing here')], 'stderr').status, 2);
    const [segment] = readdirSync(join(dir, 'arena'));
    const path = join(dir, 'arena', segment!);
    const bytes = readFileSync(path);
    bytes[bytes.indexOf(Buffer.from('the text of a')) + 2]! ^= 1;
    writeFileSync(path, bytes);
    assert.equal(runTo(['verify', dir], 'stdout').status, 1, 'corruption found is 1 whether or not its report could be written');
  } finally {
    closeSync(full);
  }
});
