import { kernels } from './index.js';

/**
 * One block of linear memory for short kernel calls whose inputs JavaScript copies in and whose
 * outputs it reads at once (sign sketches, the distance between two queries): grown to the largest
 * asked and kept for the life of the process (a few KiB; 64 sketches of 512-d take 4 KiB). A caller
 * uses it within one synchronous step: the next may overwrite it.
 */
let scratchPtr = 0;
let scratchBytes = 0;

/**
 * The address of `bytes` of scratch (16-byte aligned); what an earlier call left there may be gone.
 * Growing it may grow linear memory, which detaches every view of it: take the views of the inputs
 * to copy in after this (inputCopied() checks one that was taken before).
 */
export function kernelScratch(bytes: number): number {
  if (bytes > scratchBytes) {
    const memory = kernels().memory;
    if (scratchBytes > 0) memory.free(scratchPtr, scratchBytes);
    scratchBytes = Math.max(bytes, 2 * scratchBytes, 4096);
    scratchPtr = memory.alloc(scratchBytes);
  }
  return scratchPtr;
}

/**
 * Throws unless `view` still has `length` elements: a view of linear memory taken before
 * kernelScratch() grew it is detached (empty), and copying it in would read nothing.
 */
export function inputCopied(view: ArrayLike<number>, length: number): void {
  if (view.length !== length) throw new RangeError('an input of a kernel call was a view of linear memory, detached when the scratch grew');
}
