/** The embedding files `memstore bench --data/--queries` reads. */
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { extname } from 'node:path';
import { f16ToF32 } from '../codec/f16.js';
import { MemstoreError } from '../errors.js';
import { boundsProblem, type VectorBounds } from '../input.js';

/** INVALID_ARGUMENT naming `file` (its `file`) and, for a line of a `.jsonl`, `line N` (its `field`). */
function bad(file: string, what: string, cause?: unknown, line?: number): MemstoreError {
  return new MemstoreError('INVALID_ARGUMENT', `${file}: ${what}`, { file, ...(cause === undefined ? {} : { cause }), ...(line === undefined ? {} : { field: `line ${line}` }) });
}

/**
 * `limit`: the most bytes read from a `--data` or `--queries` file that is not a regular file (a
 * pipe, a FIFO, a device) before it is refused: `/dev/zero` had been read until the process held
 * gigabytes, for ever (a hostile pass). A regular file is read at its size. Tests lower it.
 */
export const streamReads: { limit: number } = { limit: 2 ** 30 };

/**
 * `limit`: the longest line of a `.jsonl` the bench reads, in bytes (a 65,536-d vector of 17-digit
 * numbers is about 1.2 MB); past V8's longest string a line could not be decoded at all. Tests lower it.
 */
export const lineReads: { limit: number } = { limit: 2 ** 28 };

/** The most bytes of a regular file the bench reads (a Buffer's limit here; it reads a file whole). */
export const MAX_FILE_BYTES = 2 ** 31 - 1;

/** The bytes of `file`: a regular file whole (up to MAX_FILE_BYTES), anything else up to `streamReads.limit`. */
function readWhole(file: string): Buffer {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    // A directory opens for reading and fails at the read, as EISDIR naming no file (a hostile pass).
    throw (e as { code?: string }).code === 'EISDIR' ? bad(file, 'is a directory: give a file of vectors', e) : e;
  }
  try {
    const stat = fstatSync(fd);
    if (stat.isDirectory()) throw bad(file, 'is a directory: give a file of vectors');
    if (stat.isFile()) {
      // Past it, Node's own error had named no file.
      if (stat.size > MAX_FILE_BYTES) throw bad(file, `is ${stat.size} bytes; the bench reads a file whole, at most ${MAX_FILE_BYTES}: give it fewer vectors`);
      return readFileSync(fd);
    }
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(1 << 20);
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) return Buffer.concat(chunks, total);
      total += n;
      if (total > streamReads.limit) throw bad(file, `not a regular file, and it gave more than ${streamReads.limit} bytes: give a file`);
      chunks.push(n === chunk.length ? chunk : chunk.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * `rows` unless a vector has a component of a magnitude a store of `bounds` refuses (vectorBounds():
 * 'dot' and 'l2' stores), INVALID_ARGUMENT naming the file, the vector and `store` (what the bench
 * would build): a data vector of 3e38 had been refused as `records[200].vector` after the ground
 * truth and a store were built, naming neither. `first` numbers the first of `rows` in its file.
 */
export function checkMagnitudes(file: string, rows: readonly Float32Array[], bounds: VectorBounds, store: string, first = 0): void {
  rows.forEach((row, i) => {
    const problem = boundsProblem(row, bounds);
    if (problem !== undefined) throw bad(file, `vector ${first + i} ${problem}, in ${store}`);
  });
}

/**
 * `read` unless a vector holds NaN or ±∞ (as float32: a JSON number past its range is ∞ there):
 * INVALID_ARGUMENT naming the file and the vector, where the store refused it later as
 * `records[150].vector[2]`, naming neither.
 */
function finite(file: string, read: { dim: number; rows: Float32Array[] }): { dim: number; rows: Float32Array[] } {
  read.rows.forEach((row, i) => {
    for (let j = 0; j < row.length; j++) if (!Number.isFinite(row[j]!)) throw bad(file, `vector ${i} has ${row[j]} at component ${j} (every value must be a finite float32)`);
  });
  return read;
}

export function rowsOf(all: Float32Array, dim: number, file: string): Float32Array[] {
  if (all.length % dim !== 0) throw bad(file, `${all.length} floats is not a multiple of dim ${dim}`);
  return Array.from({ length: all.length / dim }, (_, i) => all.slice(i * dim, (i + 1) * dim));
}

export function floats(buf: Uint8Array, file = 'data'): Float32Array {
  if (buf.byteLength % 4 !== 0) throw bad(file, `${buf.byteLength} bytes is not a whole number of float32`);
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

/** `.fvecs`: per vector an int32 dimension followed by that many float32 (little-endian). */
function readFvecs(file: string): { dim: number; rows: Float32Array[] } {
  const buf = readWhole(file);
  if (buf.byteLength < 4) throw bad(file, 'empty .fvecs file');
  const dim = buf.readInt32LE(0);
  const recordBytes = 4 + dim * 4;
  if (dim <= 0 || buf.byteLength % recordBytes !== 0) throw bad(file, `not an .fvecs file of dim ${dim}`);
  const rows: Float32Array[] = [];
  for (let off = 0; off < buf.byteLength; off += recordBytes) {
    if (buf.readInt32LE(off) !== dim) throw bad(file, `mixed dimensions at byte ${off}`);
    rows.push(floats(buf.subarray(off + 4, off + recordBytes)));
  }
  return { dim, rows };
}

/** `.npy` version 1–3, a 2-D C-order array of little-endian float32 (`<f4`) or float16 (`<f2`). */
function readNpy(file: string): { dim: number; rows: Float32Array[] } {
  const buf = readWhole(file);
  if (buf.byteLength < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw bad(file, 'not an .npy file');
  const major = buf[6]!;
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  if (start + headerLen > buf.byteLength) throw bad(file, `the .npy header says it takes ${headerLen} bytes; the file ends before them`);
  const header = buf.toString('latin1', start, start + headerLen);
  // A key given twice: which one numpy meant is not ours to guess (the first had been taken silently).
  for (const key of ['descr', 'fortran_order', 'shape']) {
    if ((header.match(new RegExp(`'${key}':`, 'g')) ?? []).length > 1) throw bad(file, `.npy header names '${key}' more than once: ${header.trim()}`);
  }
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shape = /'shape':\s*\(\s*(\d+)\s*,\s*(\d+)\s*,?\s*\)/.exec(header);
  // A header numpy did not write (JSON's double quotes, a shape of another rank) names no 2-D shape as numpy spells one.
  if (shape === null) throw bad(file, `.npy header names no 2-D shape as numpy writes it ({'descr': '<f4', 'fortran_order': False, 'shape': (N, D), }): ${header.trim()}`);
  if (fortran !== 'False') throw bad(file, '.npy array must be C-order');
  const n = Number(shape[1]);
  const dim = Number(shape[2]);
  const data = buf.subarray(start + headerLen);
  if (descr !== '<f4' && descr !== '<f2') throw bad(file, `.npy dtype ${String(descr)} is not supported (use <f4 or <f2)`);
  const bytes = n * dim * (descr === '<f2' ? 2 : 4);
  if (data.byteLength < bytes) throw bad(file, 'truncated .npy data');
  // numpy writes exactly the array after the header: bytes past it are another file's, or a shape
  // written wrong, and had been dropped without a word.
  if (data.byteLength > bytes) throw bad(file, `.npy data holds ${data.byteLength - bytes} bytes past its shape (${n}, ${dim})`);
  let all: Float32Array;
  if (descr === '<f4') {
    all = floats(data.subarray(0, bytes));
  } else {
    all = new Float32Array(n * dim);
    for (let i = 0; i < all.length; i++) all[i] = f16ToF32(data.readUInt16LE(i * 2));
  }
  return { dim, rows: rowsOf(all, dim, file) };
}

/** JSON Lines with a numeric array under `embedding` (or `vector`) on every line. */
function readJsonl(file: string): { dim: number; rows: Float32Array[] } {
  const rows: Float32Array[] = [];
  /** The line each row came from: a message names the line, as a text editor counts them. */
  const lines: number[] = [];
  eachLine(file, readWhole(file), (line, i) => {
    if (line.trim() === '') return;
    let obj: Record<string, unknown>;
    try {
      obj = JSON.parse(line) as Record<string, unknown>;
    } catch (e) {
      throw bad(file, `line ${i + 1} is not JSON (a JSON object a line, in UTF-8; NaN and Infinity are not JSON numbers)`, e, i + 1);
    }
    if (obj === null || typeof obj !== 'object') throw bad(file, `line ${i + 1} has no numeric "embedding" array`, undefined, i + 1);
    const v = obj['embedding'] ?? obj['vector'];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'number')) throw bad(file, `line ${i + 1} has no numeric "embedding" array`, undefined, i + 1);
    rows.push(Float32Array.from(v as number[]));
    lines.push(i + 1);
  });
  if (rows.length === 0) throw bad(file, 'no vectors');
  const dim = rows[0]!.length;
  // Refused here, naming the file: a study had started over vectors of dimension 0 and the store refused it later.
  if (dim === 0) throw bad(file, `its first vector (line ${lines[0]}) is an empty array`, undefined, lines[0]);
  rows.forEach((r, i) => {
    // The line too: blank lines before it had made "vector 50" line 54 (a hostile pass).
    if (r.length !== dim) throw bad(file, `vector ${i} (line ${lines[i]}) has ${r.length} dimensions, the first has ${dim}`, undefined, lines[i]);
    for (let j = 0; j < r.length; j++) if (!Number.isFinite(r[j]!)) throw bad(file, `vector ${i} (line ${lines[i]}) has ${r[j]} at component ${j} (every value must be a finite float32)`, undefined, lines[i]);
  });
  return { dim, rows };
}

/**
 * Calls `each` with every line of `bytes` (UTF-8; a byte-order mark before the first is dropped: it
 * is not JSON, and import takes such a file) and its index, decoding a line at a time: the whole
 * file as one string had failed past V8's longest string (about 512 MiB) with a message naming no
 * file and no code (a hostile pass).
 */
function eachLine(file: string, bytes: Buffer, each: (line: string, index: number) => void): void {
  let start = bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  for (let index = 0; start <= bytes.length; index++) {
    let end = bytes.indexOf(0x0a, start);
    if (end === -1) end = bytes.length;
    if (end - start > lineReads.limit) throw bad(file, `line ${index + 1} is ${end - start} bytes, more than the ${lineReads.limit} a line of vectors may hold`, undefined, index + 1);
    each(bytes.toString('utf8', start, end), index);
    start = end + 1;
  }
}

/**
 * The extensions read as raw little-endian float32 (with `--dim`), none among them: any other file
 * (a `.csv`, an `.npz`) had been read as raw float32, and a CSV of the right size was benchmarked as
 * noise with exit status 0 (a hostile pass).
 */
export const RAW_EXTENSIONS: readonly string[] = ['.f32', '.bin', '.raw', '.dat', ''];

/**
 * Reads embeddings by extension: `.fvecs`, `.npy` (float32/float16), `.jsonl` (an `embedding`
 * field per line), raw little-endian float32 (RAW_EXTENSIONS), which needs `dim`; any other
 * extension is INVALID_ARGUMENT. `dimFrom` names where `dim` came from, for the message of a file of
 * another dimension.
 */
export function readVectors(file: string, dim: number | undefined, dimFrom = '--dim'): { dim: number; rows: Float32Array[] } {
  const ext = extname(file).toLowerCase();
  const r = ext === '.fvecs' ? readFvecs(file) : ext === '.npy' ? readNpy(file) : ext === '.jsonl' || ext === '.ndjson' ? readJsonl(file) : undefined;
  if (r !== undefined) {
    if (dim !== undefined && dim !== r.dim) throw new MemstoreError('DIM_MISMATCH', `${file} has dim ${r.dim}, ${dimFrom} says ${dim}`, { field: 'dim' });
    return finite(file, r);
  }
  if (!RAW_EXTENSIONS.includes(ext)) {
    throw bad(file, `${ext} is not a format memstore reads: give .fvecs, .npy (<f4 or <f2), .jsonl or .ndjson (an "embedding" array a line), or raw little-endian float32 (${RAW_EXTENSIONS.filter((e) => e !== '').join(', ')} or no extension) with --dim`);
  }
  if (dim === undefined) throw bad(file, 'raw float32 needs --dim');
  return finite(file, { dim, rows: rowsOf(floats(readWhole(file), file), dim, file) });
}
