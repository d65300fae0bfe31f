import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createWriteStream, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type * as Arrow from 'apache-arrow';
import { exportStore, importStore, MemStore } from '../src/index.js';
import { rejectsWith, tempDir } from './helpers.js';
import { pipeReads } from '../src/export/files.js';

// Each rule of src/export/arrow-framing.ts and arrow-metadata.ts, on files that made apache-arrow's
// reader loop for good before them (found by a hostile pass and a fuzz of flipped bits).

const arrow = (await import('apache-arrow')) as typeof Arrow;
const filesModule = fileURLToPath(new URL('../src/export/files.js', import.meta.url));

/** A store of 40 records of 8 dimensions exported as an Arrow file, and the same table as an Arrow stream. */
async function exported(): Promise<{ file: Buffer; stream: Buffer }> {
  const source = tempDir();
  const s = await MemStore.open(source, { dim: 8 });
  await s.add(Array.from({ length: 40 }, (_, i) => ({ id: `r${i}`, vector: Array.from({ length: 8 }, (_, j) => Math.sin(i * 8 + j)), text: `text ${i}`, meta: { i, tag: i % 3 ? 'a' : 'b' } })));
  await s.close();
  const out = join(tempDir(), 'clean.arrow');
  await exportStore(source, out);
  const file = readFileSync(out);
  return { file, stream: Buffer.from(arrow.tableToIPC(arrow.tableFromIPC(file), 'stream')) };
}
const clean = await exported();

/** A flatbuffer's tables, read as the format is: enough to find the byte a test alters. */
class Flat {
  private readonly view: DataView;
  constructor(
    readonly buf: Buffer,
    readonly base: number,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  root(): number {
    return this.base + this.view.getUint32(this.base, true);
  }
  /** Where field `n` of the table at `pos` lies (absolute), or undefined when absent. */
  field(pos: number, n: number): number | undefined {
    const vtable = pos - this.view.getInt32(pos, true);
    const off = 4 + 2 * n < this.view.getUint16(vtable, true) ? this.view.getUint16(vtable + 4 + 2 * n, true) : 0;
    return off === 0 ? undefined : pos + off;
  }
  deref(at: number): number {
    return at + this.view.getUint32(at, true);
  }
}

/** The messages of an Arrow stream starting at `start`: each one's offset and where its metadata flatbuffer starts. */
function messages(buf: Buffer, start: number): { offset: number; metadata: number; kind: number }[] {
  const out: { offset: number; metadata: number; kind: number }[] = [];
  let at = start;
  for (;;) {
    const offset = at;
    let length = buf.readInt32LE(at);
    at += 4;
    if (length === -1) {
      length = buf.readInt32LE(at);
      at += 4;
    }
    if (length === 0) return out;
    const m = arrow.Message.decode(buf.subarray(at, at + length));
    out.push({ offset, metadata: at, kind: m.headerType });
    at += length + Number(m.bodyLength);
  }
}

/** Where the file's footer flatbuffer starts. */
const footerOf = (file: Buffer) => file.length - 10 - file.readInt32LE(file.length - 10);

/**
 * Reads every row of each of `files` in turn in one worker; resolves to one outcome per file, 'ok N'
 * or 'err CODE', or stops at 'SPIN' for a file still being read after `ms` (the loop this guards
 * against holds its thread for good, which only terminating the worker ends).
 */
function readInWorker(files: readonly string[], ms = 10_000): Promise<string[]> {
  const src = `
const { parentPort, workerData } = require('node:worker_threads');
import(workerData.lib).then(async (m) => {
  for (const file of workerData.files) {
    try { const r = await m.readFile('arrow', file); let n = 0; for await (const row of r.rows) if (++n > 100000) break; parentPort.postMessage('ok ' + n); }
    catch (e) { parentPort.postMessage('err ' + (e.code ?? e.constructor.name)); }
  }
});`;
  return new Promise((resolve) => {
    const outcomes: string[] = [];
    const w = new Worker(src, { eval: true, workerData: { lib: filesModule, files } });
    let timer: NodeJS.Timeout;
    const watch = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        void w.terminate();
        resolve([...outcomes, 'SPIN']);
      }, ms);
    };
    watch();
    w.on('message', (m: string) => {
      outcomes.push(m);
      if (outcomes.length < files.length) return watch();
      clearTimeout(timer);
      void w.terminate();
      resolve(outcomes);
    });
    w.on('error', (e) => {
      clearTimeout(timer);
      resolve([...outcomes, `worker error ${e.message}`]);
    });
  });
}

async function importRejected(bytes: Buffer, name: string): Promise<void> {
  const file = join(tempDir(), name);
  writeFileSync(file, bytes);
  assert.deepEqual(await readInWorker([file]), ['err INVALID_ARGUMENT'], `${name}: read in a worker`);
  const dir = tempDir();
  await rejectsWith(() => importStore(file, dir, { format: 'arrow' }), 'INVALID_ARGUMENT');
  assert.deepEqual(readdirSync(dir), [], `${name}: the directory is left empty`);
}

test('arrow framing: the clean file and stream import whole (40 rows), as the check reads them', async () => {
  for (const [name, bytes] of [['clean.arrow', clean.file], ['clean.arrows', clean.stream]] as const) {
    const file = join(tempDir(), name);
    writeFileSync(file, bytes);
    assert.deepEqual(await readInWorker([file]), ['ok 40'], name);
    const dir = tempDir();
    const imported = await importStore(file, dir, { format: 'arrow' });
    assert.equal(imported.records, 40, name);
  }
});

test('arrow framing: a negative metadata length (which moved the reader backwards, for good) is INVALID_ARGUMENT, in a stream and in a file', async () => {
  for (const [name, bytes, start] of [['negative.arrows', clean.stream, 0], ['negative.arrow', clean.file, 8]] as const) {
    const damaged = Buffer.from(bytes);
    const batch = messages(damaged, start).find((m) => m.kind === arrow.MessageHeader.RecordBatch)!;
    // After the continuation marker, the length: -8 leads back onto the marker.
    damaged.writeInt32LE(-8, batch.offset + 4);
    await importRejected(damaged, name);
  }
});

/** `bytes` with the kind of its first record batch message (its flatbuffer's header_type) set to `kind`. */
function batchKind(bytes: Buffer, start: number, kind: number): Buffer {
  const damaged = Buffer.from(bytes);
  const batch = messages(damaged, start).find((m) => m.kind === arrow.MessageHeader.RecordBatch)!;
  const flat = new Flat(damaged, batch.metadata);
  const headerType = flat.field(flat.root(), 1)!;
  assert.equal(damaged[headerType], arrow.MessageHeader.RecordBatch);
  damaged[headerType] = kind;
  return damaged;
}

test("arrow framing: a file footer's record batch block naming a message of another kind (NONE, Schema, Tensor: the reader sought it again for good) is INVALID_ARGUMENT", async () => {
  for (const kind of [0, 1, 4]) await importRejected(batchKind(clean.file, 8, kind), `block-kind-${kind}.arrow`);
});

test('arrow framing: a stream message of a kind the reader passes over without its body (NONE, Tensor) is INVALID_ARGUMENT', async () => {
  for (const kind of [0, 4]) await importRejected(batchKind(clean.stream, 0, kind), `kind-${kind}.arrows`);
});

test('arrow framing: a file footer naming an offset where no message starts, or one message twice, is INVALID_ARGUMENT', async () => {
  const blocksOf = (damaged: Buffer, count: number) => {
    const flat = new Flat(damaged, footerOf(damaged));
    const blocks = flat.deref(flat.field(flat.root(), 3)!);
    assert.equal(damaged.readUInt32LE(blocks), count, 'record batch blocks');
    return blocks + 4;
  };
  const inside = Buffer.from(clean.file);
  inside.writeBigInt64LE(16n, blocksOf(inside, 1));
  await importRejected(inside, 'block-inside.arrow');
  // Two batches (the same rows twice), the second block naming the first batch.
  const table = arrow.tableFromIPC(clean.file);
  const twice = Buffer.from(arrow.tableToIPC(new arrow.Table(table.schema, [...table.batches, ...table.batches]), 'file'));
  const blocks = blocksOf(twice, 2);
  twice.writeBigInt64LE(twice.readBigInt64LE(blocks), blocks + 24);
  await importRejected(twice, 'block-twice.arrow');
});

test("arrow framing: a schema field's children counted past its buffer (billions of children decoded) is INVALID_ARGUMENT, in the footer and in the stream's schema message", async () => {
  const childrenOf = (flat: Flat, schema: number) => {
    const fields = flat.deref(flat.field(schema, 1)!);
    const first = flat.deref(fields + 4);
    return flat.deref(flat.field(first, 5)!);
  };
  const inFooter = Buffer.from(clean.file);
  const footer = new Flat(inFooter, footerOf(inFooter));
  inFooter.writeUInt32LE(0x7fffffff, childrenOf(footer, footer.deref(footer.field(footer.root(), 1)!)));
  await importRejected(inFooter, 'children-footer.arrow');
  const inStream = Buffer.from(clean.stream);
  const message = new Flat(inStream, messages(inStream, 0)[0]!.metadata);
  inStream.writeUInt32LE(0x7fffffff, childrenOf(message, message.deref(message.field(message.root(), 2)!)));
  await importRejected(inStream, 'children-stream.arrows');
});

test('arrow framing: a footer length past the file, a file cut short, and a body length past the end are INVALID_ARGUMENT', async () => {
  const longFooter = Buffer.from(clean.file);
  longFooter.writeInt32LE(longFooter.length, longFooter.length - 10);
  await importRejected(longFooter, 'footer-length.arrow');
  await importRejected(clean.file.subarray(0, clean.file.length - 100), 'cut.arrow');
  await importRejected(clean.stream.subarray(0, clean.stream.length - 100), 'cut.arrows');
});

test('arrow framing: 256 single flipped bits spread over a file and over a stream each read to an end within 10 s (rows or INVALID_ARGUMENT), none loops for good', async () => {
  const dir = tempDir();
  for (const [name, bytes] of [['flip.arrow', clean.file], ['flip.arrows', clean.stream]] as const) {
    const files: string[] = [];
    const bits: number[] = [];
    for (let i = 0; i < 256; i++) {
      const bit = Math.floor(((i + 0.5) * bytes.length * 8) / 256);
      const damaged = Buffer.from(bytes);
      damaged[bit >> 3] = damaged[bit >> 3]! ^ (1 << (bit & 7));
      const file = join(dir, `${i}-${name}`);
      writeFileSync(file, damaged);
      files.push(file);
      bits.push(bit);
    }
    const outcomes = await readInWorker(files);
    assert.equal(outcomes.length, files.length, `${name}: bit ${bits[outcomes.length - 1]} ended in ${outcomes.at(-1)}`);
    outcomes.forEach((out, i) => assert.ok(out.startsWith('ok ') || out === 'err INVALID_ARGUMENT', `${name}, bit ${bits[i]}: ${out}`));
    assert.ok(outcomes.some((out) => out.startsWith('err')), `${name}: some flips are refused`);
  }
});

test('arrow framing: an Arrow file or stream read from a FIFO (a pipe, /dev/stdin), which has no size and no positions, is read whole and imports (it had been refused as damaged); a damaged one through a FIFO is INVALID_ARGUMENT', { skip: process.platform === 'win32' ? 'no FIFOs' : false }, async () => {
  const viaFifo = async (bytes: Buffer) => {
    const fifo = join(tempDir(), 'in.fifo');
    execFileSync('mkfifo', [fifo]);
    const writer = new Promise<void>((resolve, reject) => createWriteStream(fifo).on('error', reject).end(bytes, resolve));
    const dir = tempDir();
    try {
      return await importStore(fifo, dir, { format: 'arrow' });
    } finally {
      await writer;
    }
  };
  for (const bytes of [clean.file, clean.stream]) assert.equal((await viaFifo(bytes)).records, 40);
  const damaged = Buffer.from(clean.stream);
  damaged.writeInt32LE(-8, messages(damaged, 0).find((m) => m.kind === arrow.MessageHeader.RecordBatch)!.offset + 4);
  await rejectsWith(() => viaFifo(damaged), 'INVALID_ARGUMENT');
});

test('an Arrow or Parquet import from a pipe or device that does not end (/dev/zero) is INVALID_ARGUMENT once it passes the read limit, and leaves no store (it had been read until the process ran out of memory)', { skip: process.platform === 'win32' ? 'no /dev/zero' : false }, async () => {
  const limit = pipeReads.limit;
  pipeReads.limit = 4 * 2 ** 20;
  try {
    for (const format of ['arrow', 'parquet'] as const) {
      const dir = join(tempDir(), 'store');
      await rejectsWith(() => importStore('/dev/zero', dir, { format }), 'INVALID_ARGUMENT');
      assert.ok(!existsSync(join(dir, 'state.mdb')), `${format}: no store made`);
    }
  } finally {
    pipeReads.limit = limit;
  }
});

test('arrow framing: a column another tool wrote with types nested 100 deep imports (the metadata check had refused past 61 levels); the bound is on the walk, at 256', async () => {
  const table = arrow.tableFromIPC(clean.file);
  const rows = table.numRows;
  let data: Arrow.Data = arrow.makeData({ type: new arrow.Int32(), length: rows, nullCount: rows, nullBitmap: new Uint8Array(Math.ceil(rows / 8)), data: new Int32Array(rows) });
  for (let i = 0; i < 100; i++) {
    const type = new arrow.Struct([new arrow.Field('f', data.type, true)]);
    data = (arrow.makeData as (props: object) => Arrow.Data)({ type, length: rows, nullCount: rows, nullBitmap: new Uint8Array(Math.ceil(rows / 8)), children: [data] });
  }
  const file = join(tempDir(), 'deep.arrow');
  writeFileSync(file, arrow.tableToIPC(new arrow.Table({ id: table.getChild('id')!, vector: table.getChild('vector')!, deep: arrow.makeVector(data) }), 'file'));
  const imported = await importStore(file, tempDir());
  assert.equal(imported.records, 40);
});
