import { scalarSizes, type ScalarCodec } from './codec.js';
import { MemstoreError } from '../errors.js';

// One shared scratch pair for bit casts: encode runs once per inserted vector and must not allocate.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Identity codec: each dimension is its float32 bit pattern, little-endian. See CODECS.md. */
export const f32Codec: ScalarCodec = {
  name: 'f32',
  bytesPerDim: 4,
  ...scalarSizes(4),
  scaled: false,

  encode(src: Float32Array, out: Uint8Array): number {
    const n = src.length;
    if (out.length < n * 4) {
      throw new MemstoreError('INVALID_ARGUMENT', `f32 code needs ${n * 4} bytes, got ${out.length}`);
    }
    // Checked before the first write so a rejected vector leaves `out` untouched.
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(src[i]!)) throw new MemstoreError('INVALID_VECTOR', `dimension ${i} is not finite`);
    }
    // Byte by byte rather than through a Float32Array view: `out` may sit at any byte offset,
    // and shifting the bits fixes the byte order regardless of the host's.
    for (let i = 0, o = 0; i < n; i++, o += 4) {
      f32[0] = src[i]!;
      const bits = u32[0]!;
      out[o] = bits & 0xff;
      out[o + 1] = (bits >>> 8) & 0xff;
      out[o + 2] = (bits >>> 16) & 0xff;
      out[o + 3] = bits >>> 24;
    }
    return 1;
  },

  codeError(): number {
    return 0;
  },

  decode(code: Uint8Array, _scale: number, out: Float32Array): void {
    const n = out.length;
    if (code.length < n * 4) {
      throw new MemstoreError('INVALID_ARGUMENT', `f32 code of ${n} dimensions needs ${n * 4} bytes, got ${code.length}`);
    }
    for (let i = 0, o = 0; i < n; i++, o += 4) {
      u32[0] = code[o]! | (code[o + 1]! << 8) | (code[o + 2]! << 16) | (code[o + 3]! << 24);
      out[i] = f32[0]!;
    }
  },
};
