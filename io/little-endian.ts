/**
 * Unsigned 32-bit little-endian fields of the on-disk formats (log fragments, arena frames).
 * Byte by byte rather than through a DataView, so that they work on any Uint8Array at any offset
 * without making a view of its buffer on every call.
 */

export function writeU32(out: Uint8Array, at: number, value: number): void {
  out[at] = value & 0xff;
  out[at + 1] = (value >>> 8) & 0xff;
  out[at + 2] = (value >>> 16) & 0xff;
  out[at + 3] = value >>> 24;
}

export function readU32(buf: Uint8Array, at: number): number {
  return (buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16) | (buf[at + 3]! << 24)) >>> 0;
}
