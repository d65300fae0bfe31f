import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { Document, type DocumentInterface } from '@langchain/core/documents';
import type { EmbeddingsInterface } from '@langchain/core/embeddings';
import { maximalMarginalRelevance } from '@langchain/core/utils/math';
import { VectorStore, type MaxMarginalRelevanceSearchOptions } from '@langchain/core/vectorstores';
import { MemstoreError } from '../errors.js';
import { MemStore, type SearchHit } from '../memstore.js';
import { onlyKeys, type Filter, type OpenOptions } from '../options.js';
import { isPlainObject } from '../input.js';
import { statePath } from '../store/files.js';

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
    return MemStoreVectorStore.openFor(embeddings, config, async () => (await embeddings.embedQuery('dimension')).length);
  }

  /** open(), the dimension of a store it creates from `dim()` (called only then). */
  private static async openFor(embeddings: EmbeddingsInterface, config: MemStoreVectorStoreConfig, dim: () => Promise<number>): Promise<MemStoreVectorStore> {
    checkConfig(config);
    if ('store' in config) return new MemStoreVectorStore(embeddings, { store: config.store });
    let options: OpenOptions = { ...(config.open ?? {}) };
    if (options.dim === undefined && !existsSync(statePath(config.directory))) options = { ...options, dim: await dim() };
    return new MemStoreVectorStore(embeddings, { store: await MemStore.open(config.directory, options) });
  }

  _vectorstoreType(): string {
    return 'memstore';
  }

  async addVectors(vectors: number[][], documents: DocumentInterface[], options?: { ids?: string[] }): Promise<string[]> {
    if (vectors.length !== documents.length) throw new MemstoreError('INVALID_ARGUMENT', `${vectors.length} vectors for ${documents.length} documents`, { field: 'vectors' });
    const ids = documents.map((d, i) => options?.ids?.[i] ?? d.id ?? randomUUID());
    await this.store.add(documents.map((d, i) => ({ id: ids[i]!, vector: vectors[i]!, text: d.pageContent, ...(Object.keys(d.metadata ?? {}).length === 0 ? {} : { meta: d.metadata as Record<string, unknown> }) })));
    return ids;
  }

  async addDocuments(documents: DocumentInterface[], options?: { ids?: string[] }): Promise<string[]> {
    return this.addVectors(await this.embeddings.embedDocuments(documents.map((d) => d.pageContent)), documents, options);
  }

  async similaritySearchVectorWithScore(query: number[], k: number, filter?: Filter): Promise<[DocumentInterface, number][]> {
    const hits = await this.store.search(query, { k, ...(filter === undefined ? {} : { filter }) });
    return hits.map((h) => [documentOf(h), h.score]);
  }

  /** Deletes the documents with these ids. */
  override async delete(params?: { ids?: string[] }): Promise<void> {
    if (params?.ids === undefined) throw new MemstoreError('INVALID_ARGUMENT', 'delete takes { ids }', { field: 'ids' });
    await this.store.delete(params.ids);
  }

  /**
   * The `k` documents maximal marginal relevance picks among the `fetchK` nearest (their vectors as
   * stored, read back with `get`), `lambda` trading relevance (1) against diversity (0).
   */
  override async maxMarginalRelevanceSearch(query: string, options: MaxMarginalRelevanceSearchOptions<Filter>): Promise<DocumentInterface[]> {
    const q = await this.embeddings.embedQuery(query);
    const hits = await this.store.search(q, { k: options.fetchK ?? FETCH_K, ...(options.filter === undefined ? {} : { filter: options.filter }) });
    const vectors: number[][] = [];
    for (const h of hits) vectors.push(Array.from((await this.store.get(h.id))?.vector ?? []));
    const picked = maximalMarginalRelevance(q, vectors, options.lambda ?? 0.5, options.k);
    return picked.map((i) => documentOf(hits[i]!));
  }

  /** Closes the store (every write durable). */
  close(): Promise<void> {
    return this.store.close();
  }

  static override async fromTexts(texts: string[], metadatas: object[] | object, embeddings: EmbeddingsInterface, config: MemStoreVectorStoreConfig): Promise<MemStoreVectorStore> {
    const docs = texts.map((pageContent, i) => new Document({ pageContent, metadata: (Array.isArray(metadatas) ? metadatas[i] : metadatas) as Record<string, unknown> | undefined ?? {} }));
    return MemStoreVectorStore.fromDocuments(docs, embeddings, config);
  }

  static override async fromDocuments(docs: DocumentInterface[], embeddings: EmbeddingsInterface, config: MemStoreVectorStoreConfig): Promise<MemStoreVectorStore> {
    const vectors = await embeddings.embedDocuments(docs.map((d) => d.pageContent));
    // A store made here takes its dimension from the documents' vectors (a probe only when there are none).
    const store = await MemStoreVectorStore.openFor(embeddings, config, async () => vectors[0]?.length ?? (await embeddings.embedQuery('dimension')).length);
    await store.addVectors(vectors, docs);
    return store;
  }
}

function documentOf(h: SearchHit): DocumentInterface {
  return new Document({ id: h.id, pageContent: h.text ?? '', metadata: h.meta ?? {} });
}
