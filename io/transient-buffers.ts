/**
 * How large a buffer that is allocated, used and dropped may be.
 *
 * glibc's malloc serves requests of 128 KiB and more with mmap, and when such a block is freed it
 * raises its mmap threshold to the block's size and its trim threshold to twice that, for the rest
 * of the process. From then on every heap (the main one and each thread's arena, where V8's
 * compiler threads allocate) keeps up to that trim threshold of freed memory resident. A single
 * 4 MiB read buffer freed during open left about 8 MiB more anonymous RSS after 1,000 searches on a
 * 50k store (bench/results/memory.md). Buffers below this size come from the heap, are reused, and
 * never move the thresholds.
 */
export const TRANSIENT_BUFFER_BYTES = 96 << 10;
