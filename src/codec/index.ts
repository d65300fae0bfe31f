import type { Codec, CodecName, ScalarCodec, ScalarCodecName } from './codec.js';
import { MemstoreError } from '../errors.js';
import { f32Codec } from './f32.js';
import { f16Codec } from './f16.js';
import { int8Codec } from './int8.js';
import { fp8E4M3Codec, fp8E5M2Codec } from './fp8.js';
import { rq1Codec, rq2Codec, rq4Codec } from './rq.js';

export type { Codec, CodecName, ScalarCodec, ScalarCodecName, RqCodecName } from './codec.js';
export { CODEC_NAMES, isRqCodec } from './codec.js';
export { rq1Codec, rq2Codec, rq4Codec, type RqCodec } from './rq.js';
export { f32Codec } from './f32.js';
export { f16Codec, f32BitsToF16, f16ToF32, F16_MAX } from './f16.js';
export { int8Codec, INT8_MAX_CODE } from './int8.js';
export {
  fp8E4M3Codec,
  fp8E5M2Codec,
  fp8E4M3DecodeTable,
  fp8E5M2DecodeTable,
  encodeFp8,
  encodeE4M3,
  encodeE5M2,
  FP8_E4M3_MAX,
  FP8_E5M2_MAX,
  type Fp8Format,
} from './fp8.js';

/** The codec called `name`; throws INVALID_OPTION for any other string (callers may be plain JS). */
export function getCodec(name: CodecName): Codec {
  switch (name) {
    case 'f32':
      return f32Codec;
    case 'f16':
      return f16Codec;
    case 'int8':
      return int8Codec;
    case 'fp8-e4m3':
      return fp8E4M3Codec;
    case 'fp8-e5m2':
      return fp8E5M2Codec;
    case 'rq1':
      return rq1Codec;
    case 'rq2':
      return rq2Codec;
    case 'rq4':
      return rq4Codec;
    default:
      throw new MemstoreError('INVALID_OPTION', `unknown codec ${JSON.stringify(name)}`, { field: 'codec' });
  }
}

/** The element codec called `name` (the kernels' codecs); throws INVALID_OPTION for any other string. */
export function getScalarCodec(name: ScalarCodecName): ScalarCodec {
  const codec = getCodec(name);
  if (!('bytesPerDim' in codec)) throw new MemstoreError('INVALID_OPTION', `${JSON.stringify(name)} is not an element codec`, { field: 'codec' });
  return codec as ScalarCodec;
}
