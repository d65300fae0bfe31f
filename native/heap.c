/*
 * Gives the C allocator's free memory back to the system (src/idle-trim.ts). glibc keeps what a
 * thread frees in that thread's arena: V8's worker threads (compilation, concurrent marking) and
 * the main thread's freed buffers left 0.9 to 2.6 MiB free but resident beside a 50k store in the
 * memory bench's processes, 5 to 7 MiB in a process that had freed a buffer of a few MiB (which
 * raises glibc's thresholds), and a different amount each run. malloc_trim(0) returns the whole
 * free pages of every arena (madvise), in about 1 ms there.
 *
 *   trim() -> boolean    true when memory went back to the system; false when none did, and
 *                        always where the C library has no malloc_trim (not glibc)
 */
#include <stdbool.h>
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

NAPI_MODULE_INIT() {
  if (!export_function(env, exports, "trim", trim)) return NULL;
  return exports;
}
