import { parentPort } from 'node:worker_threads';
import { planPages, type PagePlanInput } from './page-plan.js';

/**
 * A worker thread that clusters a store's codes into pages (page-plan-job.ts): one plan, then the
 * thread is ended by its owner. The input's codes and scales go back with the pages, moved, not
 * copied: the store loads its new pages from them.
 */
const port = parentPort;
port?.once('message', (input: PagePlanInput) => {
  try {
    const pages = planPages(input);
    port.postMessage({ pages, codes: input.codes, scales: input.scales }, [pages.buffer as ArrayBuffer, input.codes.buffer as ArrayBuffer, input.scales.buffer as ArrayBuffer]);
  } catch (e) {
    port.postMessage({ error: e });
  }
});
