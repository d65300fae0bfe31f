import { MemStore, type StoredRecord } from '../memstore.js';
import type { Metric } from '../options.js';
import { requireStore } from '../store/verify.js';
import { isStoreFileName, realPath, storeEntryHolding, storeHolding } from '../store/files.js';
import { basename } from 'node:path';
import { MemstoreError } from '../errors.js';
import { BATCH_BYTES, BATCH_ROWS, recordBytes, resolveFormat, type ExportFormat } from './formats.js';
import { checkPath } from '../input.js';
import { checkToolOptions, progressOf } from '../options.js';
import { writeAtomically, writeFile } from './files.js';

/** How `exportStore` writes. */
export interface ExportOptions {
  /** The file format. @default the one the output file's extension names (.jsonl, .arrow, .parquet) */
  format?: ExportFormat;
  /** Told the records written so far, and how many there are, after each batch; what it throws stops the export (no file is left) and is thrown as it is. @default none */
  onProgress?: (done: number, total: number) => void;
}

/** The keys ExportOptions has. */
const EXPORT_KEYS: readonly (keyof ExportOptions)[] = ['format', 'onProgress'];

/**
 * Writes every record of the store in `dir` (id, the vector as added, text, metadata) to `out` in
 * a format bigger engines ingest (EXPORT.md): JSONL, an Arrow IPC file, or Parquet. The store is
 * opened as usual (LOCKED while another process has it); `out` appears whole or not at all, and is
 * never overwritten. A damaged record stops the export with its CORRUPTION (`memstore repair`
 * first). Without full vectors kept (`rescore: false`), the vectors are the codes' reconstructions.
 * Returns the store's metric and dimension too: a JSONL file carries neither (its import takes the
 * dimension from its first vector, and a file of no records has none), so its import must be told.
 */
export async function exportStore(dir: string, out: string, options: ExportOptions = {}): Promise<{ records: number; format: ExportFormat; metric: Metric; dim: number }> {
  checkPath(dir, 'dir');
  checkPath(out, 'out');
  const o = checkToolOptions(options, EXPORT_KEYS);
  const format = resolveFormat(o.format, out);
  requireStore(dir);
  // Links resolved: an export named like a log segment inside wal/ was read as that store's log,
  // this store's or another's.
  // This store's own entries are checked by name too: one that is a link (its wal/ on another
  // disk) is reached without passing through the store's directory (a hostile pass).
  const entry = storeEntryHolding(dir, out);
  const holder = entry === undefined ? storeHolding(out) : { dir, entry };
  if (holder !== undefined) {
    throw new MemstoreError('INVALID_ARGUMENT', `${out} would be inside the ${holder.entry} of the store in ${holder.dir}; write the export elsewhere`, { field: 'out', file: out });
  }
  // A store's file name anywhere (a log segment's, an index file's) may lie in a store's entry
  // reached by a link from a directory no walk up from here finds.
  if (isStoreFileName(basename(realPath(out)))) {
    throw new MemstoreError('INVALID_ARGUMENT', `${out} is named as a store's own files are; name the export otherwise`, { field: 'out', file: out });
  }
  const store = await MemStore.open(dir, { cache: false });
  try {
    const { dim, metric } = store.stats();
    const ids = store.ids();
    let records = 0;
    const progress = progressOf(o.onProgress);
    async function* batches(): AsyncIterable<StoredRecord[]> {
      let batch: StoredRecord[] = [];
      let bytes = 0;
      for (const id of ids) {
        const r = await store.get(id);
        if (r === undefined) continue;
        const size = recordBytes(r);
        if (batch.length === BATCH_ROWS || (batch.length > 0 && bytes + size > BATCH_BYTES)) {
          records += batch.length;
          yield batch;
          progress.report(records, ids.length);
          batch = [];
          bytes = 0;
        }
        batch.push(r);
        bytes += size;
      }
      if (batch.length > 0) {
        records += batch.length;
        yield batch;
        progress.report(records, ids.length);
      }
    }
    try {
      await writeAtomically(out, (temp) => writeFile(format, temp, { dim, metric, batches }));
    } catch (e) {
      const callers = progress.thrownIn(e);
      throw callers === undefined ? e : callers.error;
    }
    return { records, format, metric, dim };
  } finally {
    await store.close();
  }
}
