import type { StudyRow } from './study.js';

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
  return Math.round(Number(m[1]) * mult);
}

function human(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[u]}`;
}

export interface Recommendation {
  readonly row: StudyRow | undefined;
  readonly text: string;
}

/**
 * The memstore configuration with the best recall whose projected RAM, count x bytes per vector as
 * measured, fits the budget. Disk is projected the same way and shown, not constrained.
 */
export function recommend(rows: readonly StudyRow[], budgetBytes: number, count: number, k: number): Recommendation {
  const fits = rows
    .filter((r) => r.kind === 'memstore' && count * r.bytesPerVector <= budgetBytes)
    .sort((a, b) => b.recall10 - a.recall10 || a.bytesPerVector - b.bytesPerVector || a.p50Us - b.p50Us);
  const best = fits[0];
  const lines = [
    `Budget ${human(budgetBytes)} of RAM for ${count.toLocaleString('en-US')} vectors: at most ${(budgetBytes / count).toFixed(1)} B per vector.`,
    'Projected RAM = count x (code bytes + scale + id overhead), each as measured on this data:',
  ];
  if (best === undefined) {
    const smallest = [...rows].filter((r) => r.kind === 'memstore').sort((a, b) => a.bytesPerVector - b.bytesPerVector)[0];
    lines.push(`No configuration fits. The smallest, ${smallest?.label ?? 'none'}, needs ${smallest === undefined ? '?' : human(count * smallest.bytesPerVector)}.`);
    return { row: undefined, text: lines.join('\n') };
  }
  const id = best.bytesPerVector - best.codeBytesPerVector;
  lines.push(
    `  ${count.toLocaleString('en-US')} x (${best.codeBytesPerVector.toFixed(0)} B code+scale [${best.storedDim} dims] + ${id.toFixed(0)} B id) ` +
      `= ${human(count * best.bytesPerVector)} RAM`,
    `  disk: ${count.toLocaleString('en-US')} x ${best.diskBytesPerVector.toFixed(0)} B = ${human(count * best.diskBytesPerVector)}`,
    `Recommended: ${best.label}: recall@${k} ${best.recall10.toFixed(4)}, p50 ${best.p50Us.toFixed(0)} µs on this data set.`,
  );
  const runnerUp = fits.find((r) => r.bytesPerVector < best.bytesPerVector && r.recall10 < best.recall10);
  if (runnerUp !== undefined) {
    lines.push(`Next smaller that fits: ${runnerUp.label} (${human(count * runnerUp.bytesPerVector)}, recall@${k} ${runnerUp.recall10.toFixed(4)}).`);
  }
  return { row: best, text: lines.join('\n') };
}
