/**
 * The one error type the WAL rejects with. `code` is stable and meant for programs (the store maps
 * it onto its own error type); the message is for people.
 */
export type WalErrorCode =
  /** Persisted log bytes failed a check that a crash cannot explain; `file` and `offset` say where. */
  | 'CORRUPTION'
  /** A file-layer call failed (write, fsync, truncate, ...); `cause` holds the system error. */
  | 'IO'
  /** The log was closed. */
  | 'CLOSED';

export interface WalErrorDetails {
  cause?: unknown;
  /** The segment file the error is about. */
  file?: string;
  /** Byte offset inside `file` (for CORRUPTION: where the damage starts). */
  offset?: number;
}

export class WalError extends Error {
  override readonly name = 'WalError';
  readonly code: WalErrorCode;
  readonly file: string | undefined;
  readonly offset: number | undefined;

  constructor(code: WalErrorCode, message: string, details: WalErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.file = details.file;
    this.offset = details.offset;
  }
}

export function isWalError(e: unknown, code?: WalErrorCode): e is WalError {
  return e instanceof WalError && (code === undefined || e.code === code);
}

/** Wraps a file-layer failure; a WalError passes through unchanged so its code survives. */
export function ioError(what: string, cause: unknown, file?: string): WalError {
  if (cause instanceof WalError) return cause;
  const code = typeof cause === 'object' && cause !== null && 'code' in cause ? ` (${String(cause.code)})` : '';
  return new WalError('IO', `WAL ${what} failed${code}`, file === undefined ? { cause } : { cause, file });
}
