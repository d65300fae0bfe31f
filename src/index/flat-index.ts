import { isRqCodec, type Codec } from '../codec/codec.js';
import type { FilterColumns } from '../filter/columns.js';
import { CodeBlocks, INDEX_BLOCK_VECTORS, type KernelForm, type LoadedRecord, type ScanQuery, type StoredRecord, type VectorPlace } from '../scan/code-blocks.js';
import type { TopK } from '../scan/topk.js';
import type { KernelMetric } from '../kernels/index.js';
import { GATHER_COST, MatchingScan } from './matching-scan.js';
import type { IndexSearch, VectorIndex } from './vector-index.js';

const NOTHING: ReadonlySet<string> = new Set();

/**
 * The exact index: every search scans every code, one kernel call per block of INDEX_BLOCK_VECTORS.
 * Its pages are those blocks, and it probes them all whatever `nprobe` says, so its answers are
 * the codes' exact top-k.
 */
export class FlatIndex implements VectorIndex {
  private readonly blocks: CodeBlocks;
  private readonly matching = new MatchingScan();

  /** `places`: keep, per vector, where its full-precision copy lives; `metric`: what its scans rank by (CodeBlocks). */
  constructor(codec: Codec, dim: number, places: boolean, metric?: KernelMetric) {
    this.blocks = new CodeBlocks(codec, dim, INDEX_BLOCK_VECTORS, places, metric);
  }

  get codec(): Codec {
    return this.blocks.codec;
  }

  get dim(): number {
    return this.blocks.dim;
  }

  get size(): number {
    return this.blocks.size;
  }

  get stride(): number {
    return this.blocks.stride;
  }

  get bytes(): number {
    return this.blocks.bytes;
  }

  get idBytes(): number {
    return this.blocks.idBytes;
  }

  reserve(records: number, idBytes: number): void {
    this.blocks.reserve(records, idBytes);
  }

  get bytesPerVector(): number {
    return this.blocks.bytesPerVector;
  }

  get pages(): number {
    return this.blocks.blockCount;
  }

  get paged(): boolean {
    return false;
  }

  get columns(): FilterColumns {
    return this.blocks.columns;
  }

  get defaultProbes(): number {
    return this.blocks.blockCount;
  }

  has(id: string): boolean {
    return this.blocks.has(id);
  }

  slotOf(id: string): number | undefined {
    return this.blocks.slotOf(id);
  }

  idAt(slot: number): string {
    return this.blocks.idAt(slot);
  }

  allIds(): IterableIterator<string> {
    return this.blocks.allIds();
  }

  put(id: string, vector: Float32Array): void {
    this.blocks.put(id, vector);
  }

  putCode(id: string, code: Uint8Array, scale: number): void {
    this.blocks.putCode(id, code, scale);
  }

  code(id: string): { code: Uint8Array; scale: number } | undefined {
    return this.blocks.code(id);
  }

  decode(id: string, out: Float32Array): boolean {
    return this.blocks.decode(id, out);
  }

  remove(id: string): boolean {
    return this.blocks.remove(id);
  }

  placeOf(id: string): VectorPlace | undefined {
    return this.blocks.placeOf(id);
  }

  placeAt(slot: number): VectorPlace | undefined {
    return this.blocks.placeAt(slot);
  }

  setPlace(id: string, place: VectorPlace | undefined): void {
    this.blocks.setPlace(id, place);
  }

  recordAt(slot: number): StoredRecord {
    return this.blocks.recordAt(slot);
  }

  loaded(): void {}

  loadRecord(record: LoadedRecord): VectorPlace | undefined {
    return this.blocks.loadRecord(record);
  }

  documented(id: string): boolean {
    return this.blocks.documented(id);
  }

  documentedAt(slot: number): boolean {
    return this.blocks.documentedAt(slot);
  }

  setDocumented(id: string, documented: boolean): void {
    this.blocks.setDocumented(id, documented);
  }

  kernelQuery(query: ScanQuery): Float32Array {
    return this.blocks.kernelQuery(query);
  }

  kernelForm(query: ScanQuery, into?: Int8Array): KernelForm {
    return this.blocks.kernelForm(query, into);
  }

  kernelQueryError(query: ScanQuery): number {
    return this.blocks.kernelQueryError(query);
  }

  tableError(query: ScanQuery): number {
    return this.blocks.tableError(query);
  }

  rqTermsOf(slots: Int32Array, count: number, out: Float64Array): void {
    if (!isRqCodec(this.codec.name)) throw new RangeError(`${this.codec.name} codes are not rq codes`);
    this.blocks.rqTermsOf(slots, count, out);
  }

  maxNorm(): number {
    return this.blocks.maxNorm();
  }

  codeAt(slot: number): Uint8Array {
    return this.blocks.codeAt(slot);
  }

  codeErrorAt(slot: number): number {
    return this.blocks.codeErrorAt(slot);
  }

  /**
   * Scans every code, or, for a filter that takes few enough of them, only the matching slots
   * (MatchingScan, which fills a pool as the full scan does): the same answer either way.
   */
  search(query: ScanQuery, top: TopK, options: IndexSearch): void {
    const { accept, filter } = options;
    if (accept !== undefined && filter !== undefined && filter.atMost * GATHER_COST <= this.size) {
      this.matching.run(this, query, top, filter, accept, options.pool);
      return;
    }
    this.blocks.scan(query, top, accept, options.pool);
  }

  /** Every search scans every code. */
  collectsPools(): boolean {
    return true;
  }

  layoutEpoch(): number {
    return 0;
  }

  /** Its pools have no scope: they are drawn from every stored vector. */
  scopeOf(): undefined {
    return undefined;
  }

  scanPages(): void {
    throw new RangeError('the exact index has no pages');
  }

  inScope(): boolean {
    return false;
  }

  takeRelocated(): ReadonlySet<string> {
    return NOTHING;
  }

  relocatedAgain(): void {}

  hasRelocated(): boolean {
    return false;
  }

  recluster(): boolean {
    return false;
  }

  scanSlots(query: ScanQuery, slots: Int32Array, count: number, top: TopK): void {
    this.blocks.scanSlots(query, slots, count, top);
  }

  scoreSlots(query: ScanQuery, slots: Int32Array, count: number, out: Float32Array): void {
    this.blocks.scoreSlots(query, slots, count, out);
  }

  moveEpoch(): number {
    return this.blocks.moveEpoch();
  }

  movesSince(epoch: number, visit: (hole: number, from: number) => void): boolean {
    return this.blocks.movesSince(epoch, visit);
  }

  free(): void {
    this.blocks.free();
  }
}
