/** The widths, in bytes, a slot's segment reference may take: as many as the largest reference needs. */
export type RefWidth = 1 | 2 | 4;

/**
 * Small numbers for the (generation, segment) pairs that full-precision vectors live in, so that a
 * slot keeps its vector's place as an offset and a reference of a byte or two (SlotTable) instead of
 * three 32-bit numbers: a store's vectors live in a few segment files of 64 MiB, and a place costs
 * 5 bytes a vector instead of 12.
 *
 * A reference is 1 or more (0 means nowhere); each counts its uses, and one no place uses any more
 * is handed out again, so that collections, which move every vector into a new generation, do not
 * make the numbers grow for as long as the process runs. `width` says how many bytes the largest
 * reference handed out so far needs; it never shrinks.
 */
export class SegmentRefs {
  /** By reference (index 0 unused): the pair, and how many places use it. */
  private readonly generations: number[] = [0];
  private readonly segments: number[] = [0];
  private readonly uses: number[] = [0];
  private readonly free: number[] = [];
  private readonly byPair = new Map<string, number>();
  /** The reference acquire() gave last, and its pair: appends fill one segment for a long run. */
  private last = 0;

  /** Bytes a reference to any pair in use needs. */
  get width(): RefWidth {
    const largest = this.generations.length - 1;
    return largest <= 0xff ? 1 : largest <= 0xffff ? 2 : 4;
  }

  /** Bytes held, estimated: three numbers a reference made, and a Map entry with its key per pair in use. */
  get bytes(): number {
    return 24 * this.generations.length + 8 * this.free.length + 64 * this.byPair.size;
  }

  /** The reference of (`generation`, `segment`), with one use more. */
  acquire(generation: number, segment: number): number {
    const last = this.last;
    if (last !== 0 && this.segments[last] === segment && this.generations[last] === generation) {
      this.uses[last]!++;
      return last;
    }
    const key = `${generation}/${segment}`;
    let ref = this.byPair.get(key);
    if (ref === undefined) {
      ref = this.free.pop() ?? this.generations.length;
      this.generations[ref] = generation;
      this.segments[ref] = segment;
      this.uses[ref] = 0;
      this.byPair.set(key, ref);
    }
    this.uses[ref]!++;
    this.last = ref;
    return ref;
  }

  /** One use fewer of `ref` (0: nothing); at none, its pair is forgotten and the number handed out again. */
  release(ref: number): void {
    if (ref === 0) return;
    const left = --this.uses[ref]!;
    if (left > 0) return;
    if (left < 0) throw new RangeError(`segment reference ${ref} released more often than acquired`);
    this.byPair.delete(`${this.generations[ref]}/${this.segments[ref]}`);
    this.free.push(ref);
    if (this.last === ref) this.last = 0;
  }

  generationOf(ref: number): number {
    return this.generations[ref]!;
  }

  segmentOf(ref: number): number {
    return this.segments[ref]!;
  }

  /** Forgets every pair. */
  clear(): void {
    this.generations.length = 1;
    this.segments.length = 1;
    this.uses.length = 1;
    this.free.length = 0;
    this.byPair.clear();
    this.last = 0;
  }
}
