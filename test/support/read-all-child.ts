/**
 * Opens the store in argv[2] and prints, as one JSON line, either the error code of the open or
 * every record it returns for the ids in argv[3] (comma-separated): used to probe damaged state
 * files in a separate process, since LMDB may abort on a damaged page.
 */
import { MemStore, isMemstoreError } from '../../src/index.js';

const [dir, idList] = process.argv.slice(2);
const out: Record<string, unknown> = {};
try {
  const store = await MemStore.open(dir!, { cache: false });
  for (const id of idList!.split(',')) {
    try {
      const r = await store.get(id);
      out[id] = r === undefined ? null : { vector: Array.from(r.vector), text: r.text, meta: r.meta };
    } catch (e) {
      out[id] = { error: isMemstoreError(e) ? e.code : String(e) };
    }
  }
  await store.abandon();
  process.stdout.write(`${JSON.stringify({ records: out })}\n`);
} catch (e) {
  process.stdout.write(`${JSON.stringify({ openError: isMemstoreError(e) ? e.code : String(e) })}\n`);
}
