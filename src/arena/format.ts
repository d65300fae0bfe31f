/**
 * The byte layout of blob-arena segments (src/arena/ARENA.md is the spec): the frame codec, and the
 * scan that walks a segment frame by frame telling whole frames from torn tails and corruption.
 * Pure over a positional reader, so the arena, `verify` and the tests share one implementation.
 */
import { crc32c, maskCrc } from '../../io/crc32c.js';
import { readU32, writeU32 } from '../../io/little-endian.js';
import { TRANSIENT_BUFFER_BYTES } from '../../io/transient-buffers.js';

/** masked CRC-32C (4) | payload length (4), little-endian. */
export const FRAME_HEADER_SIZE = 8;

/** A frame's checksum covers its bytes from here (after the checksum field) to the end of its payload. */
export const CHECKSUMMED_FROM = 4;

/** The length field is a uint32. */
export const MAX_PAYLOAD = 0xffff_ffff;

/** Largest generation or segment number: each is a uint32 in the checksummed address. */
export const MAX_NUMBER = 0xffff_ffff;

/**
 * Where a frame sits. Not stored in the frame but covered by its checksum, so a frame only checks
 * at the place it was written for: a reference that points at the wrong frame, a frame embedded in
 * another blob's payload, or a segment file under the wrong name fails its check instead of
 * returning another blob's bytes.
 */
export interface FrameAddress {
  readonly generation: number;
  readonly segment: number;
  readonly offset: number;
}

export type FrameDamage = 'truncated header' | 'truncated frame' | 'bad checksum';

export type FrameCheck = { readonly ok: true; readonly length: number } | { readonly ok: false; readonly damage: FrameDamage };

export function frameSize(payloadLength: number): number {
  return FRAME_HEADER_SIZE + payloadLength;
}

const addressScratch = new Uint8Array(16);

/**
 * The CRC-32C of a frame's place (generation, segment, offset: the 16 bytes its checksum starts
 * with), from which the checksum goes on over the frame's bytes after the checksum field.
 */
export function frameSeed(generation: number, segment: number, offset: number): number {
  writeU32(addressScratch, 0, generation);
  writeU32(addressScratch, 4, segment);
  writeU32(addressScratch, 8, offset >>> 0);
  writeU32(addressScratch, 12, Math.floor(offset / 0x1_0000_0000));
  return crc32c(addressScratch);
}

/**
 * The CRC-32C of a segment's part of every frame's place (generation, segment: the first 8 of the 16
 * bytes frameSeed() sums): frameSeed(generation, segment, offset) is this continued over the offset's
 * 8 little-endian bytes, which a batch of frames of one segment takes from it (MappedFile.gather).
 */
export function framePrefix(generation: number, segment: number): number {
  writeU32(addressScratch, 0, generation);
  writeU32(addressScratch, 4, segment);
  return crc32c(addressScratch, 0, 8);
}

/** The masked checksum of the frame at `buf[at]` whose payload ends at `buf[end]`, for the given place. */
function checksumAt(buf: Uint8Array, at: number, end: number, generation: number, segment: number, offset: number): number {
  return maskCrc(crc32c(buf, at + CHECKSUMMED_FROM, end, frameSeed(generation, segment, offset)));
}

function frameChecksum(buf: Uint8Array, at: number, end: number, address: FrameAddress): number {
  return checksumAt(buf, at, end, address.generation, address.segment, address.offset);
}

/** Writes one frame for `payload` into `out` at `at`, for the place `address`; returns the end index in `out`. */
export function encodeFrame(out: Uint8Array, at: number, address: FrameAddress, payload: Uint8Array): number {
  const end = at + FRAME_HEADER_SIZE + payload.length;
  writeU32(out, at + 4, payload.length);
  out.set(payload, at + FRAME_HEADER_SIZE);
  writeU32(out, at, frameChecksum(out, at, end, address));
  return end;
}

/** A new buffer holding exactly one frame. */
export function frame(address: FrameAddress, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(frameSize(payload.length));
  encodeFrame(out, 0, address, payload);
  return out;
}

/** The payload length a frame header declares (no check). */
export function frameLength(bytes: Uint8Array, at = 0): number {
  return readU32(bytes, at + 4);
}

/**
 * The damage of the frame of `length` payload bytes at `bytes[at]`, of which `got` bytes are at
 * hand, written for the given place (generation, segment, offset), or undefined when it checks.
 * The one rule every reader applies, without making an object.
 */
export function frameDamageAt(bytes: Uint8Array, at: number, got: number, length: number, generation: number, segment: number, offset: number): FrameDamage | undefined {
  if (got < FRAME_HEADER_SIZE) return 'truncated header';
  const end = FRAME_HEADER_SIZE + length;
  if (end > got) return 'truncated frame';
  return readU32(bytes, at) === checksumAt(bytes, at, at + end, generation, segment, offset) ? undefined : 'bad checksum';
}

/**
 * Whether the checksum field of the frame at `bytes[at]` holds `summed`, masked: the CRC-32C of
 * the frame's bytes from CHECKSUMMED_FROM to the end of its payload, continuing frameSeed() of its
 * place, as the read that copied it summed them (MappedFile.copyChecksummed).
 */
export function frameSumMatches(bytes: Uint8Array, at: number, summed: number): boolean {
  return readU32(bytes, at) === maskCrc(summed);
}

/**
 * Checks the frame at the start of `bytes`, which hold everything the file has from the frame's
 * first byte up to at least its end (or to the end of the file when that comes first).
 */
export function checkFrame(bytes: Uint8Array, address: FrameAddress): FrameCheck {
  const length = bytes.length < FRAME_HEADER_SIZE ? 0 : readU32(bytes, 4);
  const damage = frameDamageAt(bytes, 0, bytes.length, length, address.generation, address.segment, address.offset);
  return damage === undefined ? { ok: true, length } : { ok: false, damage };
}

/** What FileHandle offers for reading; kept minimal so the scan is independent of the file layer. */
export interface PositionalReader {
  /** Reads up to `buffer.length` bytes at `position`; resolves to the count (short only at end of file). */
  read(buffer: Uint8Array, position: number): Promise<number>;
  /** The same, synchronously, where the file layer offers it. */
  readSync?(buffer: Uint8Array, position: number): number;
}

const EMPTY = new Uint8Array(0);

/**
 * Sequential reads through a window: a scan steps through a segment in small pieces (and byte by
 * byte while looking for the next frame after damage), which must not cost a system call each.
 *
 * The window reads into one buffer it keeps for its lifetime (grown only for a frame larger than
 * it), so a scan of a whole segment allocates once: a fresh megabyte per step left tens of
 * megabytes of freed buffers in the process's heap after a store's open. A view from `get`,
 * `from` or `peek` is therefore valid only until the window's next `get` or `from`. The window is
 * a transient buffer (io/transient-buffers.ts): a 1 MiB one, freed after open, kept megabytes
 * resident.
 */
export class SegmentWindow {
  private buf: Uint8Array = EMPTY;
  private begin = 0;
  private storage: Uint8Array = EMPTY;

  constructor(
    private readonly file: PositionalReader,
    readonly size: number,
    private readonly windowBytes = TRANSIENT_BUFFER_BYTES,
  ) {}

  /** Bytes [offset, min(offset + length, size)) of the file; valid until the next get or from. */
  async get(offset: number, length: number): Promise<Uint8Array> {
    const cached = this.peek(offset, length);
    if (cached !== undefined) return cached;
    const end = Math.min(offset + length, this.size);
    const want = Math.min(Math.max(end - offset, this.windowBytes), this.size - offset);
    if (this.storage.length < want) this.storage = new Uint8Array(Math.max(want, Math.min(this.windowBytes, this.size)));
    const buf = this.storage.subarray(0, want);
    // Until the read completes the window holds nothing: the buffer is being overwritten.
    this.buf = EMPTY;
    // Synchronous where offered: a window's worth from the page cache costs less than a round trip
    // through libuv's thread pool, and a scan reads hundreds of them.
    const got = this.file.readSync !== undefined ? this.file.readSync(buf, offset) : await this.file.read(buf, offset);
    this.buf = buf.subarray(0, got);
    this.begin = offset;
    return this.buf.subarray(0, Math.min(got, end - offset));
  }

  /** Every byte the window holds from `offset` on: at least `min` of them unless the file ends sooner. */
  async from(offset: number, min: number): Promise<Uint8Array> {
    if (this.peek(offset, min) === undefined) await this.get(offset, min);
    return this.buf.subarray(offset - this.begin);
  }

  /** The bytes the window holds, from file offset `start`; valid until the next get or from. */
  get held(): Uint8Array {
    return this.buf;
  }

  get start(): number {
    return this.begin;
  }

  /** Like get, without waiting: undefined when the bytes are not in the window. */
  peek(offset: number, length: number): Uint8Array | undefined {
    const end = Math.min(offset + length, this.size);
    if (end <= offset) return EMPTY;
    if (offset < this.begin || end > this.begin + this.buf.length) return undefined;
    return this.buf.subarray(offset - this.begin, end - this.begin);
  }
}

/** Checks the frame at `address.offset` of the window's file. */
export async function checkFrameAt(window: SegmentWindow, address: FrameAddress): Promise<FrameCheck> {
  const header = await window.get(address.offset, FRAME_HEADER_SIZE);
  if (header.length < FRAME_HEADER_SIZE) return { ok: false, damage: 'truncated header' };
  const length = readU32(header, 4);
  if (address.offset + FRAME_HEADER_SIZE + length > window.size) return { ok: false, damage: 'truncated frame' };
  return checkFrame(await window.get(address.offset, FRAME_HEADER_SIZE + length), address);
}

/**
 * checkFrameAt without waiting, or undefined when the window does not hold the frame. Scans take
 * this path for nearly every frame: an await per frame (or per byte, while resynchronizing) would
 * cost more than the checksum.
 */
function checkFrameCached(window: SegmentWindow, address: FrameAddress): FrameCheck | undefined {
  const header = window.peek(address.offset, FRAME_HEADER_SIZE);
  if (header === undefined) return undefined;
  if (header.length < FRAME_HEADER_SIZE) return { ok: false, damage: 'truncated header' };
  const length = readU32(header, 4);
  if (address.offset + FRAME_HEADER_SIZE + length > window.size) return { ok: false, damage: 'truncated frame' };
  const bytes = window.peek(address.offset, FRAME_HEADER_SIZE + length);
  return bytes === undefined ? undefined : checkFrame(bytes, address);
}

export interface SegmentDamage {
  readonly offset: number;
  readonly what: FrameDamage;
}

export interface SegmentScan {
  /** Whole, checksum-valid frames. */
  frames: number;
  /** Payload bytes of those frames. */
  payloadBytes: number;
  /** End of the last valid frame: where a cut of the tail leaves the file. */
  end: number;
  /** Damage that a valid frame follows: corruption, never cut. */
  damage: SegmentDamage[];
  /** Damage that no valid frame follows (a torn tail in the active segment), or undefined. */
  tail: SegmentDamage | undefined;
}

/**
 * Walks the segment frame by frame (ARENA.md, "Reading a segment"). After damage it looks at every
 * later byte offset for a valid frame, because the damage may have destroyed the length that says
 * where the next frame starts; the address in the checksum makes a false match at a wrong offset
 * as unlikely as a random checksum match.
 */
export async function scanSegment(window: SegmentWindow, generation: number, segment: number): Promise<SegmentScan> {
  const scan: SegmentScan = { frames: 0, payloadBytes: 0, end: 0, damage: [], tail: undefined };
  let offset = 0;
  while (offset < window.size) {
    // Nearly every frame is whole, valid and in the window: checked in place, without an object.
    const held = window.held;
    const at = offset - window.start;
    if (at >= 0 && at + FRAME_HEADER_SIZE <= held.length) {
      const length = readU32(held, at + 4);
      if (frameDamageAt(held, at, held.length - at, length, generation, segment, offset) === undefined) {
        scan.frames++;
        scan.payloadBytes += length;
        offset += FRAME_HEADER_SIZE + length;
        scan.end = offset;
        continue;
      }
    }
    const address = { generation, segment, offset };
    const check = checkFrameCached(window, address) ?? (await checkFrameAt(window, address));
    if (check.ok) {
      scan.frames++;
      scan.payloadBytes += check.length;
      offset += FRAME_HEADER_SIZE + check.length;
      scan.end = offset;
      continue;
    }
    const next = await findFrame(window, generation, segment, offset + 1);
    if (next === undefined) {
      scan.tail = { offset, what: check.damage };
      break;
    }
    scan.damage.push({ offset, what: check.damage });
    offset = next;
  }
  return scan;
}

/**
 * The first offset at or after `from` where a valid frame starts, or undefined. Every byte offset
 * is a candidate, so the loop runs over the window's bytes without allocating or awaiting; after
 * a power cut this may cross megabytes of zeros.
 */
export async function findFrame(window: SegmentWindow, generation: number, segment: number, from: number): Promise<number | undefined> {
  let offset = from;
  scan: while (offset + FRAME_HEADER_SIZE <= window.size) {
    const bytes = await window.from(offset, FRAME_HEADER_SIZE);
    if (bytes.length < FRAME_HEADER_SIZE) break;
    const last = bytes.length - FRAME_HEADER_SIZE;
    for (let i = 0; i <= last; i++) {
      const at = offset + i;
      const length = readU32(bytes, i + 4);
      const end = i + FRAME_HEADER_SIZE + length;
      // Most offsets fail here without computing a checksum: a random length runs past the end,
      // and eight zero bytes are zero fill (an empty frame whose masked checksum is 0, one in 2^32,
      // is thereby missed only by this search, and is cut with the tail it follows).
      if (offset + end > window.size || (length === 0 && readU32(bytes, i) === 0)) continue;
      if (end <= bytes.length) {
        if (readU32(bytes, i) === checksumAt(bytes, i, end, generation, segment, at)) return at;
        continue;
      }
      if ((await checkFrameAt(window, { generation, segment, offset: at })).ok) return at;
      // The check moved the window, and `bytes` with it: go on from the next offset through a fresh view.
      offset = at + 1;
      continue scan;
    }
    offset += last + 1;
  }
  return undefined;
}
