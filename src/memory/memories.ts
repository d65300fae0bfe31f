import { createHash, randomUUID } from 'node:crypto';
import { MemstoreError } from '../errors.js';
import { checkId, checkText, isPlainObject, readGuarded } from '../input.js';
import { checkMeta, objectKind } from '../meta.js';
import type { MemoryRecord, SearchHit } from '../memstore.js';
import type { Embed, Filter, Metric, SearchOptions } from '../options.js';
import { MAX_K, checkToolOptions, resolveFilterOption } from '../options.js';
import { exactScore } from '../vector.js';
import { utf8Length } from '../text.js';
import { MAX_BATCH_BYTES } from '../limits.js';

/** Metadata keys the memory API keeps on each memory (MEMORY.md); a memory's own `meta` may not use them. */
export const NS = '$ns';
export const AT = '$at';
export const EXPIRES = '$exp';
export const HASH = '$hash';
const RESERVED_PREFIX = '$';

export const DEFAULT_NAMESPACE = 'default';
/** Longest namespace, in UTF-8 bytes. */
export const MAX_NAMESPACE_BYTES = 256;
/** Texts embedded per call of `embed`. */
export const EMBED_BATCH = 64;

export interface RememberOptions {
  /** The memory's namespace (a user, an agent, a conversation): recall, forget and dedupe stay inside it. @default 'default' */
  namespace?: string;
  /** The memory's own metadata (JSON data; keys may not start with `$`). */
  meta?: Record<string, unknown>;
  /** The memory's id (one text only): an existing memory with it is replaced. @default a new UUID, or the id of the memory it updates */
  id?: string;
  /** Milliseconds the memory lives after `at`; expired, recall never returns it and compact() deletes it. @default forever */
  ttl?: number;
  /** When the memory was made (ms since the epoch, or a Date): what `since` and `until` compare. @default now */
  at?: number | Date;
}

export interface Remembered {
  id: string;
  /** 'added': a new memory; 'updated': an identical or near-identical text of the namespace (or the given id) was replaced. */
  action: 'added' | 'updated';
}

export interface RecallOptions {
  /** @default 'default' */
  namespace?: string;
  /** Memories wanted at most. @default 10 */
  k?: number;
  /** Equality on the memories' own metadata fields, as `search` takes it. */
  filter?: Filter;
  /** Only memories scoring at least this. */
  minScore?: number;
  /** Only memories made at or after this time (ms since the epoch, or a Date). */
  since?: number | Date;
  /** Only memories made at or before this time. */
  until?: number | Date;
}

export interface MemoryHit {
  id: string;
  score: number;
  text: string;
  /** The memory's own metadata, without the memory API's `$` keys. */
  meta?: Record<string, unknown>;
  namespace: string;
  /** When it was made, ms since the epoch. */
  at: number;
  /** When it expires, ms since the epoch, if it does. */
  expiresAt?: number;
}

/** What the memory API uses of its store. */
export interface MemoryHost {
  readonly metric: Metric;
  readonly embed: Embed | undefined;
  readonly dedupe: number | false | undefined;
  readonly dim: number;
  add(records: MemoryRecord[]): Promise<void>;
  search(query: Float32Array, options: SearchOptions): Promise<SearchHit[]>;
  delete(ids: string[]): Promise<number>;
  count(): number;
  has(id: string): boolean;
  idsMatching(filter: Filter): string[];
  valuesOf(field: string): unknown[];
  /** The text of the stored record `id` (undefined: none); what reading it throws is the caller's. */
  textOf(id: string): Promise<string | undefined>;
  /**
   * Resolves once every write accepted so far is applied: a call that reads the records to decide
   * what to write (forget by namespace, remember's look for a text already there) reads them after
   * the writes called before it, which may be accepted and not yet applied (an add and a forget of
   * its namespace in one tick: the forget had missed it; found by a hostile pass). The call holds
   * its turn, so writes called after it are not among them.
   */
  settled(): Promise<void>;
}

/**
 * An error of the add of remember's records, naming what remember was given: `records[i]...` is the
 * i-th text (the records are in the texts' order), `records` all of them (add's own names had come
 * out of remember: a hostile pass).
 */
function asTextsError(e: unknown): unknown {
  if (!(e instanceof MemstoreError) || e.field === undefined) return e;
  const one = /^records\[(\d+)\]/.exec(e.field);
  const field = one !== null ? `texts[${one[1]}]` : e.field === 'records' ? 'texts' : undefined;
  if (field === undefined) return e;
  return new MemstoreError(e.code, e.message, { cause: e, field, ...(e.id === undefined ? {} : { id: e.id }) });
}

function bad(message: string, field: string): MemstoreError {
  return new MemstoreError('INVALID_ARGUMENT', message, { field });
}

/** The keys each call's options object takes: any other is INVALID_OPTION, as open() and search() refuse one. */
const REMEMBER_KEYS = ['namespace', 'meta', 'id', 'ttl', 'at'] as const;
const RECALL_KEYS = ['namespace', 'k', 'filter', 'minScore', 'since', 'until'] as const;
const FORGET_KEYS = ['namespace', 'filter'] as const;

/**
 * `options` as a call of the memory API takes it: undefined (none), or an object with only the keys
 * `allowed`. A misspelt key was ignored, and it matters most where it narrows: `forget({ namespace,
 * filters })` deleted the whole namespace (found by a hostile pass).
 */
function optionsOf<T extends object>(options: T | null | undefined, allowed: readonly string[]): Partial<T> {
  // null reads as none, as search() and open() read it.
  if (options === undefined || options === null) return {};
  // A copy, each property read once, as every call's options are read (checkToolOptions).
  return checkToolOptions(options, allowed);
}

/** INVALID_ARGUMENT for a key of `o` (a memory's meta, or a filter) that is the memory API's own. */
function refuseReserved(o: object, path: string): void {
  for (const key of Object.keys(o)) if (key.startsWith(RESERVED_PREFIX)) throw bad(`${path}.${key}: keys starting with ${RESERVED_PREFIX} are the memory API's`, `${path}.${key}`);
}

function namespaceOf(v: unknown, field: string): string {
  if (v === undefined) return DEFAULT_NAMESPACE;
  if (typeof v !== 'string' || v.length === 0) throw bad(`${field} must be a non-empty string`, field);
  checkText(v, field);
  if (utf8Length(v) > MAX_NAMESPACE_BYTES) throw bad(`${field} is longer than ${MAX_NAMESPACE_BYTES} bytes of UTF-8`, field);
  return v;
}

/**
 * Whether a record's metadata makes it a memory (MEMORY.md): a `$ns` remember would take and a finite
 * number `$at`. compact() deletes expired memories only: it had deleted every record with a numeric
 * `$exp` in the past, plain adds that recall passes over included (a hostile pass).
 */
export function isMemoryMeta(meta: Readonly<Record<string, unknown>> | undefined): boolean {
  const at = meta?.[AT];
  return meta !== undefined && isNamespace(meta[NS]) && typeof at === 'number' && Number.isFinite(at);
}

/** Whether `v` is a namespace namespaceOf() takes. */
function isNamespace(v: unknown): v is string {
  try {
    return v !== undefined && namespaceOf(v, 'namespace') === v;
  } catch {
    return false;
  }
}

/** The most ms from the epoch a Date holds, either way (ECMAScript's time range). */
const MAX_TIME = 8.64e15;

function timeOf(v: unknown, field: string): number | undefined {
  if (v === undefined) return undefined;
  const t = v instanceof Date ? v.getTime() : v;
  // A time past what a Date holds had been kept, and read back as an Invalid Date (a hostile pass).
  if (typeof t !== 'number' || !Number.isFinite(t) || Math.abs(t) > MAX_TIME) throw bad(`${field} must be a Date or a number of ms since the epoch that a Date holds (at most ±${MAX_TIME})`, field);
  return t;
}

/** Other forms of one character: typographic apostrophes and quotes, hyphens, en dashes and the minus sign. */
const SAME_CHARACTER = /[\u2018\u2019\u02bc\u201c\u201d\u2010-\u2013\u2212]/gu;
const AS_CHARACTER: Readonly<Record<string, string>> = { '\u2018': "'", '\u2019': "'", '\u02bc': "'", '\u201c': '"', '\u201d': '"', '\u2212': '-' };
/** Superscripts and subscripts, which NFKC makes plain digits ("10²" would be "102"): written ^2 and _2 first. */
const SUPERSCRIPT = /[\u00b2\u00b3\u00b9\u2070-\u207f]/gu;
const SUBSCRIPT = /[\u2080-\u209c]/gu;
/**
 * Invisible format characters (a zero-width space, a soft hyphen, a word joiner), but the zero-width
 * joiner of emoji sequences and the tag characters of flag sequences (England's, Scotland's and
 * Wales' flags differ by them alone: dropped, the three and a plain black flag had been one text).
 */
const INVISIBLE = /(?![\u200d\u{e0020}-\u{e007f}])\p{Cf}/gu;
/** The tag characters, which sameTextKey() dropped until 2026-12-06 (HAS_TAG: whether a text holds one). */
const TAGS = /[\u{e0020}-\u{e007f}]/gu;
const HAS_TAG = /[\u{e0020}-\u{e007f}]/u;
/** Punctuation between two letters that parts two words ("hello...world", "tea,coffee"); a single `.` `:` `;` does not ("user.admin", "user:admin"). */
const PARTING = /(\p{L}\p{M}*)(?:[,!?]+|[.\u2026]{2,}|\u2026)(?=\p{L})/gu;
/** Sentence punctuation ending a word, after anything ("Friday.", "500,"). */
const ENDING = /[.,;:\u2026\u3001\u3002]+$/u;
/** Closing punctuation after a letter ("yes!", "tea)", a closing quote); after a digit it is kept ("5!", "(500)", "6'"). */
const CLOSING = /(\p{L}\p{M}*)[!?)\]}"'\u00bb\u203a\u300d\u300f\u3011]+$/u;
/** Opening punctuation before a letter (a quote, a bracket, Spanish ¿ ¡); before a digit it is kept ("(500)"). */
const OPENING = /^[(\[{"'\u00ab\u2039\u00bf\u00a1\u300c\u300e\u3010]+(?=\p{L})/u;

/**
 * What makes two texts the same memory (MEMORY.md): the text with typographic forms of a character
 * made one (’ and ', − and -), superscripts and subscripts written ^2 and _2, invisible format
 * characters dropped, in NFKC form and lower case; its words (split at whitespace, and at a comma,
 * `!`, `?` or an ellipsis between two letters) without the sentence punctuation ending them and the
 * quotes, brackets, `!` and `?` around their letters, joined by one space, but none between a
 * number and the word after it ("3 pm" is "3pm", "Q3 loss" stays two words); the text itself when nothing is left. "The cat sat on the
 * mat." and "the cat  sat on the mat" are one; "3pm" and "4pm" are not, and neither are texts that
 * differ by a sign or a symbol: "2.5 mg" and "25 mg", "-500" and "500", "x < 3" and "x > 3", "C++"
 * and "C#", "$5" and "€5", "10²" and "102", "(500)" and "500", "5!" and "5" (letters and digits alone had made
 * each pair one memory, the second replacing the first: hostile passes), nor "1 23" and "12 3".
 */
export function sameTextKey(text: string): string {
  const plain = text
    .replace(SAME_CHARACTER, (c) => AS_CHARACTER[c] ?? '-')
    .replace(SUPERSCRIPT, (c) => `^${c.normalize('NFKC')}`)
    .replace(SUBSCRIPT, (c) => `_${c.normalize('NFKC')}`)
    .replace(INVISIBLE, '')
    .normalize('NFKC')
    .toLowerCase()
    .replace(PARTING, '$1 ');
  let key = '';
  let last = '';
  for (const raw of plain.split(/\s+/u)) {
    const word = raw.replace(OPENING, '').replace(ENDING, '').replace(CLOSING, '$1');
    if (word === '') continue;
    if (key !== '' && !(/^[\p{N}.,]+$/u.test(last) && /^\p{L}/u.test(word))) key += ' ';
    key += word;
    last = word;
  }
  return key === '' ? text : key;
}

/**
 * sameTextKey() as it was until 2026-12-05 (letters and digits alone), which the `$hash` of a
 * memory remembered before then was taken from: remember() finds such a memory by it, and takes it
 * for the same text only when the memory's own text has the key of today (legacyHashOf()).
 */
function legacyTextKey(text: string): string {
  const key = text.normalize('NFKC').toLowerCase().replace(/[^\p{L}\p{M}\p{N}]+/gu, '');
  return key === '' ? text : key;
}

/** SHA-256 of `key`, 128 bits of it in hex (collisions are out of reach). */
function digestOf(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex').slice(0, 32);
}

/**
 * The hash a text's memory is found by: digestOf(sameTextKey) behind a prefix no key of the rule
 * before 2026-12-05 begins with (its keys are letters, marks and digits alone, or a text without
 * any). Without it, today's key of one text ("25mg") can be that rule's key of another ("2.5 mg"),
 * and the lookup by today's hash had taken the old memory for the same text,
 * before its stored text was compared (a hostile pass).
 */
function hashOf(text: string): string {
  return digestOf(`2\u0000${sameTextKey(text)}`);
}

/** The hash a memory remembered before 2026-12-05 carries for the same text (legacyTextKey). */
function legacyHashOf(text: string): string {
  return digestOf(legacyTextKey(text));
}

/**
 * The hashes the same text's memory may carry from earlier rules of the key: that of before
 * 2026-12-05 (legacyHashOf), and, for a text holding tag characters, today's hash of the text
 * without them (the key dropped them until 2026-12-06).
 */
function olderHashesOf(text: string): string[] {
  return HAS_TAG.test(text) ? [legacyHashOf(text), hashOf(text.replace(TAGS, ''))] : [legacyHashOf(text)];
}

/**
 * The memory API over a store (MEMORY.md): texts embedded by the store's `embed`, kept as records
 * with text and metadata ($ns, $at, $exp, $hash beside the memory's own), recalled by namespace
 * with expiry and time windows applied. One `remember` runs at a time, so that two of them do not
 * both add the same text: the store calls remember() in its writes' turn (MemStore.inTurn), which
 * a call made from within the remember holding it (its embedder's) does not wait for. Memories had
 * a queue of its own beside the turn, which a close() from a remember's embedder could not let go
 * of, and a remember called after that one waited for ever (a hostile pass).
 */
export class Memories {
  constructor(private readonly host: MemoryHost) {}

  /** The near-duplicate threshold in force (off unless the store's `dedupe` option sets one). */
  get dedupe(): number | false {
    return this.host.dedupe ?? false;
  }

  /**
   * Called in the store's turn (see the class comment). A remember its embedder makes runs at once,
   * while this one waits for its embedder, before it looks for texts already remembered, which
   * then finds what the inner one added.
   */
  async remember(textOrTexts: string | readonly string[], options: RememberOptions = {}): Promise<Remembered[]> {
    const texts = typeof textOrTexts === 'string' ? [textOrTexts] : textOrTexts;
    if (!Array.isArray(texts) && typeof textOrTexts !== 'string') throw bad('remember takes a text or an array of texts', 'texts');
    // An index loop, not forEach: a hole of a sparse array is checked (and refused) too.
    for (let i = 0; i < texts.length; i++) {
      const t: unknown = texts[i];
      if (typeof t !== 'string') throw bad(`texts[${i}] must be a string`, `texts[${i}]`);
      checkText(t, `texts[${i}]`);
    }
    const o = optionsOf(options, REMEMBER_KEYS);
    const namespace = namespaceOf(o.namespace, 'namespace');
    const at = timeOf(o.at, 'at') ?? Date.now();
    let expires: number | undefined;
    if (o.ttl !== undefined) {
      if (typeof o.ttl !== 'number' || !(o.ttl > 0) || !Number.isFinite(o.ttl)) throw bad('ttl must be a positive finite number of ms', 'ttl');
      expires = at + o.ttl;
      if (!Number.isFinite(expires)) throw bad('at + ttl must be a finite number of ms', 'ttl');
      // A ttl that float64 rounding loses beside `at` (1e-300, or a day after at = 1e300) had made a
      // memory expired on arrival, which recall never returned (a hostile pass).
      if (!(expires > at)) throw bad(`ttl ${o.ttl} is lost in rounding beside at ${at}: at + ttl must come after at`, 'ttl');
    }
    // Checked (and copied) as add() checks a record's meta: a Map, Date or class instance had been
    // spread into a plain object, its content dropped or flattened, where add() refuses it.
    const own = o.meta === undefined ? undefined : checkMeta(o.meta, 'meta').meta;
    if (own !== undefined) refuseReserved(own, 'meta');
    if (o.id !== undefined) {
      checkId(o.id, 'id');
      if (texts.length !== 1) throw bad('id names one memory: remember one text with it', 'id');
    }
    if (texts.length === 0) return [];
    // The texts alone past what one add takes: refused before the embedder is called for all of them.
    let textBytes = 0;
    for (const t of texts) textBytes += utf8Length(t);
    if (textBytes > MAX_BATCH_BYTES) throw bad(`the texts hold ${textBytes} bytes, past the ${MAX_BATCH_BYTES} one call writes: remember them in several calls`, 'texts');
    const vectors = await this.embedAll(texts, (i) => `texts[${i}]`);
    await this.host.settled();
    const dedupe = this.dedupe;
    const records: MemoryRecord[] = [];
    const out: Remembered[] = [];
    // The same text twice within the call: the later replaces the earlier, as add does with one id.
    const inCall = new Map<string, string>();
    // The memories the call made or replaced so far, with the vector each then holds: a later text of
    // the call is compared with them as they will be, as if each text were remembered in a call of
    // its own (a text near a stored memory that an earlier text of the call replaced had been
    // compared with the memory's old vector, and two near texts of one call never with each other).
    const madeHere = new Map<string, Float32Array>();
    // And the hash of the text each then holds: a memory a later text of the call replaced (dedupe)
    // no longer holds the earlier one, so a repeat of that is not sent to it (it had overwritten
    // the later text: ['A', 'B', 'C', 'A'], each near the next, had left 'A' alone; a hostile pass).
    const hashHere = new Map<string, string>();
    const holds = (id: string, hash: string): boolean => (hashHere.get(id) ?? hash) === hash;
    for (const [i, text] of texts.entries()) {
      const hash = hashOf(text);
      let id: string | undefined;
      let updated = false;
      if (o.id !== undefined) {
        id = o.id;
        updated = this.host.has(id);
      } else {
        const here = inCall.get(hash);
        id = here !== undefined && holds(here, hash) ? here : this.host.idsMatching({ [NS]: namespace, [HASH]: hash }).find((m) => holds(m, hash));
        // Awaited only where a memory keyed by an earlier rule may hold the text: nothing else is.
        for (const older of olderHashesOf(text)) {
          if (id !== undefined) break;
          const before = this.host.idsMatching({ [NS]: namespace, [HASH]: older }).filter((m) => !madeHere.has(m));
          if (before.length > 0) id = await this.rememberedBefore(text, before);
        }
        updated = id !== undefined;
      }
      if (id === undefined && dedupe !== false) {
        const near = await this.nearest(vectors[i]!, namespace, madeHere);
        if (near !== undefined && near.score >= dedupe) {
          id = near.id;
          updated = true;
        }
      }
      id ??= randomUUID();
      inCall.set(hash, id);
      madeHere.set(id, vectors[i]!);
      hashHere.set(id, hash);
      const meta: Record<string, unknown> = { ...(own ?? {}), [NS]: namespace, [AT]: at, [HASH]: hash };
      if (expires !== undefined) meta[EXPIRES] = expires;
      records.push({ id, vector: vectors[i]!, text, meta });
      out.push({ id, action: updated ? 'updated' : 'added' });
    }
    try {
      await this.host.add(records);
    } catch (e) {
      throw asTextsError(e);
    }
    return out;
  }

  /**
   * Which of `candidates`, memories remembered before 2026-12-05 whose hash is that of `text` under
   * that day's key (legacyHashOf), or before 2026-12-06 under the key without tag characters, holds
   * the same text today: the one whose own text has today's key (that key had made "2.5 mg" and
   * "25 mg" one, and England's flag Wales'). Undefined when none does.
   */
  private async rememberedBefore(text: string, candidates: readonly string[]): Promise<string | undefined> {
    const key = sameTextKey(text);
    for (const id of candidates) {
      let stored: string | undefined;
      try {
        stored = await this.host.textOf(id);
      } catch {
        // A text that cannot be read is not known to be the same: the new one is added beside it.
        continue;
      }
      if (stored !== undefined && sameTextKey(stored) === key) return id;
    }
    return undefined;
  }

  /**
   * The memory of `namespace` nearest `vector` and its score: among the stored ones the call has not
   * changed (a search), and the ones it has, as `madeHere` holds them (exact scores).
   */
  private async nearest(vector: Float32Array, namespace: string, madeHere: ReadonlyMap<string, Float32Array>): Promise<{ id: string; score: number } | undefined> {
    let best: { id: string; score: number } | undefined;
    if (this.host.count() > 0) {
      // As many more as the call changed: those are scored below, as they will be.
      const hits = await this.host.search(vector, { k: Math.min(MAX_K, 1 + madeHere.size), filter: { [NS]: namespace } });
      best = hits.find((h) => !madeHere.has(h.id));
    }
    for (const [id, v] of madeHere) {
      const score = exactScore(this.host.metric, vector, v);
      if (best === undefined || score > best.score) best = { id, score };
    }
    return best;
  }

  async recall(query: string, options: RecallOptions = {}): Promise<MemoryHit[]> {
    if (typeof query !== 'string') throw bad('recall takes a text', 'query');
    checkText(query, 'query');
    const o = optionsOf(options, RECALL_KEYS);
    const namespace = namespaceOf(o.namespace, 'namespace');
    // undefined is the default, null is not (search refuses k: null too).
    const k = o.k === undefined ? 10 : o.k;
    if (!Number.isInteger(k) || k < 1) throw new MemstoreError('INVALID_OPTION', 'k must be a positive integer', { field: 'k' });
    if (o.minScore !== undefined && (typeof o.minScore !== 'number' || Number.isNaN(o.minScore))) throw new MemstoreError('INVALID_OPTION', 'minScore must be a number', { field: 'minScore' });
    const since = timeOf(o.since, 'since');
    const until = timeOf(o.until, 'until');
    const user = resolveFilterOption(o.filter) ?? {};
    refuseReserved(user, 'filter');
    const filter: Filter = { ...user, [NS]: namespace };
    const [vector] = await this.embedAll([query], () => 'query');
    const now = Date.now();
    const keep = (h: SearchHit): boolean => {
      const m = h.meta ?? {};
      const at = m[AT];
      const expires = m[EXPIRES];
      // A record a plain add gave a $at that is not a time (MEMORY.md) is not a memory: a recall had
      // returned at: 'yesterday'.
      if (typeof at !== 'number' || !Number.isFinite(at)) return false;
      return (typeof expires !== 'number' || expires > now) && (since === undefined || at >= since) && (until === undefined || at <= until) && (o.minScore === undefined || h.score >= o.minScore);
    };
    // Expiry and time windows are not filters the index can test: ask for more until k are kept or none are left.
    const total = this.host.count();
    // Never more than a search returns (MAX_K): past that, the kept ones of the namespace's nearest MAX_K are the answer.
    for (let fetch = k; ; fetch = Math.min(total, fetch * 4, MAX_K)) {
      const hits = await this.host.search(vector!, { k: fetch, filter });
      const kept = hits.filter(keep);
      const last = hits[hits.length - 1];
      const belowMin = o.minScore !== undefined && last !== undefined && last.score < o.minScore;
      if (kept.length >= k || hits.length < fetch || fetch >= total || fetch >= MAX_K || belowMin) return kept.slice(0, k).map(hitOf);
    }
  }

  async forget(what: readonly string[] | { namespace?: string; filter?: Filter }): Promise<number> {
    if (Array.isArray(what)) return this.host.delete([...(what as readonly string[])]);
    // A Set of ids (or a Map, a Date) is neither: read as `{}`, it had deleted the whole default
    // namespace (a hostile pass).
    if (!readGuarded('INVALID_OPTION', 'options', () => isPlainObject(what))) throw bad(`forget takes an array of ids or { namespace, filter }, got ${what === null ? 'null' : typeof what === 'object' ? objectKind(what) : typeof what}`, 'forget');
    const sel = optionsOf(what as { namespace?: string; filter?: Filter }, FORGET_KEYS);
    const namespace = namespaceOf(sel.namespace, 'namespace');
    const user = resolveFilterOption(sel.filter) ?? {};
    refuseReserved(user, 'filter');
    await this.host.settled();
    return this.host.delete(this.host.idsMatching({ ...user, [NS]: namespace }));
  }

  /** The namespaces that hold at least one memory (expired ones included until compact() deletes them). */
  namespaces(): string[] {
    return this.host
      .valuesOf(NS)
      // Only what remember and recall take: a plain add may have written '' or a number there.
      .filter((v): v is string => isNamespace(v))
      .sort();
  }

  /**
   * The embeddings of `texts`, checked (MEMORY.md): an error names the text whose vector is wrong by
   * `fieldOf(i)`, the caller's name for it, not the vector the store was never handed.
   */
  private async embedAll(texts: readonly string[], fieldOf: (i: number) => string): Promise<Float32Array[]> {
    const embed = this.host.embed;
    if (embed === undefined) throw new MemstoreError('INVALID_OPTION', 'the memory API needs an embedding function: MemStore.open(dir, { embed })', { field: 'embed' });
    const out: Float32Array[] = [];
    // A failure of a whole call (a throw, another count) names the one text, or all of them.
    const whole = texts.length === 1 ? fieldOf(0) : 'texts';
    for (let at = 0; at < texts.length; at += EMBED_BATCH) {
      const batch = texts.slice(at, at + EMBED_BATCH);
      let vectors: unknown;
      try {
        vectors = await embed([...batch]);
      } catch (e) {
        throw new MemstoreError('EMBED', 'the embedding function failed', { cause: e, field: whole });
      }
      // Reading what it returned runs its code too (getters, a Proxy): a throw there is the embedder's
      // failure, EMBED with its cause, as add() says of a vector that cannot be read (a hostile pass:
      // a TypeError had come out of remember() and recall()).
      const list = readGuarded('EMBED', whole, () => {
        if (!Array.isArray(vectors) || vectors.length !== batch.length) throw new MemstoreError('EMBED', `the embedding function returned ${Array.isArray(vectors) ? vectors.length : 'no array of'} vectors for ${batch.length} texts`, { field: whole });
        return vectors as unknown[];
      });
      for (let i = 0; i < batch.length; i++) {
        const field = fieldOf(at + i);
        out.push(readGuarded('EMBED', field, () => this.copyOf(list[i], at + i, field)));
      }
    }
    return out;
  }

  /** A checked copy of vector `n` the embedding function returned (an embedder may hand out views of one output buffer that its next call overwrites). */
  private copyOf(v: unknown, n: number, field: string): Float32Array {
    const length = v instanceof Float32Array || Array.isArray(v) ? v.length : undefined;
    if (length === undefined) throw new MemstoreError('EMBED', `the embedding function's vector ${n} is not a Float32Array or number[]`, { field });
    if (length !== this.host.dim) throw new MemstoreError('DIM_MISMATCH', `the embedding function's vectors have ${length} dimensions; the store holds ${this.host.dim}`, { field });
    const copy = new Float32Array(length);
    for (let j = 0; j < length; j++) {
      // An index loop: a hole of a sparse array is read (undefined) and refused too. Float32Array.from
      // made null 0, true 1 and '3' 3 (found by a hostile pass), where add() refuses all three.
      const x: unknown = (v as ArrayLike<unknown>)[j];
      if (typeof x !== 'number') throw new MemstoreError('EMBED', `the embedding function's vector ${n} holds a ${x === null ? 'null' : typeof x} at ${j}, not a number`, { field });
      if (!Number.isFinite(x) || !Number.isFinite(Math.fround(x))) throw new MemstoreError('INVALID_VECTOR', `the embedding function's vector ${n} holds ${x} at ${j}`, { field });
      copy[j] = x;
    }
    return copy;
  }
}

function hitOf(h: SearchHit): MemoryHit {
  const m = h.meta ?? {};
  const own: Record<string, unknown> = {};
  // defineProperty: a key named __proto__ is an ordinary key of stored metadata (meta.ts); assigned, it would set the prototype.
  for (const [key, value] of Object.entries(m)) if (!key.startsWith(RESERVED_PREFIX)) Object.defineProperty(own, key, { value, enumerable: true, writable: true, configurable: true });
  const hit: MemoryHit = { id: h.id, score: h.score, text: h.text ?? '', namespace: m[NS] as string, at: m[AT] as number };
  if (Object.keys(own).length > 0) hit.meta = own;
  if (typeof m[EXPIRES] === 'number') hit.expiresAt = m[EXPIRES];
  return hit;
}
