import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tableFromIPC } from 'apache-arrow';
import fc from 'fast-check';
import * as parquet from 'parquet-wasm';
import { exportStore, importStore, MemStore } from '../src/index.js';
import { fieldOf, readStruct, ThriftError, writeStruct, type ThriftField, type ThriftList, type ThriftStruct, type ThriftValue } from '../src/export/thrift-compact.js';
import { recordsOf, tempDir } from './helpers.js';

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

test('parquet export: the encoded file is never held whole: parquet-wasm\'s memory grows by less than half the file (it had grown by all of it, freed only at the end)', async () => {
  // A process of its own: parquet-wasm's memory only grows, and this file's other tests grow it.
  const dir = await storeOf(60000, 64);
  const file = join(tempDir(), 'big.parquet');
  const script = join(tempDir(), 'export.mjs');
  const index = fileURLToPath(new URL('../src/index.js', import.meta.url));
  writeFileSync(
    script,
    `import * as parquet from ${JSON.stringify(fileURLToPath(import.meta.resolve('parquet-wasm')))};
import { exportStore } from ${JSON.stringify(index)};
const before = parquet.wasmMemory().buffer.byteLength;
await exportStore(${JSON.stringify(dir)}, ${JSON.stringify(file)});
console.log(JSON.stringify({ before, after: parquet.wasmMemory().buffer.byteLength }));
`,
  );
  const run = spawnSync(process.execPath, [script], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  const { before, after } = JSON.parse(run.stdout) as { before: number; after: number };
  const size = statSync(file).size;
  assert.ok(size > 8 << 20, `a file of ${size} bytes`);
  assert.ok(after - before < size / 2, `parquet-wasm's memory grew by ${after - before} bytes for a file of ${size}`);
});
