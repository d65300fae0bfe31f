/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of iSCSI, ext4 and LevelDB.
 *
 * Slicing-by-8: eight 256-entry tables let the loop fold eight input bytes per step. Measured on
 * Node 20 (x64, 2 cores): 1.5 GB/s against 0.35 GB/s for the one-table byte loop (a 2.5 KB record:
 * 1.7 µs instead of 7.7 µs). Loading the input as aligned 32-bit words gained under 10%, not worth
 * the alignment prologue and the endianness assumption.
 */

import { createRequire } from 'node:module';

const POLY = 0x82f63b78;

/** Table t (0..7) at [t * 256, t * 256 + 256): the CRC of byte i followed by t zero bytes. */
const TABLE = buildTable();

function buildTable(): Uint32Array {
  const table = new Uint32Array(256 * 8);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    table[i] = c >>> 0;
  }
  for (let i = 0; i < 256; i++) {
    let c = table[i]!;
    for (let t = 1; t < 8; t++) {
      c = table[c & 0xff]! ^ (c >>> 8);
      table[t * 256 + i] = c >>> 0;
    }
  }
  return table;
}

/**
 * The hardware CRC-32C (SSE 4.2 / ARMv8 instructions) of the optional `@node-rs/crc32`, when its
 * prebuilt binary installed for this platform. Measured on Node 20 (x64): 0.51 µs for 2,056 bytes
 * (a 512-d vector's frame) against 1.59 µs for the table below, but 0.12 µs against 0.02 µs for 16
 * bytes (the call into native code costs about 0.1 µs): it takes inputs from NATIVE_FROM bytes.
 */
const native = loadNative();
const NATIVE_FROM = 256;

function loadNative(): ((input: Uint8Array, initialState?: number) => number) | undefined {
  try {
    const mod = createRequire(import.meta.url)('@node-rs/crc32') as { crc32c?: unknown };
    const f = mod.crc32c;
    if (typeof f !== 'function') return undefined;
    const fn = f as (input: Uint8Array, initialState?: number) => number;
    // Trust it only if it agrees with the table on a known input.
    const probe = new Uint8Array(300).map((_, i) => (i * 31) & 0xff);
    return fn(probe.subarray(100), tableCrc(probe, 0, 100, 0)) === tableCrc(probe, 0, 300, 0) ? fn : undefined;
  } catch {
    return undefined;
  }
}

/**
 * CRC-32C of `data[start, end)`, continuing from `crc` (the result of a previous call over the
 * bytes before it, or 0 to start), so a checksum can be built over non-contiguous pieces.
 */
export function crc32c(data: Uint8Array, start = 0, end = data.length, crc = 0): number {
  if (native !== undefined && end - start >= NATIVE_FROM) return native(data.subarray(start, end), crc) >>> 0;
  return tableCrc(data, start, end, crc);
}

function tableCrc(data: Uint8Array, start: number, end: number, crc: number): number {
  const t = TABLE;
  let c = ~crc;
  let i = start;
  for (const last8 = end - 7; i < last8; i += 8) {
    c ^= data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    c =
      t[1792 + (c & 0xff)]! ^
      t[1536 + ((c >>> 8) & 0xff)]! ^
      t[1280 + ((c >>> 16) & 0xff)]! ^
      t[1024 + (c >>> 24)]! ^
      t[768 + data[i + 4]!]! ^
      t[512 + data[i + 5]!]! ^
      t[256 + data[i + 6]!]! ^
      t[data[i + 7]!]!;
  }
  for (; i < end; i++) c = t[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

const MASK_DELTA = 0xa282ead8;

/**
 * LevelDB's masking: the CRC of a string that itself contains CRCs is poorly distributed (a record
 * whose payload embeds a whole valid record would check at two offsets), so what is stored is a
 * rotated CRC plus a constant.
 */
export function maskCrc(crc: number): number {
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + MASK_DELTA) >>> 0;
}

export function unmaskCrc(masked: number): number {
  const rot = (masked - MASK_DELTA) >>> 0;
  return ((rot >>> 17) | (rot << 15)) >>> 0;
}
