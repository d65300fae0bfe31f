/*
 * Which threads of this process hold which store directories, for the directory lock
 * (src/store/lock.ts). A lock file names a process, not a thread: a store left open in a worker
 * thread that was terminated (a worker pool retiring an idle worker) leaves a lock naming this very
 * process, alive, and the directory stayed LOCKED until the process exited. Each thread's claims
 * live here, in memory shared by every thread of the process, and go when the thread's Node
 * environment is torn down (napi_add_env_cleanup_hook: on exit and on terminate()). A lock file
 * naming this process that no live thread claims was left by a thread that is gone.
 *
 * That memory is this copy of the addon's: a second installed copy of memstore in the process (a
 * nested node_modules, a plugin with its own) loads its own, and had taken a lock held through the
 * first for one left by a thread that is gone (two writers, an acknowledged write lost: a hostile
 * pass). So the holder of a lock file also keeps it open with a write lock on its first byte taken
 * by open file description (F_OFD_SETLK): the kernel's, seen by every copy, every thread and every
 * process, and dropped when the descriptor closes (unhold(), the thread's end, the process's).
 *
 *   claim(path) -> boolean     records the calling thread's claim; false when a thread holds it
 *   release(path)              drops the calling thread's claim
 *   held(path) -> boolean      whether a thread of this process claims it
 *   hold(file) -> boolean      write-locks `file` for the calling thread; false when an open file
 *                              description of it (any copy, thread or process) holds the lock
 *   unhold(file)               drops the calling thread's lock of `file`
 *   heldElsewhere(file) -> boolean  whether any open file description holds that lock
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <node_api.h>
#include "napi-helpers.h"

/* A thread's claim on a path, or its hold of a lock file (fd: the descriptor holding the lock; -1 for a claim). */
typedef struct entry {
  char *path;
  napi_env env;
  int fd;
  struct entry *next;
} entry_t;

static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static entry_t *claims = NULL;
static entry_t *holds = NULL;

/* Frees an entry taken off its list, closing its descriptor. */
static void drop(entry_t *entry) {
  if (entry->fd >= 0) close(entry->fd);
  free(entry->path);
  free(entry);
}

static entry_t **find(const char *path) {
  entry_t **at = &claims;
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
  entry_t *entry = taken ? NULL : malloc(sizeof *entry);
  if (entry != NULL) {
    entry->path = path;
    entry->env = env;
    entry->fd = -1;
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

/* Takes the calling thread's entry for the path argument off `list` and drops it (none: nothing happens). */
static napi_value drop_own(napi_env env, napi_callback_info info, entry_t **list) {
  char *path = path_arg(env, info);
  if (path == NULL) return NULL;
  pthread_mutex_lock(&mutex);
  entry_t **at = list;
  while (*at != NULL && !((*at)->env == env && strcmp((*at)->path, path) == 0)) at = &(*at)->next;
  entry_t *gone = *at;
  if (gone != NULL) *at = gone->next;
  pthread_mutex_unlock(&mutex);
  if (gone != NULL) drop(gone);
  free(path);
  return NULL;
}

static napi_value release(napi_env env, napi_callback_info info) {
  return drop_own(env, info, &claims);
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

static napi_value unhold(napi_env env, napi_callback_info info) {
  return drop_own(env, info, &holds);
}

#ifndef F_OFD_SETLK
/* No locks by open file description here (Linux has them since 3.15): hold() says so, and lock
 * files go without them, judged by their pid as before (lock.ts). */
static napi_value hold(napi_env env, napi_callback_info info) {
  (void)info;
  return fail(env, "ENOLCK", "this system has no locks by open file description");
}

static napi_value held_elsewhere(napi_env env, napi_callback_info info) {
  (void)info;
  return fail(env, "ENOLCK", "this system has no locks by open file description");
}
#else
/* Throws an Error whose code is the name of errno's value where known (the lock maps it to IO). */
static napi_value fail_errno(napi_env env, int error, const char *what) {
  const char *code = error == ENOENT ? "ENOENT" : error == EACCES ? "EACCES" : error == EROFS ? "EROFS" : error == EMFILE ? "EMFILE" : error == ENFILE ? "ENFILE" : error == EINVAL ? "EINVAL" : error == ENOLCK ? "ENOLCK" : error == EOPNOTSUPP ? "EOPNOTSUPP" : "EIO";
  return fail(env, code, what);
}

/* The first byte of a file, for F_OFD_* with `type`. */
static struct flock first_byte(short type) {
  struct flock lock;
  memset(&lock, 0, sizeof lock);
  lock.l_type = type;
  lock.l_whence = SEEK_SET;
  lock.l_start = 0;
  lock.l_len = 1;
  return lock;
}

static napi_value hold(napi_env env, napi_callback_info info) {
  char *path = path_arg(env, info);
  if (path == NULL) return NULL;
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    int error = errno;
    free(path);
    return fail_errno(env, error, "cannot open the lock file to hold it");
  }
  struct flock lock = first_byte(F_WRLCK);
  if (fcntl(fd, F_OFD_SETLK, &lock) != 0) {
    int error = errno;
    close(fd);
    free(path);
    if (error == EAGAIN || error == EACCES) return boolean(env, false);
    return fail_errno(env, error, "cannot lock the lock file");
  }
  entry_t *entry = malloc(sizeof *entry);
  if (entry == NULL) {
    close(fd);
    free(path);
    return fail(env, "ENOMEM", "out of memory");
  }
  entry->path = path;
  entry->env = env;
  entry->fd = fd;
  pthread_mutex_lock(&mutex);
  entry->next = holds;
  holds = entry;
  pthread_mutex_unlock(&mutex);
  return boolean(env, true);
}

static napi_value held_elsewhere(napi_env env, napi_callback_info info) {
  char *path = path_arg(env, info);
  if (path == NULL) return NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  int error = errno;
  free(path);
  if (fd < 0) {
    if (error == ENOENT) return boolean(env, false);
    return fail_errno(env, error, "cannot open the lock file to test it");
  }
  struct flock lock = first_byte(F_WRLCK);
  int tested = fcntl(fd, F_OFD_GETLK, &lock);
  error = errno;
  close(fd);
  if (tested != 0) return fail_errno(env, error, "cannot test the lock file's lock");
  return boolean(env, lock.l_type != F_UNLCK);
}
#endif

/* Takes every entry of `env` off `list` and drops it (the mutex held). */
static void drop_all(entry_t **list, napi_env env) {
  entry_t **at = list;
  while (*at != NULL) {
    entry_t *entry = *at;
    if (entry->env != env) {
      at = &entry->next;
      continue;
    }
    *at = entry->next;
    drop(entry);
  }
}

/* The thread's environment is going (exit or terminate()): its claims and held locks go with it. */
static void release_all(void *arg) {
  napi_env env = arg;
  pthread_mutex_lock(&mutex);
  drop_all(&claims, env);
  drop_all(&holds, env);
  pthread_mutex_unlock(&mutex);
}

NAPI_MODULE_INIT() {
  if (napi_add_env_cleanup_hook(env, release_all, env) != napi_ok) return NULL;
  if (!export_function(env, exports, "claim", claim) || !export_function(env, exports, "release", release) || !export_function(env, exports, "held", held)) return NULL;
  if (!export_function(env, exports, "hold", hold) || !export_function(env, exports, "unhold", unhold) || !export_function(env, exports, "heldElsewhere", held_elsewhere)) return NULL;
  return exports;
}
