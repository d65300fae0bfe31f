import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { exportStore, FORMATS, importStore, MemStore, type ExportFormat, type StoredRecord } from '../src/index.js';
import { damageText, rejectsWith, tempDir, recordsOf } from './helpers.js';
import { cliResult } from './support/cli.js';

const DIM = 7;

function sameRecords(a: Map<string, StoredRecord>, b: Map<string, StoredRecord>): void {
  assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
  for (const [id, r] of a) {
    const s = b.get(id)!;
    // The same float32 bits, not merely close values.
    assert.deepEqual(new Uint32Array(s.vector.buffer, s.vector.byteOffset, s.vector.length), new Uint32Array(r.vector.buffer, r.vector.byteOffset, r.vector.length), id);
    assert.equal(s.text, r.text, id);
    assert.deepEqual(s.meta, r.meta, id);
  }
}

async function makeStore(records: readonly { id: string; vector: number[]; text?: string; meta?: Record<string, unknown> }[], metric: 'cosine' | 'dot' | 'l2' = 'dot'): Promise<string> {
  const dir = tempDir();
  const store = await MemStore.open(dir, { dim: DIM, metric, cache: false });
  await store.add(records);
  await store.close();
  return dir;
}

const float = fc.float({ noNaN: true, noDefaultInfinity: true, min: Math.fround(-1e6), max: Math.fround(1e6) });
const record = fc.record(
  {
    id: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }),
    // Any float32 the store takes: the largest component at least MIN_LARGEST_COMPONENT (src/limits.ts), subnormals and -0 beside it.
    vector: fc.tuple(fc.float({ noNaN: true, min: Math.fround(1e-3), max: Math.fround(1e6) }), fc.array(float, { minLength: DIM - 1, maxLength: DIM - 1 })).map(([big, rest]) => [big, ...rest]),
    text: fc.string({ unit: 'grapheme', maxLength: 40 }),
    meta: fc.dictionary(fc.string({ maxLength: 6 }), fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 3 }), fc.record({ n: fc.double({ noNaN: true, noDefaultInfinity: true }) })), { maxKeys: 4 }),
  },
  { requiredKeys: ['id', 'vector'] },
);

for (const format of FORMATS) {
  test(`export/import (${format}): random records (unicode ids, any float32, texts, nested metadata, with and without text and meta) come back bit for bit, metric with them`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(record, { selector: (r) => r.id, minLength: 1, maxLength: 30 }), async (records) => {
        const dir = await makeStore(records);
        const file = join(tempDir(), `out.${format}`);
        const { records: written } = await exportStore(dir, file);
        const into = tempDir();
        // JSONL carries no metric and no dimension: the import is told.
        const { rows, records: read } = await importStore(file, into, format === 'jsonl' ? { metric: 'dot', dim: DIM } : {});
        assert.equal(rows, written);
        assert.equal(read, written);
        sameRecords(await recordsOf(dir), await recordsOf(into));
        const store = await MemStore.open(into);
        assert.equal(store.stats().metric, 'dot');
        await store.close();
      }),
      { numRuns: 12 },
    );
  });
}

test('export/import: more records than one batch (4,096) keep their order of rows and all their data', async () => {
  const records = Array.from({ length: 5000 }, (_, i) => ({ id: `r${i}`, vector: Array.from({ length: DIM }, (_, d) => Math.sin(i + d) + 2), ...(i % 3 === 0 ? { text: `text ${i}` } : {}), ...(i % 5 === 0 ? { meta: { i } } : {}) }));
  const dir = await makeStore(records);
  for (const format of ['arrow', 'parquet'] as const) {
    const file = join(tempDir(), `big.${format}`);
    assert.equal((await exportStore(dir, file)).records, 5000);
    const into = tempDir();
    assert.equal((await importStore(file, into)).records, 5000);
    sameRecords(await recordsOf(dir), await recordsOf(into));
  }
});

test('export/import: an empty store exports its dimension and metric in Arrow and Parquet; from JSONL an empty import needs dim', async () => {
  const dir = tempDir();
  await (await MemStore.open(dir, { dim: DIM, metric: 'l2' })).close();
  for (const format of FORMATS) {
    const file = join(tempDir(), `empty.${format}`);
    assert.equal((await exportStore(dir, file)).records, 0);
    const into = tempDir();
    if (format === 'jsonl') {
      assert.equal(readFileSync(file, 'utf8'), '');
      await rejectsWith(() => importStore(file, into), 'INVALID_ARGUMENT');
      assert.deepEqual(readdirSync(into), []);
      assert.equal((await importStore(file, into, { dim: DIM })).dim, DIM);
      continue;
    }
    const result = await importStore(file, into);
    assert.deepEqual([result.rows, result.dim], [0, DIM]);
    const store = await MemStore.open(into);
    assert.equal(store.stats().metric, 'l2');
    await store.close();
  }
});

test('export never overwrites: an existing output file is refused (INVALID_ARGUMENT) and left as it was; no temporary file stays', async () => {
  const dir = await makeStore([{ id: 'a', vector: [1, 2, 3, 4, 5, 6, 7] }]);
  const out = tempDir();
  const file = join(out, 'taken.jsonl');
  writeFileSync(file, 'mine');
  await rejectsWith(() => exportStore(dir, file), 'INVALID_ARGUMENT');
  assert.equal(readFileSync(file, 'utf8'), 'mine');
  assert.deepEqual(readdirSync(out), ['taken.jsonl']);
});

test("export removes the temporary file a killed export to the same output left (its pid not alive); one whose pid is alive, one for another output and one of another shape stay", async () => {
  const dir = await makeStore([{ id: 'a', vector: [1, 2, 3, 4, 5, 6, 7] }]);
  const out = tempDir();
  // Above any pid_max (2^22 on Linux): never a live process.
  const dead = 'o.jsonl.999999999.abcdef012345.tmp';
  const alive = `o.jsonl.${process.pid}.abcdef012345.tmp`;
  const other = 'p.jsonl.999999999.abcdef012345.tmp';
  const shape = 'o.jsonl.999999999.xyz.tmp';
  for (const name of [dead, alive, other, shape]) writeFileSync(join(out, name), 'partial');
  await exportStore(dir, join(out, 'o.jsonl'));
  assert.deepEqual(readdirSync(out).sort(), [alive, shape, 'o.jsonl', other].sort());
});

test('export/import: a format that is neither given nor named by the extension, or unknown, is INVALID_OPTION', async () => {
  const dir = await makeStore([{ id: 'a', vector: [1, 2, 3, 4, 5, 6, 7] }]);
  await rejectsWith(() => exportStore(dir, join(tempDir(), 'out.csv')), 'INVALID_OPTION');
  await rejectsWith(() => exportStore(dir, join(tempDir(), 'out'), { format: 'csv' as ExportFormat }), 'INVALID_OPTION');
  await rejectsWith(() => importStore(join(tempDir(), 'in.txt'), tempDir()), 'INVALID_OPTION');
});

test('export of a directory without a store creates nothing there', async () => {
  const empty = tempDir();
  await assert.rejects(() => exportStore(empty, join(tempDir(), 'out.jsonl')));
  assert.deepEqual(readdirSync(empty), []);
});

test('export of a store another holder has open is LOCKED, and writes no file', async () => {
  const dir = await makeStore([{ id: 'a', vector: [1, 2, 3, 4, 5, 6, 7] }]);
  const store = await MemStore.open(dir);
  try {
    const file = join(tempDir(), 'out.jsonl');
    await rejectsWith(() => exportStore(dir, file), 'LOCKED');
    assert.equal(existsSync(file), false);
  } finally {
    await store.close();
  }
});

test('export of a store with a damaged record stops with its CORRUPTION and writes no file', async () => {
  const dir = tempDir();
  const store = await MemStore.open(dir, { dim: DIM });
  await store.add(Array.from({ length: 20 }, (_, i) => ({ id: `r${i}`, vector: Array.from({ length: DIM }, (_, d) => i + d + 1), text: `the text of record ${i}` })));
  await store.close();
  damageText(dir, 'record 7');
  const out = tempDir();
  await rejectsWith(() => exportStore(dir, join(out, 'out.parquet')), 'CORRUPTION');
  assert.deepEqual(readdirSync(out), []);
});

test('import makes a new store only in an existing, empty directory (INVALID_ARGUMENT otherwise)', async () => {
  const dir = await makeStore([{ id: 'a', vector: [1, 2, 3, 4, 5, 6, 7] }]);
  const file = join(tempDir(), 'out.jsonl');
  await exportStore(dir, file);
  await rejectsWith(() => importStore(file, dir), 'INVALID_ARGUMENT');
  await rejectsWith(() => importStore(file, join(tempDir(), 'missing')), 'INVALID_ARGUMENT');
  assert.equal((await recordsOf(dir)).size, 1);
});

test('import: a bad row stops it with an error naming the row (offset), and leaves the directory empty', async () => {
  const good = (i: number) => JSON.stringify({ id: `r${i}`, vector: Array.from({ length: DIM }, (_, d) => i + d + 1) });
  const cases: { line: string; code: Parameters<typeof rejectsWith>[1] }[] = [
    { line: JSON.stringify({ id: 'x', vector: [1, 2, 3] }), code: 'DIM_MISMATCH' },
    { line: JSON.stringify({ id: '', vector: Array(DIM).fill(1) }), code: 'INVALID_ID' },
    { line: JSON.stringify({ id: 'x', vector: 'not a vector' }), code: 'INVALID_ARGUMENT' },
    { line: JSON.stringify({ id: 'x', vector: [1, 2, 3, 4, 5, 6, null] }), code: 'INVALID_VECTOR' },
    { line: JSON.stringify({ id: 'x', vector: Array(DIM).fill(1), meta: 'a string' }), code: 'INVALID_ARGUMENT' },
    { line: '{ not json', code: 'INVALID_ARGUMENT' },
    { line: '[1, 2]', code: 'INVALID_ARGUMENT' },
  ];
  for (const { line, code } of cases) {
    const file = join(tempDir(), 'bad.jsonl');
    writeFileSync(file, [good(0), good(1), good(2), line, good(4)].join('\n'));
    const into = tempDir();
    await rejectsWith(() => importStore(file, into), code);
    await assert.rejects(() => importStore(file, into), (e: unknown) => (e as { offset?: unknown }).offset === 3, line);
    assert.deepEqual(readdirSync(into), [], line);
  }
});

test('import: a truncated or garbled Arrow or Parquet file is INVALID_ARGUMENT, and the directory stays empty', async () => {
  const dir = await makeStore(Array.from({ length: 50 }, (_, i) => ({ id: `r${i}`, vector: Array.from({ length: DIM }, (_, d) => i + d + 1), text: `t${i}` })));
  for (const format of ['arrow', 'parquet'] as const) {
    const file = join(tempDir(), `out.${format}`);
    await exportStore(dir, file);
    const bytes = readFileSync(file);
    const garbled = Buffer.from(bytes);
    for (let i = 16; i < garbled.length - 16; i += 7) garbled[i] = garbled[i]! ^ 0x5a;
    for (const damaged of [bytes.subarray(0, Math.floor(bytes.length / 2)), garbled, Buffer.alloc(0)]) {
      const bad = join(tempDir(), `bad.${format}`);
      writeFileSync(bad, damaged);
      const into = tempDir();
      await assert.rejects(() => importStore(bad, into), (e: unknown) => ['INVALID_ARGUMENT', 'INVALID_ID', 'INVALID_VECTOR', 'DIM_MISMATCH'].includes((e as { code?: string }).code ?? ''), `${format}, ${damaged.length} bytes`);
      assert.deepEqual(readdirSync(into), [], format);
    }
  }
});

test('import: a later row with an earlier id replaces it, as add does', async () => {
  const file = join(tempDir(), 'dup.jsonl');
  writeFileSync(file, [JSON.stringify({ id: 'a', vector: Array(DIM).fill(1), text: 'first' }), JSON.stringify({ id: 'a', vector: Array(DIM).fill(2), text: 'second' })].join('\n'));
  const into = tempDir();
  assert.deepEqual(await importStore(file, into), { rows: 2, records: 1, dim: DIM });
  assert.equal((await recordsOf(into)).get('a')!.text, 'second');
});

test('memstore export and import: exit 0 and a round trip through the command line; a taken --out exits 2', async () => {
  const dir = await makeStore([{ id: 'a', vector: [1, 2, 3, 4, 5, 6, 7], text: 'x', meta: { k: 1 } }]);
  const file = join(tempDir(), 'out.parquet');
  const out = await cliResult(['export', dir, '--out', file]);
  assert.equal(out.code, 0, out.stderr);
  assert.equal((await cliResult(['export', dir, '--out', file])).code, 2);
  const into = join(tempDir(), 'store');
  mkdirSync(into);
  const back = await cliResult(['import', file, into]);
  assert.equal(back.code, 0, back.stderr);
  sameRecords(await recordsOf(dir), await recordsOf(into));
});

test('memstore export of a store that is not cosine into JSONL (which carries no metric) names the --metric its import needs; import with it searches as the store did', async () => {
  const vectors = [[1, 2, 3, 4, 5, 6, 7], [7, 6, 5, 4, 3, 2, 1], [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 9]];
  const dir = await makeStore(vectors.map((vector, i) => ({ id: `v${i}`, vector })), 'l2');
  const file = join(tempDir(), 'out.jsonl');
  const out = await cliResult(['export', dir, '--out', file]);
  assert.equal(out.code, 0, out.stderr);
  assert.ok(out.stdout.includes('--metric l2'), out.stdout);
  const into = join(tempDir(), 'store');
  mkdirSync(into);
  assert.equal((await cliResult(['import', file, into, '--metric', 'l2'])).code, 0);
  const [a, b] = await Promise.all([dir, into].map(async (d) => {
    const s = await MemStore.open(d);
    const hits = await s.search([1, 1, 1, 1, 1, 1, 8], { k: 3, exact: true });
    await s.close();
    return hits.map((h) => h.id);
  }));
  assert.deepEqual(b, a);
  assert.deepEqual(a, ['v2', 'v0', 'v1']);
  const cosine = await makeStore([{ id: 'a', vector: vectors[0]! }], 'cosine');
  const plain = await cliResult(['export', cosine, '--out', join(tempDir(), 'c.jsonl')]);
  assert.equal(plain.code, 0, plain.stderr);
  assert.ok(!plain.stdout.includes('--metric'), plain.stdout);
  const parquet = await cliResult(['export', dir, '--out', join(tempDir(), 'l2.parquet')]);
  assert.ok(!parquet.stdout.includes('--metric'), 'Arrow and Parquet carry the metric');
  // An empty store's JSONL has no vector to take the dimension from: the line names --dim too, and an import with both makes the store.
  const empty = await makeStore([], 'l2');
  const none = join(tempDir(), 'none.jsonl');
  const told = await cliResult(['export', empty, '--out', none]);
  assert.ok(told.stdout.includes('--metric l2') && told.stdout.includes('--dim 7'), told.stdout);
  const back = join(tempDir(), 'store');
  mkdirSync(back);
  assert.equal((await cliResult(['import', none, back, '--metric', 'l2', '--dim', '7'])).code, 0);
  const reopened = await MemStore.open(back);
  assert.deepEqual([reopened.stats().dim, reopened.stats().metric, reopened.stats().count], [7, 'l2', 0]);
  await reopened.close();
});

test('import reads an Arrow file another tool wrote: a list of float64 vectors, no text or meta column, no memstore metadata', async () => {
  const arrow = await import('apache-arrow');
  const vectors = [
    [1, 2, 3, 4, 5, 6, 7],
    [7, 6, 5, 4, 3, 2, 1.5],
  ];
  const table = new arrow.Table({
    id: arrow.vectorFromArray(['x', 'y'], new arrow.Utf8()),
    vector: arrow.vectorFromArray(vectors, new arrow.List(new arrow.Field('item', new arrow.Float64(), true))),
  });
  const file = join(tempDir(), 'foreign.arrow');
  writeFileSync(file, arrow.tableToIPC(table, 'file'));
  const into = tempDir();
  assert.deepEqual(await importStore(file, into), { rows: 2, records: 2, dim: DIM });
  const back = await recordsOf(into);
  assert.deepEqual(Array.from(back.get('y')!.vector), vectors[1]);
  assert.equal(back.get('x')!.text, undefined);
});

test('export/import: a format whose packages are missing is INVALID_OPTION naming every one it needs (Parquet had named apache-arrow alone, then parquet-wasm at the next try)', async () => {
  const { optionalPackage } = await import('../src/export/formats.js');
  const without = (...absent: string[]) => (name: string) => (absent.includes(name) ? Promise.reject(new Error(`Cannot find package '${name}'`)) : Promise.resolve({ name }));
  const messageOf = async (run: () => Promise<unknown>) => {
    try {
      await run();
    } catch (e) {
      assert.equal((e as { code?: unknown }).code, 'INVALID_OPTION');
      return (e as Error).message;
    }
    assert.fail('expected INVALID_OPTION');
  };
  const both = await messageOf(() => optionalPackage('apache-arrow', 'parquet', without('apache-arrow', 'parquet-wasm')));
  assert.ok(both.includes('apache-arrow') && both.includes('parquet-wasm'));
  const one = await messageOf(() => optionalPackage('parquet-wasm', 'parquet', without('parquet-wasm')));
  assert.ok(one.includes('parquet-wasm') && !one.includes('apache-arrow'));
  assert.deepEqual(await optionalPackage('apache-arrow', 'arrow', without('parquet-wasm')), { name: 'apache-arrow' });
});

test('export and import: a format option that the file\'s extension contradicts is INVALID_OPTION (--format jsonl --out x.arrow had written JSON lines under .arrow), and nothing is written; any other name takes the option', async () => {
  const dir = tempDir();
  const store = await MemStore.open(dir, { dim: 3 });
  await store.add([{ id: 'a', vector: [1, 2, 3] }]);
  await store.close();
  const outDir = tempDir();
  for (const [name, format] of [['x.arrow', 'jsonl'], ['x.jsonl', 'parquet'], ['x.parquet', 'arrow'], ['x.NDJSON', 'arrow']] as const) {
    await rejectsWith(() => exportStore(dir, join(outDir, name), { format }), 'INVALID_OPTION');
    await rejectsWith(() => importStore(join(outDir, name), tempDir(), { format }), 'INVALID_OPTION');
  }
  assert.deepEqual(readdirSync(outDir), []);
  await exportStore(dir, join(outDir, 'records.txt'), { format: 'jsonl' });
  await exportStore(dir, join(outDir, 'same.jsonl'), { format: 'jsonl' });
  assert.deepEqual(readdirSync(outDir).sort(), ['records.txt', 'same.jsonl']);
});
