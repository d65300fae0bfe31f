/**
 * Retrieval-augmented answers over a real document set that ships in an npm package: the full
 * texts of common open-source licenses (spdx-license-list). Each license is cut into chunks of a
 * few sentences, embedded locally (USE-lite) and stored with its source; a question recalls the
 * chunks to answer from, with where each comes from.
 *
 *   npm run build && node dist/examples/rag-documents.js
 *
 * Needs spdx-license-list and the USE-lite packages (@energetic-ai/*), all from npm.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemStore } from 'memstore';
import { useLite, USE_LITE_DIM } from 'memstore/embedders';
import licenses from 'spdx-license-list/full.js';

const SOURCES = ['MIT', 'Apache-2.0', 'BSD-3-Clause', 'ISC', 'MPL-2.0', 'Unlicense', 'Zlib', '0BSD'];
const CHUNK_CHARS = 600;

/** Paragraphs joined until a chunk would pass CHUNK_CHARS; a longer paragraph is cut at sentence ends. */
function chunks(text: string): string[] {
  const out: string[] = [];
  let current = '';
  const pieces = text.split(/\n\s*\n/).flatMap((p) => (p.length <= CHUNK_CHARS ? [p] : p.split(/(?<=[.;:])\s+/)));
  for (const piece of pieces.map((p) => p.replace(/\s+/g, ' ').trim()).filter((p) => p !== '')) {
    if (current !== '' && current.length + piece.length + 1 > CHUNK_CHARS) {
      out.push(current);
      current = '';
    }
    current = current === '' ? piece : `${current} ${piece}`;
  }
  if (current !== '') out.push(current);
  return out;
}

const embed = await useLite();
const dir = mkdtempSync(join(tmpdir(), 'memstore-rag-'));
const store = await MemStore.open(dir, { dim: USE_LITE_DIM });

for (const id of SOURCES) {
  const license = licenses[id];
  if (license === undefined) throw new Error(`spdx-license-list has no ${id}`);
  const parts = chunks(license.licenseText);
  const vectors = await embed(parts);
  await store.add(parts.map((text, i) => ({ id: `${id}#${i}`, vector: vectors[i]!, text, meta: { source: id, name: license.name, chunk: i } })));
}
console.log(`indexed ${store.stats().count} chunks of ${SOURCES.length} licenses, ${store.stats().bytesPerVector.toFixed(0)} B of RAM per chunk`);

const questions = [
  'Am I allowed to use the software without including the copyright notice?',
  'What happens to my patent license if I sue someone for patent infringement?',
  'Is the software provided with any warranty?',
];
for (const question of questions) {
  const [q] = await embed([question]);
  const hits = await store.search(q!, { k: 3 });
  console.log(`\nQ: ${question}`);
  for (const h of hits) console.log(`  [${String(h.meta?.['source'])} #${String(h.meta?.['chunk'])}, ${h.score.toFixed(2)}] ${h.text!.slice(0, 140)}…`);
  // Narrowed to one license: its own chunks only.
  const [own] = await store.search(q!, { k: 1, filter: { source: 'Apache-2.0' } });
  console.log(`  in Apache-2.0 alone: #${String(own?.meta?.['chunk'])} ${own?.text?.slice(0, 100)}…`);
}

await store.close();
rmSync(dir, { recursive: true, force: true });
