/* What the addons (mmap.c, claims.c, heap.c) need of N-API beside their own work. */
#ifndef MEMSTORE_NAPI_HELPERS_H
#define MEMSTORE_NAPI_HELPERS_H

#include <node_api.h>

/* Throws an Error with `code` (callers test the code, not the text); returns NULL to return with. */
static napi_value fail(napi_env env, const char *code, const char *what) {
  napi_throw_error(env, code, what);
  return NULL;
}

/* Sets `exports[name]` to a function calling `cb`; false when N-API refused. */
static int export_function(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  return napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn) == napi_ok && napi_set_named_property(env, exports, name, fn) == napi_ok;
}

#endif
