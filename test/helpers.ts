import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { open as openLmdb } from 'lmdb';
import { Packr } from 'msgpackr';
import { crc32c, maskCrc } from '../io/crc32c.js';
import assert from 'node:assert/strict';
import { isMemstoreError, MemStore, MemstoreError, type MemstoreErrorCode, type StoredRecord } from '../src/index.js';
import type { Metric } from '../src/options.js';
import { rng } from '../src/random.js';
import { statePath } from '../src/store/files.js';
import { StateStore, type Checkpoint } from '../src/store/state.js';
import { exactScore as exactStoreScore } from '../src/vector.js';

const made: string[] = [];
after(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** Flips one bit of the first text in the store's text arena that contains `text`; returns the arena segment's path. */
export function damageText(dir: string, text: string): string {
  const arena = join(dir, 'arena', readdirSync(join(dir, 'arena'))[0]!);
  const bytes = readFileSync(arena);
  const at = bytes.indexOf(Buffer.from(text));
  if (at <= 0) throw new Error(`no ${JSON.stringify(text)} in ${arena}`);
  bytes[at]! ^= 0x04;
  writeFileSync(arena, bytes);
  return arena;
}

/** A fresh directory removed when the test file finishes. */
export function tempDir(prefix = 'memstore-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

export { rng };

export function gaussian(next: () => number): number {
  const u = Math.max(next(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
}

function unit(v: Float32Array): Float32Array {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

/** A query at about cosine `cos` to `q`, of q's length: a near repeat of it. */
export function perturb(q: Float32Array, cos: number, next: () => number): Float32Array {
  const u = unit(q);
  const r = Float32Array.from(u, () => gaussian(next));
  const along = r.reduce((s, x, i) => s + x * u[i]!, 0);
  const orth = unit(r.map((x, i) => x - along * u[i]!));
  const sin = Math.sqrt(1 - cos * cos);
  const len = Math.hypot(...q);
  return u.map((x, i) => (cos * x + sin * orth[i]!) * len);
}

/** `n` vectors around `clusters` random centres: the shape of real embedding data, cheaply. */
export function clustered(n: number, dim: number, seed: number, clusters = 8): Float32Array[] {
  const next = rng(seed);
  const centres = Array.from({ length: clusters }, () => Float32Array.from({ length: dim }, () => gaussian(next)));
  return Array.from({ length: n }, (_, i) => {
    const c = centres[i % clusters]!;
    return Float32Array.from(c, (x) => x + 0.6 * gaussian(next));
  });
}

export interface Fixture {
  dim: number;
  docs: Float32Array[];
  queries: Float32Array[];
  texts: string[];
}

function rows(file: string, dim: number): Float32Array[] {
  const buf = readFileSync(new URL(`../../bench/data/wordnet-use512-1k/${file}`, import.meta.url));
  const all = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  return Array.from({ length: all.length / dim }, (_, i) => all.slice(i * dim, (i + 1) * dim));
}

/** 1000 real USE-lite embeddings of WordNet glosses and 100 query sentences (see bench/data/wordnet-use512-1k/README.md). */
export function loadFixture(): Fixture {
  const texts = readFileSync(new URL('../../bench/data/wordnet-use512-1k/docs.jsonl', import.meta.url), 'utf8')
    .trim()
    .split('\n')
    .map((line) => (JSON.parse(line) as { text: string }).text);
  return { dim: 512, docs: rows('docs.f32', 512), queries: rows('queries.f32', 512), texts };
}

/** The exact score a store computes for a full-precision vector (ExactScorer), bit for bit (src/vector.ts, in float64). */
export function storeScore(metric: Metric, q: Float32Array, x: Float32Array): number {
  return exactStoreScore(metric, q, x);
}

export function exactScore(metric: Metric, q: Float32Array, x: Float32Array): number {
  let d = 0;
  let qq = 0;
  let xx = 0;
  let l2 = 0;
  for (let i = 0; i < q.length; i++) {
    d += q[i]! * x[i]!;
    qq += q[i]! * q[i]!;
    xx += x[i]! * x[i]!;
    l2 += (q[i]! - x[i]!) ** 2;
  }
  if (metric === 'dot') return d;
  if (metric === 'l2') return -Math.sqrt(l2);
  return qq === 0 || xx === 0 ? 0 : d / Math.sqrt(qq * xx);
}

/** Ids of the exact top-k by brute force in float64. */
export function bruteForce(metric: Metric, q: Float32Array, items: readonly { id: string; vector: Float32Array }[], k: number): string[] {
  return items
    .map((it) => ({ id: it.id, s: exactScore(metric, q, it.vector) }))
    .sort((a, b) => b.s - a.s)
    .slice(0, k)
    .map((x) => x.id);
}

export function recall(found: readonly string[], truth: readonly string[]): number {
  const t = new Set(truth);
  return truth.length === 0 ? 1 : found.filter((id) => t.has(id)).length / truth.length;
}

/** Asserts that `fn` throws or rejects with a MemstoreError of `code`, and returns it. */
export async function rejectsWith(fn: () => unknown, code: MemstoreErrorCode): Promise<MemstoreError> {
  let caught: unknown;
  try {
    await fn();
  } catch (e) {
    caught = e;
  }
  if (caught === undefined) throw new Error(`expected MemstoreError ${code}, nothing was thrown`);
  if (!isMemstoreError(caught, code)) {
    const got = isMemstoreError(caught) ? caught.code : String(caught);
    throw new Error(`expected MemstoreError ${code}, got ${got}`, { cause: caught });
  }
  return caught as MemstoreError;
}

/** The MemstoreError CORRUPTION that `fn` rejects with (an assertion fails on anything else). */
export async function corruptionOf(fn: () => Promise<unknown>): Promise<MemstoreError> {
  const e = await fn().then(() => undefined, (err: unknown) => err);
  assert.ok(e instanceof MemstoreError && e.code === 'CORRUPTION', `expected CORRUPTION, got ${String(e)}`);
  return e;
}

/** Every record of the store in `dir`, by id, as get returns them (opens and closes it). */
export async function recordsOf(dir: string): Promise<Map<string, StoredRecord>> {
  const store = await MemStore.open(dir);
  try {
    const out = new Map<string, StoredRecord>();
    for (const id of store.ids()) out.set(id, (await store.get(id))!);
    return out;
  } finally {
    await store.close();
  }
}

/** The checkpoint the closed store in `dir` names. */
export function checkpointOf(dir: string): Checkpoint {
  const state = StateStore.open(dir);
  try {
    return state.readCheckpoint();
  } finally {
    void state.close();
  }
}

/**
 * Replaces the store's configuration record with `config`, sealed as state.ts seals it: what a
 * build that wrote other fields (an older format, settings it did not keep) would have left.
 */
export async function writeStoreConfig(dir: string, config: Record<string, unknown>): Promise<void> {
  await writeStateRecord(dir, 'config', config);
}

const statePackr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });

/** Replaces the record `key` of the state file's `config` table with `value`, sealed as the store seals it (a valid checksum). */
export async function writeStateRecord(dir: string, key: string, value: unknown): Promise<void> {
  await writeStateBytes(dir, key, statePackr.pack(value));
}

/** Replaces the record `key` of the state file's `config` table with the bytes `payload`, sealed as the store seals a value. */
export async function writeStateBytes(dir: string, key: string, payload: Uint8Array): Promise<void> {
  const env = openLmdb({ path: statePath(dir), maxDbs: 8 });
  const db = env.openDB<Buffer, string>({ name: 'config', encoding: 'binary' });
  const sealed = Buffer.alloc(4 + payload.length);
  sealed.writeUInt32LE(maskCrc(crc32c(payload, 0, payload.length, crc32c(Buffer.from(key)))), 0);
  sealed.set(payload, 4);
  await db.put(key, sealed);
  await env.close();
}

/** The record `key` of the state file's `config` table, unsealed (its checksum not checked), as msgpack decodes it. */
export async function readStateRecord(dir: string, key: string): Promise<Record<string, unknown>> {
  const env = openLmdb({ path: statePath(dir), maxDbs: 8 });
  try {
    const db = env.openDB<Buffer, string>({ name: 'config', encoding: 'binary' });
    const raw = db.getBinary(key);
    if (raw === undefined) throw new Error(`no record ${key}`);
    return statePackr.unpack(Buffer.from(raw).subarray(4)) as Record<string, unknown>;
  } finally {
    await env.close();
  }
}

/** A model's map as a dense matrix (src/pca/projector.ts), for tests that check the space against its definition. */
export { modelMatrix } from '../src/pca/projector.js';

/** What a call came to: 'resolved', or its error's code. */
export function outcomeOf(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'resolved',
    (e: { code?: string }) => e.code ?? String(e),
  );
}

/** A gate an embedder waits at until the test opens it. */
export function gateOf(): { passed: Promise<void>; open: () => void } {
  let open!: () => void;
  const passed = new Promise<void>((resolve) => (open = resolve));
  return { passed, open };
}

/** What `all` resolves to, or a message once it has not settled in 10 s (a hang fails its test by name). */
export function within10s<T>(all: Promise<T>): Promise<T | string> {
  return Promise.race([all, new Promise<string>((resolve) => setTimeout(() => resolve('still pending after 10 s'), 10_000).unref())]);
}

/**
 * Vector `v` of a family near 8 centers (standard normal noise around centers drawn 3 times wider),
 * made from `v` and `seed` alone: two stores given the same numbers get the same vectors.
 */
export function nearCenters(dim: number, seed: number): (v: number) => Float32Array {
  const centers = Array.from({ length: 8 }, (_, c) => {
    const next = rng(seed + c);
    return Float32Array.from({ length: dim }, () => 3 * gaussian(next));
  });
  return (v) => {
    const next = rng(v + 1);
    return centers[v % centers.length]!.map((x) => x + gaussian(next));
  };
}
