import { closeSync, fsyncSync, openSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Every file name a store directory holds comes from here, so that the lock, the state
 * environment and the tools that inspect a directory agree on one layout.
 */
export const FILES = {
  /** Held by the process that has the directory open; holds its pid. */
  lock: 'LOCK',
  /** The LMDB environment holding the last checkpoint (one file plus its `-lock`). */
  state: 'state.mdb',
  /** The write-ahead log's segments (wal/FORMAT.md). */
  wal: 'wal',
  /** The blob arena's segment files (src/arena/ARENA.md). */
  arena: 'arena',
  /**
   * Where `memstore repair` moves a damaged log while it re-applies what it could read from it; only
   * exists during a repair (or after one was interrupted, which the next repair resumes).
   */
  repairLog: 'wal.repair',
  /** Prefix of the reports `memstore repair` writes: `repair-<UTC time>.jsonl`. */
  repairReport: 'repair-',
} as const;

export function lockPath(dir: string): string {
  return join(dir, FILES.lock);
}

export function statePath(dir: string): string {
  return join(dir, FILES.state);
}

export function walDir(dir: string): string {
  return join(dir, FILES.wal);
}

export function repairLogDir(dir: string): string {
  return join(dir, FILES.repairLog);
}

/** `repair-20261129T201500Z.jsonl`: a report's name says when the repair ran. */
export function repairReportPath(dir: string, at: Date): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return join(dir, `${FILES.repairReport}${stamp}.jsonl`);
}

export function arenaDir(dir: string): string {
  return join(dir, FILES.arena);
}

/** Zero-padded so a directory listing sorts like the numbers; wider numbers still parse. */
const ARENA_DIGITS = 6;
const ARENA_SEGMENT = /^arena-(\d{6,})-(\d{6,})\.blob$/;

/** `arena-<generation>-<segment>.blob`, e.g. `arena-000001-000003.blob`. */
export function arenaSegmentName(generation: number, segment: number): string {
  return `arena-${String(generation).padStart(ARENA_DIGITS, '0')}-${String(segment).padStart(ARENA_DIGITS, '0')}.blob`;
}

/** The generation and segment number an arena file name declares, or undefined for any other name. */
export function parseArenaSegmentName(name: string): { generation: number; segment: number } | undefined {
  const match = ARENA_SEGMENT.exec(name);
  if (match === null) return undefined;
  const generation = Number(match[1]);
  const segment = Number(match[2]);
  if (!Number.isSafeInteger(generation) || !Number.isSafeInteger(segment) || segment < 1) return undefined;
  // One file per (generation, segment): a non-canonical spelling such as extra leading zeros is not ours.
  if (arenaSegmentName(generation, segment) !== name) return undefined;
  return { generation, segment };
}

export function arenaSegmentPath(dir: string, generation: number, segment: number): string {
  return join(arenaDir(dir), arenaSegmentName(generation, segment));
}

/** fsync of a directory, so that creates, renames and removes in it survive power loss. */
export function syncDirSync(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export { ensureDurableDir } from '../../wal/file-layer.js';
