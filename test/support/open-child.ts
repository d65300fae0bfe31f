/**
 * A fresh process that opens the store in argv (with the pages options given as JSON) and prints
 * what the allocator over linear memory holds in free lists afterwards, and the page count: in a
 * fresh process nothing else has freed blocks before the open.
 *   node open-child.js DIR PAGES_JSON
 */
import { MemStore } from '../../src/index.js';
import { kernels } from '../../src/kernels/index.js';

const [dir, pages] = process.argv.slice(2);
const store = await MemStore.open(dir!, { cache: false, pages: JSON.parse(pages!) as { from: number; maxPage: number } });
process.stdout.write(`${JSON.stringify({ pages: store.stats().pages, freeBytes: kernels().memory.freeBytes })}\n`);
await store.close();
