import type { Meta } from '../../src/meta.js';

/** The records cut-commit-child.ts writes, and what its deletes and upserts leave of them. */
export const CUT_DIM = 8;

export interface CutRecord {
  readonly id: string;
  readonly vector: number[];
  readonly text: string;
  readonly meta: Meta;
}

function record(i: number, text: string): CutRecord {
  return { id: `r${i}`, vector: Array.from({ length: CUT_DIM }, (_, j) => Math.sin(i * 1.7 + j * 0.9) + (j === i % CUT_DIM ? 1 : 0)), text, meta: { i, even: i % 2 === 0 } };
}

export function cutCommitRecords(): CutRecord[] {
  return Array.from({ length: 240 }, (_, i) => record(i, `text ${i} ${'x'.repeat(i % 50)}`));
}

/** Every third record is deleted. */
export function cutCommitRemoved(): string[] {
  return cutCommitRecords().filter((_, i) => i % 3 === 0).map((r) => r.id);
}

/** Every fifth record not deleted gets a new text. */
export function cutCommitReplaced(): CutRecord[] {
  return cutCommitRecords().flatMap((_, i) => (i % 5 === 0 && i % 3 !== 0 ? [record(i, `new ${i}`)] : []));
}

/** id → text of every record the store holds once the child's writes are done. */
export function cutCommitExpected(): Map<string, CutRecord> {
  const out = new Map(cutCommitRecords().map((r) => [r.id, r]));
  for (const id of cutCommitRemoved()) out.delete(id);
  for (const r of cutCommitReplaced()) out.set(r.id, r);
  return out;
}
