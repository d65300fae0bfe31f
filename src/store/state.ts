import { accessSync, closeSync, constants, existsSync, fstatSync, fsyncSync, ftruncateSync, openSync, realpathSync, renameSync, rmSync, statfsSync, statSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { dirname } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { Packr } from 'msgpackr';
import { crc32c, maskCrc, unmaskCrc } from '../../io/crc32c.js';
import type { ArenaEnd, BlobRef } from '../arena/arena.js';
import { MemstoreError } from '../errors.js';
import { checkLmdbFile, checkLmdbStructure, mainTreeKeys, salvageTables, type LmdbFileCheck, type MalformedPage, type SalvagedEntry, type SkippedPart } from './lmdb-file.js';
import type { CodecName } from '../codec/codec.js';
import { resolvePages, type Metric, type PagesOptions, type PcaOption } from '../options.js';
import type { PcaModel } from '../pca/pca.js';
import { hadamardSignBytes } from '../space/hadamard-rotation.js';
import { rotatedDim } from '../space/rotation.js';
import { isRqCodec } from '../codec/codec.js';
import { parseMeta, type Meta } from '../meta.js';
import { decodeWireDoc, type WireDoc } from './doc-wire.js';
import { FILES, lmdbLockPath, refuseLostState, stateCopyPath, statePath, syncDirSync } from './files.js';
import { encodeChunks, INTENT_CHUNK_PREFIX, INTENT_KEY, intentChunkKey, intentChunks, opsOfChunks, StateLayer, valueOf, type LayerValue, type StateOp } from './state-intent.js';

/**
 * Bumped when the meaning of persisted records changes; older readers refuse newer stores. 6: an rq
 * store's model may be a structured rotation (PcaRecord.hadamard), which readers of 5 cannot apply.
 */
export const FORMAT_VERSION = 6;

/**
 * The versions this reader opens: 5 differs from 6 only in never holding a structured rotation, so
 * it is read as it is, and a version-5 store that trains its rq model here is moved to 6 in the
 * same transaction (commitCheckpoint).
 */
export const READABLE_FORMAT_VERSIONS: readonly number[] = [5, FORMAT_VERSION];

/** What a store was created with; fixed for its lifetime. */
export interface StoreConfig {
  readonly formatVersion: number;
  readonly dim: number;
  readonly metric: Metric;
  readonly codec: CodecName;
  readonly pca: PcaOption | null;
  /** Full-precision vectors are kept on disk for rescoring and `get`. */
  readonly keepFull: boolean;
  readonly trainSize: number;
  /** The page index's settings (OpenOptions.pages); absent in stores made before they were kept, which take the defaults. */
  readonly pages?: Readonly<Required<PagesOptions>> | false;
}

/** Where the last checkpoint left the log, the two arenas and the index file: replay starts after `lsn`. */
export interface Checkpoint {
  readonly lsn: number;
  /** The text arena's current generation. */
  readonly arenaGeneration: number;
  /** The vector arena's current generation. */
  readonly vectorGeneration: number;
  /** The index file's current generation (INDEX.md). */
  readonly indexGeneration: number;
  /** The committed length of that file: a reader reads exactly [0, indexBytes). */
  readonly indexBytes: number;
  /**
   * CRC-32C of the headers of that prefix's blocks (INDEX.md, "Files and generations"): a reader
   * finding another holds a file this checkpoint did not write. Absent in checkpoints written before
   * it existed (and after an index read leniently over damage): not checked.
   */
  readonly indexDigest?: number;
  /** Bytes of the text arena's current generation that the state's texts occupy (frames included). */
  readonly textLiveBytes: number;
  /**
   * Sizing hints for open, written by every checkpoint since they were added (absent before): the
   * live records and the UTF-8 bytes of their ids when the checkpoint was taken. Open allocates the
   * id table once at this size instead of growing it (and freeing each smaller copy) record by
   * record. Never trusted for anything else; open bounds them by the index file's committed length.
   */
  readonly records?: number;
  readonly idBytes?: number;
  /**
   * The index file's records carry pages (FLAG_PAGE, INDEX.md): opening builds the page-clustered
   * index from them. Absent (before pages existed) means false.
   */
  readonly paged?: boolean;
  /**
   * The filter columns persisted with this checkpoint (INDEX.md, "Filter columns"); absent: none.
   * Derived data: a reader that cannot use it (malformed, another index generation) makes the
   * columns from the records' metadata instead.
   */
  readonly columns?: ColumnsRef;
  /**
   * How far each arena's appends had reached when this checkpoint was taken (BlobArena.end()):
   * every reference the state holds lies before it. Open hands it to the arena, so that a segment
   * file lost or cut short is not written again at the addresses of the blobs it held. Absent in
   * checkpoints written before it existed; one that is malformed is ignored.
   */
  readonly textEnd?: ArenaEnd;
  readonly vectorEnd?: ArenaEnd;
}

/** `end` when it is an arena end (three non-negative safe integers), else undefined. */
export function arenaEndOf(end: unknown): ArenaEnd | undefined {
  return Array.isArray(end) && end.length === 3 && end.every((n) => Number.isSafeInteger(n) && n >= 0) ? [end[0], end[1], end[2]] : undefined;
}

/** A columns file and the index prefix it describes: `index/columns-<file>.col`, committed length `bytes`. */
export interface ColumnsRef {
  readonly file: number;
  readonly bytes: number;
  readonly indexGeneration: number;
  readonly indexBytes: number;
  /** columnsDigest() of its blocks: the file this checkpoint wrote, not one stamped alike. */
  readonly digest: number;
}

/** The checkpoint's columns file when it names a well-formed one, else undefined (a writer's bug costs only the columns). */
export function columnsRefOf(c: Checkpoint): ColumnsRef | undefined {
  const r = c.columns as Partial<ColumnsRef> | undefined;
  if (typeof r !== 'object' || r === null) return undefined;
  // An older writer named no digest: its file is not used, and the next checkpoint writes one that has.
  const ok = [r.file, r.bytes, r.indexGeneration, r.indexBytes, r.digest].every((n) => Number.isSafeInteger(n) && n! >= 0) && r.file! >= 1 && r.digest! < 2 ** 32;
  return ok ? { file: r.file!, bytes: r.bytes!, indexGeneration: r.indexGeneration!, indexBytes: r.indexBytes!, digest: r.digest! } : undefined;
}

/** `c` naming `ref` as its columns file (none when undefined), whatever columns it named before. */
export function withColumns<C extends Partial<Checkpoint>>(c: C, ref: ColumnsRef | undefined): Omit<C, 'columns'> & { columns?: ColumnsRef } {
  const { columns: _old, ...rest } = c;
  return ref === undefined ? rest : { ...rest, columns: ref };
}

/**
 * The document part of a record: metadata inline (filters read it on the search path), text in the
 * arena. Only a record with a text or metadata has a `docs` value; its index record says so
 * (FLAG_DOCUMENTED), so a missing `docs` value is damage, not a record without metadata.
 */
export interface DocRecord {
  readonly text?: BlobRef;
  /** The metadata, parsed; present exactly when `metaJson` is. */
  readonly meta?: Meta;
  /** The metadata as persisted: JSON text (src/meta.ts). */
  readonly metaJson?: string;
}

/**
 * A document of these parts (metadata and its JSON come together), as a literal of one of three
 * shapes: a spread of conditional objects took V8's slow path, 2 µs a document.
 */
export function docRecord(text: BlobRef | undefined, meta: Meta | undefined, metaJson: string | undefined): DocRecord {
  if (meta === undefined) return text === undefined ? {} : { text };
  return text === undefined ? { meta, metaJson } : { text, meta, metaJson };
}

/** Whether a document has anything to store: a record without text and metadata has no `docs` value. */
export function hasDoc(doc: DocRecord): boolean {
  return doc.text !== undefined || doc.metaJson !== undefined;
}

/** Everything one checkpoint writes to LMDB, in one transaction (the index file is written before it). */
export interface CheckpointWrite {
  readonly checkpoint: Checkpoint;
  /** id → its document, or null when it has none any more (deleted, or without text and metadata). */
  readonly docs: ReadonlyMap<string, DocRecord | null>;
  /** Set when PCA was fitted since the last checkpoint: the model (the codes are in the index file). */
  readonly training?: { readonly pca: PcaModel | undefined };
  /** Text arena references moved by a garbage collection. */
  readonly movedText?: ReadonlyMap<string, BlobRef>;
}

/** The sub-databases that hold one value per record, keyed by the id's UTF-8 bytes. */
export type RecordTable = 'docs';
export const RECORD_TABLES: readonly RecordTable[] = ['docs'];

/**
 * One value read from a record table: either `value`, or the `error` (CORRUPTION) that reading it
 * gave. `id` is undefined when the key itself is not UTF-8 (a damaged key names no record).
 */
export type Entry<T> =
  | { readonly key: Uint8Array; readonly id: string; readonly value: T; readonly error?: undefined }
  | { readonly key: Uint8Array; readonly id: string | undefined; readonly value?: undefined; readonly error: MemstoreError };

interface PcaRecord {
  inDim: number;
  outDim: number;
  mean: Uint8Array;
  components: Uint8Array;
  explainedVariance: number;
  /** PcaModel.residualVariance: absent in stores trained before it was kept (their PCA has no rescoring bound). */
  residualVariance?: number;
  /** The signs of a structured rotation (an rq store without PCA; `components` then empty). Absent in stores made before it. */
  hadamard?: Uint8Array;
}

const CONFIG_KEY = 'config';
const PCA_KEY = 'pca';
const TRAINED_KEY = 'trained';
const CHECKPOINT_KEY = 'checkpoint';
/** true once the store's write-ahead log directory has been made (STATE.md, "The log directory"). */
const LOG_MADE_KEY = 'logMade';
/** The first LSN of the newest log segment the store has made (STATE.md, "The log directory"). */
const LOG_SEGMENT_KEY = 'logSegment';
/** true from a store's creation until the end of the open that created it (readCreating()). */
const CREATING_KEY = 'creating';

/**
 * Added to the configuration's format version while a commit's writes may be half applied (STATE.md,
 * "A commit cut short"): a memstore that knows no redo record refuses the store then, as it refuses
 * any version it does not read, instead of reading the half and deleting what it took for leftovers.
 */
const REDO_VERSION_OFFSET = 1_000_000;

/**
 * A commit whose redo record is in LMDB and whose writes may not all be: its writes, its chunks, the
 * configuration to write back after them (unmarked; none when the writes put their own), and, when
 * open found it, the layer reads go through meanwhile (getConfig() unmarks the configuration).
 */
interface Decided {
  readonly ops: readonly StateOp[];
  readonly chunks: number;
  readonly config: Buffer | undefined;
  readonly layer: StateLayer | undefined;
}

function decided(ops: readonly StateOp[], chunks: number, unmarked: Buffer | undefined, readThrough: boolean): Decided {
  const config = ops.some((op) => op.table === 'config' && op.key === CONFIG_KEY) ? undefined : unmarked;
  return { ops, chunks, config, layer: readThrough ? new StateLayer(ops) : undefined };
}

// Plain maps, no record extensions: what is written must decode the same in later versions.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });
const utf8 = new TextEncoder();
// ignoreBOM keeps a leading U+FEFF: by default a decoder strips it, and '\uFEFFa' would come back as 'a'.
const fromUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

let keyScratch = new Uint8Array(256);

/** The UTF-8 bytes of `key` in a reused buffer (valid until the next call): lookups and seals run on every read. */
function keyBytes(key: string): Uint8Array {
  if (keyScratch.length < key.length * 3) keyScratch = new Uint8Array(key.length * 3);
  return keyScratch.subarray(0, utf8.encodeInto(key, keyScratch).written);
}

/** The id a key's bytes spell, or undefined when they are not UTF-8. */
function idOf(key: Uint8Array): string | undefined {
  try {
    return fromUtf8.decode(key);
  } catch {
    return undefined;
  }
}

/** How a damaged key is named in reports: its id when it has one, else its bytes in hex. */
export function keyName(key: Uint8Array): string {
  return idOf(key) ?? `0x${Buffer.from(key).toString('hex')}`;
}

/**
 * Every value is stored as `masked CRC-32C (4 bytes LE) | payload`, the CRC covering the key's
 * bytes and then the payload. LMDB checks no data, so this is what turns a flipped bit (in a
 * value, or in a key, which would move a value to another id) into CORRUPTION instead of wrong data.
 */
function seal(key: Uint8Array, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + payload.byteLength);
  out.writeUInt32LE(maskCrc(crc32c(payload, 0, payload.byteLength, crc32c(key))), 0);
  out.set(payload, 4);
  return out;
}

/**
 * The payload of a sealed value, or CORRUPTION naming the sub-database and key. `value.length`, not
 * `byteLength`: getBinaryFast returns LMDB's reused read buffer, whose `length` lmdb-js sets to the
 * value's size while its `byteLength` stays the whole buffer's.
 */
function unseal(dir: string, where: string, key: Uint8Array, value: Uint8Array): Uint8Array {
  if (value.length < 4) throw corruption(dir, where, key, 'value shorter than its checksum');
  const payload = value.subarray(4);
  const stored = unmaskCrc(new DataView(value.buffer, value.byteOffset, 4).getUint32(0, true));
  if (stored !== crc32c(payload, 0, payload.byteLength, crc32c(key))) throw corruption(dir, where, key, 'checksum mismatch');
  return payload;
}

function unpack(dir: string, where: string, key: Uint8Array, payload: Uint8Array): unknown {
  try {
    return packr.unpack(payload);
  } catch (e) {
    throw corruption(dir, where, key, 'value does not decode', e);
  }
}

function bytesOf(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Copies bytes into a fresh, aligned Float32Array (LMDB buffers have no alignment guarantee). */
function floatsOf(b: Uint8Array): Float32Array {
  const out = new Float32Array(b.byteLength >> 2);
  new Uint8Array(out.buffer).set(b.subarray(0, out.byteLength));
  return out;
}

/** CORRUPTION at `<sub-database>/<key>` of the state file; `id` set when the key names a record. */
function corruption(dir: string, where: string, key: Uint8Array, what: string, cause?: unknown): MemstoreError {
  const id = where === 'config' ? undefined : idOf(key);
  return new MemstoreError('CORRUPTION', `${FILES.state} in ${dir}: ${what} (key ${where}/${keyName(key)})`, {
    file: statePath(dir),
    offset: `${where}/${keyName(key)}`,
    cause,
    ...(id === undefined ? {} : { id }),
  });
}

/**
 * Test seam: called before every put and remove of a checkpoint transaction with its running
 * count, so a test can fail the N-th write and check that nothing of the transaction remains.
 */
export const stateWriteHooks: {
  beforeWrite: ((write: number) => void) | undefined;
  /** Called once a checkpoint transaction has committed, before its flush is awaited: a throw is a flush that failed. */
  afterCommit: (() => void) | undefined;
  /**
   * Called with the number of LMDB writes a transaction is about to make; a number returned is how
   * many it makes before it commits, as lmdb-js commits what a callback had written when its thread
   * is terminated (state-intent.ts). A test kills its process in afterCut: nothing after runs.
   */
  cut: ((writes: number) => number | undefined) | undefined;
  /** Called once a transaction `cut` chose (returned a number for) has committed; a cut one then fails its commit. */
  afterCut: (() => void) | undefined;
} = { beforeWrite: undefined, afterCommit: undefined, cut: undefined, afterCut: undefined };

/**
 * CORRUPTION when the LMDB file at `path` is shorter than the pages its last commit reaches, or its
 * first two pages are not LMDB's meta pages of this version (lmdb-file.ts): LMDB, mapping it, would
 * kill the process at the first page past the end, and lmdb-js crashes on a file that is not its
 * LMDB's. A file that does not exist is LMDB's to make; one that holds no commit ('unfinished': no
 * byte, or a creation stopped during LMDB's first write, which LMDB cannot open) is emptied for
 * LMDB to make again, unless the store's other files are beside it (files.ts, refuseLostState).
 * Called with the directory lock held: a process committing to the file meanwhile could be read
 * half-way through writing a meta page (LMDB rewrites its roots and last page in place).
 */
function refuseUnmappable(dir: string, path: string): void {
  refuseIrregular(path);
  let check: LmdbFileCheck;
  try {
    if (!existsSync(path)) return;
    check = checkLmdbFile(path);
  } catch (e) {
    throw new MemstoreError('IO', `cannot read ${path}`, { cause: e });
  }
  if (check.kind === 'unfinished') {
    refuseLostState(dir, true);
    try {
      emptyDurably(path);
    } catch (e) {
      throw new MemstoreError('IO', `cannot empty the unfinished ${path}`, { cause: e });
    }
  }
  if (check.kind === 'truncated') {
    throw new MemstoreError('CORRUPTION', `${path} is truncated: ${check.size} bytes, its last commit reaches page ${check.page} (${check.needed} bytes); ${BEYOND_REPAIR}`, { file: path, offset: check.size });
  }
  if (check.kind === 'invalid') throw new MemstoreError('CORRUPTION', `${path} is not an LMDB data file of this version, or its first pages are damaged; ${BEYOND_REPAIR}`, { file: path, offset: 0 });
}

/** What the errors of a state file damaged past repair's reach advise (repair opens the state as open does, and refuses it). */
const BEYOND_REPAIR = 'memstore repair cannot read it either: restore state.mdb from a copy';

/**
 * Whether the state file is damaged past what `memstore repair` mends: truncated, not an LMDB file
 * of this version, or with a part LMDB would read past in its main tree or its configuration's
 * (salvageState() refuses those; a part elsewhere it mends). For the command line's advice alone:
 * compact and export had advised a repair for a truncated state, which repair then refused. False
 * where the file cannot be looked at (no advice is then better than wrong advice; the error being
 * advised on says what failed).
 */
export function stateBeyondRepair(dir: string): boolean {
  const path = statePath(dir);
  try {
    const damage = lmdbDamage(path);
    if (typeof damage !== 'object') return damage !== undefined;
    const skipped: SkippedPart[] = [];
    let config = 0;
    for (const entry of salvageTables(path, ['config'], skipped)) if (entry.table === 'config') config++;
    return config === 0 || skipped.length > 0;
  } catch {
    return false;
  }
}

/**
 * What of a regular state file LMDB cannot be trusted with: cut short of its last commit, not an
 * LMDB file of this version, or the first part of its trees that LMDB would read past
 * (checkLmdbStructure()); undefined for none, and for a file that is not a regular one (a FIFO is
 * not opened: the read would wait for a writer). Throws what the reads throw.
 */
function lmdbDamage(path: string): 'truncated' | 'invalid' | MalformedPage | undefined {
  if (!statSync(path).isFile()) return undefined;
  const kind = checkLmdbFile(path).kind;
  if (kind === 'truncated' || kind === 'invalid') return kind;
  return kind === 'whole' ? checkLmdbStructure(path) : undefined;
}

/**
 * The first part of the state file's trees that LMDB would read past (checkLmdbStructure()), or
 * undefined: none, no state file yet, or one checkLmdbFile() does not find whole (left to
 * StateStore.open, which says what it is). IO when the file cannot be read.
 */
export function malformedStatePage(dir: string): MalformedPage | undefined {
  const path = statePath(dir);
  if (!existsSync(path)) return undefined;
  let damage: ReturnType<typeof lmdbDamage>;
  try {
    damage = lmdbDamage(path);
  } catch (e) {
    throw new MemstoreError('IO', `cannot read ${path}`, { cause: e });
  }
  return typeof damage === 'object' ? damage : undefined;
}

/**
 * CORRUPTION naming the state file and the page, when a part of its trees is one LMDB would read
 * past (malformedStatePage()): before LMDB opens it, at every open and in verify. A flipped bit
 * in a leaf node's size had let the store open clean and end the process with SIGSEGV at the first
 * read of that record, or at the checkpoint that wrote beside it (a hostile pass). Every page in
 * use is read once (about 16 ms for a 12.7 MB state of 50k records with metadata). `memstore
 * repair` mends it (salvageState()).
 */
export function refuseMalformedState(dir: string): void {
  const damage = malformedStatePage(dir);
  if (damage === undefined) return;
  const path = statePath(dir);
  throw new MemstoreError('CORRUPTION', `${path}: page ${damage.page} is damaged inside LMDB's own structure (${damage.what}); LMDB would read past it. memstore repair ${dir} rebuilds the state from every part that reads, and reports the records it loses with that page; or restore state.mdb from a copy`, { file: path, offset: damage.page * damage.pageSize });
}

/**
 * The state file's own path, through a link where it is one (the store's data kept on another
 * disk): its copies are made beside it and renamed over it, where over the link they had left the
 * link's target behind, stale. IO when it cannot be found.
 */
function realStatePath(dir: string): string {
  try {
    return realpathSync(statePath(dir));
  } catch (e) {
    throw new MemstoreError('IO', `cannot find ${statePath(dir)}`, { cause: e, file: statePath(dir) });
  }
}

/** Removes `copy`, a copy of the state (stateCopyPath()), and LMDB's lock file beside it, where they are. */
function removeStateCopy(copy: string): void {
  rmSync(copy, { force: true });
  rmSync(lmdbLockPath(copy), { force: true });
}

/**
 * Removes the copy of the state file a `compact()` or a repair killed before its rename left
 * beside it (stateCopyPath(), with LMDB's lock file): up to the state's size, which only the next
 * compaction had removed (a hostile pass: 4 MB left by a SIGINT of `memstore compact`). For an
 * open, with the directory lock held: no copy is being made then.
 */
export function removeLeftStateCopy(dir: string): void {
  let path: string;
  try {
    path = realpathSync(statePath(dir));
  } catch {
    return;
  }
  const copy = stateCopyPath(path);
  try {
    removeStateCopy(copy);
  } catch (e) {
    throw new MemstoreError('IO', `cannot remove ${copy}, a copy of the state a compaction or a repair left`, { cause: e, file: copy });
  }
}

/**
 * Rewrites the state file of `dir` from what salvageTables() reads of it, for repair when a part
 * of its trees is one LMDB would read past (malformedStatePage()): LMDB never opens the damaged
 * file. The configuration and every record table are read page by page with positioned reads, each
 * part LMDB would read past passed over; what reads is put into a new environment beside the file,
 * which is renamed over it once `beforeReplace` has been given the parts passed over (repair writes
 * them to its report and fsyncs it first, as it does before it removes anything). Keys and values
 * are copied as bytes: whether a value is what was written is for its own checksum to say
 * (rebuildWithoutDamage(), which repair runs next). The records on a page passed over are gone from
 * the state; the store's checks find them next (an index entry whose document is missing).
 * CORRUPTION, with nothing replaced, when a part of the main tree or of the configuration's tree
 * is passed over, or no configuration is found: without it nothing of the store can be read.
 */
export async function salvageState(dir: string, beforeReplace: (skipped: readonly SkippedPart[]) => void): Promise<void> {
  const link = statePath(dir);
  const path = realStatePath(dir);
  const tmp = stateCopyPath(path);
  const tables = ['config', ...RECORD_TABLES];
  const skipped: SkippedPart[] = [];
  let configEntries = 0;
  try {
    removeStateCopy(tmp);
    const fresh = openEnv(dir, tmp);
    try {
      // Keys as bytes in both: the configuration's keys are strings in lmdb-js's key encoding, and its bytes are kept as they are.
      const dbs = new Map(tables.map((name) => [name, fresh.openDB<Buffer, Buffer>({ name, encoding: 'binary', keyEncoding: 'binary' })]));
      let batch: SalvagedEntry[] = [];
      const flush = async () => {
        const entries = batch;
        batch = [];
        await fresh.transaction(() => {
          for (const e of entries) dbs.get(e.table)!.putSync(e.key, e.value);
        });
      };
      for (const entry of salvageTables(path, tables, skipped)) {
        if (entry.table === 'config') configEntries++;
        batch.push(entry);
        if (batch.length >= 1024) await flush();
      }
      await flush();
      await fresh.flushed;
    } finally {
      await fresh.close();
    }
    const lost = skipped.find((part) => part.table === '' || part.table === 'config');
    if (lost !== undefined || configEntries === 0) {
      const where = lost === undefined ? 'no configuration was found in it' : `page ${lost.page} of its ${lost.table === '' ? 'main tree' : 'configuration'} is damaged (${lost.what})`;
      throw new MemstoreError('CORRUPTION', `${link}: ${where}, and without it nothing of the store can be read; ${BEYOND_REPAIR}`, { file: link, ...(lost === undefined ? {} : { offset: lost.page * lost.pageSize }) });
    }
    beforeReplace(skipped);
    renameSync(tmp, path);
    syncDirSync(dirname(path));
  } catch (e) {
    throw e instanceof MemstoreError ? e : new MemstoreError('IO', `rewriting ${path} from what of it reads failed`, { cause: e, file: link });
  } finally {
    removeStateCopy(tmp);
  }
}

/**
 * IO when the state file or LMDB's lock file beside it (`state.mdb-lock`) is there but is not a
 * regular file (a device, a FIFO, a directory, or a link to one): LMDB maps the one and the other
 * as files, and a device crashed the process (SIGSEGV, or an assertion's abort on /dev/zero), a
 * FIFO blocked the first read for good, and a directory as the lock crashed it too.
 */
function refuseIrregular(path: string): void {
  for (const file of [path, lmdbLockPath(path)]) {
    let regular: boolean;
    try {
      regular = statSync(file).isFile();
    } catch (e) {
      // A file that is not there (a link to nothing included) is LMDB's to make.
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new MemstoreError('IO', `cannot read ${file}`, { cause: e, file });
    }
    if (!regular) throw new MemstoreError('IO', `${file} is not a regular file: the store's LMDB environment cannot be kept in it`, { file });
  }
}

/** Cuts the file at `path` to no bytes, durably: LMDB then writes a new environment's first pages into it. */
function emptyDurably(path: string): void {
  const fd = openSync(path, 'r+');
  try {
    if (fstatSync(fd).size === 0) return;
    ftruncateSync(fd, 0);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * The free bytes an LMDB environment is created with, at least. lmdb-js, failing to create an
 * environment on a nearly full disk (8 to 72 KiB free), corrupted memory tidying up: the process
 * died with SIGSEGV, or an abort in free() (a hostile pass filling a tmpfs: creating a store, an
 * import, compact() and repair, which make a new environment beside the old). A megabyte is far
 * more than an environment's first pages and lock file take (about 41 KiB); a store's first
 * checkpoints need more anyway, and their commits fail cleanly (IO).
 */
export const CREATE_ROOM = 1 << 20;

/**
 * IO, before LMDB is asked, when the environment at `path` is to be created (its data file absent
 * or empty, or its lock file absent) on a file system with less than CREATE_ROOM free. Space taken
 * by another process between this look and the creation is not covered.
 */
export function refuseFullDisk(path: string, freeBytes: (dir: string) => number | undefined = freeBytesIn): void {
  let fresh: boolean;
  try {
    fresh = statSync(path).size === 0 || !existsSync(lmdbLockPath(path));
  } catch {
    fresh = true;
  }
  if (!fresh) return;
  const free = freeBytes(dirname(path));
  if (free !== undefined && free < CREATE_ROOM) throw new MemstoreError('IO', `${dirname(path)} has ${free} bytes free; creating ${path} needs ${CREATE_ROOM} at least`, { file: path });
}

/** The bytes this process may still write on the file system of `dir`, or undefined where statfs cannot tell (LMDB then meets the disk as it is). */
function freeBytesIn(dir: string): number | undefined {
  try {
    const fs = statfsSync(dir);
    // Root may write into the blocks a file system reserves; LMDB, run as root, does.
    return (process.getuid?.() === 0 ? fs.bfree : fs.bavail) * fs.bsize;
  } catch {
    return undefined;
  }
}

/**
 * File descriptors an environment is opened with, at least: LMDB opens its data file twice and its
 * lock file once, and lmdb-js crashed the process (SIGSEGV) when that failed with one or two free
 * (a hostile pass: EMFILE); with three it failed cleanly.
 */
const ENV_DESCRIPTORS = 4;

/**
 * IO, before LMDB is asked, when it could not open the environment at `path` for writing: its data
 * file or lock file there but not readable and writable by this process (a lock file root left),
 * their directory not writable where one is to be made, or fewer than ENV_DESCRIPTORS file
 * descriptors free. lmdb-js, failing to open an environment so, crashed the process (SIGSEGV; a
 * hostile pass). A descriptor another thread takes between this look and LMDB's open is not covered.
 */
export function refuseUnopenable(path: string, writable = true): void {
  const access = (file: string, mode: number) => {
    try {
      accessSync(file, mode);
    } catch (e) {
      throw new MemstoreError('IO', `cannot open ${file}${writable ? ' for writing' : ''}: ${(e as NodeJS.ErrnoException).code ?? 'not accessible'}`, { cause: e, file });
    }
  };
  const mode = writable ? constants.R_OK | constants.W_OK : constants.R_OK;
  let made = false;
  for (const file of [path, lmdbLockPath(path)]) {
    if (existsSync(file)) access(file, mode);
    else made = true;
  }
  if (made) access(dirname(path), constants.W_OK | constants.X_OK);
  // Descriptors counted by opening the environment's directory (not /dev/null, which a sandbox or
  // a bare chroot may lack: a review found no store could be opened there). Windows opens no directory.
  if (process.platform === 'win32') return;
  const taken: number[] = [];
  try {
    for (let i = 0; i < ENV_DESCRIPTORS; i++) taken.push(openSync(dirname(path), 'r'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const short = code === 'EMFILE' || code === 'ENFILE';
    throw new MemstoreError('IO', `cannot open ${path}: ${short ? `fewer than ${ENV_DESCRIPTORS} file descriptors free` : `its directory cannot be opened`} (${code ?? 'open failed'})`, { cause: e, file: path });
  } finally {
    for (const fd of taken) closeSync(fd);
  }
}

/** What lmdb-js threw, as an Error: it throws a failed open's errno as a bare number (13, not EACCES). */
export function lmdbCause(e: unknown): unknown {
  if (typeof e !== 'number') return e;
  const code = Object.entries(osConstants.errno).find(([, n]) => n === e)?.[0];
  return Object.assign(new Error(`LMDB failed with errno ${e}${code === undefined ? '' : ` (${code})`}`), { errno: e, ...(code === undefined ? {} : { code }) });
}

/** 16 KiB pages: metadata values of a few KiB stay inline instead of taking overflow pages of their own. */
function openEnv(dir: string, path = statePath(dir), readOnly = false): RootDatabase {
  refuseUnmappable(dir, path);
  if (!readOnly) refuseFullDisk(path);
  refuseUnopenable(path, !readOnly);
  try {
    // On a read-only file system LMDB opened read-only goes without its lock file, which it cannot write there.
    if (readOnly) return open({ path, readOnly: true, maxDbs: 8 });
    // Checkpoints are the only writers and each awaits its flush, so LMDB's own durability is all on.
    // No event-turn batching: lmdb-js opens a batch for the writes of an event turn whose promise
    // nothing holds, and a failed commit (a state file that cannot grow) rejected it unhandled, which
    // ends a Node process (found by a hostile pass). The store's only writes are its transactions.
    return open({ path, maxDbs: 8, compression: false, pageSize: 16384, eventTurnBatching: false });
  } catch (e) {
    throw new MemstoreError('IO', `cannot open ${path}`, { cause: lmdbCause(e) });
  }
}

/**
 * What the LMDB environment at `path` holds, read from its file (opening it as a store creates its
 * sub-databases: the tools had written into another program's environment, and open had made a
 * store inside it; and opening it at all, before the lock, reaches the environment another thread
 * may hold: mainTreeKeys()): 'store' when it has the sub-database a store keeps its configuration in,
 * 'empty' when it has no key at all (a store whose creation stopped before its first commit),
 * 'unfinished' when it holds no commit (no byte, or a creation stopped during LMDB's first write:
 * lmdb-file.ts), 'foreign' otherwise. Undefined when it cannot be opened so, a truncated file or
 * another kind of file (lmdb-file.ts): the callers then go on as before and meet the error there.
 */
export function environmentKind(path: string): 'store' | 'empty' | 'unfinished' | 'foreign' | undefined {
  try {
    refuseIrregular(path);
    const check = checkLmdbFile(path).kind;
    if (check === 'unfinished') return 'unfinished';
    if (check !== 'whole') return undefined;
    // Read from the file, not through LMDB: this looks before the directory is locked, and another
    // thread of this process may hold the environment (mainTreeKeys()).
    const tree = mainTreeKeys(path);
    if (tree === undefined) return undefined;
    if (tree.keys.includes('config')) return 'store';
    // A tree of more pages than a store's ever has is another program's, whichever of its keys were read.
    return tree.keys.length > 0 || !tree.complete ? 'foreign' : 'empty';
  } catch {
    return undefined;
  }
}

type Table = Database<Buffer, Buffer | Uint8Array>;

/**
 * A "decoder" that hands over a view of lmdb-js's reused read buffer. With it a range copies no
 * value, where a range over a 'binary' table copies each one into an ArrayBuffer of its own: a
 * malloc per value, 100,000 of them to open a 50k store, whose freed memory the process's heap kept.
 * lmdb-js calls `decode` with the buffer and the value's size; it never writes through these handles.
 */
const VIEW_OF_READ = {
  encode(): never {
    throw new Error('unreachable: the scan handles of the record tables are read-only');
  },
  decode(bytes: Uint8Array, size: number): Uint8Array {
    return bytes.subarray(0, size);
  },
};

/**
 * Whether the newest segment a store's log made (`made`, readLogSegment()) is gone, given the
 * checkpoint's LSN and the first LSN of the newest segment in the log directory now (undefined:
 * none): one made after the checkpoint and older than none there took its acknowledged writes with
 * it. A restart of the log, the only other way segments go, happens when the log ends before the
 * checkpoint, that is when the newest segment the store made is not past it (STATE.md, "The log
 * directory"). Open, verify and repair all ask this.
 */
export function newestSegmentLost(made: number, checkpointLsn: number, newest: number | undefined): boolean {
  return made > checkpointLsn && (newest === undefined || newest < made);
}

/**
 * The checkpointed state of a store in one LMDB environment (memory-mapped copy-on-write B+trees:
 * a crash leaves the last committed transaction). It is written only by checkpoints; everything
 * newer lives in the write-ahead log and in memory until the next one.
 *
 * Sub-databases (STATE.md): `config` (StoreConfig, PCA model, trained flag, checkpoint), and `docs`
 * keyed by the id's UTF-8 bytes (arena reference of the text and the metadata; only for records
 * that have either). Codes and vector places are in the index file (INDEX.md).
 */
export class StateStore {
  private root!: RootDatabase;
  private config!: Database<Buffer, string>;
  private tables!: Record<RecordTable, Table>;
  /** The record tables again, read without a copy per value: for the passes over a whole table. */
  private scans!: Record<RecordTable, Table>;
  private writes = 0;
  /** A commit failed (commitFailure()): lmdb-js will not settle `flushed` again. */
  private failedCommit = false;
  /**
   * The writes of the commit whose body is running, read over the state meanwhile: through `layer`,
   * made on the first read (a body seldom reads) and brought up to date with `ops` at each.
   */
  private recording: { readonly ops: StateOp[]; layer: StateLayer | undefined; layered: number } | undefined;
  /**
   * A commit's writes that open found decided but maybe not all applied (state-intent.ts), read over
   * the state until the next commit applies them; `chunks`: the chunk values to remove then.
   */
  private pending: Decided | undefined;
  /** The commit running, which the next waits for: a commit is two transactions (STATE.md). */
  private serial: Promise<void> = Promise.resolve();

  /** The damage of a redo record set aside by an open with `dropDamagedRedo`. */
  readonly droppedRedo: MemstoreError | undefined;

  private constructor(readonly dir: string, dropDamagedRedo: boolean, readOnly: boolean) {
    this.attachSafely(openEnv(dir, statePath(dir), readOnly));
    try {
      this.loadIntent();
    } catch (e) {
      if (dropDamagedRedo && e instanceof MemstoreError && e.code === 'CORRUPTION') {
        this.droppedRedo = e;
        this.pending = decided([], this.chunksPresent(), this.unmarkedConfig(), true);
        return;
      }
      void this.root.close().catch(() => undefined);
      throw e;
    }
  }

  /** One past the highest chunk number of a redo record present, whatever the header says. */
  private chunksPresent(): number {
    let chunks = 0;
    for (const key of this.config.getKeys({ start: INTENT_CHUNK_PREFIX })) {
      if (!key.startsWith(INTENT_CHUNK_PREFIX)) break;
      const i = Number(key.slice(INTENT_CHUNK_PREFIX.length));
      if (Number.isSafeInteger(i) && i >= 0) chunks = Math.max(chunks, i + 1);
    }
    return chunks;
  }

  /**
   * Reads the header and chunks a commit cut short left (state-intent.ts): with a header, its writes
   * are the state from now on (read through `pending`, applied by the next commit); chunks without
   * one (a commit cut while writing them, or while removing them after its writes) only go.
   */
  private loadIntent(): void {
    const restored = this.unmarkedConfig();
    const header = this.getConfig(INTENT_KEY) as { chunks?: unknown } | undefined;
    let chunks = 0;
    let ops: StateOp[] = [];
    if (header !== undefined) {
      const n = header.chunks;
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) throw corruption(this.dir, 'config', utf8.encode(INTENT_KEY), 'malformed header of a commit cut short');
      const payloads: Uint8Array[] = [];
      for (let i = 0; i < n; i++) {
        const key = utf8.encode(intentChunkKey(i));
        const raw = this.config.getBinary(intentChunkKey(i));
        if (raw === undefined) throw corruption(this.dir, 'config', key, `chunk ${i} of ${n} of a commit cut short is missing`);
        payloads.push(unseal(this.dir, 'config', key, raw));
      }
      try {
        ops = opsOfChunks(payloads);
      } catch (e) {
        throw corruption(this.dir, 'config', utf8.encode(INTENT_KEY), 'the writes of a commit cut short do not decode', e);
      }
      chunks = n;
    } else if (restored !== undefined) {
      // The mark is written after the header, in the same transaction: a mark without one is damage.
      throw corruption(this.dir, 'config', utf8.encode(CONFIG_KEY), 'marked for a commit cut short whose record is missing');
    }
    // Chunks are written in ascending order and removed in descending order: what a cut leaves starts at 0.
    while (this.config.getBinary(intentChunkKey(chunks)) !== undefined) chunks++;
    if (header !== undefined || chunks > 0) this.pending = decided(ops, chunks, restored, true);
  }

  /**
   * The configuration as it was before a commit marked it (STATE.md, "A commit cut short": its
   * format version raised by REDO_VERSION_OFFSET while the commit's writes may be half applied, so
   * that a memstore that knows no redo record refuses the store), sealed; undefined when unmarked.
   */
  private unmarkedConfig(): Buffer | undefined {
    let config: { formatVersion?: unknown } | undefined;
    try {
      const raw = this.config.getBinary(CONFIG_KEY);
      const k = utf8.encode(CONFIG_KEY);
      config = raw === undefined ? undefined : (unpack(this.dir, 'config', k, unseal(this.dir, 'config', k, raw)) as { formatVersion?: unknown });
    } catch {
      // Damage of the configuration is readConfig()'s to report.
      return undefined;
    }
    const v = config?.formatVersion;
    if (typeof v !== 'number' || v < REDO_VERSION_OFFSET) return undefined;
    return seal(utf8.encode(CONFIG_KEY), packr.pack({ ...config, formatVersion: v - REDO_VERSION_OFFSET }));
  }

  /** Whether a commit cut short is waiting to be applied (loadIntent()); finishPending() applies it. */
  get hasPending(): boolean {
    return this.pending !== undefined;
  }

  /** Applies, durably, the writes of a commit cut short that open found (a commit of nothing else). */
  async finishPending(): Promise<void> {
    if (this.pending !== undefined) await this.commit(() => undefined);
  }

  private recordingLayer(): StateLayer | undefined {
    const r = this.recording;
    if (r === undefined) return undefined;
    r.layer ??= new StateLayer();
    for (; r.layered < r.ops.length; r.layered++) r.layer.set(r.ops[r.layered] as StateOp);
    return r.layer;
  }

  /** A value as the state has it: the running commit's writes first, then a commit cut short's, then LMDB. */
  private layered(config: string | undefined, key: Uint8Array | undefined): LayerValue {
    for (const layer of [this.recordingLayer(), this.pending?.layer]) {
      // A commit decided in this process is read through memory until it is applied (no layer).
      if (layer === undefined) continue;
      const v = config !== undefined ? layer.configValue(config) : layer.docValue(key as Uint8Array);
      if (v !== undefined) return v;
    }
    return undefined;
  }

  /**
   * attach(), with LMDB's refusals of the file's content as CORRUPTION naming it (a damaged flag of
   * a sub-database's entry is MDB_INCOMPATIBLE, a last page set too low MDB_PAGE_NOTFOUND: raw
   * lmdb-js errors, which the tools took for usage errors); LMDB's errors are negative, a system's
   * (EIO, ...) positive and IO.
   */
  private attachSafely(root: RootDatabase): void {
    try {
      this.attach(root);
    } catch (e) {
      void root.close().catch(() => undefined);
      const code = (e as { code?: unknown }).code;
      const lmdb = typeof code === 'number' && code < 0;
      throw new MemstoreError(lmdb ? 'CORRUPTION' : 'IO', `${statePath(this.dir)}: its sub-databases cannot be opened`, { file: statePath(this.dir), cause: e });
    }
  }

  private attach(root: RootDatabase): void {
    this.root = root;
    this.config = root.openDB<Buffer, string>({ name: 'config', encoding: 'binary' });
    const table = (name: RecordTable) => root.openDB<Buffer, Buffer | Uint8Array>({ name, encoding: 'binary', keyEncoding: 'binary' });
    this.tables = { docs: table('docs') };
    // `encoder` is an option of every database in lmdb-js, though its types list it for the root only.
    const scan = (name: RecordTable) => {
      const options = { name, keyEncoding: 'binary' as const, encoder: VIEW_OF_READ };
      return root.openDB<Buffer, Buffer | Uint8Array>(options);
    };
    this.scans = { docs: scan('docs') };
  }

  /**
   * Opens the state of the store in `dir`. A redo record that is damaged (a commit cut short whose
   * writes cannot be read back) is CORRUPTION, unless `dropDamagedRedo` (repair): it is then set
   * aside, `droppedRedo` says why, and the next commit removes it; the state is what LMDB holds.
   * `readOnly` (verify) opens LMDB read-only: nothing is written, and every commit fails.
   */
  static open(dir: string, options: { readonly dropDamagedRedo?: boolean; readonly readOnly?: boolean } = {}): StateStore {
    return new StateStore(dir, options.dropDamagedRedo === true, options.readOnly === true);
  }

  private getConfig(key: string): unknown {
    const layered = this.recording === undefined && this.pending === undefined ? undefined : this.layered(key, undefined);
    const raw = layered === undefined ? this.config.getBinary(key) : (layered ?? undefined);
    if (raw === undefined) return undefined;
    const k = utf8.encode(key);
    const value = unpack(this.dir, 'config', k, unseal(this.dir, 'config', k, raw));
    // Marked by a commit between its two transactions (commitNow()): the configuration is the unmarked one.
    const v = key === CONFIG_KEY ? (value as { formatVersion?: unknown } | null)?.formatVersion : undefined;
    return typeof v === 'number' && v >= REDO_VERSION_OFFSET ? { ...(value as object), formatVersion: v - REDO_VERSION_OFFSET } : value;
  }

  private putConfig(key: string, value: unknown): void {
    this.record({ table: 'config', key, value: seal(utf8.encode(key), packr.pack(value)) });
  }

  private removeConfig(key: string): void {
    this.record({ table: 'config', key, value: null });
  }

  /** The format version the configuration names, read without checking the rest of it; undefined when there is none to read. */
  formatVersionNamed(): number | undefined {
    try {
      const v = (this.getConfig(CONFIG_KEY) as { formatVersion?: unknown } | undefined)?.formatVersion;
      return typeof v === 'number' ? v : undefined;
    } catch {
      return undefined;
    }
  }

  readConfig(): StoreConfig | undefined {
    const v: unknown = this.getConfig(CONFIG_KEY);
    if (v === undefined) return undefined;
    const c = v as Partial<StoreConfig>;
    const k = utf8.encode(CONFIG_KEY);
    if (typeof c !== 'object' || c === null || typeof c.dim !== 'number' || typeof c.metric !== 'string' ||
        typeof c.codec !== 'string' || typeof c.keepFull !== 'boolean' || typeof c.formatVersion !== 'number') {
      throw corruption(this.dir, 'config', k, 'unreadable store configuration');
    }
    if (!READABLE_FORMAT_VERSIONS.includes(c.formatVersion)) {
      throw corruption(this.dir, 'config', k, `format version ${c.formatVersion}, this memstore reads ${READABLE_FORMAT_VERSIONS.join(' and ')}`);
    }
    if (c.pages !== undefined) {
      let pages: Readonly<PagesOptions> | false | undefined;
      try {
        pages = resolvePages(c.pages);
      } catch (e) {
        throw corruption(this.dir, 'config', k, 'unreadable page settings', e);
      }
      if (pages !== false && (pages?.from === undefined || pages.maxPage === undefined)) throw corruption(this.dir, 'config', k, 'page settings without from or maxPage');
    }
    return c as StoreConfig;
  }

  /** Replaces the configuration of an existing store (its `pages`, the one setting a reopen may change). */
  async writeConfig(config: StoreConfig): Promise<void> {
    await this.commit(() => this.putConfig(CONFIG_KEY, config));
  }

  /**
   * Writes a new store's configuration, its model's state (`trained`: true when nothing needs
   * fitting, no PCA) and an empty checkpoint, marked as a creation under way (readCreating()) until
   * markCreated() at the end of the open that made it.
   */
  async create(config: StoreConfig, trained: boolean): Promise<void> {
    await this.commit(() => {
      this.putConfig(CONFIG_KEY, config);
      this.putConfig(CREATING_KEY, true);
      this.putConfig(TRAINED_KEY, trained);
      this.putConfig(CHECKPOINT_KEY, { lsn: 0, arenaGeneration: 1, vectorGeneration: 1, indexGeneration: 1, indexBytes: 0, textLiveBytes: 0 } satisfies Checkpoint);
    });
  }

  readCheckpoint(): Checkpoint {
    const c = this.getConfig(CHECKPOINT_KEY) as Partial<Checkpoint> | undefined;
    if (c === undefined || !Number.isSafeInteger(c.lsn) || !Number.isSafeInteger(c.arenaGeneration) || !Number.isSafeInteger(c.vectorGeneration) ||
        !Number.isSafeInteger(c.indexGeneration) || !Number.isSafeInteger(c.indexBytes) || !Number.isSafeInteger(c.textLiveBytes) ||
        (c.records !== undefined && !Number.isSafeInteger(c.records)) || (c.idBytes !== undefined && !Number.isSafeInteger(c.idBytes)) ||
        (c.paged !== undefined && typeof c.paged !== 'boolean') ||
        (c.indexDigest !== undefined && !(Number.isInteger(c.indexDigest) && c.indexDigest >= 0 && c.indexDigest < 2 ** 32))) {
      throw corruption(this.dir, 'config', utf8.encode(CHECKPOINT_KEY), 'missing or malformed checkpoint');
    }
    return c as Checkpoint;
  }

  readTrained(): boolean {
    return this.getConfig(TRAINED_KEY) === true;
  }

  /**
   * Whether the open that created the store never finished (it failed after writing the
   * configuration: out of file descriptors, the process killed): no write was ever accepted, and
   * the next open that gives a `dim` creates the store again with its own options (STATE.md).
   */
  readCreating(): boolean {
    return this.getConfig(CREATING_KEY) === true;
  }

  /** Clears readCreating(), durably: the store's open succeeded, and its options are its own from now on. */
  async markCreated(): Promise<void> {
    await this.commit(() => this.removeConfig(CREATING_KEY));
  }

  /**
   * Whether the store's log directory was made and the store opened with it: from then on a log
   * directory that is not there was lost, and the acknowledged writes after the checkpoint with it
   * (STATE.md, "The log directory"). False for a store made before the mark existed, until it opens.
   */
  readLogMade(): boolean {
    return this.getConfig(LOG_MADE_KEY) === true;
  }

  /** Marks the log directory made (readLogMade()), durably. */
  async markLogMade(): Promise<void> {
    await this.commit(() => this.putConfig(LOG_MADE_KEY, true));
  }

  /**
   * The first LSN of the newest segment the store's log made (recorded once its file was durable,
   * before any record went into it), or undefined for a store made before the mark existed: a log
   * whose newest segment is older lost that one (STATE.md, "The log directory"). CORRUPTION when the
   * value is not a positive safe integer.
   */
  readLogSegment(): number | undefined {
    const v = this.getConfig(LOG_SEGMENT_KEY);
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw corruption(this.dir, 'config', utf8.encode(LOG_SEGMENT_KEY), 'the newest log segment is not a positive integer');
    return v;
  }

  /** Records `firstLsn` as the first LSN of the newest segment of the log (readLogSegment()), durably. */
  async markLogSegment(firstLsn: number): Promise<void> {
    await this.commit(() => this.putConfig(LOG_SEGMENT_KEY, firstLsn));
  }

  /**
   * The model of a trained store of `config`: PCA's, or an rq store's rotation. CORRUPTION when its
   * shape does not fit it: a structured rotation (`hadamard`) only in an rq store without PCA, of
   * format version 6, onto rotatedDim(dim) dimensions; any model of `config.dim` inputs.
   */
  readPca(config: StoreConfig): PcaModel | undefined {
    const v = this.getConfig(PCA_KEY) as PcaRecord | undefined;
    if (v === undefined) return undefined;
    const wrong = () => corruption(this.dir, 'config', utf8.encode(PCA_KEY), 'PCA model has the wrong shape');
    if (v.inDim !== config.dim) throw wrong();
    if (v.hadamard !== undefined && (config.pca !== null || !isRqCodec(config.codec) || config.formatVersion < FORMAT_VERSION || v.outDim !== rotatedDim(config.dim))) throw wrong();
    if (!(v.mean instanceof Uint8Array) || !(v.components instanceof Uint8Array) || v.mean.byteLength !== v.inDim * 4) throw wrong();
    // A variance is finite and not negative: anything else would make every rescoring bound a lie.
    if (v.residualVariance !== undefined && !(typeof v.residualVariance === 'number' && v.residualVariance >= 0 && v.residualVariance < Infinity)) throw wrong();
    const head = { inDim: v.inDim, outDim: v.outDim, mean: floatsOf(v.mean), explainedVariance: v.explainedVariance };
    const model = v.residualVariance === undefined ? head : { ...head, residualVariance: v.residualVariance };
    if (v.hadamard === undefined) {
      if (v.components.byteLength !== v.inDim * v.outDim * 4) throw wrong();
      return { ...model, components: floatsOf(v.components) };
    }
    // Its outDim is rotatedDim(dim), checked above.
    if (!(v.hadamard instanceof Uint8Array) || v.components.byteLength !== 0 || v.hadamard.byteLength !== hadamardSignBytes(v.outDim)) throw wrong();
    return { ...model, components: new Float32Array(0), hadamard: v.hadamard.slice() };
  }

  private docValue(key: Uint8Array, raw: Uint8Array): DocRecord {
    const payload = unseal(this.dir, 'docs', key, raw);
    const v = decodeWireDoc(payload) ?? (unpack(this.dir, 'docs', key, payload) as WireDoc | null);
    if (typeof v !== 'object' || v === null || (v.meta !== undefined && typeof v.meta !== 'string')) {
      throw corruption(this.dir, 'docs', key, 'document record is malformed');
    }
    const meta = v.meta === undefined ? undefined : parseMeta(v.meta);
    if (v.meta !== undefined && meta === undefined) throw corruption(this.dir, 'docs', key, 'metadata is not a JSON object');
    return docRecord(v.text, meta, v.meta);
  }

  /** The document of `id` as of the last checkpoint, or undefined; CORRUPTION (with `id`) when damaged. */
  getDoc(id: string): DocRecord | undefined {
    const key = keyBytes(id);
    const layered = this.recording === undefined && this.pending === undefined ? undefined : this.layered(undefined, key);
    const raw = layered === undefined ? this.tables.docs.getBinaryFast(key) : (layered ?? undefined);
    return raw === undefined ? undefined : this.docValue(key, raw);
  }

  /**
   * Every entry of a record table in cursor order. The pass goes through the table's `scans`
   * handle, so each value is a view of lmdb-js's one reused read buffer: `read` must copy what it
   * keeps, and a value it returns that views the buffer is valid only until the next step.
   */
  private *entries<T>(table: RecordTable, read: (key: Uint8Array, raw: Uint8Array) => T): IterableIterator<Entry<T>> {
    const layered = [this.pending?.layer, this.recordingLayer()].some((l) => l?.hasDocs === true);
    for (const { key, value } of layered ? this.layeredRange(table) : this.scans[table].getRange()) {
      const id = idOf(key);
      if (id === undefined) {
        yield { key, id, error: corruption(this.dir, table, key, 'key is not UTF-8') };
        continue;
      }
      try {
        yield { key, id, value: read(key, value) };
      } catch (e) {
        if (!(e instanceof MemstoreError)) throw e;
        yield { key, id, error: e };
      }
    }
  }

  /** The table's entries in key order with the layers' writes over them (a rare path: values are copies). */
  private *layeredRange(table: RecordTable): IterableIterator<{ key: Uint8Array; value: Uint8Array }> {
    const over = new StateLayer();
    for (const layer of [this.pending, this.recording]) for (const op of layer?.ops ?? []) if (op.table === 'docs') over.set(op);
    const writes = over.sortedDocs();
    let w = 0;
    for (const { key, value } of this.tables[table].getRange()) {
      for (; w < writes.length && Buffer.compare((writes[w] as [Uint8Array, Buffer | null])[0], key) < 0; w++) {
        const [k, v] = writes[w] as [Uint8Array, Buffer | null];
        if (v !== null) yield { key: k, value: v };
      }
      const next = writes[w];
      if (next !== undefined && Buffer.compare(next[0], key) === 0) {
        w++;
        if (next[1] !== null) yield { key, value: next[1] };
        continue;
      }
      yield { key, value };
    }
    for (; w < writes.length; w++) {
      const [k, v] = writes[w] as [Uint8Array, Buffer | null];
      if (v !== null) yield { key: k, value: v };
    }
  }

  iterateDocs(): IterableIterator<Entry<DocRecord>> {
    return this.entries('docs', (key, raw) => this.docValue(key, raw));
  }

  /** The stored bytes of `key` in each record table that has it (copies), for the repair report. */
  rawValues(key: Uint8Array): Partial<Record<RecordTable, Uint8Array>> {
    const out: Partial<Record<RecordTable, Uint8Array>> = {};
    for (const table of RECORD_TABLES) {
      const raw = this.tables[table].getBinary(key);
      if (raw !== undefined) out[table] = Uint8Array.from(raw);
    }
    return out;
  }

  /** Removes these keys from every record table in one transaction (repair drops damaged records with it). */
  async removeKeys(keys: Iterable<Uint8Array>): Promise<void> {
    await this.commit(() => {
      for (const key of keys) for (const table of RECORD_TABLES) this.remove(table, key);
    });
  }

  /**
   * Reads and checks every value of every sub-database; for `memstore verify`. Returns the ids of
   * the sound `docs` values (to check against the index file's documented records) and the problems:
   * a damaged value, a key that is not UTF-8, keys out of order (a damaged B-tree, reported once).
   */
  verifyAll(): { docs: Set<string>; damagedDocs: Map<string, MemstoreError>; problems: MemstoreError[] } {
    const problems: MemstoreError[] = [];
    for (const key of [CONFIG_KEY, CHECKPOINT_KEY, TRAINED_KEY, PCA_KEY, LOG_MADE_KEY, LOG_SEGMENT_KEY]) {
      try {
        if (key === LOG_SEGMENT_KEY) this.readLogSegment();
        else this.getConfig(key);
      } catch (e) {
        problems.push(asCorruption(this.dir, e));
      }
    }
    const docs = new Set<string>();
    const damagedDocs = new Map<string, MemstoreError>();
    let previous: Uint8Array | undefined;
    let disorder = false;
    try {
      for (const entry of this.iterateDocs()) {
        if (previous !== undefined && Buffer.compare(entry.key, previous) <= 0 && !disorder) {
          disorder = true;
          problems.push(corruption(this.dir, 'docs', entry.key, `keys out of order after ${keyName(previous)}: the B-tree is damaged`));
        }
        previous = entry.key;
        if (entry.error === undefined) docs.add(entry.id);
        else if (entry.id !== undefined) damagedDocs.set(entry.id, entry.error);
        else problems.push(entry.error);
      }
    } catch (e) {
      problems.push(asCorruption(this.dir, e));
    }
    return { docs, damagedDocs, problems };
  }

  /**
   * Writes one checkpoint atomically and resolves once it is flushed to disk. It is one LMDB child
   * transaction: if any write fails (a key LMDB refuses, a full disk), none of them stays.
   */
  async commitCheckpoint(w: CheckpointWrite): Promise<void> {
    await this.commit(() => {
      if (w.training !== undefined) {
        if (w.training.pca !== undefined) {
          const p = w.training.pca;
          const record: PcaRecord = { inDim: p.inDim, outDim: p.outDim, mean: bytesOf(p.mean), components: bytesOf(p.components), explainedVariance: p.explainedVariance };
          if (p.residualVariance !== undefined) record.residualVariance = p.residualVariance;
          if (p.hadamard !== undefined) {
            record.hadamard = p.hadamard;
            // Readers of version 5 cannot apply the rotation: they must refuse the store.
            const config = this.readConfig();
            if (config !== undefined && config.formatVersion < FORMAT_VERSION) this.putConfig(CONFIG_KEY, { ...config, formatVersion: FORMAT_VERSION });
          }
          this.putConfig(PCA_KEY, record);
        }
        this.putConfig(TRAINED_KEY, true);
      }
      // In key order: runs of new keys then fill B-tree pages as appends do, where arrival order
      // splits pages half empty.
      const ordered = [...w.docs].map(([id, doc]) => ({ key: utf8.encode(id), doc })).sort((a, b) => Buffer.compare(a.key, b.key));
      for (const { key, doc } of ordered) {
        if (doc === null || !hasDoc(doc)) this.remove('docs', key);
        else this.putDoc(key, doc);
      }
      if (w.movedText !== undefined) {
        for (const [id, ref] of w.movedText) {
          const doc = this.getDoc(id);
          if (doc !== undefined) this.putDoc(utf8.encode(id), { ...doc, text: ref });
        }
      }
      this.putConfig(CHECKPOINT_KEY, w.checkpoint);
    });
  }

  private putDoc(key: Uint8Array, doc: DocRecord): void {
    const wire: WireDoc = {};
    if (doc.text !== undefined) wire.text = doc.text;
    if (doc.metaJson !== undefined) wire.meta = doc.metaJson;
    const k = Uint8Array.from(key);
    // Made when written, twice (state-intent.ts, StateValue): the document is held anyway.
    this.record({ table: 'docs', key: k, value: () => seal(k, packr.pack(wire)) });
  }

  /** A write of the commit whose body is running: made in its transaction, once the body is done. */
  private record(op: StateOp): void {
    stateWriteHooks.beforeWrite?.(this.writes++);
    if (this.recording === undefined) throw new Error('unreachable: a write to the state outside a commit');
    this.recording.ops.push(op);
  }

  private remove(table: RecordTable, key: Uint8Array): void {
    this.record({ table, key: Uint8Array.from(key), value: null });
  }

  /**
   * One write to LMDB, within the commit's transaction. The synchronous forms: put() and remove()
   * return a promise each, which lmdb-js rejects when the commit fails (a state file that cannot
   * grow), and nothing awaited them: unhandled rejections, which end a Node process (a hostile pass).
   */
  private write(op: StateOp): void {
    const value = valueOf(op);
    if (op.table === 'config') {
      if (value === null) this.config.removeSync(op.key);
      else this.config.putSync(op.key, value);
    } else if (value === null) {
      this.tables[op.table].removeSync(op.key);
    } else {
      this.tables[op.table].putSync(op.key, value);
    }
  }

  /**
   * One LMDB transaction of `writes`, taken as it goes; `count` gives their number, asked only by the
   * test seam `cut`, which may make it commit fewer (what lmdb-js does when its thread is terminated).
   */
  private async transact(writes: Iterable<StateOp>, count: () => number): Promise<void> {
    const planned = stateWriteHooks.cut === undefined ? Infinity : count();
    const chosen = stateWriteHooks.cut?.(planned);
    const made = Math.min(planned, chosen ?? planned);
    // A child transaction is aborted whole when its body throws; a plain lmdb-js transaction
    // would commit the writes made before the throw.
    await this.root.childTransaction(() => {
      let i = 0;
      for (const w of writes) {
        if (i++ >= made) break;
        this.write(w);
      }
    });
    if (chosen !== undefined) stateWriteHooks.afterCut?.();
    if (made < planned) {
      throw new Error(`a transaction cut after ${made} of its ${planned} writes (test seam)`);
    }
  }

  /**
   * The first transaction of a commit of more than one write: its chunks (encoded one at a time),
   * the header, and the configuration marked. From its commit on, the commit is decided.
   */
  private *redoRecord(ops: readonly StateOp[], marked: Buffer | undefined, chunks: { count: number }): IterableIterator<StateOp> {
    for (const payload of encodeChunks(ops)) {
      const key = intentChunkKey(chunks.count++);
      yield { table: 'config', key, value: seal(utf8.encode(key), payload) };
    }
    yield { table: 'config', key: INTENT_KEY, value: seal(utf8.encode(INTENT_KEY), packr.pack({ chunks: chunks.count })) };
    if (marked !== undefined) yield { table: 'config', key: CONFIG_KEY, value: marked };
  }

  /** The second transaction: the decided writes, the configuration unmarked, then the record removed (header first, chunks from the last). */
  private *decidedWrites(d: Decided): IterableIterator<StateOp> {
    yield* d.ops;
    if (d.config !== undefined) yield { table: 'config', key: CONFIG_KEY, value: d.config };
    yield { table: 'config', key: INTENT_KEY, value: null };
    for (let i = d.chunks - 1; i >= 0; i--) yield { table: 'config', key: intentChunkKey(i), value: null };
  }

  private async applyDecided(d: Decided): Promise<void> {
    await this.transact(this.decidedWrites(d), () => d.ops.length + (d.config === undefined ? 0 : 1) + 1 + d.chunks);
  }

  private async commit(body: () => void): Promise<void> {
    this.writes = 0;
    const recording = { ops: [] as StateOp[], layer: undefined, layered: 0 };
    try {
      this.recording = recording;
      try {
        body();
      } finally {
        this.recording = undefined;
      }
    } catch (e) {
      throw new MemstoreError('IO', `write to ${statePath(this.dir)} failed`, { cause: e });
    }
    const run = this.serial.then(() => this.commitNow(recording.ops));
    this.serial = run.catch(() => undefined);
    await run;
  }

  /**
   * A commit of one write is that write. One of more goes in two transactions (STATE.md, "A commit
   * cut short"): the redo record, then the writes and the record's removal; each holds only its own
   * writes in LMDB's memory (one transaction of both held every value three times: a hostile pass).
   */
  private async commitNow(ops: readonly StateOp[]): Promise<void> {
    let decidedHere: Decided | undefined;
    try {
      if (this.pending !== undefined) {
        await this.applyDecided(this.pending);
        this.pending = undefined;
      }
      if (ops.length <= 1) {
        await this.transact(ops, () => ops.length);
      } else {
        const current = this.config.getBinary(CONFIG_KEY);
        const unmarked = current === undefined ? undefined : Buffer.from(current);
        const marked = unmarked === undefined ? undefined : this.markedConfig(unmarked);
        const chunks = { count: 0 };
        await this.transact(this.redoRecord(ops, marked, chunks), () => intentChunks(ops).length + 1 + (marked === undefined ? 0 : 1));
        decidedHere = decided(ops, chunks.count, unmarked, false);
        await this.applyDecided(decidedHere);
      }
      stateWriteHooks.afterCommit?.();
      await this.root.flushed;
    } catch (e) {
      // Decided but not applied: what the state is from now on, for reads and the next commit.
      if (decidedHere !== undefined && this.pending === undefined) this.pending = decided(decidedHere.ops, decidedHere.chunks, decidedHere.config, true);
      throw new MemstoreError('IO', `write to ${statePath(this.dir)} failed`, { cause: this.commitFailure(e) });
    }
  }

  /** `unmarked` (the sealed configuration) with its format version raised by REDO_VERSION_OFFSET. */
  private markedConfig(unmarked: Buffer): Buffer {
    const config = unpack(this.dir, 'config', utf8.encode(CONFIG_KEY), unseal(this.dir, 'config', utf8.encode(CONFIG_KEY), unmarked)) as { formatVersion: number };
    return seal(utf8.encode(CONFIG_KEY), packr.pack({ ...config, formatVersion: config.formatVersion + REDO_VERSION_OFFSET }));
  }

  /**
   * `e` from a transaction; when it is lmdb-js's "Commit failed", the store's state file is marked
   * as failed, and the promise of the underlying error that lmdb-js hangs on it (`commitError`,
   * rejected by its write thread) is handled: left alone it was an unhandled rejection.
   */
  private commitFailure(e: unknown): unknown {
    const underlying = (e as { commitError?: unknown } | null)?.commitError;
    if (underlying instanceof Promise) {
      this.failedCommit = true;
      underlying.catch(() => undefined);
    }
    return e;
  }

  /** Bytes of the state file's pages in use. */
  usedBytes(): number {
    return [this.root, this.tables.docs, this.config].reduce((sum, db) => sum + pagesBytes(db.getStats()), 0);
  }

  /**
   * Rewrites the environment densely: every sub-database is copied in key order into a fresh
   * environment with LMDB's append mode, which fills each page (LMDB never shrinks its file, and
   * after deletions it keeps half-empty pages, which even its compacting copy preserves). The copy is
   * fsynced and renamed over the old file, and the directory fsynced, so a crash leaves one or the
   * other, each complete.
   */
  async compactFile(): Promise<void> {
    await this.rebuild(undefined);
  }

  /**
   * Rebuilds the environment from a sequential read of every entry, keeping only record-table
   * entries whose key is UTF-8 and whose seal holds; returns the ones dropped, for the repair report.
   * A damaged key can break LMDB's key order, and with it lookups and deletions of its neighbours;
   * the copy puts every kept entry back in order.
   */
  async rebuildWithoutDamage(): Promise<{ table: RecordTable; key: Uint8Array; value: Uint8Array }[]> {
    const dropped: { table: RecordTable; key: Uint8Array; value: Uint8Array }[] = [];
    await this.rebuild((table, key, value) => {
      if (idOf(key) !== undefined) {
        try {
          unseal(this.dir, table, key, value);
          return true;
        } catch {
          // Dropped below.
        }
      }
      dropped.push({ table, key: Uint8Array.from(key), value: Uint8Array.from(value) });
      return false;
    });
    return dropped;
  }

  private async rebuild(keep: ((table: RecordTable, key: Uint8Array, value: Uint8Array) => boolean) | undefined): Promise<void> {
    // The copy is of LMDB's values: a commit cut short goes in first.
    await this.finishPending();
    const path = realStatePath(this.dir);
    const tmp = stateCopyPath(path);
    removeStateCopy(tmp);
    let closed = false;
    try {
      const fresh = openEnv(this.dir, tmp);
      try {
        const copy = async <K extends string | Uint8Array>(name: string, keyEncoding: 'binary' | undefined, filter: ((key: K, value: Uint8Array) => boolean) | undefined) => {
          const options = { name, encoding: 'binary' as const, ...(keyEncoding === undefined ? {} : { keyEncoding }) };
          const from = this.root.openDB<Buffer, K>(options);
          const to = fresh.openDB<Buffer, K>(options);
          const after = (a: K, b: K) => (typeof a === 'string' ? a > (b as string) : Buffer.compare(a as Uint8Array, b as Uint8Array) > 0);
          let largest: K | undefined;
          let batch: [K, Buffer][] = [];
          // Asynchronous transactions: a synchronous one holds a lock of lmdb-js that its clean-up
          // takes again when the thread is terminated meanwhile, and worker.terminate() never returned.
          const flush = async () => {
            const entries = batch;
            batch = [];
            await fresh.transaction(() => {
              for (const [key, value] of entries) {
                // Append where the source is in order (always, unless a key was damaged): a plain put otherwise.
                const inOrder = largest === undefined || after(key, largest);
                if (inOrder) largest = key;
                // lmdb-js declares putSync void, but returns false for a refused put (an append out of order).
                const written = to.putSync(key, value, inOrder ? { append: true } : {}) as unknown;
                if (written === false) throw new Error(`the copy refused a key of ${name}`);
              }
            });
          };
          for (const { key, value } of from.getRange()) {
            if (filter !== undefined && !filter(key, value)) continue;
            batch.push([key, Buffer.from(value)]);
            if (batch.length >= 1024) await flush();
          }
          await flush();
        };
        await copy<string>('config', undefined, undefined);
        for (const table of RECORD_TABLES) await copy<Uint8Array>(table, 'binary', keep === undefined ? undefined : (key, value) => keep(table, key, value));
        await fresh.flushed;
      } finally {
        await fresh.close();
      }
      await this.root.close();
      closed = true;
      renameSync(tmp, path);
      syncDirSync(dirname(path));
    } catch (e) {
      throw new MemstoreError('IO', `rewriting ${path} failed`, { cause: e });
    } finally {
      removeStateCopy(tmp);
      if (closed) this.attachSafely(openEnv(this.dir));
    }
  }

  async close(): Promise<void> {
    try {
      // After a failed commit lmdb-js settles neither `flushed` nor close(), which waits for the
      // flush: the store's close() waited for ever, holding its lock (found by a hostile pass).
      // Nothing that failed is waiting to be flushed; the environment is then left to the process's
      // end, closed by lmdb-js if the flush it waits for ever comes.
      if (this.failedCommit) {
        void this.root.close().catch(() => undefined);
        return;
      }
      await this.root.flushed;
      await this.root.close();
    } catch (e) {
      throw new MemstoreError('IO', `closing ${statePath(this.dir)} failed`, { cause: e });
    }
  }
}

function asCorruption(dir: string, e: unknown): MemstoreError {
  if (e instanceof MemstoreError) return e;
  return new MemstoreError('CORRUPTION', `${FILES.state} in ${dir}: unreadable`, { file: statePath(dir), cause: e });
}

function pagesBytes(stats: unknown): number {
  const s = stats as { pageSize?: number; treeBranchPageCount?: number; treeLeafPageCount?: number; overflowPages?: number };
  return (s.pageSize ?? 4096) * ((s.treeBranchPageCount ?? 0) + (s.treeLeafPageCount ?? 0) + (s.overflowPages ?? 0));
}
