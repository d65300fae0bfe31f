import { parentPort } from 'node:worker_threads';
import { rowsOf, type FitInput } from './fit-job.js';
import { fitModel } from './vector-space.js';

/**
 * A worker thread that fits a store's model (fit-job.ts): one fit, then the thread is ended by its
 * owner. The model is plain data (typed arrays and numbers), copied back by the message.
 */
const port = parentPort;
port?.once('message', (input: FitInput) => {
  try {
    const { shape, rows, count } = input;
    port.postMessage({ model: fitModel(rowsOf(rows, count, shape.dim), shape) });
  } catch (e) {
    port.postMessage({ error: e });
  }
});
