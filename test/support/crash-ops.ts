import type { MemStore } from '../../src/index.js';
import { rng } from '../../src/random.js';

/**
 * The deterministic workload of the crash tests: the child process runs it, the parent regenerates
 * the same operations from the same seed to know exactly what each acknowledged operation wrote.
 */
export const CRASH_DIM = 16;
const IDS = 120;
/** The page index of the workload's paged runs: from 40 records on, pages of at most 16 (so splits, merges and relocations are frequent). */
export const CRASH_PAGES = Object.freeze({ from: 40, maxPage: 16 });

export type CrashOp =
  | { kind: 'add'; records: { id: string; vector: number[]; text?: string; meta?: Record<string, unknown> }[] }
  | { kind: 'delete'; ids: string[] }
  | { kind: 'compact' };

/** Operation `index` of the workload with `seed`; the same arguments always give the same operation. */
export function crashOp(seed: number, index: number): CrashOp {
  const next = rng(seed * 1_000_003 + index);
  const roll = next();
  if (roll < 0.04) return { kind: 'compact' };
  if (roll < 0.22) {
    const n = 1 + Math.floor(next() * 6);
    return { kind: 'delete', ids: Array.from({ length: n }, () => `id-${Math.floor(next() * IDS)}`) };
  }
  const n = 1 + Math.floor(next() * (next() < 0.1 ? 200 : 12));
  return {
    kind: 'add',
    records: Array.from({ length: n }, (_, j) => {
      const id = `id-${Math.floor(next() * IDS)}`;
      const vector = Array.from({ length: CRASH_DIM }, () => Math.fround(next() * 2 - 1));
      const rec: { id: string; vector: number[]; text?: string; meta?: Record<string, unknown> } = { id, vector };
      if (next() < 0.8) rec.text = `seed ${seed} op ${index} rec ${j} `.repeat(1 + Math.floor(next() * 60));
      if (next() < 0.7) rec.meta = { op: index, seed, even: j % 2 === 0 };
      return rec;
    }),
  };
}

export interface ModelRecord {
  vector: number[];
  text?: string;
  meta?: Record<string, unknown>;
}

/** Applies `op` to a model of the store (a Map id → record), as MemStore defines the semantics. */
export function applyToModel(model: Map<string, ModelRecord>, op: CrashOp): void {
  if (op.kind === 'delete') {
    for (const id of op.ids) model.delete(id);
  } else if (op.kind === 'add') {
    for (const r of op.records) {
      const rec: ModelRecord = { vector: r.vector };
      if (r.text !== undefined) rec.text = r.text;
      if (r.meta !== undefined) rec.meta = r.meta;
      model.set(r.id, rec);
    }
  }
}

/** Runs `op` on `store`. */
export function runCrashOp(store: MemStore, op: CrashOp): Promise<unknown> {
  if (op.kind === 'add') return store.add(op.records);
  if (op.kind === 'delete') return store.delete(op.ids);
  return store.compact();
}
