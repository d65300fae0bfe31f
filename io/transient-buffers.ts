/**
 * How large a buffer that is allocated, used and dropped may be.
 *
 * glibc's malloc serves requests of 128 KiB and more with mmap, and when such a block is freed it
 * raises its mmap threshold to the block's size and its trim threshold to twice that, for the rest
 * of the process. From then on every heap (the main one and each thread's arena, where V8's
 * compiler threads allocate) keeps up to that trim threshold of freed memory resident. A single
 * 4 MiB read buffer freed during open left about 8 MiB more anonymous RSS after 1,000 searches on a
 * 50k store (bench/results/memory.md). Buffers below this size come from the heap, are reused, and
 * never move the thresholds. A buffer of a few hundred KiB moves them little (Node raises them to
 * about 260 KiB itself while it loads modules); one of megabytes must not be freed on a path a
 * store takes at open or per search.
 */
export const TRANSIENT_BUFFER_BYTES = 96 << 10;
