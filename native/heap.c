/*
 * Gives the C allocator's free memory back to the system (src/idle-trim.ts). glibc keeps what a
 * thread frees in that thread's arena: V8's worker threads (compilation, concurrent marking) and
 * the main thread's freed buffers left 11 to 15 MiB free but resident in a process holding a 50k
 * store (malloc_info), more than a third of the store's own memory, and a different amount each
 * run. malloc_trim(0) returns the whole free pages of every arena (madvise), in about 1 ms there.
 *
 *   trim() -> boolean    true when memory went back to the system; false where the C library
 *                        has no malloc_trim (not glibc), which is then never called
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
