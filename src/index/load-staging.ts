/**
 * The codes a page index loads from its checkpoint, held in JavaScript memory, by slot, until
 * loading ends: then each page is allocated once at the size it needs and filled. Putting each code
 * straight into its page grew all pages together a quarter step at a time, and the rooms they left
 * behind fragmented linear memory, which never shrinks: a 50k x 512-d store opened into 64 MiB of
 * it for 32 MiB of pages, and showed 2.3 times its `bytesPerVector` in RSS. These arrays are
 * garbage once loading ends, and V8 hands their memory back.
 */
export class LoadStaging {
  /** Per slot: the page its record names, or -1 for none (no record, or removed since). */
  private pages = new Int32Array(0);
  private scales = new Float32Array(0);
  private codes = new Uint8Array(0);

  /** `slots`: room for this many at first (the checkpoint's record count), so that loading grows nothing. */
  constructor(
    private readonly codeBytes: number,
    slots = 0,
  ) {
    if (slots > 0) this.grow(slots, slots);
  }

  /** Slots below this may hold a record. */
  get slots(): number {
    return this.pages.length;
  }

  put(slot: number, page: number, code: Uint8Array, scale: number): void {
    if (code.length !== this.codeBytes) throw new RangeError(`a code has ${this.codeBytes} bytes, not ${code.length}`);
    if (slot >= this.pages.length) this.grow(slot + 1);
    this.pages[slot] = page;
    this.scales[slot] = scale;
    this.codes.set(code, slot * this.codeBytes);
  }

  remove(slot: number): void {
    if (slot < this.pages.length) this.pages[slot] = -1;
  }

  /** The record of slot `from` is now that of slot `to` (the slot table moved it). */
  renumber(from: number, to: number): void {
    if (to >= this.pages.length) this.grow(to + 1);
    this.pages[to] = this.pages[from]!;
    this.scales[to] = this.scales[from]!;
    this.codes.copyWithin(to * this.codeBytes, from * this.codeBytes, (from + 1) * this.codeBytes);
    this.pages[from] = -1;
  }

  /** The page of `slot`'s record, or -1. */
  pageOf(slot: number): number {
    return slot < this.pages.length ? this.pages[slot]! : -1;
  }

  scaleOf(slot: number): number {
    return this.scales[slot]!;
  }

  /** Every staged code, `codeBytes` apart by slot (valid while nothing is put): codeAt() gives where a slot's starts. */
  get codeBuffer(): Uint8Array {
    return this.codes;
  }

  /** Where the code of `slot` starts in codeBuffer. */
  codeAt(slot: number): number {
    return slot * this.codeBytes;
  }


  private grow(slots: number, exactly?: number): void {
    const length = exactly ?? Math.max(1024, 2 ** Math.ceil(Math.log2(slots)));
    const pages = new Int32Array(length).fill(-1);
    pages.set(this.pages);
    const scales = new Float32Array(length);
    scales.set(this.scales);
    const codes = new Uint8Array(length * this.codeBytes);
    codes.set(this.codes);
    this.pages = pages;
    this.scales = scales;
    this.codes = codes;
  }
}
