/*
 * Read-only memory maps of whole files for Node (N-API), so that a store reads its full-precision
 * vectors and texts by copying from mapped page-cache pages instead of a system call per read
 * (src/arena/ARENA.md, "Reads through a memory map"). Node has no mmap in its core, and the mmap
 * packages on npm do not build for Node 20: this is the least that does the job.
 *
 *   map(fd) -> region | null        the file's bytes as of now (null when the file is empty)
 *   size(region) -> number          bytes mapped (0 once unmapped)
 *   copy(region, offset, target)    copies target.byteLength bytes from `offset` into the typed array
 *   copyCrc(region, offset, target, from, seed) -> number
 *                                   copy(), then the CRC-32C of target[from, end) continuing `seed`
 *                                   (a frame's checksum, in the same call as the copy that reads it)
 *   crcTable(bytes, from, seed)     the CRC-32C of bytes[from, end) by the tables alone, which a CPU
 *                                   with the crc32 instruction never takes: for tests to compare
 *   prefetch(region, offsets, count, bytes)
 *                                   asks the CPU to start fetching `bytes` bytes at each of the first
 *                                   `count` offsets (a Float64Array) into its caches, and returns at
 *                                   once: the copies that follow overlap their misses instead of
 *                                   waiting for each in turn. Offsets outside the map are skipped
 *   gather(region, spec, count, target, heads, sums)
 *                                   copies and checksums a batch of frames of one map in one call,
 *                                   prefetched first: each one's head to `heads`, the rest to
 *                                   `target`, its CRC-32C to `sums` (gather_frames says how)
 *   residency(region, out) -> number
 *                                   which pages of the map the kernel holds in memory now (mincore):
 *                                   out[i] 1 when page i is resident, else 0; the count of pages
 *   pageSize() -> number            the bytes of a page, as residency() counts them
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
#include <unistd.h>
#include <node_api.h>
#include "napi-helpers.h"
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define HAVE_SSE42_PATH 1
#endif

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

/*
 * CRC-32C (Castagnoli, reflected 0x82F63B78), as io/crc32c.ts computes it: the SSE 4.2 crc32
 * instruction where the CPU has it (eight bytes per instruction), else slicing-by-8 tables. A frame
 * read for rescoring is checked right after its copy, while its bytes are in the CPU's first-level
 * cache: through @node-rs/crc32 that took a second call into native code and a subarray per frame,
 * 1.2 µs of the 2.7 a 512-d frame's read cost inside a search.
 */
static uint32_t crc_table[8][256];
static int crc_hardware;

static void crc_shift_init(void);

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    crc_table[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = crc_table[0][i];
    for (int t = 1; t < 8; t++) {
      c = crc_table[0][c & 0xff] ^ (c >> 8);
      crc_table[t][i] = c;
    }
  }
  crc_shift_init();
#ifdef HAVE_SSE42_PATH
  __builtin_cpu_init();
  crc_hardware = __builtin_cpu_supports("sse4.2");
#endif
}

/* The raw (uncomplemented) register over `n` bytes, by tables. */
static uint32_t crc_soft(uint32_t c, const uint8_t *p, size_t n) {
  for (; n >= 8; n -= 8, p += 8) {
    uint32_t lo, hi;
    memcpy(&lo, p, 4);
    memcpy(&hi, p + 4, 4);
    c ^= lo;
    c = crc_table[7][c & 0xff] ^ crc_table[6][(c >> 8) & 0xff] ^ crc_table[5][(c >> 16) & 0xff] ^ crc_table[4][c >> 24] ^
        crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^ crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
  }
  for (; n > 0; n--, p++) c = crc_table[0][(c ^ *p) & 0xff] ^ (c >> 8);
  return c;
}

/*
 * The crc32 instruction takes three cycles and each step needs the one before: one chain sums a
 * 2 KiB frame in about 770 cycles, as long as copying it from memory takes. Three chains over
 * three consecutive lanes of CRC_LANE bytes run side by side, and are joined by shifting the
 * register of a lane over the CRC_LANE bytes that follow it: the register's update is linear over
 * GF(2), so the register after lanes A and B is shift(register after A) ^ (B summed from 0), and
 * shifting is four table lookups (crc_shift, made once from the byte tables).
 */
#define CRC_LANE 256
static uint32_t crc_shift[4][256];

/* The raw register `c` carried over `n` zero bytes, one byte at a time (only to make crc_shift). */
static uint32_t crc_zeros(uint32_t c, size_t n) {
  for (; n > 0; n--) c = crc_table[0][c & 0xff] ^ (c >> 8);
  return c;
}

static void crc_shift_init(void) {
  for (int k = 0; k < 4; k++)
    for (uint32_t b = 0; b < 256; b++) crc_shift[k][b] = crc_zeros(b << (8 * k), CRC_LANE);
}

static inline uint32_t crc_shift_lane(uint32_t c) {
  return crc_shift[0][c & 0xff] ^ crc_shift[1][(c >> 8) & 0xff] ^ crc_shift[2][(c >> 16) & 0xff] ^ crc_shift[3][c >> 24];
}

#ifdef HAVE_SSE42_PATH
__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t c, const uint8_t *p, size_t n) {
  uint64_t r = c;
  for (; n >= 3 * CRC_LANE; n -= 3 * CRC_LANE, p += 3 * CRC_LANE) {
    uint64_t a = r, b = 0, d = 0;
    for (size_t i = 0; i < CRC_LANE; i += 8) {
      uint64_t va, vb, vd;
      memcpy(&va, p + i, 8);
      memcpy(&vb, p + CRC_LANE + i, 8);
      memcpy(&vd, p + 2 * CRC_LANE + i, 8);
      a = _mm_crc32_u64(a, va);
      b = _mm_crc32_u64(b, vb);
      d = _mm_crc32_u64(d, vd);
    }
    r = crc_shift_lane(crc_shift_lane((uint32_t)a) ^ (uint32_t)b) ^ (uint32_t)d;
  }
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    r = _mm_crc32_u64(r, v);
  }
  uint32_t c32 = (uint32_t)r;
  for (; n > 0; n--, p++) c32 = _mm_crc32_u8(c32, *p);
  return c32;
}
#endif

/* CRC-32C of `n` bytes at `p`, continuing `seed` (the value a previous call returned, or 0). */
static uint32_t crc32c(uint32_t seed, const uint8_t *p, size_t n) {
  uint32_t c = ~seed;
#ifdef HAVE_SSE42_PATH
  if (crc_hardware) return ~crc_sse42(c, p, n);
#endif
  return ~crc_soft(c, p, n);
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

/* `value` as a typed array of type `want`: its data (never NULL) and element count; NULL, with EINVAL thrown saying `what`, otherwise. */
static void *typed_arg(napi_env env, napi_value value, napi_typedarray_type want, const char *what, size_t *elements) {
  bool typed;
  if (napi_is_typedarray(env, value, &typed) != napi_ok || !typed) return (void *)fail(env, "EINVAL", what);
  napi_typedarray_type type;
  void *data;
  if (napi_get_typedarray_info(env, value, &type, elements, &data, NULL, NULL) != napi_ok) return (void *)fail(env, "ENAPI", "napi_get_typedarray_info");
  if (type != want) return (void *)fail(env, "EINVAL", what);
  /* An empty typed array may have no data pointer; memcpy of 0 bytes from it is still asked to be valid. */
  static uint8_t none;
  return data != NULL ? data : &none;
}

/* The target of copy() or copyCrc() (argv[2]) as bytes, after the checks both make; NULL with an exception thrown. */
static uint8_t *copy_target(napi_env env, region_t *region, napi_value offset_arg, napi_value target, size_t *elements_out, size_t *offset_out) {
  double offset;
  if (napi_get_value_double(env, offset_arg, &offset) != napi_ok) return (void *)fail(env, "EINVAL", "copy(): offset must be a number");
  size_t elements;
  uint8_t *data = typed_arg(env, target, napi_uint8_array, "copy(): target must be a Uint8Array", &elements);
  if (data == NULL) return NULL;
  if (!region->mapped) return (void *)fail(env, "ECLOSED", "copy(): the region is unmapped");
  if (!(offset >= 0) || offset > (double)region->length || (double)elements > (double)region->length - offset) {
    return (void *)fail(env, "ERANGE", "copy(): the range runs past the map");
  }
  // A fractional offset would be truncated by the cast below, and copy other bytes than asked for.
  if (offset != floor(offset)) return (void *)fail(env, "EINVAL", "copy(): offset must be an integer");
  *elements_out = elements;
  *offset_out = (size_t)offset;
  return data;
}

static napi_value copy_out(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  region_t *region = region_call(env, info, 3, argv, "copy(region, offset, target)");
  if (region == NULL) return NULL;
  size_t elements, offset;
  uint8_t *data = copy_target(env, region, argv[1], argv[2], &elements, &offset);
  if (data == NULL) return NULL;
  memcpy(data, (const char *)region->addr + offset, elements);
  return NULL;
}

/* The `from` and `seed` arguments of copyCrc() and crcTable(): an index into `elements` bytes and a uint32; false with an exception thrown. */
static bool crc_args(napi_env env, const char *name, napi_value from_arg, napi_value seed_arg, size_t elements, size_t *from_out, uint32_t *seed_out) {
  double from, seed;
  if (napi_get_value_double(env, from_arg, &from) != napi_ok || napi_get_value_double(env, seed_arg, &seed) != napi_ok) {
    fail(env, "EINVAL", name);
    return false;
  }
  if (!(seed >= 0 && seed <= 4294967295.0) || seed != floor(seed)) {
    fail(env, "EINVAL", name);
    return false;
  }
  if (!(from >= 0 && from <= (double)elements) || from != floor(from)) {
    fail(env, "ERANGE", name);
    return false;
  }
  *from_out = (size_t)from;
  *seed_out = (uint32_t)seed;
  return true;
}

static napi_value copy_crc(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  region_t *region = region_call(env, info, 5, argv, "copyCrc(region, offset, target, from, seed)");
  if (region == NULL) return NULL;
  size_t elements, offset, from;
  uint32_t seed;
  uint8_t *data = copy_target(env, region, argv[1], argv[2], &elements, &offset);
  if (data == NULL || !crc_args(env, "copyCrc(): from must be an index into the target, seed a uint32", argv[3], argv[4], elements, &from, &seed)) return NULL;
  memcpy(data, (const char *)region->addr + offset, elements);
  napi_value result;
  CHECK(napi_create_uint32(env, crc32c(seed, data + from, elements - from), &result));
  return result;
}

static napi_value crc_by_table(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) return fail(env, "EINVAL", "crcTable(bytes, from, seed)");
  size_t elements;
  const uint8_t *data = typed_arg(env, argv[0], napi_uint8_array, "crcTable(): bytes must be a Uint8Array", &elements);
  if (data == NULL) return NULL;
  size_t from;
  uint32_t seed;
  if (!crc_args(env, "crcTable(): from must be an index into the bytes, seed a uint32", argv[1], argv[2], elements, &from, &seed)) return NULL;
  napi_value result;
  uint32_t crc = elements == from ? seed : ~crc_soft(~seed, (const uint8_t *)data + from, elements - from);
  CHECK(napi_create_uint32(env, crc, &result));
  return result;
}

/*
 * A rescoring search copies tens of frames from random places in a file larger than the CPU's
 * caches, and each copy waited for its own cache misses (bench/frame-reads.bench.ts: 1.3 µs a 2 KiB
 * frame against 0.4 µs for one already cached). Prefetch instructions never fault: a page not
 * mapped in yet is simply not fetched, and the copy that follows faults it in as before. Locality
 * 1 (prefetcht2: the outer caches): asked into the first-level cache, the misses of a batch of
 * frames queued behind its few fill buffers and the copies gained nothing (a C loop over random
 * 2 KiB frames of a 100 MB map here: 387 ns a frame prefetched so, 355 not, 178 by prefetcht2).
 */
static void prefetch_range(const char *from, size_t bytes) {
  for (size_t at = 0; at < bytes; at += 64) __builtin_prefetch(from + at, 0, 1);
  if (bytes > 0) __builtin_prefetch(from + bytes - 1, 0, 1);
}

static napi_value prefetch_ranges(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  region_t *region = region_call(env, info, 4, argv, "prefetch(region, offsets, count, bytes)");
  if (region == NULL) return NULL;
  size_t elements;
  const double *offsets = typed_arg(env, argv[1], napi_float64_array, "prefetch(): offsets must be a Float64Array", &elements);
  if (offsets == NULL) return NULL;
  double count, bytes;
  if (napi_get_value_double(env, argv[2], &count) != napi_ok || napi_get_value_double(env, argv[3], &bytes) != napi_ok) return fail(env, "EINVAL", "prefetch(): count and bytes must be numbers");
  if (!(count >= 0 && count <= (double)elements) || count != floor(count)) return fail(env, "ERANGE", "prefetch(): count must be an integer up to the offsets' length");
  if (!(bytes >= 0) || bytes != floor(bytes)) return fail(env, "EINVAL", "prefetch(): bytes must be a non-negative integer");
  if (!region->mapped) return NULL;
  const double length = (double)region->length;
  for (size_t i = 0; i < (size_t)count; i++) {
    const double offset = offsets[i];
    if (!(offset >= 0) || offset + bytes > length || offset != floor(offset)) continue;
    prefetch_range((const char *)region->addr + (size_t)offset, (size_t)bytes);
  }
  return NULL;
}

/*
 * A rescoring search reads its candidates' frames in batches of 16, and one call per frame (the
 * copy, its checks and the JavaScript around it, then a copy more into the scorer's linear memory)
 * cost more than the bytes did. gather() takes a batch of one map in one call: every frame is
 * prefetched first (prefetch_range(), as prefetch() does), then each one's first `head` bytes are
 * copied to its row of `heads`, the rest to its row of `target` (which may be a view of
 * WebAssembly memory, the scorer's batch) with zeros up to the row's end, and its CRC-32C is taken from `from` to its end,
 * continuing the CRC of its offset as 8 little-endian bytes continuing `prefix` (a frame's
 * checksum starts from its place: src/arena/format.ts, frameSeed). Every argument is checked
 * before a byte is copied.
 *
 *   spec: Float64Array [prefix, frame, head, from, stride, offset0, row0, offset1, row1, ...]
 */
static napi_value gather_frames(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  region_t *region = region_call(env, info, 6, argv, "gather(region, spec, count, target, heads, sums)");
  if (region == NULL) return NULL;
  size_t spec_n, target_n, heads_n, sums_n;
  const double *spec = typed_arg(env, argv[1], napi_float64_array, "gather(): spec must be a Float64Array", &spec_n);
  if (spec == NULL) return NULL;
  uint8_t *target = typed_arg(env, argv[3], napi_uint8_array, "gather(): target must be a Uint8Array", &target_n);
  if (target == NULL) return NULL;
  uint8_t *heads = typed_arg(env, argv[4], napi_uint8_array, "gather(): heads must be a Uint8Array", &heads_n);
  if (heads == NULL) return NULL;
  uint32_t *sums = typed_arg(env, argv[5], napi_uint32_array, "gather(): sums must be a Uint32Array", &sums_n);
  if (sums == NULL) return NULL;
  double count;
  if (napi_get_value_double(env, argv[2], &count) != napi_ok) return fail(env, "EINVAL", "gather(): count must be a number");
  if (!(count >= 0) || count != floor(count) || spec_n < 5 || (double)(spec_n - 5) / 2 < count) return fail(env, "ERANGE", "gather(): spec must hold 5 numbers and an offset and a row for each of count frames");
  const double prefix = spec[0], frame = spec[1], head = spec[2], from = spec[3], stride = spec[4];
  if (!(prefix >= 0 && prefix <= 4294967295.0) || prefix != floor(prefix)) return fail(env, "EINVAL", "gather(): prefix must be a uint32");
  if (!(frame >= 0) || frame != floor(frame) || !(head >= 0 && head <= frame) || head != floor(head) || !(from >= 0 && from <= frame) || from != floor(from) ||
      !(stride >= frame - head) || stride != floor(stride)) {
    return fail(env, "EINVAL", "gather(): frame, head, from and stride must be integers, head and from within the frame, stride at least its rest");
  }
  if (!region->mapped) return fail(env, "ECLOSED", "gather(): the region is unmapped");
  const size_t n = (size_t)count, frame_bytes = (size_t)frame, head_bytes = (size_t)head, rest = frame_bytes - head_bytes, row_bytes = (size_t)stride;
  const double length = (double)region->length;
  for (size_t i = 0; i < n; i++) {
    const double offset = spec[5 + 2 * i], row = spec[6 + 2 * i];
    if (!(offset >= 0) || offset != floor(offset) || offset + frame > length) return fail(env, "ERANGE", "gather(): a frame runs past the map");
    if (!(row >= 0) || row != floor(row) || row >= (double)sums_n || (row + 1) * head > (double)heads_n || (row + 1) * stride > (double)target_n) {
      return fail(env, "ERANGE", "gather(): a row lies past target, heads or sums");
    }
    prefetch_range((const char *)region->addr + (size_t)offset, frame_bytes);
  }
  for (size_t i = 0; i < n; i++) {
    const uint64_t offset = (uint64_t)spec[5 + 2 * i];
    const size_t row = (size_t)spec[6 + 2 * i];
    const uint8_t *at = (const uint8_t *)region->addr + offset;
    memcpy(heads + row * head_bytes, at, head_bytes);
    uint8_t *out = target + row * row_bytes;
    memcpy(out, at + head_bytes, rest);
    memset(out + rest, 0, row_bytes - rest);
    uint8_t place[8];
    for (int b = 0; b < 8; b++) place[b] = (uint8_t)(offset >> (8 * b));
    sums[row] = crc32c(crc32c((uint32_t)prefix, place, 8), at + (size_t)from, frame_bytes - (size_t)from);
  }
  return NULL;
}

/*
 * Which pages of a map the kernel holds in memory now, for rescoring to read a candidate at once
 * when its frame is resident and to take its error bound first when a read would wait for the disk
 * (src/search/RESCORING.md, "Reads that would wait for the disk"). mincore() straight into the
 * caller's bytes, one per page, 1 when resident; returns the count of pages.
 */
static napi_value residency_of(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  region_t *region = region_call(env, info, 2, argv, "residency(region, out)");
  if (region == NULL) return NULL;
  size_t elements;
  unsigned char *bytes = typed_arg(env, argv[1], napi_uint8_array, "residency(): out must be a Uint8Array", &elements);
  if (bytes == NULL) return NULL;
  if (!region->mapped) return fail(env, "ECLOSED", "residency(): the region is unmapped");
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  const size_t pages = (region->length + page - 1) / page;
  if (elements < pages) return fail(env, "ERANGE", "residency(): out holds fewer bytes than the map has pages");
  if (mincore(region->addr, region->length, bytes) != 0) return fail(env, errno_name(errno), strerror(errno));
  for (size_t i = 0; i < pages; i++) bytes[i] &= 1;
  napi_value result;
  CHECK(napi_create_double(env, (double)pages, &result));
  return result;
}

static napi_value page_size(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  CHECK(napi_create_double(env, (double)sysconf(_SC_PAGESIZE), &result));
  return result;
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
  crc_init();
  if (!export_function(env, exports, "map", map_file) || !export_function(env, exports, "size", size_of) || !export_function(env, exports, "copy", copy_out) ||
      !export_function(env, exports, "copyCrc", copy_crc) ||
      !export_function(env, exports, "crcTable", crc_by_table) ||
      !export_function(env, exports, "prefetch", prefetch_ranges) ||
      !export_function(env, exports, "gather", gather_frames) ||
      !export_function(env, exports, "residency", residency_of) ||
      !export_function(env, exports, "pageSize", page_size) ||
      !export_function(env, exports, "unmap", unmap_file)) {
    return NULL;
  }
  return exports;
}
