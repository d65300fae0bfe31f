import type { Candidate, CacheEntry, CacheHost, CacheLookup, CacheQuery, LookasideCache } from '../cache/lookaside.js';
import { UNREADABLE, type FilterTest, type MetaOf } from '../filter/columns.js';
import { matchesFilter } from '../filter/match.js';
import { idOrder, type VectorIndex } from '../index/vector-index.js';
import { cloneMeta, type Meta } from '../meta.js';
import type { Filter, MetaValue, Metric, SearchOptions } from '../options.js';
import { samePlace, type KernelForm, type ScanQuery, type VectorPlace } from '../scan/code-blocks.js';
import { ScorePool, type SearchScope } from '../scan/score-pool.js';
import { TopK } from '../scan/topk.js';
import type { ExactScorer } from '../space/exact-scorer.js';
import type { VectorSpace } from '../space/vector-space.js';
import type { BlobRef } from '../arena/arena.js';
import type { MemstoreError } from '../errors.js';
import { damagedId } from '../store/record-errors.js';
import type { RecordReads } from '../store/record-reads.js';
import type { DocRecord } from '../store/state.js';
import { clampCosine, norm } from '../vector.js';
import { beyondReach, rescoreBound, type BoundCandidate, type RescoreBound } from './rescore-bound.js';
import { scoreShift } from '../cache/bounds.js';
import { isRqCodec } from '../codec/codec.js';

export interface SearchHit {
  id: string;
  /** Higher is closer: cosine similarity, inner product, or negative Euclidean distance. */
  score: number;
  text?: string;
  meta?: Record<string, unknown>;
}

/** What shapes a search's answer beyond the query. */
export interface Wanted {
  readonly k: number;
  readonly rescore: boolean;
  readonly filter: SearchOptions['filter'];
  readonly nprobe: number | undefined;
  readonly exact: boolean;
}

/** What a search reads of its store, handed in by the store that owns it. */
export interface SearchEnv {
  readonly metric: Metric;
  /** Candidates rescored per result wanted. */
  readonly oversample: number;
  readonly space: VectorSpace;
  readonly reads: RecordReads;
  readonly scorer: ExactScorer;
  readonly cache: LookasideCache<SearchHit[]> | undefined;
  /** The store's index now (training replaces it). */
  index(): VectorIndex;
  /** Changes to the index so far (writes applied, records set aside): a search that read files in between can tell its snapshot moved. */
  writes(): number;
  /** Runs `step` with every accepted write applied and the next ones held back until it is done (CommitPipeline.exclusive). */
  exclusive<T>(step: () => Promise<T>): Promise<T>;
  /** Where the full vector of the stored record in `slot` of the index lives; CORRUPTION (naming it: `idOf(slot)`) when none is. */
  placeAt(slot: number, idOf: (slot: number) => string): VectorPlace;
  /**
   * The document of a stored record; CORRUPTION (naming it) when damaged. `slot`, when given, is
   * the record's slot in the index now, which spares a lookup by id.
   */
  docOf(id: string, slot?: number): DocRecord;
  /** Sets a record aside as damaged; returns the error `get` will throw for it. */
  markDamaged(id: string, e: unknown): MemstoreError;
  /** Marks `id` damaged for a bad text at `ref`, unless a write has replaced the record meanwhile. */
  setAsideIfUnchanged(id: string, ref: BlobRef | undefined, e: unknown): void;
}

/** What a search that the cache will remember collects in its scan, and how it hands it over. */
interface Remember {
  /** How far below the k-th best score the pool reaches, and how many it keeps at most (ScorePool). */
  readonly reach: number;
  readonly room: number;
  /** Takes the scan's top-k (sorted best first) and its pool. */
  take(scan: ScanQuery, top: TopK, pool: ScorePool): void;
}

/**
 * The fewest vectors an exact search's int8 screen keeps before it gives up and scores every code
 * with the float query instead (16 per candidate when that is more): what lies within the screen's
 * drop is a few dozen to a few hundred on the sets measured (README, "How a search runs").
 */
const EXACT_SCREEN_ROOM = 4096;

/**
 * A screen that leaves more than 1/SCREEN_WORTH of the store to score with the float query did not
 * pay for its int8 scan; the next SCREEN_REST exact searches then scan with the float query alone
 * (data like that stays like that), and the one after tries the screen again.
 */
const SCREEN_WORTH = 8;
const SCREEN_REST = 64;

/** A ranked candidate before its text is read. */
interface Ranked {
  readonly id: string;
  readonly score: number;
  /** Its document; undefined when `known` gives its text and metadata. */
  readonly doc: DocRecord | undefined;
  /** Whether its document and text are worth keeping hot (LookasideCache.admitRecord). */
  readonly keep: boolean;
  /** Its hit in a cached answer computed at the current write (text and metadata as of now), if there is one. */
  readonly known: SearchHit | undefined;
}

/** How finish() turns candidates into an answer, beside the candidates themselves. */
interface Finishing {
  /** The rescoring bound (rescore-bound.ts), made when first needed. */
  readonly bound: () => RescoreBound | undefined;
  /** Hits whose text and metadata are known as of now (a near hit's entry's answer), by id. */
  readonly known?: () => ReadonlyMap<string, SearchHit> | undefined;
  /** The vectors past the candidates whose bounds may still reach the answer (PCA stores; beyondOf()), when there can be any. */
  readonly beyond?: () => Beyond | undefined;
}

/**
 * The vectors a scan did not pick, for a store whose bounds cover what PCA drops (RESCORING.md,
 * "Past the scan's candidates"): a vector outside the candidates can enter the answer only if its
 * scan score is at least `threshold(T)`, T the k-th best exact score found; `take` hands them over.
 */
interface Beyond {
  /** The bound of the vectors taken in (rescore-bound.ts, with what the projection drops). */
  readonly bound: RescoreBound;
  /** The least score, under the scan's kernel form, at which a vector's bound reaches `floor`. */
  threshold(floor: number): number;
  /** The least scan score among the candidates: every vector outside them scored at most this. */
  readonly last: number;
  /**
   * The vectors outside the candidates scoring at least `threshold`, best first, at most
   * BEYOND_ROOM: from the scan's widened top when it holds them all, else from a second scan
   * (synchronous, on the store and pages the first one saw). `capped` when more were there.
   */
  take(threshold: number): { readonly more: BoundCandidate[]; readonly capped: boolean };
}

/**
 * What a widened top held past a scan's candidates (rank()): `complete` when it held every vector
 * the scan saw; `least` the least of `scores` (Infinity when there is none).
 */
interface Kept {
  readonly slots: Int32Array;
  readonly scores: Float64Array;
  readonly least: number;
  readonly complete: boolean;
}

/**
 * What `top` holds (after sortBestFirst(): `count` entries) other than the `chosen` candidates, and
 * whether that is every vector its scan saw (it did not fill its capacity).
 */
function keptOf(top: TopK, count: number, chosen: ReadonlySet<number>): Kept {
  const slots: number[] = [];
  const scores: number[] = [];
  let least = Infinity;
  for (let i = 0; i < count; i++) {
    const slot = top.slotAt(i);
    if (chosen.has(slot)) continue;
    slots.push(slot);
    scores.push(top.scoreAt(i));
    least = Math.min(least, top.scoreAt(i));
  }
  return { slots: Int32Array.from(slots), scores: Float64Array.from(scores), least, complete: count < top.capacity };
}

/** Whether `kept` holds every vector its scan saw scoring at least `threshold`: all of them, or every one above its least. */
function covers(kept: Kept, threshold: number, last: number): boolean {
  return kept.complete || threshold > Math.min(kept.least, last);
}

/**
 * The vectors of `kept` scoring at least `threshold`, best first (equal scores by lower slot), at
 * most BEYOND_ROOM; `capped` when more were there, or `kept` may not hold them all.
 */
function beyondKept(kept: Kept, threshold: number, last: number): { more: BoundCandidate[]; capped: boolean } {
  const more: BoundCandidate[] = [];
  for (let i = 0; i < kept.slots.length; i++) if (kept.scores[i]! >= threshold) more.push({ slot: kept.slots[i]!, kernel: kept.scores[i]! });
  more.sort((x, y) => y.kernel - x.kernel || x.slot - y.slot);
  const capped = more.length > BEYOND_ROOM || !covers(kept, threshold, last);
  if (more.length > BEYOND_ROOM) more.length = BEYOND_ROOM;
  return { more, capped };
}

function copyHit(h: SearchHit): SearchHit {
  // Made whole in one literal where both are there (the usual hit): one shape, no transitions.
  if (h.text !== undefined && h.meta !== undefined) return { id: h.id, score: h.score, text: h.text, meta: cloneMeta(h.meta as Meta) };
  const out: SearchHit = { id: h.id, score: h.score };
  if (h.text !== undefined) out.text = h.text;
  if (h.meta !== undefined) out.meta = cloneMeta(h.meta as Meta);
  return out;
}

/** A candidate whose full vector is read from the store for rescoring. */
interface Source {
  readonly slot: number;
  /**
   * Where its full vector is. The first k candidates' are taken at once; the rest's only when read,
   * or before anything is awaited (a write may move slots then): most of an rq search's 120
   * candidates are never read, and taking each one's place cost about 0.25 µs.
   */
  place: VectorPlace | undefined;
  /** Its kernel score, which its error bound starts from. */
  readonly kernel: number;
  /** For a candidate hot in the cache whose bound decides it (an rq store's past the first k), its place among the hot scores. */
  readonly hot?: number | undefined;
}

/** A source whose place is taken: what reads take. */
type Placed = Source & { readonly place: VectorPlace };

/** A candidate with its score: exact once rescored. */
interface Scored {
  readonly slot: number;
  readonly score: number;
}

/** What one rescoring batch reads and writes, shared by its steps. */
interface Batch {
  readonly q: Float32Array;
  readonly qNorm: number;
  /** The write count when the places of its sources were taken. */
  readonly since: number;
  readonly ranked: Scored[];
  readonly scores: Float64Array;
  readonly norms: Float64Array;
  readonly idOf: (slot: number) => string;
}

/** The score of an l2 kernel score κ = −(squared distance): −√(−κ), and 0 (not −0) where κ ≥ 0. */
function distanceScore(kernel: number): number {
  return kernel >= 0 ? 0 : -Math.sqrt(-kernel);
}

/**
 * Candidates past the first k read per batch while rescoring: after each, the k-th best exact score
 * is taken again and the bounds cut the next batch by it (RESCORING.md, "The rule").
 */
const RESCORE_CHUNK = 16;

/**
 * The most vectors past the scan's candidates one search takes in (RESCORING.md, "Past the scan's
 * candidates"): a PCA that drops much of the data's variance could otherwise read most of the store.
 */
export const BEYOND_ROOM = 4096;

/**
 * A PCA store's scan keeps this many times its candidates in its top (rank()): on the 50k sentence
 * set with PCA to 128 (int8, 40 candidates) about half the searches took in vectors past them, 25 or
 * so each, and a second scan for those cost 1.6x to 2x the search.
 */
const BEYOND_WIDEN = 4;

/**
 * What rescoring did, for stats(): searches, their candidates (those the scan picked and those
 * taken in past them), and those their error bounds let go unread.
 */
export interface RescoringStats {
  searches: number;
  candidates: number;
  skipped: number;
  /** Of `candidates`, those taken in past the scan's by searches of a PCA store, whose bounds reached the answer (RESCORING.md, "Past the scan's candidates"). */
  beyond: number;
  /** Searches that took in vectors past the scan's candidates. */
  extended: number;
  /** Searches whose bounds reached past what they could take in: more than BEYOND_ROOM vectors. */
  capped: number;
}

/** Times a search ranks again because writes moved the store while it read vectors, before it holds writes back for its last try. */
const MOVED_RETRIES = 3;

/** Whether `a` and `b` ask without a filter and with the same other options that shape an answer. */
function sameUnfiltered(a: Wanted, b: Wanted): boolean {
  return a.filter === undefined && b.filter === undefined && a.k === b.k && a.rescore === b.rescore && a.exact === b.exact && a.nprobe === b.nprobe;
}

/** The options that shape an answer, as the cache keys it. */
function keyOf(want: Wanted): string {
  return JSON.stringify([want.k, want.filter ?? null, want.rescore, want.exact, want.nprobe ?? null]);
}

/**
 * The hit the cache keeps for `r`: its metadata the store's own object, not a copy (the store never
 * changes a document's metadata in place, and the cache hands out only copies, copyHit()), so
 * remembering an answer clones no metadata.
 */
function keptHitOf(r: Ranked, text: string | undefined): SearchHit {
  const from = r.known;
  const hit: SearchHit = { id: r.id, score: r.score };
  const kept = from !== undefined ? from.text : text;
  if (kept !== undefined) hit.text = kept;
  const meta = from !== undefined ? from.meta : r.doc?.meta;
  if (meta !== undefined) hit.meta = meta;
  return hit;
}

/** The hit a caller gets for `r`: the kept one's copy (copyHit), which the caller may change. */
function hitOf(r: Ranked, text: string | undefined): SearchHit {
  return copyHit(keptHitOf(r, text));
}

/** What the cache counts for remembering an answer: ids, texts and metadata as UTF-16, and a little for each hit. */
function answerBytes(ranked: readonly Ranked[], texts: readonly (string | undefined)[]): number {
  return ranked.reduce((n, r, i) => n + 64 + 2 * r.id.length + 2 * (texts[i]?.length ?? 0) + 2 * (r.doc?.metaJson?.length ?? 0), 0);
}

/**
 * The read path of a store: query → (the lookaside cache, which may answer) → the index's scan →
 * candidates → rescoring with the full-precision vectors (one WebAssembly batch) → texts. Damage
 * met on the way sets its record aside and the search ranks again without it; writes that land
 * while it reads vectors make it rank again (or, after a few tries, take what it read).
 */
export class SearchPath {
  readonly rescoring: RescoringStats = { searches: 0, candidates: 0, skipped: 0, beyond: 0, extended: 0, capped: 0 };
  private lastKey: { readonly want: Wanted; readonly key: string } | undefined;
  /** The pool a scan collects for the cache: handed over in the same synchronous step, so one serves every search. */
  private readonly pool = new ScorePool();
  /** exactByBound()'s pool, made by the first exact search of int8 codes. */
  private screenPool: ScorePool | undefined;
  /** Whether exact searches of int8 codes screen with the int8 query first (exactByBound()); tests compare with the float scan alone. */
  private exactScreen = true;
  /** Exact searches left to run without the screen after one whose screen did not pay (exactByBound()). */
  private screenRests = 0;
  private form: Int8Array | undefined;
  /**
   * finish()'s top-k of exact scores, given back when a search is done with it: a top-k of k has
   * arrays too long for V8's heap (0.7 µs each to make, a CPU profile of near hits), and a search
   * that finds it taken (another in flight) makes its own.
   */
  private spareBest: TopK | undefined;
  /** scoreSourcesNow()'s places to prefetch (only its first entries are current). */
  private readonly prefetchPlaces: VectorPlace[] = [];
  /** rank()'s top-k, kept for the next search (topFor()). */
  private rankTop: { readonly index: VectorIndex; readonly top: TopK } | undefined;
  /** fromMaps()'s flags, grown, never per batch. */
  private mapFlags = new Uint8Array(0);

  constructor(private readonly env: SearchEnv) {}

  /** The store replaced its index (pages laid out, training): what is kept for the old one goes, not held until the next search. */
  indexReplaced(): void {
    this.rankTop = undefined;
  }

  /**
   * The remembered answer of a query with these exact bits and options when nothing was written
   * since (a copy), or undefined. `q` need not be checked: only a checked query is remembered.
   */
  repeat(q: Uint8Array, want: Wanted): SearchHit[] | undefined {
    return this.env.cache?.repeat(q, this.keyOf(want), this.env.index())?.map(copyHit);
  }

  /** A scratch int8 code of `dim` bytes for a query's kernel form. */
  private formScratch(dim: number): Int8Array {
    if (this.form?.length !== dim) this.form = new Int8Array(dim);
    return this.form;
  }

  /**
   * keyOf(want), made once for the one `want` a search asks repeat() and then search() with, and
   * kept for the next searches with equal options and no filter (JSON.stringify was a tenth of an
   * exact hit). A filter is the caller's object, which may have changed in place since: a search
   * with one makes its key afresh.
   */
  private keyOf(want: Wanted): string {
    const last = this.lastKey;
    if (last !== undefined && (last.want === want || sameUnfiltered(last.want, want))) return last.key;
    const key = keyOf(want);
    this.lastKey = { want, key };
    return key;
  }

  /** The `want.k` stored records closest to `q` (a checked copy of the query), best first. */
  async search(q: Float32Array, want: Wanted): Promise<SearchHit[]> {
    const cache = this.env.cache;
    if (cache === undefined) return this.searchPlain(q, want);
    // A filtered search of a page index probes pages by the share its filter takes, which no pool
    // vouches for: its answer serves repeats of it while nothing is written, and nothing else.
    // Every way out settles the cache: the documents and texts a search keeps hot are trimmed to the
    // budget only there, and a search that a write overtook (remembering nothing) or that fell back
    // to the plain path had kept them past it (20 times the budget, found by a hostile pass).
    if (!this.env.index().collectsPools(want)) {
      // Its repeat is served here too: a query given as number[] never reaches repeat() before the
      // check (MemStore.search), and its filtered repeats had searched again every time (a hostile pass).
      const key = this.keyOf(want);
      const again = cache.repeat(new Uint8Array(q.buffer, q.byteOffset, q.byteLength), key, this.env.index());
      if (again !== undefined) return again.map(copyHit);
      return this.settled(cache, this.searchRemembered(q, want, key));
    }
    const served = await this.searchCached(q, want, this.keyOf(want));
    if (served !== undefined) return served;
    return this.settled(cache, this.searchPlain(q, want));
  }

  /** `hits`, once the cache has trimmed what it holds to its budget (LookasideCache.settle). */
  private async settled(cache: LookasideCache<SearchHit[]>, hits: Promise<SearchHit[]>): Promise<SearchHit[]> {
    try {
      return await hits;
    } finally {
      cache.settle();
    }
  }

  private async searchPlain(q: Float32Array, want: Wanted): Promise<SearchHit[]> {
    const { ranked, texts } = await this.rankWithTexts(q, want);
    return ranked.map((r, i) => hitOf(r, texts[i]));
  }

  /** The ranked answer and its texts, ranking again when writes moved the texts it read. */
  private async rankWithTexts(q: Float32Array, want: Wanted): Promise<{ ranked: Ranked[]; texts: (string | undefined)[] }> {
    for (;;) {
      const ranked = await this.rankSkippingDamage(q, want);
      const texts = await this.textsOf(ranked);
      if (texts !== undefined) return { ranked, texts };
    }
  }

  /** searchPlain(), its answer remembered for repeat() when no write came in between (LookasideCache.rememberAnswer). */
  private async searchRemembered(q: Float32Array, want: Wanted, key: string): Promise<SearchHit[]> {
    const cache = this.env.cache!;
    cache.noteMiss();
    const version = cache.now;
    const index = this.env.index();
    const { ranked, texts } = await this.rankWithTexts(q, want);
    // The cache keeps `kept`; the caller gets copies, which it may change.
    const kept = ranked.map((r, i) => keptHitOf(r, texts[i]));
    const hits = kept.map(copyHit);
    if (cache.now !== version || this.env.index() !== index) return hits;
    const { cq, scanForm } = this.cacheQuery(q, want, key, (scan) => index.kernelForm(scan));
    cache.rememberAnswer(cq, scanForm(), index, kept, version, answerBytes(ranked, texts));
    return hits;
  }

  /**
   * The query as `want`'s scan takes it: an `exact` search of an int8 store scores the float query
   * against the codes, not its int8 code, whose rounding drops every component under 1/254 of the
   * largest (the one vector scoring on them had ranked last under `exact: true`; a hostile pass).
   */
  private scanQueryFor(q: Float32Array, want: Wanted): ScanQuery {
    const scan = this.env.space.scanQueryOf(q);
    return want.exact && scan.int8Query ? { ...scan, int8Query: false } : scan;
  }

  /** The cache's view of a search of `q` (CacheQuery), its scan form made at first use, once. */
  private cacheQuery(q: Float32Array, want: Wanted, key: string, kernelForm: (scan: ScanQuery) => KernelForm): { cq: CacheQuery; scanForm: () => ScanQuery } {
    let form: ScanQuery | undefined;
    let scope: { now: SearchScope | undefined } | undefined;
    const scanForm = () => (form ??= this.scanQueryFor(q, want));
    const cq: CacheQuery = {
      query: q,
      key,
      filter: want.filter,
      candidates: this.candidateCount(want),
      scanQuery: () => scanForm(),
      kernelForm: () => kernelForm(scanForm()),
      scope: () => (scope ??= { now: this.env.index().scopeOf(scanForm(), want, cq.candidates) }).now,
    };
    return { cq, scanForm };
  }

  /** Candidates a scan picks for `want`: k, or k times the oversampling when rescoring, at most the store's size. */
  private candidateCount(want: Wanted): number {
    return Math.min(this.env.index().size, want.rescore ? want.k * this.env.oversample : want.k);
  }

  /**
   * A search through the lookaside cache: an answer it proves (CACHE.md), or, when it cannot, a
   * search whose scan it remembers. Undefined only when damage interrupted it (the caller searches
   * again without the cache's help).
   */
  private async searchCached(q: Float32Array, want: Wanted, key: string): Promise<SearchHit[] | undefined> {
    const cache = this.env.cache!;
    let kernelForm: KernelForm | undefined;
    // Used within lookup() only (synchronously), so one scratch code serves every search.
    const { cq, scanForm } = this.cacheQuery(q, want, key, (scan) => (kernelForm ??= this.env.index().kernelForm(scan, this.formScratch(this.env.index().dim))));
    const host: CacheHost = { index: this.env.index(), matches: (id, filter) => this.env.index().has(id) && (filter === undefined || matchesFilter(this.env.docOf(id).meta, filter)) };
    let look: CacheLookup<SearchHit[]>;
    try {
      look = cache.lookup(cq, host);
    } catch (e) {
      const id = damagedId(e);
      if (id === undefined) throw e;
      this.env.markDamaged(id, e);
      return undefined;
    }
    if (look.kind === 'answer') return look.answer.map(copyHit);
    const version = cache.now;
    const index = this.env.index();
    let ranked: Ranked[] | undefined;
    let entry: CacheEntry<SearchHit[]> | undefined;
    let answerOnly = false;
    try {
      if (look.kind === 'candidates') {
        const near = look.near ? look.entry : undefined;
        ranked = await this.finish(q, want.rescore ? 0 : (scanForm().offset ?? 0), look.candidates, want, {
          bound: () => this.boundOf(scanForm()),
          beyond: () => this.beyondOf(scanForm(), want, look.candidates, undefined),
          known: () => {
            const answer = near === undefined ? undefined : cache.answerNow(near);
            return answer === undefined ? undefined : new Map(answer.map((h) => [h.id, h]));
          },
        });
        if (!look.near) entry = look.entry;
      } else {
        // An exact search screened by the int8 query (exactByBound()) collects no pool of float-query
        // scores: its answer serves its exact repeats while nothing is written, and near queries search.
        answerOnly = this.screensExact(index, want) || !cache.collectsPool();
        const remember: Remember | undefined = answerOnly ? undefined : { reach: cache.poolReach(cq), room: cache.poolRoom(cq, index.size), take: (scan, top, pool) => (entry = cache.remember(cq, scan, index, top, pool)) };
        ranked = await this.rank(q, want, remember, scanForm());
      }
    } catch (e) {
      const id = damagedId(e);
      if (id === undefined) throw e;
      this.env.markDamaged(id, e);
      return undefined;
    }
    // Undefined: writes moved the store while vectors were read; the plain search starts over.
    if (ranked === undefined) return undefined;
    const texts = await this.textsOf(ranked);
    cache.settle();
    if (texts === undefined) return undefined;
    // The cache keeps `kept`; the caller gets copies, which it may change.
    const kept = ranked.map((r, i) => keptHitOf(r, texts[i]));
    if (entry !== undefined) cache.answered(entry, kept, version, answerBytes(ranked, texts));
    // rememberAnswer() itself drops an answer computed before a write.
    else if (answerOnly && this.env.index() === index) cache.rememberAnswer(cq, scanForm(), index, kept, version, answerBytes(ranked, texts));
    return kept.map(copyHit);
  }

  /**
   * rank(), setting aside each damaged record it meets and ranking again without it, and ranking
   * again when writes moved the store while it read vectors. After a few such tries the last one
   * holds writes back until it is done (a few reads), so a search racing a stream of writes still
   * ends with an answer of one moment. It had taken the documents of the moment instead, for
   * candidates the scan picked before: records its filter no longer took, and deleted ones without
   * their document (a hostile pass, with a file layer that reads asynchronously).
   */
  private async rankSkippingDamage(q: Float32Array, want: Wanted): Promise<Ranked[]> {
    for (let moved = 0; moved < MOVED_RETRIES; moved++) {
      const ranked = await this.rankUnlessMoved(q, want);
      if (ranked !== undefined) return ranked;
    }
    return this.env.exclusive(async () => {
      // Writes are held back: only a record set aside as damaged moves the store now, and each is set aside once.
      for (;;) {
        const ranked = await this.rankUnlessMoved(q, want);
        if (ranked !== undefined) return ranked;
      }
    });
  }

  /** rank() once damage it meets is set aside; undefined when writes (or set-asides) moved the store while it read. */
  private async rankUnlessMoved(q: Float32Array, want: Wanted): Promise<Ranked[] | undefined> {
    for (;;) {
      try {
        return await this.rank(q, want, undefined, this.scanQueryFor(q, want));
      } catch (e) {
        const id = damagedId(e);
        if (id === undefined) throw e;
        this.env.markDamaged(id, e);
      }
    }
  }

  /**
   * The scan picks the candidates (synchronously, so no write interleaves with it), finish() turns
   * them into the answer. With `remember`, the scan also collects the cache's pool and hands both over.
   */
  private rank(q: Float32Array, want: Wanted, remember: Remember | undefined, scan: ScanQuery): Promise<Ranked[] | undefined> {
    const candidates = this.candidateCount(want);
    const index = this.env.index();
    // A PCA store's scan keeps BEYOND_WIDEN times its candidates (not when it collects the cache's
    // pool, whose line its top sets): what finish() takes in past them is nearly always among those.
    const widened = remember === undefined && this.reachesBeyond(scan, want) ? Math.min(index.size, BEYOND_WIDEN * candidates) : candidates;
    const top = this.topFor(index, Math.max(1, widened));
    const pool = remember === undefined ? undefined : this.pool;
    pool?.reset(remember!.reach, remember!.room);
    const test = want.filter === undefined ? undefined : this.filterTest(index, want.filter);
    const accept = test?.accept;
    if (candidates > 0 && !(remember === undefined && want.exact && this.exactByBound(index, scan, top, test))) {
      index.search(scan, top, { accept, filter: test?.test, nprobe: want.nprobe, exact: want.exact, pool, wanted: candidates });
    }
    // Equal scores in id order, as the rescored answer sorts them. Rescoring needs only the k best
    // first (finish() orders what it bounds itself): sorting all 120 candidates of an rq2 search cost
    // 18 µs of it. The cache's pool takes them all in order; a widened top, its candidates.
    const sorted = widened > candidates ? candidates : remember === undefined && want.rescore ? Math.min(want.k, candidates) : candidates;
    const count = top.sortBestFirst(sorted);
    if (remember !== undefined) remember.take(scan, top, pool!);
    const chosen: Candidate[] = [];
    for (let i = 0; i < Math.min(count, candidates); i++) chosen.push({ slot: top.slotAt(i), score: top.scoreAt(i) });
    // What the widened top holds past the candidates, copied before anything is awaited (the top serves the next search).
    const kept = widened > candidates ? keptOf(top, count, new Set(chosen.map((c) => c.slot))) : undefined;
    return this.finish(q, scan.offset ?? 0, chosen, want, { bound: () => this.boundOf(scan), beyond: () => this.beyondOf(scan, want, chosen, kept) });
  }

  /** Whether a search of `scan` for `want` may take in vectors past its candidates (beyondOf()). */
  private reachesBeyond(scan: ScanQuery, want: Wanted): boolean {
    return this.droppedFor(scan, want) !== undefined;
  }

  /**
   * What the part of a stored vector PCA drops may add to a score of `scan` (VectorSpace.projectionSlack),
   * where a search for `want` looks past its candidates: rescored, k > 0, a finite slack and a codec
   * and metric beyondReach() knows; else undefined.
   */
  private droppedFor(scan: ScanQuery, want: Wanted): number | undefined {
    if (!want.rescore || want.k === 0) return undefined;
    const dropped = this.env.space.projectionSlack(scan, () => this.env.index().maxNorm());
    if (dropped === undefined || !(dropped < Infinity)) return undefined;
    return beyondReach(this.env.index(), scan, dropped, 0) === undefined ? undefined : dropped;
  }

  /**
   * An `exact` search of int8 codes scores the float query against every code (scanQueryFor()),
   * which costs two to four times the int8 query's scan. This finds the same candidates for less:
   * the int8 query's scan keeps, beside its own top, every vector within `drop` of its k-th best,
   * and only those are scored with the float query, into `top` (the caller's, which the float scan
   * would have filled). Every kernel score moves by at most `shift` = ‖v′ − v‖ · X plus rounding
   * from the int8 query's view v to the float one v′ (bounds.ts; X = 1 for cosine, the largest code
   * norm for dot), so a vector among the float scan's k best scores under v at least the k-th best
   * under v less twice that: with drop at least that much, every candidate and every vector that
   * ties with the last is in the pool, and TopK keeps the same k whatever order they come in.
   * False (the caller scans with the float query) when the scan is not such a one, the index
   * collects no pool for it (a filtered search of a page index: the int8 scan would be wasted), the
   * screen rests (below), or more than its room of vectors lie within the drop.
   */
  private exactByBound(index: VectorIndex, scan: ScanQuery, top: TopK, test: { test: FilterTest; accept: (slot: number) => boolean } | undefined): boolean {
    if (scan.int8Query || scan.metric === 'l2' || !this.screensExact(index, { exact: true })) return false;
    if (!index.collectsPools({ exact: true, filter: test?.test })) return false;
    if (this.screenRests > 0) {
      this.screenRests--;
      return false;
    }
    const coarse: ScanQuery = { ...scan, int8Query: true };
    const moved = this.floatShift(index, coarse);
    if (moved === undefined || !(moved < Infinity)) return false;
    const pool = (this.screenPool ??= new ScorePool());
    pool.resetBelow(2 * moved * (1 + 1e-6), Math.max(EXACT_SCREEN_ROOM, 16 * top.capacity));
    index.search(coarse, new TopK(top.capacity, idOrder(index)), { accept: test?.accept, filter: test?.test, exact: true, pool });
    const n = pool.collected;
    // A drop that takes in much of the store (a dot store whose largest code is far longer than
    // those that make its top k, or thousands of ties) costs the int8 scan and then the float scan
    // anyway: 2.2x to 3.3x the float scan alone (a hostile pass). The next searches go straight to
    // the float scan; either way the answer is the same.
    if (pool.overflowed || n > index.size / SCREEN_WORTH) this.screenRests = SCREEN_REST;
    if (pool.scope === null || pool.overflowed) return false;
    const slots = new Int32Array(n);
    const scores = new Float32Array(n);
    pool.copyTo(n, slots, scores);
    index.scoreSlots(scan, slots, n, scores);
    for (let i = 0; i < n; i++) top.push(scores[i]!, slots[i]!);
    return true;
  }

  /**
   * How far any kernel score under `scan`'s int8 code can be from the same score under its float
   * query, `scan.vector` (bounds.ts: ‖v′ − v‖ times 1 for cosine, the largest code norm for dot, plus
   * rounding); undefined when the index keeps no int8 code of it (a codec whose kernels take floats).
   */
  private floatShift(index: VectorIndex, scan: ScanQuery): number | undefined {
    const from = index.kernelForm(scan, this.formScratch(index.dim));
    if (from.kind !== 'int8') return undefined;
    const shift = scoreShift(scan.metric, from, { kind: 'float', vector: scan.vector }, scan.metric === 'cosine' ? 0 : index.maxNorm());
    return shift.delta * (scan.metric === 'cosine' ? 1 : shift.maxNorm) + shift.margin;
  }

  /** Whether an exact search with `want` is screened by its int8 query (exactByBound()): an int8 store scanned by dot or cosine. */
  private screensExact(index: VectorIndex, want: { readonly exact?: boolean | undefined }): boolean {
    return this.exactScreen && want.exact === true && index.codec.name === 'int8' && this.env.space.kernelMetric() !== 'l2';
  }

  /**
   * An empty top-k of `capacity` ordering ties by the ids of `index`: one kept from search to search
   * while both stay (a search uses it only before its first await, so searches in flight never share it).
   */
  private topFor(index: VectorIndex, capacity: number): TopK {
    const kept = this.rankTop;
    if (kept?.index === index && kept.top.capacity === capacity) {
      kept.top.clear();
      return kept.top;
    }
    const top = new TopK(capacity, idOrder(index));
    this.rankTop = { index, top };
    return top;
  }

  /**
   * `filter` compiled against the index's columns (made from the records' metadata when a field has
   * none yet), and the judge a scan asks about each vector good enough to enter its heap: the
   * columns, and the record's metadata only where they cannot tell. Undefined for the empty filter.
   */
  private filterTest(index: VectorIndex, filter: Filter): { test: FilterTest; accept: (slot: number) => boolean } | undefined {
    const test = index.columns.compile(filter, this.metaAtOf(index));
    if (test.everything) return undefined;
    const accept = (slot: number): boolean => {
      const verdict = test.test(slot);
      return verdict === 1 || (verdict === 2 && matchesFilter(this.env.docOf(index.idAt(slot)).meta, filter));
    };
    return { test, accept };
  }

  /**
   * The ids of the stored records `filter` matches, in slot order (the columns decide, the metadata
   * where they cannot; a document found damaged on the way is set aside and not listed).
   */
  idsMatching(filter: Filter): string[] {
    const index = this.env.index();
    const compiled = this.filterTest(index, filter);
    if (compiled === undefined) return [...index.allIds()];
    const { slots, count } = compiled.test.collect(new Int32Array(0));
    const sure: string[] = [];
    const unsure: string[] = [];
    for (let i = 0; i < count; i++) (compiled.test.test(slots[i]!) === 1 ? sure : unsure).push(index.idAt(slots[i]!));
    return [...sure, ...unsure.filter((id) => this.matchesNow(id, filter))];
  }

  /**
   * The distinct scalar values of `field` among the stored records (the columns' dictionary, and
   * the metadata of the records it cannot tell).
   */
  valuesOf(field: string): MetaValue[] {
    const index = this.env.index();
    const { values, unsure } = index.columns.valuesOf(field, this.metaAtOf(index));
    const found = new Set<MetaValue>(values);
    for (const id of unsure.map((slot) => index.idAt(slot))) {
      const meta = this.metaNow(id);
      const v = meta !== undefined && Object.prototype.hasOwnProperty.call(meta, field) ? meta[field] : undefined;
      if (v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) found.add(v);
    }
    return [...found];
  }

  /** Whether the stored record `id` matches `filter` by its metadata; false (and set aside) when its document is damaged. */
  private matchesNow(id: string, filter: Filter): boolean {
    const meta = this.metaNow(id);
    return meta !== undefined && matchesFilter(meta, filter);
  }

  /** The metadata of stored record `id`; undefined when it has none or its document is damaged (then set aside). */
  private metaNow(id: string): Record<string, unknown> | undefined {
    try {
      return this.env.docOf(id).meta;
    } catch (e) {
      if (damagedId(e) !== id) throw e;
      this.env.markDamaged(id, e);
      return undefined;
    }
  }

  /** A column's view of the records of `index`: each slot's metadata, UNREADABLE for a damaged document. */
  private metaAtOf(index: VectorIndex): (slot: number) => MetaOf {
    return (slot: number): MetaOf => {
      try {
        return this.env.docOf(index.idAt(slot)).meta;
      } catch (e) {
        // Its damage is met again, and handled, when a search asks its metadata.
        if (damagedId(e) !== undefined) return UNREADABLE;
        throw e;
      }
    };
  }

  /**
   * The answer from the scan's candidates (the k best kernel scores first, in order; the others in any
   * order when rescoring): rescored, or their scores
   * converted. Where each candidate's full vector is (hot in the cache, or a place in the vector
   * arena) is taken before anything is awaited (the first k's before the first read, the others'
   * when read if nothing was awaited before), so the scores are those of the store the scan saw.
   * Rescoring reads a vector only while its error bound (rescore-bound.ts, made by `bound` when
   * first needed) can still reach the k-th best exact score: the first k (and, for scalar codes, the
   * hot vectors and those in memory) set that score, and the rest are read only if they can beat it
   * (RESCORING.md, "The rule"). Undefined when writes came in
   * while vectors were read (the documents read after them could be newer than the scores); damage
   * found in a vector still in place is thrown. Results `how.known`
   * knows (looked up once the scores are final, with nothing awaited after) take their text and
   * metadata from there.
   */
  private async finish(q: Float32Array, offset: number, candidates: readonly Candidate[], want: Wanted, how: Finishing): Promise<Ranked[] | undefined> {
    const { bound } = how;
    const index = this.env.index();
    // The candidates' slots are the index's now: while no write comes in, each answer's document is
    // looked up by its slot rather than by its id.
    const writesBefore = this.env.writes();
    // A candidate's id is made from the index only when needed: for the answer, a read that fails,
    // a vector kept hot, or a tie. Before anything is awaited every id is made: a write may move
    // slots while the search waits.
    const ids = new Map<number, string>();
    const idOf = (slot: number): string => {
      let id = ids.get(slot);
      if (id === undefined) ids.set(slot, (id = index.idAt(slot)));
      return id;
    };
    // The answer's order: the higher score first, the lower id among equal scores.
    const byScoreThenId = (a: Scored, b: Scored): number => {
      if (b.score !== a.score) return b.score - a.score;
      const x = idOf(a.slot);
      const y = idOf(b.slot);
      return x < y ? -1 : x > y ? 1 : 0;
    };
    const placed = (sources: Source[]): Placed[] => {
      for (const source of sources) source.place ??= this.env.placeAt(source.slot, idOf);
      return sources as Placed[];
    };
    // Read first: the vectors not hot among the k best by kernel score; the rest, only if they can still enter.
    const first: Placed[] = [];
    const rest: Source[] = [];
    const beforeAwait = () => {
      for (const c of candidates) idOf(c.slot);
      placed(rest);
    };
    let ranked: Scored[];
    if (want.rescore) {
      const writes = this.env.writes();
      const qNorm = norm(q);
      // Hot vectors are scored now, in place and in one batch, before anything is awaited (a view
      // into the cache is valid until its next keepVector()); the others are read, then scored in
      // batches. An rq store's hot candidates past the first k wait with their scores for their bounds.
      ranked = [];
      // An rq bound holds with high probability only, so which candidates past the first k are scored
      // must not depend on where their vectors are: each is decided by its bound in kernel order,
      // hot, in memory or on disk alike, and the answer is the same with the cache as without it, and
      // whatever the page cache holds (RESCORING.md, "Where a vector is does not change the answer").
      // The scalar codes' bounds are proofs: reading a candidate they would let go changes nothing.
      const everyBounded = isRqCodec(index.codec.name);
      const cache = this.env.cache;
      const hot: Float32Array[] = [];
      const hotNorms: (number | undefined)[] = [];
      // The hot candidates ranked at once: their slots, and their places in `hot`.
      const hotNow: number[] = [];
      const hotNowAt: number[] = [];
      let hotLater = 0;
      for (const [i, c] of candidates.entries()) {
        const h = cache?.hotVectorAt(c.slot, index);
        if (h !== undefined) {
          if (!everyBounded || i < want.k) hotNow.push(c.slot), hotNowAt.push(hot.length);
          else rest.push({ slot: c.slot, place: undefined, kernel: c.score, hot: hot.length }), hotLater++;
          hot.push(h.full);
          hotNorms.push(h.norm);
        } else if (i < want.k) first.push({ slot: c.slot, place: this.env.placeAt(c.slot, idOf), kernel: c.score });
        else rest.push({ slot: c.slot, place: undefined, kernel: c.score, hot: undefined });
      }
      const scores = new Float64Array(Math.max(hot.length, first.length + rest.length));
      const norms = new Float64Array(scores.length);
      this.env.scorer.score(q, qNorm, hot, hotNorms, scores, norms);
      // The scores of the hot candidates whose turn is to come, kept apart: reads score into `scores`.
      const hotScores = hotLater > 0 ? scores.slice(0, hot.length) : undefined;
      hotNow.forEach((slot, i) => ranked.push({ slot, score: scores[hotNowAt[i]!]! }));
      cache?.savedReads(hotNow.length);
      const batch: Batch = { q, qNorm, since: writes, ranked, scores, norms, idOf };
      const firstNow = this.scoreSourcesNow(first, batch);
      if (firstNow === undefined) return undefined;
      if (!firstNow) {
        beforeAwait();
        if ((await this.scoreSourcesLater(first, batch)) === undefined) return undefined;
      }
      // A write since the places were taken: the search starts over, so the rest need not be read.
      if (this.env.writes() !== writes) return undefined;
      // An rq store's candidates past the first k are each decided by one line, the k-th best exact
      // score of the first k, whatever their order and wherever their vectors are. A scalar store's
      // whose vector is in memory are read at once: a read there costs less than its bound
      // (RESCORING.md, "Reads that would wait for the disk"). Its others are bounded, only over the
      // store the scan saw (slots and codes are those the bound reads): each one's bound is taken
      // once, after the reads from memory, and they are read a chunk at a time, in kernel order; the
      // k-th best exact score rises as they come in, so each chunk is cut by the best line known.
      // Strictly below it, a candidate would not be in the answer.
      let skipped = 0;
      let order: Source[] = rest;
      let inMemory = rest.length;
      if (rest.length > 0 && ranked.length >= want.k && this.env.writes() === writes) {
        if (everyBounded) {
          inMemory = 0;
        } else {
          const resident: Source[] = [];
          const onDisk: Source[] = [];
          const now = performance.now();
          for (const source of placed(rest)) (this.env.reads.vectorResident(source.place, now) ? resident : onDisk).push(source);
          // Those bounded are read best estimate first, so that the k-th best exact score rises early.
          if (onDisk.length > 1) onDisk.sort((a, b) => b.kernel - a.kernel);
          order = resident.concat(onDisk);
          inMemory = resident.length;
        }
      }
      // The k best exact scores so far, fed as `ranked` grows (sorting it again for every chunk cost
      // 28 µs a search on rq2, whose rescoring takes ten chunks and more). Only with bounds, which
      // need k scores: a k past the candidates (up to MAX_K) allocates nothing.
      let best: TopK | undefined;
      let uppers: Float64Array | undefined;
      let line = -Infinity;
      let fed = 0;
      // The places of `rest` were taken before anything was awaited, if anything was: a write since
      // then makes them stale (scoreLoaded() must not keep what they hold hot).
      for (let at = 0; at < order.length; ) {
        let chunk: Source[];
        if (at < inMemory) {
          // A chunk at a time, as the others: one batch of them all would grow the scorer's scratch in
          // linear memory, which never shrinks, to (M − k) vectors for good after one search of a large k.
          chunk = order.slice(at, Math.min(inMemory, at + RESCORE_CHUNK));
          at += chunk.length;
        } else {
          if (at === inMemory && best === undefined && ranked.length >= want.k && this.env.writes() === writes) {
            const b = bound();
            if (b !== undefined) {
              best = this.takeBest(want.k);
              for (; fed < ranked.length; fed++) best.push(ranked[fed]!.score, fed);
              // The k-th best exact score now is the floor the bounds are asked about: a candidate shown
              // to be below it needs no finer bound (RescoreBound.uppers), since the line only rises.
              line = best.kthBest();
              uppers = b.uppers(order.slice(inMemory), line);
            }
          }
          if (uppers !== undefined && best !== undefined && ranked.length >= want.k && this.env.writes() === writes) {
            if (!everyBounded) {
              for (; fed < ranked.length; fed++) best.push(ranked[fed]!.score, fed);
              line = best.kthBest();
            }
            chunk = [];
            for (; at < order.length && chunk.length < RESCORE_CHUNK; at++) {
              if (uppers[at - inMemory]! < line) skipped++;
              else chunk.push(order[at]!);
            }
          } else {
            chunk = order.slice(at);
            at = order.length;
          }
        }
        if (hotScores !== undefined) {
          const cold: Source[] = [];
          for (const c of chunk) {
            if (c.hot === undefined) cold.push(c);
            else ranked.push({ slot: c.slot, score: hotScores[c.hot]! }), cache!.savedReads(1);
          }
          chunk = cold;
        }
        if (chunk.length === 0) continue;
        const reading = placed(chunk);
        const restNow = this.scoreSourcesNow(reading, batch);
        if (restNow === undefined) return undefined;
        if (!restNow) {
          beforeAwait();
          if ((await this.scoreSourcesLater(reading, batch)) === undefined) return undefined;
        }
      }
      // Past the scan's candidates (a PCA store): the vectors whose bounds still reach the k-th best exact score.
      // Counted once the search holds (a try a write overtook counts nothing).
      let taken = 0;
      let cappedHere = false;
      const beyond = want.k > 0 && ranked.length >= want.k && this.env.writes() === writes ? how.beyond?.() : undefined;
      if (beyond !== undefined) {
        best ??= this.takeBest(want.k);
        for (; fed < ranked.length; fed++) best.push(ranked[fed]!.score, fed);
        const threshold = beyond.threshold(best.kthBest());
        if (threshold <= beyond.last) {
          const { more, capped } = beyond.take(threshold);
          taken = more.length;
          cappedHere = capped;
          const ups = beyond.bound.uppers(more, best.kthBest());
          const sources: Source[] = more.map((c) => ({ slot: c.slot, place: undefined, kernel: c.kernel }));
          // Chunks of RESCORE_CHUNK: the batch's score arrays were sized for the candidates not hot, which may be fewer.
          const wide: Batch = { ...batch, scores: new Float64Array(RESCORE_CHUNK), norms: new Float64Array(RESCORE_CHUNK) };
          for (let at = 0; at < sources.length; ) {
            for (; fed < ranked.length; fed++) best.push(ranked[fed]!.score, fed);
            const kth = best.kthBest();
            const chunk: Source[] = [];
            for (; at < sources.length && chunk.length < RESCORE_CHUNK; at++) {
              if (ups[at]! < kth) skipped++;
              else chunk.push(sources[at]!);
            }
            if (chunk.length === 0) continue;
            const reading = placed(chunk);
            const now = this.scoreSourcesNow(reading, wide);
            if (now === undefined) return undefined;
            if (!now) {
              // Every place and id taken before anything is awaited (a write could move slots meanwhile).
              beforeAwait();
              placed(sources.slice(at));
              for (const c of more) idOf(c.slot);
              if ((await this.scoreSourcesLater(reading, wide)) === undefined) return undefined;
            }
          }
        }
      }
      if (best !== undefined) this.spareBest = best;
      // The write count only grows: any write since the places were taken shows here.
      if (this.env.writes() !== writes) return undefined;
      this.rescoring.searches++;
      this.rescoring.candidates += candidates.length + taken;
      this.rescoring.skipped += skipped;
      this.rescoring.beyond += taken;
      this.rescoring.extended += taken > 0 ? 1 : 0;
      this.rescoring.capped += cappedHere ? 1 : 0;
      // Only the k best need their order: those scoring at least the k-th best score (ties with it
      // included, which the order below settles by id) are sorted, not every candidate read.
      if (ranked.length > want.k && want.k > 0) {
        const select = this.takeBest(want.k);
        for (let i = 0; i < ranked.length; i++) select.push(ranked[i]!.score, i);
        const kth = select.kthBest();
        this.spareBest = select;
        // Exact scores are finite; were one not, every candidate would go to the sort, as before.
        if (kth > -Infinity) ranked = ranked.filter((r) => r.score >= kth);
      }
      ranked.sort(byScoreThenId);
      ranked.length = Math.min(ranked.length, want.k);
    } else {
      const l2 = this.env.space.kernelMetric() === 'l2';
      const cosine = this.env.metric === 'cosine';
      // A codes-only cosine is an estimate, and can come out past 1 (a vector queried with itself:
      // int8 up to 1.003, rq1 1.03; a hostile pass) or below -1: it reads as 1 or -1, as a rescored one does.
      ranked = candidates.slice(0, want.k).map(({ slot, score }) => ({ slot, score: l2 ? distanceScore(score) : cosine ? clampCosine(score + offset) : score + offset }));
      // So, too, rq codes estimate a squared distance, and the estimate can fall below zero: every
      // such one reads 0. Equal scores made so go in id order, as everywhere (they had kept the
      // estimates' order); the order of the rest, monotone in the estimates, stands.
      if ((l2 || cosine) && ranked.some((r, i) => i > 0 && r.score === ranked[i - 1]!.score)) ranked.sort(byScoreThenId);
    }
    const known = how.known?.();
    const slotsHold = this.env.writes() === writesBefore;
    return ranked.map(({ slot, score }) => {
      const id = idOf(slot);
      return this.rankedOf(id, slotsHold ? slot : undefined, score, known?.get(id));
    });
  }

  /**
   * Reads the full vectors of `sources` and appends their exact scores to `batch.ranked` (one
   * batch), now: each vector is read into one shared frame and copied into the scorer's batch at
   * once, no buffer per candidate, and nothing is awaited, so no write comes in. False when the file
   * layer cannot read synchronously (scoreSourcesLater() then does it all); undefined when a vector
   * moved (failedRead()).
   */
  private scoreSourcesNow(sources: readonly Placed[], batch: Batch): boolean | undefined {
    if (sources.length === 0) return true;
    const scorer = this.env.scorer;
    scorer.reserve(sources.length);
    const places = this.prefetchPlaces;
    for (let i = 0; i < sources.length; i++) places[i] = sources[i]!.place;
    // All at once, straight into the scorer's batch, where the maps allow; else one by one, as below.
    // What the maps gave is not kept hot: the page cache holds it already, and a read out of a map
    // costs what a hot vector's view does, where copying it into the cache cost every miss about 2%
    // and saved near hits nothing (CACHE.md, "Hot records").
    if (this.env.reads.gatherVectors(places, sources.length, scorer.batchBytes(sources.length), scorer.stride)) {
      this.scoreLoaded(sources, true, batch);
      return true;
    }
    // Their frames fetched together first: read one after another, each waited for its own cache misses.
    this.env.reads.prefetchVectors(places, sources.length);
    const fromMaps = this.fromMaps(sources.length);
    let loaded = 0;
    for (const source of sources) {
      let vector: Float32Array | undefined;
      try {
        vector = this.env.reads.vectorNowShared(source.place, () => batch.idOf(source.slot));
      } catch (e) {
        return this.failedRead(source, e, batch.idOf);
      }
      if (vector === undefined) return false;
      // A batch some of whose frames no map covers is read here, the others still out of their maps.
      fromMaps[loaded] = this.env.reads.vectorMapped(source.place) ? 1 : 0;
      this.env.scorer.load(loaded++, vector);
    }
    this.scoreLoaded(sources, this.env.writes() !== batch.since, batch, fromMaps);
    return true;
  }

  /** A scratch flag per vector of a batch: 1 where it was read out of a map (scoreLoaded keeps those out of the cache). */
  private fromMaps(count: number): Uint8Array {
    if (this.mapFlags.length < count) this.mapFlags = new Uint8Array(Math.max(count, 2 * this.mapFlags.length));
    return this.mapFlags;
  }

  /**
   * scoreSourcesNow() for a file layer without synchronous reads: reads them all, then loads them;
   * resolves to true, or undefined when a vector moved. What it read is kept hot only if no write
   * came in since the places of `sources` were taken (`batch.since`, the write count then).
   */
  private async scoreSourcesLater(sources: readonly Placed[], batch: Batch): Promise<true | undefined> {
    const reads = await Promise.allSettled(sources.map((x) => this.env.reads.vector(batch.idOf(x.slot), x.place)));
    const moved = this.env.writes() !== batch.since;
    this.env.scorer.reserve(sources.length);
    const fromMaps = this.fromMaps(sources.length);
    for (const [i, r] of reads.entries()) {
      if (r.status === 'rejected') return this.failedRead(sources[i]!, r.reason, batch.idOf);
      fromMaps[i] = this.env.reads.vectorMapped(sources[i]!.place) ? 1 : 0;
      this.env.scorer.load(i, r.value);
    }
    this.scoreLoaded(sources, moved, batch, fromMaps);
    return true;
  }

  /**
   * Scores the batch loaded for `sources`, keeping vectors hot where the cache admits them, unless
   * `unkept` (a write came in since their places were taken, or they were all read out of maps) or
   * `fromMaps[i]` is 1 (that one was).
   */
  private scoreLoaded(sources: readonly Source[], unkept: boolean, batch: Batch, fromMaps?: Uint8Array): void {
    const { q, qNorm, ranked, scores, norms } = batch;
    this.env.scorer.scoreLoaded(q, qNorm, sources.length, [], scores, norms);
    const cache = this.env.cache;
    const cosine = this.env.metric === 'cosine';
    sources.forEach(({ slot }, i) => {
      // Kept hot only when no write came in (a write to this id would have dropped it), and read before.
      if (cache !== undefined && !unkept && fromMaps?.[i] !== 1 && cache.admitVectorAt(slot)) {
        cache.keepVector(slot, this.env.index(), this.env.scorer.loaded(i), cosine ? norms[i]! : undefined);
      }
      ranked.push({ slot, score: scores[i]! });
    });
  }

  /** An empty top-k of `k` for finish(): the spare one when it fits, taken until given back. */
  private takeBest(k: number): TopK {
    const spare = this.spareBest;
    this.spareBest = undefined;
    if (spare?.capacity !== k) return new TopK(k);
    spare.clear();
    return spare;
  }

  /**
   * The vectors past `candidates` (the scan's of `scan` for `want`) for finish() to take in
   * (Beyond), from the vectors its widened top `kept` past them where those reach far enough, else
   * from a second scan; undefined where none can enter the answer: no rescoring, no PCA or nothing
   * bounding what it drops, a scan that took every vector it saw, a codec or metric beyondReach()
   * does not know.
   */
  private beyondOf(scan: ScanQuery, want: Wanted, candidates: readonly Candidate[], kept: Kept | undefined): Beyond | undefined {
    if (candidates.length < this.candidateCount(want)) return undefined;
    const dropped = this.droppedFor(scan, want);
    if (dropped === undefined) return undefined;
    const index = this.env.index();
    // A scan that scored with the query's int8 code: the float query's scores are within `moved` of its
    // own (a codec whose kernels take the float query has no such code, and moves nothing).
    const moved = scan.int8Query ? (this.floatShift(index, scan) ?? 0) : 0;
    const reach = beyondReach(index, scan, dropped, moved);
    const offset = scan.offset ?? 0;
    const bound = rescoreBound(index, scan, dropped, offset);
    if (reach === undefined || bound === undefined) return undefined;
    let last = Infinity;
    for (const c of candidates) last = Math.min(last, c.score);
    return {
      bound,
      threshold: (floor) => floor - offset - reach,
      last,
      take: (threshold) => {
        // Every vector outside the widened top scored at most its least score: past that, it holds them all.
        if (kept !== undefined && covers(kept, threshold, last)) return beyondKept(kept, threshold, last);
        // Else the same scan again, of the same pages (`wanted`), into a top room enough for BEYOND_ROOM past the candidates.
        const wide = new TopK(candidates.length + BEYOND_ROOM, idOrder(index));
        const test = want.filter === undefined ? undefined : this.filterTest(index, want.filter);
        index.search(scan, wide, { accept: test?.accept, filter: test?.test, nprobe: want.nprobe, exact: want.exact, wanted: candidates.length });
        const count = wide.sortBestFirst(0);
        return beyondKept(keptOf(wide, count, new Set(candidates.map((c) => c.slot))), threshold, last);
      },
    };
  }

  /**
   * The bound that lets the scan's own candidates go unread: none for a store with PCA, whose
   * bound (RESCORING.md, "PCA") holds with high probability only. Its candidates are all read, so
   * that an answer is never worse than theirs, and the same with the cache as without (a candidate
   * hot in the cache is scored whatever its bound); the bound serves what lies past them (beyondOf()).
   */
  private boundOf(scan: ScanQuery): RescoreBound | undefined {
    return rescoreBound(this.env.index(), scan, this.env.space.reduced ? Infinity : undefined, scan.offset ?? 0);
  }

  /**
   * What a failed read of a candidate's vector means: a vector that moved since (a write, or the
   * arena's collection) is not damage, and the search starts again (undefined); damage or an I/O
   * failure is thrown.
   */
  private failedRead(source: Source, reason: unknown, idOf: (slot: number) => string): undefined {
    const id = idOf(source.slot);
    if (damagedId(reason) === id && !samePlace(this.env.index().placeOf(id), source.place)) return undefined;
    throw reason;
  }

  /**
   * A result with its document, hot or read (and then kept hot if the cache admits it), or its
   * `known` hit. `slot`: the record's slot in the index now, when the caller knows it.
   */
  private rankedOf(id: string, slot: number | undefined, score: number, known: SearchHit | undefined): Ranked {
    if (known !== undefined) return { id, score, doc: undefined, keep: false, known };
    const cache = this.env.cache;
    const hot = cache?.hotDoc(id);
    if (hot !== undefined) return { id, score, doc: hot, keep: true, known: undefined };
    const doc = this.env.docOf(id, slot);
    const keep = cache?.admitRecord(id) ?? false;
    if (keep) cache!.keepDoc(id, doc);
    return { id, score, doc, keep, known: undefined };
  }

  /**
   * Reads the texts of ranked records from the arena (every read starts before the first await).
   * Undefined when one was damaged: that record is set aside and the caller ranks again.
   */
  private async textsOf(ranked: readonly Ranked[]): Promise<(string | undefined)[] | undefined> {
    const cache = this.env.cache;
    const version = cache?.now;
    // A hot text goes with the hot document it was kept with: it is taken, or kept, only for a record
    // whose document is that one (hotTextOf, keepTextOf). A write that came in since the ranking
    // (even before this started) dropped the hot parts of its id, and a document kept since is another object.
    // Hot texts and synchronous reads (where the arena can) fill `texts` at once; a read that must
    // wait, or that failed, leaves a promise in `pending` at its place.
    const texts: (string | undefined)[] = new Array<string | undefined>(ranked.length);
    let pending: (Promise<string> | undefined)[] | undefined;
    for (let i = 0; i < ranked.length; i++) {
      const r = ranked[i]!;
      if (r.doc?.text === undefined) continue;
      const hot = cache?.hotTextOf(r.id, r.doc);
      if (hot !== undefined && hot !== null) {
        texts[i] = hot;
        continue;
      }
      let now: string | undefined;
      try {
        now = this.env.reads.textNow(r.id, r.doc.text);
      } catch (e) {
        (pending ??= [])[i] = Promise.reject(e);
        continue;
      }
      if (now === undefined) {
        (pending ??= [])[i] = this.env.reads.text(r.id, r.doc.text);
        continue;
      }
      texts[i] = now;
      if (r.keep) cache!.keepTextOf(r.id, r.doc, now);
    }
    if (pending === undefined) return texts;
    const settled = await Promise.allSettled(pending);
    let damage = false;
    for (const [i, s] of settled.entries()) {
      // Holes of `pending` settle as undefined values: those texts are in `texts` already.
      if (pending[i] === undefined) continue;
      if (s.status === 'fulfilled') {
        texts[i] = s.value;
        // Kept only if no write came in meanwhile: a write touches the id, which drops its hot parts.
        if (cache !== undefined && cache.now === version && ranked[i]!.keep) cache.keepTextOf(ranked[i]!.id, ranked[i]!.doc, s.value!);
        continue;
      }
      const r = ranked[i]!;
      if (damagedId(s.reason) !== r.id) throw s.reason;
      this.env.setAsideIfUnchanged(r.id, r.doc?.text, s.reason);
      damage = true;
    }
    return damage ? undefined : texts;
  }
}
