/* The replaceable allocator: every host allocation goes through it, and a
 * failure at any one of them returns TB_ERR_NOMEM and leaks nothing. */
#include <stdlib.h>
#include <string.h>

#include "support.h"

/* One construction path: returns its status and, on success, one tensor
 * (possibly NULL) for the driver to release. */
typedef tb_status (*path_fn)(tb_tensor_t **out, counted *deleter);

static float g_src[24];

static tb_status path_from_array(tb_tensor_t **out, counted *c) {
  int64_t shape[2] = {4, 6};
  return tb_from_array(g_src, 0, F32, 2, shape, NULL, cpu(), 0, counting_deleter, c, out);
}

static tb_status path_empty(tb_tensor_t **out, counted *c) {
  (void)c;
  int64_t shape[2] = {4, 6};
  return tb_tensor_empty(F64, 2, shape, cpu(), TB_ORDER_F, out);
}

static tb_status path_zeros(tb_tensor_t **out, counted *c) {
  (void)c;
  int64_t shape[3] = {2, 3, 4};
  return tb_tensor_zeros(I16, 3, shape, cpu(), TB_ORDER_C, out);
}

static tb_status path_full(tb_tensor_t **out, counted *c) {
  (void)c;
  int64_t shape[1] = {10};
  double v = 3.0;
  return tb_tensor_full(I32, 1, shape, cpu(), TB_ORDER_C, &v, F64, out);
}

static tb_status path_tensor_new_converting(tb_tensor_t **out, counted *c) {
  (void)c;
  int64_t shape[2] = {4, 6};
  int64_t strides[2] = {1, 4};
  DLDataType f64 = F64;
  return tb_tensor_new(g_src, F32, 2, shape, strides, &f64, TB_ORDER_C, 0, out);
}

/* Paths over an existing tensor: the base is made before the allocator is
 * swapped in, so only the path's own allocations are counted. */
static tb_tensor_t *g_base;

static tb_status path_copy(tb_tensor_t **out, counted *c) {
  (void)c;
  DLDataType i64 = I64;
  return tb_tensor_copy(g_base, &i64, TB_ORDER_F, 0, out);
}

static tb_status path_slice_view(tb_tensor_t **out, counted *c) {
  (void)c;
  return tb_tensor_slice(g_base, 1, INT64_MAX, INT64_MIN, -2, out);
}

static tb_status path_contiguous_of_transpose(tb_tensor_t **out, counted *c) {
  (void)c;
  tb_tensor_t *t;
  tb_status st;
  guarded_call(st, tb_tensor_transpose(g_base, 0, 1, &t));
  if (st != TB_OK) return st;
  guarded_call(st, tb_tensor_contiguous(t, TB_ORDER_C, out));
  tb_tensor_release(t);
  return st;
}

static tb_status path_overlapping_copy_into(tb_tensor_t **out, counted *c) {
  (void)c;
  /* dst and src overlap inside g_base: staged through a temporary. */
  tb_tensor_t *dst, *src = NULL;
  tb_status st;
  guarded_call(st, tb_tensor_slice(g_base, 1, 1, INT64_MAX, 1, &dst));
  if (st != TB_OK) return st;
  guarded_call(st, tb_tensor_slice(g_base, 1, 0, -1, 1, &src));
  if (st == TB_OK) guarded_call(st, tb_tensor_copy_into(dst, src, 0));
  tb_tensor_release(src);
  tb_tensor_release(dst);
  *out = NULL;
  return st;
}

/* Fails each allocation of the path in turn, then lets it succeed. */
static void fail_every_allocation(path_fn path, bool owns_deleter) {
  for (long fail_at = 0;; fail_at++) {
    test_allocator a;
    counted c = {0};
    tb_tensor_t *t = NULL;
    test_allocator_install(&a, fail_at);
    tb_status st;
    guarded_call(st, path(&t, &c)); /* a success leaves the message untouched */
    bool reached = a.calls > fail_at;
    if (st != TB_OK) {
      assert_true(reached);
      assert_int_equal(st, TB_ERR_NOMEM);
      assert_error_mentions("allocation of");
      assert_null(t);
      assert_int_equal(c.calls, 0); /* on failure the caller keeps ownership */
    } else {
      assert_false(reached); /* a failed allocation is never hidden */
      tb_tensor_release(t);
      if (owns_deleter) assert_int_equal(c.calls, 1);
    }
    test_allocator_remove();
    assert_int_equal(a.allocs, a.frees);
    assert_int_equal(a.live_bytes, 0);
    if (st == TB_OK) {
      assert_true(fail_at > 0); /* every path allocates something */
      return;
    }
  }
}

static void from_array_survives_every_failed_allocation(void **state) {
  (void)state;
  fail_every_allocation(path_from_array, true);
}
static void empty_survives_every_failed_allocation(void **state) {
  (void)state;
  fail_every_allocation(path_empty, false);
}
static void zeros_survives_every_failed_allocation(void **state) {
  (void)state;
  fail_every_allocation(path_zeros, false);
}
static void full_survives_every_failed_allocation(void **state) {
  (void)state;
  fail_every_allocation(path_full, false);
}
static void tensor_new_survives_every_failed_allocation(void **state) {
  (void)state;
  fail_every_allocation(path_tensor_new_converting, false);
}

static int make_base(void **state) {
  (void)state;
  int64_t shape[2] = {4, 6};
  for (int i = 0; i < 24; i++) g_src[i] = (float)i;
  return tb_tensor_new(g_src, F32, 2, shape, NULL, NULL, TB_ORDER_C, 0, &g_base) == TB_OK ? 0 : -1;
}
static int drop_base(void **state) {
  (void)state;
  tb_tensor_release(g_base);
  return 0;
}

static void copy_survives_every_failed_allocation(void **state) {
  (void)state;
  fail_every_allocation(path_copy, false);
}
static void views_survive_every_failed_allocation(void **state) {
  (void)state;
  fail_every_allocation(path_slice_view, false);
  fail_every_allocation(path_contiguous_of_transpose, false);
}
static void staged_copy_survives_every_failed_allocation(void **state) {
  (void)state;
  fail_every_allocation(path_overlapping_copy_into, false);
}

static void every_allocation_goes_through_the_allocator(void **state) {
  (void)state;
  test_allocator a;
  test_allocator_install(&a, -1);
  int64_t shape[2] = {8, 8};
  tb_tensor_t *t, *v, *c;
  assert_ok(tb_tensor_zeros(F32, 2, shape, cpu(), TB_ORDER_C, &t));
  assert_ok(tb_tensor_transpose(t, 0, 1, &v));
  assert_ok(tb_tensor_contiguous(v, TB_ORDER_C, &c));
  assert_true(a.allocs >= 5); /* 2 storages, 3 headers */
  assert_int_equal(a.max_alignment, TB_DATA_ALIGNMENT);
  assert_true(a.live_bytes >= 2 * 64 * 4);
  tb_tensor_release(c);
  tb_tensor_release(v);
  tb_tensor_release(t);
  test_allocator_remove();
  assert_int_equal(a.allocs, a.frees);
  assert_int_equal(a.live_bytes, 0);
}

static void objects_free_through_the_allocator_that_made_them(void **state) {
  (void)state;
  test_allocator a;
  test_allocator_install(&a, -1);
  int64_t n = 16;
  tb_tensor_t *t;
  assert_ok(tb_tensor_zeros(U8, 1, &n, cpu(), TB_ORDER_C, &t));
  test_allocator_remove(); /* swap the allocator while t lives */
  long made = a.allocs;
  assert_int_equal(a.frees, 0);
  tb_tensor_release(t);
  assert_int_equal(a.frees, made);
  assert_int_equal(a.live_bytes, 0);
}

/* A constructed tensor is one allocation (header, shape, strides and the
 * storage record together); that block outlives the tensor while a view of
 * it lives, and goes with the last view, in either release order. */
static void a_tensor_is_one_allocation_that_its_views_keep(void **state) {
  (void)state;
  for (int base_first = 0; base_first <= 1; base_first++) {
    int32_t buf[6] = {0};
    counted c = {0};
    test_allocator a;
    test_allocator_install(&a, -1);
    tb_tensor_t *t, *v;
    assert_ok(tb_from_array(buf, 0, I32, 2, (int64_t[]){2, 3}, NULL, cpu(), 0, counting_deleter,
                            &c, &t));
    assert_int_equal(a.allocs, 1);
    assert_ok(tb_tensor_transpose(t, 0, 1, &v));
    assert_int_equal(a.allocs, 2); /* a view is one header */
    tb_tensor_release(base_first ? t : v);
    assert_int_equal(a.frees, base_first ? 0 : 1); /* the base's block stays with its storage */
    assert_int_equal(c.calls, 0);
    tb_tensor_release(base_first ? v : t);
    assert_int_equal(c.calls, 1);
    assert_int_equal(a.frees, 2);
    assert_int_equal(a.live_bytes, 0); /* every free got the size its alloc asked for */
    test_allocator_remove();
  }
  /* Library-owned memory: the block and the data, two allocations. */
  test_allocator a;
  test_allocator_install(&a, -1);
  tb_tensor_t *t, *v;
  assert_ok(tb_tensor_empty(I32, 2, (int64_t[]){2, 3}, cpu(), TB_ORDER_C, &t));
  assert_int_equal(a.allocs, 2);
  assert_ok(tb_tensor_select(t, 0, 1, &v));
  tb_tensor_release(t);
  assert_int_equal(a.frees, 0);
  tb_tensor_release(v);
  assert_int_equal(a.frees, 3);
  assert_int_equal(a.live_bytes, 0);
  test_allocator_remove();
}

static void set_allocator_rejects_missing_functions(void **state) {
  (void)state;
  tb_allocator bad = {NULL, NULL, NULL};
  assert_status(tb_set_allocator(&bad), TB_ERR_INVALID);
  assert_error_mentions("alloc");
  tb_allocator cur;
  tb_get_allocator(&cur);
  assert_non_null(cur.alloc);
  assert_non_null(cur.free);
}

/* The default allocator gives large element buffers 2 MiB alignment (and
 * asks Linux for transparent huge pages there); small ones stay at 64. */
static void large_buffers_are_aligned_for_huge_pages(void **state) {
  (void)state;
  int64_t big = (int64_t)(8 << 20) / 4, small = 1000;
  tb_tensor_t *a, *b;
  assert_ok(tb_tensor_zeros(F32, 1, &big, cpu(), TB_ORDER_C, &a));
  assert_ok(tb_tensor_zeros(F32, 1, &small, cpu(), TB_ORDER_C, &b));
  assert_int_equal((uintptr_t)tb_tensor_data(a) % (2u << 20), 0);
  assert_int_equal((uintptr_t)tb_tensor_data(b) % 64, 0);
  const float *f = tb_tensor_data(a);
  assert_true(f[0] == 0.0f && f[big - 1] == 0.0f);
  tb_tensor_release(a);
  tb_tensor_release(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(large_buffers_are_aligned_for_huge_pages),
      cmocka_unit_test(from_array_survives_every_failed_allocation),
      cmocka_unit_test(empty_survives_every_failed_allocation),
      cmocka_unit_test(zeros_survives_every_failed_allocation),
      cmocka_unit_test(full_survives_every_failed_allocation),
      cmocka_unit_test(tensor_new_survives_every_failed_allocation),
      cmocka_unit_test_setup_teardown(copy_survives_every_failed_allocation, make_base, drop_base),
      cmocka_unit_test_setup_teardown(views_survive_every_failed_allocation, make_base, drop_base),
      cmocka_unit_test_setup_teardown(staged_copy_survives_every_failed_allocation, make_base,
                                      drop_base),
      cmocka_unit_test(every_allocation_goes_through_the_allocator),
      cmocka_unit_test(objects_free_through_the_allocator_that_made_them),
      cmocka_unit_test(a_tensor_is_one_allocation_that_its_views_keep),
      cmocka_unit_test(set_allocator_rejects_missing_functions),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
