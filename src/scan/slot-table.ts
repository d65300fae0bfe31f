import { FilterColumns } from '../filter/columns.js';
import { IdTable } from './id-table.js';
import { SegmentRefs, type RefWidth } from './segment-refs.js';

/** A full-precision vector's place in the vector arena: generation, segment, frame offset (its length is the store's). */
export type VectorPlace = readonly [generation: number, segment: number, offset: number];

/** Removals whose slot moves a table remembers (moveEpoch, movesSince). */
const MOVE_LOG = 4096;
/** Id strings the table keeps of the slots it named lately (IdTable): about the candidates of the last few dozen searches. */
const RECENT_IDS = 1024;

/** Per chunk of slots: where each full-precision vector lives, and whether the record has a document. */
interface Chunk {
  /** Per slot, its vector's offset in its segment. */
  readonly offsets: Uint32Array;
  /** Per slot, the SegmentRefs reference of its vector's (generation, segment); 0: nowhere. As wide as the largest reference needs. */
  segments: Uint8Array | Uint16Array | Uint32Array;
  /** A bit per slot (slot % chunk, low bit first): 1 when the record has a document in the state. */
  readonly documented: Uint8Array;
}

function refArray(width: RefWidth, length: number): Uint8Array | Uint16Array | Uint32Array {
  return width === 1 ? new Uint8Array(length) : width === 2 ? new Uint16Array(length) : new Uint32Array(length);
}

/**
 * What an index knows of its vectors besides their codes: each vector's **slot**, a dense number
 * 0..size-1 found from its id and back (IdTable), and, when `places` is on, where its full-precision
 * copy lives (an offset and a reference to its segment, SegmentRefs: 5 bytes while a store's vectors
 * live in at most 255 segments, 6 up to 65,535) and whether its record has a document (a bit). Removing a vector moves the
 * last slot into the hole it leaves; the table logs each such move (the last MOVE_LOG, counted by a
 * removal epoch) so that slot numbers kept elsewhere (the lookaside cache's pools and hot vectors)
 * can follow. The codes live with the index (in slot order for the exact scan, in pages for the
 * page-clustered index), which mirrors each move.
 *
 * Places and flags are kept in chunks of `chunk` slots, allocated as the table grows and released
 * as it shrinks, so that memory follows the vectors.
 */
export class SlotTable {
  private readonly ids = new IdTable(RECENT_IDS);
  /** The filter columns of the fields filters have named, a code per slot (they move with the slots). */
  readonly columns = new FilterColumns();
  private readonly chunks: Chunk[] = [];
  private readonly refs = new SegmentRefs();
  /** The width of every chunk's `segments`: the refs' width when it last grew. */
  private width: RefWidth = 1;
  /** Removals so far; each may move the last slot into the hole it leaves. */
  private removals = 0;
  /**
   * Kept once moveEpoch() was asked: per removal (a ring of the last MOVE_LOG), the hole and the slot
   * that moved into it (the hole itself when none did). `movesFrom`: the first removal logged.
   */
  private moves: Int32Array | undefined;
  private movesFrom = 0;

  constructor(
    readonly places: boolean,
    readonly chunk: number,
  ) {
    if (!(Number.isInteger(chunk) && chunk >= 1)) throw new RangeError(`chunk must be a positive integer, got ${chunk}`);
  }

  get size(): number {
    return this.ids.size;
  }

  /** UTF-8 bytes of the live ids. */
  get idBytes(): number {
    return this.ids.idBytes;
  }

  /** Bytes held: the id table, the chunks of places and flags and their segments, the move log, the filter columns. */
  get bytes(): number {
    const chunks = this.chunks.length * (this.chunk * (4 + this.width) + Math.ceil(this.chunk / 8));
    return this.ids.bytes + chunks + (this.places ? this.refs.bytes : 0) + (this.moves?.byteLength ?? 0) + this.columns.bytes;
  }

  /** Bytes each vector costs once chunks are full: its place and flag (when kept) and its share of the id table and filter columns. */
  get bytesPerVector(): number {
    return (this.places ? 4 + this.width + 1 / 8 : 0) + (this.ids.size === 0 ? 0 : (this.ids.bytes + this.columns.bytes) / this.ids.size);
  }

  /** Room for `records` ids of `idBytes` bytes in all. */
  reserve(records: number, idBytes: number): void {
    this.ids.reserve(records, idBytes);
  }

  has(id: string): boolean {
    return this.ids.slotOf(id) !== undefined;
  }

  slotOf(id: string): number | undefined {
    return this.ids.slotOf(id);
  }

  idAt(slot: number): string {
    return this.ids.idAt(slot);
  }

  /** The UTF-8 of the id in `slot` (a view, valid until the next change). */
  idBytesAt(slot: number): Uint8Array {
    return this.ids.bytesAt(slot);
  }

  *allIds(): IterableIterator<string> {
    for (let slot = 0; slot < this.ids.size; slot++) yield this.ids.idAt(slot);
  }

  /** The slot of `id`, added at the end (size - 1 after the call, no place, no document) when it was not there. */
  slotFor(id: string): { slot: number; added: boolean } {
    const found = this.ids.slotFor(id);
    if (found.added) this.cleared(found.slot);
    return found;
  }

  /** slotFor() for the id whose UTF-8 is `bytes[from, from + length)`. */
  slotForBytes(bytes: Uint8Array, from: number, length: number): { slot: number; added: boolean } {
    const before = this.ids.size;
    const slot = this.ids.slotForBytes(bytes, from, length);
    const added = this.ids.size > before;
    if (added) this.cleared(slot);
    return { slot, added };
  }

  /** Where the full-precision vector of `id` lives, or undefined (none kept, or no such id). */
  placeOf(id: string): VectorPlace | undefined {
    const slot = this.ids.slotOf(id);
    return slot === undefined ? undefined : this.placeAt(slot);
  }

  /** Records where the full-precision vector of `id` (stored) lives; undefined: nowhere. */
  setPlace(id: string, place: VectorPlace | undefined): void {
    this.setPlaceAt(this.existing(id), place);
  }

  /** Whether the record `id` has a document (false for an unknown id). */
  documented(id: string): boolean {
    const slot = this.ids.slotOf(id);
    return slot !== undefined && this.documentedAt(slot);
  }

  setDocumented(id: string, documented: boolean): void {
    this.setDocumentedAt(this.existing(id), documented);
  }

  /** The slot of `id`, which must be stored. */
  private existing(id: string): number {
    const slot = this.ids.slotOf(id);
    if (slot === undefined) throw new RangeError(`no vector ${id}`);
    return slot;
  }

  /** Where the full-precision vector in `slot` lives, or undefined (none kept). */
  placeAt(slot: number): VectorPlace | undefined {
    if (!(slot >= 0 && slot < this.ids.size)) throw new RangeError(`slot ${slot} out of range`);
    if (!this.places) return undefined;
    const chunk = this.chunks[Math.floor(slot / this.chunk)]!;
    const at = slot % this.chunk;
    const ref = chunk.segments[at]!;
    return ref === 0 ? undefined : [this.refs.generationOf(ref), this.refs.segmentOf(ref), chunk.offsets[at]!];
  }

  /** One part of placeAt(slot) (0 generation, 1 segment, 2 offset; all 0 for none) without making a tuple, as the index file stores it. */
  placePartAt(slot: number, part: 0 | 1 | 2): number {
    if (!this.places) return 0;
    const chunk = this.chunks[Math.floor(slot / this.chunk)]!;
    const at = slot % this.chunk;
    const ref = chunk.segments[at]!;
    if (ref === 0) return 0;
    return part === 0 ? this.refs.generationOf(ref) : part === 1 ? this.refs.segmentOf(ref) : chunk.offsets[at]!;
  }

  setPlaceAt(slot: number, place: VectorPlace | undefined): void {
    this.setPlaceParts(slot, place?.[0] ?? 0, place?.[1] ?? 0, place?.[2] ?? 0);
  }

  /** setPlaceAt() from the parts of a place (`segment` 0: none), without a tuple. */
  setPlaceParts(slot: number, generation: number, segment: number, offset: number): void {
    if (!this.places) throw new RangeError('this index keeps no places');
    const chunk = this.chunks[Math.floor(slot / this.chunk)]!;
    const at = slot % this.chunk;
    const ref = segment === 0 ? 0 : this.refs.acquire(generation, segment);
    this.refs.release(chunk.segments[at]!);
    if (this.refs.width > this.width) this.widen();
    chunk.segments[at] = ref;
    chunk.offsets[at] = ref === 0 ? 0 : offset;
  }

  /** Every chunk's segment references made as wide as the refs now need. */
  private widen(): void {
    this.width = this.refs.width;
    for (const chunk of this.chunks) {
      const wider = refArray(this.width, this.chunk);
      wider.set(chunk.segments);
      chunk.segments = wider;
    }
  }

  /** Whether the record in `slot` has a document (false when the table keeps no places). */
  documentedAt(slot: number): boolean {
    if (!this.places) return false;
    const at = slot % this.chunk;
    return ((this.chunks[Math.floor(slot / this.chunk)]!.documented[at >>> 3]! >>> (at & 7)) & 1) === 1;
  }

  setDocumentedAt(slot: number, documented: boolean): void {
    if (!this.places) throw new RangeError('this index keeps no places');
    const flags = this.chunks[Math.floor(slot / this.chunk)]!.documented;
    const at = slot % this.chunk;
    const bit = 1 << (at & 7);
    flags[at >>> 3] = documented ? flags[at >>> 3]! | bit : flags[at >>> 3]! & ~bit;
  }

  /**
   * Removes the vector in `slot`: the last slot's id, place and flag move into it. Returns the slot
   * that moved (`slot` itself when it was the last), for the codes to follow.
   */
  removeSwap(slot: number): number {
    if (!(slot >= 0 && slot < this.ids.size)) throw new RangeError(`slot ${slot} out of range`);
    const last = this.ids.size - 1;
    if (this.places) {
      // The hole takes the last slot's place and flag, and the last slot lets go of its reference:
      // each reference keeps its count of uses.
      const into = this.chunks[Math.floor(slot / this.chunk)]!;
      const from = this.chunks[Math.floor(last / this.chunk)]!;
      const at = slot % this.chunk;
      const lastAt = last % this.chunk;
      this.refs.release(into.segments[at]!);
      if (slot !== last) {
        into.segments[at] = from.segments[lastAt]!;
        into.offsets[at] = from.offsets[lastAt]!;
        this.setDocumentedAt(slot, this.documentedAt(last));
      }
      from.segments[lastAt] = 0;
    }
    this.ids.removeSwap(slot);
    this.columns.removeSwap(slot, last);
    if (this.moves !== undefined) {
      const at = (this.removals % MOVE_LOG) * 2;
      this.moves[at] = slot;
      this.moves[at + 1] = last;
    }
    this.removals++;
    if (this.places && this.ids.size <= (this.chunks.length - 1) * this.chunk) this.chunks.pop();
    return last;
  }

  /**
   * The count of removals so far, to replay the slot moves after it with movesSince(). The first
   * call starts the log of moves (the last MOVE_LOG removals are kept).
   */
  moveEpoch(): number {
    if (this.moves === undefined) {
      this.moves = new Int32Array(MOVE_LOG * 2);
      this.movesFrom = this.removals;
    }
    return this.removals;
  }

  /**
   * Replays, in order, the removals since `epoch` (a moveEpoch() value): `visit(hole, from)` says
   * that slot `hole` lost its vector and that the vector of slot `from` moved into it (`from ===
   * hole`: none moved; `hole` is free). False, visiting nothing, when the log no longer reaches back.
   */
  movesSince(epoch: number, visit: (hole: number, from: number) => void): boolean {
    if (epoch === this.removals) return true;
    if (this.moves === undefined || epoch < this.movesFrom || epoch < this.removals - MOVE_LOG || epoch > this.removals) return false;
    for (let r = epoch; r < this.removals; r++) {
      const at = (r % MOVE_LOG) * 2;
      visit(this.moves[at]!, this.moves[at + 1]!);
    }
    return true;
  }

  /** Forgets every vector (the owner is being freed). */
  clear(): void {
    this.ids.clear();
    this.columns.reset();
    this.chunks.length = 0;
    this.refs.clear();
    this.width = 1;
    this.moves = undefined;
  }

  /** A new slot: its chunk made if it starts one, no place, no document. */
  private cleared(slot: number): void {
    this.columns.added(slot);
    if (!this.places) return;
    if (slot === this.chunks.length * this.chunk) {
      this.chunks.push({ offsets: new Uint32Array(this.chunk), segments: refArray(this.width, this.chunk), documented: new Uint8Array(Math.ceil(this.chunk / 8)) });
    }
    this.setPlaceAt(slot, undefined);
    this.setDocumentedAt(slot, false);
  }
}
