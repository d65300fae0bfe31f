import type { PagePlanInput } from './page-plan.js';
import { startWorkerJob, type WorkerJob } from '../worker-job.js';

/** The page of each vector of a plan's input, with the input's codes and scales handed back (they were moved to the worker). */
export interface PagePlan {
  readonly pages: Int32Array;
  readonly codes: Uint8Array;
  readonly scales: Float32Array;
}

/** A plan of pages (page-plan.ts) made in a worker thread. */
export type PagePlanJob = WorkerJob<PagePlan>;

/**
 * Plans of fewer vectors x dimensions than `minWork` are made in the caller's thread: a worker thread
 * runs its code cold (its own isolate: no JIT, the kernels compiled again), which cost 130–330 ms
 * more than the plan itself at 300 x 24-d and 2,000 x 64-d, where the plan in a warm thread took
 * 30–440 ms; from 16,384 vectors (the default `pages.from`) at any dimension, every plan goes to a
 * worker. While one is made, at most `maxReplays` writes are noted for replay before the next ones
 * wait for the pages (MemStore.pagingFull); they are replayed on the new pages `replayStep` at a
 * time, the event loop turning between steps (Paging.take, paging.ts), as the plan's vectors are
 * loaded into them about `stepMs` at a time (loadPlanInSteps). @internal Tests lower them.
 */
export const planThreads = { minWork: 1 << 16, maxReplays: 4096, replayStep: 1024, stepMs: 8 };

/** Whether a plan of `input` is worth a worker thread (planThreads). */
export function planOffThread(input: Pick<PagePlanInput, 'ids' | 'dim'>): boolean {
  return input.ids.length * input.dim >= planThreads.minWork;
}

/**
 * Starts planPages(`input`) in a worker thread, so that clustering (seconds at `pages.from` 16,384 x
 * 512-d) never holds the caller's event loop: searches and writes go on meanwhile. Moves
 * `input.codes` and `input.scales` to the thread (the caller gets them back with the plan); they
 * must be the whole of their buffers. Undefined, and nothing moved, for a plan too small to be worth
 * a thread (planOffThread()) or where no thread can start (the permission model without
 * --allow-worker): the caller then plans in its own thread.
 */
export function startPagePlan(input: PagePlanInput): PagePlanJob | undefined {
  const { codes, scales } = input;
  if (!(codes.buffer instanceof ArrayBuffer && scales.buffer instanceof ArrayBuffer) || codes.byteOffset !== 0 || codes.byteLength !== codes.buffer.byteLength || scales.byteOffset !== 0 || scales.byteLength !== scales.buffer.byteLength) {
    throw new RangeError('the codes and scales of a plan must be whole buffers: they are moved to the worker');
  }
  if (!planOffThread(input)) return undefined;
  return startWorkerJob(
    new URL('./page-plan-worker.js', import.meta.url),
    input,
    [codes.buffer as ArrayBuffer, scales.buffer as ArrayBuffer],
    { worker: 'clustering', result: 'plan' },
    (m: { pages?: Int32Array; codes?: Uint8Array; scales?: Float32Array; error?: unknown }) =>
      m.pages !== undefined && m.codes !== undefined && m.scales !== undefined ? { pages: m.pages, codes: m.codes, scales: m.scales } : undefined,
  );
}
