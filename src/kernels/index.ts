export {
  ALIGN,
  BYTES_PER_DIM,
  DIM_STEP,
  I8_METRICS,
  KERNEL_CODECS,
  KERNEL_METRICS,
  MAX_I8_DIM,
  isScaled,
  type I8Metric,
  type KernelMetric,
} from './contract.js';
export { LinearMemory } from './memory.js';
export { referenceScan, referenceScanI8, referenceSelectAtLeast } from './reference.js';
export { instantiateKernels, kernels, type GatherFn, type GatherI8Fn, type Kernels, type ScanFn, type ScanI8Fn } from './wasm.js';
