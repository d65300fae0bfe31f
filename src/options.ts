import { CODEC_NAMES, type CodecName } from './codec/codec.js';
import { MemstoreError } from './errors.js';
import { guarded, isPlainObject, readGuarded } from './input.js';
import { keyPath, objectKind } from './meta.js';
import { isWellFormed } from './text.js';
import { nodeFileLayer, type FileLayer } from '../io/file-layer.js';
import type { Durability } from '../wal/index.js';

/**
 * Candidates per result a rescored search takes from the scan, by codec: the cap of rescoring. The
 * coarser the codes, the deeper the true neighbours can rank by estimate (README, "Rotated codes").
 * int8 takes 2: 20 candidates for k = 10 found the same top 10 as 40 at every `nprobe` and with
 * `exact` (the 10k and 50k sentence sets, GloVe 100k and 331k), the page index's searches in 4–24%
 * less time (README, "Rescoring guided by error bounds"). rq2 takes 12 and rq1 24 (were 16 and 32):
 * at equal recall the fewer candidates with more pages probed were faster on every set measured
 * (`bench/oversample.ts`, README "Rotated codes"), and `exact: true` still finds rq2 ≥ 0.995 of
 * the 512-d sets' top 10 and 0.995 of GloVe's, rq1 ≥ 0.999 of the 512-d sets'. A PCA store takes
 * at least PCA_OVERSAMPLE (defaultOversample()).
 */
export const DEFAULT_OVERSAMPLE: Readonly<Record<CodecName, number>> = {
  f32: 4,
  f16: 4,
  int8: 2,
  'fp8-e4m3': 4,
  'fp8-e5m2': 4,
  rq4: 10,
  rq2: 12,
  rq1: 24,
};

/**
 * The least default oversample of a PCA store: its true neighbours rank deeper by code (PCA to 128
 * of the 512-d sentence set finds 0.886 of the top 10 from its codes alone). A cosine store's
 * rescoring bound takes in the vectors past them that can still enter (src/search/RESCORING.md,
 * "Past the scan's candidates"); dot and l2 stores with PCA have no such bound.
 */
export const PCA_OVERSAMPLE = 4;

/** The oversample a store takes when its options name none: its codec's, at least PCA_OVERSAMPLE with PCA. */
export function defaultOversample(codec: CodecName, pca: boolean): number {
  return pca ? Math.max(PCA_OVERSAMPLE, DEFAULT_OVERSAMPLE[codec]) : DEFAULT_OVERSAMPLE[codec];
}

export type Metric = 'cosine' | 'dot' | 'l2';
export const METRICS: readonly Metric[] = ['cosine', 'dot', 'l2'];
// The store's durability is the log's: the option goes to the log as it is.
export type { Durability };
const DURABILITIES: readonly Durability[] = ['always', 'batch', 'none'];

/** PCA reduction: a fixed number of output dimensions, or the fewest that keep a share of the variance. */
export type PcaOption = { dims: number } | { variance: number };

/**
 * The certified lookaside cache (src/cache/CACHE.md): repeated and near queries are answered from
 * remembered ones only when a bound proves the answer is the one a search would return, ids and
 * scores; otherwise the search runs.
 */
export interface CacheOptions {
  /** Most recent queries remembered. @default 64 */
  entries?: number;
  /**
   * Vectors each remembered query keeps beyond the candidates its search needed, as a multiple of
   * them (an int8 store rescoring k = 10 takes 20 candidates: 50 more). More: more near queries
   * served, and a costlier scan when the search runs. @default 2.5
   */
  pool?: number;
  /** Bytes the cache may hold in all (pools, answers, hot vectors, documents and texts). @default 2 MiB */
  bytes?: number;
  /**
   * Whether near queries are served. `false` remembers each search's answer alone, with no pool
   * and no sign sketch: exact repeats with nothing written since are still answered from memory,
   * every other query searches. The pools are what a miss pays for (like for like on the 10k
   * sentence set, a miss cost 1.065–1.067 of a search without the cache with them, 1.011–1.018
   * without: src/cache/CACHE.md, "Exact repeats only"), so a store whose queries come back word for
   * word (retries, tool loops) but seldom nearly loses little and gains that. `pool` then has no
   * effect. @default true
   */
  near?: boolean;
}

/**
 * The page-clustered index (src/index/PAGES.md): once a store holds `from` vectors, its codes are
 * clustered into pages of vectors near each other, and a search scans the pages nearest the query
 * (`nprobe` of them) instead of every code. Below `from`, and with `pages: false`, every search scans
 * every code.
 */
export interface PagesOptions {
  /**
   * Vectors a store holds when its codes are first clustered into pages (k-means over all of them).
   * A store that has pages keeps them whatever this says later; only `pages: false` returns it to the
   * exact scan. @default 16384
   */
  from?: number;
  /** Vectors a page holds before it splits in two. @default 192 */
  maxPage?: number;
}

export const PAGES_DEFAULTS: Readonly<Required<PagesOptions>> = Object.freeze({ from: 16384, maxPage: 192 });

export const CACHE_DEFAULTS: Readonly<Required<CacheOptions>> = Object.freeze({ entries: 64, pool: 2.5, bytes: 2 << 20, near: true });

/** Options of {@link MemStore.open}. Fields marked "fixed at creation" are persisted with the store. */
export interface OpenOptions {
  /** Vector dimension, 1 to 65,536 (4,096 with `pca`). Required to create a store; on reopen it must match. Fixed at creation. */
  dim?: number;
  /** Similarity the scores express. Fixed at creation. @default 'cosine' */
  metric?: Metric;
  /** How vectors are kept in RAM. Fixed at creation. @default 'int8' */
  codec?: CodecName;
  /** PCA reduction before the codec. Fixed at creation. @default undefined (no reduction) */
  pca?: PcaOption;
  /** Vectors buffered at full precision before PCA is fitted. Used at creation. @default 4096 */
  trainSize?: number;
  /**
   * Keep full-precision vectors on disk and rescore candidates with them. Whether full vectors are kept
   * is fixed at creation; reopening a store created with `false` with `true` throws OPTION_MISMATCH.
   * @default true
   */
  rescore?: boolean;
  /**
   * Candidates taken from the quantized scan per requested result when rescoring: the most a search
   * rescores, since error bounds let the hopeless ones go unread. Fewer trade recall for speed where
   * the codes rank well: on 512-d sentence embeddings rq2 with 4 lost at most 0.0013 of recall@10 at
   * the page counts of searches at 0.95 and 0.99, in 0.66–0.82 of the time (README, "4 candidates
   * per result on the sentence sets"); on GloVe-like data rq2 needs its 12.
   * @default 2 (int8), 4 (fp8, f16, f32), 10 (rq4), 12 (rq2), 24 (rq1); with PCA, the codec's and at least 4
   */
  oversample?: number;
  /** When a write's promise resolves: after fsync ('always'), after the write with an fsync at most 5 ms later ('batch'), or after the write ('none'). @default 'always' */
  durability?: Durability;
  /** The certified lookaside cache of recent answers (see CacheOptions); `false` turns it off. @default { entries: 64, pool: 2.5, bytes: 2 MiB, near: true } */
  cache?: CacheOptions | false;
  /** Bytes of write-ahead log after which a checkpoint writes the state and drops the old log. @default 64 MiB */
  checkpointBytes?: number;
  /**
   * The page-clustered index (see PagesOptions); `false` keeps the exact scan of every code at any
   * size. Persisted with the store: reopening without it keeps the store's settings, reopening with
   * others applies them from then on (pages split and merge to the new `maxPage` as the store opens);
   * a field left out keeps the store's own.
   * @default { from: 16384, maxPage: 192 }
   */
  pages?: PagesOptions | false;
  /** Advanced: the file layer the write-ahead log, the arenas and the directory lock go through (tests inject faults with it); its operations must not wait for this store's own calls (FileLayer). @default the real file system */
  files?: FileLayer;
  /**
   * Searches read full-precision vectors (rescoring) and texts (the answers') through read-only
   * memory maps of their files, where the file layer can map files (the real file system, once the
   * small native addon in `native/` is built: `npm install` and `npm run build` build it when a C
   * compiler is at hand). `false` reads each with a positioned read (a system call) instead, as a
   * store does without the addon. The same answers either way, for every codec (what rescoring
   * reads of an rq store is decided by scores alone: src/search/RESCORING.md, "Where a vector is
   * does not change the answer"). Not persisted. @default true
   */
  mmap?: boolean;
  /**
   * After a whole second in which no store of this thread was called (one to two seconds after the
   * last call: calls read no clock), ask the C allocator to give its
   * free memory back to the system (glibc's `malloc_trim`, through the small native addon in
   * `native/`; about 1 ms, once per quiet spell, on a timer that does not keep the process alive).
   * glibc keeps what each thread frees: 0.9 to 2.6 MiB of it at rest beside a 50k store in the
   * memory bench, 5 to 7 MiB in a process that had freed a buffer of a few MiB (src/idle-trim.ts).
   * The first store opened with it on also keeps glibc's trim threshold at its default 128 KiB
   * from then on (`mallopt`; not when the process was started with glibc's malloc thresholds set,
   * MALLOC_TRIM_THRESHOLD_ and the like), so that each thread's arena gives back the free memory
   * at its top, which no trim reaches: 1.6 to 5 MiB beside a 50k store, 10 to 17 MiB in a process
   * that had freed a 4 MiB buffer (src/idle-trim.ts), for 7% more CPU time in a process that bulk
   * loads. Process-wide: it frees only memory nobody uses, whoever freed it. Without the addon, or
   * with a C library other than glibc, nothing is done. Not persisted. @default true
   */
  trimWhenIdle?: boolean;
  /**
   * The embedding function the memory API (`remember`, `recall`) turns texts into vectors with: one
   * vector of the store's `dim` per text, in order. Not persisted. @default none (the memory API then
   * throws INVALID_OPTION)
   */
  embed?: Embed;
  /**
   * `remember` also updates the memory of the same namespace whose score against the new text is at
   * least this, instead of adding a near copy. The same text (up to case, whitespace and
   * punctuation) always updates. Off by default: measured with USE-lite, different facts ("at 3pm"
   * and "at 4pm", 0.996) score above near-identical texts (0.915–0.986), src/memory/MEMORY.md.
   * @default false
   */
  dedupe?: number | false;
}

/** Texts in, one vector per text out (Float32Array or number[]), in order. */
export type Embed = (texts: string[]) => Promise<readonly (Float32Array | readonly number[])[]>;

export interface ResolvedOpenOptions {
  readonly dim: number | undefined;
  readonly metric: Metric | undefined;
  readonly codec: CodecName | undefined;
  readonly pca: PcaOption | undefined;
  readonly trainSize: number | undefined;
  readonly rescore: boolean | undefined;
  /** Undefined: the codec's default (DEFAULT_OVERSAMPLE). */
  readonly oversample: number | undefined;
  readonly durability: Durability;
  readonly cache: Readonly<Required<CacheOptions>> | false;
  readonly checkpointBytes: number;
  /**
   * As given: undefined when not (a store keeps the settings it persisted; a new store takes
   * PAGES_DEFAULTS), and a field left out takes the store's own, then the default (store/config.ts).
   */
  readonly pages: Readonly<PagesOptions> | false | undefined;
  readonly files: FileLayer;
  readonly mmap: boolean;
  readonly trimWhenIdle: boolean;
  readonly embed: Embed | undefined;
  /** undefined: off. */
  readonly dedupe: number | false | undefined;
}

/** The options a store runs with: those given to open, with `pages` settled against what the store persisted (store/config.ts). */
export type StoreOptions = Omit<ResolvedOpenOptions, 'pages'> & { readonly pages: Readonly<Required<PagesOptions>> | false };

export interface SearchOptions {
  /** Results wanted. @default 10 */
  k?: number;
  /** Equality on `meta` fields; `{ field: { $in: [a, b] } }` matches any of the listed values. @default undefined */
  filter?: Filter;
  /** Pages of the index to probe: more finds more of the exact answer and costs more (the exact index, below `pages.from` vectors, probes them all whatever this says). @default stats().nprobe */
  nprobe?: number;
  /** Rescore candidates with the full-precision vectors. @default the store's `rescore` */
  rescore?: boolean;
  /** Scan every stored vector instead of probing the pages nearest the query. @default false */
  exact?: boolean;
}

export type MetaValue = string | number | boolean | null;
export type FilterCondition = MetaValue | { $in: readonly MetaValue[] };
export type Filter = Readonly<Record<string, FilterCondition>>;

export interface ResolvedSearchOptions {
  readonly k: number;
  readonly filter: Filter | undefined;
  readonly nprobe: number | undefined;
  readonly rescore: boolean | undefined;
  readonly exact: boolean;
}

/** INVALID_OPTION naming the option at fault in `field` (its path, as `pages.maxPage`), where there is one. */
function invalid(message: string, field?: string): MemstoreError {
  return new MemstoreError('INVALID_OPTION', message, field === undefined ? {} : { field });
}

/** How a bad value is shown in a message: `"3"` for a string, so it is not mistaken for the number 3. */
export function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  if (typeof v === 'bigint') return `${v}n (a BigInt)`;
  return typeof v === 'object' ? objectKind(v) : `a ${typeof v}`;
}

/**
 * Refuses keys of `v` outside `allowed`, naming the first unknown one with its full path
 * (INVALID_OPTION, `field` the path). Every own key counts, symbols and non-enumerable ones
 * included: Object.keys() had passed over them, so `{ [Symbol('codec')]: 'f32' }` or a
 * non-enumerable typo opened a store with the defaults unsaid (a hostile pass).
 */
export function onlyKeys(path: string, v: Record<string, unknown>, allowed: readonly string[]): void {
  // The message is made only for a key refused: every search checks its options here.
  const takes = (): string => `${path === '' ? 'options' : path.slice(0, -1)} takes ${allowed.join(', ')}`;
  for (const key of Reflect.ownKeys(v)) {
    if (typeof key === 'symbol') throw invalid(`unknown option ${path}${String(key)}: a symbol names no option (${takes()})`, `${path}${String(key)}`);
    if (!allowed.includes(key)) throw invalid(`unknown option ${path}${key} (${takes()})`, `${path}${key}`);
  }
}

function positiveInt(name: string, v: unknown, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) {
    throw invalid(`${name} must be an integer in [1, ${max}], got ${describe(v)}`, name);
  }
  return v;
}

function oneOf<T extends string>(name: string, v: unknown, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw invalid(`${name} must be one of ${allowed.join(', ')}, got ${describe(v)}`, name);
  }
  return v as T;
}

function optionalBoolean(name: string, v: unknown): boolean | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw invalid(`${name} must be a boolean, got ${describe(v)}`, name);
  return v;
}

/** Largest dimension accepted; keeps int8 integer dot products inside int32 (127² · 65536 < 2³¹). */
export const MAX_DIM = 65536;

function resolvePca(v: unknown): PcaOption | undefined {
  if (v === undefined) return undefined;
  if (!isPlainObject(v)) throw invalid(`pca must be { dims } or { variance }, got ${describe(v)}`, 'pca');
  onlyKeys('pca.', v, ['dims', 'variance']);
  const keys = Object.keys(v);
  if (keys.length === 1 && keys[0] === 'dims') return { dims: positiveInt('pca.dims', v['dims'], MAX_DIM) };
  if (keys.length === 1 && keys[0] === 'variance') {
    const variance = v['variance'];
    if (typeof variance !== 'number' || !(variance > 0 && variance <= 1)) {
      throw invalid(`pca.variance must be a number in (0, 1], got ${describe(variance)}`, 'pca.variance');
    }
    return { variance };
  }
  throw invalid('pca must have exactly one of: dims, variance', 'pca');
}

function resolveCache(v: unknown): Readonly<Required<CacheOptions>> | false {
  if (v === false) return false;
  if (v === undefined) return CACHE_DEFAULTS;
  if (!isPlainObject(v)) throw invalid(`cache must be false or { entries, pool, bytes, near }, got ${describe(v)}`, 'cache');
  onlyKeys('cache.', v, ['entries', 'pool', 'bytes', 'near']);
  return Object.freeze({
    entries: v['entries'] === undefined ? CACHE_DEFAULTS.entries : positiveInt('cache.entries', v['entries'], 1_000_000),
    pool: v['pool'] === undefined ? CACHE_DEFAULTS.pool : nonNegativeNumber('cache.pool', v['pool'], 100),
    bytes: v['bytes'] === undefined ? CACHE_DEFAULTS.bytes : positiveInt('cache.bytes', v['bytes']),
    near: optionalBoolean('cache.near', v['near']) ?? CACHE_DEFAULTS.near,
  });
}

/** Page settings as OpenOptions.pages takes them (INVALID_OPTION otherwise); also the rule a persisted config's are read by (store/state.ts). */
export function resolvePages(v: unknown): Readonly<PagesOptions> | false | undefined {
  if (v === false || v === undefined) return v;
  if (!isPlainObject(v)) throw invalid(`pages must be false or { from, maxPage }, got ${describe(v)}`, 'pages');
  onlyKeys('pages.', v, ['from', 'maxPage']);
  return Object.freeze({
    ...(v['from'] === undefined ? {} : { from: positiveInt('pages.from', v['from'], 2 ** 31 - 1) }),
    ...(v['maxPage'] === undefined ? {} : { maxPage: intInRange('pages.maxPage', v['maxPage'], 16, 65536) }),
  });
}

function intInRange(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw invalid(`${name} must be an integer from ${min} to ${max}, got ${describe(v)}`, name);
  return v;
}

function nonNegativeNumber(name: string, v: unknown, max: number): number {
  if (typeof v !== 'number' || !(v >= 0 && v <= max)) throw invalid(`${name} must be a number in [0, ${max}], got ${describe(v)}`, name);
  return v;
}

function resolveFiles(v: unknown): FileLayer {
  if (v === undefined) return nodeFileLayer;
  if (typeof v !== 'object' || v === null) throw invalid('files must be a FileLayer', 'files');
  const f = v as Partial<Record<keyof FileLayer, unknown>>;
  for (const m of ['open', 'readFile', 'list', 'remove', 'rename', 'mkdir', 'syncDir', 'exists', 'createSync', 'linkSync', 'readFileSync', 'removeSync', 'mtimeSync'] as const) {
    if (typeof f[m] !== 'function') throw invalid(`files.${m} must be a function`, `files.${m}`);
  }
  return v as FileLayer;
}

const OPEN_KEYS = ['dim', 'metric', 'codec', 'pca', 'trainSize', 'rescore', 'oversample', 'durability', 'cache', 'checkpointBytes', 'pages', 'files', 'mmap', 'trimWhenIdle', 'embed', 'dedupe'];

export function resolveOpenOptions(options: OpenOptions | undefined): ResolvedOpenOptions {
  return readGuarded('INVALID_OPTION', 'options', () => resolveOpen(options));
}

function resolveOpen(options: OpenOptions | undefined): ResolvedOpenOptions {
  const o: unknown = options ?? {};
  if (!isPlainObject(o)) throw invalid(`options must be an object, got ${describe(o)}`, 'options');
  onlyKeys('', o, OPEN_KEYS);
  return Object.freeze({
    dim: o['dim'] === undefined ? undefined : positiveInt('dim', o['dim'], MAX_DIM),
    metric: o['metric'] === undefined ? undefined : oneOf('metric', o['metric'], METRICS),
    codec: o['codec'] === undefined ? undefined : oneOf('codec', o['codec'], CODEC_NAMES),
    pca: resolvePca(o['pca']),
    trainSize: o['trainSize'] === undefined ? undefined : positiveInt('trainSize', o['trainSize'], 10_000_000),
    rescore: optionalBoolean('rescore', o['rescore']),
    oversample: o['oversample'] === undefined ? undefined : positiveInt('oversample', o['oversample'], 1000),
    durability: o['durability'] === undefined ? 'always' : oneOf('durability', o['durability'], DURABILITIES),
    cache: resolveCache(o['cache']),
    checkpointBytes: o['checkpointBytes'] === undefined ? 64 << 20 : positiveInt('checkpointBytes', o['checkpointBytes']),
    pages: resolvePages(o['pages']),
    files: resolveFiles(o['files']),
    mmap: optionalBoolean('mmap', o['mmap']) ?? true,
    trimWhenIdle: optionalBoolean('trimWhenIdle', o['trimWhenIdle']) ?? true,
    embed: resolveEmbed(o['embed']),
    dedupe: resolveDedupe(o['dedupe']),
  });
}

function resolveEmbed(v: unknown): Embed | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'function') throw invalid(`embed must be a function (texts: string[]) => Promise<vectors>, got ${describe(v)}`, 'embed');
  return v as Embed;
}

function resolveDedupe(v: unknown): number | false | undefined {
  if (v === undefined || v === false) return v;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw invalid(`dedupe must be a finite number or false, got ${describe(v)}`, 'dedupe');
  return v;
}

const SEARCH_KEYS = ['k', 'filter', 'nprobe', 'rescore', 'exact'];

function isMetaValue(v: unknown): v is MetaValue {
  return v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
}

/** Most values one `$in` may list. */
export const MAX_IN_VALUES = 10_000;

/**
 * Most fields one filter may name: the columns a store keeps (`src/filter/FILTERS.md`). A filter of
 * 20,000 fields made a column of each, past that bound, and kept them (411 MB for a 10-record store).
 */
export const MAX_FILTER_FIELDS = 64;

/** Refuses an object with own keys Object.keys() does not list (symbols, non-enumerable ones): a filter would drop them unseen and match everything. */
function onlyVisibleKeys(at: string, v: object, keys: readonly string[]): void {
  if (Reflect.ownKeys(v).length !== keys.length) throw new MemstoreError('INVALID_ARGUMENT', `${at} has symbol or non-enumerable keys, which a filter cannot name`, { field: at });
}

/**
 * Checks a filter and returns a copy (the caller's object is not read again, so getters and later
 * changes cannot alter a search halfway). INVALID_ARGUMENT names the field.
 */
function resolveFilter(v: unknown): Filter | undefined {
  if (v === undefined) return undefined;
  if (!isPlainObject(v)) throw new MemstoreError('INVALID_ARGUMENT', `filter must be an object of meta field conditions, got ${describe(v)}`, { field: 'filter' });
  const out: Record<string, FilterCondition> = {};
  const fields = Object.keys(v);
  onlyVisibleKeys('filter', v, fields);
  if (fields.length > MAX_FILTER_FIELDS) throw new MemstoreError('INVALID_ARGUMENT', `filter names ${fields.length} fields, more than ${MAX_FILTER_FIELDS}`, { field: 'filter' });
  for (const field of fields) {
    const at = keyPath('filter', field);
    refuseLoneSurrogate(field, at, 'is a key with');
    const cond: unknown = v[field];
    refuseLoneSurrogate(cond, at, 'holds');
    if (isMetaValue(cond)) {
      Object.defineProperty(out, field, { value: cond, enumerable: true, writable: true, configurable: true });
      continue;
    }
    if (isPlainObject(cond)) onlyVisibleKeys(at, cond, Object.keys(cond));
    const values: unknown = isPlainObject(cond) && Object.keys(cond).length === 1 ? cond['$in'] : undefined;
    if (!Array.isArray(values)) throw new MemstoreError('INVALID_ARGUMENT', `${at} must be a string, number, boolean, null or { $in: [...] }`, { field: at });
    if (values.length > MAX_IN_VALUES) throw new MemstoreError('INVALID_ARGUMENT', `${at}.$in lists ${values.length} values, more than ${MAX_IN_VALUES}`, { field: `${at}.$in` });
    const copy: MetaValue[] = [];
    for (let i = 0; i < values.length; i++) {
      // A hole reads as undefined: refused like any other non-value.
      const x: unknown = values[i];
      if (!isMetaValue(x)) throw new MemstoreError('INVALID_ARGUMENT', `${at}.$in[${i}] must be a string, number, boolean or null`, { field: `${at}.$in[${i}]` });
      refuseLoneSurrogate(x, `${at}.$in[${i}]`, 'holds');
      copy.push(x);
    }
    Object.defineProperty(out, field, { value: { $in: copy }, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/**
 * INVALID_ARGUMENT at `at` when `v` is a string holding a lone surrogate: no stored key or string
 * holds one (metadata refuses them), so a filter naming one is refused as they are, not searched
 * for nothing (a hostile pass).
 */
function refuseLoneSurrogate(v: unknown, at: string, how: 'is a key with' | 'holds'): void {
  if (typeof v === 'string' && !isWellFormed(v)) throw new MemstoreError('INVALID_ARGUMENT', `${at} ${how} a lone surrogate (not valid Unicode)`, { field: at });
}

/** A filter checked and copied as `search` takes it (INVALID_ARGUMENT naming the field); undefined stays undefined. */
export function resolveFilterOption(filter: unknown): Filter | undefined {
  return readGuarded('INVALID_ARGUMENT', 'filter', () => resolveFilter(filter));
}

export function resolveSearchOptions(options: SearchOptions | undefined): ResolvedSearchOptions {
  if (options === undefined) return DEFAULT_SEARCH;
  try {
    return resolveSearch(options);
  } catch (e) {
    throw guarded('INVALID_OPTION', 'search options', e);
  }
}

/** Most hits one search returns (`k`). */
export const MAX_K = 100_000;

function resolveSearch(options: SearchOptions | undefined): ResolvedSearchOptions {
  const o: unknown = options ?? {};
  if (!isPlainObject(o)) throw invalid(`search options must be an object, got ${describe(o)}`, 'options');
  onlyKeys('', o, SEARCH_KEYS);
  return {
    k: o['k'] === undefined ? 10 : positiveInt('k', o['k'], MAX_K),
    filter: resolveFilterGuarded(o),
    nprobe: o['nprobe'] === undefined ? undefined : positiveInt('nprobe', o['nprobe']),
    rescore: optionalBoolean('rescore', o['rescore']),
    exact: optionalBoolean('exact', o['exact']) ?? false,
  };
}

/** The filter of search options `o`, what reading it throws INVALID_ARGUMENT (readGuarded(), without a closure made per search). */
function resolveFilterGuarded(o: Record<string, unknown>): Filter | undefined {
  try {
    const filter = o['filter'];
    return filter === undefined ? undefined : resolveFilter(filter);
  } catch (e) {
    throw guarded('INVALID_ARGUMENT', 'filter', e);
  }
}

/** A search without options, resolved once by resolveSearch itself: the guarded resolution cost 0.6 µs of a 10 µs cache hit. */
const DEFAULT_SEARCH: ResolvedSearchOptions = Object.freeze(resolveSearch(undefined));

/**
 * The options object of a call (exportStore, importStore, compact, the memory API's), checked as
 * open's are: an object (or none), with no key but `keys` when given (a typo such as `fromat` had
 * been ignored, and the default format written), and `onProgress`, where there is one, a function. Returns a copy, each
 * property read once: a getter that throws, or a Proxy, is INVALID_OPTION (its error had come out
 * as it was: a hostile pass), and later reads see what was checked.
 */
export function checkToolOptions<T extends object>(v: T | null | undefined, keys?: readonly string[]): Partial<T> {
  // null reads as none, as search() and open() read it (compact(null) had been INVALID_OPTION).
  if (v === undefined || v === null) return {};
  return readGuarded('INVALID_OPTION', 'options', () => {
    if (typeof v !== 'object') throw new MemstoreError('INVALID_OPTION', `options must be an object, got ${typeof v}`, { field: 'options' });
    // A Map, a Set, a Date or a class instance had been read as options with no key: forget(new
    // Set(ids)) deleted the whole default namespace, and remember(text, new Map(...)) ignored its
    // namespace (a hostile pass). Only a plain object is options, as open() takes them.
    if (!isPlainObject(v)) throw new MemstoreError('INVALID_OPTION', `options must be a plain object, got ${objectKind(v)}`, { field: 'options' });
    const o = v as Record<string, unknown>;
    if (keys !== undefined) onlyKeys('', o, keys);
    const copy: Record<string, unknown> = { ...o };
    if (copy['onProgress'] !== undefined && typeof copy['onProgress'] !== 'function') throw new MemstoreError('INVALID_OPTION', 'onProgress must be a function', { field: 'onProgress' });
    return copy as Partial<T>;
  });
}

/** A caller's `onProgress` as a tool calls it (progressOf()). */
export interface ProgressCalls {
  /** Tells the caller; what its onProgress throws is remembered, and thrown on. */
  report(done: number, total: number): void;
  /** What the caller's onProgress threw, when `e` is that or an error made of it (its cause); else undefined. */
  thrownIn(e: unknown): { readonly error: unknown } | undefined;
}

/**
 * `onProgress` for a tool to call: what it throws is the caller's own, which the tool passes on as
 * it is rather than as the IO its other failures become (compact and export had made it IO: a
 * hostile pass).
 */
export function progressOf(onProgress: ((done: number, total: number) => void) | undefined): ProgressCalls {
  let thrown: { readonly error: unknown } | undefined;
  return {
    report: (done, total) => {
      try {
        onProgress?.(done, total);
      } catch (e) {
        thrown = { error: e };
        throw e;
      }
    },
    thrownIn: (e) => (thrown !== undefined && (e === thrown.error || (e instanceof MemstoreError && e.cause === thrown.error)) ? thrown : undefined),
  };
}
