/**
 * A commit's redo record (STATE.md, "A commit cut short"). lmdb-js commits whatever a transaction's
 * callback had written when the callback stops without returning: a worker thread terminated in the
 * middle of a checkpoint had its first writes committed and the rest lost (texts moved to a new
 * arena generation under a checkpoint that still named the old one: hundreds of records CORRUPTION).
 * So a commit of more than one write first writes all of them as one value (in chunks, then a
 * header naming how many), applies them, and removes the header and the chunks. A transaction cut
 * anywhere leaves either no header (nothing applied, or everything) or a header whose writes the
 * next open applies again; each write puts or removes a whole value, so applying it twice is
 * applying it once.
 */
export type StateOp =
  | { readonly table: 'config'; readonly key: string; readonly value: StateValue }
  | { readonly table: 'docs'; readonly key: Uint8Array; readonly value: StateValue };

/**
 * A write's value: the bytes, null to remove the key, or a function that makes the bytes. A commit
 * makes each value twice (into its redo record, then for the write itself) instead of holding them
 * all: records of 1 MB metadata had held every value a checkpoint writes in memory the whole time.
 */
export type StateValue = Buffer | null | (() => Buffer);

/** The bytes of a write's value, or null for a removal. */
export function valueOf(op: StateOp): Buffer | null {
  return typeof op.value === 'function' ? op.value() : op.value;
}

/** The `config` key of the header, `{ chunks }`: present only while a commit's writes may be half applied. */
export const INTENT_KEY = 'intent';

/** What the `config` key of each chunk of a commit's writes starts with. */
export const INTENT_CHUNK_PREFIX = 'intent.';

/** The `config` key of the i-th chunk of a commit's writes. */
export function intentChunkKey(i: number): string {
  return `${INTENT_CHUNK_PREFIX}${i}`;
}

/** A chunk holds writes of about this many bytes: one value of LMDB, in memory whole when read back. */
export const INTENT_CHUNK_BYTES = 1 << 20;

const REMOVED = 0xffffffff;
const utf8 = new TextEncoder();
// ignoreBOM keeps a leading U+FEFF, as the state's own decoder does.
const fromUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * The chunk payloads of `ops`, one at a time, each value made once (STATE.md, "A commit cut short"):
 *
 *     chunk := op*
 *     op    := table u8 (0 config, 1 docs) | key length u32 | key | value length u32 (0xffffffff: removed) | value
 *
 * A byte layout of its own, not msgpack: packing a checkpoint's writes took a fifth of its time.
 */
export function* encodeChunks(ops: readonly StateOp[]): IterableIterator<Buffer> {
  let parts: Buffer[] = [];
  let bytes = 0;
  for (const op of ops) {
    const key = op.table === 'config' ? utf8.encode(op.key) : op.key;
    const value = valueOf(op);
    const head = Buffer.allocUnsafe(5 + key.length + 4);
    head[0] = op.table === 'config' ? 0 : 1;
    head.writeUInt32LE(key.length, 1);
    head.set(key, 5);
    head.writeUInt32LE(value === null ? REMOVED : value.length, 5 + key.length);
    parts.push(head);
    if (value !== null) parts.push(value);
    bytes += 9 + key.length + (value?.length ?? 0);
    if (bytes >= INTENT_CHUNK_BYTES) {
      yield Buffer.concat(parts, bytes);
      parts = [];
      bytes = 0;
    }
  }
  if (parts.length > 0) yield Buffer.concat(parts, bytes);
}

/** Every chunk payload of `ops`, in order (tests and the test seam's count; a commit encodes one chunk at a time). */
export function intentChunks(ops: readonly StateOp[]): Buffer[] {
  return [...encodeChunks(ops)];
}

/** The writes of chunk payloads made by intentChunks(), in order (copies); throws an Error naming what is malformed. */
export function opsOfChunks(payloads: readonly Uint8Array[]): StateOp[] {
  const ops: StateOp[] = [];
  for (const payload of payloads) {
    const chunk = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    let at = 0;
    const take = (n: number): Buffer => {
      if (n > chunk.length - at) throw new Error(`a write runs past its chunk's ${chunk.length} bytes`);
      const out = Buffer.from(chunk.subarray(at, at + n));
      at += n;
      return out;
    };
    while (at < chunk.length) {
      const table = chunk[at];
      if (table !== 0 && table !== 1) throw new Error(`a write names table ${table}`);
      at++;
      const key = take(take(4).readUInt32LE(0));
      const length = take(4).readUInt32LE(0);
      const value = length === REMOVED ? null : take(length);
      if (table === 0) ops.push({ table: 'config', key: fromUtf8.decode(key), value });
      else ops.push({ table: 'docs', key: new Uint8Array(key.buffer, key.byteOffset, key.byteLength), value });
    }
  }
  return ops;
}

/** What a reader sees of one table's key through a layer: a value, removed (null), or not in the layer (undefined). */
export type LayerValue = Buffer | null | undefined;

/**
 * Writes not (or not all) in LMDB, read over it: the writes of a commit being prepared, and those
 * of a header an open found (a reader sees the state that commit decided, before it is applied).
 */
export class StateLayer {
  private readonly config = new Map<string, StateValue>();
  /** Keyed by the key's bytes as latin1, one character per byte. */
  private readonly docs = new Map<string, StateValue>();

  constructor(ops: readonly StateOp[] = []) {
    for (const op of ops) this.set(op);
  }

  set(op: StateOp): void {
    if (op.table === 'config') this.config.set(op.key, op.value);
    else this.docs.set(Buffer.from(op.key).toString('latin1'), op.value);
  }

  configValue(key: string): LayerValue {
    return made(this.config.get(key));
  }

  docValue(key: Uint8Array): LayerValue {
    return this.docs.size === 0 ? undefined : made(this.docs.get(Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1')));
  }

  get hasDocs(): boolean {
    return this.docs.size > 0;
  }

  /** The layer's `docs` writes, in LMDB's key order (bytewise). */
  sortedDocs(): [Uint8Array, Buffer | null][] {
    return [...this.docs].map(([k, v]): [Uint8Array, Buffer | null] => [Buffer.from(k, 'latin1'), made(v) ?? null]).sort((a, b) => Buffer.compare(a[0], b[0]));
  }
}

function made(v: StateValue | undefined): LayerValue {
  return typeof v === 'function' ? v() : v;
}
