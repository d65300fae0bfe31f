import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, statSync } from 'node:fs';
import { link, lstat, open, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type * as Arrow from 'apache-arrow';
import type * as Parquet from 'parquet-wasm';
import { MemstoreError } from '../errors.js';
import { pidAlive } from '../store/lock.js';
import { listTemporary, unlistTemporary } from '../temporaries.js';
import type { StoredRecord } from '../memstore.js';
import { MAX_ID_BYTES, MAX_META_BYTES, MAX_TEXT_BYTES } from '../limits.js';
import { MAX_DIM, type Metric } from '../options.js';
import { checkArrowFraming, readsIn, readsOf, type ArrowFraming, type ReadAt } from './arrow-framing.js';
import { batchOf, DIM_KEY, exportSchema, METRIC_KEY, rowsOf } from './arrow-batches.js';
import { BATCH_ROWS, optionalPackage, type ExportFormat } from './formats.js';
import { parquetLayout, rowGroupFile, schemaFile, type ParquetLayout } from './parquet-reader.js';
import { ParquetRowGroupWriter } from './parquet-writer.js';
import { rowLabel, type ImportRow } from './rows.js';

/** What an export writes: the store's shape, and its records a batch at a time. */
export interface ExportSource {
  readonly dim: number;
  readonly metric: Metric;
  batches(): AsyncIterable<readonly StoredRecord[]>;
}

/** What a file holds beside its rows: the metric and dimension an export wrote in its schema, if any. */
export interface FileShape {
  readonly metric: string | undefined;
  readonly dim: number | undefined;
}

/**
 * Writes `source` to `file` in `format` (the caller gives a temporary name and renames it). An
 * error of the source (a damaged record) is what fails the write, whatever the format's writer
 * made of it on its way through.
 */
export async function writeFile(format: ExportFormat, file: string, source: ExportSource): Promise<void> {
  let failed: { readonly error: unknown } | undefined;
  const watched: ExportSource = {
    dim: source.dim,
    metric: source.metric,
    async *batches() {
      try {
        yield* source.batches();
      } catch (e) {
        failed = { error: e };
        throw e;
      }
    },
  };
  try {
    await write(format, file, watched);
  } catch (e) {
    throw failed === undefined ? e : failed.error;
  }
}

async function write(format: ExportFormat, file: string, source: ExportSource): Promise<void> {
  if (format === 'jsonl') {
    await pipeline(Readable.from(jsonLines(source)), createWriteStream(file, { flags: 'r+' }));
    return;
  }
  const arrow = await optionalPackage<typeof Arrow>('apache-arrow', format);
  const schema = exportSchema(arrow, source.dim, source.metric);
  async function* batches(): AsyncIterable<Arrow.RecordBatch> {
    let any = false;
    for await (const records of source.batches()) {
      any = true;
      yield batchOf(arrow, schema, records);
    }
    // An empty store still writes its schema: a reader learns the dimension and the metric.
    if (!any) yield batchOf(arrow, schema, []);
  }
  if (format === 'arrow') {
    // A record that fails to read (CORRUPTION) ends the batches, and its error is thrown once the
    // stream is closed: thrown through Arrow's node transform, it escaped as an unhandled rejection
    // that ended the process with a stack trace and left the temp file behind.
    let failure: { error: unknown } | undefined;
    async function* guarded(): AsyncIterable<Arrow.RecordBatch> {
      try {
        yield* batches();
      } catch (e) {
        failure = { error: e };
      }
    }
    await pipeline(Readable.from(guarded(), { objectMode: true }), arrow.RecordBatchFileWriter.throughNode(), createWriteStream(file, { flags: 'r+' }));
    if (failure !== undefined) throw failure.error;
    return;
  }
  const parquet = await optionalPackage<typeof Parquet>('parquet-wasm', format);
  // Each batch encoded as a Parquet file of its own and its row group appended at once
  // (parquet-writer.ts): the file is never whole in memory.
  const handle = await open(file, 'r+');
  try {
    const out = new ParquetRowGroupWriter(handle);
    for await (const batch of batches()) {
      // parquet-wasm takes its own tables: one made from the Arrow IPC stream of ours.
      await out.add(parquet.writeParquet(parquet.Table.fromIPCStream(arrow.tableToIPC(new arrow.Table([batch]), 'stream')), writerProperties(parquet)));
    }
    await out.finish();
  } finally {
    await handle.close();
  }
}

/**
 * How each row group is encoded (a fresh object per batch: writeParquet takes it): without
 * dictionaries. A row group of 4,096 rows stays under the dictionary's size limit, so each column
 * chunk of ids and of the vectors' floats, which seldom repeat, was a dictionary of every value plus
 * an index per row: 120,000 records of 64-d with texts took 39.0 MB against 34.1 MB plain (and 34.7
 * MB from parquet-wasm's own streaming writer), and twice the encoder's memory. Per column it cannot
 * be set for the vectors: parquet-wasm takes a column's path as one name, and theirs has three parts.
 * Statistics per column chunk, not per page: the page indexes they would fill are not copied into
 * the file (parquet-footer.ts, dropOutsideParts()).
 */
function writerProperties(parquet: typeof Parquet): Parquet.WriterProperties {
  return new parquet.WriterPropertiesBuilder().setDictionaryEnabled(false).setStatisticsEnabled(parquet.EnabledStatistics.Chunk).build();
}

async function* jsonLines(source: ExportSource): AsyncIterable<string> {
  for await (const records of source.batches()) {
    let chunk = '';
    for (const r of records) {
      // The vector by hand: JSON.stringify writes -0 as 0, and a float32's bits should come back.
      let line = `{"id":${JSON.stringify(r.id)},"vector":[${Array.from(r.vector, (x) => (Object.is(x, -0) ? '-0' : String(x))).join(',')}]`;
      if (r.text !== undefined) line += `,"text":${JSON.stringify(r.text)}`;
      if (r.meta !== undefined) line += `,"meta":${JSON.stringify(r.meta)}`;
      chunk += `${line}}\n`;
    }
    yield chunk;
  }
}

/** The rows of `file` in `format`, in order, with what its schema says (known once the first row is read, or at the end). */
export async function readFile(format: ExportFormat, file: string): Promise<{ shape: () => FileShape; rows: AsyncIterable<ImportRow>; totalRows: (done: number) => number | undefined }> {
  // The rows a file holds: Parquet says; for a stream read in order, the rows read so far scaled by
  // the share of the file's bytes read (an estimate, for a progress display's ETA).
  let input: { readonly bytesRead: number } | undefined;
  let exact: number | undefined;
  let size: number | undefined;
  try {
    size = statSync(file).size;
  } catch {
    size = undefined;
  }
  const totalRows = (done: number): number | undefined => {
    if (exact !== undefined) return exact;
    if (input === undefined || size === undefined || input.bytesRead === 0) return undefined;
    return Math.max(done, Math.round((done * size) / input.bytesRead));
  };
  const opened = (stream: ReturnType<typeof createReadStream>) => {
    input = stream;
    return stream;
  };
  if (format === 'jsonl') return { shape: () => ({ metric: undefined, dim: undefined }), rows: jsonRows(file, opened), totalRows };
  const arrow = await optionalPackage<typeof Arrow>('apache-arrow', format);
  let shape: FileShape = { metric: undefined, dim: undefined };
  const noteSchema = (schema: Arrow.Schema) => {
    const vector = schema.fields.find((f) => f.name === 'vector')?.type as { listSize?: unknown } | undefined;
    // Decimal digits only: Number() read '0x10' as 16 and '1e3' as 1,000.
    const written = schema.metadata.get(DIM_KEY);
    const dim = written !== undefined ? (/^[1-9][0-9]{0,8}$/.test(written) ? Number(written) : NaN) : typeof vector?.listSize === 'number' ? vector.listSize : NaN;
    shape = { metric: schema.metadata.get(METRIC_KEY), dim: Number.isInteger(dim) && dim > 0 ? dim : undefined };
  };
  const damaged = (e: unknown) => (e instanceof MemstoreError ? e : new MemstoreError('INVALID_ARGUMENT', `${file}: not a readable ${format} file`, { cause: e, file }));
  if (format === 'arrow') {
    async function* rows(): AsyncIterable<ImportRow> {
      // A regular file is read through a handle, a batch at a time with positioned reads (given a
      // stream, the reader took in a whole Arrow file before its first batch); a pipe, a FIFO or
      // /dev/stdin, which cannot be read at a position, is read whole first.
      let handle: FileHandle | undefined;
      try {
        let reader: Arrow.RecordBatchReader;
        let framing: ArrowFraming;
        let bytes: number;
        try {
          handle = await open(file, 'r');
          const input = await readsFrom(handle, file, 'arrow');
          const { read, whole } = input;
          bytes = input.bytes;
          // Before the reader sees it: lengths it trusts can make it loop for good (arrow-framing.ts).
          framing = await checkArrowFraming(read, bytes, (m) => arrow.Message.decode(m));
          // Progress is the share of the batches' bytes read (a file's footer follows them).
          size = framing.batches.at(-1)?.end ?? bytes;
          reader = whole === undefined ? await arrow.RecordBatchReader.from(handle) : arrow.RecordBatchReader.from(whole);
          await reader.open();
        } catch (e) {
          throw damaged(e);
        }
        // An empty or foreign file opens as a reader without a schema.
        if ((reader.schema as Arrow.Schema | undefined) === undefined) throw damaged(new Error('no Arrow schema'));
        noteSchema(reader.schema);
        const batches = reader[Symbol.asyncIterator]();
        for (let i = 0; ; i++) {
          let next: IteratorResult<Arrow.RecordBatch>;
          try {
            next = await batches.next();
          } catch (e) {
            throw damaged(e);
          }
          if (next.done === true) return;
          input = { bytesRead: framing.batches[i]?.end ?? bytes };
          yield* rowsOf(arrow, next.value);
        }
      } finally {
        await handle?.close();
      }
    }
    return { shape: () => shape, rows: rows(), totalRows };
  }
  const parquet = await optionalPackage<typeof Parquet>('parquet-wasm', format);
  // Read with parquet-wasm's synchronous calls alone: its asynchronous ones (ParquetFile and its
  // stream) decode in tasks of their own, where a damaged file made WebAssembly trap
  // ("unreachable") outside any promise a caller holds, and the process died of an uncaught
  // exception (one flipped bit in about 1 file of 6, found by a hostile pass). A synchronous call's
  // failure is an exception here, INVALID_ARGUMENT like any other unreadable file. Those calls take
  // a whole file, so each row group is read alone and handed over as a file of its own
  // (parquet-reader.ts): memory holds one row group, not the file (EXPORT.md, "Reading").
  // The footer is read now, before the import writes anything: a file it refuses leaves no trace.
  let layout: ParquetLayout;
  let whole: Uint8Array | undefined;
  try {
    const handle = await open(file, 'r');
    try {
      const input = await readsFrom(handle, file, 'parquet');
      whole = input.whole;
      layout = await parquetLayout(input.read, input.bytes);
    } finally {
      await handle.close();
    }
    // The file's schema with its metadata (the batches read come without it), even with no rows.
    noteSchema(arrow.tableFromIPC(parquet.readSchema(schemaFile(layout)).intoIPCStream()).schema);
    exact = layout.rows;
  } catch (e) {
    throw damaged(e);
  }
  async function* rows(): AsyncIterable<ImportRow> {
    let handle: FileHandle | undefined;
    try {
      let read: ReadAt;
      try {
        if (whole !== undefined) read = readsIn(whole);
        else read = readsOf((handle = await open(file, 'r')));
      } catch (e) {
        throw damaged(e);
      }
      for (const [i, place] of layout.groups.entries()) {
        let table: Arrow.Table;
        try {
          const part = rowGroupFile(layout, i, await read(place.start, place.end - place.start));
          table = arrow.tableFromIPC(parquet.readParquet(part, { batchSize: BATCH_ROWS }).intoIPCStream());
          if (table.numRows !== place.rows) throw new Error(`row group ${i} holds ${table.numRows} rows, its footer says ${place.rows}`);
        } catch (e) {
          throw damaged(e);
        }
        input = { bytesRead: place.end };
        for (const batch of table.batches) yield* rowsOf(arrow, batch);
      }
    } finally {
      await handle?.close();
    }
  }
  return { shape: () => shape, rows: rows(), totalRows };
}

/**
 * `limit`: the most a pipe, a FIFO or a device is read before an Arrow or Parquet import from it is refused:
 * either is read whole from one (neither can be decoded from a stream read once), and `/dev/zero`
 * or an endless pipe had been read until the process ran out of memory (a hostile pass). Tests lower it.
 */
export const pipeReads: { limit: number } = { limit: 512 * 2 ** 20 };

/**
 * Positioned reads of the file open as `handle`, and its size: a regular file's by its handle; a
 * pipe, a FIFO or a device, which cannot be read at a position, is read whole first (`whole`).
 */
async function readsFrom(handle: FileHandle, file: string, format: 'arrow' | 'parquet'): Promise<{ read: ReadAt; bytes: number; whole: Uint8Array | undefined }> {
  const stat = await handle.stat();
  if (stat.isFile()) return { read: readsOf(handle), bytes: stat.size, whole: undefined };
  const whole = await readPipe(handle, file, format);
  return { read: readsIn(whole), bytes: whole.length, whole };
}

/** Everything `handle` (not a regular file) gives until its end; INVALID_ARGUMENT past `pipeReads.limit`. */
async function readPipe(handle: FileHandle, file: string, format: 'arrow' | 'parquet'): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const chunk = Buffer.allocUnsafe(1 << 20);
    const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
    if (bytesRead === 0) return Buffer.concat(chunks, total);
    total += bytesRead;
    if (total > pipeReads.limit) {
      throw new MemstoreError('INVALID_ARGUMENT', `${file}: ${format === 'arrow' ? 'an Arrow' : 'a Parquet'} file from a pipe or device is read whole before it is decoded, and this one passed ${pipeReads.limit} bytes; import it from a regular file`, { file });
    }
    chunks.push(bytesRead === chunk.length ? chunk : chunk.subarray(0, bytesRead));
  }
}


async function* jsonRows(file: string, opened: (stream: ReturnType<typeof createReadStream>) => ReturnType<typeof createReadStream>): AsyncIterable<ImportRow> {
  const input = opened(createReadStream(file));
  try {
    yield* jsonRowsOf(linesOf(input, file), file);
  } finally {
    input.destroy();
  }
}

async function* jsonRowsOf(lines: AsyncIterable<{ text: string; line: number }>, file: string): AsyncIterable<ImportRow> {
  let n = 0;
  for await (const { text, line } of lines) {
    if (text.trim() === '') continue;
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw new MemstoreError('INVALID_ARGUMENT', `${file}: ${rowLabel(n, line)}: not JSON`, { cause: e, file, offset: n, field: `row ${n}` });
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new MemstoreError('INVALID_ARGUMENT', `${file}: ${rowLabel(n, line)}: must be an object { id, vector, text?, meta? }`, { file, offset: n, field: `row ${n}` });
    const o = v as Record<string, unknown>;
    yield { id: o['id'], vector: o['vector'], text: o['text'], meta: o['meta'], metaIsJson: false, line };
    n++;
  }
}

/**
 * The longest JSONL line a record can make: its id and text with every character escaped (`\u0000`
 * is six bytes for one), its metadata's JSON, a vector of the largest dimension at 32 bytes a
 * number, and a MiB to spare; about 100 MiB. A longer line is refused as it grows: decoded whole, a
 * line of 560 MiB threw V8's "Invalid string length" (no MemstoreError), and a file without a
 * newline was gathered into memory whole.
 */
export const MAX_JSONL_LINE_BYTES = 6 * (MAX_ID_BYTES + MAX_TEXT_BYTES) + MAX_META_BYTES + 32 * MAX_DIM + (1 << 20);

/**
 * The lines of `input`, split at \n only (a \r before it dropped): JSON allows a lone \r as
 * whitespace inside an object, and a line reader that also splits there cuts such a row in two. A
 * byte-order mark at the start of the file is dropped. A line longer than MAX_JSONL_LINE_BYTES is
 * INVALID_ARGUMENT naming it. Each line is decoded as UTF-8 strictly: a
 * line that is not (JSON text must be) is INVALID_ARGUMENT naming it, where a replacing decoder
 * turned two different bad ids into the same U+FFFD and one row silently replaced the other. An
 * unreadable file (missing, a directory) is INVALID_ARGUMENT, as for the other formats.
 */
async function* linesOf(input: AsyncIterable<Buffer>, file: string): AsyncIterable<{ text: string; line: number }> {
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  let line = 0;
  const decode = (bytes: Uint8Array): string => {
    let text: string;
    try {
      text = decoder.decode(bytes);
    } catch (e) {
      throw new MemstoreError('INVALID_ARGUMENT', `${file}: line ${line + 1}: not valid UTF-8 (JSON text must be)`, { cause: e, file, offset: line, field: `line ${line + 1}` });
    }
    line++;
    return text.endsWith('\r') ? text.slice(0, -1) : text;
  };
  // The pieces of a line not yet ended, joined once its \n comes: a long line is never searched again.
  let parts: Buffer[] = [];
  let pending = 0;
  const gather = (piece: Buffer): void => {
    pending += piece.length;
    if (pending > MAX_JSONL_LINE_BYTES) {
      throw new MemstoreError('INVALID_ARGUMENT', `${file}: line ${line + 1}: longer than any record can be (over ${MAX_JSONL_LINE_BYTES} bytes)`, { file, offset: line, field: `line ${line + 1}` });
    }
    parts.push(piece);
  };
  let first = true;
  const chunks = input[Symbol.asyncIterator]();
  for (;;) {
    let next: IteratorResult<Buffer>;
    try {
      next = await chunks.next();
    } catch (e) {
      throw new MemstoreError('INVALID_ARGUMENT', `${file}: not a readable file`, { cause: e, file });
    }
    if (next.done === true) {
      if (parts.length > 0) yield { text: decode(parts.length === 1 ? parts[0]! : Buffer.concat(parts)), line };
      return;
    }
    let bytes = next.value;
    if (first && bytes.length > 0) {
      if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
      first = false;
    }
    let start = 0;
    for (let at = bytes.indexOf(10); at >= 0; at = bytes.indexOf(10, start)) {
      gather(bytes.subarray(start, at));
      // decode() counts the line first: `line` is then its number, from 1.
      yield { text: decode(parts.length === 1 ? parts[0]! : Buffer.concat(parts)), line };
      parts = [];
      pending = 0;
      start = at + 1;
    }
    if (start < bytes.length) gather(bytes.subarray(start));
  }
}

/** Bytes a file name may take on the file systems a store runs on (NAME_MAX). */
const NAME_MAX = 255;

/**
 * A new name beside `file` for writing it: `FILE.<pid>.<random>.tmp`, or, where that would pass
 * NAME_MAX (an output's own name may take up to it), `.<pid>.<random>.tmp` alone: a legal name of
 * 246 bytes had failed with a name too long for its temporary file.
 */
function temporaryBeside(file: string): string {
  const suffix = `.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  return Buffer.byteLength(basename(file)) + Buffer.byteLength(suffix) <= NAME_MAX ? `${file}${suffix}` : join(dirname(file), suffix);
}

/**
 * Removes the temporary files of earlier exports to `file` that were killed (`FILE.<pid>.<hex>.tmp`
 * whose process is not alive, as the directory lock judges a stale lock): nothing else could remove
 * them. A temporary name too long to hold `file`'s name (`.<pid>.<hex>.tmp`) does not say whose it
 * is, and is left. A failure to list or remove is not the export's: it goes on.
 */
async function removeAbandoned(file: string): Promise<void> {
  const prefix = `${basename(file)}.`;
  let names: string[];
  try {
    names = await readdir(dirname(file));
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const m = /^(\d{1,10})\.[0-9a-f]{12}\.tmp$/.exec(name.slice(prefix.length));
    if (m === null || pidAlive(Number(m[1]))) continue;
    await rm(join(dirname(file), name), { force: true }).catch(() => undefined);
  }
}

/**
 * Runs `write(temp)` and moves its file to `file` atomically: written under a temporary name
 * beside it (a new, random one, created here: a file already there is never written; one an earlier export
 * to `file` left when it was killed is removed first, removeAbandoned()),
 * fsynced, linked to `file` (which fails if `file` exists, even one made by another process while
 * this one wrote), the directory fsynced. `file` must not exist (INVALID_ARGUMENT); on failure the
 * temporary file is removed.
 */
export async function writeAtomically(file: string, write: (temp: string) => Promise<void>): Promise<void> {
  const taken = () => new MemstoreError('INVALID_ARGUMENT', `${file} exists; an export never overwrites a file`, { file, field: 'out' });
  // lstat, not open: opening a FIFO for reading waits for a writer, and an export to one never
  // returned, nor stopped on SIGINT (the exit waited for the blocked thread: a hostile pass).
  try {
    await lstat(file);
    throw taken();
  } catch (e) {
    if (e instanceof MemstoreError) throw e;
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new MemstoreError('IO', `cannot check ${file}`, { cause: e, file });
  }
  await removeAbandoned(file);
  const temp = temporaryBeside(file);
  listTemporary(temp, 'file');
  try {
    await (await open(temp, 'wx')).close();
  } catch (e) {
    unlistTemporary(temp);
    // Named by the output the caller asked for, and why: the temporary name alone had left the user
    // to work out that the output's directory is missing.
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? `its directory ${dirname(file)} does not exist` : `its temporary file ${temp} cannot be made there`;
    throw new MemstoreError('IO', `cannot write ${file}: ${why}`, { cause: e, file });
  }
  try {
    await write(temp);
    const h = await open(temp, 'r+');
    try {
      await h.sync();
    } finally {
      await h.close();
    }
    await publish(temp, file, taken);
    const d = await open(dirname(file), 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch (e) {
    await rm(temp, { force: true });
    if (e instanceof MemstoreError) throw e;
    throw new MemstoreError('IO', `writing ${file} failed`, { cause: e, file });
  } finally {
    unlistTemporary(temp);
  }
}


/**
 * `temp` becomes `file` unless `file` exists: a hard link refuses an existing name atomically,
 * where rename would replace it. A file system without hard links gets the check and a rename.
 */
async function publish(temp: string, file: string, taken: () => MemstoreError): Promise<void> {
  try {
    await link(temp, file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw taken();
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw e;
    try {
      await (await open(file, 'r')).close();
      throw taken();
    } catch (again) {
      if (again instanceof MemstoreError || (again as NodeJS.ErrnoException).code !== 'ENOENT') throw again;
    }
    await rename(temp, file);
    return;
  }
  await rm(temp, { force: true });
}
