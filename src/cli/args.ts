/** The sizes, counts and PCA lists `memstore bench` takes on its command line. */
import type { PcaOption } from '../options.js';

const UNITS: Record<string, number> = {
  '': 1, b: 1,
  kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12,
  k: 1e3, m: 1e6, g: 1e9, t: 1e12,
  kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
};

/** Parses sizes such as `2GB`, `512MiB`, `1.5g` or `1000000` (decimal units for KB/MB/GB, binary for KiB/MiB/GiB). */
export function parseBytes(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m === null ? undefined : UNITS[m[2]!.toLowerCase()];
  if (m === null || unit === undefined) throw new RangeError(`cannot read "${text}" as a size (e.g. 2GB, 512MiB)`);
  return Number(m[1]) * unit;
}

/** Parses counts such as `5000000`, `5M`, `2.5k`. */
export function parseCount(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kKmMbBgG]?)\s*$/.exec(text);
  if (m === null) throw new RangeError(`cannot read "${text}" as a count (e.g. 5000000, 5M)`);
  const mult = { '': 1, k: 1e3, m: 1e6, b: 1e9, g: 1e9 }[m[2]!.toLowerCase()] ?? 1;
  const n = Math.round(Number(m[1]) * mult);
  // A budget shared among no vectors says nothing (it had printed "Infinity B per vector").
  if (n < 1) throw new RangeError(`a count must be at least 1, got "${text}"`);
  return n;
}

/** The PCA settings `memstore bench` tries unless told (`--pca`). */
export const DEFAULT_PCA_LIST = 'none,50%,25%';

/** Where `memstore bench` writes its outputs unless told (`--out`). */
export const DEFAULT_OUT = 'memstore-bench-results';

/** Neighbours per query `memstore bench` measures unless told (`--k`). */
export const DEFAULT_K = 10;

/** Parses a `--pca` list such as `none,50%,25%` or `none,256,128` into PCA settings for `dim`. */
export function parsePcaList(list: string, dim: number): (PcaOption | undefined)[] {
  const settings = list.split(',').map((raw): { dims: number } | undefined => {
    const s = raw.trim();
    if (s === 'none' || s === '0') return undefined;
    const pct = /^(\d+(?:\.\d+)?)%$/.exec(s);
    // 0% is not "keep a sliver": it had quietly meant one dimension.
    if (pct !== null && !(Number(pct[1]) > 0 && Number(pct[1]) <= 100)) throw new RangeError(`--pca entry "${s}" must be none, N% with N in (0, 100], or an integer in [1, ${dim}]`);
    const dims = pct !== null ? Math.max(1, Math.round((dim * Number(pct[1])) / 100)) : Number(s);
    if (!Number.isInteger(dims) || dims < 1 || dims > dim) throw new RangeError(`--pca entry "${s}" must be none, N% or an integer in [1, ${dim}]`);
    return dims === dim ? undefined : { dims };
  });
  // Each setting once, in the order first named: `none,100%` (or 25%,128 at 512-d) had studied the
  // same configuration twice, as a repeated codec would have (codecs are taken once too).
  const seen = new Set<number | undefined>();
  return settings.filter((p) => {
    if (seen.has(p?.dims)) return false;
    seen.add(p?.dims);
    return true;
  });
}
