import type { Codec } from '../codec/codec.js';
import { getCodec } from '../codec/index.js';
import { kernels, type KernelMetric } from '../kernels/index.js';
import { TopK } from './topk.js';

/** Vectors per block: large enough that one kernel call amortizes its JS overhead, small enough to recycle. */
export const BLOCK_SIZE = 1024;

/** Kernels read 16 dimensions per step, so codes are zero-padded to a multiple of 16. */
export function paddedDim(dim: number): number {
  return Math.ceil(dim / 16) * 16;
}

interface Block {
  readonly codes: number;
  readonly scales: number;
}

export interface ScanQuery {
  /** The query, already projected into the stored space (length = stored dim). */
  readonly vector: Float32Array;
  readonly metric: KernelMetric;
  /** Quantize the query to int8 too and use the integer kernels; honoured for the int8 codec with dot/cosine. */
  readonly int8Query: boolean;
}

const int8 = getCodec('int8');

/**
 * The quantized vectors of a store, dense in fixed-size blocks of WebAssembly linear memory,
 * addressed by slot (block · BLOCK_SIZE + row). A scan is one kernel call per block, reading the
 * codes in place. Deletion moves the last vector into the hole, so blocks stay dense and a scan
 * never meets a tombstone.
 */
export class CodeBlocks {
  readonly paddedDim: number;
  /** Bytes of one code in memory, padding included. */
  readonly stride: number;
  private readonly blocks: Block[] = [];
  private readonly ids: string[] = [];
  private readonly slotById = new Map<string, number>();
  private readonly scratchQuery: number;
  private readonly scratchScores: number;
  private readonly mem = kernels().memory;
  private idChars = 0;
  private freed = false;

  constructor(
    readonly codec: Codec,
    readonly dim: number,
  ) {
    this.paddedDim = paddedDim(dim);
    this.stride = this.paddedDim * codec.bytesPerDim;
    this.scratchQuery = this.mem.alloc(this.paddedDim * 4);
    this.scratchScores = this.mem.alloc(BLOCK_SIZE * 4);
  }

  get size(): number {
    return this.ids.length;
  }

  get blockCount(): number {
    return this.blocks.length;
  }

  /** Total UTF-16 code units of all ids, for the memory estimate in stats(). */
  get idCharacters(): number {
    return this.idChars;
  }

  has(id: string): boolean {
    return this.slotById.has(id);
  }

  idAt(slot: number): string {
    const id = this.ids[slot];
    if (id === undefined) throw new RangeError(`slot ${slot} out of range`);
    return id;
  }

  *allIds(): IterableIterator<string> {
    yield* this.ids;
  }

  private slotFor(id: string): number {
    const existing = this.slotById.get(id);
    if (existing !== undefined) return existing;
    const slot = this.ids.length;
    if (slot === this.blocks.length * BLOCK_SIZE) {
      this.blocks.push({
        codes: this.mem.alloc(BLOCK_SIZE * this.stride),
        scales: this.mem.alloc(BLOCK_SIZE * 4),
      });
    }
    this.ids.push(id);
    this.slotById.set(id, slot);
    this.idChars += id.length;
    return slot;
  }

  private codeAddress(slot: number): number {
    const block = this.blocks[Math.floor(slot / BLOCK_SIZE)]!;
    return block.codes + (slot % BLOCK_SIZE) * this.stride;
  }

  private scaleAddress(slot: number): number {
    const block = this.blocks[Math.floor(slot / BLOCK_SIZE)]!;
    return block.scales + (slot % BLOCK_SIZE) * 4;
  }

  /** Encodes `vector` (length dim) as the code of `id`, inserting or replacing. */
  put(id: string, vector: Float32Array): void {
    const slot = this.slotFor(id);
    const at = this.codeAddress(slot);
    const u8 = this.mem.u8();
    const codeBytes = this.dim * this.codec.bytesPerDim;
    const scale = this.codec.encode(vector, u8.subarray(at, at + codeBytes));
    u8.fill(0, at + codeBytes, at + this.stride);
    this.mem.f32()[this.scaleAddress(slot) >> 2] = scale;
  }

  /** Stores an already-encoded code (length dim · bytesPerDim), as loaded from disk. */
  putCode(id: string, code: Uint8Array, scale: number): void {
    const codeBytes = this.dim * this.codec.bytesPerDim;
    if (code.length !== codeBytes) throw new RangeError(`code of ${code.length} bytes, expected ${codeBytes}`);
    const slot = this.slotFor(id);
    const at = this.codeAddress(slot);
    const u8 = this.mem.u8();
    u8.set(code, at);
    u8.fill(0, at + codeBytes, at + this.stride);
    this.mem.f32()[this.scaleAddress(slot) >> 2] = scale;
  }

  /** A copy of the code of `id` and its scale, or undefined. */
  code(id: string): { code: Uint8Array; scale: number } | undefined {
    const slot = this.slotById.get(id);
    if (slot === undefined) return undefined;
    const at = this.codeAddress(slot);
    return {
      code: this.mem.u8().slice(at, at + this.dim * this.codec.bytesPerDim),
      scale: this.mem.f32()[this.scaleAddress(slot) >> 2]!,
    };
  }

  /** Decodes the stored code of `id` (in the stored space). */
  decode(id: string, out: Float32Array): boolean {
    const c = this.code(id);
    if (c === undefined) return false;
    this.codec.decode(c.code, c.scale, out);
    return true;
  }

  remove(id: string): boolean {
    const slot = this.slotById.get(id);
    if (slot === undefined) return false;
    const last = this.ids.length - 1;
    if (slot !== last) {
      const lastId = this.ids[last]!;
      const u8 = this.mem.u8();
      const from = this.codeAddress(last);
      u8.copyWithin(this.codeAddress(slot), from, from + this.stride);
      const f32 = this.mem.f32();
      f32[this.scaleAddress(slot) >> 2] = f32[this.scaleAddress(last) >> 2]!;
      this.ids[slot] = lastId;
      this.slotById.set(lastId, slot);
    }
    this.ids.pop();
    this.slotById.delete(id);
    this.idChars -= id.length;
    if (this.ids.length <= (this.blocks.length - 1) * BLOCK_SIZE) {
      const block = this.blocks.pop()!;
      this.mem.free(block.codes, BLOCK_SIZE * this.stride);
      this.mem.free(block.scales, BLOCK_SIZE * 4);
    }
    return true;
  }

  /**
   * Scores every stored vector against `query` and keeps the best in `top`; `accept(slot)` is asked
   * only about vectors good enough to enter it (so a filter costs nothing for the rest).
   */
  scan(query: ScanQuery, top: TopK, accept?: (slot: number) => boolean): void {
    const k = kernels();
    const useI8 = query.int8Query && query.metric !== 'l2' && this.codec.name === 'int8';
    let qScale = 0;
    if (useI8) {
      const u8 = this.mem.u8();
      u8.fill(0, this.scratchQuery, this.scratchQuery + this.paddedDim);
      qScale = int8.encode(query.vector, u8.subarray(this.scratchQuery, this.scratchQuery + this.dim));
    } else {
      const f32 = this.mem.f32();
      const q = this.scratchQuery >> 2;
      f32.set(query.vector, q);
      f32.fill(0, q + this.dim, q + this.paddedDim);
    }
    const total = this.ids.length;
    for (let b = 0; b < this.blocks.length; b++) {
      const block = this.blocks[b]!;
      const base = b * BLOCK_SIZE;
      const n = Math.min(BLOCK_SIZE, total - base);
      if (n <= 0) break;
      if (useI8) {
        k.scanI8(query.metric, this.scratchQuery, qScale, block.codes, block.scales, n, this.paddedDim, this.scratchScores);
      } else {
        k.scan(this.codec.name, query.metric, this.scratchQuery, block.codes, block.scales, n, this.paddedDim, this.scratchScores);
      }
      const scores = this.mem.f32();
      const s0 = this.scratchScores >> 2;
      for (let j = 0; j < n; j++) {
        const score = scores[s0 + j]!;
        if (!top.admits(score)) continue;
        const slot = base + j;
        if (accept !== undefined && !accept(slot)) continue;
        top.push(score, slot);
      }
    }
  }

  /** Returns all linear memory to the allocator; the object is unusable afterwards. */
  free(): void {
    if (this.freed) return;
    this.freed = true;
    for (const block of this.blocks) {
      this.mem.free(block.codes, BLOCK_SIZE * this.stride);
      this.mem.free(block.scales, BLOCK_SIZE * 4);
    }
    this.blocks.length = 0;
    this.mem.free(this.scratchQuery, this.paddedDim * 4);
    this.mem.free(this.scratchScores, BLOCK_SIZE * 4);
    this.ids.length = 0;
    this.slotById.clear();
  }
}
