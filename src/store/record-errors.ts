import { isWalError } from '../../wal/errors.js';
import { MemstoreError } from '../errors.js';

/** Log and arena errors become MemstoreErrors with the same meaning and the original as cause. */
export function asMemstoreError(e: unknown, what: string): unknown {
  if (e instanceof MemstoreError) return e;
  if (isWalError(e)) return new MemstoreError(e.code, `${what}: ${e.message}`, { cause: e, file: e.file, offset: e.offset });
  // The cause's own words too: the CLI prints the message, and "repairing DIR failed" alone did not say why.
  return new MemstoreError('IO', `${what} failed${e instanceof Error ? `: ${e.message}` : ''}`, { cause: e });
}

/** The CORRUPTION of one record, with its id (a copy of `e` naming it when `e` does not). */
export function recordCorruption(id: string, e: unknown): MemstoreError {
  if (e instanceof MemstoreError && e.code === 'CORRUPTION' && e.id === id) return e;
  const inner = e instanceof MemstoreError ? e : undefined;
  return new MemstoreError('CORRUPTION', `record ${JSON.stringify(id)} is damaged: ${inner?.message ?? String(e)}`, {
    cause: e,
    id,
    ...(inner?.file === undefined ? {} : { file: inner.file }),
    ...(inner?.offset === undefined ? {} : { offset: inner.offset }),
  });
}

/** The id of a record-level CORRUPTION, or undefined for any other error. */
export function damagedId(e: unknown): string | undefined {
  return e instanceof MemstoreError && e.code === 'CORRUPTION' ? e.id : undefined;
}

/** Damage a checksum found (as opposed to an I/O failure, which says nothing about the bytes). */
export function isDamage(e: unknown): boolean {
  return e instanceof MemstoreError && e.code === 'CORRUPTION';
}
