import { ensureDurableDir, nodeFileLayer, type FileHandle, type FileLayer } from '../../io/file-layer.js';
import type { MappedFile } from '../../io/mmap.js';
import { MemstoreError } from '../errors.js';
import { arenaDir, arenaSegmentPath, parseArenaSegmentName, type ArenaSpace } from '../store/files.js';
import {
  CHECKSUMMED_FROM,
  FRAME_HEADER_SIZE,
  MAX_NUMBER,
  MAX_PAYLOAD,
  SegmentWindow,
  encodeFrame,
  frame,
  frameDamageAt,
  frameLength,
  framePrefix,
  frameSeed,
  frameSize,
  frameSumMatches,
  scanSegment,
  type FrameDamage,
  type SegmentScan,
} from './format.js';

/**
 * Where a blob lives: `[generation, segment, offset, length]` (offset of its frame in the segment
 * file, length of its payload). A plain array of four integers, so msgpack stores it in about a
 * dozen bytes. Stable until a collection moves the blob (ARENA.md, "References").
 */
export type BlobRef = readonly [generation: number, segment: number, offset: number, length: number];

export interface BlobArenaOptions {
  /** The store directory; the arena keeps its files in `arenaDir(dir, space)`. */
  dir: string;
  /** Which of the store's arenas: its texts or its full-precision vectors. @default 'texts' */
  space?: ArenaSpace;
  /** Every durable-file call goes through it (tests inject faults here). @default nodeFileLayer */
  files?: FileLayer;
  /** The current generation, as the caller's durable state records it; segment files of any other generation are orphans. */
  generation: number;
  /** A segment is sealed and the next started when a frame would take it past this size; a larger blob gets a segment to itself. @default 64 MiB */
  segmentBytes?: number;
  /** For inspection (`memstore verify`): nothing is deleted, cut or written; append and collect throw. @default false */
  readOnly?: boolean;
  /**
   * Leave the segment files of other generations where they are, for removeOrphans() once the
   * caller has found the rest of its state sound: a state file older than the arena (a backup put
   * back) names a generation before the current one, and deleting the one it does not name lost
   * every blob of the store before its open failed on the rest. @default false: open deletes them
   */
  keepOrphans?: boolean;
  /**
   * Written but not yet fsynced bytes above which the writer fsyncs unasked. Such bytes stay in
   * memory until fsynced (to be rewritten if the fsync fails), so this bounds that memory.
   * @default 8 MiB
   */
  maxUnsyncedBytes?: number;
  /**
   * Read frames through a read-only memory map of each segment where the file layer can map files
   * (FileHandle.map: the node layer, once the native addon is built), instead of a system call per
   * read (ARENA.md, "Reads through a memory map"): the synchronous reads, readFrameInto() and readNow().
   * @default false
   */
  mapped?: boolean;
  /**
   * How far the caller's durable state may reference blobs: `end()` as its last checkpoint took it.
   * When the files found fall short of it (a segment file lost or cut short), appends start past it,
   * so that no new blob takes the address of one that was lost (ARENA.md, "Opening"). @default none
   */
  reached?: ArenaEnd;
}

/** The end of an arena's appends: generation, its highest segment number (0: none) and that segment's length. */
export type ArenaEnd = readonly [generation: number, segment: number, bytes: number];

interface ResolvedOptions {
  readonly dir: string;
  readonly space: ArenaSpace;
  readonly files: FileLayer;
  readonly generation: number;
  readonly segmentBytes: number;
  readonly readOnly: boolean;
  readonly keepOrphans: boolean;
  readonly maxUnsyncedBytes: number;
  readonly mapped: boolean;
}

/** A place in the arena and what is wrong there. `file` is a path. */
export interface ArenaProblem {
  readonly file: string;
  readonly offset: number;
  readonly what: string;
}

/** What open() found and did. */
export interface ArenaOpenReport {
  /** Segment files of other generations (deleted, unless read-only or kept: `keepOrphans`). */
  readonly orphans: string[];
  /** The torn tail of the active segment: cut (unless read-only), `bytes` long, starting at `offset`. */
  readonly cut: (ArenaProblem & { readonly bytes: number }) | undefined;
  /** Damage in the active segment with valid frames after it: corruption, left in place. */
  readonly damage: ArenaProblem[];
  /** The files fall short of `reached`: appends start at segment `reached[1] + 1`. */
  readonly short?: { readonly found: ArenaEnd; readonly reached: ArenaEnd };
}

export interface ArenaStats {
  /** Frame bytes of blobs appended or marked live and not released. */
  liveBytes: number;
  garbageBytes: number;
  /** Bytes of the current generation's segments (queued writes included). */
  totalBytes: number;
  segments: number;
  /** Segments read through a memory map now (BlobArenaOptions.mapped): each is mapped at its first synchronous read. */
  mappedSegments: number;
  /** Segments the platform refused to map (ENOMEM, EACCES, ...): read with positioned reads instead. */
  mapsRefused: number;
  generation: number;
  /**
   * Bytes of memory the arena holds for appends: the chunk appends are filling (1 MiB) and chunks
   * not yet fsynced (up to maxUnsyncedBytes with durability 'batch' or 'none'). Part of the store's
   * `memoryBytes`; given back at close.
   */
  bufferBytes: number;
}

export interface ArenaVerifyReport {
  generation: number;
  segments: number;
  /** Valid frames found. */
  blobs: number;
  /** Bytes of the segment files. */
  bytes: number;
  /** Corruption: a check failed (`memstore verify` exits 1 on any). */
  errors: ArenaProblem[];
  /** Read-only only: a torn tail of the active segment, which a writable open cuts. Not corruption. */
  tornTail: ArenaProblem | undefined;
  /** Segment files of other generations still present. Not corruption. */
  orphans: string[];
}

export interface CollectResult {
  generation: number;
  /** The new reference of every key given to collect(). */
  refs: Map<string, BlobRef>;
  /** Where the new generation's appends end: what end() gives once finishCollect() has made it current. */
  end: ArenaEnd;
}

/** Where the appends of `generation` end: its number, its highest segment's (0: none) and that segment's length. */
function endOf(generation: Generation): ArenaEnd {
  const last = generation.last;
  return [generation.number, last?.number ?? 0, last?.end ?? 0];
}

const DEFAULTS = {
  segmentBytes: 64 << 20,
  readOnly: false,
  keepOrphans: false,
  maxUnsyncedBytes: 8 << 20,
  mapped: false,
} as const;

/**
 * A segment still being appended to is mapped again for a frame past its map only once it has grown
 * by this much since: a store written to while it is searched would otherwise map at every read of
 * a new frame. Frames in between are read with a system call.
 */
export const REMAP_BYTES = 4 << 20;

/**
 * frameResident() asks the kernel which pages of a segment's map are resident at most this often
 * (ms) per segment; in between it answers from what it found. Its answer only chooses how much
 * rescoring reads, never what a read returns.
 */
export const RESIDENCY_SAMPLE_MS = 1000;

/**
 * append() encodes frames into buffers of this size (a larger frame gets one of its own), which
 * are then written as they are: one allocation and one write call per thousands of small blobs.
 */
const CHUNK_BYTES = 1 << 20;

/** Collection copies through a buffer of this size: one write per few thousand small blobs. */
const COPY_BUFFER = 4 << 20;

/**
 * How far into active segment `segment` (`size` bytes) the durable state of the arena's owner
 * reaches (`reached`, BlobArena.end() as its last checkpoint took it): 0 when it names an older
 * generation or an earlier segment (nothing of this one is vouched for); the whole segment when it
 * names a later one (a segment is fsynced before the next exists).
 */
function durableEnd(reached: ArenaEnd | undefined, generation: number, segment: number, size: number): number {
  if (reached === undefined || reached[0] !== generation || reached[1] < segment) return 0;
  return reached[1] > segment ? size : reached[2];
}

/** Consecutive frames of a segment not yet known durable, as they will sit in the file from `start`. */
interface Chunk {
  readonly start: number;
  readonly buf: Uint8Array;
  /** Bytes holding frames. */
  used: number;
  /** Bytes written to the file. */
  written: number;
  /** Bytes covered by a successful fsync. */
  synced: number;
}

interface Waiter {
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** One segment file: its durable bytes on disk, and frames not yet known durable in memory. */
class Segment {
  /** Offset the next frame appended here gets (queued frames included). */
  end = 0;
  /** Undefined until the file is created (a new segment is created by the writer, not by append). */
  handle: FileHandle | undefined;
  /** Frames not yet fsynced, in offset order (plus the chunk appends are filling). */
  chunks: Chunk[] = [];
  /** The file mapped as it was then (BlobArenaOptions.mapped); unmapped before the handle closes. */
  mapped: MappedFile | undefined;
  /** What the platform said when it refused to map the file: it is read with positioned reads from then on. */
  mapRefused: unknown;
  /** frameResident()'s last sample of `residencyOf` (the map then): a byte per page, 1 when resident, and when (performance.now()). */
  residency: Uint8Array | undefined;
  residencyOf: MappedFile | undefined;
  residencySampled = -Infinity;

  constructor(
    readonly number: number,
    readonly path: string,
  ) {}
}

class Generation {
  /** In ascending number order. */
  readonly segments: Segment[] = [];
  readonly byNumber = new Map<number, Segment>();

  constructor(readonly number: number) {}

  add(segment: Segment): void {
    this.segments.push(segment);
    this.byNumber.set(segment.number, segment);
  }

  get last(): Segment | undefined {
    return this.segments[this.segments.length - 1];
  }

  get bytes(): number {
    let sum = 0;
    for (const s of this.segments) sum += s.end;
    return sum;
  }
}

/**
 * Append-only storage for the store's texts and metadata (ARENA.md is the spec).
 *
 * One writer: append() assigns a reference at once and queues the frame; a background loop writes
 * queued frames with positioned writes; sync() makes them durable. Frames stay readable from
 * memory until fsynced, so a reference works the moment it is handed out. Reads are positioned
 * reads checked against the frame's checksum. collect() / finishCollect() copy live blobs into the
 * next generation and delete the old one, in an order a crash cannot break (ARENA.md, "Collection").
 */
export class BlobArena {
  private current: Generation;
  /** The generation collect() built, until finishCollect() or abortCollect(). */
  private collected: Generation | undefined;
  /**
   * A collection is copying ('collecting') or waits for finishCollect/abortCollect ('collected').
   * append() refuses meanwhile: a blob appended to the old generation then would be deleted with it.
   */
  private gc: 'collecting' | 'collected' | undefined;
  /** The collection step in flight (collect, or the deletions of finish/abort), for close() to wait on. */
  private gcTask: Promise<unknown> | undefined;
  /** After a cut at open the next append starts a new segment, so no offset a durable reference may name is ever reused. */
  private startNewSegment: boolean;
  /** The least number the next new segment may take: past every segment a durable reference may name. */
  private firstNewSegment: number;
  /** A segment file was created since the last fsync of the arena directory. */
  private dirDirty = false;
  private unsyncedBytes = 0;
  private syncWaiters: Waiter[] = [];
  private scheduled = false;
  private running = false;
  private readonly readers = new Map<number, number>();
  /** prefetchFrames()'s offsets and places still to take, grown to the largest batch asked. */
  private prefetchOffsets = new Float64Array(0);
  private prefetchLeft = new Int32Array(0);
  /** gatherFrames()'s arguments to the maps, and what they hand back: kept from batch to batch. */
  private gatherSpec = new Float64Array(0);
  private gatherHeads = new Uint8Array(0);
  private gatherSums = new Uint32Array(0);
  private gatherLeft = new Int32Array(0);
  private readonly drainWaiters = new Map<number, Array<() => void>>();
  private liveBytes = 0;
  private closed = false;
  /** removeOrphans() has run. */
  private orphansRemoved = false;
  private closing: Promise<void> | undefined;
  private readonly path: string;

  private constructor(
    private readonly options: ResolvedOptions,
    generation: Generation,
    /** What open() found and did. */
    readonly recovered: ArenaOpenReport,
  ) {
    this.current = generation;
    this.path = arenaDir(options.dir, options.space);
    this.startNewSegment = (recovered.cut !== undefined || recovered.short !== undefined) && !options.readOnly;
    this.firstNewSegment = recovered.short === undefined ? 0 : recovered.short.reached[1] + 1;
  }

  static async open(options: BlobArenaOptions): Promise<BlobArena> {
    const o = resolveOptions(options);
    const dir = arenaDir(o.dir, o.space);
    const generation = new Generation(o.generation);
    const orphans: string[] = [];
    let cut: ArenaOpenReport['cut'];
    const damage: ArenaProblem[] = [];
    try {
      const found = await listSegments(o.files, o.dir, o.space, !o.readOnly);
      for (const f of found) {
        if (f.generation !== o.generation) orphans.push(f.path);
      }
      if (!o.readOnly && !o.keepOrphans) await removeOrphanFiles(o.files, dir, orphans);
      const mine = found.filter((f) => f.generation === o.generation).sort((a, b) => a.segment - b.segment);
      for (const [i, f] of mine.entries()) {
        const segment = new Segment(f.segment, f.path);
        generation.add(segment);
        const active = i === mine.length - 1;
        segment.handle = await o.files.open(f.path, active && !o.readOnly ? 'readwrite' : 'read');
        segment.end = await segment.handle.size();
      }
      const active = generation.last;
      if (active?.handle !== undefined) {
        const scan = await scanSegment(new SegmentWindow(active.handle, active.end), o.generation, active.number);
        for (const d of scan.damage) damage.push({ file: active.path, offset: d.offset, what: d.what });
        if (scan.tail !== undefined) {
          // What the caller's durable state reaches was fsynced before that state was: a bad frame
          // there is media damage, not a crash's torn write. It stays (it reads as CORRUPTION, and a
          // repair can report its bytes); only what lies past that end is a tail to cut. A cut below it
          // had deleted a checkpointed frame, and its record then read as past the end (a hostile pass).
          const from = Math.min(active.end, Math.max(scan.end, durableEnd(options.reached, o.generation, active.number, active.end)));
          if (from > scan.end) damage.push({ file: active.path, offset: scan.end, what: scan.tail.what });
          if (from < active.end) {
            cut = { file: active.path, offset: from, what: from > scan.end ? 'bytes past the durable end after damage' : scan.tail.what, bytes: active.end - from };
            if (!o.readOnly) {
              await active.handle.truncate(from);
              await active.handle.sync();
              active.end = from;
            }
          }
        }
      }
    } catch (e) {
      await closeHandles(generation);
      throw ioError('open', e, dir);
    }
    const found = endOf(generation);
    const reached = options.reached;
    const short = reached !== undefined && reached[0] === o.generation && (found[1] < reached[1] || (found[1] === reached[1] && found[2] < reached[2]));
    return new BlobArena(o, generation, { orphans, cut, damage, ...(short ? { short: { found, reached } } : {}) });
  }

  /**
   * Deletes, durably, the segment files of other generations that open found and kept
   * (`keepOrphans`); nothing once they are gone, or when open deleted them itself.
   */
  async removeOrphans(): Promise<void> {
    if (this.options.readOnly || !this.options.keepOrphans || this.orphansRemoved) return;
    try {
      await removeOrphanFiles(this.options.files, this.path, this.recovered.orphans);
    } catch (e) {
      throw ioError('delete orphan segments', e, this.path);
    }
    this.orphansRemoved = true;
  }

  /** Where appends have reached so far in the current generation (a checkpoint records it once synced: `reached` of open). */
  end(): ArenaEnd {
    return endOf(this.current);
  }

  /**
   * Queues `payload` (copied) and returns its reference at once; read() serves it from memory
   * until it is on disk. Durable only after a later sync() resolves.
   */
  append(payload: Uint8Array): BlobRef {
    this.checkWritable('append');
    if (this.gc !== undefined) {
      throw new MemstoreError('INVALID_ARGUMENT', 'arena: append while a collection is under way (between collect() and finishCollect()/abortCollect())');
    }
    if (!(payload instanceof Uint8Array)) throw new MemstoreError('INVALID_ARGUMENT', 'arena: a blob must be a Uint8Array');
    if (payload.length > MAX_PAYLOAD) throw new MemstoreError('INVALID_ARGUMENT', `arena: a blob holds at most ${MAX_PAYLOAD} bytes`);
    const size = frameSize(payload.length);
    const generation = this.current;
    let segment = generation.last;
    if (segment === undefined || this.startNewSegment || (segment.end > 0 && segment.end + size > this.options.segmentBytes)) {
      const number = Math.max((segment?.number ?? 0) + 1, this.firstNewSegment);
      segment = new Segment(number, arenaSegmentPath(this.options.dir, generation.number, number, this.options.space));
      generation.add(segment);
      this.startNewSegment = false;
    }
    const offset = segment.end;
    let chunk = segment.chunks[segment.chunks.length - 1];
    if (chunk === undefined || chunk.used + size > chunk.buf.length) {
      chunk = { start: offset, buf: new Uint8Array(Math.max(Math.min(CHUNK_BYTES, this.options.segmentBytes), size)), used: 0, written: 0, synced: 0 };
      segment.chunks.push(chunk);
    }
    encodeFrame(chunk.buf, chunk.used, { generation: generation.number, segment: segment.number, offset }, payload);
    chunk.used += size;
    segment.end += size;
    this.liveBytes += size;
    this.schedule();
    return [generation.number, segment.number, offset, payload.length];
  }

  /**
   * The payload `ref` names, checksum verified. Rejects CORRUPTION (with `file` and `offset`) when
   * the check fails, the reference runs past the end of its segment, or names a segment or
   * generation that is not there; never returns bytes that failed a check.
   */
  async read(ref: BlobRef): Promise<Uint8Array> {
    if (this.closed) throw closedError();
    checkRef(ref);
    const generation = this.generationOf(ref);
    const [g, s, offset, length] = ref;
    // Counted before the first await, so finishCollect() cannot delete the file under this read.
    this.enter(g);
    try {
      const segment = this.segmentOf(generation, s, offset, length);
      const now = this.readFrameNow(generation, segment, offset, length);
      if (now !== undefined) return now;
      const bytes = new Uint8Array(frameSize(length));
      let got: number;
      try {
        got = await segment.handle!.read(bytes, offset);
      } catch (e) {
        throw ioError('read', e, segment.path);
      }
      return payloadOf(bytes.subarray(0, got), { generation: generation.number, segment: s, offset }, length, segment.path);
    } finally {
      this.leave(g);
    }
  }

  /**
   * read(), synchronously, when it can be: the frame is still in memory, or the file layer reads
   * synchronously (the node layer does). Undefined when it cannot (then read()). The same checks
   * and errors as read(). The payload is a view at offset 8 of a fresh buffer (4-byte aligned), or,
   * when `scratch` can hold the frame and it is read from its file, of `scratch` (valid until the
   * caller reuses it: a search reads its candidates one after another without a buffer each).
   */
  readNow(ref: BlobRef, scratch?: Uint8Array): Uint8Array | undefined {
    if (this.closed) throw closedError();
    checkRef(ref);
    const generation = this.generationOf(ref);
    const [, s, offset, length] = ref;
    return this.readFrameNow(generation, this.segmentOf(generation, s, offset, length), offset, length, scratch);
  }

  /**
   * Whether the frame at (generation `g`, segment `s`, `offset`) of `length` payload bytes would be
   * copied out of memory now, with no wait for the disk: its segment's map reaches past it and every
   * page it spans was resident when that map was last sampled (MappedFile.residency: mincore, at
   * most every RESIDENCY_SAMPLE_MS per segment, a byte per page kept with the segment). False when it
   * cannot tell: not opened `mapped`, the segment not mapped yet (maps are made at a segment's first
   * read), a frame past its map, a map that does not say. Only a hint for how much rescoring reads:
   * a read returns what it returns whatever this said. `now`: performance.now(), taken once by a
   * caller that asks about many frames in a row (a clock read per frame was 1% of an rq2 search).
   */
  frameResident(g: number, s: number, offset: number, length: number, now = performance.now()): boolean {
    if (!this.options.mapped || this.closed) return false;
    const segment = this.generationNumbered(g)?.byNumber.get(s);
    const mapped = segment?.mapped;
    const pageBytes = mapped?.pageBytes;
    if (segment === undefined || mapped?.residency === undefined || pageBytes === undefined) return false;
    const end = offset + frameSize(length);
    if (!(offset >= 0) || end > mapped.length) return false;
    if (segment.residencyOf !== mapped || now - segment.residencySampled >= RESIDENCY_SAMPLE_MS) {
      const pages = Math.ceil(mapped.length / pageBytes);
      if (segment.residency === undefined || segment.residency.length < pages) segment.residency = new Uint8Array(pages);
      try {
        mapped.residency(segment.residency);
      } catch {
        // A map that cannot say now (unmapped under us, or refused by the kernel): not known to be resident.
        segment.residencyOf = undefined;
        return false;
      }
      segment.residencyOf = mapped;
      segment.residencySampled = now;
    }
    const pages = segment.residency!;
    for (let page = Math.floor(offset / pageBytes); page <= Math.floor((end - 1) / pageBytes); page++) if (pages[page] !== 1) return false;
    return true;
  }

  /**
   * Whether a read of the frame at (generation `g`, segment `s`, `offset`) of `length` payload bytes
   * goes through its segment's map as things stand: the map covers it and it is not in a chunk still
   * to be written. Asked right after a read, it tells whether that read came out of the map (the
   * lookaside cache keeps hot only vectors that did not: src/cache/CACHE.md, "Hot records").
   */
  frameMapped(g: number, s: number, offset: number, length: number): boolean {
    if (!this.options.mapped || this.closed) return false;
    const segment = this.generationNumbered(g)?.byNumber.get(s);
    const mapped = segment?.mapped;
    return segment !== undefined && mapped !== undefined && offset + frameSize(length) <= mapped.length && this.unsyncedChunk(segment, offset) === undefined;
  }

  /**
   * A hint that the frames at `places[0, count)` (generation, segment, offset), each of `length`
   * payload bytes, are about to be read by readFrameInto(): where a segment's map already covers
   * them, the CPU starts fetching their bytes, so that the reads that follow overlap their cache
   * misses instead of waiting for each in turn (ARENA.md, "Reads through a memory map"). Reads,
   * checks and maps nothing; a place it does not know is left to the read.
   */
  prefetchFrames(places: readonly (readonly [number, number, number])[], count: number, length: number): void {
    if (this.closed || count === 0) return;
    const size = frameSize(length);
    if (this.prefetchOffsets.length < count) {
      this.prefetchOffsets = new Float64Array(Math.max(count, 2 * this.prefetchOffsets.length));
      this.prefetchLeft = new Int32Array(this.prefetchOffsets.length);
    }
    const offsets = this.prefetchOffsets;
    const left = this.prefetchLeft;
    for (let i = 0; i < count; i++) left[i] = i;
    // Places mostly share a segment or two: one call per segment, each taking that segment's places.
    for (let remaining = count; remaining > 0; ) {
      const [g, s] = places[left[0]!]!;
      let n = 0;
      let kept = 0;
      for (let j = 0; j < remaining; j++) {
        const p = places[left[j]!]!;
        if (p[0] === g && p[1] === s) offsets[n++] = p[2];
        else left[kept++] = left[j]!;
      }
      this.generationNumbered(g)?.byNumber.get(s)?.mapped?.prefetch?.(offsets, n, size);
      remaining = kept;
    }
  }

  /**
   * readFrameInto() of the frames at `places[0, count)` (generation, segment, offset), each of
   * `length` payload bytes, all at once: frame i's payload goes to `target[i * stride]`, followed by
   * zeros up to `(i + 1) * stride`, through one call of each segment's map (MappedFile.gather: every
   * frame prefetched, copied and summed in one pass). True when every payload is there and checked.
   * False, with `target` in any state, when any one of them cannot be read so: its segment not
   * mapped that far (or its map without gather()), a frame still in memory, a place the arena does
   * not know, a frame that fails its check. readFrameInto(), one by one, then reads them as
   * always and reports what it finds (damage included) as always: this only makes the common case
   * cheaper, and changes nothing a read returns or throws.
   */
  gatherFrames(places: readonly (readonly [number, number, number])[], count: number, length: number, target: Uint8Array, stride: number): boolean {
    if (this.closed) throw closedError();
    if (!(stride >= length) || target.length < count * stride) throw new MemstoreError('INVALID_ARGUMENT', `arena: ${count} payloads of ${length} bytes need a target of ${count} rows of at least that`);
    if (!this.options.mapped || count === 0) return count === 0;
    const size = frameSize(length);
    if (this.gatherSums.length < count) {
      const room = Math.max(count, 2 * this.gatherSums.length);
      this.gatherSpec = new Float64Array(5 + 2 * room);
      this.gatherHeads = new Uint8Array(room * FRAME_HEADER_SIZE);
      this.gatherSums = new Uint32Array(room);
      this.gatherLeft = new Int32Array(room);
    }
    const spec = this.gatherSpec;
    const left = this.gatherLeft;
    for (let i = 0; i < count; i++) left[i] = i;
    // Places mostly share a segment or two: one call per segment, each taking that segment's frames.
    for (let remaining = count; remaining > 0; ) {
      const [g, s] = places[left[0]!]!;
      const generation = this.generationNumbered(g);
      const segment = generation?.byNumber.get(s);
      if (segment === undefined) return false;
      let n = 0;
      let kept = 0;
      let end = 0;
      for (let j = 0; j < remaining; j++) {
        const row = left[j]!;
        const p = places[row]!;
        if (p[0] !== g || p[1] !== s) {
          left[kept++] = row;
          continue;
        }
        const offset = p[2];
        if (!(offset >= 0 && offset + size <= segment.end) || this.unsyncedChunk(segment, offset) !== undefined) return false;
        spec[5 + 2 * n] = offset;
        spec[6 + 2 * n] = row;
        n++;
        end = Math.max(end, offset + size);
      }
      const mapped = this.mappingFor(segment, end);
      if (mapped?.gather === undefined) return false;
      spec[0] = framePrefix(g, s);
      spec[1] = size;
      spec[2] = FRAME_HEADER_SIZE;
      spec[3] = CHECKSUMMED_FROM;
      spec[4] = stride;
      try {
        mapped.gather(spec, n, target, this.gatherHeads, this.gatherSums);
      } catch (e) {
        throw ioError('read', e, segment.path);
      }
      remaining = kept;
    }
    const heads = this.gatherHeads;
    const sums = this.gatherSums;
    for (let i = 0; i < count; i++) {
      const at = i * FRAME_HEADER_SIZE;
      if (frameLength(heads, at) !== length || !frameSumMatches(heads, at, sums[i]!)) return false;
    }
    return true;
  }

  /**
   * readNow() of the frame at (generation, segment, offset) with `length` payload bytes into
   * `scratch`, which holds exactly the frame, making no object: true when the payload is checked
   * and in `scratch[FRAME_HEADER_SIZE, FRAME_HEADER_SIZE + length)`; false when the frame is still
   * in memory or the file layer reads only asynchronously (then readNow() or read()). A search
   * reads its candidates this way, one after another through one buffer. The same errors as read().
   */
  readFrameInto(g: number, s: number, offset: number, length: number, scratch: Uint8Array): boolean {
    if (this.closed) throw closedError();
    if (scratch.length !== frameSize(length)) throw new MemstoreError('INVALID_ARGUMENT', `arena: a frame of ${length} bytes needs a buffer of ${frameSize(length)}`);
    const generation = this.generationNumbered(g);
    if (generation === undefined) return false;
    const segment = this.segmentOf(generation, s, offset, length);
    if (this.unsyncedChunk(segment, offset) !== undefined) return false;
    const mapped = this.mappingFor(segment, offset + scratch.length);
    if (mapped?.copyChecksummed !== undefined) {
      let crc: number;
      try {
        crc = mapped.copyChecksummed(offset, scratch, CHECKSUMMED_FROM, frameSeed(generation.number, s, offset));
      } catch (e) {
        throw ioError('read', e, segment.path);
      }
      const damage = frameCorruptionOfSum(scratch, length, crc, offset, segment.path);
      if (damage !== undefined) throw damage;
      return true;
    }
    const got = this.readFileNow(segment, offset, scratch);
    if (got === undefined) return false;
    const damage = frameCorruption(scratch, got, length, generation.number, s, offset, segment.path);
    if (damage !== undefined) throw damage;
    return true;
  }

  /**
   * Reads `into.length` bytes of `segment`'s file at `offset`, synchronously: out of the segment's
   * map where it reaches that far (mappingFor), else with the file layer's readSync. The count read
   * (short only past the end of the file); undefined when the layer can do neither. I/O failures are IO.
   */
  private readFileNow(segment: Segment, offset: number, into: Uint8Array): number | undefined {
    const mapped = this.mappingFor(segment, offset + into.length);
    const handle = segment.handle;
    if (mapped === undefined && handle?.readSync === undefined) return undefined;
    try {
      if (mapped === undefined) return handle!.readSync!(into, offset);
      mapped.copy(offset, into);
      return into.length;
    } catch (e) {
      throw ioError('read', e, segment.path);
    }
  }

  /**
   * The map of `segment` when it reaches `end`, mapping it (again) if it is no longer appended to or
   * grew by REMAP_BYTES since it was mapped, or undefined (read with a system call). Frames reach
   * the file before their chunk counts as written, and the file never shrinks while the arena is
   * open (only open() cuts a torn tail, before any map), so no page of a map lies past the end of
   * its file. A map the platform refuses leaves the segment to positioned reads (ARENA.md).
   */
  private mappingFor(segment: Segment, end: number): MappedFile | undefined {
    if (!this.options.mapped || segment.handle?.map === undefined || segment.mapRefused !== undefined) return undefined;
    const mapped = segment.mapped;
    if (mapped !== undefined && end <= mapped.length) return mapped;
    // Only the segment appends go to (or a collection's copy) still grows: another one reached its
    // end, and one map more covers it for good.
    const growing = segment === this.current.last || segment === this.collected?.last;
    if (mapped !== undefined && growing && segment.end - mapped.length < REMAP_BYTES) return undefined;
    mapped?.unmap();
    segment.mapped = undefined;
    try {
      segment.mapped = segment.handle.map();
    } catch (e) {
      segment.mapRefused = e;
      return undefined;
    }
    return segment.mapped !== undefined && end <= segment.mapped.length ? segment.mapped : undefined;
  }

  /** The chunk not yet fsynced that holds the frame at `offset` (it is read from memory, not the file), or undefined. */
  private unsyncedChunk(segment: Segment, offset: number): Chunk | undefined {
    for (let i = segment.chunks.length - 1; i >= 0; i--) {
      const chunk = segment.chunks[i]!;
      if (offset < chunk.start) continue;
      // Durable frames are read from the file like any other, so damage there is seen at once.
      return offset < chunk.start + chunk.used && offset >= chunk.start + chunk.synced ? chunk : undefined;
    }
    return undefined;
  }

  /** The current generation or the one being collected, by number; undefined for any other. */
  private generationNumbered(g: number): Generation | undefined {
    return g === this.current.number ? this.current : g === this.collected?.number ? this.collected : undefined;
  }

  /** The generation `ref` names: the current one, or the one being collected; CORRUPTION for any other. */
  private generationOf(ref: BlobRef): Generation {
    const [g, s, offset] = ref;
    const generation = this.generationNumbered(g);
    if (generation === undefined) {
      throw corruption(arenaSegmentPath(this.options.dir, g, s, this.options.space), offset, `generation ${g} is not in the arena (it holds ${this.current.number})`);
    }
    return generation;
  }

  /** The segment holding a frame of `length` at `offset`; CORRUPTION when there is none or the frame runs past its end. */
  private segmentOf(generation: Generation, number: number, offset: number, length: number): Segment {
    const segment = generation.byNumber.get(number);
    if (segment === undefined) throw corruption(arenaSegmentPath(this.options.dir, generation.number, number, this.options.space), offset, 'no such segment');
    if (offset + frameSize(length) > segment.end) throw corruption(segment.path, offset, `reference runs past the end of the segment (${segment.end} bytes)`);
    return segment;
  }

  /** The frame from memory, or read synchronously from its file; undefined when the file layer reads only asynchronously. */
  private readFrameNow(generation: Generation, segment: Segment, offset: number, length: number, scratch?: Uint8Array): Uint8Array | undefined {
    // A copy from memory: the chunk is still to be written, and the caller may change what it gets.
    const memory = this.fromMemory(segment, offset, length, generation.number);
    if (memory !== undefined) return memory;
    if (segment.handle === undefined) throw corruption(segment.path, offset, 'no frame starts here');
    const size = frameSize(length);
    const bytes = scratch !== undefined && scratch.length >= size ? scratch.subarray(0, size) : new Uint8Array(size);
    const got = this.readFileNow(segment, offset, bytes);
    if (got === undefined) return undefined;
    return payloadOf(bytes.subarray(0, got), { generation: generation.number, segment: segment.number, offset }, length, segment.path);
  }

  /** A frame not yet fsynced, served from its chunk (a copy), or undefined when it is on disk. */
  private fromMemory(segment: Segment, offset: number, length: number, generation: number): Uint8Array | undefined {
    const chunk = this.unsyncedChunk(segment, offset);
    if (chunk === undefined) return undefined;
    const at = offset - chunk.start;
    const copy = chunk.buf.slice(at, Math.min(chunk.used, at + frameSize(length)));
    return payloadOf(copy, { generation, segment: segment.number, offset }, length, segment.path);
  }

  /** Resolves when every blob appended before the call is durable (file data and new directory entries). */
  sync(): Promise<void> {
    if (this.closed) return Promise.reject(closedError());
    if (this.options.readOnly) return Promise.resolve();
    return this.requestSync();
  }

  /** The caller no longer references the blob: its bytes count as garbage. Accounting only. */
  release(ref: BlobRef): void {
    checkRef(ref);
    if (ref[0] === this.current.number) this.liveBytes -= frameSize(ref[3]);
  }

  /** After open, the caller registers each reference it holds once, so stats() can tell live bytes from garbage. */
  markLive(ref: BlobRef): void {
    checkRef(ref);
    if (ref[0] === this.current.number) this.liveBytes += frameSize(ref[3]);
  }

  /**
   * Live bytes of the current generation as counted (append, markLive, release), unclamped: what a
   * checkpoint persists so that opening need not visit every reference again (markLiveBytes).
   */
  get countedLiveBytes(): number {
    return this.liveBytes;
  }

  /** After open: `bytes` of the current generation are live, as a checkpoint counted them. */
  markLiveBytes(bytes: number): void {
    this.liveBytes += bytes;
  }

  stats(): ArenaStats {
    const total = this.current.bytes;
    const live = Math.min(Math.max(this.liveBytes, 0), total);
    let mappedSegments = 0;
    let mapsRefused = 0;
    let bufferBytes = 0;
    for (const segment of this.current.segments) {
      if (segment.mapped !== undefined) mappedSegments++;
      if (segment.mapRefused !== undefined) mapsRefused++;
      for (const c of segment.chunks) bufferBytes += c.buf.byteLength;
    }
    for (const segment of this.collected?.segments ?? []) for (const c of segment.chunks) bufferBytes += c.buf.byteLength;
    return { liveBytes: live, garbageBytes: total - live, totalBytes: total, segments: this.current.segments.length, mappedSegments, mapsRefused, generation: this.current.number, bufferBytes };
  }

  /**
   * Copies the blob of every entry into segments of generation + 1, verifying each checksum on
   * the way, fsyncs them and the directory, and returns the new references. Nothing of the current
   * generation changes; appends are refused until finishCollect() or abortCollect(). On failure
   * the new generation's files are removed and the arena goes on as before.
   */
  async collect(live: Iterable<readonly [key: string, ref: BlobRef]>): Promise<CollectResult> {
    this.checkWritable('collect');
    if (this.gc !== undefined) throw new MemstoreError('INVALID_ARGUMENT', 'arena: a collection is already under way');
    if (this.current.number >= MAX_NUMBER) throw new MemstoreError('INVALID_ARGUMENT', `arena: generation ${MAX_NUMBER} is the last`);
    // Taken before the first await: the caller's map may change while the copy runs.
    const entries = [...live];
    for (const [, ref] of entries) checkRef(ref);
    this.gc = 'collecting';
    const task = this.copyLive(entries);
    this.gcTask = task;
    try {
      const result = await task;
      this.gc = 'collected';
      return result;
    } catch (e) {
      this.gc = undefined;
      throw e;
    }
  }

  /**
   * Call after the caller's state durably records `generation` and the references collect()
   * returned: appends go to the new generation from now on, and the old generation's files are
   * deleted once the reads of them already in flight complete (new ones are refused).
   */
  async finishCollect(generation: number): Promise<void> {
    if (this.closed) throw closedError();
    const next = this.collected;
    if (this.gc !== 'collected' || next === undefined || next.number !== generation) {
      throw new MemstoreError('INVALID_ARGUMENT', `arena: no collection into generation ${generation} to finish`);
    }
    const old = this.current;
    this.current = next;
    this.collected = undefined;
    this.gc = undefined;
    this.startNewSegment = false;
    this.firstNewSegment = 0;
    this.liveBytes = next.bytes;
    const task = this.retire(old);
    this.gcTask = task;
    await task;
  }

  /** Call when the caller could not record the new generation: its files are deleted and the current generation stays. */
  async abortCollect(): Promise<void> {
    if (this.closed) throw closedError();
    const next = this.collected;
    if (this.gc !== 'collected' || next === undefined) throw new MemstoreError('INVALID_ARGUMENT', 'arena: no collection to abort');
    this.collected = undefined;
    const task = this.retire(next).finally(() => {
      this.gc = undefined;
    });
    this.gcTask = task;
    await task;
  }

  /** Checks every frame of every segment of the current generation (ARENA.md, "Verifying"). */
  async verify(): Promise<ArenaVerifyReport> {
    if (this.closed) throw closedError();
    if (!this.options.readOnly) await this.requestSync();
    const generation = this.current;
    this.enter(generation.number);
    try {
      const report: ArenaVerifyReport = { generation: generation.number, segments: generation.segments.length, blobs: 0, bytes: 0, errors: [], tornTail: undefined, orphans: [] };
      let expected = 1;
      for (const segment of generation.segments) {
        for (; expected < segment.number; expected++) {
          report.errors.push({ file: arenaSegmentPath(this.options.dir, generation.number, expected, this.options.space), offset: 0, what: 'missing segment' });
        }
        expected = segment.number + 1;
        // Frames appended after the sync above may be half written right now: look only at what it covered.
        const unsynced = segment.chunks.find((c) => c.synced < c.used);
        const end = unsynced === undefined ? segment.end : unsynced.start + unsynced.synced;
        const handle = segment.handle;
        if (handle === undefined) continue;
        let scan: SegmentScan;
        try {
          const size = await handle.size();
          report.bytes += size;
          if (size < end) report.errors.push({ file: segment.path, offset: size, what: `file ends before ${end}, where its last frame ends` });
          scan = await scanSegment(new SegmentWindow(handle, Math.min(size, end)), generation.number, segment.number);
        } catch (e) {
          throw ioError('verify', e, segment.path);
        }
        report.blobs += scan.frames;
        for (const d of scan.damage) report.errors.push({ file: segment.path, offset: d.offset, what: d.what });
        if (scan.tail !== undefined) {
          const problem = { file: segment.path, offset: scan.tail.offset, what: scan.tail.what };
          if (this.options.readOnly && segment === generation.last) report.tornTail = problem;
          else report.errors.push(problem);
        }
      }
      let found: FoundSegment[];
      try {
        found = await listSegments(this.options.files, this.options.dir, this.options.space, false);
      } catch (e) {
        throw ioError('list', e, this.path);
      }
      for (const f of found) if (f.generation !== generation.number && f.generation !== this.collected?.number) report.orphans.push(f.path);
      return report;
    } finally {
      this.leave(generation.number);
    }
  }

  /** Makes everything durable and closes the files; later calls reject with CLOSED. */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.closed = true;
    let failure: unknown;
    await this.gcTask?.catch(() => undefined);
    if (!this.options.readOnly) {
      try {
        await this.requestSync();
      } catch (e) {
        failure = e;
      }
    }
    await this.drain(this.current.number);
    if (this.collected !== undefined) await this.drain(this.collected.number);
    try {
      await closeHandles(this.current);
      if (this.collected !== undefined) await closeHandles(this.collected);
    } catch (e) {
      failure ??= ioError('close', e, this.path);
    }
    // The append buffers go with the arena: a closed store still referenced had held 2 MiB each.
    if (failure === undefined) for (const g of [this.current, this.collected]) for (const segment of g?.segments ?? []) segment.chunks = [];
    if (failure !== undefined) throw failure;
  }

  private checkWritable(what: string): void {
    if (this.closed) throw closedError();
    if (this.options.readOnly) throw new MemstoreError('INVALID_ARGUMENT', `arena: ${what} on an arena opened read-only`);
  }

  private requestSync(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.syncWaiters.push({ resolve, reject });
      this.schedule();
    });
  }

  /** setImmediate: every append of the current tick joins one write, and a sync() in the same tick shares it. */
  private schedule(): void {
    if (this.running || this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => void this.run());
  }

  private async run(): Promise<void> {
    this.scheduled = false;
    this.running = true;
    try {
      while (this.syncWaiters.length > 0 || this.hasQueued()) {
        const waiters = this.syncWaiters;
        this.syncWaiters = [];
        try {
          await this.writeQueued();
          if (waiters.length > 0 || this.unsyncedBytes >= this.options.maxUnsyncedBytes) await this.syncWritten();
        } catch (e) {
          const error = ioError('write', e, this.path);
          for (const w of waiters) w.reject(error);
          // The frames stay queued; the next append or sync() retries, so a full disk is not spun on.
          if (this.syncWaiters.length === 0) break;
          continue;
        }
        for (const w of waiters) w.resolve();
      }
    } finally {
      this.running = false;
    }
  }

  private hasQueued(): boolean {
    for (const s of this.current.segments) for (const c of s.chunks) if (c.written < c.used) return true;
    return false;
  }

  private async writeQueued(): Promise<void> {
    const generation = this.current;
    for (const segment of generation.segments) {
      // By index: appends during a write may add chunks, which this pass then writes too.
      for (let i = 0; i < segment.chunks.length; i++) {
        const chunk = segment.chunks[i]!;
        while (chunk.written < chunk.used) {
          if (segment.handle === undefined) await this.createSegment(generation, segment);
          const from = chunk.written;
          const to = chunk.used;
          try {
            await segment.handle!.write(chunk.buf.subarray(from, to), chunk.start + from);
          } catch (e) {
            throw ioError('write', e, segment.path);
          }
          chunk.written = to;
          this.unsyncedBytes += to - from;
        }
      }
    }
  }

  /**
   * A new segment file is created only once the one before it is fsynced and its directory entry
   * durable: so only the last segment can ever have a torn tail, and no power cut leaves a gap.
   */
  private async createSegment(generation: Generation, segment: Segment): Promise<void> {
    const index = generation.segments.indexOf(segment);
    const previous = index > 0 ? generation.segments[index - 1] : undefined;
    if (previous !== undefined) await this.syncSegment(previous);
    if (this.dirDirty) await this.syncArenaDir();
    try {
      segment.handle = await this.options.files.open(segment.path, 'create');
    } catch (e) {
      throw ioError('create', e, segment.path);
    }
    this.dirDirty = true;
  }

  private async syncWritten(): Promise<void> {
    for (const segment of this.current.segments) await this.syncSegment(segment);
    if (this.dirDirty) await this.syncArenaDir();
  }

  private async syncSegment(segment: Segment): Promise<void> {
    if (!segment.chunks.some((c) => c.written > c.synced)) return;
    const marks = segment.chunks.map((c) => c.written);
    try {
      await segment.handle!.sync();
    } catch (e) {
      // After a failed fsync the kernel may have dropped the dirty pages and a retry may succeed
      // without writing them (PostgreSQL's "fsyncgate"): every frame since the last good fsync is
      // written again before the next one.
      for (const c of segment.chunks) {
        this.unsyncedBytes -= c.written - c.synced;
        c.written = c.synced;
      }
      throw ioError('fsync', e, segment.path);
    }
    for (const [i, mark] of marks.entries()) {
      const c = segment.chunks[i]!;
      this.unsyncedBytes -= mark - c.synced;
      c.synced = mark;
    }
    const filling = segment.chunks[segment.chunks.length - 1];
    // Durable chunks go (reads then come from the file), except the one appends are still filling.
    segment.chunks = segment.chunks.filter((c) => c.synced < c.used || (c === filling && c.used < c.buf.length));
  }

  private async syncArenaDir(): Promise<void> {
    try {
      await this.options.files.syncDir(this.path);
    } catch (e) {
      throw ioError('directory fsync', e, this.path);
    }
    this.dirDirty = false;
  }

  private async copyLive(entries: Array<readonly [string, BlobRef]>): Promise<CollectResult> {
    const from = this.current;
    const to = new Generation(from.number + 1);
    try {
      await this.requestSync();
      await removeGeneration(this.options.files, this.options.dir, this.options.space, to.number);
      // In file order: the old segments are read front to back through one window each, and a
      // blob under several keys comes up once in a row.
      const order = entries.map((_, i) => i).sort((a, b) => compareRefs(entries[a]![1], entries[b]![1]));
      const refs = new Map<string, BlobRef>();
      const writer = new GenerationWriter(this.options, to);
      let window: { segment: Segment; window: SegmentWindow } | undefined;
      let previous: { ref: BlobRef; moved: BlobRef } | undefined;
      for (const i of order) {
        const [key, ref] = entries[i]!;
        if (previous !== undefined && compareRefs(previous.ref, ref) === 0) {
          refs.set(key, previous.moved);
          continue;
        }
        const [g, s, offset, length] = ref;
        const size = frameSize(length);
        const segment = g === from.number ? from.byNumber.get(s) : undefined;
        const path = segment?.path ?? arenaSegmentPath(this.options.dir, g, s, this.options.space);
        if (segment?.handle === undefined) throw corruption(path, offset, g === from.number ? 'no such segment' : `generation ${g} is not the current generation ${from.number}`);
        if (offset + size > segment.end) throw corruption(path, offset, `reference runs past the end of the segment (${segment.end} bytes)`);
        if (window?.segment !== segment) window = { segment, window: new SegmentWindow(segment.handle, segment.end) };
        let bytes: Uint8Array;
        try {
          // Awaiting only when the window moves: an await per blob would cost more than the copy.
          bytes = window.window.peek(offset, size) ?? (await window.window.get(offset, size));
        } catch (e) {
          throw ioError('read', e, path);
        }
        const payload = payloadOf(bytes, { generation: g, segment: s, offset }, length, path);
        if (!writer.fits(size)) await writer.prepare(size);
        const moved = writer.fits(size) ? writer.put(payload) : await writer.putLarge(payload);
        refs.set(key, moved);
        previous = { ref, moved };
      }
      await writer.finish();
      this.collected = to;
      return { generation: to.number, refs, end: endOf(to) };
    } catch (e) {
      await closeHandles(to).catch(() => undefined);
      // Best effort: whatever stays behind is an orphan that the next open() deletes.
      await removeGeneration(this.options.files, this.options.dir, this.options.space, to.number).catch(() => undefined);
      throw ioError('collect', e, this.path);
    }
  }

  /** Deletes a generation's files once the reads of it in flight are done; a crash midway leaves orphans that open() deletes. */
  private async retire(generation: Generation): Promise<void> {
    await this.drain(generation.number);
    try {
      await closeHandles(generation);
      await removeGeneration(this.options.files, this.options.dir, this.options.space, generation.number);
    } catch (e) {
      throw ioError('delete generation', e, this.path);
    }
  }

  private enter(generation: number): void {
    this.readers.set(generation, (this.readers.get(generation) ?? 0) + 1);
  }

  private leave(generation: number): void {
    const left = (this.readers.get(generation) ?? 1) - 1;
    if (left > 0) {
      this.readers.set(generation, left);
      return;
    }
    this.readers.delete(generation);
    const waiters = this.drainWaiters.get(generation);
    this.drainWaiters.delete(generation);
    for (const w of waiters ?? []) w();
  }

  /** Resolves when no read of `generation` is in flight. */
  private drain(generation: number): Promise<void> {
    if (!this.readers.has(generation)) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const waiters = this.drainWaiters.get(generation) ?? [];
      waiters.push(resolve);
      this.drainWaiters.set(generation, waiters);
    });
  }
}

/** Writes the frames of a collection into fresh segments of the new generation through one buffer. */
class GenerationWriter {
  private readonly buffer = new Uint8Array(COPY_BUFFER);
  private used = 0;
  /** File offset of buffer[0] in the segment being filled. */
  private bufferAt = 0;
  private segment: Segment | undefined;

  constructor(
    private readonly options: ResolvedOptions,
    private readonly generation: Generation,
  ) {}

  /** Whether a frame of `size` bytes can be placed without I/O (no new segment, room in the buffer). */
  fits(size: number): boolean {
    const segment = this.segment;
    if (segment === undefined || (segment.end > 0 && segment.end + size > this.options.segmentBytes)) return false;
    return this.used + size <= this.buffer.length;
  }

  /** Starts a new segment or flushes the buffer, as a frame of `size` bytes needs. */
  async prepare(size: number): Promise<void> {
    const segment = this.segment;
    if (segment === undefined || (segment.end > 0 && segment.end + size > this.options.segmentBytes)) await this.rotate();
    else if (this.used + size > this.buffer.length) await this.flush(segment);
  }

  /** Places a frame in the buffer; only when fits(). */
  put(payload: Uint8Array): BlobRef {
    const segment = this.segment!;
    const offset = segment.end;
    encodeFrame(this.buffer, this.used, { generation: this.generation.number, segment: segment.number, offset }, payload);
    this.used += frameSize(payload.length);
    segment.end += frameSize(payload.length);
    return [this.generation.number, segment.number, offset, payload.length];
  }

  /** Writes a frame larger than the buffer on its own; after prepare(). */
  async putLarge(payload: Uint8Array): Promise<BlobRef> {
    const segment = this.segment!;
    await this.flush(segment);
    const offset = segment.end;
    const size = frameSize(payload.length);
    await this.write(segment, frame({ generation: this.generation.number, segment: segment.number, offset }, payload), offset);
    this.bufferAt = offset + size;
    segment.end += size;
    return [this.generation.number, segment.number, offset, payload.length];
  }

  /** Everything written and fsynced, and the directory entries too. */
  async finish(): Promise<void> {
    if (this.segment !== undefined) await this.seal(this.segment);
    try {
      await this.options.files.syncDir(arenaDir(this.options.dir, this.options.space));
    } catch (e) {
      throw ioError('directory fsync', e, arenaDir(this.options.dir, this.options.space));
    }
  }

  private async rotate(): Promise<Segment> {
    if (this.segment !== undefined) await this.seal(this.segment);
    const number = (this.segment?.number ?? 0) + 1;
    const segment = new Segment(number, arenaSegmentPath(this.options.dir, this.generation.number, number, this.options.space));
    this.generation.add(segment);
    try {
      segment.handle = await this.options.files.open(segment.path, 'create');
    } catch (e) {
      throw ioError('create', e, segment.path);
    }
    this.segment = segment;
    this.bufferAt = 0;
    return segment;
  }

  private async seal(segment: Segment): Promise<void> {
    await this.flush(segment);
    try {
      await segment.handle!.sync();
    } catch (e) {
      throw ioError('fsync', e, segment.path);
    }
  }

  private async flush(segment: Segment): Promise<void> {
    if (this.used === 0) return;
    await this.write(segment, this.buffer.subarray(0, this.used), this.bufferAt);
    this.bufferAt += this.used;
    this.used = 0;
  }

  private async write(segment: Segment, bytes: Uint8Array, at: number): Promise<void> {
    try {
      await segment.handle!.write(bytes, at);
    } catch (e) {
      throw ioError('write', e, segment.path);
    }
  }
}

function resolveOptions(options: BlobArenaOptions): ResolvedOptions {
  const { dir, generation } = options;
  if (typeof dir !== 'string' || dir === '') throw new MemstoreError('INVALID_OPTION', 'arena: dir must be a non-empty string');
  if (!Number.isSafeInteger(generation) || generation < 0 || generation > MAX_NUMBER) {
    throw new MemstoreError('INVALID_OPTION', `arena: generation must be an integer in [0, ${MAX_NUMBER}]`);
  }
  const segmentBytes = options.segmentBytes ?? DEFAULTS.segmentBytes;
  if (!Number.isSafeInteger(segmentBytes) || segmentBytes < 1) throw new MemstoreError('INVALID_OPTION', 'arena: segmentBytes must be a positive integer');
  const maxUnsyncedBytes = options.maxUnsyncedBytes ?? DEFAULTS.maxUnsyncedBytes;
  if (!Number.isSafeInteger(maxUnsyncedBytes) || maxUnsyncedBytes < 0) {
    throw new MemstoreError('INVALID_OPTION', 'arena: maxUnsyncedBytes must be a non-negative integer');
  }
  const space = options.space ?? 'texts';
  if (space !== 'texts' && space !== 'vectors') throw new MemstoreError('INVALID_OPTION', "arena: space must be 'texts' or 'vectors'");
  return { dir, space, files: options.files ?? nodeFileLayer, generation, segmentBytes, readOnly: options.readOnly ?? DEFAULTS.readOnly, keepOrphans: options.keepOrphans ?? DEFAULTS.keepOrphans, maxUnsyncedBytes, mapped: options.mapped ?? DEFAULTS.mapped };
}

interface FoundSegment {
  generation: number;
  segment: number;
  path: string;
}

/** The arena's segment files (other names are ignored); creates the directory durably when `create`. */
async function listSegments(files: FileLayer, storeDir: string, space: ArenaSpace, create: boolean): Promise<FoundSegment[]> {
  const dir = arenaDir(storeDir, space);
  if (!(await files.exists(dir))) {
    if (!create) return [];
    await ensureDurableDir(files, dir);
  }
  const found: FoundSegment[] = [];
  for (const name of await files.list(dir)) {
    const parsed = parseArenaSegmentName(name, space);
    if (parsed !== undefined) found.push({ ...parsed, path: arenaSegmentPath(storeDir, parsed.generation, parsed.segment, space) });
  }
  return found;
}

/** Removes the segment files `orphans` of the arena directory `dir`, durably. */
async function removeOrphanFiles(files: FileLayer, dir: string, orphans: readonly string[]): Promise<void> {
  if (orphans.length === 0) return;
  for (const path of orphans) await files.remove(path);
  await files.syncDir(dir);
}

/** Removes every file of `generation` and makes the removal durable. */
async function removeGeneration(files: FileLayer, storeDir: string, space: ArenaSpace, generation: number): Promise<void> {
  const doomed = (await listSegments(files, storeDir, space, false)).filter((f) => f.generation === generation);
  if (doomed.length === 0) return;
  for (const f of doomed) await files.remove(f.path);
  await files.syncDir(arenaDir(storeDir, space));
}

async function closeHandles(generation: Generation): Promise<void> {
  let failure: unknown;
  for (const segment of generation.segments) {
    const handle = segment.handle;
    segment.handle = undefined;
    segment.mapped?.unmap();
    segment.mapped = undefined;
    try {
      await handle?.close();
    } catch (e) {
      failure ??= e;
    }
  }
  if (failure !== undefined) throw failure;
}

/** The payload of the frame in `bytes` (what a read got at the frame's offset), or CORRUPTION. */
/**
 * What read() reports for the frame of `length` payload bytes read into `bytes[0, got)` from its
 * place (a reference past the bytes written, another length in the frame, damage), in that order;
 * undefined when it checks.
 */
function frameCorruption(bytes: Uint8Array, got: number, length: number, generation: number, segment: number, offset: number, path: string): MemstoreError | undefined {
  if (got < frameSize(length)) return corruption(path, offset, 'reference runs past the bytes written');
  const damage = lengthCorruption(bytes, length, offset, path);
  if (damage !== undefined) return damage;
  const frameDamage = frameDamageAt(bytes, 0, got, length, generation, segment, offset);
  return frameDamage === undefined ? undefined : corruption(path, offset, frameDamage);
}

/** frameCorruption() of a whole frame in `bytes` (readFrameInto() sized it) whose checksum was summed as it was copied (frameSumMatches). */
function frameCorruptionOfSum(bytes: Uint8Array, length: number, summed: number, offset: number, path: string): MemstoreError | undefined {
  return lengthCorruption(bytes, length, offset, path) ?? (frameSumMatches(bytes, 0, summed) ? undefined : corruption(path, offset, 'bad checksum'));
}

/** CORRUPTION when the frame's length field is not the reference's. */
function lengthCorruption(bytes: Uint8Array, length: number, offset: number, path: string): MemstoreError | undefined {
  return frameLength(bytes) === length ? undefined : corruption(path, offset, `frame holds ${frameLength(bytes)} bytes, the reference says ${length}`);
}

function payloadOf(bytes: Uint8Array, address: { generation: number; segment: number; offset: number }, length: number, path: string): Uint8Array {
  const damage = frameCorruption(bytes, bytes.length, length, address.generation, address.segment, address.offset, path);
  if (damage !== undefined) throw damage;
  return bytes.subarray(FRAME_HEADER_SIZE, FRAME_HEADER_SIZE + length);
}

/** File order; equal for the same blob. */
function compareRefs(a: BlobRef, b: BlobRef): number {
  return a[1] - b[1] || a[2] - b[2] || a[3] - b[3] || a[0] - b[0];
}

function checkRef(ref: unknown): asserts ref is BlobRef {
  if (!Array.isArray(ref) || ref.length !== 4 || !ref.every((n) => Number.isSafeInteger(n) && n >= 0)) {
    throw new MemstoreError('INVALID_ARGUMENT', 'arena: a reference is [generation, segment, offset, length] of non-negative integers');
  }
}

function corruption(file: string, offset: number, what: FrameDamage | string): MemstoreError {
  return new MemstoreError('CORRUPTION', `arena ${file} at ${offset}: ${what}`, { file, offset });
}

function closedError(): MemstoreError {
  return new MemstoreError('CLOSED', 'the arena is closed');
}

/** Wraps a file-layer failure; a MemstoreError (CORRUPTION, or an IO error already wrapped) passes through. */
function ioError(what: string, cause: unknown, file: string): MemstoreError {
  if (cause instanceof MemstoreError) return cause;
  const code = typeof cause === 'object' && cause !== null && 'code' in cause ? ` (${String(cause.code)})` : '';
  // The file the system error names, where it names one: an open of the arena had named its
  // directory for a segment that was a FIFO, and left the user to find which (a hostile pass).
  const named = typeof cause === 'object' && cause !== null && 'path' in cause && typeof cause.path === 'string' ? cause.path : file;
  return new MemstoreError('IO', `arena ${what} of ${named} failed${code}`, { cause, file: named });
}
