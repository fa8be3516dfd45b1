/*
 * .npy files through the public API: tb_npy_load (mapping), tb_npy_save
 * (streaming), tb_npy_parse_header.
 *
 * Files are written by hand here, byte for byte, the way numpy.save writes
 * them (and the way hostile writers do not), into a private folder made for
 * the run. Zero copy is checked against the process's own mappings
 * (/proc/self/maps): the tensor's data lies in the mapping of the file at
 * the header's offset, and the mapping is gone after the last release.
 */
#define _GNU_SOURCE /* memmem */

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.h"

/* ------------------------------------------------------------------------ */
/* Files                                                                    */
/* ------------------------------------------------------------------------ */

/*
 * A .npy file: magic, version major.0, the length field, `dict`, spaces,
 * '\n', then the data. The header ends (the data starts) at byte
 * `data_offset`; 0 pads it to the next multiple of 64, as NumPy does, and 1
 * does not pad it at all (the '\n' right after the dict). Returns malloc'ed bytes and their count.
 */
static unsigned char *build_npy(unsigned major, const char *dict, size_t data_offset,
                                const void *data, size_t ndata, size_t *len) {
  const size_t prefix = major == 1 ? 10 : 12;
  const size_t dict_len = strlen(dict);
  if (data_offset == 0) data_offset = (prefix + dict_len + 1 + 63) / 64 * 64;
  if (data_offset == 1) data_offset = prefix + dict_len + 1;
  assert_true(data_offset >= prefix + dict_len + 1);
  const size_t header_len = data_offset - prefix;
  unsigned char *b = malloc(data_offset + ndata + 1);
  assert_non_null(b);
  memcpy(b, "\x93NUMPY", 6);
  b[6] = (unsigned char)major;
  b[7] = 0;
  put_le(b + 8, header_len, (int)(prefix - 8));
  memcpy(b + prefix, dict, dict_len);
  memset(b + prefix + dict_len, ' ', header_len - dict_len - 1);
  b[data_offset - 1] = '\n';
  if (ndata > 0) memcpy(b + data_offset, data, ndata);
  *len = data_offset + ndata;
  return b;
}

/* Writes build_npy's file to `path`. */
static void write_npy(const char *path, unsigned major, const char *dict, size_t data_offset,
                      const void *data, size_t ndata) {
  size_t len;
  unsigned char *b = build_npy(major, dict, data_offset, data, ndata, &len);
  write_file(path, b, len);
  free(b);
}

/* ------------------------------------------------------------------------ */
/* Tensors                                                                  */
/* ------------------------------------------------------------------------ */

/* Every dtype NumPy and the library share, with NumPy's descr. */
static const struct {
  uint8_t code, bits;
  const char *descr;
} k_npy_dtypes[] = {
    {TB_DL_BOOL, 8, "|b1"},      {kDLInt, 8, "|i1"},    {kDLInt, 16, "<i2"},   {kDLInt, 32, "<i4"},
    {kDLInt, 64, "<i8"},         {kDLUInt, 8, "|u1"},   {kDLUInt, 16, "<u2"},  {kDLUInt, 32, "<u4"},
    {kDLUInt, 64, "<u8"},        {kDLFloat, 16, "<f2"}, {kDLFloat, 32, "<f4"},
    {kDLFloat, 64, "<f8"},
    {TB_DL_COMPLEX, 64, "<c8"},  {TB_DL_COMPLEX, 128, "<c16"},
};
#define N_NPY_DTYPES (sizeof k_npy_dtypes / sizeof k_npy_dtypes[0])

/* A C-contiguous tensor of dtype whose elements are distinct small values
 * (every dtype holds them exactly; bool gets a pattern of 0 and 1). */
static tb_tensor_t *pattern_tensor(DLDataType dtype, int32_t ndim, const int64_t *shape) {
  int64_t numel = 1;
  for (int32_t d = 0; d < ndim; d++) numel *= shape[d];
  double *values = malloc((size_t)(numel > 0 ? numel : 1) * sizeof *values);
  assert_non_null(values);
  for (int64_t i = 0; i < numel; i++) values[i] = (double)((i * 7) % 61) - 20.0;
  tb_tensor_t *t;
  assert_ok(tb_tensor_new(values, F64, ndim, shape, NULL, &dtype, TB_ORDER_C, 0, &t));
  free(values);
  return t;
}

/* Asserts equal dtype and shape, and every element's bytes equal. */
static void assert_same_elements(const tb_tensor_t *a, const tb_tensor_t *b) {
  assert_true(tb_dtype_equal(tb_tensor_dtype(a), tb_tensor_dtype(b)));
  const int32_t ndim = tb_tensor_ndim(a);
  assert_int_equal(tb_tensor_ndim(b), ndim);
  for (int32_t d = 0; d < ndim; d++) {
    assert_int_equal(tb_tensor_shape(a)[d], tb_tensor_shape(b)[d]);
  }
  if (tb_tensor_numel(a) == 0) return;
  const size_t itemsize = tb_dtype_itemsize(tb_tensor_dtype(a));
  int64_t index[TB_MAX_NDIM] = {0};
  for (;;) {
    void *pa, *pb;
    assert_ok(tb_tensor_element_ptr(a, index, &pa));
    assert_ok(tb_tensor_element_ptr(b, index, &pb));
    if (memcmp(pa, pb, itemsize) != 0) {
      print_error("elements differ at flat position of index[0] = %lld\n",
                  ndim > 0 ? (long long)index[0] : 0LL);
      fail();
    }
    int32_t d = ndim - 1;
    while (d >= 0 && ++index[d] == tb_tensor_shape(a)[d]) index[d--] = 0;
    if (d < 0) break;
  }
}

/* Saves t to `name`, loads it back (read-only) and compares. */
static void assert_round_trip(const tb_tensor_t *t, const char *name) {
  SCRATCH_PATH(path, name);
  assert_ok(tb_npy_save(path, t));
  tb_tensor_t *back;
  assert_ok(tb_npy_load(path, TB_MAP_READ, &back));
  assert_true(tb_tensor_is_contiguous(back, TB_ORDER_C));
  assert_same_elements(t, back);
  tb_tensor_release(back);
}

/* ------------------------------------------------------------------------ */
/* The format, byte for byte                                                */
/* ------------------------------------------------------------------------ */

/* What numpy.save (NumPy 2) writes for np.arange(12, dtype='<f4').reshape(3, 4):
 * the 59-character dict, 20 spaces of room for shape[0] to grow to 21
 * digits, 38 spaces of padding and '\n', so that the data starts at 128. */
static unsigned char *numpy_f4_3x4(size_t *len) {
  static const char dict[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }";
  unsigned char *b = malloc(128 + 48);
  assert_non_null(b);
  memcpy(b, "\x93NUMPY\x01\x00\x76\x00", 10); /* version 1.0, header length 118 */
  memcpy(b + 10, dict, sizeof dict - 1);
  assert_int_equal(10 + sizeof dict - 1, 69);
  memset(b + 69, ' ', 20 + 38);
  b[127] = '\n';
  for (int i = 0; i < 12; i++) {
    float v = (float)i;
    memcpy(b + 128 + 4 * i, &v, 4);
  }
  *len = 128 + 48;
  return b;
}

static void numpy_written_file_loads(void **state) {
  (void)state;
  SCRATCH_PATH(path, "numpy-f4.npy");
  size_t len;
  unsigned char *b = numpy_f4_3x4(&len);
  write_file(path, b, len);
  free(b);
  tb_tensor_t *t;
  assert_ok(tb_npy_load(path, TB_MAP_READ, &t));
  assert_true(tb_dtype_equal(tb_tensor_dtype(t), F32));
  assert_int_equal(tb_tensor_ndim(t), 2);
  assert_int_equal(tb_tensor_shape(t)[0], 3);
  assert_int_equal(tb_tensor_shape(t)[1], 4);
  assert_int_equal(tb_tensor_strides(t)[0], 4);
  assert_int_equal(tb_tensor_strides(t)[1], 1);
  assert_int_equal(tb_tensor_byte_offset(t), 128);
  const float *v = tb_tensor_data(t);
  for (int i = 0; i < 12; i++) assert_true(v[i] == (float)i);
  tb_tensor_release(t);
}

/* NumPy 1.x wrote no growth room: np.asfortranarray of [[0, 1, 2], [3, 4, 5]]
 * as '<f8' is a 58-character dict, 59 spaces and '\n', then the elements in
 * F order: 0 3 1 4 2 5. It loads as an F-ordered tensor over the file. */
static void numpy_fortran_file_loads_f_ordered(void **state) {
  (void)state;
  SCRATCH_PATH(path, "numpy-f8-fortran.npy");
  static const char dict[] = "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }";
  unsigned char b[128 + 48];
  memcpy(b, "\x93NUMPY\x01\x00\x76\x00", 10);
  memcpy(b + 10, dict, sizeof dict - 1);
  memset(b + 10 + sizeof dict - 1, ' ', 127 - (10 + sizeof dict - 1));
  b[127] = '\n';
  const double f_order[6] = {0, 3, 1, 4, 2, 5};
  memcpy(b + 128, f_order, sizeof f_order);
  write_file(path, b, sizeof b);
  tb_tensor_t *t;
  assert_ok(tb_npy_load(path, TB_MAP_READ, &t));
  assert_int_equal(tb_tensor_shape(t)[0], 2);
  assert_int_equal(tb_tensor_shape(t)[1], 3);
  assert_int_equal(tb_tensor_strides(t)[0], 1); /* F order: strides reversed */
  assert_int_equal(tb_tensor_strides(t)[1], 2);
  assert_true(tb_tensor_is_contiguous(t, TB_ORDER_F));
  assert_false(tb_tensor_is_contiguous(t, TB_ORDER_C));
  for (int64_t i = 0; i < 2; i++) {
    for (int64_t j = 0; j < 3; j++) {
      int64_t index[2] = {i, j};
      void *p;
      assert_ok(tb_tensor_element_ptr(t, index, &p));
      assert_true(*(double *)p == (double)(3 * i + j));
    }
  }
  /* Zero copy: the elements are the file's bytes, in the file's order. */
  uintptr_t start = 0, end = 0;
  assert_int_equal(count_mappings(path, &start, &end), 1);
  assert_ptr_equal(tb_tensor_data(t), (void *)(start + 128));
  /* Saved back, it is C order with the same elements. */
  SCRATCH_PATH(again, "numpy-f8-fortran-saved.npy");
  assert_ok(tb_npy_save(again, t));
  tb_tensor_t *back;
  assert_ok(tb_npy_load(again, TB_MAP_READ, &back));
  assert_true(tb_tensor_is_contiguous(back, TB_ORDER_C));
  const double *c = tb_tensor_data(back);
  for (int k = 0; k < 6; k++) assert_true(c[k] == (double)k);
  tb_tensor_release(back);
  tb_tensor_release(t);
}

static void save_writes_what_numpy_writes(void **state) {
  (void)state;
  SCRATCH_PATH(path, "saved-f4.npy");
  float values[12];
  for (int i = 0; i < 12; i++) values[i] = (float)i;
  int64_t shape[2] = {3, 4};
  tb_tensor_t *t;
  assert_ok(tb_from_array(values, 0, F32, 2, shape, NULL, cpu(), 0, NULL, NULL, &t));
  assert_ok(tb_npy_save(path, t));
  tb_tensor_release(t);
  size_t n, expected_n;
  unsigned char *got = read_file(path, &n);
  unsigned char *expected = numpy_f4_3x4(&expected_n);
  assert_int_equal(n, expected_n);
  assert_memory_equal(got, expected, n);
  free(expected);
  free(got);
  /* Where the growth room decides the header's size: a 97-character dict
   * and 20 spaces of growth room (shape[0] has 1 digit) end at byte 127,
   * and the '\n' would fall on 128, a multiple of 64, so that NumPy pads a
   * full 64 more: the data starts at 192. Without the growth room (NumPy
   * 1.x), or with one space less, it would start at 128. */
  static const char dict[] = "{'descr': '|u1', 'fortran_order': False, 'shape': "
                             "(2, 300, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1), }";
  assert_int_equal(sizeof dict - 1, 97);
  static unsigned char want[192 + 600], elements[600];
  memcpy(want, "\x93NUMPY\x01\x00\xb6\x00", 10); /* header length 182 */
  memcpy(want + 10, dict, 97);
  memset(want + 107, ' ', 20 + 64);
  want[191] = '\n';
  for (int i = 0; i < 600; i++) elements[i] = (uint8_t)(i * 13);
  memcpy(want + 192, elements, 600);
  int64_t shape14[14] = {2, 300, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  assert_ok(tb_from_array(elements, 0, U8, 14, shape14, NULL, cpu(), 0, NULL, NULL, &t));
  assert_ok(tb_npy_save(path, t));
  tb_tensor_release(t);
  got = read_file(path, &n);
  assert_int_equal(n, sizeof want);
  assert_memory_equal(got, want, n);
  free(got);
}

/* The parts of a saved file, checked against the format's rules. */
static void assert_npy_layout(const char *path, const char *descr, const char *shape_text,
                              int64_t shape0, const void *data, size_t ndata) {
  size_t n;
  unsigned char *b = read_file(path, &n);
  assert_true(n >= 10);
  assert_memory_equal(b, "\x93NUMPY", 6);
  assert_int_equal(b[6], 1); /* 1.0 */
  assert_int_equal(b[7], 0);
  const size_t header_len = (size_t)get_le(b + 8, 2);
  const size_t data_offset = 10 + header_len;
  assert_int_equal(data_offset % 64, 0);
  assert_int_equal(n, data_offset + ndata);
  char dict[512];
  int dict_len = snprintf(dict, sizeof dict,
                          "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr,
                          shape_text);
  assert_memory_equal(b + 10, dict, (size_t)dict_len);
  /* Then only spaces, then '\n'; at least the growth room of shape[0]. */
  size_t spaces = 0;
  for (size_t k = 10 + (size_t)dict_len; k < data_offset - 1; k++) {
    assert_int_equal(b[k], ' ');
    spaces++;
  }
  assert_int_equal(b[data_offset - 1], '\n');
  if (shape0 >= 0) {
    char digits[32];
    int nd = snprintf(digits, sizeof digits, "%lld", (long long)shape0);
    assert_true(spaces >= (size_t)(21 - nd));
  }
  if (ndata > 0) assert_memory_equal(b + data_offset, data, ndata);
  tb_npy_header h;
  assert_ok(tb_npy_parse_header(b, n, &h));
  assert_int_equal(h.data_offset, data_offset);
  assert_int_equal(h.data_nbytes, ndata);
  assert_int_equal(h.version[0], 1);
  assert_false(h.fortran_order);
  free(b);
}

static void saved_headers_follow_the_format(void **state) {
  (void)state;
  SCRATCH_PATH(path, "layout.npy");
  tb_tensor_t *t;
  /* 0-d */
  int16_t scalar = -7;
  assert_ok(tb_from_array(&scalar, 0, I16, 0, NULL, NULL, cpu(), 0, NULL, NULL, &t));
  assert_ok(tb_npy_save(path, t));
  assert_npy_layout(path, "<i2", "()", -1, &scalar, 2);
  tb_tensor_release(t);
  /* one dimension: the trailing comma */
  uint8_t bytes[5] = {1, 2, 3, 4, 250};
  int64_t five = 5;
  assert_ok(tb_from_array(bytes, 0, U8, 1, &five, NULL, cpu(), 0, NULL, NULL, &t));
  assert_ok(tb_npy_save(path, t));
  assert_npy_layout(path, "|u1", "(5,)", 5, bytes, 5);
  tb_tensor_release(t);
  /* empty, three dimensions */
  int64_t empty[3] = {2, 0, 3};
  assert_ok(tb_tensor_empty(dt(TB_DL_COMPLEX, 128), 3, empty, cpu(), TB_ORDER_C, &t));
  assert_ok(tb_npy_save(path, t));
  assert_npy_layout(path, "<c16", "(2, 0, 3)", 2, NULL, 0);
  tb_tensor_release(t);
  /* bool, and an extent with many digits (the growth room shrinks) */
  bool flags[3] = {true, false, true};
  int64_t three = 3;
  const DLDataType b8 = dt(TB_DL_BOOL, 8);
  assert_ok(tb_from_array(flags, 0, b8, 1, &three, NULL, cpu(), 0, NULL, NULL, &t));
  assert_ok(tb_npy_save(path, t));
  assert_npy_layout(path, "|b1", "(3,)", 3, flags, 3);
  tb_tensor_release(t);
  int64_t wide[2] = {1234567890123, 0};
  assert_ok(tb_tensor_empty(F64, 2, wide, cpu(), TB_ORDER_C, &t));
  assert_ok(tb_npy_save(path, t));
  assert_npy_layout(path, "<f8", "(1234567890123, 0)", 1234567890123, NULL, 0);
  tb_tensor_release(t);
  /* TB_MAX_NDIM extents still fit a 1.0 header */
  int64_t ones[TB_MAX_NDIM];
  char text[512] = "(";
  for (int d = 0; d < TB_MAX_NDIM; d++) {
    ones[d] = 1;
    strcat(text, d == 0 ? "1" : ", 1");
  }
  strcat(text, ")");
  float one = 1.5f;
  assert_ok(tb_from_array(&one, 0, F32, TB_MAX_NDIM, ones, NULL, cpu(), 0, NULL, NULL, &t));
  assert_ok(tb_npy_save(path, t));
  assert_npy_layout(path, "<f4", text, 1, &one, 4);
  tb_tensor_release(t);
}

/* ------------------------------------------------------------------------ */
/* Round trips                                                              */
/* ------------------------------------------------------------------------ */

static void every_dtype_and_shape_round_trips(void **state) {
  (void)state;
  static const int64_t shapes[5][3] = {{0}, {0}, {2, 0, 3}, {3, 4}, {2, 3, 4}};
  static const int32_t ndims[5] = {0, 1, 3, 2, 3};
  for (size_t k = 0; k < N_NPY_DTYPES; k++) {
    DLDataType dtype = dt(k_npy_dtypes[k].code, k_npy_dtypes[k].bits);
    for (int s = 0; s < 5; s++) {
      tb_tensor_t *t = pattern_tensor(dtype, ndims[s], shapes[s]);
      SCRATCH_PATH(path, "dtype.npy");
      assert_ok(tb_npy_save(path, t));
      /* the header names NumPy's descr */
      tb_npy_header h;
      size_t n;
      unsigned char *b = read_file(path, &n);
      assert_ok(tb_npy_parse_header(b, n, &h));
      char needle[32];
      snprintf(needle, sizeof needle, "'descr': '%s'", k_npy_dtypes[k].descr);
      assert_non_null(memmem(b, h.data_offset, needle, strlen(needle)));
      assert_true(tb_dtype_equal(h.dtype, dtype));
      assert_int_equal(h.ndim, ndims[s]);
      free(b);
      tb_tensor_t *back;
      assert_ok(tb_npy_load(path, TB_MAP_READ, &back));
      assert_same_elements(t, back);
      if (tb_tensor_numel(t) > 0) {
        assert_memory_equal(tb_tensor_data(back), tb_tensor_data(t), (size_t)tb_tensor_nbytes(t));
      }
      tb_tensor_release(back);
      tb_tensor_release(t);
    }
  }
}

static void f_ordered_tensor_is_saved_in_c_order(void **state) {
  (void)state;
  int64_t shape[3] = {2, 3, 4};
  tb_tensor_t *c = pattern_tensor(I32, 3, shape), *f;
  assert_ok(tb_tensor_copy(c, NULL, TB_ORDER_F, 0, &f));
  assert_false(tb_tensor_is_contiguous(f, TB_ORDER_C));
  SCRATCH_PATH(path, "from-f.npy");
  assert_ok(tb_npy_save(path, f));
  tb_tensor_t *back;
  assert_ok(tb_npy_load(path, TB_MAP_READ, &back));
  assert_true(tb_tensor_is_contiguous(back, TB_ORDER_C));
  assert_same_elements(f, back);
  /* C order in the file: the bytes of the C-contiguous original */
  assert_memory_equal(tb_tensor_data(back), tb_tensor_data(c), (size_t)tb_tensor_nbytes(c));
  tb_tensor_release(back);
  tb_tensor_release(f);
  tb_tensor_release(c);
}

static void strided_sources_are_saved_in_c_order(void **state) {
  (void)state;
  int64_t shape[3] = {2, 3, 4};
  tb_tensor_t *base = pattern_tensor(F64, 3, shape), *v, *w;
  /* transposed */
  int32_t perm[3] = {2, 0, 1};
  assert_ok(tb_tensor_permute(base, perm, &v));
  assert_round_trip(v, "transposed.npy");
  tb_tensor_release(v);
  /* stepped */
  assert_ok(tb_tensor_slice(base, 2, 0, INT64_MAX, 2, &v));
  assert_round_trip(v, "stepped.npy");
  tb_tensor_release(v);
  /* negative strides, two dimensions reversed */
  assert_ok(tb_tensor_slice(base, 0, INT64_MAX, INT64_MIN, -1, &v));
  assert_ok(tb_tensor_slice(v, 2, INT64_MAX, INT64_MIN, -1, &w));
  assert_true(tb_tensor_strides(w)[0] < 0 && tb_tensor_strides(w)[2] < 0);
  assert_round_trip(w, "reversed.npy");
  tb_tensor_release(w);
  tb_tensor_release(v);
  /* broadcast: zero strides */
  int64_t row_shape[2] = {1, 4}, wide[3] = {5, 3, 4};
  tb_tensor_t *row = pattern_tensor(dt(TB_DL_COMPLEX, 64), 2, row_shape);
  assert_ok(tb_tensor_expand(row, 3, wide, &v));
  assert_int_equal(tb_tensor_strides(v)[0], 0);
  assert_int_equal(tb_tensor_strides(v)[1], 0);
  assert_round_trip(v, "broadcast.npy");
  tb_tensor_release(v);
  tb_tensor_release(row);
  /* a select (a view with a byte offset) of a transposed, stepped view */
  assert_ok(tb_tensor_permute(base, perm, &v));
  assert_ok(tb_tensor_select(v, 1, 1, &w));
  tb_tensor_release(v);
  assert_ok(tb_tensor_slice(w, 1, INT64_MAX, INT64_MIN, -2, &v));
  assert_round_trip(v, "mixed.npy");
  tb_tensor_release(v);
  tb_tensor_release(w);
  /* float16 and bool through the strided path too */
  for (int k = 0; k < 2; k++) {
    const DLDataType small = k == 0 ? dt(kDLFloat, 16) : dt(TB_DL_BOOL, 8);
    tb_tensor_t *h = pattern_tensor(small, 3, shape);
    assert_ok(tb_tensor_transpose(h, 0, 2, &v));
    assert_round_trip(v, "small-types.npy");
    tb_tensor_release(v);
    tb_tensor_release(h);
  }
  tb_tensor_release(base);
}

/* Large strided tensors go through the scratch buffer in blocks: a 1-D one
 * cut inside its only dimension, a 3-D one in blocks of rows below each
 * index of its first dimension, with short last blocks. The counting
 * allocator's largest request shows that a save never allocates the
 * tensor's size, and that it frees what it takes. */
static void large_strided_tensors_stream_through_a_bounded_buffer(void **state) {
  (void)state;
  int64_t n = 1200001;
  tb_tensor_t *flat = pattern_tensor(F32, 1, &n), *stepped;
  assert_ok(tb_tensor_slice(flat, 0, 0, INT64_MAX, 2, &stepped)); /* 600001 floats: 2.4 MB */
  int64_t shape[3] = {100003, 5, 3};
  tb_tensor_t *cube = pattern_tensor(F32, 3, shape), *turned; /* 6 MB */
  int32_t perm[3] = {2, 1, 0};
  assert_ok(tb_tensor_permute(cube, perm, &turned)); /* (3, 5, 100003): rows of 400 KB */
  const tb_tensor_t *cases[2] = {stepped, turned};
  for (int k = 0; k < 2; k++) {
    SCRATCH_PATH(path, "large.npy");
    test_allocator counting;
    test_allocator_install(&counting, -1);
    tb_status st = tb_npy_save(path, cases[k]);
    test_allocator_remove();
    assert_status(st, TB_OK);
    assert_true(counting.max_size > 0);
    assert_true(counting.max_size <= ((size_t)1 << 20));
    assert_int_equal(counting.live_bytes, 0);
    assert_int_equal(counting.allocs, counting.frees);
    tb_tensor_t *back, *expected;
    assert_ok(tb_npy_load(path, TB_MAP_READ, &back));
    assert_ok(tb_tensor_copy(cases[k], NULL, TB_ORDER_C, 0, &expected));
    assert_int_equal(tb_tensor_nbytes(back), tb_tensor_nbytes(expected));
    assert_memory_equal(tb_tensor_data(back), tb_tensor_data(expected),
                        (size_t)tb_tensor_nbytes(expected));
    /* and element by element, sparsely: both ends and the block edges */
    if (k == 0) {
      const int64_t probes[6] = {0, 1, 262143, 262144, 524288, 600000};
      for (int p = 0; p < 6; p++) {
        void *a, *b;
        assert_ok(tb_tensor_element_ptr(cases[k], &probes[p], &a));
        assert_ok(tb_tensor_element_ptr(back, &probes[p], &b));
        assert_memory_equal(a, b, 4);
      }
    }
    tb_tensor_release(expected);
    tb_tensor_release(back);
  }
  tb_tensor_release(turned);
  tb_tensor_release(cube);
  tb_tensor_release(stepped);
  tb_tensor_release(flat);
}

/* ------------------------------------------------------------------------ */
/* Mapping                                                                  */
/* ------------------------------------------------------------------------ */

/* Writes np.arange(12, dtype='<f4').reshape(3, 4) as numpy.save does. */
static void write_numpy_f4(const char *path) {
  size_t len;
  unsigned char *b = numpy_f4_3x4(&len);
  write_file(path, b, len);
  free(b);
}

static void load_is_zero_copy(void **state) {
  (void)state;
  SCRATCH_PATH(path, "zero-copy.npy");
  write_numpy_f4(path);
  assert_int_equal(count_mappings(path, NULL, NULL), 0);
  tb_tensor_t *t;
  assert_ok(tb_npy_load(path, TB_MAP_READ, &t));
  uintptr_t start = 0, end = 0;
  assert_int_equal(count_mappings(path, &start, &end), 1);
  /* The storage is the mapping of the whole file; the data its byte 128. */
  assert_ptr_equal(tb_tensor_base(t), (void *)start);
  assert_int_equal(tb_tensor_byte_offset(t), 128);
  assert_ptr_equal(tb_tensor_data(t), (void *)(start + 128));
  assert_true(start + 128 + 48 <= end);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_size, 128 + 48);
  assert_int_equal(tb_tensor_nbytes(t), st.st_size - 128);
  /* The DLPack view of it names the same bytes. */
  const DLTensor *dl = tb_tensor_dltensor(t);
  assert_ptr_equal((char *)dl->data + dl->byte_offset, (void *)(start + 128));
  tb_tensor_release(t);
}

static void map_read_is_read_only(void **state) {
  (void)state;
  SCRATCH_PATH(path, "read-only.npy");
  write_numpy_f4(path);
  tb_tensor_t *t, *v;
  assert_ok(tb_npy_load(path, TB_MAP_READ, &t));
  assert_true(tb_tensor_is_readonly(t));
  float seven = 7.0f;
  assert_status(tb_tensor_fill(t, &seven, F32), TB_ERR_READONLY);
  assert_ok(tb_tensor_select(t, 0, 1, &v));
  assert_true(tb_tensor_is_readonly(v));
  assert_status(tb_tensor_fill(v, &seven, F32), TB_ERR_READONLY);
  assert_true(((const float *)tb_tensor_data(t))[4] == 4.0f);
  tb_tensor_release(v);
  tb_tensor_release(t);
}

static void map_write_reaches_the_file(void **state) {
  (void)state;
  SCRATCH_PATH(path, "write.npy");
  write_numpy_f4(path);
  tb_tensor_t *t, *row;
  assert_ok(tb_npy_load(path, TB_MAP_WRITE, &t));
  assert_false(tb_tensor_is_readonly(t));
  assert_ok(tb_tensor_select(t, 0, 2, &row));
  float v = -1.5f;
  assert_ok(tb_tensor_fill(row, &v, F32)); /* elements 8..11 */
  ((float *)tb_tensor_data(t))[0] = 42.0f;
  tb_tensor_release(row);
  tb_tensor_release(t);
  size_t n;
  unsigned char *b = read_file(path, &n);
  assert_int_equal(n, 128 + 48);
  float got[12];
  memcpy(got, b + 128, sizeof got);
  assert_true(got[0] == 42.0f);
  for (int i = 1; i < 8; i++) assert_true(got[i] == (float)i);
  for (int i = 8; i < 12; i++) assert_true(got[i] == -1.5f);
  free(b);
}

static void map_copy_writes_stay_in_the_process(void **state) {
  (void)state;
  SCRATCH_PATH(path, "copy.npy");
  write_numpy_f4(path);
  tb_tensor_t *t, *other;
  assert_ok(tb_npy_load(path, TB_MAP_COPY, &t));
  assert_false(tb_tensor_is_readonly(t));
  float v = 9.0f;
  assert_ok(tb_tensor_fill(t, &v, F32));
  assert_true(((const float *)tb_tensor_data(t))[5] == 9.0f);
  /* another mapping of the file does not see it, nor does read() */
  assert_ok(tb_npy_load(path, TB_MAP_READ, &other));
  assert_true(((const float *)tb_tensor_data(other))[5] == 5.0f);
  tb_tensor_release(other);
  tb_tensor_release(t);
  size_t n;
  unsigned char *b = read_file(path, &n);
  size_t expected_n;
  unsigned char *expected = numpy_f4_3x4(&expected_n);
  assert_int_equal(n, expected_n);
  assert_memory_equal(b, expected, n);
  free(expected);
  free(b);
}

static void mapping_goes_with_the_last_release(void **state) {
  (void)state;
  SCRATCH_PATH(path, "unmap.npy");
  write_numpy_f4(path);
  assert_int_equal(count_mappings(path, NULL, NULL), 0);
  tb_tensor_t *t, *view, *view2;
  assert_ok(tb_npy_load(path, TB_MAP_READ, &t));
  assert_int_equal(count_mappings(path, NULL, NULL), 1);
  assert_ok(tb_tensor_slice(t, 1, 1, 3, 1, &view));
  assert_ok(tb_tensor_transpose(view, 0, 1, &view2));
  tb_tensor_release(t); /* the views keep the mapping */
  assert_int_equal(count_mappings(path, NULL, NULL), 1);
  int64_t index[2] = {1, 2}; /* view2[1][2] = t[2][2] */
  void *p;
  assert_ok(tb_tensor_element_ptr(view2, index, &p));
  assert_true(*(float *)p == 10.0f);
  tb_tensor_release(view);
  assert_int_equal(count_mappings(path, NULL, NULL), 1);
  tb_tensor_release(view2);
  assert_int_equal(count_mappings(path, NULL, NULL), 0);
  /* each load maps once, and each goes on its own */
  tb_tensor_t *a, *b;
  assert_ok(tb_npy_load(path, TB_MAP_READ, &a));
  assert_ok(tb_npy_load(path, TB_MAP_COPY, &b));
  assert_int_equal(count_mappings(path, NULL, NULL), 2);
  tb_tensor_release(a);
  assert_int_equal(count_mappings(path, NULL, NULL), 1);
  tb_tensor_release(b);
  assert_int_equal(count_mappings(path, NULL, NULL), 0);
}

static void empty_and_scalar_files_load(void **state) {
  (void)state;
  static const char *const dicts[3] = {
      "{'descr': '<i8', 'fortran_order': False, 'shape': (0,), }",
      "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 0, 3), }",
      "{'descr': '<f8', 'fortran_order': False, 'shape': (), }",
  };
  SCRATCH_PATH(path, "small.npy");
  for (int k = 0; k < 3; k++) {
    const double pi = 3.25;
    write_npy(path, 1, dicts[k], 0, &pi, k == 2 ? 8 : 0); /* the first two: no data at all */
    tb_tensor_t *t;
    assert_ok(tb_npy_load(path, TB_MAP_READ, &t));
    assert_int_equal(count_mappings(path, NULL, NULL), 1);
    if (k < 2) {
      assert_int_equal(tb_tensor_numel(t), 0);
      assert_int_equal(tb_tensor_nbytes(t), 0);
      assert_int_equal(tb_tensor_ndim(t), k == 0 ? 1 : 3);
    } else {
      assert_int_equal(tb_tensor_ndim(t), 0);
      assert_int_equal(tb_tensor_numel(t), 1);
      assert_true(*(const double *)tb_tensor_data(t) == 3.25);
    }
    /* saved back and loaded again */
    assert_round_trip(t, "small-again.npy");
    tb_tensor_release(t);
    assert_int_equal(count_mappings(path, NULL, NULL), 0);
  }
}

/* Saving over the file a tensor is mapped from: the mapping keeps the old
 * file's bytes, the new file replaces it. */
static void save_over_its_own_mapping(void **state) {
  (void)state;
  SCRATCH_PATH(path, "self.npy");
  write_numpy_f4(path);
  tb_tensor_t *t, *rev, *back;
  assert_ok(tb_npy_load(path, TB_MAP_READ, &t));
  assert_ok(tb_tensor_slice(t, 1, INT64_MAX, INT64_MIN, -1, &rev));
  assert_ok(tb_npy_save(path, rev));
  assert_true(((const float *)tb_tensor_data(t))[1] == 1.0f); /* still the old bytes */
  assert_ok(tb_npy_load(path, TB_MAP_READ, &back));
  const float *b = tb_tensor_data(back);
  for (int i = 0; i < 3; i++) {
    for (int j = 0; j < 4; j++) assert_true(b[4 * i + j] == (float)(4 * i + 3 - j));
  }
  tb_tensor_release(back);
  tb_tensor_release(rev);
  tb_tensor_release(t);
}

/* ------------------------------------------------------------------------ */
/* What a header may look like                                              */
/* ------------------------------------------------------------------------ */

typedef struct accepted_case {
  unsigned major;
  const char *dict;
  size_t data_offset; /* 0: NumPy's 64; 1: no padding */
  uint8_t code, bits;
  int32_t ndim;
  int64_t shape[3];
  bool fortran;
} accepted_case;

static void unusual_but_valid_headers_load(void **state) {
  (void)state;
  static const accepted_case cases[] = {
      /* keys in another order, no trailing comma */
      {1, "{'shape': (2, 3), 'fortran_order': False, 'descr': '<i4'}",
       0, kDLInt, 32, 2, {2, 3}, false},
      /* whitespace of every kind between tokens, trailing commas */
      {1, "{\n\t'descr' :\t'<u2' ,\r\n 'fortran_order':True,'shape':( 2 ,\n3 , ) , }",
       0, kDLUInt, 16, 2, {2, 3}, true},
      /* double quotes, the native order written '=' or not at all */
      {1, "{\"descr\": \"=f8\", \"fortran_order\": False, \"shape\": (3,)}",
       0, kDLFloat, 64, 1, {3}, false},
      {1, "{'descr': 'c8', 'fortran_order': False, 'shape': (1, 1, 1)}",
       0, TB_DL_COMPLEX, 64, 3, {1, 1, 1}, false},
      /* the byte order of one-byte types does not matter */
      {1, "{'descr': '>u1', 'fortran_order': False, 'shape': (4,)}", 0, kDLUInt, 8, 1, {4}, false},
      {1, "{'descr': '<b1', 'fortran_order': False, 'shape': (4,)}",
       0, TB_DL_BOOL, 8, 1, {4}, false},
      /* Python 2's long integers in a 1.0 header */
      {1, "{'descr': '<i2', 'fortran_order': False, 'shape': (2L, 2L), }",
       0, kDLInt, 16, 2, {2, 2}, false},
      /* -0 and +3 are integers to Python */
      {1, "{'descr': '<i2', 'fortran_order': False, 'shape': (-0, +3), }",
       0, kDLInt, 16, 2, {0, 3}, false},
      /* 2.0 and 3.0 headers (UTF-8 can only appear in a string, so in a refused one: see the
       * hostile cases) */
      {2, "{'descr': '<f2', 'fortran_order': False, 'shape': (5,), }",
       0, kDLFloat, 16, 1, {5}, false},
      {3, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }",
       0, kDLInt, 64, 1, {2}, false},
      /* an old writer's 16-byte padding: aligned for every element size */
      {1, "{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }",
       80, TB_DL_COMPLEX, 128, 1, {1}, false},
      /* no padding at all: fine for one-byte elements */
      {1, "{'descr': '|i1', 'fortran_order': False, 'shape': (3,)}", 1, kDLInt, 8, 1, {3}, false},
  };
  SCRATCH_PATH(path, "variant.npy");
  unsigned char data[64];
  for (int k = 0; k < 64; k++) data[k] = (unsigned char)k;
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    const accepted_case *c = &cases[k];
    write_npy(path, c->major, c->dict, c->data_offset, data, sizeof data);
    tb_tensor_t *t;
    tb_status st = tb_npy_load(path, TB_MAP_READ, &t);
    if (st != TB_OK) print_error("case %zu: %s\n", k, tb_last_error());
    assert_int_equal(st, TB_OK);
    assert_true(tb_dtype_equal(tb_tensor_dtype(t), dt(c->code, c->bits)));
    assert_int_equal(tb_tensor_ndim(t), c->ndim);
    for (int32_t d = 0; d < c->ndim; d++) assert_int_equal(tb_tensor_shape(t)[d], c->shape[d]);
    if (c->ndim > 1 && tb_tensor_numel(t) > 1) {
      assert_true(tb_tensor_is_contiguous(t, c->fortran ? TB_ORDER_F : TB_ORDER_C));
    }
    if (tb_tensor_numel(t) > 0) assert_memory_equal(tb_tensor_data(t), data, 1);
    tb_tensor_release(t);
  }
}

/* A header of exactly TB_MAX_NDIM extents loads; one more does not. */
static void ndim_limit(void **state) {
  (void)state;
  SCRATCH_PATH(path, "ndim.npy");
  for (int extra = 0; extra < 2; extra++) {
    char dict[512] = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
    for (int d = 0; d < TB_MAX_NDIM + extra; d++) strcat(dict, "1, ");
    strcat(dict, "), }");
    const float one = 1.0f;
    write_npy(path, 1, dict, 0, &one, 4);
    tb_tensor_t *t;
    if (extra == 0) {
      assert_ok(tb_npy_load(path, TB_MAP_READ, &t));
      assert_int_equal(tb_tensor_ndim(t), TB_MAX_NDIM);
      tb_tensor_release(t);
    } else {
      assert_status(tb_npy_load(path, TB_MAP_READ, &t), TB_ERR_FORMAT);
      assert_error_mentions("more than 64 dimensions");
      assert_error_mentions(path);
    }
  }
}

/* ------------------------------------------------------------------------ */
/* Hostile files                                                            */
/* ------------------------------------------------------------------------ */

typedef struct hostile_case {
  const char *name;
  unsigned major;
  const char *dict;
  size_t data_offset;  /* 0: NumPy's 64 */
  size_t ndata;        /* data bytes after the header */
  tb_status status;
  const char *mentions;
  bool header_ok;      /* tb_npy_parse_header accepts it (the data is what is wrong) */
} hostile_case;

#define DICT(descr, fortran, shape) \
  "{'descr': " descr ", 'fortran_order': " fortran ", 'shape': " shape ", }"

static const hostile_case k_hostile[] = {
    /* the data */
    {"truncated data", 1, DICT("'<f4'", "False", "(1000,)"), 0, 3996, TB_ERR_FORMAT,
     "truncated: the shape needs 4000 bytes of float32 data after the 128-byte header, "
     "and 3996 follow",
     true},
    {"no data", 1, DICT("'<f8'", "False", "()"), 0, 0, TB_ERR_FORMAT, "needs 8 bytes", true},
    {"misaligned data", 1, DICT("'<f8'", "False", "(2,)"), 70, 16, TB_ERR_FORMAT,
     "starts at byte 70, not a multiple of the element size 8", false},
    {"misaligned complex", 1, DICT("'<c16'", "False", "(1,)"), 72, 16, TB_ERR_FORMAT,
     "not a multiple of the element size 16", false},
    /* sizes */
    {"byte size overflows", 1, DICT("'|i1'", "False", "(4294967296, 4294967296)"), 0, 0,
     TB_ERR_OVERFLOW, "shape[1] = 4294967296 brings the data's size", false},
    {"itemsize overflows", 1, DICT("'<f8'", "False", "(2305843009213693952,)"), 0, 0,
     TB_ERR_OVERFLOW, "shape[0] = 2305843009213693952", false},
    {"empty shape overflows", 1, DICT("'<f8'", "False", "(0, 4611686018427387904, 4)"), 0, 0,
     TB_ERR_OVERFLOW, "past INT64_MAX bytes", false},
    {"extent beyond int64", 1, DICT("'<f8'", "False", "(9223372036854775808,)"), 0, 0,
     TB_ERR_OVERFLOW, "shape[0] = '9223372036854775808' (byte 61) does not fit int64", false},
    {"extent beyond uint64", 1, DICT("'<f8'", "False", "(3, 123456789012345678901234567890)"), 0, 0,
     TB_ERR_OVERFLOW, "shape[1] = '123456789012345678901234567890' (byte 64) does not fit", false},
    /* extents */
    {"negative extent", 1, DICT("'<f4'", "False", "(3, -4)"), 0, 0, TB_ERR_FORMAT,
     "shape[1] = '-4' (byte 64) is negative", false},
    {"float extent", 1, DICT("'<f4'", "False", "(3.5,)"), 0, 0, TB_ERR_FORMAT,
     "shape[0] = '3.5' (byte 61) is not an integer", false},
    {"string extent", 1, DICT("'<f4'", "False", "('3',)"), 0, 0, TB_ERR_FORMAT,
     "shape[0] = ''3'' (byte 61) is not an integer", false},
    {"bool extent", 1, DICT("'<f4'", "False", "(True,)"), 0, 0, TB_ERR_FORMAT,
     "shape[0] = 'True' (byte 61) is not an integer", false},
    {"hex extent", 1, DICT("'<f4'", "False", "(0x10,)"), 0, 0, TB_ERR_FORMAT,
     "shape[0] = '0x10' (byte 61) is not an integer", false},
    {"leading zero", 1, DICT("'<f4'", "False", "(012,)"), 0, 0, TB_ERR_FORMAT, "leading zero",
     false},
    {"long suffix in 3.0", 3, DICT("'<f4'", "False", "(3L,)"), 0, 0, TB_ERR_FORMAT,
     "shape[0] = '3L' (byte 63) is not an integer", false},
    {"empty extent", 1, DICT("'<f4'", "False", "(,)"), 0, 0, TB_ERR_FORMAT,
     "shape[0] = ',' (byte 61) is not an integer", false},
    {"shape a list", 1, DICT("'<f4'", "False", "[3, 4]"), 0, 0, TB_ERR_FORMAT,
     "shape (byte 60) is a list, not a tuple", false},
    {"shape an int", 1, DICT("'<f4'", "False", "3"), 0, 0, TB_ERR_FORMAT,
     "shape: expected a tuple such as (3, 4), found '3' at byte 60", false},
    {"shape in parentheses", 1, DICT("'<f4'", "False", "(3)"), 0, 0, TB_ERR_FORMAT,
     "shape = (3) (byte 60) is an integer in parentheses, not a tuple", false},
    {"nested shape", 1, DICT("'<f4'", "False", "((3,), 4)"), 0, 0, TB_ERR_FORMAT,
     "shape[0] at byte 61 opens a nested tuple", false},
    {"unterminated tuple", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4", 0, 0,
     TB_ERR_FORMAT, "shape: the tuple opened at byte 60 is not closed", false},
    {"tuple missing comma", 1, DICT("'<f4'", "False", "(3 4)"), 0, 0, TB_ERR_FORMAT,
     "shape[0]: expected ',' or ')', found '4' at byte 63", false},
    /* keys */
    {"duplicate key", 1, "{'descr': '<f4', 'descr': '<f8', 'fortran_order': False, 'shape': (), }",
     0, 8, TB_ERR_FORMAT, "duplicate key 'descr' (byte 27)", false},
    {"missing key", 1, "{'descr': '<f4', 'shape': (), }", 0, 4, TB_ERR_FORMAT,
     "missing key 'fortran_order'", false},
    {"empty dict", 1, "{}", 0, 0, TB_ERR_FORMAT, "missing key 'descr'", false},
    {"unknown key", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), 'extra': 1, }", 0, 4,
     TB_ERR_FORMAT, "unknown key 'extra' (byte 64)", false},
    {"key not a string", 1, "{descr: '<f4', 'fortran_order': False, 'shape': (), }", 0, 4,
     TB_ERR_FORMAT, "expected a key string or '}', found 'descr' at byte 11", false},
    {"missing colon", 1, "{'descr' '<f4', 'fortran_order': False, 'shape': (), }", 0, 4,
     TB_ERR_FORMAT, "key 'descr': expected ':', found ''<f4'' at byte 19", false},
    {"missing comma", 1, "{'descr': '<f4' 'fortran_order': False, 'shape': (), }", 0, 4,
     TB_ERR_FORMAT, "expected ',' or '}' after a value, found ''fortran_order'' at byte 26", false},
    /* strings and brackets */
    {"string cut by a line break", 1, "{'descr': '<f4\n', 'fortran_order': False, 'shape': (), }",
     0,
     4, TB_ERR_FORMAT, "descr: the string starting at byte 20 is not terminated", false},
    {"quote missing", 1, "{'descr': '<f4, 'fortran_order': False, 'shape': (), }", 0, 4,
     TB_ERR_FORMAT, "expected ',' or '}' after a value, found 'fortran_order'' at byte 27", false},
    {"string to the end", 1, "{'descr': '<f4", 0, 4, TB_ERR_FORMAT,
     "descr: the string starting at byte 20 is not terminated", false},
    {"escape", 1, DICT("'<f\\x34'", "False", "()"), 0, 4, TB_ERR_FORMAT,
     "has an escape sequence", false},
    {"unterminated dict", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), ", 0, 4,
     TB_ERR_FORMAT, "the header dict opened at byte 10 is not closed", false},
    {"no dict", 1, "'descr'", 0, 4, TB_ERR_FORMAT, "header: expected a dict ('{'), found ''descr''",
     false},
    {"text after the dict", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), } x", 0, 4,
     TB_ERR_FORMAT, "after the header dict: expected only spaces and '\\n', found 'x' at byte 66",
     false},
    {"nested dict", 1, "{'descr': {'a': 1}, 'fortran_order': False, 'shape': (), }", 0, 4,
     TB_ERR_FORMAT, "descr: expected a typestr string such as '<f4', found '{'", false},
    {"deep nesting", 1,
     "{'descr': [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[('a', '<f4')"
     "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
     ", 'fortran_order': False, 'shape': (), }",
     0, 4, TB_ERR_FORMAT, "brackets nest deeper than 32 levels", false},
    {"unbalanced brackets", 1, "{'descr': [('a', '<f4']), 'fortran_order': False, 'shape': (), }",
     0,
     4, TB_ERR_FORMAT, "descr: unbalanced ']' at byte 32", false},
    /* fortran_order */
    {"fortran_order an int", 1, DICT("'<f4'", "1", "()"), 0, 4, TB_ERR_FORMAT,
     "fortran_order = '1' (byte 44) is not True or False", false},
    {"fortran_order a string", 1, DICT("'<f4'", "'True'", "()"), 0, 4, TB_ERR_FORMAT,
     "fortran_order = ''True'' (byte 44) is not True or False", false},
    {"fortran_order lowercase", 1, DICT("'<f4'", "true", "()"), 0, 4, TB_ERR_FORMAT,
     "fortran_order = 'true' (byte 44) is not True or False", false},
    /* encodings */
    {"latin-1 in 1.0", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), '\xe9': 1}", 0, 4,
     TB_ERR_FORMAT, "header byte 65 is 0xe9, not ASCII (a 1.0 header is ASCII", false},
    {"latin-1 in 2.0", 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }\xa0", 0, 4,
     TB_ERR_FORMAT, "header byte 67 is 0xa0, not ASCII (a 2.0 header", false},
    {"invalid UTF-8", 3, "{'descr': '<f4', 'fortran_order': False, 'shape': (), } \xff", 0, 4,
     TB_ERR_FORMAT, "header byte 68 (0xff) is not valid UTF-8", false},
    {"overlong UTF-8", 3, "{'descr': '<f4', 'fortran_order': False, 'shape': (), } \xc0\xaf", 0, 4,
     TB_ERR_FORMAT, "header byte 68 (0xc0) is not valid UTF-8", false},
    {"UTF-8 surrogate", 3, "{'descr': '<f4', 'fortran_order': False, 'shape': (), } \xed\xa0\x80",
     0,
     4, TB_ERR_FORMAT, "(0xed) is not valid UTF-8", false},
    {"cut UTF-8", 3, "{'descr': '<f4', 'fortran_order': False, 'shape': (), } \xe2\x82", 0, 4,
     TB_ERR_FORMAT, "(0xe2) is not valid UTF-8", false},
    {"UTF-8 key in 3.0",
     3, "{'descr': '<f4', 'fortran_order': False, 'shape': (), 'cl\xc3\xa9': 1}", 0,
     4, TB_ERR_FORMAT, "unknown key 'cl?\?'", false},
    /* descr */
    {"big-endian", 1, DICT("'>f4'", "False", "(2,)"), 0, 8, TB_ERR_DTYPE,
     "descr = '>f4' is big-endian; this host is little-endian", false},
    {"big-endian complex", 1, DICT("'>c16'", "False", "(2,)"), 0, 32, TB_ERR_DTYPE, "'>c16'",
     false},
    {"objects", 1, DICT("'|O'", "False", "(2,)"), 0, 16, TB_ERR_DTYPE,
     "descr = '|O' (Python objects) is not a dtype this library maps", false},
    {"structured", 1, DICT("[('x', '<f4'), ('y', '<i4')]", "False", "(2,)"), 0, 16, TB_ERR_DTYPE,
     "descr = '[('x', '<f4'), ('y', '<i4')]' is a structured dtype", false},
    {"subarray", 1, DICT("('<f4', (2,))", "False", "(2,)"), 0, 16, TB_ERR_DTYPE,
     "is a subarray dtype", false},
    {"void", 1, DICT("'|V8'", "False", "(2,)"), 0, 16, TB_ERR_DTYPE, "'|V8' (void (raw bytes))",
     false},
    {"bytes", 1, DICT("'|S3'", "False", "(2,)"), 0, 6, TB_ERR_DTYPE, "'|S3' (byte strings)", false},
    {"unicode", 1, DICT("'<U5'", "False", "(2,)"), 0, 40, TB_ERR_DTYPE, "'<U5' (unicode strings)",
     false},
    {"datetime", 1, DICT("'<M8[ns]'", "False", "(2,)"),
     0, 16, TB_ERR_DTYPE, "'<M8[ns]' (datetime64)",
     false},
    {"timedelta", 1, DICT("'<m8[s]'", "False", "(2,)"), 0, 16, TB_ERR_DTYPE,
     "'<m8[s]' (timedelta64)", false},
    {"float128", 1, DICT("'<f16'", "False", "(2,)"), 0, 32, TB_ERR_DTYPE,
     "'<f16' (floating point) is not a dtype this library maps", false},
    {"bool of 2 bytes", 1, DICT("'<b2'", "False", "(2,)"), 0, 4, TB_ERR_DTYPE, "'<b2' (bool)",
     false},
    {"a dtype name", 1, DICT("'float32'", "False", "(2,)"), 0, 8, TB_ERR_DTYPE,
     "descr = 'float32' is not a NumPy typestr", false},
    {"empty descr", 1, DICT("''", "False", "(2,)"), 0, 8, TB_ERR_DTYPE, "descr = '' is not", false},
    {"descr an int", 1, DICT("4", "False", "(2,)"), 0, 8, TB_ERR_FORMAT,
     "descr: expected a typestr string such as '<f4', found '4' at byte 20", false},
};

/* Each hostile file: its status and message from tb_npy_load (prefixed by
 * the path), the same from tb_npy_parse_header unless only the data is
 * wrong, and nothing left mapped. */
static void hostile_headers_are_refused(void **state) {
  (void)state;
  SCRATCH_PATH(path, "hostile.npy");
  static unsigned char data[4096];
  for (size_t k = 0; k < sizeof k_hostile / sizeof k_hostile[0]; k++) {
    const hostile_case *c = &k_hostile[k];
    size_t len;
    unsigned char *b = build_npy(c->major, c->dict, c->data_offset, data, c->ndata, &len);
    write_file(path, b, len);
    tb_tensor_t *t = SENTINEL_TENSOR;
    tb_status st = tb_npy_load(path, TB_MAP_READ, &t);
    if (st != c->status || strstr(tb_last_error(), c->mentions) == NULL ||
        strstr(tb_last_error(), path) == NULL) {
      print_error("case \"%s\": %s: \"%s\", expected %s mentioning \"%s\"\n", c->name,
                  tb_status_name(st), tb_last_error(), tb_status_name(c->status), c->mentions);
      fail();
    }
    assert_ptr_equal(t, SENTINEL_TENSOR);
    assert_int_equal(count_mappings(path, NULL, NULL), 0);
    tb_npy_header h;
    st = tb_npy_parse_header(b, len, &h);
    if (c->header_ok) {
      assert_int_equal(st, TB_OK);
    } else if (st != c->status || strstr(tb_last_error(), c->mentions) == NULL) {
      print_error("case \"%s\" (parse_header): %s: \"%s\"\n", c->name, tb_status_name(st),
                  tb_last_error());
      fail();
    }
    free(b);
  }
}

static void broken_prefixes_are_refused(void **state) {
  (void)state;
  SCRATCH_PATH(path, "prefix.npy");
  tb_tensor_t *t = SENTINEL_TENSOR; /* every refusal below leaves it */
  /* an empty file */
  write_file(path, "", 0);
  assert_status(tb_npy_load(path, TB_MAP_READ, &t), TB_ERR_FORMAT);
  assert_error_mentions("not a .npy file: the magic string is missing (no bytes)");
  assert_error_mentions(path);
  /* wrong magic */
  write_file(path, "\x93NUMPZ\x01\x00\x00\x00", 10);
  assert_status(tb_npy_load(path, TB_MAP_READ, &t), TB_ERR_FORMAT);
  assert_error_mentions("the magic string is '?NUMPZ', not '\\x93NUMPY'");
  write_file(path, "PK\x03\x04", 4); /* an .npz (zip) file */
  assert_status(tb_npy_load(path, TB_MAP_READ, &t), TB_ERR_FORMAT);
  assert_error_mentions("the magic string is 'PK?\?'");
  /* cut short */
  write_file(path, "\x93NUMPY\x01", 7);
  assert_status(tb_npy_load(path, TB_MAP_READ, &t), TB_ERR_FORMAT);
  assert_error_mentions("truncated: 7 bytes end before the format version");
  write_file(path, "\x93NUMPY\x02\x00\x10\x00", 10);
  assert_status(tb_npy_load(path, TB_MAP_READ, &t), TB_ERR_FORMAT);
  assert_error_mentions("truncated: 10 bytes end inside the header length");
  /* versions */
  static const unsigned char versions[4][2] = {{0, 0}, {1, 1}, {4, 0}, {255, 255}};
  for (int k = 0; k < 4; k++) {
    unsigned char b[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', versions[k][0], versions[k][1], 0, 0};
    write_file(path, b, sizeof b);
    assert_status(tb_npy_load(path, TB_MAP_READ, &t), TB_ERR_FORMAT);
    char needle[64];
    snprintf(needle, sizeof needle, "format version %u.%u is not 1.0, 2.0 or 3.0", versions[k][0],
             versions[k][1]);
    assert_error_mentions(needle);
  }
  /* header lengths past the end */
  write_file(path, "\x93NUMPY\x01\x00\xff\xff{}", 12);
  assert_status(tb_npy_load(path, TB_MAP_READ, &t), TB_ERR_FORMAT);
  assert_error_mentions("header length 65535 reaches byte 65545, past the end of the 12 bytes");
  write_file(path, "\x93NUMPY\x02\x00\xff\xff\xff\xff{}", 14);
  assert_status(tb_npy_load(path, TB_MAP_READ, &t), TB_ERR_FORMAT);
  /* Above TB_NPY_MAX_HEADER: refused before anything is allocated for it. */
  assert_error_mentions("header length 4294967295 is above the limit of 1048576 bytes");
  write_file(path, "\x93NUMPY\x02\x00\x00\x00\x10\x00{}", 14); /* exactly the limit */
  assert_status(tb_npy_load(path, TB_MAP_READ, &t), TB_ERR_FORMAT);
  assert_error_mentions("header length 1048576 reaches byte 1048588");
  write_file(path, "\x93NUMPY\x01\x00\x00\x00", 10); /* an empty header */
  assert_status(tb_npy_load(path, TB_MAP_READ, &t), TB_ERR_FORMAT);
  assert_error_mentions("header: expected a dict ('{'), found the end of the header");
  assert_ptr_equal(t, SENTINEL_TENSOR);
  assert_int_equal(count_mappings(path, NULL, NULL), 0);
}

/* Every prefix of a valid file's header is refused by the parser, which
 * reads none of the bytes past it (each prefix is its own allocation of
 * exactly that size, so that the sanitizers see any read beyond). */
static void parse_header_reads_only_what_it_is_given(void **state) {
  (void)state;
  size_t len;
  unsigned char *file = numpy_f4_3x4(&len);
  for (size_t n = 0; n < 128; n++) {
    unsigned char *prefix = malloc(n > 0 ? n : 1);
    assert_non_null(prefix);
    memcpy(prefix, file, n);
    tb_npy_header h;
    assert_status(tb_npy_parse_header(n > 0 ? prefix : NULL, n, &h), TB_ERR_FORMAT);
    free(prefix);
  }
  /* the header alone is enough: the data need not be there */
  tb_npy_header h;
  memset(&h, 0xa5, sizeof h);
  assert_ok(tb_npy_parse_header(file, 128, &h));
  assert_true(tb_dtype_equal(h.dtype, F32));
  assert_int_equal(h.ndim, 2);
  assert_int_equal(h.shape[0], 3);
  assert_int_equal(h.shape[1], 4);
  for (int d = 2; d < TB_MAX_NDIM; d++) assert_int_equal(h.shape[d], 0);
  assert_false(h.fortran_order);
  assert_int_equal(h.version[0], 1);
  assert_int_equal(h.version[1], 0);
  assert_int_equal(h.data_offset, 128);
  assert_int_equal(h.data_nbytes, 48);
  /* arguments */
  assert_status(tb_npy_parse_header(file, len, NULL), TB_ERR_INVALID);
  assert_error_mentions("npy_parse_header: out is NULL");
  assert_status(tb_npy_parse_header(NULL, 10, &h), TB_ERR_INVALID);
  assert_error_mentions("bytes is NULL but size = 10");
  /* a failure leaves *out alone */
  memset(&h, 0x5a, sizeof h);
  tb_npy_header before = h;
  file[6] = 9;
  assert_status(tb_npy_parse_header(file, len, &h), TB_ERR_FORMAT);
  assert_memory_equal(&h, &before, sizeof h);
  free(file);
}

static void missing_files_and_folders_are_io_errors(void **state) {
  (void)state;
  SCRATCH_PATH(missing, "no-such-file.npy");
  tb_tensor_t *t = SENTINEL_TENSOR;
  assert_status(tb_npy_load(missing, TB_MAP_READ, &t), TB_ERR_IO);
  assert_error_mentions(missing);
  assert_error_mentions("No such file or directory");
  assert_status(tb_npy_load(scratch_dir(), TB_MAP_READ, &t), TB_ERR_IO);
  assert_error_mentions(scratch_dir());
  assert_error_mentions("not a regular file");
  assert_status(tb_npy_load(scratch_dir(), TB_MAP_WRITE, &t), TB_ERR_IO);
  assert_error_mentions(scratch_dir());
  assert_ptr_equal(t, SENTINEL_TENSOR);
  /* arguments */
  assert_status(tb_npy_load(NULL, TB_MAP_READ, &t), TB_ERR_INVALID);
  assert_error_mentions("path is NULL");
  SCRATCH_PATH(path, "args.npy");
  write_numpy_f4(path);
  assert_status(tb_npy_load(path, TB_MAP_READ, NULL), TB_ERR_INVALID);
  assert_error_mentions("out is NULL");
  assert_status(tb_npy_load(path, (tb_map_mode)7, &t), TB_ERR_INVALID);
  assert_error_mentions("mode = 7");
  assert_int_equal(count_mappings(path, NULL, NULL), 0);
  /* writing a read-only file through the mapping is refused by the system */
  if (geteuid() != 0) {
    assert_int_equal(chmod(path, 0444), 0);
    assert_status(tb_npy_load(path, TB_MAP_WRITE, &t), TB_ERR_IO);
    assert_error_mentions("Permission denied");
    tb_tensor_t *ok;
    assert_ok(tb_npy_load(path, TB_MAP_READ, &ok));
    tb_tensor_release(ok);
  }
  assert_ptr_equal(t, SENTINEL_TENSOR);
}

/* ------------------------------------------------------------------------ */
/* Saving: refusals and failures                                            */
/* ------------------------------------------------------------------------ */

static void save_refuses_what_numpy_cannot_hold(void **state) {
  (void)state;
  SCRATCH_PATH(path, "refused.npy");
  int64_t n = 4;
  uint16_t halves[4] = {0};
  static const struct {
    uint8_t code, bits;
    const char *name;
  } refused[] = {
      {TB_DL_BFLOAT, 16, "bfloat16"},
      {TB_DL_FLOAT8_E4M3FN, 8, "float8_e4m3fn"},
      {TB_DL_FLOAT8_E5M2, 8, "float8_e5m2"},
  };
  for (size_t k = 0; k < sizeof refused / sizeof refused[0]; k++) {
    tb_tensor_t *t;
    assert_ok(tb_from_array(halves, 0, dt(refused[k].code, refused[k].bits), 1, &n, NULL,
                            cpu(), 0, NULL, NULL, &t));
    assert_status(tb_npy_save(path, t), TB_ERR_DTYPE);
    char needle[96];
    snprintf(needle, sizeof needle, "npy_save: dtype %s has no NumPy equivalent", refused[k].name);
    assert_error_mentions(needle);
    tb_tensor_release(t);
  }
  /* packed sub-byte storage */
  tb_tensor_t *packed;
  assert_ok(tb_tensor_empty(dt(TB_DL_FLOAT4_E2M1FN, 4), 1, &n, cpu(), TB_ORDER_C, &packed));
  assert_status(tb_npy_save(path, packed), TB_ERR_DTYPE);
  assert_error_mentions("float4_e2m1fn");
  tb_tensor_release(packed);
  /* memory the CPU cannot read */
  fake_devices_install();
  tb_tensor_t *dev;
  const DLDevice fake = {(DLDeviceType)FAKE_ADDRESS_DEVICE, 0};
  void *nowhere_data = (void *)(uintptr_t)0x10000; /* never touched */
  assert_ok(tb_from_array(nowhere_data, 0, F32, 1, &n, NULL, fake, 0, NULL, NULL, &dev));
  assert_status(tb_npy_save(path, dev), TB_ERR_DEVICE);
  assert_error_mentions("npy_save: the tensor is on vpi:0");
  assert_error_mentions("copy it to the CPU first");
  tb_tensor_release(dev);
  /* arguments */
  tb_tensor_t *t = pattern_tensor(F32, 1, &n);
  assert_status(tb_npy_save(NULL, t), TB_ERR_INVALID);
  assert_error_mentions("path is NULL");
  assert_status(tb_npy_save(path, NULL), TB_ERR_INVALID);
  assert_error_mentions("t is NULL");
  /* nothing was written */
  struct stat st;
  assert_int_equal(stat(path, &st), -1);
  /* a folder that does not exist */
  SCRATCH_PATH(nowhere, "no-such-folder/x.npy");
  assert_status(tb_npy_save(nowhere, t), TB_ERR_IO);
  assert_error_mentions("npy_save (create)");
  assert_error_mentions(nowhere);
  assert_error_mentions("No such file or directory");
  /* a folder where the file should go */
  SCRATCH_PATH(folder, "a-folder.npy");
  assert_int_equal(mkdir(folder, 0755), 0);
  int before = count_dir_entries(scratch_dir());
  assert_status(tb_npy_save(folder, t), TB_ERR_IO);
  assert_error_mentions("npy_save (rename)");
  assert_error_mentions(folder);
  assert_int_equal(count_dir_entries(scratch_dir()), before); /* the temporary file is gone */
  assert_int_equal(rmdir(folder), 0);
  tb_tensor_release(t);
}

/* A write that fails halfway (the file size limit, as a full disk would)
 * is TB_ERR_IO; the file that was there stays as it was and no temporary
 * file is left behind. */
static void failed_save_leaves_no_partial_file(void **state) {
  (void)state;
  SCRATCH_PATH(path, "full.npy");
  write_file(path, "old contents", 12);
  const int entries = count_dir_entries(scratch_dir());
  int64_t shape[2] = {512, 1024}; /* 2 MiB of float32 */
  tb_tensor_t *t = pattern_tensor(F32, 2, shape), *tr;
  assert_ok(tb_tensor_transpose(t, 0, 1, &tr));
  struct rlimit saved, small;
  assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
  small = saved;
  small.rlim_cur = 300000; /* inside the first block: a short write, then EFBIG */
  void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
  const tb_tensor_t *cases[2] = {t, tr}; /* straight from memory, and through blocks */
  for (int k = 0; k < 2; k++) {
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    tb_status st = tb_npy_save(path, cases[k]);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
    assert_status(st, TB_ERR_IO);
    assert_error_mentions("npy_save (write)");
    assert_error_mentions(path);
    assert_error_mentions("File too large");
    size_t n;
    unsigned char *b = read_file(path, &n);
    assert_int_equal(n, 12);
    assert_memory_equal(b, "old contents", 12);
    free(b);
    assert_int_equal(count_dir_entries(scratch_dir()), entries);
  }
  signal(SIGXFSZ, old_handler);
  /* with room again, the save replaces the old file */
  assert_ok(tb_npy_save(path, tr));
  assert_int_equal(count_dir_entries(scratch_dir()), entries);
  tb_tensor_t *back;
  assert_ok(tb_npy_load(path, TB_MAP_READ, &back));
  assert_int_equal(tb_tensor_shape(back)[0], 1024);
  int64_t index[2] = {1023, 511};
  void *a, *b;
  assert_ok(tb_tensor_element_ptr(back, index, &a));
  assert_ok(tb_tensor_element_ptr(tr, index, &b));
  assert_memory_equal(a, b, 4);
  tb_tensor_release(back);
  tb_tensor_release(tr);
  tb_tensor_release(t);
}

/* The file numpy.save makes gets the usual permissions (0666 less the
 * umask), not a temporary file's 0600. */
static void saved_file_has_ordinary_permissions(void **state) {
  (void)state;
  SCRATCH_PATH(path, "mode.npy");
  mode_t old = umask(022);
  int64_t n = 3;
  tb_tensor_t *t = pattern_tensor(U8, 1, &n);
  assert_ok(tb_npy_save(path, t));
  umask(old);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0644);
  tb_tensor_release(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(numpy_written_file_loads),
      cmocka_unit_test(numpy_fortran_file_loads_f_ordered),
      cmocka_unit_test(save_writes_what_numpy_writes),
      cmocka_unit_test(saved_headers_follow_the_format),
      cmocka_unit_test(every_dtype_and_shape_round_trips),
      cmocka_unit_test(f_ordered_tensor_is_saved_in_c_order),
      cmocka_unit_test(strided_sources_are_saved_in_c_order),
      cmocka_unit_test(large_strided_tensors_stream_through_a_bounded_buffer),
      cmocka_unit_test(load_is_zero_copy),
      cmocka_unit_test(map_read_is_read_only),
      cmocka_unit_test(map_write_reaches_the_file),
      cmocka_unit_test(map_copy_writes_stay_in_the_process),
      cmocka_unit_test(mapping_goes_with_the_last_release),
      cmocka_unit_test(empty_and_scalar_files_load),
      cmocka_unit_test(save_over_its_own_mapping),
      cmocka_unit_test(unusual_but_valid_headers_load),
      cmocka_unit_test(ndim_limit),
      cmocka_unit_test(hostile_headers_are_refused),
      cmocka_unit_test(broken_prefixes_are_refused),
      cmocka_unit_test(parse_header_reads_only_what_it_is_given),
      cmocka_unit_test(missing_files_and_folders_are_io_errors),
      cmocka_unit_test(save_refuses_what_numpy_cannot_hold),
      cmocka_unit_test(failed_save_leaves_no_partial_file),
      cmocka_unit_test(saved_file_has_ordinary_permissions),
  };
  return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
