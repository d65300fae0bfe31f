import type { MemStore, OpenOptions } from '../../src/index.js';
import { clustered } from '../helpers.js';

/**
 * The writes of the page determinism tests: adds in batches, with upserts, deletes and ids deleted
 * and added again between them (pages grow, split, shrink, merge and take replaced codes), and the queries whose one-page answers
 * show every vector's page and every centroid. Shared by the tests and the child they kill.
 */
export const PAGE_WRITES_DIM = 24;
export const PAGE_WRITES_BATCHES = 24;
const vectors = clustered(PAGE_WRITES_BATCHES * 100, PAGE_WRITES_DIM, 21, 30);
const queries = clustered(40, PAGE_WRITES_DIM, 22, 30);

/** The configurations the tests run: each metric, a codec of each kind, PCA, a rotation, and pages made after the halfway point. */
export const PAGE_WRITES_CONFIGS: Record<string, OpenOptions> = {
  'cosine int8': {},
  'l2 int8': { metric: 'l2' },
  'dot fp8-e4m3': { metric: 'dot', codec: 'fp8-e4m3' },
  'cosine rq2': { codec: 'rq2', trainSize: 200 },
  'l2 int8 + PCA 12': { metric: 'l2', pca: { dims: 12 }, trainSize: 200 },
  // Paged after the halfway reopen (or kill): the clustering of an exact index's codes.
  'cosine int8, paged late': { pages: { from: 1800, maxPage: 24 } },
  // Trained (and paged) after the halfway reopen (or kill): the model from the vectors buffered before it.
  'cosine rq2, trained late': { codec: 'rq2', trainSize: 1500, pages: { from: 1800, maxPage: 24 } },
  'l2 int8 + PCA 12, trained late': { metric: 'l2', pca: { dims: 12 }, trainSize: 1500, pages: { from: 1800, maxPage: 24 } },
  // rq with PCA, trained after the halfway reopen (training-determinism test below: deletes before it).
  'cosine rq2 + PCA 16, trained late': { codec: 'rq2', pca: { dims: 16 }, trainSize: 1500, pages: { from: 1800, maxPage: 24 } },
};

export function pageWritesOptions(config: string, extra: OpenOptions = {}): OpenOptions {
  const chosen = PAGE_WRITES_CONFIGS[config];
  if (chosen === undefined) throw new Error(`no configuration ${config}`);
  return { dim: PAGE_WRITES_DIM, durability: 'none', cache: false, pages: { from: 300, maxPage: 24 }, ...chosen, ...extra };
}

/** Batch `b` of the writes (0 .. PAGE_WRITES_BATCHES − 1). */
export async function writeBatch(store: MemStore, b: number): Promise<void> {
  const i = b * 100;
  await store.add(vectors.slice(i, i + 100).map((vector, j) => ({ id: `v${i + j}`, vector })));
  if (b % 3 === 0 && b > 0) {
    await store.delete([`v${i - 7}`, `v${i - 50}`, `v${i - 99}`, `v${i - 30}`]);
    // An upsert, and an id deleted and added again: its slot moves to the end, where a checkpoint's
    // delta (by id, in the order ids first changed) puts it back in its old turn when loaded.
    await store.add([
      { id: `v${i - 20}`, vector: vectors[i + 1]! },
      { id: `v${i - 30}`, vector: vectors[i + 2]! },
    ]);
  }
}

/**
 * The writes of writeBatch(store, b) issued at once, none waiting for the one before (they are
 * logged and applied in call order all the same); their promises, in call order.
 */
export function issueBatch(store: MemStore, b: number): Promise<unknown>[] {
  const i = b * 100;
  const issued: Promise<unknown>[] = [store.add(vectors.slice(i, i + 100).map((vector, j) => ({ id: `v${i + j}`, vector })))];
  if (b % 3 === 0 && b > 0) {
    issued.push(store.delete([`v${i - 7}`, `v${i - 50}`, `v${i - 99}`, `v${i - 30}`]));
    issued.push(
      store.add([
        { id: `v${i - 20}`, vector: vectors[i + 1]! },
        { id: `v${i - 30}`, vector: vectors[i + 2]! },
      ]),
    );
  }
  return issued;
}

/** Each query's top 10 searching the nearest page alone, codes only, as `id:score`. */
export async function oneProbeAnswers(store: MemStore): Promise<string[][]> {
  return Promise.all(queries.map(async (q) => (await store.search(q, { k: 10, nprobe: 1, rescore: false })).map((h) => `${h.id}:${h.score}`)));
}

/**
 * Issues every batch at once (issueBatch) and resolves `window` as soon as `now(store)` holds while
 * they are under way, or `late` once they are all done without that: how the children the crash
 * tests kill find the moment to be killed in.
 */
export async function issueAllUntil(store: MemStore, now: (store: MemStore) => boolean): Promise<'window' | 'late'> {
  const all: Promise<unknown>[] = [];
  for (let b = 0; b < PAGE_WRITES_BATCHES; b++) all.push(...issueBatch(store, b));
  let done = false;
  void Promise.allSettled(all).then(() => (done = true));
  while (!done) {
    if (now(store)) return 'window';
    await new Promise((resolve) => setImmediate(resolve));
  }
  return 'late';
}
