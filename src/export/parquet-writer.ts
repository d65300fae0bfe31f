import type { FileHandle } from 'node:fs/promises';
import { dropOutsideParts, endOf, footerIn, MAGIC, moveRowGroup, NUM_ROWS, rowGroupRange, rowGroupsOf, SCHEMA } from './parquet-footer.js';
import { fieldOf, ThriftError, writeStruct, type ThriftStruct } from './thrift-compact.js';

/**
 * One Parquet file written a row group at a time, from whole Parquet files (what parquet-wasm's
 * `writeParquet` makes of one record batch): each part's row groups (their column chunks) are
 * appended to the file as soon as they are encoded, and only the part's footer is kept, its
 * offsets moved to where the bytes now lie (parquet-footer.ts). `finish()` writes one footer for them all. parquet-wasm's own streaming
 * writer (`transformParquetStream`, 0.8.0) held the whole encoded file in its WebAssembly memory
 * until the last batch, so an export held the store's size in memory and could not pass 4 GiB
 * (EXPORT.md).
 */
export class ParquetRowGroupWriter {
  /** Where the next part's bytes go. */
  private at = 0;
  private readonly rowGroups: ThriftStruct[] = [];
  private rows = 0n;
  /** The first part's footer: its schema, key-value metadata, writer and column orders stand for the whole file. */
  private first: ThriftStruct | undefined;
  private firstSchema: Uint8Array | undefined;

  constructor(private readonly handle: FileHandle) {}

  /** Appends the row groups of `part`, a whole Parquet file with the schema of every other part. */
  async add(part: Uint8Array): Promise<void> {
    if (part.length < 12 || Buffer.compare(part.subarray(0, 4), MAGIC) !== 0) throw new ThriftError('parquet: a part without its leading magic');
    const { footer, start } = footerIn(part, part.length);
    if (this.at === 0) await this.write(MAGIC);
    const schema = fieldOf(footer, SCHEMA);
    const schemaBytes = schema === undefined ? new Uint8Array(0) : writeStruct({ kind: 'struct', fields: [schema] });
    if (this.first === undefined) {
      this.first = footer;
      this.firstSchema = schemaBytes;
    } else if (Buffer.compare(schemaBytes, this.firstSchema!) !== 0) {
      throw new ThriftError('parquet: a part with another schema than the first');
    }
    // Each row group's column chunks, and nothing else of the part: its page indexes and bloom
    // filters go (parquet-footer.ts, dropOutsideParts()).
    for (const [i, g] of rowGroupsOf(footer).entries()) {
      const { start: from, end } = rowGroupRange(g, i, start);
      moveRowGroup(g, BigInt(this.at - from), this.rowGroups.length);
      dropOutsideParts(g);
      this.rowGroups.push(g);
      await this.write(part.subarray(from, end));
    }
    const rows = fieldOf(footer, NUM_ROWS)?.value;
    if (typeof rows === 'bigint') this.rows += rows;
  }

  /** Writes the footer of every part added, and the closing magic. At least one part must have been added. */
  async finish(): Promise<void> {
    if (this.first === undefined) throw new ThriftError('parquet: no part to write');
    await this.write(endOf(this.first, this.rowGroups, this.rows));
  }

  private async write(bytes: Uint8Array): Promise<void> {
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await this.handle.write(bytes, done, bytes.length - done, this.at + done);
      done += bytesWritten;
    }
    this.at += bytes.length;
  }
}
