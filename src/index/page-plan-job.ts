import { Worker } from 'node:worker_threads';
import type { PagePlanInput } from './page-plan.js';

/** The page of each vector of a plan's input, with the input's codes and scales handed back (they were moved to the worker). */
export interface PagePlan {
  readonly pages: Int32Array;
  readonly codes: Uint8Array;
  readonly scales: Float32Array;
}

/** A plan of pages (page-plan.ts) made in a worker thread. */
export interface PagePlanJob {
  /** The plan. Rejects with the worker's error, or when the thread ends without a plan (cancel() included). */
  readonly done: Promise<PagePlan>;
  /** Ends the thread; `done` then rejects, unless it has settled already. */
  cancel(): void;
}

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
  let worker: Worker;
  try {
    // Without the process's flags: a loader or an --import of the application's has nothing to do here.
    worker = new Worker(new URL('./page-plan-worker.js', import.meta.url), { execArgv: [] });
  } catch {
    return undefined;
  }
  const done = new Promise<PagePlan>((resolve, reject) => {
    worker.once('message', (m: { pages?: Int32Array; codes?: Uint8Array; scales?: Float32Array; error?: unknown }) => {
      if (m.pages !== undefined && m.codes !== undefined && m.scales !== undefined) resolve({ pages: m.pages, codes: m.codes, scales: m.scales });
      else reject(m.error instanceof Error ? m.error : new Error('the clustering worker sent no plan', { cause: m.error }));
      void worker.terminate();
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the clustering worker ended (exit code ${code}) before its plan was made`)));
  });
  worker.postMessage(input, [codes.buffer as ArrayBuffer, scales.buffer as ArrayBuffer]);
  return {
    done,
    cancel() {
      void worker.terminate();
    },
  };
}
