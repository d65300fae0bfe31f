import { MemstoreError } from '../errors.js';

/**
 * What the pipeline needs from its store, injected so that it imports nothing of it (Pebble's
 * commitPipeline and commitEnv are the model).
 */
export interface CommitEnv<M> {
  /** Appends a payload to the write-ahead log; resolves with its LSN once it is as durable as the store's mode says. */
  append(payload: Uint8Array): Promise<number>;
  /** Applies a logged mutation to memory, synchronously; returns the write's result. */
  apply(mutation: M): number;
  /** After a write is applied: the store counts the log bytes and may start a checkpoint. */
  applied(payloadBytes: number): void;
  /**
   * What a write must wait for (backpressure), or undefined when it need not: the store returns its
   * running checkpoint once the log behind it has grown too long, and background work that the
   * write would otherwise have to finish inside itself. `next` is the write about to be logged
   * (undefined for an exclusive step), `unapplied` the writes logged (or being logged) and not yet
   * applied, which are applied before it.
   */
  lagging(next: M | undefined, unapplied: ReadonlySet<M>): Promise<void> | undefined;
  /** How to name the store in errors. */
  readonly name: string;
}

/**
 * The order in which a store's writes are logged and applied (STATE.md, "Writes, checkpoints,
 * recovery"):
 *
 * - A write is appended to the log at once when nothing holds writes back, so the writes of one
 *   tick share a group commit; applies then run strictly in LSN order, whatever order the appends
 *   resolved in, each one synchronous, so no reader ever sees half a batch.
 * - Maintenance that must see no new writes (arena collection, compaction) holds the gate; a
 *   checkpoint that lags too far behind holds writes back as well. Writes that must wait queue in
 *   call order and each starts (synchronously) only when every earlier one has, so none overtakes
 *   an earlier one.
 * - If an apply ever throws (input was checked before logging, so a bug or an out-of-memory), the
 *   pipeline is broken: memory no longer follows the log, every later write is refused with that
 *   error, and the store must be reopened (the log replays the batch).
 */
export class CommitPipeline<M> {
  /** LSN of the last write applied. */
  appliedLsn: number;
  /** Set once an apply failed. */
  broken: MemstoreError | undefined;
  private readonly reorder = new Map<number, { mutation: M; done: (n: number) => void; fail: (e: unknown) => void }>();
  /** Writes accepted and not yet applied (or failed). */
  private readonly inflight = new Set<Promise<unknown>>();
  /** The mutations of `inflight`, for lagging(). */
  private readonly unapplied = new Set<M>();
  /** Set while an exclusive step runs; writes wait for it. */
  private gate: Promise<void> | undefined;
  /** Writes that had to wait, in call order: each waits for the one before. */
  private queue: Promise<void> = Promise.resolve();
  private waiting = 0;

  constructor(
    private readonly env: CommitEnv<M>,
    appliedLsn: number,
  ) {
    this.appliedLsn = appliedLsn;
  }

  /** Logs `payload` (the encoded `mutation`), then applies it in log order; resolves to what apply returned. */
  write(mutation: M, payload: Uint8Array): Promise<number> {
    if (this.waiting === 0 && !this.mustWait(mutation)) return this.logAndApply(mutation, payload);
    return this.enqueue(() => {
      // Not whether the store has closed since: a write accepted before close() is one close waits
      // for (drained()), wherever it had to wait.
      if (this.broken !== undefined) throw this.broken;
      return this.logAndApply(mutation, payload);
    }, mutation);
  }

  /**
   * Runs `step` with writes held back and every accepted write applied. `inCallOrder` (compaction,
   * which callers issue among their writes) also lets every write queued before it go first; the
   * collection a checkpoint starts must not wait for writes that wait for that checkpoint.
   */
  async exclusive<T>(step: () => Promise<T>, inCallOrder = false): Promise<T> {
    let open!: () => void;
    const take = () => {
      this.gate = new Promise<void>((resolve) => (open = resolve));
    };
    if (inCallOrder && (this.waiting > 0 || this.mustWait(undefined))) {
      await this.enqueue(take);
    } else {
      while (this.gate !== undefined) await this.gate;
      take();
    }
    try {
      await this.settled();
      return await step();
    } finally {
      this.gate = undefined;
      open();
    }
  }

  /**
   * Logs and applies a write made by the exclusive step now running (compaction's sweep of expired
   * memories): that step holds the gate every other write waits at, so this one goes at once.
   */
  writeHeld(mutation: M, payload: Uint8Array): Promise<number> {
    if (this.gate === undefined) throw new Error('writeHeld() is for the exclusive step holding the gate');
    if (this.broken !== undefined) return Promise.reject(this.broken);
    return this.logAndApply(mutation, payload);
  }

  /** Resolves when every write accepted so far has been applied or has failed. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.inflight]);
  }

  /**
   * Resolves when no write is queued or in flight and no gate is held: every write accepted so far,
   * those that had to wait behind maintenance or a lagging checkpoint included, has been applied
   * or has failed, and maintenance under way has finished (close and abandon wait for this).
   */
  async drained(): Promise<void> {
    while (this.waiting > 0 || this.inflight.size > 0 || this.gate !== undefined) {
      await this.gateOpen();
      await this.queue;
      await this.settled();
    }
  }

  /**
   * Resolves once every write and exclusive step queued before it has started, and the gate any of
   * them took is open again: the place in line of a write with nothing to log (an empty batch). It
   * had waited only for a gate held at the call, and so settled ahead of a compaction still queued
   * behind another (a hostile pass).
   */
  inLine(): Promise<void> {
    if (this.waiting === 0 && this.gate === undefined) return Promise.resolve();
    return this.enqueue(() => undefined);
  }

  /** Waits for a gate held now. */
  async gateOpen(): Promise<void> {
    while (this.gate !== undefined) await this.gate;
  }

  private mustWait(next: M | undefined): boolean {
    return this.gate !== undefined || this.env.lagging(next, this.unapplied) !== undefined;
  }

  /**
   * Runs `start` (synchronously) once every write or compaction queued before it has started and
   * nothing holds writes back: so writes that must wait keep their call order, and none slips in
   * between the check and its own start.
   */
  private enqueue<T>(start: () => T, next?: M): Promise<Awaited<T>> {
    this.waiting++;
    // Boxed, so that the queue moves on once `start` has run, not once the write it started completes:
    // queued writes still share group commits.
    const started = this.queue.then(async () => {
      try {
        for (;;) {
          const lagging = this.env.lagging(next, this.unapplied);
          if (this.gate !== undefined) await this.gate;
          else if (lagging !== undefined) await lagging.catch(() => undefined);
          else break;
        }
      } finally {
        this.waiting--;
      }
      return { value: start() };
    });
    this.queue = started.then(
      () => undefined,
      () => undefined,
    );
    return started.then((box) => box.value as Awaited<T>);
  }

  /** Appends and applies; counted in `inflight` from its first (synchronous) step, which exclusive steps wait for. */
  private logAndApply(mutation: M, payload: Uint8Array): Promise<number> {
    const run = (async () => {
      const lsn = await this.env.append(payload);
      const n = await new Promise<number>((done, fail) => {
        this.reorder.set(lsn, { mutation, done, fail });
        this.drain();
      });
      this.env.applied(payload.byteLength);
      return n;
    })();
    this.inflight.add(run);
    this.unapplied.add(mutation);
    // unapplied too, for a write whose append failed (an applied one has left it already).
    const forget = () => {
      this.inflight.delete(run);
      this.unapplied.delete(mutation);
    };
    run.then(forget, forget);
    return run;
  }

  /** Applies logged mutations strictly in LSN order, whatever order their appends resolved in. */
  private drain(): void {
    for (let next = this.reorder.get(this.appliedLsn + 1); next !== undefined; next = this.reorder.get(this.appliedLsn + 1)) {
      const lsn = this.appliedLsn + 1;
      this.reorder.delete(lsn);
      // Counted as applied from here: lagging() then finds it in the store, not in `unapplied`.
      this.unapplied.delete(next.mutation);
      if (this.broken !== undefined) {
        next.fail(this.broken);
        continue;
      }
      this.appliedLsn = lsn;
      try {
        next.done(this.env.apply(next.mutation));
      } catch (e) {
        // Input was checked before logging, so this is a bug or the machine (out of memory): the
        // record is in the log but memory may hold part of it. Stop rather than diverge further.
        this.broken = new MemstoreError('IO', `applying logged batch ${lsn} failed; close and reopen ${this.env.name} (the log replays it)`, { cause: e });
        next.fail(this.broken);
      }
    }
  }
}
