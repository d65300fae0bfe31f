import { mkdirSync } from 'node:fs';
import { emitWarning } from 'node:process';
import { LookasideCache } from './cache/lookaside.js';
import type { Codec, CodecName } from './codec/codec.js';
import { getCodec } from './codec/index.js';
import { MemstoreError } from './errors.js';
import { matchesFilter } from './filter.js';
import type { KernelMetric } from './kernels/index.js';
import {
  resolveOpenOptions,
  resolveSearchOptions,
  type Metric,
  type OpenOptions,
  type ResolvedOpenOptions,
  type SearchOptions,
} from './options.js';
import { dotMean, fitPca, reconstruct, type PcaModel } from './pca/pca.js';
import { Projector } from './pca/projector.js';
import { CodeBlocks } from './scan/code-blocks.js';
import { TopK } from './scan/topk.js';
import { DirectoryLock } from './store/lock.js';
import { FORMAT_VERSION, StateStore, type StateWrite, type StoreConfig } from './store/state.js';
import { dot, norm, normalized, squaredDistance, toVector } from './vector.js';

/** One memory to store. `add` is an upsert: a record with an existing id replaces it whole. */
export interface MemoryRecord {
  id: string;
  vector: Float32Array | readonly number[];
  text?: string;
  meta?: Record<string, unknown>;
}

export interface SearchHit {
  id: string;
  /** Higher is closer: cosine similarity, inner product, or negative Euclidean distance. */
  score: number;
  text?: string;
  meta?: Record<string, unknown>;
}

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
  /** Dimensions of the vectors the search structure holds: the PCA output once trained, else `dim`. */
  storedDim: number;
  codec: CodecName;
  metric: Metric;
  /** PCA (when configured) has been fitted; until then vectors are buffered at full precision. */
  trained: boolean;
  /** Pages a search probes by default; the exact-scan index probes every page. */
  nprobe: number;
  /** RAM the search structure holds per vector: code, scale, and an estimate of the id's cost in the JS heap. */
  bytesPerVector: number;
  /** The quantized part of `bytesPerVector` alone: code bytes (padding included) and the scale. */
  codeBytesPerVector: number;
  /** Everything the directory holds per vector (full-precision copy, codes, text, metadata, indexes). */
  diskBytesPerVector: number;
  /** Blocks of codes in linear memory; a search scans each with one kernel call. */
  pages: number;
  /** Bytes of write-ahead log not yet checkpointed (this version writes straight to the state store: 0). */
  walBytes: number;
  /** Bytes holding texts and metadata. */
  arenaBytes: number;
  cache: { hits: number; misses: number };
}

/** Estimated JS-heap cost of keeping one id: string header, slot array entry and Map entry. */
const ID_OVERHEAD_BYTES = 48;

/**
 * Whether int8 stores quantize the query to int8 as well and scan with integer kernels (several
 * times faster; the recall cost is measured by bench/recall.ts).
 */
const INT8_QUERY = true;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function checkId(id: unknown, what: string): string {
  if (typeof id !== 'string' || id.length === 0) throw new MemstoreError('INVALID_ID', `${what} must be a non-empty string`);
  return id;
}

interface PreparedRecord {
  readonly id: string;
  readonly vector: Float32Array;
  readonly text: string | undefined;
  readonly meta: Record<string, unknown> | undefined;
}

/**
 * An embedded vector memory in one directory. Vectors go input → (PCA) → codec into blocks of
 * WebAssembly memory that searches scan in place; full-precision copies, texts and metadata live in
 * the state store on disk.
 */
export class MemStore {
  private index: CodeBlocks;
  private pca: PcaModel | undefined;
  private projector: Projector | undefined;
  private trained: boolean;
  private closed = false;
  private writeTail: Promise<unknown> = Promise.resolve();
  private readonly cache: LookasideCache<SearchHit[]> | undefined;
  private readonly codec: Codec;

  private constructor(
    readonly dir: string,
    private readonly options: ResolvedOpenOptions,
    private readonly config: StoreConfig,
    private readonly state: StateStore,
    private readonly lock: DirectoryLock,
    pca: PcaModel | undefined,
    trained: boolean,
  ) {
    this.codec = getCodec(config.codec);
    this.pca = pca;
    this.projector = pca === undefined ? undefined : new Projector(pca);
    this.trained = trained;
    this.index = trained ? new CodeBlocks(this.codec, pca?.outDim ?? config.dim) : new CodeBlocks(getCodec('f32'), config.dim);
    this.cache = options.cache === false ? undefined : new LookasideCache(options.cache.entries, options.cache.threshold);
  }

  /** Opens the store in `dir`, creating it (and the directory) when `options.dim` is given and none exists. */
  static async open(dir: string, options?: OpenOptions): Promise<MemStore> {
    if (typeof dir !== 'string' || dir.length === 0) throw new MemstoreError('INVALID_ARGUMENT', 'dir must be a non-empty string');
    const opts = resolveOpenOptions(options);
    try {
      mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw new MemstoreError('IO', `cannot create directory ${dir}`, { cause: e });
    }
    const lock = DirectoryLock.acquire(dir);
    let state: StateStore | undefined;
    try {
      state = StateStore.open(dir, opts.durability);
      let config = state.readConfig();
      if (config === undefined) {
        config = MemStore.createConfig(opts);
        await state.writeConfig(config, config.pca === null);
      } else {
        MemStore.checkReopen(config, opts);
      }
      const trained = state.readTrained();
      const pca = trained ? state.readPca() : undefined;
      if (trained && config.pca !== null && pca === undefined) {
        throw new MemstoreError('CORRUPTION', `${dir}: store is marked trained but holds no PCA model`, { file: dir, offset: 'pca' });
      }
      const store = new MemStore(dir, opts, config, state, lock, pca, trained);
      store.load();
      return store;
    } catch (e) {
      await state?.close().catch(() => undefined);
      lock.release();
      throw e;
    }
  }

  private static createConfig(opts: ResolvedOpenOptions): StoreConfig {
    if (opts.dim === undefined) {
      throw new MemstoreError('INVALID_OPTION', 'dim is required to create a store');
    }
    if (opts.pca !== undefined && 'dims' in opts.pca && opts.pca.dims > opts.dim) {
      throw new MemstoreError('INVALID_OPTION', `pca.dims (${opts.pca.dims}) exceeds dim (${opts.dim})`);
    }
    return {
      formatVersion: FORMAT_VERSION,
      dim: opts.dim,
      metric: opts.metric ?? 'cosine',
      codec: opts.codec ?? 'int8',
      pca: opts.pca ?? null,
      keepFull: opts.rescore ?? true,
      trainSize: opts.trainSize ?? 4096,
    };
  }

  private static checkReopen(config: StoreConfig, opts: ResolvedOpenOptions): void {
    if (opts.dim !== undefined && opts.dim !== config.dim) {
      throw new MemstoreError('DIM_MISMATCH', `store has dim ${config.dim}, opened with ${opts.dim}`);
    }
    const mismatch = (what: string, stored: unknown, given: unknown): MemstoreError =>
      new MemstoreError('OPTION_MISMATCH', `store was created with ${what} ${JSON.stringify(stored)}, opened with ${JSON.stringify(given)}`);
    if (opts.metric !== undefined && opts.metric !== config.metric) throw mismatch('metric', config.metric, opts.metric);
    if (opts.codec !== undefined && opts.codec !== config.codec) throw mismatch('codec', config.codec, opts.codec);
    if (opts.pca !== undefined && JSON.stringify(opts.pca) !== JSON.stringify(config.pca)) throw mismatch('pca', config.pca, opts.pca);
    if (opts.rescore === true && !config.keepFull) throw mismatch('rescore', false, true);
    if (opts.trainSize !== undefined && opts.trainSize !== config.trainSize) throw mismatch('trainSize', config.trainSize, opts.trainSize);
  }

  private load(): void {
    if (this.trained) {
      const codeBytes = this.index.dim * this.codec.bytesPerDim;
      for (const { id, code, scale } of this.state.iterateCodes(codeBytes)) this.index.putCode(id, code, scale);
    } else {
      for (const { id, vector } of this.state.iterateFull(this.config.dim)) this.index.put(id, this.storedForm(vector));
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new MemstoreError('CLOSED', `store ${this.dir} is closed`);
  }

  /** Runs write operations one after another, so the in-memory index follows the commit order. */
  private enqueue<T>(op: () => Promise<T>): Promise<T> {
    const result = this.writeTail.then(op);
    this.writeTail = result.catch(() => undefined);
    return result;
  }

  /** The vector as the index holds it: unit length for cosine, then projected once PCA is fitted. */
  private storedForm(vector: Float32Array): Float32Array {
    const v = this.config.metric === 'cosine' ? normalized(vector) : vector;
    if (!this.trained || this.projector === undefined) return v;
    return this.projector.centered(v);
  }

  private kernelMetric(): KernelMetric {
    if (this.config.metric === 'l2') return 'l2';
    // Projections are not renormalized (that costs recall), so cosine on a PCA store ranks by the dot product.
    return this.config.metric === 'cosine' && (this.pca === undefined || !this.trained) ? 'cosine' : 'dot';
  }

  /** The query in the index's space and the constant to add back to its kernel scores. */
  private queryForm(query: Float32Array): { vector: Float32Array; offset: number } {
    const q = this.config.metric === 'cosine' ? normalized(query) : query;
    if (!this.trained || this.pca === undefined || this.projector === undefined) return { vector: q, offset: 0 };
    if (this.config.metric === 'l2') return { vector: this.projector.centered(q), offset: 0 };
    return { vector: this.projector.uncentered(q), offset: dotMean(this.pca, q) };
  }

  private exactScore(query: Float32Array, queryNorm: number, x: Float32Array): number {
    switch (this.config.metric) {
      case 'dot':
        return dot(query, x);
      case 'l2':
        return -Math.sqrt(squaredDistance(query, x));
      case 'cosine': {
        const d = queryNorm * norm(x);
        return d === 0 ? 0 : dot(query, x) / d;
      }
    }
  }

  private prepare(records: unknown): PreparedRecord[] {
    if (!Array.isArray(records)) throw new MemstoreError('INVALID_ARGUMENT', 'add expects an array of records');
    const byId = new Map<string, PreparedRecord>();
    records.forEach((r: unknown, i: number) => {
      if (!isPlainObject(r)) throw new MemstoreError('INVALID_ARGUMENT', `records[${i}] must be an object`);
      const id = checkId(r['id'], `records[${i}].id`);
      const vector = toVector(r['vector'], this.config.dim, `records[${i}].vector`);
      const text = r['text'];
      if (text !== undefined && typeof text !== 'string') {
        throw new MemstoreError('INVALID_ARGUMENT', `records[${i}].text must be a string`);
      }
      const meta = r['meta'];
      if (meta !== undefined && !isPlainObject(meta)) {
        throw new MemstoreError('INVALID_ARGUMENT', `records[${i}].meta must be a plain object`);
      }
      // The last record of a batch wins, as if the batch were applied in order.
      byId.delete(id);
      byId.set(id, { id, vector, text, meta });
    });
    return [...byId.values()];
  }

  /**
   * Inserts or replaces `records`. Either the whole batch is validated and applied or, on any bad
   * record, none of it is. Resolves when the batch is durable (per `durability`) and visible.
   */
  add(records: readonly MemoryRecord[]): Promise<void> {
    try {
      this.checkOpen();
      const prepared = this.prepare(records);
      if (prepared.length === 0) return Promise.resolve();
      return this.enqueue(() => this.applyAdd(prepared));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  private async applyAdd(records: readonly PreparedRecord[]): Promise<void> {
    const writes: StateWrite[] = [];
    const codes: { id: string; code: Uint8Array; scale: number }[] = [];
    const buffered: { id: string; vector: Float32Array }[] = [];
    const codeBytes = this.index.dim * this.index.codec.bytesPerDim;
    for (const r of records) {
      const stored = this.storedForm(r.vector);
      const doc = { ...(r.text === undefined ? {} : { text: r.text }), ...(r.meta === undefined ? {} : { meta: r.meta }) };
      if (this.trained) {
        const code = new Uint8Array(codeBytes);
        const scale = this.codec.encode(stored, code);
        codes.push({ id: r.id, code, scale });
        writes.push({ kind: 'put', id: r.id, full: this.config.keepFull ? r.vector : undefined, code: { code, scale }, doc });
      } else {
        buffered.push({ id: r.id, vector: stored });
        writes.push({ kind: 'put', id: r.id, full: r.vector, doc });
      }
    }
    await this.state.apply(writes);
    for (const c of codes) this.index.putCode(c.id, c.code, c.scale);
    for (const b of buffered) this.index.put(b.id, b.vector);
    this.cache?.clear();
    if (!this.trained && this.index.size >= this.config.trainSize) await this.train();
  }

  /**
   * Fits PCA on the buffered vectors and re-encodes them. The batch that triggered it is already
   * durable, so a failure here leaves the store untrained but intact, and training is retried by
   * the next add.
   */
  private async train(): Promise<void> {
    const spec = this.config.pca;
    if (spec === null) return;
    try {
      const buffer = this.index;
      const ids = [...buffer.allIds()];
      const rows = ids.map((id) => {
        const v = new Float32Array(this.config.dim);
        buffer.decode(id, v);
        return v;
      });
      const model = fitPca(rows, this.config.dim, spec);
      const projector = new Projector(model);
      const codes = new Map<string, { code: Uint8Array; scale: number }>();
      const codeBytes = model.outDim * this.codec.bytesPerDim;
      rows.forEach((row, i) => {
        const code = new Uint8Array(codeBytes);
        const scale = this.codec.encode(projector.centered(row), code);
        codes.set(ids[i]!, { code, scale });
      });
      try {
        await this.state.apply([{ kind: 'trained', pca: model, codes, dropFull: !this.config.keepFull }]);
      } catch (e) {
        projector.free();
        throw e;
      }
      const next = new CodeBlocks(this.codec, model.outDim);
      for (const [id, c] of codes) next.putCode(id, c.code, c.scale);
      this.index = next;
      this.pca = model;
      this.projector = projector;
      this.trained = true;
      buffer.free();
      this.cache?.clear();
    } catch (e) {
      emitWarning(new MemstoreError('IO', `training PCA for ${this.dir} failed; it is retried on the next add`, { cause: e }));
    }
  }

  /** Deletes the records with these ids; resolves to how many existed. */
  delete(ids: readonly string[]): Promise<number> {
    try {
      this.checkOpen();
      if (!Array.isArray(ids)) throw new MemstoreError('INVALID_ARGUMENT', 'delete expects an array of ids');
      const unique = [...new Set(ids.map((id: unknown, i) => checkId(id, `ids[${i}]`)))];
      return this.enqueue(async () => {
        const present = unique.filter((id) => this.index.has(id));
        if (present.length === 0) return 0;
        await this.state.apply(present.map((id) => ({ kind: 'delete', id })));
        for (const id of present) this.index.remove(id);
        this.cache?.clear();
        return present.length;
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** The `k` stored records closest to `query`, best first. */
  search(query: Float32Array | readonly number[], options?: SearchOptions): Promise<SearchHit[]> {
    try {
      this.checkOpen();
      return Promise.resolve(this.searchNow(query, options));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  private searchNow(query: Float32Array | readonly number[], options: SearchOptions | undefined): SearchHit[] {
    const opts = resolveSearchOptions(options);
    const q = toVector(query, this.config.dim, 'query');
    if (opts.rescore === true && !this.config.keepFull) {
      throw new MemstoreError('INVALID_OPTION', 'rescore needs full-precision vectors; this store was created with rescore: false');
    }
    // Before training the index holds full-precision vectors, so its scores are already exact.
    const rescore = (opts.rescore ?? this.options.rescore ?? this.config.keepFull) && this.config.keepFull && this.trained;
    const cacheKey = JSON.stringify([opts.k, opts.filter ?? null, rescore, opts.exact, opts.nprobe ?? null]);
    const cached = this.cache?.get(q, cacheKey);
    if (cached !== undefined) return cached.map((h) => ({ ...h }));

    const hits = this.rankNow(q, opts.k, rescore, opts.filter);
    this.cache?.set(q, cacheKey, hits.map((h) => ({ ...h })));
    return hits;
  }

  private rankNow(q: Float32Array, k: number, rescore: boolean, filter: SearchOptions['filter']): SearchHit[] {
    const size = this.index.size;
    if (size === 0) return [];
    const { vector, offset } = this.queryForm(q);
    const metric = this.kernelMetric();
    const top = new TopK(Math.min(size, rescore ? k * this.options.oversample : k));
    const accept = filter === undefined ? undefined : (slot: number) => matchesFilter(this.state.getDoc(this.index.idAt(slot))?.meta, filter);
    this.index.scan({ vector, metric, int8Query: INT8_QUERY }, top, accept);

    let ranked: { id: string; score: number }[];
    if (rescore) {
      const qNorm = norm(q);
      ranked = top.sorted().map(({ slot }) => {
        const id = this.index.idAt(slot);
        const full = this.state.getFull(id, this.config.dim);
        if (full === undefined) {
          throw new MemstoreError('CORRUPTION', `${this.dir}: full-precision vector of ${id} is missing`, { file: this.dir, offset: `full/${id}` });
        }
        return { id, score: this.exactScore(q, qNorm, full) };
      });
      ranked.sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      ranked.length = Math.min(ranked.length, k);
    } else {
      ranked = top.sorted().map(({ score, slot }) => ({
        id: this.index.idAt(slot),
        score: metric === 'l2' ? -Math.sqrt(Math.max(0, -score)) : score + offset,
      }));
    }
    return ranked.map(({ id, score }) => {
      const doc = this.state.getDoc(id);
      const hit: SearchHit = { id, score };
      if (doc?.text !== undefined) hit.text = doc.text;
      if (doc?.meta !== undefined) hit.meta = doc.meta;
      return hit;
    });
  }

  /** The record stored under `id`, or undefined. */
  get(id: string): Promise<StoredRecord | undefined> {
    try {
      this.checkOpen();
      checkId(id, 'id');
      return Promise.resolve(this.getNow(id));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  private getNow(id: string): StoredRecord | undefined {
    if (!this.index.has(id)) return undefined;
    let vector: Float32Array | undefined;
    if (this.config.keepFull || !this.trained) {
      vector = this.state.getFull(id, this.config.dim);
    } else {
      const stored = new Float32Array(this.index.dim);
      this.index.decode(id, stored);
      if (this.pca === undefined) {
        vector = stored;
      } else {
        vector = new Float32Array(this.config.dim);
        reconstruct(this.pca, stored, vector);
      }
    }
    if (vector === undefined) {
      throw new MemstoreError('CORRUPTION', `${this.dir}: vector of ${id} is missing`, { file: this.dir, offset: `full/${id}` });
    }
    const doc = this.state.getDoc(id);
    const record: StoredRecord = { id, vector };
    if (doc?.text !== undefined) record.text = doc.text;
    if (doc?.meta !== undefined) record.meta = doc.meta;
    return record;
  }

  stats(): StoreStats {
    this.checkOpen();
    const count = this.index.size;
    const scaleBytes = this.index.codec.scaled ? 4 : 0;
    const codeBytesPerVector = this.index.stride + scaleBytes;
    const idBytes = count === 0 ? 0 : ID_OVERHEAD_BYTES + this.index.idCharacters / count;
    return {
      count,
      dim: this.config.dim,
      storedDim: this.index.dim,
      codec: this.config.codec,
      metric: this.config.metric,
      trained: this.trained,
      nprobe: this.index.blockCount,
      bytesPerVector: codeBytesPerVector + idBytes,
      codeBytesPerVector,
      diskBytesPerVector: count === 0 ? 0 : this.state.fileBytes() / count,
      pages: this.index.blockCount,
      walBytes: 0,
      arenaBytes: this.state.docBytes(),
      cache: { hits: this.cache?.hits ?? 0, misses: this.cache?.misses ?? 0 },
    };
  }

  /** Waits for pending writes, makes everything durable and releases the directory. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.writeTail;
    this.index.free();
    this.projector?.free();
    try {
      await this.state.close();
    } finally {
      this.lock.release();
    }
  }
}
