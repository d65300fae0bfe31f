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
 * whole chunks kept for the next entries, all counted in `spareBytes`. A
 * request larger than a chunk gets an ArrayBuffer of its own (its bytes exactly), left to the
 * collector when given back.
 */

/** The least block: 16 bytes, the widest element's alignment and then some. */
const MIN_ORDER = 4;

type View = Float32Array | Int32Array | Int8Array;

export class BlockSlab {
  private readonly chunkOrder: number;
  /** The chunks, by number (undefined: let go, the number free for the next); a block's address is number · chunk + offset. */
  private chunks: (ArrayBuffer | undefined)[] = [];
  private readonly chunkNumber = new Map<ArrayBuffer, number>();
  /** Free blocks by order: their addresses. A Set, so that a buddy joining its pair leaves it in O(1). */
  private free: Set<number>[];
  private liveBytes = 0;
  private chunkCount = 0;

  /** `chunkBytes`: a power of two, at least 16. */
  constructor(readonly chunkBytes: number) {
    const order = Math.log2(chunkBytes);
    if (!(Number.isInteger(order) && order >= MIN_ORDER && order <= 30)) throw new RangeError(`chunkBytes must be a power of two from 16 to 2^30, got ${chunkBytes}`);
    this.chunkOrder = order;
    this.free = Array.from({ length: order + 1 }, () => new Set<number>());
  }

  /** Bytes the slab's chunks hold apart from live blocks: free blocks and the spare chunk, resident once touched. */
  get spareBytes(): number {
    return this.chunkCount * this.chunkBytes - this.liveBytes;
  }

  /** Chunks held now. */
  get chunksHeld(): number {
    return this.chunkCount;
  }

  float32(length: number): Float32Array {
    const [buffer, offset] = this.take(4 * length);
    return new Float32Array(buffer, offset, length);
  }

  int32(length: number): Int32Array {
    const [buffer, offset] = this.take(4 * length);
    return new Int32Array(buffer, offset, length);
  }

  int8(length: number): Int8Array {
    const [buffer, offset] = this.take(length);
    return new Int8Array(buffer, offset, length);
  }

  /** The bytes `view` (from this slab) holds: its block's, or its own for one larger than a chunk. */
  blockBytes(view: View): number {
    return this.owns(view) ? 2 ** this.orderOf(view.byteLength) : view.byteLength;
  }

  /** True when `view` is a block of this slab's chunks (not one of a buffer of its own). */
  owns(view: View): boolean {
    return this.chunkNumber.has(view.buffer as ArrayBuffer);
  }

  /** Takes back the block of `view`; the caller holds no view of it any more (its contents are reused). */
  give(view: View): void {
    const chunk = this.chunkNumber.get(view.buffer as ArrayBuffer);
    if (chunk === undefined) return;
    let order = this.orderOf(view.byteLength);
    let address = chunk * this.chunkBytes + view.byteOffset;
    this.liveBytes -= 2 ** order;
    while (order < this.chunkOrder) {
      const size = 2 ** order;
      // Arithmetic, not `^`: addresses pass 2^31 once a budget holds thousands of chunks.
      const buddy = (address / size) % 2 === 0 ? address + size : address - size;
      if (!this.free[order]!.delete(buddy)) break;
      address = Math.min(address, buddy);
      order++;
    }
    this.free[order]!.add(address);
  }

  /**
   * Lets every whole free chunk go; false when there is none. The owner does so when it needs the
   * room: a chunk let go at once was made again for the next entry, and with a small budget (chunks
   * of a few KiB) that was the churn of buffers this slab is for.
   */
  dropSpare(): boolean {
    const whole = this.free[this.chunkOrder]!;
    if (whole.size === 0) return false;
    for (const address of whole) this.letGo(address / this.chunkBytes);
    whole.clear();
    return true;
  }

  /** Forgets every chunk; no view of them may be used again. */
  clear(): void {
    this.chunks = [];
    this.chunkNumber.clear();
    this.free = this.free.map(() => new Set<number>());
    this.liveBytes = 0;
    this.chunkCount = 0;
  }

  private orderOf(bytes: number): number {
    return Math.max(MIN_ORDER, Math.ceil(Math.log2(Math.max(1, bytes))));
  }

  private take(bytes: number): [ArrayBuffer, number] {
    const order = this.orderOf(bytes);
    if (order > this.chunkOrder) return [new ArrayBuffer(bytes), 0];
    let from = order;
    while (from <= this.chunkOrder && this.free[from]!.size === 0) from++;
    let address: number;
    if (from > this.chunkOrder) {
      address = this.newChunk() * this.chunkBytes;
      from = this.chunkOrder;
    } else {
      address = this.free[from]!.values().next().value!;
      this.free[from]!.delete(address);
    }
    // Split down to the order asked: the upper halves go free.
    while (from > order) {
      from--;
      this.free[from]!.add(address + 2 ** from);
    }
    this.liveBytes += 2 ** order;
    const chunk = Math.floor(address / this.chunkBytes);
    return [this.chunks[chunk]!, address - chunk * this.chunkBytes];
  }

  private newChunk(): number {
    let n = this.chunks.indexOf(undefined);
    if (n < 0) n = this.chunks.length;
    const buffer = new ArrayBuffer(this.chunkBytes);
    this.chunks[n] = buffer;
    this.chunkNumber.set(buffer, n);
    this.chunkCount++;
    return n;
  }

  private letGo(n: number): void {
    const buffer = this.chunks[n]!;
    this.chunks[n] = undefined;
    this.chunkNumber.delete(buffer);
    this.chunkCount--;
  }
}
