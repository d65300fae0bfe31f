/*
 * Gives the C allocator's free memory back to the system (src/idle-trim.ts). glibc keeps what a
 * thread frees in that thread's arena: V8's worker threads (compilation, concurrent marking) and
 * the main thread's freed buffers left 0.9 to 2.6 MiB free but resident beside a 50k store in the
 * memory bench's processes, 5 to 7 MiB in a process that had freed a buffer of a few MiB (which
 * raises glibc's thresholds), and a different amount each run. malloc_trim(0) returns the whole
 * free pages of every arena's free lists (madvise) and the main arena's free top, in about 1 ms there.
 *
 *   trim() -> boolean    true when memory went back to the system; false when none did, and
 *                        always where the C library has no malloc_trim (not glibc)
 *
 * malloc_trim(0) cannot reach one part of it: the free top of another thread's arena (glibc's mtrim
 * gives back the top of the main arena alone). That top is given back by the owning arena itself,
 * at a free, once it reaches M_TRIM_THRESHOLD; but glibc raises the threshold to twice the size of
 * any mmapped block freed (up to 64 MiB), so after the first buffer of a few MiB a process frees,
 * every thread keeps the high-water mark of its frees: beside a 50k store, 6.4 MB at the top of
 * the arena of the V8 thread that had optimized the search path, 13.8 MB over four threads, 79 KB
 * of it in use (bench/results/memory.md).
 *
 *   fixTrimThreshold(bytes) -> boolean   mallopt(M_TRIM_THRESHOLD, bytes): the threshold stays at
 *                        `bytes` from then on (glibc stops adjusting it and the mmap threshold, the
 *                        latter staying where it is); false where it is not glibc or mallopt refused
 */
#include <stdbool.h>
#include <stdint.h>
#include <node_api.h>
#include "napi-helpers.h"
#ifdef __GLIBC__
#include <malloc.h>
#endif

static napi_value trim(napi_env env, napi_callback_info info) {
  (void)info;
  bool released = false;
#ifdef __GLIBC__
  released = malloc_trim(0) != 0;
#endif
  napi_value result;
  return napi_get_boolean(env, released, &result) == napi_ok ? result : NULL;
}

static napi_value fix_trim_threshold(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  bool fixed = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  /* A double, not napi_get_value_int64, which reads NaN as 0 and 1.5 as 1. */
  double bytes = -1;
  if (argc < 1 || napi_get_value_double(env, argv[0], &bytes) != napi_ok || !(bytes >= 0 && bytes <= INT32_MAX) || bytes != (double)(int32_t)bytes) {
    return fail(env, "EINVAL", "fixTrimThreshold(bytes) takes a byte count from 0 to 2^31 - 1");
  }
#ifdef __GLIBC__
  fixed = mallopt(M_TRIM_THRESHOLD, (int)bytes) == 1;
#endif
  napi_value result;
  return napi_get_boolean(env, fixed, &result) == napi_ok ? result : NULL;
}

NAPI_MODULE_INIT() {
  if (!export_function(env, exports, "trim", trim)) return NULL;
  if (!export_function(env, exports, "fixTrimThreshold", fix_trim_threshold)) return NULL;
  return exports;
}
