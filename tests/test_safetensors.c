/*
 * safetensors files through the public API: tb_safetensors_open (one
 * mapping, entries as read-only views of it), tb_safetensors_parse (the
 * same over a buffer), the metadata queries, tb_safetensors_save.
 *
 * Files come from three places: headers written here by hand, byte for
 * byte (the hostile ones among them); tb_safetensors_save; and one file
 * written by the reference implementation's Python package, embedded below
 * as bytes. Zero copy is checked by address (an entry's data lies at
 * 8 + N + begin from the start of the mapping) and against the process's
 * own mappings (/proc/self/maps): the file stays mapped while an entry
 * lives, after close too, and not after the last release.
 */
#define _GNU_SOURCE /* memmem */

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.h"

/* The file handle's counterpart of SENTINEL_TENSOR (support.h). */
#define SENTINEL_FILE ((tb_safetensors *)(void *)&test_sentinel_object)

/* ------------------------------------------------------------------------ */
/* Files                                                                    */
/* ------------------------------------------------------------------------ */

/* A safetensors file: the 8-byte length, header[0, header_len), then
 * data_len bytes of data (data NULL: bytes i & 0xff). */
static unsigned char *build(const char *header, size_t header_len, const void *data,
                            size_t data_len, size_t *size) {
  if (header_len == 0) header_len = strlen(header);
  *size = 8 + header_len + data_len;
  unsigned char *p = malloc(*size + 1);
  assert_non_null(p);
  put_le(p, header_len, 8);
  memcpy(p + 8, header, header_len);
  for (size_t i = 0; i < data_len; i++) {
    p[8 + header_len + i] = data != NULL ? ((const unsigned char *)data)[i] : (unsigned char)i;
  }
  return p;
}

/* Writes build's file (header as a string) to path. */
static void write_safetensors(const char *path, const char *header, const void *data,
                              size_t data_len) {
  size_t size;
  unsigned char *p = build(header, 0, data, data_len, &size);
  write_file(path, p, size);
  free(p);
}

static tb_tensor_t *get(const tb_safetensors *f, const char *name) {
  tb_tensor_t *t = NULL;
  assert_ok(tb_safetensors_get(f, name, &t));
  return t;
}

/* ------------------------------------------------------------------------ */
/* Reading files written by hand                                            */
/* ------------------------------------------------------------------------ */

/* Two F32 entries and an I64 one; header of 192 bytes, so data at 200. */
static const char k_header3[] =
    "{\"__metadata__\":{\"format\":\"pt\",\"note\":\"caf\\u00e9\"},"
    "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
    "\"b\":{\"dtype\":\"I64\",\"shape\":[3],\"data_offsets\":[16,40]},"
    "\"c\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[40,44]}}";

static void make_data3(unsigned char data[44]) {
  const float a[4] = {1.0f, 2.5f, -3.0f, 4.25f};
  const int64_t b[3] = {-7, 0, INT64_MAX};
  const float c = 0.5f;
  memcpy(data, a, 16);
  memcpy(data + 16, b, 24);
  memcpy(data + 40, &c, 4);
}

static void open_reads_entries_of_a_hand_written_file(void **state) {
  (void)state;
  unsigned char data[44];
  make_data3(data);
  SCRATCH_PATH(path, "three.safetensors");
  write_safetensors(path, k_header3, data, sizeof data);
  const uint64_t n = strlen(k_header3);

  tb_safetensors *f = SENTINEL_FILE;
  assert_ok(tb_safetensors_open(path, &f));
  assert_int_equal(tb_safetensors_count(f), 3);
  assert_string_equal(tb_safetensors_name(f, 0), "a");
  assert_string_equal(tb_safetensors_name(f, 1), "b");
  assert_string_equal(tb_safetensors_name(f, 2), "c");
  assert_null(tb_safetensors_name(f, 3));
  assert_null(tb_safetensors_name(f, -1));
  int64_t index = -1;
  assert_ok(tb_safetensors_find(f, "b", &index));
  assert_int_equal(index, 1);

  tb_tensor_t *a = get(f, "a"), *b = get(f, "b"), *c = get(f, "c");
  assert_true(tb_dtype_equal(tb_tensor_dtype(a), F32));
  assert_int_equal(tb_tensor_ndim(a), 2);
  assert_int_equal(tb_tensor_shape(a)[0], 2);
  assert_int_equal(tb_tensor_shape(a)[1], 2);
  assert_int_equal(tb_tensor_strides(a)[0], 2);
  assert_int_equal(tb_tensor_strides(a)[1], 1);
  assert_true(tb_tensor_is_contiguous(a, TB_ORDER_C));
  const float *av = tb_tensor_data(a);
  assert_true(av[0] == 1.0f && av[1] == 2.5f && av[2] == -3.0f && av[3] == 4.25f);
  assert_true(tb_dtype_equal(tb_tensor_dtype(b), I64));
  const int64_t *bv = tb_tensor_data(b);
  assert_true(bv[0] == -7 && bv[1] == 0 && bv[2] == INT64_MAX);
  assert_int_equal(tb_tensor_ndim(c), 0);
  assert_int_equal(tb_tensor_numel(c), 1);
  assert_true(*(const float *)tb_tensor_data(c) == 0.5f);

  /* Zero copy: every entry is a view of the one storage over the mapping,
   * its data at 8 + N + begin from the file's first byte. */
  const unsigned char *base = tb_tensor_base(a);
  assert_ptr_equal(tb_tensor_base(b), base);
  assert_true(tb_tensor_shares_storage(a, b) && tb_tensor_shares_storage(b, c));
  assert_ptr_equal(tb_tensor_data(a), base + 8 + n + 0);
  assert_ptr_equal(tb_tensor_data(b), base + 8 + n + 16);
  assert_ptr_equal(tb_tensor_data(c), base + 8 + n + 40);
  assert_int_equal(tb_tensor_byte_offset(b), 8 + n + 16);
  assert_int_equal(memcmp(base + 8, k_header3, n), 0); /* base is the file's first byte */
  assert_true(tb_tensor_is_readonly(a) && tb_tensor_is_readonly(b) && tb_tensor_is_readonly(c));

  /* A second get is another view of the same bytes. */
  tb_tensor_t *a2 = get(f, "a");
  assert_ptr_not_equal(a2, a);
  assert_ptr_equal(tb_tensor_data(a2), tb_tensor_data(a));

  /* Metadata, sorted by key; escapes decoded. */
  assert_int_equal(tb_safetensors_metadata_count(f), 2);
  assert_string_equal(tb_safetensors_metadata_key(f, 0), "format");
  assert_string_equal(tb_safetensors_metadata_value(f, 0), "pt");
  assert_string_equal(tb_safetensors_metadata_key(f, 1), "note");
  assert_string_equal(tb_safetensors_metadata_value(f, 1), "caf\xc3\xa9");
  assert_null(tb_safetensors_metadata_key(f, 2));
  const char *value = NULL;
  assert_ok(tb_safetensors_metadata_get(f, "note", &value));
  assert_string_equal(value, "caf\xc3\xa9");
  value = "untouched";
  assert_status(tb_safetensors_metadata_get(f, "nope", &value), TB_ERR_INDEX);
  assert_error_mentions("no key 'nope'");
  assert_string_equal(value, "untouched");

  tb_tensor_release(a2);
  tb_tensor_release(a);
  tb_tensor_release(b);
  tb_tensor_release(c);
  tb_safetensors_close(f);
}

static void entries_are_read_only(void **state) {
  (void)state;
  unsigned char data[44];
  make_data3(data);
  SCRATCH_PATH(path, "readonly.safetensors");
  write_safetensors(path, k_header3, data, sizeof data);
  tb_safetensors *f;
  assert_ok(tb_safetensors_open(path, &f));
  tb_tensor_t *a = get(f, "a");
  const float one = 1.0f;
  assert_status(tb_tensor_fill(a, &one, F32), TB_ERR_READONLY);
  tb_tensor_t *view;
  assert_ok(tb_tensor_slice(a, 0, 0, 1, 1, &view));
  assert_true(tb_tensor_is_readonly(view));
  assert_status(tb_tensor_fill(view, &one, F32), TB_ERR_READONLY);
  /* A copy is writable and independent. */
  tb_tensor_t *copy;
  assert_ok(tb_tensor_copy(a, NULL, TB_ORDER_C, 0, &copy));
  assert_false(tb_tensor_is_readonly(copy));
  assert_ok(tb_tensor_fill(copy, &one, F32));
  assert_true(((const float *)tb_tensor_data(a))[1] == 2.5f);
  tb_tensor_release(copy);
  tb_tensor_release(view);
  tb_tensor_release(a);
  tb_safetensors_close(f);
}

static void mapping_lives_until_the_last_entry_goes(void **state) {
  (void)state;
  unsigned char data[44];
  make_data3(data);
  SCRATCH_PATH(saved, "lifetime.safetensors");
  write_safetensors(saved, k_header3, data, sizeof data);

  assert_int_equal(count_mappings(saved, NULL, NULL), 0);
  tb_safetensors *f;
  assert_ok(tb_safetensors_open(saved, &f));
  assert_int_equal(count_mappings(saved, NULL, NULL), 1);
  tb_tensor_t *b = get(f, "b"), *view;
  assert_ok(tb_tensor_select(b, 0, 2, &view));
  tb_tensor_release(b);
  tb_safetensors_close(f);
  /* Closed, with a view of an entry alive: still mapped, still readable. */
  assert_int_equal(count_mappings(saved, NULL, NULL), 1);
  assert_true(*(const int64_t *)tb_tensor_data(view) == INT64_MAX);
  tb_tensor_release(view);
  assert_int_equal(count_mappings(saved, NULL, NULL), 0);

  /* No entry taken: close unmaps. */
  assert_ok(tb_safetensors_open(saved, &f));
  assert_int_equal(count_mappings(saved, NULL, NULL), 1);
  tb_safetensors_close(f);
  assert_int_equal(count_mappings(saved, NULL, NULL), 0);

  /* A refused file is not left mapped either. */
  write_safetensors(saved, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", data,
                    4);
  f = SENTINEL_FILE;
  assert_status(tb_safetensors_open(saved, &f), TB_ERR_FORMAT);
  assert_ptr_equal(f, SENTINEL_FILE);
  assert_int_equal(count_mappings(saved, NULL, NULL), 0);
}

static void parse_reads_a_buffer_without_copying(void **state) {
  (void)state;
  unsigned char data[44];
  make_data3(data);
  size_t size;
  unsigned char *bytes = build(k_header3, 0, data, sizeof data, &size);
  tb_safetensors *f;
  assert_ok(tb_safetensors_parse(bytes, size, &f));
  tb_tensor_t *b = get(f, "b");
  unsigned char *const at = bytes + 8 + strlen(k_header3) + 16;
  assert_ptr_equal(tb_tensor_data(b), at);
  assert_true(tb_tensor_is_readonly(b));
  tb_safetensors_close(f);
  assert_true(((const int64_t *)tb_tensor_data(b))[0] == -7);
  /* Not a copy: a change to the caller's bytes is the entry's. */
  const int64_t changed = 12345;
  memcpy(at, &changed, sizeof changed);
  assert_true(((const int64_t *)tb_tensor_data(b))[0] == 12345);
  tb_tensor_release(b);
  free(bytes);
}

static void entries_come_in_the_order_of_their_data(void **state) {
  (void)state;
  /* The header lists them in another order; size-0 entries that share an
   * offset keep the header's order among themselves. */
  static const char header[] =
      "{\"late\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[4,6]},"
      "\"z0\":{\"dtype\":\"F64\",\"shape\":[0,3],\"data_offsets\":[4,4]},"
      "\"early\":{\"dtype\":\"I16\",\"shape\":[2],\"data_offsets\":[0,4]},"
      "\"a0\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,4]},"
      "\"end0\":{\"dtype\":\"BOOL\",\"shape\":[7,0],\"data_offsets\":[6,6]}}";
  size_t size;
  unsigned char *bytes = build(header, 0, NULL, 6, &size);
  tb_safetensors *f;
  assert_ok(tb_safetensors_parse(bytes, size, &f));
  assert_int_equal(tb_safetensors_count(f), 5);
  const char *expect[] = {"early", "z0", "a0", "late", "end0"};
  for (int i = 0; i < 5; i++) assert_string_equal(tb_safetensors_name(f, i), expect[i]);
  tb_tensor_t *t;
  assert_ok(tb_safetensors_get_index(f, 1, &t));
  assert_int_equal(tb_tensor_numel(t), 0);
  assert_int_equal(tb_tensor_shape(t)[1], 3);
  /* Size 0, still a view at 8 + N + begin (it addresses no byte). */
  assert_ptr_equal(tb_tensor_data(t), bytes + 8 + strlen(header) + 4);
  tb_tensor_release(t);
  t = SENTINEL_TENSOR;
  assert_status(tb_safetensors_get_index(f, 5, &t), TB_ERR_INDEX);
  assert_error_mentions("index = 5 is outside [0, 5)");
  assert_status(tb_safetensors_get(f, "missing", &t), TB_ERR_INDEX);
  assert_error_mentions("no entry is named 'missing'");
  assert_ptr_equal(t, SENTINEL_TENSOR);
  int64_t index = 42;
  assert_status(tb_safetensors_find(f, "earl", &index), TB_ERR_INDEX);
  assert_int_equal(index, 42);
  tb_safetensors_close(f);
  free(bytes);
}

static void accepts_what_the_format_allows(void **state) {
  (void)state;
  static const struct {
    const char *header;
    size_t data;
  } ok[] = {
      {"{}", 0},
      {"{}        \t\r\n", 0},
      {"{\"__metadata__\":null}", 0},
      {"{\"__metadata__\":{}}", 0},
      {"{ \"a\" : { \"shape\" : [ 1 ] , \"data_offsets\" : [ 0 , 1 ] , \"dtype\" : \"U8\" } }\n", 1},
      {"{\"\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1},
      {"{\"\\ud83d\\ude00\\/\\b\\f\\n\\r\\t\\\"\\\\\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0},
      {"{\"a\":{\"dtype\":\"F4\",\"shape\":[2,3],\"data_offsets\":[0,3]}}", 3},
      {"{\"a\":{\"dtype\":\"F6_E3M2\",\"shape\":[4],\"data_offsets\":[0,3]}}", 3},
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    size_t size;
    unsigned char *bytes = build(ok[i].header, 0, NULL, ok[i].data, &size);
    tb_safetensors *f;
    ok_guard g;
    ok_guard_begin(&g);
    tb_status st = tb_safetensors_parse(bytes, size, &f);
    if (st != TB_OK) print_error("case %zu: %s\n", i, ok[i].header);
    ok_guard_end(&g, st, "tb_safetensors_parse", __FILE__, __LINE__);
    for (int64_t k = 0; k < tb_safetensors_count(f); k++) {
      tb_tensor_t *t;
      assert_ok(tb_safetensors_get_index(f, k, &t));
      tb_tensor_release(t);
    }
    tb_safetensors_close(f);
    free(bytes);
  }
  /* The escapes decode to the UTF-8 bytes of the name. */
  size_t size;
  unsigned char *bytes = build(ok[6].header, 0, NULL, 1, &size);
  tb_safetensors *f;
  assert_ok(tb_safetensors_parse(bytes, size, &f));
  assert_string_equal(tb_safetensors_name(f, 0), "\xf0\x9f\x98\x80/\b\f\n\r\t\"\\");
  tb_tensor_t *t = get(f, "\xf0\x9f\x98\x80/\b\f\n\r\t\"\\");
  tb_tensor_release(t);
  tb_safetensors_close(f);
  free(bytes);
}

/* Every hostile header: the status and the words that name the problem. */
typedef struct hostile {
  const char *header;
  size_t header_len; /* 0: strlen */
  size_t data;
  tb_status status;
  const char *mention;
} hostile;

#define E3(dtype, shape, offsets) \
  "{\"a\":{\"dtype\":" dtype ",\"shape\":" shape ",\"data_offsets\":" offsets "}}"

static const hostile k_hostile[] = {
    /* the start, UTF-8, JSON */
    {"", 0, 0, TB_ERR_FORMAT, "does not start with '{' (it is empty)"},
    {"[]", 0, 0, TB_ERR_FORMAT, "does not start with '{'"},
    {" {}", 0, 0, TB_ERR_FORMAT, "does not start with '{'"},
    {"{\"a\xff\":1}", 0, 0, TB_ERR_FORMAT, "not valid UTF-8 (byte 0xff at header byte 3)"},
    {"{\"\xc0\xaf\":1}", 0, 0, TB_ERR_FORMAT, "not valid UTF-8 (byte 0xc0"},
    {"{\"\xed\xa0\x80\":1}", 0, 0, TB_ERR_FORMAT, "not valid UTF-8 (byte 0xed"},
    {"{\"\xf4\x90\x80\x80\":1}", 0, 0, TB_ERR_FORMAT, "not valid UTF-8 (byte 0xf4"},
    {"{\"\xe2\x82\":1}", 0, 0, TB_ERR_FORMAT, "not valid UTF-8"},
    {"{} x", 0, 0, TB_ERR_FORMAT, "trailing characters after the JSON value (at header byte 3)"},
    {"{}\0\0\0\0\0\0", 8, 0, TB_ERR_FORMAT, "trailing characters"},
    {"{}{}", 0, 0, TB_ERR_FORMAT, "trailing characters"},
    {"{\"a", 0, 0, TB_ERR_FORMAT, "unterminated string (at header byte 1)"},
    {"{\"a\\", 0, 0, TB_ERR_FORMAT, "unterminated escape"},
    {"{", 0, 0, TB_ERR_FORMAT, "not valid JSON"},
    {"{\"\\q\":1}", 0, 0, TB_ERR_FORMAT, "invalid escape"},
    {"{\"\\u12G4\":1}", 0, 0, TB_ERR_FORMAT, "without four hex digits"},
    {"{\"\\u12\"}", 0, 0, TB_ERR_FORMAT, "without four hex digits"},
    {"{\"\\ud800\":1}", 0, 0, TB_ERR_FORMAT, "lone high surrogate"},
    {"{\"\\ud800\\u0041\":1}", 0, 0, TB_ERR_FORMAT, "lone high surrogate"},
    {"{\"\\udc00\":1}", 0, 0, TB_ERR_FORMAT, "lone low surrogate"},
    {"{\"a\tb\":1}", 0, 0, TB_ERR_FORMAT, "raw control character"},
    {"{\"a\":1,}", 0, 0, TB_ERR_FORMAT, "trailing ','"},
    {"{\"a\" 1}", 0, 0, TB_ERR_FORMAT, "expected ':'"},
    {"{\"a\":1 \"b\":2}", 0, 0, TB_ERR_FORMAT, "expected ',' or '}'"},
    {"{1:2}", 0, 0, TB_ERR_FORMAT, "expected a string as an object key"},
    {"{\"a\":[1 2]}", 0, 0, TB_ERR_FORMAT, "expected ',' or ']'"},
    {"{\"a\":tru}", 0, 0, TB_ERR_FORMAT, "unexpected characters"},
    {"{\"a\":01}", 0, 0, TB_ERR_FORMAT, "leading zero"},
    {"{\"a\":1.}", 0, 0, TB_ERR_FORMAT, "digits after its '.'"},
    {"{\"a\":1e}", 0, 0, TB_ERR_FORMAT, "digits in its exponent"},
    {"{\"a\":-}", 0, 0, TB_ERR_FORMAT, "expected a number"},
    {"{\"a\":}", 0, 0, TB_ERR_FORMAT, "where a value should be"},
    /* keys */
    {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
     "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
     0, 2, TB_ERR_FORMAT, "entry 'a' appears twice"},
    {"{\"a\":{\"dtype\":\"U8\",\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 0, 1,
     TB_ERR_FORMAT, "entry 'a' has the field 'dtype' twice"},
    {"{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, 0, TB_ERR_FORMAT,
     "\"__metadata__\" has the key 'k' twice"},
    {"{\"__metadata__\":{},\"__metadata__\":{}}", 0, 0, TB_ERR_FORMAT,
     "has \"__metadata__\" twice"},
    {"{\"__metadata__\":[]}", 0, 0, TB_ERR_FORMAT,
     "\"__metadata__\" is an array, not an object of strings"},
    {"{\"__metadata__\":\"x\"}", 0, 0, TB_ERR_FORMAT, "\"__metadata__\" is a string"},
    {"{\"__metadata__\":{\"k\":1}}", 0, 0, TB_ERR_FORMAT,
     "\"__metadata__\" item 'k' is a number, not a string"},
    {"{\"__metadata__\":{\"k\":null}}", 0, 0, TB_ERR_FORMAT, "item 'k' is null, not a string"},
    {"{\"__metadata__\":{\"k\\u0000\":\"v\"}}", 0, 0, TB_ERR_UNSUPPORTED, "holds U+0000"},
    {"{\"__metadata__\":{\"k\":\"v\\u0000\"}}", 0, 0, TB_ERR_UNSUPPORTED, "holds U+0000"},
    {"{\"a\\u0000b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 0, 1,
     TB_ERR_UNSUPPORTED, "entry name 'a\\u0000b' holds U+0000"},
    /* entries */
    {"{\"a\":1}", 0, 0, TB_ERR_FORMAT, "entry 'a' is a number, not an object"},
    {"{\"a\":null}", 0, 0, TB_ERR_FORMAT, "entry 'a' is null, not an object"},
    {"{\"a\":{\"shape\":[1],\"data_offsets\":[0,1]}}", 0, 1, TB_ERR_FORMAT,
     "entry 'a' has no dtype"},
    {"{\"a\":{\"dtype\":\"U8\",\"data_offsets\":[0,1]}}", 0, 1, TB_ERR_FORMAT,
     "entry 'a' has no shape"},
    {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1]}}", 0, 1, TB_ERR_FORMAT,
     "entry 'a' has no data_offsets"},
    {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"x\":1}}", 0, 1,
     TB_ERR_FORMAT, "entry 'a' has an unknown field 'x'"},
    {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"x\":[[[]]]}}", 0, 1,
     TB_ERR_FORMAT, "unknown field 'x'"},
    {E3("8", "[1]", "[0,1]"), 0, 1, TB_ERR_FORMAT, "entry 'a': dtype is a number, not a string"},
    {E3("\"F128\"", "[1]", "[0,1]"), 0, 1, TB_ERR_DTYPE,
     "entry 'a': dtype 'F128' is not a safetensors dtype"},
    {E3("\"f32\"", "[1]", "[0,4]"), 0, 4, TB_ERR_DTYPE, "dtype 'f32'"},
    {E3("\"C128\"", "[1]", "[0,16]"), 0, 16, TB_ERR_DTYPE, "dtype 'C128'"},
    {E3("\"F8_E4M3FN\"", "[1]", "[0,1]"), 0, 1, TB_ERR_DTYPE, "dtype 'F8_E4M3FN'"},
    {E3("\"U8\"", "1", "[0,1]"), 0, 1, TB_ERR_FORMAT,
     "entry 'a': shape is a number, not an array of integers"},
    {E3("\"U8\"", "[-1]", "[0,1]"), 0, 1, TB_ERR_FORMAT, "entry 'a': shape[0] = -1 is negative"},
    {E3("\"U8\"", "[1,-0]", "[0,0]"), 0, 0, TB_ERR_FORMAT, "shape[1] = -0 is not a plain 0"},
    {E3("\"U8\"", "[1.5]", "[0,1]"), 0, 1, TB_ERR_FORMAT, "shape[0] = 1.5 is not an integer"},
    {E3("\"U8\"", "[1.0]", "[0,1]"), 0, 1, TB_ERR_FORMAT, "shape[0] = 1.0 is not an integer"},
    {E3("\"U8\"", "[1e0]", "[0,1]"), 0, 1, TB_ERR_FORMAT, "shape[0] = 1e0 is not an integer"},
    {E3("\"U8\"", "[\"1\"]", "[0,1]"), 0, 1, TB_ERR_FORMAT,
     "shape[0] is a string, not an integer"},
    {E3("\"U8\"", "[[1]]", "[0,1]"), 0, 1, TB_ERR_FORMAT, "shape[0] is an array, not an integer"},
    {E3("\"U8\"", "[9223372036854775808]", "[0,1]"), 0, 1, TB_ERR_OVERFLOW,
     "shape[0] = 9223372036854775808 does not fit in int64"},
    {E3("\"U8\"", "[99999999999999999999999999]", "[0,1]"), 0, 1, TB_ERR_OVERFLOW,
     "does not fit in int64"},
    {E3("\"U8\"", "[4294967296,4294967296]", "[0,1]"), 0, 1, TB_ERR_OVERFLOW,
     "entry 'a': element count overflows int64"},
    {E3("\"F32\"", "[4611686018427387904]", "[0,1]"), 0, 1, TB_ERR_OVERFLOW,
     "entry 'a': 4611686018427387904 elements of float32 overflow int64 bytes"},
    {E3("\"F32\"", "[4611686018427387904,0]", "[0,0]"), 0, 0, TB_ERR_OVERFLOW,
     "size-0 tensor's non-zero extents are counted"},
    {E3("\"U8\"",
        "[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,"
        "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]",
        "[0,1]"),
     0, 1, TB_ERR_UNSUPPORTED, "shape has more than 64 dimensions"},
    {E3("\"U8\"", "[1]", "{}"), 0, 1, TB_ERR_FORMAT,
     "entry 'a': data_offsets is an object, not an array [begin, end]"},
    {E3("\"U8\"", "[1]", "[1]"), 0, 1, TB_ERR_FORMAT, "data_offsets has 1 element, not 2"},
    {E3("\"U8\"", "[1]", "[]"), 0, 1, TB_ERR_FORMAT, "data_offsets has 0 elements, not 2"},
    {E3("\"U8\"", "[1]", "[0,1,1]"), 0, 1, TB_ERR_FORMAT, "data_offsets has more than 2"},
    {E3("\"U8\"", "[1]", "[0,-1]"), 0, 1, TB_ERR_FORMAT, "data_offsets[1] = -1 is negative"},
    {E3("\"U8\"", "[1]", "[0,1.0]"), 0, 1, TB_ERR_FORMAT, "data_offsets[1] = 1.0 is not an integer"},
    {E3("\"U8\"", "[1]", "[\"0\",1]"), 0, 1, TB_ERR_FORMAT, "data_offsets[0] is a string"},
    {E3("\"U8\"", "[1]", "[0,18446744073709551616]"), 0, 1, TB_ERR_FORMAT,
     "data_offsets[1] = 18446744073709551616 lies beyond the data section"},
    {E3("\"U8\"", "[0]", "[1,0]"), 0, 1, TB_ERR_FORMAT,
     "entry 'a': data_offsets = [1, 0] end before they begin"},
    {E3("\"U8\"", "[2]", "[0,2]"), 0, 1, TB_ERR_FORMAT,
     "entry 'a': data_offsets = [0, 2] run past the data section (1 bytes)"},
    {E3("\"U8\"", "[1]", "[18446744073709551615,18446744073709551615]"), 0, 1, TB_ERR_FORMAT,
     "run past the data section"},
    {E3("\"F32\"", "[2,2]", "[0,12]"), 0, 12, TB_ERR_FORMAT,
     "entry 'a': data_offsets = [0, 12] hold 12 bytes, but F32 of shape [2, 2] takes 16"},
    {E3("\"F32\"", "[]", "[0,0]"), 0, 0, TB_ERR_FORMAT, "hold 0 bytes, but F32 of shape [] takes 4"},
    {E3("\"F4\"", "[3]", "[0,2]"), 0, 2, TB_ERR_FORMAT,
     "entry 'a': 3 elements of F4 make 12 bits, not a whole number of bytes"},
    {E3("\"F6_E2M3\"", "[2]", "[0,2]"), 0, 2, TB_ERR_FORMAT, "12 bits, not a whole number"},
    /* the entries together */
    {"{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
     "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[2,6]}}",
     0, 6, TB_ERR_FORMAT, "entries 'a' [0, 4) and 'b' [2, 6) overlap"},
    {"{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
     "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}",
     0, 4, TB_ERR_FORMAT, "overlap"},
    {"{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
     "\"e\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[2,2]}}",
     0, 4, TB_ERR_FORMAT, "entries 'a' [0, 4) and 'e' [2, 2) overlap"},
    {"{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
     "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[3,5]}}",
     0, 5, TB_ERR_FORMAT, "bytes [2, 3) of the data section belong to no entry (a hole before "
                          "entry 'b')"},
    {E3("\"U8\"", "[2]", "[1,3]"), 0, 3, TB_ERR_FORMAT,
     "bytes [0, 1) of the data section belong to no entry (a hole before entry 'a')"},
    {E3("\"U8\"", "[2]", "[0,2]"), 0, 5, TB_ERR_FORMAT,
     "bytes [2, 5) of the data section belong to no entry (after the last)"},
    {"{}", 0, 3, TB_ERR_FORMAT, "bytes [0, 3) of the data section belong to no entry"},
};

static void check_refused(const unsigned char *bytes, size_t size, tb_status status,
                          const char *mention, const char *label) {
  tb_safetensors *f = SENTINEL_FILE;
  tb_clear_error();
  tb_status st = tb_safetensors_parse(bytes, size, &f);
  if (st != status || strstr(tb_last_error(), mention) == NULL ||
      strncmp(tb_last_error(), "safetensors_parse: ", 19) != 0) {
    print_error("%s: got %s \"%s\", expected %s mentioning \"%s\"\n", label, tb_status_name(st),
                tb_last_error(), tb_status_name(status), mention);
    fail();
  }
  assert_ptr_equal(f, SENTINEL_FILE);
}

static void hostile_headers_are_refused_with_a_reason(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof k_hostile / sizeof k_hostile[0]; i++) {
    const hostile *h = &k_hostile[i];
    size_t size;
    unsigned char *bytes = build(h->header, h->header_len, NULL, h->data, &size);
    check_refused(bytes, size, h->status, h->mention, h->header);
    free(bytes);
  }
}

static void hostile_lengths_are_refused(void **state) {
  (void)state;
  unsigned char b[16] = {0};
  check_refused(b, 0, TB_ERR_FORMAT, "0 bytes are too few", "empty");
  check_refused(b, 7, TB_ERR_FORMAT, "7 bytes are too few", "7 bytes");
  /* The reference's limit, 100,000,000 bytes, and one more. */
  const uint64_t lengths[] = {100000001u, UINT64_MAX, (uint64_t)1 << 63};
  for (size_t i = 0; i < 3; i++) {
    put_le(b, lengths[i], 8);
    check_refused(b, 16, TB_ERR_FORMAT, "is above the limit of 100000000 bytes", "too large");
  }
  /* Within the limit but past the end. */
  put_le(b, 100000000u, 8);
  check_refused(b, 16, TB_ERR_FORMAT,
                "the header length 100000000 runs past the end of the file (8 bytes after "
                "the length)",
                "past the end");
  put_le(b, 9, 8);
  memcpy(b + 8, "{}      ", 8);
  check_refused(b, 16, TB_ERR_FORMAT, "header length 9 runs past the end", "one past");
}

/* {"__metadata__": `depth` nested arrays}, refused for `mention`. */
static void check_nested_refused(int depth, const char *mention) {
  char header[600];
  int o = snprintf(header, sizeof header, "{\"__metadata__\":");
  assert_true(o + 2 * depth + 2 <= (int)sizeof header);
  for (int i = 0; i < depth; i++) header[o++] = '[';
  for (int i = 0; i < depth; i++) header[o++] = ']';
  header[o++] = '}';
  header[o] = '\0';
  size_t size;
  unsigned char *bytes = build(header, 0, NULL, 0, &size);
  check_refused(bytes, size, TB_ERR_FORMAT, mention, mention);
  free(bytes);
}

static void deep_nesting_is_refused(void **state) {
  (void)state;
  check_nested_refused(200, "nesting deeper than 128");
  /* 127 arrays inside the root object: deep but within the limit, so the
   * complaint is about what the value is. */
  check_nested_refused(127, "\"__metadata__\" is an array");
}

static void open_names_the_file_in_its_messages(void **state) {
  (void)state;
  SCRATCH_PATH(path, "hostile.safetensors");
  write_safetensors(path, E3("\"F32\"", "[2,2]", "[0,12]"), NULL, 12);
  tb_safetensors *f = SENTINEL_FILE;
  assert_status(tb_safetensors_open(path, &f), TB_ERR_FORMAT);
  char expect[8192 + 64];
  snprintf(expect, sizeof expect, "safetensors_open: %s: entry 'a': data_offsets", path);
  assert_error_mentions(expect);
  assert_ptr_equal(f, SENTINEL_FILE);
  SCRATCH_PATH(absent, "absent.safetensors");
  assert_status(tb_safetensors_open(absent, &f), TB_ERR_IO);
  assert_error_mentions("absent.safetensors");
  assert_status(tb_safetensors_open(scratch_dir(), &f), TB_ERR_IO);
  assert_error_mentions("is not a regular file");
  write_file(path, "", 0);
  assert_status(tb_safetensors_open(path, &f), TB_ERR_FORMAT);
  assert_error_mentions("0 bytes are too few");
  assert_ptr_equal(f, SENTINEL_FILE);
  assert_status(tb_safetensors_open(NULL, &f), TB_ERR_INVALID);
  assert_status(tb_safetensors_open(path, NULL), TB_ERR_INVALID);
  assert_status(tb_safetensors_parse(NULL, 3, &f), TB_ERR_INVALID);
  assert_ptr_equal(f, SENTINEL_FILE);
  tb_safetensors_close(NULL);
  assert_int_equal(tb_safetensors_count(NULL), 0);
}

/* An entry whose data is not aligned to its element size is copied into
 * aligned memory (read-only too); aligned ones in the same file are not. */
static void misaligned_entries_are_copied(void **state) {
  (void)state;
  /* 8 + 57 = 65: the data section starts at an odd offset of the mapping. */
  static const char header[] =
      "{\"b\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]},"
      "\"f\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[3,11]}}";
  assert_int_equal(strlen(header) % 2, 1);
  unsigned char data[11] = {7, 8, 9};
  const float fv[2] = {1.5f, -2.0f};
  memcpy(data + 3, fv, 8);
  SCRATCH_PATH(saved, "misaligned.safetensors");
  write_safetensors(saved, header, data, sizeof data);
  tb_safetensors *f;
  assert_ok(tb_safetensors_open(saved, &f));
  tb_tensor_t *b = get(f, "b"), *x = get(f, "f"), *y = get(f, "f");
  const unsigned char *base = tb_tensor_base(b);
  assert_ptr_equal(tb_tensor_data(b), base + 8 + strlen(header)); /* bytes need no alignment */
  assert_false(tb_tensor_shares_storage(b, x));
  assert_false(tb_tensor_shares_storage(x, y)); /* a copy for each get */
  assert_int_equal((uintptr_t)tb_tensor_data(x) % 4, 0);
  assert_true(tb_tensor_is_readonly(x));
  assert_int_equal(memcmp(tb_tensor_data(x), fv, 8), 0);
  const float one = 1.0f;
  assert_status(tb_tensor_fill(x, &one, F32), TB_ERR_READONLY);
  tb_tensor_release(b);
  tb_safetensors_close(f);
  /* Copies hold no reference to the mapping. */
  assert_int_equal(count_mappings(saved, NULL, NULL), 0);
  assert_int_equal(memcmp(tb_tensor_data(y), fv, 8), 0);
  tb_tensor_release(x);
  tb_tensor_release(y);

  /* The same through a buffer at an odd address. */
  size_t size;
  unsigned char *bytes = build("{\"f\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}",
                               0, NULL, 8, &size);
  unsigned char *odd = malloc(size + 1);
  assert_non_null(odd);
  memcpy(odd + 1, bytes, size);
  assert_ok(tb_safetensors_parse(odd + 1, size, &f));
  x = get(f, "f");
  assert_int_equal((uintptr_t)tb_tensor_data(x) % 8, 0);
  assert_int_equal(memcmp(tb_tensor_data(x), odd + 1 + size - 8, 8), 0);
  tb_safetensors_close(f);
  free(odd);
  free(bytes);
  tb_tensor_release(x);
}

/* ------------------------------------------------------------------------ */
/* A file written by the Python package                                     */
/* ------------------------------------------------------------------------ */

/* safetensors 0.8.0, serialize() of w = arange(6, float32).reshape(2, 3) / 4,
 * idx = int64 [-1, 0, 7], flag = bool True (shape ()), h = float16
 * [[1.5, -2], [0.25, 65504]], bf = bfloat16 [1, -0.5, 3], empty = uint8
 * zeros((0, 2)), metadata {"format": "np"}. */
static const unsigned char k_python_file[] = {
    0x80, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x7b, 0x22, 0x5f, 0x5f, 0x6d, 0x65, 0x74, 0x61,
    0x64, 0x61, 0x74, 0x61, 0x5f, 0x5f, 0x22, 0x3a, 0x7b, 0x22, 0x66, 0x6f, 0x72, 0x6d, 0x61, 0x74,
    0x22, 0x3a, 0x22, 0x6e, 0x70, 0x22, 0x7d, 0x2c, 0x22, 0x69, 0x64, 0x78, 0x22, 0x3a, 0x7b, 0x22,
    0x64, 0x74, 0x79, 0x70, 0x65, 0x22, 0x3a, 0x22, 0x49, 0x36, 0x34, 0x22, 0x2c, 0x22, 0x73, 0x68,
    0x61, 0x70, 0x65, 0x22, 0x3a, 0x5b, 0x33, 0x5d, 0x2c, 0x22, 0x64, 0x61, 0x74, 0x61, 0x5f, 0x6f,
    0x66, 0x66, 0x73, 0x65, 0x74, 0x73, 0x22, 0x3a, 0x5b, 0x30, 0x2c, 0x32, 0x34, 0x5d, 0x7d, 0x2c,
    0x22, 0x77, 0x22, 0x3a, 0x7b, 0x22, 0x64, 0x74, 0x79, 0x70, 0x65, 0x22, 0x3a, 0x22, 0x46, 0x33,
    0x32, 0x22, 0x2c, 0x22, 0x73, 0x68, 0x61, 0x70, 0x65, 0x22, 0x3a, 0x5b, 0x32, 0x2c, 0x33, 0x5d,
    0x2c, 0x22, 0x64, 0x61, 0x74, 0x61, 0x5f, 0x6f, 0x66, 0x66, 0x73, 0x65, 0x74, 0x73, 0x22, 0x3a,
    0x5b, 0x32, 0x34, 0x2c, 0x34, 0x38, 0x5d, 0x7d, 0x2c, 0x22, 0x62, 0x66, 0x22, 0x3a, 0x7b, 0x22,
    0x64, 0x74, 0x79, 0x70, 0x65, 0x22, 0x3a, 0x22, 0x42, 0x46, 0x31, 0x36, 0x22, 0x2c, 0x22, 0x73,
    0x68, 0x61, 0x70, 0x65, 0x22, 0x3a, 0x5b, 0x33, 0x5d, 0x2c, 0x22, 0x64, 0x61, 0x74, 0x61, 0x5f,
    0x6f, 0x66, 0x66, 0x73, 0x65, 0x74, 0x73, 0x22, 0x3a, 0x5b, 0x34, 0x38, 0x2c, 0x35, 0x34, 0x5d,
    0x7d, 0x2c, 0x22, 0x68, 0x22, 0x3a, 0x7b, 0x22, 0x64, 0x74, 0x79, 0x70, 0x65, 0x22, 0x3a, 0x22,
    0x46, 0x31, 0x36, 0x22, 0x2c, 0x22, 0x73, 0x68, 0x61, 0x70, 0x65, 0x22, 0x3a, 0x5b, 0x32, 0x2c,
    0x32, 0x5d, 0x2c, 0x22, 0x64, 0x61, 0x74, 0x61, 0x5f, 0x6f, 0x66, 0x66, 0x73, 0x65, 0x74, 0x73,
    0x22, 0x3a, 0x5b, 0x35, 0x34, 0x2c, 0x36, 0x32, 0x5d, 0x7d, 0x2c, 0x22, 0x65, 0x6d, 0x70, 0x74,
    0x79, 0x22, 0x3a, 0x7b, 0x22, 0x64, 0x74, 0x79, 0x70, 0x65, 0x22, 0x3a, 0x22, 0x55, 0x38, 0x22,
    0x2c, 0x22, 0x73, 0x68, 0x61, 0x70, 0x65, 0x22, 0x3a, 0x5b, 0x30, 0x2c, 0x32, 0x5d, 0x2c, 0x22,
    0x64, 0x61, 0x74, 0x61, 0x5f, 0x6f, 0x66, 0x66, 0x73, 0x65, 0x74, 0x73, 0x22, 0x3a, 0x5b, 0x36,
    0x32, 0x2c, 0x36, 0x32, 0x5d, 0x7d, 0x2c, 0x22, 0x66, 0x6c, 0x61, 0x67, 0x22, 0x3a, 0x7b, 0x22,
    0x64, 0x74, 0x79, 0x70, 0x65, 0x22, 0x3a, 0x22, 0x42, 0x4f, 0x4f, 0x4c, 0x22, 0x2c, 0x22, 0x73,
    0x68, 0x61, 0x70, 0x65, 0x22, 0x3a, 0x5b, 0x5d, 0x2c, 0x22, 0x64, 0x61, 0x74, 0x61, 0x5f, 0x6f,
    0x66, 0x66, 0x73, 0x65, 0x74, 0x73, 0x22, 0x3a, 0x5b, 0x36, 0x32, 0x2c, 0x36, 0x33, 0x5d, 0x7d,
    0x7d, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x3e, 0x00, 0x00, 0x00, 0x3f, 0x00, 0x00, 0x40, 0x3f,
    0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0xa0, 0x3f, 0x80, 0x3f, 0x00, 0xbf, 0x40, 0x40, 0x00, 0x3e,
    0x00, 0xc0, 0x00, 0x34, 0xff, 0x7b, 0x01,
};

static void file_written_by_the_python_package_reads_equal(void **state) {
  (void)state;
  tb_safetensors *f;
  assert_ok(tb_safetensors_parse(k_python_file, sizeof k_python_file, &f));
  assert_int_equal(tb_safetensors_count(f), 6);
  const char *order[] = {"idx", "w", "bf", "h", "empty", "flag"};
  for (int i = 0; i < 6; i++) assert_string_equal(tb_safetensors_name(f, i), order[i]);
  const char *format;
  assert_ok(tb_safetensors_metadata_get(f, "format", &format));
  assert_string_equal(format, "np");

  tb_tensor_t *w = get(f, "w");
  assert_true(tb_dtype_equal(tb_tensor_dtype(w), F32));
  assert_int_equal(tb_tensor_shape(w)[0], 2);
  assert_int_equal(tb_tensor_shape(w)[1], 3);
  for (int i = 0; i < 6; i++) assert_true(((const float *)tb_tensor_data(w))[i] == (float)i / 4);
  tb_tensor_t *idx = get(f, "idx");
  const int64_t *iv = tb_tensor_data(idx);
  assert_true(iv[0] == -1 && iv[1] == 0 && iv[2] == 7);
  tb_tensor_t *flag = get(f, "flag");
  assert_true(tb_dtype_equal(tb_tensor_dtype(flag), dt(TB_DL_BOOL, 8)));
  assert_int_equal(tb_tensor_ndim(flag), 0);
  assert_int_equal(*(const uint8_t *)tb_tensor_data(flag), 1);
  /* float16 and bfloat16 through a cast to float32. */
  tb_tensor_t *h = get(f, "h"), *bf = get(f, "bf"), *hc, *bc;
  const DLDataType f32 = F32;
  assert_ok(tb_tensor_copy(h, &f32, TB_ORDER_C, 0, &hc));
  assert_ok(tb_tensor_copy(bf, &f32, TB_ORDER_C, 0, &bc));
  const float *hv = tb_tensor_data(hc), *bv = tb_tensor_data(bc);
  assert_true(hv[0] == 1.5f && hv[1] == -2.0f && hv[2] == 0.25f && hv[3] == 65504.0f);
  assert_true(bv[0] == 1.0f && bv[1] == -0.5f && bv[2] == 3.0f);
  assert_true(tb_dtype_equal(tb_tensor_dtype(bf), dt(TB_DL_BFLOAT, 16)));
  tb_tensor_t *empty = get(f, "empty");
  assert_int_equal(tb_tensor_numel(empty), 0);
  assert_int_equal(tb_tensor_shape(empty)[1], 2);

  /* Saving the same tensors gives the same bytes. */
  const char *names[] = {"w", "idx", "flag", "h", "bf", "empty"};
  const tb_tensor_t *tensors[] = {w, idx, flag, h, bf, empty};
  const char *keys[] = {"format"}, *values[] = {"np"};
  SCRATCH_PATH(path, "python_again.safetensors");
  assert_ok(tb_safetensors_save(path, 6, names, tensors, 1, keys, values));
  size_t n;
  unsigned char *bytes = read_file(path, &n);
  assert_int_equal(n, sizeof k_python_file);
  assert_memory_equal(bytes, k_python_file, n);
  free(bytes);

  tb_tensor_release(w);
  tb_tensor_release(idx);
  tb_tensor_release(flag);
  tb_tensor_release(h);
  tb_tensor_release(bf);
  tb_tensor_release(hc);
  tb_tensor_release(bc);
  tb_tensor_release(empty);
  tb_safetensors_close(f);
}

/* ------------------------------------------------------------------------ */
/* Saving                                                                   */
/* ------------------------------------------------------------------------ */

/* The reference implementation's own test vectors: an empty file, and one
 * with only {"framework": "pt"}. */
static void save_writes_the_reference_bytes(void **state) {
  (void)state;
  SCRATCH_PATH(path, "empty.safetensors");
  assert_ok(tb_safetensors_save(path, 0, NULL, NULL, 0, NULL, NULL));
  size_t n;
  unsigned char *bytes = read_file(path, &n);
  static const unsigned char empty[] = {8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
  assert_int_equal(n, sizeof empty);
  assert_memory_equal(bytes, empty, n);
  free(bytes);

  const char *keys[] = {"framework"}, *values[] = {"pt"};
  assert_ok(tb_safetensors_save(path, 0, NULL, NULL, 1, keys, values));
  bytes = read_file(path, &n);
  static const char with_meta[] = "(\0\0\0\0\0\0\0{\"__metadata__\":{\"framework\":\"pt\"}}     ";
  assert_int_equal(n, sizeof with_meta - 1);
  assert_memory_equal(bytes, with_meta, n);
  free(bytes);

  /* The reference's one-tensor vector: attn.0, F32 [1, 2, 3], 0..5. */
  const float v[6] = {0, 1, 2, 3, 4, 5};
  const int64_t shape[3] = {1, 2, 3};
  tb_tensor_t *t;
  assert_ok(tb_from_array((void *)(uintptr_t)v, 0, F32, 3, shape, NULL, cpu(), TB_FLAG_READONLY,
                          NULL, NULL, &t));
  const char *names[] = {"attn.0"};
  const tb_tensor_t *ts[] = {t};
  assert_ok(tb_safetensors_save(path, 1, names, ts, 0, NULL, NULL));
  bytes = read_file(path, &n);
  static const char header[] =
      "{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}";
  assert_int_equal(n, 8 + 64 + 24);
  assert_int_equal(bytes[0], 64);
  assert_memory_equal(bytes + 8, header, sizeof header - 1);
  assert_int_equal(strlen(header), 64);
  assert_memory_equal(bytes + 72, v, 24);
  free(bytes);
  tb_tensor_release(t);
}

/* Every safetensors dtype, each in the shapes (), (0,), (2, 0, 3), (3, 4)
 * (packed ones where their bits fill whole bytes), saved in one file and
 * read back: same dtypes, shapes and bytes; every entry aligned and zero
 * copy. */
static const struct {
  const char *name;
  DLDataType dtype;
} k_dtypes[] = {
    {"bool", {TB_DL_BOOL, 8, 1}},
    {"u8", {TB_DL_UINT, 8, 1}},
    {"i8", {TB_DL_INT, 8, 1}},
    {"i16", {TB_DL_INT, 16, 1}},
    {"u16", {TB_DL_UINT, 16, 1}},
    {"f16", {TB_DL_FLOAT, 16, 1}},
    {"bf16", {TB_DL_BFLOAT, 16, 1}},
    {"i32", {TB_DL_INT, 32, 1}},
    {"u32", {TB_DL_UINT, 32, 1}},
    {"f32", {TB_DL_FLOAT, 32, 1}},
    {"f64", {TB_DL_FLOAT, 64, 1}},
    {"i64", {TB_DL_INT, 64, 1}},
    {"u64", {TB_DL_UINT, 64, 1}},
    {"c64", {TB_DL_COMPLEX, 64, 1}},
    {"e4m3", {TB_DL_FLOAT8_E4M3FN, 8, 1}},
    {"e5m2", {TB_DL_FLOAT8_E5M2, 8, 1}},
    {"e8m0", {TB_DL_FLOAT8_E8M0FNU, 8, 1}},
    {"e4m3fnuz", {TB_DL_FLOAT8_E4M3FNUZ, 8, 1}},
    {"e5m2fnuz", {TB_DL_FLOAT8_E5M2FNUZ, 8, 1}},
    {"f4", {TB_DL_FLOAT4_E2M1FN, 4, 1}},
    {"f6e2m3", {TB_DL_FLOAT6_E2M3FN, 6, 1}},
    {"f6e3m2", {TB_DL_FLOAT6_E3M2FN, 6, 1}},
};
#define N_DTYPES (sizeof k_dtypes / sizeof k_dtypes[0])

static void every_dtype_and_shape_round_trips(void **state) {
  (void)state;
  static const int32_t ndims[4] = {0, 1, 3, 2};
  static const int64_t shapes[4][3] = {{0}, {0}, {2, 0, 3}, {3, 4}};
  enum { MAX = N_DTYPES * 4 };
  char names[MAX][32];
  const char *name_ptrs[MAX];
  tb_tensor_t *tensors[MAX];
  int n = 0;
  for (size_t d = 0; d < N_DTYPES; d++) {
    for (int s = 0; s < 4; s++) {
      tb_tensor_t *t;
      assert_ok(tb_tensor_empty(k_dtypes[d].dtype, ndims[s], shapes[s], cpu(), TB_ORDER_C, &t));
      const int64_t bits = k_dtypes[d].dtype.bits;
      if (bits < 8 && (tb_tensor_numel(t) * bits) % 8 != 0) { /* not whole bytes */
        tb_tensor_release(t);
        continue;
      }
      unsigned char *p = tb_tensor_data(t);
      for (int64_t k = 0; k < tb_tensor_nbytes(t); k++) {
        p[k] = k_dtypes[d].dtype.code == TB_DL_BOOL ? (unsigned char)(k & 1)
                                                 : (unsigned char)(k * 37 + d * 11 + 1);
      }
      snprintf(names[n], sizeof names[n], "%s_%d", k_dtypes[d].name, s);
      name_ptrs[n] = names[n];
      tensors[n++] = t;
    }
  }
  SCRATCH_PATH(path, "dtypes.safetensors");
  const char *keys[] = {"b", "a"}, *values[] = {"2", "1"};
  assert_ok(tb_safetensors_save(path, n, name_ptrs, (const tb_tensor_t *const *)tensors, 2, keys,
                                values));
  tb_safetensors *f;
  assert_ok(tb_safetensors_open(path, &f));
  assert_int_equal(tb_safetensors_count(f), n);
  assert_int_equal(tb_safetensors_metadata_count(f), 2);
  assert_string_equal(tb_safetensors_metadata_key(f, 0), "a");
  assert_string_equal(tb_safetensors_metadata_value(f, 1), "2");
  const void *base = NULL;
  for (int i = 0; i < n; i++) {
    tb_tensor_t *t = get(f, names[i]);
    const DLDataType want = tb_tensor_dtype(tensors[i]);
    assert_true(tb_dtype_equal(tb_tensor_dtype(t), want));
    assert_int_equal(tb_tensor_ndim(t), tb_tensor_ndim(tensors[i]));
    for (int32_t k = 0; k < tb_tensor_ndim(t); k++) {
      assert_int_equal(tb_tensor_shape(t)[k], tb_tensor_shape(tensors[i])[k]);
    }
    assert_int_equal(tb_tensor_nbytes(t), tb_tensor_nbytes(tensors[i]));
    if (tb_tensor_numel(t) > 0) {
      assert_memory_equal(tb_tensor_data(t), tb_tensor_data(tensors[i]),
                          (size_t)tb_tensor_nbytes(t));
      const size_t item = tb_dtype_itemsize(want);
      if (item > 0) assert_int_equal((uintptr_t)tb_tensor_data(t) % item, 0);
      if (base == NULL) base = tb_tensor_base(t);
      assert_ptr_equal(tb_tensor_base(t), base); /* all zero copy, over the mapping */
    }
    assert_true(tb_tensor_is_readonly(t));
    tb_tensor_release(t);
  }
  tb_safetensors_close(f);
  for (int i = 0; i < n; i++) tb_tensor_release(tensors[i]);
  assert_int_equal(n, (int)N_DTYPES * 4 - 3); /* F4, F6_E2M3 and F6_E3M2 skip (): 4 or 6 bits */
}

/* The expected C-order bytes of t. */
static tb_tensor_t *c_copy(const tb_tensor_t *t) {
  tb_tensor_t *c;
  assert_ok(tb_tensor_copy(t, NULL, TB_ORDER_C, 0, &c));
  return c;
}

static void strided_tensors_are_written_in_c_order(void **state) {
  (void)state;
  /* A (300000, 2) float32 base: its transpose is (2, 300000) with rows of
   * 1.2 MB, more than the 1 MiB buffer, so each row is cut again. */
  const int64_t big_shape[2] = {300000, 2};
  tb_tensor_t *big;
  assert_ok(tb_tensor_empty(F32, 2, big_shape, cpu(), TB_ORDER_C, &big));
  float *bp = tb_tensor_data(big);
  for (int64_t i = 0; i < 600000; i++) bp[i] = (float)i;
  const int64_t small_shape[2] = {3, 4};
  tb_tensor_t *small;
  assert_ok(tb_tensor_empty(I32, 2, small_shape, cpu(), TB_ORDER_C, &small));
  for (int i = 0; i < 12; i++) ((int32_t *)tb_tensor_data(small))[i] = i * 10 - 3;

  tb_tensor_t *v[6];
  assert_ok(tb_tensor_transpose(big, 0, 1, &v[0]));           /* (2, 300000), strides (1, 2) */
  assert_ok(tb_tensor_transpose(small, 0, 1, &v[1]));         /* (4, 3) */
  assert_ok(tb_tensor_slice(small, 1, INT64_MAX, INT64_MIN, -2, &v[2])); /* (3, 2) reversed */
  const int64_t ex[3] = {2, 3, 4};
  assert_ok(tb_tensor_expand(small, 3, ex, &v[3]));           /* stride 0 */
  assert_ok(tb_tensor_slice(big, 0, 1, 600001, 3, &v[4]));    /* (100000, 2) every third row */
  tb_tensor_t *row;
  assert_ok(tb_tensor_select(v[0], 0, 1, &row));              /* (300000,) stride 2 */
  v[5] = row;
  const char *names[6] = {"big_t", "small_t", "rev", "expanded", "step3", "column"};
  SCRATCH_PATH(path, "strided.safetensors");
  assert_ok(tb_safetensors_save(path, 6, names, (const tb_tensor_t *const *)v, 0, NULL, NULL));
  tb_safetensors *f;
  assert_ok(tb_safetensors_open(path, &f));
  for (int i = 0; i < 6; i++) {
    tb_tensor_t *t = get(f, names[i]), *want = c_copy(v[i]);
    assert_int_equal(tb_tensor_ndim(t), tb_tensor_ndim(want));
    for (int32_t k = 0; k < tb_tensor_ndim(t); k++) {
      assert_int_equal(tb_tensor_shape(t)[k], tb_tensor_shape(want)[k]);
    }
    assert_int_equal(tb_tensor_nbytes(t), tb_tensor_nbytes(want));
    assert_memory_equal(tb_tensor_data(t), tb_tensor_data(want), (size_t)tb_tensor_nbytes(t));
    tb_tensor_release(want);
    tb_tensor_release(t);
  }
  /* Spot checks against the base, independent of the copy engine. */
  tb_tensor_t *t = get(f, "big_t");
  const float *tv = tb_tensor_data(t);
  assert_true(tv[0] == 0.0f && tv[1] == 2.0f && tv[299999] == 599998.0f && tv[300000] == 1.0f &&
              tv[599999] == 599999.0f);
  tb_tensor_release(t);
  tb_safetensors_close(f);
  for (int i = 0; i < 6; i++) tb_tensor_release(v[i]);
  tb_tensor_release(big);
  tb_tensor_release(small);
}

static void names_and_metadata_are_escaped_and_read_back(void **state) {
  (void)state;
  const char *names[] = {"quote\"back\\slash", "ctl\x01\x1f\x7f\n\t\b\f\r", "caf\xc3\xa9 \xf0\x9f\x98\x80",
                         "/slash"};
  const char *keys[] = {"k\"\x02"}, *values[] = {"line\nnext \xe2\x82\xac"};
  tb_tensor_t *t[4];
  for (int i = 0; i < 4; i++) {
    const int64_t shape[1] = {i + 1};
    assert_ok(tb_tensor_zeros(U8, 1, shape, cpu(), TB_ORDER_C, &t[i]));
  }
  SCRATCH_PATH(path, "escapes.safetensors");
  assert_ok(tb_safetensors_save(path, 4, names, (const tb_tensor_t *const *)t, 1, keys, values));
  size_t n;
  unsigned char *bytes = read_file(path, &n);
  /* serde_json's escapes: short ones where JSON has them, \u00xx otherwise
   * (lowercase), U+007F and non-ASCII as they are, '/' unescaped. */
  const char *expect[] = {"\"quote\\\"back\\\\slash\"", "\"ctl\\u0001\\u001f\x7f\\n\\t\\b\\f\\r\"",
                          "\"k\\\"\\u0002\":\"line\\nnext \xe2\x82\xac\"", "\"/slash\""};
  for (int i = 0; i < 4; i++) {
    void *hit = memmem(bytes, n, expect[i], strlen(expect[i]));
    if (hit == NULL) print_error("header lacks %s\n", expect[i]);
    assert_non_null(hit);
  }
  free(bytes);
  tb_safetensors *f;
  assert_ok(tb_safetensors_open(path, &f));
  for (int i = 0; i < 4; i++) {
    tb_tensor_t *r = get(f, names[i]);
    assert_int_equal(tb_tensor_numel(r), tb_tensor_numel(t[i]));
    tb_tensor_release(r);
  }
  const char *value;
  assert_ok(tb_safetensors_metadata_get(f, keys[0], &value));
  assert_string_equal(value, values[0]);
  tb_safetensors_close(f);
  for (int i = 0; i < 4; i++) tb_tensor_release(t[i]);
}

/* Saving over the file the entries come from: the new file replaces the
 * old one by rename, so the old mapping, and every entry over it, stays as
 * it was. */
static void save_over_the_open_file_keeps_its_entries(void **state) {
  (void)state;
  unsigned char data[44];
  make_data3(data);
  SCRATCH_PATH(saved, "overwrite.safetensors");
  write_safetensors(saved, k_header3, data, sizeof data);
  tb_safetensors *f;
  assert_ok(tb_safetensors_open(saved, &f));
  tb_tensor_t *a = get(f, "a"), *b = get(f, "b");
  tb_safetensors_close(f);
  const char *names[] = {"b_renamed"};
  const tb_tensor_t *ts[] = {b};
  assert_ok(tb_safetensors_save(saved, 1, names, ts, 0, NULL, NULL));
  assert_true(((const float *)tb_tensor_data(a))[3] == 4.25f);
  assert_true(((const int64_t *)tb_tensor_data(b))[2] == INT64_MAX);
  assert_ok(tb_safetensors_open(saved, &f));
  assert_int_equal(tb_safetensors_count(f), 1);
  tb_tensor_t *b2 = get(f, "b_renamed");
  assert_memory_equal(tb_tensor_data(b2), tb_tensor_data(b), 24);
  assert_false(tb_tensor_shares_storage(b2, b));
  tb_tensor_release(b2);
  tb_safetensors_close(f);
  tb_tensor_release(a);
  tb_tensor_release(b);
}

static void save_refuses_bad_arguments(void **state) {
  (void)state;
  fake_devices_install();
  const int64_t shape[1] = {3};
  tb_tensor_t *u8, *c128, *f4, *dev;
  assert_ok(tb_tensor_zeros(U8, 1, shape, cpu(), TB_ORDER_C, &u8));
  assert_ok(tb_tensor_zeros(dt(TB_DL_COMPLEX, 128), 1, shape, cpu(), TB_ORDER_C, &c128));
  assert_ok(tb_tensor_zeros(dt(TB_DL_FLOAT4_E2M1FN, 4), 1, shape, cpu(), TB_ORDER_C, &f4));
  static char fake_memory[16];
  assert_ok(tb_from_array(fake_memory, 0, U8, 1, shape, NULL,
                          (DLDevice){(DLDeviceType)FAKE_ADDRESS_DEVICE, 0}, 0, NULL, NULL, &dev));

  /* An existing file that every failed save must leave as it is. */
  SCRATCH_PATH(saved, "keep.safetensors");
  const char *one[] = {"x"};
  const tb_tensor_t *t_u8[] = {u8};
  assert_ok(tb_safetensors_save(saved, 1, one, t_u8, 0, NULL, NULL));
  size_t before_n;
  unsigned char *before = read_file(saved, &before_n);
  const int files_before = count_dir_entries(scratch_dir());

  const char *dup[] = {"x", "x"}, *empty[] = {""}, *meta[] = {"__metadata__"},
             *bad_utf8[] = {"a\xff"}, *null_name[] = {NULL};
  const tb_tensor_t *two[] = {u8, u8}, *t_null[] = {NULL}, *t_c128[] = {c128}, *t_f4[] = {f4},
                    *t_dev[] = {dev};
  const char *k2[] = {"k", "k"}, *v2[] = {"1", "2"}, *kbad[] = {"\xc3"}, *vbad[] = {"\xe2\x82"};
  const struct {
    int64_t n;
    const char *const *names;
    const tb_tensor_t *const *tensors;
    int64_t n_meta;
    const char *const *keys, *const *values;
    tb_status status;
    const char *mention;
  } cases[] = {
      {2, dup, two, 0, NULL, NULL, TB_ERR_INVALID, "names has 'x' twice"},
      {1, empty, t_u8, 0, NULL, NULL, TB_ERR_INVALID, "names[0] is empty"},
      {1, meta, t_u8, 0, NULL, NULL, TB_ERR_INVALID, "names[0] is \"__metadata__\""},
      {1, bad_utf8, t_u8, 0, NULL, NULL, TB_ERR_INVALID, "names[0] is not valid UTF-8 (byte 0xff at 1)"},
      {1, null_name, t_u8, 0, NULL, NULL, TB_ERR_INVALID, "names[0] is NULL"},
      {1, one, t_null, 0, NULL, NULL, TB_ERR_INVALID, "tensors[0] ('x') is NULL"},
      {1, one, t_c128, 0, NULL, NULL, TB_ERR_DTYPE, "tensors[0] ('x') is complex128, which safetensors has no dtype for"},
      {1, one, t_f4, 0, NULL, NULL, TB_ERR_DTYPE, "3 elements of F4 make 12 bits"},
      {1, one, t_dev, 0, NULL, NULL, TB_ERR_DEVICE, "tensors[0] ('x') is in vpi:0 memory"},
      {1, one, t_u8, 2, k2, v2, TB_ERR_INVALID, "meta_keys has 'k' twice"},
      {1, one, t_u8, 1, kbad, v2, TB_ERR_INVALID, "meta_keys[0] is not valid UTF-8"},
      {1, one, t_u8, 1, k2, vbad, TB_ERR_INVALID, "meta_values[0] is not valid UTF-8"},
      {-1, one, t_u8, 0, NULL, NULL, TB_ERR_INVALID, "n = -1 is negative"},
      {1, one, t_u8, -2, NULL, NULL, TB_ERR_INVALID, "n_meta = -2 is negative"},
      {1, NULL, t_u8, 0, NULL, NULL, TB_ERR_INVALID, "names is NULL but n = 1"},
      {1, one, NULL, 0, NULL, NULL, TB_ERR_INVALID, "tensors is NULL but n = 1"},
      {0, NULL, NULL, 1, NULL, v2, TB_ERR_INVALID, "meta_keys is NULL but n_meta = 1"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    tb_clear_error();
    tb_status st = tb_safetensors_save(saved, cases[i].n, cases[i].names, cases[i].tensors,
                                       cases[i].n_meta, cases[i].keys, cases[i].values);
    if (st != cases[i].status || strstr(tb_last_error(), cases[i].mention) == NULL) {
      print_error("case %zu: got %s \"%s\", expected %s mentioning \"%s\"\n", i,
                  tb_status_name(st), tb_last_error(), tb_status_name(cases[i].status),
                  cases[i].mention);
      fail();
    }
  }
  assert_status(tb_safetensors_save(NULL, 0, NULL, NULL, 0, NULL, NULL), TB_ERR_INVALID);
  SCRATCH_PATH(nowhere, "no/such/dir.safetensors");
  assert_status(tb_safetensors_save(nowhere, 1, one, t_u8, 0, NULL, NULL), TB_ERR_IO);
  assert_error_mentions("no/such/dir.safetensors");
  /* A directory in the way of the rename: the temporary file goes again. */
  SCRATCH_PATH(dir_path, "a_dir");
  assert_int_equal(mkdir(dir_path, 0700), 0);
  assert_status(tb_safetensors_save(dir_path, 1, one, t_u8, 0, NULL, NULL), TB_ERR_IO);
  assert_int_equal(rmdir(dir_path), 0);

  size_t after_n;
  unsigned char *after = read_file(saved, &after_n);
  assert_int_equal(after_n, before_n);
  assert_memory_equal(after, before, before_n);
  assert_int_equal(count_dir_entries(scratch_dir()), files_before); /* no temporary file left behind */
  free(before);
  free(after);
  tb_tensor_release(u8);
  tb_tensor_release(c128);
  tb_tensor_release(f4);
  tb_tensor_release(dev);
}

/* One handle, entries taken and dropped from several threads at once. */
static int take_entries(void *arg) {
  const tb_safetensors *f = arg;
  for (int i = 0; i < 300; i++) {
    tb_tensor_t *t;
    if (tb_safetensors_get_index(f, i % tb_safetensors_count(f), &t) != TB_OK) return 1;
    tb_tensor_t *again;
    if (tb_safetensors_get(f, tb_safetensors_name(f, i % 3), &again) != TB_OK) return 1;
    const int ok = tb_tensor_shares_storage(t, again);
    tb_tensor_release(again);
    tb_tensor_release(t);
    if (!ok) return 1;
  }
  return 0;
}

static void entries_can_be_taken_from_many_threads(void **state) {
  (void)state;
  unsigned char data[44];
  make_data3(data);
  size_t size;
  unsigned char *bytes = build(k_header3, 0, data, sizeof data, &size);
  tb_safetensors *f;
  assert_ok(tb_safetensors_parse(bytes, size, &f));
  test_thread threads[4];
  for (int i = 0; i < 4; i++) test_thread_start(&threads[i], take_entries, f);
  for (int i = 0; i < 4; i++) assert_int_equal(test_thread_join(&threads[i]), 0);
  tb_safetensors_close(f);
  free(bytes);
}

/* Every allocation of open, get and save failing in turn: a clean
 * TB_ERR_NOMEM each time, nothing leaked, and success once all succeed. */
static void every_failed_allocation_is_survived(void **state) {
  (void)state;
  unsigned char data[44];
  make_data3(data);
  SCRATCH_PATH(saved, "nomem.safetensors");
  SCRATCH_PATH(out, "nomem_out.safetensors");
  write_safetensors(saved, k_header3, data, sizeof data);
  bool done = false;
  for (long fail_at = 0; !done; fail_at++) {
    assert_true(fail_at < 1000);
    test_allocator a;
    test_allocator_install(&a, fail_at);
    tb_safetensors *f = NULL;
    tb_tensor_t *t[3] = {NULL, NULL, NULL}, *strided = NULL;
    tb_status st;
    guarded_call(st, tb_safetensors_open(saved, &f));
    for (int i = 0; st == TB_OK && i < 3; i++) {
      guarded_call(st, tb_safetensors_get_index(f, i, &t[i]));
    }
    if (st == TB_OK) guarded_call(st, tb_tensor_transpose(t[0], 0, 1, &strided));
    if (st == TB_OK) {
      const char *names[] = {"a", "b", "c"};
      const tb_tensor_t *ts[] = {strided, t[1], t[2]};
      const char *keys[] = {"x", "y"}, *values[] = {"1", "2"};
      guarded_call(st, tb_safetensors_save(out, 3, names, ts, 2, keys, values));
    }
    if (st != TB_OK) assert_int_equal(st, TB_ERR_NOMEM);
    done = st == TB_OK;
    tb_tensor_release(strided);
    for (int i = 0; i < 3; i++) tb_tensor_release(t[i]);
    tb_safetensors_close(f);
    assert_int_equal(a.live_bytes, 0);
    assert_int_equal(a.allocs, a.frees);
    test_allocator_remove();
  }
  assert_int_equal(count_mappings(saved, NULL, NULL), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(open_reads_entries_of_a_hand_written_file),
      cmocka_unit_test(entries_are_read_only),
      cmocka_unit_test(mapping_lives_until_the_last_entry_goes),
      cmocka_unit_test(parse_reads_a_buffer_without_copying),
      cmocka_unit_test(entries_come_in_the_order_of_their_data),
      cmocka_unit_test(accepts_what_the_format_allows),
      cmocka_unit_test(hostile_headers_are_refused_with_a_reason),
      cmocka_unit_test(hostile_lengths_are_refused),
      cmocka_unit_test(deep_nesting_is_refused),
      cmocka_unit_test(open_names_the_file_in_its_messages),
      cmocka_unit_test(misaligned_entries_are_copied),
      cmocka_unit_test(file_written_by_the_python_package_reads_equal),
      cmocka_unit_test(save_writes_the_reference_bytes),
      cmocka_unit_test(every_dtype_and_shape_round_trips),
      cmocka_unit_test(strided_tensors_are_written_in_c_order),
      cmocka_unit_test(names_and_metadata_are_escaped_and_read_back),
      cmocka_unit_test(save_over_the_open_file_keeps_its_entries),
      cmocka_unit_test(save_refuses_bad_arguments),
      cmocka_unit_test(entries_can_be_taken_from_many_threads),
      cmocka_unit_test(every_failed_allocation_is_survived),
  };
  return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
