/**
 * The buffers of dropped cache entries (query copies, pools), kept for the next entries to reuse.
 *
 * An entry outlives a scavenge or two, so V8 promotes its buffers with it; once the entry is
 * dropped they are freed only by the next full collection, which may come hundreds of searches
 * later. Until then malloc holds them all, and once they are freed the main heap keeps the holes
 * resident (glibc gives back only the top of its heap). Entries of one store come in few sizes
 * (its dimensions, its usual pool), so a dropped entry's buffers almost always fit the next one:
 * measured at 50k x 512-d, a cache of 1 MiB cost 4 MiB of malloc's heap in dead entries' buffers
 * before, and none now (bench/results/memory.md).
 */
export class SpareBuffers {
  private readonly spare = new Map<number, ArrayBuffer[]>();
  private held = 0;

  /** Keeps at most `perLength` spare buffers of each length and `maxBytes` in all; more are left to the collector. */
  constructor(
    private readonly perLength: number,
    private readonly maxBytes: number,
  ) {}

  /** Bytes kept spare. */
  get bytes(): number {
    return this.held;
  }

  /** A buffer of `byteLength` bytes, with whatever it held before: the caller overwrites what it uses. */
  take(byteLength: number): ArrayBuffer {
    const buffer = this.spare.get(byteLength)?.pop();
    if (buffer === undefined) return new ArrayBuffer(byteLength);
    this.held -= byteLength;
    return buffer;
  }

  /** Keeps `buffer` for reuse; the caller holds no view of it any more. */
  give(buffer: ArrayBuffer): void {
    let list = this.spare.get(buffer.byteLength);
    if (list === undefined) this.spare.set(buffer.byteLength, (list = []));
    if (list.length >= this.perLength || this.held + buffer.byteLength > this.maxBytes) return;
    list.push(buffer);
    this.held += buffer.byteLength;
  }

  clear(): void {
    this.spare.clear();
    this.held = 0;
  }
}
