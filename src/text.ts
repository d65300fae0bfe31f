/**
 * Strings cross into UTF-8 at every file boundary (ids are state keys, texts go to the arena,
 * metadata is JSON text). A lone surrogate has no UTF-8 form: the encoder would silently write
 * U+FFFD, so two different ids could land on one key and a text would not read back as written.
 * Such strings are refused where they enter.
 */

interface WellFormedString {
  isWellFormed(): boolean;
}

/** No lone surrogates: the string has an exact UTF-8 form. (Node 20 has String.prototype.isWellFormed; the ES2022 lib does not declare it.) */
export function isWellFormed(s: string): boolean {
  return (s as unknown as WellFormedString).isWellFormed();
}

/** Bytes of `s` in UTF-8. */
export function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}
