import { emitWarning } from 'node:process';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { isRqCodec } from '../codec/codec.js';
import { MemstoreError } from '../errors.js';
import type { VectorIndex } from '../index/vector-index.js';
import { fitOffThread, fitThreads, rowsOf, startFit, type FitJob } from './fit-job.js';
import { fittedOf, type Fitted, type ModelShape } from './vector-space.js';

/**
 * The training of a store's model (PCA, the rotation of rq codes), off the write that reaches
 * `trainSize`. The store buffers its first vectors at full precision; the write that makes them
 * `trainSize` used to fit the model and re-encode every buffered vector inside itself, holding the
 * process (0.6 s for rq2 at 512-d, 0.9 s with PCA to 128 dimensions, 9.4 s at 1,536-d). Now a PCA
 * worth it is fitted in a worker thread (fit-job.ts), and the buffered vectors are re-encoded with
 * the write gate held, a step (`fitThreads.stepMs`) at a time, the event loop turning between steps:
 * searches answer from the buffer (exact, at full precision) meanwhile, and writes go on into it
 * until the re-encode starts. The model depends only on the sample the crossing write saw (the
 * first `trainSize` vectors), and a code only on the model and its vector, so the store ends as one
 * that trained inside the write: the same codes, in the same slots (the buffer and the trained index
 * order their slots alike). The store (MemStore) owns the index and lends this what it needs.
 */

/** What training needs of its store. */
export interface TrainingHost {
  /** The store's directory, for warnings. */
  readonly dir: string;
  /** What the store's model is fitted from. */
  readonly shape: ModelShape;
  /** The store's index now: before training, the buffer of full-precision vectors. */
  index(): VectorIndex;
  /** Whether the store has a model to fit, and whether it is fitted. */
  fits(): boolean;
  trained(): boolean;
  /** How many vectors the model is fitted on (the store trains once it holds that many). */
  samples(): number;
  /**
   * How many vectors the store clusters into pages from (`pages.from`), or undefined when it never
   * will (`pages: false`). The pages are planned from the trained codes of the write that reaches
   * it, so no write may reach it while the store trains off the write (before()).
   */
  pagesFrom(): number | undefined;
  /** Fits the model on `rows` in this thread (VectorSpace.fit). */
  fit(rows: readonly Float32Array[]): Fitted;
  /** An empty index for the codes of `fitted`'s space. */
  newIndex(fitted: Fitted): VectorIndex;
  /** Encodes the vector of `id` in `buffer` into `next` with `fitted` (its place and document flag too); `row` is scratch of `shape.dim`. */
  carry(buffer: VectorIndex, next: VectorIndex, id: string, fitted: Fitted, row: Float32Array): void;
  /** Puts `next` (holding every vector of `buffer`, encoded) in the place of `buffer`, and `fitted` in the space's: the store is trained. */
  install(buffer: VectorIndex, next: VectorIndex, fitted: Fitted): void;
  /** Counts changes to the index (a record set aside as damaged changes the buffer while writes are held). */
  mutations(): number;
  /** Runs `task` with the write gate held (CommitPipeline.exclusive). */
  exclusive(task: () => Promise<void>): Promise<void>;
  /** A run has ended: a background checkpoint held back meanwhile may start. */
  ended(): void;
}

/** What a write about to be logged could add to the store, and what is logged ahead of it (Training.full). */
export interface Incoming {
  /** Records the write could add (0: a delete, or no write). */
  readonly records: number;
  /** Records the writes logged before it and not yet applied could add: they are applied first. */
  readonly logged: number;
  /** Resolves once those writes are applied (or have failed). */
  earlier(): Promise<void>;
}

/** Training under way off the write. */
interface TrainingRun {
  /** The buffer the sample was taken from. */
  readonly buffer: VectorIndex;
  readonly samples: number;
  /** The worker fitting the model, if one does. */
  readonly job: FitJob | undefined;
  /** The fitted model, once fitted (in the worker or here); rejects when the fit failed. */
  readonly fitted: Promise<Fitted>;
  /** Resolves once the model is in, or the run has failed or been cancelled; never rejects. */
  readonly settled: Promise<void>;
  readonly settle: () => void;
  /** The fitted model went into the store's space (install), or to a failure's cleanup: not to be freed again. */
  consumed: boolean;
}

export class Training {
  private run: TrainingRun | undefined;

  constructor(private readonly host: TrainingHost) {}

  /** Whether training runs off the write now (`stats().training`). */
  get underWay(): boolean {
    return this.run !== undefined;
  }

  /**
   * Trains once the buffer holds the sample: inside the write (as the store always did) where the
   * buffer is small and the fit cheap; else the model is fitted (in a worker thread when
   * fitOffThread() says so) and the buffer re-encoded a step at a time, with writes held back
   * (take()), also where this write brought the store to `pages.from` (it had trained inside itself
   * then). A failure leaves the store untrained but intact, and the next write tries again.
   */
  ifDue(): void {
    const host = this.host;
    const buffer = host.index();
    const samples = host.samples();
    if (!host.fits() || host.trained() || this.run !== undefined || buffer.size < samples) return;
    const { dim } = host.shape;
    const rows = this.sampled(buffer, samples);
    if (rows === undefined) return;
    const offThread = fitOffThread(host.shape, samples);
    // Pages due at this write too are planned once the model is in (the store's install), from the
    // codes of the store this write left: every write waits until then (full()).
    if (!offThread && buffer.size <= fitThreads.inlineMax) {
      this.trainNow(buffer, rows, samples);
      return;
    }
    let job: FitJob | undefined;
    let fitted: Promise<Fitted>;
    try {
      // The sample itself moves to the worker (before() takes it again from the buffer): a copy kept
      // here held 64 MB at 4,096-d for as long as the fit ran.
      if (offThread) job = startFit({ shape: host.shape, rows, count: samples });
      fitted = job === undefined ? Promise.resolve(host.fit(rowsOf(rows, samples, dim))) : job.done.then(fittedOf);
    } catch (e) {
      this.failed(e);
      return;
    }
    let settle!: () => void;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    const run: TrainingRun = { buffer, samples, job, fitted, settled, settle, consumed: false };
    this.run = run;
    void fitted
      .then(
        // Not once cancelled: the store may be closed, its gate with it.
        (f) => (this.run === run ? host.exclusive(async () => this.take(run, f)) : undefined),
        (e: unknown) => {
          if (this.run !== run) return;
          this.failed(e);
          this.end(run);
        },
      )
      .catch((e: unknown) => this.failed(e))
      .finally(() => {
        // Cancelled before the model came (close after abandon, a failed open): its projector goes.
        if (!run.consumed) void fitted.then((f) => f.projector.free(), () => undefined);
        this.end(run);
      });
  }

  /**
   * Called by a write of `count` records before it is applied: where it could bring the buffer to
   * `pages.from` while the store trains off the write, the training ends here and now (the model
   * fitted in this thread, the buffer re-encoded in one step), so that the write is applied to the
   * trained store and plans its pages from trained codes, never from the buffer. The store's
   * writes, and the log replayed at open, wait for the model instead (full()), so this runs only for
   * a write applied without that wait: none today (the whole suite, run with this instrumented, never
   * reached it). Its sample is taken from the buffer again (the run's went to the worker): the same
   * rows, and the model the worker would have fitted, unless a write removed or replaced one of them
   * meanwhile.
   */
  before(count: number): void {
    const run = this.run;
    const pagesFrom = this.host.pagesFrom();
    if (run === undefined || pagesFrom === undefined || run.buffer.size + count < pagesFrom) return;
    this.run = undefined;
    run.job?.cancel();
    const rows = this.sampled(run.buffer, run.samples);
    if (rows !== undefined) this.trainNow(run.buffer, rows, run.samples);
    run.settle();
    this.host.ended();
  }

  /**
   * What a write must wait for (CommitPipeline's `lagging`; the log replayed at open asks too), or
   * undefined. While a model is fitted, writes wait once the buffer holds `fitThreads.maxBuffered`
   * times the sample: the re-encode holds the write gate for as long as the buffer takes, and the
   * buffer holds every vector at full precision until then. A write that could bring the store to
   * `pages.from`, or that comes once the store is there, waits for the model too, and, where the
   * writes logged before it start the training (they reach the sample), first for them: applied
   * while the store trains, the first would end the training inside itself (before()), fitting the
   * model in its own thread, for seconds at a high `dim` with PCA, and the pages are planned from the
   * store as the model finds it (the store's install), which no write may change meanwhile.
   */
  full(incoming: Incoming): Promise<void> | undefined {
    const host = this.host;
    const size = host.index().size;
    const pagesFrom = host.pagesFrom();
    // A delete too, once the pages are due: they are planned from the store as it is when the model comes in.
    const reachesPages = pagesFrom !== undefined && size + incoming.logged + incoming.records >= pagesFrom;
    const run = this.run;
    if (run === undefined) {
      const starts = reachesPages && incoming.logged > 0 && host.fits() && !host.trained() && size + incoming.logged >= host.samples();
      return starts ? incoming.earlier() : undefined;
    }
    return reachesPages || size >= fitThreads.maxBuffered * host.samples() ? run.settled : undefined;
  }

  /** Resolves once no training is under way. */
  async settled(): Promise<void> {
    for (let run = this.run; run !== undefined; run = this.run) await run.settled;
  }

  /** Ends the training under way, if any (its worker too); the writes waiting for it resolve, and the store stays untrained. */
  cancel(): void {
    const run = this.run;
    if (run === undefined) return;
    this.run = undefined;
    run.job?.cancel();
    run.settle();
  }

  /**
   * With the write gate held (compaction, which would otherwise wait for the re-encode, which waits
   * for the gate): waits for the model under way, if any, and takes it in.
   */
  async now(): Promise<void> {
    const run = this.run;
    if (run === undefined) return;
    let fitted: Fitted;
    try {
      fitted = await run.fitted;
    } catch {
      // The run's own handler warns, with the cause.
      return;
    }
    await this.take(run, fitted);
  }

  /**
   * The rows the model is fitted on, one after another: the first `samples` vectors of the buffer,
   * in id order. Not every vector buffered: the batch that reaches the sample may bring more, and the
   * model would then depend on where the batches split. Adds append to the buffer, so these are
   * every vector stored before that batch, then the batch's first. In id order: a removal moves the
   * buffer's last vector into its hole, and a reopen loads them in another order, and the fit's
   * float sums in another order made another model (an rq store with PCA, reopened after a delete,
   * coded and answered otherwise than one left open: a hostile pass).
   */
  /** sample(), or undefined once a failure to take it has been reported (failed()). */
  private sampled(buffer: VectorIndex, samples: number): Float32Array | undefined {
    try {
      return this.sample(buffer, samples);
    } catch (e) {
      this.failed(e);
      return undefined;
    }
  }

  private sample(buffer: VectorIndex, samples: number): Float32Array {
    const dim = this.host.shape.dim;
    const ids = [...buffer.allIds()].slice(0, samples).sort();
    const rows = new Float32Array(samples * dim);
    ids.forEach((id, i) => buffer.decode(id, rows.subarray(i * dim, (i + 1) * dim)));
    return rows;
  }

  /** Fits, re-encodes and installs inside the write, as the store always trained. */
  private trainNow(buffer: VectorIndex, rows: Float32Array, samples: number): void {
    const host = this.host;
    let fitted: Fitted | undefined;
    let next: VectorIndex | undefined;
    try {
      fitted = host.fit(rowsOf(rows, samples, host.shape.dim));
      next = this.encodedAll(buffer, fitted);
      host.install(buffer, next, fitted);
    } catch (e) {
      next?.free();
      fitted?.projector.free();
      this.failed(e);
    }
  }

  /** A new index holding every vector of `buffer` encoded with `fitted`, in one step; freed if that fails. */
  private encodedAll(buffer: VectorIndex, fitted: Fitted): VectorIndex {
    const next = this.host.newIndex(fitted);
    try {
      const row = new Float32Array(this.host.shape.dim);
      for (const id of buffer.allIds()) this.host.carry(buffer, next, id, fitted, row);
    } catch (e) {
      next.free();
      throw e;
    }
    return next;
  }

  /** Re-encodes the buffer with the model of `run` and installs it, if `run` is still the one under way (with the write gate held). */
  private async take(run: TrainingRun, fitted: Fitted): Promise<void> {
    const host = this.host;
    const buffer = run.buffer;
    if (this.run !== run || host.index() !== buffer) return;
    const row = new Float32Array(host.shape.dim);
    let next: VectorIndex | undefined;
    try {
      next = host.newIndex(fitted);
      const before = host.mutations();
      const ids = [...buffer.allIds()];
      const step = Math.max(1, fitThreads.reencodeStep);
      for (let at = 0; at < ids.length; ) {
        const started = performance.now();
        const end = Math.min(ids.length, at + step);
        // The clock read every 8 vectors: a vector costs 0.01 to 0.5 ms.
        while (at < end && ((at & 7) !== 0 || performance.now() - started < fitThreads.stepMs)) host.carry(buffer, next, ids[at++]!, fitted, row);
        if (at === ids.length) break;
        await nextTurn();
        // Cancelled meanwhile (abandon(), a failed open): nothing to take in.
        if (this.run !== run || host.index() !== buffer) {
          next.free();
          return;
        }
        // A record set aside as damaged meanwhile (a search met its damage) moved the buffer's slots:
        // the rest is done in this step, from the start, in the buffer's order now.
        if (host.mutations() !== before) {
          next.free();
          next = undefined;
          next = this.encodedAll(buffer, fitted);
          break;
        }
      }
      run.consumed = true;
      host.install(buffer, next, fitted);
    } catch (e) {
      next?.free();
      if (!run.consumed) fitted.projector.free();
      run.consumed = true;
      this.failed(e);
    }
    this.end(run);
  }

  /** Ends `run` if it is still the one under way: the writes waiting for it resolve, and a background checkpoint held back meanwhile may start. */
  private end(run: TrainingRun): void {
    if (this.run !== run) return;
    this.run = undefined;
    run.settle();
    this.host.ended();
  }

  private failed(e: unknown): void {
    const { pca, codec } = this.host.shape;
    const model = isRqCodec(codec) ? (pca === null ? 'the rotation' : 'PCA and the rotation') : 'PCA';
    emitWarning(new MemstoreError('IO', `training ${model} for ${this.host.dir} failed; it is retried on the next add`, { cause: e }));
  }
}
