import { nodeFileLayer, type FileHandle, type FileLayer, type OpenMode } from '../../io/file-layer.js';
import type { MappedFile } from '../../io/mmap.js';

/** The node file layer, counting positioned reads and keeping every map it makes. */
export class CountingFiles {
  readSyncs = 0;
  readonly maps: MappedFile[] = [];
  /** When set, map() throws it instead of mapping (a platform that refuses the map: ENOMEM, EACCES). */
  mapFailure: Error | undefined;
  /** When set, the maps offer copy() alone (a file layer whose maps cannot checksum as they copy). */
  copyOnly = false;
  /**
   * What the maps' residency() reports: the kernel's answer ('real'), no page resident ('none'), or
   * what a function writes into `out` (a byte per page) for the map's index in `maps`.
   */
  residency: 'real' | 'none' | ((out: Uint8Array, map: number) => void) = 'real';
  /** Calls of residency() on the maps. */
  residencyCalls = 0;
  /** Every prefetch() asked of a map: the map's index in `maps`, the offsets and the bytes at each. */
  readonly prefetches: { map: number; offsets: number[]; bytes: number }[] = [];
  /** Every gather() asked of a map: the map's index in `maps`, the offsets of its frames and the rows they went to. */
  readonly gathers: { map: number; offsets: number[]; rows: number[] }[] = [];
  /** When set, the maps offer no gather() (a file layer whose maps copy a frame at a time). */
  noGather = false;
  readonly layer: FileLayer = {
    ...nodeFileLayer,
    open: async (path: string, mode: OpenMode): Promise<FileHandle> => {
      const inner = await nodeFileLayer.open(path, mode);
      const map = inner.map;
      return {
        read: (buffer, position) => inner.read(buffer, position),
        readSync: (buffer, position) => {
          this.readSyncs++;
          return inner.readSync!(buffer, position);
        },
        ...(map === undefined
          ? {}
          : {
              map: () => {
                if (this.mapFailure !== undefined) throw this.mapFailure;
                const m = map();
                if (m !== undefined) this.maps.push(m);
                if (m === undefined) return m;
                if (!this.copyOnly) {
                  const index = this.maps.length - 1;
                  return {
                    get length() {
                      return m.length;
                    },
                    copy: (offset: number, into: Uint8Array) => m.copy(offset, into),
                    copyChecksummed: (offset: number, into: Uint8Array, from: number, seed: number) => m.copyChecksummed!(offset, into, from, seed),
                    prefetch: (offsets: Float64Array, count: number, bytes: number) => {
                      this.prefetches.push({ map: index, offsets: [...offsets.subarray(0, count)], bytes });
                      m.prefetch!(offsets, count, bytes);
                    },
                    ...(this.noGather
                      ? {}
                      : {
                          gather: (spec: Float64Array, count: number, target: Uint8Array, heads: Uint8Array, sums: Uint32Array) => {
                            const pairs = [...spec.subarray(5, 5 + 2 * count)];
                            this.gathers.push({ map: index, offsets: pairs.filter((_, i) => i % 2 === 0), rows: pairs.filter((_, i) => i % 2 === 1) });
                            m.gather!(spec, count, target, heads, sums);
                          },
                        }),
                    pageBytes: m.pageBytes,
                    residency: (out: Uint8Array) => {
                      this.residencyCalls++;
                      const pages = m.residency!(out);
                      const mode = this.residency;
                      if (mode === 'none') out.fill(0, 0, pages);
                      else if (mode !== 'real') mode(out.subarray(0, pages), index);
                      return pages;
                    },
                    unmap: () => m.unmap(),
                  };
                }
                return {
                  get length() {
                    return m.length;
                  },
                  copy: (offset: number, into: Uint8Array) => m.copy(offset, into),
                  unmap: () => m.unmap(),
                };
              },
            }),
        write: (data, position) => inner.write(data, position),
        sync: () => inner.sync(),
        truncate: (length) => inner.truncate(length),
        size: () => inner.size(),
        close: () => inner.close(),
      };
    },
  };
}

