import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { WalError, ioError } from './errors.js';
import type { FileHandle, FileLayer } from '../io/file-layer.js';
import { encodeRecord, framedSize, segmentName } from './format.js';

/**
 * When an append's promise resolves. 'always': after its bytes are fsynced. 'batch': after they
 * are written; an fsync follows within batchDelayMs. 'none': after they are written; fsync only at
 * segment rotation and close.
 */
export type Durability = 'always' | 'batch' | 'none';

/** A live segment file; the writer appends to the last one. */
export interface Segment {
  firstLsn: number;
  path: string;
  /** End of the last whole record: the file's size as far as the log is concerned. */
  bytes: number;
  /** firstLsn - 1 while the segment holds no record. */
  lastLsn: number;
}

export interface WriterConfig {
  files: FileLayer;
  dir: string;
  durability: Durability;
  segmentBytes: number;
  batchDelayMs: number;
  /** Called with a new segment's first LSN once its file and directory entry are durable, before anything is written to it; a rejection fails the rotation. */
  onSegment: ((firstLsn: number) => Promise<void>) | undefined;
}

interface PendingAppend {
  payload: Uint8Array;
  resolve: (lsn: number) => void;
  reject: (error: unknown) => void;
}

interface SyncWaiter {
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** Scratch buffers above this are dropped after use, so one huge group does not pin its memory. */
const KEEP_SCRATCH = 16 << 20;

/**
 * The single writer of a log (FORMAT.md, "Writing"). Appends wait in a queue; one commit at a time
 * takes the whole queue as a group, assigns consecutive LSNs, encodes it into one buffer, writes it
 * with one call and (in 'always' mode) fsyncs once. Appends arriving during a commit form the next
 * group, so concurrent callers share fsyncs without any timer.
 */
export class WalWriter {
  private queue: PendingAppend[] = [];
  private syncWaiters: SyncWaiter[] = [];
  private rotateWaiters: SyncWaiter[] = [];
  private scheduled = false;
  private running = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  private nextLsn: number;
  private acked: number;
  /** Bytes written since the last successful fsync (including a truncation). */
  private dirty = false;
  /** A failed write may have left bytes after this offset of the active segment; cut them before anything else. */
  private repairTo: number | undefined;
  /** A rotation created the next segment file but did not finish: the next group must rotate, never go back to the old file. */
  private mustRotate = false;
  private lastSyncAt = performance.now();
  private timer: NodeJS.Timeout | undefined;
  private syncDue = false;
  /** A background ('batch') fsync failed; the next sync() or close() reports it. */
  private deferredError: WalError | undefined;
  private scratch = new Uint8Array(64 << 10);
  private readonly runBound = (): void => void this.run();

  constructor(
    private readonly config: WriterConfig,
    private readonly segments: Segment[],
    private handle: FileHandle,
  ) {
    const active = this.active;
    this.nextLsn = active.lastLsn + 1;
    this.acked = active.lastLsn;
  }

  /** LSN of the last append that resolved (or of the last record found at open). */
  get lastLsn(): number {
    return this.acked;
  }

  append(payload: Uint8Array): Promise<number> {
    if (this.closed) return Promise.reject(new WalError('CLOSED', 'the WAL is closed'));
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ payload, resolve, reject });
      this.schedule();
    });
  }

  /** Resolves when everything appended before the call is durable. */
  sync(): Promise<void> {
    if (this.closed) return Promise.reject(new WalError('CLOSED', 'the WAL is closed'));
    const deferred = this.takeDeferredError();
    return deferred === undefined ? this.requestSync() : Promise.reject(deferred);
  }

  /**
   * Starts a new segment once everything appended before the call is written, so that
   * removeBefore() can drop the old one: a checkpoint's way to give back a segment that is all
   * behind it. Nothing happens when the active segment is empty.
   */
  rotateSegment(): Promise<void> {
    if (this.closed) return Promise.reject(new WalError('CLOSED', 'the WAL is closed'));
    return new Promise<void>((resolve, reject) => {
      this.rotateWaiters.push({ resolve, reject });
      this.schedule();
    });
  }

  private async rotateOnRequest(): Promise<void> {
    const waiters = this.rotateWaiters;
    this.rotateWaiters = [];
    try {
      await this.repair();
      if (this.active.bytes > 0) await this.rotate();
    } catch (e) {
      const error = ioError('rotate', e, this.active.path);
      for (const w of waiters) w.reject(error);
      return;
    }
    for (const w of waiters) w.resolve();
  }

  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private get active(): Segment {
    return this.segments[this.segments.length - 1]!;
  }

  private takeDeferredError(): WalError | undefined {
    const deferred = this.deferredError;
    this.deferredError = undefined;
    return deferred;
  }

  private requestSync(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.syncWaiters.push({ resolve, reject });
      this.schedule();
    });
  }

  private async shutDown(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    let failure: unknown = this.takeDeferredError();
    try {
      await this.requestSync();
    } catch (e) {
      failure ??= e;
    }
    try {
      await this.handle.close();
    } catch (e) {
      failure ??= ioError('close', e, this.active.path);
    }
    if (failure !== undefined) throw failure;
  }

  /**
   * setImmediate, not a microtask: every append issued before the event loop turns (also from
   * promise chains that resolve in between) joins the same group.
   */
  private schedule(): void {
    if (this.running || this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.runBound);
  }

  private async run(): Promise<void> {
    this.scheduled = false;
    this.running = true;
    while (this.queue.length > 0 || this.syncWaiters.length > 0 || this.syncDue || this.rotateWaiters.length > 0) {
      if (this.queue.length === 0 && this.syncWaiters.length === 0 && !this.syncDue) {
        await this.rotateOnRequest();
        continue;
      }
      const group = this.queue;
      this.queue = [];
      const waiters = this.syncWaiters;
      this.syncWaiters = [];
      const background = this.syncDue;
      this.syncDue = false;
      if (group.length > 0) await this.commit(group, waiters);
      else await this.syncOnly(waiters, background);
    }
    this.running = false;
  }

  private async commit(group: PendingAppend[], waiters: SyncWaiter[]): Promise<void> {
    const first = this.nextLsn;
    let start = -1;
    let written = false;
    try {
      await this.repair();
      let size = this.groupSize(this.active.bytes, group);
      if (this.mustRotate || (this.active.bytes > 0 && this.active.bytes + size > this.config.segmentBytes)) {
        await this.rotate();
        size = this.groupSize(0, group);
      }
      const segment = this.active;
      start = segment.bytes;
      const buffer = this.encode(group, first, start, size);
      await this.handle.write(buffer, start);
      written = true;
      segment.bytes = start + size;
      segment.lastLsn = first + group.length - 1;
      this.nextLsn = first + group.length;
      this.dirty = true;
      if (this.config.durability === 'always') await this.fsync();
    } catch (e) {
      const error = ioError(written ? 'fsync' : 'write', e, this.active.path);
      await this.rollBack(first, start);
      for (const p of group) p.reject(error);
      for (const w of waiters) w.reject(error);
      return;
    }
    this.acked = first + group.length - 1;
    for (let i = 0; i < group.length; i++) group[i]!.resolve(first + i);
    if (waiters.length > 0) await this.syncOnly(waiters, false);
    else if (this.config.durability === 'batch') this.armTimer();
  }

  /**
   * A group failed: forget its LSNs (the next group reuses them, so the log has no gap) and cut
   * its bytes off the file, so no later record follows garbage and a reopen never sees them.
   */
  private async rollBack(first: number, start: number): Promise<void> {
    this.nextLsn = first;
    if (start < 0) return;
    const segment = this.active;
    segment.bytes = start;
    segment.lastLsn = first - 1;
    this.repairTo = start;
    try {
      await this.repair();
    } catch {
      // Retried before the next write or sync; until it succeeds those reject.
    }
  }

  private async repair(): Promise<void> {
    if (this.repairTo === undefined) return;
    await this.handle.truncate(this.repairTo);
    this.repairTo = undefined;
    this.dirty = true;
    // After a failed fsync the fate of the failed group's bytes is unknown; make the cut durable too.
    if (this.config.durability === 'always') await this.fsync();
  }

  private async fsync(): Promise<void> {
    if (!this.dirty) return;
    await this.handle.sync();
    this.dirty = false;
    this.lastSyncAt = performance.now();
  }

  private async syncOnly(waiters: SyncWaiter[], background: boolean): Promise<void> {
    try {
      await this.repair();
      await this.fsync();
    } catch (e) {
      const error = ioError('fsync', e, this.active.path);
      if (background && waiters.length === 0) this.deferredError = error;
      for (const w of waiters) w.reject(error);
      return;
    }
    for (const w of waiters) w.resolve();
  }

  private armTimer(): void {
    if (this.timer !== undefined || this.closed) return;
    const wait = Math.max(0, this.lastSyncAt + this.config.batchDelayMs - performance.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.syncDue = true;
      this.schedule();
    }, wait);
    // A pending batch fsync must not keep the process alive: an exit without close() still leaves the bytes to the OS.
    this.timer.unref();
  }

  /**
   * Starts the segment named after the next LSN. The old segment is fsynced first in every mode,
   * so a power cut can lose only the tail of the last segment, never the middle of the log; the
   * new entry is made durable before any record is acknowledged from it.
   */
  private async rotate(): Promise<void> {
    this.mustRotate = true;
    await this.fsync();
    const segment: Segment = { firstLsn: this.nextLsn, path: join(this.config.dir, segmentName(this.nextLsn)), bytes: 0, lastLsn: this.nextLsn - 1 };
    const handle = await this.config.files.open(segment.path, 'create');
    try {
      // Left over from an earlier rotation attempt that failed after creating the file.
      if ((await handle.size()) > 0) await handle.truncate(0);
      await this.config.files.syncDir(this.config.dir);
      // The owner records the segment before a record can be acknowledged from it (FORMAT.md,
      // "Rotation"); failing, the next group rotates again and calls it again.
      await this.config.onSegment?.(segment.firstLsn);
    } catch (e) {
      await handle.close().catch(() => undefined);
      throw e;
    }
    const old = this.handle;
    this.handle = handle;
    this.segments.push(segment);
    this.mustRotate = false;
    this.dirty = false;
    await old.close().catch(() => undefined);
  }

  private groupSize(offset: number, group: PendingAppend[]): number {
    let end = offset;
    for (const p of group) end += framedSize(end, p.payload.length);
    return end - offset;
  }

  private encode(group: PendingAppend[], first: number, offset: number, size: number): Uint8Array {
    if (this.scratch.length < size) this.scratch = new Uint8Array(Math.max(size, this.scratch.length * 2));
    const out = this.scratch;
    if (out.length > KEEP_SCRATCH) this.scratch = new Uint8Array(64 << 10);
    let at = 0;
    for (let i = 0; i < group.length; i++) at = encodeRecord(out, at, offset + at, first + i, group[i]!.payload);
    return out.subarray(0, size);
  }
}
