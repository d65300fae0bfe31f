import { emitWarning } from 'node:process';
import type { Wal } from '../../wal/wal.js';
import type { BlobArena, BlobRef } from '../arena/arena.js';
import { MemstoreError } from '../errors.js';
import type { VectorIndex } from '../index/vector-index.js';
import type { StoredRecord, VectorPlace } from '../scan/code-blocks.js';
import type { VectorSpace } from '../space/vector-space.js';
import type { ChangedRecords } from './changed-records.js';
import type { ColumnCheckpoints, ColumnsPlan } from './column-checkpoint.js';
import type { CommitPipeline } from './commit-pipeline.js';
import type { Damage } from './damage.js';
import { arenaSegmentPath, type ArenaSpace } from './files.js';
import { frameSize } from '../arena/format.js';
import { BLOCK_DELTA, BLOCK_SNAPSHOT, BlockWriter, indexDigest, recordFlags, type IndexFile } from './index-file.js';
import type { Mutation } from './mutations.js';
import { asMemstoreError } from './record-errors.js';
import type { RecordReads } from './record-reads.js';
import { hasDoc, withColumns, type Checkpoint, type DocRecord, type StateStore } from './state.js';

/** Writes wait for a running checkpoint once the log since the last one reaches this many times `checkpointBytes`. */
const STALL_CHECKPOINTS = 2;

/** A GC of an arena starts once its garbage outweighs its live bytes and passes this many bytes. */
const ARENA_GC_MIN_GARBAGE = 16 << 20;

/**
 * A checkpoint writes a new index generation (one snapshot) instead of a delta once the deltas would
 * outweigh the snapshot and pass this many bytes. Settable by tests.
 */
export const indexRewrite = { minDeltaBytes: 1 << 20 };

function worthCollecting(arena: BlobArena): boolean {
  const s = arena.stats();
  return s.garbageBytes > Math.max(s.liveBytes, ARENA_GC_MIN_GARBAGE);
}

/** What a checkpoint reads and writes, handed in by the store that owns it. */
export interface CheckpointEnv {
  readonly dir: string;
  /** Log bytes applied since the last checkpoint that start one in the background. */
  readonly checkpointBytes: number;
  /** Full-precision vectors are kept once trained. */
  readonly keepFull: boolean;
  readonly wal: Wal;
  readonly state: StateStore;
  readonly arena: BlobArena;
  readonly vectors: BlobArena;
  readonly reads: RecordReads;
  readonly changes: ChangedRecords;
  readonly pipeline: CommitPipeline<Mutation>;
  readonly space: VectorSpace;
  readonly damage: Damage;
  /** The columns part of each checkpoint (the columns file beside the index file). */
  readonly columns: ColumnCheckpoints;
  /** The store's index file (opened by loading the checkpoint). */
  indexFile(): IndexFile;
  /** The store's index now (training replaces it). */
  index(): VectorIndex;
  closed(): boolean;
  /**
   * Whether background checkpoints wait now: while a worker clusters the codes into pages, a
   * checkpoint would record the exact index past the write that set the clustering off, and a crash
   * would then cluster another snapshot at the next open (PAGES.md, "Clustering off the write").
   */
  holdCheckpoints(): boolean;
  /** Sets a record aside as damaged; returns the error `get` will throw for it. */
  markDamaged(id: string, e: unknown): MemstoreError;
  /** The texts moved to a new generation of the text arena: documents kept elsewhere name their old places. */
  textsMoved(): void;
}

/**
 * Checkpoints: everything applied up to an LSN is written to the LMDB state in one transaction,
 * then the log before it is dropped (STATE.md). One runs at a time; a background one starts once
 * `checkpointBytes` of log have been applied, and writes wait for it (backpressure) once the log
 * has grown to STALL_CHECKPOINTS times that. After a background checkpoint, an arena whose
 * garbage dominates is collected into a new generation (ARENA.md).
 */
export class Checkpointer {
  private logBytes = 0;
  private trained = false;
  private relaid = false;
  private run: Promise<void> | undefined;
  /** A background checkpoint and the collection it may start after it, until both are done. */
  private background: Promise<void> | undefined;

  constructor(private readonly env: CheckpointEnv) {}

  /** A logged batch of `bytes` was applied (or replayed); starts a background checkpoint when due. */
  applied(bytes: number): void {
    this.logBytes += bytes;
    if (this.run !== undefined || this.background !== undefined || this.env.closed() || this.env.holdCheckpoints() || this.logBytes < this.env.checkpointBytes) return;
    const background = this.inBackground().finally(() => {
      if (this.background === background) this.background = undefined;
    });
    this.background = background;
  }

  private async inBackground(): Promise<void> {
    try {
      await this.checkpoint();
    } catch (e) {
      emitWarning(new MemstoreError('IO', `background checkpoint of ${this.env.dir} failed; it is retried`, { cause: e }));
      return;
    }
    // After `run` is over, not inside it: a collection waits for the write gate, and compact(),
    // which holds that gate, waits for `run`; with the collection inside `run` each waited for the
    // other forever.
    try {
      await this.collectIfWorth();
    } catch (e) {
      emitWarning(new MemstoreError('IO', `collecting the arenas of ${this.env.dir} after a checkpoint failed; it is retried`, { cause: e }));
    }
  }

  /** Collects an arena whose garbage dominates, with writes held back; a compact() that ran meanwhile may have done it already. */
  private async collectIfWorth(): Promise<void> {
    const { arena, vectors, pipeline } = this.env;
    // Collecting would copy damaged records, which it cannot: that waits for `memstore repair`.
    const due = (space: BlobArena) => this.env.damage.count === 0 && !this.env.closed() && worthCollecting(space);
    if (due(arena)) await pipeline.exclusive(async () => (due(arena) ? this.collectTexts() : undefined));
    if (due(vectors)) await pipeline.exclusive(async () => (due(vectors) ? this.collectVectors() : undefined));
  }

  /** A replayed batch: counted towards the next checkpoint, which opening does not start. */
  replayed(bytes: number): void {
    this.logBytes += bytes;
  }

  /** PCA was fitted and every code changed: the next checkpoint writes them all. */
  trainedNow(): void {
    this.trained = true;
  }

  /** The codes were laid out anew (clustered into pages): the next checkpoint writes every record. */
  relaidNow(): void {
    this.relaid = true;
  }

  /** The running checkpoint while writes must wait for it, else undefined. */
  lagging(): Promise<void> | undefined {
    return this.run !== undefined && this.logBytes >= STALL_CHECKPOINTS * this.env.checkpointBytes ? this.run : undefined;
  }

  /** Settles once no checkpoint runs and no collection started by one (whether they succeeded or not). */
  async idle(): Promise<void> {
    while (this.background !== undefined || this.run !== undefined) {
      await this.background;
      await this.run?.catch(() => undefined);
    }
  }

  /** Writes everything applied so far to the state store and drops the log before it. One at a time. */
  async checkpoint(): Promise<void> {
    while (this.run !== undefined) await this.run.catch(() => undefined);
    const run = this.write();
    this.run = run;
    try {
      await run;
    } finally {
      this.run = undefined;
    }
  }

  /** Every record the index holds, as the index file stores it: a new generation's snapshot (or, with damage, a full delta). */
  private allRecords(kind: typeof BLOCK_SNAPSHOT | typeof BLOCK_DELTA): BlockWriter {
    const index = this.env.index();
    const trained = this.env.space.trained;
    const out = new BlockWriter(kind, trained ? index.codec.codeBytes(index.dim) : 0);
    // By slot, from the index's memory: no lookup and no copy per record (this runs synchronously).
    for (let slot = 0; slot < index.size; slot++) {
      const r = index.recordAt(slot);
      out.addRaw(r.idBytes, flagsOf(r, trained), r.code, r.scale, r.generation, r.segment, r.offset, r.page);
    }
    return out;
  }

  /** A new generation is written when no damage would be dropped from it, and training changed every code or the deltas outweigh the snapshot. */
  private rewriteDue(training: boolean, deltaBytes: number): boolean {
    if (this.env.damage.count > 0) return false;
    const file = this.env.indexFile();
    return training || (file.deltaBytes + deltaBytes > Math.max(file.snapshotBytes, indexRewrite.minDeltaBytes));
  }

  /**
   * Writes the index file's part of a checkpoint (a delta appended, or a new generation) and then
   * the LMDB transaction that commits it; resolves once both are durable. On failure nothing is
   * committed: the appended bytes lie past the committed length, a new generation's file is removed.
   */
  private async commit(
    blocks: readonly Uint8Array[],
    rewrite: boolean,
    base: Omit<Checkpoint, 'indexGeneration' | 'indexBytes'>,
    docs: ReadonlyMap<string, DocRecord | null>,
    extra: { training?: { pca: VectorSpace['pca'] }; movedText?: ReadonlyMap<string, BlobRef> },
    columnsPlan: ColumnsPlan,
    hints: Pick<Checkpoint, 'records' | 'idBytes' | 'paged'> = this.hintsNow(),
  ): Promise<void> {
    const { state, columns } = this.env;
    const indexFile = this.env.indexFile();
    const checkpoint = { ...base, ...hints };
    // The columns file is written once the index's part is, stamped with the length the commit names.
    const commitNaming = async (indexGeneration: number, indexBytes: number, digest: number | undefined) => {
      const ref = await columns.write(columnsPlan, { indexGeneration, indexBytes });
      // The digest named anew, or none (an index read leniently over damage): never the one `base` carried.
      const { indexDigest: _d, ...rest } = checkpoint;
      await state.commitCheckpoint({ checkpoint: withColumns({ ...rest, indexGeneration, indexBytes, ...(digest === undefined ? {} : { indexDigest: digest }) }, ref), docs, ...extra });
    };
    if (rewrite) {
      const generation = indexFile.generation + 1;
      let bytes: number | undefined;
      try {
        bytes = await indexFile.writeGeneration(generation, blocks);
        await commitNaming(generation, bytes, indexDigest(blocks));
      } catch (e) {
        // A failure after the commit (its flush) leaves a state that names the new file: deleting it would lose the index.
        if (bytes !== undefined && this.stateNames(generation, bytes)) await this.adopted(columnsPlan, () => indexFile.adoptGeneration());
        else await this.abandoned(() => indexFile.abandonGeneration());
        throw e;
      }
      await this.adopted(columnsPlan, () => indexFile.adoptGeneration());
      return;
    }
    const length = blocks.length === 0 ? indexFile.committed : await indexFile.append(blocks);
    const before = indexFile.digest;
    const digest = before === undefined ? undefined : indexDigest(blocks, before);
    try {
      await commitNaming(indexFile.generation, length, digest);
    } catch (e) {
      // As above: once the state names the new length, the next append must not cut it back.
      if (this.stateNames(indexFile.generation, length)) await this.adopted(columnsPlan, async () => indexFile.commitAppend(length, digest));
      else await this.abandoned(async () => undefined);
      throw e;
    }
    await this.adopted(columnsPlan, async () => indexFile.commitAppend(length, digest));
  }

  /** The commit landed: the index file and the columns file it names become current. */
  private async adopted(plan: ColumnsPlan, index: () => Promise<void>): Promise<void> {
    await index();
    await this.env.columns.adopt(plan);
  }

  /** The commit did not land: what was written for it goes. */
  private async abandoned(index: () => Promise<void>): Promise<void> {
    await index();
    await this.env.columns.abandon();
  }

  /** The columns part of a checkpoint that appends `appended` index records or starts a new generation (INDEX.md, "Filter columns"). */
  private columnsPlan(appended: number, newGeneration: boolean): ColumnsPlan {
    return this.env.columns.plan(this.env.index(), this.env.damage.records.keys(), { appended, newGeneration, closing: this.env.closed() });
  }

  /** The checkpoint's sizing hints and index kind, from the index as it is now. */
  private hintsNow(): Pick<Checkpoint, 'records' | 'idBytes' | 'paged'> {
    const index = this.env.index();
    return { records: index.size, idBytes: index.idBytes, paged: index.paged };
  }

  /** Whether the state's checkpoint names this index generation and length: whether a commit that reported a failure happened. */
  private stateNames(generation: number, bytes: number): boolean {
    try {
      const now = this.env.state.readCheckpoint();
      return now.indexGeneration === generation && now.indexBytes === bytes;
    } catch {
      return false;
    }
  }

  private async write(): Promise<void> {
    const { wal, state, changes, space, arena, vectors, pipeline } = this.env;
    // A log that cannot sync (a failed write it could not cut back) must not be declared covered.
    await wal.sync().catch((e: unknown) => {
      throw asMemstoreError(e, 'syncing the write-ahead log before a checkpoint');
    });
    const lsn = pipeline.appliedLsn;
    const training = this.trained;
    const relaid = this.relaid;
    // Every record is written: PCA changed every code, or the codes were clustered into pages.
    const everything = training || relaid;
    // Pages split or merged with no write (an open with a new maxPage) are a change too: left out,
    // every later open split them again, for as long as the store was only read (a hostile pass).
    if (changes.size === 0 && !everything && !this.env.index().hasRelocated() && lsn === state.readCheckpoint().lsn && !this.env.columns.wanted(this.env.index(), this.env.closed())) return;
    // Everything below up to the first await is synchronous: codes are captured as of `lsn`.
    const index = this.env.index();
    const { changes: snapshot, stale } = changes.take();
    this.trained = false;
    this.relaid = false;
    const bytesCovered = this.logBytes;
    const codeBytes = space.trained ? index.codec.codeBytes(index.dim) : 0;
    const docs = new Map<string, DocRecord | null>();
    const delta = new BlockWriter(BLOCK_DELTA, codeBytes);
    for (const [id, e] of snapshot) {
      // A document to put, or one to delete; a record that never had one costs the state nothing.
      if (e !== null && hasDoc(e.doc)) docs.set(id, e.doc);
      else if (stale.has(id)) docs.set(id, null);
      if (everything) continue;
      if (e === null) {
        delta.add({ id, deleted: true });
        continue;
      }
      const slot = space.trained ? index.slotOf(id) : undefined;
      // Untrained, or set aside as damaged since: no code.
      if (slot === undefined) {
        delta.add({ id, code: undefined, place: e.place, documented: hasDoc(e.doc) });
        continue;
      }
      // The code straight from the index's memory: one lookup, no copy.
      const r = index.recordAt(slot);
      const flags = recordFlags(true, e.place !== undefined, hasDoc(e.doc), r.page);
      delta.addRaw(r.idBytes, flags, r.code, r.scale, e.place?.[0] ?? 0, e.place?.[1] ?? 0, e.place?.[2] ?? 0, r.page);
    }
    // Records whose page changed since the last checkpoint and nothing else: as the index holds them.
    const relocated = index.takeRelocated();
    if (!everything) {
      for (const id of relocated) {
        const slot = snapshot.has(id) ? undefined : index.slotOf(id);
        if (slot === undefined) continue;
        const r = index.recordAt(slot);
        delta.addRaw(r.idBytes, flagsOf(r, true), r.code, r.scale, r.generation, r.segment, r.offset, r.page);
      }
    }
    let blocks: Uint8Array[];
    let appended = 0;
    const rewrite = this.rewriteDue(everything, delta.bytes);
    if (rewrite) {
      blocks = this.allRecords(BLOCK_SNAPSHOT).finish();
    } else if (everything) {
      // Every record changed, and damage keeps the old generation: one delta with every record.
      const all = this.allRecords(BLOCK_DELTA);
      for (const [id, e] of snapshot) if (e === null) all.add({ id, deleted: true });
      blocks = all.finish();
      appended = all.records;
    } else {
      blocks = delta.finish();
      appended = delta.records;
    }
    const columnsPlan = this.columnsPlan(appended, rewrite);
    const checkpoint = { lsn, arenaGeneration: arena.stats().generation, vectorGeneration: vectors.stats().generation, textLiveBytes: arena.countedLiveBytes, textEnd: arena.end(), vectorEnd: vectors.end() };
    // As of the records taken above: writes applied while the commit awaits must not change them
    // (a page index loading the file bounds the page numbers it believes by `records`).
    const hints = this.hintsNow();
    try {
      await arena.sync();
      await vectors.sync();
      await this.commit(blocks, rewrite, checkpoint, docs, training ? { training: { pca: space.pca } } : {}, columnsPlan, hints);
    } catch (e) {
      changes.settle(true);
      this.env.index().relocatedAgain(relocated);
      if (training) this.trained = true;
      if (relaid) this.relaid = true;
      throw asMemstoreError(e, 'checkpoint');
    }
    changes.settle(false);
    this.logBytes -= bytesCovered;
    try {
      // A segment can only go once it is not the active one, and all it holds is covered. So the
      // active one is closed here whenever the checkpoint covers some of it: under a steady stream
      // of writes the log never stood still at the checkpoint's LSN, and a segment grew to its
      // 64 MiB whatever checkpointBytes said. What it holds past the LSN goes with the next one.
      if (wal.activeFirstLsn <= lsn) await wal.rotate();
      await wal.removeBefore(lsn + 1);
    } catch (e) {
      throw asMemstoreError(e, 'removing checkpointed log segments');
    }
  }

  /**
   * Generational GC of the text arena: live texts are copied into generation N+1, a checkpoint
   * records the new references and generation atomically, then generation N is deleted. A crash at
   * any step leaves one complete generation that the checkpoint names (ARENA.md). Refused while
   * damaged records exist (their texts cannot be copied): `memstore repair` first.
   */
  async collectTexts(): Promise<void> {
    const { dir, state, changes, arena } = this.env;
    this.env.damage.refuse('collecting the text arena', dir);
    const live: [string, BlobRef][] = [];
    for (const entry of state.iterateDocs()) {
      if (entry.error !== undefined) continue;
      if (entry.value.text !== undefined && !changes.has(entry.id)) live.push([entry.id, entry.value.text]);
    }
    for (const [id, e] of changes.entries()) if (e?.doc.text !== undefined) live.push([id, e.doc.text]);
    const { generation, refs, end } = await arena.collect(live).catch((e: unknown) => this.failedCollect(e, live, 'texts'));
    const moved = new Map<string, BlobRef>();
    // What the state's texts occupy in the new generation: the texts of records changed since the
    // checkpoint are live in memory, but the state does not reference them (the log does).
    let textLiveBytes = 0;
    for (const [id, ref] of refs) {
      if (changes.has(id)) continue;
      moved.set(id, ref);
      textLiveBytes += frameSize(ref[3]);
    }
    try {
      await state.commitCheckpoint({ checkpoint: { ...state.readCheckpoint(), arenaGeneration: generation, textLiveBytes, textEnd: end }, docs: new Map(), movedText: moved });
    } catch (e) {
      // The state still names the old generation: drop the copy, keep appending where we were.
      await arena.abortCollect().catch(() => undefined);
      throw e;
    }
    for (const [id, ref] of refs) changes.movedText(id, ref);
    this.env.textsMoved();
    await arena.finishCollect(generation);
  }

  /**
   * Generational GC of the vector arena, as collectTexts() for texts: the live vectors (every place
   * the index holds) are copied into generation N+1, one checkpoint transaction records their new
   * places and the generation, then generation N is deleted. Places of records changed since the
   * last checkpoint move in memory only (the log replays them after a crash).
   */
  async collectVectors(): Promise<void> {
    const { dir, state, changes, vectors, reads } = this.env;
    this.env.damage.refuse('collecting the vector arena', dir);
    const index = this.env.index();
    const live: [string, BlobRef][] = [];
    for (const id of index.allIds()) {
      const place = index.placeOf(id);
      if (place !== undefined) live.push([id, reads.vectorRef(place)]);
    }
    const { generation, refs, end } = await vectors.collect(live).catch((e: unknown) => this.failedCollect(e, live, 'vectors'));
    // The moved places of records unchanged since the checkpoint go to the index file as one delta
    // (records changed since are in the log, which replays them after a crash).
    const trained = this.env.space.trained;
    const delta = new BlockWriter(BLOCK_DELTA, trained ? index.codec.codeBytes(index.dim) : 0);
    for (const [id, ref] of refs) {
      if (changes.has(id)) continue;
      // The page of now, which may be newer than the checkpoint: a page only places a code, never changes one.
      const slot = trained ? index.slotOf(id) : undefined;
      delta.add({ id, code: trained ? index.code(id) : undefined, place: [ref[0], ref[1], ref[2]], documented: index.documented(id), page: slot === undefined ? -1 : index.recordAt(slot).page });
    }
    try {
      const { indexGeneration: _g, indexBytes: _b, ...checkpoint } = state.readCheckpoint();
      await this.commit(delta.finish(), false, { ...checkpoint, vectorGeneration: generation, vectorEnd: end }, new Map(), {}, this.columnsPlan(delta.records, false));
    } catch (e) {
      await vectors.abortCollect().catch(() => undefined);
      throw e;
    }
    const now = this.env.index();
    for (const [id, ref] of refs) {
      const place: VectorPlace = [ref[0], ref[1], ref[2]];
      if (now.has(id)) now.setPlace(id, place);
      changes.movedVector(id, place);
    }
    await vectors.finishCollect(generation);
  }

  /**
   * Writes the index as a new generation, one snapshot of every record the index holds, and commits
   * it. For compaction, which holds the write gate after a checkpoint, so that memory is the state.
   */
  async rewriteIndex(): Promise<void> {
    this.env.damage.refuse('rewriting the index file', this.env.dir);
    const { indexGeneration: _g, indexBytes: _b, ...checkpoint } = this.env.state.readCheckpoint();
    // Every record goes with its page: none is left to write again.
    const relocated = this.env.index().takeRelocated();
    try {
      await this.commit(this.allRecords(BLOCK_SNAPSHOT).finish(), true, checkpoint, new Map(), {}, this.columnsPlan(0, true));
    } catch (e) {
      this.env.index().relocatedAgain(relocated);
      throw e;
    }
  }

  /**
   * A collection that failed: a damaged blob no read had met yet is named by its record, which is
   * set aside (the arena stays as it was); anything else is an I/O failure.
   */
  private failedCollect(e: unknown, live: readonly [string, BlobRef][], space: ArenaSpace): never {
    const hit = e instanceof MemstoreError && e.code === 'CORRUPTION' ? live.find(([, ref]) => arenaSegmentPath(this.env.dir, ref[0], ref[1], space) === e.file && ref[2] === e.offset) : undefined;
    if (hit !== undefined) throw this.env.markDamaged(hit[0], e);
    throw asMemstoreError(e, space === 'texts' ? 'collecting the text arena' : 'collecting the vector arena');
  }
}

/** The flags of a record the index holds, as the index file writes it (`coded`: it has a code). */
function flagsOf(r: StoredRecord, coded: boolean): number {
  return recordFlags(coded, r.segment !== 0, r.documented, coded ? r.page : -1);
}
