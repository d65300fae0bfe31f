import { MemstoreError } from '../errors.js';
import type { MemStoreVectorStore as VectorStoreClass } from './memstore-vector-store.js';

export type { MemStoreVectorStoreConfig } from './memstore-vector-store.js';
/** The adapter's class by a name of its own, so that its documentation is generated: `MemStoreVectorStore` below is that class. */
export type { MemStoreVectorStore as MemStoreVectorStoreClass } from './memstore-vector-store.js';

// `@langchain/core` is an optional peer: without it, importing the adapter (which extends its
// VectorStore) had failed with Node's ERR_MODULE_NOT_FOUND, where the other optional parts say
// INVALID_OPTION and what to install.
try {
  await import('@langchain/core/vectorstores');
} catch (e) {
  throw new MemstoreError('INVALID_OPTION', 'memstore/langchain needs the package @langchain/core, which is not installed (npm install @langchain/core)', { cause: e, field: 'langchain' });
}

/** The LangChain.js vector store over a memstore store (memstore-vector-store.ts). */
export const MemStoreVectorStore: typeof VectorStoreClass = (await import('./memstore-vector-store.js')).MemStoreVectorStore;
export type MemStoreVectorStore = VectorStoreClass;
