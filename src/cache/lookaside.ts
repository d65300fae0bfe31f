import { isRqCodec } from '../codec/codec.js';
import type { Filter } from '../options.js';
import { idOrder, type VectorIndex } from '../index/vector-index.js';
import type { RqCodec } from '../codec/rq.js';
import { kernelValues, type KernelForm, type ScanQuery } from '../scan/code-blocks.js';
import { lutErrorBound } from '../scan/fast-scan-lut.js';
import type { PoolScope, ScorePool, SearchScope } from '../scan/score-pool.js';
import { TopK } from '../scan/topk.js';
import type { DocRecord } from '../store/state.js';
import { HotVectors } from './hot-vectors.js';
import { movedScore, scoreShift, skipBelow, type ScoreShift } from './bounds.js';
import { SketchTable, bitsHash, bytesHash, signSketch } from './sketch.js';
import { sameBits, sameBytes } from '../vector.js';
import { SeenIds } from './seen-ids.js';
import { Presence, idHash } from './presence.js';
import { BlockSlab } from './block-slab.js';

/** The shortest pool buffer; lengths are powers of two from there. */
const POOL_MIN_LENGTH = 16;

/**
 * A pool's members: slots, and their scores under the entry's query, side by side in one block of
 * `slab` (BlockSlab.pair), with room for `n`. Pools vary in size from search to search (their depth
 * follows each query's scores), so their buffers are rounded up to a power of two: a dropped entry's
 * then almost always fit the next one (rounded to multiples of 16, most took a new buffer on the 10k
 * cache bench).
 */
function poolArrays(n: number, slab: BlockSlab): { slots: Int32Array; scores: Float32Array } {
  const length = Math.max(POOL_MIN_LENGTH, 2 ** Math.ceil(Math.log2(Math.max(1, n))));
  const { ints, floats } = slab.pair(length);
  return { slots: ints, scores: floats };
}

/** The first `n` entries of `top` (after sortBestFirst or partitionBest), or of a pool, as an entry keeps them. */
function membersOf(top: { copyTo(n: number, slots: Int32Array, scores: Float32Array): void }, n: number, slab: BlockSlab): { slots: Int32Array; scores: Float32Array } {
  const out = poolArrays(n, slab);
  top.copyTo(n, out.slots, out.scores);
  return out;
}

/**
 * What an entry that vouches for its answer alone keeps in place of a pool and a scan vector: it
 * is never scored, shifted or certified (lookup() drops it once its answer no longer holds), so
 * copying the query's scan form and making pool buffers for it were a quiet spell's cost for
 * nothing. Shared and empty: never a block of the slab (blocksOf() leaves them out).
 */
const NO_SLOTS = new Int32Array(0);
const NO_SCORES = new Float32Array(0);
const NO_VECTOR = new Float32Array(0);

/** A copy of `v` in a block of `slab`. */
function copyOf(v: Float32Array, slab: BlockSlab): Float32Array {
  const out = slab.float32(v.length);
  out.set(v);
  return out;
}

/**
 * The certified lookaside cache (CACHE.md is the spec). An entry remembers a query, the options that
 * shape its answer, its answer, and a *pool*: the slots in the index of the best-scoring stored
 * vectors under that query, with a bound `b` that no stored vector outside the pool exceeds. A later search is served
 * from an entry only when the cache can prove which candidates the scan would have picked:
 *
 * - an identical query, no write since: the remembered answer, at once;
 * - otherwise (an identical query after writes, or a near one found by sign sketch): the pool is
 *   scored against the new query with the scan's own kernel, every vector outside it is bounded
 *   (bounds.ts), and if the scan's top candidates are provably all in the pool, they are handed back
 *   to be finished (rescored, or converted) exactly as a search finishes its scan: the answer is the
 *   one an uncached search gives, ids and scores. If not, it is a bound failure and the search runs.
 *
 * Writes only append the ids they touch to a log; an entry catches up on the log when it is next
 * used (its slots follow the index's slot moves, touched ids join its pool if they match its filter
 * and leave it if they no longer do), so writes cost nothing here. Hot records (full vectors, documents, texts of recent
 * answers) serve rescoring and results without reading the store; a write drops them at once.
 */

export interface CacheSettings {
  /** Most recent queries remembered. */
  readonly entries: number;
  /** Vectors a pool keeps beyond the candidates the search needs, as a multiple of them. */
  readonly pool: number;
  /** Bytes the cache may hold in all: pools, answers, hot records. */
  readonly bytes: number;
  /** Whether near queries are served: false remembers every search's answer alone (collectsPool()). */
  readonly near: boolean;
}

/** One candidate as the scan ranks it: its slot in the index, and its kernel score (higher is closer). */
export interface Candidate {
  readonly slot: number;
  readonly score: number;
}

/** What a search needs from its store to use the cache. */
export interface CacheHost {
  /** The store's index now. */
  readonly index: VectorIndex;
  /** True when `id` is stored and matches `filter` (undefined: no filter). */
  matches(id: string, filter: Filter | undefined): boolean;
}

/** What a search asks with. */
export interface CacheQuery {
  /** The query as given (checked copy); an identical one is an exact repeat. */
  readonly query: Float32Array;
  /** The options that shape the answer (k, filter, rescore, ...), as one string. */
  readonly key: string;
  readonly filter: Filter | undefined;
  /** Candidates the scan would pick (k, or k times the oversampling when rescoring), at most the store's size. */
  readonly candidates: number;
  /** Filled in by the cache: a hash of the query's bits and its sign sketch, computed once per search. */
  hash?: number;
  sketch?: Uint32Array;
  /** The scan query for `query` (projected), built only when needed, once. */
  scanQuery(): ScanQuery;
  /** The kernel's view of it (VectorIndex.kernelForm), built only when needed, once. */
  kernelForm(): KernelForm;
  /** The pages this search would scan first on a page index, now (VectorIndex.scopeOf), computed once. */
  scope(): SearchScope | undefined;
}

function hashOf(q: CacheQuery): number {
  return (q.hash ??= bitsHash(q.query));
}

function sketchOf(q: CacheQuery): Uint32Array {
  return (q.sketch ??= signSketch(q.scanQuery().vector));
}

export type CacheLookup<A> =
  | { readonly kind: 'answer'; readonly answer: A }
  | { readonly kind: 'candidates'; readonly entry: CacheEntry<A>; readonly candidates: Candidate[]; readonly near: boolean }
  | { readonly kind: 'miss' };

export interface CacheEntry<A> {
  readonly key: string;
  /** A copy of the query, in a buffer of the cache's own (as are the scan's vector, the kernel query and the pool). */
  readonly query: Float32Array;
  /** The bytes of `query`, which an exact repeat is compared with. */
  readonly queryBytes: Uint8Array;
  readonly hash: number;
  readonly scan: ScanQuery;
  /**
   * The query as the kernel sees it (VectorIndex.kernelForm): for an int8 query its code, in a
   * block of the cache's slab, copied when the entry is made from the code its scan has just used;
   * for an entry near lookups skip, made when an exact repeat after writes first needs it (kernelOfEntry()).
   */
  kernel: KernelForm | undefined;
  readonly filter: Filter | undefined;
  /** The index the pool's slots are slots of. */
  readonly index: VectorIndex;
  /** The pages of a page index the pool was drawn from (PoolScope); undefined: every stored vector. */
  readonly scope: PoolScope | undefined;
  /**
   * The pool: `size` slots of `index` (the array may be longer), as the index numbered them at its
   * removal count `epoch` (VectorIndex.moveEpoch); a slot number is 4 bytes, and the codes stay in
   * the index, gathered when the pool is scored.
   */
  slots: Int32Array;
  /** The kernel score of each member under `scan` (parallel to `slots`); +Infinity for one that joined since, unscored. */
  scores: Float32Array;
  size: number;
  epoch: number;
  /** Every stored vector matching `filter` outside the pool scores at most this under `scan`; -Infinity: none is outside. */
  bound: number;
  /** The write (log position) the pool is current with. */
  version: number;
  /** The answer as of `version`, when known. */
  answer: A | undefined;
  answerBytes: number;
  /**
   * Bytes it holds as bytesOf() counts them, kept up to date where they change (dropping an entry
   * then reads no block of it: the least recently used is cold, and counting its five blocks again
   * cost every miss of a full cache about 1.5 µs).
   */
  bytes: number;
  /** Pool vectors to keep when it is shrunk: as many as it started with. */
  readonly keep: number;
  /** The kernel score, under `scan`, of the last candidate its search needed (the M-th best). */
  readonly lastCandidate: number;
}

export interface CacheStats {
  /** Answers served by the cache: exactHits + nearHits. */
  hits: number;
  /** Identical queries served (at once when nothing was written since, else recomputed from the pool). */
  exactHits: number;
  /** Queries served from the pool of another, near query. */
  nearHits: number;
  /** Searches where a remembered query was close but the bound could not prove the answer. */
  boundFailures: number;
  /** Searches that ran (bound failures included). */
  misses: number;
  /** Searches that ran and were remembered with their answer alone, no pool: in a quiet spell (4 · `entries` misses in a row), seven in eight; with `near: false`, every one (LookasideCache.collectsPool). */
  answerOnly: number;
  /** Entries, hot records and hot vectors dropped for room, or because writes outran them (a hot vector counts once per row given up, so this runs far ahead of `entries`). */
  evictions: number;
  /** Bytes held: pools, answers and hot records. */
  bytes: number;
  entries: number;
  /** Reads of full-precision vectors that hot vectors stood in for; only vectors read otherwise than out of a memory map are kept hot (CACHE.md, "Hot records"). */
  fullReadsSaved: number;
  /** Pool vectors scored to prove answers (all pools tried); the members that cannot be candidates are not scored. */
  poolScored: number;
}

/**
 * A record's document and text kept hot; each undefined until known. Every field is there from the
 * start: one shape for all of them, so that reading one stays a monomorphic load (fields added
 * later made two shapes, and a CPU profile of the 10k cache bench showed the generic load handler).
 */
interface HotRecord {
  doc: DocRecord | undefined;
  text: string | null | undefined;
  bytes: number;
}

/** Ids touched by writes that an entry can still catch up on; an older entry is dropped. */
const LOG_LIMIT = 4096;
/** Option keys whose pool reaches are remembered (the least recently used go first). */
const REACH_KEYS = 64;
/** Near entries whose pools are tried, closest sketch first. */
const NEAR_TRIES = 2;
/** In a quiet spell, one miss in QUIET_SAMPLE collects a pool (collectsPool()). */
const QUIET_SAMPLE = 8;
/** A quiet spell begins after QUIET_AFTER · `entries` misses in a row (collectsPool()). */
const QUIET_AFTER = 4;
/** A near entry is tried only when its sketch differs in at most this share of the dimensions. */
const NEAR_SKETCH_SHARE = 0.2;
/**
 * A scoped pool serves a search whose pages differ from its scope in at most this share of them
 * (at least one): the pages it lacks are scanned in full (certify()), each costing what it costs the
 * search to scan it.
 */
const NEW_PAGES_SHARE = 1 / 4;
/** What an entry without a scope needs of the pages a search scans: nothing. */
/** The shift of an rq l2 store between two queries (unbounded), and for the query a pool was scored for (shiftOf()). */
const RQ_L2_UNBOUNDED: ScoreShift = Object.freeze({ metric: 'l2', delta: Infinity, margin: 0, maxNorm: 0, fromNorm: 0, nextNorm: 0, angle: 0 });
const RQ_L2_SAME: ScoreShift = Object.freeze({ ...RQ_L2_UNBOUNDED, delta: 0, same: true });
const ALL_PAGES: PagesNow = Object.freeze({ within: undefined, extra: undefined });

/** The pages a search scans now, against a scoped entry's (pagesNow()). */
interface PagesNow {
  /** The search's pages, when some of the scope's are not among them: members outside them are left out. */
  readonly within: PoolScope | undefined;
  /** The search's pages outside the scope, ascending: scored in full. */
  readonly extra: Int32Array | undefined;
}

/** JavaScript's cost of an entry beyond its typed arrays, estimated. */
const ENTRY_OVERHEAD = 512;
const HOT_OVERHEAD = 96;
/**
 * Buckets of the hot records' Presence (presence.ts): one per this many bytes of budget, at most
 * the limit (64 KiB, 3% of the default budget). 3,000 fresh queries on a 10k x 512-d store left
 * about 3,000 records hot in 2 MiB (a scratch probe): about 9% of 32,768 buckets in use, and 23,713
 * of 35,078 lookups ended at the Presence.
 */
const HOT_PRESENCE_BYTES_PER_BUCKET = 64;
const HOT_PRESENCE_MAX = 32768;
/**
 * The slab's chunk (block-slab.ts): this share of the byte budget, a power of two within the limits.
 * Whole free chunks stay (counted against the budget) until trim() has nothing else to drop, so a
 * chunk is a small part of the budget; a query copy larger than a chunk gets a buffer of its own.
 */
const SLAB_CHUNK_SHARE = 1 / 16;
const SLAB_CHUNK_MIN = 16;
const SLAB_CHUNK_MAX = 256 * 1024;
/** The ids remembered as read (seen-ids.ts), for vectors: one slot per this many bytes of budget, at most the limit. */
const SEEN_BYTES_PER_SLOT = 256;
const SEEN_SLOTS_MAX = 4096;

/**
 * Slots of a SeenIds table for a budget of `bytes`, a quarter as many when `quarter`: none under
 * a budget too small to keep anything hot anyway, so that the table does not overrun it alone.
 */
function seenSlots(bytes: number, quarter: boolean): number {
  const wanted = Math.min(SEEN_SLOTS_MAX, bytes / SEEN_BYTES_PER_SLOT) / (quarter ? 4 : 1);
  return wanted < 1 ? 0 : 2 ** Math.floor(Math.log2(wanted));
}

export class LookasideCache<A> {
  private readonly entries = new Map<CacheEntry<A>, true>();
  private readonly byHash = new Map<number, CacheEntry<A>[]>();
  /** Per options key, the sketches of its entries' queries. */
  private readonly byKey = new Map<string, SketchTable<CacheEntry<A>>>();
  /** Per options key, the reach that scans collect pools within (poolReach()). */
  private readonly reaches = new Map<string, number>();
  /** The key `reaches` last moved to its end (the most recently used). */
  private lastReachKey: string | undefined;
  private readonly hot = new Map<string, HotRecord>();
  /** The ids `hot` holds, by hash: most results of a search are not hot, and are told so without a probe of the Map. */
  private readonly hotIds: Presence;
  /** Full-precision vectors (made at the first one, when their length is known); half the byte budget at most. */
  private vectors: HotVectors | undefined;
  /** The index whose slots key `vectors`, and its removal count they follow (VectorIndex.moveEpoch). */
  private vectorsIndex: VectorIndex | undefined;
  private vectorsEpoch = 0;
  /** Ids touched by writes, the last LOG_LIMIT of them; `logBase` is the version of log[0]. */
  private log: string[] = [];
  private logBase = 0;
  private version = 0;
  private entryBytes = 0;
  private hotBytes = 0;
  private readonly counts = { exactHits: 0, nearHits: 0, boundFailures: 0, misses: 0, answerOnly: 0, evictions: 0, fullReadsSaved: 0, poolScored: 0 };
  /** Searches since the last hit, exact or near (collectsPool()). */
  private missesSinceHit = 0;
  /** certify()'s scratch: member positions, their slots, their scores (grown, never per search). */
  private scratchSlots = new Int32Array(0);
  private scratchPicked = new Int32Array(0);
  private scratchScores = new Float32Array(0);
  private readonly tops: [TopK | undefined, TopK | undefined, TopK | undefined] = [undefined, undefined, undefined];
  /** The index each of `tops` orders ties by (idOrder()). */
  private readonly topIndexes: [VectorIndex | undefined, VectorIndex | undefined, VectorIndex | undefined] = [undefined, undefined, undefined];
  /** Where entries keep their arrays: query copies, kernel codes, pools. */
  private readonly slab: BlockSlab;
  /** Candidates whose full vectors searches read, and results whose documents and texts they read. */
  private readonly seenVectors: SeenIds;
  private readonly seenRecords: SeenIds;

  constructor(private readonly settings: CacheSettings) {
    const chunk = Math.min(SLAB_CHUNK_MAX, Math.max(SLAB_CHUNK_MIN, settings.bytes * SLAB_CHUNK_SHARE));
    this.slab = new BlockSlab(2 ** Math.floor(Math.log2(chunk)));
    this.seenVectors = new SeenIds(seenSlots(settings.bytes, false));
    this.seenRecords = new SeenIds(seenSlots(settings.bytes, true));
    const buckets = Math.min(HOT_PRESENCE_MAX, settings.bytes / HOT_PRESENCE_BYTES_PER_BUCKET);
    this.hotIds = new Presence(buckets < 1 ? 0 : 2 ** Math.floor(Math.log2(buckets)));
  }

  /** Vectors the scan of a search that misses should keep for its pool, when it needs `candidates`. */
  poolSize(candidates: number): number {
    return candidates + Math.ceil(candidates * this.settings.pool);
  }

  /** The write position now; an answer computed now is valid for this version. */
  get now(): number {
    return this.version;
  }

  /** Bytes held, counted afresh (the running count `stats().bytes` must equal it; tests check). */
  recount(): number {
    // The slab's spare bytes afresh too: its chunks less the blocks entries hold, so that a block no
    // entry holds (never given back) shows as a difference.
    let total = this.bytesBesideEntries() - this.slab.spareBytes + this.slab.bytes;
    for (const entry of this.entries.keys()) {
      total += this.bytesOf(entry);
      for (const view of this.blocksOf(entry)) if (this.slab.owns(view)) total -= this.slab.blockBytes(view);
      if (entry.slots.length > 0 && this.slab.owns(entry.slots)) total -= this.slab.pairBytes(entry.slots.length);
    }
    return total;
  }

  /** The arrays `entry` keeps in blocks of their own, in the slab or in buffers of their own: all but the pool (one block for slots and scores). */
  private blocksOf(entry: CacheEntry<A>): (Float32Array | Int8Array)[] {
    const views: (Float32Array | Int8Array)[] = [entry.query];
    // An answer-only entry's are the shared empty arrays (NO_VECTOR, NO_SLOTS, NO_SCORES), no blocks.
    if (entry.scan.vector.length > 0) views.push(entry.scan.vector);
    if (entry.kernel?.kind === 'int8') views.push(entry.kernel.code);
    return views;
  }

  stats(): CacheStats {
    return {
      hits: this.counts.exactHits + this.counts.nearHits,
      ...this.counts,
      evictions: this.counts.evictions + (this.vectors?.evictions ?? 0),
      bytes: this.heldBytes(),
      entries: this.entries.size,
    };
  }

  /**
   * A write touched `id`, applied to `index` already: hot parts of it go now, entries catch up when
   * next used. A hot vector is kept by slot: a deleted id's goes with the index's removal, replayed
   * here, and a replaced one's by the slot the id keeps.
   */
  touch(id: string, index: VectorIndex): void {
    const hot = this.hotRecord(id);
    if (hot !== undefined) this.dropHot(id, hot);
    if (this.vectors !== undefined) {
      this.followVectors(index);
      const slot = index.slotOf(id);
      if (slot !== undefined) this.vectors.drop(slot);
    }
    this.log.push(id);
    this.version++;
    if (this.log.length > LOG_LIMIT * 2) {
      const cut = this.log.length - LOG_LIMIT;
      this.log = this.log.slice(cut);
      this.logBase += cut;
    }
  }

  /**
   * Forgets the hot documents and texts: a collection of the text arena moved every text, and a hot
   * document names its old place (its text, when not hot too, would be read from a generation that
   * is gone, as damage that is not there, again and again).
   */
  dropHotRecords(): void {
    this.hot.clear();
    this.hotIds.clear();
    this.hotBytes = 0;
  }

  /** Forgets everything (the stored space changed: training, damage set aside). */
  clear(): void {
    for (const entry of [...this.entries.keys()]) this.dropEntry(entry, false);
    this.hot.clear();
    this.hotIds.clear();
    this.vectors?.clear();
    this.vectorsIndex = undefined;
    // The stored space changed: buffers of its old dimensions would not fit again.
    this.slab.clear();
    this.hotBytes = 0;
    this.reaches.clear();
    this.lastReachKey = undefined;
    // certify()'s tops order ties by an index: kept, they held a replaced (and freed) index alive
    // until the next near try, which might never come.
    this.tops.fill(undefined);
    this.topIndexes.fill(undefined);
    // A search that started before (its answer computed on what changed) must not be remembered.
    this.version++;
    this.log = [];
    this.logBase = this.version;
  }

  /**
   * The answer remembered for a query with exactly the bits of `query` and options `key`, when no
   * write and no change of `index` came since it was computed; undefined otherwise (lookup() then
   * decides). Counted as an exact hit.
   */
  repeat(query: Uint8Array, key: string, index: VectorIndex): A | undefined {
    const peers = this.byHash.get(bytesHash(query));
    if (peers === undefined) return undefined;
    let same: CacheEntry<A> | undefined;
    for (const e of peers) {
      if (e.key === key && sameBytes(e.queryBytes, query)) {
        same = e;
        break;
      }
    }
    if (same?.answer === undefined || same.index !== index || same.version !== this.version || same.epoch !== index.moveEpoch()) return undefined;
    this.use(same);
    this.hit('exactHits');
    return same.answer;
  }

  /** Looks for an answer to `q`; see the class comment. */
  lookup(q: CacheQuery, host: CacheHost): CacheLookup<A> {
    const hash = hashOf(q);
    const same = this.byHash.get(hash)?.find((e) => e.key === q.key && sameBits(e.query, q.query));
    if (same !== undefined) {
      // An answer kept alone (no pool, no bound) that a write or a move has passed can never be
      // proven again (movedScore of +∞ is +∞): it goes without catching its pool up for nothing.
      const unprovable = same.bound === Infinity && (same.answer === undefined || same.version !== this.version || same.epoch !== host.index.moveEpoch());
      if (unprovable || !this.catchUp(same, host)) {
        this.dropEntry(same, true);
      } else {
        this.use(same);
        if (same.answer !== undefined) {
          this.hit('exactHits');
          return { kind: 'answer', answer: same.answer };
        }
        const pages = this.pagesNow(same, q);
        let candidates: Candidate[] | undefined;
        if (pages !== undefined) {
          const kernel = this.kernelOfEntry(same);
          candidates = this.certify(same, same.scan, this.shiftOf(same.scan, kernel, kernel, host), q, host, pages);
        }
        if (candidates !== undefined) {
          this.hit('exactHits');
          return { kind: 'candidates', entry: same, candidates, near: false };
        }
        this.counts.boundFailures++;
        this.missed();
        return { kind: 'miss' };
      }
    }
    const peers = this.byKey.get(q.key);
    if (peers === undefined || peers.size === 0) {
      this.missed();
      return { kind: 'miss' };
    }
    const scan = q.scanQuery();
    const sketch = sketchOf(q);
    // The NEAR_TRIES closest sketches within the limit, without sorting them all.
    const near: CacheEntry<A>[] = [];
    const distances: number[] = [];
    const limit = Math.floor(scan.vector.length * NEAR_SKETCH_SHARE);
    peers.near(sketch, limit, (e, d) => {
      let at = near.length;
      while (at > 0 && distances[at - 1]! > d) at--;
      if (at >= NEAR_TRIES) return;
      near.splice(at, 0, e);
      distances.splice(at, 0, d);
      if (near.length > NEAR_TRIES) {
        near.pop();
        distances.pop();
      }
    });
    for (const e of near) {
      // An entry of another index cannot serve (catchUp would say so), and its kernel form is of that index's codec.
      if (e.index !== host.index) {
        this.dropEntry(e, true);
        continue;
      }
      // One shift for the guess and the proof, between the kernel forms: the entry's was copied when
      // it was made, the new query's is encoded once for every try and for its scan. Guessing on the
      // float scan queries first cost a second pass, over the entry's float copy (four times the
      // bytes, cold after the last scan): 23 µs of a 10k near hit in the stream on a slow afternoon.
      const shift = this.shiftOf(scan, this.kernelOfEntry(e), q.kernelForm(), host);
      if (!this.worthTrying(e, shift)) continue;
      if (!this.catchUp(e, host)) {
        this.dropEntry(e, true);
        continue;
      }
      // Caught up, its scope's page numbers are today's: which pages does the new query probe?
      const pages = this.pagesNow(e, q);
      if (pages === undefined) continue;
      const candidates = this.certify(e, scan, shift, q, host, pages);
      if (candidates !== undefined) {
        this.use(e);
        this.hit('nearHits');
        return { kind: 'candidates', entry: e, candidates, near: true };
      }
    }
    if (near.length > 0) this.counts.boundFailures++;
    this.missed();
    return { kind: 'miss' };
  }

  /**
   * How far below the k-th best score the scan of a search that misses should collect the pool, in
   * spreads of its k best (ScorePool), for searches with options `q.key`: adapted after each one so
   * that pools hold about poolSize() vectors (scores crowd differently for each filter and k).
   * Infinity at first: that scan collects everything, and remember() measures the reach from it.
   */
  poolReach(q: CacheQuery): number {
    return this.reaches.get(q.key) ?? Infinity;
  }

  /**
   * Most vectors a scan collects for a pool before it keeps only the best: twice poolSize(), and no
   * more than the `stored` vectors it can collect at most (a scan's pool holds a selection of that
   * room: with k and the pool at the top of their ranges it would be hundreds of times the store).
   */
  poolRoom(q: CacheQuery, stored = Infinity): number {
    // At least 1: a search of an empty store asks for no candidates, and collects nothing.
    return Math.max(1, Math.min(2 * this.poolSize(q.candidates), stored));
  }

  /**
   * Remembers a search that ran: `top` holds the scan's candidates (sorted best first), `pool` the
   * vectors it collected beside them (score-pool.ts). Call it in the same synchronous step as the
   * scan, at version `now`.
   */
  remember(q: CacheQuery, scan: ScanQuery, index: VectorIndex, top: TopK, pool: ScorePool): CacheEntry<A> {
    // Nothing collected (a filtered search of a page index): the answer serves repeats only.
    if (pool.scope === null) return this.enter(q, scan, index, this.noPool(), false);
    const last = Math.min(q.candidates, top.size) - 1;
    const lastCandidate = last >= 0 ? top.scoreAt(last) : Infinity;
    const { slots, scores, size, bound } = this.poolFrom(q, lastCandidate, pool);
    // Fields named one by one: an object spread followed by more fields took V8's slow path (2 µs, on every miss).
    return this.enter(q, scan, index, { slots, scores, size, bound, lastCandidate, scope: pool.scope }, true);
  }

  /**
   * Remembers the answer of a search no pool vouches for (one that probes some pages of the page
   * index only, VectorIndex.collectsPools), computed at `version`: repeat() serves it to a query of
   * the same bits and options while nothing is written and the index is the same; no near query is
   * ever served from it (its bound is +Infinity, and it is not among the sketches near lookups try).
   */
  rememberAnswer(q: CacheQuery, scan: ScanQuery, index: VectorIndex, answer: A, version: number, bytes: number): void {
    if (version !== this.version) return;
    const entry = this.enter(q, scan, index, this.noPool(), false);
    this.answered(entry, answer, version, bytes);
  }

  /** The pool of an entry that vouches for nothing beyond its own answer: empty, every vector possibly above it. */
  private noPool(): { slots: Int32Array; scores: Float32Array; size: number; bound: number; lastCandidate: number; scope: undefined } {
    return { slots: NO_SLOTS, scores: NO_SCORES, size: 0, bound: Infinity, lastCandidate: Infinity, scope: undefined };
  }

  /** A search ran that the cache could not answer and did not look up (one no pool vouches for). */
  noteMiss(): void {
    this.missed();
  }

  /**
   * Whether the scan of the search that has just missed should collect a pool for its entry: every
   * one while hits come; once QUIET_AFTER · `entries` searches in a row have missed (a quiet spell),
   * one in QUIET_SAMPLE, and the others remember their answer alone (rememberAnswer(): exact repeats with nothing written since
   * are served, near queries search). A store whose queries never come back paid the cache 14–32% of
   * every search (README, "A stream of fresh queries only"), most of it collecting pools and making
   * entries that were evicted unused. Any hit ends the quiet spell. Answers never depend on it. With
   * `near: false` no miss collects one (CACHE.md, "Exact repeats only").
   */
  collectsPool(): boolean {
    const quiet = this.missesSinceHit - QUIET_AFTER * this.settings.entries;
    if (this.settings.near && (quiet <= 0 || quiet % QUIET_SAMPLE === 0)) return true;
    this.counts.answerOnly++;
    return false;
  }

  private hit(kind: 'exactHits' | 'nearHits'): void {
    this.counts[kind]++;
    this.missesSinceHit = 0;
  }

  private missed(): void {
    this.counts.misses++;
    this.missesSinceHit++;
  }

  /** Makes and files the entry of `q` (replacing one of the same bits and options); `near`: near lookups may try it. */
  private enter(q: CacheQuery, scan: ScanQuery, index: VectorIndex, pool: { slots: Int32Array; scores: Float32Array; size: number; bound: number; lastCandidate: number; scope: PoolScope | undefined }, near: boolean): CacheEntry<A> {
    const hash = hashOf(q);
    const old = this.byHash.get(hash)?.find((e) => e.key === q.key && sameBits(e.query, q.query));
    if (old !== undefined) this.dropEntry(old, false);
    // No pool, nothing to score against the scan form: an answer-only entry does without it.
    const scanVector = pool.slots === NO_SLOTS ? NO_VECTOR : copyOf(scan.vector, this.slab);
    const query = copyOf(q.query, this.slab);
    const entry: CacheEntry<A> = {
      key: q.key,
      query,
      queryBytes: new Uint8Array(query.buffer, query.byteOffset, query.byteLength),
      hash,
      scan: { vector: scanVector, metric: scan.metric, int8Query: scan.int8Query },
      // Made now from the search's own scan query, whose int8 code the scan has just made (the index
      // keeps the last encoding, so this is a copy): made at a near try instead, it was encoded again
      // from cold memory (18 µs of a 10k near hit's lookup, timed in the stream on a slow afternoon)
      // and pushed the new query's code out of that one-code memory, which then was encoded again too.
      kernel: near ? this.kernelOf(index, scan, scanVector) : undefined,
      filter: q.filter,
      index,
      scope: pool.scope,
      slots: pool.slots,
      scores: pool.scores,
      size: pool.size,
      epoch: index.moveEpoch(),
      bound: pool.bound,
      version: this.version,
      answer: undefined,
      answerBytes: 0,
      bytes: 0,
      keep: Math.max(1, pool.size),
      lastCandidate: pool.lastCandidate,
    };
    this.entries.set(entry, true);
    const sameHash = this.byHash.get(hash);
    if (sameHash === undefined) this.byHash.set(hash, [entry]);
    else sameHash.push(entry);
    if (near) {
      let peers = this.byKey.get(q.key);
      // The table keeps its own copy of the sketch: the entry keeps none.
      const sketch = sketchOf(q);
      if (peers === undefined) this.byKey.set(q.key, (peers = new SketchTable(sketch.length)));
      peers.add(entry, sketch);
    }
    entry.bytes = this.bytesOf(entry);
    this.entryBytes += entry.bytes;
    this.trim();
    return entry;
  }

  /**
   * The pool an entry keeps of what the scan collected, and its bound; adapts the reach for `q.key`.
   *
   * Every vector the scan left out scored below its line, which is the pool's bound (-Infinity when
   * nothing was left out). When it collected more than twice the vectors wanted (poolSize(),
   * poolRoom()), the best of them are kept and the best one dropped is the bound; the reach is then
   * measured from them, else nudged towards the size wanted.
   */
  private poolFrom(q: CacheQuery, lastCandidate: number, pool: ScorePool): { slots: Int32Array; scores: Float32Array; size: number; bound: number } {
    const wanted = this.poolSize(q.candidates);
    let reach: number;
    let result: { slots: Int32Array; scores: Float32Array; size: number; bound: number };
    if (pool.overflowed) {
      // It holds the best poolRoom() + 1 > wanted + 1. The members need not be in order (certify()
      // scores them all): the best `wanted` are selected, not sorted, and the best of the rest is the
      // bound (sorting the first wanted + 1 took about 3 µs of every miss).
      const count = pool.partitionBest(wanted);
      const { slots, scores } = membersOf(pool, wanted, this.slab);
      let bound = -Infinity;
      for (let i = wanted; i < count; i++) bound = Math.max(bound, pool.scoreAt(i));
      let worstKept = Infinity;
      for (let i = 0; i < wanted; i++) worstKept = Math.min(worstKept, pool.scoreAt(i));
      result = { slots, scores, size: wanted, bound };
      reach = pool.spread > 0 ? (lastCandidate - worstKept) / pool.spread : Infinity;
    } else {
      const size = pool.sortBestFirst(0);
      const { slots, scores } = membersOf(pool, size, this.slab);
      result = { slots, scores, size, bound: pool.passedOver ? pool.line : -Infinity };
      const beyond = size - Math.min(q.candidates, size);
      // Scores near the line are about evenly spread, so the count beyond the candidates grows with
      // the reach; the square root damps one query's crowding.
      reach = pool.reach * Math.min(4, Math.max(0.25, (wanted - q.candidates) / Math.max(1, beyond))) ** 0.5;
    }
    // A reach of 0 (ties all along) could never grow again: the next scan collects everything.
    const value = reach > 0 ? reach : Infinity;
    if (q.key === this.lastReachKey) {
      // Already the most recent key: its value changes in place. Moving it to the end on every miss
      // (a delete and a set) filled the Map's table with deleted entries, rehashed every few dozen
      // misses, and each new table outlived a young collection.
      this.reaches.set(q.key, value);
    } else {
      this.reaches.delete(q.key);
      this.reaches.set(q.key, value);
      this.lastReachKey = q.key;
      if (this.reaches.size > REACH_KEYS) this.reaches.delete(this.reaches.keys().next().value!);
    }
    return result;
  }

  /** Records the answer computed for `entry` at `version` (ignored when writes came in between). */
  answered(entry: CacheEntry<A>, answer: A, version: number, bytes: number): void {
    if (!this.entries.has(entry) || entry.version !== version || version !== this.version) return;
    this.entryBytes += bytes - entry.answerBytes;
    entry.bytes += bytes - entry.answerBytes;
    entry.answer = answer;
    entry.answerBytes = bytes;
    this.trim();
  }

  /**
   * The answer `entry` remembers, when it is still the answer as of now (no write since it was
   * computed), else undefined. A near hit takes the texts and metadata of results it shares with
   * it from there instead of reading them.
   */
  answerNow(entry: CacheEntry<A>): A | undefined {
    return this.entries.has(entry) && entry.version === this.version ? entry.answer : undefined;
  }

  /**
   * The hot full-precision vector in `slot` of `index`, in place, with its norm when kept
   * (HotVectors.view: valid until the next keepVector()); undefined when it is not hot. The caller
   * counts the reads it saves (savedReads()).
   */
  hotVectorAt(slot: number, index: VectorIndex): { full: Float32Array; norm: number | undefined } | undefined {
    if (this.vectors === undefined) return undefined;
    this.followVectors(index);
    return this.vectors.view(slot);
  }

  /** Counts `n` reads of the full-precision store that hot vectors saved (a hot vector a bound let go saved none). */
  savedReads(n: number): void {
    this.counts.fullReadsSaved += n;
  }

  /**
   * Brings the hot vectors' slots up to `index`: its removals since are replayed; another index,
   * or a log of removals that no longer reaches back, drops them all.
   */
  private followVectors(index: VectorIndex): void {
    const vectors = this.vectors!;
    if (this.vectorsIndex === index && this.vectorsEpoch === index.moveEpoch()) return;
    if (this.vectorsIndex !== index || !index.movesSince(this.vectorsEpoch, (hole, from) => vectors.moved(hole, from))) vectors.clear();
    this.vectorsIndex = index;
    this.vectorsEpoch = index.moveEpoch();
  }

  hotDoc(id: string): DocRecord | undefined {
    return this.hotRecord(id)?.doc;
  }

  /** The hot record of `id`, if any; the Map is asked only when hotIds says it may hold `id`. */
  private hotRecord(id: string): HotRecord | undefined {
    return this.hotIds.mayHave(idHash(id)) ? this.hot.get(id) : undefined;
  }

  /**
   * The hot text of `id` when the hot document of `id` is `doc` (the text goes with the document it
   * was kept with: a write since dropped both, and a document kept since is another object): a
   * string, null when the record has none, undefined when not known.
   */
  hotTextOf(id: string, doc: DocRecord | undefined): string | null | undefined {
    const hot = this.hotRecord(id);
    return hot !== undefined && hot.doc === doc ? hot.text : undefined;
  }

  /** Keeps `text` as the hot text of `id`, when the hot document of `id` is `doc` (hotTextOf). */
  keepTextOf(id: string, doc: DocRecord | undefined, text: string | null): void {
    const hot = this.hotRecord(id);
    if (hot === undefined || hot.doc !== doc || hot.text !== undefined) return;
    hot.text = text;
    this.grow(hot, 2 * (text?.length ?? 0));
  }

  /**
   * Notes that a search read the full vector in `slot` from the store: true when it was read
   * recently before, and is worth keeping hot (seen-ids.ts); a one-off read is not.
   */
  admitVectorAt(slot: number): boolean {
    return this.seenVectors.againNumber(slot);
  }

  /** admitVectorAt() for the document and text of a result. */
  admitRecord(id: string): boolean {
    return this.seenRecords.again(id);
  }

  /** Keeps the full vector in `slot` of `index` hot (valid until a write touches its id, or a removal its slot). */
  keepVector(slot: number, index: VectorIndex, full: Float32Array, norm: number | undefined): void {
    // A budget with no room for one vector makes no slab (its Presence would overrun it alone).
    const vectorBytes = this.settings.bytes / 2;
    if (vectorBytes < HotVectors.rowBytes(full.length)) return;
    this.vectors ??= new HotVectors(full.length, vectorBytes);
    this.followVectors(index);
    this.vectors.put(slot, full, norm);
  }

  /** Keeps the document of `id` hot (valid until a write touches it); its text joins it by keepTextOf(). */
  keepDoc(id: string, doc: DocRecord): void {
    let hot = this.hotRecord(id);
    if (hot === undefined) {
      hot = { doc: undefined, text: undefined, bytes: HOT_OVERHEAD };
      this.hotBytes += HOT_OVERHEAD;
      this.hot.set(id, hot);
      this.hotIds.add(idHash(id));
    }
    if (hot.doc !== undefined) return;
    hot.doc = doc;
    this.grow(hot, 2 * (doc.metaJson?.length ?? 0));
  }

  /** Evicts what is over the budgets; a search calls it once it is done keeping things hot. */
  settle(): void {
    this.trim();
  }

  private grow(hot: HotRecord, bytes: number): void {
    hot.bytes += bytes;
    this.hotBytes += bytes;
  }

  private dropHot(id: string, hot: HotRecord): void {
    this.hot.delete(id);
    this.hotIds.remove(idHash(id));
    this.hotBytes -= hot.bytes;
  }

  /**
   * A cheap look before the pool is scored. Certifying needs the M-th best pool score under the new
   * query above the outsiders' bound raised by the shift. A near query moves each score by far less
   * than the worst-case shift (only the part of the move along the vector counts), so the M-th
   * best score stays close to `lastCandidate`, and the proof is likely only when the shift is below
   * the gap between `lastCandidate` and the bound. Measured on 10k x 512-d (cache bench stream): 220
   * of 221 certified tries had a shift below the gap, 1 of 512 above. Skipping is a miss, never a
   * wrong answer.
   */
  private worthTrying(entry: CacheEntry<A>, shift: ScoreShift): boolean {
    if (entry.bound === -Infinity) return true;
    // For l2 the shift is not additive; the bound itself tells how far the outsiders may come.
    const moved = movedScore(shift, entry.bound) - entry.bound;
    return moved < entry.lastCandidate - entry.bound;
  }

  /** How far kernel scores may move from kernel query `from` to `next` (bounds.ts). */
  private shiftOf(scan: ScanQuery, from: KernelForm, next: KernelForm, host: CacheHost): ScoreShift {
    // An rq l2 score is −(‖q'‖² + ‖r‖² − 2⟨r̃, q̂⟩), not −‖q̂ − r̃‖²: each vector's own ‖r̃‖² − ‖r‖² sits in
    // it, so no shift of the query bounds it (CACHE.md): an unbounded shift, and near queries search.
    // The query the pool was scored for, repeated exactly after writes, is the exception: its table
    // is the same, so is every old vector's score, and the bound stands as it was (`same`).
    if (scan.metric === 'l2' && isRqCodec(host.index.codec.name)) return from === next ? RQ_L2_SAME : RQ_L2_UNBOUNDED;
    const shift = scoreShift(scan.metric, from, next, scan.metric === 'cosine' ? 0 : host.index.maxNorm());
    // The same query scores through the same table: its scores do not move. Other codecs see the query as it is.
    if (from === next || !isRqCodec(host.index.codec.name)) return shift;
    // rq codes score through tables (CACHE.md, "Fast-scan pages"): a score is F times its estimate,
    // off by at most F · lutErrorBound of its query, and F ≤ 2‖x̂‖ / √D (|ŷ_i| ≥ ½). Both queries'
    // terms, whatever either is: a zero query's table is exact, the other's need not be.
    const bits = (host.index.codec as RqCodec).bits;
    const factor = (2 * shift.maxNorm) / Math.sqrt(scan.vector.length);
    return { ...shift, margin: shift.margin + factor * (lutErrorBound(bits, kernelValues(from)) + lutErrorBound(bits, kernelValues(next))) };
  }

  /**
   * The kernel form of `entry`'s query, made now if not yet (its index must be the one searched now):
   * an entry that near lookups skip (rememberAnswer()) has none until its exact repeat comes after
   * writes. Lookups find entries through byHash and byKey, which hold only entries the cache holds,
   * so the code's block is given back when the entry is dropped.
   */
  private kernelOfEntry(entry: CacheEntry<A>): KernelForm {
    if (entry.kernel === undefined) {
      entry.kernel = this.kernelOf(entry.index, entry.scan, entry.scan.vector);
      const bytes = this.kernelBytes(entry.kernel);
      this.entryBytes += bytes;
      entry.bytes += bytes;
    }
    return entry.kernel;
  }

  /** The kernel form of `scan` to keep in an entry: an int8 code in a block of the slab; a float query's is the entry's copy of the scan vector, `vector`. */
  private kernelOf(index: VectorIndex, scan: ScanQuery, vector: Float32Array): KernelForm {
    if (!scan.int8Query) return { kind: 'float', vector };
    const into = this.slab.int8(vector.length);
    const form = index.kernelForm(scan, into);
    if (form.kind === 'float') {
      this.slab.give(into);
      return { kind: 'float', vector };
    }
    return form;
  }

  /**
   * Brings `entry`'s pool up to the writes since its version: its slots follow the index's slot moves,
   * and every id touched since joins the pool if it is stored and matches the entry's filter, or
   * leaves it if not. False (the entry must go) when the log or the index's moves no longer reach back,
   * or the index is another one.
   */
  private catchUp(entry: CacheEntry<A>, host: CacheHost): boolean {
    const index = host.index;
    if (entry.index !== index) return false;
    // Pages split, merged or renumbered since: the scope's page numbers name other vectors now.
    if (entry.scope !== undefined && entry.scope.layout !== index.layoutEpoch()) return false;
    if (entry.version === this.version && entry.epoch === index.moveEpoch()) return true;
    if (entry.version < this.logBase) return false;
    if (!this.followMoves(entry, index)) return false;
    const touched = new Set(this.log.slice(entry.version - this.logBase));
    const members = new Map<number, number>();
    for (let i = 0; i < entry.size; i++) members.set(entry.slots[i]!, i);
    for (const id of touched) {
      // A deleted id has no slot; its old slot left the pool with the index's moves.
      const slot = index.slotOf(id);
      if (slot === undefined) continue;
      const at = members.get(slot);
      // A vector outside the scope's pages is not scanned by the searches the entry serves.
      const matches = host.matches(id, entry.filter) && (entry.scope === undefined || index.inScope(entry.scope, slot));
      if (matches && at === undefined) {
        members.set(slot, entry.size);
        this.addSlot(entry, slot);
      } else if (matches && at !== undefined) {
        // Its vector may have changed: the score under the entry's query is no longer known.
        entry.scores[at] = Infinity;
      } else if (!matches && at !== undefined) {
        members.delete(slot);
        const last = entry.slots[entry.size - 1]!;
        entry.slots[at] = last;
        entry.scores[at] = entry.scores[entry.size - 1]!;
        if (last !== slot) members.set(last, at);
        entry.size--;
      }
    }
    entry.version = this.version;
    entry.answer = undefined;
    entry.answerBytes = 0;
    if (entry.size > 2 * entry.keep) this.shrink(entry, index);
    if (this.entries.has(entry)) {
      const bytes = this.bytesOf(entry);
      this.entryBytes += bytes - entry.bytes;
      entry.bytes = bytes;
    }
    return true;
  }

  /**
   * Renumbers the pool's slots through the index's removals since `entry.epoch`: the vector in a
   * removal's hole leaves the pool (it was removed), the one moved into the hole keeps its place.
   */
  private followMoves(entry: CacheEntry<A>, index: VectorIndex): boolean {
    const { slots, scores } = entry;
    const ok = index.movesSince(entry.epoch, (hole, from) => {
      for (let i = 0; i < entry.size; i++) {
        if (slots[i] === hole) {
          slots[i] = slots[--entry.size]!;
          scores[i] = scores[entry.size]!;
          i--;
        } else if (slots[i] === from) {
          slots[i] = hole;
        }
      }
    });
    entry.epoch = index.moveEpoch();
    return ok;
  }

  private addSlot(entry: CacheEntry<A>, slot: number): void {
    if (entry.size === entry.slots.length) {
      const grown = poolArrays(2 * entry.slots.length, this.slab);
      grown.slots.set(entry.slots);
      grown.scores.set(entry.scores);
      this.givePool(entry);
      entry.slots = grown.slots;
      entry.scores = grown.scores;
    }
    // Its score under the entry's query is not known: certify() scores it whatever its old score.
    entry.scores[entry.size] = Infinity;
    entry.slots[entry.size++] = slot;
  }

  /** Keeps the pool's best `keep` under its own query and raises the bound to the best one dropped. */
  private shrink(entry: CacheEntry<A>, index: VectorIndex): void {
    const top = new TopK(entry.size);
    index.scanSlots(entry.scan, entry.slots, entry.size, top);
    // The best `keep` and the best one dropped after them, in order.
    const count = top.sortBestFirst(entry.keep + 1);
    const kept = Math.min(entry.keep, count);
    const members = membersOf(top, kept, this.slab);
    if (count > kept) entry.bound = Math.max(entry.bound, top.scoreAt(kept));
    this.givePool(entry);
    entry.slots = members.slots;
    entry.scores = members.scores;
    entry.size = kept;
  }

  /**
   * The candidates a scan for `scan` would pick, if the pool proves them: scored with the scan's own
   * kernel, they must all score above every vector outside the pool can (and, where the order of equal
   * scores would show or decide membership, no two may tie). Undefined otherwise.
   *
   * Not every member is scored. The members that were among the entry's own candidates (or whose
   * score is not known) are scored first; their `want`-th best new score `m` is at most the final
   * one, and a member whose old score, moved by the shift, stays below `m` can neither be a
   * candidate nor tie with the last one, so it is left out. A near query moves scores far less than
   * the pool's depth: most of the pool is left out.
   *
   * For a pool scoped to some pages (`pages`, pagesNow()): members of pages the search does not
   * scan now are left out, and every vector of the pages it scans outside the scope is scored (their
   * best `want + 1`), so the bound needs to cover only the scope's pages.
   */
  private certify(entry: CacheEntry<A>, scan: ScanQuery, shift: ScoreShift, q: CacheQuery, host: CacheHost, pages: PagesNow): Candidate[] | undefined {
    const want = q.candidates;
    if (want === 0) return [];
    const size = entry.size;
    const within = pages.within;
    if (this.scratchSlots.length < size) {
      this.scratchSlots = new Int32Array(2 * size);
      this.scratchScores = new Float32Array(2 * size);
    }
    const slots = this.scratchSlots;
    const scores = this.scratchScores;
    // The entry's own candidates (and unscored members) at the front, the rest from the back.
    let front = 0;
    let back = size;
    for (let i = 0; i < size; i++) {
      // A member of a page the search does not scan now cannot be one of its candidates.
      if (within !== undefined && !host.index.inScope(within, entry.slots[i]!)) continue;
      if (entry.scores[i]! >= entry.lastCandidate) slots[front++] = i;
      else slots[--back] = i;
    }
    const picked = this.scratchPicked.length >= size ? this.scratchPicked : (this.scratchPicked = new Int32Array(2 * size));
    for (let i = 0; i < front; i++) picked[i] = entry.slots[slots[i]!]!;
    host.index.scoreSlots(scan, picked, front, scores);
    // The pool's best want + 1 under the new query: the candidates, and the next one for ties.
    const top = this.reusedTop(0, want + 1, host.index);
    const guard = this.reusedTop(1, want, host.index);
    for (let i = 0; i < front; i++) {
      top.push(scores[i]!, picked[i]!);
      guard.push(scores[i]!, picked[i]!);
    }
    const skip = skipBelow(shift, guard.kthBest());
    let more = 0;
    for (let i = back; i < size; i++) {
      const at = slots[i]!;
      if (!(entry.scores[at]! < skip)) picked[more++] = entry.slots[at]!;
    }
    host.index.scoreSlots(scan, picked, more, scores);
    for (let i = 0; i < more; i++) {
      top.push(scores[i]!, picked[i]!);
      guard.push(scores[i]!, picked[i]!);
    }
    this.counts.poolScored += front + more;
    // The proof on the pool alone first (the want-th best of its scores; -Infinity with fewer): pages
    // outside the scope only add vectors, which can only raise the want-th best score, so a proof
    // without them holds with them; and a try that fails (most near tries do) does not pay for
    // scanning them (each costs what it costs the search).
    if (entry.bound !== -Infinity && !(guard.kthBest() > movedScore(shift, entry.bound))) return undefined;
    // The search's pages outside the scope: every vector of them scored, the best want + 1 kept.
    if (pages.extra !== undefined && pages.extra.length > 0) {
      const fresh = this.reusedTop(2, want + 1, host.index);
      host.index.scanPages(scan, pages.extra, pages.extra.length, fresh);
      const n = fresh.sortBestFirst();
      for (let i = 0; i < n; i++) top.push(fresh.scoreAt(i), fresh.slotAt(i));
    }
    const count = top.sortBestFirst();
    const chosen = Math.min(want, count);
    // Equal scores come in the scan's order (idOrder()), so the candidates and their order are the scan's, ties and all.
    const out: Candidate[] = [];
    for (let i = 0; i < chosen; i++) out.push({ slot: top.slotAt(i), score: top.scoreAt(i) });
    return out;
  }

  /**
   * For an entry scoped to some pages: the pages the search of `q` scans now, against the entry's
   * (caught up: its layout is today's). Undefined when its pool can prove nothing: the search would
   * go on to more pages than its first (they hold fewer than its candidates), or more than
   * NEW_PAGES_SHARE of its pages are outside the scope.
   */
  private pagesNow(entry: CacheEntry<A>, q: CacheQuery): PagesNow | undefined {
    const scope = entry.scope;
    if (scope === undefined) return ALL_PAGES;
    const now = q.scope();
    if (now === undefined || !now.complete || now.layout !== scope.layout) return undefined;
    const extra: number[] = [];
    for (let i = 0, j = 0; i < now.pages.length; i++) {
      const page = now.pages[i]!;
      while (j < scope.pages.length && scope.pages[j]! < page) j++;
      if (!(j < scope.pages.length && scope.pages[j] === page)) extra.push(page);
    }
    if (extra.length > Math.max(1, Math.floor(now.pages.length * NEW_PAGES_SHARE))) return undefined;
    if (extra.length === 0 && now.pages.length === scope.pages.length) return ALL_PAGES;
    return { within: now, extra: Int32Array.from(extra) };
  }

  /**
   * An empty TopK of `capacity` for certify() (`which`: 0 to 2), ordering ties as a search of `index`
   * does (idOrder()), reused while the capacity and the index stay.
   */
  private reusedTop(which: 0 | 1 | 2, capacity: number, index: VectorIndex): TopK {
    let top = this.tops[which];
    if (top?.capacity === capacity && this.topIndexes[which] === index) {
      top.clear();
    } else {
      this.tops[which] = top = new TopK(capacity, idOrder(index));
      this.topIndexes[which] = index;
    }
    return top;
  }

  /** Gives the blocks of `entry`'s pool back to the slab. */
  private givePool(entry: CacheEntry<A>): void {
    if (entry.slots.length > 0) this.slab.givePair(entry.slots);
  }

  private use(entry: CacheEntry<A>): void {
    this.entries.delete(entry);
    this.entries.set(entry, true);
  }

  /** Bytes an entry's kernel form holds of its own: an int8 code's block; a float form is the entry's scan vector, counted with it. */
  private kernelBytes(kernel: KernelForm | undefined): number {
    return kernel?.kind === 'int8' ? this.slab.blockBytes(kernel.code) : 0;
  }

  /**
   * Bytes `entry` holds: its blocks (blocksOf), its sketch in the table of its key, its answer, its
   * options key and filter (a key's UTF-16, the filter's copy about as much again: 64 searches
   * filtered by a $in of 10,000 UUIDs had held 66 MB the budget never counted), and its objects
   * (estimated).
   */
  private bytesOf(entry: CacheEntry<A>): number {
    let bytes = ENTRY_OVERHEAD + 4 * Math.ceil(entry.scan.vector.length / 32) + entry.answerBytes + 4 * entry.key.length;
    for (const view of this.blocksOf(entry)) bytes += this.slab.blockBytes(view);
    return entry.slots.length > 0 ? bytes + this.slab.pairBytes(entry.slots.length) : bytes;
  }

  private dropEntry(entry: CacheEntry<A>, eviction: boolean): void {
    if (!this.entries.delete(entry)) return;
    if (eviction) this.counts.evictions++;
    this.entryBytes -= entry.bytes;
    // Nothing outside the cache holds a view of these (a search holding the entry only hands it back to answered()).
    for (const view of this.blocksOf(entry)) this.slab.give(view);
    this.givePool(entry);
    const sameHash = this.byHash.get(entry.hash);
    if (sameHash !== undefined) {
      const at = sameHash.indexOf(entry);
      if (at >= 0) sameHash.splice(at, 1);
      if (sameHash.length === 0) this.byHash.delete(entry.hash);
    }
    const peers = this.byKey.get(entry.key);
    peers?.delete(entry);
    if (peers?.size === 0) this.byKey.delete(entry.key);
  }

  private heldBytes(): number {
    return this.entryBytes + this.bytesBesideEntries();
  }

  /** Hot records and vectors, the slab's free blocks, the tables of ids read and of ids hot. */
  private bytesBesideEntries(): number {
    return this.hotBytes + (this.vectors?.bytes ?? 0) + (this.vectors?.presenceBytes ?? 0) + this.slab.spareBytes + this.seenVectors.bytes + this.seenRecords.bytes + this.hotIds.bytes;
  }

  /** Evicts least recently used entries and hot records until within the budgets. */
  private trim(): void {
    while (this.entries.size > this.settings.entries) this.dropEntry(this.entries.keys().next().value!, true);
    while (this.heldBytes() > this.settings.bytes) {
      if (this.hotBytes > this.entryBytes && this.hot.size > 0) {
        const [id, hot] = this.hot.entries().next().value!;
        this.dropHot(id, hot);
        this.counts.evictions++;
      } else if (this.entries.size > 0) {
        this.dropEntry(this.entries.keys().next().value!, true);
      } else if (!this.slab.dropSpare()) {
        // Whole free chunks go last: kept, the next entries reuse them (let go, they were made again).
        break;
      }
    }
  }
}
