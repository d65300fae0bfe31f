import type { MemStore } from '../src/index.js';

/** What a build measured: how its adds went, and the one that crossed the threshold apart. */
export interface StallRun {
  readonly way: string;
  /** Median of the other adds, ms. */
  readonly addP50: number;
  /** The add that brought the store to the threshold, ms. */
  readonly crossing: number;
  /** The event loop's longest stall while adding, ms. */
  readonly stall: number;
  /** Searches answered during the crossing add. */
  readonly searchesDuring: number;
}

/**
 * A search loop beside a store's writes (one search in flight, a 1 ms pause between searches), as
 * the benchmarks of writes that hold the process (paging.ts, training.ts) run it: how many
 * searches were answered tells whether the event loop turned.
 */
export function searchBeside(store: MemStore, queries: readonly Float32Array[]): { readonly searches: () => number; stop(): Promise<void> } {
  let searches = 0;
  let searching = true;
  const loop = (async () => {
    while (searching) {
      if (store.stats().count > 0) {
        await store.search(queries[searches % queries.length]!, { k: 10 });
        searches++;
      }
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  })();
  return {
    searches: () => searches,
    async stop() {
      searching = false;
      await loop;
    },
  };
}

/**
 * Adds `docs` (ids d0, d1, ...) in batches of `batch`, each awaited: each add's latency, the one
 * that brought the store from below `threshold` vectors to it apart, with the searches `searches()`
 * counted during that one.
 */
export async function addInBatches(store: MemStore, docs: readonly Float32Array[], batch: number, threshold: number, searches: () => number): Promise<{ times: number[]; crossing: number; searchesDuring: number }> {
  const times: number[] = [];
  let crossing = 0;
  let searchesDuring = 0;
  for (let at = 0; at < docs.length; at += batch) {
    const records = docs.slice(at, at + batch).map((vector, i) => ({ id: `d${at + i}`, vector }));
    const before = searches();
    const t = performance.now();
    await store.add(records);
    const ms = performance.now() - t;
    if (at < threshold && at + records.length >= threshold) {
      crossing = ms;
      searchesDuring = searches() - before;
    } else {
      times.push(ms);
    }
  }
  return { times, crossing, searchesDuring };
}
