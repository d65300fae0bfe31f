import { MemstoreError } from './errors.js';
import { MAX_META_BYTES, MAX_META_DEPTH } from './limits.js';
import { isWellFormed, utf8Length } from './text.js';

/**
 * Record metadata is JSON data: objects, arrays, strings, finite numbers, booleans and null. It is
 * copied on the way in (so the caller may change its object afterwards), kept as that private copy,
 * persisted as JSON text, and handed out as a fresh copy (so a caller who changes a result changes
 * nothing stored). Anything JSON cannot carry exactly is refused rather than changed: `undefined`,
 * functions, symbols, BigInt, NaN and ±Infinity, Map, Set, Date, typed arrays and other class
 * instances, cycles, sparse arrays, symbol or non-enumerable keys, lone surrogates in strings.
 *
 * Two things are normalized, as JSON itself does: -0 is stored as 0, and objects come back with
 * the ordinary prototype whatever prototype (null or Object.prototype) they went in with. A key
 * named `__proto__` is an ordinary key and round-trips as one.
 */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type Meta = { [key: string]: JsonValue };

function fail(path: string, what: string, cause?: unknown): MemstoreError {
  return new MemstoreError('INVALID_ARGUMENT', `${path} ${what}; metadata must be JSON data`, cause === undefined ? { field: path } : { cause, field: path });
}

/**
 * What an object is, for a message: `a Map`, `a Date`, or, for a plain object or array made in
 * another realm (a `vm` context), so, since its prototype is not this realm's and it is refused as
 * one of an unknown class (the message had said "is a Object").
 */
export function objectKind(v: object): string {
  let proto: unknown;
  let name: unknown;
  let grand: unknown;
  try {
    proto = Object.getPrototypeOf(v);
    name = (proto as { constructor?: { name?: unknown } } | null)?.constructor?.name;
    grand = proto === null ? null : Object.getPrototypeOf(proto);
  } catch {
    return 'an object that cannot be inspected';
  }
  if (proto === Object.prototype || proto === null) return 'an object';
  if (proto === Array.prototype) return 'an array';
  // Its prototype an object or array of this realm: made by Object.create() or with a __proto__ key
  // in a literal, which the message had blamed on another realm (a hostile pass).
  if (name === 'Object' || name === 'Array') {
    if (grand === Object.prototype || grand === Array.prototype) return 'an object inheriting from another object (Object.create, or a __proto__ key in an object literal): give a plain object';
    return `${name === 'Object' ? 'an object' : 'an array'} of another realm (a vm context): make it in this one`;
  }
  return typeof name === 'string' && name !== '' ? `a ${name}` : 'an object of another kind';
}

function kindOf(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'symbol') return 'a symbol';
  if (typeof v === 'bigint') return 'a BigInt';
  if (typeof v === 'number') return String(v);
  return typeof v === 'object' && v !== null ? objectKind(v) : `a ${typeof v}`;
}

/**
 * `path` and `key` as an error's `field` names them: `.key` for an identifier, else `["key"]` as
 * JSON writes it (so `a.b` is not read as a nested path, and a lone surrogate is escaped, the field
 * itself valid Unicode). Metadata and filters name their keys alike.
 */
export function keyPath(path: string, key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

/** Sets `key` as an own data property, also when it is `__proto__` (plain assignment would set the prototype). */
function define(out: Record<string, JsonValue>, key: string, value: JsonValue): void {
  if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  else out[key] = value;
}

/**
 * The JSON bytes a copy has reached so far, counted low (a string as its quotes and one byte per
 * UTF-16 unit, a number as one byte), so that going past MAX_META_BYTES proves the whole is too
 * large. A caller's object can be far smaller than its JSON (one string or one array referred to a
 * thousand times, nested): counted as the copy goes, it is refused once its JSON passes the limit,
 * not after copying and serializing all of it, which took seconds and gigabytes, or never ended.
 */
interface Budget {
  readonly root: string;
  bytes: number;
}

/** Refuses the copy when `bytes` more would take it past MAX_META_BYTES. */
function refuseOver(budget: Budget, bytes: number): void {
  if (budget.bytes + bytes > MAX_META_BYTES) throw fail(budget.root, `is more than ${MAX_META_BYTES} bytes as JSON`);
}

function spend(budget: Budget, bytes: number): void {
  refuseOver(budget, bytes);
  budget.bytes += bytes;
}

function copyValue(v: unknown, path: string, depth: number, ancestors: Set<object>, budget: Budget): JsonValue {
  switch (typeof v) {
    case 'string':
      spend(budget, v.length + 2);
      if (!isWellFormed(v)) throw fail(path, 'holds a lone surrogate (not valid Unicode)');
      return v;
    case 'boolean':
      spend(budget, 4);
      return v;
    case 'number':
      spend(budget, 1);
      if (!Number.isFinite(v)) throw fail(path, `is ${String(v)}`);
      return v === 0 ? 0 : v;
    case 'object':
      break;
    default:
      throw fail(path, `is ${kindOf(v)}`);
  }
  // null, or the brackets (separators are counted with the members).
  spend(budget, v === null ? 4 : 2);
  if (v === null) return null;
  if (depth > MAX_META_DEPTH) throw fail(path, `is nested deeper than ${MAX_META_DEPTH} levels`);
  if (ancestors.has(v)) throw fail(path, 'refers back to an object that contains it (a cycle)');
  if (Object.getOwnPropertySymbols(v).length > 0) throw fail(path, 'has symbol keys');
  const proto: unknown = Object.getPrototypeOf(v);
  ancestors.add(v);
  try {
    if (Array.isArray(v)) {
      if (proto !== Array.prototype) throw fail(path, `is ${kindOf(v)}`);
      // A byte and a comma per element at least: a huge array goes before its millions of names are
      // listed (a check only: its elements count their bytes as they are copied).
      refuseOver(budget, 2 * v.length - 1);
      const names = Object.getOwnPropertyNames(v);
      // An array's own names are its indices plus 'length': anything else would not survive JSON.
      if (names.length !== v.length + 1) throw fail(path, 'is a sparse array or has extra properties');
      const out: JsonValue[] = new Array<JsonValue>(v.length);
      for (let i = 0; i < v.length; i++) {
        if (!Object.prototype.hasOwnProperty.call(v, i)) throw fail(path, 'is a sparse array or has extra properties');
        if (i > 0) spend(budget, 1);
        out[i] = copyValue(v[i], `${path}[${i}]`, depth + 1, ancestors, budget);
      }
      return out;
    }
    if (proto !== Object.prototype && proto !== null) throw fail(path, `is ${kindOf(v)}`);
    const keys = Object.keys(v);
    if (Object.getOwnPropertyNames(v).length !== keys.length) throw fail(path, 'has non-enumerable properties');
    const out: Record<string, JsonValue> = {};
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      // Quotes and a colon, and a comma after the first.
      spend(budget, key.length + (i > 0 ? 4 : 3));
      const at = keyPath(path, key);
      if (!isWellFormed(key)) throw fail(at, 'is a key with a lone surrogate (not valid Unicode)');
      define(out, key, copyValue((v as Record<string, unknown>)[key], at, depth + 1, ancestors, budget));
    }
    return out;
  } finally {
    ancestors.delete(v);
  }
}

/** The metadata of one record after checking: the private copy, and its JSON text as persisted. */
export interface CheckedMeta {
  readonly meta: Meta;
  readonly json: string;
}

/**
 * Checks that `value` is a JSON object within the limits (MAX_META_BYTES, MAX_META_DEPTH) and returns
 * a private deep copy with its JSON text. INVALID_ARGUMENT names the offending path, e.g.
 * `records[3].meta.tags[2]`.
 */
export function checkMeta(value: unknown, path: string): CheckedMeta {
  let meta: Meta;
  try {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw fail(path, `is ${value === null ? 'null' : Array.isArray(value) ? 'an array' : kindOf(value)}, not an object`);
    meta = copyValue(value, path, 1, new Set(), { root: path, bytes: 0 }) as Meta;
  } catch (e) {
    // A getter or a Proxy trap of the caller's object may throw anything.
    if (e instanceof MemstoreError) throw e;
    throw fail(path, 'could not be read', e);
  }
  const json = JSON.stringify(meta);
  const bytes = utf8Length(json);
  if (bytes > MAX_META_BYTES) throw fail(path, `is ${bytes} bytes as JSON, more than ${MAX_META_BYTES}`);
  return { meta, json };
}

/** A fresh deep copy of stored metadata, for handing out. */
export function cloneMeta<T extends JsonValue>(v: T): T {
  if (typeof v !== 'object' || v === null) return v;
  if (Array.isArray(v)) return v.map((x) => cloneMeta(x)) as T;
  // An object of scalars alone is copied by a spread, which V8 makes from the object's shape in one
  // step: 38 ns for five keys against 135 key by key (in a loop, this machine); every hit handed
  // out copies one. A spread defines each own key as define() does, so an own "__proto__" stays a
  // key; stored metadata has no symbols or accessors for it to copy besides.
  if (scalarsOnly(v as Record<string, JsonValue>)) return { ...(v as Record<string, JsonValue>) } as T;
  const out: Record<string, JsonValue> = {};
  for (const key of Object.keys(v)) define(out, key, cloneMeta((v as Record<string, JsonValue>)[key]!));
  return out as T;
}

/** Whether every value of `v` is a string, number, boolean or null. */
function scalarsOnly(v: Record<string, JsonValue>): boolean {
  for (const key in v) {
    const x = v[key];
    if (typeof x === 'object' && x !== null) return false;
  }
  return true;
}

/** Parses persisted metadata; undefined when `json` is not a JSON object (the caller reports CORRUPTION). */
export function parseMeta(json: string): Meta | undefined {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    return undefined;
  }
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Meta) : undefined;
}
