import { loadAddon } from './native-addon.js';

/**
 * Read-only memory maps of whole files, through the small native addon in `native/mmap.c`, when it
 * is built (the install and `npm run build` build it where a C compiler is at hand): Node has no mmap
 * in its core. The vector arena reads full-precision vectors through them (src/arena/ARENA.md,
 * "Reads through a memory map"); without the addon it reads with positioned reads, as before.
 */
export interface MappedFile {
  /** Bytes mapped: the file's size when it was mapped; 0 once unmapped. */
  readonly length: number;
  /**
   * Copies `into.length` bytes from `offset` into `into`. Throws (an Error with a `code`) when
   * the range runs past the map (ERANGE) or the map is gone (ECLOSED).
   */
  copy(offset: number, into: Uint8Array): void;
  /**
   * copy(), then the CRC-32C (io/crc32c.ts) of `into[from, end)` continuing from `seed`, in the
   * same call: a frame is checked while its bytes are still in the CPU's first-level cache, with no
   * view made for the checksum. Optional: a file layer's maps may offer copy() alone, and the
   * caller then checks the copy itself.
   */
  copyChecksummed?(offset: number, into: Uint8Array, from: number, seed: number): number;
  /**
   * Asks the CPU to start fetching `bytes` bytes at each of `offsets[0, count)` into its caches and
   * returns at once, so that the copies that follow overlap their cache misses (native/mmap.c).
   * Only a hint: offsets outside the map are skipped, and nothing is read. Optional, as
   * copyChecksummed() is.
   */
  prefetch?(offsets: Float64Array, count: number, bytes: number): void;
  /**
   * Copies and checksums `count` frames of `spec[1]` bytes in one call, prefetched first
   * (native/mmap.c, gather_frames): `spec` is [prefix, frame, head, from, stride, then an offset and
   * a row for each frame]; frame i's first `head` bytes go to `heads[row * head]`, the rest to
   * `target[row * stride]` followed by zeros up to the row's end, and `sums[row]` is the CRC-32C of
   * its bytes from `from` on, continuing the CRC of its offset (8 bytes, little-endian) continuing
   * `prefix`. Throws ERANGE (a frame past the map, a row past an array) or EINVAL before copying
   * anything, ECLOSED once unmapped. Optional, as copyChecksummed() is.
   */
  gather?(spec: Float64Array, count: number, target: Uint8Array, heads: Uint8Array, sums: Uint32Array): void;
  /**
   * Which pages of the map the kernel holds in memory now (mincore): `out[i]` 1 when page i (of
   * `pageBytes` bytes) is resident, 0 when a copy from it would wait for the disk; returns the count of
   * pages. Throws ERANGE when `out` is shorter, ECLOSED once unmapped. Optional: a file layer's maps
   * may not tell.
   */
  residency?(out: Uint8Array): number;
  /** The bytes of a page as residency() counts them; present exactly when residency() is. */
  readonly pageBytes?: number;
  /** Unmaps now (idempotent). */
  unmap(): void;
}

interface Addon {
  map(fd: number): object | null;
  size(region: object): number;
  copy(region: object, offset: number, into: Uint8Array): void;
  copyCrc(region: object, offset: number, into: Uint8Array, from: number, seed: number): number;
  prefetch(region: object, offsets: Float64Array, count: number, bytes: number): void;
  gather(region: object, spec: Float64Array, count: number, target: Uint8Array, heads: Uint8Array, sums: Uint32Array): void;
  residency(region: object, out: Uint8Array): number;
  pageSize(): number;
  unmap(region: object): void;
}

const addon = load();
/** The system's page size, asked once: every map reports it (MappedFile.pageBytes). */
const pageBytes = addon === undefined ? 0 : addon.pageSize();

function load(): Addon | undefined {
  try {
    const a = (loadAddon('memstore_mmap') ?? {}) as Partial<Addon>;
    return typeof a.map === 'function' && typeof a.size === 'function' && typeof a.copy === 'function' && typeof a.copyCrc === 'function' && typeof a.prefetch === 'function' && typeof a.gather === 'function' && typeof a.residency === 'function' && typeof a.pageSize === 'function' && typeof a.unmap === 'function' ? (a as Addon) : undefined;
  } catch {
    return undefined;
  }
}

/** Whether files can be mapped here (the addon loaded). */
export function canMapFiles(): boolean {
  return addon !== undefined;
}

/**
 * The bytes of the open file `fd` as of now, mapped read-only and shared; undefined for an empty
 * file or without the addon. Throws the platform's error (with its `code`) when mapping fails. The
 * bytes are reached through copy() only, never as an ArrayBuffer (native/mmap.c says why).
 */
export function mapFile(fd: number): MappedFile | undefined {
  if (addon === undefined) return undefined;
  const region = addon.map(fd);
  if (region === null) return undefined;
  let length = addon.size(region);
  return {
    get length() {
      return length;
    },
    copy(offset, into) {
      addon.copy(region, offset, into);
    },
    copyChecksummed(offset, into, from, seed) {
      return addon.copyCrc(region, offset, into, from, seed);
    },
    prefetch(offsets, count, bytes) {
      addon.prefetch(region, offsets, count, bytes);
    },
    gather(spec, count, target, heads, sums) {
      addon.gather(region, spec, count, target, heads, sums);
    },
    residency(out) {
      return addon.residency(region, out);
    },
    pageBytes,
    unmap() {
      length = 0;
      addon.unmap(region);
    },
  };
}
