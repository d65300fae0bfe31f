import type { Codec } from '../codec/codec.js';
import type { FilterColumns, FilterTest } from '../filter/columns.js';
import type { KernelForm, LoadedRecord, ScanQuery, StoredRecord, VectorPlace } from '../scan/code-blocks.js';
import type { PoolScope, ScorePool, SearchScope } from '../scan/score-pool.js';
import type { TieOrder, TopK } from '../scan/topk.js';

/**
 * The order of equal kernel scores among a search's candidates over `index` (TopK's TieOrder): by
 * id, as rescoring orders equal exact scores. By slot, which candidates of equal scores (duplicate
 * vectors) a search picks would depend on the slot numbers, and a reopen numbers the slots afresh:
 * the same query would get other ids after it. Every top-k that picks a search's candidates orders
 * them so: the scan's, and the lookaside cache's when it picks them from a pool (it had ordered
 * ties by slot, so other candidates of a tie came first; an rq store reads its candidates past the
 * first k by their bounds, and its answer changed: a hostile pass, test/cache.test.ts).
 */
export function idOrder(index: VectorIndex): TieOrder {
  return (a, b) => index.idAt(a) < index.idAt(b);
}

/** What shapes which stored vectors a search looks at. */
export interface IndexSearch {
  /**
   * Asked only about vectors good enough to enter the heap (a filter costs nothing for the rest),
   * and, by the page index, about a few dozen vectors to estimate the share it takes.
   */
  readonly accept?: ((slot: number) => boolean) | undefined;
  /**
   * The filter `accept` applies, compiled against the index's columns: how many records it may
   * take, and which. With it the index may score only the matching slots (MatchingScan) when they
   * are few, and a page index probes pages by the share it takes.
   */
  readonly filter?: FilterTest | undefined;
  /** Pages to probe; undefined: the index's default (`defaultProbes`). */
  readonly nprobe?: number | undefined;
  /** Scan every stored vector, whatever `nprobe` says. */
  readonly exact?: boolean | undefined;
  /** Collects, beside the top-k, the vectors within its margin of the top-k's floor (score-pool.ts). */
  readonly pool?: ScorePool | undefined;
  /**
   * The candidates the search needs, when `top` is kept wider than that (to see what lies past them):
   * a page index goes on to further pages only while `top` holds fewer than this, so the pages a
   * search scans do not depend on how wide its top is. Undefined: the top's capacity.
   */
  readonly wanted?: number | undefined;
}

/**
 * A store's search structure: the quantized vectors, addressed by id and by slot (a dense number
 * that moves when a vector is removed), where each full-precision vector lives, and the search
 * over the codes. The store, its checkpoints and the lookaside cache see only this, so a
 * page-clustered index can stand where today's exact scan (FlatIndex) stands.
 */
export interface VectorIndex {
  readonly codec: Codec;
  /** Dimensions of the codes: the store's, or PCA's output once trained. */
  readonly dim: number;
  readonly size: number;
  /** Bytes of one code in memory, padding included. */
  readonly stride: number;
  /** Bytes of memory the index holds in all. */
  readonly bytes: number;
  /** Bytes each stored vector costs: code, scale, place, its share of the id table and of the index structures. */
  readonly bytesPerVector: number;
  /** UTF-8 bytes of the live ids. */
  readonly idBytes: number;
  /** Units a search visits one kernel call at a time. */
  readonly pages: number;
  /** Pages a search probes when `nprobe` is not given. */
  readonly defaultProbes: number;
  /** Whether its records have pages a checkpoint records (the page-clustered index). */
  readonly paged: boolean;
  /** The filter columns of its slots (made on first use by a filter, moved with the slots). */
  readonly columns: FilterColumns;

  /**
   * Room for `records` records whose ids take `idBytes` bytes, allocated at once: open calls it
   * with the checkpoint's sizing hints, so that loading grows nothing (a hint too small only means
   * growth later; one too large, unused capacity).
   */
  reserve(records: number, idBytes: number): void;
  has(id: string): boolean;
  slotOf(id: string): number | undefined;
  idAt(slot: number): string;
  allIds(): IterableIterator<string>;

  /** Encodes `vector` (length `dim`) as the code of `id`, inserting or replacing. */
  put(id: string, vector: Float32Array): void;
  /** Stores an already-encoded code, as loaded from disk. */
  putCode(id: string, code: Uint8Array, scale: number): void;
  /**
   * Stores a record as the index file holds it (the id as UTF-8, its code, its place with segment 0
   * for none, its document flag) in one lookup; returns the place it replaced, if any.
   */
  loadRecord(record: LoadedRecord): VectorPlace | undefined;
  /**
   * The record in `slot` as the index file stores it, without a lookup (views valid until the next
   * change): id UTF-8, code, scale, place (segment 0: none), document flag, page (-1: none).
   */
  recordAt(slot: number): StoredRecord;
  /** Loading (loadRecord) is over: what it deferred is done (a page index's centroids, for one). */
  loaded(): void;
  /** A copy of the code of `id` and its scale, or undefined. */
  code(id: string): { code: Uint8Array; scale: number } | undefined;
  /** Decodes the code of `id` into `out` (in the stored space); false when there is none. */
  decode(id: string, out: Float32Array): boolean;
  remove(id: string): boolean;

  /** Where the full-precision vector of `id` lives, or undefined (none kept, or no such id). */
  placeOf(id: string): VectorPlace | undefined;
  /** placeOf() for the vector in `slot`, without a lookup by id. */
  placeAt(slot: number): VectorPlace | undefined;
  setPlace(id: string, place: VectorPlace | undefined): void;
  /** Whether `id` has a document (text or metadata) in the state; false for an unknown id. */
  documented(id: string): boolean;
  /** documented() of the record in `slot`, without a lookup by id. */
  documentedAt(slot: number): boolean;
  setDocumented(id: string, documented: boolean): void;

  /** The query exactly as the kernels see it (what bounds between two queries are computed on). */
  kernelQuery(query: ScanQuery): Float32Array;
  /** kernelQuery() in its cheapest exact form: an int8 code (copied into `into`, or a new array) and its scale, or the float vector itself. */
  kernelForm(query: ScanQuery, into?: Int8Array): KernelForm;
  /** The distance between the query and kernelQuery(query), without making the latter. */
  kernelQueryError(query: ScanQuery): number;
  /**
   * For rq codes scanned through tables (PageStore, fast-scan layout): a bound on how far the
   * estimate of ⟨ŷ, q⟩ behind a score of `query` is from the exact one, for every code (a score is
   * F times it); 0 where the kernels take the query as kernelQuery() gives it.
   */
  tableError(query: ScanQuery): number;
  /**
   * For rq codes: ‖e‖, ‖r‖² and the factor F of the vectors in `slots[0..count)`, into
   * `out[3i..3i + 3)` for the i-th (what the rescoring bound reads): one call for all of a search's
   * candidates, whose terms are scattered over their pages.
   */
  rqTermsOf(slots: Int32Array, count: number, out: Float64Array): void;
  /** An upper bound on the norm of any decoded code stored. */
  maxNorm(): number;
  /** An upper bound on the distance between the vector in `slot` (in the stored space) and its decoded code. */
  codeErrorAt(slot: number): number;
  /** The code of `slot` as a view into the index's memory, valid until the next write or growth (recordAt() without the rest of the record). */
  codeAt(slot: number): Uint8Array;
  /** Scores the vectors `options` selects against `query`, keeping the best (by slot) in `top`. */
  search(query: ScanQuery, top: TopK, options: IndexSearch): void;
  /**
   * Whether search() with these options fills a pool, what the lookaside cache's pools and bounds
   * need (CACHE.md): the exact index always; a page index, while it holds a vector, for searches
   * without a filter (whose pages it probes by the share the filter takes, which writes move),
   * scoped to the pages it scans unless `exact`.
   */
  collectsPools(options: { readonly nprobe?: number | undefined; readonly exact?: boolean | undefined; readonly filter?: object | undefined }): boolean;
  /** Changes of which page holds which vector other than adds and removals (PoolScope.layout); 0 for an index without pages. */
  layoutEpoch(): number;
  /**
   * The pages an unfiltered search of `query` with these options that needs `candidates` scans
   * first now (routed with today's centroids, ascending, in today's layout), and whether they hold
   * its candidates: else it goes on to more pages. Undefined for an index without pages and for an
   * exact search, which scans every vector.
   */
  scopeOf(query: ScanQuery, options: { readonly nprobe?: number | undefined; readonly exact?: boolean | undefined }, candidates: number): SearchScope | undefined;
  /** Scores every vector of `pages[0..count)` against `query` as search() scores them, keeping the best in `top` (by slot). */
  scanPages(query: ScanQuery, pages: Int32Array, count: number, top: TopK): void;
  /** Whether the vector in `slot` is in one of `scope`'s pages (the layout being the scope's). */
  inScope(scope: PoolScope, slot: number): boolean;
  /**
   * Scores only the vectors in `slots[0..count)`, each pushed into `top` with its slot, each score
   * the one search() gives that vector.
   */
  scanSlots(query: ScanQuery, slots: Int32Array, count: number, top: TopK): void;
  /** The scores scanSlots() gives the vectors in `slots[0..count)`, written to `out[0..count)`. */
  scoreSlots(query: ScanQuery, slots: Int32Array, count: number, out: Float32Array): void;

  /** Removals so far: what slot numbers kept elsewhere (the lookaside cache's pools) follow moves from. */
  moveEpoch(): number;
  /**
   * Visits, oldest first, each removal since `epoch`: slot `hole` lost its vector and the vector of
   * slot `from` moved into it (`from === hole`: none moved). False, visiting nothing, when the log
   * of moves no longer reaches back.
   */
  movesSince(epoch: number, visit: (hole: number, from: number) => void): boolean;

  /**
   * The ids whose page changed since the last call (splits, merges, pages renumbered,
   * re-clustering): a checkpoint writes them with their new pages. Empty for an index without pages.
   */
  takeRelocated(): ReadonlySet<string>;
  /** Whether takeRelocated() would give any id: a checkpoint with no other change still writes them. */
  hasRelocated(): boolean;
  /** Ids a failed checkpoint took from takeRelocated(): the next one writes them. */
  relocatedAgain(ids: Iterable<string>): void;
  /** Re-clusters the pages from every vector, as compaction does; false when the index has no pages to re-cluster. */
  recluster(): boolean;

  /** Returns all memory; the index is unusable afterwards. */
  free(): void;
}

/**
 * Hands `from`'s filter columns to `to`, an index just filled with the same records in any slot
 * order (training's re-encoding, the switch to pages, which takes them in id order), as a
 * checkpoint's columns are restored: a filtered search right after reads no metadata. Columns are
 * a code per slot, so each is carried to the slot its id has in `to`. When the two do not hold the
 * same ids, or for a column restore() refuses, nothing is carried and the first filter on the
 * field makes it from metadata, as before. Returns the columns carried.
 */
export function carryColumns(from: VectorIndex, to: VectorIndex): number {
  if (from.columns.fields === 0 || to.columns.fields > 0 || from.size !== to.size) return 0;
  /** For each slot of `to`, the slot of its id in `from`. */
  const fromSlot = new Int32Array(to.size);
  for (let slot = 0; slot < to.size; slot++) {
    const s = from.slotOf(to.idAt(slot));
    if (s === undefined) return 0;
    fromSlot[slot] = s;
  }
  let carried = 0;
  for (const c of from.columns.exported()) {
    const codes = new Uint16Array(to.size);
    for (let slot = 0; slot < to.size; slot++) codes[slot] = c.codes[fromSlot[slot]!]!;
    if (to.columns.restore(c.field, c.keys, codes)) carried++;
  }
  return carried;
}
