/**
 * The framing of an Arrow IPC file or stream, checked before `apache-arrow`'s reader is given it
 * (EXPORT.md, "Reading an Arrow file"). That reader trusts its lengths: a negative metadata length
 * moves its position backwards, and a file footer's block that names anything but a record batch
 * message is sought again and again; either way it loops for good inside one call, out of reach of
 * any timeout (1 of 41 single flipped bits in a hostile pass, 3 of 300 in a fuzz). So the messages
 * are walked here first, with positioned reads of their prefixes and metadata only (bodies are
 * skipped), as the reader would walk them, and every length, kind and footer block is checked.
 */
import type { FileHandle } from 'node:fs/promises';
import { checkMessageMetadata, footerBlockOffsets } from './arrow-metadata.js';

/** The message kinds the reader acts on (Arrow's `MessageHeader`); any other it passes over without reading its body. */
export const SCHEMA = 1;
export const DICTIONARY_BATCH = 2;
export const RECORD_BATCH = 3;

const MAGIC = 'ARROW1';
/** The file's leading magic and its padding (the stream starts after it). */
const LEADING = 8;
/** The trailing footer length (int32) and magic. */
const TRAILING = 4 + MAGIC.length;
/** A file holds its magic twice and a footer length at least (the reader's own test for a file). */
const FILE_MIN = 2 * MAGIC.length + 4;

/** A message of the stream: where its prefix starts, its kind, and where its body ends. */
export interface FramedMessage {
  readonly offset: number;
  readonly kind: number;
  readonly end: number;
}

export interface ArrowFraming {
  /** The Arrow file format (magic, stream, footer) rather than a bare stream. */
  readonly file: boolean;
  /** The record batch messages the reader will read, in its order (the footer's, for a file). */
  readonly batches: readonly FramedMessage[];
}

/**
 * What decodes a message's metadata: its header kind and body length (apache-arrow's
 * `Message.decode`, given by the caller so that this module does not load the optional package).
 */
export type DecodeMessage = (metadata: Uint8Array) => { readonly headerType: number; readonly bodyLength: number | bigint };

/** Thrown for framing the reader must not be given; the caller makes it INVALID_ARGUMENT with the file's name. */
export class ArrowFramingError extends Error {}

/** `length` bytes at `at` of the file being checked. */
export type ReadAt = (at: number, length: number) => Promise<Uint8Array>;

/** ReadAt over a file open as `handle` (positioned reads). */
export function readsOf(handle: FileHandle): ReadAt {
  return async (at, length) => {
    const buffer = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await handle.read(buffer, done, length - done, at + done);
      if (bytesRead === 0) throw new ArrowFramingError(`the file ends at ${at + done} bytes inside a read of ${length} at ${at}`);
      done += bytesRead;
    }
    return buffer;
  };
}

/** ReadAt over bytes in memory (an input read whole: a pipe cannot be read at a position). */
export function readsIn(bytes: Uint8Array): ReadAt {
  return (at, length) => {
    if (at + length > bytes.length) return Promise.reject(new ArrowFramingError(`the input ends at ${bytes.length} bytes inside a read of ${length} at ${at}`));
    return Promise.resolve(bytes.subarray(at, at + length));
  };
}

/** Walks the messages of the Arrow file or stream of `size` bytes that `read` reads; throws ArrowFramingError at the first that the reader cannot be trusted with. */
export async function checkArrowFraming(read: ReadAt, size: number, decode: DecodeMessage): Promise<ArrowFraming> {
  const file = size >= FILE_MIN && new TextDecoder().decode(await read(0, MAGIC.length)) === MAGIC;
  // A file's messages end where its footer starts; a stream's at its end.
  let limit = size;
  let blocks: { dictionaries: number[]; recordBatches: number[] } | undefined;
  if (file) {
    const tail = await read(size - TRAILING, TRAILING);
    if (new TextDecoder().decode(tail.subarray(4)) !== MAGIC) throw new ArrowFramingError('the file does not end with the Arrow magic');
    const length = int32At(tail, 0);
    limit = size - TRAILING - length;
    if (!(length > 0 && limit >= LEADING)) throw new ArrowFramingError(`footer length ${length} does not fit a file of ${size} bytes`);
    const footer = await read(limit, length);
    try {
      blocks = footerBlockOffsets(footer);
    } catch (e) {
      throw new ArrowFramingError(`footer: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  const messages = await walk(read, file ? LEADING : 0, limit, decode);
  if (blocks === undefined) return { file, batches: messages.filter((m) => m.kind === RECORD_BATCH) };
  const byOffset = new Map(messages.map((m) => [m.offset, m]));
  const { dictionaries, recordBatches } = blocks;
  const named = new Set<number>();
  const check = (offsets: readonly number[], kind: number, what: string): FramedMessage[] =>
    offsets.map((offset, i) => {
      const m = byOffset.get(offset);
      if (m === undefined || m.kind !== kind) throw new ArrowFramingError(`the footer's ${what} ${i} names offset ${offset}, where no ${what} message starts`);
      if (named.has(offset)) throw new ArrowFramingError(`the footer names offset ${offset} twice`);
      named.add(offset);
      return m;
    });
  check(dictionaries, DICTIONARY_BATCH, 'dictionary batch');
  return { file, batches: check(recordBatches, RECORD_BATCH, 'record batch') };
}

/**
 * The messages from `start` to an end-of-stream marker or `limit`, as the reader reads them: an
 * int32 length, or the continuation marker -1 and then the length; 0 ends the stream; then that
 * many bytes of flatbuffer metadata, then the body its metadata says.
 */
async function walk(read: ReadAt, start: number, limit: number, decode: DecodeMessage): Promise<FramedMessage[]> {
  const messages: FramedMessage[] = [];
  let at = start;
  const int32 = async (): Promise<number | undefined> => {
    // Fewer than 4 bytes left reads as 0 to the reader: the end.
    if (at + 4 > limit) return undefined;
    const v = int32At(await read(at, 4), 0);
    at += 4;
    return v;
  };
  for (;;) {
    const offset = at;
    let length = await int32();
    if (length === -1) length = await int32();
    if (length === undefined || length === 0) return messages;
    if (!(length > 0 && at + length <= limit)) throw new ArrowFramingError(`message at ${offset}: metadata length ${length} does not fit before ${limit}`);
    let kind: number;
    let body: number;
    try {
      const metadata = await read(at, length);
      checkMessageMetadata(metadata);
      const m = decode(metadata);
      kind = m.headerType;
      body = Number(m.bodyLength);
    } catch (e) {
      throw new ArrowFramingError(`message at ${offset}: metadata is damaged (${e instanceof Error ? e.message : String(e)})`);
    }
    at += length;
    if (kind !== SCHEMA && kind !== DICTIONARY_BATCH && kind !== RECORD_BATCH) throw new ArrowFramingError(`message at ${offset}: kind ${kind} is not a schema, dictionary or record batch`);
    if (!(Number.isSafeInteger(body) && body >= 0 && at + body <= limit)) throw new ArrowFramingError(`message at ${offset}: body length ${body} does not fit before ${limit}`);
    at += body;
    messages.push({ offset, kind, end: at });
  }
}

/** The little-endian int32 at `at` of `bytes` (a view into a larger buffer, or not). */
function int32At(bytes: Uint8Array, at: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getInt32(at, true);
}
