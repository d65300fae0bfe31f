import assert from 'node:assert/strict';
import { test } from 'node:test';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { Document } from '@langchain/core/documents';
import type { EmbeddingsInterface } from '@langchain/core/embeddings';
import { MemStoreVectorStore } from '../src/langchain/index.js';
import { gateOf, outcomeOf, rejectsWith, tempDir, within10s } from './helpers.js';

const DIM = 8;
const run = promisify(execFile);

/** Deterministic embeddings: letters hashed into 8 buckets, so texts sharing words are near. */
class LetterEmbeddings implements EmbeddingsInterface {
  embedQuery(text: string): Promise<number[]> {
    const v = new Array<number>(DIM).fill(0.01);
    for (const word of text.toLowerCase().split(/\W+/)) if (word !== '') v[[...word].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 997, 7) % DIM]! += 1;
    return Promise.resolve(v);
  }
  embedDocuments(texts: string[]): Promise<number[][]> {
    return Promise.all(texts.map((t) => this.embedQuery(t)));
  }
}

const embeddings = new LetterEmbeddings();

test('LangChain: fromTexts, then similaritySearch and similaritySearchWithScore give documents with text, metadata and id, best first, filtered', async () => {
  const store = await MemStoreVectorStore.fromTexts(
    ['cats purr softly', 'dogs bark loudly', 'cats chase mice', 'stocks fell today'],
    [{ kind: 'pet' }, { kind: 'pet' }, { kind: 'pet' }, { kind: 'news' }],
    embeddings,
    { directory: tempDir() },
  );
  try {
    const docs = await store.similaritySearch('cats purr softly', 2);
    assert.equal(docs[0]!.pageContent, 'cats purr softly');
    assert.deepEqual(docs[0]!.metadata, { kind: 'pet' });
    assert.equal(typeof docs[0]!.id, 'string');
    const scored = await store.similaritySearchWithScore('stocks', 4);
    assert.ok(scored.every(([, s], i) => i === 0 || s <= scored[i - 1]![1]));
    const news = await store.similaritySearch('cats', 4, { kind: 'news' });
    assert.deepEqual(news.map((d) => d.pageContent), ['stocks fell today']);
    const retrieved = await store.asRetriever({ k: 1, filter: { kind: 'pet' } }).invoke('dogs bark loudly');
    assert.deepEqual(retrieved.map((d) => d.pageContent), ['dogs bark loudly']);
  } finally {
    await store.close();
  }
});

test('LangChain: addDocuments keeps given ids (options.ids, else Document.id), replaces on the same id, and delete({ ids }) removes them', async () => {
  const store = await MemStoreVectorStore.open(embeddings, { directory: tempDir() });
  try {
    const ids = await store.addDocuments([new Document({ pageContent: 'alpha', metadata: {} }), new Document({ pageContent: 'beta', metadata: { n: 1 }, id: 'doc-b' })], { ids: ['doc-a'] });
    assert.deepEqual(ids, ['doc-a', 'doc-b']);
    await store.addDocuments([new Document({ pageContent: 'alpha, again', metadata: {}, id: 'doc-a' })]);
    assert.equal(store.store.stats().count, 2);
    assert.equal((await store.similaritySearch('alpha again', 1))[0]!.pageContent, 'alpha, again');
    await store.delete({ ids: ['doc-a'] });
    assert.deepEqual(store.store.ids(), ['doc-b']);
    await rejectsWith(() => store.delete(), 'INVALID_ARGUMENT');
    await rejectsWith(() => store.addVectors([[1, 2]], []), 'INVALID_ARGUMENT');
    await rejectsWith(() => store.addDocuments([new Document({ pageContent: 'x', metadata: { when: new Date() } })]), 'INVALID_ARGUMENT');
  } finally {
    await store.close();
  }
});

test('LangChain: maxMarginalRelevanceSearch trades relevance for diversity: with lambda near 0 it skips near copies that plain search returns', async () => {
  const texts = ['red apple pie', 'red apple pie', 'red apple pie recipe', 'green pear tart', 'blue sky today'];
  const store = await MemStoreVectorStore.fromTexts(texts, {}, embeddings, { directory: tempDir() });
  try {
    const plain = await store.similaritySearch('red apple pie', 2);
    assert.deepEqual(plain.map((d) => d.pageContent), ['red apple pie', 'red apple pie']);
    const diverse = await store.maxMarginalRelevanceSearch('red apple pie', { k: 2, fetchK: 5, lambda: 0.1 });
    assert.equal(diverse.length, 2);
    assert.equal(new Set(diverse.map((d) => d.pageContent)).size, 2);
  } finally {
    await store.close();
  }
});

test('LangChain: a config with a misspelt key (opne), without a directory, or with a store that is not a MemStore is INVALID_OPTION, and no store is made (opne had been dropped, the store made with defaults fixed at creation)', async () => {
  const dir = tempDir();
  await rejectsWith(() => MemStoreVectorStore.open(embeddings, { directory: dir, opne: { codec: 'f16' } } as never), 'INVALID_OPTION');
  await rejectsWith(() => MemStoreVectorStore.open(embeddings, { dir } as never), 'INVALID_OPTION');
  await rejectsWith(() => MemStoreVectorStore.open(embeddings, { directory: '' }), 'INVALID_OPTION');
  await rejectsWith(() => MemStoreVectorStore.open(embeddings, { store: {} } as never), 'INVALID_OPTION');
  await rejectsWith(() => MemStoreVectorStore.open(embeddings, null as never), 'INVALID_OPTION');
  await rejectsWith(() => MemStoreVectorStore.fromTexts(['a'], {}, embeddings, { directry: dir } as never), 'INVALID_OPTION');
  assert.deepEqual(readdirSync(dir), [], 'nothing made in the directory');
  const store = await MemStoreVectorStore.open(embeddings, { directory: dir, open: { codec: 'f16' } });
  assert.equal(store.store.stats().codec, 'f16');
  await store.store.close();
});

test('LangChain: a store reopened from its directory finds what was added (dimension taken from the embeddings at creation)', async () => {
  const directory = tempDir();
  const first = await MemStoreVectorStore.fromDocuments([new Document({ pageContent: 'persisted text', metadata: { a: 1 } })], embeddings, { directory });
  assert.equal(first.store.stats().dim, DIM);
  await first.close();
  const again = await MemStoreVectorStore.open(embeddings, { directory });
  try {
    assert.deepEqual((await again.similaritySearch('persisted text', 1)).map((d) => [d.pageContent, d.metadata]), [['persisted text', { a: 1 }]]);
  } finally {
    await again.close();
  }
});

test('LangChain: swapped in for LangChain\'s MemoryVectorStore in a retriever, it returns the same documents for 50 real queries (shipped USE-lite vectors, exact on both sides)', async () => {
  const { readFileSync } = await import('node:fs');
  const { MemoryVectorStore } = await import('@langchain/classic/vectorstores/memory');
  const { shippedDataset } = await import('../src/cli/datasets.js');
  const data = shippedDataset();
  const read = (name: string) => readFileSync(new URL(`../../bench/data/wordnet-use512-1k/${name}`, import.meta.url), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { text: string }).text);
  const docTexts = read('docs.jsonl');
  const queryTexts = read('queries.jsonl').slice(0, 50);
  // The texts' own USE-lite vectors, as shipped: the same embeddings on both sides.
  const vectors = new Map<string, number[]>();
  docTexts.forEach((t, i) => vectors.set(t, Array.from(data.docs[i]!)));
  queryTexts.forEach((t, i) => vectors.set(t, Array.from(data.queries[i]!)));
  const shipped: EmbeddingsInterface = {
    embedQuery: (t) => Promise.resolve(vectors.get(t)!),
    embedDocuments: (ts) => Promise.resolve(ts.map((t) => vectors.get(t)!)),
  };
  const docs = docTexts.map((pageContent, i) => new Document({ pageContent, metadata: { n: i } }));
  const theirs = await MemoryVectorStore.fromDocuments(docs, shipped);
  // float32 codes: the scan itself is exact, as MemoryVectorStore's is.
  const mine = await MemStoreVectorStore.fromDocuments(docs, shipped, { directory: tempDir(), open: { codec: 'f32' } });
  try {
    for (const q of queryTexts) {
      const a = await theirs.asRetriever({ k: 5 }).invoke(q);
      const b = await mine.asRetriever({ k: 5 }).invoke(q);
      assert.deepEqual(b.map((d) => d.pageContent), a.map((d) => d.pageContent), q);
      assert.deepEqual(b.map((d) => d.metadata), a.map((d) => d.metadata), q);
    }
  } finally {
    await mine.close();
  }
});

test('LangChain: metadata that is not JSON data (a Map with entries, a Set, a Date, a class instance, a function, a number, an array, symbol keys) is INVALID_ARGUMENT and nothing is added (each had been dropped for having no own keys, stored as {})', async () => {
  const store = await MemStoreVectorStore.open(embeddings, { directory: tempDir() });
  try {
    class Tag {}
    const odd: unknown[] = [new Map([['source', 'manual']]), new Set(['a']), new Date(0), new Tag(), () => 1, 5, [], { [Symbol('s')]: 1 }];
    for (const metadata of odd) {
      await rejectsWith(() => store.addDocuments([new Document({ pageContent: 'a', metadata: {} }), { pageContent: 'b', metadata } as unknown as Document]), 'INVALID_ARGUMENT');
    }
    assert.equal(store.store.stats().count, 0);
    // An empty plain object (a Document's default) and none at all are no metadata.
    await store.addDocuments([new Document({ pageContent: 'c', metadata: {} }), { pageContent: 'd' } as unknown as Document]);
    assert.deepEqual((await store.similaritySearch('c', 2)).map((d) => d.metadata), [{}, {}]);
  } finally {
    await store.close();
  }
});

test('LangChain: fromDocuments whose add fails closes the store it opened, so a retry on the directory works (it had stayed open: LOCKED for the life of the process)', async () => {
  const directory = tempDir();
  await rejectsWith(() => MemStoreVectorStore.fromDocuments([new Document({ pageContent: 'x', metadata: { when: new Date() } })], embeddings, { directory }), 'INVALID_ARGUMENT');
  await rejectsWith(() => MemStoreVectorStore.fromTexts(['ok', 'lone \ud800'], {}, embeddings, { directory }), 'INVALID_ARGUMENT');
  const store = await MemStoreVectorStore.fromDocuments([new Document({ pageContent: 'x', metadata: { n: 1 } })], embeddings, { directory });
  assert.equal(store.store.stats().count, 1);
  // A store it was given stays open: it is the caller's.
  await rejectsWith(() => MemStoreVectorStore.fromDocuments([new Document({ pageContent: 'y', metadata: { when: new Date() } })], embeddings, { store: store.store }), 'INVALID_ARGUMENT');
  assert.equal(store.store.stats().count, 1);
  await store.close();
});

test('LangChain: maxMarginalRelevanceSearch checks k as every search does, fetchK as its own, and lambda in [0, 1] (INVALID_OPTION; k 2.5 had returned 3 documents, lambda NaN had thrown a TypeError), and leaves out a hit deleted before its vector is read', async () => {
  const store = await MemStoreVectorStore.fromTexts(['red apple', 'red apples', 'green pear', 'blue sky', 'red car'], {}, embeddings, { directory: tempDir() });
  try {
    for (const k of [0, -1, 2.5, Number.NaN, 1e9]) await rejectsWith(() => store.maxMarginalRelevanceSearch('red', { k, fetchK: 5 }), 'INVALID_OPTION');
    for (const lambda of [Number.NaN, -0.1, 1.5]) await rejectsWith(() => store.maxMarginalRelevanceSearch('red', { k: 2, fetchK: 5, lambda }), 'INVALID_OPTION');
    // A bad fetchK is named as fetchK (it had been checked as the search's k, and blamed on k).
    for (const fetchK of [0, 2.5, 1e7, Number.NaN]) assert.equal((await rejectsWith(() => store.maxMarginalRelevanceSearch('red', { k: 2, fetchK }), 'INVALID_OPTION')).field, 'fetchK', String(fetchK));
    // The nearest hit deleted between the search and the read of its vector.
    const inner = store.store;
    const search = inner.search.bind(inner);
    let removed: string | undefined;
    inner.search = (async (...args: Parameters<typeof search>) => {
      const hits = await search(...args);
      removed = hits[0]!.id;
      await inner.delete([removed]);
      return hits;
    }) as typeof search;
    const docs = await store.maxMarginalRelevanceSearch('red apple', { k: 3, fetchK: 5 });
    assert.equal(docs.length, 3);
    assert.ok(!docs.some((d) => d.id === removed));
  } finally {
    await store.close();
  }
});

test('LangChain: options.ids that is not an array, or longer than the documents, is INVALID_ARGUMENT (a string had become one id per character, extra ids dropped); wrong shapes of vectors and documents are INVALID_ARGUMENT, not TypeErrors; nothing is added', async () => {
  const store = await MemStoreVectorStore.open(embeddings, { directory: tempDir() });
  try {
    const docs = [new Document({ pageContent: 'a', metadata: {} }), new Document({ pageContent: 'b', metadata: {} }), new Document({ pageContent: 'c', metadata: {} })];
    for (const ids of ['xyz', 7, ['a', 'b', 'c', 'd']]) await rejectsWith(() => store.addDocuments(docs, { ids: ids as string[] }), 'INVALID_ARGUMENT');
    await rejectsWith(() => store.addVectors(undefined as unknown as number[][], docs), 'INVALID_ARGUMENT');
    await rejectsWith(() => store.addVectors([[1, 2]], null as unknown as Document[]), 'INVALID_ARGUMENT');
    await rejectsWith(() => store.addVectors([[1, 2]], [null as unknown as Document]), 'INVALID_ARGUMENT');
    await rejectsWith(() => store.addDocuments('hello' as unknown as Document[]), 'INVALID_ARGUMENT');
    assert.equal(store.store.stats().count, 0);
  } finally {
    await store.close();
  }
});

test('LangChain: an embedder that throws or returns another count of vectors is EMBED with its cause, for documents and queries, and nothing is added', async () => {
  const failing: EmbeddingsInterface = {
    embedQuery: () => Promise.reject(new Error('model down')),
    embedDocuments: () => Promise.reject(new Error('model down')),
  };
  const short: EmbeddingsInterface = { embedQuery: (t) => embeddings.embedQuery(t), embedDocuments: async (texts) => (await embeddings.embedDocuments(texts)).slice(1) };
  const directory = tempDir();
  const store = await MemStoreVectorStore.open(embeddings, { directory, open: { dim: DIM } });
  await store.close();
  for (const e of [failing, short]) {
    const s = await MemStoreVectorStore.open(e, { directory });
    try {
      await rejectsWith(() => s.addDocuments([new Document({ pageContent: 'a', metadata: {} }), new Document({ pageContent: 'b', metadata: {} })]), 'EMBED');
      if (e === failing) {
        await rejectsWith(() => s.similaritySearch('a', 1), 'EMBED');
        await rejectsWith(() => s.maxMarginalRelevanceSearch('a', { k: 1 }), 'EMBED');
      }
      assert.equal(s.store.stats().count, 0);
    } finally {
      await s.close();
    }
  }
});

test('LangChain: writes through the adapter apply in call order: an addDocuments (which embeds first) then a delete of the same id in one tick leaves it deleted (the delete had gone first); close() waits for them; delete with another key than ids is refused', async () => {
  const slow: EmbeddingsInterface = {
    embedQuery: (t) => embeddings.embedQuery(t),
    embedDocuments: async (texts) => {
      await new Promise((r) => setTimeout(r, 20));
      return embeddings.embedDocuments(texts);
    },
  };
  const directory = tempDir();
  const store = await MemStoreVectorStore.open(slow, { directory, open: { dim: DIM } });
  const added = store.addDocuments([new Document({ pageContent: 'x', metadata: {}, id: 'x' })]);
  const deleted = store.delete({ ids: ['x'] });
  const kept = store.addDocuments([new Document({ pageContent: 'y', metadata: {}, id: 'y' })]);
  await Promise.all([added, deleted]);
  await rejectsWith(() => store.delete({ ids: ['y'], filter: { n: 1 } } as { ids: string[] }), 'INVALID_OPTION');
  await store.close();
  assert.deepEqual(await kept, ['y']);
  const again = await MemStoreVectorStore.open(slow, { directory });
  assert.deepEqual(again.store.ids(), ['y']);
  await again.close();
});

test('LangChain: a document the store would refuse (a text past 16 MiB, a lone surrogate) is INVALID_ARGUMENT before anything is embedded (it had been embedded, then refused)', async () => {
  let embedded = 0;
  const counting: EmbeddingsInterface = {
    embedQuery: (t) => embeddings.embedQuery(t),
    embedDocuments: (texts) => {
      embedded += texts.length;
      return embeddings.embedDocuments(texts);
    },
  };
  const store = await MemStoreVectorStore.open(counting, { directory: tempDir(), open: { dim: DIM } });
  try {
    for (const pageContent of ['x'.repeat((16 << 20) + 1), 'lone \ud800']) {
      await rejectsWith(() => store.addDocuments([new Document({ pageContent: 'fine', metadata: {} }), new Document({ pageContent, metadata: {} })]), 'INVALID_ARGUMENT');
    }
    assert.equal(embedded, 0);
    assert.equal(store.store.stats().count, 0);
  } finally {
    await store.close();
  }
});

test('LangChain: without @langchain/core installed, importing memstore/langchain is INVALID_OPTION naming the package (it had been Node\'s ERR_MODULE_NOT_FOUND)', async () => {
  const dir = tempDir();
  // A resolve hook that finds no @langchain/core, as an install without the optional peer.
  writeFileSync(join(dir, 'hooks.mjs'), "export async function resolve(s, c, next) { if (s.startsWith('@langchain/core')) throw Object.assign(new Error('Cannot find package ' + s), { code: 'ERR_MODULE_NOT_FOUND' }); return next(s, c); }\n");
  writeFileSync(join(dir, 'register.mjs'), "import { register } from 'node:module'; register('./hooks.mjs', import.meta.url);\n");
  const adapter = new URL('../src/langchain/index.js', import.meta.url).href;
  const { stdout } = await run(process.execPath, ['--import', pathToFileURL(join(dir, 'register.mjs')).href, '--input-type=module', '-e', `import(${JSON.stringify(adapter)}).then(() => console.log('loaded'), (e) => console.log(e.code, e.field))`], { timeout: 30_000 });
  assert.equal(stdout.trim(), 'INVALID_OPTION langchain');
});

test('LangChain: arguments whose reading throws (a getter, a Proxy) are INVALID_ARGUMENT or INVALID_OPTION with the thrown error as cause, nothing written (the error had come out as it was)', async () => {
  const thrown = new RangeError('getter');
  const getter = <T extends object>(o: T, key: string): T => Object.defineProperty(o, key, { get: () => { throw thrown; }, enumerable: true });
  const dir = tempDir();
  const store = await MemStoreVectorStore.open(embeddings, { directory: dir });
  try {
    for (const key of ['pageContent', 'metadata', 'id']) {
      const doc = getter({ pageContent: 'cats', metadata: {}, id: 'a' }, key);
      const e = await rejectsWith(() => store.addDocuments([doc as Document]), 'INVALID_ARGUMENT');
      assert.equal(e.cause, thrown, key);
    }
    assert.equal((await rejectsWith(() => store.addDocuments([new Document({ pageContent: 'cats' })], getter({}, 'ids') as never), 'INVALID_ARGUMENT')).cause, thrown);
    assert.equal((await rejectsWith(() => store.delete(getter({}, 'ids') as never), 'INVALID_ARGUMENT')).cause, thrown);
    for (const key of ['k', 'filter']) {
      assert.equal((await rejectsWith(() => store.maxMarginalRelevanceSearch('cats', getter({ k: 2 }, key) as never), 'INVALID_OPTION')).cause, thrown, key);
    }
    assert.deepEqual(await store.similaritySearch('cats', 5), []);
  } finally {
    await store.close();
  }
  for (const key of ['directory', 'open']) {
    assert.equal((await rejectsWith(() => MemStoreVectorStore.open(embeddings, getter({ directory: tempDir() }, key) as never), 'INVALID_OPTION')).cause, thrown, key);
  }
});

test('LangChain: fromDocuments and fromTexts whose batch a store would refuse (vectors of two lengths, a Date in metadata) make no store, so a retry with the right embedder succeeds (a store had been left whose dimension the bad first vector fixed: DIM_MISMATCH ever after)', async () => {
  const docs = [new Document({ pageContent: 'a' }), new Document({ pageContent: 'b' })];
  const bad: EmbeddingsInterface = { embedDocuments: () => Promise.resolve([[1, 2, 3], [1, 2]]), embedQuery: () => Promise.resolve([1, 2]) };
  const good: EmbeddingsInterface = { embedDocuments: (ts) => Promise.resolve(ts.map(() => [1, 2])), embedQuery: () => Promise.resolve([1, 2]) };
  const dir = join(tempDir(), 'store');
  await rejectsWith(() => MemStoreVectorStore.fromDocuments(docs, bad, { directory: dir }), 'DIM_MISMATCH');
  await rejectsWith(() => MemStoreVectorStore.fromTexts(['a'], [{ when: new Date() }], good, { directory: dir }), 'INVALID_ARGUMENT');
  assert.equal(existsSync(dir), false, 'no store made');
  const store = await MemStoreVectorStore.fromDocuments(docs, good, { directory: dir });
  try {
    assert.equal((await store.similaritySearch('a', 5)).length, 2);
  } finally {
    await store.close();
  }
});

/** The ids of the store in `dir`, opened again through the adapter, sorted. */
async function idsAfterReopen(dir: string): Promise<string[]> {
  const again = await MemStoreVectorStore.open(embeddings, { directory: dir });
  try {
    return again.store.ids().sort();
  } finally {
    await again.close();
  }
}

test('LangChain: embeddings of an addDocuments that await a write to the same vector store (delete, addVectors) or its close(), alone or after a close() from outside, settle: the write goes ahead of that add, a close ends that add CLOSED (all had waited for the add that waited for them, for ever: a hostile pass)', async () => {
  type Inner = 'delete' | 'addVectors' | 'close' | 'outside close, then close';
  for (const inner of ['delete', 'addVectors', 'close', 'outside close, then close'] as Inner[]) {
    const dir = tempDir();
    let vs: MemStoreVectorStore | undefined;
    let innerDone: Promise<unknown> | undefined;
    const gate = gateOf();
    const awaiting: EmbeddingsInterface = {
      embedQuery: (t) => embeddings.embedQuery(t),
      embedDocuments: async (texts) => {
        if (texts.includes('waits')) {
          await gate.passed;
          innerDone =
            inner === 'delete' ? vs!.delete({ ids: ['first'] }) : inner === 'addVectors' ? vs!.addVectors([await embeddings.embedQuery('inner')], [new Document({ pageContent: 'inner' })], { ids: ['inner'] }) : vs!.close();
          await innerDone;
        }
        return embeddings.embedDocuments(texts);
      },
    };
    vs = await MemStoreVectorStore.open(awaiting, { directory: dir, open: { dim: DIM } });
    await vs.addDocuments([new Document({ pageContent: 'first' })], { ids: ['first'] });
    const adding = outcomeOf(vs.addDocuments([new Document({ pageContent: 'waits' })], { ids: ['waits'] }));
    const outer = inner === 'outside close, then close' ? outcomeOf(vs.close()) : Promise.resolve('none');
    gate.open();
    const settled = await within10s(Promise.all([adding, outer]));
    assert.ok(Array.isArray(settled), `${inner}: ${String(settled)}`);
    assert.equal(await outcomeOf(innerDone!), 'resolved', `${inner}: the embeddings' own call`);
    const closes = inner === 'close' || inner === 'outside close, then close';
    assert.deepEqual(settled, [closes ? 'CLOSED' : 'resolved', closes && inner !== 'close' ? 'resolved' : 'none'], inner);
    if (!closes) await vs.close();
    assert.deepEqual(await idsAfterReopen(dir), inner === 'delete' ? ['waits'] : inner === 'addVectors' ? ['first', 'inner', 'waits'] : ['first'], inner);
  }
});

test('LangChain: a write or close() the embeddings of an addDocuments make waits for the writes called before that add: a delete of an id an earlier addVectors adds leaves it deleted, a close keeps the earlier adds (the delete had overtaken the add, the close had made them CLOSED)', async () => {
  for (const inner of ['delete', 'close'] as const) {
    const dir = tempDir();
    let vs: MemStoreVectorStore | undefined;
    const slow = gateOf();
    let innerDone: Promise<unknown> | undefined;
    const gated: EmbeddingsInterface = {
      embedQuery: (t) => embeddings.embedQuery(t),
      embedDocuments: async (texts) => {
        if (texts.includes('slow')) await slow.passed;
        if (texts.includes('writes')) {
          innerDone = inner === 'delete' ? vs!.delete({ ids: ['a'] }) : vs!.close();
          setTimeout(slow.open, 20);
          await innerDone;
        }
        return embeddings.embedDocuments(texts);
      },
    };
    vs = await MemStoreVectorStore.open(gated, { directory: dir, open: { dim: DIM } });
    const first = outcomeOf(vs.addDocuments([new Document({ pageContent: 'slow' })], { ids: ['slow'] }));
    const a = outcomeOf(vs.addVectors([await embeddings.embedQuery('a')], [new Document({ pageContent: 'a' })], { ids: ['a'] }));
    const writes = outcomeOf(vs.addDocuments([new Document({ pageContent: 'writes' })], { ids: ['writes'] }));
    assert.deepEqual(await Promise.all([first, a, writes]), ['resolved', 'resolved', inner === 'close' ? 'CLOSED' : 'resolved'], inner);
    assert.equal(await outcomeOf(innerDone!), 'resolved', inner);
    if (inner === 'delete') await vs.close();
    assert.deepEqual(await idsAfterReopen(dir), inner === 'delete' ? ['slow', 'writes'] : ['a', 'slow'], inner);
  }
});

test('LangChain: maxMarginalRelevanceSearch measures relevance and likeness in the store\'s metric: with lambda 1 it returns similaritySearch\'s documents in its order, for dot and l2 stores too (LangChain\'s helper measured by cosine: a dot store\'s pick was not its own top k, a hostile pass)', async () => {
  // Vectors of very different lengths, where cosine and the inner product rank apart.
  class Scaled implements EmbeddingsInterface {
    embedQuery(text: string): Promise<number[]> {
      const n = Number(text.slice(3));
      const v = Array.from({ length: DIM }, (_, j) => Math.cos(n * 1.7 + j * 0.9) + (j === 0 ? 1 : 0));
      const scale = Number.isFinite(n) ? 1 + (n % 7) * 3 : 1;
      return Promise.resolve(v.map((x) => x * scale));
    }
    embedDocuments(texts: string[]): Promise<number[][]> {
      return Promise.all(texts.map((t) => this.embedQuery(t)));
    }
  }
  const texts = Array.from({ length: 60 }, (_, i) => `doc${i}`);
  for (const metric of ['dot', 'l2', 'cosine'] as const) {
    const store = await MemStoreVectorStore.fromTexts(texts, {}, new Scaled(), { directory: tempDir(), open: { metric } });
    try {
      for (const query of ['doc7', 'doc33', 'doc58']) {
        const plain = await store.similaritySearch(query, 5);
        const mmr = await store.maxMarginalRelevanceSearch(query, { k: 5, fetchK: 30, lambda: 1 });
        assert.deepEqual(mmr.map((d) => d.id), plain.map((d) => d.id), `${metric} ${query}`);
      }
    } finally {
      await store.close();
    }
  }
});

test('LangChain: fromTexts refuses texts that are not an array of strings with INVALID_ARGUMENT (a string had thrown a TypeError, and 5, undefined or {} had been stored as "5", "" and "[object Object]"), and a null metadata entry as addDocuments does (it had become {}); no store is made', async () => {
  for (const [texts, metadatas] of [['abc', {}], [[null], {}], [[5], {}], [[undefined], {}], [[{}], {}], [['fine', 'also'], [{ a: 1 }, null]]] as const) {
    const dir = join(tempDir(), 'store');
    await rejectsWith(() => MemStoreVectorStore.fromTexts(texts as unknown as string[], metadatas as unknown as object[], embeddings, { directory: dir }), 'INVALID_ARGUMENT');
    assert.equal(existsSync(join(dir, 'state.mdb')), false, JSON.stringify(texts));
  }
  const ok = await MemStoreVectorStore.fromTexts(['a', 'b'], [{ n: 1 }, undefined as unknown as object], embeddings, { directory: tempDir() });
  try {
    const [hit] = await ok.similaritySearch('a', 1);
    assert.deepEqual(hit!.metadata, { n: 1 });
  } finally {
    await ok.close();
  }
});

test('LangChain: open() of a new directory whose embeddings fail the probe of their dimension (throw, a string thrown, null, a string, { length: 3 }, [], NaN or Infinity in the vector) is EMBED with the cause, and no store is made (found by the hostile user: the error had come out as it was, null a TypeError, and "abc" made a store of 3 dimensions)', async () => {
  const probes: [string, () => unknown][] = [
    ['a rejection', () => Promise.reject(new Error('boom'))],
    ['a string thrown', () => Promise.reject('boom')],
    ['a throw', () => {
      throw new Error('boom');
    }],
    ['null', () => Promise.resolve(null)],
    ['undefined', () => Promise.resolve(undefined)],
    ['a string', () => Promise.resolve('abc')],
    ['an array-like', () => Promise.resolve({ length: 3 })],
    ['no numbers', () => Promise.resolve([])],
    ['a null in it', () => Promise.resolve([null, 1])],
    ['Infinity in it', () => Promise.resolve([Infinity, 1])],
    ['NaN in it', () => Promise.resolve([1, Number.NaN])],
  ];
  for (const [what, embedQuery] of probes) {
    const directory = tempDir();
    const odd = { embedQuery, embedDocuments: () => Promise.resolve([]) } as unknown as EmbeddingsInterface;
    const e = await rejectsWith(() => MemStoreVectorStore.open(odd, { directory }), 'EMBED');
    if (what.startsWith('a rejection') || what === 'a throw') assert.equal((e.cause as Error).message, 'boom', what);
    assert.deepEqual(readdirSync(directory), [], what);
    // fromTexts of no texts probes too.
    await rejectsWith(() => MemStoreVectorStore.fromTexts([], [], odd, { directory }), 'EMBED');
    assert.deepEqual(readdirSync(directory), [], `${what}, fromTexts`);
  }
});

test('LangChain: maxMarginalRelevanceSearch refuses an unknown or misspelt option (filters, fetch_k) with INVALID_OPTION naming it, as every options object does (found by the hostile user: it ran unfiltered)', async () => {
  const store = await MemStoreVectorStore.fromTexts(['x', 'y', 'y'], [{ src: 'x' }, { src: 'y' }, { src: 'y' }], embeddings, { directory: tempDir() });
  try {
    assert.equal((await rejectsWith(() => store.maxMarginalRelevanceSearch('x', { k: 3, filters: { src: 'x' } } as never), 'INVALID_OPTION')).field, 'filters');
    assert.equal((await rejectsWith(() => store.maxMarginalRelevanceSearch('x', { k: 3, fetch_k: 10 } as never), 'INVALID_OPTION')).field, 'fetch_k');
    const filtered = await store.maxMarginalRelevanceSearch('x', { k: 3, fetchK: 3, lambda: 0.5, filter: { src: 'x' } });
    assert.deepEqual(filtered.map((d) => d.pageContent), ['x']);
  } finally {
    await store.close();
  }
});

test('LangChain: fromTexts making a store whose embedder returns no vector of finite numbers for the first text (empty, strings, NaN, null) is EMBED and makes no store (an empty one had been INVALID_OPTION naming a dim never given, strings INVALID_VECTOR); vectors past the first go to add, which refuses them as it does', async () => {
  const firsts: [string, unknown][] = [['empty', []], ['strings', ['a', 'b']], ['NaN', [Number.NaN, 1, 2]], ['null', null]];
  for (const [what, first] of firsts) {
    const directory = tempDir();
    const odd = { embedQuery: () => Promise.resolve([1, 2, 3]), embedDocuments: (texts: string[]) => Promise.resolve(texts.map((_, i) => (i === 0 ? first : [1, 2, 3]))) } as unknown as EmbeddingsInterface;
    const e = await rejectsWith(() => MemStoreVectorStore.fromTexts(['x', 'y'], [], odd, { directory }), 'EMBED');
    assert.equal(e.field, 'texts', what);
    assert.deepEqual(readdirSync(directory), [], what);
  }
  const directory = tempDir();
  const second = { embedQuery: () => Promise.resolve([1, 2, 3]), embedDocuments: (texts: string[]) => Promise.resolve(texts.map((_, i) => (i === 0 ? [1, 2, 3] : [Number.NaN, 1, 2]))) } as unknown as EmbeddingsInterface;
  await rejectsWith(() => MemStoreVectorStore.fromTexts(['x', 'y'], [], second, { directory }), 'INVALID_VECTOR');
  assert.deepEqual(readdirSync(directory), [], 'checked before a store is made');
});

test('LangChain: a query holding a lone surrogate, or not a text, is INVALID_ARGUMENT naming query in every search, as recall and addDocuments refuse such texts (similaritySearch had searched it)', async () => {
  const store = await MemStoreVectorStore.fromTexts(['x', 'y'], {}, embeddings, { directory: tempDir() });
  try {
    for (const query of ['\udfff', 'a\ud800b', 42 as unknown as string]) {
      assert.equal((await rejectsWith(() => store.similaritySearch(query, 1), 'INVALID_ARGUMENT')).field, 'query');
      assert.equal((await rejectsWith(() => store.similaritySearchWithScore(query, 1), 'INVALID_ARGUMENT')).field, 'query');
      assert.equal((await rejectsWith(() => store.maxMarginalRelevanceSearch(query, { k: 1 }), 'INVALID_ARGUMENT')).field, 'query');
    }
    assert.equal((await store.similaritySearch('x', 1)).length, 1);
  } finally {
    await store.close();
  }
});

test('LangChain: maxMarginalRelevanceSearch with fetchK below k is INVALID_OPTION naming fetchK (k documents past fetchK had come back as fetchK, without a word); without fetchK, k past 20 fetches k', async () => {
  const texts = Array.from({ length: 30 }, (_, i) => `text ${String.fromCharCode(97 + (i % 26))}${i}`);
  const store = await MemStoreVectorStore.fromTexts(texts, {}, embeddings, { directory: tempDir() });
  try {
    assert.equal((await rejectsWith(() => store.maxMarginalRelevanceSearch('text', { k: 5, fetchK: 3 }), 'INVALID_OPTION')).field, 'fetchK');
    assert.equal((await store.maxMarginalRelevanceSearch('text', { k: 25 })).length, 25);
    assert.equal((await store.maxMarginalRelevanceSearch('text', { k: 5, fetchK: 5 })).length, 5);
  } finally {
    await store.close();
  }
});
