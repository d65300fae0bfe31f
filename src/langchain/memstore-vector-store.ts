import { randomUUID } from 'node:crypto';
import { AsyncLocalStorage } from 'node:async_hooks';
import { existsSync } from 'node:fs';
import { Document, type DocumentInterface } from '@langchain/core/documents';
import type { EmbeddingsInterface } from '@langchain/core/embeddings';
import { VectorStore, type MaxMarginalRelevanceSearchOptions } from '@langchain/core/vectorstores';
import { MemstoreError } from '../errors.js';
import { MemStore, type SearchHit } from '../memstore.js';
import { MAX_K, onlyKeys, type Filter, type OpenOptions } from '../options.js';
import { checkBatch, checkText, isPlainObject, readGuarded } from '../input.js';
import { statePath } from '../store/files.js';
import { maximalMarginalRelevance } from './mmr.js';

/** Where a MemStoreVectorStore keeps its documents: a store already open, or a directory to open (creating it with `open`). */
export type MemStoreVectorStoreConfig = { store: MemStore } | { directory: string; open?: Omit<OpenOptions, 'dim'> & { dim?: number } };

/**
 * INVALID_OPTION unless `config` is `{ store }` with a MemStore, or `{ directory, open? }` with a
 * non-empty string: a misspelt key (`opne`) had been dropped, the store made with defaults fixed at
 * creation, and a missing directory was Node's own TypeError.
 */
function checkConfig(config: unknown): asserts config is MemStoreVectorStoreConfig {
  if (!isPlainObject(config)) throw new MemstoreError('INVALID_OPTION', 'the config must be { store } or { directory, open }', { field: 'config' });
  if ('store' in config) {
    onlyKeys('', config, ['store']);
    if (!(config['store'] instanceof MemStore)) throw new MemstoreError('INVALID_OPTION', 'store must be a MemStore', { field: 'store' });
    return;
  }
  onlyKeys('', config, ['directory', 'open']);
  const directory = config['directory'];
  if (typeof directory !== 'string' || directory === '') throw new MemstoreError('INVALID_OPTION', 'the config needs a directory (a non-empty string), or a store', { field: 'directory' });
}

/** MMR's candidates per result when `fetchK` is not given. @default 20 (LangChain's) */
const FETCH_K = 20;

/**
 * A LangChain.js vector store (`@langchain/core` 1.x, an optional peer dependency) over a memstore
 * store: documents are records (pageContent the text, metadata the meta, which must be JSON data),
 * `filter` is memstore's (equality and `$in` on metadata fields), scores are memstore's (higher is
 * closer). Everything else (durability, quantization, the cache) is the store's.
 */
export class MemStoreVectorStore extends VectorStore {
  declare FilterType: Filter;
  readonly store: MemStore;

  constructor(embeddings: EmbeddingsInterface, config: { store: MemStore }) {
    super(embeddings, {});
    this.store = config.store;
  }

  /**
   * Opens `config.directory` (creating the store, with the embeddings' dimension found by embedding
   * one word when `open.dim` is not given), or wraps `config.store`; close() closes it either way.
   */
  static async open(embeddings: EmbeddingsInterface, config: MemStoreVectorStoreConfig): Promise<MemStoreVectorStore> {
    return MemStoreVectorStore.openFor(embeddings, config, () => probedDim(embeddings));
  }

  /** open(), the dimension of a store it creates from `dim()` (called only then). */
  private static async openFor(embeddings: EmbeddingsInterface, config: MemStoreVectorStoreConfig, dim: () => Promise<number>): Promise<MemStoreVectorStore> {
    config = readGuarded('INVALID_OPTION', 'config', () => {
      checkConfig(config);
      return 'store' in config ? { store: config.store } : { directory: config.directory, ...(config.open === undefined ? {} : { open: { ...config.open } }) };
    });
    if ('store' in config) return new MemStoreVectorStore(embeddings, { store: config.store });
    let options: OpenOptions = { ...(config.open ?? {}) };
    if (options.dim === undefined && !existsSync(statePath(config.directory))) options = { ...options, dim: await dim() };
    return new MemStoreVectorStore(embeddings, { store: await MemStore.open(config.directory, options) });
  }

  _vectorstoreType(): string {
    return 'memstore';
  }

  /**
   * Writes through this adapter, in call order: an addDocuments embeds its texts first (at once,
   * beside other calls), and a delete or add called after it had reached the store before it.
   */
  private last: Promise<unknown> = Promise.resolve();
  /**
   * Within an addDocuments's embedding (the embeddings' own calls): the writes called before that
   * add, and whether it is still under way (timers and callbacks the embeddings make keep the value
   * after it ends).
   */
  private readonly embeddingAdd = new AsyncLocalStorage<{ before: Promise<unknown>; running: boolean }>();

  private inOrder<T>(write: () => Promise<T>): Promise<T> {
    // A write the embeddings of an addDocuments make, or a close(), goes once the writes called
    // before that add are done, not after the add: that waited for its embedding, which waited for
    // the write, for ever (a hostile pass). The add then finds what they did (CLOSED after a close).
    const within = this.embeddingAdd.getStore();
    if (within?.running === true) return within.before.then(write, write);
    const run = this.last.then(write, write);
    this.last = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  async addVectors(vectors: number[][], documents: DocumentInterface[], options?: { ids?: string[] }): Promise<string[]> {
    if (!Array.isArray(vectors)) throw new MemstoreError('INVALID_ARGUMENT', 'vectors must be an array of vectors', { field: 'vectors' });
    const docs = documentsOf(documents);
    if (vectors.length !== docs.length) throw new MemstoreError('INVALID_ARGUMENT', `${vectors.length} vectors for ${docs.length} documents`, { field: 'vectors' });
    return this.addChecked(vectors, docs, idsOf(options, docs.length));
  }

  /** addVectors() of vectors, documents and ids already checked (one vector per document). */
  private addChecked(vectors: readonly number[][], documents: readonly Doc[], ids: readonly unknown[] | undefined): Promise<string[]> {
    const records = recordsOf(vectors, documents, ids);
    return this.inOrder(() => this.addNow(records));
  }

  /** Adds `records` now: called in its turn (inOrder). */
  private async addNow(records: ReturnType<typeof recordsOf>): Promise<string[]> {
    await this.store.add(records);
    return records.map((r) => r.id);
  }

  async addDocuments(documents: DocumentInterface[], options?: { ids?: string[] }): Promise<string[]> {
    const docs = documentsOf(documents);
    const ids = idsOf(options, docs.length);
    const texts = docs.map((d) => d.pageContent);
    const within = { before: this.last, running: true };
    const vectors = this.embeddingAdd.run(within, () => embedding('texts', () => this.embeddings.embedDocuments(texts), texts.length));
    // Handled here too: a failed embedding waits for its turn to be reported, unhandled meanwhile.
    vectors.catch(() => undefined);
    // In its turn: an add called after this one waits for its embedding.
    const added = this.inOrder(async () => this.addNow(recordsOf(await vectors, docs, ids)));
    const ended = () => void (within.running = false);
    added.then(ended, ended);
    return added;
  }

  async similaritySearchVectorWithScore(query: number[], k: number, filter?: Filter): Promise<[DocumentInterface, number][]> {
    const hits = await this.store.search(query, { k, ...(filter === undefined ? {} : { filter }) });
    return hits.map((h) => [documentOf(h), h.score]);
  }

  override async similaritySearch(query: string, k = 4, filter?: Filter): Promise<DocumentInterface[]> {
    return (await this.similaritySearchWithScore(query, k, filter)).map(([d]) => d);
  }

  override async similaritySearchWithScore(query: string, k = 4, filter?: Filter): Promise<[DocumentInterface, number][]> {
    return this.similaritySearchVectorWithScore(await this.embedQuery(query), k, filter);
  }

  /** Deletes the documents with these ids (`{ ids }` only: this store deletes by id). */
  override async delete(params?: { ids?: string[] }): Promise<void> {
    const ids = readGuarded('INVALID_ARGUMENT', 'ids', () => {
      if (!isPlainObject(params) || params['ids'] === undefined) throw new MemstoreError('INVALID_ARGUMENT', 'delete takes { ids }', { field: 'ids' });
      onlyKeys('', params, ['ids']);
      return params['ids'] as string[];
    });
    await this.inOrder(() => this.store.delete(ids));
  }

  /**
   * The `k` documents maximal marginal relevance picks among the `fetchK` nearest (their vectors as
   * stored, read back with `get`; one deleted meanwhile is left out), `lambda` trading relevance (1)
   * against diversity (0).
   */
  override async maxMarginalRelevanceSearch(query: string, options: MaxMarginalRelevanceSearchOptions<Filter>): Promise<DocumentInterface[]> {
    // Read once (a getter that throws, or a Proxy, is INVALID_OPTION; its error had come out as it was).
    options = readGuarded('INVALID_OPTION', 'options', () => {
      if (!isPlainObject(options)) throw new MemstoreError('INVALID_OPTION', 'maxMarginalRelevanceSearch takes { k, fetchK, lambda, filter }', { field: 'options' });
      // A misspelt key (`filters`, `fetch_k`) is refused, as in every options object: it had been passed over, and the search ran unfiltered.
      onlyKeys('', options, ['k', 'fetchK', 'lambda', 'filter']);
      return { ...options };
    });
    const k = options.k;
    if (!(Number.isInteger(k) && k >= 1 && k <= MAX_K)) throw new MemstoreError('INVALID_OPTION', `k must be an integer in [1, ${MAX_K}]`, { field: 'k' });
    // Checked here, not by the search it becomes the k of: a bad fetchK had been blamed on k (a hostile pass).
    // At least k by default; one given below k is refused: k past it had come back as fetchK documents, without a word.
    const fetchK = options.fetchK ?? Math.max(FETCH_K, k);
    if (!(Number.isInteger(fetchK) && fetchK >= k && fetchK <= MAX_K)) throw new MemstoreError('INVALID_OPTION', `fetchK must be an integer in [k, ${MAX_K}] (k is ${k})`, { field: 'fetchK' });
    const lambda = options.lambda ?? 0.5;
    if (!(typeof lambda === 'number' && lambda >= 0 && lambda <= 1)) throw new MemstoreError('INVALID_OPTION', 'lambda must be a number in [0, 1]', { field: 'lambda' });
    const q = await this.embedQuery(query);
    const hits = await this.store.search(q, { k: fetchK, ...(options.filter === undefined ? {} : { filter: options.filter }) });
    const kept: SearchHit[] = [];
    const vectors: Float32Array[] = [];
    for (const h of hits) {
      const record = await this.store.get(h.id);
      if (record === undefined) continue;
      kept.push(h);
      vectors.push(record.vector);
    }
    if (kept.length === 0) return [];
    const picked = maximalMarginalRelevance(this.store.stats().metric, kept.map((h) => h.score), vectors, lambda, k);
    return picked.flatMap((i) => (kept[i] === undefined ? [] : [documentOf(kept[i])]));
  }

  /** Closes the store (every write durable), once the writes called before through this adapter are done; called by the embeddings of an addDocuments, once the writes called before that add are done (the add is then CLOSED). */
  close(): Promise<void> {
    return this.inOrder(() => this.store.close());
  }

  /** The query's vector, once the query is a text as recall() takes one (a lone surrogate had been searched, where addDocuments and recall refuse it: a hostile pass). */
  private async embedQuery(query: string): Promise<number[]> {
    if (typeof query !== 'string') throw new MemstoreError('INVALID_ARGUMENT', 'the query must be a text', { field: 'query' });
    checkText(query, 'query');
    return (await embedding('query', async () => [await this.embeddings.embedQuery(query)], 1))[0]!;
  }

  /**
   * fromDocuments() of a Document per text, with `metadatas[i]` (or `metadatas` itself, for every
   * text) as its metadata. Texts are checked as documents' pageContent is: a text that is not a
   * string is INVALID_ARGUMENT (a string for the array had thrown a bare TypeError, and 5, undefined
   * or {} had been stored as "5", "" and "[object Object]"), and a metadata entry goes to the store
   * as it is (null had become {}; the store refuses it, as for addDocuments).
   */
  static override async fromTexts(texts: string[], metadatas: object[] | object, embeddings: EmbeddingsInterface, config: MemStoreVectorStoreConfig): Promise<MemStoreVectorStore> {
    const docs = readGuarded('INVALID_ARGUMENT', 'texts', () => {
      if (!Array.isArray(texts)) throw new MemstoreError('INVALID_ARGUMENT', 'texts must be an array of strings', { field: 'texts' });
      const out: { pageContent: string; metadata: unknown; id: undefined }[] = [];
      for (let i = 0; i < texts.length; i++) {
        const pageContent: unknown = texts[i];
        if (typeof pageContent !== 'string') throw new MemstoreError('INVALID_ARGUMENT', `texts[${i}] must be a string`, { field: `texts[${i}]` });
        out.push({ pageContent, metadata: Array.isArray(metadatas) ? metadatas[i] : metadatas, id: undefined });
      }
      return out;
    });
    return MemStoreVectorStore.fromDocuments(docs as DocumentInterface[], embeddings, config);
  }

  static override async fromDocuments(docs: DocumentInterface[], embeddings: EmbeddingsInterface, config: MemStoreVectorStoreConfig): Promise<MemStoreVectorStore> {
    const checked = documentsOf(docs);
    const texts = checked.map((d) => d.pageContent);
    const vectors = await embedding('texts', () => embeddings.embedDocuments(texts), texts.length);
    // Checked as add checks them before a store is made for them (dimensions against the first
    // vector's, or open.dim; ids; metadata): a failed call had left a store behind whose dimension
    // a wrong-length first vector had fixed, and a retry with the right embedder was DIM_MISMATCH.
    const made = readGuarded('INVALID_OPTION', 'config', () => {
      if (!isPlainObject(config) || 'store' in config) return undefined;
      const { directory, open } = config as { directory?: unknown; open?: unknown };
      if (typeof directory !== 'string' || directory === '' || existsSync(statePath(directory))) return undefined;
      const given = isPlainObject(open) ? open['dim'] : undefined;
      return { given: typeof given === 'number' ? given : undefined };
    });
    // A store made here without open.dim takes the first vector's length: one that is no vector of
    // finite numbers is the embedder's failure (an empty one had been INVALID_OPTION naming a dim the
    // caller never gave, strings INVALID_VECTOR).
    const dim = made === undefined ? undefined : (made.given ?? (vectors.length > 0 ? dimensionOf(vectors[0], 'the first text') : undefined));
    if (dim !== undefined && vectors.length > 0) checkBatch(recordsOf(vectors, checked, undefined), dim, undefined);
    // A store made here takes its dimension from the documents' vectors (a probe only when there are none).
    const store = await MemStoreVectorStore.openFor(embeddings, config, async () => vectors[0]?.length ?? (await probedDim(embeddings)));
    try {
      await store.addChecked(vectors, checked, undefined);
    } catch (e) {
      // A store this call opened is closed again (it had stayed open, its directory LOCKED to a
      // retry for the life of the process); one it was given is the caller's.
      if (!('store' in config)) await store.close().catch(() => undefined);
      throw e;
    }
    return store;
  }
}

/**
 * INVALID_ARGUMENT unless `documents` is an array of documents whose pageContent is a text the store
 * takes (a string, well-formed, at most MAX_TEXT_BYTES): checked before the texts are embedded (a
 * 17 MiB one had been embedded, then refused).
 */
function documentsOf(documents: unknown): Doc[] {
  return readGuarded('INVALID_ARGUMENT', 'documents', () => {
    if (!Array.isArray(documents)) throw new MemstoreError('INVALID_ARGUMENT', 'documents must be an array of Documents', { field: 'documents' });
    const out: Doc[] = [];
    documents.forEach((d: unknown, i) => {
      // Each property read once, here: a getter that throws, or a Proxy, is INVALID_ARGUMENT (its
      // error had come out as it was: a hostile pass), and what is added is what was checked.
      const pageContent = typeof d === 'object' && d !== null ? (d as { pageContent?: unknown }).pageContent : undefined;
      if (typeof pageContent !== 'string') throw new MemstoreError('INVALID_ARGUMENT', `documents[${i}] must be a Document with a string pageContent`, { field: `documents[${i}]` });
      checkText(pageContent, `documents[${i}].pageContent`);
      const { metadata, id } = d as { metadata?: unknown; id?: unknown };
      out.push({ pageContent, metadata, id });
    });
    return out;
  });
}

/** A document as documentsOf() read it. */
interface Doc {
  readonly pageContent: string;
  readonly metadata: unknown;
  readonly id: unknown;
}

/**
 * INVALID_ARGUMENT unless `options.ids`, when given, is an array of at most one entry per document
 * (a position it leaves undefined falls back to Document.id, then a UUID): a string had been read
 * as its characters, a number ignored, and ids past the documents dropped.
 */
function idsOf(options: { ids?: unknown } | undefined, count: number): readonly unknown[] | undefined {
  return readGuarded('INVALID_ARGUMENT', 'ids', () => {
    const ids = options?.ids;
    if (ids === undefined) return undefined;
    if (!Array.isArray(ids) || ids.length > count) throw new MemstoreError('INVALID_ARGUMENT', `options.ids must be an array of at most ${count} ids, one per document`, { field: 'ids' });
    return [...(ids as unknown[])];
  });
}

/** The records checked vectors and documents make: their ids chosen, metadata passed on for the store to check. */
function recordsOf(vectors: readonly number[][], documents: readonly Doc[], ids: readonly unknown[] | undefined): { id: string; vector: number[]; text: string; meta?: Record<string, unknown> }[] {
  return documents.map((d, i) => {
    const metadata: unknown = d.metadata;
    // Only none, or an empty plain object (a Document's default), means no metadata: anything else
    // goes to the store, which refuses what is not JSON data (a Map, a Date, a class instance had
    // been dropped here for having no own keys).
    const none = metadata === undefined || (isPlainObject(metadata) && Reflect.ownKeys(metadata).length === 0);
    return { id: (ids?.[i] ?? d.id ?? randomUUID()) as string, vector: vectors[i]!, text: d.pageContent, ...(none ? {} : { meta: metadata as Record<string, unknown> }) };
  });
}

/**
 * What the embeddings return for `count` texts, or EMBED (with the embedder's error as `cause`) when
 * they throw or return another count, as the memory API reports its embedder's failures.
 */
async function embedding(field: 'texts' | 'query', embed: () => Promise<number[][]>, count: number): Promise<number[][]> {
  let vectors: number[][];
  try {
    vectors = await embed();
  } catch (e) {
    throw new MemstoreError('EMBED', `the embeddings failed on the ${field}`, { cause: e, field });
  }
  if (!Array.isArray(vectors) || vectors.length !== count) {
    throw new MemstoreError('EMBED', `the embeddings returned ${Array.isArray(vectors) ? vectors.length : 'no array of'} vectors for ${count} ${field === 'query' ? 'query' : 'texts'}`, { field });
  }
  return vectors;
}

/**
 * The dimension of the embeddings' vectors, from embedding one word: EMBED (the embedder's error
 * the `cause`) when they throw or return anything but a vector of finite numbers (a hostile pass:
 * the embedder's own error had come out as it was, null a TypeError, and a string or `{ length: 3 }`
 * had made a store of that many dimensions).
 */
async function probedDim(embeddings: EmbeddingsInterface): Promise<number> {
  const [v] = await embedding('query', async () => [await embeddings.embedQuery('dimension')], 1);
  return dimensionOf(v, 'a word');
}

/** The length of `values`, a vector the embeddings returned for `what` that gives a store its dimension; EMBED unless it is a non-empty vector of finite numbers. */
function dimensionOf(values: unknown, what: string): number {
  const isVector = (Array.isArray(values) || values instanceof Float32Array || values instanceof Float64Array) && values.length > 0 && Array.prototype.every.call(values, (x: unknown) => typeof x === 'number' && Number.isFinite(x));
  if (!isVector) throw new MemstoreError('EMBED', `the embeddings returned no vector of finite numbers for ${what} (what finds the dimension of a store they make)`, { field: what === 'a word' ? 'query' : 'texts' });
  return (values as ArrayLike<number>).length;
}

function documentOf(h: SearchHit): DocumentInterface {
  return new Document({ id: h.id, pageContent: h.text ?? '', metadata: h.meta ?? {} });
}
