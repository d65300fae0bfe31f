import type { CodecName } from './codec/codec.js';
import { MemstoreError, type MemstoreErrorCode } from './errors.js';
import {
  F16_MAX_COMPONENT,
  F16_MIN_LARGEST,
  MAX_COMPONENT,
  MAX_ID_BYTES,
  MAX_TEXT_BYTES,
  MIN_LARGEST_COMPONENT,
} from './limits.js';
import { checkMeta, type Meta } from './meta.js';
import type { Metric, PcaOption } from './options.js';
import { isWellFormed, utf8Length } from './text.js';
import { toVector } from './vector.js';

/**
 * Everything a caller hands to a store is checked here, whole, before anything is logged: a batch
 * is either accepted entirely (and then can always be logged, applied, checkpointed and replayed)
 * or refused with a MemstoreError and leaves no trace. The limits are in `limits.ts`.
 */

/**
 * Runs `read` over the caller's input and turns anything it throws that is not a MemstoreError (a
 * getter that throws, a revoked Proxy) into one with `code`, the original as `cause`.
 */
export function readGuarded<T>(code: MemstoreErrorCode, what: string, read: () => T): T {
  try {
    return read();
  } catch (e) {
    throw guarded(code, what, e);
  }
}

/** What readGuarded() throws for `e`, thrown while reading `what`: a MemstoreError as it is, anything else as `code` with `e` its cause. */
export function guarded(code: MemstoreErrorCode, what: string, e: unknown): MemstoreError {
  if (e instanceof MemstoreError) return e;
  return new MemstoreError(code, `${what} could not be read: ${e instanceof Error ? e.message : String(e)}`, { cause: e, field: what });
}

/** An object literal (or `Object.create(null)`): not an array, not a class instance. */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** A non-empty, well-formed string of at most MAX_ID_BYTES UTF-8 bytes, or INVALID_ID. */
export function checkId(id: unknown, what: string): string {
  if (typeof id !== 'string' || id.length === 0) throw new MemstoreError('INVALID_ID', `${what} must be a non-empty string`, { field: what });
  // A UTF-16 code unit is at most 3 UTF-8 bytes: most ids are settled without encoding them.
  if (id.length * 3 > MAX_ID_BYTES) {
    const bytes = id.length > MAX_ID_BYTES ? Infinity : utf8Length(id);
    if (bytes > MAX_ID_BYTES) throw new MemstoreError('INVALID_ID', `${what} is longer than ${MAX_ID_BYTES} bytes of UTF-8`, { field: what });
  }
  if (!isWellFormed(id)) throw new MemstoreError('INVALID_ID', `${what} holds a lone surrogate (not valid Unicode)`, { field: what });
  return id;
}

/** undefined, or a well-formed string of at most MAX_TEXT_BYTES UTF-8 bytes; else INVALID_ARGUMENT. */
export function checkText(text: unknown, what: string): string | undefined {
  if (text === undefined) return undefined;
  if (typeof text !== 'string') throw new MemstoreError('INVALID_ARGUMENT', `${what} must be a string`, { field: what });
  if (text.length * 3 > MAX_TEXT_BYTES && utf8Length(text) > MAX_TEXT_BYTES) {
    throw new MemstoreError('INVALID_ARGUMENT', `${what} is longer than ${MAX_TEXT_BYTES} bytes of UTF-8`, { field: what });
  }
  if (!isWellFormed(text)) throw new MemstoreError('INVALID_ARGUMENT', `${what} holds a lone surrogate (not valid Unicode)`, { field: what });
  return text;
}

/**
 * The magnitudes a store's float32 arithmetic carries (see MAX_COMPONENT and MIN_LARGEST_COMPONENT):
 * the largest |component| of a non-zero vector must lie in [minLargest, max].
 */
export interface VectorBounds {
  readonly max: number;
  readonly minLargest: number;
}

/**
 * Bounds for a store's vectors and queries, or undefined when any finite float32 vector is fine:
 * cosine stores normalize (in float64) before anything else sees a vector.
 */
export function vectorBounds(config: { readonly metric: Metric; readonly codec: CodecName; readonly dim: number; readonly pca: PcaOption | null }): VectorBounds | undefined {
  if (config.metric === 'cosine') return undefined;
  if (config.codec !== 'f16') return { max: MAX_COMPONENT, minLargest: MIN_LARGEST_COMPONENT };
  // A centered PCA projection can grow a component up to 2·√dim times the largest input component.
  const growth = config.pca === null ? 1 : 2 * Math.sqrt(config.dim);
  return { max: F16_MAX_COMPONENT / growth, minLargest: F16_MIN_LARGEST };
}

/** How `v` lies outside `bounds` (to follow the vector's name in a message), or undefined when it lies inside. */
export function boundsProblem(v: ArrayLike<number>, bounds: VectorBounds): string | undefined {
  let largest = 0;
  for (let i = 0; i < v.length; i++) {
    const a = Math.abs(v[i]!);
    if (a > largest) largest = a;
  }
  if (largest > bounds.max) return `has a component of magnitude ${largest}, more than ${bounds.max} (the range this store's codes and arithmetic carry)`;
  if (largest > 0 && largest < bounds.minLargest) return `has no component of magnitude ${bounds.minLargest} or more (scores would underflow); scale it up`;
  return undefined;
}

/** INVALID_VECTOR when `v` is outside `bounds`. */
export function checkBounds(v: Float32Array, bounds: VectorBounds | undefined, what: string): void {
  if (bounds === undefined) return;
  const problem = boundsProblem(v, bounds);
  if (problem !== undefined) throw new MemstoreError('INVALID_VECTOR', `${what} ${problem}`, { field: what });
}

/**
 * `v` (a reconstruction from a code, which may land a rounding past the limits its vector was
 * within) brought inside `bounds` in place: a component past the largest magnitude is set to it,
 * and a largest component under the least to that, with its sign. So a vector `get` returns can be
 * added again (an export of an rq or PCA store without full vectors had held 1.0032e12, which
 * import refused).
 */
export function fitBounds(v: Float32Array, bounds: VectorBounds | undefined): Float32Array {
  if (bounds === undefined) return v;
  // The float32 at or below the bound: the check compares the float32 values with it.
  let max = Math.fround(bounds.max);
  if (max > bounds.max) max = Math.fround(max * (1 - 2 ** -23));
  let largest = 0;
  let at = -1;
  for (let i = 0; i < v.length; i++) {
    const a = Math.abs(v[i]!);
    if (a > max) v[i] = Math.sign(v[i]!) * max;
    if (a > largest) {
      largest = a;
      at = i;
    }
  }
  if (largest > 0 && largest < bounds.minLargest) v[at] = Math.sign(v[at]!) * bounds.minLargest;
  return v;
}

/** A vector for this store: the right length, finite, within `bounds`; a fresh copy. */
export function checkVector(v: unknown, dim: number, bounds: VectorBounds | undefined, what: string): Float32Array {
  return readGuarded('INVALID_VECTOR', what, () => {
    const vector = toVector(v, dim, what);
    checkBounds(vector, bounds, what);
    return vector;
  });
}

/** A list of ids (for delete): each checked, repeats dropped. */
export function checkIds(ids: unknown): string[] {
  return readGuarded('INVALID_ARGUMENT', 'ids', () => {
    if (!Array.isArray(ids)) throw new MemstoreError('INVALID_ARGUMENT', 'delete expects an array of ids', { field: 'ids' });
    const out = new Set<string>();
    for (let i = 0; i < ids.length; i++) out.add(checkId(ids[i], `ids[${i}]`));
    return [...out];
  });
}

/** One record of an add batch, checked: the private copies the store logs and applies. */
export interface CheckedRecord {
  readonly id: string;
  readonly vector: Float32Array;
  readonly text: string | undefined;
  readonly meta: Meta | undefined;
  /** `meta` as persisted (JSON text). */
  readonly metaJson: string | undefined;
}

const RECORD_KEYS = new Set(['id', 'vector', 'text', 'meta']);

/**
 * Checks a whole add batch and returns private copies, the last record winning for a repeated id
 * (as if the batch were applied in order). Throws on the first bad record; nothing is kept.
 */
export function checkBatch(records: unknown, dim: number, bounds: VectorBounds | undefined): CheckedRecord[] {
  return readGuarded('INVALID_ARGUMENT', 'records', () => checkRecords(records, dim, bounds));
}

function checkRecords(records: unknown, dim: number, bounds: VectorBounds | undefined): CheckedRecord[] {
  if (!Array.isArray(records)) throw new MemstoreError('INVALID_ARGUMENT', 'add expects an array of records', { field: 'records' });
  const byId = new Map<string, CheckedRecord>();
  for (let i = 0; i < records.length; i++) {
    const r: unknown = records[i];
    const at = `records[${i}]`;
    if (!isPlainObject(r)) throw new MemstoreError('INVALID_ARGUMENT', `${at} must be an object`, { field: at });
    for (const key of Object.keys(r)) {
      if (!RECORD_KEYS.has(key)) throw new MemstoreError('INVALID_ARGUMENT', `${at} has an unknown field ${JSON.stringify(key)} (a record has id, vector, text, meta)`, { field: `${at}.${key}` });
    }
    const id = checkId(r['id'], `${at}.id`);
    const vector = checkVector(r['vector'], dim, bounds, `${at}.vector`);
    const text = checkText(r['text'], `${at}.text`);
    const checked = r['meta'] === undefined ? undefined : checkMeta(r['meta'], `${at}.meta`);
    byId.delete(id);
    byId.set(id, { id, vector, text, meta: checked?.meta, metaJson: checked?.json });
  }
  return [...byId.values()];
}

/** A path a tool is given (exportStore, importStore, checkStore, repairStore): INVALID_ARGUMENT naming `field` unless a non-empty string. */
export function checkPath(v: unknown, field: string): asserts v is string {
  if (typeof v !== 'string' || v.length === 0) throw new MemstoreError('INVALID_ARGUMENT', `${field} must be a non-empty path, got ${v === '' ? 'an empty string' : v === null ? 'null' : typeof v}`, { field });
}
