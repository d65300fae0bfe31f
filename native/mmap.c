/*
 * Read-only memory maps of whole files for Node (N-API), so that a store reads its full-precision
 * vectors by copying from mapped page-cache pages instead of a system call per vector
 * (src/arena/ARENA.md, "Reads through a memory map"). Node has no mmap in its core, and the mmap
 * packages on npm do not build for Node 20: this is the least that does the job.
 *
 *   map(fd) -> { buffer: ArrayBuffer, region } | null   the file's bytes as of now (null when empty)
 *   unmap(region, buffer)                               unmaps at once and detaches the buffer
 *
 * The map is shared and read-only: bytes the store appends later are not in it (the caller maps
 * again), and nothing can be written through it. Its length is the file's size when mapped, so no
 * page of it lies past the end of the file, where a read would raise SIGBUS; the store never
 * truncates a file it has mapped. The buffer's finalizer unmaps a region nobody unmapped.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <node_api.h>

typedef struct {
  void *addr;
  size_t length;
  int mapped;
} region_t;

static napi_value fail(napi_env env, const char *code, const char *what) {
  napi_throw_error(env, code, what);
  return NULL;
}

#define CHECK(call)                                        \
  do {                                                     \
    if ((call) != napi_ok) return fail(env, "ENAPI", #call); \
  } while (0)

static void finalize_buffer(napi_env env, void *data, void *hint) {
  (void)env;
  (void)data;
  region_t *region = hint;
  if (region->mapped) munmap(region->addr, region->length);
  free(region);
}

static napi_value map_file(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) return fail(env, "EINVAL", "map(fd): fd must be a non-negative integer");
  struct stat st;
  if (fstat(fd, &st) != 0) return fail(env, errno == EBADF ? "EBADF" : "EIO", strerror(errno));
  napi_value result;
  if (st.st_size <= 0) {
    CHECK(napi_get_null(env, &result));
    return result;
  }
  size_t length = (size_t)st.st_size;
  void *addr = mmap(NULL, length, PROT_READ, MAP_SHARED, fd, 0);
  if (addr == MAP_FAILED) return fail(env, errno == ENOMEM ? "ENOMEM" : "EIO", strerror(errno));
  /* Rescoring reads a few KiB here and there: reading ahead around each fault would only fill the page cache. */
  madvise(addr, length, MADV_RANDOM);
  region_t *region = malloc(sizeof *region);
  if (region == NULL) {
    munmap(addr, length);
    return fail(env, "ENOMEM", "out of memory");
  }
  region->addr = addr;
  region->length = length;
  region->mapped = 1;
  napi_value buffer;
  if (napi_create_external_arraybuffer(env, addr, length, finalize_buffer, region, &buffer) != napi_ok) {
    munmap(addr, length);
    free(region);
    return fail(env, "ENAPI", "napi_create_external_arraybuffer");
  }
  napi_value handle;
  CHECK(napi_create_external(env, region, NULL, NULL, &handle));
  CHECK(napi_create_object(env, &result));
  CHECK(napi_set_named_property(env, result, "buffer", buffer));
  CHECK(napi_set_named_property(env, result, "region", handle));
  return result;
}

static napi_value unmap_file(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *data;
  if (argc < 2 || napi_get_value_external(env, argv[0], &data) != napi_ok) return fail(env, "EINVAL", "unmap(region, buffer): region must come from map()");
  region_t *region = data;
  if (!region->mapped) return NULL;
  /* Detached first: no view of the buffer can reach the pages once they are gone. */
  CHECK(napi_detach_arraybuffer(env, argv[1]));
  munmap(region->addr, region->length);
  region->mapped = 0;
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "map", NAPI_AUTO_LENGTH, map_file, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "map", fn) != napi_ok) return NULL;
  if (napi_create_function(env, "unmap", NAPI_AUTO_LENGTH, unmap_file, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "unmap", fn) != napi_ok) return NULL;
  return exports;
}
