/**
 * Per slot, the page and the row of that page that hold its code (PageStore). Each is kept in 16 bits
 * while it fits, 4 bytes a vector where two 32-bit arrays took 8: a store has a few thousand pages
 * of a few hundred rows. A page number past 65,534 or a row past 65,535 makes that array 32-bit for
 * good (pages of a `pageLimit` near its largest, 65,536, or millions of vectors in small pages).
 */
export class SlotMap {
  /** Per slot, its page + 1; 0: no vector in the slot. */
  private pages: Uint16Array | Uint32Array = new Uint16Array(0);
  private rows: Uint16Array | Uint32Array = new Uint16Array(0);

  get bytes(): number {
    return this.pages.byteLength + this.rows.byteLength;
  }

  /** The page of the vector in `slot`, or -1 when none (or `slot` is past the map). */
  pageOf(slot: number): number {
    const page = this.pages[slot];
    return page === undefined ? -1 : page - 1;
  }

  /** The row of the vector in `slot`, which must hold one. */
  rowOf(slot: number): number {
    return this.rows[slot]!;
  }

  /** `slot` holds the vector in `row` of `page`; the map grows to hold it. */
  set(slot: number, page: number, row: number): void {
    // A quarter more each time: the copies stay amortized, and the unused part under a fifth.
    if (slot >= this.pages.length) this.grow(Math.max(16, slot + 1, Math.ceil(1.25 * this.pages.length)));
    this.setPage(slot, page);
    this.setRow(slot, row);
  }

  /** The vector in `slot` (which the map holds) is now in `page`, at the same row. */
  setPage(slot: number, page: number): void {
    if (page + 1 > 0xffff && this.pages instanceof Uint16Array) this.pages = Uint32Array.from(this.pages);
    this.pages[slot] = page + 1;
  }

  /** The vector in `slot` (which the map holds) is now in `row`, in the same page. */
  setRow(slot: number, row: number): void {
    if (row > 0xffff && this.rows instanceof Uint16Array) this.rows = Uint32Array.from(this.rows);
    this.rows[slot] = row;
  }

  /** No vector in `slot` any more. */
  clear(slot: number): void {
    if (slot < this.pages.length) this.pages[slot] = 0;
  }

  /** Room for slots up to `slots` - 1, made in one step (slots are dense: the slot table's count). */
  reserve(slots: number): void {
    if (slots > this.pages.length) this.grow(slots);
  }

  private grow(length: number): void {
    const pages = this.pages instanceof Uint16Array ? new Uint16Array(length) : new Uint32Array(length);
    pages.set(this.pages);
    this.pages = pages;
    const rows = this.rows instanceof Uint16Array ? new Uint16Array(length) : new Uint32Array(length);
    rows.set(this.rows);
    this.rows = rows;
  }
}
