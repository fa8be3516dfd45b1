/*
 * The strided copy engine, driven through tb_tensor_copy_into and
 * tb_tensor_copy: a seeded randomized comparison against a naive reference,
 * overlapping copies, broadcast sources, edge shapes, conversions through
 * strided layouts and the storage-only dtypes.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

#define C128 dt(TB_DL_COMPLEX, 128)

/* Target dtypes for tb_tensor_copy, which takes them by address. */
static const DLDataType to_f32 = {kDLFloat, 32, 1};
static const DLDataType to_f64 = {kDLFloat, 64, 1};
static const DLDataType to_i32 = {kDLInt, 32, 1};

static void *elem(const tb_tensor_t *t, const int64_t *index) {
  void *p = NULL;
  assert_ok(tb_tensor_element_ptr(t, index, &p));
  assert_non_null(p);
  return p;
}

static int32_t get_i32(const tb_tensor_t *t, const int64_t *index) {
  int32_t v;
  memcpy(&v, elem(t, index), sizeof v);
  return v;
}

static double get_f64(const tb_tensor_t *t, const int64_t *index) {
  double v;
  memcpy(&v, elem(t, index), sizeof v);
  return v;
}

/* A fresh C-order int32 tensor holding offset, offset + 1, ... in C order. */
static tb_tensor_t *arange_i32(int32_t ndim, const int64_t *shape, int32_t offset) {
  tb_tensor_t *t = NULL;
  assert_ok(tb_tensor_empty(I32, ndim, shape, cpu(), TB_ORDER_C, &t));
  int32_t *p = tb_tensor_data(t);
  for (int64_t i = 0; i < tb_tensor_numel(t); i++) p[i] = offset + (int32_t)i;
  return t;
}

static int32_t *i32_data(const tb_tensor_t *t) { return tb_tensor_data(t); }

/* Advances a C-order multi-index; false after the last one. */
static bool next_index(int32_t ndim, const int64_t *shape, int64_t *index) {
  for (int32_t d = ndim - 1; d >= 0; d--) {
    if (++index[d] < shape[d]) return true;
    index[d] = 0;
  }
  return false;
}

static int64_t count_elements(int32_t ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int32_t d = 0; d < ndim; d++) n *= shape[d];
  return n;
}

/* splitmix64: a small PRNG whose sequence is fixed by its seed. */
typedef struct rng {
  uint64_t state;
} rng;

static uint64_t rng_next(rng *r) {
  uint64_t z = (r->state += 0x9E3779B97F4A7C15u);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
  return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
static int64_t rng_range(rng *r, int64_t lo, int64_t hi) {
  return lo + (int64_t)(rng_next(r) % (uint64_t)(hi - lo + 1));
}

static void fill_random_bytes(rng *r, void *data, size_t nbytes) {
  unsigned char *p = data;
  for (size_t i = 0; i < nbytes; i++) p[i] = (unsigned char)rng_next(r);
}

/* ------------------------------------------------------------------------ */
/* Random strided layouts                                                   */
/* ------------------------------------------------------------------------ */

#define MAXD 5
#define MAX_BASE_ELEMENTS 8192

/*
 * How a view of `shape` is cut from a base tensor: permute the base by perm,
 * then slice view dim i with (start, stop, step). The view's element at
 * index[i] along dim i sits at base index first[i] + index[i] * step[i] in
 * base dim perm[i].
 */
typedef struct layout_plan {
  int32_t perm[MAXD];
  int64_t step[MAXD], first[MAXD], start[MAXD], stop[MAXD];
} layout_plan;

static void random_perm(rng *r, int32_t ndim, int32_t *perm) {
  for (int32_t i = 0; i < ndim; i++) perm[i] = i;
  for (int32_t i = ndim - 1; i > 0; i--) {
    int32_t j = (int32_t)rng_range(r, 0, i);
    int32_t tmp = perm[i];
    perm[i] = perm[j];
    perm[j] = tmp;
  }
}

/* Picks the start/stop of one sliced dim of extent `ext` giving n elements
 * with step s; spells them every way Python allows. */
static void plan_slice(rng *r, int64_t ext, int64_t n, int64_t s, int64_t *first, int64_t *start,
                       int64_t *stop) {
  int64_t m = s > 0 ? s : -s;
  int64_t need = n > 0 ? (n - 1) * m + 1 : 0;
  if (n == 0) {
    /* start == stop is empty in either direction. */
    *first = 0;
    *start = *stop = rng_range(r, 0, ext);
    return;
  }
  if (s > 0) {
    int64_t a = rng_range(r, 0, ext - need);
    int64_t b = a + (n - 1) * s + 1 + rng_range(r, 0, s - 1); /* any stop up to a + n*s */
    *first = a;
    *start = rng_range(r, 0, 2) == 0 ? a - ext : a;
    if (a == 0 && rng_range(r, 0, 1) == 0) *start = INT64_MIN;
    *stop = b >= ext && rng_range(r, 0, 1) == 0 ? INT64_MAX : b;
    if (b < ext && rng_range(r, 0, 2) == 0) *stop = b - ext;
    return;
  }
  int64_t a = rng_range(r, need - 1, ext - 1);
  int64_t b = a - (n - 1) * m - 1 - rng_range(r, 0, m - 1); /* down to a - n*m */
  *first = a;
  *start = rng_range(r, 0, 2) == 0 ? a - ext : a;
  if (a == ext - 1 && rng_range(r, 0, 1) == 0) *start = INT64_MAX;
  if (b < 0) {
    /* -1 would mean the last element: only an open or clamped stop works. */
    *stop = rng_range(r, 0, 1) == 0 ? INT64_MIN : -ext - 1 - rng_range(r, 0, 5);
  } else {
    *stop = rng_range(r, 0, 2) == 0 ? b - ext : b;
  }
}

/* A plan over a new base whose shape it writes to base_shape. */
static void plan_fresh(rng *r, int32_t ndim, const int64_t *shape, layout_plan *p,
                       int64_t *base_shape) {
  for (int attempt = 0;; attempt++) {
    int64_t max_step = attempt < 20 ? 3 : 1;
    int64_t max_pad = attempt < 20 ? 2 : 0;
    random_perm(r, ndim, p->perm);
    int64_t total = 1;
    for (int32_t i = 0; i < ndim; i++) {
      int64_t m = rng_range(r, 1, max_step);
      p->step[i] = rng_range(r, 0, 1) == 0 ? m : -m;
      int64_t need = shape[i] > 0 ? (shape[i] - 1) * m + 1 : 0;
      base_shape[p->perm[i]] = need + rng_range(r, 0, max_pad);
      total *= base_shape[p->perm[i]];
    }
    if (total <= MAX_BASE_ELEMENTS) break;
  }
  for (int32_t i = 0; i < ndim; i++) {
    plan_slice(r, base_shape[p->perm[i]], shape[i], p->step[i], &p->first[i], &p->start[i],
               &p->stop[i]);
  }
}

/* A plan over an existing base of base_shape, or false when none fits. */
static bool plan_over(rng *r, int32_t ndim, const int64_t *shape, const int64_t *base_shape,
                      layout_plan *p) {
  for (int attempt = 0; attempt < 10; attempt++) {
    random_perm(r, ndim, p->perm);
    bool fits = true;
    for (int32_t i = 0; i < ndim && fits; i++) {
      int64_t ext = base_shape[p->perm[i]], n = shape[i];
      if (n > ext) {
        fits = false;
        break;
      }
      int64_t max_step = n > 1 ? (ext - 1) / (n - 1) : 3;
      if (max_step > 3) max_step = 3;
      int64_t m = rng_range(r, 1, max_step);
      p->step[i] = rng_range(r, 0, 1) == 0 ? m : -m;
      plan_slice(r, ext, n, p->step[i], &p->first[i], &p->start[i], &p->stop[i]);
    }
    if (fits) return true;
  }
  return false;
}

/* The view a plan describes, checked against the base element by element. */
static tb_tensor_t *view_from_plan(const tb_tensor_t *base, int32_t ndim, const int64_t *shape,
                                   const layout_plan *p) {
  tb_tensor_t *v = NULL;
  assert_ok(tb_tensor_permute(base, p->perm, &v));
  for (int32_t i = 0; i < ndim; i++) {
    tb_tensor_t *next = NULL;
    assert_ok(tb_tensor_slice(v, i, p->start[i], p->stop[i], p->step[i], &next));
    tb_tensor_release(v);
    v = next;
  }
  assert_int_equal(tb_tensor_ndim(v), ndim);
  for (int32_t i = 0; i < ndim; i++) assert_int_equal(tb_tensor_shape(v)[i], shape[i]);
  assert_true(tb_tensor_shares_storage(v, base));
  if (count_elements(ndim, shape) == 0) return v;
  int64_t index[MAXD] = {0}, base_index[MAXD];
  do {
    for (int32_t i = 0; i < ndim; i++) base_index[p->perm[i]] = p->first[i] + index[i] * p->step[i];
    assert_ptr_equal(elem(v, index), elem(base, base_index));
  } while (next_index(ndim, shape, index));
  return v;
}

static tb_tensor_t *random_base(rng *r, DLDataType dtype, int32_t ndim, const int64_t *shape) {
  tb_tensor_t *t = NULL;
  tb_order order = rng_range(r, 0, 1) == 0 ? TB_ORDER_C : TB_ORDER_F;
  assert_ok(tb_tensor_empty(dtype, ndim, shape, cpu(), order, &t));
  if (tb_tensor_nbytes(t) > 0) fill_random_bytes(r, tb_tensor_data(t), (size_t)tb_tensor_nbytes(t));
  return t;
}

/* Byte offset of a view's element from its base's first byte, in range. */
static size_t offset_in(const tb_tensor_t *base, const tb_tensor_t *view, const int64_t *index) {
  const char *p = elem(view, index);
  const char *b = tb_tensor_data(base);
  assert_true(p >= b);
  size_t off = (size_t)(p - b);
  assert_true(off < (size_t)tb_tensor_nbytes(base));
  return off;
}

static void print_case(int c, const char *name, int32_t ndim, const int64_t *shape, bool shared,
                       const layout_plan *sp, const layout_plan *dp) {
  print_error("case %d: dtype %s, ndim %d, shared %d, shape", c, name, (int)ndim, (int)shared);
  for (int32_t i = 0; i < ndim; i++) print_error(" %" PRId64, shape[i]);
  print_error("\n");
  const layout_plan *plans[2] = {sp, dp};
  for (int k = 0; k < 2; k++) {
    print_error("  %s:", k == 0 ? "src" : "dst");
    for (int32_t i = 0; i < ndim; i++) {
      print_error(" [perm %d %" PRId64 ":%" PRId64 ":%" PRId64 "]", (int)plans[k]->perm[i],
                  plans[k]->start[i], plans[k]->stop[i], plans[k]->step[i]);
    }
    print_error("\n");
  }
}

/* Checks a fresh copy: its own storage, contiguous in order, same bytes. */
static void check_fresh_copy(const tb_tensor_t *src, tb_order order) {
  tb_tensor_t *c = NULL;
  assert_ok(tb_tensor_copy(src, NULL, order, 0, &c));
  int32_t ndim = tb_tensor_ndim(src);
  const int64_t *shape = tb_tensor_shape(src);
  assert_int_equal(tb_tensor_ndim(c), ndim);
  for (int32_t d = 0; d < ndim; d++) assert_int_equal(tb_tensor_shape(c)[d], shape[d]);
  assert_true(tb_dtype_equal(tb_tensor_dtype(c), tb_tensor_dtype(src)));
  assert_false(tb_tensor_shares_storage(c, src));
  assert_false(tb_tensor_is_readonly(c));
  assert_true(tb_tensor_is_contiguous(c, order));
  size_t item = tb_dtype_itemsize(tb_tensor_dtype(src));
  if (tb_tensor_numel(src) > 0) {
    /* Strides of extents above 1 are the dense ones for the order. */
    int64_t step = 1;
    for (int32_t i = 0; i < ndim; i++) {
      int32_t d = order == TB_ORDER_F ? i : ndim - 1 - i;
      if (shape[d] > 1) assert_int_equal(tb_tensor_strides(c)[d], step);
      step *= shape[d];
    }
    int64_t index[MAXD] = {0};
    do {
      assert_memory_equal(elem(c, index), elem(src, index), item);
    } while (next_index(ndim, shape, index));
  }
  tb_tensor_release(c);
}

/* ------------------------------------------------------------------------ */
/* The randomized test                                                      */
/* ------------------------------------------------------------------------ */

static void copy_into_matches_naive_reference_on_random_strided_layouts(void **state) {
  (void)state;
  static const DLDataType dtypes[] = {
      {kDLUInt, 8, 1}, {kDLInt, 16, 1}, {kDLFloat, 32, 1}, {kDLFloat, 64, 1}, {TB_DL_COMPLEX, 128, 1},
  };
  rng r = {20240601u};
  int shared_cases = 0, empty_cases = 0;
  for (int c = 0; c < 400; c++) {
    DLDataType dtype = dtypes[rng_range(&r, 0, 4)];
    size_t item = tb_dtype_itemsize(dtype);
    int32_t ndim = (int32_t)rng_range(&r, 0, MAXD);
    int64_t shape[MAXD];
    for (int32_t d = 0; d < ndim; d++) {
      int64_t pick = rng_range(&r, 0, 15);
      shape[d] = pick == 0 ? 0 : pick < 4 ? 1 : rng_range(&r, 2, 4);
    }
    int64_t numel = count_elements(ndim, shape);
    empty_cases += numel == 0;

    layout_plan sp, dp;
    int64_t src_base_shape[MAXD], dst_base_shape[MAXD];
    plan_fresh(&r, ndim, shape, &sp, src_base_shape);
    tb_tensor_t *src_base = random_base(&r, dtype, ndim, src_base_shape);
    tb_tensor_t *dst_base = NULL;
    bool shared = rng_range(&r, 0, 3) == 0 && plan_over(&r, ndim, shape, src_base_shape, &dp);
    if (shared) {
      dst_base = tb_tensor_retain(src_base);
      shared_cases++;
    } else {
      plan_fresh(&r, ndim, shape, &dp, dst_base_shape);
      dst_base = random_base(&r, dtype, ndim, dst_base_shape);
    }
    tb_tensor_t *src = view_from_plan(src_base, ndim, shape, &sp);
    tb_tensor_t *dst = view_from_plan(dst_base, ndim, shape, &dp);

    /* The reference: read every source element from a snapshot taken before
     * the copy (a temporary), write it at the destination's offset. */
    size_t src_bytes = (size_t)tb_tensor_nbytes(src_base);
    size_t dst_bytes = (size_t)tb_tensor_nbytes(dst_base);
    unsigned char *src_snap = malloc(src_bytes + 1);
    unsigned char *expect = malloc(dst_bytes + 1);
    assert_non_null(src_snap);
    assert_non_null(expect);
    if (src_bytes > 0) memcpy(src_snap, tb_tensor_data(src_base), src_bytes);
    if (dst_bytes > 0) memcpy(expect, tb_tensor_data(dst_base), dst_bytes);
    if (numel > 0) {
      int64_t index[MAXD] = {0};
      do {
        memcpy(expect + offset_in(dst_base, dst, index), src_snap + offset_in(src_base, src, index),
               item);
      } while (next_index(ndim, shape, index));
    }

    tb_status st;
    guarded_call(st, tb_tensor_copy_into(dst, src, 0));
    bool same = st == TB_OK &&
                (dst_bytes == 0 || memcmp(tb_tensor_data(dst_base), expect, dst_bytes) == 0) &&
                (shared || src_bytes == 0 ||
                 memcmp(tb_tensor_data(src_base), src_snap, src_bytes) == 0);
    if (!same) {
      print_case(c, tb_dtype_name(dtype), ndim, shape, shared, &sp, &dp);
      print_error("  status %s: %s\n", tb_status_name(st), tb_last_error());
    }
    assert_true(same);

    /* A fresh copy of the same strided source, in either order. */
    if (!shared) check_fresh_copy(src, c % 2 == 0 ? TB_ORDER_C : TB_ORDER_F);

    free(expect);
    free(src_snap);
    tb_tensor_release(dst);
    tb_tensor_release(src);
    tb_tensor_release(dst_base);
    tb_tensor_release(src_base);
  }
  /* The generator did reach the interesting corners. */
  assert_true(shared_cases >= 20);
  assert_true(empty_cases >= 10);
}

/* The bytes of int32 v converted to dtype by the documented rules (exact for
 * the |v| < 2^24 used here; int16 wraps modulo 2^16). */
static void convert_i32(int32_t v, DLDataType dtype, unsigned char *out) {
  if (dtype.code == kDLInt && dtype.bits == 64) {
    int64_t w = v;
    memcpy(out, &w, sizeof w);
  } else if (dtype.code == kDLInt && dtype.bits == 16) {
    int16_t w = (int16_t)(uint16_t)(uint32_t)v;
    memcpy(out, &w, sizeof w);
  } else if (dtype.code == kDLFloat && dtype.bits == 32) {
    float w = (float)v;
    memcpy(out, &w, sizeof w);
  } else if (dtype.code == kDLFloat && dtype.bits == 64) {
    double w = (double)v;
    memcpy(out, &w, sizeof w);
  } else {
    double w[2] = {(double)v, 0.0}; /* complex128 */
    memcpy(out, w, sizeof w);
  }
}

static void converting_copy_matches_reference_on_random_strided_layouts(void **state) {
  (void)state;
  static const DLDataType targets[] = {
      {kDLInt, 64, 1}, {kDLInt, 16, 1}, {kDLFloat, 32, 1}, {kDLFloat, 64, 1}, {TB_DL_COMPLEX, 128, 1},
  };
  rng r = {77u};
  for (int c = 0; c < 150; c++) {
    DLDataType to = targets[rng_range(&r, 0, 4)];
    size_t item = tb_dtype_itemsize(to);
    int32_t ndim = (int32_t)rng_range(&r, 0, 4);
    int64_t shape[MAXD];
    for (int32_t d = 0; d < ndim; d++) shape[d] = rng_range(&r, 0, 9) == 0 ? 1 : rng_range(&r, 2, 5);
    int64_t numel = count_elements(ndim, shape);

    layout_plan sp, dp;
    int64_t src_base_shape[MAXD], dst_base_shape[MAXD];
    plan_fresh(&r, ndim, shape, &sp, src_base_shape);
    plan_fresh(&r, ndim, shape, &dp, dst_base_shape);
    tb_tensor_t *src_base = random_base(&r, I32, ndim, src_base_shape);
    tb_tensor_t *dst_base = random_base(&r, to, ndim, dst_base_shape);
    /* Source values of either sign, exact in float32, some beyond int16. */
    int32_t *sv = tb_tensor_data(src_base);
    for (int64_t i = 0; i < tb_tensor_numel(src_base); i++) {
      sv[i] = (int32_t)rng_range(&r, -(1 << 20), 1 << 20);
    }
    tb_tensor_t *src = view_from_plan(src_base, ndim, shape, &sp);
    tb_tensor_t *dst = view_from_plan(dst_base, ndim, shape, &dp);

    size_t dst_bytes = (size_t)tb_tensor_nbytes(dst_base);
    unsigned char *expect = malloc(dst_bytes + 1);
    assert_non_null(expect);
    if (dst_bytes > 0) memcpy(expect, tb_tensor_data(dst_base), dst_bytes);
    if (numel > 0) {
      int64_t index[MAXD] = {0};
      do {
        convert_i32(get_i32(src, index), to, expect + offset_in(dst_base, dst, index));
      } while (next_index(ndim, shape, index));
    }
    tb_status st;
    guarded_call(st, tb_tensor_copy_into(dst, src, 0));
    bool same = st == TB_OK &&
                (dst_bytes == 0 || memcmp(tb_tensor_data(dst_base), expect, dst_bytes) == 0);
    if (!same) {
      print_case(c, tb_dtype_name(to), ndim, shape, false, &sp, &dp);
      print_error("  status %s: %s\n", tb_status_name(st), tb_last_error());
    }
    assert_true(same);

    /* tb_tensor_copy converts the same way into fresh storage. */
    tb_tensor_t *fresh = NULL;
    assert_ok(tb_tensor_copy(src, &to, c % 2 == 0 ? TB_ORDER_F : TB_ORDER_C, 0, &fresh));
    assert_true(tb_dtype_equal(tb_tensor_dtype(fresh), to));
    if (numel > 0) {
      unsigned char want[16];
      int64_t index[MAXD] = {0};
      do {
        convert_i32(get_i32(src, index), to, want);
        assert_memory_equal(elem(fresh, index), want, item);
      } while (next_index(ndim, shape, index));
    }
    tb_tensor_release(fresh);
    free(expect);
    tb_tensor_release(dst);
    tb_tensor_release(src);
    tb_tensor_release(dst_base);
    tb_tensor_release(src_base);
  }
}

/* ------------------------------------------------------------------------ */
/* Overlap                                                                  */
/* ------------------------------------------------------------------------ */

static void overlapping_copy_shifted_right_acts_as_through_a_temporary(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(1, (int64_t[]){10}, 0);
  tb_tensor_t *dst = NULL, *src = NULL;
  assert_ok(tb_tensor_slice(x, 0, 1, INT64_MAX, 1, &dst));  /* x[1:] */
  assert_ok(tb_tensor_slice(x, 0, INT64_MIN, -1, 1, &src)); /* x[:-1] */
  assert_ok(tb_tensor_copy_into(dst, src, 0));
  static const int32_t want[10] = {0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
  assert_memory_equal(i32_data(x), want, sizeof want);
  tb_tensor_release(src);
  tb_tensor_release(dst);
  tb_tensor_release(x);
}

static void overlapping_copy_shifted_left_acts_as_through_a_temporary(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(1, (int64_t[]){10}, 0);
  tb_tensor_t *dst = NULL, *src = NULL;
  assert_ok(tb_tensor_slice(x, 0, INT64_MIN, -1, 1, &dst)); /* x[:-1] */
  assert_ok(tb_tensor_slice(x, 0, 1, INT64_MAX, 1, &src));  /* x[1:] */
  assert_ok(tb_tensor_copy_into(dst, src, 0));
  static const int32_t want[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 9};
  assert_memory_equal(i32_data(x), want, sizeof want);
  tb_tensor_release(src);
  tb_tensor_release(dst);
  tb_tensor_release(x);
}

static void overlapping_copy_of_reversed_self_reverses(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(1, (int64_t[]){9}, 0);
  tb_tensor_t *rev = NULL;
  assert_ok(tb_tensor_slice(x, 0, INT64_MAX, INT64_MIN, -1, &rev));
  assert_ok(tb_tensor_copy_into(x, rev, 0));
  static const int32_t want[9] = {8, 7, 6, 5, 4, 3, 2, 1, 0};
  assert_memory_equal(i32_data(x), want, sizeof want);
  tb_tensor_release(rev);
  tb_tensor_release(x);
}

static void overlapping_copy_of_transpose_into_self_transposes(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(2, (int64_t[]){4, 4}, 0);
  tb_tensor_t *t = NULL;
  assert_ok(tb_tensor_transpose(x, 0, 1, &t));
  assert_ok(tb_tensor_copy_into(x, t, 0));
  for (int64_t i = 0; i < 4; i++) {
    for (int64_t j = 0; j < 4; j++) assert_int_equal(get_i32(x, (int64_t[]){i, j}), 4 * j + i);
  }
  /* Copying a tensor onto itself changes nothing. */
  assert_ok(tb_tensor_copy_into(x, x, 0));
  assert_int_equal(get_i32(x, (int64_t[]){1, 2}), 9);
  tb_tensor_release(t);
  tb_tensor_release(x);
}

static void overlapping_copy_between_separate_wraps_of_one_buffer(void **state) {
  (void)state;
  int32_t buf[10];
  for (int i = 0; i < 10; i++) buf[i] = i;
  tb_tensor_t *a = NULL, *b = NULL;
  assert_ok(tb_from_array(buf, 0, I32, 1, (int64_t[]){9}, NULL, cpu(), 0, NULL, NULL, &a));
  assert_ok(tb_from_array(buf, sizeof buf[0], I32, 1, (int64_t[]){9}, NULL, cpu(), 0, NULL, NULL,
                          &b));
  assert_false(tb_tensor_shares_storage(a, b));
  assert_ok(tb_tensor_copy_into(b, a, 0));
  static const int32_t right[10] = {0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
  assert_memory_equal(buf, right, sizeof buf);

  for (int i = 0; i < 10; i++) buf[i] = i;
  assert_ok(tb_tensor_copy_into(a, b, 0));
  static const int32_t left[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 9};
  assert_memory_equal(buf, left, sizeof buf);
  tb_tensor_release(b);
  tb_tensor_release(a);
}

static void overlapping_converting_copy_reads_before_writing(void **state) {
  (void)state;
  /* int32 elements 0..3 converted to float32 one element further on. */
  int32_t buf[5] = {1, 2, 3, 4, 5};
  tb_tensor_t *ints = NULL, *floats = NULL;
  assert_ok(tb_from_array(buf, 0, I32, 1, (int64_t[]){4}, NULL, cpu(), 0, NULL, NULL, &ints));
  assert_ok(tb_from_array(buf, sizeof buf[0], F32, 1, (int64_t[]){4}, NULL, cpu(), 0, NULL, NULL,
                          &floats));
  assert_ok(tb_tensor_copy_into(floats, ints, 0));
  assert_int_equal(buf[0], 1);
  for (int i = 0; i < 4; i++) {
    float f;
    memcpy(&f, &buf[1 + i], sizeof f);
    assert_float_equal(f, (float)(i + 1), 0.0);
  }
  tb_tensor_release(floats);
  tb_tensor_release(ints);
}

/* ------------------------------------------------------------------------ */
/* Broadcast sources, 0-d, size 0                                          */
/* ------------------------------------------------------------------------ */

static void copy_from_broadcast_source_repeats_it(void **state) {
  (void)state;
  tb_tensor_t *row = arange_i32(1, (int64_t[]){3}, 1);
  tb_tensor_t *e = NULL, *dst = NULL, *f = NULL;
  assert_ok(tb_tensor_expand(row, 2, (int64_t[]){4, 3}, &e));
  assert_ok(tb_tensor_empty(I32, 2, (int64_t[]){4, 3}, cpu(), TB_ORDER_C, &dst));
  assert_ok(tb_tensor_copy_into(dst, e, 0));
  for (int i = 0; i < 12; i++) assert_int_equal(i32_data(dst)[i], 1 + i % 3);

  /* Into an F-order destination, and converted to float64. */
  assert_ok(tb_tensor_empty(F64, 2, (int64_t[]){4, 3}, cpu(), TB_ORDER_F, &f));
  assert_ok(tb_tensor_copy_into(f, e, 0));
  for (int64_t i = 0; i < 4; i++) {
    for (int64_t j = 0; j < 3; j++) {
      assert_float_equal(get_f64(f, (int64_t[]){i, j}), (double)(1 + j), 0.0);
    }
  }
  /* tb_tensor_copy of a broadcast materialises it, writable. */
  tb_tensor_t *m = NULL;
  assert_ok(tb_tensor_copy(e, NULL, TB_ORDER_C, 0, &m));
  assert_false(tb_tensor_is_readonly(m));
  assert_int_equal(tb_tensor_strides(m)[0], 3);
  assert_int_equal(get_i32(m, (int64_t[]){3, 2}), 3);
  tb_tensor_release(m);
  tb_tensor_release(f);
  tb_tensor_release(dst);
  tb_tensor_release(e);
  tb_tensor_release(row);
}

static void copy_from_broadcast_of_own_element_fills_with_it(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(1, (int64_t[]){5}, 40);
  tb_tensor_t *last = NULL, *e = NULL;
  assert_ok(tb_tensor_slice(x, 0, -1, INT64_MAX, 1, &last)); /* x[-1:] */
  assert_ok(tb_tensor_expand(last, 1, (int64_t[]){5}, &e));
  assert_ok(tb_tensor_copy_into(x, e, 0));
  for (int i = 0; i < 5; i++) assert_int_equal(i32_data(x)[i], 44);
  tb_tensor_release(e);
  tb_tensor_release(last);
  tb_tensor_release(x);
}

static void copy_of_0d_tensors_moves_one_element(void **state) {
  (void)state;
  tb_tensor_t *a = NULL, *b = NULL, *c = NULL, *e = NULL, *dst = NULL;
  assert_ok(tb_tensor_empty(I32, 0, NULL, cpu(), TB_ORDER_C, &a));
  assert_ok(tb_tensor_empty(I32, 0, NULL, cpu(), TB_ORDER_F, &b));
  *i32_data(a) = 17;
  *i32_data(b) = 0;
  assert_ok(tb_tensor_copy_into(b, a, 0));
  assert_int_equal(*i32_data(b), 17);

  assert_ok(tb_tensor_copy(a, NULL, TB_ORDER_F, 0, &c));
  assert_int_equal(tb_tensor_ndim(c), 0);
  assert_int_equal(get_i32(c, NULL), 17);
  assert_ptr_not_equal(tb_tensor_data(c), tb_tensor_data(a));
  *i32_data(c) = 3;
  assert_int_equal(*i32_data(a), 17);

  /* A 0-d source broadcast over a matrix. */
  assert_ok(tb_tensor_expand(a, 2, (int64_t[]){2, 3}, &e));
  assert_ok(tb_tensor_zeros(I32, 2, (int64_t[]){2, 3}, cpu(), TB_ORDER_C, &dst));
  assert_ok(tb_tensor_copy_into(dst, e, 0));
  for (int i = 0; i < 6; i++) assert_int_equal(i32_data(dst)[i], 17);
  tb_tensor_release(dst);
  tb_tensor_release(e);
  tb_tensor_release(c);
  tb_tensor_release(b);
  tb_tensor_release(a);
}

static void copy_of_size_zero_tensors_writes_nothing(void **state) {
  (void)state;
  int32_t buf[4] = {7, 7, 7, 7};
  tb_tensor_t *dst = NULL, *src = NULL, *nul = NULL, *c = NULL;
  assert_ok(tb_from_array(buf, 0, I32, 2, (int64_t[]){0, 4}, NULL, cpu(), 0, NULL, NULL, &dst));
  assert_ok(tb_tensor_empty(I32, 2, (int64_t[]){0, 4}, cpu(), TB_ORDER_F, &src));
  assert_ok(tb_tensor_copy_into(dst, src, 0));
  /* A NULL data pointer is fine when there are no elements. */
  assert_ok(tb_from_array(NULL, 0, I32, 2, (int64_t[]){0, 4}, NULL, cpu(), 0, NULL, NULL, &nul));
  assert_ok(tb_tensor_copy_into(dst, nul, 0));
  assert_ok(tb_tensor_copy_into(nul, src, 0));
  for (int i = 0; i < 4; i++) assert_int_equal(buf[i], 7);

  assert_ok(tb_tensor_copy(nul, &to_f64, TB_ORDER_C, 0, &c));
  assert_int_equal(tb_tensor_ndim(c), 2);
  assert_int_equal(tb_tensor_shape(c)[0], 0);
  assert_int_equal(tb_tensor_shape(c)[1], 4);
  assert_int_equal(tb_tensor_numel(c), 0);
  assert_true(tb_dtype_equal(tb_tensor_dtype(c), F64));
  tb_tensor_release(c);
  tb_tensor_release(nul);
  tb_tensor_release(src);
  tb_tensor_release(dst);
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

static void copy_into_read_only_tensor_is_refused(void **state) {
  (void)state;
  int32_t buf[6] = {0};
  tb_tensor_t *dst = NULL, *e = NULL;
  tb_tensor_t *src = arange_i32(2, (int64_t[]){2, 3}, 1);
  assert_ok(tb_from_array(buf, 0, I32, 2, (int64_t[]){2, 3}, NULL, cpu(), TB_FLAG_READONLY, NULL,
                          NULL, &dst));
  tb_clear_error();
  assert_status(tb_tensor_copy_into(dst, src, 0), TB_ERR_READONLY);
  assert_error_mentions("read-only");
  for (int i = 0; i < 6; i++) assert_int_equal(buf[i], 0);

  /* A broadcast view is read-only too, even over writable memory. */
  tb_tensor_t *row = NULL;
  assert_ok(tb_tensor_select(src, 0, 0, &row));
  assert_ok(tb_tensor_expand(row, 2, (int64_t[]){2, 3}, &e));
  assert_status(tb_tensor_copy_into(e, src, 0), TB_ERR_READONLY);
  assert_int_equal(i32_data(src)[0], 1);
  tb_tensor_release(e);
  tb_tensor_release(row);
  tb_tensor_release(dst);
  tb_tensor_release(src);
}

static void copy_into_with_other_shape_names_the_dim(void **state) {
  (void)state;
  tb_tensor_t *dst = arange_i32(2, (int64_t[]){2, 3}, 0);
  tb_tensor_t *wide = arange_i32(2, (int64_t[]){2, 4}, 100);
  tb_tensor_t *tall = arange_i32(2, (int64_t[]){3, 3}, 100);
  tb_tensor_t *flat = arange_i32(1, (int64_t[]){6}, 100);
  tb_tensor_t *scalar = arange_i32(0, NULL, 100);
  assert_status(tb_tensor_copy_into(dst, wide, 0), TB_ERR_INVALID);
  assert_error_mentions("shape[1]");
  assert_status(tb_tensor_copy_into(dst, tall, 0), TB_ERR_INVALID);
  assert_error_mentions("shape[0]");
  /* Same element count, other ndim: no implicit reshape. */
  assert_status(tb_tensor_copy_into(dst, flat, 0), TB_ERR_INVALID);
  assert_error_mentions("ndim");
  /* No implicit broadcast either: that is tb_tensor_expand's job. */
  assert_status(tb_tensor_copy_into(dst, scalar, 0), TB_ERR_INVALID);
  assert_error_mentions("ndim");
  for (int i = 0; i < 6; i++) assert_int_equal(i32_data(dst)[i], i);
  tb_tensor_release(scalar);
  tb_tensor_release(flat);
  tb_tensor_release(tall);
  tb_tensor_release(wide);
  tb_tensor_release(dst);
}

static void copy_with_null_arguments_is_invalid(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(1, (int64_t[]){3}, 0);
  tb_tensor_t *out = NULL;
  assert_status(tb_tensor_copy_into(NULL, x, 0), TB_ERR_INVALID);
  assert_status(tb_tensor_copy_into(x, NULL, 0), TB_ERR_INVALID);
  assert_status(tb_tensor_copy(NULL, NULL, TB_ORDER_C, 0, &out), TB_ERR_INVALID);
  assert_status(tb_tensor_copy(x, NULL, TB_ORDER_C, 0, NULL), TB_ERR_INVALID);
  assert_status(tb_tensor_copy(x, NULL, (tb_order)7, 0, &out), TB_ERR_INVALID);
  assert_null(out);
  tb_tensor_release(x);
}

/* ------------------------------------------------------------------------ */
/* tb_tensor_copy                                                           */
/* ------------------------------------------------------------------------ */

static void copy_gives_independent_storage(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(3, (int64_t[]){2, 3, 4}, 0);
  tb_tensor_t *c = NULL;
  assert_ok(tb_tensor_copy(x, NULL, TB_ORDER_C, 0, &c));
  assert_false(tb_tensor_shares_storage(c, x));
  assert_ptr_not_equal(tb_tensor_data(c), tb_tensor_data(x));
  assert_memory_equal(tb_tensor_data(c), tb_tensor_data(x), 24 * sizeof(int32_t));
  assert_true(tb_dtype_equal(tb_tensor_dtype(c), I32));

  /* Mutating the copy leaves the source unchanged, and the other way. */
  i32_data(c)[5] = -1;
  assert_int_equal(i32_data(x)[5], 5);
  i32_data(x)[6] = -2;
  assert_int_equal(i32_data(c)[6], 6);
  tb_tensor_release(c);

  /* A copy of read-only memory is writable. */
  int32_t buf[3] = {1, 2, 3};
  tb_tensor_t *ro = NULL;
  assert_ok(tb_from_array(buf, 0, I32, 1, (int64_t[]){3}, NULL, cpu(), TB_FLAG_READONLY, NULL,
                          NULL, &ro));
  assert_ok(tb_tensor_copy(ro, NULL, TB_ORDER_C, 0, &c));
  assert_false(tb_tensor_is_readonly(c));
  int32_t nine = 9;
  assert_ok(tb_tensor_fill(c, &nine, I32));
  assert_int_equal(buf[0], 1);
  assert_int_equal(i32_data(c)[2], 9);
  tb_tensor_release(c);
  tb_tensor_release(ro);
  tb_tensor_release(x);
}

static void copy_lays_out_in_the_order_asked(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(3, (int64_t[]){2, 3, 4}, 0);
  tb_tensor_t *c = NULL, *f = NULL;
  assert_ok(tb_tensor_copy(x, NULL, TB_ORDER_C, 0, &c));
  assert_int_equal(tb_tensor_strides(c)[0], 12);
  assert_int_equal(tb_tensor_strides(c)[1], 4);
  assert_int_equal(tb_tensor_strides(c)[2], 1);
  assert_ok(tb_tensor_copy(x, NULL, TB_ORDER_F, 0, &f));
  assert_int_equal(tb_tensor_strides(f)[0], 1);
  assert_int_equal(tb_tensor_strides(f)[1], 2);
  assert_int_equal(tb_tensor_strides(f)[2], 6);
  assert_true(tb_tensor_is_contiguous(f, TB_ORDER_F));
  int64_t index[3] = {0};
  do {
    assert_int_equal(get_i32(f, index), get_i32(x, index));
  } while (next_index(3, (int64_t[]){2, 3, 4}, index));
  /* In memory: the first index varies fastest. */
  assert_int_equal(i32_data(f)[1], 12); /* f[1][0][0] */
  assert_int_equal(i32_data(f)[2], 4);  /* f[0][1][0] */
  tb_tensor_release(f);
  tb_tensor_release(c);
  tb_tensor_release(x);
}

/* ------------------------------------------------------------------------ */
/* Conversions                                                              */
/* ------------------------------------------------------------------------ */

static void converting_copy_of_transposed_int32_to_float64(void **state) {
  (void)state;
  tb_tensor_t *x = arange_i32(2, (int64_t[]){3, 4}, -5); /* x[i][j] = 4i + j - 5 */
  tb_tensor_t *t = NULL, *d = NULL, *base = NULL, *flip = NULL, *flip2 = NULL;
  assert_ok(tb_tensor_transpose(x, 0, 1, &t)); /* t[i][j] = 4j + i - 5 */
  assert_ok(tb_tensor_copy(t, &to_f64, TB_ORDER_C, 0, &d));
  assert_true(tb_dtype_equal(tb_tensor_dtype(d), F64));
  assert_true(tb_tensor_is_contiguous(d, TB_ORDER_C));
  for (int64_t i = 0; i < 4; i++) {
    for (int64_t j = 0; j < 3; j++) {
      assert_float_equal(get_f64(d, (int64_t[]){i, j}), (double)(4 * j + i - 5), 0.0);
    }
  }

  /* Into a float64 view with both strides negative. */
  assert_ok(tb_tensor_zeros(F64, 2, (int64_t[]){4, 3}, cpu(), TB_ORDER_F, &base));
  assert_ok(tb_tensor_slice(base, 0, INT64_MAX, INT64_MIN, -1, &flip));
  assert_ok(tb_tensor_slice(flip, 1, INT64_MAX, INT64_MIN, -1, &flip2));
  assert_ok(tb_tensor_copy_into(flip2, t, 0));
  for (int64_t i = 0; i < 4; i++) {
    for (int64_t j = 0; j < 3; j++) {
      assert_float_equal(get_f64(base, (int64_t[]){3 - i, 2 - j}), (double)(4 * j + i - 5), 0.0);
    }
  }
  tb_tensor_release(flip2);
  tb_tensor_release(flip);
  tb_tensor_release(base);
  tb_tensor_release(d);
  tb_tensor_release(t);
  tb_tensor_release(x);
}

static void converting_copy_of_float64_to_int32_truncates_toward_zero(void **state) {
  (void)state;
  double values[6] = {2.75, -2.75, 0.5, -0.5, 100.0, -7.25};
  tb_tensor_t *src = NULL, *rev = NULL, *c = NULL;
  assert_ok(tb_from_array(values, 0, F64, 2, (int64_t[]){2, 3}, NULL, cpu(), TB_FLAG_READONLY,
                          NULL, NULL, &src));
  assert_ok(tb_tensor_slice(src, 1, INT64_MAX, INT64_MIN, -1, &rev)); /* columns reversed */
  assert_ok(tb_tensor_copy(rev, &to_i32, TB_ORDER_F, 0, &c));
  static const int32_t want[2][3] = {{0, -2, 2}, {-7, 100, 0}};
  for (int64_t i = 0; i < 2; i++) {
    for (int64_t j = 0; j < 3; j++) assert_int_equal(get_i32(c, (int64_t[]){i, j}), want[i][j]);
  }
  tb_tensor_release(c);
  tb_tensor_release(rev);
  tb_tensor_release(src);
}

static void converting_copy_from_complex_to_real_needs_discard_imag(void **state) {
  (void)state;
  double z[4] = {1.5, 9.0, -2.0, 8.0}; /* 1.5 + 9i, -2 + 8i */
  tb_tensor_t *src = NULL, *out = NULL;
  assert_ok(tb_from_array(z, 0, C128, 1, (int64_t[]){2}, NULL, cpu(), 0, NULL, NULL, &src));
  assert_status(tb_tensor_copy(src, &to_f64, TB_ORDER_C, 0, &out), TB_ERR_DTYPE);
  assert_error_mentions("complex128");
  assert_null(out);
  assert_ok(tb_tensor_copy(src, &to_f64, TB_ORDER_C, TB_CAST_DISCARD_IMAG, &out));
  assert_float_equal(get_f64(out, (int64_t[]){0}), 1.5, 0.0);
  assert_float_equal(get_f64(out, (int64_t[]){1}), -2.0, 0.0);
  tb_tensor_release(out);
  tb_tensor_release(src);
}

/* ------------------------------------------------------------------------ */
/* float8 and packed dtypes                                                 */
/* ------------------------------------------------------------------------ */

static void float8_copies_to_itself_through_strided_layouts_only(void **state) {
  (void)state;
  const DLDataType f8 = dt(TB_DL_FLOAT8_E4M3FN, 8);
  uint8_t bytes[6] = {0x00, 0x38, 0x40, 0xb8, 0x7e, 0x01};
  tb_tensor_t *x = NULL, *t = NULL, *c = NULL, *f32 = NULL, *other = NULL;
  assert_ok(tb_from_array(bytes, 0, f8, 2, (int64_t[]){2, 3}, NULL, cpu(), 0, NULL, NULL, &x));
  assert_int_equal(tb_tensor_nbytes(x), 6);

  assert_ok(tb_tensor_copy(x, NULL, TB_ORDER_F, 0, &c));
  assert_true(tb_dtype_equal(tb_tensor_dtype(c), f8));
  static const uint8_t f_order[6] = {0x00, 0xb8, 0x38, 0x7e, 0x40, 0x01};
  assert_memory_equal(tb_tensor_data(c), f_order, 6);

  /* A transposed view copied into a C-order float8 destination. */
  assert_ok(tb_tensor_transpose(x, 0, 1, &t));
  tb_tensor_release(c);
  assert_ok(tb_tensor_empty(f8, 2, (int64_t[]){3, 2}, cpu(), TB_ORDER_C, &c));
  assert_ok(tb_tensor_copy_into(c, t, 0));
  assert_memory_equal(tb_tensor_data(c), f_order, 6);

  /* No conversion in either direction, nor between float8 kinds. */
  tb_tensor_t *out = NULL;
  assert_status(tb_tensor_copy(x, &to_f32, TB_ORDER_C, 0, &out), TB_ERR_DTYPE);
  assert_error_mentions("float8_e4m3fn");
  assert_null(out);
  assert_ok(tb_tensor_zeros(F32, 2, (int64_t[]){2, 3}, cpu(), TB_ORDER_C, &f32));
  assert_status(tb_tensor_copy_into(f32, x, 0), TB_ERR_DTYPE);
  assert_status(tb_tensor_copy_into(x, f32, 0), TB_ERR_DTYPE);
  assert_ok(tb_tensor_empty(dt(TB_DL_FLOAT8_E5M2, 8), 2, (int64_t[]){2, 3}, cpu(), TB_ORDER_C,
                            &other));
  assert_status(tb_tensor_copy_into(other, x, 0), TB_ERR_DTYPE);
  static const uint8_t unchanged[6] = {0x00, 0x38, 0x40, 0xb8, 0x7e, 0x01};
  assert_memory_equal(bytes, unchanged, 6);
  tb_tensor_release(other);
  tb_tensor_release(f32);
  tb_tensor_release(c);
  tb_tensor_release(t);
  tb_tensor_release(x);
}

static void float4_whole_tensor_copy_works_and_views_are_refused(void **state) {
  (void)state;
  const DLDataType f4 = dt(TB_DL_FLOAT4_E2M1FN, 4);
  tb_tensor_t *x = NULL, *c = NULL, *d = NULL, *odd = NULL;
  assert_ok(tb_tensor_empty(f4, 2, (int64_t[]){4, 4}, cpu(), TB_ORDER_C, &x));
  assert_int_equal(tb_tensor_nbytes(x), 8);
  uint8_t *p = tb_tensor_data(x);
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(0x10 * i + 15 - i);

  assert_ok(tb_tensor_copy(x, NULL, TB_ORDER_C, 0, &c));
  assert_false(tb_tensor_shares_storage(c, x));
  assert_ptr_not_equal(tb_tensor_data(c), tb_tensor_data(x));
  assert_memory_equal(tb_tensor_data(c), p, 8);

  assert_ok(tb_tensor_zeros(f4, 2, (int64_t[]){4, 4}, cpu(), TB_ORDER_C, &d));
  assert_ok(tb_tensor_copy_into(d, x, 0));
  assert_memory_equal(tb_tensor_data(d), p, 8);

  /* An odd element count rounds up to whole bytes. */
  assert_ok(tb_tensor_empty(f4, 2, (int64_t[]){3, 5}, cpu(), TB_ORDER_C, &odd));
  assert_int_equal(tb_tensor_nbytes(odd), 8);

  /* Elements are not addressable: every view and element access is refused. */
  tb_tensor_t *v = NULL;
  void *e = NULL;
  assert_status(tb_tensor_slice(x, 0, 0, 2, 1, &v), TB_ERR_DTYPE);
  assert_error_mentions("float4_e2m1fn");
  assert_status(tb_tensor_select(x, 0, 1, &v), TB_ERR_DTYPE);
  assert_status(tb_tensor_transpose(x, 0, 1, &v), TB_ERR_DTYPE);
  assert_status(tb_tensor_permute(x, (int32_t[]){1, 0}, &v), TB_ERR_DTYPE);
  assert_status(tb_tensor_reshape(x, 1, (int64_t[]){16}, &v), TB_ERR_DTYPE);
  assert_status(tb_tensor_unsqueeze(x, 0, &v), TB_ERR_DTYPE);
  assert_status(tb_tensor_squeeze_all(x, &v), TB_ERR_DTYPE);
  assert_status(tb_tensor_expand(x, 3, (int64_t[]){2, 4, 4}, &v), TB_ERR_DTYPE);
  assert_status(tb_tensor_element_ptr(x, (int64_t[]){0, 0}, &e), TB_ERR_DTYPE);
  assert_null(v);
  assert_null(e);

  /* And no conversion. */
  tb_tensor_t *out = NULL;
  assert_status(tb_tensor_copy(x, &to_f32, TB_ORDER_C, 0, &out), TB_ERR_DTYPE);
  assert_null(out);
  tb_tensor_release(odd);
  tb_tensor_release(d);
  tb_tensor_release(c);
  tb_tensor_release(x);
}

/* Transposes big enough for the engine's tiled path (the inner dimension
 * steps through the source by a cache line or more, another dimension walks
 * it closely), with extents that are not multiples of the tile, a middle
 * dimension, a reversed axis and a conversion: every element checked. */
static void tiled_transpose_copies_match_element_by_element(void **state) {
  (void)state;
  const int64_t shapes[3][3] = {{37, 45, 1}, {3, 29, 70}, {1, 130, 9}};
  for (int c = 0; c < 3; c++) {
    int64_t shape[3] = {shapes[c][0], shapes[c][1], shapes[c][2]};
    tb_tensor_t *base = arange_i32(3, shape, 11 * c);
    tb_tensor_t *perm = NULL, *rev = NULL, *dense = NULL, *conv = NULL;
    int32_t order[3] = {2, 0, 1};
    assert_ok(tb_tensor_permute(base, order, &perm));
    assert_ok(tb_tensor_slice(perm, 1, INT64_MAX, INT64_MIN, -1, &rev));
    assert_ok(tb_tensor_copy(rev, NULL, TB_ORDER_C, 0, &dense));
    assert_ok(tb_tensor_copy(rev, &to_f64, TB_ORDER_C, 0, &conv));
    assert_true(tb_tensor_is_contiguous(dense, TB_ORDER_C));
    int64_t idx[3] = {0, 0, 0};
    const int64_t *vs = tb_tensor_shape(rev);
    do {
      int32_t want = get_i32(rev, idx);
      assert_int_equal(get_i32(dense, idx), want);
      assert_true(get_f64(conv, idx) == (double)want);
    } while (next_index(3, vs, idx));
    tb_tensor_release(conv);
    tb_tensor_release(dense);
    tb_tensor_release(rev);
    tb_tensor_release(perm);
    tb_tensor_release(base);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(copy_into_matches_naive_reference_on_random_strided_layouts),
      cmocka_unit_test(tiled_transpose_copies_match_element_by_element),
      cmocka_unit_test(converting_copy_matches_reference_on_random_strided_layouts),
      cmocka_unit_test(overlapping_copy_shifted_right_acts_as_through_a_temporary),
      cmocka_unit_test(overlapping_copy_shifted_left_acts_as_through_a_temporary),
      cmocka_unit_test(overlapping_copy_of_reversed_self_reverses),
      cmocka_unit_test(overlapping_copy_of_transpose_into_self_transposes),
      cmocka_unit_test(overlapping_copy_between_separate_wraps_of_one_buffer),
      cmocka_unit_test(overlapping_converting_copy_reads_before_writing),
      cmocka_unit_test(copy_from_broadcast_source_repeats_it),
      cmocka_unit_test(copy_from_broadcast_of_own_element_fills_with_it),
      cmocka_unit_test(copy_of_0d_tensors_moves_one_element),
      cmocka_unit_test(copy_of_size_zero_tensors_writes_nothing),
      cmocka_unit_test(copy_into_read_only_tensor_is_refused),
      cmocka_unit_test(copy_into_with_other_shape_names_the_dim),
      cmocka_unit_test(copy_with_null_arguments_is_invalid),
      cmocka_unit_test(copy_gives_independent_storage),
      cmocka_unit_test(copy_lays_out_in_the_order_asked),
      cmocka_unit_test(converting_copy_of_transposed_int32_to_float64),
      cmocka_unit_test(converting_copy_of_float64_to_int32_truncates_toward_zero),
      cmocka_unit_test(converting_copy_from_complex_to_real_needs_discard_imag),
      cmocka_unit_test(float8_copies_to_itself_through_strided_layouts_only),
      cmocka_unit_test(float4_whole_tensor_copy_works_and_views_are_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
