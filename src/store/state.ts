import { renameSync, rmSync } from 'node:fs';
import { open, type Database, type RootDatabase } from 'lmdb';
import { Packr } from 'msgpackr';
import { crc32c, maskCrc, unmaskCrc } from '../../wal/crc32c.js';
import type { BlobRef } from '../arena/arena.js';
import { MemstoreError } from '../errors.js';
import type { CodecName } from '../codec/codec.js';
import type { Metric, PcaOption } from '../options.js';
import type { PcaModel } from '../pca/pca.js';
import { FILES, statePath, syncDirSync } from './files.js';

/** Bumped when the meaning of persisted records changes; older readers refuse newer stores. */
export const FORMAT_VERSION = 2;

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
}

/** Where the last checkpoint left the log and the arena: replay starts after `lsn`. */
export interface Checkpoint {
  readonly lsn: number;
  readonly arenaGeneration: number;
}

/** The document part of a record: metadata inline (filters read it on the search path), text in the arena. */
export interface DocRecord {
  readonly text?: BlobRef;
  readonly meta?: Record<string, unknown>;
}

/** The whole persisted state of one id at a checkpoint. */
export interface RecordState {
  readonly full: Float32Array | undefined;
  readonly code: { readonly code: Uint8Array; readonly scale: number } | undefined;
  readonly doc: DocRecord | undefined;
}

/** Everything one checkpoint writes, in one LMDB transaction. */
export interface CheckpointWrite {
  readonly checkpoint: Checkpoint;
  /** id → its state, or null when deleted since the last checkpoint. */
  readonly records: ReadonlyMap<string, RecordState | null>;
  /** Set when PCA was fitted since the last checkpoint: the model, and the new code of every record. */
  readonly training?: { readonly pca: PcaModel | undefined; readonly codes: ReadonlyMap<string, { code: Uint8Array; scale: number }>; readonly dropFull: boolean };
  /** Arena references moved by a garbage collection. */
  readonly movedText?: ReadonlyMap<string, BlobRef>;
}

interface PcaRecord {
  inDim: number;
  outDim: number;
  mean: Uint8Array;
  components: Uint8Array;
  explainedVariance: number;
}

const CONFIG_KEY = 'config';
const PCA_KEY = 'pca';
const TRAINED_KEY = 'trained';
const CHECKPOINT_KEY = 'checkpoint';

// Plain maps, no record extensions: what is written must decode the same in later versions.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });
const utf8 = new TextEncoder();

let keyScratch = new Uint8Array(256);

/** The UTF-8 bytes of `key` in a reused buffer (valid until the next call): seals run on every read. */
function keyBytes(key: string): Uint8Array {
  if (keyScratch.length < key.length * 3) keyScratch = new Uint8Array(key.length * 3);
  return keyScratch.subarray(0, utf8.encodeInto(key, keyScratch).written);
}

/**
 * Every value is stored as `masked CRC-32C (4 bytes LE) | payload`, the CRC covering the key's
 * UTF-8 bytes and then the payload. LMDB checks no data, so this is what turns a flipped bit (in a
 * value, or in a key, which would move a value to another id) into CORRUPTION instead of wrong data.
 */
function seal(key: string, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + payload.byteLength);
  out.writeUInt32LE(maskCrc(crc32c(payload, 0, payload.byteLength, crc32c(keyBytes(key)))), 0);
  out.set(payload, 4);
  return out;
}

/** The payload of a sealed value, or CORRUPTION naming the sub-database and key. */
function unseal(dir: string, where: string, key: string, value: Uint8Array): Uint8Array {
  if (value.byteLength < 4) throw corruption(dir, `${where}/${key}`, 'value shorter than its checksum');
  const payload = value.subarray(4);
  const stored = unmaskCrc(new DataView(value.buffer, value.byteOffset, 4).getUint32(0, true));
  if (stored !== crc32c(payload, 0, payload.byteLength, crc32c(keyBytes(key)))) throw corruption(dir, `${where}/${key}`, 'checksum mismatch');
  return payload;
}

function unpack(dir: string, where: string, key: string, payload: Uint8Array): unknown {
  try {
    return packr.unpack(payload);
  } catch (e) {
    throw corruption(dir, `${where}/${key}`, 'value does not decode', e);
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

function corruption(dir: string, key: string, what: string, cause?: unknown): MemstoreError {
  return new MemstoreError('CORRUPTION', `${FILES.state} in ${dir}: ${what} (key ${key})`, { file: statePath(dir), offset: key, cause });
}

/**
 * 16 KiB pages: a 512-d float32 vector (2 KiB and its seal) fits inline, seven to a page, where 4 KiB
 * pages would give each its own overflow page and double the file.
 */
function openEnv(dir: string, path = statePath(dir)): RootDatabase {
  try {
    // Checkpoints are the only writers and each awaits its flush, so LMDB's own durability is all on.
    return open({ path, maxDbs: 8, compression: false, pageSize: 16384 });
  } catch (e) {
    throw new MemstoreError('IO', `cannot open ${path}`, { cause: e });
  }
}

/**
 * The checkpointed state of a store in one LMDB environment (memory-mapped copy-on-write B+trees:
 * a crash leaves the last committed transaction). It is written only by checkpoints; everything
 * newer lives in the write-ahead log and in memory until the next one.
 *
 * Sub-databases: `config` (StoreConfig, PCA model, trained flag, checkpoint), `full` (id → raw
 * float32 LE of the vector as given), `codes` (id → code bytes and scale, once trained), `docs`
 * (id → arena reference of the text and the metadata).
 */
export class StateStore {
  private root!: RootDatabase;
  private config!: Database<Buffer, string>;
  private full!: Database<Buffer, string>;
  private codes!: Database<Buffer, string>;
  private docs!: Database<Buffer, string>;

  private constructor(readonly dir: string) {
    this.attach(openEnv(dir));
  }

  private attach(root: RootDatabase): void {
    this.root = root;
    this.config = root.openDB<Buffer, string>({ name: 'config', encoding: 'binary' });
    this.full = root.openDB<Buffer, string>({ name: 'full', encoding: 'binary' });
    this.codes = root.openDB<Buffer, string>({ name: 'codes', encoding: 'binary' });
    this.docs = root.openDB<Buffer, string>({ name: 'docs', encoding: 'binary' });
  }

  static open(dir: string): StateStore {
    return new StateStore(dir);
  }

  private getConfig(key: string): unknown {
    const raw = this.config.getBinary(key);
    return raw === undefined ? undefined : unpack(this.dir, 'config', key, unseal(this.dir, 'config', key, raw));
  }

  private putConfig(key: string, value: unknown): void {
    this.config.put(key, seal(key, packr.pack(value)));
  }

  readConfig(): StoreConfig | undefined {
    const v: unknown = this.getConfig(CONFIG_KEY);
    if (v === undefined) return undefined;
    const c = v as Partial<StoreConfig>;
    if (typeof c !== 'object' || c === null || typeof c.dim !== 'number' || typeof c.metric !== 'string' ||
        typeof c.codec !== 'string' || typeof c.keepFull !== 'boolean' || typeof c.formatVersion !== 'number') {
      throw corruption(this.dir, CONFIG_KEY, 'unreadable store configuration');
    }
    if (c.formatVersion !== FORMAT_VERSION) {
      throw corruption(this.dir, CONFIG_KEY, `format version ${c.formatVersion}, this memstore reads ${FORMAT_VERSION}`);
    }
    return c as StoreConfig;
  }

  /** Writes the configuration of a new store; `trained` is true when nothing needs fitting (no PCA). */
  async create(config: StoreConfig, trained: boolean): Promise<void> {
    await this.commit(() => {
      this.putConfig(CONFIG_KEY, config);
      this.putConfig(TRAINED_KEY, trained);
      this.putConfig(CHECKPOINT_KEY, { lsn: 0, arenaGeneration: 1 } satisfies Checkpoint);
    });
  }

  readCheckpoint(): Checkpoint {
    const c = this.getConfig(CHECKPOINT_KEY) as Partial<Checkpoint> | undefined;
    if (c === undefined || !Number.isSafeInteger(c.lsn) || !Number.isSafeInteger(c.arenaGeneration)) {
      throw corruption(this.dir, CHECKPOINT_KEY, 'missing or malformed checkpoint');
    }
    return c as Checkpoint;
  }

  readTrained(): boolean {
    return this.getConfig(TRAINED_KEY) === true;
  }

  readPca(): PcaModel | undefined {
    const v = this.getConfig(PCA_KEY) as PcaRecord | undefined;
    if (v === undefined) return undefined;
    if (!(v.mean instanceof Uint8Array) || !(v.components instanceof Uint8Array) ||
        v.mean.byteLength !== v.inDim * 4 || v.components.byteLength !== v.inDim * v.outDim * 4) {
      throw corruption(this.dir, PCA_KEY, 'PCA model has the wrong shape');
    }
    return { inDim: v.inDim, outDim: v.outDim, mean: floatsOf(v.mean), components: floatsOf(v.components), explainedVariance: v.explainedVariance };
  }

  /** The full-precision vector of `id` as of the last checkpoint, or undefined. */
  getFull(id: string, dim: number): Float32Array | undefined {
    // The fast read returns LMDB's buffer without a copy (valid until the next read); fullValue copies once.
    const b = this.full.getBinaryFast(id);
    return b === undefined ? undefined : this.fullValue(id, b, dim);
  }

  private fullValue(id: string, raw: Uint8Array, dim: number): Float32Array {
    const b = unseal(this.dir, 'full', id, raw);
    if (b.byteLength !== dim * 4) throw corruption(this.dir, `full/${id}`, `vector of ${b.byteLength} bytes, expected ${dim * 4}`);
    return floatsOf(b);
  }

  private codeValue(id: string, raw: Uint8Array, codeBytes: number): { code: Uint8Array; scale: number } {
    const b = unseal(this.dir, 'codes', id, raw);
    if (b.byteLength !== 4 + codeBytes) throw corruption(this.dir, `codes/${id}`, `code of ${b.byteLength - 4} bytes, expected ${codeBytes}`);
    return { scale: new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true), code: b.slice(4) };
  }

  private docValue(id: string, raw: Uint8Array): DocRecord {
    const v = unpack(this.dir, 'docs', id, unseal(this.dir, 'docs', id, raw));
    if (typeof v !== 'object' || v === null) throw corruption(this.dir, `docs/${id}`, 'document record is malformed');
    return v as DocRecord;
  }

  getDoc(id: string): DocRecord | undefined {
    const raw = this.docs.getBinary(id);
    return raw === undefined ? undefined : this.docValue(id, raw);
  }

  *iterateFull(dim: number): IterableIterator<{ id: string; vector: Float32Array }> {
    for (const { key, value } of this.full.getRange()) yield { id: key, vector: this.fullValue(key, value, dim) };
  }

  *iterateCodes(codeBytes: number): IterableIterator<{ id: string; code: Uint8Array; scale: number }> {
    for (const { key, value } of this.codes.getRange()) yield { id: key, ...this.codeValue(key, value, codeBytes) };
  }

  *iterateDocs(): IterableIterator<{ id: string; doc: DocRecord }> {
    for (const { key, value } of this.docs.getRange()) yield { id: key, doc: this.docValue(key, value) };
  }

  /** Reads and checks every value of every sub-database; for `memstore verify`. */
  verifyAll(dim: number, codeBytes: number | undefined): { records: number; problems: MemstoreError[] } {
    const problems: MemstoreError[] = [];
    let records = 0;
    const check = (fn: () => void) => {
      try {
        fn();
      } catch (e) {
        if (e instanceof MemstoreError) problems.push(e);
        else problems.push(new MemstoreError('CORRUPTION', `${FILES.state} in ${this.dir}: unreadable`, { file: statePath(this.dir), cause: e }));
      }
    };
    for (const key of [CONFIG_KEY, CHECKPOINT_KEY, TRAINED_KEY, PCA_KEY]) check(() => this.getConfig(key));
    check(() => {
      for (const { key, value } of this.full.getRange()) {
        records++;
        check(() => this.fullValue(key, value, dim));
      }
      for (const { key, value } of this.codes.getRange()) {
        records++;
        check(() => (codeBytes === undefined ? unseal(this.dir, 'codes', key, value) : this.codeValue(key, value, codeBytes)));
      }
      for (const { key, value } of this.docs.getRange()) {
        records++;
        check(() => this.docValue(key, value));
      }
    });
    return { records, problems };
  }

  /** Writes one checkpoint atomically and resolves once it is flushed to disk. */
  async commitCheckpoint(w: CheckpointWrite): Promise<void> {
    await this.commit(() => {
      if (w.training !== undefined) {
        if (w.training.pca !== undefined) {
          const p = w.training.pca;
          this.putConfig(PCA_KEY, { inDim: p.inDim, outDim: p.outDim, mean: bytesOf(p.mean), components: bytesOf(p.components), explainedVariance: p.explainedVariance } satisfies PcaRecord);
        }
        for (const [id, c] of w.training.codes) this.putCode(id, c);
        if (w.training.dropFull) for (const { key } of this.full.getRange()) this.full.remove(key);
        this.putConfig(TRAINED_KEY, true);
      }
      for (const [id, r] of w.records) {
        if (r === null) {
          this.full.remove(id);
          this.codes.remove(id);
          this.docs.remove(id);
          continue;
        }
        if (r.full !== undefined) this.full.put(id, seal(id, bytesOf(r.full)));
        else this.full.remove(id);
        if (r.code !== undefined) this.putCode(id, r.code);
        if (r.doc !== undefined) this.docs.put(id, seal(id, packr.pack(r.doc)));
        else this.docs.remove(id);
      }
      if (w.movedText !== undefined) {
        for (const [id, ref] of w.movedText) {
          const doc = this.getDoc(id);
          if (doc !== undefined) this.docs.put(id, seal(id, packr.pack({ ...doc, text: ref })));
        }
      }
      this.putConfig(CHECKPOINT_KEY, w.checkpoint);
    });
  }

  private putCode(id: string, c: { code: Uint8Array; scale: number }): void {
    const payload = new Uint8Array(4 + c.code.byteLength);
    new DataView(payload.buffer).setFloat32(0, c.scale, true);
    payload.set(c.code, 4);
    this.codes.put(id, seal(id, payload));
  }

  private async commit(body: () => void): Promise<void> {
    try {
      await this.root.transaction(body);
      await this.root.flushed;
    } catch (e) {
      throw new MemstoreError('IO', `write to ${statePath(this.dir)} failed`, { cause: e });
    }
  }

  /** Bytes of the state file's pages in use. */
  usedBytes(): number {
    return [this.root, this.full, this.codes, this.docs, this.config].reduce((sum, db) => sum + pagesBytes(db.getStats()), 0);
  }

  /**
   * Rewrites the environment densely: every sub-database is copied in key order into a fresh
   * environment with LMDB's append mode, which fills each page (LMDB never shrinks its file, and
   * after deletions it keeps half-empty pages, which even its compacting copy preserves). The copy is
   * fsynced and renamed over the old file, and the directory fsynced, so a crash leaves one or the
   * other, each complete.
   */
  async compactFile(): Promise<void> {
    const path = statePath(this.dir);
    const tmp = `${path}.compact`;
    rmSync(tmp, { force: true });
    rmSync(`${tmp}-lock`, { force: true });
    let closed = false;
    try {
      const fresh = openEnv(this.dir, tmp);
      try {
        for (const name of ['config', 'full', 'codes', 'docs']) {
          const from = this.root.openDB<Buffer, string>({ name, encoding: 'binary' });
          const to = fresh.openDB<Buffer, string>({ name, encoding: 'binary' });
          let batch: [string, Buffer][] = [];
          const flush = () => {
            const entries = batch;
            batch = [];
            fresh.transactionSync(() => {
              for (const [key, value] of entries) to.putSync(key, value, { append: true });
            });
          };
          for (const { key, value } of from.getRange()) {
            batch.push([key, Buffer.from(value)]);
            if (batch.length >= 1024) flush();
          }
          flush();
        }
        await fresh.flushed;
      } finally {
        await fresh.close();
      }
      await this.root.close();
      closed = true;
      renameSync(tmp, path);
      syncDirSync(this.dir);
    } catch (e) {
      throw new MemstoreError('IO', `compacting ${path} failed`, { cause: e });
    } finally {
      rmSync(tmp, { force: true });
      rmSync(`${tmp}-lock`, { force: true });
      if (closed) this.attach(openEnv(this.dir));
    }
  }

  async close(): Promise<void> {
    try {
      await this.root.flushed;
      await this.root.close();
    } catch (e) {
      throw new MemstoreError('IO', `closing ${statePath(this.dir)} failed`, { cause: e });
    }
  }
}

function pagesBytes(stats: unknown): number {
  const s = stats as { pageSize?: number; treeBranchPageCount?: number; treeLeafPageCount?: number; overflowPages?: number };
  return (s.pageSize ?? 4096) * ((s.treeBranchPageCount ?? 0) + (s.treeLeafPageCount ?? 0) + (s.overflowPages ?? 0));
}
