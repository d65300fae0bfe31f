export {
  ALIGN,
  BYTES_PER_DIM,
  DIM_STEP,
  I8_METRICS,
  KERNEL_CODECS,
  KERNEL_METRICS,
  MAX_I8_DIM,
  RQ_BITS,
  RQ_DIM_STEP,
  RQ_MAX_PLANE_BYTES,
  RQ_MAX_QUERY_BITS,
  RQ_METRICS,
  isScaled,
  rqCodeBytes,
  rqPlaneBytes,
  type I8Metric,
  type KernelMetric,
  type RqBits,
  type RqMetric,
} from './contract.js';
export { LinearMemory } from './memory.js';
export { referenceScan, referenceScanI8, referenceScanRq, referenceSelectAtLeast, type RqQueryParams } from './reference.js';
export {
  instantiateKernels,
  kernels,
  type GatherFn,
  type GatherI8Fn,
  type GatherRqFn,
  type Kernels,
  type ScanFn,
  type ScanI8Fn,
  type ScanRqFn,
} from './wasm.js';
