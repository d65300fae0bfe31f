import { AsyncLocalStorage } from 'node:async_hooks';
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Wal, newestSegment } from '../wal/wal.js';
import { segmentName } from '../wal/format.js';
import { nodeFileLayer } from '../io/file-layer.js';
import { rootedLayer } from '../io/rooted-layer.js';
import { BlobArena, type ArenaEnd, type BlobRef } from './arena/arena.js';
import { LookasideCache, type CacheStats } from './cache/lookaside.js';
import type { Codec, CodecName } from './codec/codec.js';
import { getCodec } from './codec/index.js';
import { MemstoreError } from './errors.js';
import { kernels } from './kernels/wasm.js';
import { checkBatch, checkId, checkIds, checkVector, fitBounds, vectorBounds, type VectorBounds } from './input.js';
import { float32Bytes } from './vector.js';
import { MAX_BATCH_BYTES } from './limits.js';
import { cloneMeta, type Meta } from './meta.js';
import {
  checkToolOptions,
  defaultOversample,
  progressOf,
  resolveFilterOption,
  resolveOpenOptions,
  resolveSearchOptions,
  type Filter,
  type Metric,
  type OpenOptions,
  type ProgressCalls,
  type ResolvedOpenOptions,
  type StoreOptions,
  type SearchOptions,
} from './options.js';
import { PCA_MIN_ROWS, type PcaModel } from './pca/pca.js';
import { samePlace, type VectorPlace } from './scan/code-blocks.js';
import { FlatIndex } from './index/flat-index.js';
import { PageIndex } from './index/page-index.js';
import type { PagePlanShape } from './index/page-plan.js';
import { Paging } from './index/paging.js';
import { carryColumns, type VectorIndex } from './index/vector-index.js';
import type { KernelMetric } from './kernels/index.js';
import { ensureDurableDir, indexFilePath, refuseForeignEntries, refuseLostState, refuseOverlongDir, repairLogDir, statePath, walDir } from './store/files.js';
import { IndexFile, type IndexDamage } from './store/index-file.js';
import { ChangedRecords, NO_DOC } from './store/changed-records.js';
import { CommitPipeline } from './store/commit-pipeline.js';
import { asMemstoreError, damagedId, recordCorruption } from './store/record-errors.js';
import { RecordReads } from './store/record-reads.js';
import { ResidentSampler } from './store/resident.js';
import { DirectoryLock, refuseUnfinishedImport } from './store/lock.js';
import { decodeMutation, encodeMutation, recordsAdded, type Mutation } from './store/mutations.js';
import { arenaEndOf, docRecord, environmentKind, hasDoc, newestSegmentLost, refuseMalformedState, removeLeftStateCopy, StateStore, type Checkpoint, type DocRecord, type StoreConfig } from './store/state.js';
import { Checkpointer } from './store/checkpointer.js';
import { checkReopen, createConfig, settlePages } from './store/config.js';
import { Damage, type DamagedKey } from './store/damage.js';
import { loadCheckpoint } from './store/recovery.js';
import { ColumnCheckpoints } from './store/column-checkpoint.js';
import { restoreColumns, usableColumns } from './store/column-restore.js';
import { ExactScorer } from './space/exact-scorer.js';
import { fitsModel, kernelMetricOf, VectorSpace, type Fitted } from './space/vector-space.js';
import { Training, type Incoming } from './space/training.js';

/** One memory to store. `add` is an upsert: a record with an existing id replaces it whole. */
export interface MemoryRecord {
  /** Non-empty, well-formed, at most MAX_ID_BYTES (1024) bytes of UTF-8. */
  id: string;
  vector: Float32Array | readonly number[];
  /** At most MAX_TEXT_BYTES (16 MiB) of UTF-8. */
  text?: string;
  /** JSON data (src/meta.ts): copied in, returned as a copy. */
  meta?: Record<string, unknown>;
}

export type { SearchHit } from './search/search-path.js';
import { SearchPath, type RescoringStats, type SearchHit, type Wanted } from './search/search-path.js';
import { EXPIRES, isMemoryMeta, Memories, type MemoryHit, type RecallOptions, type Remembered, type RememberOptions } from './memory/memories.js';
import { idleTrimmer, type IdleTrimmer } from './idle-trim.js';

/** What only open() hands the constructor. */
const OPENING: unique symbol = Symbol('MemStore.open');

/** Whether `path` is something other than a directory (a path under a file, ENOTDIR, is left to fail later as IO). */
function isFile(path: string): boolean {
  try {
    return statSync(path, { throwIfNoEntry: false })?.isDirectory() === false;
  } catch {
    return false;
  }
}

/** The replay applies each logged write before the next: none is ever logged and unapplied ahead of it. */
const NOTHING_UNAPPLIED: ReadonlySet<Mutation> = new Set();

/** Ids per delete of compact()'s sweep of expired memories. */
const SWEEP_BATCH = 10_000;

/** How `compact` runs. */
export interface CompactOptions {
  /** Told the steps done of all (deleting expired memories, checkpoint, texts, vectors, pages, index, state file) after each; what it throws stops the compaction (what was done stays done) and is thrown as it is. @default none */
  onProgress?: (done: number, total: number) => void;
}

/**
 * A call under way (a write holding its turn, a recall), as AsyncLocalStorage hands it to what the
 * call starts. Its value outlives the call in timers and callbacks made within it, so whether the
 * call still runs is kept here: a close() from one that ran after the call had ended had skipped the
 * writes called before it, and they ended CLOSED (a hostile pass).
 */
interface CallUnderWay {
  running: boolean;
  /** Set by a close() its own embedder called: the call's next step is CLOSED (and only this call's). */
  refused?: boolean;
  /** For a write holding its turn: gives the turn to the writes called after it before the call ends (a close() within it, which waits for them). */
  release?: () => void;
}

/** The keys CompactOptions has. */
const COMPACT_KEYS: readonly (keyof CompactOptions)[] = ['onProgress'];

export interface StoredRecord {
  id: string;
  /**
   * The vector as added when the store keeps full-precision vectors (`rescore: true`, the default);
   * otherwise the reconstruction from its code (unit length for 'cosine' stores).
   */
  vector: Float32Array;
  text?: string;
  meta?: Record<string, unknown>;
}

export interface StoreStats {
  count: number;
  dim: number;
  /**
   * Dimensions of the vectors the search structure holds: `dim` until the store trains; then the PCA
   * output's, and for rq codes that of the rotation, the dimension (or the PCA output's) padded to a
   * multiple of 128 (`src/codec/CODECS.md`): 128 for a store of 10 dimensions.
   */
  storedDim: number;
  codec: CodecName;
  metric: Metric;
  /** PCA (when configured) has been fitted; until then vectors are buffered at full precision. */
  trained: boolean;
  /** Pages a search probes by default: every one while there are at most 32 (and always for the exact index), then 3·√pages but at least 32, or 6·√pages where the lengths of the vectors spread (the 90th percentile over the 10th: more than 1.5 in a dot store, at least 4 in an l2 store; src/index/PAGES.md). */
  nprobe: number;
  /**
   * RAM the store holds per stored vector: its code and scale (and the code's norm in a store of a
   * scalar codec ranked by cosine, which its scans read), where its full-precision vector is
   * (12 bytes, when rescoring is on), its share of the id table (UTF-8 bytes, offsets, hash
   * buckets) and of the filter columns made so far (2 bytes per field filters have named, and the
   * fields' dictionaries), its share of the model (PCA's or the rq rotation's axes and mean, and the
   * projector's copy of the axes), and its share of what the lookaside cache holds now (`cache.bytes / count`).
   */
  bytesPerVector: number;
  /** RAM the store holds in all: blocks or pages of codes, the id table, the filter columns, the model, the lookaside cache, and the arenas' append buffers (a 1 MiB chunk each, and what waits for an fsync). */
  memoryBytes: number;
  /**
   * The model's part of `memoryBytes`, which does not grow with the count: PCA's or the rq
   * rotation's mean, and its axes, held once, in the projector's linear memory (0 untrained, or without one).
   */
  modelBytes: number;
  /** The quantized part of `bytesPerVector` alone: code bytes (padding included) and the scale. */
  codeBytesPerVector: number;
  /** Everything the directory holds per vector: state file, index file, filter columns' file, write-ahead log, text and vector arenas, as sized on disk (the two lock files aside). */
  diskBytesPerVector: number;
  /** All of it, whatever the count (a store whose records are all deleted still holds its files until compact()). */
  diskBytes: number;
  /**
   * RAM of the store's files, apart from `memoryBytes`: the pages of its memory-mapped files
   * resident in this process (file-backed, so the kernel can drop them; `top` counts them in RES
   * and SHR): the state file, and the arena segments searches read through their maps (`mmap`).
   * The log, and arenas read with positioned reads, stay in the kernel's page cache,
   * at most their sizes below, and belong to no process. From /proc/self/smaps, sampled at most
   * once a second; undefined on systems without it.
   */
  mappedBytes: number | undefined;
  /**
   * Segment files of the text and vector arenas that searches read through a memory map now; each is
   * mapped at its first read. 0 once searches have read vectors means positioned reads: the `mmap`
   * option is off, or the native addon is not built here (the README's `mmap` option).
   */
  mappedFiles: number;
  /** Pages of the index: units a search scans with one kernel call each (clusters of similar vectors once the store has `pages.from` vectors; before, blocks of 1,024 codes). */
  pages: number;
  /**
   * Whether the codes are being clustered into pages now, in a worker thread (src/index/PAGES.md,
   * "Clustering off the write"): the first pages (searches scan every code meanwhile, and the writes
   * made meanwhile resolve once the pages are in), or compaction's re-clustering (writes wait for
   * the compaction).
   */
  clustering: boolean;
  /**
   * Whether the model (PCA, the rotation of rq codes) is being trained now, off the write that
   * reached `trainSize` (src/space/training.ts): searches answer from the vectors buffered at full
   * precision meanwhile, and the writes made meanwhile resolve once the store is trained.
   */
  training: boolean;
  /** Bytes of write-ahead log segments on disk. */
  walBytes: number;
  /** Bytes of text arena segments on disk (live texts and garbage not yet collected). */
  arenaBytes: number;
  /** Bytes of vector arena segments on disk: the full-precision vectors (live ones and garbage not yet collected). */
  vectorBytes: number;
  /** Records found damaged (a failed checksum): `get` throws CORRUPTION for them, searches skip them, `memstore repair` removes them. */
  damaged: number;
  /** The lookaside cache (CacheStats): answers served exactly or from near queries, bound failures, misses, evictions, bytes held. */
  cache: CacheStats;
  /**
   * Rescored searches since open, their candidates, and the candidates left unread because their
   * error bound could not reach the k-th best exact score (src/search/RESCORING.md): full vectors
   * read per search = (candidates − skipped − the cache's hot ones) / searches. A cosine or dot store
   * with PCA also takes in vectors past the scan's candidates whose bounds reach the answer: `beyond` of
   * the candidates were, in `extended` searches; `capped` searches stopped at 4,096 of them.
   */
  rescoring: RescoringStats;
}

const utf8 = new TextEncoder();

function sameRef(a: BlobRef | undefined, b: BlobRef | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a.every((x, i) => x === b[i]));
}

/** A store's index: codes, and where each full-precision vector lives; `metric`, what its scans rank by (VectorSpace.kernelMetric). */
function newIndex(codec: Codec, dim: number, metric: KernelMetric): VectorIndex {
  return new FlatIndex(codec, dim, true, metric);
}

/** The arena option of a checkpoint's end, when it holds a well-formed one. */
function reachedOf(end: unknown): { reached?: ArenaEnd } {
  const reached = arenaEndOf(end);
  return reached === undefined ? {} : { reached };
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/**
 * An embedded vector memory in one directory.
 *
 * Writes: a batch is checked whole (src/input.ts), appended to the write-ahead log (one record per
 * batch; batches of one tick share one fsync) and, once durable, applied in log order to the
 * in-memory index, the text arena and the set of records changed since the last checkpoint.
 * Checkpoints write those to the LMDB state and drop the log before them; opening = last
 * checkpoint + replay of the log.
 *
 * Searches: query → (normalize) → (PCA) → one SIMD kernel call per block of codes (per page of
 * the `nprobe` pages nearest the query, once the codes are clustered: src/index/PAGES.md) → top
 * candidates → rescoring with full-precision vectors → texts from the arena.
 *
 * Damage to one record (a checksum that fails in the state or the arena) costs that record: it is
 * set aside as damaged, `get` throws CORRUPTION naming it, searches skip it, and `memstore repair`
 * moves it to a report.
 */
export class MemStore {
  private index: VectorIndex;
  private readonly space: VectorSpace;
  /** Scores full-precision vectors for rescoring, a batch per call (src/space/exact-scorer.ts). */
  private readonly scorer: ExactScorer;
  /** The read path: cache, scan, rescoring, texts (src/search/search-path.ts). */
  private readonly searches: SearchPath;
  private readonly memories: Memories;
  /** Settles once every write that waits its turn (inTurn) is done; `waiting` counts them. */
  private turn: Promise<unknown> = Promise.resolve();
  private waiting = 0;
  /** Settles once the last write issued is acknowledged, and so every one before it (inOrder()); never rejects. */
  private acknowledged: Promise<void> = Promise.resolve();
  /** Inside a write that holds its turn, and in everything it starts (an embed call): that write (CallUnderWay). */
  private readonly holdingTurn = new AsyncLocalStorage<CallUnderWay>();
  private readonly resident: ResidentSampler;
  private readonly reads: RecordReads;
  private closed = false;
  /** Recalls under way, which close() waits for, by a token each (what inRecall holds within it). */
  private readonly recalls = new Map<CallUnderWay, Promise<MemoryHit[]>>();
  /** The recall a call is made within (its embedder's calls), else undefined. */
  private readonly inRecall = new AsyncLocalStorage<CallUnderWay>();
  /**
   * Resolved when a close() is called from within the recall a token stands for: the close, that
   * one or one called before it from outside, does not wait for that recall (withinClose()).
   */
  private readonly closedWithin = new Map<object, { promise: Promise<void>; resolve: () => void }>();
  /** The first close() or abandon(), which later calls return. */
  private closing: Promise<void> = Promise.resolve();
  private readonly cache: LookasideCache<SearchHit[]> | undefined;
  private readonly codec: Codec;
  private readonly bounds: VectorBounds | undefined;

  /** Records changed since the last checkpoint. */
  private readonly changes = new ChangedRecords();
  private readonly checkpoints: Checkpointer;
  /** The order writes are logged and applied in, and the gate maintenance holds. */
  private readonly pipeline: CommitPipeline<Mutation>;
  private readonly damage = new Damage();
  /**
   * Counts changes to the index (applied writes, records set aside as damaged), so a search that
   * read files in between can tell its snapshot moved: its slots and codes are no longer those of
   * the index.
   */
  private writes = 0;
  /** The index file (INDEX.md), opened by load(). */
  private indexFile: IndexFile | undefined;
  /** The filter columns checkpoints persist beside the index file (INDEX.md, "Filter columns"). */
  private readonly columnFiles: ColumnCheckpoints;
  /** Told of each call (checkOpen), so that the C allocator's free memory goes back when the calls stop (idle-trim.ts); undefined with `trimWhenIdle: false`. */
  private readonly trimmer: IdleTrimmer | undefined;
  /** Clustering into pages, off the write (src/index/paging.ts). */
  private readonly paging: Paging;
  /** Training the model, off the write (src/space/training.ts). */
  private readonly training: Training;

  private constructor(
    opening: typeof OPENING,
    readonly dir: string,
    private readonly options: StoreOptions,
    private readonly config: StoreConfig,
    private readonly state: StateStore,
    private readonly lock: DirectoryLock,
    private readonly arena: BlobArena,
    private readonly vectors: BlobArena,
    private wal: Wal,
    pca: PcaModel | undefined,
    checkpointLsn: number,
  ) {
    // Private to TypeScript only: plain JavaScript can call `new MemStore(dir, options)`, which had
    // failed with a TypeError reading the missing configuration.
    if (opening !== OPENING) throw new MemstoreError('INVALID_ARGUMENT', 'a store is opened with await MemStore.open(dir, options), not new MemStore()');
    this.codec = getCodec(config.codec);
    this.bounds = vectorBounds(config);
    this.space = new VectorSpace(config, pca);
    this.scorer = new ExactScorer(config.metric, config.dim);
    this.reads = new RecordReads(dir, config.dim, arena, vectors);
    // Before training the index holds the vectors themselves (float32), to fit PCA on.
    this.index = this.space.trained ? newIndex(this.codec, this.space.storedDim, this.space.kernelMetric()) : newIndex(getCodec('f32'), config.dim, this.space.kernelMetric());
    this.cache = options.cache === false ? undefined : new LookasideCache<SearchHit[]>(options.cache);
    this.trimmer = options.trimWhenIdle ? idleTrimmer() : undefined;
    this.pipeline = new CommitPipeline<Mutation>(
      {
        name: dir,
        append: (payload) => this.wal.append(payload).catch((e: unknown) => {
          throw asMemstoreError(e, 'appending to the write-ahead log');
        }),
        apply: (m) => this.apply(m),
        applied: (bytes) => this.checkpoints.applied(bytes),
        lagging: (next, unapplied) => this.checkpoints.lagging() ?? this.paging.full() ?? this.training.full(this.incoming(next, unapplied)),
      },
      checkpointLsn,
    );
    this.resident = new ResidentSampler(dir);
    this.searches = new SearchPath({
      metric: config.metric,
      oversample: options.oversample ?? defaultOversample(config.codec, config.pca !== null),
      space: this.space,
      reads: this.reads,
      scorer: this.scorer,
      cache: this.cache,
      index: () => this.index,
      writes: () => this.writes,
      exclusive: (step) => this.pipeline.exclusive(step),
      placeAt: (slot, idOf) => this.index.placeAt(slot) ?? this.placeAt(slot, idOf(slot)),
      docOf: (id, slot) => this.docOf(id, slot),
      markDamaged: (id, e) => this.markDamaged(id, e),
      setAsideIfUnchanged: (id, ref, e) => this.setAsideIfUnchanged(id, ref, e),
    });
    // The memory API's calls, accepted before close(), go on while it waits for them; the one whose
    // own embedder called close() is CLOSED at its next step, and only that one: every other call
    // accepted before had been refused with it (a remember accepted first, when a recall's embedder
    // closed the store; a hostile pass).
    const usable = <T>(f: () => T): T => {
      if (this.holdingTurn.getStore()?.refused === true || this.inRecall.getStore()?.refused === true) throw new MemstoreError('CLOSED', `store ${this.dir} is closed`);
      return f();
    };
    this.memories = new Memories({
      metric: config.metric,
      dim: config.dim,
      embed: options.embed,
      dedupe: options.dedupe,
      // Its own writes are issued at once: the call they belong to already has its turn.
      add: (records) => usable(() => this.adding(records)()),
      // Not this.search(): a recall accepted before close() searches while close waits for it.
      search: (query, o) => usable(() => this.searchOpen(query, o)),
      delete: (ids) => usable(() => this.deleting(ids)()),
      count: () => usable(() => this.index.size),
      has: (id) => usable(() => this.index.has(id) || this.damage.records.has(id)),
      idsMatching: (filter) => usable(() => this.searches.idsMatching(filter)),
      valuesOf: (field) => usable(() => this.searches.valuesOf(field)),
      textOf: (id) =>
        usable(async () => {
          const ref = this.docOf(id).text;
          return ref === undefined ? undefined : this.reads.text(id, ref);
        }),
      settled: () => usable(() => this.pipeline.drained()),
    });
    this.columnFiles = new ColumnCheckpoints(options.files, dir);
    this.checkpoints = new Checkpointer({
      dir,
      checkpointBytes: options.checkpointBytes,
      keepFull: config.keepFull,
      wal,
      state,
      arena,
      vectors,
      reads: this.reads,
      changes: this.changes,
      pipeline: this.pipeline,
      space: this.space,
      damage: this.damage,
      columns: this.columnFiles,
      index: () => this.index,
      indexFile: () => this.indexFile!,
      closed: () => this.closed,
      holdCheckpoints: () => this.paging.holdsCheckpoints || this.training.underWay,
      markDamaged: (id, e) => this.markDamaged(id, e),
      textsMoved: () => this.cache?.dropHotRecords(),
    });
    this.paging = new Paging({
      dir,
      pages: () => this.options.pages,
      index: () => this.index,
      trained: () => this.space.trained,
      shape: (maxPage) => this.pageShape(maxPage),
      newPageIndex: () => this.newPageIndex(),
      adopt: (old, next) => this.adoptPages(old, next),
      exclusive: (task) => this.pipeline.exclusive(task),
      ended: () => this.checkpoints.applied(0),
    });
    this.training = new Training({
      dir,
      shape: config,
      index: () => this.index,
      fits: () => this.space.fits,
      trained: () => this.space.trained,
      samples: () => this.trainingSamples(),
      pagesFrom: () => (this.options.pages === false ? undefined : this.options.pages.from),
      fit: (rows) => this.space.fit(rows),
      newIndex: (fitted) => newIndex(this.codec, fitted.model.outDim, kernelMetricOf(this.config.metric, true)),
      carry: (buffer, next, id, fitted, row) => {
        buffer.decode(id, row);
        next.put(id, fitted.projector.centered(row));
        next.setDocumented(id, buffer.documented(id));
        if (this.config.keepFull) next.setPlace(id, buffer.placeOf(id));
      },
      install: (buffer, next, fitted) => this.installTrained(buffer, next, fitted),
      mutations: () => this.writes,
      exclusive: (task) => this.pipeline.exclusive(task),
      ended: () => this.checkpoints.applied(0),
    });
  }

  /**
   * Opens the store in `dir`, or creates it (and the directory) when `dir` holds none and
   * `options.dim` is given. Nothing is created until the options of a create are known to be valid.
   */
  static async open(dir: string, options?: OpenOptions): Promise<MemStore> {
    return MemStore.openWith(dir, options, {});
  }

  /**
   * @internal For `memstore repair`: opens with a lock the caller already holds (released at close)
   * while the repair's copy of a damaged log exists.
   */
  static async openWith(dir: string, options: OpenOptions | undefined, internal: { lock?: DirectoryLock; repairing?: boolean; importing?: boolean; indexDamage?: IndexDamage[]; indexBlocks?: Map<string, number> }): Promise<MemStore> {
    const held = internal.lock;
    let opts: ResolvedOpenOptions;
    // A lock handed in (repair holds one from its start) is released by whatever refuses the open
    // before the store takes it over; else it stayed held, and the directory LOCKED, until exit.
    try {
      if (typeof dir !== 'string' || dir.length === 0) throw new MemstoreError('INVALID_ARGUMENT', 'dir must be a non-empty string');
      // Files are opened by path long after open (log segments, arena generations, the lock's release):
      // a relative path would follow the process's working directory wherever it goes next.
      dir = absolute(dir);
      opts = resolveOpenOptions(options);
      // The search kernels first: a runtime without WebAssembly is UNSUPPORTED before a file is made.
      kernels();
      await MemStore.checkDirectory(dir, opts, internal);
    } catch (e) {
      held?.releaseAfterFailure();
      throw e;
    }
    // IO for a failure of the file system, LOCKED when another holds it (DirectoryLock.acquire).
    const lock = held ?? DirectoryLock.acquire(dir, opts.files);
    // Every file by path from here on through a view that refuses once the directory is another one.
    const files = rootedLayer(opts.files, dir);
    let state: StateStore | undefined;
    let arena: BlobArena | undefined;
    let vectors: BlobArena | undefined;
    let wal: Wal | undefined;
    let store: MemStore | undefined;
    try {
      // Before LMDB maps it: a part of its trees LMDB would read past ends the process there, at
      // whatever read or checkpoint first reaches it (STATE.md, "Damage and repair").
      refuseMalformedState(dir);
      removeLeftStateCopy(dir);
      state = StateStore.open(dir);
      let config = state.readConfig();
      // A checkpoint cut short (its thread terminated mid-transaction) is finished before the rest is read.
      await state.finishPending();
      // A creation whose open failed after the configuration's commit (out of file descriptors, the
      // process killed) took no write: an open giving a `dim` creates it again with its own options,
      // where the first attempt's had been kept for good (DIM_MISMATCH on the retry: a hostile pass).
      if (config === undefined || (opts.dim !== undefined && state.readCreating())) {
        // A creation stopped after the tables and before the configuration's commit is made again,
        // unless a store's files are beside it: then that store lost its configuration.
        if (config === undefined) refuseLostState(dir, true);
        config = createConfig(opts, dir);
        await state.create(config, !fitsModel(config));
      } else {
        checkReopen(config, opts);
      }
      const { pages, rewrite } = settlePages(config, opts);
      if (rewrite !== undefined) config = rewrite;
      const storeOpts: StoreOptions = Object.freeze({ ...opts, pages, files });
      const checkpoint = state.readCheckpoint();
      const trained = state.readTrained();
      const pca = trained ? state.readPca(config) : undefined;
      if (trained && fitsModel(config) && pca === undefined) {
        throw new MemstoreError('CORRUPTION', `${dir}: store is marked trained but holds no PCA or rotation model`, { file: statePath(dir), offset: 'pca' });
      }
      arena = await BlobArena.open({ dir, files, generation: checkpoint.arenaGeneration, mapped: opts.mmap, keepOrphans: true, ...reachedOf(checkpoint.textEnd) }).catch((e: unknown) => {
        throw asMemstoreError(e, 'opening the text arena');
      });
      vectors = await BlobArena.open({ dir, space: 'vectors', files, generation: checkpoint.vectorGeneration, mapped: opts.mmap, keepOrphans: true, ...reachedOf(checkpoint.vectorEnd) }).catch((e: unknown) => {
        throw asMemstoreError(e, 'opening the vector arena');
      });
      // The log directory is made once and never removed: one that is gone after the store opened
      // with it took every acknowledged write since the checkpoint with it. Only repair, which
      // reports the loss, opens such a store (it makes a new log at the checkpoint).
      const logMade = state.readLogMade();
      if (logMade && internal.repairing !== true && !(await files.exists(walDir(dir)).catch((e: unknown) => {
        throw asMemstoreError(e, 'looking for the write-ahead log');
      }))) {
        throw new MemstoreError('CORRUPTION', `${dir}: the write-ahead log directory is missing, and with it any write acknowledged after the last checkpoint (log position ${checkpoint.lsn}); run memstore repair ${dir} to open the store as of that checkpoint`, { file: walDir(dir) });
      }
      // The newest segment the log made, recorded before any record went into it (newestSegmentLost()).
      // Only repair opens a store that lost it. The directory is listed only where a loss is
      // possible: where no segment at all would be one.
      const madeSegment = state.readLogSegment();
      if (madeSegment !== undefined && logMade && internal.repairing !== true && newestSegmentLost(madeSegment, checkpoint.lsn, undefined)) {
        const newest = await newestSegment(files, walDir(dir)).catch((e: unknown) => {
          throw asMemstoreError(e, 'listing the write-ahead log');
        });
        if (newestSegmentLost(madeSegment, checkpoint.lsn, newest)) {
          throw new MemstoreError('CORRUPTION', `${dir}: the write-ahead log's newest segment (${segmentName(madeSegment)}) is missing, and with it any write acknowledged after log position ${madeSegment - 1}; run memstore repair ${dir} to open the store as of what the log still holds`, { file: join(walDir(dir), segmentName(madeSegment)) });
        }
      }
      wal = await Wal.open({ dir: walDir(dir), files, durability: opts.durability, startLsn: checkpoint.lsn + 1, onSegment: (lsn) => state!.markLogSegment(lsn) }).catch((e: unknown) => {
        throw asMemstoreError(e, 'opening the write-ahead log');
      });
      if (!logMade) await state.markLogMade();
      // Wal.open rotates nothing (onSegment is not called there): the mark is still madeSegment.
      if (madeSegment !== wal.activeFirstLsn) await state.markLogSegment(wal.activeFirstLsn);
      store = new MemStore(OPENING, dir, storeOpts, config, state, lock, arena, vectors, wal, pca, checkpoint.lsn);
      await store.load(checkpoint, internal.indexDamage, internal.indexBlocks);
      await store.replay(checkpoint.lsn);
      // Files of generations the state does not name go only now that all of it has proven sound:
      // a state file older than the rest (a backup put back) names earlier generations, and its open
      // fails further on; deleting first had lost the store's current arenas and index.
      await store.removeLeftovers(checkpoint);
      // New page settings are kept once the store has opened with them: an open that fails changes nothing.
      if (rewrite !== undefined) await state.writeConfig(rewrite);
      // A store that reached pages.from while opened with pages: false (or before pages existed).
      await store.training.settled();
      store.paging.ifDue();
      await store.paging.settled();
      // Opening freed the buffers it loaded through: the quiet spell that follows gives them back.
      store.trimmer?.touch();
      // Last: the store's options are its own once an open of it has succeeded.
      if (state.readCreating()) await state.markCreated();
      return store;
    } catch (e) {
      // A worker the replay set clustering must not take its plan into the store freed here (a hostile pass).
      store?.training.cancel();
      store?.paging.cancel();
      await store?.indexFile?.close().catch(() => undefined);
      store?.index.free();
      store?.space.free();
      store?.scorer.free();
      await wal?.close().catch(() => undefined);
      await arena?.close().catch(() => undefined);
      await vectors?.close().catch(() => undefined);
      await state?.close().catch(() => undefined);
      lock.releaseAfterFailure();
      throw e;
    }
  }

  /** Fills the index from the checkpoint (recovery.ts) and sets aside the records found damaged. */
  private async load(checkpoint: Checkpoint, indexDamage: IndexDamage[] | undefined, indexBlocks?: Map<string, number>): Promise<void> {
    // Pages as the checkpoint recorded them; with `pages: false` the exact index takes the codes and
    // leaves their pages (the next checkpoint writes records without them).
    if (checkpoint.paged === true && this.space.trained && this.options.pages !== false) {
      this.index.free();
      this.index = this.newPageIndex();
    } else if (checkpoint.paged === true && this.options.pages === false) {
      // The codes go back to the exact index: the next checkpoint (the close, at the latest) writes
      // them so. Left to the next write, a reopen with pages after one with pages: false had
      // found the old pages when nothing was written in between, and the exact scan otherwise
      // (a hostile pass).
      this.checkpoints.relaidNow();
    }
    const staleFrom = usableColumns(checkpoint)?.indexBytes;
    const { file, setAside, stale } = await loadCheckpoint({
      dir: this.dir,
      files: this.options.files,
      checkpoint,
      index: this.index,
      space: this.space,
      reads: this.reads,
      texts: this.arena,
      vectors: this.vectors,
      keepFull: this.config.keepFull,
      ...(indexDamage === undefined ? {} : { indexDamage }),
      ...(indexBlocks === undefined ? {} : { indexBlocks }),
      ...(staleFrom === undefined ? {} : { staleFrom }),
    });
    this.indexFile = file;
    this.index.loaded();
    for (const [id, { error, place }] of setAside) {
      this.markDamaged(id, error);
      if (place !== undefined) this.damage.places.set(id, place);
    }
    // Before the log is replayed: replaying keeps restored columns true as any write does.
    const columns = await restoreColumns({ files: this.options.files, dir: this.dir, checkpoint, index: this.index, stale, skip: (indexDamage?.length ?? 0) > 0 }).catch((e: unknown) => {
      throw asMemstoreError(e, 'reading the filter columns');
    });
    this.columnFiles.skipPast(columns.highest);
    this.columnFiles.opened(columns);
    for (const d of indexDamage ?? []) {
      this.damage.index.push(new MemstoreError('CORRUPTION', d.what, { file: d.file, offset: d.offset }));
    }
  }

  /** Deletes the files of generations `checkpoint` does not name: arena segments, index and columns files (interrupted collections and rewrites). */
  private async removeLeftovers(checkpoint: Checkpoint): Promise<void> {
    try {
      await this.arena.removeOrphans();
      await this.vectors.removeOrphans();
      await IndexFile.removeOtherGenerations({ files: this.options.files, dir: this.dir, generation: checkpoint.indexGeneration });
      await ColumnCheckpoints.removeOthers(this.options.files, this.dir, usableColumns(checkpoint)?.file);
    } catch (e) {
      throw asMemstoreError(e, 'deleting files of generations the state does not name');
    }
  }

  /** Re-applies every logged batch after the checkpoint; applying is idempotent (upserts and deletes by id). */
  private async replay(afterLsn: number): Promise<void> {
    const where = walDir(this.dir);
    try {
      for await (const record of this.wal.replay(afterLsn)) {
        const mutation = decodeMutation(record.payload, { file: where, lsn: record.lsn }, { dim: this.config.dim });
        // As a write waits in the pipeline (lagging), for a model the replay has set fitting.
        const training = this.training.full(this.incoming(mutation, NOTHING_UNAPPLIED));
        if (training !== undefined) await training;
        this.apply(mutation);
        this.pipeline.appliedLsn = record.lsn;
        this.checkpoints.replayed(record.payload.byteLength);
      }
    } catch (e) {
      throw asMemstoreError(e, 'replaying the write-ahead log');
    }
  }

  /**
   * CLOSED after close(); after an apply failed (the pipeline is broken: memory no longer follows
   * the log), that error for every call but close(), which then skips its checkpoint.
   */
  private checkOpen(): void {
    if (this.closed) throw new MemstoreError('CLOSED', `store ${this.dir} is closed`);
    if (this.pipeline.broken !== undefined) throw this.pipeline.broken;
    this.trimmer?.touch();
  }

  /** Whether the record of `id` is a memory (isMemoryMeta); a document that cannot be read is not known to be one, and is kept. */
  private isMemory(id: string): boolean {
    try {
      return isMemoryMeta(this.docOf(id).meta);
    } catch {
      return false;
    }
  }

  /** Sets a record aside as damaged: out of the index (so searches skip it), its error kept for `get`. */
  private markDamaged(id: string, e: unknown): MemstoreError {
    const error = recordCorruption(id, e);
    this.damage.records.set(id, error);
    const place = this.index.placeOf(id);
    if (place !== undefined) this.damage.places.set(id, place);
    this.index.remove(id);
    this.paging.noted(id, undefined);
    // The removal moves the last slot into the hole: a search waiting for its reads must not take
    // the slots its scan saw (rescoring bounds read codes by slot) for the index's.
    this.writes++;
    this.cache?.clear();
    return error;
  }


  /** Where the full-precision vector of a stored record lives; CORRUPTION (naming it) when none is. */
  private placeOf(id: string): VectorPlace {
    return this.placeAt(this.index.slotOf(id), id);
  }

  /** placeOf() for the record `id` in `slot` of the index (undefined: not there). */
  private placeAt(slot: number | undefined, id: string): VectorPlace {
    const place = slot === undefined ? undefined : this.index.placeAt(slot);
    if (place === undefined) {
      throw new MemstoreError('CORRUPTION', `${this.dir}: full-precision vector of ${JSON.stringify(id)} is missing`, { file: indexFilePath(this.dir, this.indexFile!.generation), offset: `vector/${id}`, id });
    }
    return place;
  }

  /**
   * The document (text reference, metadata) of a stored record; CORRUPTION (naming it) when damaged,
   * or missing though its index entry says it has one. A record without one costs no state lookup.
   * `slot`: the record's slot in the index now (a search's, with no write since its scan), which
   * spares the lookup of its entry by id.
   */
  private docOf(id: string, slot?: number): DocRecord {
    const p = this.changes.of(id);
    if (p !== undefined) return p === null ? {} : p.doc;
    if (!(slot === undefined ? this.index.documented(id) : this.index.documentedAt(slot))) return {};
    const doc = this.state.getDoc(id);
    if (doc === undefined) {
      const file = statePath(this.dir);
      throw new MemstoreError('CORRUPTION', `${file}: record ${JSON.stringify(id)} has a document by its index entry, and none in the state`, { file, offset: `docs/${id}`, id });
    }
    return doc;
  }

  // ---- writes -------------------------------------------------------------------------------

  /**
   * Inserts or replaces `records`. Either the whole batch is checked, logged and applied or, on
   * any bad record, none of it is. Resolves when the batch is durable (per `durability`) and visible,
   * and, while the codes are being clustered into pages in a worker thread (`stats().clustering`),
   * once the pages are in (src/index/PAGES.md, "Clustering off the write"), and while the model is
   * trained off the add that reached `trainSize` (`stats().training`), once it is trained
   * (src/space/TRAINING.md). An empty batch writes nothing, and resolves once every write called
   * before it is applied and durable, and after a compact() called before it. Writes resolve in call order.
   */
  add(records: readonly MemoryRecord[]): Promise<void> {
    try {
      this.checkOpen();
      return this.inTurn(this.adding(records));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Deletes the records with these ids (damaged ones too); resolves to how many existed, as add() resolves (an empty list to 0, once every write called before it is applied and durable). */
  delete(ids: readonly string[]): Promise<number> {
    try {
      this.checkOpen();
      return this.inTurn(this.deleting(ids));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** `records` checked now (a bad one throws here), and the write that adds them, to be issued in turn. */
  private adding(records: readonly MemoryRecord[]): () => Promise<void> {
    const checked = checkBatch(records, this.config.dim, this.bounds);
    // Resolves once pages it set clustering off for (or clustering under way) are in place: a caller
    // awaiting each add sees the store as if clustering had run inside the add, as it once did. Every
    // write waits so (deletes too), so that writes are acknowledged in the order they were made.
    return () => (checked.length === 0 ? this.afterEarlierWrites(undefined) : this.inOrder(this.write({ kind: 'add', records: checked }).then(() => this.afterBackground(undefined))));
  }

  /** `ids` checked now, and the write that deletes them, to be issued in turn. */
  private deleting(ids: readonly string[]): () => Promise<number> {
    const unique = checkIds(ids);
    return () => (unique.length === 0 ? this.afterEarlierWrites(0) : this.inOrder(this.write({ kind: 'delete', ids: unique }).then((n) => this.afterBackground(n))));
  }

  /**
   * `written`'s outcome, once every write issued before it has been acknowledged: writes resolve in
   * the order they were issued, whatever order they were applied and their background work
   * (afterBackground) settled in. Applied in call order, they had still been acknowledged out of it:
   * a write that had to wait before it was logged (behind a gate, or for a model being fitted)
   * resolved a few promise turns behind one issued after it that went straight to the log and was
   * applied in the same commit (a hostile pass). The caller gets a promise of its own, on which this
   * puts no handler: a rejection nobody handles is still reported as unhandled.
   */
  private inOrder<T>(written: Promise<T>): Promise<T> {
    const acknowledged = this.acknowledged.then(() =>
      written.then(
        () => undefined,
        () => undefined,
      ),
    );
    this.acknowledged = acknowledged;
    return new Promise<T>((resolve, reject) => void acknowledged.then(() => written.then(resolve, reject)));
  }

  /**
   * An empty batch's result once every write issued before it has been acknowledged, in its turn
   * among them (inOrder()), and once maintenance called before it has ended (CommitPipeline.inLine),
   * as a batch of records waits for it. It had resolved at once, ahead of a batch still waiting for
   * its fsync: a caller that awaited add([]) as a barrier found the writes before it not yet durable;
   * and then ahead of a compact() called before it (a hostile pass).
   */
  private afterEarlierWrites<T>(result: T): Promise<T> {
    return this.inOrder(this.pipeline.inLine().then(() => result));
  }

  /**
   * Issues `write` in call order: at once while no write called earlier is still being prepared,
   * else once every such one is done. A remember embeds its texts before it adds them; a write
   * called after it had reached the log first (a delete of its id undone, a forget of its namespace
   * that missed it: found by a hostile pass), and close() had refused its add.
   */
  private inTurn<T>(write: () => Promise<T>, prepared = true): Promise<T> {
    // A write made while a call holds its turn (its embedder's, say) goes at once: waiting for the
    // turn would wait for the call that waits for it, for ever.
    if ((this.waiting === 0 && prepared) || this.holdingTurn.getStore()?.running === true) return write();
    this.waiting++;
    let over!: () => void;
    // The turn passes when the write ends, or earlier when a close() within it releases it.
    const turnOver = new Promise<void>((resolve) => (over = resolve));
    const run = this.turn.then(() => {
      const held: CallUnderWay = { running: true, release: over };
      const ended = () => {
        held.running = false;
        over();
      };
      let written: Promise<T>;
      try {
        written = this.holdingTurn.run(held, write);
      } catch (e) {
        ended();
        throw e;
      }
      written.then(ended, ended);
      return written;
    });
    this.turn = turnOver.then(() => void this.waiting--);
    return run;
  }

  /** Logs `mutation`, then applies it in log order; resolves to what apply returned. */
  private write(mutation: Mutation): Promise<number> {
    const payload = encodeMutation(mutation);
    if (payload.byteLength > MAX_BATCH_BYTES) {
      throw new MemstoreError('INVALID_ARGUMENT', `the batch is ${payload.byteLength} bytes encoded, more than ${MAX_BATCH_BYTES}; split it`, { field: mutation.kind === 'add' ? 'records' : 'ids' });
    }
    return this.pipeline.write(mutation, payload);
  }

  /**
   * Applies one logged mutation to memory: index, arena, changed records. Synchronous, so no search or
   * other write ever sees half of it; everything that can fail (projection, encoding, arena
   * appends) runs before the first change to the index or the changed records. Returns the records added,
   * or how many deleted ids existed.
   */
  private apply(m: Mutation): number {
    this.writes++;
    if (m.kind === 'delete') {
      let n = 0;
      for (const id of m.ids) {
        if (this.damage.records.delete(id)) {
          this.damage.places.delete(id);
          this.changes.set(id, null);
          // What the state holds of a damaged record is unknown: its value goes, if any.
          this.changes.markStale(id);
          n++;
          continue;
        }
        if (!this.index.has(id)) continue;
        if (this.index.documented(id)) this.changes.markStale(id);
        this.releaseText(id);
        this.releaseVector(id);
        this.index.remove(id);
        this.paging.noted(id, undefined);
        this.changes.set(id, null);
        this.cache?.touch(id, this.index);
        n++;
      }
      return n;
    }
    // A batch that could reach pages.from while the store trains off the write applies to the trained store (Training.before).
    this.training.before(m.records.length);
    const forms = m.records.map((r) => this.space.storedForm(r.vector));
    const texts = m.records.map((r) => (r.text === undefined ? undefined : utf8.encode(r.text)));
    const keepVectors = this.config.keepFull || !this.space.trained;
    const textRefs: (BlobRef | undefined)[] = [];
    const vectorRefs: BlobRef[] = [];
    try {
      for (const bytes of texts) textRefs.push(bytes === undefined ? undefined : this.arena.append(bytes));
      if (keepVectors) for (const r of m.records) vectorRefs.push(this.vectors.append(new Uint8Array(r.vector.buffer, r.vector.byteOffset, r.vector.byteLength)));
    } catch (e) {
      for (const ref of textRefs) if (ref !== undefined) this.arena.release(ref);
      for (const ref of vectorRefs) this.vectors.release(ref);
      throw e;
    }
    m.records.forEach((r, i) => {
      // The record it replaces had a document (or is damaged, and may have had one): unless this
      // one has a document to put in its place, the checkpoint deletes that value.
      if (this.index.documented(r.id) || this.damage.records.has(r.id)) this.changes.markStale(r.id);
      if (this.index.has(r.id) || this.damage.records.has(r.id)) this.releaseText(r.id);
      this.releaseVector(r.id);
      this.damage.records.delete(r.id);
      this.index.put(r.id, forms[i]!);
      this.paging.noted(r.id, forms[i]!);
      const ref = vectorRefs[i];
      const place: VectorPlace | undefined = ref === undefined ? undefined : [ref[0], ref[1], ref[2]];
      this.index.setPlace(r.id, place);
      this.damage.places.delete(r.id);
      const text = textRefs[i];
      const doc: DocRecord = text === undefined && r.meta === undefined ? NO_DOC : docRecord(text, r.meta, r.metaJson);
      this.index.setDocumented(r.id, hasDoc(doc));
      if (this.index.columns.fields > 0) this.index.columns.set(this.index.slotOf(r.id)!, r.meta);
      this.changes.set(r.id, { place, doc });
      this.cache?.touch(r.id, this.index);
    });
    this.training.ifDue();
    this.paging.ifDue();
    return m.records.length;
  }

  /** An empty page-clustered index over the store's codes. */
  private newPageIndex(): PageIndex {
    if (this.options.pages === false) throw new Error('pages are off');
    return new PageIndex(this.codec, this.space.storedDim, this.space.kernelMetric(), { maxPage: this.options.pages.maxPage, sphere: this.space.routeSphere(), inputMean: this.space.inputMean() });
  }

  /** The shape of the store's page index, for a plan of its pages. */
  private pageShape(maxPage: number): PagePlanShape {
    return { codec: this.codec.name, dim: this.space.storedDim, metric: this.space.kernelMetric(), maxPage, sphere: this.space.routeSphere(), inputMean: this.space.inputMean() };
  }

  /**
   * `next` (holding the same ids) in the place of `old`, which is freed: each record's place,
   * document flag and filter columns carried over first (a mismatch throws, with nothing changed),
   * and no relocations pending, so the next checkpoint writes it whole; searches that read files
   * meanwhile start over.
   */
  private adoptPages(old: VectorIndex, next: PageIndex): void {
    for (const id of next.allIds()) {
      next.setPlace(id, old.placeOf(id));
      next.setDocumented(id, old.documented(id));
    }
    if (next.size !== old.size) throw new Error(`the pages hold ${next.size} vectors, the index they replace ${old.size}`);
    next.takeRelocated();
    carryColumns(old, next);
    this.index = next;
    old.free();
    this.writes++;
    this.checkpoints.relaidNow();
    this.searches.indexReplaced();
    this.cache?.clear();
  }

  private releaseVectorOf(index: VectorIndex, id: string): void {
    const place = index.placeOf(id);
    if (place !== undefined) this.vectors.release(this.reads.vectorRef(place));
  }

  /** Tells the vector arena that the vector of `id` is garbage now. */
  private releaseVector(id: string): void {
    const place = this.index.placeOf(id);
    if (place !== undefined) this.vectors.release(this.reads.vectorRef(place));
  }

  /** Tells the arena that the text of `id` is garbage now; a damaged document has nothing to release. */
  private releaseText(id: string): void {
    let ref: BlobRef | undefined;
    try {
      ref = this.docOf(id).text;
    } catch {
      return;
    }
    if (ref !== undefined) this.arena.release(ref);
  }

  /** What the write `next` (undefined: an exclusive step) and the writes logged before it, not yet applied, could add (Training.full). */
  private incoming(next: Mutation | undefined, unapplied: ReadonlySet<Mutation>): Incoming {
    let logged = 0;
    for (const m of unapplied) logged += recordsAdded(m);
    return { records: next === undefined ? 0 : recordsAdded(next), logged, earlier: () => this.pipeline.settled() };
  }

  /**
   * The vectors a model trains on, and so how many the store holds before it trains: trainSize, but
   * at least PCA_MIN_ROWS with PCA (with trainSize 1 it had tried at the first vector, failed, and
   * warned, then trained at the second).
   */
  private trainingSamples(): number {
    return this.config.pca === null ? this.config.trainSize : Math.max(PCA_MIN_ROWS, this.config.trainSize);
  }

  /**
   * Puts `next` (every buffered vector encoded with `fitted`: Training) in the place of the buffer,
   * and `fitted` in the space's, in memory; the next checkpoint persists the model and the codes.
   * Called once nothing can fail: a failed training keeps every buffered vector, and the retry would
   * release each one a second time, counting live bytes as garbage.
   */
  private installTrained(buffer: VectorIndex, next: VectorIndex, fitted: Fitted): void {
    carryColumns(buffer, next);
    if (!this.config.keepFull) for (const id of buffer.allIds()) this.releaseVectorOf(buffer, id);
    buffer.free();
    this.index = next;
    this.space.adopt(fitted);
    this.checkpoints.trainedNow();
    if (!this.config.keepFull) {
      for (const [id] of this.changes.entries()) this.changes.movedVector(id, undefined);
    }
    this.writes++;
    this.searches.indexReplaced();
    this.cache?.clear();
    // Trained off the write, past pages.from already: the pages the write would have started.
    this.paging.ifDue();
  }

  /** `value`, once no training or clustering is under way: one way for every write, so that writes resolving together resolve in the order they were made. */
  private async afterBackground<T>(value: T): Promise<T> {
    await this.training.settled();
    await this.paging.settled();
    return value;
  }

  // ---- checkpoints and maintenance ----------------------------------------------------------

  /**
   * Reclaims the space of deleted and replaced records: checkpoints, collects the text arena into
   * a new generation and rewrites the state file without its free pages. Writes wait meanwhile.
   * CORRUPTION while damaged records exist (`memstore repair` moves them out first).
   */
  async compact(options: CompactOptions = {}): Promise<void> {
    this.checkOpen();
    // In its turn: behind a remember called before it (MEMORY.md), which it had overtaken when
    // nothing had expired (found by a hostile pass); at once otherwise, as before.
    // A system error of a file written on the way (the index file appended, the columns file, a
    // full disk) is IO like any other: it had come out as Node's own ENOSPC (a hostile pass).
    // Checked before it takes its turn, as every call's options are: a typo and a string had been
    // taken for no options, a number as onProgress failed as IO at the first step (a hostile pass).
    const progress = progressOf(checkToolOptions(options, COMPACT_KEYS).onProgress);
    return this.inTurn(async () => {
      try {
        await this.compactNow(progress);
      } catch (e) {
        const callers = progress.thrownIn(e);
        if (callers !== undefined) throw callers.error;
        throw asMemstoreError(e, `compacting ${this.dir}`);
      }
    });
  }

  private async compactNow(progress: ProgressCalls): Promise<void> {
    const steps = 7;
    const step = (done: number) => progress.report(done, steps);
    await this.pipeline.exclusive(async () => {
      // Pages being made are taken in first, so that compaction sees them and what it rewrites is theirs.
      await this.training.now();
      await this.paging.now();
      // Expired memories go first (deletes, logged as any other write): expiry is enforced on read,
      // reclaimed here. Read inside the compaction's exclusive step, where every write called before
      // it is applied (a record added already expired in the same tick included: read before, it
      // was missed) and none called after it can be, so a remember renewing one lands either before
      // the read (then it has not expired) or after the delete (which its add undoes).
      const now = Date.now();
      const expired = this.searches.valuesOf(EXPIRES).filter((t): t is number => typeof t === 'number' && t <= now);
      if (expired.length > 0) {
        const ids = this.searches.idsMatching({ [EXPIRES]: { $in: expired } }).filter((id) => this.isMemory(id));
        // In batches: a batch of every expired id could pass MAX_BATCH_BYTES and fail the compaction.
        for (let at = 0; at < ids.length; at += SWEEP_BATCH) {
          const mutation: Mutation = { kind: 'delete', ids: ids.slice(at, at + SWEEP_BATCH) };
          await this.pipeline.writeHeld(mutation, encodeMutation(mutation));
        }
      }
      step(1);
      await this.checkpoints.checkpoint();
      step(2);
      await this.checkpoints.collectTexts();
      step(3);
      await this.checkpoints.collectVectors();
      step(4);
      // Pages made by splits drift from what k-means over every vector makes (PageClusters.recluster); the rewrite below
      // writes each record with its new page.
      if (await this.paging.recluster()) this.cache?.clear();
      step(5);
      await this.checkpoints.rewriteIndex();
      step(6);
      await this.state.compactFile();
      step(7);
    }, true);
  }

  // ---- reads --------------------------------------------------------------------------------

  /** The `k` stored records closest to `query`, best first. Damaged records are skipped. */
  search(query: Float32Array | readonly number[], options?: SearchOptions): Promise<SearchHit[]> {
    try {
      this.checkOpen();
    } catch (e) {
      return Promise.reject(e);
    }
    return this.searchOpen(query, options);
  }

  /**
   * search() once the store is known open, or a call accepted before close() is under way (a
   * recall: close waits for it). Not an async function: an exact repeat is answered without one
   * (its frame and promise were a tenth of a hit that follows a miss); what it throws is a rejection all the same.
   */
  private searchOpen(query: Float32Array | readonly number[], options?: SearchOptions): Promise<SearchHit[]> {
    let want: Wanted;
    try {
      want = this.wanted(options);
      // The bits of a remembered query passed every check when it was remembered: an identical
      // Float32Array is answered before it is checked and copied again. Its bits are read where its
      // internal slots say (float32Bytes), as the check's copy reads them: a subclass or own property
      // that shadows buffer, byteOffset or length had the cache answer for other bits than the search
      // would, and a detached buffer, a Proxy or a poser threw a TypeError, not INVALID_VECTOR.
      const bytes = this.cache !== undefined ? float32Bytes(query) : undefined;
      if (bytes !== undefined && bytes.length === 4 * this.config.dim) {
        const repeated = this.searches.repeat(bytes, want);
        if (repeated !== undefined) return Promise.resolve(repeated);
      }
    } catch (e) {
      return Promise.reject(e);
    }
    return this.searchChecked(query, want);
  }

  /** What a search with `options` asks for, the store's defaults applied. */
  private wanted(options: SearchOptions | undefined): Wanted {
    const opts = resolveSearchOptions(options);
    if (opts.rescore === true && !this.config.keepFull) {
      throw new MemstoreError('INVALID_OPTION', 'rescore needs full-precision vectors; this store was created with rescore: false', { field: 'rescore' });
    }
    // Before training too: the index then holds full-precision vectors, but its kernels score them
    // in float32, whose order among near ties (and sum, under cancellation) is not the exact one:
    // an rq or PCA store below trainSize had answered with float32 scores (a hostile pass).
    const rescore = (opts.rescore ?? this.options.rescore ?? this.config.keepFull) && this.config.keepFull;
    return { k: opts.k, rescore, filter: opts.filter, nprobe: opts.nprobe, exact: opts.exact };
  }

  private async searchChecked(query: Float32Array | readonly number[], want: Wanted): Promise<SearchHit[]> {
    return this.searches.search(checkVector(query, this.config.dim, this.bounds, 'query'), want);
  }

  /** What open() requires of `dir` before it locks it, and the directory made (durably) when it is not there. */
  private static async checkDirectory(dir: string, opts: ResolvedOpenOptions, internal: { repairing?: boolean; importing?: boolean }): Promise<void> {
    // A file where the directory should be: the lock had failed on it with IO "locking ... failed".
    if (isFile(dir)) {
      throw new MemstoreError('INVALID_ARGUMENT', `${dir} is a file, not a directory: a store is a directory`, { field: 'dir', file: dir });
    }
    refuseOverlongDir(dir);
    if (internal.importing !== true) refuseUnfinishedImport(dir);
    refuseForeignEntries(dir);
    // Creating a state file over a store that lost its own would make a new, empty store over the
    // old one's files: its log replayed into it from the wrong place, its index and arena files written over.
    refuseLostState(dir);
    if (!existsSync(statePath(dir))) createConfig(opts, dir);
    else {
      const kind = environmentKind(statePath(dir));
      // Another program's LMDB environment under the state's name: a store made inside it had
      // written its sub-databases into that program's file.
      if (kind === 'foreign') {
        throw new MemstoreError('INVALID_ARGUMENT', `${dir}: its state.mdb is another program's LMDB environment (no store configuration in it); a store needs a directory of its own`, { file: statePath(dir) });
      }
      // A state with no key at all, or no commit (LMDB's first write cut short), is a creation
      // stopped before its first commit, and is created again, unless the store's other files are
      // there: then it is a store whose state was lost.
      if (kind === 'empty' || kind === 'unfinished') {
        refuseLostState(dir, true);
        // A store is made there: its options are checked before anything is (an open without `dim`
        // had emptied the unfinished file and let LMDB make an environment, then failed).
        createConfig(opts, dir);
      }
    }
    if (internal.repairing !== true && existsSync(repairLogDir(dir))) {
      throw new MemstoreError('CORRUPTION', `${dir}: a memstore repair was interrupted; run memstore repair ${dir} again`, { file: repairLogDir(dir) });
    }
    try {
      // The log, the arenas and the lock go through `files`, LMDB through the real file system.
      // `files` first: when it is the real one, it creates the directory and makes it durable, and
      // the second call finds it there (the other order would leave `files` nothing to make durable).
      await ensureDurableDir(opts.files, dir);
      if (opts.files !== nodeFileLayer) await ensureDurableDir(nodeFileLayer, dir);
    } catch (e) {
      throw new MemstoreError('IO', `cannot create directory ${dir}`, { cause: e });
    }
  }

  /** Marks `id` damaged for a bad text at `ref`, unless a write has replaced the record meanwhile. */
  private setAsideIfUnchanged(id: string, ref: BlobRef | undefined, e: unknown): void {
    let current: BlobRef | undefined;
    try {
      current = this.docOf(id).text;
    } catch (again) {
      this.markDamaged(id, again);
      return;
    }
    if ((this.index.has(id) || this.damage.records.has(id)) && sameRef(current, ref)) this.markDamaged(id, e);
  }

  /**
   * The id of every record the store holds, damaged ones included (`get` throws CORRUPTION for
   * those), in no particular order: a snapshot, which later writes do not change. With `filter`
   * (as `search` takes it), the stored records it matches.
   */
  ids(filter?: Filter): string[] {
    this.checkOpen();
    if (filter === undefined) return [...this.index.allIds(), ...this.damage.records.keys()];
    return this.searches.idsMatching(resolveFilterOption(filter) ?? {});
  }

  // ---- the memory API (src/memory/MEMORY.md) ------------------------------------------------

  /**
   * Embeds `texts` (the store's `embed`) and keeps each as a memory of `namespace`: an identical
   * text of the namespace, or one scoring at least `dedupe` against it, is updated instead of
   * copied. Says for each whether it was added or updated, and its id.
   */
  async remember(texts: string | readonly string[], options?: RememberOptions): Promise<Remembered[]> {
    this.checkOpen();
    // Its turn is taken now, before its texts are embedded: writes called after it wait for it.
    return this.inTurn(() => this.memories.remember(texts, options), false);
  }

  /** The memories of a namespace nearest `query`, best first; expired ones and those outside `since`/`until` never. */
  async recall(query: string, options?: RecallOptions): Promise<MemoryHit[]> {
    this.checkOpen();
    // Held until it settles, and close() waits for it: it embeds its query first, and its search had
    // then found the store closed by a close() called after it (CLOSED; found by a hostile pass).
    const token = { running: true };
    const recall = this.inRecall.run(token, () => this.memories.recall(query, options));
    const done = () => {
      token.running = false;
      this.recalls.delete(token);
    };
    this.recalls.set(token, recall);
    recall.then(done, done);
    return recall;
  }

  /** Deletes the memories with these ids, or those of a namespace (that match `filter`); returns how many there were. */
  async forget(what: readonly string[] | { namespace?: string; filter?: Filter }): Promise<number> {
    this.checkOpen();
    // By namespace it reads the records before it deletes: it holds its turn meanwhile, so a write
    // called after it waits (an add of a later record under a forgotten id, in the same tick, had
    // been applied before the delete was logged, and was deleted). By ids it is one delete, at once.
    return this.inTurn(() => this.memories.forget(what), Array.isArray(what));
  }

  /** The namespaces the records name (`$ns` as remember takes one: memories, expired ones included until compact() deletes them, and records a plain add gave one), sorted. */
  namespaces(): string[] {
    this.checkOpen();
    return this.memories.namespaces();
  }

  /** The record stored under `id`, or undefined; CORRUPTION (with `id`) when it is damaged. */
  async get(id: string): Promise<StoredRecord | undefined> {
    this.checkOpen();
    checkId(id, 'id');
    for (;;) {
      const damage = this.damage.records.get(id);
      if (damage !== undefined) throw damage;
      if (!this.index.has(id)) return undefined;
      // Where the vector is and the document, taken together before the first read: one record's state.
      let doc: DocRecord;
      let vector: Float32Array | undefined;
      let place: VectorPlace | undefined;
      try {
        doc = this.docOf(id);
        if (this.config.keepFull || !this.space.trained) place = this.placeOf(id);
        else vector = this.reconstruct(id);
      } catch (e) {
        if (damagedId(e) !== id) throw e;
        this.markDamaged(id, e);
        throw this.damage.records.get(id)!;
      }
      if (place !== undefined) {
        try {
          // A compact copy: the read is a view into a buffer that also holds the frame's header.
          vector = (await this.reads.vector(id, place)).slice();
        } catch (e) {
          if (damagedId(e) !== id) throw e;
          // Moved since (a write, or the vector arena's collection): not damage, read again.
          if (!samePlace(this.index.placeOf(id), place)) continue;
          this.markDamaged(id, e);
          throw this.damage.records.get(id)!;
        }
      }
      const record: StoredRecord = { id, vector: vector! };
      if (doc.text !== undefined) {
        try {
          record.text = await this.reads.text(id, doc.text);
        } catch (e) {
          if (damagedId(e) !== id) throw e;
          this.setAsideIfUnchanged(id, doc.text, e);
          throw e;
        }
      }
      if (doc.meta !== undefined) record.meta = cloneMeta(doc.meta);
      return record;
    }
  }

  /** The vector `get` returns when full vectors are not kept: reconstructed from the code (and PCA). */
  private reconstruct(id: string): Float32Array {
    const stored = new Float32Array(this.index.dim);
    this.index.decode(id, stored);
    return fitBounds(this.space.reconstruct(stored), this.bounds);
  }

  stats(): StoreStats {
    this.checkOpen();
    const count = this.index.size;
    const scaleBytes = this.index.codec.scaled ? 4 : 0;
    const codeBytesPerVector = this.index.stride + scaleBytes;
    const walBytes = this.wal.bytes;
    const arenaStats = this.arena.stats();
    const vectorStats = this.vectors.stats();
    const arenaBytes = arenaStats.totalBytes;
    const vectorBytes = vectorStats.totalBytes;
    const cacheBytes = this.cache?.stats().bytes ?? 0;
    const modelBytes = this.space.bytes;
    const indexBytes = this.indexFile === undefined ? 0 : sizeOf(indexFilePath(this.dir, this.indexFile.generation));
    // The filter columns' file too: it had been left out (a hostile pass).
    const diskBytes = sizeOf(statePath(this.dir)) + indexBytes + this.columnFiles.committedBytes + walBytes + arenaBytes + vectorBytes;
    return {
      count,
      dim: this.config.dim,
      storedDim: this.index.dim,
      codec: this.config.codec,
      metric: this.config.metric,
      trained: this.space.trained,
      nprobe: this.index.defaultProbes,
      bytesPerVector: count === 0 ? 0 : this.index.bytesPerVector + (cacheBytes + modelBytes) / count,
      memoryBytes: this.index.bytes + cacheBytes + modelBytes + arenaStats.bufferBytes + vectorStats.bufferBytes,
      modelBytes,
      codeBytesPerVector,
      diskBytesPerVector: count === 0 ? 0 : diskBytes / count,
      diskBytes,
      mappedBytes: this.resident.bytes(),
      mappedFiles: arenaStats.mappedSegments + vectorStats.mappedSegments,
      pages: this.index.pages,
      clustering: this.paging.underWay,
      training: this.training.underWay,
      walBytes,
      arenaBytes,
      vectorBytes,
      damaged: this.damage.count,
      cache: this.cache?.stats() ?? { hits: 0, exactHits: 0, nearHits: 0, boundFailures: 0, misses: 0, answerOnly: 0, evictions: 0, bytes: 0, entries: 0, fullReadsSaved: 0, poolScored: 0 },
      rescoring: { ...this.searches.rescoring },
    };
  }

  /**
   * @internal For crash tests only: drops the store as a killed process would. Nothing is flushed
   * or checkpointed; only the directory lock and this process's handles are released so the test can
   * reopen the directory.
   */
  abandon(): Promise<void> {
    return this.shutDown(() => this.abandonNow());
  }

  private async abandonNow(): Promise<void> {
    await this.pipeline.drained();
    await this.checkpoints.idle();
    // Pages a worker is making are not waited for: the next open makes them again from the log. Not
    // before the writes are drained: a compaction among them takes its plan in (cancelled earlier,
    // it had checkpointed the exact index past pages.from: a hostile pass).
    this.training.cancel();
    this.paging.cancel();
    // Every accepted write has settled, so closing the files adds nothing a killed process would
    // not have left behind too; it only returns their descriptors (a dead fault layer just refuses).
    await this.wal.close().catch(() => undefined);
    await this.arena.close().catch(() => undefined);
    await this.vectors.close().catch(() => undefined);
    await this.indexFile?.close().catch(() => undefined);
    await this.state.close().catch(() => undefined);
    this.index.free();
    this.space.free();
    this.scorer.free();
    this.lock.release();
  }

  /**
   * Waits for accepted writes (and a compact() under way), checkpoints, makes everything durable and releases the directory.
   * Idempotent: every call settles as the first does, once it is done (a second call had resolved at
   * once, while the first still closed: a reopen after it was LOCKED; found by a hostile pass). A
   * store that failed to apply a logged batch skips the checkpoint: the log replays it.
   */
  close(): Promise<void> {
    // Called by a remember's or a recall's own embedder, the close (this one, or one called from
    // outside before it) would wait for the call that waits for it, for ever (hostile passes): it
    // lets go of every call it is within (a recall in a remember's embedder is within both), which
    // is CLOSED at its next step, and of that call alone. A remember holding its turn gives it to
    // the writes called after it, which the close then waits for as for every write accepted before
    // it: they had been CLOSED, or applied when they were plain adds (a hostile pass).
    const turn = this.holdingTurn.getStore();
    if (turn?.running === true) {
      turn.refused = true;
      turn.release?.();
    }
    const recall = this.inRecall.getStore();
    if (recall?.running === true) {
      recall.refused = true;
      this.withinClose(recall).resolve();
    }
    this.trimmer?.touch();
    return this.shutDown(() => this.closeNow());
  }

  /** The promise closedWithin holds for `key`, made at the first ask. */
  private withinClose(key: object): { promise: Promise<void>; resolve: () => void } {
    let within = this.closedWithin.get(key);
    if (within === undefined) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.closedWithin.set(key, (within = { promise, resolve }));
    }
    return within;
  }

  /** The first close() or abandon() runs `now`; every call, that one's included, settles as it does. */
  private shutDown(now: () => Promise<void>): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.closing = now();
    }
    return this.closing;
  }

  private async closeNow(): Promise<void> {
    // A compact() under way holds the gate and uses the files closed below: it finishes first (or
    // stops at its next check of the store, with CLOSED), as abandon() waits for it; so do the
    // writes accepted before close() that were queued behind it; first, those waiting their turn
    // (a remember still embedding its texts), which are accepted too; and recalls under way.
    // Each until the close() its own embedder calls lets go of it (close()).
    await this.turn;
    await Promise.allSettled([...this.recalls].map(([token, recall]) => Promise.race([recall, this.withinClose(token).promise])));
    await this.pipeline.drained();
    // Pages being made are taken in (the adds that started them wait for them too), so that the checkpoint writes them.
    await this.training.settled();
    await this.paging.settled();
    await this.pipeline.drained();
    // A collection a background checkpoint starts takes the gate after drained() may have looked.
    await this.checkpoints.idle();
    await this.pipeline.drained();
    let failure: unknown;
    if (this.pipeline.broken === undefined) {
      try {
        await this.checkpoints.checkpoint();
      } catch (e) {
        failure = e;
      }
    }
    for (const step of [() => this.wal.close(), () => this.arena.close(), () => this.vectors.close(), async () => this.indexFile?.close(), () => this.state.close()]) {
      try {
        await step();
      } catch (e) {
        failure ??= asMemstoreError(e, 'closing');
      }
    }
    this.index.free();
    this.space.free();
    this.scorer.free();
    try {
      this.lock.release();
    } catch (e) {
      failure ??= e;
    }
    if (failure !== undefined) throw failure;
  }

  // ---- repair (memstore repair) ---------------------------------------------------------------

  /**
   * @internal For repair: reads every record whole (full vector, document, text), setting aside
   * each one that fails, and returns every damaged record and key found so far.
   */
  async findDamage(): Promise<{ records: Map<string, MemstoreError>; keys: readonly DamagedKey[]; index: readonly MemstoreError[] }> {
    this.checkOpen();
    for (const id of [...this.index.allIds()]) {
      try {
        await this.get(id);
      } catch (e) {
        if (damagedId(e) !== id) throw e;
      }
    }
    // Documents no record of the index names: a record whose index entry was lost (it is named and
    // removed), or a value under a key that was damaged or names a record without a document.
    const file = statePath(this.dir);
    for (const entry of this.state.iterateDocs()) {
      const id = entry.id;
      if (id !== undefined && this.changes.of(id) !== undefined) {
        // A write since the checkpoint decides this document: one it does not carry goes at the next
        // checkpoint. The write may not have known the state held one (the record's index entry lost
        // to damage), and the document had stayed for verify to find (a hostile pass of repair).
        this.changes.markStale(id);
        continue;
      }
      if (id !== undefined && (this.damage.records.has(id) || this.index.documented(id))) continue;
      if (entry.error !== undefined || id === undefined || this.index.has(id)) {
        this.damage.keys.push({ key: Uint8Array.from(entry.key), error: entry.error ?? new MemstoreError('CORRUPTION', `${file}: a document of ${JSON.stringify(id)}, whose index entry says it has none`, { file, offset: `docs/${id}` }) });
        continue;
      }
      this.damage.records.set(id, new MemstoreError('CORRUPTION', `${file}: record ${JSON.stringify(id)} has a document and no index entry`, { file, offset: `docs/${id}`, id }));
    }
    return { records: new Map(this.damage.records), keys: [...this.damage.keys], index: [...this.damage.index] };
  }

  /** @internal For repair: logs and applies a mutation salvaged from a damaged log. */
  reapply(mutation: Mutation): Promise<number> {
    try {
      this.checkOpen();
      return this.write(mutation);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** @internal For repair: whatever parts of a damaged record still read, each on its own. */
  async salvage(id: string): Promise<{ vector?: number[]; text?: string; meta?: Meta }> {
    const out: { vector?: number[]; text?: string; meta?: Meta } = {};
    try {
      const place = this.index.placeOf(id) ?? this.damage.places.get(id);
      if (place !== undefined) out.vector = Array.from(await this.reads.vector(id, place));
      else if (this.index.has(id)) out.vector = Array.from(this.reconstruct(id));
    } catch {
      // Damaged or missing: the raw bytes are in the report.
    }
    try {
      const change = this.changes.of(id);
      const doc = change === undefined ? this.state.getDoc(id) : change?.doc;
      if (doc === undefined) return out;
      if (doc.meta !== undefined) out.meta = cloneMeta(doc.meta);
      if (doc.text !== undefined) out.text = await this.reads.text(id, doc.text);
    } catch {
      // As above.
    }
    return out;
  }

  /** @internal For repair: the state's raw values under `key`. */
  rawValues(key: Uint8Array): ReturnType<StateStore['rawValues']> {
    return this.state.rawValues(key);
  }

  /** @internal For repair: drops damaged keys no id reaches, straight from the state. */
  async dropDamagedKeys(): Promise<void> {
    this.checkOpen();
    if (this.damage.keys.length === 0) return;
    await this.state.removeKeys(this.damage.keys.map((d) => d.key));
    this.damage.keys.length = 0;
  }

  /** @internal For repair: damaged stretches of the index file go with the next generation (compact writes one). */
  forgetIndexDamage(): void {
    this.damage.index.length = 0;
  }
}

/**
 * `dir` made absolute. IO when it is relative and the working directory is gone (deleted since the
 * process moved into it): Node's own error (ENOENT from uv_cwd) had come out as it was.
 */
function absolute(dir: string): string {
  try {
    return resolve(dir);
  } catch (e) {
    throw new MemstoreError('IO', `cannot make ${dir} absolute: the working directory is gone`, { cause: e, field: 'dir' });
  }
}
