import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { MemStore, type Embed, type OpenOptions } from '../src/index.js';
import { rejectsWith, tempDir } from './helpers.js';

const DIM = 8;

/**
 * A deterministic embedder for tests: each text's vector is given in `known`, else made from its
 * characters (texts sharing letters score high), so tests choose exactly how near two texts are.
 */
function embedder(known: Record<string, number[]> = {}): Embed & { calls: number } {
  const f = async (texts: string[]) => {
    f.calls++;
    return texts.map((t) => {
      const given = known[t];
      if (given !== undefined) return Float32Array.from(given);
      const v = new Float32Array(DIM).fill(0.01);
      for (const [i, c] of [...t].entries()) v[(c.codePointAt(0)! + i) % DIM]! += 1;
      return v;
    });
  };
  f.calls = 0;
  return f;
}

async function open(options: Partial<OpenOptions> = {}): Promise<MemStore> {
  return MemStore.open(tempDir(), { dim: DIM, durability: 'none', embed: embedder(), ...options });
}

test('memory: remember adds; the identical text in the same namespace updates it (same id); in another namespace it is another memory', async () => {
  const store = await open();
  try {
    const [first] = await store.remember('the cat sat on the mat', { namespace: 'alice' });
    assert.equal(first!.action, 'added');
    const [again] = await store.remember('the cat sat on the mat', { namespace: 'alice', meta: { turn: 2 } });
    assert.deepEqual(again, { id: first!.id, action: 'updated' });
    const [other] = await store.remember('the cat sat on the mat', { namespace: 'bob' });
    assert.equal(other!.action, 'added');
    assert.notEqual(other!.id, first!.id);
    assert.equal(store.stats().count, 2);
    const [hit] = await store.recall('the cat sat on the mat', { namespace: 'alice' });
    assert.deepEqual(hit!.meta, { turn: 2 });
    // Within one call too: the later copy replaces the earlier.
    const both = await store.remember(['same', 'same'], { namespace: 'carol' });
    assert.equal(both[0]!.id, both[1]!.id);
    assert.deepEqual(both.map((r) => r.action), ['added', 'updated']);
  } finally {
    await store.close();
  }
});

test('memory: the same text up to case, whitespace and punctuation is the same memory; different words or digits are not', async () => {
  const store = await open();
  try {
    const [a] = await store.remember('The meeting is at 3pm on Friday.');
    for (const variant of ['the meeting is at 3pm on friday', 'The  meeting is at 3 pm on Friday!', 'ＴＨＥ meeting is at 3pm on Friday']) {
      assert.deepEqual(await store.remember(variant), [{ id: a!.id, action: 'updated' }], variant);
    }
    assert.equal((await store.remember('The meeting is at 4pm on Friday.'))[0]!.action, 'added');
    assert.equal((await store.remember('!!!'))[0]!.action, 'added');
    assert.equal((await store.remember('???'))[0]!.action, 'added');
    assert.equal(store.stats().count, 4);
  } finally {
    await store.close();
  }
});

test('memory: with dedupe set, a text scoring at least it against a memory of the namespace updates that memory; below it, or by default (off), it is added', async () => {
  const known = { a: [1, 0, 0, 0, 0, 0, 0, 0], 'a, nearly': [1, 0.2, 0, 0, 0, 0, 0, 0], 'a, loosely': [1, 0.5, 0, 0, 0, 0, 0, 0] };
  // cos(a, nearly) = 0.981; cos(a, loosely) = 0.894.
  const store = await open({ embed: embedder(known), dedupe: 0.97 });
  try {
    const [a] = await store.remember('a');
    assert.deepEqual(await store.remember('a, nearly'), [{ id: a!.id, action: 'updated' }]);
    assert.equal((await store.remember('a, loosely'))[0]!.action, 'added');
  } finally {
    await store.close();
  }
  const strict = await open({ embed: embedder(known) });
  try {
    const [a] = await strict.remember('a');
    assert.equal((await strict.remember('a, nearly'))[0]!.action, 'added');
    // An identical text is found by its hash, not its score: it updates even so.
    assert.deepEqual(await strict.remember('a'), [{ id: a!.id, action: 'updated' }]);
  } finally {
    await strict.close();
  }
  const loose = await open({ embed: embedder(known), dedupe: 0.8 });
  try {
    const [a] = await loose.remember('a');
    assert.deepEqual(await loose.remember('a, loosely'), [{ id: a!.id, action: 'updated' }]);
  } finally {
    await loose.close();
  }
});

test('memory: an explicit id replaces that memory; it names one text only', async () => {
  const store = await open();
  try {
    assert.deepEqual(await store.remember('first', { id: 'fact-1' }), [{ id: 'fact-1', action: 'added' }]);
    assert.deepEqual(await store.remember('second, superseding', { id: 'fact-1' }), [{ id: 'fact-1', action: 'updated' }]);
    assert.equal((await store.recall('second, superseding', { k: 5 })).length, 1);
    await rejectsWith(() => store.remember(['x', 'y'], { id: 'fact-2' }), 'INVALID_ARGUMENT');
    await rejectsWith(() => store.remember('x', { id: '' }), 'INVALID_ID');
  } finally {
    await store.close();
  }
});

test('memory: recall stays in its namespace, takes k, filters on the memory\'s own metadata and a minimum score, and returns text, namespace and time', async () => {
  const store = await open();
  try {
    const at = Date.UTC(2026, 0, 1);
    await store.remember(['red apples', 'green pears', 'yellow bananas'], { namespace: 'fruit', meta: { kind: 'food' }, at });
    await store.remember(['red cars'], { namespace: 'fruit', meta: { kind: 'other' }, at });
    await store.remember(['red apples'], { namespace: 'elsewhere' });
    const hits = await store.recall('red apples', { namespace: 'fruit', k: 10 });
    assert.equal(hits.length, 4);
    assert.ok(hits.every((h) => h.namespace === 'fruit' && h.at === at));
    assert.deepEqual(hits[0], { id: hits[0]!.id, score: hits[0]!.score, text: 'red apples', namespace: 'fruit', at, meta: { kind: 'food' } });
    assert.equal((await store.recall('red apples', { namespace: 'fruit', k: 2 })).length, 2);
    const food = await store.recall('red', { namespace: 'fruit', filter: { kind: 'food' } });
    assert.deepEqual(food.map((h) => h.text).sort(), ['green pears', 'red apples', 'yellow bananas']);
    const close = await store.recall('red apples', { namespace: 'fruit', minScore: 0.999 });
    assert.deepEqual(close.map((h) => h.text), ['red apples']);
    assert.deepEqual(await store.recall('red apples', { namespace: 'nobody' }), []);
    // The default namespace is a namespace like any other.
    assert.deepEqual(await store.recall('red apples'), []);
  } finally {
    await store.close();
  }
});

test('memory: since and until select by the time a memory was made; expired memories are never recalled, even when they are the nearest', async () => {
  const store = await open();
  try {
    const day = 86_400_000;
    const t0 = Date.UTC(2026, 5, 1);
    await store.remember('monday note', { at: t0 });
    await store.remember('tuesday note', { at: t0 + day });
    await store.remember('wednesday note', { at: new Date(t0 + 2 * day) });
    const texts = async (o: object) => (await store.recall('note', { k: 10, ...o })).map((h) => h.text).sort();
    assert.deepEqual(await texts({ since: t0 + day }), ['tuesday note', 'wednesday note']);
    assert.deepEqual(await texts({ until: new Date(t0 + day) }), ['monday note', 'tuesday note']);
    assert.deepEqual(await texts({ since: t0 + day, until: t0 + day }), ['tuesday note']);
    // Made an hour ago with a minute to live: expired. Many expired ones ahead of it: still found.
    await store.remember(Array.from({ length: 30 }, (_, i) => `stale ${i}`), { at: Date.now() - 3_600_000, ttl: 60_000 });
    await store.remember('fresh', { ttl: 3_600_000 });
    const all = await store.recall('stale 1', { k: 10 });
    assert.ok(all.every((h) => !h.text.startsWith('stale')), JSON.stringify(all.map((h) => h.text)));
    assert.equal(all.length, 4);
    assert.ok(all.find((h) => h.text === 'fresh')!.expiresAt! > Date.now());
  } finally {
    await store.close();
  }
});

test('memory: compact() deletes expired memories and keeps the rest; namespaces() then forgets a namespace left empty', async () => {
  const store = await open();
  try {
    await store.remember(['old a', 'old b'], { namespace: 'old', at: Date.now() - 10_000, ttl: 1_000 });
    await store.remember('kept', { namespace: 'live', ttl: 3_600_000 });
    await store.remember('forever', { namespace: 'live' });
    assert.deepEqual(store.namespaces(), ['live', 'old']);
    await store.compact();
    assert.equal(store.stats().count, 2);
    assert.deepEqual(store.namespaces(), ['live']);
  } finally {
    await store.close();
  }
});

test('memory: forget by ids, and by namespace with a filter; namespaces() follows', async () => {
  const store = await open();
  try {
    const [a, b] = await store.remember(['one', 'two'], { namespace: 'n1', meta: { keep: false } });
    await store.remember(['three'], { namespace: 'n1', meta: { keep: true } });
    await store.remember(['four'], { namespace: 'n2' });
    assert.equal(await store.forget([a!.id, 'missing']), 1);
    assert.equal(await store.forget({ namespace: 'n1', filter: { keep: false } }), 1);
    assert.deepEqual((await store.recall('x', { namespace: 'n1' })).map((h) => h.text), ['three']);
    assert.equal(await store.forget({ namespace: 'n2' }), 1);
    assert.deepEqual(store.namespaces(), ['n1']);
    assert.equal((await store.recall('two', { namespace: 'n1' })).some((h) => h.id === b!.id), false);
    await rejectsWith(() => store.forget({ namespace: 'n1', filter: { $ns: 'n2' } }), 'INVALID_ARGUMENT');
  } finally {
    await store.close();
  }
});

test('memory: memories persist; reopened with the embedder, recall finds them and identical texts still update', async () => {
  const dir = tempDir();
  let store = await MemStore.open(dir, { dim: DIM, embed: embedder() });
  const [r] = await store.remember('persisted fact', { namespace: 'p', meta: { source: 'chat' } });
  await store.close();
  store = await MemStore.open(dir, { embed: embedder() });
  try {
    const [hit] = await store.recall('persisted fact', { namespace: 'p' });
    assert.deepEqual([hit!.id, hit!.text, hit!.meta], [r!.id, 'persisted fact', { source: 'chat' }]);
    assert.deepEqual(await store.remember('persisted fact', { namespace: 'p' }), [{ id: r!.id, action: 'updated' }]);
    assert.deepEqual(store.namespaces(), ['p']);
  } finally {
    await store.close();
  }
});

test('memory: concurrent remembers of one text make one memory', async () => {
  const store = await open();
  try {
    const results = await Promise.all([store.remember('racing text'), store.remember('racing text'), store.remember('racing text')]);
    assert.equal(new Set(results.map((r) => r[0]!.id)).size, 1);
    assert.deepEqual(results.map((r) => r[0]!.action).sort(), ['added', 'updated', 'updated']);
    assert.equal(store.stats().count, 1);
  } finally {
    await store.close();
  }
});

test('memory: an embedder that throws, returns too few vectors or the wrong dimension fails the call (EMBED, DIM_MISMATCH) and writes nothing', async () => {
  const boom = new Error('model not loaded');
  const cases: { embed: Embed; code: 'EMBED' | 'DIM_MISMATCH' }[] = [
    { embed: () => Promise.reject(boom), code: 'EMBED' },
    { embed: async () => [], code: 'EMBED' },
    { embed: async (t) => t.map(() => 'not a vector' as unknown as number[]), code: 'EMBED' },
    { embed: async (t) => t.map(() => new Float32Array(DIM + 1)), code: 'DIM_MISMATCH' },
  ];
  for (const { embed, code } of cases) {
    const store = await open({ embed });
    try {
      await rejectsWith(() => store.remember(['a', 'b']), code);
      await rejectsWith(() => store.recall('a'), code);
      assert.equal(store.stats().count, 0);
    } finally {
      await store.close();
    }
  }
  const store = await open({ embed: () => Promise.reject(boom) });
  try {
    await assert.rejects(() => store.remember('a'), (e: unknown) => (e as { cause?: unknown }).cause === boom);
  } finally {
    await store.close();
  }
});

test('memory: bad arguments are refused before anything is embedded or written', async () => {
  const embed = embedder();
  const store = await open({ embed });
  try {
    const invalid: [() => Promise<unknown>, string][] = [
      [() => store.remember('x', { meta: { $ns: 'other' } }), 'INVALID_ARGUMENT'],
      [() => store.remember('x', { meta: [] as unknown as Record<string, unknown> }), 'INVALID_ARGUMENT'],
      [() => store.remember('x', { namespace: '' }), 'INVALID_ARGUMENT'],
      [() => store.remember('x', { namespace: 'n'.repeat(300) }), 'INVALID_ARGUMENT'],
      [() => store.remember('x', { ttl: 0 }), 'INVALID_ARGUMENT'],
      [() => store.remember('x', { ttl: Infinity }), 'INVALID_ARGUMENT'],
      [() => store.remember('x', { at: new Date(NaN) }), 'INVALID_ARGUMENT'],
      [() => store.remember(['ok', 3 as unknown as string]), 'INVALID_ARGUMENT'],
      [() => store.remember('\ud800'), 'INVALID_ARGUMENT'],
      [() => store.recall('x', { k: 0 }), 'INVALID_OPTION'],
      [() => store.recall('x', { filter: { $at: 1 } }), 'INVALID_ARGUMENT'],
      [() => store.recall('x', { filter: { f: { $in: 'no' } as never } }), 'INVALID_ARGUMENT'],
      [() => store.recall(5 as unknown as string), 'INVALID_ARGUMENT'],
    ];
    for (const [call, code] of invalid) await rejectsWith(call, code as never);
    assert.equal(embed.calls, 0);
    assert.equal(store.stats().count, 0);
  } finally {
    await store.close();
  }
  await rejectsWith(() => MemStore.open(tempDir(), { dim: DIM, embed: 'model' as unknown as Embed }), 'INVALID_OPTION');
  await rejectsWith(() => MemStore.open(tempDir(), { dim: DIM, dedupe: NaN }), 'INVALID_OPTION');
  const without = await MemStore.open(tempDir(), { dim: DIM });
  try {
    await rejectsWith(() => without.remember('x'), 'INVALID_OPTION');
    await rejectsWith(() => without.recall('x'), 'INVALID_OPTION');
  } finally {
    await without.close();
  }
  await rejectsWith(() => without.remember('x'), 'CLOSED');
  // A closed store's memory calls reject; they never throw before returning a promise.
  for (const call of [() => without.remember('x'), () => without.recall('x'), () => without.forget(['x'])]) {
    let promise: Promise<unknown> | undefined;
    assert.doesNotThrow(() => {
      promise = call();
    });
    await assert.rejects(promise!, (e: unknown) => (e as { code?: string }).code === 'CLOSED');
  }
  assert.throws(() => without.namespaces(), (e: unknown) => (e as { code?: string }).code === 'CLOSED');
});

test('memory: ids(filter) lists the records a filter matches', async () => {
  const store = await open();
  try {
    await store.add([
      { id: 'a', vector: new Float32Array(DIM).fill(1), meta: { g: 1 } },
      { id: 'b', vector: new Float32Array(DIM).fill(2), meta: { g: 2 } },
      { id: 'c', vector: new Float32Array(DIM).fill(3), meta: { g: 1 } },
    ]);
    assert.deepEqual(store.ids({ g: 1 }).sort(), ['a', 'c']);
    assert.deepEqual(store.ids({ g: { $in: [] } }), []);
    assert.deepEqual(store.ids({}).sort(), ['a', 'b', 'c']);
    assert.throws(() => store.ids({ g: { $in: 'x' } as never }), (e: unknown) => (e as { code?: string }).code === 'INVALID_ARGUMENT');
  } finally {
    await store.close();
  }
});

test('memory: texts that differ by a sign, a symbol or a number\'s separators are different memories (letters and digits alone had made each pair one, the second replacing the first: a hostile pass); case, spacing and prose punctuation still are not', async () => {
  const pairs = [
    ['The dose is 2.5 mg', 'The dose is 25 mg'],
    ['The meeting is on 1/12', 'The meeting is on 11/2'],
    ['balance is -500 EUR', 'balance is 500 EUR'],
    ['the offset is +2 hours', 'the offset is -2 hours'],
    ['x < 3', 'x > 3'],
    ['a != b', 'a = b'],
    ['C++', 'C#'],
    ['$5', '€5'],
    ['👍', '👎'],
    ['the code is 1 23', 'the code is 12 3'],
    ['50% off', '50 off'],
    ['The area is 10² m', 'The area is 102 m'],
    ['2³ = 8', '23 = 8'],
    ['Q3 loss was (500)', 'Q3 loss was 500'],
    ['5! = 120', '5 = 120'],
    ["He is 6'", 'He is 6'],
    ['user:admin', 'user.admin'],
    ['Dose: 2.5 mg', 'Dose: 25 mg'],
  ];
  const store = await open();
  try {
    for (const [a, b] of pairs) {
      const [first] = await store.remember(a!);
      const [second] = await store.remember(b!);
      assert.equal(second!.action, 'added', `${a} / ${b}`);
      assert.notEqual(second!.id, first!.id);
    }
    const [base] = await store.remember('«Alice prefers tea», in the morning.');
    for (const same of ['alice prefers tea in the morning', '"Alice  prefers tea" in the morning!', 'ALICE PREFERS TEA, IN THE MORNING', '(Alice prefers tea) in the morning?', '“Alice prefers tea” in the\u200b morning…']) {
      assert.deepEqual(await store.remember(same), [{ id: base!.id, action: 'updated' }], same);
    }
    // Typographic forms of one character, and invisible ones, are the same text.
    for (const [a, b] of [["I don't like tea", 'I don’t like tea.'], ['balance is -500', 'balance is −500'], ['pages 1-5', 'pages 1–5'], ['soft\u00adware', 'software'], ['word\u2060joiner', 'wordjoiner']]) {
      const [first] = await store.remember(a!);
      assert.deepEqual(await store.remember(b!), [{ id: first!.id, action: 'updated' }], `${a} / ${b}`);
    }
  } finally {
    await store.close();
  }
});

test('memory: a memory remembered before 2026-12-05 (its $hash of letters and digits alone) is found again by the same text and updated; a text that only that hash took for it is added beside it', async () => {
  const legacy = (text: string) => createHash('sha256').update(text.normalize('NFKC').toLowerCase().replace(/[^\p{L}\p{M}\p{N}]+/gu, ''), 'utf8').digest('hex').slice(0, 32);
  const store = await open();
  try {
    const vector = new Float32Array(DIM).fill(0.5);
    await store.add([
      { id: 'old-dose', vector, text: 'The dose is 2.5 mg.', meta: { $ns: 'default', $at: 1, $hash: legacy('The dose is 2.5 mg.') } },
      { id: 'old-tea', vector, text: 'Alice prefers tea', meta: { $ns: 'default', $at: 1, $hash: legacy('Alice prefers tea') } },
    ]);
    assert.deepEqual(await store.remember('the dose is 2.5 mg'), [{ id: 'old-dose', action: 'updated' }]);
    const [other] = await store.remember('The dose is 25 mg');
    assert.equal(other!.action, 'added');
    assert.equal((await store.get('old-dose'))!.text, 'the dose is 2.5 mg');
    // In another namespace it is another memory, as ever.
    assert.equal((await store.remember('Alice prefers tea', { namespace: 'bob' }))[0]!.action, 'added');
    assert.deepEqual(await store.remember('alice prefers tea!'), [{ id: 'old-tea', action: 'updated' }]);
    // Today's key of a text can be that rule's key of another (dose25mg): the hashes stay apart.
    await store.add([{ id: 'old-dose2', vector, text: '2.5 mg', meta: { $ns: 'n2', $at: 1, $hash: legacy('2.5 mg') } }]);
    assert.equal((await store.remember('25mg', { namespace: 'n2' }))[0]!.action, 'added');
    assert.equal((await store.get('old-dose2'))!.text, '2.5 mg');
    // Updated, it carries today's hash: found by it from now on.
    assert.deepEqual(await store.remember('Alice prefers tea.'), [{ id: 'old-tea', action: 'updated' }]);
    assert.equal(store.stats().count, 6);
  } finally {
    await store.close();
  }
});
