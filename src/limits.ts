/**
 * The limits on what a store accepts, checked where input enters (before anything is logged) and
 * documented in the README. Each one sits well inside the limit of every layer the input reaches,
 * so a write that was accepted can always be logged, applied, checkpointed and replayed.
 */

/**
 * Longest id, in UTF-8 bytes. Ids are keys of the checkpoint state, and LMDB refuses keys longer
 * than 4,026 bytes with the page size the store uses: 1 KiB leaves room for any change of page size
 * or key prefix, and holds any URL, path or UUID-based id a program makes.
 */
export const MAX_ID_BYTES = 1024;

/** Longest text, in UTF-8 bytes: one arena frame, and a slice of one log record. */
export const MAX_TEXT_BYTES = 16 << 20;

/**
 * Largest metadata object, as the UTF-8 bytes of its JSON. Metadata is read on the search path (by
 * filters), so it is meant for fields, not documents: those belong in the text.
 */
export const MAX_META_BYTES = 1 << 20;

/** Deepest nesting of arrays and objects inside one metadata object (the object itself is depth 1). */
export const MAX_META_DEPTH = 64;

/**
 * Largest encoded batch (one log record). Larger batches are refused with INVALID_ARGUMENT before
 * anything is logged; split them. Bounds the single buffer a group commit writes.
 */
export const MAX_BATCH_BYTES = 256 << 20;

/**
 * On 'dot' and 'l2' stores, the largest |component| a vector may have. Scores are computed in
 * float32 (kernels) and a dot product or squared distance of vectors up to this size stays finite
 * even at the largest dimension (65,536), also after PCA, whose centered projection can grow a
 * component to 2·√dim times the largest input component: 65,536 · (2 · 256 · 1e12)² < 3.4e38.
 */
export const MAX_COMPONENT = 1e12;

/**
 * On 'dot' and 'l2' stores, a vector that is not all zeros must have some |component| at least this
 * large: below it the per-vector scales of int8/fp8 codes and the products of two of them underflow
 * float32, and every score would collapse to 0. The float32 nearest 1e-12 (just below it), as
 * vectors are checked once in float32: 1e-12 itself, the limit the README gives, had been refused.
 */
export const MIN_LARGEST_COMPONENT = Math.fround(1e-12);

/**
 * f16 codes hold magnitudes up to 65,504 (and lose precision below 6.1e-5): on 'dot' and 'l2' f16
 * stores the largest |component| must lie in [F16_MIN_LARGEST, F16_MAX_COMPONENT] (divided by
 * 2·√dim with PCA, see MAX_COMPONENT), or the codes saturate and ranking is wrong. The lower one
 * is the float32 nearest 1e-4, as MIN_LARGEST_COMPONENT is 1e-12's.
 */
export const F16_MAX_COMPONENT = 65504;
export const F16_MIN_LARGEST = Math.fround(1e-4);

/**
 * Largest `dim` of a store with PCA. The fit (a covariance of dim² and its eigendecomposition, cubic
 * in dim) runs in a worker thread off the write (src/space/TRAINING.md): 3.3 s at 1,024 dimensions,
 * 24 s at 2,048, 77 s at 3,072 and 174 s at 4,096 here (436 MB at its peak), hours with gigabytes
 * past that by its cubic growth. It had been 2,048 while the fit could hold the process, as it still
 * does where no worker thread can start (README, "Status and limits").
 */
export const MAX_PCA_DIM = 4096;
