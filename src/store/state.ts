import { open, type Database, type RootDatabase } from 'lmdb';
import { MemstoreError } from '../errors.js';
import type { CodecName } from '../codec/codec.js';
import type { Durability, Metric, PcaOption } from '../options.js';
import type { PcaModel } from '../pca/pca.js';
import { FILES, statePath } from './files.js';

/** Bumped when the meaning of persisted records changes; older readers refuse newer stores. */
export const FORMAT_VERSION = 1;

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

export interface Doc {
  readonly text?: string;
  readonly meta?: Record<string, unknown>;
}

interface CodeRecord {
  c: Uint8Array;
  s: number;
}

interface PcaRecord {
  inDim: number;
  outDim: number;
  mean: Uint8Array;
  components: Uint8Array;
  explainedVariance: number;
}

/** One mutation of a write batch; a batch commits in one LMDB transaction, all or nothing. */
export type StateWrite =
  | { kind: 'put'; id: string; full?: Float32Array; code?: { code: Uint8Array; scale: number }; doc?: Doc }
  | { kind: 'delete'; id: string }
  | { kind: 'trained'; pca: PcaModel | undefined; codes: Map<string, { code: Uint8Array; scale: number }>; dropFull: boolean };

const CONFIG_KEY = 'config';
const PCA_KEY = 'pca';
const TRAINED_KEY = 'trained';

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
  return new MemstoreError('CORRUPTION', `${FILES.state} in ${dir}: ${what} (key ${key})`, {
    file: statePath(dir),
    offset: key,
    cause,
  });
}

/**
 * The persisted state of a store in one LMDB environment (memory-mapped, copy-on-write B+trees,
 * so a crash leaves the last committed transaction). Every other module reaches the disk through
 * this class, which the write-ahead log will later wrap.
 *
 * Sub-databases: `config` (StoreConfig, PCA model, trained flag), `full` (id → raw float32 LE of
 * the vector as given), `codes` (id → code bytes and scale, once trained), `docs` (id → text/meta).
 */
export class StateStore {
  private constructor(
    readonly dir: string,
    private readonly root: RootDatabase,
    private readonly config: Database,
    private readonly full: Database<Buffer, string>,
    private readonly codes: Database<CodeRecord, string>,
    private readonly docs: Database<Doc, string>,
    private readonly durability: Durability,
  ) {}

  static open(dir: string, durability: Durability): StateStore {
    let root: RootDatabase;
    try {
      root = open({
        path: statePath(dir),
        maxDbs: 8,
        compression: false,
        // 'always' resolves a write only once it is flushed; otherwise at commit, with the flush right behind.
        separateFlushed: durability !== 'always',
      });
    } catch (e) {
      throw new MemstoreError('IO', `cannot open ${statePath(dir)}`, { cause: e });
    }
    return new StateStore(
      dir,
      root,
      root.openDB({ name: 'config', encoding: 'msgpack' }),
      root.openDB<Buffer, string>({ name: 'full', encoding: 'binary' }),
      root.openDB<CodeRecord, string>({ name: 'codes', encoding: 'msgpack' }),
      root.openDB<Doc, string>({ name: 'docs', encoding: 'msgpack', cache: true }),
      durability,
    );
  }

  readConfig(): StoreConfig | undefined {
    const v: unknown = this.config.get(CONFIG_KEY);
    if (v === undefined) return undefined;
    const c = v as Partial<StoreConfig>;
    if (typeof c !== 'object' || c === null || typeof c.dim !== 'number' || typeof c.metric !== 'string' ||
        typeof c.codec !== 'string' || typeof c.keepFull !== 'boolean' || typeof c.formatVersion !== 'number') {
      throw corruption(this.dir, CONFIG_KEY, 'unreadable store configuration');
    }
    if (c.formatVersion > FORMAT_VERSION) {
      throw corruption(this.dir, CONFIG_KEY, `format version ${c.formatVersion} is newer than this memstore (${FORMAT_VERSION})`);
    }
    return c as StoreConfig;
  }

  /** Writes the configuration of a new store; `trained` is true when nothing needs fitting (no PCA). */
  async writeConfig(config: StoreConfig, trained: boolean): Promise<void> {
    await this.commit(() => {
      this.config.put(CONFIG_KEY, config);
      this.config.put(TRAINED_KEY, trained);
    });
  }

  readTrained(): boolean {
    return this.config.get(TRAINED_KEY) === true;
  }

  readPca(): PcaModel | undefined {
    const v = this.config.get(PCA_KEY) as PcaRecord | undefined;
    if (v === undefined) return undefined;
    if (!(v.mean instanceof Uint8Array) || !(v.components instanceof Uint8Array) ||
        v.mean.byteLength !== v.inDim * 4 || v.components.byteLength !== v.inDim * v.outDim * 4) {
      throw corruption(this.dir, PCA_KEY, 'PCA model has the wrong shape');
    }
    return {
      inDim: v.inDim,
      outDim: v.outDim,
      mean: floatsOf(v.mean),
      components: floatsOf(v.components),
      explainedVariance: v.explainedVariance,
    };
  }

  /** The full-precision vector of `id` as given to `add`, or undefined. */
  getFull(id: string, dim: number): Float32Array | undefined {
    const b = this.full.getBinary(id);
    if (b === undefined) return undefined;
    if (b.byteLength !== dim * 4) throw corruption(this.dir, `full/${id}`, `vector of ${b.byteLength} bytes, expected ${dim * 4}`);
    return floatsOf(b);
  }

  getDoc(id: string): Doc | undefined {
    return this.docs.get(id);
  }

  *iterateFull(dim: number): IterableIterator<{ id: string; vector: Float32Array }> {
    for (const { key, value } of this.full.getRange()) {
      if (value.byteLength !== dim * 4) throw corruption(this.dir, `full/${key}`, `vector of ${value.byteLength} bytes, expected ${dim * 4}`);
      yield { id: key, vector: floatsOf(value) };
    }
  }

  *iterateCodes(codeBytes: number): IterableIterator<{ id: string; code: Uint8Array; scale: number }> {
    for (const { key, value } of this.codes.getRange()) {
      if (!(value?.c instanceof Uint8Array) || value.c.byteLength !== codeBytes || typeof value.s !== 'number') {
        throw corruption(this.dir, `codes/${key}`, `code record is malformed`);
      }
      yield { id: key, code: value.c, scale: value.s };
    }
  }

  /** Applies `writes` in one transaction; resolves when durable as the store's durability mode says. */
  async apply(writes: readonly StateWrite[]): Promise<void> {
    await this.commit(() => {
      for (const w of writes) {
        if (w.kind === 'put') {
          if (w.full !== undefined) this.full.put(w.id, Buffer.from(bytesOf(w.full)));
          if (w.code !== undefined) this.codes.put(w.id, { c: w.code.code, s: w.code.scale });
          if (w.doc !== undefined && (w.doc.text !== undefined || w.doc.meta !== undefined)) this.docs.put(w.id, w.doc);
          else this.docs.remove(w.id);
        } else if (w.kind === 'delete') {
          this.full.remove(w.id);
          this.codes.remove(w.id);
          this.docs.remove(w.id);
        } else {
          if (w.pca !== undefined) {
            const record: PcaRecord = {
              inDim: w.pca.inDim,
              outDim: w.pca.outDim,
              mean: bytesOf(w.pca.mean),
              components: bytesOf(w.pca.components),
              explainedVariance: w.pca.explainedVariance,
            };
            this.config.put(PCA_KEY, record);
          }
          for (const [id, c] of w.codes) this.codes.put(id, { c: c.code, s: c.scale });
          if (w.dropFull) for (const id of w.codes.keys()) this.full.remove(id);
          this.config.put(TRAINED_KEY, true);
        }
      }
    });
  }

  private async commit(body: () => void): Promise<void> {
    try {
      await this.root.transaction(body);
      if (this.durability === 'always') await this.root.flushed;
    } catch (e) {
      throw new MemstoreError('IO', `write to ${statePath(this.dir)} failed`, { cause: e });
    }
  }

  /** Bytes the LMDB pages of `docs` occupy (texts and metadata). */
  docBytes(): number {
    return pagesBytes(this.docs.getStats());
  }

  /** Bytes of the state file on disk. */
  fileBytes(): number {
    return pagesBytes(this.root.getStats()) + pagesBytes(this.full.getStats()) + pagesBytes(this.codes.getStats()) +
      pagesBytes(this.docs.getStats()) + pagesBytes(this.config.getStats());
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
