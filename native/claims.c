/*
 * Which threads of this process hold which store directories, for the directory lock
 * (src/store/lock.ts). A lock file names a process, not a thread: a store left open in a worker
 * thread that was terminated (a worker pool retiring an idle worker) leaves a lock naming this very
 * process, alive, and the directory stayed LOCKED until the process exited. Each thread's claims
 * live here, in memory shared by every thread of the process, and go when the thread's Node
 * environment is torn down (napi_add_env_cleanup_hook: on exit and on terminate()). A lock file
 * naming this process that no live thread claims was left by a thread that is gone.
 *
 *   claim(path) -> boolean    records the calling thread's claim; false when a thread holds it
 *   release(path)             drops the calling thread's claim
 *   held(path) -> boolean     whether a thread of this process claims it
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <node_api.h>
#include "napi-helpers.h"

typedef struct claim {
  char *path;
  napi_env env;
  struct claim *next;
} claim_t;

static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static claim_t *claims = NULL;

static claim_t **find(const char *path) {
  claim_t **at = &claims;
  while (*at != NULL && strcmp((*at)->path, path) != 0) at = &(*at)->next;
  return at;
}

/* The path argument as a C string (malloc'd; the caller frees it), or NULL with an exception thrown. */
static char *path_arg(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  size_t length;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_string_utf8(env, argv[0], NULL, 0, &length) != napi_ok) {
    fail(env, "EINVAL", "the path must be a string");
    return NULL;
  }
  char *path = malloc(length + 1);
  if (path == NULL) {
    fail(env, "ENOMEM", "out of memory");
    return NULL;
  }
  napi_get_value_string_utf8(env, argv[0], path, length + 1, &length);
  return path;
}

static napi_value boolean(napi_env env, bool value) {
  napi_value result;
  return napi_get_boolean(env, value, &result) == napi_ok ? result : NULL;
}

static napi_value claim(napi_env env, napi_callback_info info) {
  char *path = path_arg(env, info);
  if (path == NULL) return NULL;
  pthread_mutex_lock(&mutex);
  bool taken = *find(path) != NULL;
  claim_t *entry = taken ? NULL : malloc(sizeof *entry);
  if (entry != NULL) {
    entry->path = path;
    entry->env = env;
    entry->next = claims;
    claims = entry;
  }
  pthread_mutex_unlock(&mutex);
  if (taken) {
    free(path);
    return boolean(env, false);
  }
  if (entry == NULL) {
    free(path);
    return fail(env, "ENOMEM", "out of memory");
  }
  return boolean(env, true);
}

static napi_value release(napi_env env, napi_callback_info info) {
  char *path = path_arg(env, info);
  if (path == NULL) return NULL;
  pthread_mutex_lock(&mutex);
  claim_t **at = find(path);
  claim_t *gone = *at != NULL && (*at)->env == env ? *at : NULL;
  if (gone != NULL) *at = gone->next;
  pthread_mutex_unlock(&mutex);
  if (gone != NULL) {
    free(gone->path);
    free(gone);
  }
  free(path);
  return NULL;
}

static napi_value held(napi_env env, napi_callback_info info) {
  char *path = path_arg(env, info);
  if (path == NULL) return NULL;
  pthread_mutex_lock(&mutex);
  bool found = *find(path) != NULL;
  pthread_mutex_unlock(&mutex);
  free(path);
  return boolean(env, found);
}

/* The thread's environment is going (exit or terminate()): its claims go with it. */
static void release_all(void *arg) {
  napi_env env = arg;
  pthread_mutex_lock(&mutex);
  claim_t **at = &claims;
  while (*at != NULL) {
    claim_t *entry = *at;
    if (entry->env != env) {
      at = &entry->next;
      continue;
    }
    *at = entry->next;
    free(entry->path);
    free(entry);
  }
  pthread_mutex_unlock(&mutex);
}

NAPI_MODULE_INIT() {
  if (napi_add_env_cleanup_hook(env, release_all, env) != napi_ok) return NULL;
  if (!export_function(env, exports, "claim", claim) || !export_function(env, exports, "release", release) || !export_function(env, exports, "held", held)) return NULL;
  return exports;
}
