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
  /** A record, text, metadata value or filter is of the wrong shape or type, or over its limit. */
  | 'INVALID_ARGUMENT'
  /** An option of `open` or of `search` is unknown (at any depth), of the wrong type, or out of range. */
  | 'INVALID_OPTION'
  /** Reopening with `metric`, `codec`, `pca` or `rescore` contradicting what the store was created with. */
  | 'OPTION_MISMATCH'
  /** The store was closed. */
  | 'CLOSED'
  /** Another live process holds the directory for writing. */
  | 'LOCKED'
  /** Persisted data failed a consistency check; `file` and `offset` say where, `id` which record when one is known. */
  | 'CORRUPTION'
  /** An operating-system I/O call failed; `cause` holds the system error. */
  | 'IO'
  /** The `embed` function of the memory API threw (its error is the `cause`), or returned other than one vector per text. */
  | 'EMBED';

export interface MemstoreErrorDetails {
  cause?: unknown;
  /** For CORRUPTION: the file that failed its check. */
  file?: string;
  /** For CORRUPTION: byte offset (or record key) of the damage inside `file`. */
  offset?: number | string;
  /** For CORRUPTION of one record: its id. */
  id?: string;
  /** For INVALID_ID, INVALID_ARGUMENT and INVALID_VECTOR: the path of the offending input, e.g. `records[2].meta.tags[0]`. */
  field?: string;
}

export class MemstoreError extends Error {
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

export function isMemstoreError(e: unknown, code?: MemstoreErrorCode): e is MemstoreError {
  return e instanceof MemstoreError && (code === undefined || e.code === code);
}
