/**
 * The memory of cache entries' arrays (query copies, kernel codes, pools): blocks of chunks that the
 * cache allocates once, handed out and taken back by a buddy allocator.
 *
 * Why not one ArrayBuffer per array: an entry outlives a scavenge or two, so V8 promotes its buffers
 * with it, and once it is dropped they are freed only by the next full collection. Until then
 * malloc holds them all, and once they are freed its main heap keeps the holes resident (glibc gives
 * back only the top of its heap). Measured at 50k x 512-d over 1,000 fresh queries: a cache with a
 * 64 KiB budget made 3,662 buffers (2.7 MB), and the process held 2.5 MiB more of malloc's heap at
 * rest than with the cache off, for a cache that counts 61 KiB (bench/results/memory.md).
 *
 * A block is a power of two bytes, from 16 (so every view is aligned for its element type) to the
 * chunk's size; a request is rounded up to one, and the entry counts the block's bytes
 * (`blockBytes`). Freeing a block joins it with its buddy while the buddy is free too, so a chunk
 * whose blocks are all back is whole again, and the owner lets whole chunks go when it needs the
 * room (`dropSpare`): the slab holds its live blocks, what splitting leaves free beside them, and
 * whole chunks kept for the next entries, all counted in `spareBytes` (with a byte per 16 of each
 * chunk that marks where free blocks start). A request larger than a chunk gets an ArrayBuffer of
 * its own (its bytes exactly), left to the collector when given back.
 */

/** The least block: 16 bytes, the widest element's alignment and then some. */
const MIN_ORDER = 4;

type View = Float32Array | Int32Array | Int8Array;

export class BlockSlab {
  private readonly chunkOrder: number;
  /** The chunks, by number (undefined: let go, the number free for the next); a block's address is number · chunk + offset. */
  private chunks: (ArrayBuffer | undefined)[] = [];
  private readonly chunkNumber = new Map<ArrayBuffer, number>();
  /**
   * Per chunk, a byte per 16 of it: order + 1 where a free block of that order starts, else 0. It
   * says in O(1) whether a buddy is free, and which entries of `stacks` still name free blocks.
   */
  private marks: (Uint8Array | undefined)[] = [];
  /**
   * Per order, addresses of free blocks, last freed on top; an entry whose mark no longer says so
   * (its block joined its buddy, or was taken through another entry) is passed over when popped.
   * Plain stacks and marks, not a Set per order: with a Set's iterator and hashing an entry's five
   * blocks cost 4 µs to take and give back in a loop of 64 entries, 3.3 µs now, against 1.5 µs for
   * buffers reused from dropped entries (about 0.2% of a miss; bench/results/cache.md).
   */
  private stacks: number[][];
  /** Per order, the free blocks (marked); `stacks` may hold more entries. */
  private readonly counts: Int32Array;
  private liveBytes = 0;
  private chunkCount = 0;
  /** take()'s answer: a chunk and an offset in it (fields, not a pair made per block). */
  private takenBuffer: ArrayBuffer | undefined;
  private takenOffset = 0;

  /** `chunkBytes`: a power of two, at least 16. */
  constructor(readonly chunkBytes: number) {
    const order = Math.log2(chunkBytes);
    if (!(Number.isInteger(order) && order >= MIN_ORDER && order <= 30)) throw new RangeError(`chunkBytes must be a power of two from 16 to 2^30, got ${chunkBytes}`);
    this.chunkOrder = order;
    this.stacks = Array.from({ length: order + 1 }, () => []);
    this.counts = new Int32Array(order + 1);
  }

  /** Bytes of the chunks held and their marks. */
  get bytes(): number {
    return this.chunkCount * (this.chunkBytes + (this.chunkBytes >> MIN_ORDER));
  }

  /** Bytes the slab holds apart from live blocks: free blocks, spare chunks and the marks, resident once touched. */
  get spareBytes(): number {
    return this.bytes - this.liveBytes;
  }

  /** Chunks held now. */
  get chunksHeld(): number {
    return this.chunkCount;
  }

  float32(length: number): Float32Array {
    this.take(4 * length);
    return new Float32Array(this.takenBuffer!, this.takenOffset, length);
  }

  int32(length: number): Int32Array {
    this.take(4 * length);
    return new Int32Array(this.takenBuffer!, this.takenOffset, length);
  }

  int8(length: number): Int8Array {
    this.take(length);
    return new Int8Array(this.takenBuffer!, this.takenOffset, length);
  }

  /**
   * The bytes `view` (from this slab) holds: its block's, or its own for one larger than a chunk.
   * From its length alone: every view up to a chunk's size came out of a chunk. Asking the map of
   * chunks (owns()) read the view's buffer object, cold in an entry dropped for room, on each count.
   */
  blockBytes(view: View): number {
    return this.bytesFor(view.byteLength);
  }

  /** The bytes a request of `bytes` holds: its block's, or its own past a chunk's size. */
  bytesFor(bytes: number): number {
    return bytes > this.chunkBytes ? bytes : 2 ** orderOf(bytes);
  }

  /**
   * Two arrays of `length` 4-byte elements side by side in one block (`pairBytes(length)` of it):
   * one take and one give (givePair) where two arrays of their own took two of each.
   */
  pair(length: number): { ints: Int32Array; floats: Float32Array } {
    this.take(8 * length);
    const buffer = this.takenBuffer!;
    return { ints: new Int32Array(buffer, this.takenOffset, length), floats: new Float32Array(buffer, this.takenOffset + 4 * length, length) };
  }

  /** The bytes pair(length) holds. */
  pairBytes(length: number): number {
    return this.bytesFor(8 * length);
  }

  /** Takes back the block of a pair() by its first array; the caller holds no view of either any more. */
  givePair(ints: Int32Array): void {
    this.giveAt(ints.buffer as ArrayBuffer, ints.byteOffset, 2 * ints.byteLength);
  }

  /** True when `view` is a block of this slab's chunks (not one of a buffer of its own). */
  owns(view: View): boolean {
    return this.chunkNumber.has(view.buffer as ArrayBuffer);
  }

  /** Takes back the block of `view`; the caller holds no view of it any more (its contents are reused). */
  give(view: View): void {
    this.giveAt(view.buffer as ArrayBuffer, view.byteOffset, view.byteLength);
  }

  private giveAt(buffer: ArrayBuffer, at: number, bytes: number): void {
    const chunk = this.chunkNumber.get(buffer);
    if (chunk === undefined) return;
    const marks = this.marks[chunk]!;
    let order = orderOf(bytes);
    let offset = at;
    this.liveBytes -= 2 ** order;
    while (order < this.chunkOrder) {
      // Offsets within a chunk are below 2^30: `^` is exact on them.
      const buddy = offset ^ (1 << order);
      if (marks[buddy >> MIN_ORDER] !== order + 1) break;
      marks[buddy >> MIN_ORDER] = 0;
      this.counts[order]!--;
      offset = Math.min(offset, buddy);
      order++;
    }
    this.markFree(chunk, offset, order);
  }

  /**
   * Lets every whole free chunk go; false when there is none. The owner does so when it needs the
   * room: a chunk let go at once was made again for the next entry, and with a small budget (chunks
   * of a few KiB) that was the churn of buffers this slab is for.
   */
  dropSpare(): boolean {
    if (this.counts[this.chunkOrder] === 0) return false;
    for (let n = 0; n < this.chunks.length; n++) {
      if (this.marks[n]?.[0] === this.chunkOrder + 1) this.letGo(n);
    }
    this.counts[this.chunkOrder] = 0;
    this.stacks[this.chunkOrder] = [];
    return true;
  }

  /** Forgets every chunk; no view of them may be used again. */
  clear(): void {
    this.chunks = [];
    this.marks = [];
    this.chunkNumber.clear();
    this.stacks = this.stacks.map(() => []);
    this.counts.fill(0);
    this.liveBytes = 0;
    this.chunkCount = 0;
  }

  private take(bytes: number): void {
    const order = orderOf(bytes);
    if (order > this.chunkOrder) {
      this.takenBuffer = new ArrayBuffer(bytes);
      this.takenOffset = 0;
      return;
    }
    let from = order;
    while (from <= this.chunkOrder && this.counts[from] === 0) from++;
    let chunk: number;
    let offset: number;
    if (from > this.chunkOrder) {
      chunk = this.newChunk();
      offset = 0;
      from = this.chunkOrder;
    } else {
      const stack = this.stacks[from]!;
      for (;;) {
        const address = stack.pop()!;
        chunk = Math.floor(address / this.chunkBytes);
        offset = address - chunk * this.chunkBytes;
        const marks = this.marks[chunk];
        if (marks !== undefined && marks[offset >> MIN_ORDER] === from + 1) {
          marks[offset >> MIN_ORDER] = 0;
          break;
        }
      }
      this.counts[from]!--;
    }
    // Split down to the order asked: the upper halves go free.
    while (from > order) {
      from--;
      this.markFree(chunk, offset + 2 ** from, from);
    }
    this.liveBytes += 2 ** order;
    this.takenBuffer = this.chunks[chunk]!;
    this.takenOffset = offset;
  }

  private markFree(chunk: number, offset: number, order: number): void {
    this.marks[chunk]![offset >> MIN_ORDER] = order + 1;
    this.counts[order]!++;
    const stack = this.stacks[order]!;
    stack.push(chunk * this.chunkBytes + offset);
    // Entries passed over pile up where blocks join more than they are taken, and a block freed,
    // joined and freed again is named twice: keep the stack near its count, each free block once.
    if (stack.length > 2 * this.counts[order]! + 64) this.stacks[order] = [...new Set(stack.filter((a) => this.isFree(a, order)))];
  }

  private isFree(address: number, order: number): boolean {
    const chunk = Math.floor(address / this.chunkBytes);
    return this.marks[chunk]?.[(address - chunk * this.chunkBytes) >> MIN_ORDER] === order + 1;
  }

  private newChunk(): number {
    let n = this.chunks.indexOf(undefined);
    if (n < 0) n = this.chunks.length;
    const buffer = new ArrayBuffer(this.chunkBytes);
    this.chunks[n] = buffer;
    this.marks[n] = new Uint8Array(this.chunkBytes >> MIN_ORDER);
    this.chunkNumber.set(buffer, n);
    this.chunkCount++;
    return n;
  }

  private letGo(n: number): void {
    const buffer = this.chunks[n]!;
    this.chunks[n] = undefined;
    this.marks[n] = undefined;
    this.chunkNumber.delete(buffer);
    this.chunkCount--;
  }
}

/** The order of the block for `bytes`: the least power of two at least `bytes` and 16. */
function orderOf(bytes: number): number {
  if (bytes <= 1 << MIN_ORDER) return MIN_ORDER;
  // Past 2^30 (more than any chunk) `clz32` would wrap; the order only has to exceed every chunk's.
  return bytes > 2 ** 30 ? 31 : 32 - Math.clz32(bytes - 1);
}
