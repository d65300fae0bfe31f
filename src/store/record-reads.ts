import type { BlobArena, BlobRef } from '../arena/arena.js';
import { TRANSIENT_BUFFER_BYTES } from '../../io/transient-buffers.js';
import { FRAME_HEADER_SIZE, frameSize } from '../arena/format.js';
import { MemstoreError } from '../errors.js';
import type { VectorPlace } from '../scan/code-blocks.js';
import { arenaDir } from './files.js';
import { asMemstoreError, isDamage, recordCorruption } from './record-errors.js';

// ignoreBOM keeps a leading U+FEFF: by default a decoder strips it, and '\uFEFFa' would come back as 'a'.
const fromUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Texts up to this frame size are read through one shared buffer (io/transient-buffers.ts); longer ones get a buffer each. */
const TEXT_SCRATCH_BYTES = TRANSIENT_BUFFER_BYTES;

/**
 * Reads of one record's parts from the store's two arenas: its full-precision vector (a frame of
 * `dim` float32 in the vector arena) and its text (UTF-8 in the text arena). A check that fails is
 * CORRUPTION naming the record (`id`), which the store sets aside; an I/O failure is IO.
 */
export class RecordReads {
  private scratch: Uint8Array | undefined;
  private scratchFloats: Float32Array | undefined;
  private textScratch: Uint8Array | undefined;

  constructor(
    private readonly dir: string,
    private readonly dim: number,
    private readonly texts: BlobArena,
    private readonly vectors: BlobArena,
  ) {}

  /** The vector arena's reference of a place: the frame holds `dim` float32. */
  vectorRef(place: VectorPlace): BlobRef {
    return [place[0], place[1], place[2], this.dim * 4];
  }

  /** The full-precision vector of `id` at `place` (a view into a buffer of its own). */
  async vector(id: string, place: VectorPlace): Promise<Float32Array> {
    const now = this.vectorNow(id, place);
    if (now !== undefined) return now;
    let bytes: Uint8Array;
    try {
      bytes = await this.vectors.read(this.vectorRef(place));
    } catch (e) {
      throw this.vectorError(id, e);
    }
    return this.floats(bytes);
  }

  /** vector() without waiting, when the vector arena can read synchronously; else undefined. */
  vectorNow(id: string, place: VectorPlace): Float32Array | undefined {
    return this.vectorNowIn(() => id, place, undefined);
  }

  /**
   * vectorNow() into this object's one scratch frame: a view valid until the next call, for callers
   * that copy or score each vector before reading the next (no buffer per vector). The record's id
   * is asked of `idOf` only to name it in an error: rescoring reads tens of vectors a search, and
   * making each one's id from the index had cost about as much as checking its frame (6% of an rq2
   * search at 50k, src/search/RESCORING.md).
   */
  vectorNowShared(place: VectorPlace, idOf: () => string): Float32Array | undefined {
    const scratch = (this.scratch ??= new Uint8Array(frameSize(this.dim * 4)));
    // The frame read straight into the shared buffer, seen through one view made once: no object per read.
    this.scratchFloats ??= new Float32Array(scratch.buffer, scratch.byteOffset + FRAME_HEADER_SIZE, this.dim);
    try {
      if (this.vectors.readFrameInto(place[0], place[1], place[2], this.dim * 4, scratch)) return this.scratchFloats;
    } catch (e) {
      throw this.vectorError(idOf(), e);
    }
    return this.vectorNowIn(idOf, place, scratch);
  }

  /**
   * vectorNowShared() of the vectors at `places[0, count)` at once, straight into `target`: vector i
   * at `target[i * stride]` (bytes), zeros after it up to the next. True when all are there, checked;
   * false, with `target` in any state, when any one cannot be read so (BlobArena.gatherFrames): then
   * read them one by one, which reads and reports as always.
   */
  gatherVectors(places: readonly VectorPlace[], count: number, target: Uint8Array, stride: number): boolean {
    return this.vectors.gatherFrames(places, count, this.dim * 4, target, stride);
  }

  /**
   * A hint that the vectors at `places` are about to be read (vectorNowShared): their frames are
   * fetched into the CPU's caches where the arena's maps hold them (BlobArena.prefetchFrames).
   */
  prefetchVectors(places: readonly VectorPlace[], count: number): void {
    this.vectors.prefetchFrames(places, count, this.dim * 4);
  }

  /**
   * Whether the vector at `place` would be read out of memory now, with no wait for the disk
   * (BlobArena.frameResident): rescoring then reads it rather than take its error bound first.
   */
  vectorResident(place: VectorPlace, now?: number): boolean {
    return this.vectors.frameResident(place[0], place[1], place[2], this.dim * 4, now);
  }

  /** Whether a read of the vector at `place` goes through a memory map now (BlobArena.frameMapped). */
  vectorMapped(place: VectorPlace): boolean {
    return this.vectors.frameMapped(place[0], place[1], place[2], this.dim * 4);
  }

  private vectorNowIn(idOf: () => string, place: VectorPlace, scratch: Uint8Array | undefined): Float32Array | undefined {
    let bytes: Uint8Array | undefined;
    try {
      bytes = this.vectors.readNow(this.vectorRef(place), scratch);
    } catch (e) {
      throw this.vectorError(idOf(), e);
    }
    return bytes === undefined ? undefined : this.floats(bytes);
  }

  /**
   * text(), synchronously, when the text arena can read so (the node file layer does); undefined
   * when it cannot. Read into a shared buffer when the frame fits it: a search's texts cost a
   * string each, not a buffer and a promise each.
   */
  textNow(id: string, ref: BlobRef): string | undefined {
    let bytes: Uint8Array | undefined;
    try {
      bytes = this.texts.readNow(ref, (this.textScratch ??= new Uint8Array(TEXT_SCRATCH_BYTES)));
    } catch (e) {
      throw this.textError(id, e);
    }
    return bytes === undefined ? undefined : this.decodeText(id, bytes);
  }

  /** The text of `id` at `ref`. */
  async text(id: string, ref: BlobRef): Promise<string> {
    let bytes: Uint8Array;
    try {
      bytes = await this.texts.read(ref);
    } catch (e) {
      throw this.textError(id, e);
    }
    return this.decodeText(id, bytes);
  }

  private decodeText(id: string, bytes: Uint8Array): string {
    try {
      return fromUtf8.decode(bytes);
    } catch (e) {
      throw new MemstoreError('CORRUPTION', `${this.dir}: the text of ${JSON.stringify(id)} is not valid UTF-8`, { file: arenaDir(this.dir), cause: e, id });
    }
  }

  private textError(id: string, e: unknown): unknown {
    const err = asMemstoreError(e, 'reading a text from the arena');
    return isDamage(err) ? recordCorruption(id, err) : err;
  }

  private vectorError(id: string, e: unknown): unknown {
    const err = asMemstoreError(e, 'reading a vector from the vector arena');
    return isDamage(err) ? recordCorruption(id, err) : err;
  }

  /** The float32 view of a vector's payload (aligned: frames' payloads start 8 bytes into their buffer), or a copy. */
  private floats(bytes: Uint8Array): Float32Array {
    if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, this.dim);
    const out = new Float32Array(this.dim);
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
}
