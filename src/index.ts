export { MemStore } from './memstore.js';
export type { CompactOptions, MemoryRecord, SearchHit, StoredRecord, StoreStats } from './memstore.js';
export { MemstoreError, isMemstoreError } from './errors.js';
export type { MemstoreErrorCode, MemstoreErrorDetails } from './errors.js';
export type {
  CacheOptions,
  Embed,
  Durability,
  Filter,
  FilterCondition,
  MetaValue,
  Metric,
  OpenOptions,
  PagesOptions,
  PcaOption,
  SearchOptions,
} from './options.js';
export type { CodecName, ScalarCodecName, RqCodecName } from './codec/codec.js';
export type { FileLayer, FileHandle, OpenMode } from '../io/file-layer.js';
export type { MappedFile } from '../io/mmap.js';
export type { StoreReport, Problem } from './store/verify.js';
export { checkStore } from './store/verify.js';
export { exportStore } from './export/export-store.js';
export type { ExportOptions } from './export/export-store.js';
export { importStore } from './export/import-store.js';
export type { ImportOptions } from './export/import-store.js';
export { FORMATS } from './export/formats.js';
export type { ExportFormat } from './export/formats.js';
export type { MemoryHit, RecallOptions, Remembered, RememberOptions } from './memory/memories.js';
export type { ArenaEnd, ArenaProblem, ArenaVerifyReport } from './arena/arena.js';
export type { Checkpoint, ColumnsRef, StoreConfig } from './store/state.js';
export type { CacheStats } from './cache/lookaside.js';
export type { RescoringStats } from './search/search-path.js';
