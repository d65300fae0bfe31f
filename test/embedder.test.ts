import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { shippedDataset } from '../src/cli/datasets.js';
import { model as useLiteModel, piecesOf, USE_LITE_PIECE } from '../src/embedders/use-lite.js';
import { useLite, USE_LITE_DIM } from '../src/embedders/index.js';
import { MemStore, type MemstoreError } from '../src/index.js';
import { exactScore } from './helpers.js';
import { rejectsWith, tempDir } from './helpers.js';

const cosine = (a: Float32Array, b: Float32Array) => exactScore('cosine', a, b);

/** The shipped set's texts, in the order of its vectors. */
function shippedTexts(): string[] {
  const lines = readFileSync(new URL('../../bench/data/wordnet-use512-1k/docs.jsonl', import.meta.url), 'utf8').trim().split('\n');
  return lines.map((l) => (JSON.parse(l) as { text: string }).text);
}

const embed = await useLite();

test('USE-lite: 512 finite dimensions per text, the same vector for the same text, in order for a batch larger than one call', async () => {
  const texts = Array.from({ length: 70 }, (_, i) => `sentence ${i} about the weather`);
  const vectors = await embed(texts);
  assert.equal(vectors.length, 70);
  for (const v of vectors) {
    assert.equal(v.length, USE_LITE_DIM);
    assert.ok(Array.from(v).every(Number.isFinite));
  }
  const [again] = await embed([texts[65]!]);
  assert.ok(cosine(again!, vectors[65]!) > 0.9999);
});

test('USE-lite reproduces the shipped data set, which was embedded with the same packages (cosine above 0.999 for each of 20 texts)', async () => {
  const texts = shippedTexts().slice(0, 20);
  const shipped = shippedDataset().docs.slice(0, 20);
  const mine = await embed(texts);
  mine.forEach((v, i) => assert.ok(cosine(v, shipped[i]!) > 0.999, `${texts[i]}: ${cosine(v, shipped[i]!)}`));
});

test('USE-lite in the memory API: a paraphrased question recalls the fact it asks about', async () => {
  const store = await MemStore.open(tempDir(), { dim: USE_LITE_DIM, embed });
  try {
    await store.remember(['Alice lives in Lyon', 'Bob is allergic to peanuts', 'The meeting is at 3pm on Friday', 'My flight leaves on Monday'], { namespace: 'facts' });
    const [best] = await store.recall('what is Bob allergic to?', { namespace: 'facts' });
    assert.equal(best!.text, 'Bob is allergic to peanuts');
    const [when] = await store.recall('when does the meeting start', { namespace: 'facts' });
    assert.equal(when!.text, 'The meeting is at 3pm on Friday');
  } finally {
    await store.close();
  }
});

test('USE-lite: a batch size that is not a positive integer, a misspelt option (bacth) or options that are not an object are INVALID_OPTION', async () => {
  await rejectsWith(() => useLite({ batch: 0 }), 'INVALID_OPTION');
  await rejectsWith(() => useLite({ batch: 1.5 }), 'INVALID_OPTION');
  await rejectsWith(() => useLite({ bacth: 64 } as never), 'INVALID_OPTION');
  await rejectsWith(() => useLite(64 as never), 'INVALID_OPTION');
});

test('USE-lite: an empty text is INVALID_ARGUMENT naming it (the model\'s own error had come out), and through remember() EMBED with that cause, nothing written', async () => {
  const e = await rejectsWith(() => embed(['a', '']), 'INVALID_ARGUMENT');
  assert.equal(e.field, 'texts[1]');
  const store = await MemStore.open(tempDir(), { dim: USE_LITE_DIM, embed });
  try {
    const failed = await rejectsWith(() => store.remember(['fine', '']), 'EMBED');
    assert.equal((failed.cause as MemstoreError).code, 'INVALID_ARGUMENT');
    assert.equal(store.stats().count, 0);
  } finally {
    await store.close();
  }
});

test('USE-lite: a text past USE_LITE_PIECE characters is the unit mean of its pieces, cut at whitespace and never inside a surrogate pair (a 100,000-character text had taken a minute, its time growing with the square of its length)', async () => {
  // Pieces: at most the limit each, together the text, each (but the last) ending in whitespace where the text has some.
  const vocabulary = ['memory', 'agents', 'recall', 'what', 'they', 'read', 'and', 'say', 'quantized', 'vectors', 'never', 'lose', 'a', 'write'];
  let long = '';
  for (let i = 0; long.length < 2.5 * USE_LITE_PIECE; i++) long += `${vocabulary[(i * 5) % vocabulary.length]!}${i % 11 === 10 ? '.\n' : ' '}`;
  const pieces = piecesOf(long);
  assert.equal(pieces.join(''), long);
  assert.ok(pieces.length === 3 && pieces.every((p) => p.length > 0 && p.length <= USE_LITE_PIECE));
  for (const p of pieces.slice(0, -1)) assert.match(p, /\s$/);
  const emoji = '\u{1F600}'.repeat(USE_LITE_PIECE);
  const cut = piecesOf(emoji);
  assert.equal(cut.join(''), emoji);
  for (const p of cut) assert.ok(!/^[\udc00-\udfff]|[\ud800-\udbff]$/.test(p), 'no piece starts or ends inside a pair');
  assert.deepEqual(piecesOf('short text'), ['short text']);
  // The vector: the model's own for a text within the limit, the unit mean of the pieces' past it.
  const [whole, ...parts] = await embed([long, ...pieces]);
  const mean = new Float64Array(USE_LITE_DIM);
  for (const v of parts) for (let d = 0; d < USE_LITE_DIM; d++) mean[d]! += v![d]!;
  const norm = Math.hypot(...mean);
  for (let d = 0; d < USE_LITE_DIM; d++) assert.ok(Math.abs(whole![d]! - mean[d]! / norm) < 1e-6, `dimension ${d}`);
  assert.ok(Math.abs(Math.hypot(...whole!) - 1) < 1e-5);
});

test('USE-lite: a text with no word the English model knows (Chinese, Hebrew, emoji, control characters, spaces alone) is INVALID_ARGUMENT naming it, and through remember() EMBED, nothing written: they had all come out as one vector, so dedupe replaced one fact by another', async () => {
  // With digits and punctuation beside them too: "你好!" and "再见!" had been one vector.
  for (const text of ['东京是日本的首都', 'שלום', '👍', '\u0000', '   ', '你好!', '2024年的会议', '会议 1', '🎉 2024!']) {
    const e = await rejectsWith(() => embed(['fine', text]), 'INVALID_ARGUMENT');
    assert.equal(e.field, 'texts[1]', JSON.stringify(text));
  }
  const [known, mixed] = await embed(['Tokyo is the capital of Japan', 'Tokyo 东京']);
  assert.ok(known !== undefined && mixed !== undefined && cosine(known, mixed) < 1, 'a text with one known word embeds');
  const store = await MemStore.open(tempDir(), { dim: USE_LITE_DIM, embed, dedupe: 0.99 });
  try {
    await store.remember('Tokyo is the capital of Japan');
    const failed = await rejectsWith(() => store.remember(['東京は日本の首都です']), 'EMBED');
    assert.equal((failed.cause as MemstoreError).code, 'INVALID_ARGUMENT');
    assert.equal(store.stats().count, 1);
  } finally {
    await store.close();
  }
});

test('USE-lite: every useLite() shares one model (each had loaded its own, about 58 MiB held for good), and its embeddings are the same', async () => {
  const others = await Promise.all([useLite(), useLite({ batch: 2 })]);
  assert.equal(await useLiteModel(), await useLiteModel());
  const [mine] = await embed(['the same model']);
  for (const other of others) {
    const [theirs] = await other(['the same model']);
    assert.deepEqual(Array.from(theirs!), Array.from(mine!));
  }
});

test('USE-lite lets timers run between its batches: a timer set while it embeds many texts fires before it ends (recalls back to back had starved every write)', async () => {
  let fired = false;
  setTimeout(() => {
    fired = true;
  }, 0);
  let firedBeforeEnd = false;
  const many = Array.from({ length: 40 }, (_, i) => `a sentence numbered ${i}`);
  await embed(many).then(() => {
    firedBeforeEnd = fired;
  });
  assert.ok(firedBeforeEnd);
});
