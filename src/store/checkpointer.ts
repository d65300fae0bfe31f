import { emitWarning } from 'node:process';
import type { Wal } from '../../wal/wal.js';
import type { BlobArena, BlobRef } from '../arena/arena.js';
import { MemstoreError } from '../errors.js';
import type { VectorIndex } from '../index/vector-index.js';
import type { VectorPlace } from '../scan/code-blocks.js';
import type { VectorSpace } from '../space/vector-space.js';
import type { ChangedRecords } from './changed-records.js';
import type { CommitPipeline } from './commit-pipeline.js';
import type { Damage } from './damage.js';
import { arenaSegmentPath, type ArenaSpace } from './files.js';
import type { Mutation } from './mutations.js';
import { asMemstoreError } from './record-errors.js';
import type { RecordReads } from './record-reads.js';
import type { RecordState, StateStore } from './state.js';

/** Writes wait for a running checkpoint once the log since the last one reaches this many times `checkpointBytes`. */
const STALL_CHECKPOINTS = 2;

/** A GC of an arena starts once its garbage outweighs its live bytes and passes this many bytes. */
const ARENA_GC_MIN_GARBAGE = 16 << 20;

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
  /** The store's index now (training replaces it). */
  index(): VectorIndex;
  closed(): boolean;
  /** Sets a record aside as damaged; returns the error `get` will throw for it. */
  markDamaged(id: string, e: unknown): MemstoreError;
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
  private run: Promise<void> | undefined;

  constructor(private readonly env: CheckpointEnv) {}

  /** A logged batch of `bytes` was applied (or replayed); starts a background checkpoint when due. */
  applied(bytes: number): void {
    this.logBytes += bytes;
    if (this.run !== undefined || this.env.closed() || this.logBytes < this.env.checkpointBytes) return;
    this.checkpoint(true).catch((e: unknown) => emitWarning(new MemstoreError('IO', `background checkpoint of ${this.env.dir} failed; it is retried`, { cause: e })));
  }

  /** A replayed batch: counted towards the next checkpoint, which opening does not start. */
  replayed(bytes: number): void {
    this.logBytes += bytes;
  }

  /** PCA was fitted and every code changed: the next checkpoint writes them all. */
  trainedNow(): void {
    this.trained = true;
  }

  /** The running checkpoint while writes must wait for it, else undefined. */
  lagging(): Promise<void> | undefined {
    return this.run !== undefined && this.logBytes >= STALL_CHECKPOINTS * this.env.checkpointBytes ? this.run : undefined;
  }

  /** Settles once no checkpoint runs (whether it succeeded or not). */
  async idle(): Promise<void> {
    await this.run?.catch(() => undefined);
  }

  /**
   * Writes everything applied so far to the state store and drops the log before it. One at a
   * time. `collectGarbage` lets it collect an arena afterwards when garbage dominates; callers
   * that already hold the write gate (compact) pass false, since collecting needs the gate too.
   */
  async checkpoint(collectGarbage = false): Promise<void> {
    while (this.run !== undefined) await this.run.catch(() => undefined);
    const run = this.write(collectGarbage);
    this.run = run;
    try {
      await run;
    } finally {
      this.run = undefined;
    }
  }

  private async write(collectGarbage: boolean): Promise<void> {
    const { wal, state, changes, space, arena, vectors, pipeline } = this.env;
    // A log that cannot sync (a failed write it could not cut back) must not be declared covered.
    await wal.sync().catch((e: unknown) => {
      throw asMemstoreError(e, 'syncing the write-ahead log before a checkpoint');
    });
    const lsn = pipeline.appliedLsn;
    const training = this.trained;
    if (changes.size === 0 && !training && lsn === state.readCheckpoint().lsn) return;
    // Everything below up to the first await is synchronous: codes are captured as of `lsn`.
    const index = this.env.index();
    const snapshot = changes.take();
    this.trained = false;
    const bytesCovered = this.logBytes;
    const records = new Map<string, RecordState | null>();
    for (const [id, e] of snapshot) records.set(id, e === null ? null : { place: e.place, code: space.trained ? index.code(id) : undefined, doc: e.doc });
    let allCodes: Map<string, { code: Uint8Array; scale: number }> | undefined;
    if (training) {
      allCodes = new Map();
      for (const id of index.allIds()) allCodes.set(id, index.code(id)!);
    }
    try {
      await arena.sync();
      await vectors.sync();
      await state.commitCheckpoint({
        checkpoint: { lsn, arenaGeneration: arena.stats().generation, vectorGeneration: vectors.stats().generation },
        records,
        ...(allCodes === undefined ? {} : { training: { pca: space.pca, codes: allCodes, dropFull: !this.env.keepFull } }),
      });
    } catch (e) {
      changes.settle(true);
      if (training) this.trained = true;
      throw asMemstoreError(e, 'checkpoint');
    }
    changes.settle(false);
    this.logBytes -= bytesCovered;
    try {
      // A segment the checkpoint covers entirely can only go once it is not the active one.
      if (wal.lastLsn === lsn) await wal.rotate();
      await wal.removeBefore(lsn + 1);
    } catch (e) {
      throw asMemstoreError(e, 'removing checkpointed log segments');
    }
    // Collecting would copy damaged records, which it cannot: that waits for `memstore repair`.
    if (!collectGarbage || this.env.damage.count > 0) return;
    if (worthCollecting(arena)) await pipeline.exclusive(() => this.collectTexts());
    if (worthCollecting(vectors)) await pipeline.exclusive(() => this.collectVectors());
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
    const { generation, refs } = await arena.collect(live).catch((e: unknown) => this.failedCollect(e, live, 'texts'));
    const moved = new Map<string, BlobRef>();
    for (const [id, ref] of refs) if (!changes.has(id)) moved.set(id, ref);
    try {
      await state.commitCheckpoint({ checkpoint: { ...state.readCheckpoint(), arenaGeneration: generation }, records: new Map(), movedText: moved });
    } catch (e) {
      // The state still names the old generation: drop the copy, keep appending where we were.
      await arena.abortCollect().catch(() => undefined);
      throw e;
    }
    for (const [id, ref] of refs) changes.movedText(id, ref);
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
    const { generation, refs } = await vectors.collect(live).catch((e: unknown) => this.failedCollect(e, live, 'vectors'));
    const moved = new Map<string, VectorPlace>();
    for (const [id, ref] of refs) if (!changes.has(id)) moved.set(id, [ref[0], ref[1], ref[2]]);
    try {
      await state.commitCheckpoint({ checkpoint: { ...state.readCheckpoint(), vectorGeneration: generation }, records: new Map(), movedVectors: moved });
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
   * A collection that failed: a damaged blob no read had met yet is named by its record, which is
   * set aside (the arena stays as it was); anything else is an I/O failure.
   */
  private failedCollect(e: unknown, live: readonly [string, BlobRef][], space: ArenaSpace): never {
    const hit = e instanceof MemstoreError && e.code === 'CORRUPTION' ? live.find(([, ref]) => arenaSegmentPath(this.env.dir, ref[0], ref[1], space) === e.file && ref[2] === e.offset) : undefined;
    if (hit !== undefined) throw this.env.markDamaged(hit[0], e);
    throw asMemstoreError(e, space === 'texts' ? 'collecting the text arena' : 'collecting the vector arena');
  }
}
