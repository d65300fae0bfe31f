import { readFileSync } from 'node:fs';
import { resolve, sep } from 'node:path';

const MAPPING = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s+(.*)$/;
const RSS = /^Rss:\s+(\d+) kB$/;

/**
 * Bytes of the files under `dir` that are resident in this process's memory maps: what `top`
 * counts as file-backed (shared) RES for them. Of a store's files only LMDB's are mapped; the log
 * and the arenas are read with positioned reads, so their pages sit in the kernel's page cache
 * without belonging to any process. From /proc/self/smaps (about a millisecond); undefined where
 * the system has none.
 */
export function residentMappedBytes(dir: string): number | undefined {
  let smaps: string;
  try {
    smaps = readFileSync('/proc/self/smaps', 'utf8');
  } catch {
    return undefined;
  }
  const prefix = resolve(dir) + sep;
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
