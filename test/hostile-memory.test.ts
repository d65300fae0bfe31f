import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { MemStore, type Embed, type OpenOptions } from '../src/index.js';
import { sameTextKey } from '../src/memory/memories.js';
import { gateOf, outcomeOf, rejectsWith, tempDir, within10s } from './helpers.js';

const DIM = 8;

/** Deterministic: each text's vector from its characters (as in memory.test.ts); counts calls and the largest batch. */
function embedder(): Embed & { calls: number; largest: number } {
  const f = async (texts: string[]) => {
    f.calls++;
    f.largest = Math.max(f.largest, texts.length);
    return texts.map(vectorOf);
  };
  f.calls = 0;
  f.largest = 0;
  return f;
}

function vectorOf(t: string): Float32Array {
  const v = new Float32Array(DIM).fill(0.01);
  for (const [i, c] of [...t].entries()) v[(c.codePointAt(0)! + i) % DIM]! += 1;
  return v;
}

async function open(options: Partial<OpenOptions> = {}, dir = tempDir()): Promise<MemStore> {
  return MemStore.open(dir, { dim: DIM, durability: 'none', embed: embedder(), ...options });
}

const codeOf = (e: unknown) => (e as { code?: string }).code;

test('hostile memory: odd namespaces (unicode, __proto__, constructor, default) are namespaces like any other, also after reopening', async () => {
  const dir = tempDir();
  let store = await open({}, dir);
  const odd = ['__proto__', 'constructor', 'hasOwnProperty', 'toString', '用户:42', '😀', ' ', 'default'];
  try {
    for (const ns of odd) await store.remember(`fact of ${ns}`, { namespace: ns });
    // No namespace given is 'default'.
    assert.deepEqual(await store.remember('fact of default'), [{ id: (await store.recall('fact of default'))[0]!.id, action: 'updated' }]);
    assert.deepEqual(store.namespaces(), [...odd].sort());
    for (const ns of odd) {
      const hits = await store.recall('fact', { namespace: ns, k: 50 });
      assert.deepEqual(hits.map((h) => [h.namespace, h.text]), [[ns, `fact of ${ns}`]], ns);
    }
  } finally {
    await store.close();
  }
  store = await open({}, dir);
  try {
    assert.deepEqual(store.namespaces(), [...odd].sort());
    assert.equal(await store.forget({ namespace: '__proto__' }), 1);
    assert.equal(await store.forget({ namespace: 'constructor' }), 1);
    assert.deepEqual(store.namespaces(), odd.filter((n) => n !== '__proto__' && n !== 'constructor').sort());
    assert.deepEqual(await store.recall('fact', { namespace: '__proto__' }), []);
  } finally {
    await store.close();
  }
});

test('hostile memory: a namespace of 256 UTF-8 bytes is accepted, 257 refused; namespaces equal after NFKC stay distinct', async () => {
  const store = await open();
  try {
    const ns256 = 'é'.repeat(128);
    const ns257 = `${ns256}a`;
    assert.equal(Buffer.byteLength(ns256), 256);
    await store.remember('long ns', { namespace: ns256 });
    assert.equal((await store.recall('long ns', { namespace: ns256 })).length, 1);
    await rejectsWith(() => store.remember('x', { namespace: ns257 }), 'INVALID_ARGUMENT');
    await rejectsWith(() => store.recall('x', { namespace: ns257 }), 'INVALID_ARGUMENT');
    await rejectsWith(() => store.forget({ namespace: ns257 }), 'INVALID_ARGUMENT');
    await rejectsWith(() => store.remember('x', { namespace: 'a\ud800' }), 'INVALID_ARGUMENT');
    await rejectsWith(() => store.remember('x', { namespace: 5 as unknown as string }), 'INVALID_ARGUMENT');
    // 'ﬁle' (ligature) and 'file' are one under NFKC, but a namespace is taken as given.
    await store.remember('same fact', { namespace: 'ﬁle' });
    await store.remember('same fact', { namespace: 'file' });
    assert.equal((await store.recall('same fact', { namespace: 'file' })).length, 1);
    assert.equal((await store.recall('same fact', { namespace: 'ﬁle' })).length, 1);
    assert.ok(store.namespaces().includes('ﬁle') && store.namespaces().includes('file'));
  } finally {
    await store.close();
  }
});

test('hostile memory: texts equal up to case, punctuation and width are one memory; punctuation-only, whitespace-only and empty texts are each their own', async () => {
  const store = await open();
  try {
    const r = await store.remember(['Hello, World!', 'hello world', 'ＨＥＬＬＯ　ＷＯＲＬＤ', 'HeLLo...wOrLd', '', ' ', '  ', '...', '…', '!?']);
    const ids = r.map((x) => x.id);
    assert.equal(new Set(ids.slice(0, 4)).size, 1);
    assert.deepEqual(r.slice(0, 4).map((x) => x.action), ['added', 'updated', 'updated', 'updated']);
    // Each text without letters or digits is kept as itself: six distinct memories.
    assert.equal(new Set(ids.slice(4)).size, 6);
    assert.ok(!ids.slice(4).includes(ids[0]!));
    assert.equal(store.stats().count, 7);
    // The last copy within the call is the one stored.
    const [hit] = await store.recall('HeLLo...wOrLd', { minScore: 0.99 });
    assert.equal(hit!.text, 'HeLLo...wOrLd');
    assert.deepEqual(await store.remember(''), [{ id: ids[4]!, action: 'updated' }]);
    assert.deepEqual(await store.remember('...'), [{ id: ids[7]!, action: 'updated' }]);
  } finally {
    await store.close();
  }
});

test('hostile memory: texts differing only in combining vowel signs (Hindi काम "work" / कम "less", Thai) are different memories', async () => {
  const store = await open();
  try {
    const pairs: [string, string][] = [
      ['काम', 'कम'],
      ['दिन', 'दन'],
      ['ไม่', 'ไม'],
    ];
    for (const [a, b] of pairs) {
      const [ra] = await store.remember(a);
      const [rb] = await store.remember(b);
      assert.equal(rb!.action, 'added', `${a} / ${b}`);
      assert.notEqual(ra!.id, rb!.id);
    }
    assert.equal(store.stats().count, 6);
  } finally {
    await store.close();
  }
});

test('hostile memory: a batch of 150 texts with duplicates is embedded 64 at a time, one log record, duplicates one memory', async () => {
  const embed = embedder();
  const store = await open({ embed });
  try {
    const texts = Array.from({ length: 150 }, (_, i) => `item ${i % 100}`);
    const r = await store.remember(texts, { namespace: 'big' });
    assert.equal(embed.calls, 3);
    assert.equal(embed.largest, 64);
    assert.equal(r.length, 150);
    for (let i = 100; i < 150; i++) {
      assert.equal(r[i]!.id, r[i - 100]!.id);
      assert.equal(r[i]!.action, 'updated');
    }
    assert.equal(store.stats().count, 100);
    assert.equal((await store.recall('item 1', { namespace: 'big', k: 1000 })).length, 100);
  } finally {
    await store.close();
  }
});

test('hostile memory: a sparse array of texts is refused (INVALID_ARGUMENT) before anything is embedded', async () => {
  const embed = embedder();
  const store = await open({ embed });
  try {
    await rejectsWith(() => store.remember(['a', , 'b'] as unknown as string[]), 'INVALID_ARGUMENT');
    assert.equal(embed.calls, 0);
    assert.equal(store.stats().count, 0);
  } finally {
    await store.close();
  }
});

test('hostile memory: at far in the past or future, as a number or a Date; since/until compare it; since > until finds nothing', async () => {
  const store = await open();
  try {
    const past = -8.64e15;
    const future = 8.64e15;
    await store.remember('ancient', { at: new Date(past) });
    await store.remember('far future', { at: future });
    await store.remember('now-ish');
    const all = await store.recall('x', { k: 10 });
    assert.equal(all.length, 3);
    assert.equal(all.find((h) => h.text === 'ancient')!.at, past);
    assert.equal(all.find((h) => h.text === 'far future')!.at, future);
    const texts = async (o: object) => (await store.recall('x', { k: 10, ...o })).map((h) => h.text).sort();
    assert.deepEqual(await texts({ until: new Date(0) }), ['ancient']);
    assert.deepEqual(await texts({ since: Date.now() + 1e9 }), ['far future']);
    assert.deepEqual(await texts({ since: 10, until: 5 }), []);
    assert.deepEqual(await texts({ since: future, until: future }), ['far future']);
    await rejectsWith(() => store.recall('x', { since: NaN }), 'INVALID_ARGUMENT');
    await rejectsWith(() => store.recall('x', { until: 'yesterday' as unknown as number }), 'INVALID_ARGUMENT');
    await rejectsWith(() => store.remember('x', { at: Infinity }), 'INVALID_ARGUMENT');
    // Past what a Date holds: it had been kept, and read back as an Invalid Date.
    assert.equal((await rejectsWith(() => store.remember('x', { at: future + 1 }), 'INVALID_ARGUMENT')).field, 'at');
    assert.equal((await rejectsWith(() => store.remember('x', { at: past - 1 }), 'INVALID_ARGUMENT')).field, 'at');
    assert.equal((await rejectsWith(() => store.recall('x', { since: future * 2 }), 'INVALID_ARGUMENT')).field, 'since');
    assert.equal((await store.recall('x', { k: 10 })).length, 3, 'nothing refused was written');
  } finally {
    await store.close();
  }
});

test('hostile memory: ttl tiny expires, huge lives; at + ttl beyond a finite number is refused before embedding', async () => {
  const embed = embedder();
  const store = await open({ embed });
  try {
    await store.remember('blink', { ttl: 1e-3, at: Date.now() - 1 });
    await store.remember('ages', { ttl: Number.MAX_VALUE });
    assert.deepEqual((await store.recall('x', { k: 10 })).map((h) => h.text), ['ages']);
    await store.compact();
    assert.equal(store.stats().count, 1);
    const calls = embed.calls;
    await rejectsWith(() => store.remember('overflow', { at: 1e308, ttl: 1e308 }), 'INVALID_ARGUMENT');
    await rejectsWith(() => store.remember('x', { ttl: -1 }), 'INVALID_ARGUMENT');
    await rejectsWith(() => store.remember('x', { ttl: NaN }), 'INVALID_ARGUMENT');
    await rejectsWith(() => store.remember('x', { ttl: '10' as unknown as number }), 'INVALID_ARGUMENT');
    assert.equal(embed.calls, calls);
    assert.equal(store.stats().count, 1);
  } finally {
    await store.close();
  }
});

test('hostile memory: minScore above every score finds nothing; k larger than the namespace returns it all; bad k (null included) and minScore are INVALID_OPTION', async () => {
  const store = await open();
  try {
    await store.remember(['a1', 'b2', 'c3'], { namespace: 'small' });
    await store.remember(['a1', 'b2', 'c3', 'd4'], { namespace: 'other' });
    assert.deepEqual(await store.recall('a1', { namespace: 'small', minScore: 1.5 }), []);
    assert.deepEqual(await store.recall('a1', { namespace: 'small', minScore: Infinity }), []);
    assert.equal((await store.recall('a1', { namespace: 'small', minScore: -Infinity })).length, 3);
    assert.equal((await store.recall('a1', { namespace: 'small', k: 1000 })).length, 3);
    // null as search refuses it (it had been read as the default, 10; found by the hostile user).
    for (const k of [0, -1, 1.5, NaN, '3' as unknown as number, null as unknown as number]) await rejectsWith(() => store.recall('a1', { k }), 'INVALID_OPTION');
    await rejectsWith(() => store.recall('a1', { minScore: NaN }), 'INVALID_OPTION');
    await rejectsWith(() => store.recall('a1', { minScore: '0.5' as unknown as number }), 'INVALID_OPTION');
  } finally {
    await store.close();
  }
});

test('hostile memory: a misspelt option of remember, recall or forget is INVALID_OPTION before anything is embedded or deleted (forget({ namespace, filters }) had deleted the whole namespace)', async () => {
  const embed = embedder();
  const store = await open({ embed });
  try {
    await store.remember(['tea please', 'lives in Lyon'], { namespace: 'alice', meta: { speaker: 'alice' } });
    await store.remember(['ok, noted'], { namespace: 'alice', meta: { speaker: 'bot' } });
    const calls = embed.calls;
    const count = store.stats().count;
    await rejectsWith(() => store.remember(['x'], { namepsace: 'alice' } as never), 'INVALID_OPTION');
    await rejectsWith(() => store.remember('x', { namespace: 'alice', metadata: {} } as never), 'INVALID_OPTION');
    await rejectsWith(() => store.recall('tea', { namespce: 'alice' } as never), 'INVALID_OPTION');
    await rejectsWith(() => store.recall('tea', { namespace: 'alice', filters: { speaker: 'bot' } } as never), 'INVALID_OPTION');
    await rejectsWith(() => store.forget({ namespace: 'alice', filters: { speaker: 'bot' } } as never), 'INVALID_OPTION');
    await rejectsWith(() => store.forget({ namespce: 'alice' } as never), 'INVALID_OPTION');
    for (const bad of [5, 'alice', [1]]) await rejectsWith(() => store.recall('tea', bad as never), 'INVALID_OPTION');
    assert.equal(embed.calls, calls, 'nothing embedded');
    assert.equal(store.stats().count, count, 'nothing remembered or forgotten');
    assert.deepEqual(store.namespaces(), ['alice']);
    // null reads as no options, as it does for search().
    assert.equal((await store.recall('tea', null as never)).length, 0, 'the default namespace is empty');
    assert.equal(await store.forget({ namespace: 'alice', filter: { speaker: 'bot' } }), 1);
    assert.equal(store.stats().count, count - 1);
  } finally {
    await store.close();
  }
});

test('hostile memory: meta keys starting with $ are refused at any $ key; a __proto__ key round-trips through recall as an own key', async () => {
  const embed = embedder();
  const store = await open({ embed });
  try {
    for (const meta of [{ $ns: 'x' }, { $exp: 1 }, { $: 1 }, { $other: 1 }, { ok: 1, $at: 2 }]) {
      await rejectsWith(() => store.remember('x', { meta }), 'INVALID_ARGUMENT');
    }
    await rejectsWith(() => store.remember('x', { meta: null as unknown as Record<string, unknown> }), 'INVALID_ARGUMENT');
    await rejectsWith(() => store.remember('x', { meta: 'm' as unknown as Record<string, unknown> }), 'INVALID_ARGUMENT');
    assert.equal(embed.calls, 0);
    // Nested $ keys are the memory's own business.
    await store.remember('nested', { meta: { inner: { $ns: 'not the namespace' } } });
    assert.deepEqual((await store.recall('nested'))[0]!.meta, { inner: { $ns: 'not the namespace' } });
    const meta = JSON.parse('{"__proto__": {"polluted": true}, "plain": 1}') as Record<string, unknown>;
    const [r] = await store.remember('proto meta', { namespace: 'p', meta });
    const [hit] = await store.recall('proto meta', { namespace: 'p' });
    assert.equal(hit!.id, r!.id);
    assert.ok(Object.prototype.hasOwnProperty.call(hit!.meta, '__proto__'), JSON.stringify(hit!.meta));
    assert.deepEqual(Object.getOwnPropertyDescriptor(hit!.meta, '__proto__')!.value, { polluted: true });
    assert.equal(Object.getPrototypeOf(hit!.meta), Object.prototype);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    // The stored record (search/get) keeps it as well.
    const got = await store.get(r!.id);
    assert.ok(Object.prototype.hasOwnProperty.call(got!.meta, '__proto__'));
  } finally {
    await store.close();
  }
});

test('hostile memory: filters naming $ keys are refused by recall and forget; ids(filter) refuses bad filters and allows $ keys', async () => {
  const store = await open();
  try {
    await store.remember(['one', 'two'], { namespace: 'n', meta: { g: 1 } });
    for (const filter of [{ $ns: 'n' }, { $hash: 'x' }, { $exp: { $in: [1] } }]) {
      await rejectsWith(() => store.recall('one', { namespace: 'n', filter: filter as never }), 'INVALID_ARGUMENT');
      await rejectsWith(() => store.forget({ namespace: 'n', filter: filter as never }), 'INVALID_ARGUMENT');
    }
    assert.equal(store.stats().count, 2);
    assert.equal(store.ids({ $ns: 'n' }).length, 2);
    assert.equal(store.ids({ $ns: 'n', g: 1 }).length, 2);
    assert.deepEqual(store.ids({ $ns: 'nobody' }), []);
    for (const bad of ['x', 5, [], { g: { $in: 'x' } }, { g: { $gt: 1 } }, { g: () => 1 }]) {
      let code: string | undefined;
      try {
        store.ids(bad as never);
      } catch (e) {
        code = codeOf(e);
      }
      assert.equal(code, 'INVALID_ARGUMENT', JSON.stringify(bad));
    }
  } finally {
    await store.close();
  }
});

test('hostile memory: forget with an empty array, unknown ids, or a namespace without memories deletes nothing and says 0', async () => {
  const store = await open();
  try {
    await store.remember(['kept a', 'kept b'], { namespace: 'n' });
    assert.equal(await store.forget([]), 0);
    assert.equal(await store.forget(['nope', 'nope']), 0);
    assert.equal(await store.forget({ namespace: 'empty' }), 0);
    assert.equal(await store.forget({ namespace: 'n', filter: { g: 'absent' } }), 0);
    assert.equal(await store.forget({}), 0);
    await rejectsWith(() => store.forget(null as never), 'INVALID_ARGUMENT');
    await rejectsWith(() => store.forget('id' as never), 'INVALID_ARGUMENT');
    await rejectsWith(() => store.forget([5] as never), 'INVALID_ID');
    assert.equal(store.stats().count, 2);
    assert.deepEqual(store.namespaces(), ['n']);
  } finally {
    await store.close();
  }
});

test('hostile memory: an id moved to another namespace leaves the old one unlisted', async () => {
  const store = await open();
  try {
    await store.remember('first', { id: 'm', namespace: 'n1' });
    await store.remember('second', { id: 'm', namespace: 'n2' });
    assert.deepEqual(store.namespaces(), ['n2']);
    assert.deepEqual(await store.recall('first', { namespace: 'n1' }), []);
    assert.equal(store.stats().count, 1);
  } finally {
    await store.close();
  }
});

test('hostile memory: concurrent remember/recall/forget/compact (not awaited between) end in a consistent store', async () => {
  const store = await open();
  try {
    await store.remember(['stale 1', 'stale 2'], { namespace: 'c', at: Date.now() - 10_000, ttl: 1 });
    const ops: Promise<unknown>[] = [];
    for (let i = 0; i < 20; i++) {
      ops.push(store.remember([`fact ${i}`, `fact ${i}`, 'shared fact'], { namespace: 'c' }));
      ops.push(store.recall(`fact ${i}`, { namespace: 'c', k: 3 }));
      if (i % 5 === 0) ops.push(store.compact());
      if (i % 7 === 0) ops.push(store.forget({ namespace: 'c', filter: { never: true } }));
    }
    await Promise.all(ops);
    assert.equal(store.stats().count, 21);
    const hits = await store.recall('fact', { namespace: 'c', k: 100 });
    assert.equal(hits.length, 21);
    assert.equal(hits.filter((h) => h.text === 'shared fact').length, 1);
  } finally {
    await store.close();
  }
});

test('hostile memory: compact racing a remember that renews an expired memory keeps the renewed one', async () => {
  for (let delay = 0; delay < 6; delay++) {
    const store = await open();
    try {
      const [old] = await store.remember('renew me', { at: Date.now() - 10_000, ttl: 1 });
      const renewed = store.remember('renew me', { ttl: 3_600_000 });
      for (let i = 0; i < delay; i++) await new Promise((r) => setImmediate(r));
      await Promise.all([renewed, store.compact()]);
      assert.deepEqual(await renewed, [{ id: old!.id, action: 'updated' }]);
      assert.equal(store.stats().count, 1, `delay ${delay}`);
      assert.equal((await store.recall('renew me')).length, 1, `delay ${delay}`);
    } finally {
      await store.close();
    }
  }
});

test('hostile memory: compact() sweeps a record added already expired in the same tick (an import of memories writes $exp through add), and a remember called after the compact() keeps its memory', async () => {
  const store = await open();
  try {
    await store.remember('kept', { ttl: 3_600_000 });
    const added = store.add([{ id: 'late', vector: vectorOf('late'), text: 'late', meta: { $ns: 'default', $at: Date.now() - 10_000, $exp: Date.now() - 5 } }]);
    const compacted = store.compact();
    const after = store.remember('after', { at: Date.now() - 10_000, ttl: 3_600_000 });
    await Promise.all([added, compacted, after]);
    assert.deepEqual(store.ids().sort(), [(await store.recall('kept'))[0]!.id, (await store.recall('after'))[0]!.id].sort());
    assert.equal(await store.get('late'), undefined);
  } finally {
    await store.close();
  }
});

test('hostile memory: an embedder that returns the wrong length only for some texts, NaN, or throws on a later batch writes nothing', async () => {
  const bad = (f: (t: string, i: number) => Float32Array | number[]) => async (texts: string[]) => texts.map(f);
  const shortFor = (t: string) => (t === 'odd one' ? new Float32Array(DIM - 1) : vectorOf(t));
  const nan = (t: string) => (t === 'odd one' ? new Float32Array(DIM).fill(NaN) : vectorOf(t));
  let calls = 0;
  const laterThrows: Embed = async (texts) => {
    if (++calls === 2) throw new Error('rate limited');
    return texts.map(vectorOf);
  };
  const cases: [Embed, string][] = [
    [bad(shortFor), 'DIM_MISMATCH'],
    [bad(nan), 'INVALID_VECTOR'],
    [laterThrows, 'EMBED'],
  ];
  for (const [embed, code] of cases) {
    const store = await open({ embed });
    try {
      const texts = Array.from({ length: 100 }, (_, i) => (i === 90 ? 'odd one' : `t${i}`));
      let got: string | undefined;
      try {
        await store.remember(texts);
      } catch (e) {
        got = codeOf(e);
      }
      assert.equal(got, code);
      assert.equal(store.stats().count, 0);
      // The store still works afterwards (the queue is not stuck).
      if (code !== 'EMBED') assert.equal((await store.remember('fine'))[0]!.action, 'added');
    } finally {
      await store.close();
    }
  }
});

test('hostile memory: an embedder returning the same array object twice, or reusing its output buffer across calls, stores the right vectors', async () => {
  const same = new Float32Array(DIM).fill(1);
  const twice: Embed = async (texts) => texts.map(() => same);
  const store = await open({ embed: twice });
  try {
    const r = await store.remember(['x one', 'x two']);
    assert.notEqual(r[0]!.id, r[1]!.id);
    assert.equal(store.stats().count, 2);
  } finally {
    await store.close();
  }
  // One output buffer for every call (as some runtimes do): each call overwrites the last's vectors.
  const shared = new Float32Array(64 * DIM);
  const reusing: Embed = async (texts) =>
    texts.map((t, i) => {
      const view = shared.subarray(i * DIM, (i + 1) * DIM);
      view.set(vectorOf(t));
      return view;
    });
  const store2 = await open({ embed: reusing });
  try {
    const texts = Array.from({ length: 100 }, (_, i) => `text number ${i} ${'abcdefgh'.slice(0, i % 8)}`);
    const r = await store2.remember(texts);
    for (const [i, t] of texts.entries()) {
      const got = await store2.get(r[i]!.id);
      assert.deepEqual([...got!.vector!], [...vectorOf(t)], t);
    }
  } finally {
    await store2.close();
  }
});

test('hostile memory: memories survive reopening with expiry, namespaces and hashes intact', async () => {
  const dir = tempDir();
  let store = await MemStore.open(dir, { dim: DIM, embed: embedder() });
  await store.remember(['Keep This.', 'gone soon'], { namespace: 'r' });
  await store.remember('expired', { namespace: 'x', at: Date.now() - 5_000, ttl: 1 });
  await store.close();
  store = await MemStore.open(dir, { embed: embedder() });
  try {
    assert.deepEqual(store.namespaces(), ['r', 'x']);
    assert.deepEqual(await store.recall('expired', { namespace: 'x' }), []);
    assert.equal((await store.remember('keep this'))[0]!.action, 'added'); // other namespace: default
    assert.equal((await store.remember('keep this', { namespace: 'r' }))[0]!.action, 'updated');
    await store.compact();
    assert.deepEqual(store.namespaces(), ['default', 'r']);
  } finally {
    await store.close();
  }
});

test('hostile memory: recall matches an exact search filtered by hand (randomized, model-based)', async () => {
  const words = ['cat', 'dog', 'tea', 'sun', 'Cat!', 'DOG', 'rain', 'snow', '...', ''];
  const namespaces = ['a', 'b', '__proto__'];
  const now = Date.now();
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.record({
          texts: fc.array(fc.constantFrom(...words), { minLength: 1, maxLength: 4 }),
          ns: fc.constantFrom(...namespaces),
          ageMs: fc.integer({ min: 0, max: 100_000 }),
          ttl: fc.option(fc.integer({ min: 1, max: 200_000 }), { nil: undefined }),
          tag: fc.constantFrom('x', 'y'),
        }),
        { minLength: 1, maxLength: 12 },
      ),
      fc.record({
        query: fc.constantFrom(...words),
        ns: fc.constantFrom(...namespaces),
        k: fc.integer({ min: 1, max: 12 }),
        minScore: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: undefined }),
        since: fc.option(fc.integer({ min: 0, max: 100_000 }), { nil: undefined }),
        until: fc.option(fc.integer({ min: 0, max: 100_000 }), { nil: undefined }),
        tag: fc.option(fc.constantFrom('x', 'y'), { nil: undefined }),
      }),
      async (writes, q) => {
        const store = await open();
        try {
          for (const w of writes) await store.remember(w.texts, { namespace: w.ns, at: now - w.ageMs, ttl: w.ttl, meta: { tag: w.tag } });
          const since = q.since === undefined ? undefined : now - q.since;
          const until = q.until === undefined ? undefined : now - q.until;
          const options = { namespace: q.ns, k: q.k, minScore: q.minScore, since, until, filter: q.tag === undefined ? undefined : { tag: q.tag } };
          const got = await store.recall(q.query, options);
          const t = Date.now();
          const all = await store.search(vectorOf(q.query), { k: 1000, exact: true });
          const want = all.filter((h) => {
            const m = h.meta as Record<string, unknown>;
            const at = m.$at as number;
            const exp = m.$exp as number | undefined;
            return (
              m.$ns === q.ns &&
              (q.tag === undefined || m.tag === q.tag) &&
              (exp === undefined || exp > t) &&
              (since === undefined || at >= since) &&
              (until === undefined || at <= until) &&
              (q.minScore === undefined || h.score >= q.minScore)
            );
          });
          assert.equal(got.length, Math.min(q.k, want.length));
          // Ties may order differently: compare scores in order, and ids as sets above the k-th score.
          assert.deepEqual(got.map((h) => h.score), want.slice(0, got.length).map((h) => h.score));
          const cut = got.length > 0 ? got[got.length - 1]!.score : Infinity;
          const above = (xs: { id: string; score: number }[]) => xs.filter((h) => h.score > cut).map((h) => h.id).sort();
          assert.deepEqual(above(got), above(want.slice(0, got.length)));
          // Only the namespace asked for.
          assert.ok(got.every((h) => h.namespace === q.ns));
        } finally {
          await store.close();
        }
      },
    ),
    { numRuns: 40, seed: 20261130 },
  );
});

test('hostile memory: recall behind more than 40,960 expired nearer memories (store over 100,000) does not ask search for more than it returns; compact sweeps 100,000 distinct expiry times', async () => {
  const store = await open();
  try {
    const now = Date.now();
    const q = vectorOf('q');
    const live = Float32Array.from(q, (x, i) => (i === 0 ? x + 0.6 : x));
    const far = Float32Array.from(q, (x, i) => (i === 0 ? x + 3 : x));
    for (let b = 0; b < 101; b++) {
      const records = Array.from({ length: 1000 }, (_, i) => {
        const n = b * 1000 + i;
        const isLive = b === 60;
        const meta: Record<string, unknown> = { $ns: 'big', $at: now - 1000, $hash: `h${n}` };
        if (!isLive) meta.$exp = now - 500 - n;
        return { id: `m${n}`, vector: isLive ? live : b < 60 ? q : far, text: isLive ? `live ${n}` : `expired ${n}`, meta };
      });
      await store.add(records);
    }
    const hits = await store.recall('q', { namespace: 'big', k: 10 });
    assert.equal(hits.length, 10);
    assert.ok(hits.every((h) => h.text.startsWith('live')));
    // How long the sweep takes is a benchmark's question; here, that it deletes every expired one.
    await store.compact();
    assert.equal(store.stats().count, 1000);
    assert.equal((await store.recall('q', { namespace: 'big', k: 1000 })).length, 1000);
  } finally {
    await store.close();
  }
});

test('an embedder returning entries that are not numbers (null, booleans, numeric strings, holes) is EMBED, and NaN or infinite ones INVALID_VECTOR, naming the text; nothing is written', async () => {
  const bad: unknown[][] = [[null, null, null, null, null, null, null, null], [true, false, true, false, true, false, true, false], ['1', '2', '3', '4', '5', '6', '7', '8'], new Array(DIM), [1, 2, 3, 4, 5, 6, 7, {}]];
  const invalid: unknown[][] = [[1, 2, 3, Number.NaN, 5, 6, 7, 8], [1, 2, 3, 4, 5, 6, 7, Infinity], [1, 2, 3, 4, 5, 6, 7, 1e39]];
  for (const [vectors, code] of [...bad.map((v) => [v, 'EMBED'] as const), ...invalid.map((v) => [v, 'INVALID_VECTOR'] as const)]) {
    let returned: unknown[] = vectors;
    const store = await open({ embed: async (texts: string[]) => texts.map((t) => (t === 'bad' ? returned : vectorOf(t))) as Float32Array[] });
    try {
      await store.remember('fine');
      for (const call of [() => store.remember(['ok', 'bad']), () => store.recall('bad')]) {
        let caught: unknown;
        try {
          await call();
        } catch (e) {
          caught = e;
        }
        const e = caught as { code?: string; field?: string };
        assert.equal(e?.code, code, `${JSON.stringify(vectors.map(String))}: ${code}`);
        assert.ok(e.field === 'texts[1]' || e.field === 'query', `the field names the text (${e.field})`);
      }
      assert.equal(store.stats().count, 1, 'nothing of the call was written');
      returned = vectorOf('bad') as unknown as unknown[];
      assert.equal((await store.remember(['ok', 'bad'])).length, 2, 'the same call with a good embedding is taken');
    } finally {
      await store.close();
    }
  }
});

test('hostile memory: records a plain add gave malformed $ keys ($ns of \'\', a number or null; $at not a time) are not memories: namespaces() does not list them, recall passes over them', async () => {
  const store = await open();
  try {
    await store.remember('real one', { namespace: 'zz' });
    const at = Date.now();
    await store.add([
      { id: 'e', vector: vectorOf('real one'), text: 'empty ns', meta: { $ns: '', $at: at } },
      { id: 'n', vector: vectorOf('real one'), text: 'number ns', meta: { $ns: 5, $at: at } },
      { id: 'z', vector: vectorOf('real one'), text: 'null ns', meta: { $ns: null, $at: at } },
      { id: 'y', vector: vectorOf('real one'), text: 'bad at', meta: { $ns: 'zz', $at: 'yesterday' } },
    ]);
    assert.deepEqual(store.namespaces(), ['zz']);
    const hits = await store.recall('real one', { namespace: 'zz', k: 10 });
    assert.deepEqual(hits.map((h) => h.text), ['real one']);
    assert.equal(typeof hits[0]!.at, 'number');
  } finally {
    await store.close();
  }
});

/** The MemstoreError `fn` rejects with (its code and field), or a failure if it resolves. */
async function errorOf(fn: () => Promise<unknown>): Promise<{ code: string; field: string | undefined }> {
  try {
    await fn();
  } catch (e) {
    const err = e as { code?: string; field?: string };
    return { code: String(err.code), field: err.field };
  }
  throw new Error('expected a rejection, nothing was thrown');
}

test('hostile memory: remember() refuses meta that add() refuses (a Map, Set, Date, typed array, class instance), INVALID_ARGUMENT on field meta, nothing written; it had spread them into plain objects, dropping their content', async () => {
  const store = await open();
  try {
    const cases: [string, unknown][] = [
      ['Map', new Map([['a', 1]])],
      ['Set', new Set([1])],
      ['Date', new Date(0)],
      ['Float32Array', new Float32Array(2)],
      ['class instance', new (class Point { x = 1; })()],
      ['nested Map', { inner: new Map([['a', 1]]) }],
    ];
    for (const [what, meta] of cases) {
      const e = await errorOf(() => store.remember(`text ${what}`, { meta: meta as Record<string, unknown> }));
      assert.equal(e.code, 'INVALID_ARGUMENT', what);
      assert.match(String(e.field), /^meta/, what);
    }
    assert.equal(store.stats().count, 0);
    // Plain JSON data is taken, and kept as it was given.
    const [r] = await store.remember('plain', { meta: { a: 1, tags: ['x'], nested: { b: null } } });
    const [hit] = await store.recall('plain', { k: 1 });
    assert.equal(hit!.id, r!.id);
    assert.deepEqual(hit!.meta, { a: 1, tags: ['x'], nested: { b: null } });
  } finally {
    await store.close();
  }
});

test('hostile memory: an EMBED error from a throw or a wrong count names the text in field (texts[0] for one, texts for several, query for a recall)', async () => {
  for (const [what, embed] of [
    ['throws', async () => Promise.reject(new Error('model down'))],
    ['another count', async (texts: string[]) => texts.concat(texts).map(() => new Float32Array(DIM).fill(1))],
  ] as const) {
    const store = await MemStore.open(tempDir(), { dim: DIM, durability: 'none', embed: embed as Embed });
    try {
      assert.deepEqual(await errorOf(() => store.remember('one')), { code: 'EMBED', field: 'texts[0]' }, what);
      assert.deepEqual(await errorOf(() => store.remember(['one', 'two'])), { code: 'EMBED', field: 'texts' }, what);
      assert.deepEqual(await errorOf(() => store.recall('q')), { code: 'EMBED', field: 'query' }, what);
      assert.equal(store.stats().count, 0);
    } finally {
      await store.close();
    }
  }
});

test('hostile memory: an embedder whose vectors throw when read (a getter, a Proxy) is EMBED with the thrown error as its cause, naming the text; nothing is written (a TypeError had come out of remember and recall)', async () => {
  const thrown = new TypeError('bad tensor read');
  const getter = async (texts: string[]) =>
    texts.map(() => {
      const a = Array.from({ length: DIM }, () => 1);
      Object.defineProperty(a, 0, { get: () => { throw thrown; } });
      return a;
    });
  const proxy = async (texts: string[]) => texts.map(() => new Proxy(Array.from({ length: DIM }, () => 1), { get: (t, k) => { if (k === 'length') throw thrown; return Reflect.get(t, k); } }));
  const whole = async (texts: string[]) => new Proxy(texts.map(vectorOf), { get: (t, k) => { if (k === 'length') throw thrown; return Reflect.get(t, k); } });
  for (const embed of [getter, proxy, whole]) {
    const store = await open({ embed });
    try {
      for (const call of [() => store.remember(['one', 'two']), () => store.recall('one')]) {
        const e = await rejectsWith(call, 'EMBED');
        assert.equal(e.cause, thrown);
      }
      const e = await rejectsWith(() => store.remember(['one', 'two']), 'EMBED');
      if (embed !== whole) assert.equal(e.field, 'texts[0]');
      assert.equal(store.stats().count, 0);
    } finally {
      await store.close();
    }
  }
});

test('hostile memory: with dedupe, the texts of one call are compared with the memories the call made or replaced before them, as one call per text would (two texts near one stored memory had both replaced it, dropping the first; two near texts had both been added)', async () => {
  // Unit vectors by angle in the first two dimensions: cosine is the cosine of the angle between them.
  const at = (degrees: number) => {
    const v = new Float32Array(DIM);
    v[0] = Math.cos((degrees * Math.PI) / 180);
    v[1] = Math.sin((degrees * Math.PI) / 180);
    return v;
  };
  const angles: Record<string, number> = { stored: 0, left: -12, right: 12, far: 90, nearFar: 95 };
  const embed = async (texts: string[]) => texts.map((t) => at(angles[t]!));
  // cos 12° = 0.978 and cos 24° = 0.914: with dedupe 0.95, left and right are each near the stored memory, not near each other.
  for (const oneCall of [true, false]) {
    const store = await open({ embed, dedupe: 0.95 });
    try {
      const [stored] = await store.remember('stored');
      const texts = ['left', 'right', 'far', 'nearFar'];
      const results = oneCall ? await store.remember(texts) : (await Promise.all(texts.map((t) => store.remember(t)))).flat();
      const what = oneCall ? 'one call' : 'a call per text';
      assert.deepEqual(results[0], { id: stored!.id, action: 'updated' }, `${what}: left replaces the stored memory`);
      assert.equal(results[1]!.action, 'added', `${what}: right is not near left, which the memory now holds`);
      assert.equal(results[2]!.action, 'added', what);
      assert.deepEqual(results[3], { id: results[2]!.id, action: 'updated' }, `${what}: nearFar replaces far, made earlier in the call`);
      assert.equal(store.stats().count, 3, what);
      assert.equal((await store.get(results[1]!.id))?.text, 'right');
    } finally {
      await store.close();
    }
  }
});

test('hostile memory: with dedupe, one call of several texts ends as one call per text would, a text repeated after later texts replaced its memory included (randomized; [A, B, C, A], each near the next, had left A alone: the repeat went to the memory C held)', async () => {
  // Six texts on a circle 14° to 18° apart, no two gaps alike (a tie would be settled by the random
  // ids, which differ between the two stores): with dedupe 0.9 (cos 18° = 0.951, cos 31° = 0.857)
  // each is near its neighbours only.
  const angles: Record<string, number> = { A: 0, B: 14, C: 31, D: 47, E: 64, F: 82 };
  const names = Object.keys(angles);
  const embed = async (texts: string[]) =>
    texts.map((t) => {
      const v = new Float32Array(DIM);
      const a = (angles[t]! * Math.PI) / 180;
      v[0] = Math.cos(a);
      v[1] = Math.sin(a);
      return v;
    });
  // Ids as the order they first appear in: the two stores make other UUIDs.
  const shape = (results: { id: string; action: string }[]) => {
    const seen = new Map<string, number>();
    return results.map((r) => `${r.action}:${seen.get(r.id) ?? (seen.set(r.id, seen.size), seen.size - 1)}`);
  };
  const textsOf = async (store: MemStore) => Promise.all(store.ids().map(async (id) => (await store.get(id))!.text)).then((t) => t.sort());
  await fc.assert(
    fc.asyncProperty(fc.array(fc.constantFrom(...names), { maxLength: 3 }), fc.array(fc.constantFrom(...names), { minLength: 1, maxLength: 8 }), async (before, texts) => {
      const one = await open({ embed, dedupe: 0.9 });
      const each = await open({ embed, dedupe: 0.9 });
      try {
        for (const t of before) {
          await one.remember(t);
          await each.remember(t);
        }
        const together = await one.remember(texts);
        const apart: { id: string; action: string }[] = [];
        for (const t of texts) apart.push(...(await each.remember(t)));
        assert.deepEqual(shape(together), shape(apart), `${JSON.stringify(before)} then ${JSON.stringify(texts)}`);
        assert.deepEqual(await textsOf(one), await textsOf(each));
      } finally {
        await one.close();
        await each.close();
      }
    }),
    { numRuns: 40 },
  );
});

test('hostile memory: remember names its own texts in errors the add of its records finds (a vector past the limits of a dot store: texts[2], not records[2].vector), and texts past what one call writes are refused before anything is embedded', async () => {
  const embed = async (texts: string[]) => texts.map((t) => (t === 'huge' ? Float32Array.from({ length: DIM }, (_, j) => (j === 0 ? 1e13 : 1)) : vectorOf(t)));
  const store = await open({ embed, metric: 'dot' });
  try {
    const e = await rejectsWith(() => store.remember(['a', 'b', 'huge']), 'INVALID_VECTOR');
    assert.equal(e.field, 'texts[2]');
    assert.equal(store.stats().count, 0);
  } finally {
    await store.close();
  }
  const counting = embedder();
  const big = await open({ embed: counting });
  try {
    const texts = Array.from({ length: 20 }, (_, i) => `${i}`.padEnd(14_000_000, 'x'));
    const e = await rejectsWith(() => big.remember(texts), 'INVALID_ARGUMENT');
    assert.equal(e.field, 'texts');
    assert.equal(counting.calls, 0, 'nothing was embedded');
  } finally {
    await big.close();
  }
});

test('hostile memory: a remember\'s or a recall\'s embedder that closes the store (awaiting close() or not) ends the call with CLOSED and the close settles (awaited, it had waited for the call that waited for it, for ever); nothing of the call is written', async () => {
  for (const call of ['remember', 'recall'] as const) {
    for (const awaiting of [true, false]) {
      const dir = tempDir();
      let store: MemStore | undefined;
      let closing: Promise<void> | undefined;
      const embed = async (texts: string[]) => {
        if (texts.includes('closes')) {
          closing = store!.close();
          if (awaiting) await closing;
        }
        return texts.map(vectorOf);
      };
      store = await open({ embed }, dir);
      await store.remember('kept');
      const e = await rejectsWith(() => (call === 'remember' ? store!.remember(['closes', 'other']) : store!.recall('closes')), 'CLOSED');
      assert.equal(e.code, 'CLOSED', `${call}, awaiting ${awaiting}`);
      await closing;
      await rejectsWith(() => store!.remember('after'), 'CLOSED');
      assert.equal(await countAfterReopen(dir), 1, `${call}, awaiting ${awaiting}: only the memory before`);
    }
  }
});

/** How many records the store in `dir` holds, opened again. */
async function countAfterReopen(dir: string): Promise<number> {
  const again = await MemStore.open(dir, { embed: embedder() });
  try {
    return again.stats().count;
  } finally {
    await again.close();
  }
}

test('hostile memory: close() called from outside while a remember or a recall embeds, then awaited by that call\'s own embedder: the call is CLOSED, both closes resolve, a write queued behind settles and the store reopens (all had waited for each other, for ever: a hostile pass)', async () => {
  for (const call of ['remember', 'recall'] as const) {
    const dir = tempDir();
    let store: MemStore | undefined;
    const gate = gateOf();
    let inner: Promise<void> | undefined;
    const embed = async (texts: string[]) => {
      if (texts.includes('closes')) {
        await gate.passed;
        inner = store!.close();
        await inner;
      }
      return texts.map(vectorOf);
    };
    store = await open({ embed }, dir);
    await store.remember('kept');
    const calling = outcomeOf(call === 'remember' ? store.remember(['closes']) : store.recall('closes'));
    const queued = outcomeOf(store.add([{ id: 'queued', vector: vectorOf('queued') }]));
    const outer = outcomeOf(store.close());
    gate.open();
    const settled = await within10s(Promise.all([calling, queued, outer]));
    assert.ok(Array.isArray(settled), `${call}: ${String(settled)}`);
    const [called, written, closed] = settled;
    assert.equal(called, 'CLOSED', call);
    assert.ok(written === 'resolved' || written === 'CLOSED', `${call}: the queued add ${written}`);
    assert.equal(closed, 'resolved', call);
    assert.equal(await outcomeOf(inner!), 'resolved', `${call}: the embedder's close`);
    assert.equal(await countAfterReopen(dir), written === 'resolved' ? 2 : 1, `${call}: the memory before and the add if it resolved`);
  }
});

test('hostile memory: a remember inside a recall\'s embedder (or a recall inside a remember\'s), close() called from outside while both embed, then awaited by the inner call\'s embedder: both calls are CLOSED and both closes resolve (the close under way had been let go of one of the two only, and all waited for ever)', async () => {
  for (const outer of ['remember', 'recall'] as const) {
    const dir = tempDir();
    let store: MemStore | undefined;
    const gate = gateOf();
    let inner: Promise<string> | undefined;
    let innerClose: Promise<void> | undefined;
    const embed = async (texts: string[]) => {
      if (texts.includes('outer')) {
        inner = outcomeOf(outer === 'remember' ? store!.recall('inner') : store!.remember('inner'));
        await inner;
      }
      if (texts.includes('inner')) {
        await gate.passed;
        innerClose = store!.close();
        await innerClose;
      }
      return texts.map(vectorOf);
    };
    store = await open({ embed }, dir);
    await store.remember('kept');
    const calling = outcomeOf(outer === 'remember' ? store.remember('outer') : store.recall('outer'));
    await new Promise((r) => setTimeout(r, 10));
    const outside = outcomeOf(store.close());
    gate.open();
    const settled = await within10s(Promise.all([calling, outside]));
    assert.deepEqual(settled, ['CLOSED', 'resolved'], outer);
    assert.equal(await inner, 'CLOSED', `${outer}: the inner call`);
    assert.equal(await outcomeOf(innerClose!), 'resolved', `${outer}: the inner embedder's close`);
    assert.equal(await countAfterReopen(dir), 1, outer);
  }
});

test('hostile memory: a close() from a timer that a finished remember\'s embedder set is not within that remember: it waits for the remember and the add called before it, which resolve and are kept (the embedder\'s context outlived the call, and that close had skipped them, both CLOSED)', async () => {
  for (const outsideFirst of [false, true]) {
    const dir = tempDir();
    let store: MemStore | undefined;
    const gate = gateOf();
    // In an object: a promise resolved with a promise waits for it.
    let fromTimer!: (called: { closing: Promise<string> }) => void;
    const timerClose = new Promise<{ closing: Promise<string> }>((resolve) => (fromTimer = resolve));
    const embed = async (texts: string[]) => {
      if (texts.includes('first')) setTimeout(() => fromTimer({ closing: outcomeOf(store!.close()) }), 30);
      if (texts.includes('second')) await gate.passed;
      return texts.map(vectorOf);
    };
    store = await open({ embed }, dir);
    await store.remember('first');
    const second = outcomeOf(store.remember('second'));
    const queued = outcomeOf(store.add([{ id: 'queued', vector: vectorOf('queued') }]));
    const outside = outsideFirst ? outcomeOf(store.close()) : Promise.resolve('none');
    const { closing } = await timerClose;
    await new Promise((r) => setTimeout(r, 30));
    gate.open();
    assert.deepEqual(await Promise.all([second, queued, closing, outside]), ['resolved', 'resolved', 'resolved', outsideFirst ? 'resolved' : 'none'], `outside first ${outsideFirst}`);
    assert.equal(await countAfterReopen(dir), 3, `outside first ${outsideFirst}`);
  }
});

test('hostile memory: options whose reading throws (a getter, a Proxy) are INVALID_OPTION with the thrown error as cause, for remember, recall, forget and compact (the error had come out as it was)', async () => {
  const thrown = new RangeError('getter');
  const getter = (key: string): object => Object.defineProperty({}, key, { get: () => { throw thrown; }, enumerable: true });
  const store = await open();
  try {
    await store.remember('kept');
    const calls: [string, () => Promise<unknown>][] = [
      ['remember', () => store.remember('x', getter('namespace') as never)],
      ['recall', () => store.recall('x', getter('k') as never)],
      ['forget', () => store.forget(getter('filter') as never)],
      ['forget (Proxy)', () => store.forget(new Proxy({}, { ownKeys: () => { throw thrown; } }) as never)],
      ['compact', () => store.compact(getter('onProgress') as never)],
    ];
    for (const [what, call] of calls) assert.equal((await rejectsWith(call, 'INVALID_OPTION')).cause, thrown, what);
    assert.equal(store.stats().count, 1);
  } finally {
    await store.close();
  }
});

test('hostile memory: a recall whose embedder closes the store ends CLOSED alone: a remember accepted before it and a remember and an add called after it are written, and the close waits for them (all had been CLOSED: a hostile pass)', async () => {
  for (const awaiting of [true, false]) {
    const dir = tempDir();
    let store: MemStore | undefined;
    const slow = gateOf();
    let closing: Promise<void> | undefined;
    const embed = async (texts: string[]) => {
      if (texts.includes('slow fact')) await slow.passed;
      if (texts.includes('closer')) {
        // After the calls made after this one are accepted.
        await new Promise((r) => setTimeout(r, 5));
        closing = store!.close();
        slow.open();
        if (awaiting) await closing;
      }
      return texts.map(vectorOf);
    };
    store = await open({ embed }, dir);
    const first = outcomeOf(store.remember('slow fact'));
    await new Promise((r) => setTimeout(r, 10));
    const recall = outcomeOf(store.recall('closer'));
    const after = outcomeOf(store.remember('queued fact'));
    const plain = outcomeOf(store.add([{ id: 'plain', vector: vectorOf('plain') }]));
    const settled = await within10s(Promise.all([first, recall, after, plain]));
    assert.deepEqual(settled, ['resolved', 'CLOSED', 'resolved', 'resolved'], `awaiting ${awaiting}`);
    await closing;
    assert.equal(await countAfterReopen(dir), 3, `awaiting ${awaiting}`);
  }
});

test('hostile memory: a remember whose embedder closes the store ends CLOSED alone: a recall under way answers, and the writes called after the remember (a remember, an add, a forget of a namespace, a delete) are applied before the close (they had ended CLOSED, CLOSED, applied, CLOSED, applied: a hostile pass)', async () => {
  for (const awaiting of [true, false]) {
    const dir = tempDir();
    let store: MemStore | undefined;
    const recallGate = gateOf();
    let closing: Promise<void> | undefined;
    const embed = async (texts: string[]) => {
      if (texts.includes('recalled')) await recallGate.passed;
      if (texts.includes('closer')) {
        // After the calls made after this one are accepted.
        await new Promise((r) => setTimeout(r, 5));
        closing = store!.close();
        recallGate.open();
        if (awaiting) await closing;
      }
      return texts.map(vectorOf);
    };
    store = await open({ embed }, dir);
    await store.remember(['kept', 'gone'], { namespace: 'old' });
    await store.add([{ id: 'doomed', vector: vectorOf('doomed') }]);
    const recall = store.recall('recalled', { namespace: 'old' }).then((hits) => hits.map((h) => h.text).sort(), (e: unknown) => codeOf(e));
    await new Promise((r) => setTimeout(r, 10));
    const outcomes = await within10s(
      Promise.all([
        outcomeOf(store.remember('closer')),
        outcomeOf(store.remember('after')),
        outcomeOf(store.add([{ id: 'plain', vector: vectorOf('plain') }])),
        outcomeOf(store.forget({ namespace: 'old' })),
        outcomeOf(store.delete(['doomed'])),
        recall,
      ]),
    );
    assert.deepEqual(outcomes, ['CLOSED', 'resolved', 'resolved', 'resolved', 'resolved', ['gone', 'kept']], `awaiting ${awaiting}`);
    await closing;
    const again = await MemStore.open(dir, { embed: embedder() });
    try {
      assert.deepEqual(again.namespaces(), ['default']);
      assert.deepEqual((await again.recall('after')).map((h) => h.text), ['after']);
      assert.ok(await again.get('plain'));
      assert.equal(await again.get('doomed'), undefined);
      assert.equal(again.stats().count, 2);
    } finally {
      await again.close();
    }
  }
});

test('hostile memory: forget of a Set of ids (or a Map, a Date, a class instance) is INVALID_ARGUMENT and deletes nothing, and a Map or Date as remember, recall or compact options is INVALID_OPTION (read as no options, forget(new Set([id])) had deleted the whole default namespace: a hostile pass)', async () => {
  const store = await open();
  try {
    const [first] = await store.remember(['one', 'two', 'three']);
    class Selection {
      namespace = 'default';
    }
    for (const what of [new Set([first!.id]), new Map([['namespace', 'default']]), new Date(0), new Selection()]) {
      const e = await rejectsWith(() => store.forget(what as unknown as string[]), 'INVALID_ARGUMENT');
      assert.equal(e.field, 'forget');
    }
    assert.equal(store.stats().count, 3);
    for (const options of [new Map([['namespace', 'bob']]), new Date(0)]) {
      assert.equal((await rejectsWith(() => store.remember('for bob', options as unknown as { namespace: string }), 'INVALID_OPTION')).field, 'options');
      assert.equal((await rejectsWith(() => store.recall('one', options as unknown as { namespace: string }), 'INVALID_OPTION')).field, 'options');
      assert.equal((await rejectsWith(() => store.compact(options as unknown as Record<string, never>), 'INVALID_OPTION')).field, 'options');
    }
    assert.equal(store.stats().count, 3);
    assert.deepEqual(store.namespaces(), ['default']);
    // A plain object with no prototype is options like any other.
    assert.equal(await store.forget(Object.assign(Object.create(null) as object, { namespace: 'default' })), 3);
  } finally {
    await store.close();
  }
});

test('hostile memory: flags that differ by their tag characters (England, Scotland, Wales, a plain black flag) are four memories, each the same text as itself, and a memory remembered when the tags were dropped is still found for its own text (the four had been one memory: a hostile pass)', async () => {
  const flag = (letters: string) => `\u{1F3F4}${[...letters].map((c) => String.fromCodePoint(0xe0000 + c.codePointAt(0)!)).join('')}\u{E007F}`;
  const texts = ['gbeng', 'gbsct', 'gbwls'].map((f) => `Bob supports ${flag(f)} in the final`).concat(['Bob supports \u{1F3F4} in the final']);
  const dir = tempDir();
  const store = await open({}, dir);
  try {
    const first = await store.remember(texts);
    assert.deepEqual(first.map((r) => r.action), ['added', 'added', 'added', 'added']);
    assert.equal(new Set(first.map((r) => r.id)).size, 4);
    const again = await store.remember(texts);
    assert.deepEqual(again, first.map((r) => ({ id: r.id, action: 'updated' })));
    // A memory as remember wrote it before 2026-12-06: its hash of the text without its tags.
    const old = `Alice supports ${flag('gbsct')}`;
    const oldKey = sameTextKey(old.replace(/[\u{e0020}-\u{e007f}]/gu, ''));
    const oldHash = createHash('sha256').update(`2\u0000${oldKey}`, 'utf8').digest('hex').slice(0, 32);
    await store.add([{ id: 'before', vector: vectorOf(old), text: old, meta: { $ns: 'default', $at: 1, $hash: oldHash } }]);
    assert.deepEqual(await store.remember(old), [{ id: 'before', action: 'updated' }]);
    assert.deepEqual((await store.remember(`Alice supports ${flag('gbwls')}`)).map((r) => r.action), ['added']);
    assert.equal(store.stats().count, 6);
  } finally {
    await store.close();
  }
});

test('hostile memory: compact() deletes expired memories only: records a plain add gave a past $exp without being memories (no $ns remember takes, or no finite $at) stay (they had been deleted: a hostile pass)', async () => {
  const dir = tempDir();
  const store = await open({}, dir);
  try {
    const [memory] = await store.remember('gone soon', { at: 1, ttl: 1 });
    await store.add([
      { id: 'exp-only', vector: vectorOf('a'), meta: { $exp: 1 } },
      { id: 'numeric-ns', vector: vectorOf('b'), meta: { $ns: 5, $at: 1, $exp: 1 } },
      { id: 'no-at', vector: vectorOf('c'), meta: { $ns: 'x', $exp: 1 } },
      { id: 'text-at', vector: vectorOf('d'), meta: { $ns: 'x', $at: 'yesterday', $exp: 1 } },
      { id: 'plain-memory', vector: vectorOf('e'), meta: { $ns: 'x', $at: 1, $exp: 1 } },
    ]);
    await store.compact();
    assert.deepEqual(store.ids().sort(), ['exp-only', 'no-at', 'numeric-ns', 'text-at']);
    assert.equal(await store.get(memory!.id), undefined);
  } finally {
    await store.close();
  }
});

test('hostile memory: a ttl lost in rounding beside at (1e-300, the least double, 0.4 ms after the latest at a Date holds) is INVALID_ARGUMENT and nothing is written (the memory had expired on arrival, and recall never returned it); an at past what a Date holds is refused as at', async () => {
  const store = await open();
  try {
    for (const [ttl, at] of [[1e-300, undefined], [5e-324, undefined], [0.4, 8.64e15]] as const) {
      const e = await rejectsWith(() => store.remember('tiny', at === undefined ? { ttl } : { ttl, at }), 'INVALID_ARGUMENT');
      assert.equal(e.field, 'ttl');
    }
    assert.equal((await rejectsWith(() => store.remember('tiny', { ttl: 86_400_000, at: 1e300 }), 'INVALID_ARGUMENT')).field, 'at');
    assert.equal(store.stats().count, 0);
    assert.equal((await store.remember('small but counted', { ttl: 1 }))[0]!.action, 'added');
  } finally {
    await store.close();
  }
});
