/**
 * The one error type memstore throws. `code` is stable and meant for programs;
 * the message is for people and may change between versions.
 */
export type MemstoreErrorCode =
  /** `dim` given on reopen differs from the persisted one, or a vector has the wrong length for the store. */
  | 'DIM_MISMATCH'
  /**
   * A vector holds NaN or ±Infinity, is not a Float32Array/number[], or (on 'dot' and 'l2' stores)
   * has magnitudes outside the range the store's float32 arithmetic carries (src/limits.ts).
   */
  | 'INVALID_VECTOR'
  /** An id is not a non-empty, well-formed string of at most MAX_ID_BYTES UTF-8 bytes. */
  | 'INVALID_ID'
  /** What becomes stored data or selects records is of the wrong shape or type, or over its limit: a record, text, metadata value or filter; the memory API's namespace, meta, ttl, at, since or until. */
  | 'INVALID_ARGUMENT'
  /** An option of how a call runs (`open`, `search`, recall's `k` and `minScore`, the LangChain adapter, `useLite`) is unknown (at any depth), of the wrong type, or out of range. */
  | 'INVALID_OPTION'
  /** Reopening with `metric`, `codec`, `pca`, `rescore: true` or `trainSize` contradicting what the store was created with (`field` names it). */
  | 'OPTION_MISMATCH'
  /** The store was closed. */
  | 'CLOSED'
  /** Another live process, or another open of this one (any thread, any path to the directory), holds the directory. */
  | 'LOCKED'
  /** Persisted data failed a consistency check; `file` and `offset` say where, `id` which record when one is known. */
  | 'CORRUPTION'
  /** An operating-system I/O call failed; `cause` holds the system error. */
  | 'IO'
  /** The `embed` function of the memory API threw (its error is the `cause`), or returned other than one vector per text. */
  | 'EMBED'
  /** The runtime lacks what a store needs: WebAssembly (off under `node --jitless`), or the address space its memory reserves (`ulimit -v` below about 10 GiB). */
  | 'UNSUPPORTED';

export interface MemstoreErrorDetails {
  cause?: unknown;
  /** For CORRUPTION: the file that failed its check. */
  file?: string;
  /** For CORRUPTION: byte offset (or record key) of the damage inside `file`. */
  offset?: number | string;
  /** For CORRUPTION of one record: its id. */
  id?: string;
  /** For input and option errors (INVALID_ID, INVALID_ARGUMENT, INVALID_VECTOR, INVALID_OPTION, DIM_MISMATCH, OPTION_MISMATCH): the path of the offending input or option, e.g. `records[2].meta.tags[0]`, `pages.maxPage`. */
  field?: string;
}

/** What marks a MemstoreError of any copy of memstore in the process: Symbol.for() is the realm's, not the module's. */
const BRAND = Symbol.for('memstore.MemstoreError');

export class MemstoreError extends Error {
  /**
   * `e instanceof MemstoreError` is true of the errors of every copy of memstore loaded in the
   * process (a nested node_modules, a plugin with its own), each with its own class: a catch block
   * written against one copy had let another copy's LOCKED through as an unknown error.
   */
  static override [Symbol.hasInstance](v: unknown): boolean {
    // A subclass of a user's keeps the ordinary test: every memstore error had been an instance of it.
    if (this !== MemstoreError) return Function.prototype[Symbol.hasInstance].call(this, v);
    return typeof v === 'object' && v !== null && (v as { [BRAND]?: unknown })[BRAND] === true;
  }

  override readonly name = 'MemstoreError';
  readonly code: MemstoreErrorCode;
  readonly file: string | undefined;
  readonly offset: number | string | undefined;
  readonly id: string | undefined;
  readonly field: string | undefined;

  constructor(code: MemstoreErrorCode, message: string, details: MemstoreErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.file = details.file;
    this.offset = details.offset;
    this.id = details.id;
    this.field = details.field;
  }
}

Object.defineProperty(MemstoreError.prototype, BRAND, { value: true });

export function isMemstoreError(e: unknown, code?: MemstoreErrorCode): e is MemstoreError {
  return e instanceof MemstoreError && (code === undefined || e.code === code);
}
