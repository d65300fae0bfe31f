/**
 * An agent's long-term memory: store what it read (WordNet glosses, already embedded with USE-lite
 * and shipped in bench/data), then recall the most relevant memories for what a user says.
 *
 *   npm run build && node dist/examples/rag-memory.js
 *
 * In a real agent the vectors come from your embedding model; memstore only needs Float32Arrays.
 */
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemStore } from 'memstore';

const data = new URL('../../bench/data/wordnet-use512-1k/', import.meta.url);
const dim = 512;

function vectors(file: string): Float32Array[] {
  const buf = readFileSync(new URL(file, data));
  const all = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  return Array.from({ length: all.length / dim }, (_, i) => all.subarray(i * dim, (i + 1) * dim));
}

function lines<T>(file: string): T[] {
  return readFileSync(new URL(file, data), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as T);
}

const docs = lines<{ id: string; text: string }>('docs.jsonl');
const queries = lines<{ text: string; target: number }>('queries.jsonl');
const docVectors = vectors('docs.f32');
const queryVectors = vectors('queries.f32');

const dir = join(tmpdir(), 'memstore-rag-example');
rmSync(dir, { recursive: true, force: true });

// int8 codes in RAM (4x smaller than float32), full-precision copies on disk to rescore the top candidates.
const memory = await MemStore.open(dir, { dim, codec: 'int8', metric: 'cosine' });
await memory.add(
  docs.map((d, i) => ({
    id: d.id,
    vector: docVectors[i]!,
    text: d.text,
    meta: { pos: d.id.split(':')[0]! },
  })),
);
console.log(`remembered ${memory.stats().count} glosses in ${memory.stats().bytesPerVector.toFixed(0)} B/vector of RAM`);

for (const qi of [0, 1, 4]) {
  const q = queries[qi]!;
  const hits = await memory.search(queryVectors[qi]!, { k: 3 });
  console.log(`\nuser: "${q.text}"`);
  for (const h of hits) console.log(`  ${h.score.toFixed(3)}  ${h.text}`);
}

// Recall restricted to one kind of memory, via metadata.
const verbs = await memory.search(queryVectors[1]!, { k: 2, filter: { pos: 'verb' } });
console.log('\nonly verbs:', verbs.map((h) => h.text));

await memory.close();
rmSync(dir, { recursive: true, force: true });
