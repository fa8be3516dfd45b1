/*
 * libFuzzer target: .npy files from arbitrary bytes.
 *
 * Each input is a whole file. It goes to tb_npy_parse_header and to the
 * library's internal loader over memory, tb__npy_from_bytes (what
 * tb_npy_load runs over its mapping), on a copy of exactly the input's size,
 * so that AddressSanitizer reports any read past the end of the "file".
 * Properties checked on every input:
 *   - a successful call leaves tb_last_error() untouched (a sentinel message
 *     is planted before each call), a failing one sets its own;
 *   - an accepted header is sane: version 1.0/2.0/3.0, data_offset within
 *     the input and a multiple of the element size, ndim <= TB_MAX_NDIM,
 *     extents >= 0 (unused ones 0), data_nbytes the shape's byte size and
 *     that size, with each 0 extent read as 1, within int64 (computed here
 *     with 128-bit arithmetic);
 *   - the header depends on its own bytes only: the first data_offset bytes
 *     alone parse to the same result, one byte fewer does not parse;
 *   - the loader accepts exactly the inputs whose header parses and whose
 *     data fits; its tensor is the header's (dtype, shape, C or F strides),
 *     read-only, over the input's bytes at data_offset (zero copy), and a
 *     copy of it reads every element; the deleter runs once, at the last
 *     release, and never on a refusal;
 *   - what tb_npy_save would write for the tensor (tb__npy_format_header)
 *     parses back to the same dtype and shape, in C order, 64-aligned; and
 *     when the data is small, a real save to a temporary file and a load of
 *     it give the same elements.
 *
 * With -DTB_FUZZ_REPLAY a main() runs every file of the directories (or
 * files) named on the command line through the same entry point (meson test
 * fuzz_corpus_npy over fuzz/corpus_npy).
 *
 * libFuzzer:
 *   CC=clang meson setup build-fuzz -Dfuzz=true -Db_lundef=false
 *   ninja -C build-fuzz fuzz/fuzz_npy
 *   cp -r fuzz/corpus_npy /tmp/corpus_npy
 *   build-fuzz/fuzz/fuzz_npy -max_total_time=60 /tmp/corpus_npy
 *
 * The seeds in fuzz/corpus_npy are small files written by hand (see
 * tests/test_npy.c for the bytes numpy.save writes): valid ones of several
 * dtypes, versions and orders, and broken ones named after their fault.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, posix_memalign */

#include <tensorbridge/tensorbridge.h>
#include <tensorbridge/backend.h>

#include "io/npy_internal.h" /* tb__npy_from_bytes, tb__npy_format_header */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__extension__ typedef __int128 wide;

#include "replay.h"

#define TB_FUZZ_NAME "fuzz_npy"
#include "fuzz_common.h"

/* The status of the last input, for the replay's listing. */
static tb_status g_status;

/* A folder for the save round trip, made once. */
static char g_dir[64];
static char g_path[96];

static void remove_temp(void) {
  if (g_path[0] != '\0') (void)unlink(g_path);
  if (g_dir[0] != '\0') (void)rmdir(g_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  char tmpl[] = "/tmp/tb-fuzz-npy-XXXXXX";
  if (mkdtemp(tmpl) != NULL) {
    memcpy(g_dir, tmpl, sizeof tmpl);
    snprintf(g_path, sizeof g_path, "%s/t.npy", g_dir);
    atexit(remove_temp);
  }
  return 0;
}

static void count_call(void *data, void *ctx) {
  (void)data;
  (*(int *)ctx)++;
}

/* Copies bytes into a fresh allocation of exactly n bytes (ASan poisons
 * what lies beyond), 64-aligned as a mapping would be. */
static unsigned char *exact_copy(const uint8_t *bytes, size_t n) {
  void *p = NULL;
  CHECK(posix_memalign(&p, 64, n > 0 ? n : 1) == 0, "allocation");
  if (n > 0) memcpy(p, bytes, n);
  return p;
}

static void check_header(const tb_npy_header *h, size_t size) {
  CHECK(h->version[1] == 0 && h->version[0] >= 1 && h->version[0] <= 3, "version");
  CHECK(h->data_offset <= size, "data_offset within the input");
  CHECK(h->data_offset >= (h->version[0] == 1 ? 10u : 12u), "data_offset past the prefix");
  const size_t itemsize = tb_dtype_itemsize(h->dtype);
  CHECK(itemsize > 0 && tb_dtype_name(h->dtype) != NULL, "a byte-sized dtype");
  CHECK(h->data_offset % itemsize == 0, "aligned data");
  CHECK(h->ndim >= 0 && h->ndim <= TB_MAX_NDIM, "ndim");
  wide numel = 1, reach = (wide)itemsize;
  for (int d = 0; d < TB_MAX_NDIM; d++) {
    if (d >= h->ndim) {
      CHECK(h->shape[d] == 0, "unused extents are 0");
      continue;
    }
    CHECK(h->shape[d] >= 0, "extents >= 0");
    numel *= h->shape[d];
    reach *= h->shape[d] == 0 ? 1 : h->shape[d];
    CHECK(reach <= INT64_MAX, "the reach fits int64");
  }
  CHECK((wide)h->data_nbytes == numel * (wide)itemsize, "data_nbytes");
  CHECK((wide)h->data_offset + (wide)h->data_nbytes <= INT64_MAX, "the file's extent fits int64");
}

static bool same_header(const tb_npy_header *a, const tb_npy_header *b) {
  return tb_dtype_equal(a->dtype, b->dtype) && a->ndim == b->ndim &&
         memcmp(a->shape, b->shape, sizeof a->shape) == 0 && a->fortran_order == b->fortran_order &&
         a->version[0] == b->version[0] && a->version[1] == b->version[1] &&
         a->data_offset == b->data_offset && a->data_nbytes == b->data_nbytes;
}

/* The header of the first n bytes, on its own allocation. */
static tb_status parse_prefix(const uint8_t *bytes, size_t n, tb_npy_header *h) {
  unsigned char *p = exact_copy(bytes, n);
  tb_status st;
  CALL(st, tb_npy_parse_header(n > 0 ? p : NULL, n, h));
  free(p);
  return st;
}

/* What a save of the tensor would write parses back to it, in C order. */
static void check_writer(const tb_npy_header *h) {
  char buf[TB__NPY_HEADER_CAPACITY];
  size_t len = 0;
  tb_status st;
  CALL(st, tb__npy_format_header("fuzz", h->dtype, h->ndim, h->shape, buf, &len));
  CHECK(st == TB_OK, "every loadable dtype has a descr");
  CHECK(len % 64 == 0 && len <= sizeof buf, "a 64-aligned header");
  tb_npy_header back;
  CALL(st, tb_npy_parse_header(buf, len, &back));
  CHECK(st == TB_OK, "the writer's header parses");
  CHECK(back.data_offset == len && !back.fortran_order, "C order after the header");
  CHECK(back.version[0] == 1, "format 1.0");
  CHECK(tb_dtype_equal(back.dtype, h->dtype) && back.ndim == h->ndim &&
            memcmp(back.shape, h->shape, sizeof back.shape) == 0,
        "the same dtype and shape");
}

/* A real save and load of small tensors: C-order bytes equal the source's. */
static void check_save(const tb_tensor_t *t) {
  if (g_path[0] == '\0' || tb_tensor_nbytes(t) > 4096) return;
  tb_status st;
  CALL(st, tb_npy_save(g_path, t));
  CHECK(st == TB_OK, "a loaded tensor saves");
  tb_tensor_t *back = NULL, *a = NULL, *b = NULL;
  CALL(st, tb_npy_load(g_path, TB_MAP_READ, &back));
  CHECK(st == TB_OK, "a saved file loads");
  CHECK(tb_tensor_is_contiguous(back, TB_ORDER_C), "saved in C order");
  CALL(st, tb_tensor_copy(t, NULL, TB_ORDER_C, 0, &a));
  CHECK(st == TB_OK, "copy");
  CALL(st, tb_tensor_copy(back, NULL, TB_ORDER_C, 0, &b));
  CHECK(st == TB_OK, "copy");
  CHECK(tb_tensor_nbytes(a) == tb_tensor_nbytes(b), "same size");
  if (tb_tensor_nbytes(a) > 0) {
    CHECK(memcmp(tb_tensor_data(a), tb_tensor_data(b), (size_t)tb_tensor_nbytes(a)) == 0,
          "same elements");
  }
  tb_tensor_release(b);
  tb_tensor_release(a);
  tb_tensor_release(back);
}

static void check_tensor(const tb_tensor_t *t, const tb_npy_header *h, const unsigned char *file) {
  CHECK(tb_dtype_equal(tb_tensor_dtype(t), h->dtype), "dtype");
  CHECK(tb_tensor_ndim(t) == h->ndim, "ndim");
  CHECK(tb_tensor_is_readonly(t), "read-only as asked");
  int64_t strides[TB_MAX_NDIM];
  int64_t step = 1;
  for (int k = 0; k < h->ndim; k++) {
    int d = h->fortran_order ? k : h->ndim - 1 - k;
    strides[d] = step;
    step *= h->shape[d] == 0 ? 1 : h->shape[d];
  }
  for (int d = 0; d < h->ndim; d++) {
    CHECK(tb_tensor_shape(t)[d] == h->shape[d], "shape");
    if (h->shape[d] > 1) CHECK(tb_tensor_strides(t)[d] == strides[d], "C or F strides");
  }
  CHECK((uint64_t)tb_tensor_nbytes(t) == h->data_nbytes, "nbytes");
  if (tb_tensor_numel(t) > 0) {
    CHECK(tb_tensor_data(t) == file + h->data_offset, "zero copy: the data is the file's");
    tb_tensor_t *c = NULL;
    tb_status st;
    CALL(st, tb_tensor_copy(t, NULL, TB_ORDER_C, 0, &c)); /* reads every element */
    CHECK(st == TB_OK, "copy");
    tb_tensor_release(c);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size) {
  tb_npy_header h;
  tb_status parsed = parse_prefix(bytes, size, &h);
  if (parsed == TB_OK) {
    check_header(&h, size);
    tb_npy_header alone;
    CHECK(parse_prefix(bytes, (size_t)h.data_offset, &alone) == TB_OK && same_header(&h, &alone),
          "the header alone parses the same");
    CHECK(parse_prefix(bytes, (size_t)h.data_offset - 1, &alone) == TB_ERR_FORMAT,
          "one byte fewer is a truncated header");
    check_writer(&h);
  } else {
    CHECK(parsed == TB_ERR_FORMAT || parsed == TB_ERR_DTYPE || parsed == TB_ERR_OVERFLOW,
          "a refused header is malformed, of an unknown dtype or too large");
  }
  unsigned char *file = exact_copy(bytes, size);
  int deleted = 0;
  tb_tensor_t *t = NULL;
  tb_status st;
  CALL(st, tb__npy_from_bytes("fuzz", size > 0 ? file : NULL, size, TB_FLAG_READONLY, count_call,
                              &deleted, &t));
  g_status = st;
  const bool fits = parsed == TB_OK && h.data_nbytes <= size - h.data_offset;
  CHECK((st == TB_OK) == fits, "loads exactly the files whose header parses and data fits");
  if (st == TB_OK) {
    check_tensor(t, &h, file);
    check_save(t);
    CHECK(deleted == 0, "the deleter waits for the last release");
    tb_tensor_release(t);
    CHECK(deleted == 1, "the deleter runs once, at the last release");
  } else {
    CHECK(parsed != TB_OK || st == TB_ERR_FORMAT, "truncated data is a format error");
    CHECK(parsed == TB_OK || st == parsed, "the loader refuses as the parser does");
    CHECK(deleted == 0, "a refusal leaves the memory with the caller");
  }
  free(file);
  return 0;
}

/* For the replay program (replay.c). */
tb_status tb_fuzz_last_status(void) { return g_status; }
