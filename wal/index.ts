export { Wal, inspectWal, newestSegment, type WalOptions } from './wal.js';
export type { Durability } from './writer.js';
export type { WalRecord, TornTail, LogScan, ScannedSegment } from './reader.js';
export { WalError, isWalError, type WalErrorCode, type WalErrorDetails } from './errors.js';
export { nodeFileLayer, type FileLayer, type FileHandle, type OpenMode } from '../io/file-layer.js';
export { WAL_BLOCK_SIZE, WAL_HEADER_SIZE, segmentName, parseSegmentName } from './format.js';
