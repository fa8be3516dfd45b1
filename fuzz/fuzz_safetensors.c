/*
 * libFuzzer target: the safetensors reader (tb_safetensors_parse) over
 * arbitrary bytes; when they parse, every entry as a tensor, and a save of
 * them read back.
 *
 * Input: when the first byte is '{', the input is a header and its data:
 * the bytes before the first 0 byte (all of them when there is none) are the
 * JSON header, the bytes after it the data section, and the harness puts the
 * 8-byte length in front (so that mutations of the JSON need not keep a
 * length right). Any other input is a whole file as it is.
 *
 * The file lies in a buffer of exactly its size, so that AddressSanitizer
 * reports any read past it, at an offset of (input size % 8) bytes from an
 * aligned allocation, so that entries are misaligned now and then.
 * Properties checked on every input:
 *   - nothing is read outside the buffer; a refusal leaves *out alone and
 *     sets a message; a success leaves tb_last_error() untouched;
 *   - a parsed file: find(name(i)) is i for every entry, metadata keys are
 *     strictly ascending and metadata_get finds each value;
 *   - every entry becomes a read-only, C-contiguous tensor whose bytes equal
 *     the file's; entries that are not copies lie inside the buffer, in
 *     order, after the header; all of them together cover the data section
 *     exactly (the format's rule);
 *   - small files are saved again and read back with the same names,
 *     dtypes, shapes, bytes and metadata.
 *
 * With -DTB_FUZZ_REPLAY a main() runs every file of the directories (or
 * files) named on the command line through the same entry point.
 */
#define _POSIX_C_SOURCE 200809L /* getpid, unlink */

#include <tensorbridge/tensorbridge.h>
#include <tensorbridge/backend.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "replay.h"

static tb_status g_status; /* of the last input, for the replay's log */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  return 0;
}

#define TB_FUZZ_NAME "fuzz_safetensors"
#include "fuzz_common.h"

static bool same_shape(const tb_tensor_t *a, const tb_tensor_t *b) {
  if (tb_tensor_ndim(a) != tb_tensor_ndim(b)) return false;
  for (int32_t d = 0; d < tb_tensor_ndim(a); d++) {
    if (tb_tensor_shape(a)[d] != tb_tensor_shape(b)[d]) return false;
  }
  return tb_dtype_equal(tb_tensor_dtype(a), tb_tensor_dtype(b));
}

static bool same_bytes(const tb_tensor_t *a, const tb_tensor_t *b) {
  const int64_t n = tb_tensor_nbytes(a);
  if (n != tb_tensor_nbytes(b)) return false;
  return n == 0 || memcmp(tb_tensor_data(a), tb_tensor_data(b), (size_t)n) == 0;
}

/* Saves every entry and the metadata, opens the file, compares. */
static void round_trip(const tb_safetensors *f, tb_tensor_t **tensors) {
  const int64_t n = tb_safetensors_count(f), m = tb_safetensors_metadata_count(f);
  const char *names[64], *keys[64], *values[64];
  if (n > 64 || m > 64) return;
  for (int64_t i = 0; i < n; i++) {
    names[i] = tb_safetensors_name(f, i);
    if (names[i][0] == '\0') return; /* read, but the writer refuses empty names */
  }
  for (int64_t i = 0; i < m; i++) {
    keys[i] = tb_safetensors_metadata_key(f, i);
    values[i] = tb_safetensors_metadata_value(f, i);
  }
  char path[256];
  const char *tmp = getenv("TMPDIR");
  snprintf(path, sizeof path, "%s/tb-fuzz-safetensors-%ld", tmp != NULL ? tmp : "/tmp",
           (long)getpid());
  tb_status st;
  CALL(st, tb_safetensors_save(path, n, names, (const tb_tensor_t *const *)tensors, m, keys,
                               values));
  CHECK(st == TB_OK, "what was read can be saved");
  tb_safetensors *g = NULL;
  CALL(st, tb_safetensors_open(path, &g));
  CHECK(st == TB_OK, "what was saved can be read");
  (void)unlink(path); /* the mapping stays */
  CHECK(tb_safetensors_count(g) == n && tb_safetensors_metadata_count(g) == m, "counts");
  for (int64_t i = 0; i < n; i++) {
    tb_tensor_t *t = NULL;
    CALL(st, tb_safetensors_get(g, names[i], &t));
    CHECK(st == TB_OK, "every saved name is there");
    CHECK(same_shape(t, tensors[i]) && same_bytes(t, tensors[i]), "the same tensor comes back");
    tb_tensor_release(t);
  }
  for (int64_t i = 0; i < m; i++) {
    const char *v = NULL;
    CALL(st, tb_safetensors_metadata_get(g, keys[i], &v));
    CHECK(st == TB_OK && strcmp(v, values[i]) == 0, "the same metadata comes back");
  }
  tb_safetensors_close(g);
}

static void check_file(const tb_safetensors *f, const unsigned char *file, size_t size) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) n = (n << 8) | file[i];
  const uint64_t data_start = 8 + n;
  const int64_t count = tb_safetensors_count(f);
  CHECK(count >= 0 && tb_safetensors_name(f, count) == NULL, "count");
  tb_status st;
  for (int64_t i = 0; i < tb_safetensors_metadata_count(f); i++) {
    const char *key = tb_safetensors_metadata_key(f, i), *value = NULL;
    CHECK(key != NULL && tb_safetensors_metadata_value(f, i) != NULL, "metadata items");
    if (i > 0) CHECK(strcmp(tb_safetensors_metadata_key(f, i - 1), key) < 0, "keys ascend");
    CALL(st, tb_safetensors_metadata_get(f, key, &value));
    CHECK(st == TB_OK && value == tb_safetensors_metadata_value(f, i), "metadata lookup");
  }
  tb_tensor_t **tensors = calloc((size_t)count + 1, sizeof *tensors);
  CHECK(tensors != NULL, "memory");
  uint64_t covered = 0;
  const unsigned char *last = file + data_start;
  for (int64_t i = 0; i < count; i++) {
    const char *name = tb_safetensors_name(f, i);
    int64_t index = -1;
    CALL(st, tb_safetensors_find(f, name, &index));
    CHECK(st == TB_OK && index == i, "names are unique and found");
    CALL(st, tb_safetensors_get_index(f, i, &tensors[i]));
    CHECK(st == TB_OK, "every entry of a parsed file becomes a tensor");
    const tb_tensor_t *t = tensors[i];
    CHECK(tb_tensor_is_readonly(t) && tb_tensor_is_contiguous(t, TB_ORDER_C), "read-only, dense");
    const int64_t nbytes = tb_tensor_nbytes(t);
    CHECK(nbytes >= 0 && (uint64_t)nbytes <= size - data_start - covered, "within the data");
    const unsigned char *data = tb_tensor_data(t);
    if (nbytes > 0) {
      /* The entry's bytes are the next ones of the data section. */
      CHECK(memcmp(data, file + data_start + covered, (size_t)nbytes) == 0, "the file's bytes");
      const size_t item = tb_dtype_itemsize(tb_tensor_dtype(t));
      if (data >= file && data < file + size) {
        CHECK(data == file + data_start + covered && data >= last, "zero copy, in order");
        CHECK(item <= 1 || (uintptr_t)data % item == 0, "aligned");
        last = data;
      } else {
        CHECK(item > 1 && (uintptr_t)(file + data_start + covered) % item != 0,
              "only misaligned entries are copied");
        CHECK((uintptr_t)data % item == 0, "copies are aligned");
      }
    }
    covered += (uint64_t)nbytes;
  }
  CHECK(covered == size - data_start, "the entries cover the data section");
  if (size <= 65536) round_trip(f, tensors);
  for (int64_t i = 0; i < count; i++) tb_tensor_release(tensors[i]);
  free(tensors);
}

int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size) {
  /* The file: as given, or length + header + data. */
  size_t file_size = size, header_len = 0;
  const bool header_mode = size > 0 && bytes[0] == '{';
  if (header_mode) {
    const uint8_t *nul = memchr(bytes, 0, size);
    header_len = nul != NULL ? (size_t)(nul - bytes) : size;
    file_size = 8 + header_len + (nul != NULL ? size - header_len - 1 : 0);
  }
  /* The block ends where the file ends, so that a read past it is caught;
   * it starts shift bytes before the file. */
  const size_t shift = size % 8;
  unsigned char *block = malloc(file_size + shift + (file_size + shift == 0));
  CHECK(block != NULL, "memory");
  unsigned char *input = block + shift;
  if (header_mode) {
    for (int i = 0; i < 8; i++) input[i] = (unsigned char)((uint64_t)header_len >> (8 * i));
    memcpy(input + 8, bytes, header_len);
    if (file_size > 8 + header_len) {
      memcpy(input + 8 + header_len, bytes + header_len + 1, file_size - 8 - header_len);
    }
  } else if (size > 0) {
    memcpy(input, bytes, size);
  }

  tb_safetensors *f = (tb_safetensors *)(void *)&header_len;
  tb_status st;
  CALL(st, tb_safetensors_parse(input, file_size, &f));
  g_status = st;
  if (st != TB_OK) {
    CHECK(f == (tb_safetensors *)(void *)&header_len, "a refusal leaves *out alone");
    CHECK(st == TB_ERR_FORMAT || st == TB_ERR_DTYPE || st == TB_ERR_OVERFLOW ||
              st == TB_ERR_UNSUPPORTED || st == TB_ERR_NOMEM,
          "a refusal says what kind");
  } else {
    check_file(f, input, file_size);
    tb_safetensors_close(f);
  }
  free(block);
  return 0;
}

/* For the replay program (replay.c). */
tb_status tb_fuzz_last_status(void) { return g_status; }
