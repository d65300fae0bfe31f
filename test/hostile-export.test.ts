import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type * as Arrow from 'apache-arrow';
import { CODEC_NAMES } from '../src/codec/codec.js';
import { checkStore, exportStore, FORMATS, importStore, MemStore, type ExportFormat, type MemoryRecord, type MemstoreErrorCode, type Metric, type OpenOptions, type StoredRecord } from '../src/index.js';
import { damageText, rejectsWith, tempDir, recordsOf, within10s } from './helpers.js';
import { cliResult } from './support/cli.js';
import { repairStore } from '../src/store/repair.js';

const arrow = (await import('apache-arrow')) as typeof Arrow;
const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

const bits = (v: Float32Array) => Array.from(new Uint32Array(v.buffer, v.byteOffset, v.length));

function sameRecords(a: Map<string, StoredRecord>, b: Map<string, StoredRecord>, what = ''): void {
  assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort(), what);
  for (const [id, r] of a) {
    const s = b.get(id)!;
    assert.deepEqual(bits(s.vector), bits(r.vector), `${what} ${JSON.stringify(id.slice(0, 20))}`);
    assert.equal(s.text, r.text, `${what} text`);
    assert.deepEqual(s.meta, r.meta, `${what} meta`);
  }
}

async function makeStore(records: readonly MemoryRecord[], options: OpenOptions): Promise<string> {
  const dir = tempDir();
  const store = await MemStore.open(dir, { cache: false, ...options });
  for (const r of records) await store.add([r]);
  await store.close();
  return dir;
}

/** Exports `dir` in `format` and imports the file into a new directory; both results and the file. */
async function roundTrip(dir: string, format: ExportFormat, options: Parameters<typeof importStore>[2] = {}): Promise<{ file: string; into: string; rows: number; records: number }> {
  const file = join(tempDir(), `out.${format}`);
  const { records } = await exportStore(dir, file);
  const into = tempDir();
  const back = await importStore(file, into, options);
  assert.equal(back.rows, records);
  return { file, into, rows: back.rows, records: back.records };
}

/** Asserts that `fn` rejects with a MemstoreError of `code` whose offset is `offset` (the row). */
async function rejectsAtRow(fn: () => Promise<unknown>, code: MemstoreErrorCode, offset: number | undefined, what: string): Promise<void> {
  await assert.rejects(fn, (e: unknown) => {
    const err = e as { code?: unknown; offset?: unknown };
    assert.equal(err.code, code, `${what}: code`);
    assert.equal(err.offset, offset, `${what}: offset`);
    return true;
  });
}

function writeArrow(columns: Record<string, Arrow.Vector>, name = 'in.arrow'): string {
  const file = join(tempDir(), name);
  writeFileSync(file, arrow.tableToIPC(new arrow.Table(columns), 'file'));
  return file;
}

const listOf = (type: Arrow.DataType, nullable = true) => new arrow.List(new arrow.Field('item', type, nullable));
const strings = (values: (string | null)[]) => arrow.vectorFromArray(values, new arrow.Utf8());
const float32Lists = (values: (number | null)[][]) => arrow.vectorFromArray(values, listOf(new arrow.Float32()));

/** A Utf8 column whose cells are these raw bytes (none of them need be UTF-8). */
function rawStrings(cells: readonly number[][]): Arrow.Vector {
  const offsets = Int32Array.from([0, ...cells.map((_, i) => cells.slice(0, i + 1).reduce((n, c) => n + c.length, 0))]);
  return arrow.makeVector(arrow.makeData({ type: new arrow.Utf8(), length: cells.length, valueOffsets: offsets, data: Uint8Array.from(cells.flat()) }));
}

test('an Arrow import refuses a string cell that is not UTF-8 (id, text, meta; plain or dictionary-encoded) as INVALID_ARGUMENT at its row, leaving the directory empty: two different bad ids had become the same id (U+FFFD then a) and one row replaced the other', async () => {
  const vectors = float32Lists([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]]);
  const ok = [0x61];
  const cases: [string, Record<string, Arrow.Vector>, number][] = [
    ['ids FF 61 and FE 61', { id: rawStrings([ok, [0xff, 0x61], [0xfe, 0x61]]), vector: vectors }, 1],
    ['text C3 28', { id: strings(['a', 'b', 'c']), vector: vectors, text: rawStrings([ok, ok, [0xc3, 0x28]]) }, 2],
    ['meta with a lone continuation byte', { id: strings(['a', 'b', 'c']), vector: vectors, meta: rawStrings([[0x7b, 0x7d], [0x7b, 0x80, 0x7d], [0x7b, 0x7d]]) }, 1],
  ];
  const dictionary = arrow.makeVector(arrow.makeData({ type: new arrow.Dictionary(new arrow.Utf8(), new arrow.Int32()), length: 3, data: Int32Array.from([0, 1, 0]), dictionary: rawStrings([ok, [0xff]]) }));
  cases.push(['a dictionary of ids holding FF', { id: dictionary, vector: vectors }, 1]);
  for (const [what, columns, row] of cases) {
    const into = tempDir();
    await rejectsAtRow(() => importStore(writeArrow(columns), into), 'INVALID_ARGUMENT', row, what);
    assert.deepEqual(readdirSync(into), [], `${what}: the directory is left empty`);
  }
  const fine = tempDir();
  const back = await importStore(writeArrow({ id: rawStrings([[0xef, 0xbb, 0xbf, 0x61], ok, [0xc3, 0xa9]]), vector: vectors }), fine);
  assert.equal(back.records, 3, 'valid UTF-8 (a byte-order mark, é) is taken as it is');
});

// ---- the output file ------------------------------------------------------------------------------

test('export never writes or removes a file already at the temporary name beside its output', async () => {
  const dir = await makeStore([{ id: 'a', vector: [1, 2, 3] }], { dim: 3, metric: 'dot' });
  const out = tempDir();
  const file = join(out, 'x.jsonl');
  // The name the first version used for its temporary file: someone's file (or a crashed export's).
  const squatter = `${file}.${process.pid}.tmp`;
  writeFileSync(squatter, 'not yours');
  await exportStore(dir, file);
  assert.equal(readFileSync(squatter, 'utf8'), 'not yours');
  assert.deepEqual(readdirSync(out).sort(), ['x.jsonl', `x.jsonl.${process.pid}.tmp`]);
  assert.equal(readFileSync(file, 'utf8').split('\n').length, 2);
});

test('two exports of different stores to the same new file at once: one writes it whole, the other is INVALID_ARGUMENT, nothing is overwritten', async () => {
  const a = await makeStore([{ id: 'from-a', vector: [1, 2, 3] }], { dim: 3, metric: 'dot' });
  const b = await makeStore([{ id: 'from-b', vector: [3, 2, 1] }], { dim: 3, metric: 'dot' });
  for (const format of FORMATS) {
    const out = tempDir();
    const file = join(out, `same.${format}`);
    const settled = await Promise.allSettled([exportStore(a, file), exportStore(b, file)]);
    const won = settled.findIndex((s) => s.status === 'fulfilled');
    assert.notEqual(won, -1, format);
    const lost = settled[1 - won]!;
    assert.equal(lost.status, 'rejected', format);
    assert.equal((lost as PromiseRejectedResult).reason.code, 'INVALID_ARGUMENT', format);
    assert.deepEqual(readdirSync(out), [`same.${format}`], format);
    const into = tempDir();
    await importStore(file, into, { dim: 3 });
    assert.deepEqual([...(await recordsOf(into)).keys()], [won === 0 ? 'from-a' : 'from-b'], format);
  }
});

test('exporting the same store twice at once: one export, the other LOCKED, no stray files', async () => {
  const dir = await makeStore([{ id: 'a', vector: [1, 2, 3] }], { dim: 3, metric: 'dot' });
  const out = tempDir();
  const settled = await Promise.allSettled([exportStore(dir, join(out, 'p.arrow')), exportStore(dir, join(out, 'q.parquet'))]);
  assert.deepEqual(settled.map((s) => s.status).sort(), ['fulfilled', 'rejected']);
  const rejected = settled.find((s) => s.status === 'rejected') as PromiseRejectedResult;
  assert.equal(rejected.reason.code, 'LOCKED');
  assert.equal(readdirSync(out).length, 1);
});

test('export to a path in a missing directory is IO and creates nothing; to a directory or the store directory itself, INVALID_ARGUMENT', async () => {
  const dir = await makeStore([{ id: 'a', vector: [1, 2, 3] }], { dim: 3, metric: 'dot' });
  const parent = tempDir();
  await rejectsWith(() => exportStore(dir, join(parent, 'missing', 'x.jsonl')), 'IO');
  assert.deepEqual(readdirSync(parent), []);
  await rejectsWith(() => exportStore(dir, parent, { format: 'jsonl' }), 'INVALID_ARGUMENT');
  const before = readdirSync(dir).sort();
  await rejectsWith(() => exportStore(dir, dir, { format: 'parquet' }), 'INVALID_ARGUMENT');
  assert.deepEqual(readdirSync(dir).sort(), before);
  assert.equal((await recordsOf(dir)).size, 1);
});

test("export into the store's own entries (a file named like a log segment in wal/, one in arena/ or index/, a marker's name), also through a link, is INVALID_ARGUMENT and writes nothing (the first was read as the store's log and the store no longer opened); beside them it is allowed", async () => {
  const dir = await makeStore([{ id: 'a', vector: [1, 2, 3] }], { dim: 3, metric: 'dot' });
  const link = join(tempDir(), 'log');
  symlinkSync(join(dir, 'wal'), link);
  for (const out of [join(dir, 'wal', 'wal-00000000000000000099.log'), join(dir, 'arena', 'x.jsonl'), join(dir, 'index', 'x.jsonl'), join(dir, 'IMPORTING'), join(dir, 'wal.repair'), join(link, 'x.jsonl')]) {
    const before = readdirSync(dir, { recursive: true }).map(String).sort();
    await rejectsWith(() => exportStore(dir, out, { format: 'jsonl' }), 'INVALID_ARGUMENT');
    assert.deepEqual(readdirSync(dir, { recursive: true }).map(String).sort(), before, out);
  }
  assert.equal((await recordsOf(dir)).size, 1);
  const beside = join(dir, 'mine.jsonl');
  assert.equal((await exportStore(dir, beside)).records, 1);
});

// ---- what a store holds comes back --------------------------------------------------------------

test('odd Unicode and the limits come back through every format: U+FEFF at the start of ids and texts, NUL, emoji ids of 1 KiB, combining marks, line separators, __proto__ keys, 64-deep and 1 MiB metadata, a 4 MiB text', async () => {
  let deep: Record<string, unknown> = { leaf: [1, { x: null }] };
  for (let i = 0; i < 61; i++) deep = { d: deep };
  const records: MemoryRecord[] = [
    { id: '😀'.repeat(256), vector: [1, 2, 3], text: 'e\u0301\u0000\r\n\r\u2028\u2029\u0085' + '🧪'.repeat(10), meta: { ...(JSON.parse('{"__proto__":{"polluted":true}}') as object), constructor: { prototype: 1 }, 'a\u0000b': '\u0000', big: 1e308, tiny: 5e-324, neg: -1.7976931348623157e308, int: 2 ** 53 + 2 } },
    { id: '\u0000', vector: [1, 1.401298464324817e-45, -0] },
    { id: '\uFEFFstarts with a byte-order mark', vector: [1, -0, 0], text: '\uFEFF\uFEFFtext too' },
    { id: 'empty text', vector: [2, 1, 0], text: '', meta: {} },
    { id: 'deep', vector: [1, 1, 1], meta: deep },
    { id: 'big meta', vector: [1, 1, 2], meta: { s: 'é'.repeat((1 << 19) - 20) } },
    { id: 'big text', vector: [1, 2, 2], text: '🦀'.repeat(1 << 20) },
    { id: 'a'.repeat(1024), vector: [2, 2, 2] },
    { id: 'ﷺ\u200d\u{1F468}\u200d\u{1F469}\u200d\u{1F467}', vector: [3, 2, 2], text: '\t"\\' },
  ];
  const dir = await makeStore(records, { dim: 3, metric: 'dot' });
  const original = await recordsOf(dir);
  assert.equal(original.size, records.length);
  for (const format of FORMATS) {
    const { into } = await roundTrip(dir, format, { metric: 'dot' });
    const back = await recordsOf(into);
    sameRecords(original, back, format);
    const meta = back.get('😀'.repeat(256))!.meta!;
    assert.deepEqual(Object.keys(meta).slice(0, 2), ['__proto__', 'constructor'], format);
    assert.equal(Object.getPrototypeOf(meta), Object.prototype, format);
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined, format);
  }
});

test('vectors of a cosine store: the largest float32, subnormals and -0 come back bit for bit, metric and all', async () => {
  const max = 3.4028234663852886e38;
  const records = [
    { id: 'max', vector: [max, -max, 1, 0] },
    { id: 'subnormal', vector: [1.401298464324817e-45, -1.1754942106924411e-38, 1, -0] },
    { id: 'zero', vector: [0, -0, 0, -0] },
  ];
  const dir = await makeStore(records, { dim: 4, metric: 'cosine' });
  for (const format of FORMATS) {
    const { into } = await roundTrip(dir, format);
    sameRecords(await recordsOf(dir), await recordsOf(into), format);
    assert.equal(Object.is((await recordsOf(into)).get('zero')!.vector[1], -0), true, format);
    const store = await MemStore.open(into);
    assert.equal(store.stats().metric, 'cosine');
    await store.close();
  }
});

test('every codec and metric, with PCA, without full vectors, paged, after deletes, upserts and compaction: import gets what get gives', async () => {
  const DIM = 8;
  const vec = (i: number) => Array.from({ length: DIM }, (_, d) => Math.sin(i * 7 + d) * 3 + (d === 0 ? 5 : 0));
  const metrics: Metric[] = ['cosine', 'dot', 'l2'];
  let n = 0;
  for (const codec of CODEC_NAMES) {
    for (const rescore of [true, false]) {
      const metric = metrics[n++ % 3]!;
      const dir = tempDir();
      const store = await MemStore.open(dir, { dim: DIM, metric, codec, pca: { dims: 4 }, rescore, trainSize: 50, pages: { from: 40, maxPage: 16 }, cache: false, durability: 'none' });
      for (let i = 0; i < 120; i += 20) await store.add(Array.from({ length: 20 }, (_, j) => ({ id: `r${i + j}`, vector: vec(i + j), text: `t${i + j}`, meta: { i: i + j } })));
      await store.delete(['r3', 'r4', 'r77']);
      await store.add([{ id: 'r5', vector: vec(500), text: 'upserted' }]);
      await store.compact();
      await store.add([{ id: 'r6', vector: vec(600) }]);
      await store.close();
      const original = await recordsOf(dir);
      assert.equal(original.size, 117);
      for (const format of FORMATS) {
        const what = `${codec} rescore ${rescore} ${metric} ${format}`;
        // A store that keeps full vectors (f32) takes the reconstructions as they are.
        const { into, records } = await roundTrip(dir, format, { metric, codec: 'f32' });
        assert.equal(records, 117, what);
        sameRecords(original, await recordsOf(into), what);
      }
    }
  }
});

test('export, import, export again: the same bytes in every format', async () => {
  const records = Array.from({ length: 300 }, (_, i) => ({ id: `id-${(i * 7919) % 300}`, vector: [i + 1, 2, -0, 1e-40], ...(i % 3 === 0 ? { text: 'é'.repeat(i % 5) } : {}), ...(i % 2 === 1 ? { meta: { i, s: [i, { t: true }] } } : {}) }));
  const dir = await makeStore(records, { dim: 4, metric: 'l2' });
  const store = await MemStore.open(dir);
  await store.delete(['id-5', 'id-6']);
  await store.close();
  for (const format of FORMATS) {
    const first = await roundTrip(dir, format, { metric: 'l2' });
    const second = join(tempDir(), `again.${format}`);
    await exportStore(first.into, second);
    assert.equal(Buffer.compare(readFileSync(first.file), readFileSync(second)), 0, format);
  }
});

test('records whose texts pass the 256 MiB limit of one add together export and import (batches stop at 64 MiB)', async () => {
  const text = 'x'.repeat((16 << 20) - 64);
  const dir = await makeStore(
    Array.from({ length: 17 }, (_, i) => ({ id: `r${i}`, vector: [1, 2, i + 1], text })),
    { dim: 3, metric: 'dot', durability: 'none' },
  );
  const { into, records } = await roundTrip(dir, 'jsonl', { metric: 'dot' });
  assert.equal(records, 17);
  const store = await MemStore.open(into);
  assert.equal((await store.get('r16'))!.text!.length, text.length);
  await store.close();
});

// ---- JSONL as other tools write it -----------------------------------------------------------------

const row = (id: string, vector: unknown = [1, 2, 3], extra: Record<string, unknown> = {}) => JSON.stringify({ id, vector, ...extra });

test('import JSONL: a byte-order mark, CRLF, blank and whitespace lines, a last line without newline, a lone CR as JSON whitespace, extra fields, text and meta null', async () => {
  const file = join(tempDir(), 'odd.jsonl');
  const lines = [
    `\uFEFF${row('a', [1, 2, 3], { text: 'x' })}`,
    '',
    '   \t',
    row('b', [1, 2, 4], { text: null, meta: null, score: 0.5, payload: { nested: true } }),
    '{"id":"c",\r"vector":[1,2,5],\r"meta":{"k":"v"}}',
    row('\uFEFFd', [1, 2, 6]),
  ];
  writeFileSync(file, lines.join('\r\n'));
  const into = tempDir();
  assert.deepEqual(await importStore(file, into), { rows: 4, records: 4, dim: 3 });
  const back = await recordsOf(into);
  assert.deepEqual([...back.keys()].sort(), ['a', 'b', 'c', '\uFEFFd']);
  assert.equal(back.get('a')!.text, 'x');
  assert.equal(back.get('b')!.text, undefined);
  assert.equal(back.get('b')!.meta, undefined);
  assert.deepEqual(back.get('c')!.meta, { k: 'v' });
});

test('import JSONL: a missing file, or a directory, is INVALID_ARGUMENT like the other formats, and the directory stays empty', async () => {
  for (const file of [join(tempDir(), 'missing.jsonl'), tempDir()]) {
    const into = tempDir();
    await rejectsWith(() => importStore(file, into, { format: 'jsonl' }), 'INVALID_ARGUMENT');
    assert.deepEqual(readdirSync(into), []);
  }
});

test('import JSONL: each bad row stops it with its code and its row (blank lines are not rows), the directory left empty', async () => {
  const good = [row('r0'), '', row('r1'), row('r2')];
  const cases: { line: string; code: MemstoreErrorCode }[] = [
    { line: `${row('x')} trailing`, code: 'INVALID_ARGUMENT' },
    { line: row('x', ['1', '2', '3']), code: 'INVALID_VECTOR' },
    { line: JSON.stringify({ id: 7, vector: [1, 2, 3] }), code: 'INVALID_ID' },
    { line: JSON.stringify({ vector: [1, 2, 3] }), code: 'INVALID_ID' },
    { line: JSON.stringify({ id: 'x' }), code: 'INVALID_ARGUMENT' },
    { line: row('x', { 0: 1, 1: 2, 2: 3 }), code: 'INVALID_ARGUMENT' },
    { line: row('x', [1, 2, 1e39]), code: 'INVALID_VECTOR' },
    { line: row('x', [1, 2, 3], { text: 5 }), code: 'INVALID_ARGUMENT' },
    { line: row('x', [1, 2, 3], { meta: [1] }), code: 'INVALID_ARGUMENT' },
    { line: row('x', [1, 2, 3], { text: 'a'.repeat((16 << 20) + 1) }), code: 'INVALID_ARGUMENT' },
    { line: row('x'.repeat(1025)), code: 'INVALID_ID' },
    { line: row('x\ud800'), code: 'INVALID_ID' },
    { line: 'null', code: 'INVALID_ARGUMENT' },
    { line: '"a string"', code: 'INVALID_ARGUMENT' },
  ];
  for (const { line, code } of cases) {
    const file = join(tempDir(), 'bad.jsonl');
    writeFileSync(file, [...good, line, row('r4')].join('\n'));
    const into = tempDir();
    await rejectsAtRow(() => importStore(file, into), code, 3, line.slice(0, 40));
    assert.deepEqual(readdirSync(into), [], line.slice(0, 40));
  }
});

test('import: a JSONL line longer than any record can be is INVALID_ARGUMENT naming it, ended by a newline or not (a 560 MiB line threw V8\'s RangeError, and a file without newlines was read into memory whole)', async () => {
  const { MAX_JSONL_LINE_BYTES } = await import('../src/export/files.js');
  const long = Buffer.alloc(MAX_JSONL_LINE_BYTES + 1, 0x20);
  for (const tail of ['\n', '']) {
    const file = join(tempDir(), 'long.jsonl');
    writeFileSync(file, Buffer.concat([Buffer.from(`${row('a')}\n`), long, Buffer.from(tail)]));
    const into = tempDir();
    await rejectsAtRow(() => importStore(file, into), 'INVALID_ARGUMENT', 1, `line of ${long.length} bytes${tail === '' ? ', no newline' : ''}`);
    assert.deepEqual(readdirSync(into), []);
  }
});

test('import: an empty or too long first vector (the dimension is taken from it) is INVALID_VECTOR at row 0', async () => {
  for (const vector of [[], Array(65537).fill(1)]) {
    const file = join(tempDir(), 'first.jsonl');
    writeFileSync(file, `${row('a', vector)}\n${row('b')}\n`);
    const into = tempDir();
    await rejectsAtRow(() => importStore(file, into), 'INVALID_VECTOR', 0, `${vector.length} components`);
    assert.deepEqual(readdirSync(into), []);
  }
});

test('import into a directory that holds only a hidden file, or into a file, is INVALID_ARGUMENT and changes neither', async () => {
  const file = join(tempDir(), 'in.jsonl');
  writeFileSync(file, `${row('a')}\n`);
  const hidden = tempDir();
  writeFileSync(join(hidden, '.keep'), 'k');
  await rejectsWith(() => importStore(file, hidden), 'INVALID_ARGUMENT');
  assert.deepEqual(readdirSync(hidden), ['.keep']);
  const plain = join(tempDir(), 'plain');
  writeFileSync(plain, 'p');
  await rejectsWith(() => importStore(file, plain), 'INVALID_ARGUMENT');
  assert.equal(readFileSync(plain, 'utf8'), 'p');
});

// ---- Arrow and Parquet as other tools write them ---------------------------------------------------

test('import Arrow: wrong column types, nulls, ragged lists and missing columns stop at their row with their code', async () => {
  const cases: { what: string; columns: Record<string, Arrow.Vector>; code: MemstoreErrorCode; row: number }[] = [
    { what: 'a null item in a nullable list', columns: { id: strings(['a', 'b']), vector: float32Lists([[1, 2, 3], [1, null, 3]]) }, code: 'INVALID_VECTOR', row: 1 },
    { what: 'a null item in a nullable FixedSizeList', columns: { id: strings(['a', 'b']), vector: arrow.vectorFromArray([[1, 2, 3], [null, 2, 3]], new arrow.FixedSizeList(3, new arrow.Field('item', new arrow.Float32(), true))) }, code: 'INVALID_VECTOR', row: 1 },
    { what: 'a null vector', columns: { id: strings(['a', 'b']), vector: float32Lists([[1, 2, 3], null as unknown as number[]]) }, code: 'INVALID_ARGUMENT', row: 1 },
    { what: 'lists of different lengths', columns: { id: strings(['a', 'b']), vector: float32Lists([[1, 2, 3], [1, 2]]) }, code: 'DIM_MISMATCH', row: 1 },
    { what: 'a list of strings', columns: { id: strings(['a']), vector: arrow.vectorFromArray([['1', '2', '3']], listOf(new arrow.Utf8())) }, code: 'INVALID_VECTOR', row: 0 },
    // Dates and timestamps had come in as their milliseconds (a hostile pass).
    { what: 'a list of dates', columns: { id: strings(['a']), vector: arrow.vectorFromArray([[new Date(0), new Date(86_400_000)]], listOf(new arrow.DateDay())) }, code: 'INVALID_VECTOR', row: 0 },
    { what: 'a list of timestamps', columns: { id: strings(['a']), vector: arrow.vectorFromArray([[1e12, 1e12 + 1]], listOf(new arrow.TimestampMillisecond())) }, code: 'INVALID_VECTOR', row: 0 },
    { what: 'a vector that is one number', columns: { id: strings(['a']), vector: arrow.vectorFromArray([1.5], new arrow.Float32()) }, code: 'INVALID_ARGUMENT', row: 0 },
    { what: 'ids as integers', columns: { id: arrow.vectorFromArray([1, 2], new arrow.Int32()), vector: float32Lists([[1, 2, 3], [1, 2, 4]]) }, code: 'INVALID_ID', row: 0 },
    { what: 'a null id', columns: { id: strings(['a', null]), vector: float32Lists([[1, 2, 3], [1, 2, 4]]) }, code: 'INVALID_ID', row: 1 },
    { what: 'no id column', columns: { vector: float32Lists([[1, 2, 3]]) }, code: 'INVALID_ID', row: 0 },
    { what: 'no vector column', columns: { id: strings(['a']) }, code: 'INVALID_ARGUMENT', row: 0 },
    { what: 'text as integers', columns: { id: strings(['a']), vector: float32Lists([[1, 2, 3]]), text: arrow.vectorFromArray([5], new arrow.Int32()) }, code: 'INVALID_ARGUMENT', row: 0 },
    { what: 'meta not JSON', columns: { id: strings(['a', 'b']), vector: float32Lists([[1, 2, 3], [1, 2, 3]]), meta: strings(['{}', '{oops']) }, code: 'INVALID_ARGUMENT', row: 1 },
    { what: 'meta JSON of an array', columns: { id: strings(['a', 'b']), vector: float32Lists([[1, 2, 3], [1, 2, 3]]), meta: strings(['{}', '[1,2]']) }, code: 'INVALID_ARGUMENT', row: 1 },
    { what: 'meta JSON null', columns: { id: strings(['a']), vector: float32Lists([[1, 2, 3]]), meta: strings(['null']) }, code: 'INVALID_ARGUMENT', row: 0 },
  ];
  for (const { what, columns, code, row: at } of cases) {
    const file = writeArrow(columns);
    const into = tempDir();
    await rejectsAtRow(() => importStore(file, into), code, at, what);
    assert.deepEqual(readdirSync(into), [], what);
  }
});

test('import Arrow: vectors of 64-bit integers, int8 and float16 are converted to float32; extra columns and dictionary or large string ids are read', async () => {
  const cases: { what: string; vector: Arrow.Vector }[] = [
    { what: 'Int64', vector: arrow.vectorFromArray([[1n, 2n, 3n], [-4n, 5n, 6n]], listOf(new arrow.Int64())) },
    { what: 'Uint64', vector: arrow.vectorFromArray([[1n, 2n, 3n], [4n, 5n, 6n]], listOf(new arrow.Uint64())) },
    { what: 'Int8', vector: arrow.vectorFromArray([[1, 2, 3], [-4, 5, 6]], listOf(new arrow.Int8())) },
    { what: 'Float16', vector: arrow.vectorFromArray([[1, 2, 3], [-4, 5, 6]], listOf(new arrow.Float16())) },
  ];
  for (const { what, vector } of cases) {
    const file = writeArrow({ id: strings(['a', 'b']), vector, other: strings(['x', 'y']) });
    const into = tempDir();
    assert.deepEqual(await importStore(file, into), { rows: 2, records: 2, dim: 3 }, what);
    assert.deepEqual(Array.from((await recordsOf(into)).get('a')!.vector), [1, 2, 3], what);
  }
  for (const id of [arrow.vectorFromArray(['a', 'b'], new arrow.Dictionary(new arrow.Utf8(), new arrow.Int32())), arrow.vectorFromArray(['a', 'b'], new arrow.LargeUtf8())]) {
    const into = tempDir();
    await importStore(writeArrow({ id, vector: float32Lists([[1, 2, 3], [1, 2, 4]]) }), into);
    assert.deepEqual([...(await recordsOf(into)).keys()].sort(), ['a', 'b']);
  }
});

test('import Arrow: a file of no rows and no memstore metadata needs dim (INVALID_ARGUMENT, directory empty); an IPC stream under .arrow is read', async () => {
  const empty = writeArrow({ id: strings([]), vector: float32Lists([]) });
  const into = tempDir();
  await rejectsWith(() => importStore(empty, into), 'INVALID_ARGUMENT');
  assert.deepEqual(readdirSync(into), []);
  assert.deepEqual(await importStore(empty, into, { dim: 3 }), { rows: 0, records: 0, dim: 3 });
  const stream = join(tempDir(), 'stream.arrow');
  writeFileSync(stream, arrow.tableToIPC(new arrow.Table({ id: strings(['a']), vector: float32Lists([[1, 2, 3]]) }), 'stream'));
  assert.equal((await importStore(stream, tempDir())).records, 1);
});

test('a file of one format read as another (a wrong extension, or --format on a name that says none) is INVALID_ARGUMENT and the directory stays empty', async () => {
  const dir = await makeStore([{ id: 'a', vector: [1, 2, 3], text: 't', meta: { k: 1 } }], { dim: 3, metric: 'dot' });
  const files = new Map<ExportFormat, string>();
  for (const format of FORMATS) {
    const file = join(tempDir(), `x.${format}`);
    await exportStore(dir, file);
    files.set(format, file);
  }
  for (const [written, file] of files) {
    for (const read of FORMATS) {
      if (read === written) continue;
      // A --format that the name contradicts is refused before the file is read (INVALID_OPTION,
      // test/export.test.ts); the content is tried under a name that says nothing, and under the other's extension.
      const neutral = join(tempDir(), 'records.bin');
      const misnamed = join(tempDir(), `x.${read}`);
      copyFileSync(file, neutral);
      copyFileSync(file, misnamed);
      for (const [path, options] of [[neutral, { format: read }], [misnamed, {}]] as const) {
        const into = tempDir();
        await rejectsWith(() => importStore(path, into, options), 'INVALID_ARGUMENT');
        assert.deepEqual(readdirSync(into), [], `${written} read as ${read}`);
      }
    }
  }
});

// ---- the command line --------------------------------------------------------------------------------

test('memstore export and import exit 2 on usage errors and bad input, 1 on corruption, 0 when done', async () => {
  const dir = await makeStore(
    Array.from({ length: 10 }, (_, i) => ({ id: `r${i}`, vector: [1, 2, i + 1], text: `the text of record ${i}` })),
    { dim: 3, metric: 'dot' },
  );
  const empty = tempDir();
  const usage = [
    ['export', dir],
    ['export', dir, '--out', join(empty, 'x.csv'), '--format', 'csv'],
    ['import'],
    ['import', join(empty, 'x.jsonl'), empty, '--dim', '0'],
    ['import', join(empty, 'x.jsonl'), empty, '--metric', 'manhattan'],
    ['export', dir, '--out', join(empty, 'x.jsonl'), '--no-such-flag'],
  ];
  const results = await Promise.all(usage.map((args) => cliResult(args)));
  results.forEach((r, i) => assert.equal(r.code, 2, usage[i]!.join(' ')));
  assert.deepEqual(readdirSync(empty), []);
  const bad = join(tempDir(), 'bad.jsonl');
  writeFileSync(bad, `${row('a')}\n${row('b', [1, 2])}\n`);
  const into = tempDir();
  const refused = await cliResult(['import', bad, into]);
  assert.equal(refused.code, 2);
  assert.deepEqual(readdirSync(into), []);
  const ok = await cliResult(['export', dir, '--out', join(empty, 'ok.jsonl')]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal((await cliResult(['--version'])).code, 0);
  damageText(dir, 'record 7');
  assert.equal((await cliResult(['export', dir, '--out', join(empty, 'damaged.jsonl')])).code, 1);
  assert.equal(existsSync(join(empty, 'damaged.jsonl')), false);
  // The same in every format: Arrow had ended with an unhandled rejection's stack trace and left its temp file.
  for (const format of ['arrow', 'parquet']) {
    const out = join(empty, `damaged.${format}`);
    const r = await cliResult(['export', dir, '--out', out]);
    assert.equal(r.code, 1, `${format}: ${r.stderr}`);
    assert.match(r.stderr, /CORRUPTION/, format);
    assert.doesNotMatch(r.stderr, /\n\s+at /, `${format}: no stack trace`);
    assert.equal(existsSync(out), false, format);
  }
  assert.deepEqual(readdirSync(empty).filter((f) => f.endsWith('.tmp')), [], 'no temp file left');
});

test('an import killed midway (SIGKILL) leaves no store that opens as if it were whole: open is CORRUPTION, and importing again starts over', async () => {
  const { file, into } = bigImport(60_000);
  // Killed once the store exists and its log has grown: some batches in, most of the file to go.
  const first = await importUnderWay(file, into);
  first.kill();
  assert.equal((await first.exited).signal, 'SIGKILL', 'the import finished before it was killed: give it more rows');
  // The marker was made durable before anything else: the store it was building is refused.
  assert.ok(readdirSync(into).includes('IMPORTING'));
  await rejectsWith(() => MemStore.open(into), 'CORRUPTION');
  // verify and inspect say so too (they had called it healthy: ok, exit 0, no problem).
  const verified = await cliResult(['verify', into]);
  assert.equal(verified.code, 1, verified.stdout);
  assert.match(verified.stdout + verified.stderr, /IMPORTING/);
  const inspected = await cliResult(['inspect', into]);
  assert.match(inspected.stdout, /import into this directory did not finish/);
  assert.equal(inspected.code, 1, 'inspect exits 1 beside the problem it lists');
  const again = await cliResult(['import', file, into]);
  assert.equal(again.code, 0, again.stderr);
  assert.ok(!readdirSync(into).includes('IMPORTING'));
  const store = await MemStore.open(into);
  try {
    assert.equal(store.stats().count, 60_000);
  } finally {
    await store.close();
  }
});

/** A JSONL file of `n` rows of 32-d vectors, and a new empty directory to import it into. */
function bigImport(n: number): { file: string; into: string } {
  const file = join(tempDir(), 'many.jsonl');
  const lines: string[] = [];
  for (let i = 0; i < n; i++) lines.push(row(`r${i}`, Array.from({ length: 32 }, (_, d) => ((i * 31 + d * 17) % 97) + 1)));
  writeFileSync(file, `${lines.join('\n')}\n`);
  const into = join(tempDir(), 'store');
  mkdirSync(into);
  return { file, into };
}

/** Starts `memstore import file into` and resolves once its store's log has grown (some batches in). */
async function importUnderWay(file: string, into: string): Promise<{ exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>; kill: () => void }> {
  const child = spawn(process.execPath, [cli, 'import', file, into], { stdio: 'ignore' });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  for (let waited = 0; waited < 20_000; waited += 5) {
    const wal = join(into, 'wal');
    if (existsSync(wal) && readdirSync(wal).length > 0) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  return { exited, kill: () => child.kill('SIGKILL') };
}

test('a second import into a directory another import is still writing is refused with LOCKED (it had cleared the directory under the first, losing both), and the first finishes whole', async () => {
  const { file, into } = bigImport(60_000);
  const small = join(tempDir(), 'one.jsonl');
  writeFileSync(small, `${row('a', Array.from({ length: 32 }, () => 1))}\n`);
  const first = await importUnderWay(file, into);
  const second = await cliResult(['import', small, into]);
  assert.equal(second.code, 2, second.stderr);
  assert.match(second.stderr, /LOCKED/);
  const done = await first.exited;
  assert.equal(done.code, 0, 'the first import was not killed: it finished');
  const store = await MemStore.open(into);
  try {
    assert.equal(store.stats().count, 60_000);
  } finally {
    await store.close();
  }
});

test('while an import runs, opening its directory (open, repair, the CLI\'s compact and export) is LOCKED, not CORRUPTION with advice to empty the directory, and the import finishes whole', async () => {
  const { repairStore } = await import('../src/store/repair.js');
  const { file, into } = bigImport(60_000);
  const running = await importUnderWay(file, into);
  await rejectsWith(() => MemStore.open(into), 'LOCKED');
  await rejectsWith(() => repairStore(into), 'LOCKED');
  for (const args of [['compact', into], ['export', into, '--out', join(tempDir(), 'out.jsonl')]]) {
    const r = await cliResult(args);
    assert.equal(r.code, 2, `${args[0]}: ${r.stderr}`);
    assert.match(r.stderr, /LOCKED/, args[0]);
  }
  assert.equal((await running.exited).code, 0, 'the import finished');
  const store = await MemStore.open(into);
  try {
    assert.equal(store.stats().count, 60_000);
  } finally {
    await store.close();
  }
});

test('after an import was killed, importing again clears the store it left but not a file the user put in the directory (it had deleted the very file being imported): refused as not empty', async () => {
  const { file, into } = bigImport(60_000);
  const first = await importUnderWay(file, into);
  first.kill();
  assert.equal((await first.exited).signal, 'SIGKILL', 'the import finished before it was killed: give it more rows');
  const mine = join(into, 'mine.jsonl');
  writeFileSync(mine, `${row('a', Array.from({ length: 32 }, () => 1))}\n`);
  const again = await cliResult(['import', mine, into]);
  assert.equal(again.code, 2, again.stderr);
  assert.match(again.stderr, /not empty/);
  assert.deepEqual(readdirSync(into), ['mine.jsonl'], "the killed import's store is cleared, the user's file is there");
  rmSync(mine);
  const fresh = await cliResult(['import', file, into]);
  assert.equal(fresh.code, 0, fresh.stderr);
});

test('a JSONL row that is not valid UTF-8 is INVALID_ARGUMENT naming its line, and the directory stays empty (two bad ids had both become U+FFFD, one row silently replacing the other)', async () => {
  const file = join(tempDir(), 'bad-utf8.jsonl');
  const good = Buffer.from(`${row('ok', [1, 2])}\n`);
  writeFileSync(file, Buffer.concat([good, Buffer.from('{"id":"'), Buffer.from([0xff]), Buffer.from('","vector":[1,2],"text":"first"}\n{"id":"'), Buffer.from([0xfe]), Buffer.from('","vector":[3,4],"text":"second"}\n')]));
  const into = tempDir();
  await rejectsWith(() => importStore(file, into), 'INVALID_ARGUMENT');
  assert.deepEqual(readdirSync(into), []);
  const r = await cliResult(['import', file, into]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /line 2: not valid UTF-8/);
  // Valid UTF-8 of every width, a byte-order mark first and CRLF line ends still import.
  const fine = join(tempDir(), 'fine.jsonl');
  writeFileSync(fine, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`${row('é', [1, 2])}\r\n${row('漢字', [3, 4])}\r\n${row('😀', [5, 6])}\n`)]));
  const dir = tempDir();
  assert.equal((await importStore(fine, dir)).records, 3);
  const store = await MemStore.open(dir);
  try {
    for (const id of ['é', '漢字', '😀']) assert.equal((await store.get(id))?.id, id);
  } finally {
    await store.close();
  }
});

test('a Parquet export with one bit flipped, at each of 64 places: the import rejects it with INVALID_ARGUMENT and leaves the directory empty, or imports it; it never kills the process (parquet-wasm trapped in its streaming reader)', async () => {
  const source = tempDir();
  const s = await MemStore.open(source, { dim: 8 });
  await s.add(Array.from({ length: 20 }, (_, i) => ({ id: `r${i}`, vector: Array.from({ length: 8 }, (_, j) => Math.sin(i * 8 + j)), text: `text ${i}`, meta: { i } })));
  await s.close();
  const clean = join(tempDir(), 'clean.parquet');
  await exportStore(source, clean);
  const bytes = readFileSync(clean);
  for (let at = 0; at < 64; at++) {
    const flipped = Buffer.from(bytes);
    const offset = Math.floor((at * bytes.length) / 64);
    flipped[offset] = flipped[offset]! ^ (1 << (at % 8));
    const file = join(tempDir(), 'flipped.parquet');
    writeFileSync(file, flipped);
    const dir = tempDir();
    try {
      await importStore(file, dir);
    } catch (e) {
      assert.ok(e instanceof Error && (e as { code?: unknown }).code === 'INVALID_ARGUMENT', `offset ${offset}: ${String(e)}`);
      assert.deepEqual(readdirSync(dir), [], `offset ${offset}: the directory is left empty`);
    }
  }
});

test("import Arrow: a schema naming a metric no store has ('L2', 'hamming') is INVALID_ARGUMENT unless a metric is given (it had imported as cosine); a memstore.dim that is not decimal digits ('0x10', '1e3') is not read as one", async () => {
  const withMetadata = (metadata: Record<string, string>) => {
    const table = new arrow.Table({ id: strings(['a', 'b']), vector: float32Lists([[1, 2, 3], [3, 2, 1]]) });
    const schema = new arrow.Schema(table.schema.fields, new Map(Object.entries(metadata)));
    const file = join(tempDir(), 'in.arrow');
    writeFileSync(file, arrow.tableToIPC(new arrow.Table(schema, table.batches), 'file'));
    return file;
  };
  for (const metric of ['L2', 'hamming', 'Dot', '']) {
    const file = withMetadata({ 'memstore.metric': metric });
    const dir = tempDir();
    await rejectsWith(() => importStore(file, dir), 'INVALID_ARGUMENT');
    assert.deepEqual(readdirSync(dir), [], `${metric}: the directory is left empty`);
    const given = await importStore(file, tempDir(), { metric: 'l2' });
    assert.equal(given.records, 2);
  }
  const known = tempDir();
  await importStore(withMetadata({ 'memstore.metric': 'dot' }), known);
  const store = await MemStore.open(known);
  try {
    assert.equal(store.stats().metric, 'dot');
  } finally {
    await store.close();
  }
  for (const dim of ['0x10', '1e3', '3.0', '-3']) {
    // Not a dimension: the vectors' list size (3) is the store's.
    const dir = tempDir();
    await importStore(withMetadata({ 'memstore.dim': dim }), dir);
    const s = await MemStore.open(dir);
    try {
      assert.equal(s.stats().dim, 3, dim);
    } finally {
      await s.close();
    }
  }
});

test('after an import that did not finish: verify reports it, repair refuses with CORRUPTION before writing its report, and the import again starts over (a report left behind had made it refuse the directory)', async () => {
  const { importMarkerPath } = await import('../src/store/files.js');
  const { repairStore } = await import('../src/store/repair.js');
  const file = join(tempDir(), 'in.jsonl');
  writeFileSync(file, Array.from({ length: 5 }, (_, i) => JSON.stringify({ id: `r${i}`, vector: [i, 1, 2] })).join('\n'));
  const dir = tempDir();
  await importStore(file, dir);
  // What a killed import leaves: the store's entries and the marker.
  writeFileSync(importMarkerPath(dir), '');
  const before = readdirSync(dir).sort();
  const verified = await cliResult(['verify', dir]);
  assert.equal(verified.code, 1);
  await rejectsWith(() => repairStore(dir), 'CORRUPTION');
  assert.deepEqual(readdirSync(dir).sort(), before, 'repair wrote no report');
  const again = await importStore(file, dir);
  assert.equal(again.records, 5);
  assert.ok(!existsSync(importMarkerPath(dir)));
});

test('an import killed before its store made a state leaves only its marker: verify, inspect and repair name the unfinished import (CORRUPTION, the marker as the file), as open does, where they had said the directory holds no memstore (a hostile pass)', async () => {
  const { importMarkerPath } = await import('../src/store/files.js');
  const dir = tempDir();
  writeFileSync(importMarkerPath(dir), '');
  for (const check of [() => MemStore.open(dir), () => checkStore(dir), () => repairStore(dir)]) {
    const e = await rejectsWith(check, 'CORRUPTION');
    assert.equal(e.file, importMarkerPath(dir));
  }
  for (const command of ['verify', 'inspect']) assert.equal((await cliResult([command, dir])).code, 1, command);
  assert.deepEqual(readdirSync(dir), ['IMPORTING'], 'nothing made');
});

test('after an import that did not finish, memstore compact and export of the directory named relative to the working directory do not advise the repair that refuses it (they did: the store names the marker by its absolute path)', async () => {
  const { importMarkerPath } = await import('../src/store/files.js');
  const file = join(tempDir(), 'in.jsonl');
  writeFileSync(file, Array.from({ length: 5 }, (_, i) => JSON.stringify({ id: `r${i}`, vector: [i, 1, 2] })).join('\n'));
  const parent = tempDir();
  const dir = join(parent, 'ki');
  mkdirSync(dir);
  await importStore(file, dir);
  writeFileSync(importMarkerPath(dir), '');
  for (const args of [['compact', 'ki'], ['export', 'ki', '--out', join(parent, 'out.jsonl')]]) {
    const r = spawnSync(process.execPath, [cli, ...args], { cwd: parent, encoding: 'utf8' });
    assert.equal(r.status, 1, `${args[0]}: ${r.stderr}`);
    assert.match(r.stderr, /CORRUPTION/);
    assert.ok(!r.stderr.includes('memstore repair'), `${args[0]} advised a repair: ${r.stderr}`);
  }
  const repaired = spawnSync(process.execPath, [cli, 'repair', 'ki'], { cwd: parent, encoding: 'utf8' });
  assert.equal(repaired.status, 1, 'repair refuses an unfinished import');
});

test('export refuses an output inside this store\'s wal/ that is a link to another directory, reached without the store\'s path, and any output named as a store\'s files are (it wrote a log segment there, and the store then refused to open: CORRUPTION)', async () => {
  const dir = await makeStore([{ id: 'a', vector: [1, 2, 3] }, { id: 'b', vector: [3, 2, 1] }], { dim: 3, metric: 'dot' });
  const away = join(tempDir(), 'wal-away');
  renameSync(join(dir, 'wal'), away);
  symlinkSync(away, join(dir, 'wal'));
  for (const out of [join(away, 'wal-00000000000000000005.log'), join(away, 'x.jsonl'), join(tempDir(), 'wal-00000000000000000007.log')]) {
    await rejectsWith(() => exportStore(dir, out, { format: 'jsonl' }), 'INVALID_ARGUMENT');
    assert.equal(existsSync(out), false, out);
  }
  const store = await MemStore.open(dir);
  try {
    assert.equal(store.stats().count, 2);
  } finally {
    await store.close();
  }
});

test('export to a name of 246 bytes (its temporary name beside it would pass 255) writes it whole; the CLI names the system error beneath an IO error (a missing directory: ENOENT)', async () => {
  const dir = await makeStore([{ id: 'a', vector: [1, 2, 3] }], { dim: 3, metric: 'dot' });
  const parent = tempDir();
  const out = join(parent, `${'x'.repeat(240)}.jsonl`);
  assert.equal((await exportStore(dir, out)).records, 1);
  assert.deepEqual(readdirSync(parent), [`${'x'.repeat(240)}.jsonl`], 'no temporary file left');
  const missing = await cliResult(['export', dir, '--out', join(parent, 'missing', 'x.jsonl')]);
  assert.equal(missing.code, 2);
  assert.ok(missing.stderr.includes('ENOENT'), missing.stderr);
});

test('exportStore and importStore check what they are given as open does: unknown option keys and a non-function onProgress are INVALID_OPTION naming the key, paths that are not non-empty strings INVALID_ARGUMENT; nothing is written', async () => {
  const dir = tempDir();
  const store = await MemStore.open(dir, { dim: 3 });
  await store.add([{ id: 'a', vector: [1, 2, 3] }]);
  await store.close();
  const out = join(tempDir(), 'x.jsonl');
  const call = (f: () => Promise<unknown>) => f().then(() => undefined, (e: { code?: string; field?: string }) => ({ code: e.code, field: e.field }));
  assert.deepEqual(await call(() => exportStore(dir, out, { fromat: 'arrow' } as never)), { code: 'INVALID_OPTION', field: 'fromat' });
  assert.deepEqual(await call(() => exportStore(dir, out, { onProgres: () => undefined } as never)), { code: 'INVALID_OPTION', field: 'onProgres' });
  assert.deepEqual(await call(() => exportStore(dir, out, 'arrow' as never)), { code: 'INVALID_OPTION', field: 'options' });
  assert.deepEqual(await call(() => exportStore(dir, out, { onProgress: 3 } as never)), { code: 'INVALID_OPTION', field: 'onProgress' });
  assert.deepEqual(await call(() => exportStore(dir, 42 as never)), { code: 'INVALID_ARGUMENT', field: 'out' });
  assert.deepEqual(await call(() => exportStore(undefined as never, out)), { code: 'INVALID_ARGUMENT', field: 'dir' });
  assert.equal(existsSync(out), false, 'no export was written');
  await exportStore(dir, out);
  const into = tempDir();
  assert.deepEqual(await call(() => importStore(undefined as never, into)), { code: 'INVALID_ARGUMENT', field: 'file' });
  assert.deepEqual(await call(() => importStore(out, '' as never)), { code: 'INVALID_ARGUMENT', field: 'dir' });
  assert.deepEqual(await call(() => importStore(out, into, { onProgress: 'yes' } as never)), { code: 'INVALID_OPTION', field: 'onProgress' });
  assert.deepEqual(readdirSync(into), [], 'nothing was imported');
  // verify's and repair's functions alike (they had thrown Node's TypeError ERR_INVALID_ARG_TYPE).
  for (const bad of [undefined, 42, { dir }, '']) {
    assert.deepEqual(await call(() => checkStore(bad as never)), { code: 'INVALID_ARGUMENT', field: 'dir' });
    assert.deepEqual(await call(() => repairStore(bad as never)), { code: 'INVALID_ARGUMENT', field: 'dir' });
  }
});

test('a store without full vectors whose vectors sit at the limits (components of 1e12, a largest of 1.1e-12) gives back reconstructions within them, so its export imports (rq and PCA reconstructions had landed past them: 1.0032e12, which import refused)', async () => {
  for (const [codec, pca, scale] of [['rq2', undefined, 1e12], ['rq4', undefined, 1e12], ['int8', { dims: 4 }, 1e12], ['int8', { dims: 4 }, 1.1e-12]] as const) {
    for (const metric of ['dot', 'l2'] as const) {
      const dir = tempDir();
      const store = await MemStore.open(dir, { dim: 8, metric, codec, rescore: false, trainSize: 20, durability: 'none', ...(pca === undefined ? {} : { pca }) });
      await store.add(Array.from({ length: 40 }, (_, i) => ({ id: `v${i}`, vector: Array.from({ length: 8 }, (_, j) => (j === i % 8 ? 1 : Math.sin(i * 3 + j) * 0.5) * scale) })));
      // What get gives back can be added again.
      await store.add([{ ...(await store.get('v3'))!, id: 'again' }]);
      await store.close();
      const file = join(tempDir(), 'out.jsonl');
      await exportStore(dir, file);
      const imported = await importStore(file, tempDir(), { metric, dim: 8 });
      assert.equal(imported.records, 41, `${codec} ${metric} ${scale}`);
    }
  }
});

test('memstore export stopped by SIGINT, SIGTERM or SIGHUP while it writes removes its temporary file and ends by that signal (status 128 + its number in a shell; the partial file had stayed beside the output)', { skip: process.platform === 'win32' ? 'POSIX signals' : false }, async () => {
  const dir = tempDir();
  const store = await MemStore.open(dir, { dim: 16, durability: 'none' });
  for (let at = 0; at < 40_000; at += 2000) {
    await store.add(Array.from({ length: 2000 }, (_, i) => ({ id: `r${at + i}`, vector: Array.from({ length: 16 }, (_, j) => Math.sin(at + i + j)), text: `${at + i} `.padEnd(600, 'text ') })));
  }
  await store.close();
  const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const parent = tempDir();
    const out = join(parent, 'out.jsonl');
    const child = spawn(process.execPath, [cli, 'export', dir, '--out', out], { stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    // Signalled once its temporary file is there, while it writes.
    let seen = false;
    for (let i = 0; i < 2000 && !seen; i++) {
      seen = readdirSync(parent).some((name) => name.endsWith('.tmp'));
      if (!seen) await new Promise((r) => setTimeout(r, 5));
    }
    assert.ok(seen, `${signal}: the export wrote a temporary file`);
    child.kill(signal);
    assert.equal(await exited, signal);
    assert.deepEqual(readdirSync(parent), [], `${signal}: nothing left`);
  }
});

test('an export whose output path is a FIFO or a dangling symbolic link is INVALID_ARGUMENT at once (it exists), and the store opens after it (the check opened the FIFO for reading, which waits for a writer: the export never settled, and the CLI did not stop on SIGINT)', { skip: process.platform === 'win32' ? 'no FIFOs' : false }, async () => {
  const parent = tempDir();
  const dir = join(parent, 'store');
  const store = await MemStore.open(dir, { dim: 4 });
  await store.add([{ id: 'a', vector: [1, 0, 0, 0] }]);
  await store.close();
  const fifo = join(parent, 'out.jsonl');
  execFileSync('mkfifo', [fifo]);
  const dangling = join(parent, 'dangling.jsonl');
  symlinkSync(join(parent, 'nowhere'), dangling);
  for (const out of [fifo, dangling]) {
    const outcome = await within10s(exportStore(dir, out).then(() => 'exported', (e: { code?: string; field?: string }) => `${e.code} ${e.field}`));
    assert.equal(outcome, 'INVALID_ARGUMENT out', out);
  }
  const r = await cliResult(['export', dir, '--out', fifo], { timeoutMs: 20_000 });
  assert.equal(r.code, 2);
  assert.ok(r.stderr.includes('memstore: INVALID_ARGUMENT: '), r.stderr);
  assert.deepEqual(readdirSync(parent).sort(), ['dangling.jsonl', 'out.jsonl', 'store']);
  await (await MemStore.open(dir)).close();
});

test('import: an error in a JSONL row names its line as well as its row (blank lines are not rows, so the two part: line 5 had been called row 1), whether the file or add() refuses it; offset stays the row', async () => {
  const cases: [string, MemstoreErrorCode][] = [
    ['{"id": "b", "vector": [1, 2]}', 'DIM_MISMATCH'],
    ['{"id": "b", "vector": "no"}', 'INVALID_ARGUMENT'],
    ['not json', 'INVALID_ARGUMENT'],
  ];
  for (const [bad, code] of cases) {
    const file = join(tempDir(), 'lines.jsonl');
    writeFileSync(file, `\n${row('a')}\n\n\n${bad}\n${row('c')}\n`);
    const into = tempDir();
    await assert.rejects(importStore(file, into), (e: unknown) => {
      const err = e as { code?: unknown; offset?: unknown; message: string };
      return err.code === code && err.offset === 1 && /\bline 5\b/.test(err.message);
    }, bad);
    assert.deepEqual(readdirSync(into), []);
  }
});

test('import: an error add() finds in a row past the first batch of 4,096 names that row in field as in offset (field had said records[225].vector for row 4,321)', async () => {
  const file = join(tempDir(), 'many.jsonl');
  const rows = Array.from({ length: 4400 }, (_, i) => JSON.stringify({ id: `r${i}`, vector: i === 4321 ? [1, 2] : [i, 1, 2] }));
  writeFileSync(file, `${rows.join('\n')}\n`);
  const into = tempDir();
  await assert.rejects(importStore(file, into), (e: unknown) => {
    const err = e as { code?: unknown; offset?: unknown; field?: unknown };
    assert.deepEqual({ code: err.code, offset: err.offset, field: err.field }, { code: 'DIM_MISMATCH', offset: 4321, field: 'row 4321' });
    return true;
  });
  assert.deepEqual(readdirSync(into), []);
});

test('export to a directory that does not exist is IO naming the output asked for (it had named its temporary file), and leaves nothing', async () => {
  const dir = tempDir();
  const store = await MemStore.open(dir, { dim: 3 });
  await store.add([{ id: 'a', vector: [1, 2, 3] }]);
  await store.close();
  const out = join(tempDir(), 'missing', 'x.jsonl');
  await assert.rejects(exportStore(dir, out), (e: unknown) => (e as { code?: unknown }).code === 'IO' && (e as { file?: unknown }).file === out);
  assert.equal(existsSync(join(out, '..')), false);
});
