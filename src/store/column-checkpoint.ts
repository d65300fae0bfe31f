import { join } from 'node:path';
import type { FileLayer } from '../../io/file-layer.js';
import { ensureDurableDir } from '../../io/file-layer.js';
import { UNKNOWN, type FilterColumns } from '../filter/columns.js';
import type { VectorIndex } from '../index/vector-index.js';
import { columnsDigest, encodeColumns, idHash, type ColumnsImage, type ColumnsStamp } from './column-file.js';
import { columnsFilePath, indexDir, parseColumnsFileName } from './files.js';
import type { ColumnsRef } from './state.js';

/**
 * Records written to the index file since the columns file's stamp, as a share of the records,
 * past which a background checkpoint writes the columns again: opening sets the slots of those
 * records to UNKNOWN, and the first filter on a field reads their metadata (INDEX.md).
 */
const STALE_SHARE = 8;

const utf8 = new TextEncoder();

/** What one checkpoint does with the columns file. */
export type ColumnsPlan =
  | { readonly kind: 'none' }
  | { readonly kind: 'keep'; readonly ref: ColumnsRef; readonly stale: number }
  | { readonly kind: 'write'; readonly image: ColumnsImage; readonly owner: FilterColumns; readonly made: number };

/** What opening found: the file the checkpoint names and how far the index file went past its stamp. */
export interface ColumnsAtOpen {
  readonly ref: ColumnsRef | undefined;
  readonly owner: FilterColumns;
  /** Index records (upserts) past the stamp: records whose columns opening could not vouch for. */
  readonly stale: number;
  /** The file could not be read whole, or some of its columns were refused: the next checkpoint writes them again. */
  readonly redo: boolean;
}

/**
 * The columns part of checkpoints (INDEX.md, "Filter columns"): a checkpoint either keeps the
 * committed columns file (the index records it appends after the file's stamp are what opening
 * cannot vouch for), writes a new one from the columns in memory (its number one more than the
 * last), or names none. Like an index generation, a new file is written and fsynced before the LMDB
 * commit that names it, and the old one deleted after it: until the commit no state names it, and
 * opening deletes it.
 */
export class ColumnCheckpoints {
  private committed: ColumnsRef | undefined;
  /** The columns the committed file was written from, or restored into, and how many had been made then. */
  private owner: FilterColumns | undefined;
  private madeThen = 0;
  private stale = 0;
  private redo = false;
  /** A file written for a checkpoint not committed yet. */
  private written: { ref: ColumnsRef; plan: ColumnsPlan } | undefined;
  private highest = 0;

  constructor(
    private readonly files: FileLayer,
    private readonly dir: string,
  ) {}

  /** Opening read the checkpoint: the committed file, the columns restored from it, what it could not vouch for. */
  opened(o: ColumnsAtOpen): void {
    this.committed = o.ref;
    this.owner = o.owner;
    this.madeThen = o.owner.made;
    this.stale = o.stale;
    this.redo = o.redo;
    this.highest = Math.max(this.highest, o.ref?.file ?? 0);
  }

  /** Bytes of the committed columns file (0 when there is none): stats().diskBytes counts them. */
  get committedBytes(): number {
    return this.committed?.bytes ?? 0;
  }

  /** Whether the columns in memory hold what the committed file does not (a column made since, or an index made anew). */
  due(index: VectorIndex): boolean {
    const columns = index.columns;
    if (columns.fields === 0) return false;
    return this.committed === undefined || this.redo || columns !== this.owner || columns.made !== this.madeThen;
  }

  /** Whether a checkpoint is worth taking for the columns alone: they hold what the file does not, or close() leaves records the file cannot vouch for. */
  wanted(index: VectorIndex, closing: boolean): boolean {
    return this.due(index) || (closing && this.stale > 0 && index.columns.fields > 0);
  }

  /**
   * Decides, synchronously with the checkpoint's capture of the index, what it does with the columns:
   * `appended` index records it writes after the committed length, `newGeneration` when it starts
   * one, `closing` for the checkpoint of close() (the next open should find every column whole).
   * A write captures the columns and the ids' hashes now: the writes applied while it awaits are the
   * next checkpoint's. `damaged`: ids set aside in memory, whose records the index file may still
   * hold; they are entries too (UNKNOWN), so that no loaded id can take another's codes by its hash.
   */
  plan(index: VectorIndex, damaged: Iterable<string>, o: { appended: number; newGeneration: boolean; closing: boolean }): ColumnsPlan {
    const columns = index.columns;
    if (columns.fields === 0) return { kind: 'none' };
    const stale = this.stale + o.appended;
    const keep = this.committed !== undefined && !o.newGeneration && !this.due(index) && (stale === 0 || (!o.closing && stale * STALE_SHARE < index.size));
    if (keep) return { kind: 'keep', ref: this.committed!, stale };
    const ids = [...damaged];
    const entries = index.size + ids.length;
    const keys = new Uint32Array(2 * entries);
    for (let slot = 0; slot < index.size; slot++) idHash(index.recordAt(slot).idBytes, keys, 2 * slot);
    ids.forEach((id, i) => idHash(utf8.encode(id), keys, 2 * (index.size + i)));
    const image: ColumnsImage = {
      maxValues: columns.valuesPerField,
      keys,
      columns: columns.exported().map((c) => {
        const codes = new Uint16Array(entries);
        codes.set(c.codes);
        codes.fill(UNKNOWN, index.size);
        return { field: c.field, keys: c.keys, codes };
      }),
    };
    return { kind: 'write', image, owner: columns, made: columns.made };
  }

  /**
   * The file `plan` writes (created, written, fsynced, its directory fsynced), stamped with the index
   * prefix the checkpoint commits; returns what the checkpoint names: the kept file, the new one,
   * or undefined for none.
   */
  async write(plan: ColumnsPlan, stamp: ColumnsStamp): Promise<ColumnsRef | undefined> {
    if (plan.kind === 'none') return undefined;
    if (plan.kind === 'keep') return plan.ref;
    const file = ++this.highest;
    const path = columnsFilePath(this.dir, file);
    // Encoded before the file is opened: an encoding that throws had left its handle open.
    const blocks = encodeColumns(plan.image, stamp);
    const ref: ColumnsRef = { file, bytes: 0, ...stamp, digest: columnsDigest(blocks) };
    await ensureDurableDir(this.files, indexDir(this.dir));
    const handle = await this.files.open(path, 'create');
    this.written = { ref, plan };
    try {
      await handle.truncate(0);
      let at = 0;
      for (const b of blocks) {
        await handle.write(b, at);
        at += b.length;
      }
      await handle.sync();
      this.written.ref = { ...ref, bytes: at };
    } finally {
      await handle.close();
    }
    await this.files.syncDir(indexDir(this.dir));
    return this.written.ref;
  }

  /** The checkpoint naming `plan`'s outcome is committed: it becomes current, and a file it replaced goes. */
  async adopt(plan: ColumnsPlan): Promise<void> {
    const old = this.committed;
    if (plan.kind === 'keep') {
      this.stale = plan.stale;
      return;
    }
    if (plan.kind === 'none') {
      this.committed = undefined;
    } else {
      this.committed = this.written?.ref;
      this.owner = plan.owner;
      this.madeThen = plan.made;
      this.stale = 0;
      this.redo = false;
    }
    this.written = undefined;
    // Opening deletes it too, should this fail or the process die first.
    if (old !== undefined && old.file !== this.committed?.file) await this.files.remove(columnsFilePath(this.dir, old.file)).catch(() => undefined);
  }

  /** The checkpoint was not committed: a file written for it goes, the committed one stays. */
  async abandon(): Promise<void> {
    const written = this.written;
    this.written = undefined;
    if (written !== undefined) await this.files.remove(columnsFilePath(this.dir, written.ref.file)).catch(() => undefined);
  }

  /** The highest number of a columns file in `dir`'s index directory (0: none): new files go above it. */
  static async highestFound(files: FileLayer, dir: string): Promise<number> {
    const where = indexDir(dir);
    if (!(await files.exists(where))) return 0;
    let highest = 0;
    for (const name of await files.list(where)) highest = Math.max(highest, parseColumnsFileName(name) ?? 0);
    return highest;
  }

  /**
   * Deletes every columns file but the one `keep` names (none: all of them), durably; opening calls
   * it once the whole state is found sound (a state file older than the files names another).
   */
  static async removeOthers(files: FileLayer, dir: string, keep: number | undefined): Promise<void> {
    const where = indexDir(dir);
    if (!(await files.exists(where))) return;
    let removed = false;
    for (const name of await files.list(where)) {
      const n = parseColumnsFileName(name);
      if (n === undefined || n === keep) continue;
      await files.remove(join(where, name));
      removed = true;
    }
    if (removed) await files.syncDir(where);
  }

  /** Numbers at or below `n` are taken (files opening found, possibly left by a crash): new files go above. */
  skipPast(n: number): void {
    this.highest = Math.max(this.highest, n);
  }
}
