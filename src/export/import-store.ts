import { readdirSync, rmSync } from 'node:fs';
import { open, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { MemstoreError } from '../errors.js';
import { MemStore, type MemoryRecord } from '../memstore.js';
import { MAX_DIM, METRICS, type Metric, type OpenOptions } from '../options.js';
import { BATCH_BYTES, BATCH_ROWS, recordBytes, resolveFormat, type ExportFormat } from './formats.js';
import { checkPath } from '../input.js';
import { checkToolOptions } from '../options.js';
import { readFile } from './files.js';
import { recordOf, rowLabel } from './rows.js';
import { FILES, importMarkerPath, isStoreEntry, syncDirSync } from '../store/files.js';
import { liveImporter } from '../store/lock.js';
import { listCleanup, unlistTemporary } from '../temporaries.js';

/** How `importStore` reads and what store it makes: the options of `MemStore.open`, and the file's format. */
export interface ImportOptions extends OpenOptions {
  /** The file format. @default the one the file's extension names (.jsonl, .arrow, .parquet) */
  format?: ExportFormat;
  /**
   * Told the rows added so far after each batch, and the rows the file holds: exact for Parquet,
   * estimated from the bytes read for JSONL and Arrow (undefined before any is read); what it
   * throws stops the import (the directory is left empty) and is thrown as it is. @default none
   */
  onProgress?: (rows: number, total: number | undefined) => void;
}

/**
 * Makes a new store in `dir` (an existing, empty directory) from the records of `file`, as
 * `exportStore` writes them or as other engines export them (EXPORT.md). `dim` defaults to the
 * file's (its schema, or its first vector's length), `metric` to the one its schema names, else
 * the store's default; the other options are `MemStore.open`'s. Rows are added in order (a later
 * row with an earlier id replaces it). Any bad row stops the import with its error, naming the row
 * (`offset`), and leaves `dir` empty again: no half-imported store.
 */
export async function importStore(file: string, dir: string, options: ImportOptions = {}): Promise<{ rows: number; records: number; dim: number }> {
  checkPath(file, 'file');
  checkPath(dir, 'dir');
  // Its other keys are open's, which open checks.
  const { format: asked, onProgress, ...open } = checkToolOptions(options);
  const format = resolveFormat(asked, file);
  const { shape, rows, totalRows } = await readFile(format, file);
  await requireEmptyDir(dir);
  // Until the store is whole, what the import makes in `dir` goes with a Ctrl-C of the CLI too
  // (temporaries.ts): its marker had stayed, and the store then refused to open (a hostile pass).
  listCleanup(cleanupKey(dir), () => removeStoreEntriesSync(dir));
  try {
    return await importInto(file, dir, open, onProgress, { shape, rows, totalRows });
  } finally {
    unlistTemporary(cleanupKey(dir));
  }
}

async function importInto(file: string, dir: string, open: OpenOptions, onProgress: ImportOptions['onProgress'], read: Awaited<ReturnType<typeof readFile>>): Promise<{ rows: number; records: number; dim: number }> {
  const { shape, rows, totalRows } = read;
  await writeMarker(dir);
  let store: MemStore | undefined;
  let n = 0;
  try {
    let batch: MemoryRecord[] = [];
    // The JSONL line of each row of the batch (undefined for the other formats), for its messages.
    let lines: (number | undefined)[] = [];
    let bytes = 0;
    let from = 0;
    const flush = async () => {
      if (batch.length === 0) return;
      if (store === undefined) {
        const first = batch[0]!.vector.length;
        // The dimension from the first row: a vector no store can hold is that row's error.
        if (open.dim === undefined && shape().dim === undefined && !(first >= 1 && first <= MAX_DIM)) {
          throw new MemstoreError('INVALID_VECTOR', `${file}: ${rowLabel(from, lines[0])}: the vector has ${first} components; a store takes 1 to ${MAX_DIM}`, { file, offset: from, field: `row ${from}` });
        }
        store = await openFor(dir, open, shape().metric, shape().dim ?? first, file);
      }
      try {
        await store.add(batch);
      } catch (e) {
        throw rowError(e, file, from, lines);
      }
      from += batch.length;
      onProgress?.(from, totalRows(from));
      batch = [];
      lines = [];
      bytes = 0;
    };
    for await (const row of rows) {
      const record = recordOf(row, file, n);
      const size = recordBytes(record);
      if (batch.length > 0 && bytes + size > BATCH_BYTES) await flush();
      batch.push(record);
      lines.push(row.line);
      bytes += size;
      n++;
      if (batch.length === BATCH_ROWS) await flush();
    }
    await flush();
    if (store === undefined) {
      const dim = open.dim ?? shape().dim;
      if (dim === undefined) throw new MemstoreError('INVALID_ARGUMENT', `${file} holds no record and no dimension; give dim (--dim on the command line) to make an empty store`, { file, field: 'dim' });
      store = await openFor(dir, open, shape().metric, dim, file);
    }
    const records = store.stats().count;
    const dim = store.stats().dim;
    await store.close();
    // The store is whole and durable (close): from now on it opens.
    await rm(importMarkerPath(dir));
    syncDirSync(dir);
    return { rows: n, records, dim };
  } catch (e) {
    await store?.close().catch(() => undefined);
    // The directory was empty: the store's entries in it now are the failed import's (anything
    // else someone put there since is left alone), unless another process holds the store there
    // (its open was refused with LOCKED): then only this import's marker goes.
    if (e instanceof MemstoreError && e.code === 'LOCKED') await rm(importMarkerPath(dir), { force: true });
    else await removeStoreEntries(dir);
    throw e;
  }
}

function openFor(dir: string, open: OpenOptions, fileMetric: string | undefined, dim: number, file: string): Promise<MemStore> {
  // A metric the file names and no store has (another tool's, or a typo such as 'L2') is refused
  // unless the caller names one: read as the default, it had made a cosine store of an l2 file.
  if (open.metric === undefined && fileMetric !== undefined && !(METRICS as readonly string[]).includes(fileMetric)) {
    return Promise.reject(new MemstoreError('INVALID_ARGUMENT', `${file}: its schema names the metric ${JSON.stringify(fileMetric)}, which is not one of ${METRICS.join(', ')}; give --metric (OpenOptions.metric) to import it`, { file, field: 'memstore.metric' }));
  }
  const metric = open.metric ?? (fileMetric as Metric | undefined);
  return MemStore.openWith(dir, { durability: 'none', ...open, dim: open.dim ?? dim, ...(metric === undefined ? {} : { metric }) }, { importing: true });
}

/** `e` from adding the batch that starts at row `from` (its rows' JSONL `lines`), naming the row its field points at. */
function rowError(e: unknown, file: string, from: number, lines: readonly (number | undefined)[]): unknown {
  if (!(e instanceof MemstoreError)) return e;
  const at = /^records\[(\d+)\]/.exec(e.field ?? '');
  const row = at === null ? undefined : from + Number(at[1]);
  const named = row === undefined ? `rows from ${rowLabel(from, lines[0])}` : rowLabel(row, lines[row - from]);
  // `field` names the row in the file (EXPORT.md), as `offset` does: add()'s `records[225].vector`
  // counts within a batch, and had named the 226th row of a batch past the first.
  const field = row === undefined ? e.field : `row ${row}`;
  return new MemstoreError(e.code, `${file}: ${named}: ${e.message}`, { cause: e, file, ...(row === undefined ? {} : { offset: row }), ...(field === undefined ? {} : { field }) });
}

async function requireEmptyDir(dir: string): Promise<void> {
  let entries: string[];
  try {
    if (!(await stat(dir)).isDirectory()) throw new MemstoreError('INVALID_ARGUMENT', `${dir} is not a directory`, { file: dir, field: 'dir' });
    entries = await readdir(dir);
  } catch (e) {
    if (e instanceof MemstoreError) throw e;
    throw new MemstoreError('INVALID_ARGUMENT', `${dir} must be an existing, empty directory (an import makes a new store; no tool creates a directory)`, { cause: e, file: dir, field: 'dir' });
  }
  if (entries.length === 0) return;
  // What an import that did not finish left (its marker says so) is cleared: this one starts over.
  // Not while the process that wrote the marker, or one holding the store's lock, is alive (an
  // import still running: clearing its directory under it lost both imports), and only the store's
  // own entries: a file of the user's put there since stays, and the directory is then not empty.
  if (entries.includes(FILES.importing)) {
    const live = liveImporter(dir);
    if (live !== undefined) throw new MemstoreError('LOCKED', `${dir}: process ${live.pid} is importing into it or has its store open; wait for it, or stop it and import again`, { file: live.file });
    await removeStoreEntries(dir);
    if ((await readdir(dir)).length === 0) return;
  }
  throw new MemstoreError('INVALID_ARGUMENT', `${dir} is not empty: an import makes a new store`, { file: dir, field: 'dir' });
}

/** The paths of the store's own entries among `names`, the entries of `dir` (isStoreEntry), the import marker last: what a failed import removes. */
function storeEntryPaths(dir: string, names: readonly string[]): string[] {
  return [...names.filter((name) => isStoreEntry(name) && name !== FILES.importing).map((name) => join(dir, name)), importMarkerPath(dir)];
}

/** Removes the store's own entries from `dir`, the import marker last. */
async function removeStoreEntries(dir: string): Promise<void> {
  for (const path of storeEntryPaths(dir, await readdir(dir))) await rm(path, { recursive: true, force: true });
}

/** removeStoreEntries(), at once, for a process about to die of a signal (temporaries.ts). */
function removeStoreEntriesSync(dir: string): void {
  for (const path of storeEntryPaths(dir, readdirSync(dir))) rmSync(path, { recursive: true, force: true });
}

/** The key an import's cleanup is listed under (temporaries.ts). */
function cleanupKey(dir: string): string {
  return `import into ${dir}`;
}

/** Writes the import marker (FILES.importing) durably: file and directory fsynced before the store is made. */
async function writeMarker(dir: string): Promise<void> {
  // Made exclusively: an import that started in the same moment (both found the directory empty) is refused here, before it touches anything.
  const h = await open(importMarkerPath(dir), 'wx').catch((e: unknown) => {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new MemstoreError('LOCKED', `${dir}: another import is writing into it`, { cause: e, file: importMarkerPath(dir) });
    throw new MemstoreError('IO', `cannot create ${importMarkerPath(dir)}`, { cause: e, file: importMarkerPath(dir) });
  });
  try {
    try {
      // The importing process's pid first: another import finding the marker leaves the directory alone while it lives.
      await h.writeFile(`${process.pid}\nmemstore import in progress: the store here is not whole until this file is gone\n`);
      await h.sync();
    } finally {
      await h.close();
    }
    syncDirSync(dir);
  } catch (e) {
    // The marker this import made goes with it (a full disk had left it, and the directory refused
    // to open, for an import that wrote nothing else: a hostile pass).
    await rm(importMarkerPath(dir), { force: true });
    throw e instanceof MemstoreError ? e : new MemstoreError('IO', `cannot write ${importMarkerPath(dir)}`, { cause: e, file: importMarkerPath(dir) });
  }
}
