/*
 * Views: slicing, selection, permutation, reshape, contiguity, squeeze,
 * unsqueeze and broadcasting. Values are read through tb_tensor_element_ptr;
 * zero-copy is checked by comparing pointers and by writing on one side and
 * reading on the other.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

/* A fresh C-order int32 tensor holding 0, 1, 2, ... in C order. */
static tb_tensor_t *arange_i32(int32_t ndim, const int64_t *shape) {
  tb_tensor_t *t = NULL;
  assert_ok(tb_tensor_empty(I32, ndim, shape, cpu(), TB_ORDER_C, &t));
  int32_t *p = tb_tensor_data(t);
  for (int64_t i = 0; i < tb_tensor_numel(t); i++) p[i] = (int32_t)i;
  return t;
}

static int32_t *elem(const tb_tensor_t *t, const int64_t *index) {
  void *p = NULL;
  assert_ok(tb_tensor_element_ptr(t, index, &p));
  assert_non_null(p);
  return p;
}

static int32_t get0(const tb_tensor_t *t) { return *elem(t, NULL); }
static int32_t get1(const tb_tensor_t *t, int64_t i) { return *elem(t, (int64_t[]){i}); }
static int32_t get2(const tb_tensor_t *t, int64_t i, int64_t j) {
  return *elem(t, (int64_t[]){i, j});
}
static int32_t get3(const tb_tensor_t *t, int64_t i, int64_t j, int64_t k) {
  return *elem(t, (int64_t[]){i, j, k});
}

static void assert_shape(const tb_tensor_t *t, int32_t ndim, const int64_t *shape) {
  assert_int_equal(tb_tensor_ndim(t), ndim);
  for (int32_t d = 0; d < ndim; d++) assert_int_equal(tb_tensor_shape(t)[d], shape[d]);
}

static void assert_strides(const tb_tensor_t *t, int32_t ndim, const int64_t *strides) {
  assert_int_equal(tb_tensor_ndim(t), ndim);
  for (int32_t d = 0; d < ndim; d++) assert_int_equal(tb_tensor_strides(t)[d], strides[d]);
}

/* A 1-d int32 tensor holds exactly `values`. */
static void assert_values_1d(const tb_tensor_t *t, int64_t n, const int32_t *values) {
  assert_shape(t, 1, (int64_t[]){n});
  for (int64_t i = 0; i < n; i++) assert_int_equal(get1(t, i), values[i]);
}

/* The address of x's element i, for a 1-d C-order int32 tensor. */
static int32_t *base_elem(const tb_tensor_t *x, int64_t i) {
  return (int32_t *)tb_tensor_data(x) + i;
}

/* ------------------------------------------------------------------------ */
/* slice                                                                    */
/* ------------------------------------------------------------------------ */

static void slice_with_positive_step_picks_every_nth_element(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(1, (int64_t[]){10});
  tb_tensor_t *v = NULL;
  assert_ok(tb_tensor_slice(x, 0, 1, 8, 3, &v));
  assert_values_1d(v, 3, (int32_t[]){1, 4, 7});
  assert_strides(v, 1, (int64_t[]){3});
  assert_ptr_equal(tb_tensor_data(v), base_elem(x, 1));
  assert_ptr_equal(tb_tensor_base(v), tb_tensor_base(x));
  assert_int_equal(tb_tensor_byte_offset(v), tb_tensor_byte_offset(x) + sizeof(int32_t));
  assert_true(tb_tensor_shares_storage(x, v));
  /* The DLTensor view says the same, without copying. */
  const DLTensor *dl = tb_tensor_dltensor(v);
  assert_ptr_equal(dl->data, tb_tensor_base(v));
  assert_int_equal(dl->byte_offset, tb_tensor_byte_offset(v));
  assert_int_equal(dl->ndim, 1);
  assert_ptr_equal(dl->shape, tb_tensor_shape(v));
  assert_ptr_equal(dl->strides, tb_tensor_strides(v));
  assert_int_equal(dl->strides[0], 3);
  tb_tensor_release(v);
  tb_tensor_release(x);
}

static void slice_with_negative_step_walks_backwards(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(1, (int64_t[]){10});
  tb_tensor_t *v = NULL;
  assert_ok(tb_tensor_slice(x, 0, 8, 2, -2, &v));
  assert_values_1d(v, 3, (int32_t[]){8, 6, 4});
  assert_strides(v, 1, (int64_t[]){-2});
  assert_ptr_equal(tb_tensor_data(v), base_elem(x, 8));
  assert_false(tb_tensor_is_contiguous(v, TB_ORDER_C));
  tb_tensor_release(v);
  tb_tensor_release(x);
}

static void slice_with_open_ends_and_step_minus_one_reverses(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(1, (int64_t[]){10});
  tb_tensor_t *v = NULL;
  assert_ok(tb_tensor_slice(x, 0, INT64_MAX, INT64_MIN, -1, &v));
  assert_values_1d(v, 10, (int32_t[]){9, 8, 7, 6, 5, 4, 3, 2, 1, 0});
  assert_strides(v, 1, (int64_t[]){-1});
  assert_ptr_equal(tb_tensor_data(v), base_elem(x, 9));

  /* Reversing twice gives the original layout back. */
  tb_tensor_t *vv = NULL;
  assert_ok(tb_tensor_slice(v, 0, INT64_MAX, INT64_MIN, -1, &vv));
  assert_values_1d(vv, 10, (int32_t[]){0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  assert_strides(vv, 1, (int64_t[]){1});
  assert_ptr_equal(tb_tensor_data(vv), tb_tensor_data(x));
  assert_true(tb_tensor_is_contiguous(vv, TB_ORDER_C));
  tb_tensor_release(vv);
  tb_tensor_release(v);
  tb_tensor_release(x);
}

/* One slice of a 10-element arange and what Python gives for it. */
typedef struct slice_case {
  int64_t start, stop, step;
  int64_t n;
  int32_t values[10];
} slice_case;

static void slice_clamps_start_and_stop_like_python(void **state) {
  (void)state;
  static const slice_case cases[] = {
      {-3, INT64_MAX, 1, 3, {7, 8, 9}},                       /* x[-3:] */
      {-100, 3, 1, 3, {0, 1, 2}},                             /* x[-100:3] */
      {5, 100, 1, 5, {5, 6, 7, 8, 9}},                        /* x[5:100] */
      {2, -1, 1, 7, {2, 3, 4, 5, 6, 7, 8}},                   /* x[2:-1] */
      {-10, 10, 1, 10, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},       /* x[-10:10] */
      {INT64_MIN, INT64_MAX, 2, 5, {0, 2, 4, 6, 8}},          /* x[::2] */
      {INT64_MIN, INT64_MAX, 4, 3, {0, 4, 8}},                /* x[::4] */
      {100, 5, -1, 4, {9, 8, 7, 6}},                          /* x[100:5:-1] */
      {5, -100, -1, 6, {5, 4, 3, 2, 1, 0}},                   /* x[5:-100:-1] */
      {-1, -11, -1, 10, {9, 8, 7, 6, 5, 4, 3, 2, 1, 0}},      /* x[-1:-11:-1] */
      {-1, -12, -1, 10, {9, 8, 7, 6, 5, 4, 3, 2, 1, 0}},      /* x[-1:-12:-1] */
      {-2, -5, -1, 3, {8, 7, 6}},                             /* x[-2:-5:-1] */
      {INT64_MAX, INT64_MIN, -3, 4, {9, 6, 3, 0}},            /* x[::-3] */
      {9, -11, -4, 3, {9, 5, 1}},                             /* x[9:-11:-4] */
      {7, INT64_MIN, -2, 4, {7, 5, 3, 1}},                    /* x[7::-2] */
      {INT64_MIN, INT64_MAX, INT64_MAX, 1, {0}},              /* x[::huge] */
      {INT64_MAX, INT64_MIN, INT64_MIN, 1, {9}},              /* x[::-huge] */
      {100, INT64_MAX, 1, 0, {0}},                            /* x[100:] */
      {-100, -50, 1, 0, {0}},                                 /* x[-100:-50] */
      {3, 1, 1, 0, {0}},                                      /* x[3:1] */
      {4, 4, 1, 0, {0}},                                      /* x[4:4] */
      {1, 3, -1, 0, {0}},                                     /* x[1:3:-1] */
      {-100, INT64_MIN, -1, 0, {0}},                          /* x[-100::-1] */
      {INT64_MAX, INT64_MAX, 1, 0, {0}},                      /* x[10:] */
  };
  tb_tensor_t *x = arange_i32(1, (int64_t[]){10});
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const slice_case *k = &cases[c];
    tb_tensor_t *v = NULL;
    assert_ok(tb_tensor_slice(x, 0, k->start, k->stop, k->step, &v));
    if (tb_tensor_shape(v)[0] != k->n) {
      print_error("case %zu: extent %lld, expected %lld\n", c, (long long)tb_tensor_shape(v)[0],
                  (long long)k->n);
    }
    assert_values_1d(v, k->n, k->values);
    if (k->n > 0) assert_ptr_equal(tb_tensor_data(v), base_elem(x, k->values[0]));
    if (k->n > 1) assert_int_equal(tb_tensor_strides(v)[0], k->step);
    assert_true(tb_tensor_shares_storage(x, v));
    tb_tensor_release(v);
  }
  tb_tensor_release(x);
}

static void slice_with_empty_result_has_zero_extent_and_no_elements(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(2, (int64_t[]){3, 4});
  tb_tensor_t *v = NULL;
  assert_ok(tb_tensor_slice(x, 1, 3, 1, 1, &v));
  assert_shape(v, 2, (int64_t[]){3, 0});
  assert_int_equal(tb_tensor_numel(v), 0);
  assert_int_equal(tb_tensor_nbytes(v), 0);
  assert_true(tb_tensor_is_contiguous(v, TB_ORDER_C));
  assert_true(tb_tensor_is_contiguous(v, TB_ORDER_F));
  void *p = NULL;
  assert_status(tb_tensor_element_ptr(v, (int64_t[]){0, 0}, &p), TB_ERR_INDEX);
  assert_null(p);

  /* An empty view can be sliced again and stays empty. */
  tb_tensor_t *vv = NULL;
  assert_ok(tb_tensor_slice(v, 1, INT64_MAX, INT64_MIN, -1, &vv));
  assert_shape(vv, 2, (int64_t[]){3, 0});
  tb_tensor_release(vv);
  tb_tensor_release(v);
  tb_tensor_release(x);
}

static void slice_along_last_dim_of_2d_by_negative_dim(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(2, (int64_t[]){3, 4});
  tb_tensor_t *v = NULL;
  assert_ok(tb_tensor_slice(x, -1, 1, 4, 2, &v));
  assert_shape(v, 2, (int64_t[]){3, 2});
  assert_strides(v, 2, (int64_t[]){4, 2});
  for (int64_t i = 0; i < 3; i++) {
    for (int64_t j = 0; j < 2; j++) assert_int_equal(get2(v, i, j), 4 * i + 1 + 2 * j);
  }
  tb_tensor_release(v);

  /* x[::-1] on the rows. */
  assert_ok(tb_tensor_slice(x, 0, INT64_MAX, INT64_MIN, -1, &v));
  assert_strides(v, 2, (int64_t[]){-4, 1});
  for (int64_t i = 0; i < 3; i++) {
    for (int64_t j = 0; j < 4; j++) assert_int_equal(get2(v, i, j), 4 * (2 - i) + j);
  }
  tb_tensor_release(v);
  tb_tensor_release(x);
}

static void slice_with_step_zero_is_invalid(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(1, (int64_t[]){10});
  tb_tensor_t *v = NULL;
  assert_status(tb_tensor_slice(x, 0, 0, 10, 0, &v), TB_ERR_INVALID);
  assert_error_mentions("step");
  assert_null(v);
  tb_tensor_release(x);
}

static void slice_of_dim_out_of_range_is_an_index_error(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(2, (int64_t[]){3, 4});
  tb_tensor_t *v = NULL;
  assert_status(tb_tensor_slice(x, 2, 0, 1, 1, &v), TB_ERR_INDEX);
  assert_error_mentions("dim = 2");
  assert_status(tb_tensor_slice(x, -3, 0, 1, 1, &v), TB_ERR_INDEX);
  assert_error_mentions("dim = -3");
  assert_null(v);
  tb_tensor_release(x);
}

/* ------------------------------------------------------------------------ */
/* select                                                                   */
/* ------------------------------------------------------------------------ */

static void select_picks_one_index_and_drops_the_dim(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(2, (int64_t[]){3, 4});
  tb_tensor_t *row = NULL, *col = NULL;
  assert_ok(tb_tensor_select(x, 0, 1, &row));
  assert_values_1d(row, 4, (int32_t[]){4, 5, 6, 7});
  assert_strides(row, 1, (int64_t[]){1});
  assert_ptr_equal(tb_tensor_data(row), base_elem(x, 4));

  assert_ok(tb_tensor_select(x, 1, 2, &col));
  assert_values_1d(col, 3, (int32_t[]){2, 6, 10});
  assert_strides(col, 1, (int64_t[]){4});
  assert_true(tb_tensor_shares_storage(x, col));
  tb_tensor_release(col);
  tb_tensor_release(row);
  tb_tensor_release(x);
}

static void select_with_negative_index_counts_from_the_end(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(2, (int64_t[]){3, 4});
  tb_tensor_t *v = NULL;
  assert_ok(tb_tensor_select(x, 0, -1, &v));
  assert_values_1d(v, 4, (int32_t[]){8, 9, 10, 11});
  tb_tensor_release(v);
  assert_ok(tb_tensor_select(x, -1, -4, &v));
  assert_values_1d(v, 3, (int32_t[]){0, 4, 8});
  tb_tensor_release(v);
  assert_ok(tb_tensor_select(x, 0, -3, &v));
  assert_values_1d(v, 4, (int32_t[]){0, 1, 2, 3});
  tb_tensor_release(v);
  tb_tensor_release(x);
}

static void select_out_of_range_is_an_index_error(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(2, (int64_t[]){3, 4});
  tb_tensor_t *v = NULL;
  assert_status(tb_tensor_select(x, 0, 3, &v), TB_ERR_INDEX);
  assert_error_mentions("index = 3");
  assert_status(tb_tensor_select(x, 0, -4, &v), TB_ERR_INDEX);
  assert_error_mentions("index = -4");
  assert_status(tb_tensor_select(x, 1, INT64_MIN, &v), TB_ERR_INDEX);
  assert_status(tb_tensor_select(x, 1, INT64_MAX, &v), TB_ERR_INDEX);
  assert_status(tb_tensor_select(x, 2, 0, &v), TB_ERR_INDEX);
  assert_null(v);

  tb_tensor_t *empty = NULL;
  assert_ok(tb_tensor_empty(I32, 1, (int64_t[]){0}, cpu(), TB_ORDER_C, &empty));
  assert_status(tb_tensor_select(empty, 0, 0, &v), TB_ERR_INDEX);
  assert_status(tb_tensor_select(empty, 0, -1, &v), TB_ERR_INDEX);
  assert_null(v);
  tb_tensor_release(empty);
  tb_tensor_release(x);
}

static void select_on_1d_gives_a_0d_view(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(1, (int64_t[]){5});
  tb_tensor_t *v = NULL;
  assert_ok(tb_tensor_select(x, 0, 3, &v));
  assert_int_equal(tb_tensor_ndim(v), 0);
  assert_int_equal(tb_tensor_numel(v), 1);
  assert_int_equal(get0(v), 3);
  assert_ptr_equal(tb_tensor_data(v), base_elem(x, 3));
  tb_tensor_release(v);
  tb_tensor_release(x);
}

/* ------------------------------------------------------------------------ */
/* permute / transpose                                                      */
/* ------------------------------------------------------------------------ */

static void permute_reorders_dims_and_keeps_elements(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(3, (int64_t[]){2, 3, 4});
  tb_tensor_t *y = NULL;
  assert_ok(tb_tensor_permute(x, (int32_t[]){2, 0, 1}, &y));
  assert_shape(y, 3, (int64_t[]){4, 2, 3});
  assert_strides(y, 3, (int64_t[]){1, 12, 4});
  for (int64_t i = 0; i < 4; i++) {
    for (int64_t j = 0; j < 2; j++) {
      for (int64_t k = 0; k < 3; k++) assert_int_equal(get3(y, i, j, k), get3(x, j, k, i));
    }
  }
  assert_ptr_equal(tb_tensor_data(y), tb_tensor_data(x));
  assert_false(tb_tensor_is_contiguous(y, TB_ORDER_C));
  tb_tensor_release(y);

  /* Negative entries count from the end: {-1, 0, -2} is {2, 0, 1}. */
  assert_ok(tb_tensor_permute(x, (int32_t[]){-1, 0, -2}, &y));
  assert_shape(y, 3, (int64_t[]){4, 2, 3});
  assert_strides(y, 3, (int64_t[]){1, 12, 4});
  tb_tensor_release(y);

  /* The identity permutation is the same layout. */
  assert_ok(tb_tensor_permute(x, (int32_t[]){0, 1, 2}, &y));
  assert_strides(y, 3, (int64_t[]){12, 4, 1});
  assert_true(tb_tensor_is_contiguous(y, TB_ORDER_C));
  tb_tensor_release(y);
  tb_tensor_release(x);
}

static void permute_with_repeated_dim_is_invalid(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(3, (int64_t[]){2, 3, 4});
  tb_tensor_t *y = NULL;
  assert_status(tb_tensor_permute(x, (int32_t[]){0, 0, 1}, &y), TB_ERR_INVALID);
  assert_error_mentions("perm[1]");
  assert_status(tb_tensor_permute(x, (int32_t[]){2, 1, -1}, &y), TB_ERR_INVALID);
  assert_error_mentions("perm[2]");
  assert_null(y);
  tb_tensor_release(x);
}

static void permute_with_dim_out_of_range_is_an_index_error(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(3, (int64_t[]){2, 3, 4});
  tb_tensor_t *y = NULL;
  assert_status(tb_tensor_permute(x, (int32_t[]){0, 1, 3}, &y), TB_ERR_INDEX);
  assert_error_mentions("3");
  assert_status(tb_tensor_permute(x, (int32_t[]){-4, 1, 2}, &y), TB_ERR_INDEX);
  assert_error_mentions("-4");
  assert_null(y);
  tb_tensor_release(x);
}

static void transpose_swaps_two_dims(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(2, (int64_t[]){3, 4});
  tb_tensor_t *t = NULL;
  assert_ok(tb_tensor_transpose(x, 0, 1, &t));
  assert_shape(t, 2, (int64_t[]){4, 3});
  assert_strides(t, 2, (int64_t[]){1, 4});
  for (int64_t i = 0; i < 4; i++) {
    for (int64_t j = 0; j < 3; j++) assert_int_equal(get2(t, i, j), 4 * j + i);
  }
  assert_false(tb_tensor_is_contiguous(t, TB_ORDER_C));
  assert_true(tb_tensor_is_contiguous(t, TB_ORDER_F));
  tb_tensor_release(t);

  assert_ok(tb_tensor_transpose(x, -1, -2, &t));
  assert_strides(t, 2, (int64_t[]){1, 4});
  tb_tensor_release(t);

  assert_ok(tb_tensor_transpose(x, 1, -1, &t)); /* the same dim: no change */
  assert_strides(t, 2, (int64_t[]){4, 1});
  tb_tensor_release(t);

  t = NULL;
  assert_status(tb_tensor_transpose(x, 0, 2, &t), TB_ERR_INDEX);
  assert_status(tb_tensor_transpose(x, -3, 0, &t), TB_ERR_INDEX);
  assert_null(t);
  tb_tensor_release(x);
}

/* ------------------------------------------------------------------------ */
/* reshape                                                                  */
/* ------------------------------------------------------------------------ */

static void reshape_of_contiguous_tensor_is_a_view_in_c_order(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(3, (int64_t[]){2, 3, 4});
  tb_tensor_t *r = NULL;
  assert_ok(tb_tensor_reshape(x, 2, (int64_t[]){6, 4}, &r));
  assert_shape(r, 2, (int64_t[]){6, 4});
  assert_strides(r, 2, (int64_t[]){4, 1});
  assert_ptr_equal(tb_tensor_data(r), tb_tensor_data(x));
  assert_true(tb_tensor_shares_storage(x, r));
  for (int64_t i = 0; i < 6; i++) {
    for (int64_t j = 0; j < 4; j++) assert_int_equal(get2(r, i, j), 4 * i + j);
  }
  tb_tensor_release(r);

  assert_ok(tb_tensor_reshape(x, 1, (int64_t[]){24}, &r));
  assert_strides(r, 1, (int64_t[]){1});
  assert_int_equal(get1(r, 17), 17);
  tb_tensor_release(r);
  tb_tensor_release(x);
}

static void reshape_infers_one_extent_from_minus_one(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(1, (int64_t[]){24});
  tb_tensor_t *r = NULL;
  assert_ok(tb_tensor_reshape(x, 2, (int64_t[]){-1, 2}, &r));
  assert_shape(r, 2, (int64_t[]){12, 2});
  assert_int_equal(get2(r, 5, 1), 11);
  tb_tensor_release(r);
  assert_ok(tb_tensor_reshape(x, 3, (int64_t[]){2, -1, 3}, &r));
  assert_shape(r, 3, (int64_t[]){2, 4, 3});
  assert_strides(r, 3, (int64_t[]){12, 3, 1});
  assert_int_equal(get3(r, 1, 2, 1), 12 + 6 + 1);
  tb_tensor_release(r);
  assert_ok(tb_tensor_reshape(x, 1, (int64_t[]){-1}, &r));
  assert_shape(r, 1, (int64_t[]){24});
  tb_tensor_release(r);

  r = NULL;
  assert_status(tb_tensor_reshape(x, 2, (int64_t[]){-1, -1}, &r), TB_ERR_INVALID);
  assert_status(tb_tensor_reshape(x, 2, (int64_t[]){-1, 5}, &r), TB_ERR_INVALID);
  assert_status(tb_tensor_reshape(x, 2, (int64_t[]){-2, 12}, &r), TB_ERR_INVALID);
  assert_error_mentions("shape[0] = -2");
  assert_null(r);
  tb_tensor_release(x);
}

static void reshape_adds_and_removes_size_one_dims(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(2, (int64_t[]){2, 3});
  tb_tensor_t *r = NULL, *back = NULL;
  assert_ok(tb_tensor_reshape(x, 5, (int64_t[]){1, 2, 1, 3, 1}, &r));
  assert_shape(r, 5, (int64_t[]){1, 2, 1, 3, 1});
  assert_true(tb_tensor_is_contiguous(r, TB_ORDER_C));
  for (int64_t i = 0; i < 2; i++) {
    for (int64_t j = 0; j < 3; j++) {
      assert_int_equal(*elem(r, (int64_t[]){0, i, 0, j, 0}), 3 * i + j);
    }
  }
  assert_ok(tb_tensor_reshape(r, 2, (int64_t[]){3, 2}, &back));
  assert_strides(back, 2, (int64_t[]){2, 1});
  assert_int_equal(get2(back, 2, 1), 5);
  tb_tensor_release(back);
  tb_tensor_release(r);

  /* To and from 0-d. */
  tb_tensor_t *one = arange_i32(2, (int64_t[]){1, 1});
  tb_tensor_t *scalar = NULL, *again = NULL;
  assert_ok(tb_tensor_reshape(one, 0, NULL, &scalar));
  assert_int_equal(tb_tensor_ndim(scalar), 0);
  assert_int_equal(get0(scalar), 0);
  assert_ok(tb_tensor_reshape(scalar, 3, (int64_t[]){1, -1, 1}, &again));
  assert_shape(again, 3, (int64_t[]){1, 1, 1});
  tb_tensor_release(again);
  tb_tensor_release(scalar);
  tb_tensor_release(one);
  tb_tensor_release(x);
}

static void reshape_of_strided_view_splits_dims_when_strides_allow(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(2, (int64_t[]){4, 6});
  tb_tensor_t *s = NULL, *r = NULL;
  assert_ok(tb_tensor_slice(x, 1, 0, 4, 2, &s)); /* x[:, :4:2], 4 x 2, strides {6, 2} */
  assert_ok(tb_tensor_reshape(s, 3, (int64_t[]){2, 2, 2}, &r));
  assert_strides(r, 3, (int64_t[]){12, 6, 2});
  for (int64_t a = 0; a < 2; a++) {
    for (int64_t b = 0; b < 2; b++) {
      for (int64_t c = 0; c < 2; c++) assert_int_equal(get3(r, a, b, c), (2 * a + b) * 6 + 2 * c);
    }
  }
  assert_true(tb_tensor_shares_storage(x, r));
  tb_tensor_release(r);

  /* Merging the rows with the gapped columns is not expressible. */
  r = NULL;
  assert_status(tb_tensor_reshape(s, 1, (int64_t[]){8}, &r), TB_ERR_LAYOUT);
  assert_status(tb_tensor_reshape(s, 2, (int64_t[]){2, 4}, &r), TB_ERR_LAYOUT);
  assert_null(r);
  tb_tensor_release(s);

  /* x[:, ::2] steps through memory by 2 without gaps: it flattens to a view. */
  assert_ok(tb_tensor_slice(x, 1, INT64_MIN, INT64_MAX, 2, &s));
  assert_ok(tb_tensor_reshape(s, 1, (int64_t[]){12}, &r));
  assert_strides(r, 1, (int64_t[]){2});
  for (int64_t k = 0; k < 12; k++) assert_int_equal(get1(r, k), 2 * k);
  tb_tensor_release(r);
  tb_tensor_release(s);

  /* A reversed vector splits into reversed rows. */
  tb_tensor_t *v = arange_i32(1, (int64_t[]){10});
  tb_tensor_t *rev = NULL;
  assert_ok(tb_tensor_slice(v, 0, INT64_MAX, INT64_MIN, -1, &rev));
  assert_ok(tb_tensor_reshape(rev, 2, (int64_t[]){2, 5}, &r));
  assert_strides(r, 2, (int64_t[]){-5, -1});
  for (int64_t i = 0; i < 2; i++) {
    for (int64_t j = 0; j < 5; j++) assert_int_equal(get2(r, i, j), 9 - (5 * i + j));
  }
  tb_tensor_release(r);
  tb_tensor_release(rev);
  tb_tensor_release(v);
  tb_tensor_release(x);
}

static void reshape_of_transposed_tensor_needs_contiguous_first(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(2, (int64_t[]){3, 4});
  tb_tensor_t *t = NULL, *r = NULL, *c = NULL;
  assert_ok(tb_tensor_transpose(x, 0, 1, &t));
  tb_clear_error();
  assert_status(tb_tensor_reshape(t, 1, (int64_t[]){12}, &r), TB_ERR_LAYOUT);
  assert_null(r);
  assert_error_mentions("reshape");

  assert_ok(tb_tensor_contiguous(t, TB_ORDER_C, &c));
  assert_false(tb_tensor_shares_storage(c, x));
  assert_ok(tb_tensor_reshape(c, 1, (int64_t[]){12}, &r));
  assert_true(tb_tensor_shares_storage(c, r));
  /* r[k] = t[k / 3][k % 3] = x[k % 3][k / 3]. */
  for (int64_t k = 0; k < 12; k++) assert_int_equal(get1(r, k), 4 * (k % 3) + k / 3);
  tb_tensor_release(r);
  tb_tensor_release(c);
  tb_tensor_release(t);
  tb_tensor_release(x);
}

static void reshape_of_size_zero_tensor_accepts_any_empty_shape(void **state) {
  (void)state;
  tb_tensor_t *x = NULL, *t = NULL, *r = NULL;
  assert_ok(tb_tensor_empty(I32, 2, (int64_t[]){0, 3}, cpu(), TB_ORDER_C, &x));
  assert_ok(tb_tensor_reshape(x, 3, (int64_t[]){3, 0, 5}, &r));
  assert_shape(r, 3, (int64_t[]){3, 0, 5});
  assert_int_equal(tb_tensor_numel(r), 0);
  tb_tensor_release(r);
  assert_ok(tb_tensor_reshape(x, 2, (int64_t[]){-1, 3}, &r));
  assert_shape(r, 2, (int64_t[]){0, 3});
  tb_tensor_release(r);
  assert_ok(tb_tensor_reshape(x, 1, (int64_t[]){-1}, &r));
  assert_shape(r, 1, (int64_t[]){0});
  tb_tensor_release(r);

  /* Layout never matters without elements, even transposed. */
  assert_ok(tb_tensor_transpose(x, 0, 1, &t));
  assert_ok(tb_tensor_reshape(t, 2, (int64_t[]){0, 7}, &r));
  assert_shape(r, 2, (int64_t[]){0, 7});
  tb_tensor_release(r);

  r = NULL;
  assert_status(tb_tensor_reshape(x, 1, (int64_t[]){4}, &r), TB_ERR_INVALID);
  /* -1 next to a zero extent is ambiguous. */
  assert_status(tb_tensor_reshape(x, 2, (int64_t[]){0, -1}, &r), TB_ERR_INVALID);
  assert_null(r);
  tb_tensor_release(t);
  tb_tensor_release(x);
}

static void reshape_with_other_element_count_is_invalid(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(2, (int64_t[]){4, 6});
  tb_tensor_t *r = NULL;
  assert_status(tb_tensor_reshape(x, 2, (int64_t[]){5, 5}, &r), TB_ERR_INVALID);
  assert_error_mentions("25");
  assert_status(tb_tensor_reshape(x, 1, (int64_t[]){23}, &r), TB_ERR_INVALID);
  assert_status(tb_tensor_reshape(x, 0, NULL, &r), TB_ERR_INVALID);
  assert_null(r);
  tb_tensor_release(x);
}

static void reshape_of_broadcast_view_keeps_zero_strides_and_read_only(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(1, (int64_t[]){3});
  tb_tensor_t *e = NULL, *r = NULL;
  assert_ok(tb_tensor_expand(x, 2, (int64_t[]){4, 3}, &e));
  assert_ok(tb_tensor_reshape(e, 3, (int64_t[]){2, 2, 3}, &r));
  assert_strides(r, 3, (int64_t[]){0, 0, 1});
  assert_true(tb_tensor_is_readonly(r));
  for (int64_t a = 0; a < 2; a++) {
    for (int64_t b = 0; b < 2; b++) {
      for (int64_t c = 0; c < 3; c++) assert_int_equal(get3(r, a, b, c), c);
    }
  }
  tb_tensor_release(r);
  tb_tensor_release(e);
  tb_tensor_release(x);
}

/* ------------------------------------------------------------------------ */
/* contiguous                                                               */
/* ------------------------------------------------------------------------ */

static void contiguous_returns_the_same_handle_when_already_contiguous(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(2, (int64_t[]){3, 4});
  tb_tensor_t *c = NULL;
  assert_ok(tb_tensor_contiguous(x, TB_ORDER_C, &c));
  assert_ptr_equal(c, x);
  tb_tensor_release(c); /* a new reference: x is still alive */
  assert_int_equal(get2(x, 2, 3), 11);

  /* A vector is contiguous in both orders. */
  tb_tensor_t *v = arange_i32(1, (int64_t[]){5});
  assert_ok(tb_tensor_contiguous(v, TB_ORDER_F, &c));
  assert_ptr_equal(c, v);
  tb_tensor_release(c);
  tb_tensor_release(v);
  tb_tensor_release(x);
}

static void contiguous_copies_a_strided_tensor(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(2, (int64_t[]){3, 4});
  tb_tensor_t *t = NULL, *c = NULL, *f = NULL;
  assert_ok(tb_tensor_transpose(x, 0, 1, &t));
  assert_ok(tb_tensor_contiguous(t, TB_ORDER_C, &c));
  assert_ptr_not_equal(c, t);
  assert_ptr_not_equal(tb_tensor_data(c), tb_tensor_data(x));
  assert_false(tb_tensor_shares_storage(c, x));
  assert_shape(c, 2, (int64_t[]){4, 3});
  assert_strides(c, 2, (int64_t[]){3, 1});
  for (int64_t i = 0; i < 4; i++) {
    for (int64_t j = 0; j < 3; j++) assert_int_equal(get2(c, i, j), 4 * j + i);
  }
  /* The copy is independent of x. */
  *elem(c, (int64_t[]){0, 1}) = -7;
  assert_int_equal(get2(x, 1, 0), 4);

  /* The transpose is already F-contiguous: same handle. */
  assert_ok(tb_tensor_contiguous(t, TB_ORDER_F, &f));
  assert_ptr_equal(f, t);
  tb_tensor_release(f);

  /* x itself is not F-contiguous: a copy with F strides. */
  assert_ok(tb_tensor_contiguous(x, TB_ORDER_F, &f));
  assert_ptr_not_equal(f, x);
  assert_strides(f, 2, (int64_t[]){1, 3});
  assert_int_equal(get2(f, 2, 1), 9);
  tb_tensor_release(f);
  tb_tensor_release(c);
  tb_tensor_release(t);
  tb_tensor_release(x);
}

/* ------------------------------------------------------------------------ */
/* squeeze / unsqueeze                                                      */
/* ------------------------------------------------------------------------ */

static void squeeze_removes_one_extent_one_dim(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(3, (int64_t[]){1, 3, 1});
  tb_tensor_t *s = NULL;
  assert_ok(tb_tensor_squeeze(x, 0, &s));
  assert_shape(s, 2, (int64_t[]){3, 1});
  assert_int_equal(get2(s, 2, 0), 2);
  assert_ptr_equal(tb_tensor_data(s), tb_tensor_data(x));
  tb_tensor_release(s);
  assert_ok(tb_tensor_squeeze(x, -1, &s));
  assert_shape(s, 2, (int64_t[]){1, 3});
  assert_int_equal(get2(s, 0, 1), 1);
  tb_tensor_release(s);

  s = NULL;
  assert_status(tb_tensor_squeeze(x, 1, &s), TB_ERR_INVALID);
  assert_error_mentions("shape[1] = 3");
  assert_status(tb_tensor_squeeze(x, 3, &s), TB_ERR_INDEX);
  assert_status(tb_tensor_squeeze(x, -4, &s), TB_ERR_INDEX);
  assert_null(s);
  tb_tensor_release(x);
}

static void squeeze_all_removes_every_extent_one_dim(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(4, (int64_t[]){1, 3, 1, 2});
  tb_tensor_t *s = NULL;
  assert_ok(tb_tensor_squeeze_all(x, &s));
  assert_shape(s, 2, (int64_t[]){3, 2});
  assert_strides(s, 2, (int64_t[]){2, 1});
  assert_int_equal(get2(s, 2, 1), 5);
  assert_true(tb_tensor_shares_storage(x, s));
  tb_tensor_release(s);

  /* All extents 1: a 0-d view. */
  tb_tensor_t *ones = arange_i32(3, (int64_t[]){1, 1, 1});
  assert_ok(tb_tensor_squeeze_all(ones, &s));
  assert_int_equal(tb_tensor_ndim(s), 0);
  assert_int_equal(get0(s), 0);
  tb_tensor_release(s);

  /* Nothing to remove: the same layout. */
  tb_tensor_t *plain = arange_i32(2, (int64_t[]){2, 3});
  assert_ok(tb_tensor_squeeze_all(plain, &s));
  assert_shape(s, 2, (int64_t[]){2, 3});
  tb_tensor_release(s);
  tb_tensor_release(plain);
  tb_tensor_release(ones);
  tb_tensor_release(x);
}

static void unsqueeze_inserts_extent_one_at_any_position(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(2, (int64_t[]){2, 3});
  static const struct {
    int32_t dim;
    int64_t shape[3];
  } cases[] = {
      {0, {1, 2, 3}}, {1, {2, 1, 3}}, {2, {2, 3, 1}},
      {-1, {2, 3, 1}}, {-2, {2, 1, 3}}, {-3, {1, 2, 3}},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    tb_tensor_t *u = NULL;
    assert_ok(tb_tensor_unsqueeze(x, cases[c].dim, &u));
    assert_shape(u, 3, cases[c].shape);
    assert_true(tb_tensor_is_contiguous(u, TB_ORDER_C));
    assert_ptr_equal(tb_tensor_data(u), tb_tensor_data(x));
    int32_t inserted = cases[c].dim < 0 ? cases[c].dim + 3 : cases[c].dim;
    for (int64_t i = 0; i < 2; i++) {
      for (int64_t j = 0; j < 3; j++) {
        int64_t ij[2] = {i, j}, index[3];
        for (int32_t d = 0, k = 0; d < 3; d++) index[d] = d == inserted ? 0 : ij[k++];
        assert_int_equal(*elem(u, index), 3 * i + j);
      }
    }
    tb_tensor_release(u);
  }
  tb_tensor_t *u = NULL;
  assert_status(tb_tensor_unsqueeze(x, 3, &u), TB_ERR_INDEX);
  assert_status(tb_tensor_unsqueeze(x, -4, &u), TB_ERR_INDEX);
  assert_null(u);
  tb_tensor_release(x);
}

static void unsqueeze_and_squeeze_of_0d_tensor(void **state) {
  (void)state;
  tb_tensor_t *x = NULL, *u = NULL, *s = NULL;
  assert_ok(tb_tensor_empty(I32, 0, NULL, cpu(), TB_ORDER_C, &x));
  *(int32_t *)tb_tensor_data(x) = 42;
  assert_ok(tb_tensor_unsqueeze(x, 0, &u));
  assert_shape(u, 1, (int64_t[]){1});
  assert_int_equal(get1(u, 0), 42);
  tb_tensor_release(u);
  assert_ok(tb_tensor_unsqueeze(x, -1, &u));
  assert_shape(u, 1, (int64_t[]){1});
  assert_ok(tb_tensor_squeeze(u, 0, &s));
  assert_int_equal(tb_tensor_ndim(s), 0);
  assert_int_equal(get0(s), 42);
  tb_tensor_release(s);
  tb_tensor_release(u);

  u = NULL;
  assert_status(tb_tensor_unsqueeze(x, 1, &u), TB_ERR_INDEX);
  assert_status(tb_tensor_unsqueeze(x, -2, &u), TB_ERR_INDEX);
  assert_status(tb_tensor_squeeze(x, 0, &u), TB_ERR_INDEX);
  assert_null(u);
  assert_ok(tb_tensor_squeeze_all(x, &s));
  assert_int_equal(tb_tensor_ndim(s), 0);
  tb_tensor_release(s);
  tb_tensor_release(x);
}

/* ------------------------------------------------------------------------ */
/* expand                                                                   */
/* ------------------------------------------------------------------------ */

static void expand_broadcasts_with_zero_strides(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(2, (int64_t[]){3, 1});
  tb_tensor_t *e = NULL;
  assert_ok(tb_tensor_expand(x, 2, (int64_t[]){3, 4}, &e));
  assert_shape(e, 2, (int64_t[]){3, 4});
  assert_int_equal(tb_tensor_strides(e)[1], 0);
  assert_int_equal(tb_tensor_strides(e)[0], 1);
  for (int64_t i = 0; i < 3; i++) {
    for (int64_t j = 0; j < 4; j++) {
      assert_int_equal(get2(e, i, j), i);
      assert_ptr_equal(elem(e, (int64_t[]){i, j}), base_elem(x, i));
    }
  }
  assert_true(tb_tensor_shares_storage(x, e));
  tb_tensor_release(e);

  /* -1 keeps the extent. */
  assert_ok(tb_tensor_expand(x, 2, (int64_t[]){-1, 5}, &e));
  assert_shape(e, 2, (int64_t[]){3, 5});
  tb_tensor_release(e);

  /* Extent 1 may also grow to 0. */
  assert_ok(tb_tensor_expand(x, 2, (int64_t[]){3, 0}, &e));
  assert_shape(e, 2, (int64_t[]){3, 0});
  assert_int_equal(tb_tensor_numel(e), 0);
  tb_tensor_release(e);
  tb_tensor_release(x);
}

static void expand_adds_new_leading_dims(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(1, (int64_t[]){3});
  tb_tensor_t *e = NULL;
  assert_ok(tb_tensor_expand(x, 3, (int64_t[]){2, 4, -1}, &e));
  assert_shape(e, 3, (int64_t[]){2, 4, 3});
  assert_strides(e, 3, (int64_t[]){0, 0, 1});
  for (int64_t a = 0; a < 2; a++) {
    for (int64_t b = 0; b < 4; b++) {
      for (int64_t c = 0; c < 3; c++) assert_int_equal(get3(e, a, b, c), c);
    }
  }
  tb_tensor_release(e);

  /* A 0-d tensor broadcasts to anything. */
  tb_tensor_t *s = NULL;
  assert_ok(tb_tensor_empty(I32, 0, NULL, cpu(), TB_ORDER_C, &s));
  *(int32_t *)tb_tensor_data(s) = 9;
  assert_ok(tb_tensor_expand(s, 2, (int64_t[]){2, 3}, &e));
  assert_strides(e, 2, (int64_t[]){0, 0});
  assert_int_equal(get2(e, 1, 2), 9);
  tb_tensor_release(e);
  tb_tensor_release(s);
  tb_tensor_release(x);
}

static void expand_to_incompatible_shape_is_invalid(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(1, (int64_t[]){3});
  tb_tensor_t *e = NULL;
  assert_status(tb_tensor_expand(x, 1, (int64_t[]){4}, &e), TB_ERR_INVALID);
  assert_error_mentions("shape[0] = 4");
  assert_status(tb_tensor_expand(x, 2, (int64_t[]){3, 2}, &e), TB_ERR_INVALID);
  /* -1 cannot stand for a new leading dim, and ndim cannot shrink. */
  assert_status(tb_tensor_expand(x, 2, (int64_t[]){-1, 3}, &e), TB_ERR_INVALID);
  assert_status(tb_tensor_expand(x, 0, NULL, &e), TB_ERR_INVALID);
  assert_status(tb_tensor_expand(x, 1, (int64_t[]){-5}, &e), TB_ERR_INVALID);
  assert_null(e);
  tb_tensor_release(x);
}

static void expand_result_is_read_only_and_fill_refuses(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(1, (int64_t[]){3});
  tb_tensor_t *e = NULL;
  assert_ok(tb_tensor_expand(x, 2, (int64_t[]){2, 3}, &e));
  assert_true(tb_tensor_is_readonly(e));
  assert_false(tb_tensor_is_readonly(x));
  int32_t seven = 7;
  tb_clear_error();
  assert_status(tb_tensor_fill(e, &seven, I32), TB_ERR_READONLY);
  assert_error_mentions("read-only");
  for (int64_t i = 0; i < 3; i++) assert_int_equal(get1(x, i), i);

  /* Views of the broadcast stay read-only. */
  tb_tensor_t *row = NULL;
  assert_ok(tb_tensor_select(e, 0, 1, &row));
  assert_true(tb_tensor_is_readonly(row));
  assert_status(tb_tensor_fill(row, &seven, I32), TB_ERR_READONLY);
  tb_tensor_release(row);
  tb_tensor_release(e);
  tb_tensor_release(x);
}

static void view_as_reinterprets_the_same_bytes(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(2, (int64_t[]){3, 4});
  tb_tensor_t *col = NULL, *f = NULL, *u = NULL;
  /* A strided view (one column) with an offset: the reinterpretation keeps
   * the layout exactly. */
  assert_ok(tb_tensor_slice(x, 1, 1, 2, 1, &col));
  assert_ok(tb_tensor_view_as(col, F32, &f));
  assert_true(tb_dtype_equal(tb_tensor_dtype(f), F32));
  assert_int_equal(tb_tensor_ndim(f), 2);
  assert_memory_equal(tb_tensor_shape(f), tb_tensor_shape(col), 2 * sizeof(int64_t));
  assert_memory_equal(tb_tensor_strides(f), tb_tensor_strides(col), 2 * sizeof(int64_t));
  assert_ptr_equal(tb_tensor_data(f), tb_tensor_data(col));
  assert_true(tb_tensor_shares_storage(f, x));
  /* Writes through the view are the source's bytes. */
  float one = 1.0f;
  assert_ok(tb_tensor_fill(f, &one, F32));
  int32_t bits;
  memcpy(&bits, &one, sizeof bits);
  for (int64_t i = 0; i < 3; i++) {
    assert_int_equal(get2(x, i, 1), bits);
    assert_int_equal(get2(x, i, 0), i * 4);
  }
  /* uint32 over int32: the same values where they fit. */
  assert_ok(tb_tensor_view_as(x, dt(kDLUInt, 32), &u));
  assert_int_equal(*(uint32_t *)tb_tensor_data(u), 0);
  tb_tensor_release(u);
  tb_tensor_release(f);
  tb_tensor_release(col);
  tb_tensor_release(x);
}

static void view_as_refuses_other_sizes_packed_and_bool(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(1, (int64_t[]){4});
  tb_tensor_t *v = (tb_tensor_t *)0x1;
  tb_clear_error();
  assert_status(tb_tensor_view_as(x, I16, &v), TB_ERR_DTYPE);
  assert_error_mentions("2-byte");
  assert_error_mentions("int32");
  assert_ptr_equal(v, (tb_tensor_t *)0x1); /* outputs are written only on success */
  assert_status(tb_tensor_view_as(x, dt(kDLFloat, 33), &v), TB_ERR_DTYPE);
  tb_tensor_t *b = NULL;
  assert_ok(tb_tensor_empty(U8, 1, (int64_t[]){4}, cpu(), TB_ORDER_C, &b));
  assert_status(tb_tensor_view_as(b, dt(TB_DL_BOOL, 8), &v), TB_ERR_DTYPE);
  assert_error_mentions("bool");
  assert_status(tb_tensor_view_as(b, dt(TB_DL_FLOAT4_E2M1FN, 4), &v), TB_ERR_DTYPE);
  assert_error_mentions("packed");
  assert_status(tb_tensor_view_as(NULL, U8, &v), TB_ERR_INVALID);
  /* Read-only stays read-only. */
  tb_tensor_t *e = NULL, *ev = NULL;
  assert_ok(tb_tensor_expand(b, 2, (int64_t[]){2, 4}, &e));
  assert_ok(tb_tensor_view_as(e, dt(kDLInt, 8), &ev));
  assert_true(tb_tensor_is_readonly(ev));
  tb_tensor_release(ev);
  tb_tensor_release(e);
  tb_tensor_release(b);
  tb_tensor_release(x);
}

static void expand_whose_element_count_overflows_is_an_overflow(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(2, (int64_t[]){1, 1});
  tb_tensor_t *e = NULL;
  assert_status(tb_tensor_expand(x, 2, (int64_t[]){INT64_MAX / 2, 4}, &e), TB_ERR_OVERFLOW);
  assert_status(tb_tensor_expand(x, 3, (int64_t[]){INT64_MAX, 2, 1}, &e), TB_ERR_OVERFLOW);
  /* The element count fits but its bytes do not. */
  assert_status(tb_tensor_expand(x, 2, (int64_t[]){INT64_MAX / 2, 1}, &e), TB_ERR_OVERFLOW);
  assert_null(e);

  /* A huge broadcast whose bytes still fit is fine: nothing is allocated. */
  assert_ok(tb_tensor_expand(x, 2, (int64_t[]){INT64_MAX / 8, 1}, &e));
  assert_int_equal(tb_tensor_numel(e), INT64_MAX / 8);
  tb_tensor_release(e);
  tb_tensor_release(x);
}

/* ------------------------------------------------------------------------ */
/* Shared storage and lifetime                                              */
/* ------------------------------------------------------------------------ */

static void views_share_memory_with_their_base_both_ways(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(2, (int64_t[]){3, 4});
  tb_tensor_t *s = NULL, *v = NULL, *other = NULL;
  assert_ok(tb_tensor_slice(x, 1, INT64_MAX, INT64_MIN, -2, &s)); /* x[:, ::-2] */
  assert_ok(tb_tensor_transpose(s, 0, 1, &v));                    /* 2 x 3 */
  assert_true(tb_tensor_shares_storage(x, v));
  assert_true(tb_tensor_shares_storage(v, s));
  /* v[i][j] = x[j][3 - 2i]. */
  assert_int_equal(get2(v, 1, 2), 4 * 2 + 1);

  /* Write through the view, read through the base. */
  *elem(v, (int64_t[]){1, 2}) = 1000;
  assert_int_equal(get2(x, 2, 1), 1000);
  assert_int_equal(((int32_t *)tb_tensor_data(x))[9], 1000);

  /* Write through the base, read through the view. */
  ((int32_t *)tb_tensor_data(x))[3] = -55; /* x[0][3] = v[0][0] */
  assert_int_equal(get2(v, 0, 0), -55);
  assert_ptr_equal(elem(v, (int64_t[]){0, 0}), base_elem(x, 3));

  /* An unrelated tensor does not share storage. */
  other = arange_i32(2, (int64_t[]){3, 4});
  assert_false(tb_tensor_shares_storage(x, other));
  assert_false(tb_tensor_shares_storage(other, v));
  tb_tensor_release(other);
  tb_tensor_release(v);
  tb_tensor_release(s);
  tb_tensor_release(x);
}

static void views_keep_wrapped_memory_alive_until_the_last_goes(void **state) {
  (void)state;
  int32_t *buf = malloc(12 * sizeof *buf);
  assert_non_null(buf);
  for (int i = 0; i < 12; i++) buf[i] = 100 + i;
  counted c = {0};
  tb_tensor_t *x = NULL, *t = NULL, *s = NULL, *row = NULL, *r = NULL;
  assert_ok(tb_from_array(buf, 0, I32, 2, (int64_t[]){3, 4}, NULL, cpu(), 0, counting_deleter,
                          &c, &x));
  assert_ptr_equal(tb_tensor_data(x), buf);
  assert_ok(tb_tensor_transpose(x, 0, 1, &t));                  /* 4 x 3 */
  assert_ok(tb_tensor_slice(t, 0, INT64_MAX, INT64_MIN, -1, &s)); /* rows reversed */
  assert_ok(tb_tensor_select(s, 1, 2, &row));                   /* s[:, 2] */
  assert_ok(tb_tensor_unsqueeze(row, 0, &r));                   /* 1 x 4 */

  tb_tensor_release(x);
  assert_int_equal(c.calls, 0);
  tb_tensor_release(t);
  tb_tensor_release(s);
  assert_int_equal(c.calls, 0);
  /* row[i] = s[i][2] = t[3 - i][2] = x[2][3 - i]. */
  for (int64_t i = 0; i < 4; i++) assert_int_equal(get1(row, i), 100 + 8 + 3 - i);
  tb_tensor_release(row);
  assert_int_equal(c.calls, 0);
  /* Still the caller's memory, shared. */
  buf[8] = -1;
  assert_int_equal(get2(r, 0, 3), -1);
  tb_tensor_release(r);
  assert_int_equal(c.calls, 1);
  assert_ptr_equal(c.last_data, buf);
  free(buf);
}

static void retain_adds_a_reference_the_deleter_waits_for(void **state) {
  (void)state;
  int32_t buf[4] = {1, 2, 3, 4};
  counted c = {0};
  tb_tensor_t *x = NULL;
  assert_ok(tb_from_array(buf, 0, I32, 1, (int64_t[]){4}, NULL, cpu(), 0, counting_deleter, &c,
                          &x));
  assert_ptr_equal(tb_tensor_retain(x), x);
  tb_tensor_release(x);
  assert_int_equal(c.calls, 0);
  assert_int_equal(get1(x, 3), 4);
  tb_tensor_release(x);
  assert_int_equal(c.calls, 1);
  assert_ptr_equal(c.last_data, buf);
}

static void read_only_propagates_to_every_view(void **state) {
  (void)state;
  int32_t buf[6] = {0, 1, 2, 3, 4, 5};
  tb_tensor_t *x = NULL;
  assert_ok(tb_from_array(buf, 0, I32, 2, (int64_t[]){2, 3}, NULL, cpu(), TB_FLAG_READONLY, NULL,
                          NULL, &x));
  assert_true(tb_tensor_is_readonly(x));
  tb_tensor_t *views[8] = {NULL};
  assert_ok(tb_tensor_slice(x, 1, 0, 2, 1, &views[0]));
  assert_ok(tb_tensor_select(x, 0, 1, &views[1]));
  assert_ok(tb_tensor_permute(x, (int32_t[]){1, 0}, &views[2]));
  assert_ok(tb_tensor_transpose(x, 0, 1, &views[3]));
  assert_ok(tb_tensor_reshape(x, 1, (int64_t[]){6}, &views[4]));
  assert_ok(tb_tensor_unsqueeze(x, 0, &views[5]));
  assert_ok(tb_tensor_squeeze(views[5], 0, &views[6]));
  assert_ok(tb_tensor_contiguous(x, TB_ORDER_C, &views[7]));
  int32_t zero = 0;
  for (int i = 0; i < 8; i++) {
    assert_true(tb_tensor_is_readonly(views[i]));
    assert_status(tb_tensor_fill(views[i], &zero, I32), TB_ERR_READONLY);
  }
  for (int i = 0; i < 6; i++) assert_int_equal(buf[i], i);

  /* A copy is writable again. */
  tb_tensor_t *c = NULL;
  assert_ok(tb_tensor_contiguous(views[3], TB_ORDER_C, &c));
  assert_false(tb_tensor_is_readonly(c));
  assert_ok(tb_tensor_fill(c, &zero, I32));
  assert_int_equal(buf[1], 1);
  tb_tensor_release(c);
  for (int i = 0; i < 8; i++) tb_tensor_release(views[i]);
  tb_tensor_release(x);
}

/* ------------------------------------------------------------------------ */
/* Layouts                                                                  */
/* ------------------------------------------------------------------------ */

static void zero_d_tensor_has_one_element_and_is_contiguous(void **state) {
  (void)state;
  tb_tensor_t *x = NULL, *p = NULL, *r = NULL;
  assert_ok(tb_tensor_empty(I32, 0, NULL, cpu(), TB_ORDER_C, &x));
  assert_int_equal(tb_tensor_ndim(x), 0);
  assert_int_equal(tb_tensor_numel(x), 1);
  assert_int_equal(tb_tensor_nbytes(x), 4);
  assert_true(tb_tensor_is_contiguous(x, TB_ORDER_C));
  assert_true(tb_tensor_is_contiguous(x, TB_ORDER_F));
  *(int32_t *)tb_tensor_data(x) = 5;
  assert_int_equal(get0(x), 5);

  assert_ok(tb_tensor_permute(x, NULL, &p));
  assert_int_equal(tb_tensor_ndim(p), 0);
  assert_int_equal(get0(p), 5);
  assert_ok(tb_tensor_reshape(x, 1, (int64_t[]){1}, &r));
  assert_int_equal(get1(r, 0), 5);
  tb_tensor_release(r);
  tb_tensor_release(p);

  r = NULL;
  assert_status(tb_tensor_slice(x, 0, 0, 1, 1, &r), TB_ERR_INDEX);
  assert_status(tb_tensor_select(x, 0, 0, &r), TB_ERR_INDEX);
  assert_status(tb_tensor_transpose(x, 0, 0, &r), TB_ERR_INDEX);
  assert_null(r);
  tb_tensor_release(x);
}

static void negative_stride_array_from_caller_reads_backwards(void **state) {
  (void)state;
  int32_t buf[6] = {10, 11, 12, 13, 14, 15};
  tb_tensor_t *x = NULL, *f = NULL;
  /* Element 0 is buf[5]; stride -1 walks down to buf[0]. */
  assert_ok(tb_from_array(buf, 5 * sizeof buf[0], I32, 1, (int64_t[]){6}, (int64_t[]){-1}, cpu(),
                          0, NULL, NULL, &x));
  assert_ptr_equal(tb_tensor_data(x), &buf[5]);
  assert_ptr_equal(tb_tensor_base(x), buf);
  assert_int_equal(tb_tensor_byte_offset(x), 5 * sizeof buf[0]);
  assert_values_1d(x, 6, (int32_t[]){15, 14, 13, 12, 11, 10});
  assert_false(tb_tensor_is_contiguous(x, TB_ORDER_C));

  /* The same with data at the first element and no byte_offset: the
   * storage base moves down to cover the elements below data, and the
   * deleter still gets the pointer that was passed in. */
  counted c = {0};
  tb_tensor_t *y = NULL;
  assert_ok(tb_from_array(&buf[5], 0, I32, 1, (int64_t[]){6}, (int64_t[]){-1}, cpu(), 0,
                          counting_deleter, &c, &y));
  assert_ptr_equal(tb_tensor_data(y), &buf[5]);
  assert_ptr_equal(tb_tensor_base(y), buf);
  assert_int_equal(tb_tensor_byte_offset(y), 5 * sizeof buf[0]);
  assert_int_equal(get1(y, 5), 10);
  tb_tensor_release(y);
  assert_int_equal(c.calls, 1);
  assert_ptr_equal(c.last_data, &buf[5]);

  /* A 2-d negative-stride view over it: rows of 3, both reversed. */
  tb_tensor_t *m = NULL;
  assert_ok(tb_from_array(buf, 5 * sizeof buf[0], I32, 2, (int64_t[]){2, 3}, (int64_t[]){-3, -1},
                          cpu(), 0, NULL, NULL, &m));
  assert_int_equal(get2(m, 0, 0), 15);
  assert_int_equal(get2(m, 1, 2), 10);
  /* Flipping both dims gives the C-order tensor over buf. */
  assert_ok(tb_tensor_slice(m, 0, INT64_MAX, INT64_MIN, -1, &f));
  tb_tensor_t *ff = NULL;
  assert_ok(tb_tensor_slice(f, 1, INT64_MAX, INT64_MIN, -1, &ff));
  assert_strides(ff, 2, (int64_t[]){3, 1});
  assert_true(tb_tensor_is_contiguous(ff, TB_ORDER_C));
  assert_ptr_equal(tb_tensor_data(ff), buf);
  for (int64_t i = 0; i < 2; i++) {
    for (int64_t j = 0; j < 3; j++) assert_int_equal(get2(ff, i, j), 10 + 3 * i + j);
  }
  /* Writes through the view land in the caller's buffer. */
  *elem(m, (int64_t[]){0, 1}) = 99;
  assert_int_equal(buf[4], 99);
  tb_tensor_release(ff);
  tb_tensor_release(f);
  tb_tensor_release(m);
  tb_tensor_release(x);
}

static void fortran_order_tensor_is_f_contiguous_not_c(void **state) {
  (void)state;
  tb_tensor_t *x = NULL, *t = NULL;
  assert_ok(tb_tensor_empty(I32, 3, (int64_t[]){2, 3, 4}, cpu(), TB_ORDER_F, &x));
  assert_strides(x, 3, (int64_t[]){1, 2, 6});
  assert_true(tb_tensor_is_contiguous(x, TB_ORDER_F));
  assert_false(tb_tensor_is_contiguous(x, TB_ORDER_C));
  /* Memory order is the first index fastest. */
  int32_t *p = tb_tensor_data(x);
  for (int i = 0; i < 24; i++) p[i] = i;
  assert_int_equal(get3(x, 1, 2, 3), 1 + 2 * 2 + 3 * 6);
  /* Reversing the dims gives a C-contiguous view. */
  assert_ok(tb_tensor_permute(x, (int32_t[]){2, 1, 0}, &t));
  assert_true(tb_tensor_is_contiguous(t, TB_ORDER_C));
  assert_false(tb_tensor_is_contiguous(t, TB_ORDER_F));
  assert_int_equal(get3(t, 3, 2, 1), 1 + 2 * 2 + 3 * 6);
  tb_tensor_release(t);
  tb_tensor_release(x);
}

static void is_contiguous_follows_numpy_rules(void **state) {
  (void)state;
  int32_t buf[64] = {0};
  tb_tensor_t *t = NULL;

  /* Size-0 arrays are contiguous in both orders, whatever their strides. */
  assert_ok(tb_from_array(NULL, 0, I32, 2, (int64_t[]){3, 0}, (int64_t[]){7, -5}, cpu(), 0, NULL,
                          NULL, &t));
  assert_true(tb_tensor_is_contiguous(t, TB_ORDER_C));
  assert_true(tb_tensor_is_contiguous(t, TB_ORDER_F));
  tb_tensor_release(t);

  /* Extent-1 dims ignore their stride. */
  assert_ok(tb_from_array(buf, 0, I32, 3, (int64_t[]){3, 1, 4}, (int64_t[]){4, 999, 1}, cpu(), 0,
                          NULL, NULL, &t));
  assert_true(tb_tensor_is_contiguous(t, TB_ORDER_C));
  assert_false(tb_tensor_is_contiguous(t, TB_ORDER_F));
  tb_tensor_release(t);
  assert_ok(tb_from_array(buf, 0, I32, 3, (int64_t[]){4, 1, 3}, (int64_t[]){1, -12345, 4}, cpu(),
                          0, NULL, NULL, &t));
  assert_true(tb_tensor_is_contiguous(t, TB_ORDER_F));
  assert_false(tb_tensor_is_contiguous(t, TB_ORDER_C));
  tb_tensor_release(t);

  /* A single element is contiguous in both orders with any strides. */
  assert_ok(tb_from_array(buf, 0, I32, 2, (int64_t[]){1, 1}, (int64_t[]){5, 7}, cpu(), 0, NULL,
                          NULL, &t));
  assert_true(tb_tensor_is_contiguous(t, TB_ORDER_C));
  assert_true(tb_tensor_is_contiguous(t, TB_ORDER_F));
  tb_tensor_release(t);

  /* Padding between rows breaks contiguity. */
  assert_ok(tb_from_array(buf, 0, I32, 2, (int64_t[]){2, 3}, (int64_t[]){4, 1}, cpu(), 0, NULL,
                          NULL, &t));
  assert_false(tb_tensor_is_contiguous(t, TB_ORDER_C));
  assert_false(tb_tensor_is_contiguous(t, TB_ORDER_F));
  tb_tensor_release(t);

  /* A zero stride on a real extent is not contiguous. */
  assert_ok(tb_from_array(buf, 0, I32, 2, (int64_t[]){2, 3}, (int64_t[]){0, 1}, cpu(),
                          TB_FLAG_READONLY, NULL, NULL, &t));
  assert_false(tb_tensor_is_contiguous(t, TB_ORDER_C));
  tb_tensor_release(t);
}

/* ------------------------------------------------------------------------ */
/* The reach invariant: empty tensors and extreme strides                   */
/* ------------------------------------------------------------------------ */

/* The exact inputs of the bug: a {5, 0} float32 tensor with strides
 * {INT64_MAX, 1} used to be accepted, and select(t, 0, 4), slice(t, 0, 3, 5,
 * 1) and slice(t, 0, 0, 5, 2) then overflowed. It is refused now, because
 * 4 * INT64_MAX (the offset of index 4, which those views compute) does not
 * fit: empty tensors are checked with each extent 0 read as 1. */
static void empty_tensor_whose_views_would_overflow_is_refused(void **state) {
  (void)state;
  float buf[1];
  int64_t shape[2] = {5, 0};
  tb_tensor_t *t = NULL;
  assert_status(tb_from_array(buf, 0, F32, 2, shape, (int64_t[]){INT64_MAX, 1}, cpu(), 0, NULL,
                              NULL, &t),
                TB_ERR_OVERFLOW);
  assert_error_mentions("strides[0] = 9223372036854775807");
  assert_error_mentions("shape[0] = 5");
  assert_status(tb_from_array(NULL, 0, F32, 2, shape, (int64_t[]){INT64_MIN, 1}, cpu(), 0, NULL,
                              NULL, &t),
                TB_ERR_OVERFLOW);
  assert_null(t);
}

/* The largest stride such a tensor may have, and its views: exact strides,
 * no overflow (the sanitizer build checks), offsets unchanged (an empty
 * tensor has no element to point at). */
static void views_of_an_empty_tensor_with_huge_strides_are_exact(void **state) {
  (void)state;
  const int64_t big = INT64_MAX / 16; /* (4 * big + 1) * 4 bytes still fit */
  float buf[1];
  int64_t shape[2] = {5, 0};
  tb_tensor_t *t = NULL, *v = NULL;
  assert_ok(tb_from_array(buf, 12, F32, 2, shape, (int64_t[]){big, 1}, cpu(), 0, NULL, NULL, &t));
  const uint64_t offset = tb_tensor_byte_offset(t);
  assert_int_equal(offset, 12);

  assert_ok(tb_tensor_select(t, 0, 4, &v));
  assert_shape(v, 1, (int64_t[]){0});
  assert_strides(v, 1, (int64_t[]){1});
  assert_int_equal(tb_tensor_byte_offset(v), offset);
  tb_tensor_release(v);
  assert_ok(tb_tensor_select(t, 0, -5, &v));
  assert_int_equal(tb_tensor_byte_offset(v), offset);
  tb_tensor_release(v);
  assert_status(tb_tensor_select(t, 0, 5, &v), TB_ERR_INDEX);
  assert_status(tb_tensor_select(t, 1, 0, &v), TB_ERR_INDEX);

  assert_ok(tb_tensor_slice(t, 0, 3, 5, 1, &v));
  assert_shape(v, 2, (int64_t[]){2, 0});
  assert_strides(v, 2, (int64_t[]){big, 1});
  assert_int_equal(tb_tensor_byte_offset(v), offset);
  tb_tensor_release(v);
  assert_ok(tb_tensor_slice(t, 0, 0, 5, 2, &v));
  assert_shape(v, 2, (int64_t[]){3, 0});
  assert_strides(v, 2, (int64_t[]){2 * big, 1});
  tb_tensor_release(v);
  assert_ok(tb_tensor_slice(t, 0, 0, 5, 4, &v));
  assert_strides(v, 2, (int64_t[]){4 * big, 1});
  tb_tensor_release(v);
  assert_ok(tb_tensor_slice(t, 0, INT64_MAX, INT64_MIN, -1, &v));
  assert_shape(v, 2, (int64_t[]){5, 0});
  assert_strides(v, 2, (int64_t[]){-big, 1});
  assert_int_equal(tb_tensor_byte_offset(v), offset);
  tb_tensor_t *vv = NULL;
  assert_ok(tb_tensor_slice(v, 0, INT64_MAX, INT64_MIN, -2, &vv)); /* back and forth */
  assert_strides(vv, 2, (int64_t[]){2 * big, 1});
  tb_tensor_release(vv);
  tb_tensor_release(v);
  assert_ok(tb_tensor_slice(t, 0, INT64_MIN, INT64_MAX, INT64_MAX, &v));
  assert_shape(v, 2, (int64_t[]){1, 0});
  assert_strides(v, 2, (int64_t[]){big, 1}); /* one element: the stride is kept */
  tb_tensor_release(v);

  assert_ok(tb_tensor_transpose(t, 0, 1, &v));
  assert_strides(v, 2, (int64_t[]){1, big});
  tb_tensor_release(v);
  assert_ok(tb_tensor_unsqueeze(t, 0, &v));
  assert_shape(v, 3, (int64_t[]){1, 5, 0});
  tb_tensor_release(v);
  assert_ok(tb_tensor_expand(t, 3, (int64_t[]){7, 5, 0}, &v));
  assert_strides(v, 3, (int64_t[]){0, big, 1});
  tb_tensor_release(v);
  assert_ok(tb_tensor_reshape(t, 2, (int64_t[]){0, 9}, &v));
  assert_strides(v, 2, (int64_t[]){9, 1});
  tb_tensor_release(v);
  /* A reshape to a shape whose non-zero extents overflow makes a reach no
   * tensor may have. */
  assert_status(tb_tensor_reshape(t, 3, (int64_t[]){0, (int64_t)1 << 62, 4}, &v), TB_ERR_OVERFLOW);
  assert_error_mentions("tensor_reshape");
  assert_ok(tb_tensor_contiguous(t, TB_ORDER_C, &v));
  assert_ptr_equal(v, t);
  tb_tensor_release(v);

  void *p = NULL;
  assert_status(tb_tensor_element_ptr(t, (int64_t[]){4, 0}, &p), TB_ERR_INDEX);
  assert_null(p);
  tb_tensor_t *c = NULL;
  assert_ok(tb_tensor_copy(t, NULL, TB_ORDER_F, 0, &c));
  assert_int_equal(tb_tensor_numel(c), 0);
  tb_tensor_release(c);

  /* DLPack keeps the strides; the struct imports back. */
  DLManagedTensorVersioned *m = NULL;
  assert_ok(tb_to_dlpack_versioned(t, NULL, &m));
  assert_null(m->dl_tensor.data);
  assert_int_equal(m->dl_tensor.strides[0], big);
  tb_tensor_t *back = NULL;
  assert_ok(tb_from_dlpack_versioned(m, NULL, &back));
  assert_strides(back, 2, (int64_t[]){big, 1});
  tb_tensor_release(back);
  tb_tensor_release(t);
}

__extension__ typedef __int128 wide;

/* The bytes a layout reaches with every extent read as max(extent, 1), in
 * 128 bits: [byte_offset + lo, byte_offset + hi). */
static void reach_of(const tb_tensor_t *t, wide *lo, wide *hi) {
  wide item = (wide)tb_dtype_itemsize(tb_tensor_dtype(t));
  wide min_off = 0, max_off = 0;
  for (int32_t d = 0; d < tb_tensor_ndim(t); d++) {
    int64_t n = tb_tensor_shape(t)[d];
    wide r = (wide)(n > 0 ? n - 1 : 0) * tb_tensor_strides(t)[d];
    if (r < 0) min_off += r;
    else max_off += r;
  }
  *lo = (wide)tb_tensor_byte_offset(t) + min_off * item;
  *hi = (wide)tb_tensor_byte_offset(t) + (max_off + 1) * item;
  /* (R1): both ends of the reach fit, relative to element 0 */
  assert_true(min_off * item >= INT64_MIN && (max_off + 1) * item <= INT64_MAX);
}

/* A view made from root keeps the invariant: a non-empty one lies inside
 * the root's bytes, an empty one of an empty root keeps its offset. */
static void check_view(const tb_tensor_t *root, tb_tensor_t *v) {
  wide rlo, rhi, lo, hi;
  reach_of(root, &rlo, &rhi);
  reach_of(v, &lo, &hi);
  if (tb_tensor_numel(v) > 0) {
    assert_true(lo >= rlo && hi <= rhi && lo >= 0);
  } else if (tb_tensor_numel(root) == 0) {
    assert_int_equal(tb_tensor_byte_offset(v), tb_tensor_byte_offset(root));
  }
  tb_tensor_release(v);
}

/* Every view operation, at the edges of every dimension. */
static void all_views_of(const tb_tensor_t *t) {
  static const int64_t steps[] = {1, 2, 3, -1, -2, INT64_MAX, INT64_MIN};
  int32_t nd = tb_tensor_ndim(t);
  tb_tensor_t *v;
  for (int32_t d = 0; d < nd; d++) {
    int64_t n = tb_tensor_shape(t)[d];
    const int64_t picks[] = {0, n / 2, n - 1};
    for (size_t k = 0; k < 3; k++) {
      if (tb_tensor_select(t, d, picks[k], &v) == TB_OK) check_view(t, v);
    }
    for (size_t k = 0; k < sizeof steps / sizeof *steps; k++) {
      int64_t start = steps[k] > 0 ? INT64_MIN : INT64_MAX;
      int64_t stop = steps[k] > 0 ? INT64_MAX : INT64_MIN;
      assert_ok(tb_tensor_slice(t, d, start, stop, steps[k], &v));
      check_view(t, v);
      assert_ok(tb_tensor_slice(t, d, 1, -1, steps[k], &v));
      check_view(t, v);
    }
    assert_ok(tb_tensor_unsqueeze(t, d, &v));
    check_view(t, v);
    if (n == 1) {
      assert_ok(tb_tensor_squeeze(t, d, &v));
      check_view(t, v);
    }
  }
  int32_t perm[TB_MAX_NDIM];
  for (int32_t d = 0; d < nd; d++) perm[d] = nd - 1 - d;
  assert_ok(tb_tensor_permute(t, perm, &v));
  check_view(t, v);
  assert_ok(tb_tensor_squeeze_all(t, &v));
  check_view(t, v);
  if (tb_tensor_reshape(t, 1, (int64_t[]){-1}, &v) == TB_OK) check_view(t, v);
  int64_t grown[TB_MAX_NDIM + 1] = {3};
  for (int32_t d = 0; d < nd; d++) grown[d + 1] = tb_tensor_shape(t)[d];
  if (nd < TB_MAX_NDIM && tb_tensor_expand(t, nd + 1, grown, &v) == TB_OK) check_view(t, v);
}

/* A sweep over shapes (some empty) and extreme strides on a device whose
 * memory is never touched: whatever is accepted gives views that keep the
 * invariant, and nothing overflows (the sanitizer build checks). */
static void every_view_of_every_accepted_layout_stays_in_reach(void **state) {
  (void)state;
  fake_devices_install();
  static const int64_t strides[] = {0,
                                    1,
                                    -1,
                                    7,
                                    -3,
                                    INT64_MAX / 16,
                                    -(INT64_MAX / 16),
                                    INT64_MAX / 8,
                                    (int64_t)1 << 40,
                                    -((int64_t)1 << 40),
                                    INT64_MAX,
                                    INT64_MIN,
                                    INT64_MAX / 2 + 1};
  static const int64_t extents[] = {0, 1, 2, 5};
  const size_t ns = sizeof strides / sizeof *strides, ne = sizeof extents / sizeof *extents;
  DLDevice dev = {(DLDeviceType)FAKE_ADDRESS_DEVICE, 0};
  void *data = (void *)(uintptr_t)((uint64_t)1 << 62);
  long accepted = 0, refused = 0;
  for (size_t a = 0; a < ne; a++) {
    for (size_t b = 0; b < ne; b++) {
      for (size_t i = 0; i < ns; i++) {
        for (size_t j = 0; j < ns; j++) {
          for (int dtype = 0; dtype < 2; dtype++) {
            int64_t shape[2] = {extents[a], extents[b]};
            int64_t st[2] = {strides[i], strides[j]};
            tb_tensor_t *t = NULL;
            tb_status s;
            guarded_call(s, tb_from_array(data, 64, dtype ? F64 : U8, 2, shape, st, dev, 0, NULL,
                                          NULL, &t));
            if (s != TB_OK) {
              assert_int_equal(s, TB_ERR_OVERFLOW);
              refused++;
              continue;
            }
            accepted++;
            all_views_of(t);
            tb_tensor_release(t);
          }
        }
      }
    }
  }
  assert_true(accepted > 0 && refused > 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(slice_with_positive_step_picks_every_nth_element),
      cmocka_unit_test(slice_with_negative_step_walks_backwards),
      cmocka_unit_test(slice_with_open_ends_and_step_minus_one_reverses),
      cmocka_unit_test(slice_clamps_start_and_stop_like_python),
      cmocka_unit_test(slice_with_empty_result_has_zero_extent_and_no_elements),
      cmocka_unit_test(slice_along_last_dim_of_2d_by_negative_dim),
      cmocka_unit_test(slice_with_step_zero_is_invalid),
      cmocka_unit_test(slice_of_dim_out_of_range_is_an_index_error),
      cmocka_unit_test(select_picks_one_index_and_drops_the_dim),
      cmocka_unit_test(select_with_negative_index_counts_from_the_end),
      cmocka_unit_test(select_out_of_range_is_an_index_error),
      cmocka_unit_test(select_on_1d_gives_a_0d_view),
      cmocka_unit_test(permute_reorders_dims_and_keeps_elements),
      cmocka_unit_test(permute_with_repeated_dim_is_invalid),
      cmocka_unit_test(permute_with_dim_out_of_range_is_an_index_error),
      cmocka_unit_test(transpose_swaps_two_dims),
      cmocka_unit_test(reshape_of_contiguous_tensor_is_a_view_in_c_order),
      cmocka_unit_test(reshape_infers_one_extent_from_minus_one),
      cmocka_unit_test(reshape_adds_and_removes_size_one_dims),
      cmocka_unit_test(reshape_of_strided_view_splits_dims_when_strides_allow),
      cmocka_unit_test(reshape_of_transposed_tensor_needs_contiguous_first),
      cmocka_unit_test(reshape_of_size_zero_tensor_accepts_any_empty_shape),
      cmocka_unit_test(reshape_with_other_element_count_is_invalid),
      cmocka_unit_test(reshape_of_broadcast_view_keeps_zero_strides_and_read_only),
      cmocka_unit_test(contiguous_returns_the_same_handle_when_already_contiguous),
      cmocka_unit_test(contiguous_copies_a_strided_tensor),
      cmocka_unit_test(squeeze_removes_one_extent_one_dim),
      cmocka_unit_test(squeeze_all_removes_every_extent_one_dim),
      cmocka_unit_test(unsqueeze_inserts_extent_one_at_any_position),
      cmocka_unit_test(unsqueeze_and_squeeze_of_0d_tensor),
      cmocka_unit_test(expand_broadcasts_with_zero_strides),
      cmocka_unit_test(expand_adds_new_leading_dims),
      cmocka_unit_test(expand_to_incompatible_shape_is_invalid),
      cmocka_unit_test(expand_result_is_read_only_and_fill_refuses),
      cmocka_unit_test(expand_whose_element_count_overflows_is_an_overflow),
      cmocka_unit_test(view_as_reinterprets_the_same_bytes),
      cmocka_unit_test(view_as_refuses_other_sizes_packed_and_bool),
      cmocka_unit_test(views_share_memory_with_their_base_both_ways),
      cmocka_unit_test(views_keep_wrapped_memory_alive_until_the_last_goes),
      cmocka_unit_test(retain_adds_a_reference_the_deleter_waits_for),
      cmocka_unit_test(read_only_propagates_to_every_view),
      cmocka_unit_test(zero_d_tensor_has_one_element_and_is_contiguous),
      cmocka_unit_test(negative_stride_array_from_caller_reads_backwards),
      cmocka_unit_test(fortran_order_tensor_is_f_contiguous_not_c),
      cmocka_unit_test(is_contiguous_follows_numpy_rules),
      cmocka_unit_test(empty_tensor_whose_views_would_overflow_is_refused),
      cmocka_unit_test(views_of_an_empty_tensor_with_huge_strides_are_exact),
      cmocka_unit_test(every_view_of_every_accepted_layout_stays_in_reach),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
