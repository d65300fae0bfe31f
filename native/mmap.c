/*
 * Read-only memory maps of whole files for Node (N-API), so that a store reads its full-precision
 * vectors and texts by copying from mapped page-cache pages instead of a system call per read
 * (src/arena/ARENA.md, "Reads through a memory map"). Node has no mmap in its core, and the mmap
 * packages on npm do not build for Node 20: this is the least that does the job.
 *
 *   map(fd) -> region | null        the file's bytes as of now (null when the file is empty)
 *   size(region) -> number          bytes mapped (0 once unmapped)
 *   copy(region, offset, target)    copies target.byteLength bytes from `offset` into the typed array
 *   unmap(region)                   unmaps at once; copy() then throws
 *
 * The mapped bytes never become a JavaScript ArrayBuffer: V8 would count a buffer the size of the
 * file as external memory and collect garbage more often for it (measured: 5 MB more anonymous
 * RSS in malloc's per-thread arenas after 1,000 searches of a 50k store). copy() checks its range
 * against the map. The map is shared and read-only: bytes the store appends later are not in it
 * (the caller maps again), and nothing can be written through it. Its length is the file's size
 * when mapped, so no page of it lies past the end of the file, where a read would raise SIGBUS;
 * the store never truncates a file it has mapped. A region nobody unmapped is unmapped when
 * collected.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <node_api.h>
#include "napi-helpers.h"

typedef struct {
  void *addr;
  size_t length;
  int mapped;
} region_t;

/* The name of an error number fstat or mmap sets, as Node names it (a `code` callers can test); EIO for any other. */
static const char *errno_name(int e) {
  switch (e) {
    case EACCES: return "EACCES";
    case EAGAIN: return "EAGAIN";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case ENFILE: return "ENFILE";
    case ENODEV: return "ENODEV";
    case ENOMEM: return "ENOMEM";
    case EOVERFLOW: return "EOVERFLOW";
    case EPERM: return "EPERM";
    default: return "EIO";
  }
}

#define CHECK(call)                                        \
  do {                                                     \
    if ((call) != napi_ok) return fail(env, "ENAPI", #call); \
  } while (0)

static void finalize_region(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  region_t *region = data;
  if (region->mapped) munmap(region->addr, region->length);
  free(region);
}

/* The `count` arguments of a call whose first is a region (into argv); NULL, with an exception thrown, when there are fewer or the first is not a region. */
static region_t *region_call(napi_env env, napi_callback_info info, size_t count, napi_value *argv, const char *usage) {
  size_t argc = count;
  void *data;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < count) {
    napi_throw_error(env, "EINVAL", usage);
    return NULL;
  }
  if (napi_get_value_external(env, argv[0], &data) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "the region must come from map()");
    return NULL;
  }
  return data;
}

static napi_value map_file(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  double number;
  /* Read as a double and checked whole: napi_get_value_int32 would truncate 1.5 to the descriptor 1. */
  if (argc < 1 || napi_get_value_double(env, argv[0], &number) != napi_ok || !(number >= 0 && number <= INT32_MAX) || number != floor(number)) {
    return fail(env, "EINVAL", "map(fd): fd must be a non-negative integer");
  }
  int fd = (int)number;
  struct stat st;
  if (fstat(fd, &st) != 0) return fail(env, errno_name(errno), strerror(errno));
  napi_value result;
  if (st.st_size <= 0) {
    CHECK(napi_get_null(env, &result));
    return result;
  }
  size_t length = (size_t)st.st_size;
  void *addr = mmap(NULL, length, PROT_READ, MAP_SHARED, fd, 0);
  if (addr == MAP_FAILED) return fail(env, errno_name(errno), strerror(errno));
  /* Reads take a few KiB here and there: reading ahead around each fault would only fill the page cache. */
  madvise(addr, length, MADV_RANDOM);
  region_t *region = malloc(sizeof *region);
  if (region == NULL) {
    munmap(addr, length);
    return fail(env, "ENOMEM", "out of memory");
  }
  region->addr = addr;
  region->length = length;
  region->mapped = 1;
  if (napi_create_external(env, region, finalize_region, NULL, &result) != napi_ok) {
    munmap(addr, length);
    free(region);
    return fail(env, "ENAPI", "napi_create_external");
  }
  return result;
}

static napi_value size_of(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  region_t *region = region_call(env, info, 1, argv, "size(region)");
  if (region == NULL) return NULL;
  napi_value result;
  CHECK(napi_create_double(env, region->mapped ? (double)region->length : 0, &result));
  return result;
}

static napi_value copy_out(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  region_t *region = region_call(env, info, 3, argv, "copy(region, offset, target)");
  if (region == NULL) return NULL;
  double offset;
  if (napi_get_value_double(env, argv[1], &offset) != napi_ok) return fail(env, "EINVAL", "copy(): offset must be a number");
  bool typed;
  CHECK(napi_is_typedarray(env, argv[2], &typed));
  if (!typed) return fail(env, "EINVAL", "copy(): target must be a typed array");
  napi_typedarray_type type;
  size_t elements;
  void *data;
  CHECK(napi_get_typedarray_info(env, argv[2], &type, &elements, &data, NULL, NULL));
  if (type != napi_uint8_array) return fail(env, "EINVAL", "copy(): target must be a Uint8Array");
  if (!region->mapped) return fail(env, "ECLOSED", "copy(): the region is unmapped");
  if (!(offset >= 0) || offset > (double)region->length || (double)elements > (double)region->length - offset) {
    return fail(env, "ERANGE", "copy(): the range runs past the map");
  }
  // A fractional offset would be truncated by the cast below, and copy other bytes than asked for.
  if (offset != floor(offset)) return fail(env, "EINVAL", "copy(): offset must be an integer");
  memcpy(data, (const char *)region->addr + (size_t)offset, elements);
  return NULL;
}

static napi_value unmap_file(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  region_t *region = region_call(env, info, 1, argv, "unmap(region)");
  if (region == NULL || !region->mapped) return NULL;
  munmap(region->addr, region->length);
  region->mapped = 0;
  return NULL;
}

NAPI_MODULE_INIT() {
  if (!export_function(env, exports, "map", map_file) || !export_function(env, exports, "size", size_of) || !export_function(env, exports, "copy", copy_out) ||
      !export_function(env, exports, "unmap", unmap_file)) {
    return NULL;
  }
  return exports;
}
