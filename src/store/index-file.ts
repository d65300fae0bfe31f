import { isUtf8 } from 'node:buffer';
import { join } from 'node:path';
import type { FileHandle, FileLayer } from '../../io/file-layer.js';
import { ensureDurableDir } from '../../io/file-layer.js';
import { crc32c, maskCrc, unmaskCrc } from '../../io/crc32c.js';
import { TRANSIENT_BUFFER_BYTES } from '../../io/transient-buffers.js';
import { MemstoreError } from '../errors.js';
import { MAX_ID_BYTES } from '../limits.js';
import type { VectorPlace } from '../scan/code-blocks.js';
import { indexDir, indexFilePath, parseIndexFileName } from './files.js';

/**
 * The index file (INDEX.md): what opening a store needs of every record, read sequentially. A
 * generation's file is a sequence of sealed blocks: a snapshot (one or more `snapshot` blocks) and
 * then one or more `delta` blocks per checkpoint. The LMDB checkpoint names the generation and its
 * committed length; a reader reads exactly that prefix.
 */

/** length u32 | masked CRC-32C u32 | kind u8 | 3 zero bytes | count u32 | codeBytes u32. */
export const INDEX_HEADER_SIZE = 20;

/**
 * Seals a block of this header layout (the index file's and the columns file's): the masked CRC-32C
 * of everything after the checksum field (header bytes 8 .. 19 and the payload) goes in bytes 4 .. 7.
 */
export function sealChecksum(block: Uint8Array): void {
  new DataView(block.buffer, block.byteOffset, INDEX_HEADER_SIZE).setUint32(4, maskCrc(crc32c(block, 8, block.length)), true);
}

/** Whether a whole block of this header layout passes its checksum (sealChecksum()). */
export function checksumHolds(block: Uint8Array): boolean {
  return unmaskCrc(new DataView(block.buffer, block.byteOffset, INDEX_HEADER_SIZE).getUint32(4, true)) === crc32c(block, 8, block.length);
}
export const BLOCK_SNAPSHOT = 1;
export const BLOCK_DELTA = 2;
export type BlockKind = typeof BLOCK_SNAPSHOT | typeof BLOCK_DELTA;

/** Record flags. A deletion has DELETED alone. */
export const FLAG_DELETED = 0x01;
export const FLAG_CODE = 0x02;
export const FLAG_PLACE = 0x04;
/** The record has a `docs` value in the LMDB state (a text, metadata, or both). */
export const FLAG_DOCUMENTED = 0x08;
/** The record's code lies in page `page` of the page-clustered index (with CODE only). */
export const FLAG_PAGE = 0x10;
const KNOWN_FLAGS = FLAG_DELETED | FLAG_CODE | FLAG_PLACE | FLAG_DOCUMENTED | FLAG_PAGE;

/** The flags of an upsert: with a code, with a place (a full-precision vector), with a document, in page `page` (-1: none). */
export function recordFlags(coded: boolean, placed: boolean, documented: boolean, page: number): number {
  return (coded ? FLAG_CODE : 0) | (placed ? FLAG_PLACE : 0) | (documented ? FLAG_DOCUMENTED : 0) | (page >= 0 ? FLAG_PAGE : 0);
}

/**
 * A block is closed once its records pass this many bytes (a record is never split). Damage costs
 * a whole block: its ids are in the damaged bytes (INDEX.md, "Reading"). At 256 KiB, until
 * 2026-12-05, one flipped byte cost about 480 records of 512 dimensions (every record of a store
 * of 50, found by a hostile pass); at 16 KiB it costs about 30 (120 at 100 dimensions), for a
 * 20-byte header every 16 KiB.
 */
export const INDEX_BLOCK_BYTES = 16 << 10;
/**
 * Blocks are written one after another into buffers of this size (a block is a view of one), not
 * each into a buffer of its own: at this size malloc maps each one apart and returns it whole when
 * it is freed, where buffers of 64 KiB came from the heap and a 331k bulk load left tens of megabytes
 * of them resident.
 */
const BLOCK_BUFFER_BYTES = 256 << 10;
/**
 * The largest block a writer of this format has closed (256 KiB blocks until 2026-12-05): the
 * lenient reader's search for the next plausible block after damage uses it, and files written
 * before are read as they are.
 */
const LARGEST_WRITTEN_BLOCK_BYTES = 256 << 10;
/**
 * Reads at open go in chunks of this many bytes, or one block when a block is longer: the buffer
 * stays a transient one (io/transient-buffers.ts) but for the length of one block.
 */
const READ_CHUNK = TRANSIENT_BUFFER_BYTES;

const utf8 = new TextEncoder();
// ignoreBOM keeps a leading U+FEFF: it is part of the id.
const fromUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** One record as a checkpoint writes it. */
export type IndexRecord =
  | { readonly id: string; readonly deleted: true }
  | {
      readonly id: string;
      readonly deleted?: false;
      readonly code: { readonly code: Uint8Array; readonly scale: number } | undefined;
      readonly place: VectorPlace | undefined;
      readonly documented: boolean;
      /** The page holding its code, in a page-clustered index; undefined or -1 for none. */
      readonly page?: number;
    };

/**
 * Encodes records into sealed blocks of one kind. All records of a store have codes of
 * `codeBytes` bytes (0 before training, when none has a code).
 */
export class BlockWriter {
  private readonly blocks: Uint8Array[] = [];
  private buf = new Uint8Array(INDEX_HEADER_SIZE + 4096);
  /** Where the open block's header is in `buf`: the blocks sealed before it in `buf` are views of it. */
  private start = 0;
  private used = INDEX_HEADER_SIZE;
  private count = 0;
  private total = 0;
  private added = 0;

  constructor(
    readonly kind: BlockKind,
    readonly codeBytes: number,
  ) {}

  add(r: IndexRecord): void {
    const idBytes = utf8.encode(r.id);
    if (r.deleted === true) {
      this.addRaw(idBytes, FLAG_DELETED, undefined, 0, 0, 0, 0, -1);
      return;
    }
    const page = r.page ?? -1;
    const flags = recordFlags(r.code !== undefined, r.place !== undefined, r.documented, page);
    this.addRaw(idBytes, flags, r.code?.code, r.code?.scale ?? 0, r.place?.[0] ?? 0, r.place?.[1] ?? 0, r.place?.[2] ?? 0, page);
  }

  /**
   * One record from its parts: the id's UTF-8, flags (CODE, PLACE and PAGE say which of the rest
   * are written), code and scale, place, page. What a snapshot of the in-memory index writes, lookup-free.
   */
  addRaw(idBytes: Uint8Array, flags: number, code: Uint8Array | undefined, scale: number, generation: number, segment: number, offset: number, page: number): void {
    if (idBytes.length === 0 || idBytes.length > MAX_ID_BYTES) throw new RangeError(`id of ${idBytes.length} bytes`);
    let size = 3 + idBytes.length;
    if ((flags & FLAG_CODE) !== 0) {
      if (code === undefined || code.length !== this.codeBytes) throw new RangeError(`code of ${code?.length ?? 0} bytes, expected ${this.codeBytes}`);
      size += 4 + this.codeBytes;
    }
    if ((flags & FLAG_PLACE) !== 0) {
      if (segment === 0) throw new RangeError('a place in segment 0');
      size += 12;
    }
    if ((flags & FLAG_PAGE) !== 0) {
      if ((flags & FLAG_CODE) === 0) throw new RangeError('a page without a code');
      if (!(Number.isInteger(page) && page >= 0 && page <= 0xffffffff)) throw new RangeError(`page ${page}`);
      size += 4;
    }
    this.reserve(size);
    const b = this.buf;
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    let at = this.used;
    b[at] = flags;
    v.setUint16(at + 1, idBytes.length, true);
    b.set(idBytes, at + 3);
    at += 3 + idBytes.length;
    if ((flags & FLAG_CODE) !== 0) {
      v.setFloat32(at, scale, true);
      b.set(code!, at + 4);
      at += 4 + this.codeBytes;
    }
    if ((flags & FLAG_PLACE) !== 0) {
      v.setUint32(at, generation, true);
      v.setUint32(at + 4, segment, true);
      v.setUint32(at + 8, offset, true);
      at += 12;
    }
    if ((flags & FLAG_PAGE) !== 0) {
      v.setUint32(at, page, true);
      at += 4;
    }
    this.used = at;
    this.count++;
    this.added++;
    if (this.used - this.start - INDEX_HEADER_SIZE >= INDEX_BLOCK_BYTES) this.seal();
  }

  /** The sealed blocks (a writer with no record gives none). */
  finish(): Uint8Array[] {
    if (this.count > 0) this.seal();
    return this.blocks;
  }

  /** Records added, in every block. */
  get records(): number {
    return this.added;
  }

  /** Bytes of the blocks sealed so far plus the open one. */
  get bytes(): number {
    return this.total + (this.count > 0 ? this.used - this.start : 0);
  }

  /**
   * Room for `size` more bytes of the open block. A new buffer takes the open block alone (the
   * blocks sealed before stay views of the old one): twice the last one's size, up to
   * BLOCK_BUFFER_BYTES, or more for one record that needs it.
   */
  private reserve(size: number): void {
    if (this.used + size <= this.buf.length) return;
    const open = this.used - this.start;
    const next = new Uint8Array(Math.max(Math.min(BLOCK_BUFFER_BYTES, this.buf.length * 2), open + size));
    next.set(this.buf.subarray(this.start, this.used));
    this.buf = next;
    this.start = 0;
    this.used = open;
  }

  private seal(): void {
    const block = this.buf.subarray(this.start, this.used);
    const v = new DataView(block.buffer, block.byteOffset, block.byteLength);
    v.setUint32(0, block.length - INDEX_HEADER_SIZE, true);
    block[8] = this.kind;
    v.setUint32(12, this.count, true);
    v.setUint32(16, this.codeBytes, true);
    sealChecksum(block);
    this.blocks.push(block);
    this.total += block.length;
    this.start = this.used;
    // The next block's header, zeroed: a buffer taken over from an earlier block's view holds its bytes.
    this.reserve(INDEX_HEADER_SIZE);
    this.buf.fill(0, this.start, this.start + INDEX_HEADER_SIZE);
    this.used = this.start + INDEX_HEADER_SIZE;
    this.count = 0;
  }
}

/**
 * `blocks` as runs of bytes to write: blocks that lie one after another in one buffer (as a
 * BlockWriter seals them) go in one write, not one write each.
 */
export function writeRuns(blocks: readonly Uint8Array[]): Uint8Array[] {
  const runs: Uint8Array[] = [];
  for (const b of blocks) {
    const last = runs.at(-1);
    if (last !== undefined && last.buffer === b.buffer && last.byteOffset + last.byteLength === b.byteOffset) {
      runs[runs.length - 1] = new Uint8Array(b.buffer, last.byteOffset, last.byteLength + b.byteLength);
    } else {
      runs.push(b);
    }
  }
  return runs;
}

/**
 * One upsert as the reader meets it: where its parts lie in the block being parsed. A reader fills
 * one view and passes it for every upsert, so opening makes no object per record (a load of 50k
 * records made about 15 MB of garbage, and the young generation it grew stayed resident). Valid
 * only during the visitor's call.
 */
export class IndexRecordView {
  block: Uint8Array = new Uint8Array(0);
  flags = 0;
  /** The id's UTF-8 (checked well-formed) is `block[idAt, idAt + idLength)`. */
  idAt = 0;
  idLength = 0;
  /** The code is `block[codeAt, codeAt + codeBytes)`; -1 when the record has none. */
  codeAt = -1;
  /** Code bytes of the record's block (all codes of a block have this length). */
  codeBytes = 0;
  scale = 0;
  /** The full-precision vector's frame; segment 0 for none. */
  generation = 0;
  segment = 0;
  offset = 0;
  /** The page of a page-clustered index holding the code; -1 for none. */
  page = -1;
  /** The file offset of the record's block: records at or past a columns file's stamp changed after it. */
  blockOffset = 0;

  get documented(): boolean {
    return (this.flags & FLAG_DOCUMENTED) !== 0;
  }

  get hasCode(): boolean {
    return this.codeAt >= 0;
  }

  /** The id as a string (allocates: for the paths that need one). */
  id(): string {
    return fromUtf8.decode(this.block.subarray(this.idAt, this.idAt + this.idLength));
  }
}

/**
 * What reading an index file calls for each record, in file order (later records supersede earlier
 * ones): an upsert as a view into the block, a deletion by id.
 */
export interface IndexVisitor {
  upsert(record: IndexRecordView): void;
  remove(id: string): void;
}

/** Whether `bytes[from, to)` is ASCII: most ids are, and need no UTF-8 check (nor a view for one). */
function isAscii(bytes: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (bytes[i]! >= 0x80) return false;
  return true;
}

/** A stretch of an index file that failed a check, for lenient readers (verify, repair). */
export interface IndexDamage {
  readonly file: string;
  readonly offset: number;
  readonly end: number;
  readonly what: string;
}

export interface IndexReadResult {
  /** Bytes of snapshot blocks, and of delta blocks, read. */
  readonly snapshotBytes: number;
  readonly deltaBytes: number;
  /** Records read (deletions included). */
  readonly records: number;
  /** Bytes of the file past the committed length (a checkpoint that never committed). */
  readonly uncommitted: number;
}

/**
 * The digest a checkpoint names the index prefix by (INDEX.md, "Files and generations"): CRC-32C of
 * the 20-byte headers of `blocks`, in order, continuing `from` (the digest of the blocks before
 * them; 0 for none).
 */
export function indexDigest(blocks: readonly Uint8Array[], from = 0): number {
  let digest = from;
  for (const b of blocks) digest = crc32c(b, 0, INDEX_HEADER_SIZE, digest);
  return digest;
}

/**
 * indexDigest() of the blocks of `[0, committed)` as the file holds them, from their headers alone
 * (one read of 20 bytes a block), before anything is parsed; undefined when the headers do not
 * chain to exactly the committed length (damage, which the read that follows reports).
 */
async function headerDigest(handle: FileHandle, committed: number): Promise<number | undefined> {
  const header = new Uint8Array(INDEX_HEADER_SIZE);
  const view = new DataView(header.buffer);
  let digest = 0;
  let pos = 0;
  while (pos < committed) {
    if (pos + INDEX_HEADER_SIZE > committed) return undefined;
    const got = handle.readSync !== undefined ? handle.readSync(header, pos) : await handle.read(header, pos);
    if (got < INDEX_HEADER_SIZE) return undefined;
    digest = crc32c(header, 0, INDEX_HEADER_SIZE, digest);
    pos += INDEX_HEADER_SIZE + view.getUint32(0, true);
  }
  return pos === committed ? digest : undefined;
}

function indexCorruption(file: string, offset: number, what: string): MemstoreError {
  return new MemstoreError('CORRUPTION', `${file}: ${what} at offset ${offset}`, { file, offset });
}

/**
 * Parses the records of one block whose checksum held. Throws CORRUPTION (a writer bug or
 * tampering, since the checksum vouched for the bytes) when they do not parse.
 */
function parseBlock(file: string, offset: number, bytes: Uint8Array, count: number, codeBytes: number, visit: IndexVisitor, view: IndexRecordView): void {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  view.block = bytes;
  view.codeBytes = codeBytes;
  view.blockOffset = offset;
  let at = 0;
  const bad = (what: string) => indexCorruption(file, offset, `block ${what}`);
  for (let n = 0; n < count; n++) {
    if (at + 3 > bytes.length) throw bad('ends inside a record');
    const flags = bytes[at]!;
    const idLength = v.getUint16(at + 1, true);
    at += 3;
    if ((flags & ~KNOWN_FLAGS) !== 0 || ((flags & FLAG_DELETED) !== 0 && flags !== FLAG_DELETED)) throw bad(`holds a record with flags 0x${flags.toString(16)}`);
    if (idLength === 0 || idLength > MAX_ID_BYTES || at + idLength > bytes.length) throw bad('holds a record with a bad id length');
    const idAt = at;
    if (!isAscii(bytes, at, at + idLength) && !isUtf8(bytes.subarray(at, at + idLength))) throw bad('holds an id that is not UTF-8');
    at += idLength;
    if (flags === FLAG_DELETED) {
      visit.remove(fromUtf8.decode(bytes.subarray(idAt, at)));
      continue;
    }
    let codeAt = -1;
    let scale = 0;
    if ((flags & FLAG_CODE) !== 0) {
      if (codeBytes === 0 || at + 4 + codeBytes > bytes.length) throw bad('ends inside a code');
      scale = v.getFloat32(at, true);
      // No codec writes a NaN, infinite or negative scale (nor -0): one is damage the block's checksum was sealed over.
      if (!Number.isFinite(scale)) throw bad('holds a code whose scale is not finite');
      if (scale < 0 || Object.is(scale, -0)) throw bad('holds a code whose scale is negative');
      codeAt = at + 4;
      at += 4 + codeBytes;
    }
    let generation = 0;
    let segment = 0;
    let offset = 0;
    if ((flags & FLAG_PLACE) !== 0) {
      if (at + 12 > bytes.length) throw bad('ends inside a place');
      generation = v.getUint32(at, true);
      segment = v.getUint32(at + 4, true);
      offset = v.getUint32(at + 8, true);
      if (segment === 0) throw bad('holds a place in segment 0');
      at += 12;
    }
    let page = -1;
    if ((flags & FLAG_PAGE) !== 0) {
      if ((flags & FLAG_CODE) === 0) throw bad('holds a page without a code');
      if (at + 4 > bytes.length) throw bad('ends inside a page');
      page = v.getUint32(at, true);
      at += 4;
    }
    view.flags = flags;
    view.idAt = idAt;
    view.idLength = idLength;
    view.codeAt = codeAt;
    view.scale = scale;
    view.generation = generation;
    view.segment = segment;
    view.offset = offset;
    view.page = page;
    visit.upsert(view);
  }
  if (at !== bytes.length) throw bad(`has ${bytes.length - at} bytes after its last record`);
}

/** The largest record a block can end with: one of `codeBytes` and the longest id. */
function largestRecord(codeBytes: number): number {
  return 3 + MAX_ID_BYTES + 4 + codeBytes + 12 + 4;
}

/**
 * Reads `[0, committed)` of an open index file block by block. Strict (no `onDamage`): any damage
 * inside the committed length is CORRUPTION. Lenient: a block whose checksum fails, or whose header
 * cannot be trusted (its length runs past the committed length), is reported together with every
 * byte up to the next offset where a whole block passes its checksum, and reading goes on from
 * there: a damaged header costs its own block, not every block after it. A block whose checksum
 * holds and that is still refused (unknown kind, a snapshot after a delta, records that do not
 * parse) is reported and skipped by its length.
 */
async function readBlocks(handle: FileHandle, file: string, size: number, committed: number, visit: IndexVisitor, onDamage?: (d: IndexDamage) => void): Promise<Omit<IndexReadResult, 'uncommitted'>> {
  let snapshotBytes = 0;
  let deltaBytes = 0;
  let records = 0;
  if (size < committed) {
    const e = indexCorruption(file, size, `file of ${size} bytes, shorter than its committed length ${committed}`);
    if (onDamage === undefined) throw e;
    onDamage({ file, offset: size, end: committed, what: e.message });
    committed = size;
  }
  let buf = new Uint8Array(Math.min(READ_CHUNK, Math.max(committed, INDEX_HEADER_SIZE)));
  const view = new IndexRecordView();
  let bufStart = 0;
  let bufEnd = 0;
  const load = async (from: number, need: number) => {
    if (from >= bufStart && from + need <= bufEnd) return;
    const want = Math.min(Math.max(need, READ_CHUNK), committed - from);
    if (buf.length < want) buf = new Uint8Array(want);
    // Synchronous where the file layer has it: a chunk of 96 KiB from the page cache takes tens
    // of microseconds, less than a round trip through libuv's thread pool.
    const got = handle.readSync !== undefined ? handle.readSync(buf.subarray(0, want), from) : await handle.read(buf.subarray(0, want), from);
    bufStart = from;
    bufEnd = from + got;
  };
  /**
   * Whether the header at `at` (in the buffer) is one a writer can produce: a known kind, zero
   * padding, at least one record of at least 4 bytes, closed once past LARGEST_WRITTEN_BLOCK_BYTES, ending by
   * the committed length.
   */
  const plausibleHeader = (at: number): boolean => {
    const h = at - bufStart;
    const kind = buf[h + 8]!;
    if ((kind !== BLOCK_SNAPSHOT && kind !== BLOCK_DELTA) || buf[h + 9] !== 0 || buf[h + 10] !== 0 || buf[h + 11] !== 0) return false;
    const hv = new DataView(buf.buffer, buf.byteOffset + h, INDEX_HEADER_SIZE);
    const length = hv.getUint32(0, true);
    const count = hv.getUint32(12, true);
    return count > 0 && length >= 4 * count && length < LARGEST_WRITTEN_BLOCK_BYTES + largestRecord(hv.getUint32(16, true)) && at + INDEX_HEADER_SIZE + length <= committed;
  };
  /** Whether the block with a plausible header at `at` passes its checksum. */
  const checks = async (at: number): Promise<boolean> => {
    const h = at - bufStart;
    const length = new DataView(buf.buffer, buf.byteOffset + h, INDEX_HEADER_SIZE).getUint32(0, true);
    await load(at, INDEX_HEADER_SIZE + length);
    if (bufEnd < at + INDEX_HEADER_SIZE + length) return false;
    const b = at - bufStart;
    return checksumHolds(buf.subarray(b, b + INDEX_HEADER_SIZE + length));
  };
  /** The first offset after `from` where a whole block starts and passes its checksum, or the committed length. */
  const resync = async (from: number): Promise<number> => {
    for (let at = from + 1; at + INDEX_HEADER_SIZE <= committed; at++) {
      if (at < bufStart || at + INDEX_HEADER_SIZE > bufEnd) {
        await load(at, INDEX_HEADER_SIZE);
        if (bufEnd < at + INDEX_HEADER_SIZE) break;
      }
      if (plausibleHeader(at) && (await checks(at))) return at;
    }
    return committed;
  };
  let pos = 0;
  while (pos < committed) {
    /** Strict: throws. Lenient: reports [pos, end) and returns where reading goes on. */
    const fail = (what: string, end: number): number => {
      const e = indexCorruption(file, pos, what);
      if (onDamage === undefined) throw e;
      onDamage({ file, offset: pos, end, what: e.message });
      return end;
    };
    if (pos + INDEX_HEADER_SIZE > committed) {
      pos = fail('block header cut short by the committed length', committed);
      break;
    }
    await load(pos, INDEX_HEADER_SIZE);
    if (bufEnd < pos + INDEX_HEADER_SIZE) {
      fail('file ends inside a block header', committed);
      break;
    }
    let at = pos - bufStart;
    const hv = new DataView(buf.buffer, buf.byteOffset + at, INDEX_HEADER_SIZE);
    const length = hv.getUint32(0, true);
    const end = pos + INDEX_HEADER_SIZE + length;
    if (end > committed) {
      const what = `block of ${length} bytes runs past the committed length ${committed}`;
      if (onDamage === undefined) fail(what, committed);
      pos = fail(what, await resync(pos));
      continue;
    }
    await load(pos, INDEX_HEADER_SIZE + length);
    if (bufEnd < end) {
      fail('file ends inside a block', committed);
      break;
    }
    at = pos - bufStart;
    const block = buf.subarray(at, at + INDEX_HEADER_SIZE + length);
    const bv = new DataView(block.buffer, block.byteOffset, INDEX_HEADER_SIZE);
    if (!checksumHolds(block)) {
      // Its length may be the damaged part: only a block that checks marks where reading can go on.
      if (onDamage === undefined) fail('block checksum mismatch', end);
      pos = fail('block checksum mismatch', await resync(pos));
      continue;
    }
    const kind = block[8]!;
    const count = bv.getUint32(12, true);
    const codeBytes = bv.getUint32(16, true);
    if (kind !== BLOCK_SNAPSHOT && kind !== BLOCK_DELTA) {
      pos = fail(`unknown block kind ${kind}`, end);
      continue;
    }
    // The grammar's zero padding (INDEX.md): a block that checks with other bytes there was not
    // written by a writer; only the search after damage had looked (found by a hostile pass).
    if (block[9] !== 0 || block[10] !== 0 || block[11] !== 0) {
      pos = fail('block header padding is not zero', end);
      continue;
    }
    if (kind === BLOCK_SNAPSHOT && deltaBytes > 0) {
      pos = fail('snapshot block after a delta block', end);
      continue;
    }
    try {
      parseBlock(file, pos, block.subarray(INDEX_HEADER_SIZE), count, codeBytes, visit, view);
    } catch (e) {
      if (!(e instanceof MemstoreError) || onDamage === undefined) throw e;
      onDamage({ file, offset: pos, end, what: e.message });
      pos = end;
      continue;
    }
    records += count;
    if (kind === BLOCK_SNAPSHOT) snapshotBytes += end - pos;
    else deltaBytes += end - pos;
    pos = end;
  }
  return { snapshotBytes, deltaBytes, records };
}

export interface IndexFileOptions {
  readonly files: FileLayer;
  readonly dir: string;
  readonly generation: number;
  /** The length the checkpoint committed; bytes past it are cut (unless read-only). */
  readonly committed: number;
  /** Verify: nothing is cut, deleted or created. */
  readonly readOnly?: boolean;
  /** Lenient reading (verify, repair): damage is reported and skipped instead of thrown. */
  readonly onDamage?: (d: IndexDamage) => void;
  /** The digest the checkpoint names the prefix by (indexDigest()); absent (a checkpoint older than it): not checked. */
  readonly digest?: number;
}

/**
 * One store's index file: read once at open, then appended to by checkpoints (a delta per
 * checkpoint), and replaced by a new generation (one snapshot) when the deltas outweigh the
 * snapshot. Every write goes through the store's FileLayer and is fsynced before the LMDB commit that
 * makes it part of the state; until then it is past the committed length, and cut.
 */
export class IndexFile {
  private handle: FileHandle | undefined;
  /** Bytes of the file written, committed or not. */
  private end: number;
  /** A generation written and not yet adopted (or abandoned). */
  private next: { generation: number; handle: FileHandle; bytes: number; digest: number } | undefined;
  /** indexDigest() of the committed prefix; undefined when it is not known (read leniently over damage). */
  private digestNow: number | undefined;

  private constructor(
    private readonly files: FileLayer,
    private readonly dir: string,
    private generationNow: number,
    private committedNow: number,
    private snapshot: number,
    private deltas: number,
    handle: FileHandle | undefined,
    end: number,
    digest: number | undefined,
  ) {
    this.handle = handle;
    this.end = end;
    this.digestNow = digest;
  }

  /**
   * Opens generation `generation`, reads its committed records into `visit` and cuts what lies past
   * the committed length. Nothing is cut unless the read succeeds: an open that fails with
   * CORRUPTION leaves every file as it found it. The files of other generations (a rewrite that
   * never committed, or one whose old generation was not deleted yet) stay until the caller, its
   * whole state found sound, calls removeOtherGenerations(): a state file older than the index (a
   * backup put back) names a generation before the current one.
   */
  static async open(o: IndexFileOptions, visit: IndexVisitor): Promise<{ file: IndexFile; read: IndexReadResult }> {
    const path = indexFilePath(o.dir, o.generation);
    const exists = await o.files.exists(path);
    if (!exists) {
      if (o.committed > 0) {
        const e = indexCorruption(path, 0, `index file missing; the checkpoint committed ${o.committed} bytes`);
        if (o.onDamage === undefined) throw e;
        o.onDamage({ file: path, offset: 0, end: o.committed, what: e.message });
      }
      return { file: new IndexFile(o.files, o.dir, o.generation, 0, 0, 0, undefined, 0, o.committed > 0 ? undefined : 0), read: { snapshotBytes: 0, deltaBytes: 0, records: 0, uncommitted: 0 } };
    }
    const handle = await o.files.open(path, o.readOnly ? 'read' : 'readwrite');
    try {
      const size = await handle.size();
      // From the headers alone, before a record is visited: a file the checkpoint did not write
      // (another store's, checksums intact) must not put its records into this store.
      const digest = size >= o.committed ? await headerDigest(handle, o.committed) : undefined;
      let read: Omit<IndexReadResult, 'uncommitted'> = { snapshotBytes: 0, deltaBytes: 0, records: 0 };
      if (o.digest !== undefined && digest !== undefined && digest !== o.digest) {
        const e = indexCorruption(path, 0, `its blocks' digest is ${digest}, the checkpoint names ${o.digest}: not the file this store's checkpoint wrote`);
        if (o.onDamage === undefined) throw e;
        o.onDamage({ file: path, offset: 0, end: o.committed, what: e.message });
      } else {
        read = await readBlocks(handle, path, size, o.committed, visit, o.onDamage);
      }
      let end = size;
      if (!o.readOnly && size > o.committed) {
        await handle.truncate(o.committed);
        await handle.sync();
        end = o.committed;
      }
      const committed = Math.min(size, o.committed);
      return {
        file: new IndexFile(o.files, o.dir, o.generation, committed, read.snapshotBytes, read.deltaBytes, handle, end, o.digest === undefined || digest === o.digest ? digest : undefined),
        read: { ...read, uncommitted: Math.max(0, size - o.committed) },
      };
    } catch (e) {
      await handle.close().catch(() => undefined);
      throw e;
    }
  }

  /** Deletes the index files of every generation but `o.generation` (names that do not parse are not index files), durably. */
  static async removeOtherGenerations(o: Pick<IndexFileOptions, 'files' | 'dir' | 'generation'>): Promise<void> {
    const dir = indexDir(o.dir);
    await ensureDurableDir(o.files, dir);
    let removed = false;
    for (const name of await o.files.list(dir)) {
      const g = parseIndexFileName(name);
      if (g === undefined || g === o.generation) continue;
      await o.files.remove(join(dir, name));
      removed = true;
    }
    if (removed) await o.files.syncDir(dir);
  }

  get generation(): number {
    return this.generationNow;
  }

  get committed(): number {
    return this.committedNow;
  }

  /** indexDigest() of the committed prefix, for the next checkpoint to continue; undefined when not known (damage read leniently). */
  get digest(): number | undefined {
    return this.digestNow;
  }

  /** Bytes of the current generation's snapshot and of the deltas committed after it. */
  get snapshotBytes(): number {
    return this.snapshot;
  }

  get deltaBytes(): number {
    return this.deltas;
  }

  /**
   * Writes `blocks` after the committed length (cutting first what a failed checkpoint left there)
   * and fsyncs; returns the length to commit. Nothing is committed until commitAppend().
   */
  async append(blocks: readonly Uint8Array[]): Promise<number> {
    if (this.handle === undefined) {
      await ensureDurableDir(this.files, indexDir(this.dir));
      this.handle = await this.files.open(indexFilePath(this.dir, this.generationNow), 'create');
      // A file of this name with no committed bytes holds nothing of the state.
      await this.handle.truncate(0);
      await this.handle.sync();
      await this.files.syncDir(indexDir(this.dir));
      this.end = 0;
    }
    if (this.end > this.committedNow) {
      await this.handle.truncate(this.committedNow);
      this.end = this.committedNow;
    }
    let at = this.committedNow;
    for (const b of writeRuns(blocks)) {
      this.end = Math.max(this.end, at + b.length);
      await this.handle.write(b, at);
      at += b.length;
    }
    await this.handle.sync();
    return at;
  }

  /** The LMDB commit naming `length` is durable. */
  commitAppend(length: number, digest: number | undefined): void {
    this.digestNow = digest;
    this.deltas += length - this.committedNow;
    this.committedNow = length;
  }

  /**
   * Writes generation `generation` (one snapshot), fsyncs it and the directory; returns its length.
   * Adopted by adoptGeneration() once the LMDB commit naming it is durable, else abandonGeneration().
   */
  async writeGeneration(generation: number, blocks: readonly Uint8Array[]): Promise<number> {
    await ensureDurableDir(this.files, indexDir(this.dir));
    const handle = await this.files.open(indexFilePath(this.dir, generation), 'create');
    this.next = { generation, handle, bytes: 0, digest: indexDigest(blocks) };
    await handle.truncate(0);
    let at = 0;
    for (const b of writeRuns(blocks)) {
      await handle.write(b, at);
      at += b.length;
    }
    await handle.sync();
    await this.files.syncDir(indexDir(this.dir));
    this.next.bytes = at;
    return at;
  }

  /** The state names the new generation: it becomes current, and the old file is deleted. */
  async adoptGeneration(): Promise<void> {
    const next = this.next;
    if (next === undefined) throw new RangeError('no index generation to adopt');
    this.next = undefined;
    const old = this.handle;
    const oldGeneration = this.generationNow;
    this.handle = next.handle;
    this.generationNow = next.generation;
    this.committedNow = next.bytes;
    this.digestNow = next.digest;
    this.end = next.bytes;
    this.snapshot = next.bytes;
    this.deltas = 0;
    await old?.close().catch(() => undefined);
    // Open deletes it too, should this fail or the process die first.
    await this.files.remove(indexFilePath(this.dir, oldGeneration)).catch(() => undefined);
  }

  /** The LMDB commit failed: the new generation's file goes, the current one stays. */
  async abandonGeneration(): Promise<void> {
    const next = this.next;
    if (next === undefined) return;
    this.next = undefined;
    await next.handle.close().catch(() => undefined);
    await this.files.remove(indexFilePath(this.dir, next.generation)).catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.abandonGeneration();
    const h = this.handle;
    this.handle = undefined;
    await h?.close();
  }
}
