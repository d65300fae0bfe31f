import assert from 'node:assert/strict';
import { MemStore, isMemstoreError, type MemstoreErrorCode, type OpenOptions } from '../../src/index.js';
import type { CodecName } from '../../src/codec/codec.js';
import type { Metric } from '../../src/options.js';
import { exactScore, tempDir } from '../helpers.js';

/**
 * A plain in-memory model of a store, and sequences of steps that are pure JSON (so a failing
 * sequence prints as a test one can paste): hostile values are descriptors the runner turns into the
 * real thing (a Map, a cycle, NaN). The model's rules for what is refused are written here again,
 * from the README, not imported from the library: the test checks the library against them.
 */
export const MODEL_DIM = 8;

export interface ModelConfig {
  metric: Metric;
  codec: CodecName;
  pca: boolean;
  rescore: boolean;
}

/** A vector: plain numbers, or a descriptor of a hostile one. */
export type VectorSpec = number[] | { bad: 'nan' | 'inf' | 'overflow' | 'short' | 'string' | 'huge' | 'tiny' | 'f64array' };
export type IdSpec = string | { bad: 'number' | 'null' };
export type TextSpec = string | { bad: 'lone' | 'number' };
/** Metadata: a JSON object, or a descriptor of something JSON cannot carry. */
export type MetaSpec = Record<string, unknown> | { hostile: 'map' | 'date' | 'typed' | 'fn' | 'undefined' | 'bigint' | 'cycle' | 'nan' | 'symbol' | 'sparse' | 'class' | 'lone' | 'array' };

export interface RecordSpec {
  id: IdSpec;
  vector: VectorSpec;
  text?: TextSpec;
  meta?: MetaSpec;
  /** A misspelt field name (`metadata`), which must be refused. */
  typo?: boolean;
}

export type Step =
  | { op: 'add'; records: RecordSpec[] }
  | { op: 'delete'; ids: IdSpec[] }
  | { op: 'search'; query: number[]; k: number; tag?: string; rescore?: boolean }
  | { op: 'reopen' }
  | { op: 'crash' }
  | { op: 'compact' };

/** What the sequences exercised, so a run reports whether it tested what it claims. */
export const modelStats = { accepted: 0, refused: 0, searches: 0, exactTopK: 0, reopens: 0, crashes: 0, compactions: 0, largest: 0 };

interface ModelRecord {
  vector: Float32Array;
  text: string | undefined;
  meta: Record<string, unknown> | undefined;
}

export type Model = Map<string, ModelRecord>;

const MAX_ID_BYTES = 1024;

class Point {
  x = 1;
}

function materializeVector(v: VectorSpec): unknown {
  if (Array.isArray(v)) return v;
  const base = Array.from({ length: MODEL_DIM }, (_, i) => (i % 2 === 0 ? 0.5 : -0.25));
  switch (v.bad) {
    case 'nan':
      return base.map((x, i) => (i === 3 ? NaN : x));
    case 'inf':
      return base.map((x, i) => (i === 1 ? -Infinity : x));
    case 'overflow':
      return base.map((x, i) => (i === 0 ? 1e39 : x));
    case 'short':
      return base.slice(1);
    case 'string':
      return base.map((x, i) => (i === 2 ? String(x) : x));
    case 'huge':
      return base.map((x) => x * 4e13);
    case 'tiny':
      return base.map((x) => x * 4e-14);
    case 'f64array':
      return Float64Array.from(base);
  }
}

function materializeMeta(m: MetaSpec): unknown {
  if (!('hostile' in m) || typeof m['hostile'] !== 'string') return m;
  switch (m.hostile) {
    case 'map':
      return { x: new Map([['a', 1]]) };
    case 'date':
      return { x: new Date(0) };
    case 'typed':
      return { x: new Float32Array([1, 2]) };
    case 'fn':
      return { x: () => 1 };
    case 'undefined':
      return { x: undefined };
    case 'bigint':
      return { x: 2n ** 70n };
    case 'cycle': {
      const o: Record<string, unknown> = { a: [1] };
      (o['a'] as unknown[]).push(o);
      return o;
    }
    case 'nan':
      return { x: [1, NaN] };
    case 'symbol':
      return { [Symbol('k')]: 1 };
    case 'sparse':
      // eslint-disable-next-line no-sparse-arrays
      return { x: [1, , 2] };
    case 'class':
      return { x: new Point() };
    case 'lone':
      return { x: 'a\uD83Db' };
    case 'array':
      return [1, 2];
  }
}

/** The record as a caller would pass it: fresh objects (the test changes them after the call), hostile parts made real. */
function materializeRecord(spec: RecordSpec): unknown {
  const r = structuredClone(spec);
  const out: Record<string, unknown> = { id: typeof r.id === 'string' ? r.id : r.id.bad === 'number' ? 42 : null, vector: materializeVector(r.vector) };
  if (r.text !== undefined) out['text'] = typeof r.text === 'string' ? r.text : r.text.bad === 'lone' ? 'x\uDC00' : 7;
  if (r.meta !== undefined) out['meta'] = materializeMeta(r.meta);
  if (r.typo === true) out['metadata'] = { a: 1 };
  return out;
}

function lone(s: string): boolean {
  return /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
}

/** The ids of a step's records that the model accepts as ids (whether or not the record is accepted). */
export function validIds(step: Step): string[] {
  if (step.op !== 'add') return [];
  return step.records.flatMap((r) => (typeof r.id === 'string' && idError(r.id) === undefined ? [r.id] : []));
}

function idError(id: IdSpec): MemstoreErrorCode | undefined {
  if (typeof id !== 'string' || id === '' || lone(id) || Buffer.byteLength(id) > MAX_ID_BYTES) return 'INVALID_ID';
  return undefined;
}

/** The vector as the store keeps it (float32), or the error the README says it gets. */
function vectorOf(v: VectorSpec, config: ModelConfig): { vector: Float32Array } | { error: MemstoreErrorCode } {
  const raw = materializeVector(v);
  if (!Array.isArray(raw)) return { error: 'INVALID_VECTOR' };
  if (raw.some((x) => typeof x !== 'number')) return { error: 'INVALID_VECTOR' };
  if (raw.length !== MODEL_DIM) return { error: 'DIM_MISMATCH' };
  const vector = Float32Array.from(raw as number[]);
  if (vector.some((x) => !Number.isFinite(x))) return { error: 'INVALID_VECTOR' };
  if (config.metric !== 'cosine') {
    const largest = Math.max(...vector.map(Math.abs));
    const [max, min] = config.codec === 'f16' ? [65504 / (config.pca ? 2 * Math.sqrt(MODEL_DIM) : 1), 1e-4] : [1e12, 1e-12];
    if (largest > max || (largest > 0 && largest < min)) return { error: 'INVALID_VECTOR' };
  }
  return { vector };
}

function recordError(r: RecordSpec, config: ModelConfig): Set<MemstoreErrorCode> {
  const codes = new Set<MemstoreErrorCode>();
  const id = idError(r.id);
  if (id !== undefined) codes.add(id);
  const v = vectorOf(r.vector, config);
  if ('error' in v) codes.add(v.error);
  if (r.text !== undefined && (typeof r.text !== 'string' || lone(r.text))) codes.add('INVALID_ARGUMENT');
  if (r.meta !== undefined && 'hostile' in r.meta && typeof r.meta['hostile'] === 'string') codes.add('INVALID_ARGUMENT');
  if (r.typo === true) codes.add('INVALID_ARGUMENT');
  return codes;
}

/** What the model expects of a write: the codes it may be refused with (empty: accepted). */
export function expectedRefusal(step: Step, config: ModelConfig): Set<MemstoreErrorCode> {
  const codes = new Set<MemstoreErrorCode>();
  if (step.op === 'add') for (const r of step.records) for (const c of recordError(r, config)) codes.add(c);
  if (step.op === 'delete') for (const id of step.ids) if (idError(id) !== undefined) codes.add('INVALID_ID');
  return codes;
}

/** Applies an accepted write to the model. Metadata is what JSON makes of it (-0 becomes 0). */
export function applyToModel(model: Model, step: Step, config: ModelConfig): void {
  if (step.op === 'add') {
    for (const r of step.records) {
      const v = vectorOf(r.vector, config);
      if ('error' in v || typeof r.id !== 'string') throw new Error('applyToModel: the step should have been refused');
      model.set(r.id, {
        vector: v.vector,
        text: typeof r.text === 'string' ? r.text : undefined,
        meta: r.meta === undefined ? undefined : (JSON.parse(JSON.stringify(r.meta)) as Record<string, unknown>),
      });
    }
  } else if (step.op === 'delete') {
    for (const id of step.ids) if (typeof id === 'string') model.delete(id);
  }
}

export function isWrite(step: Step): boolean {
  return step.op === 'add' || step.op === 'delete' || step.op === 'compact';
}

/** Performs a write on the store, materializing hostile descriptors. */
export function performWrite(store: MemStore, step: Step): Promise<unknown> {
  if (step.op === 'add') {
    const records = step.records.map(materializeRecord) as Record<string, unknown>[];
    const done = store.add(records as never);
    // The caller may change what it passed as soon as the call returns: the store must have copied it.
    for (const r of records) {
      const meta = r['meta'];
      if (typeof meta === 'object' && meta !== null && !Array.isArray(meta) && Object.isExtensible(meta)) (meta as Record<string, unknown>)['changed by the caller'] = true;
      if (Array.isArray(r['vector']) && r['vector'].length > 0) (r['vector'] as unknown[])[0] = 12345;
    }
    return done;
  }
  if (step.op === 'delete') return store.delete(step.ids.map((id) => (typeof id === 'string' ? id : id.bad === 'number' ? 42 : null)) as never);
  if (step.op === 'compact') return store.compact();
  throw new Error(`not a write: ${step.op}`);
}

export function openOptions(config: ModelConfig): OpenOptions {
  return {
    dim: MODEL_DIM,
    metric: config.metric,
    codec: config.codec,
    rescore: config.rescore,
    trainSize: 10,
    ...(config.pca ? { pca: { dims: 4 } } : {}),
  };
}

/** Differences between the store and the model over `universe` (every id ever written); undefined when equal. */
export async function differences(store: MemStore, model: Model, universe: Iterable<string>, config: ModelConfig): Promise<string | undefined> {
  if (store.stats().count !== model.size) return `count ${store.stats().count}, model ${model.size}`;
  for (const id of universe) {
    const got = await store.get(id);
    const want = model.get(id);
    if (want === undefined) {
      if (got !== undefined) return `${JSON.stringify(id)} is present, the model has none`;
      continue;
    }
    if (got === undefined) return `${JSON.stringify(id)} is missing`;
    // What a read hands out is the caller's to change; the next read must not see it.
    const firstVector = got.vector[0];
    if (got.meta !== undefined) (got.meta as Record<string, unknown>)['changed by a reader'] = true;
    got.vector[0] = 54321;
    const again = await store.get(id);
    if (again === undefined) return `${JSON.stringify(id)} vanished between two reads`;
    if (again.meta !== undefined && Object.prototype.hasOwnProperty.call(again.meta, 'changed by a reader')) return `${JSON.stringify(id)}: changing the metadata get returned changed the store`;
    if (!Object.is(again.vector[0], firstVector)) return `${JSON.stringify(id)}: changing the vector get returned changed the store`;
    if (config.rescore || !store.stats().trained) {
      if (again.vector.length !== want.vector.length || again.vector.some((x, i) => !Object.is(x, want.vector[i]))) return `${JSON.stringify(id)} has another vector`;
    }
    if (again.text !== want.text) return `${JSON.stringify(id)} has another text`;
    try {
      assert.deepStrictEqual(again.meta, want.meta);
    } catch {
      return `${JSON.stringify(id)} has other metadata: ${JSON.stringify(again.meta)} vs ${JSON.stringify(want.meta)}`;
    }
  }
  return undefined;
}

/**
 * Checks one search against the model: only live records that match the filter, no repeats, as many
 * as there should be, scores as exact search gives them when the store rescored them, and the exact
 * top k when every candidate was rescored (or the store holds full-precision vectors, before training).
 */
export async function checkSearch(store: MemStore, model: Model, step: Extract<Step, { op: 'search' }>, config: ModelConfig): Promise<string | undefined> {
  const checked = vectorOf(step.query, config);
  const options = { k: step.k, ...(step.tag === undefined ? {} : { filter: { tag: step.tag } }), ...(step.rescore === undefined ? {} : { rescore: step.rescore }) };
  // A store created without full vectors cannot rescore: asking it to is an option error.
  const refusal: MemstoreErrorCode | undefined = 'error' in checked ? checked.error : step.rescore === true && !config.rescore ? 'INVALID_OPTION' : undefined;
  if (refusal !== undefined) {
    const refused = await store.search(step.query, options).then(() => undefined, (e: unknown) => (isMemstoreError(e) ? e.code : String(e)));
    return refused === refusal ? undefined : `search ${refused === undefined ? 'answered' : `refused with ${refused}`}, the model expects ${refusal}`;
  }
  if ('error' in checked) return undefined;
  const query = checked.vector;
  const hits = await store.search(query, options).catch((e: unknown) => e);
  if (!Array.isArray(hits)) return `search failed: ${String(hits)}`;
  const matching = [...model].filter(([, r]) => step.tag === undefined || (r.meta !== undefined && Object.prototype.hasOwnProperty.call(r.meta, 'tag') && r.meta['tag'] === step.tag));
  const scoreOf = new Map(matching.map(([id, r]) => [id, exactScore(config.metric, query, r.vector)]));
  if (hits.length !== Math.min(step.k, matching.length)) return `search returned ${hits.length}, expected ${Math.min(step.k, matching.length)}`;
  if (new Set(hits.map((h) => h.id)).size !== hits.length) return 'search returned an id twice';
  for (const h of hits) {
    if (!scoreOf.has(h.id)) return `search returned ${JSON.stringify(h.id)}, which is deleted or does not match the filter`;
    if (!Number.isFinite(h.score)) return `score of ${JSON.stringify(h.id)} is ${h.score}`;
  }
  const trained = store.stats().trained;
  const rescored = (step.rescore ?? config.rescore) && config.rescore && trained;
  const exactScores = rescored || !trained;
  if (!exactScores) return undefined;
  const scale = Math.max(1, ...[...scoreOf.values()].map(Math.abs));
  const tolerance = rescored ? 1e-9 * scale : 1e-4 * scale;
  for (const h of hits) {
    if (Math.abs(h.score - scoreOf.get(h.id)!) > tolerance) return `score of ${JSON.stringify(h.id)} is ${h.score}, exact search gives ${scoreOf.get(h.id)}`;
  }
  // PCA stores before training keep full vectors: their scan ranks everything exactly (in float32).
  const everyCandidate = !trained || Math.min(model.size, step.k * 4) >= model.size;
  modelStats.searches++;
  if (everyCandidate && hits.length > 0) {
    modelStats.exactTopK++;
    const returned = new Set(hits.map((h) => h.id));
    const worstReturned = Math.min(...hits.map((h) => scoreOf.get(h.id)!));
    for (const [id, s] of scoreOf) {
      if (!returned.has(id) && s > worstReturned + tolerance) return `${JSON.stringify(id)} (exact score ${s}) belongs in the top ${step.k} but was not returned`;
    }
  }
  return undefined;
}

/**
 * Runs `steps` on a fresh store with `config` and checks it against the model after every step.
 * Throws an AssertionError naming the step and the difference. This is what a failing randomized
 * sequence prints, ready to paste as a test.
 */
export async function runSequence(config: ModelConfig, steps: readonly Step[]): Promise<void> {
  const dir = tempDir('memstore-model-');
  const options = openOptions(config);
  let store = await MemStore.open(dir, { ...options, durability: 'none' });
  const model: Model = new Map();
  const universe = new Set<string>();
  try {
    for (const [i, step] of steps.entries()) {
      const where = `step ${i} (${step.op})`;
      if (step.op === 'search') {
        const problem = await checkSearch(store, model, step, config);
        assert.equal(problem, undefined, `${where}: ${problem}`);
        continue;
      }
      if (step.op === 'reopen' || step.op === 'crash') {
        if (step.op === 'reopen') await store.close();
        else await store.abandon();
        modelStats[step.op === 'reopen' ? 'reopens' : 'crashes']++;
        store = await MemStore.open(dir, { durability: 'none' });
      } else {
        const expected = expectedRefusal(step, config);
        let refused: MemstoreErrorCode | undefined;
        try {
          await performWrite(store, step);
        } catch (e) {
          if (!isMemstoreError(e)) throw new Error(`${where}: not a MemstoreError: ${String(e)}`, { cause: e });
          refused = e.code;
        }
        if (expected.size === 0) assert.equal(refused, undefined, `${where}: refused with ${refused}, the model accepts it`);
        else assert.ok(refused !== undefined && expected.has(refused), `${where}: ${refused === undefined ? 'accepted' : `refused with ${refused}`}, the model expects one of ${[...expected].join(', ')}`);
        if (refused === undefined) {
          modelStats.accepted++;
          if (step.op === 'compact') modelStats.compactions++;
          applyToModel(model, step, config);
          modelStats.largest = Math.max(modelStats.largest, model.size);
          for (const id of validIds(step)) universe.add(id);
        } else {
          modelStats.refused++;
        }
      }
      const problem = await differences(store, model, universe, config);
      assert.equal(problem, undefined, `${where}: ${problem}`);
    }
  } finally {
    await store.close();
  }
}
