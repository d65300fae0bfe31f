import { MemStore, isMemstoreError } from '/tmp/hostile/dist/src/index.js';
import { rmSync } from 'node:fs';
const dir = '/tmp/hostile-scratch/h1'; rmSync(dir, { recursive: true, force: true });
const s = await MemStore.open(dir, { dim: 4, metric: 'dot' });
await s.add([{ id: 'base', vector: [1, 2, 3, 4], text: 'b', meta: { k: 1 } }]);
const tries = {
  emptyId: [{ id: '', vector: [1, 1, 1, 1] }],
  loneSurrogate: [{ id: '\uD800', vector: [1, 1, 1, 1] }],
  loneLowSurr: [{ id: 'a\uDC00', vector: [1, 1, 1, 1] }],
  id1025bytes: [{ id: 'é'.repeat(512) + 'x', vector: [1, 1, 1, 1] }],
  id1024bytes_ok: [{ id: 'é'.repeat(512), vector: [1, 1, 1, 1] }],
  numId: [{ id: 5, vector: [1, 1, 1, 1] }],
  nullByteId_ok: [{ id: 'a\u0000b', vector: [1, 1, 1, 1] }],
  nanVec: [{ id: 'n', vector: [NaN, 1, 1, 1] }],
  infVec: [{ id: 'n', vector: [Infinity, 1, 1, 1] }],
  hugeVec: [{ id: 'n', vector: [1e13, 1, 1, 1] }],
  zeroVec_dot: [{ id: 'z', vector: [0, 0, 0, 0] }],
  wrongDim: [{ id: 'w', vector: [1, 1, 1] }],
  wrongDim5: [{ id: 'w', vector: new Float32Array(5) }],
  float64arr: [{ id: 'f64', vector: new Float64Array([1, 2, 3, 4]) }],
  sparseArr: [{ id: 'sp', vector: [1, , 3, 4] }],
  stringNums: [{ id: 'sn', vector: ['1', '2', '3', '4'] }],
  bigintVec: [{ id: 'bi', vector: [1n, 2n, 3n, 4n] }],
  extraField: [{ id: 'x', vector: [1, 1, 1, 1], score: 3 }],
  metaUndefinedVal: [{ id: 'mu', vector: [1, 1, 1, 1], meta: { a: undefined } }],
  metaNaN: [{ id: 'mn', vector: [1, 1, 1, 1], meta: { a: NaN } }],
  metaDate: [{ id: 'md', vector: [1, 1, 1, 1], meta: { a: new Date() } }],
  metaCycle: (() => { const m = {}; m.self = m; return [{ id: 'mc', vector: [1, 1, 1, 1], meta: m }]; })(),
  metaDeep65: (() => { let m = {}; const root = m; for (let i = 0; i < 70; i++) { m.a = {}; m = m.a; } return [{ id: 'deep', vector: [1, 1, 1, 1], meta: root }]; })(),
  metaArray: [{ id: 'ma', vector: [1, 1, 1, 1], meta: [1, 2] }],
  metaProto: [{ id: 'mp', vector: [1, 1, 1, 1], meta: JSON.parse('{"__proto__": {"x": 1}, "y": 2}') }],
  metaBig: [{ id: 'mb', vector: [1, 1, 1, 1], meta: { s: 'x'.repeat(1 << 20) } }],
  metaLoneSurrogateKey: [{ id: 'mls', vector: [1, 1, 1, 1], meta: { ['\uD800']: 1 } }],
  metaLoneSurrogateVal: [{ id: 'mlv', vector: [1, 1, 1, 1], meta: { a: '\uDFFF' } }],
  metaBigInt: [{ id: 'mbi', vector: [1, 1, 1, 1], meta: { a: 1n } }],
  metaNegZero: [{ id: 'mz', vector: [1, 1, 1, 1], meta: { a: -0 } }],
  textLone: [{ id: 't', vector: [1, 1, 1, 1], text: 'x\uD83D' }],
  textNum: [{ id: 't', vector: [1, 1, 1, 1], text: 5 }],
  textNull: [{ id: 't', vector: [1, 1, 1, 1], text: null }],
  notArray: { id: 'x', vector: [1, 1, 1, 1] },
  nullRecord: [null],
  getterThrows: [{ id: 'g', get vector() { throw new Error('boom'); } }],
  proxyRecord: [new Proxy({ id: 'p', vector: [1, 1, 1, 1] }, { ownKeys() { throw new Error('trap'); } })],
  mixedBatchBadLast: [{ id: 'good1', vector: [1, 1, 1, 1] }, { id: 'bad', vector: [1, 1, 1] }],
  detachedBuf: (() => { const f = new Float32Array(4); structuredClone(f.buffer, { transfer: [f.buffer] }); return [{ id: 'det', vector: f }]; })(),
};
for (const [name, batch] of Object.entries(tries)) {
  try { await s.add(batch); console.log(name, 'ACCEPTED', typeof batch[0]?.id === 'string' ? JSON.stringify((await s.get(batch[0].id))?.meta ?? null)?.slice(0, 80) : ''); }
  catch (e) { console.log(name, isMemstoreError(e) ? e.code + ' ' + (e.field ?? '') : 'NON-MEMSTORE ' + e?.constructor?.name + ' ' + String(e?.message).slice(0, 100)); }
}
console.log('count', s.stats().count, 'ids', s.ids().map((x) => x.slice(0, 12)));
console.log('good1 present?', await s.get('good1'));
// searches
for (const [name, q, o] of [['nanQ', [NaN, 1, 1, 1]], ['shortQ', [1, 1]], ['k0', [1, 1, 1, 1], { k: 0 }], ['kNeg', [1, 1, 1, 1], { k: -1 }], ['kHuge', [1, 1, 1, 1], { k: 1e9 }], ['kFloat', [1, 1, 1, 1], { k: 1.5 }], ['badFilter', [1, 1, 1, 1], { filter: { k: { $gt: 1 } } }], ['filterNull', [1, 1, 1, 1], { filter: null }], ['filterObjVal', [1, 1, 1, 1], { filter: { k: { a: 1 } } }], ['inEmpty', [1, 1, 1, 1], { filter: { k: { $in: [] } } }], ['unknownOpt', [1, 1, 1, 1], { kk: 1 }], ['nprobe0', [1, 1, 1, 1], { nprobe: 0 }], ['zeroQ_dot', [0, 0, 0, 0]], ['filterProto', [1, 1, 1, 1], { filter: { __proto__: 1 } }], ['filterToString', [1, 1, 1, 1], { filter: { toString: 1 } }]]) {
  try { const r = await s.search(q, o); console.log('search', name, 'OK', r.length, r.map((h) => h.id.slice(0, 8) + ':' + h.score?.toFixed?.(2))); } catch (e) { console.log('search', name, isMemstoreError(e) ? e.code : 'NON-MEMSTORE ' + e?.constructor?.name + ' ' + e?.message); }
}
for (const [name, f] of [['getNum', () => s.get(5)], ['getEmpty', () => s.get('')], ['getLone', () => s.get('\uD800')], ['delNotArray', () => s.delete('base')], ['delLone', () => s.delete(['\uD800'])], ['delEmptyArr', () => s.delete([])], ['delDup', () => s.delete(['base', 'base'])], ['addEmpty', () => s.add([])], ['idsBadFilter', () => s.ids({ x: { $nope: 1 } })]]) {
  try { console.log(name, 'OK', JSON.stringify(await f())?.slice(0, 80)); } catch (e) { console.log(name, isMemstoreError(e) ? e.code : 'NON-MEMSTORE ' + e?.constructor?.name + ' ' + e?.message); }
}
await s.close();
for (const [name, f] of [['searchClosed', () => s.search([1, 1, 1, 1])], ['addClosed', () => s.add([{ id: 'q', vector: [1, 1, 1, 1] }])], ['statsClosed', () => s.stats()], ['idsClosed', () => s.ids()], ['compactClosed', () => s.compact()], ['closeAgain', () => s.close()]]) {
  try { console.log(name, 'OK', JSON.stringify(await f())?.slice(0, 60)); } catch (e) { console.log(name, isMemstoreError(e) ? e.code : 'NON-MEMSTORE ' + e?.constructor?.name + ' ' + e?.message); }
}
const r = await MemStore.open(dir); console.log('reopen count', r.stats().count, r.ids().length); await r.close();
