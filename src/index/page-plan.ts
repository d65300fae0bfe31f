import { setImmediate as nextTurn } from 'node:timers/promises';
import { getCodec, type CodecName } from '../codec/index.js';
import type { KernelMetric } from '../kernels/index.js';
import { PageIndex, sortSlotsById } from './page-index.js';
import type { RouteSphere } from './router.js';
import type { VectorIndex } from './vector-index.js';

/**
 * What clustering a store's codes into pages needs, and nothing that cannot cross to a worker thread
 * (structured clone): the codes of every vector in id order, and the shape of the index.
 */
export interface PagePlanInput {
  readonly codec: CodecName;
  readonly dim: number;
  readonly metric: KernelMetric;
  readonly maxPage: number;
  readonly sphere: RouteSphere | undefined;
  readonly inputMean: Float32Array | undefined;
  /** Every vector's id, in id order. */
  readonly ids: readonly string[];
  /** Their codes, one after another, `codec.codeBytes(dim)` bytes each. */
  readonly codes: Uint8Array;
  readonly scales: Float32Array;
  /** The ids' UTF-8 bytes in all, for the slot table's room. */
  readonly idBytes: number;
  /**
   * The page each vector is in now, for a plan that re-clusters pages (compaction); none for the
   * first pages of an exact index's codes.
   */
  readonly pages?: Int32Array;
}

/**
 * The page of each vector of `input` (in its order) that clustering gives (PAGES.md, "Clustering
 * off the write"): the codes put into a page index one by one in id order, then re-clustered by
 * k-means, as a store's first pages were made inside the write that reached `pages.from`; or, given
 * their pages now, loaded into them as a reopen loads them and re-clustered, as compaction
 * re-clusters the pages in place. Pure and seeded: the same input gives the same pages, in a worker
 * thread or not.
 */
export function planPages(input: PagePlanInput): Int32Array {
  const codec = getCodec(input.codec);
  const codeBytes = codec.codeBytes(input.dim);
  const n = input.ids.length;
  if (input.codes.length !== n * codeBytes || input.scales.length !== n || (input.pages !== undefined && input.pages.length !== n)) {
    throw new RangeError(`a plan of ${n} vectors needs ${n * codeBytes} bytes of codes, ${n} scales and, if any, ${n} pages`);
  }
  const index = new PageIndex(codec, input.dim, input.metric, { maxPage: input.maxPage, sphere: input.sphere, inputMean: input.inputMean });
  try {
    if (input.pages === undefined) {
      index.reserve(n, input.idBytes);
      for (let i = 0; i < n; i++) index.putCode(input.ids[i]!, input.codes.subarray(i * codeBytes, (i + 1) * codeBytes), input.scales[i]!);
    } else {
      loadPlan(index, input, input.pages);
    }
    index.recluster();
    const pages = new Int32Array(n);
    for (let i = 0; i < n; i++) pages[i] = index.pageOf(input.ids[i]!)!;
    return pages;
  } finally {
    index.free();
  }
}

/** The shape of the page index a plan is for (PagePlanInput less the vectors). */
export type PagePlanShape = Pick<PagePlanInput, 'codec' | 'dim' | 'metric' | 'maxPage' | 'sphere' | 'inputMean'>;

/**
 * The input of a plan for every vector of `index` (of `shape.codec`): ids in id order, as the first
 * pages have always been made (PAGES.md, "Determinism"), their codes copied into buffers of their
 * own (startPagePlan() moves them), and, from a page index (`pageOf`), each one's page now.
 */
export function planInputOf(index: VectorIndex, shape: PagePlanShape, pageOf?: (id: string) => number): PagePlanInput {
  const n = index.size;
  const codeBytes = getCodec(shape.codec).codeBytes(shape.dim);
  const slots = Int32Array.from({ length: n }, (_, slot) => slot);
  sortSlotsById(slots, (slot) => index.idAt(slot));
  const ids: string[] = [];
  const codes = new Uint8Array(n * codeBytes);
  const scales = new Float32Array(n);
  const pages = pageOf === undefined ? undefined : new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const slot = slots[i]!;
    const id = index.idAt(slot);
    ids.push(id);
    const r = index.recordAt(slot);
    codes.set(r.code, i * codeBytes);
    scales[i] = r.scale;
    if (pages !== undefined) pages[i] = pageOf!(id);
  }
  return pages === undefined ? { ...shape, ids, codes, scales, idBytes: index.idBytes } : { ...shape, ids, codes, scales, idBytes: index.idBytes, pages };
}

/** A write to the index made while its plan was being made: a put (the vector's stored form) or, without one, a removal. */
export interface PlanReplay {
  readonly id: string;
  readonly form: Float32Array | undefined;
}

/**
 * Fills `next` (an empty page index of the plan's shape) from a plan: each vector of `input` loaded
 * into its page as a checkpoint's records are (PageIndex.loadCode, loaded()). The writes made since
 * the plan's codes were copied then go on it in order (replayOnto()), so that the pages are those a
 * store that clustered inside the write, and took the writes after it one by one, would have: the
 * same whenever the plan comes back.
 */
export function loadPlan(next: PageIndex, input: PlanCodes, pages: Int32Array): void {
  const load = loaderOf(next, input, pages);
  load(input.ids.length);
  next.loaded();
}

/**
 * loadPlan() a step at a time: the vectors are loaded, then their pages summed (PageIndex.loading),
 * for about `stepMs` at a time, with a turn of the event loop between steps, so that a plan taken in
 * off the write path (Paging) holds the process no longer than a step (the load and the sums were
 * one step of 250 ms at 20,000 x 512-d, most of the stall the worker had left). `next` is nobody's index yet, so nothing the turns let run sees it
 * half loaded. After each turn `wanted()` is asked: false (the store went away meanwhile) stops the
 * load, and false is returned; the caller frees `next`.
 */
export async function loadPlanInSteps(next: PageIndex, input: PlanCodes, pages: Int32Array, stepMs: number, wanted: () => boolean): Promise<boolean> {
  const steps = loadingSteps(next, input, pages);
  try {
    for (;;) {
      const until = performance.now() + stepMs;
      let done: boolean | undefined;
      do done = steps.next().done;
      while (done !== true && performance.now() < until);
      if (done === true) return true;
      await nextTurn();
      if (!wanted()) return false;
    }
  } finally {
    // Ended early: the pages' scratch memory is given back (PageClusters.settling).
    steps.return();
  }
}

/** loadPlan() as steps: LOAD_RUN vectors put in at each, then the pages summed (PageIndex.loading). */
function* loadingSteps(next: PageIndex, input: PlanCodes, pages: Int32Array): Generator<void, void, void> {
  const load = loaderOf(next, input, pages);
  const n = input.ids.length;
  for (let at = 0; at < n; at = load(Math.min(n, at + LOAD_RUN))) yield;
  yield* next.loading();
}

/** What loading a plan reads of its input. */
type PlanCodes = Pick<PagePlanInput, 'ids' | 'codes' | 'scales' | 'idBytes'>;

/** Vectors loadPlanInSteps() puts in between two looks at the clock. */
const LOAD_RUN = 256;

/** Reserves room in `next` for the plan, and returns a function that loads its vectors up to (not including) `to`, from where the last call stopped; it returns `to`. */
function loaderOf(next: PageIndex, input: PlanCodes, pages: Int32Array): (to: number) => number {
  const n = input.ids.length;
  if (pages.length !== n) throw new RangeError(`a plan of ${pages.length} pages for ${n} vectors`);
  const codeBytes = input.codes.length / Math.max(1, n);
  next.reserve(n, input.idBytes);
  let i = 0;
  return (to: number): number => {
    for (; i < to; i++) next.loadCode(input.ids[i]!, pages[i]!, input.codes.subarray(i * codeBytes, (i + 1) * codeBytes), input.scales[i]!);
    return to;
  };
}

/** Applies `replays[from, to)` (clipped to their length) to `next` in order; returns where it stopped. */
export function replayOnto(next: PageIndex, replays: readonly PlanReplay[], from: number, to: number): number {
  const end = Math.min(to, replays.length);
  for (let i = from; i < end; i++) {
    const r = replays[i]!;
    if (r.form === undefined) next.remove(r.id);
    else next.put(r.id, r.form);
  }
  return end;
}
