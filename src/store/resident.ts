import { readFileSync, realpathSync } from 'node:fs';
import { resolve, sep } from 'node:path';

const MAPPING = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s+(.*)$/;
const RSS = /^Rss:\s+(\d+) kB$/;

/** How long a reading of /proc/self/smaps is reused: parsing it costs about a millisecond and 150 KB of garbage. */
export const RESIDENT_SAMPLE_MS = 1000;

/**
 * Bytes of the files under `dir` that are resident in this process's memory maps: what `top`
 * counts as file-backed (shared) RES for them. Of a store's files LMDB's are mapped, and the
 * arena segments searches read through maps (the `mmap` option); the log, and arenas read with
 * positioned reads, sit in the kernel's page cache without belonging to any process. From /proc/self/smaps; undefined where the system has none.
 */
export function residentMappedBytes(dir: string): number | undefined {
  let smaps: string;
  try {
    smaps = readFileSync('/proc/self/smaps', 'utf8');
  } catch {
    return undefined;
  }
  // The kernel names a mapping by its real path: a store opened through a symlink (or a relative
  // path) would otherwise count nothing.
  let real: string;
  try {
    real = realpathSync.native(dir);
  } catch {
    real = resolve(dir);
  }
  // And writes a newline in it as the four characters \012 (seq_path's escape), nothing else escaped.
  const prefix = (real + sep).replaceAll('\n', '\\012');
  let inside = false;
  let kb = 0;
  for (const line of smaps.split('\n')) {
    const mapping = MAPPING.exec(line);
    if (mapping !== null) {
      inside = mapping[1]!.startsWith(prefix);
      continue;
    }
    if (!inside) continue;
    const rss = RSS.exec(line);
    if (rss !== null) kb += Number(rss[1]);
  }
  return kb * 1024;
}

/**
 * residentMappedBytes(dir), read at most once per RESIDENT_SAMPLE_MS: stats() stays cheap for
 * callers that ask for it after every search.
 */
export class ResidentSampler {
  private value: number | undefined;
  private at = -Infinity;

  constructor(private readonly dir: string) {}

  bytes(now = performance.now()): number | undefined {
    if (now - this.at >= RESIDENT_SAMPLE_MS) {
      this.value = residentMappedBytes(this.dir);
      this.at = now;
    }
    return this.value;
  }
}
