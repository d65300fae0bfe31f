import type { PcaModel } from '../pca/pca.js';
import type { ModelShape } from './vector-space.js';
import { startWorkerJob, type WorkerJob } from '../worker-job.js';

/** A model to fit (fitModel()): `count` rows of `shape.dim` floats, one after another in `rows`. */
export interface FitInput {
  readonly shape: ModelShape;
  readonly rows: Float32Array;
  readonly count: number;
}

/** A model fitted in a worker thread (fit-worker.ts). */
export type FitJob = WorkerJob<PcaModel>;

/**
 * Fits of PCA with fewer sample rows x dimensions² than `minWork` run in the caller's thread: a
 * worker's isolate starts cold (100 to 300 ms before any work), and PCA's covariance alone is rows x
 * dim² / 2 multiply-adds (4,096 x 512-d: a tenth of a second; the eigenvectors cubic in dim add about
 * as much, 8 s at 2,048-d all told). A rotation without PCA (the rq codes' own model: a mean and a
 * seeded sign pattern) is always fitted in the caller's thread. A buffer of at most `inlineMax`
 * vectors is re-encoded inside the write, as before; a larger one a step at a time, the event loop
 * turning between steps (training.ts): a step ends after `stepMs` milliseconds or `reencodeStep`
 * vectors (a vector costs 0.1 ms for rq2 at 512-d, 0.4 ms with PCA from 1,536 to 256 dimensions).
 * Past `maxBuffered` times the sample in the buffer, writes wait for the training. @internal Tests
 * lower them.
 */
export const fitThreads = { minWork: 1 << 26, inlineMax: 1024, stepMs: 8, reencodeStep: Infinity, maxBuffered: 4 };

/** Whether fitting `shape` on `count` rows is worth a worker thread (fitThreads). */
export function fitOffThread(shape: ModelShape, count: number): boolean {
  return shape.pca !== null && count * shape.dim * shape.dim >= fitThreads.minWork;
}

/**
 * Starts fitModel() on `input` in a worker thread, so that a PCA fit (seconds at 1,024-d and up)
 * never holds the caller's event loop. Moves `input.rows` to the thread (it must be the whole of its
 * buffer). Undefined, and nothing moved, where no thread can start (the permission model without
 * --allow-worker): the caller then fits in its own thread.
 */
export function startFit(input: FitInput): FitJob | undefined {
  const { rows } = input;
  if (!(rows.buffer instanceof ArrayBuffer) || rows.byteOffset !== 0 || rows.byteLength !== rows.buffer.byteLength) {
    throw new RangeError('the rows of a fit must be a whole buffer: they are moved to the worker');
  }
  return startWorkerJob(new URL('./fit-worker.js', import.meta.url), input, [rows.buffer as ArrayBuffer], { worker: 'training', result: 'model' }, (m: { model?: PcaModel; error?: unknown }) => m.model);
}

/** The `count` rows of a fit's input, views into `rows` (one after another, `dim` floats each). */
export function rowsOf(rows: Float32Array, count: number, dim: number): Float32Array[] {
  return Array.from({ length: count }, (_, i) => rows.subarray(i * dim, (i + 1) * dim));
}
