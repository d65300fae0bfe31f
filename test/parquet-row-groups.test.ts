import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { open as openFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tableFromIPC } from 'apache-arrow';
import fc from 'fast-check';
import * as parquet from 'parquet-wasm';
import { exportStore, importStore, MemStore } from '../src/index.js';
import { tableToIPC } from 'apache-arrow';
import { fieldOf, readStruct, ThriftError, writeStruct, type ThriftField, type ThriftList, type ThriftStruct, type ThriftValue } from '../src/export/thrift-compact.js';
import { recordsOf, rejectsWith, tempDir } from './helpers.js';

// A random compact-protocol value of `type`, nested at most `depth` more levels.
function valueOf(type: number, depth: number): fc.Arbitrary<ThriftValue> {
  switch (type) {
    case 3:
      return fc.integer({ min: 0, max: 255 });
    case 4:
      return fc.bigInt({ min: -(2n ** 15n), max: 2n ** 15n - 1n });
    case 5:
      return fc.bigInt({ min: -(2n ** 31n), max: 2n ** 31n - 1n });
    case 6:
      return fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
    case 7:
      return fc.uint8Array({ minLength: 8, maxLength: 8 });
    case 8:
      return fc.uint8Array({ maxLength: 40 });
    case 9:
    case 10:
      return fc.constantFrom(3, 5, 6, 8, ...(depth > 0 ? [12] : [])).chain((elementType) =>
        fc.array(valueOf(elementType, depth - 1), { maxLength: depth > 0 ? 20 : 0 }).map((items): ThriftList => ({ kind: 'list', container: type as 9 | 10, elementType: elementType as 3, items })),
      );
    case 11:
      return fc.tuple(fc.constantFrom(5, 8), fc.constantFrom(5, 8)).chain(([k, v]) =>
        fc.array(fc.tuple(valueOf(k, 0), valueOf(v, 0)), { minLength: 1, maxLength: 5 }).map((entries) => ({ kind: 'map' as const, keyType: k as 5, valueType: v as 5, entries })),
      );
    default:
      return structOf(depth - 1);
  }
}

function structOf(depth: number): fc.Arbitrary<ThriftStruct> {
  const types = depth > 0 ? [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12] : [1, 2, 3, 4, 5, 6, 7, 8];
  return fc
    .uniqueArray(fc.integer({ min: 1, max: 400 }), { maxLength: 8 })
    .map((ids) => ids.sort((a, b) => a - b))
    .chain((ids) =>
      fc.tuple(...ids.map((id) => fc.constantFrom(...types).chain((type) => (type === 1 || type === 2 ? fc.constant<ThriftField>({ id, type: type as 1, value: type === 1 }) : valueOf(type, depth).map((value): ThriftField => ({ id, type: type as 3, value })))))),
    )
    .map((fields) => ({ kind: 'struct', fields }));
}

test('thrift compact: any struct written is read back the same, and its bytes again the same (ids far apart, negative numbers, i64 extremes, nested lists, sets and maps)', () => {
  fc.assert(
    fc.property(structOf(3), (s) => {
      const bytes = writeStruct(s);
      const { struct, end } = readStruct(bytes);
      assert.equal(end, bytes.length);
      assert.deepEqual(struct, s);
      assert.deepEqual(writeStruct(struct), bytes);
    }),
    { numRuns: 300 },
  );
});

test('thrift compact: a struct cut anywhere is a ThriftError, never a value read past its end', () => {
  fc.assert(
    fc.property(structOf(2).filter((s) => s.fields.length > 0), fc.nat(), (s, cut) => {
      const bytes = writeStruct(s);
      const at = cut % bytes.length;
      assert.throws(() => readStruct(bytes.subarray(0, at)), ThriftError);
    }),
    { numRuns: 300 },
  );
});

test('thrift compact: a size past the bytes left and nesting past 64 levels are ThriftErrors', () => {
  // A binary field of length 2^40 in a struct of six bytes.
  assert.throws(() => readStruct(Uint8Array.from([0x18, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20])), ThriftError);
  // 100 structs nested, each field 1 of type struct.
  assert.throws(() => readStruct(new Uint8Array(100).fill(0x1c)), ThriftError);
  // An unknown type (13).
  assert.throws(() => readStruct(Uint8Array.from([0x1d, 0x00])), ThriftError);
});

const DIM = 3;

async function storeOf(n: number, dim = DIM): Promise<string> {
  const dir = tempDir();
  const store = await MemStore.open(dir, { dim, metric: 'dot', cache: false, durability: 'none' });
  const records = Array.from({ length: n }, (_, i) => ({
    id: `r${i}`,
    vector: Array.from({ length: dim }, (_, d) => Math.cos(i * 0.37 + d) + 2),
    ...(i % 3 === 0 ? { text: `text ${i}` } : {}),
    ...(i % 4 === 0 ? { meta: { i, tag: i % 7 === 0 ? 'seven' : 'other' } } : {}),
  }));
  for (let at = 0; at < n; at += 5000) await store.add(records.slice(at, at + 5000));
  await store.close();
  return dir;
}

function footerOf(bytes: Uint8Array): ThriftStruct {
  const length = Buffer.from(bytes.buffer, bytes.byteOffset + bytes.length - 8, 4).readUInt32LE(0);
  const { struct, end } = readStruct(bytes, bytes.length - 8 - length);
  assert.equal(end, bytes.length - 8);
  return struct;
}

/** A file of the Parquet file `bytes` with its footer replaced by `footer`. */
function withFooter(bytes: Buffer, footer: ThriftStruct): string {
  const out = writeStruct(footer);
  const tail = Buffer.alloc(8);
  tail.writeUInt32LE(out.length, 0);
  tail.write('PAR1', 4, 'latin1');
  const path = join(tempDir(), 'bad.parquet');
  writeFileSync(path, Buffer.concat([bytes.subarray(0, bytes.length - 8 - bytes.readUInt32LE(bytes.length - 8)), out, tail]));
  return path;
}

test('parquet export: one row group per batch of 4,096, appended as encoded; the footer numbers them and points at each one\'s bytes; parquet-wasm reads every row back in order, and import gives the store back', async () => {
  const dir = await storeOf(9000);
  const file = join(tempDir(), 'rows.parquet');
  assert.equal((await exportStore(dir, file)).records, 9000);
  const bytes = readFileSync(file);
  assert.equal(bytes.subarray(0, 4).toString('latin1'), 'PAR1');
  assert.equal(bytes.subarray(bytes.length - 4).toString('latin1'), 'PAR1');
  const footer = footerOf(bytes);
  assert.equal(fieldOf(footer, 3)?.value, 9000n);
  const groups = (fieldOf(footer, 4)?.value as ThriftList).items as ThriftStruct[];
  assert.deepEqual(groups.map((g) => fieldOf(g, 3)?.value), [4096n, 4096n, 808n]);
  const footerStart = BigInt(bytes.length - 8 - bytes.readUInt32LE(bytes.length - 8));
  let previousEnd = 4n;
  for (const [i, g] of groups.entries()) {
    const ordinal = fieldOf(g, 7);
    if (ordinal !== undefined) assert.equal(ordinal.value, BigInt(i));
    const pages = ((fieldOf(g, 1)?.value as ThriftList).items as ThriftStruct[]).map((c) => fieldOf(fieldOf(c, 3)?.value as ThriftStruct, 9)?.value as bigint);
    for (const page of pages) {
      // Each row group's column chunks lie after the one before's, inside the file's body; a page
      // header is a struct whose first field is the page type: 0x15 (an i32, field 1).
      assert.ok(page >= previousEnd && page < footerStart, `row group ${i}: a data page at ${page}`);
      assert.equal(bytes[Number(page)], 0x15, `row group ${i}: a page header at ${page}`);
    }
    previousEnd = pages.reduce((a, b) => (a > b ? a : b)) + 1n;
  }
  assert.equal(tableFromIPC(parquet.readParquet(bytes).intoIPCStream()).numRows, 9000);
  const into = tempDir();
  const { rows } = await importStore(file, into);
  assert.equal(rows, 9000);
  const before = await recordsOf(dir);
  const after = await recordsOf(into);
  assert.equal(after.size, 9000);
  for (const [id, r] of before) {
    const s = after.get(id)!;
    assert.deepEqual(Array.from(s.vector), Array.from(r.vector), id);
    assert.equal(s.text, r.text, id);
    assert.deepEqual(s.meta, r.meta, id);
  }
});

test('parquet export: row groups carry nothing that points outside their column chunks (page indexes, bloom filters: moved, an offset index still named the first row group\'s pages), a 0 offset stays 0, and parquet-wasm\'s page-index reader reads every row', async () => {
  const dir = await storeOf(8193);
  const file = join(tempDir(), 'rows.parquet');
  await exportStore(dir, file);
  const footer = footerOf(readFileSync(file));
  const groups = (fieldOf(footer, 4)?.value as ThriftList).items as ThriftStruct[];
  assert.equal(groups.length, 3);
  for (const g of groups) {
    for (const c of (fieldOf(g, 1)?.value as ThriftList).items as ThriftStruct[]) {
      assert.deepEqual(c.fields.map((f) => f.id).filter((id) => id >= 4 && id <= 7), []);
      assert.deepEqual((fieldOf(c, 3)?.value as ThriftStruct).fields.map((f) => f.id).filter((id) => id === 14 || id === 15), []);
      // parquet-wasm writes the deprecated file_offset as 0 (none): moved, it had named bytes of the row group before.
      assert.equal(fieldOf(c, 2)?.value ?? 0n, 0n);
    }
  }
  // The asynchronous reader loads page indexes where a file has them; on bad ones it trapped and killed the process: a child's.
  const script = join(tempDir(), 'read.mjs');
  writeFileSync(
    script,
    `import * as parquet from ${JSON.stringify(fileURLToPath(import.meta.resolve('parquet-wasm')))};
import { tableFromIPC } from ${JSON.stringify(fileURLToPath(import.meta.resolve('apache-arrow')))};
import { readFileSync } from 'node:fs';
const file = await parquet.ParquetFile.fromFile(new Blob([readFileSync(${JSON.stringify(file)})]));
console.log(tableFromIPC((await file.read()).intoIPCStream()).numRows);
`,
  );
  const run = spawnSync(process.execPath, [script], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout.trim(), '8193');
});

test('parquet export: an empty store writes a file with its schema and no row group', async () => {
  const dir = await storeOf(0);
  const file = join(tempDir(), 'empty.parquet');
  assert.equal((await exportStore(dir, file)).records, 0);
  const footer = footerOf(readFileSync(file));
  assert.equal(fieldOf(footer, 3)?.value, 0n);
  assert.ok(((fieldOf(footer, 4)?.value as ThriftList | undefined)?.items.length ?? 0) <= 1);
  const { rows } = await importStore(file, tempDir());
  assert.equal(rows, 0);
});

/** parquet-wasm's memory before and after `body` (a module's text, given `exportStore`, `importStore` and `file`) in a process of its own: it only grows, and a test file's other tests grow it. */
function wasmGrowth(body: string, file: string): { before: number; after: number } {
  const script = join(tempDir(), 'probe.mjs');
  const index = fileURLToPath(new URL('../src/index.js', import.meta.url));
  writeFileSync(
    script,
    `import * as parquet from ${JSON.stringify(fileURLToPath(import.meta.resolve('parquet-wasm')))};
import { exportStore, importStore } from ${JSON.stringify(index)};
const file = ${JSON.stringify(file)};
const before = parquet.wasmMemory().buffer.byteLength;
${body}
console.log(JSON.stringify({ before, after: parquet.wasmMemory().buffer.byteLength }));
`,
  );
  const run = spawnSync(process.execPath, [script], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout) as { before: number; after: number };
}

test('parquet export: the encoded file is never held whole: parquet-wasm\'s memory grows by less than half the file (it had grown by all of it, freed only at the end)', async () => {
  const dir = await storeOf(60000, 64);
  const file = join(tempDir(), 'big.parquet');
  const { before, after } = wasmGrowth(`await exportStore(${JSON.stringify(dir)}, file);`, file);
  const size = statSync(file).size;
  assert.ok(size > 8 << 20, `a file of ${size} bytes`);
  assert.ok(after - before < size / 2, `parquet-wasm's memory grew by ${after - before} bytes for a file of ${size}`);
});

test('parquet import: a row group at a time: parquet-wasm\'s memory grows by less than half the file (it had taken the whole file in, then decoded it whole)', async () => {
  const dir = await storeOf(60000, 64);
  const file = join(tempDir(), 'big.parquet');
  await exportStore(dir, file);
  const into = tempDir();
  const { before, after } = wasmGrowth(`const { rows } = await importStore(file, ${JSON.stringify(into)}); if (rows !== 60000) throw new Error('rows ' + rows);`, file);
  const size = statSync(file).size;
  assert.ok(after - before < size / 2, `parquet-wasm's memory grew by ${after - before} bytes for a file of ${size}`);
  assert.equal((await recordsOf(into)).size, 60000);
});

test('parquet import: a file of another writer\'s making (dictionary pages, page indexes and statistics, row groups of 1,000 rows) comes in whole', async () => {
  const dir = await storeOf(4500);
  const ours = join(tempDir(), 'ours.parquet');
  await exportStore(dir, ours);
  const table = tableFromIPC(parquet.readParquet(readFileSync(ours)).intoIPCStream());
  const props = new parquet.WriterPropertiesBuilder().setMaxRowGroupSize(1000).setStatisticsEnabled(parquet.EnabledStatistics.Page).build();
  const theirs = join(tempDir(), 'theirs.parquet');
  writeFileSync(theirs, parquet.writeParquet(parquet.Table.fromIPCStream(tableToIPC(table, 'stream')), props));
  const footer = footerOf(readFileSync(theirs));
  const groups = (fieldOf(footer, 4)?.value as ThriftList).items as ThriftStruct[];
  assert.equal(groups.length, 5);
  // Dictionary pages and page indexes are there to be read past.
  assert.ok(groups.some((g) => ((fieldOf(g, 1)?.value as ThriftList).items as ThriftStruct[]).some((c) => fieldOf(fieldOf(c, 3)?.value as ThriftStruct, 11) !== undefined)));
  assert.ok(groups.some((g) => ((fieldOf(g, 1)?.value as ThriftList).items as ThriftStruct[]).some((c) => fieldOf(c, 4) !== undefined)));
  const into = tempDir();
  assert.equal((await importStore(theirs, into)).rows, 4500);
  const before = await recordsOf(dir);
  const after = await recordsOf(into);
  assert.equal(after.size, 4500);
  for (const [id, r] of before) {
    assert.deepEqual(Array.from(after.get(id)!.vector), Array.from(r.vector), id);
    assert.equal(after.get(id)!.text, r.text, id);
    assert.deepEqual(after.get(id)!.meta, r.meta, id);
  }
});

test('parquet import: a footer whose row group lies outside the file\'s body, that lists more or fewer rows than its pages hold (0 too), or whose rows are not its row groups\' is INVALID_ARGUMENT, nothing imported', async () => {
  const dir = await storeOf(5000);
  const file = join(tempDir(), 'rows.parquet');
  await exportStore(dir, file);
  const bytes = readFileSync(file);
  const rewrite = (change: (footer: ThriftStruct) => void): string => {
    const footer = footerOf(bytes);
    change(footer);
    return withFooter(bytes, footer);
  };
  const firstChunk = (footer: ThriftStruct) => fieldOf(((fieldOf((((fieldOf(footer, 4)?.value as ThriftList).items[1] as ThriftStruct)), 1)?.value as ThriftList).items[0] as ThriftStruct), 3)?.value as ThriftStruct;
  const cases = [
    rewrite((f) => {
      fieldOf(firstChunk(f), 9)!.value = BigInt(bytes.length);
    }),
    rewrite((f) => {
      fieldOf(firstChunk(f), 7)!.value = 1n << 40n;
    }),
    rewrite((f) => {
      fieldOf(firstChunk(f), 9)!.value = -5n;
    }),
    rewrite((f) => {
      fieldOf((fieldOf(f, 4)?.value as ThriftList).items[1] as ThriftStruct, 3)!.value = 4000n;
      fieldOf(f, 3)!.value = 4096n + 4000n;
    }),
    rewrite((f) => {
      fieldOf(f, 3)!.value = 5001n;
    }),
    // A row group that says 0 rows over pages of 904 was read as empty.
    rewrite((f) => {
      fieldOf((fieldOf(f, 4)?.value as ThriftList).items[1] as ThriftStruct, 3)!.value = 0n;
      fieldOf(f, 3)!.value = 4096n;
    }),
  ];
  for (const path of cases) {
    const into = tempDir();
    await rejectsWith(() => importStore(path, into), 'INVALID_ARGUMENT');
    assert.deepEqual(readdirSync(into), []);
  }
});

test('parquet import: a footer of more than a million values (24 million had run V8 out of memory mid-import) is INVALID_ARGUMENT before anything is written, and so are column chunks of another type', async () => {
  const dir = await storeOf(100);
  const file = join(tempDir(), 'rows.parquet');
  await exportStore(dir, file);
  const bytes = readFileSync(file);
  const big = footerOf(bytes);
  big.fields.push({ id: 100, type: 9, value: { kind: 'list', container: 9, elementType: 8, items: Array.from({ length: 1_100_000 }, () => new Uint8Array(0)) } });
  const odd = footerOf(bytes);
  const group = (fieldOf(odd, 4)?.value as ThriftList).items[0] as ThriftStruct;
  fieldOf(group, 1)!.value = { kind: 'list', container: 9, elementType: 5, items: [1n, 2n] };
  for (const path of [withFooter(bytes, big), withFooter(bytes, odd)]) {
    const into = tempDir();
    await assert.rejects(
      () => importStore(path, into),
      (e: unknown) => (e as { code?: string }).code === 'INVALID_ARGUMENT' && (e as { cause?: unknown }).cause instanceof ThriftError,
    );
    assert.deepEqual(readdirSync(into), []);
  }
});

test('parquet import: a page header that says more than 64 MiB uncompressed is INVALID_ARGUMENT before parquet-wasm sees it (it allocated what the header said: 2 GB kept for good)', async () => {
  const dir = await storeOf(4096, 256);
  const file = join(tempDir(), 'rows.parquet');
  await exportStore(dir, file);
  const bytes = Buffer.from(readFileSync(file));
  const footer = footerOf(bytes);
  const group = (fieldOf(footer, 4)?.value as ThriftList).items[0] as ThriftStruct;
  const vectors = ((fieldOf(group, 1)?.value as ThriftList).items as ThriftStruct[]).find((c) => ((fieldOf(fieldOf(c, 3)?.value as ThriftStruct, 3)?.value as ThriftList).items.length) === 3)!;
  const at = Number(fieldOf(fieldOf(vectors, 3)?.value as ThriftStruct, 9)?.value);
  const { struct: header, end } = readStruct(bytes, at);
  fieldOf(header, 2)!.value = (64n << 20n) + 1n;
  const edited = writeStruct(header);
  // The same length, so that no offset after it moves: a page of a megabyte takes as many bytes of varint.
  assert.equal(edited.length, end - at);
  edited.forEach((b, i) => (bytes[at + i] = b));
  const path = join(tempDir(), 'bomb.parquet');
  writeFileSync(path, bytes);
  const into = tempDir();
  await assert.rejects(
    () => importStore(path, into),
    (e: unknown) => (e as { code?: string }).code === 'INVALID_ARGUMENT' && (e as { cause?: unknown }).cause instanceof ThriftError,
  );
  assert.deepEqual(readdirSync(into), []);
  // The file as exported imports.
  assert.equal((await importStore(file, tempDir())).rows, 4096);
});

test('memstore import stopped by SIGINT, SIGTERM or SIGHUP removes what it made in the directory, its marker included, and ends by that signal (status 128 + its number in a shell; the marker had stayed, and the store then refused to open; from a FIFO, exiting had hung on the thread blocked reading it)', { skip: process.platform === 'win32' ? 'POSIX signals and FIFOs' : false }, async () => {
  const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
  const line = (i: number) => `${JSON.stringify({ id: `r${i}`, vector: [1, i, 2], text: `text ${i}` })}\n`;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const fifo = join(tempDir(), 'rows.jsonl');
    execFileSync('mkfifo', [fifo]);
    const into = tempDir();
    const child = spawn(process.execPath, [cli, 'import', fifo, into], { stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    // More rows than a batch, so that the store is made, then the pipe held open: the import waits for more.
    const writer = await openFile(fifo, 'w');
    await writer.write(Array.from({ length: 5000 }, (_, i) => line(i)).join(''));
    let made = false;
    for (let i = 0; i < 2000 && !made; i++) {
      made = readdirSync(into).includes('state.mdb') && readdirSync(into).includes('IMPORTING');
      if (!made) await new Promise((r) => setTimeout(r, 5));
    }
    assert.ok(made, `${signal}: the import made its store`);
    child.kill(signal);
    assert.equal(await exited, signal);
    await writer.close();
    assert.deepEqual(readdirSync(into), [], `${signal}: nothing left`);
  }
});
