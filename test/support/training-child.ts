/**
 * The process the training test kills while its store trains off the write: opens a store in argv
 * with a configuration of page-writes.ts, durability 'always' and no pages, issues every batch at once, and prints
 * `window` once the store trains with every write logged (`late` once every write is done if it
 * never did), then waits to be killed.
 *   node training-child.js DIR CONFIG
 */
import { MemStore } from '../../src/index.js';
import { fitThreads } from '../../src/space/fit-job.js';
import { issueAllUntil, pageWritesOptions } from './page-writes.js';

const [dir, config] = process.argv.slice(2);
Object.assign(fitThreads, { minWork: 0, inlineMax: 64, reencodeStep: 64 });
const store = await MemStore.open(dir!, pageWritesOptions(config!, { durability: 'always', pages: false }));
const line = await issueAllUntil(store, (s) => s.stats().training);
process.stdout.write(`${line}\n`);
setInterval(() => undefined, 1000);
