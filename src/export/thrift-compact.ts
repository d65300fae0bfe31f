/**
 * Thrift's compact protocol, read into a generic tree and written back byte for byte: what a
 * Parquet footer (FileMetaData) is encoded in. parquet-writer.ts reads the footer of each row
 * group parquet-wasm encodes, moves its offsets, and writes one footer for them all; it needs no
 * schema of the structs, only the field ids it changes, so every field it does not know (of any
 * Parquet version) is carried through as it was read.
 *
 * The grammar (Apache Thrift, "Thrift Compact protocol encoding"):
 *
 *     struct  := field* 0x00
 *     field   := header value
 *     header  := (delta << 4 | type)                 1 <= delta <= 15: id = previous id + delta
 *              | (0 << 4 | type) zigzag-varint(id)
 *     value   := by type: 1 true / 2 false (in the header's type, no bytes), 3 one byte,
 *                4/5/6 zigzag varint (i16/i32/i64), 7 eight bytes little-endian (double),
 *                8 varint(length) bytes (binary and string), 9/10 list/set, 11 map, 12 struct
 *     list    := (size << 4 | type) if size < 15, else (0xF0 | type) varint(size); then size values
 *                (a boolean element is one byte: 1 true, 2 false)
 *     map     := varint(size) [(key type << 4 | value type)]if size > 0; then size key-value pairs
 */

/** A compact-protocol type code (the low nibble of a field header or a list header). */
export type ThriftType = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10 | 11 | 12;

export const T_TRUE = 1;
export const T_FALSE = 2;
export const T_BYTE = 3;
export const T_I16 = 4;
export const T_I32 = 5;
export const T_I64 = 6;
export const T_DOUBLE = 7;
export const T_BINARY = 8;
export const T_LIST = 9;
export const T_SET = 10;
export const T_MAP = 11;
export const T_STRUCT = 12;

/** A value as read: integers as bigint (an i64 offset may pass 2^53), binaries as their bytes. */
export type ThriftValue = boolean | number | bigint | Uint8Array | ThriftStruct | ThriftList | ThriftMap;

export interface ThriftField {
  readonly id: number;
  type: ThriftType;
  value: ThriftValue;
}

export interface ThriftStruct {
  readonly kind: 'struct';
  readonly fields: ThriftField[];
}

export interface ThriftList {
  readonly kind: 'list';
  /** T_LIST or T_SET: written back as it was read. */
  readonly container: typeof T_LIST | typeof T_SET;
  readonly elementType: ThriftType;
  readonly items: ThriftValue[];
}

export interface ThriftMap {
  readonly kind: 'map';
  readonly keyType: ThriftType;
  readonly valueType: ThriftType;
  readonly entries: [ThriftValue, ThriftValue][];
}

/** Nesting past this is not a Parquet footer: refused rather than recursed into (a stack overflow). */
const MAX_DEPTH = 64;

/** Thrown on bytes that are not a well-formed compact-protocol struct. */
export class ThriftError extends Error {}

/**
 * Reads one struct from `bytes` starting at `at`; returns it and the offset after its stop byte.
 * `maxValues` bounds the values read, structs and list items included: a value takes about a
 * hundred bytes of heap, so a footer of 24 million one-byte values had run V8 out of memory (a
 * hostile pass).
 */
export function readStruct(bytes: Uint8Array, at = 0, maxValues = Infinity): { struct: ThriftStruct; end: number } {
  const reader = new Reader(bytes, at, maxValues);
  const struct = reader.struct(0);
  return { struct, end: reader.at };
}

/** The bytes of `struct`. */
export function writeStruct(struct: ThriftStruct): Uint8Array {
  const writer = new Writer();
  writer.struct(struct);
  return writer.bytes();
}

/** The field `id` of `struct`, if present. */
export function fieldOf(struct: ThriftStruct, id: number): ThriftField | undefined {
  return struct.fields.find((f) => f.id === id);
}

class Reader {
  private values = 0;

  constructor(
    private readonly bytes: Uint8Array,
    public at: number,
    private readonly maxValues: number,
  ) {}

  private count(): void {
    if (++this.values > this.maxValues) throw new ThriftError(`compact protocol: more than ${this.maxValues} values`);
  }

  private byte(): number {
    if (this.at >= this.bytes.length) throw new ThriftError(`compact protocol: ends at byte ${this.at} inside a value`);
    return this.bytes[this.at++]!;
  }

  private varint(): bigint {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      const b = this.byte();
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
    }
    throw new ThriftError(`compact protocol: a varint longer than 10 bytes at byte ${this.at}`);
  }

  private zigzag(): bigint {
    const v = this.varint();
    return (v >> 1n) ^ -(v & 1n);
  }

  private size(): number {
    const n = this.varint();
    if (n > BigInt(this.bytes.length - this.at)) throw new ThriftError(`compact protocol: a size of ${n} at byte ${this.at}, past the end`);
    return Number(n);
  }

  struct(depth: number): ThriftStruct {
    if (depth > MAX_DEPTH) throw new ThriftError('compact protocol: structs nested too deep');
    this.count();
    const fields: ThriftField[] = [];
    let last = 0;
    for (;;) {
      const header = this.byte();
      if (header === 0) return { kind: 'struct', fields };
      const type = (header & 0x0f) as ThriftType;
      const delta = header >> 4;
      const id = delta === 0 ? Number(this.zigzag()) : last + delta;
      last = id;
      this.count();
      if (type === T_TRUE || type === T_FALSE) fields.push({ id, type, value: type === T_TRUE });
      else fields.push({ id, type, value: this.value(type, depth) });
    }
  }

  private value(type: number, depth: number): ThriftValue {
    switch (type) {
      case T_TRUE:
      case T_FALSE:
        // An element of a list or map: one byte of its own.
        return this.byte() === T_TRUE;
      case T_BYTE:
        return this.byte();
      case T_I16:
      case T_I32:
      case T_I64:
        return this.zigzag();
      case T_DOUBLE: {
        if (this.at + 8 > this.bytes.length) throw new ThriftError(`compact protocol: a double past the end at byte ${this.at}`);
        const v = this.bytes.slice(this.at, this.at + 8);
        this.at += 8;
        return v;
      }
      case T_BINARY: {
        const n = this.size();
        const v = this.bytes.slice(this.at, this.at + n);
        this.at += n;
        return v;
      }
      case T_LIST:
      case T_SET: {
        const header = this.byte();
        const elementType = (header & 0x0f) as ThriftType;
        const short = header >> 4;
        const n = short === 15 ? this.size() : short;
        const items: ThriftValue[] = [];
        for (let i = 0; i < n; i++) {
          this.count();
          items.push(this.value(elementType, depth + 1));
        }
        return { kind: 'list', container: type, elementType, items };
      }
      case T_MAP: {
        const n = this.size();
        if (n === 0) return { kind: 'map', keyType: T_BINARY, valueType: T_BINARY, entries: [] };
        const types = this.byte();
        const keyType = (types >> 4) as ThriftType;
        const valueType = (types & 0x0f) as ThriftType;
        const entries: [ThriftValue, ThriftValue][] = [];
        for (let i = 0; i < n; i++) {
          this.count();
          entries.push([this.value(keyType, depth + 1), this.value(valueType, depth + 1)]);
        }
        return { kind: 'map', keyType, valueType, entries };
      }
      case T_STRUCT:
        return this.struct(depth + 1);
      default:
        throw new ThriftError(`compact protocol: unknown type ${type} at byte ${this.at - 1}`);
    }
  }
}

class Writer {
  private out = new Uint8Array(256);
  private length = 0;

  bytes(): Uint8Array {
    return this.out.slice(0, this.length);
  }

  private room(n: number): void {
    if (this.length + n <= this.out.length) return;
    const grown = new Uint8Array(Math.max(this.out.length * 2, this.length + n));
    grown.set(this.out.subarray(0, this.length));
    this.out = grown;
  }

  private byte(b: number): void {
    this.room(1);
    this.out[this.length++] = b;
  }

  private raw(v: Uint8Array): void {
    this.room(v.length);
    this.out.set(v, this.length);
    this.length += v.length;
  }

  private varint(v: bigint): void {
    let rest = BigInt.asUintN(64, v);
    while (rest >= 0x80n) {
      this.byte(Number(rest & 0x7fn) | 0x80);
      rest >>= 7n;
    }
    this.byte(Number(rest));
  }

  private zigzag(v: bigint): void {
    this.varint((v << 1n) ^ (v >> 63n));
  }

  struct(s: ThriftStruct): void {
    let last = 0;
    for (const f of s.fields) {
      const type = f.type === T_TRUE || f.type === T_FALSE ? (f.value === true ? T_TRUE : T_FALSE) : f.type;
      const delta = f.id - last;
      if (delta > 0 && delta <= 15) this.byte((delta << 4) | type);
      else {
        this.byte(type);
        this.zigzag(BigInt(f.id));
      }
      last = f.id;
      if (type !== T_TRUE && type !== T_FALSE) this.value(type, f.value);
    }
    this.byte(0);
  }

  private value(type: ThriftType, v: ThriftValue): void {
    switch (type) {
      case T_TRUE:
      case T_FALSE:
        this.byte(v === true ? T_TRUE : T_FALSE);
        return;
      case T_BYTE:
        this.byte(Number(v) & 0xff);
        return;
      case T_I16:
      case T_I32:
      case T_I64:
        this.zigzag(BigInt(v as number | bigint));
        return;
      case T_DOUBLE:
        this.raw(v as Uint8Array);
        return;
      case T_BINARY: {
        const b = v as Uint8Array;
        this.varint(BigInt(b.length));
        this.raw(b);
        return;
      }
      case T_LIST:
      case T_SET: {
        const list = v as ThriftList;
        if (list.items.length < 15) this.byte((list.items.length << 4) | list.elementType);
        else {
          this.byte(0xf0 | list.elementType);
          this.varint(BigInt(list.items.length));
        }
        for (const item of list.items) this.value(list.elementType, item);
        return;
      }
      case T_MAP: {
        const map = v as ThriftMap;
        this.varint(BigInt(map.entries.length));
        if (map.entries.length === 0) return;
        this.byte((map.keyType << 4) | map.valueType);
        for (const [key, value] of map.entries) {
          this.value(map.keyType, key);
          this.value(map.valueType, value);
        }
        return;
      }
      case T_STRUCT:
        this.struct(v as ThriftStruct);
        return;
    }
  }
}
