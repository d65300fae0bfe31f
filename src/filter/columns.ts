import type { Filter, MetaValue } from '../options.js';

/** The code of a slot whose record lacks the field, or holds an object or array there: no condition matches it. */
export const ABSENT = 0;
/** The code of a slot whose document could not be read: its metadata decides, when a search reads it. */
export const UNKNOWN = 1;
const FIRST_VALUE = 2;
/**
 * Distinct values a column's dictionary holds at most. Fields that filters select on (namespace,
 * source, speaker, kind) have a few values; a field with more (an URL, a timestamp) lists its
 * first MAX_VALUES and hashes the rest into buckets, so its dictionary stays under a few hundred KiB.
 */
export const MAX_VALUES = 4094;
/**
 * Columns a store keeps at most. Searches may name any field (one no record holds, a new one each
 * time), and each column costs its codes, counts and verdicts (about 20 KiB and 10 bytes a record):
 * kept for every field ever named, they grew without bound. Past this many, the column named least
 * lately goes; dropping one is always safe, since a column is made again on its next use.
 */
export const MAX_COLUMNS = 64;
const CODES = 1 << 16;
/**
 * A filter's slots come from its narrowest field's lists when that field lets through at most
 * 1/LIST_SHARE of the records; past that, one pass over the column (2 bytes a record, read in
 * order) costs less than gathering and sorting the lists.
 */
const LIST_SHARE = 8;
/**
 * Bytes counted per value's list beside its entries: a typed array and its backing store cost V8
 * about this much whatever their length (a heap snapshot of 64 columns of mostly distinct values:
 * 157,000 lists took 27.6 MB more than their entries; counted at 16 bytes each, memoryBytes showed
 * 16.6 MiB of 42.9).
 */
const LIST_OVERHEAD = 176;
/** Bytes counted per dictionary entry beside its key's UTF-16: the Map's entry and the string's header. */
const ENTRY_BYTES = 48;
/**
 * A dictionary's bytes (keys' UTF-16 and ENTRY_BYTES each) past which it takes no new key, as past
 * MAX_VALUES keys: values of 50,000 characters had made a dictionary of 100 MB, and one of 4 GiB
 * (metadata within its limits) failed every checkpoint for good. It may pass this by its last key.
 */
export const MAX_DICTIONARY_BYTES = 256 * 1024;

/** What a dictionary key costs in a column's bytes. */
function entryBytes(key: string): number {
  return 2 * key.length + ENTRY_BYTES;
}

/** Whether a dictionary of `count` keys taking `bytes` (entryBytes) is full: new values go to buckets. */
function full(count: number, bytes: number, maxValues: number): boolean {
  return count >= maxValues || bytes >= MAX_DICTIONARY_BYTES;
}

/** Whether the dictionary `keys` (in code order) is full (a column restored from them hashes new values into buckets). */
export function dictionaryFull(keys: readonly string[], maxValues: number): boolean {
  let bytes = 0;
  for (const key of keys) bytes += entryBytes(key);
  return full(keys.length, bytes, maxValues);
}

/** What a record gives a column: its metadata, or UNREADABLE when its document could not be read. */
export const UNREADABLE = Symbol('unreadable');
export type MetaOf = Record<string, unknown> | undefined | typeof UNREADABLE;

/** The dictionary key of a scalar: equal keys exactly when `===` holds (-0 and 0 share "n0", as JSON stores them). */
function keyOf(v: unknown): string | undefined {
  switch (typeof v) {
    case 'string':
      return `s${v}`;
    case 'number':
      return Number.isFinite(v) ? `n${v === 0 ? 0 : v}` : undefined;
    case 'boolean':
      return v ? 't' : 'f';
    default:
      return v === null ? 'z' : undefined;
  }
}

/** The value whose key (keyOf) is `key`. */
function valueOfKey(key: string): MetaValue {
  switch (key[0]) {
    case 's':
      return key.slice(1);
    case 'n':
      return Number(key.slice(1));
    case 't':
      return true;
    case 'f':
      return false;
    default:
      return null;
  }
}

/** Whether `key` is one keyOf() gives: what a column read from disk may hold in its dictionary. */
export function isValueKey(key: string): boolean {
  switch (key[0]) {
    case 's':
      return true;
    case 'n': {
      const n = Number(key.slice(1));
      return key.length > 1 && Number.isFinite(n) && keyOf(n) === key;
    }
    case 't':
    case 'f':
    case 'z':
      return key.length === 1;
    default:
      return false;
  }
}

/**
 * Whether `keys`, in code order, can be the dictionary of a column with room `maxValues`: keys
 * keyOf() gives, each once, each added while the dictionary was not yet full.
 */
export function validDictionary(keys: readonly string[], maxValues: number, earlierWriters = false): boolean {
  let bytes = 0;
  for (let i = 0; i < keys.length; i++) {
    // Writers before MAX_DICTIONARY_BYTES stopped at MAX_VALUES keys alone (`earlierWriters`: what verify accepts).
    if (earlierWriters ? i >= maxValues : full(i, bytes, maxValues)) return false;
    bytes += entryBytes(keys[i]!);
  }
  return new Set(keys).size === keys.length && keys.every(isValueKey);
}

/** Whether a slot of a column with `keyCount` dictionary keys (`isFull`: dictionaryFull()) and room `maxValues` can hold `code`: ABSENT, UNKNOWN, a key's, or a bucket once the dictionary is full. */
export function codeFits(code: number, keyCount: number, isFull: boolean, maxValues: number): boolean {
  return code < FIRST_VALUE + keyCount || (isFull && code >= FIRST_VALUE + maxValues && code < CODES);
}

/** FNV-1a over a key's UTF-16 units: which bucket a value past the dictionary goes to. */
function hashOf(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * One field: its dictionary of values, a code per slot, how many slots hold each code below
 * its first bucket, and the verdicts of the last filter compiled against it.
 */
class Column {
  readonly dictionary = new Map<string, number>();
  keyBytes = 0;
  codes: Uint16Array;
  /** The first code of a bucket: a value past the dictionary gets firstBucket + (its hash mod the buckets). */
  readonly firstBucket: number;
  readonly counts: Uint32Array;
  /** Per code, what the last compiled filter says of it (FieldTest): every code below firstBucket, and every code once a slot holds a bucket. */
  verdicts: Uint8Array;
  /** Codes the last compile set in `verdicts`, cleared by the next. */
  private marked: number[] = [];
  /**
   * Per dictionary code, the slots holding it (its first counts[code] entries, in no order), and per
   * slot its index in its code's list: a filter on a value visits that value's slots, not the
   * column (a namespace costs its own size).
   */
  private readonly lists: (Int32Array | undefined)[] = [];
  private at: Uint32Array;
  /**
   * Read from a checkpoint with slots it could not vouch for (records changed after it was written),
   * which hold UNKNOWN until the first filter on the field reads their metadata (FilterColumns.columnOf).
   */
  unresolved = false;

  constructor(
    room: number,
    private readonly maxValues: number,
  ) {
    this.codes = new Uint16Array(Math.max(16, room));
    this.at = new Uint32Array(this.codes.length);
    this.firstBucket = FIRST_VALUE + maxValues;
    this.counts = new Uint32Array(this.firstBucket);
    this.verdicts = new Uint8Array(this.firstBucket);
  }

  private bucketOf(key: string): number {
    return this.firstBucket + (hashOf(key) % (CODES - this.firstBucket));
  }

  /** Whether `code` is a bucket's (slots of several values). */
  isBucket(code: number): boolean {
    return code >= this.firstBucket;
  }

  /** The code of `meta`'s value of `field` (a new dictionary entry while there is room). */
  codeOf(meta: MetaOf, field: string): number {
    if (meta === UNREADABLE) return UNKNOWN;
    if (meta === undefined || !Object.prototype.hasOwnProperty.call(meta, field)) return ABSENT;
    const key = keyOf(meta[field]);
    if (key === undefined) return ABSENT;
    let code = this.dictionary.get(key);
    if (code !== undefined) return code;
    if (this.full) {
      // Every code a slot holds must have a verdict: from the first bucket on, all of them do.
      this.growVerdicts();
      return this.bucketOf(key);
    }
    return this.addKey(key);
  }

  /** Adds `key` as the next dictionary code and returns it (codeOf(), and a column read from disk: its keys in code order). */
  addKey(key: string): number {
    const code = FIRST_VALUE + this.dictionary.size;
    this.dictionary.set(key, code);
    this.keyBytes += entryBytes(key);
    return code;
  }

  /** Whether the dictionary takes no new key: a value past it goes to a bucket. */
  private get full(): boolean {
    return full(this.dictionary.size, this.keyBytes, this.maxValues);
  }

  /** The code a value wanted by a filter has in this column, if any record can hold it. */
  wantedCode(v: MetaValue): number {
    const key = keyOf(v)!;
    return this.dictionary.get(key) ?? (this.full ? this.bucketOf(key) : ABSENT);
  }

  /** Whether `code` keeps a list of its slots: a value of the dictionary. */
  private listed(code: number): boolean {
    return code >= FIRST_VALUE && code < this.firstBucket;
  }

  set(slot: number, code: number): void {
    const old = this.codes[slot]!;
    if (this.listed(old)) this.unlist(slot, old);
    if (old < this.firstBucket) this.counts[old]!--;
    this.codes[slot] = code;
    if (this.listed(code)) this.list(slot, code);
    if (code < this.firstBucket) this.counts[code]!++;
  }

  /** The slot at the end is gone. */
  dropLast(last: number): void {
    const code = this.codes[last]!;
    if (this.listed(code)) this.unlist(last, code);
    if (code < this.firstBucket) this.counts[code]!--;
  }

  /** Appends `slot` to the list of `code` (before counts[code] counts it). */
  private list(slot: number, code: number): void {
    const n = this.counts[code]!;
    let l = this.lists[code];
    if (l === undefined || l.length === n) {
      const grown = new Int32Array(Math.max(4, 2 * n));
      if (l !== undefined) grown.set(l);
      this.lists[code] = l = grown;
    }
    l[n] = slot;
    this.at[slot] = n;
  }

  /** Takes `slot` out of the list of `code` (before counts[code] stops counting it): the list's last entry takes its place. */
  private unlist(slot: number, code: number): void {
    const l = this.lists[code]!;
    const i = this.at[slot]!;
    const moved = l[this.counts[code]! - 1]!;
    l[i] = moved;
    this.at[moved] = i;
  }

  /** The slots holding `code` (a dictionary code), a view valid until the next change. */
  slotsOf(code: number): Int32Array {
    return this.lists[code]?.subarray(0, this.counts[code]!) ?? new Int32Array(0);
  }

  room(slots: number): void {
    if (slots <= this.codes.length) return;
    const size = Math.max(slots, Math.ceil(this.codes.length * 1.5));
    const grown = new Uint16Array(size);
    grown.set(this.codes);
    this.codes = grown;
    const at = new Uint32Array(size);
    at.set(this.at);
    this.at = at;
  }

  /** Sets verdict `v` of `code` for the filter being compiled (the last compile's are cleared first by `clearVerdicts`). */
  mark(code: number, v: number): void {
    if (code >= this.verdicts.length) this.growVerdicts();
    this.verdicts[code] = v;
    this.marked.push(code);
  }

  growVerdicts(): void {
    if (this.verdicts.length === CODES) return;
    const grown = new Uint8Array(CODES);
    grown.set(this.verdicts);
    this.verdicts = grown;
  }

  clearVerdicts(): void {
    for (const code of this.marked) this.verdicts[code] = 0;
    this.marked = [];
  }

  /**
   * Slots holding a bucket marked for the filter being compiled, in one pass over the codes however
   * many buckets it wants (a pass per bucket made compact()'s sweep of 40,000 expiry times take seconds).
   */
  markedBucketCount(size: number): number {
    let n = 0;
    for (let slot = 0; slot < size; slot++) {
      const code = this.codes[slot]!;
      if (code >= this.firstBucket && this.verdicts[code] === 2) n++;
    }
    return n;
  }

  get bytes(): number {
    let lists = 0;
    for (const l of this.lists) lists += l === undefined ? 0 : l.byteLength + LIST_OVERHEAD;
    return this.codes.byteLength + this.at.byteLength + lists + this.counts.byteLength + this.verdicts.byteLength + this.keyBytes;
  }
}

/** One field of a filter against its column. */
interface FieldTest {
  readonly codes: Uint16Array;
  /** Per code: 0 no match, 1 a match, 2 the record's metadata decides (a bucket, or an unreadable document). */
  readonly verdicts: Uint8Array;
  /** Slots whose code is not 0 in `verdicts`. */
  readonly possible: number;
  /** Slots whose code is 1 in `verdicts`: sure matches. */
  readonly sure: number;
  /** The slots of each code with verdict 1 (views valid until the next write). */
  readonly sureSlots: readonly Int32Array[];
  /** Whether some slot has verdict 2 (a wanted bucket, or an unreadable document): only a pass over the column finds them. */
  readonly unsure: boolean;
}

/**
 * A filter compiled against the columns of its fields, valid until the next write or the next
 * compile (a search uses it within one synchronous scan). `test(slot)` is 0 (no match), 1 (a
 * match) or 2 (only the record's metadata can tell: a value hashed into a bucket it shares with
 * others, or a document that could not be read).
 */
export class FilterTest {
  constructor(
    private readonly fields: readonly FieldTest[],
    private readonly size: number,
  ) {}

  /** Whether every record matches, as the columns know for sure: the empty filter, or one every record's value meets. */
  get everything(): boolean {
    return this.fields.every((f) => f.sure === this.size);
  }

  test(slot: number): number {
    let verdict = 1;
    for (const f of this.fields) {
      const v = f.verdicts[f.codes[slot]!]!;
      if (v === 0) return 0;
      if (v === 2) verdict = 2;
    }
    return verdict;
  }

  /** An upper bound on the records that match: the fewest any one field lets through. */
  get atMost(): number {
    let n = this.size;
    for (const f of this.fields) n = Math.min(n, f.possible);
    return n;
  }

  /**
   * Every slot that may match (test() not 0), in order, written to `out`, or to a new array when
   * `out` may be too small.
   */
  collect(out: Int32Array): { slots: Int32Array; count: number } {
    // atMost counts every slot a field lets through, so it is room enough.
    const slots = out.length >= this.atMost ? out : new Int32Array(this.atMost);
    let n = 0;
    // The narrowest field's lists, when they hold all it lets through and are short beside the
    // column: a filter then costs its matches, not the store (LIST_SHARE).
    let narrowest: FieldTest | undefined;
    for (const f of this.fields) if (narrowest === undefined || f.possible < narrowest.possible) narrowest = f;
    if (narrowest !== undefined && !narrowest.unsure && narrowest.possible * LIST_SHARE <= this.size) {
      for (const list of narrowest.sureSlots) {
        for (let i = 0; i < list.length; i++) {
          const slot = list[i]!;
          if (this.fields.length === 1 || this.test(slot) !== 0) slots[n++] = slot;
        }
      }
      // Slot order, as the pass gives: the same scores reach the top in the same order.
      slots.subarray(0, n).sort();
      return { slots, count: n };
    }
    const first = this.fields[0];
    if (this.fields.length === 1 && first !== undefined) {
      const { codes, verdicts } = first;
      for (let slot = 0; slot < this.size; slot++) {
        if (verdicts[codes[slot]!] !== 0) slots[n++] = slot;
      }
    } else {
      for (let slot = 0; slot < this.size; slot++) {
        if (this.test(slot) !== 0) slots[n++] = slot;
      }
    }
    return { slots, count: n };
  }
}

/**
 * What filters test instead of each record's metadata: per field a filter has named, a column of
 * one code per slot (FILTERS.md). Columns are made on first use from the records' metadata, then
 * kept in step by the store's writes (set) and by the slot table's moves (added, removeSwap), so a
 * filter costs a typed-array lookup per record instead of a document read.
 */
export class FilterColumns {
  private readonly columns = new Map<string, Column>();
  private size = 0;
  /**
   * Columns made from the records' metadata so far: a checkpoint that persisted the columns at one
   * count has to write them again once it grew (a column it does not hold).
   */
  private madeCount = 0;

  /**
   * `maxValues`: the dictionary's room per field (tests make it small to exercise the buckets);
   * `maxColumns`: the columns kept at most (a filter naming more fields has them all while compiled).
   */
  constructor(
    private readonly maxValues = MAX_VALUES,
    private readonly maxColumns = MAX_COLUMNS,
  ) {
    if (!(Number.isInteger(maxValues) && maxValues >= 1 && maxValues < CODES / 2)) throw new RangeError(`maxValues must be an integer in [1, ${CODES / 2}), got ${maxValues}`);
    if (!(Number.isInteger(maxColumns) && maxColumns >= 1)) throw new RangeError(`maxColumns must be a positive integer, got ${maxColumns}`);
  }

  /** Fields with a column. */
  get fields(): number {
    return this.columns.size;
  }

  /** Columns made from metadata since this object was made (restored ones do not count). */
  get made(): number {
    return this.madeCount;
  }

  /** The dictionary room per field: part of a persisted column's meaning (its first bucket code). */
  get valuesPerField(): number {
    return this.maxValues;
  }

  /**
   * Every column as a checkpoint writes it, named least lately first: its field, its dictionary's
   * keys in code order, and a copy of its codes (one per slot).
   */
  exported(): { field: string; keys: string[]; codes: Uint16Array }[] {
    return [...this.columns].map(([field, c]) => ({ field, keys: [...c.dictionary.keys()], codes: c.codes.slice(0, this.size) }));
  }

  /**
   * A column read from a checkpoint: `keys` in code order and `codes`, one per slot (UNKNOWN where
   * the checkpoint could not vouch for a slot's record: its metadata is read by the first filter on
   * the field). False, changing nothing, when the parts cannot be a column this class made (a key
   * keyOf() never gives, a repeated key, more keys than the dictionary's room, a code no value has):
   * the column is then made from metadata when first named.
   */
  restore(field: string, keys: readonly string[], codes: Uint16Array): boolean {
    if (codes.length !== this.size || this.columns.has(field) || !validDictionary(keys, this.maxValues)) return false;
    const isFull = dictionaryFull(keys, this.maxValues);
    for (let slot = 0; slot < this.size; slot++) if (!codeFits(codes[slot]!, keys.length, isFull, this.maxValues)) return false;
    const column = new Column(this.size, this.maxValues);
    for (const key of keys) column.addKey(key);
    column.counts[ABSENT] = this.size;
    for (let slot = 0; slot < this.size; slot++) {
      const code = codes[slot]!;
      if (code !== ABSENT) column.set(slot, code);
    }
    // As codeOf() does once the dictionary is full: every bucket a slot may hold needs a verdict.
    if (isFull) column.growVerdicts();
    column.unresolved = column.counts[UNKNOWN]! > 0;
    this.columns.set(field, column);
    return true;
  }

  get bytes(): number {
    let n = 0;
    for (const c of this.columns.values()) n += c.bytes;
    return n;
  }

  /** A new slot at the end (size before the call): no field yet. */
  added(slot: number): void {
    if (slot !== this.size) throw new RangeError(`slot ${slot} added at ${this.size}`);
    this.size++;
    for (const c of this.columns.values()) {
      c.room(this.size);
      c.codes[slot] = ABSENT;
      c.counts[ABSENT]!++;
    }
  }

  /** The vector of slot `last` moved into `slot`, whose record is gone; the table shrank by one. */
  removeSwap(slot: number, last: number): void {
    for (const c of this.columns.values()) {
      c.set(slot, c.codes[last]!);
      c.dropLast(last);
    }
    this.size--;
  }

  /** The record in `slot` now has `meta` (undefined: none). */
  set(slot: number, meta: Record<string, unknown> | undefined): void {
    if (!(slot >= 0 && slot < this.size)) throw new RangeError(`slot ${slot} out of range`);
    for (const [field, c] of this.columns) c.set(slot, c.codeOf(meta, field));
  }

  /** Forgets every column, keeping the slots: each is made from metadata when next named. */
  dropColumns(): void {
    this.columns.clear();
  }

  /** Forgets every column and slot (the owner is being freed). */
  reset(): void {
    this.columns.clear();
    this.size = 0;
  }

  /**
   * `filter` compiled against the columns of its fields; a field without one gets it first, from
   * `metaAt(slot)` for every slot.
   */
  compile(filter: Filter, metaAt: (slot: number) => MetaOf): FilterTest {
    const fields: FieldTest[] = [];
    const named = Object.keys(filter);
    this.makeRoom(named);
    for (const field of named) {
      const column = this.columnOf(field, metaAt);
      column.clearVerdicts();
      const cond = filter[field]!;
      const wanted: readonly MetaValue[] = cond !== null && typeof cond === 'object' ? cond.$in : [cond];
      let possible = 0;
      let sure = 0;
      let unsure = column.counts[UNKNOWN]! > 0;
      let buckets = 0;
      const sureSlots: Int32Array[] = [];
      for (const v of wanted) {
        const code = column.wantedCode(v);
        if (code === ABSENT || (code < column.verdicts.length && column.verdicts[code] !== 0)) continue;
        if (!column.isBucket(code)) {
          column.mark(code, 1);
          possible += column.counts[code]!;
          sure += column.counts[code]!;
          sureSlots.push(column.slotsOf(code));
        } else {
          unsure = true;
          column.mark(code, 2);
          buckets++;
        }
      }
      if (buckets > 0) possible += column.markedBucketCount(this.size);
      column.mark(UNKNOWN, 2);
      possible += column.counts[UNKNOWN]!;
      fields.push({ codes: column.codes, verdicts: column.verdicts, possible, sure, sureSlots, unsure });
    }
    return new FilterTest(fields, this.size);
  }

  /**
   * Drops the columns named least lately, other than those of `named`, until the new ones `named`
   * needs fit under maxColumns (or only columns of `named` are left). The columns `named` has move
   * to the end of the order first: the Map's insertion order is the order of last use.
   */
  private makeRoom(named: readonly string[]): void {
    let needed = 0;
    for (const field of named) {
      const column = this.columns.get(field);
      if (column === undefined) {
        needed++;
        continue;
      }
      this.columns.delete(field);
      this.columns.set(field, column);
    }
    let excess = this.columns.size + needed - this.maxColumns;
    if (excess <= 0) return;
    const wanted = new Set(named);
    for (const field of this.columns.keys()) {
      if (excess <= 0) break;
      if (wanted.has(field)) continue;
      this.columns.delete(field);
      excess--;
    }
  }

  /**
   * The distinct scalar values of `field` that some record holds (its column made first if need be),
   * as far as the column can tell: its listed values with a record, and the slots it cannot tell
   * (a bucket, or an unreadable document), whose metadata has the rest.
   */
  valuesOf(field: string, metaAt: (slot: number) => MetaOf): { values: MetaValue[]; unsure: number[] } {
    this.makeRoom([field]);
    const column = this.columnOf(field, metaAt);
    const values: MetaValue[] = [];
    for (const [key, code] of column.dictionary) if (column.counts[code]! > 0) values.push(valueOfKey(key));
    const unsure: number[] = [];
    for (let slot = 0; slot < this.size; slot++) {
      const code = column.codes[slot]!;
      if (code === UNKNOWN || column.isBucket(code)) unsure.push(slot);
    }
    return { values, unsure };
  }

  private columnOf(field: string, metaAt: (slot: number) => MetaOf): Column {
    let column = this.columns.get(field);
    if (column !== undefined) {
      if (column.unresolved) {
        // Only the slots a checkpoint could not vouch for: their records changed after it.
        for (let slot = 0; slot < this.size; slot++) if (column.codes[slot] === UNKNOWN) column.set(slot, column.codeOf(metaAt(slot), field));
        column.unresolved = false;
      }
      return column;
    }
    column = new Column(this.size, this.maxValues);
    column.counts[ABSENT] = this.size;
    for (let slot = 0; slot < this.size; slot++) column.set(slot, column.codeOf(metaAt(slot), field));
    this.columns.set(field, column);
    this.madeCount++;
    return column;
  }
}
