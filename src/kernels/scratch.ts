import { kernels } from './index.js';

/**
 * One block of linear memory for short kernel calls whose inputs JavaScript copies in and whose
 * outputs it reads at once (sign sketches, the distance between two queries): grown to the largest
 * asked and kept for the life of the process (a few KiB; 64 sketches of 512-d take 4 KiB). A caller
 * uses it within one synchronous step: the next may overwrite it.
 */
let scratchPtr = 0;
let scratchBytes = 0;

/** The address of `bytes` of scratch (16-byte aligned); what an earlier call left there may be gone. */
export function kernelScratch(bytes: number): number {
  if (bytes > scratchBytes) {
    const memory = kernels().memory;
    if (scratchBytes > 0) memory.free(scratchPtr, scratchBytes);
    scratchBytes = Math.max(bytes, 2 * scratchBytes, 4096);
    scratchPtr = memory.alloc(scratchBytes);
  }
  return scratchPtr;
}
