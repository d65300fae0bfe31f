import { createRequire } from 'node:module';

/**
 * Read-only memory maps of whole files, through the small native addon in `native/mmap.c`, when it
 * is built (the install and `npm run build` build it where a C compiler is at hand): Node has no mmap
 * in its core. The vector arena reads full-precision vectors through them (src/arena/ARENA.md,
 * "Reads through a memory map"); without the addon it reads with positioned reads, as before.
 */
export interface MappedFile {
  /** The file's bytes as of when it was mapped; empty once unmapped. */
  readonly bytes: Uint8Array;
  /** Unmaps now (idempotent); `bytes` is detached and reads nothing after. */
  unmap(): void;
}

interface Addon {
  map(fd: number): { buffer: ArrayBuffer; region: unknown } | null;
  unmap(region: unknown, buffer: ArrayBuffer): void;
}

const addon = load();

function load(): Addon | undefined {
  try {
    const a = createRequire(import.meta.url)('../../native/build/Release/memstore_mmap.node') as Partial<Addon>;
    return typeof a.map === 'function' && typeof a.unmap === 'function' ? (a as Addon) : undefined;
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
 * file or without the addon. Throws the platform's error (with its `code`) when mapping fails.
 */
export function mapFile(fd: number): MappedFile | undefined {
  if (addon === undefined) return undefined;
  const m = addon.map(fd);
  if (m === null) return undefined;
  const { buffer, region } = m;
  let bytes = new Uint8Array(buffer);
  return {
    get bytes() {
      return bytes;
    },
    unmap() {
      if (bytes.length === 0) return;
      bytes = new Uint8Array(0);
      addon.unmap(region, buffer);
    },
  };
}
