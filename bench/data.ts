import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { MemstoreError } from '../src/errors.js';

export interface Dataset {
  readonly name: string;
  readonly dim: number;
  readonly docs: Float32Array[];
  readonly queries: Float32Array[];
}

function rowsOf(all: Float32Array, dim: number, file: string): Float32Array[] {
  if (all.length % dim !== 0) {
    throw new MemstoreError('INVALID_ARGUMENT', `${file}: ${all.length} floats is not a multiple of dim ${dim}`);
  }
  return Array.from({ length: all.length / dim }, (_, i) => all.slice(i * dim, (i + 1) * dim));
}

function floats(buf: Buffer): Float32Array {
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

/** `.fvecs`: per vector an int32 dimension followed by that many float32 (little-endian). */
function readFvecs(file: string): { dim: number; rows: Float32Array[] } {
  const buf = readFileSync(file);
  if (buf.byteLength < 4) throw new MemstoreError('INVALID_ARGUMENT', `${file}: empty .fvecs file`);
  const dim = buf.readInt32LE(0);
  const recordBytes = 4 + dim * 4;
  if (dim <= 0 || buf.byteLength % recordBytes !== 0) {
    throw new MemstoreError('INVALID_ARGUMENT', `${file}: not an .fvecs file of dim ${dim}`);
  }
  const rows: Float32Array[] = [];
  for (let off = 0; off < buf.byteLength; off += recordBytes) {
    if (buf.readInt32LE(off) !== dim) throw new MemstoreError('INVALID_ARGUMENT', `${file}: mixed dimensions at byte ${off}`);
    rows.push(floats(buf.subarray(off + 4, off + recordBytes)));
  }
  return { dim, rows };
}

/** Reads embeddings: `.fvecs` (dim from the file) or raw little-endian float32 (`.f32`/`.bin`, needs `dim`). */
export function readVectors(file: string, dim: number | undefined): { dim: number; rows: Float32Array[] } {
  if (extname(file) === '.fvecs') {
    const r = readFvecs(file);
    if (dim !== undefined && dim !== r.dim) throw new MemstoreError('DIM_MISMATCH', `${file} has dim ${r.dim}, --dim says ${dim}`);
    return r;
  }
  if (dim === undefined) throw new MemstoreError('INVALID_ARGUMENT', `${file}: raw float32 needs --dim`);
  return { dim, rows: rowsOf(floats(readFileSync(file)), dim, file) };
}

/** The real embedding set shipped in the repository (see bench/data/wordnet-use512-1k/README.md). */
export function shippedDataset(): Dataset {
  const dir = new URL('../../bench/data/wordnet-use512-1k/', import.meta.url);
  const docs = rowsOf(floats(readFileSync(new URL('docs.f32', dir))), 512, 'docs.f32');
  const queries = rowsOf(floats(readFileSync(new URL('queries.f32', dir))), 512, 'queries.f32');
  return { name: 'wordnet-use512-1k (shipped)', dim: 512, docs, queries };
}
