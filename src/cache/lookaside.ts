import type { VectorIndex } from '../index/vector-index.js';
import type { Filter } from '../options.js';
import { CodeBlocks, type ScanQuery } from '../scan/code-blocks.js';
import { TopK } from '../scan/topk.js';
import type { DocRecord } from '../store/state.js';
import { HotVectors } from './hot-vectors.js';
import { outsiderBound } from './bounds.js';
import { bitsHash, hamming, sameBits, signSketch } from './sketch.js';

/**
 * The certified lookaside cache (CACHE.md is the spec). An entry remembers a query, the options that
 * shape its answer, its answer, and a *pool*: the codes of the best-scoring stored vectors under that
 * query, with a bound `b` that no stored vector outside the pool exceeds. A later search is served
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
 * used (touched ids leave its pool and come back with their current code if they still match its
 * filter), so writes cost nothing here. Hot records (full vectors, documents, texts of recent
 * answers) serve rescoring and results without reading the store; a write drops them at once.
 */

export interface CacheSettings {
  /** Most recent queries remembered. */
  readonly entries: number;
  /** Vectors a pool keeps beyond the candidates the search needs, as a multiple of them. */
  readonly pool: number;
  /** Bytes the cache may hold in all: pools, answers, hot records. */
  readonly bytes: number;
}

/** One candidate as the scan ranks it: kernel score (higher is closer). */
export interface Candidate {
  readonly id: string;
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
  /** Whether the order of equal kernel scores would show in the answer (codes-only answers). */
  readonly tiesShow: boolean;
  /** The scan query for `query` (projected), built only when needed, once. */
  scanQuery(): ScanQuery;
  /** The kernel's view of it (CodeBlocks.kernelQuery), built only when needed, once. */
  kernelQuery(): Float32Array;
}

/** A query's hash and sketch, computed once per search however many steps need them. */
const derived = new WeakMap<CacheQuery, { hash?: number; sketch?: Uint32Array }>();

function hashOf(q: CacheQuery): number {
  let d = derived.get(q);
  if (d === undefined) derived.set(q, (d = {}));
  return (d.hash ??= bitsHash(q.query));
}

function sketchOf(q: CacheQuery): Uint32Array {
  let d = derived.get(q);
  if (d === undefined) derived.set(q, (d = {}));
  return (d.sketch ??= signSketch(q.scanQuery().vector));
}

export type CacheLookup<A> =
  | { readonly kind: 'answer'; readonly answer: A }
  | { readonly kind: 'candidates'; readonly entry: CacheEntry<A>; readonly candidates: Candidate[]; readonly near: boolean }
  | { readonly kind: 'miss' };

export interface CacheEntry<A> {
  readonly key: string;
  readonly query: Float32Array;
  readonly hash: number;
  readonly scan: ScanQuery;
  /** The query as the kernel sees it (CodeBlocks.kernelQuery), computed when first needed. */
  kernelQuery: Float32Array | undefined;
  readonly sketch: Uint32Array;
  readonly filter: Filter | undefined;
  /**
   * The pool's codes, copied from the index on first use (most entries are never used for a near
   * query or after writes, and copying scattered codes at every miss costs a search ~10%); until
   * then `members` holds the ids.
   */
  pool: CodeBlocks | undefined;
  members: string[] | undefined;
  /** Every stored vector matching `filter` outside `pool` scores at most this under `scan`; -Infinity: none is outside. */
  bound: number;
  /** The write (log position) the pool is current with. */
  version: number;
  /** The answer as of `version`, when known. */
  answer: A | undefined;
  answerBytes: number;
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
  /** Entries and hot records dropped for room, or because writes outran them. */
  evictions: number;
  /** Bytes held: pools, answers and hot records. */
  bytes: number;
  entries: number;
  /** Full-precision vectors taken from hot records instead of the store. */
  fullReadsSaved: number;
}

/** A record's document and text kept hot; each set when known. */
interface HotRecord {
  doc?: DocRecord;
  text?: string | null;
  bytes: number;
}

/** Ids touched by writes that an entry can still catch up on; an older entry is dropped. */
const LOG_LIMIT = 4096;
/** Near entries whose pools are tried, closest sketch first. */
const NEAR_TRIES = 2;
/** A near entry is tried only when its sketch differs in at most this share of the dimensions. */
const NEAR_SKETCH_SHARE = 0.2;
/** JavaScript's cost of an entry beyond its typed arrays, estimated. */
const ENTRY_OVERHEAD = 512;
const HOT_OVERHEAD = 96;

export class LookasideCache<A> {
  private readonly entries = new Map<CacheEntry<A>, true>();
  private readonly byHash = new Map<number, CacheEntry<A>[]>();
  private readonly byKey = new Map<string, Set<CacheEntry<A>>>();
  private readonly hot = new Map<string, HotRecord>();
  /** Full-precision vectors (made at the first one, when their length is known); half the byte budget at most. */
  private vectors: HotVectors | undefined;
  /** Ids touched by writes, the last LOG_LIMIT of them; `logBase` is the version of log[0]. */
  private log: string[] = [];
  private logBase = 0;
  private version = 0;
  private entryBytes = 0;
  private hotBytes = 0;
  private readonly counts = { exactHits: 0, nearHits: 0, boundFailures: 0, misses: 0, evictions: 0, fullReadsSaved: 0 };

  constructor(private readonly settings: CacheSettings) {}

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
    let total = this.hotBytes + (this.vectors?.bytes ?? 0);
    for (const entry of this.entries.keys()) total += this.bytesOf(entry);
    return total;
  }

  stats(): CacheStats {
    return {
      hits: this.counts.exactHits + this.counts.nearHits,
      ...this.counts,
      evictions: this.counts.evictions + (this.vectors?.evictions ?? 0),
      bytes: this.entryBytes + this.hotBytes + (this.vectors?.bytes ?? 0),
      entries: this.entries.size,
    };
  }

  /** A write touched `id`: hot parts of it go now, entries catch up when next used. */
  touch(id: string): void {
    const hot = this.hot.get(id);
    if (hot !== undefined) this.dropHot(id, hot);
    this.vectors?.drop(id);
    this.log.push(id);
    this.version++;
    if (this.log.length > LOG_LIMIT * 2) {
      const cut = this.log.length - LOG_LIMIT;
      this.log = this.log.slice(cut);
      this.logBase += cut;
    }
  }

  /** Forgets everything (the stored space changed: training, damage set aside). */
  clear(): void {
    for (const entry of [...this.entries.keys()]) this.dropEntry(entry, false);
    this.hot.clear();
    this.vectors?.clear();
    this.hotBytes = 0;
    this.log = [];
    this.logBase = this.version;
  }

  /** Looks for an answer to `q`; see the class comment. */
  lookup(q: CacheQuery, host: CacheHost): CacheLookup<A> {
    const hash = hashOf(q);
    const same = this.byHash.get(hash)?.find((e) => e.key === q.key && sameBits(e.query, q.query));
    if (same !== undefined) {
      if (!this.catchUp(same, host)) {
        this.dropEntry(same, true);
      } else {
        this.use(same);
        if (same.answer !== undefined) {
          this.counts.exactHits++;
          return { kind: 'answer', answer: same.answer };
        }
        const candidates = this.certify(same, same.scan, this.kernelQueryOf(same, host), q, host, true);
        if (candidates !== undefined) {
          this.counts.exactHits++;
          return { kind: 'candidates', entry: same, candidates, near: false };
        }
        this.counts.boundFailures++;
        this.counts.misses++;
        return { kind: 'miss' };
      }
    }
    const peers = this.byKey.get(q.key);
    if (peers === undefined || peers.size === 0) {
      this.counts.misses++;
      return { kind: 'miss' };
    }
    const scan = q.scanQuery();
    const sketch = sketchOf(q);
    // The NEAR_TRIES closest sketches within the limit, without sorting them all.
    const near: CacheEntry<A>[] = [];
    const distances: number[] = [];
    const limit = Math.floor(scan.vector.length * NEAR_SKETCH_SHARE);
    for (const e of peers) {
      const d = hamming(e.sketch, sketch);
      if (d > limit) continue;
      let at = near.length;
      while (at > 0 && distances[at - 1]! > d) at--;
      if (at >= NEAR_TRIES) continue;
      near.splice(at, 0, e);
      distances.splice(at, 0, d);
      if (near.length > NEAR_TRIES) {
        near.pop();
        distances.pop();
      }
    }
    const kernelQuery = near.length > 0 ? q.kernelQuery() : undefined;
    for (const e of near) {
      if (!this.worthTrying(e, scan, kernelQuery!, host)) continue;
      if (!this.catchUp(e, host)) {
        this.dropEntry(e, true);
        continue;
      }
      const candidates = this.certify(e, scan, kernelQuery!, q, host, false);
      if (candidates !== undefined) {
        this.use(e);
        this.counts.nearHits++;
        return { kind: 'candidates', entry: e, candidates, near: true };
      }
    }
    if (near.length > 0) this.counts.boundFailures++;
    this.counts.misses++;
    return { kind: 'miss' };
  }

  /**
   * Remembers a search that ran: `members` are the scan's best candidates under `scan`, best first
   * (more than the search needed: the pool), and `complete` says that every stored vector matching
   * the filter is among them. Call it in the same synchronous step as the scan, at version `now`.
   */
  remember(q: CacheQuery, scan: ScanQuery, members: readonly Candidate[], complete: boolean): CacheEntry<A> {
    const hash = hashOf(q);
    const old = this.byHash.get(hash)?.find((e) => e.key === q.key && sameBits(e.query, q.query));
    if (old !== undefined) this.dropEntry(old, false);
    const entry: CacheEntry<A> = {
      key: q.key,
      query: q.query,
      hash,
      scan: { ...scan, vector: scan.vector.slice() },
      kernelQuery: undefined,
      sketch: sketchOf(q),
      filter: q.filter,
      pool: undefined,
      members: members.map((m) => m.id),
      bound: complete || members.length === 0 ? -Infinity : members[members.length - 1]!.score,
      version: this.version,
      answer: undefined,
      answerBytes: 0,
      keep: Math.max(1, members.length),
      lastCandidate: members[Math.min(q.candidates, members.length) - 1]?.score ?? Infinity,
    };
    this.entries.set(entry, true);
    const sameHash = this.byHash.get(hash);
    if (sameHash === undefined) this.byHash.set(hash, [entry]);
    else sameHash.push(entry);
    let peers = this.byKey.get(q.key);
    if (peers === undefined) this.byKey.set(q.key, (peers = new Set()));
    peers.add(entry);
    this.entryBytes += this.bytesOf(entry);
    this.trim();
    return entry;
  }

  /** Records the answer computed for `entry` at `version` (ignored when writes came in between). */
  answered(entry: CacheEntry<A>, answer: A, version: number, bytes: number): void {
    if (!this.entries.has(entry) || entry.version !== version || version !== this.version) return;
    this.entryBytes += bytes - entry.answerBytes;
    entry.answer = answer;
    entry.answerBytes = bytes;
    this.trim();
  }

  /** The full-precision vector of `id` kept hot (a copy, with its norm when kept), or undefined. */
  hotFull(id: string): { readonly full: Float32Array; readonly norm: number | undefined } | undefined {
    const hot = this.vectors?.get(id);
    if (hot !== undefined) this.counts.fullReadsSaved++;
    return hot;
  }

  hotDoc(id: string): DocRecord | undefined {
    return this.hot.get(id)?.doc;
  }

  /** The hot text of `id`: a string, null when the record has none, undefined when not known. */
  hotText(id: string): string | null | undefined {
    return this.hot.get(id)?.text;
  }

  /** Keeps parts of `id` hot (valid until a write touches it). */
  keep(id: string, parts: { full?: Float32Array; norm?: number; doc?: DocRecord; text?: string | null }): void {
    if (parts.full !== undefined) {
      this.vectors ??= new HotVectors(parts.full.length, this.settings.bytes / 2);
      this.vectors.put(id, parts.full, parts.norm);
    }
    if (parts.doc === undefined && parts.text === undefined) return;
    let hot = this.hot.get(id);
    if (hot === undefined) {
      hot = { bytes: HOT_OVERHEAD };
      this.hotBytes += HOT_OVERHEAD;
      this.hot.set(id, hot);
    }
    if (parts.doc !== undefined && hot.doc === undefined) {
      hot.doc = parts.doc;
      this.grow(hot, 2 * (parts.doc.metaJson?.length ?? 0));
    }
    if (parts.text !== undefined && hot.text === undefined) {
      hot.text = parts.text;
      this.grow(hot, 2 * (parts.text?.length ?? 0));
    }
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
    this.hotBytes -= hot.bytes;
  }

  /**
   * A cheap look before the pool is scored: every score moves by at most the same shift, so the
   * candidates (at `lastCandidate` or above under the entry's query) stay above the outsiders' bound
   * for sure only when twice the shift fits in the gap between them. When it does not even
   * nearly fit (the query moved too far), trying costs a pool scan for a likely failure: skipped
   * (a miss, never a wrong answer).
   */
  private worthTrying(entry: CacheEntry<A>, scan: ScanQuery, kernelQuery: Float32Array, host: CacheHost): boolean {
    if (entry.bound === -Infinity) return true;
    // For l2 the shift is not additive; the bound itself tells how far the outsiders may come.
    const moved = outsiderBound(scan.metric, entry.bound, this.kernelQueryOf(entry, host), kernelQuery, scan.metric === 'cosine' ? 0 : host.index.maxNorm()) - entry.bound;
    return moved < 2 * (entry.lastCandidate - entry.bound);
  }

  private kernelQueryOf(entry: CacheEntry<A>, host: CacheHost): Float32Array {
    if (entry.kernelQuery !== undefined) return entry.kernelQuery;
    const before = this.bytesOf(entry);
    entry.kernelQuery = host.index.kernelQuery(entry.scan);
    // Only an entry the cache still holds is counted (a near try may look at one it then drops).
    if (this.entries.has(entry)) this.entryBytes += this.bytesOf(entry) - before;
    return entry.kernelQuery;
  }

  /** The pool's codes, copied from the index now if this is their first use. */
  private poolOf(entry: CacheEntry<A>, index: VectorIndex): CodeBlocks {
    if (entry.pool !== undefined) return entry.pool;
    const before = this.bytesOf(entry);
    const pool = new CodeBlocks(index.codec, index.dim, Math.max(16, entry.members!.length));
    for (const id of entry.members!) index.copyCodeInto(pool, id);
    entry.pool = pool;
    entry.members = undefined;
    if (this.entries.has(entry)) this.entryBytes += this.bytesOf(entry) - before;
    return pool;
  }

  /** Brings `entry`'s pool up to the writes since its version; false when the log no longer reaches back. */
  private catchUp(entry: CacheEntry<A>, host: CacheHost): boolean {
    if (entry.version === this.version) return true;
    if (entry.version < this.logBase) return false;
    const pool = this.poolOf(entry, host.index);
    const before = this.bytesOf(entry);
    const touched = new Set(this.log.slice(entry.version - this.logBase));
    for (const id of touched) {
      pool.remove(id);
      if (host.matches(id, entry.filter)) host.index.copyCodeInto(pool, id);
    }
    entry.version = this.version;
    entry.answer = undefined;
    entry.answerBytes = 0;
    if (pool.size > 2 * entry.keep) this.shrink(entry, pool);
    this.entryBytes += this.bytesOf(entry) - before;
    return true;
  }

  /** Keeps the pool's best `keep` under its own query and raises the bound to the best one dropped. */
  private shrink(entry: CacheEntry<A>, pool: CodeBlocks): void {
    const top = new TopK(pool.size);
    pool.scan(entry.scan, top);
    const ranked = top.sorted();
    const kept = new CodeBlocks(pool.codec, pool.dim, pool.blockVectors);
    kept.copyManyFrom(pool, ranked.slice(0, entry.keep).map(({ slot }) => pool.idAt(slot)));
    const firstDropped = ranked[entry.keep];
    if (firstDropped !== undefined) entry.bound = Math.max(entry.bound, firstDropped.score);
    pool.free();
    entry.pool = kept;
  }

  /**
   * The candidates a scan for `scan` would pick, if the pool proves them: scored with the scan's own
   * kernel, they must all score above every vector outside the pool can (and, where the order of equal
   * scores would show or decide membership, no two may tie). Undefined otherwise.
   */
  private certify(entry: CacheEntry<A>, scan: ScanQuery, kernelQuery: Float32Array, q: CacheQuery, host: CacheHost, same: boolean): Candidate[] | undefined {
    const want = q.candidates;
    if (want === 0) return [];
    const pool = this.poolOf(entry, host.index);
    const size = pool.size;
    const top = new TopK(Math.max(1, size));
    if (size > 0) pool.scan(scan, top);
    const ranked = top.sorted().map(({ score, slot }) => ({ id: pool.idAt(slot), score }));
    if (entry.bound !== -Infinity) {
      if (ranked.length < want) return undefined;
      const from = this.kernelQueryOf(entry, host);
      const outside = outsiderBound(scan.metric, entry.bound, from, same ? from : kernelQuery, scan.metric === 'cosine' ? 0 : host.index.maxNorm());
      if (!(ranked[want - 1]!.score > outside)) return undefined;
    }
    const chosen = ranked.slice(0, want);
    // Which of two equal scores the scan keeps depends on slot order, which the pool does not know.
    const next = ranked[want];
    if (next !== undefined && chosen.length > 0 && next.score === chosen[chosen.length - 1]!.score) return undefined;
    if (q.tiesShow) for (let i = 1; i < chosen.length; i++) if (chosen[i]!.score === chosen[i - 1]!.score) return undefined;
    return chosen;
  }

  private use(entry: CacheEntry<A>): void {
    this.entries.delete(entry);
    this.entries.set(entry, true);
  }

  private bytesOf(entry: CacheEntry<A>): number {
    return ENTRY_OVERHEAD + (entry.pool?.bytes ?? 0) + 16 * (entry.members?.length ?? 0) + (entry.kernelQuery === undefined ? 2 : 3) * entry.query.byteLength + entry.sketch.byteLength + entry.answerBytes;
  }

  private dropEntry(entry: CacheEntry<A>, eviction: boolean): void {
    if (!this.entries.delete(entry)) return;
    if (eviction) this.counts.evictions++;
    this.entryBytes -= this.bytesOf(entry);
    const sameHash = this.byHash.get(entry.hash);
    if (sameHash !== undefined) {
      const rest = sameHash.filter((e) => e !== entry);
      if (rest.length === 0) this.byHash.delete(entry.hash);
      else this.byHash.set(entry.hash, rest);
    }
    this.byKey.get(entry.key)?.delete(entry);
    entry.pool?.free();
  }

  /** Evicts least recently used entries and hot records until within the budgets. */
  private trim(): void {
    while (this.entries.size > this.settings.entries) this.dropEntry(this.entries.keys().next().value!, true);
    while (this.entryBytes + this.hotBytes + (this.vectors?.bytes ?? 0) > this.settings.bytes) {
      if (this.hotBytes > this.entryBytes && this.hot.size > 0) {
        const [id, hot] = this.hot.entries().next().value!;
        this.dropHot(id, hot);
        this.counts.evictions++;
      } else if (this.entries.size > 0) {
        this.dropEntry(this.entries.keys().next().value!, true);
      } else {
        break;
      }
    }
  }
}
