import { MemstoreError } from '../errors.js';

/** The file formats `memstore export` writes and `memstore import` reads (EXPORT.md). */
export const FORMATS = ['jsonl', 'arrow', 'parquet'] as const;
export type ExportFormat = (typeof FORMATS)[number];

/** Rows per Arrow record batch and Parquet row group, and per `add` on import (fewer past BATCH_BYTES). */
export const BATCH_ROWS = 4096;

/**
 * Bytes of ids, texts, metadata and vectors a batch holds at most (one record more than that is
 * its own batch). An `add` refuses a batch of more than MAX_BATCH_BYTES (256 MiB) encoded, and 4,096
 * records with texts up to MAX_TEXT_BYTES (16 MiB) would be 64 GiB in memory, past the length of a
 * JavaScript string (JSONL) and of an Arrow Utf8 column (2 GiB): batches also stop here.
 */
export const BATCH_BYTES = 64 << 20;

/** About the bytes `r` takes in a batch: its id, text and metadata as UTF-8 (JSON), its vector as float32. */
export function recordBytes(r: { readonly id: unknown; readonly vector: { readonly length: number }; readonly text?: unknown; readonly meta?: unknown }): number {
  let meta = 0;
  if (r.meta !== undefined) {
    try {
      meta = typeof r.meta === 'string' ? Buffer.byteLength(r.meta) : Buffer.byteLength(JSON.stringify(r.meta) ?? '');
    } catch {
      // Not JSON data: add refuses it.
    }
  }
  const bytes = (s: unknown) => (typeof s === 'string' ? Buffer.byteLength(s) : 0);
  return 64 + 4 * r.vector.length + bytes(r.id) + bytes(r.text) + meta;
}

export function isFormat(v: unknown): v is ExportFormat {
  return typeof v === 'string' && (FORMATS as readonly string[]).includes(v);
}

/** The format a file's name says (`.jsonl`/`.ndjson`, `.arrow`/`.feather`/`.ipc`, `.parquet`), or undefined. */
export function formatOfName(file: string): ExportFormat | undefined {
  const lower = file.toLowerCase();
  if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson')) return 'jsonl';
  if (lower.endsWith('.arrow') || lower.endsWith('.feather') || lower.endsWith('.ipc')) return 'arrow';
  if (lower.endsWith('.parquet')) return 'parquet';
  return undefined;
}

/**
 * The format asked for, else the one the file's name says; INVALID_OPTION when neither names one
 * of FORMATS, or when the name says another than the one asked for: `--format jsonl --out x.arrow`
 * had written JSON lines under `.arrow` without a word (a hostile pass), which every reader that
 * goes by the name then takes for a damaged Arrow file.
 */
export function resolveFormat(format: unknown, file: string): ExportFormat {
  const named = formatOfName(file);
  if (format !== undefined) {
    if (!isFormat(format)) throw new MemstoreError('INVALID_OPTION', `format must be one of ${FORMATS.join(', ')}, got ${JSON.stringify(format)}`, { field: 'format' });
    if (named !== undefined && named !== format) {
      throw new MemstoreError('INVALID_OPTION', `${file}: its name says ${named}, the format option ${format}; name the file for its format, or leave the option out`, { field: 'format' });
    }
    return format;
  }
  if (named === undefined) throw new MemstoreError('INVALID_OPTION', `${file}: cannot tell the format from the name; give the format option (${FORMATS.join(', ')}; --format on the command line)`, { field: 'format' });
  return named;
}

/** The optional packages each format reads and writes with. */
const PACKAGES: Record<ExportFormat, readonly ('apache-arrow' | 'parquet-wasm')[]> = { jsonl: [], arrow: ['apache-arrow'], parquet: ['apache-arrow', 'parquet-wasm'] };

/**
 * Loads the package `name` that `format` needs: the Arrow and Parquet formats' packages are
 * optional peer dependencies, so a store that never exports does not install them. When it is
 * missing, INVALID_OPTION names every package the format needs that is missing (Parquet had named
 * only the first, and a user installed them one error at a time).
 */
export async function optionalPackage<T>(name: 'apache-arrow' | 'parquet-wasm', format: ExportFormat, load: (name: string) => Promise<unknown> = (n) => import(n)): Promise<T> {
  try {
    return (await load(name)) as T;
  } catch (e) {
    const missing: string[] = [];
    for (const p of PACKAGES[format].includes(name) ? PACKAGES[format] : [name]) {
      if (p === name) missing.push(p);
      else await load(p).catch(() => missing.push(p));
    }
    const names = missing.join(' and ');
    throw new MemstoreError('INVALID_OPTION', `format ${format} needs the package${missing.length > 1 ? 's' : ''} ${names}, ${missing.length > 1 ? 'which are' : 'which is'} not installed (npm install ${missing.join(' ')})`, { cause: e, field: 'format' });
  }
}
