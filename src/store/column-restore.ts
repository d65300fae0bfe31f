import type { FileLayer } from '../../io/file-layer.js';
import { UNKNOWN } from '../filter/columns.js';
import type { VectorIndex } from '../index/vector-index.js';
import { ColumnCheckpoints, type ColumnsAtOpen } from './column-checkpoint.js';
import { idHash, readColumnsFile, type ColumnsDamage, type ColumnsHead } from './column-file.js';
import { columnsFilePath } from './files.js';
import { columnsRefOf, type Checkpoint, type ColumnsRef } from './state.js';

/** The columns file a checkpoint names, when it describes a prefix of the index file that checkpoint names (else it is ignored). */
export function usableColumns(checkpoint: Checkpoint): ColumnsRef | undefined {
  const ref = columnsRefOf(checkpoint);
  return ref !== undefined && ref.indexGeneration === checkpoint.indexGeneration && ref.indexBytes <= checkpoint.indexBytes ? ref : undefined;
}

/**
 * Entries of a columns file by their ids' hashes: open addressing over the two words. An entry whose
 * hash another entry shares is ambiguous, and matches no id.
 */
class EntryTable {
  private readonly table: Int32Array;
  private readonly mask: number;
  readonly ambiguous: Uint8Array;

  constructor(
    private readonly keys: Uint32Array,
    entries: number,
  ) {
    let capacity = 16;
    while (capacity < 2 * entries) capacity *= 2;
    this.table = new Int32Array(capacity).fill(-1);
    this.mask = capacity - 1;
    this.ambiguous = new Uint8Array(entries);
  }

  add(entry: number): void {
    const h1 = this.keys[2 * entry]!;
    const h2 = this.keys[2 * entry + 1]!;
    for (let at = (h1 ^ Math.imul(h2, 0x9e3779b1)) & this.mask; ; at = (at + 1) & this.mask) {
      const e = this.table[at]!;
      if (e < 0) {
        this.table[at] = entry;
        return;
      }
      if (this.keys[2 * e] === h1 && this.keys[2 * e + 1] === h2) {
        this.ambiguous[e] = 1;
        return;
      }
    }
  }

  /** The entry of the id whose hash is (h1, h2); -1 when none has it, -2 when several do. */
  find(h1: number, h2: number): number {
    for (let at = (h1 ^ Math.imul(h2, 0x9e3779b1)) & this.mask; ; at = (at + 1) & this.mask) {
      const e = this.table[at]!;
      if (e < 0) return -1;
      if (this.keys[2 * e] === h1 && this.keys[2 * e + 1] === h2) return this.ambiguous[e] === 1 ? -2 : e;
    }
  }
}

export interface RestoreOptions {
  readonly files: FileLayer;
  readonly dir: string;
  readonly checkpoint: Checkpoint;
  /** Loaded from the checkpoint's index file, before the log is replayed. */
  readonly index: VectorIndex;
  /** Ids the index file upserts at or past the columns file's stamp: changed after it was written. */
  readonly stale: ReadonlySet<string>;
  /** Leave the file alone and read nothing (the index file was read around damage: its records cannot be matched to the file's). */
  readonly skip: boolean;
}

/**
 * Opening's part of the columns (INDEX.md, "Filter columns"): reads the columns file the checkpoint
 * names (the others are deleted by ColumnCheckpoints.removeOthers once the open has succeeded) and restores each column whose blocks all read into the index's
 * columns. Each loaded record takes the codes of the entry its id's hash names; a record changed
 * after the file was written (`stale`), or whose hash several entries share, holds UNKNOWN until a
 * filter first names the field. Reads no document. Damage costs columns, never the open: what
 * cannot be restored is made from metadata on first use, and the next checkpoint writes it again.
 * An I/O failure (not damage) is thrown, as the index file's are. `highest`: the highest columns
 * file number found, which new files go above.
 */
export async function restoreColumns(o: RestoreOptions): Promise<ColumnsAtOpen & { damage: ColumnsDamage | undefined; highest: number }> {
  const { index } = o;
  const columns = index.columns;
  const ref = usableColumns(o.checkpoint);
  const highest = await ColumnCheckpoints.highestFound(o.files, o.dir);
  const none = { ref: undefined, owner: columns, stale: 0, redo: false, damage: undefined, highest };
  if (ref === undefined) return none;
  if (o.skip) return { ...none, ref, redo: true };
  const size = index.size;
  const changed = new Uint8Array(size);
  for (const id of o.stale) {
    const slot = index.slotOf(id);
    if (slot !== undefined) changed[slot] = 1;
  }
  let head: ColumnsHead | undefined;
  let keys = new Uint32Array(0);
  /** Per entry, the slot that takes its codes (-1: none); made once every key is read. */
  let slotOf: Int32Array | undefined;
  let refused = false;
  let redo = false;
  let field: { name: string; keys: readonly string[]; codes: Uint16Array } | undefined;
  const hash = new Uint32Array(2);
  const match = (): Int32Array => {
    const entries = head!.entries;
    const table = new EntryTable(keys, entries);
    for (let e = 0; e < entries; e++) table.add(e);
    const out = new Int32Array(entries).fill(-1);
    for (let slot = 0; slot < size && !refused; slot++) {
      if (changed[slot] === 1) continue;
      idHash(index.recordAt(slot).idBytes, hash, 0);
      const e = table.find(hash[0]!, hash[1]!);
      // Every record unchanged since the file was written is one of its entries: one that is not
      // means the file and the index file disagree, and nothing in it is trusted.
      if (e === -1) refused = true;
      else if (e >= 0) out[e] = slot;
    }
    return out;
  };
  const damage = await readColumnsFile(o.files, columnsFilePath(o.dir, ref.file), ref.bytes, ref, {
    head(h) {
      head = h;
      // Another dictionary room gives the same codes other meanings (its first bucket).
      if (h.maxValues !== columns.valuesPerField) refused = true;
      else keys = new Uint32Array(2 * h.entries);
    },
    keys(first, words) {
      if (!refused) keys.set(words, 2 * first);
    },
    field(name, dictionary) {
      if (refused) return;
      slotOf ??= match();
      field = { name, keys: dictionary, codes: new Uint16Array(size).fill(UNKNOWN) };
    },
    codes(first, codes) {
      if (refused || field === undefined) return;
      for (let i = 0; i < codes.length; i++) {
        const slot = slotOf![first + i]!;
        if (slot >= 0) field.codes[slot] = codes[i]!;
      }
    },
    columnEnd() {
      if (refused || field === undefined) return;
      if (!columns.restore(field.name, field.keys, field.codes)) redo = true;
      field = undefined;
    },
  });
  if (refused) columns.dropColumns();
  return { ref, owner: columns, stale: o.stale.size, redo: redo || refused || damage !== undefined, damage, highest };
}
