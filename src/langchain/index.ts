export { MemStoreVectorStore } from './memstore-vector-store.js';
export type { MemStoreVectorStoreConfig } from './memstore-vector-store.js';
