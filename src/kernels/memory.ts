import { ALIGN } from './contract.js';

const PAGE = 65536;
/** Address 0 stays unused so that 0 can never be a valid block (it reads as "no pointer"). */
const FIRST = ALIGN;

function roundUp(bytes: number): number {
  return Math.ceil(bytes / ALIGN) * ALIGN;
}

/** The size class of a scratch block: the least power of two (at least ALIGN) that holds `bytes`. */
function scratchSize(bytes: number): number {
  return Math.max(ALIGN, 2 ** Math.ceil(Math.log2(Math.max(bytes, 1))));
}

/** Bytes of canary after each block while blocks are guarded (LinearMemory.guardBlocks). */
const GUARD = 64;
/** The canary's byte. */
const CANARY = 0xa5;

/**
 * Allocator over one growable WebAssembly.Memory, built for a store that allocates many blocks of
 * a few fixed sizes: freed blocks go to a free list per rounded size and are reused first, the rest
 * is bump allocation, and the memory grows (at least doubling) when the bump pointer runs out.
 *
 * Growing detaches every ArrayBuffer view taken before it. Take views through `u8()`, `f32()`, …
 * after any call that may allocate, never keep one across such a call.
 */
export class LinearMemory {
  readonly memory: WebAssembly.Memory;
  private top = FIRST;
  private readonly freeBySize = new Map<number, number[]>();
  private buffer: ArrayBuffer;
  private u8View: Uint8Array;
  private i8View: Int8Array;
  private u16View: Uint16Array;
  private i32View: Int32Array;
  private f32View: Float32Array;
  private f64View: Float64Array;

  /**
   * A test aid: while true, every block allocated gets GUARD bytes of canary after it, checked when
   * it is freed and by checkGuards(), so a kernel or a caller that writes past its block (a scan
   * that writes whole groups of 32 scores into room for fewer) is caught where it happened instead
   * of corrupting whatever block comes next. Off by default: it costs memory and a pass per free.
   */
  static guardBlocks = false;
  /** Guarded blocks now allocated: address → the size asked for, rounded (the canary starts there). */
  private readonly guarded = new Map<number, number>();

  constructor(memory: WebAssembly.Memory = new WebAssembly.Memory({ initial: 16 })) {
    this.memory = memory;
    this.buffer = memory.buffer;
    this.u8View = new Uint8Array(this.buffer);
    this.i8View = new Int8Array(this.buffer);
    this.u16View = new Uint16Array(this.buffer);
    this.i32View = new Int32Array(this.buffer);
    this.f32View = new Float32Array(this.buffer);
    this.f64View = new Float64Array(this.buffer);
  }

  /** Returns a 16-byte aligned address of at least `bytes` bytes (contents unspecified). */
  alloc(bytes: number): number {
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`cannot allocate ${bytes} bytes`);
    const asked = roundUp(Math.max(bytes, 1));
    const size = LinearMemory.guardBlocks ? asked + GUARD : asked;
    let ptr = this.freeBySize.get(size)?.pop();
    if (ptr === undefined) {
      ptr = this.top;
      this.ensure(ptr + size);
      this.top = ptr + size;
    }
    if (LinearMemory.guardBlocks) {
      this.u8().fill(CANARY, ptr + asked, ptr + size);
      this.guarded.set(ptr, asked);
    }
    return ptr;
  }

  /** Throws a RangeError naming the first guarded block whose canary was written over (guardBlocks). */
  checkGuards(): void {
    for (const [ptr, asked] of this.guarded) this.checkGuard(ptr, asked);
  }

  private checkGuard(ptr: number, asked: number): void {
    const u8 = this.u8();
    for (let i = ptr + asked; i < ptr + asked + GUARD; i++) {
      if (u8[i] !== CANARY) throw new RangeError(`a write ran past the block of ${asked} bytes at ${ptr}, into its byte ${i - ptr}`);
    }
  }

  /**
   * Returns a block from `alloc(bytes)`; `bytes` must be the size it was allocated with. Double
   * frees are not detected: they would hand the block out twice.
   */
  free(ptr: number, bytes: number): void {
    let size = roundUp(Math.max(bytes, 1));
    const asked = this.guarded.get(ptr);
    if (asked !== undefined) {
      if (asked !== size) throw new RangeError(`free(${ptr}, ${bytes}): the block was allocated with ${asked} bytes`);
      this.checkGuard(ptr, asked);
      this.guarded.delete(ptr);
      size += GUARD;
    }
    if (ptr % ALIGN !== 0 || ptr < FIRST || ptr + size > this.top) {
      throw new RangeError(`free(${ptr}, ${bytes}) is not an allocated block`);
    }
    if (ptr + size === this.top) {
      this.top = ptr;
      return;
    }
    const list = this.freeBySize.get(size);
    if (list === undefined) this.freeBySize.set(size, [ptr]);
    else list.push(ptr);
  }

  /**
   * alloc() for a transient block whose size varies from call to call (k-means over each cluster's
   * members, a page's decoded members at open): the size is rounded up to a power of two, so a
   * block freed by one call serves the next of its class. Free lists reuse a block only for a
   * request of its exact size, and linear memory never shrinks: blocks of sizes that never came
   * again had stayed listed for good (each compact() of a 10k x 128-d store left 4.5 MiB behind).
   * Give it back with freeScratch() and the same `bytes`.
   */
  allocScratch(bytes: number): number {
    return this.alloc(scratchSize(bytes));
  }

  /** Returns a block from allocScratch(bytes). */
  freeScratch(ptr: number, bytes: number): void {
    this.free(ptr, scratchSize(bytes));
  }

  /** Bytes between address 0 and the bump pointer: the high-water mark of live and listed blocks. */
  get used(): number {
    return this.top;
  }

  /** Bytes held in free lists, waiting for reuse. */
  get freeBytes(): number {
    let total = 0;
    for (const [size, list] of this.freeBySize) total += size * list.length;
    return total;
  }

  /** Grows the memory so that addresses below `end` are valid. */
  private ensure(end: number): void {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    const needed = Math.ceil((end - have) / PAGE);
    try {
      this.memory.grow(Math.max(needed, have / PAGE));
    } catch {
      // Doubling can pass the engine's limit (4 GiB) while the exact need still fits.
      this.memory.grow(needed);
    }
  }

  /**
   * Re-creates the views only when the memory was grown (by us or anyone else) since last time.
   * Growing detaches the old buffer, and a detached view has byteLength 0: checking that is a field
   * read, where `memory.buffer` is a call into the engine on every view taken.
   */
  private refresh(): void {
    if (this.u8View.byteLength !== 0) return;
    const buffer = this.memory.buffer;
    if (buffer === this.buffer) return;
    this.buffer = buffer;
    this.u8View = new Uint8Array(buffer);
    this.i8View = new Int8Array(buffer);
    this.u16View = new Uint16Array(buffer);
    this.i32View = new Int32Array(buffer);
    this.f32View = new Float32Array(buffer);
    this.f64View = new Float64Array(buffer);
  }

  u8(): Uint8Array {
    this.refresh();
    return this.u8View;
  }

  i8(): Int8Array {
    this.refresh();
    return this.i8View;
  }

  u16(): Uint16Array {
    this.refresh();
    return this.u16View;
  }

  i32(): Int32Array {
    this.refresh();
    return this.i32View;
  }

  f32(): Float32Array {
    this.refresh();
    return this.f32View;
  }

  f64(): Float64Array {
    this.refresh();
    return this.f64View;
  }
}
