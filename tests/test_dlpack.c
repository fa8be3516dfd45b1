/*
 * DLPack export and import through the public API only.
 *
 * Producer structs are built by hand here, the way another library would
 * build them, with a deleter that counts its calls and frees what the
 * producer allocated. Ownership is checked by counting deleter calls and by
 * the counting allocator (everything the library allocates is freed);
 * zero-copy by comparing pointers and writing on one side, reading on the
 * other.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"
#include "tensorbridge/backend.h" /* tb_get_backend */

/* ------------------------------------------------------------------------ */
/* Producers                                                                */
/* ------------------------------------------------------------------------ */

/* Room for one dimension more than the library accepts, so that a library
 * that failed to reject ndim = 65 would still read initialised memory and the
 * test, not the sanitizer, would report it. */
#define PRODUCER_DIMS (TB_MAX_NDIM + 1)

/* A versioned producer: one malloc holding the struct and its arrays. */
typedef struct vproducer {
  DLManagedTensorVersioned managed; /* first: the deleter's `self` is the block */
  int *calls;                       /* bumped once per deleter call */
  void *owned;                      /* element memory the deleter frees, or NULL */
  int64_t shape[PRODUCER_DIMS];
  int64_t strides[PRODUCER_DIMS];
} vproducer;

/* The legacy equivalent. */
typedef struct lproducer {
  DLManagedTensor managed;
  int *calls;
  void *owned;
  int64_t shape[PRODUCER_DIMS];
  int64_t strides[PRODUCER_DIMS];
} lproducer;

static void vproducer_delete(DLManagedTensorVersioned *self) {
  vproducer *p = (vproducer *)(void *)self;
  (*p->calls)++;
  free(p->owned);
  free(p);
}

static void lproducer_delete(DLManagedTensor *self) {
  lproducer *p = (lproducer *)(void *)self;
  (*p->calls)++;
  free(p->owned);
  free(p);
}

/* Fills dl over `data` with copies of shape and strides (strides NULL stays
 * NULL); the arrays live in the producer block. */
static void fill_dltensor(DLTensor *dl, int64_t *shape_store, int64_t *strides_store, void *data,
                          DLDataType dtype, int32_t ndim, const int64_t *shape,
                          const int64_t *strides) {
  assert_true(ndim >= 0 && ndim <= PRODUCER_DIMS);
  if (ndim > 0) memcpy(shape_store, shape, (size_t)ndim * sizeof *shape);
  if (strides != NULL && ndim > 0) memcpy(strides_store, strides, (size_t)ndim * sizeof *strides);
  *dl = (DLTensor){
      .data = data,
      .device = cpu(),
      .ndim = ndim,
      .dtype = dtype,
      .shape = ndim > 0 ? shape_store : NULL,
      .strides = strides != NULL ? strides_store : NULL,
      .byte_offset = 0,
  };
}

/*
 * A DLPack 1.3 struct over `data`. `owned` (may be NULL, may differ from
 * data) is freed by the deleter. strides NULL leaves the field NULL.
 */
static DLManagedTensorVersioned *make_versioned(int *calls, void *data, void *owned,
                                                DLDataType dtype, int32_t ndim,
                                                const int64_t *shape, const int64_t *strides,
                                                uint64_t flags) {
  vproducer *p = calloc(1, sizeof *p);
  assert_non_null(p);
  p->calls = calls;
  p->owned = owned;
  p->managed.version = (DLPackVersion){1, 3};
  p->managed.manager_ctx = p;
  p->managed.deleter = vproducer_delete;
  p->managed.flags = flags;
  fill_dltensor(&p->managed.dl_tensor, p->shape, p->strides, data, dtype, ndim, shape, strides);
  return &p->managed;
}

static DLManagedTensor *make_legacy(int *calls, void *data, void *owned, DLDataType dtype,
                                    int32_t ndim, const int64_t *shape, const int64_t *strides) {
  lproducer *p = calloc(1, sizeof *p);
  assert_non_null(p);
  p->calls = calls;
  p->owned = owned;
  p->managed.manager_ctx = p;
  p->managed.deleter = lproducer_delete;
  fill_dltensor(&p->managed.dl_tensor, p->shape, p->strides, data, dtype, ndim, shape, strides);
  return &p->managed;
}

/* n floats 0, 1, 2, ... from malloc. */
static float *iota_f32(size_t n) {
  float *p = malloc(n * sizeof *p + 1); /* + 1: never malloc(0) */
  assert_non_null(p);
  for (size_t i = 0; i < n; i++) p[i] = (float)i;
  return p;
}

static const int64_t k_shape23[2] = {2, 3};
static const int64_t k_c23[2] = {3, 1};

/* A 2 x 3 float32 C-order producer owning 0..5. */
static DLManagedTensorVersioned *versioned_2x3(int *calls, float **data) {
  float *buf = iota_f32(6);
  if (data != NULL) *data = buf;
  return make_versioned(calls, buf, buf, F32, 2, k_shape23, k_c23, 0);
}

static DLManagedTensor *legacy_2x3(int *calls, float **data) {
  float *buf = iota_f32(6);
  if (data != NULL) *data = buf;
  return make_legacy(calls, buf, buf, F32, 2, k_shape23, k_c23);
}

static float get2f(const tb_tensor_t *t, int64_t i, int64_t j) {
  void *p = NULL;
  assert_ok(tb_tensor_element_ptr(t, (int64_t[]){i, j}, &p));
  return *(float *)p;
}

/* Every library allocation since install has been freed. */
static void assert_no_leak(const test_allocator *a) {
  assert_int_equal(a->allocs, a->frees);
  assert_int_equal(a->live_bytes, 0);
}

/* ------------------------------------------------------------------------ */
/* Export                                                                   */
/* ------------------------------------------------------------------------ */

/* The exported DLTensor describes t: data at t's first element (NULL when
 * empty), byte_offset 0, strides always set, same shape/strides/dtype/device. */
static void assert_exported_matches(const DLTensor *dl, const tb_tensor_t *t) {
  assert_int_equal(dl->ndim, tb_tensor_ndim(t));
  assert_true(tb_dtype_equal(dl->dtype, tb_tensor_dtype(t)));
  assert_int_equal(dl->device.device_type, tb_tensor_device(t).device_type);
  assert_int_equal(dl->device.device_id, tb_tensor_device(t).device_id);
  assert_non_null(dl->strides);
  if (dl->ndim > 0) assert_non_null(dl->shape);
  for (int32_t d = 0; d < dl->ndim; d++) {
    assert_int_equal(dl->shape[d], tb_tensor_shape(t)[d]);
    assert_int_equal(dl->strides[d], tb_tensor_strides(t)[d]);
  }
  assert_int_equal(dl->byte_offset, 0);
  if (tb_tensor_numel(t) == 0) {
    assert_null(dl->data);
  } else {
    assert_ptr_equal(dl->data, tb_tensor_data(t));
  }
}

/* A 4 x 6 float32 tensor over malloc'd 0..23 (*data, may be NULL) whose
 * deleter is counted; free(c->last_data) after the count reached 1. */
static tb_tensor_t *counted_4x6(counted *c, float **data) {
  int64_t shape[2] = {4, 6};
  float *buf = iota_f32(24);
  if (data != NULL) *data = buf;
  tb_tensor_t *t = NULL;
  assert_ok(tb_from_array(buf, 0, F32, 2, shape, NULL, cpu(), 0, counting_deleter, c, &t));
  return t;
}

static void export_versioned_is_one_allocation_freed_by_the_deleter(void **state) {
  (void)state;
  counted c = {0};
  float *buf;
  tb_tensor_t *t = counted_4x6(&c, &buf);
  test_allocator a;
  test_allocator_install(&a, -1);
  DLManagedTensorVersioned *m = NULL;
  assert_ok(tb_to_dlpack_versioned(t, NULL, &m));
  assert_int_equal(a.allocs, 1);
  assert_int_equal(m->version.major, 1);
  assert_int_equal(m->version.minor, 3);
  assert_int_equal(m->flags, 0);
  assert_non_null(m->deleter);
  assert_exported_matches(&m->dl_tensor, t);
  assert_ptr_equal(m->dl_tensor.data, buf);
  assert_int_equal(m->dl_tensor.shape[0], 4);
  assert_int_equal(m->dl_tensor.shape[1], 6);
  assert_int_equal(m->dl_tensor.strides[0], 6);
  assert_int_equal(m->dl_tensor.strides[1], 1);
  assert_int_equal(m->dl_tensor.dtype.code, kDLFloat);
  assert_int_equal(m->dl_tensor.dtype.bits, 32);
  assert_int_equal(m->dl_tensor.dtype.lanes, 1);
  assert_int_equal(m->dl_tensor.device.device_type, kDLCPU);
  assert_int_equal(m->dl_tensor.device.device_id, 0);
  m->deleter(m);
  assert_int_equal(a.frees, 1);
  test_allocator_remove();
  assert_no_leak(&a);
  tb_tensor_release(t);
  assert_int_equal(c.calls, 1);
  free(c.last_data);
}

static void export_legacy_is_one_allocation_freed_by_the_deleter(void **state) {
  (void)state;
  counted c = {0};
  tb_tensor_t *t = counted_4x6(&c, NULL);
  test_allocator a;
  test_allocator_install(&a, -1);
  DLManagedTensor *m = NULL;
  assert_ok(tb_to_dlpack(t, NULL, &m));
  assert_int_equal(a.allocs, 1);
  assert_non_null(m->deleter);
  assert_exported_matches(&m->dl_tensor, t);
  m->deleter(m);
  assert_int_equal(a.frees, 1);
  test_allocator_remove();
  assert_no_leak(&a);
  tb_tensor_release(t);
  assert_int_equal(c.calls, 1);
  free(c.last_data);
}

static void export_of_a_sliced_view_points_at_its_first_element(void **state) {
  (void)state;
  counted c = {0};
  float *buf;
  tb_tensor_t *t = counted_4x6(&c, &buf), *rows, *v;
  assert_ok(tb_tensor_slice(t, 0, 1, 4, 2, &rows));       /* rows 1 and 3 */
  assert_ok(tb_tensor_slice(rows, 1, 1, INT64_MAX, 3, &v)); /* columns 1 and 4 */
  assert_true(tb_tensor_byte_offset(v) > 0);
  DLManagedTensorVersioned *m = NULL;
  DLManagedTensor *l = NULL;
  assert_ok(tb_to_dlpack_versioned(v, NULL, &m));
  assert_ok(tb_to_dlpack(v, NULL, &l));
  assert_ptr_equal(m->dl_tensor.data, buf + 7);
  assert_ptr_equal(l->dl_tensor.data, buf + 7);
  assert_exported_matches(&m->dl_tensor, v);
  assert_exported_matches(&l->dl_tensor, v);
  assert_int_equal(m->dl_tensor.strides[0], 12);
  assert_int_equal(m->dl_tensor.strides[1], 3);
  m->deleter(m);
  l->deleter(l);
  tb_tensor_release(v);
  tb_tensor_release(rows);
  tb_tensor_release(t);
  assert_int_equal(c.calls, 1);
  free(c.last_data);
}

static void export_of_a_negative_stride_view_points_at_its_first_element(void **state) {
  (void)state;
  counted c = {0};
  tb_tensor_t *t = counted_4x6(&c, NULL), *v;
  assert_ok(tb_tensor_slice(t, 1, INT64_MAX, INT64_MIN, -1, &v)); /* columns reversed */
  const float *buf = tb_tensor_data(t);
  DLManagedTensorVersioned *m = NULL;
  assert_ok(tb_to_dlpack_versioned(v, NULL, &m));
  assert_ptr_equal(m->dl_tensor.data, buf + 5);
  assert_int_equal(m->dl_tensor.byte_offset, 0);
  assert_int_equal(m->dl_tensor.strides[1], -1);
  assert_true(((const float *)m->dl_tensor.data)[-5] == 0.0f); /* reaches below data */
  assert_exported_matches(&m->dl_tensor, v);
  m->deleter(m);
  tb_tensor_release(v);
  tb_tensor_release(t);
  assert_int_equal(c.calls, 1);
  free(c.last_data);
}

static void export_of_an_empty_tensor_has_null_data(void **state) {
  (void)state;
  float buf[4];
  int64_t shape[2] = {0, 4};
  tb_tensor_t *t;
  assert_ok(tb_from_array(buf, 0, F32, 2, shape, NULL, cpu(), 0, NULL, NULL, &t));
  DLManagedTensorVersioned *m = NULL;
  DLManagedTensor *l = NULL;
  assert_ok(tb_to_dlpack_versioned(t, NULL, &m));
  assert_ok(tb_to_dlpack(t, NULL, &l));
  assert_null(m->dl_tensor.data);
  assert_null(l->dl_tensor.data);
  assert_int_equal(m->dl_tensor.byte_offset, 0);
  assert_int_equal(m->dl_tensor.shape[0], 0);
  assert_int_equal(m->dl_tensor.shape[1], 4);
  assert_non_null(m->dl_tensor.strides);
  m->deleter(m);
  l->deleter(l);
  tb_tensor_release(t);
}

static void export_of_a_scalar_sets_strides_pointer(void **state) {
  (void)state;
  double x = 2.5;
  tb_tensor_t *t;
  assert_ok(tb_from_array(&x, 0, F64, 0, NULL, NULL, cpu(), 0, NULL, NULL, &t));
  DLManagedTensorVersioned *m = NULL;
  assert_ok(tb_to_dlpack_versioned(t, NULL, &m));
  assert_int_equal(m->dl_tensor.ndim, 0);
  assert_non_null(m->dl_tensor.strides);
  assert_ptr_equal(m->dl_tensor.data, &x);
  m->deleter(m);
  tb_tensor_release(t);
}

static void export_flags_read_only_tensors(void **state) {
  (void)state;
  int32_t buf[6] = {0};
  int64_t n = 6;
  tb_tensor_t *ro, *expanded;
  assert_ok(tb_from_array(buf, 0, I32, 1, &n, NULL, cpu(), TB_FLAG_READONLY, NULL, NULL, &ro));
  DLManagedTensorVersioned *m = NULL;
  assert_ok(tb_to_dlpack_versioned(ro, NULL, &m));
  assert_int_equal(m->flags, DLPACK_FLAG_BITMASK_READ_ONLY);
  assert_ptr_equal(m->dl_tensor.data, buf);
  m->deleter(m);
  /* A broadcast view aliases its elements and is read-only too. */
  tb_tensor_t *w;
  assert_ok(tb_from_array(buf, 0, I32, 1, &n, NULL, cpu(), 0, NULL, NULL, &w));
  int64_t big[2] = {3, 6};
  assert_ok(tb_tensor_expand(w, 2, big, &expanded));
  assert_ok(tb_to_dlpack_versioned(expanded, NULL, &m));
  assert_int_equal(m->flags, DLPACK_FLAG_BITMASK_READ_ONLY);
  assert_int_equal(m->dl_tensor.strides[0], 0);
  m->deleter(m);
  tb_tensor_release(expanded);
  tb_tensor_release(w);
  tb_tensor_release(ro);
}

static void export_copy_always_sets_is_copied(void **state) {
  (void)state;
  counted c = {0};
  tb_tensor_t *t = counted_4x6(&c, NULL);
  tb_export_options o = {.copy = TB_COPY_ALWAYS};
  DLManagedTensorVersioned *m = NULL;
  assert_ok(tb_to_dlpack_versioned(t, &o, &m));
  assert_int_equal(m->flags, DLPACK_FLAG_BITMASK_IS_COPIED);
  assert_true(m->dl_tensor.data != tb_tensor_data(t));
  assert_int_equal((uintptr_t)m->dl_tensor.data % TB_DATA_ALIGNMENT, 0);
  const float *copy = m->dl_tensor.data;
  for (int i = 0; i < 24; i++) assert_true(copy[i] == (float)i);
  /* The copy holds nothing of the original: its memory goes with t. */
  tb_tensor_release(t);
  assert_int_equal(c.calls, 1);
  free(c.last_data);
  assert_true(copy[23] == 23.0f);
  m->deleter(m);
}

static void export_converting_dtype_copies(void **state) {
  (void)state;
  counted c = {0};
  tb_tensor_t *t = counted_4x6(&c, NULL);
  DLDataType f64 = F64;
  tb_export_options o = {.dtype = &f64};
  DLManagedTensorVersioned *m = NULL;
  assert_ok(tb_to_dlpack_versioned(t, &o, &m));
  assert_int_equal(m->flags, DLPACK_FLAG_BITMASK_IS_COPIED);
  assert_true(tb_dtype_equal(m->dl_tensor.dtype, F64));
  const double *d = m->dl_tensor.data;
  for (int i = 0; i < 24; i++) assert_true(d[i] == (double)i);
  m->deleter(m);
  /* Asking for the dtype it already has is no reason to copy. */
  DLDataType f32 = F32;
  o.dtype = &f32;
  o.copy = TB_COPY_NEVER;
  assert_ok(tb_to_dlpack_versioned(t, &o, &m));
  assert_int_equal(m->flags, 0);
  assert_ptr_equal(m->dl_tensor.data, tb_tensor_data(t));
  m->deleter(m);
  tb_tensor_release(t);
  assert_int_equal(c.calls, 1);
  free(c.last_data);
}

static void export_changing_layout_copies(void **state) {
  (void)state;
  counted c = {0};
  tb_tensor_t *t = counted_4x6(&c, NULL), *tr;
  assert_ok(tb_tensor_transpose(t, 0, 1, &tr)); /* 6 x 4, F-contiguous */
  tb_export_options o = {.layout = TB_LAYOUT_C};
  DLManagedTensor *l = NULL;
  assert_ok(tb_to_dlpack(tr, &o, &l));
  assert_int_equal(l->dl_tensor.strides[0], 4);
  assert_int_equal(l->dl_tensor.strides[1], 1);
  const float *d = l->dl_tensor.data;
  for (int i = 0; i < 6; i++) {
    for (int j = 0; j < 4; j++) assert_true(d[i * 4 + j] == (float)(j * 6 + i));
  }
  l->deleter(l);
  /* Already F-contiguous: F needs no copy. */
  DLManagedTensorVersioned *m = NULL;
  o = (tb_export_options){.layout = TB_LAYOUT_F, .copy = TB_COPY_NEVER};
  assert_ok(tb_to_dlpack_versioned(tr, &o, &m));
  assert_int_equal(m->flags, 0);
  assert_ptr_equal(m->dl_tensor.data, tb_tensor_data(t));
  m->deleter(m);
  tb_tensor_release(tr);
  tb_tensor_release(t);
  assert_int_equal(c.calls, 1);
  free(c.last_data);
}

static void export_copy_never_refuses_what_needs_a_copy(void **state) {
  (void)state;
  counted c = {0};
  tb_tensor_t *t = counted_4x6(&c, NULL), *tr;
  assert_ok(tb_tensor_transpose(t, 0, 1, &tr));
  test_allocator a;
  test_allocator_install(&a, -1);
  DLManagedTensorVersioned *m = NULL;
  DLManagedTensor *l = NULL;
  tb_export_options o = {.layout = TB_LAYOUT_C, .copy = TB_COPY_NEVER};
  assert_status(tb_to_dlpack_versioned(tr, &o, &m), TB_ERR_COPY_REQUIRED);
  assert_error_mentions("C-contiguous");
  assert_status(tb_to_dlpack(tr, &o, &l), TB_ERR_COPY_REQUIRED);
  DLDataType i64 = I64;
  o = (tb_export_options){.dtype = &i64, .copy = TB_COPY_NEVER};
  assert_status(tb_to_dlpack_versioned(t, &o, &m), TB_ERR_COPY_REQUIRED);
  assert_error_mentions("dtype");
  assert_null(m);
  assert_null(l);
  test_allocator_remove();
  assert_no_leak(&a);
  tb_tensor_release(tr);
  tb_tensor_release(t);
  assert_int_equal(c.calls, 1);
  free(c.last_data);
}

static void export_rejects_bad_arguments(void **state) {
  (void)state;
  counted c = {0};
  tb_tensor_t *t = counted_4x6(&c, NULL);
  DLManagedTensorVersioned *m = NULL;
  DLManagedTensor *l = NULL;
  assert_status(tb_to_dlpack_versioned(NULL, NULL, &m), TB_ERR_INVALID);
  assert_status(tb_to_dlpack(NULL, NULL, &l), TB_ERR_INVALID);
  tb_export_options o = {.copy = (tb_copy_mode)7};
  assert_status(tb_to_dlpack_versioned(t, &o, &m), TB_ERR_INVALID);
  assert_error_mentions("options.copy = 7");
  o = (tb_export_options){.layout = (tb_layout)9};
  assert_status(tb_to_dlpack_versioned(t, &o, &m), TB_ERR_INVALID);
  assert_error_mentions("options.layout = 9");
  o = (tb_export_options){.flags = 0x10};
  assert_status(tb_to_dlpack(t, &o, &l), TB_ERR_INVALID);
  assert_error_mentions("options.flags = 0x10");
  assert_null(m);
  assert_null(l);
  /* Host tensors take no stream but "not given" (0) and "do not sync" (-1). */
  o = (tb_export_options){.stream = 1};
  assert_status(tb_to_dlpack_versioned(t, &o, &m), TB_ERR_INVALID);
  assert_error_mentions("stream = 1");
  assert_null(m);
  o = (tb_export_options){.stream = -1};
  assert_ok(tb_to_dlpack_versioned(t, &o, &m));
  m->deleter(m);
  assert_ok(tb_to_dlpack(t, &o, &l));
  l->deleter(l);
  tb_tensor_release(t);
  assert_int_equal(c.calls, 1);
  free(c.last_data);
}

/* Registered last: a library that writes through the NULL crashes here,
 * and under ASan that ends the whole executable. */
static void export_with_null_out_is_invalid(void **state) {
  (void)state;
  counted c = {0};
  tb_tensor_t *t = counted_4x6(&c, NULL);
  test_allocator a;
  test_allocator_install(&a, -1);
  assert_status(tb_to_dlpack_versioned(t, NULL, NULL), TB_ERR_INVALID);
  assert_error_mentions("out is NULL");
  assert_status(tb_to_dlpack(t, NULL, NULL), TB_ERR_INVALID);
  assert_error_mentions("out is NULL");
  test_allocator_remove();
  assert_no_leak(&a);
  tb_tensor_release(t);
  assert_int_equal(c.calls, 1); /* no reference was left behind */
  free(c.last_data);
}

static void export_keeps_storage_alive_after_release(void **state) {
  (void)state;
  counted c = {0};
  tb_tensor_t *t = counted_4x6(&c, NULL);
  DLManagedTensorVersioned *m = NULL;
  DLManagedTensor *l = NULL;
  assert_ok(tb_to_dlpack_versioned(t, NULL, &m));
  assert_ok(tb_to_dlpack(t, NULL, &l));
  tb_tensor_release(t);
  assert_int_equal(c.calls, 0);
  const float *d = m->dl_tensor.data;
  assert_true(d[23] == 23.0f); /* still readable */
  m->deleter(m);
  assert_int_equal(c.calls, 0);
  l->deleter(l);
  assert_int_equal(c.calls, 1);
  free(c.last_data);
}

static int call_versioned_deleter(void *arg) {
  DLManagedTensorVersioned *m = arg;
  m->deleter(m);
  return 0;
}

static int call_legacy_deleter(void *arg) {
  DLManagedTensor *m = arg;
  m->deleter(m);
  return 0;
}

static void export_deleter_may_run_on_another_thread(void **state) {
  (void)state;
  counted c = {0};
  tb_tensor_t *t = counted_4x6(&c, NULL);
  DLManagedTensorVersioned *m = NULL;
  DLManagedTensor *l = NULL;
  assert_ok(tb_to_dlpack_versioned(t, NULL, &m));
  assert_ok(tb_to_dlpack(t, NULL, &l));
  tb_tensor_release(t);
  test_thread th;
  int rc = -1;
  test_thread_start(&th, call_versioned_deleter, m);
  rc = test_thread_join(&th);
  assert_int_equal(rc, 0);
  assert_int_equal(c.calls, 0);
  test_thread_start(&th, call_legacy_deleter, l);
  rc = test_thread_join(&th);
  assert_int_equal(c.calls, 1); /* the last reference went on the other thread */
  free(c.last_data);
}

static void legacy_export_of_read_only_needs_permission_or_a_copy(void **state) {
  (void)state;
  int16_t buf[4] = {1, 2, 3, 4};
  int64_t n = 4;
  tb_tensor_t *t;
  assert_ok(tb_from_array(buf, 0, I16, 1, &n, NULL, cpu(), TB_FLAG_READONLY, NULL, NULL, &t));
  DLManagedTensor *l = NULL;
  assert_status(tb_to_dlpack(t, NULL, &l), TB_ERR_READONLY);
  assert_error_mentions("read-only");
  assert_null(l);

  tb_export_options allow = {.flags = TB_EXPORT_ALLOW_READONLY_LEGACY};
  assert_ok(tb_to_dlpack(t, &allow, &l));
  assert_ptr_equal(l->dl_tensor.data, buf); /* shared: the caller accepted the risk */
  l->deleter(l);

  tb_export_options copy = {.copy = TB_COPY_ALWAYS};
  assert_ok(tb_to_dlpack(t, &copy, &l));
  assert_true(l->dl_tensor.data != (void *)buf);
  int16_t *d = l->dl_tensor.data;
  assert_int_equal(d[3], 4);
  tb_tensor_t *back;
  assert_ok(tb_from_dlpack(l, NULL, &back)); /* the copy is writable */
  assert_false(tb_tensor_is_readonly(back));
  int16_t seven = 7;
  assert_ok(tb_tensor_fill(back, &seven, I16));
  assert_int_equal(buf[0], 1);
  tb_tensor_release(back);

  /* A read-only tensor goes out as a versioned struct with READ_ONLY. */
  DLManagedTensorVersioned *m = NULL;
  assert_ok(tb_to_dlpack_versioned(t, NULL, &m));
  assert_true(m->flags & DLPACK_FLAG_BITMASK_READ_ONLY);
  m->deleter(m);
  tb_tensor_release(t);
}

static void export_on_a_handle_device_keeps_byte_offset(void **state) {
  (void)state;
  /* A handle device's data (an OpenCL cl_mem, a VkBuffer) admits no pointer
   * arithmetic. The test backend's handle device is present on every
   * machine; memory of an absent device would be refused. */
  fake_devices_install();
  void *handle = (void *)(uintptr_t)0x1000;
  int64_t n = 8;
  DLDevice cl = {(DLDeviceType)FAKE_HANDLE_DEVICE, 0};
  tb_tensor_t *t;
  assert_ok(tb_from_array(handle, 32, F32, 1, &n, NULL, cl, 0, NULL, NULL, &t));
  DLManagedTensorVersioned *m = NULL;
  assert_ok(tb_to_dlpack_versioned(t, NULL, &m));
  assert_ptr_equal(m->dl_tensor.data, handle);
  assert_int_equal(m->dl_tensor.byte_offset, 32);
  assert_int_equal(m->dl_tensor.device.device_type, FAKE_HANDLE_DEVICE);
  tb_tensor_t *back;
  assert_ok(tb_from_dlpack_versioned(m, NULL, &back));
  assert_ptr_equal(tb_tensor_base(back), handle);
  assert_int_equal(tb_tensor_byte_offset(back), 32);
  assert_null(tb_tensor_data(back)); /* not host memory */
  tb_tensor_release(back);
  tb_tensor_release(t);
}

/* ------------------------------------------------------------------------ */
/* Import: sharing and ownership                                            */
/* ------------------------------------------------------------------------ */

static void import_versioned_shares_memory_both_ways(void **state) {
  (void)state;
  int calls = 0;
  float *buf;
  DLManagedTensorVersioned *m = versioned_2x3(&calls, &buf);
  tb_tensor_t *t = NULL;
  assert_ok(tb_from_dlpack_versioned(m, NULL, &t));
  assert_ptr_equal(tb_tensor_data(t), buf);
  assert_int_equal(tb_tensor_ndim(t), 2);
  assert_int_equal(tb_tensor_shape(t)[0], 2);
  assert_int_equal(tb_tensor_shape(t)[1], 3);
  assert_int_equal(tb_tensor_strides(t)[0], 3);
  assert_int_equal(tb_tensor_strides(t)[1], 1);
  assert_true(tb_dtype_equal(tb_tensor_dtype(t), F32));
  assert_int_equal(tb_tensor_device(t).device_type, kDLCPU);
  assert_false(tb_tensor_is_readonly(t));
  float *d = tb_tensor_data(t);
  buf[4] = 40.0f;
  assert_true(d[4] == 40.0f);
  d[1] = -1.0f;
  assert_true(buf[1] == -1.0f);
  assert_int_equal(calls, 0);
  tb_tensor_release(t);
  assert_int_equal(calls, 1);
}

static void import_legacy_shares_memory_both_ways(void **state) {
  (void)state;
  int calls = 0;
  float *buf;
  DLManagedTensor *m = legacy_2x3(&calls, &buf);
  tb_tensor_t *t = NULL;
  assert_ok(tb_from_dlpack(m, NULL, &t));
  assert_ptr_equal(tb_tensor_data(t), buf);
  float *d = tb_tensor_data(t);
  buf[5] = 50.0f;
  assert_true(d[5] == 50.0f);
  d[0] = -7.0f;
  assert_true(buf[0] == -7.0f);
  assert_false(tb_tensor_is_readonly(t));
  assert_int_equal(calls, 0);
  tb_tensor_release(t);
  assert_int_equal(calls, 1);
}

static void import_deleter_waits_for_the_last_view(void **state) {
  (void)state;
  int calls = 0;
  float *buf;
  DLManagedTensorVersioned *m = versioned_2x3(&calls, &buf);
  tb_tensor_t *t, *row, *tr;
  assert_ok(tb_from_dlpack_versioned(m, NULL, &t));
  assert_ok(tb_tensor_select(t, 0, 1, &row));
  assert_ok(tb_tensor_transpose(t, 0, 1, &tr));
  tb_tensor_retain(t);
  tb_tensor_release(t);
  tb_tensor_release(t);
  assert_int_equal(calls, 0);
  assert_true(((float *)tb_tensor_data(row))[2] == 5.0f);
  tb_tensor_release(row);
  assert_int_equal(calls, 0);
  assert_true(get2f(tr, 2, 1) == 5.0f);
  tb_tensor_release(tr);
  assert_int_equal(calls, 1);
}

static void import_read_only_refuses_writes(void **state) {
  (void)state;
  int calls = 0;
  float *buf = iota_f32(6);
  DLManagedTensorVersioned *m =
      make_versioned(&calls, buf, buf, F32, 2, k_shape23, k_c23, DLPACK_FLAG_BITMASK_READ_ONLY);
  tb_tensor_t *t, *v;
  assert_ok(tb_from_dlpack_versioned(m, NULL, &t));
  assert_true(tb_tensor_is_readonly(t));
  assert_ptr_equal(tb_tensor_data(t), buf);
  float one = 1.0f;
  assert_status(tb_tensor_fill(t, &one, F32), TB_ERR_READONLY);
  assert_true(buf[0] == 0.0f);
  assert_ok(tb_tensor_slice(t, 1, 0, 2, 1, &v));
  assert_true(tb_tensor_is_readonly(v)); /* views inherit it */
  assert_status(tb_tensor_fill(v, &one, F32), TB_ERR_READONLY);
  /* And it goes back out read-only. */
  DLManagedTensorVersioned *out = NULL;
  assert_ok(tb_to_dlpack_versioned(v, NULL, &out));
  assert_true(out->flags & DLPACK_FLAG_BITMASK_READ_ONLY);
  out->deleter(out);
  tb_tensor_release(v);
  tb_tensor_release(t);
  assert_int_equal(calls, 1);
}

static void import_honours_byte_offset(void **state) {
  (void)state;
  int calls = 0;
  float *buf = iota_f32(10);
  int64_t n = 4;
  DLManagedTensorVersioned *m = make_versioned(&calls, buf, buf, F32, 1, &n, (int64_t[]){2}, 0);
  m->dl_tensor.byte_offset = 3 * sizeof(float);
  tb_tensor_t *t;
  assert_ok(tb_from_dlpack_versioned(m, NULL, &t));
  assert_ptr_equal(tb_tensor_data(t), buf + 3);
  for (int64_t i = 0; i < 4; i++) {
    void *p;
    assert_ok(tb_tensor_element_ptr(t, &i, &p));
    assert_true(*(float *)p == (float)(3 + 2 * i));
  }
  tb_tensor_release(t);
  assert_int_equal(calls, 1);

  buf = iota_f32(10);
  DLManagedTensor *l = make_legacy(&calls, buf, buf, F32, 1, &n, NULL);
  l->dl_tensor.byte_offset = 6 * sizeof(float);
  assert_ok(tb_from_dlpack(l, NULL, &t));
  assert_ptr_equal(tb_tensor_data(t), buf + 6);
  tb_tensor_release(t);
  assert_int_equal(calls, 2);
}

static void assert_c_order_2x3(const tb_tensor_t *t) {
  assert_int_equal(tb_tensor_strides(t)[0], 3);
  assert_int_equal(tb_tensor_strides(t)[1], 1);
  assert_true(get2f(t, 1, 2) == 5.0f);
}

static void import_null_strides_before_1_2_mean_c_order(void **state) {
  (void)state;
  int calls = 0;
  tb_tensor_t *t;
  float *buf = iota_f32(6);
  DLManagedTensor *l = make_legacy(&calls, buf, buf, F32, 2, k_shape23, NULL);
  assert_ok(tb_from_dlpack(l, NULL, &t));
  assert_c_order_2x3(t);
  tb_tensor_release(t);
  for (uint32_t minor = 0; minor < 2; minor++) {
    buf = iota_f32(6);
    DLManagedTensorVersioned *m = make_versioned(&calls, buf, buf, F32, 2, k_shape23, NULL, 0);
    m->version.minor = minor;
    assert_ok(tb_from_dlpack_versioned(m, NULL, &t));
    assert_c_order_2x3(t);
    tb_tensor_release(t);
  }
  assert_int_equal(calls, 3);
}

static void import_null_strides_from_1_2_on_are_refused(void **state) {
  (void)state;
  int calls = 0;
  for (uint32_t minor = 2; minor <= 4; minor++) {
    float *buf = iota_f32(6);
    DLManagedTensorVersioned *m = make_versioned(&calls, buf, buf, F32, 2, k_shape23, NULL, 0);
    m->version.minor = minor;
    tb_tensor_t *t = NULL;
    assert_status(tb_from_dlpack_versioned(m, NULL, &t), TB_ERR_INVALID);
    assert_error_mentions("strides is NULL");
    assert_error_mentions("ndim = 2");
    assert_null(t);
    assert_int_equal(calls, (int)minor - 1);
  }
  /* ndim 0 needs no strides in any version. */
  double x = 4.0;
  DLManagedTensorVersioned *m = make_versioned(&calls, &x, NULL, F64, 0, NULL, NULL, 0);
  tb_tensor_t *t;
  assert_ok(tb_from_dlpack_versioned(m, NULL, &t));
  assert_true(*(double *)tb_tensor_data(t) == 4.0);
  tb_tensor_release(t);
  assert_int_equal(calls, 4);
}

static void import_negative_strides(void **state) {
  (void)state;
  int calls = 0;
  float *buf = iota_f32(5);
  int64_t n = 5, s = -1;
  DLManagedTensorVersioned *m = make_versioned(&calls, buf + 4, buf, F32, 1, &n, &s, 0);
  tb_tensor_t *t;
  assert_ok(tb_from_dlpack_versioned(m, NULL, &t));
  assert_ptr_equal(tb_tensor_data(t), buf + 4);
  for (int64_t i = 0; i < 5; i++) {
    void *p;
    assert_ok(tb_tensor_element_ptr(t, &i, &p));
    assert_true(*(float *)p == (float)(4 - i));
  }
  /* A copy reads every element through the negative stride. */
  tb_tensor_t *c;
  assert_ok(tb_tensor_copy(t, NULL, TB_ORDER_C, 0, &c));
  assert_true(((float *)tb_tensor_data(c))[0] == 4.0f);
  tb_tensor_release(c);
  tb_tensor_release(t);
  assert_int_equal(calls, 1);

  /* Both dimensions reversed, legacy. */
  buf = iota_f32(6);
  DLManagedTensor *l =
      make_legacy(&calls, buf + 5, buf, F32, 2, k_shape23, (int64_t[]){-3, -1});
  assert_ok(tb_from_dlpack(l, NULL, &t));
  assert_true(get2f(t, 0, 0) == 5.0f);
  assert_true(get2f(t, 1, 2) == 0.0f);
  tb_tensor_release(t);
  assert_int_equal(calls, 2);
}

static void import_scalar_and_empty(void **state) {
  (void)state;
  int calls = 0;
  int64_t *x = malloc(sizeof *x);
  *x = 42;
  DLManagedTensorVersioned *m = make_versioned(&calls, x, x, I64, 0, NULL, NULL, 0);
  tb_tensor_t *t;
  assert_ok(tb_from_dlpack_versioned(m, NULL, &t));
  assert_int_equal(tb_tensor_ndim(t), 0);
  assert_int_equal(tb_tensor_numel(t), 1);
  assert_ptr_equal(tb_tensor_data(t), x);
  tb_tensor_release(t);
  assert_int_equal(calls, 1);

  int64_t shape[2] = {3, 0};
  DLManagedTensorVersioned *e =
      make_versioned(&calls, NULL, NULL, F32, 2, shape, (int64_t[]){0, 1}, 0);
  assert_ok(tb_from_dlpack_versioned(e, NULL, &t));
  assert_int_equal(tb_tensor_numel(t), 0);
  assert_int_equal(tb_tensor_shape(t)[0], 3);
  assert_int_equal(tb_tensor_shape(t)[1], 0);
  assert_null(tb_tensor_data(t));
  tb_tensor_t *c;
  assert_ok(tb_tensor_copy(t, NULL, TB_ORDER_C, 0, &c));
  assert_int_equal(tb_tensor_numel(c), 0);
  tb_tensor_release(c);
  tb_tensor_release(t);
  assert_int_equal(calls, 2);

  DLManagedTensor *l = make_legacy(&calls, NULL, NULL, U8, 1, (int64_t[]){0}, NULL);
  assert_ok(tb_from_dlpack(l, NULL, &t));
  assert_int_equal(tb_tensor_numel(t), 0);
  tb_tensor_release(t);
  assert_int_equal(calls, 3);
}

static void import_keeps_the_producer_dtype_and_device(void **state) {
  (void)state;
  /* Pinned and managed memory are host-accessible and keep their device. */
  int calls = 0;
  const int32_t types[] = {TB_DL_CPU, TB_DL_CUDA_HOST, TB_DL_ROCM_HOST, TB_DL_CUDA_MANAGED};
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
    float *buf;
    DLManagedTensorVersioned *m = versioned_2x3(&calls, &buf);
    m->dl_tensor.device = (DLDevice){(DLDeviceType)types[i], 0};
    tb_tensor_t *t;
    assert_ok(tb_from_dlpack_versioned(m, NULL, &t));
    assert_int_equal(tb_tensor_device(t).device_type, types[i]);
    assert_ptr_equal(tb_tensor_data(t), buf);
    tb_tensor_release(t);
  }
  assert_int_equal(calls, 4);
}

static void import_of_a_producer_without_deleter(void **state) {
  (void)state;
  /* deleter NULL: nothing to call, the producer keeps the memory. */
  int calls = 0;
  float buf[6] = {0, 1, 2, 3, 4, 5};
  DLManagedTensorVersioned *m = make_versioned(&calls, buf, NULL, F32, 2, k_shape23, k_c23, 0);
  m->deleter = NULL;
  tb_tensor_t *t;
  assert_ok(tb_from_dlpack_versioned(m, NULL, &t));
  assert_ptr_equal(tb_tensor_data(t), buf);
  tb_tensor_release(t);
  assert_int_equal(calls, 0);
  free(m);
}

/* ------------------------------------------------------------------------ */
/* Import: refusals                                                         */
/* ------------------------------------------------------------------------ */

/* A spoiled field; the struct is otherwise a valid 2 x 3 float32 tensor
 * whose shape and strides arrays may be rewritten. */
typedef void (*spoil_fn)(DLTensor *dl);

static void spoil_ndim_negative(DLTensor *dl) { dl->ndim = -1; }
static void spoil_ndim_too_big(DLTensor *dl) { dl->ndim = TB_MAX_NDIM + 1; }
static void spoil_shape_null(DLTensor *dl) { dl->shape = NULL; }
static void spoil_shape_negative(DLTensor *dl) { dl->shape[1] = -3; }
static void spoil_lanes(DLTensor *dl) { dl->dtype.lanes = 2; }
static void spoil_float24(DLTensor *dl) { dl->dtype = (DLDataType){kDLFloat, 24, 1}; }
static void spoil_bool16(DLTensor *dl) { dl->dtype = (DLDataType){TB_DL_BOOL, 16, 1}; }
static void spoil_fp4_as_byte(DLTensor *dl) {
  dl->dtype = (DLDataType){TB_DL_FLOAT4_E2M1FN, 8, 1};
}
static void spoil_fp6_as_byte(DLTensor *dl) {
  dl->dtype = (DLDataType){TB_DL_FLOAT6_E2M3FN, 8, 1};
}
static void spoil_code_unknown(DLTensor *dl) { dl->dtype = (DLDataType){18, 8, 1}; }
static void spoil_device_unknown(DLTensor *dl) { dl->device.device_type = (DLDeviceType)99; }
static void spoil_device_id(DLTensor *dl) { dl->device.device_id = -1; }
static void spoil_data_null(DLTensor *dl) { dl->data = NULL; }
static void spoil_numel_overflow(DLTensor *dl) {
  dl->shape[0] = (int64_t)1 << 40;
  dl->shape[1] = (int64_t)1 << 40;
}
static void spoil_reach_overflow(DLTensor *dl) {
  /* (2^32 - 1) * 2^32 elements does not fit in int64. */
  dl->shape[0] = (int64_t)1 << 32;
  dl->shape[1] = 2;
  dl->strides[0] = (int64_t)1 << 32;
}
static void spoil_bytes_overflow(DLTensor *dl) {
  /* 2^61 elements fit, 2^61 float64 bytes do not. */
  dl->dtype = (DLDataType){kDLFloat, 64, 1};
  dl->shape[0] = 2;
  dl->shape[1] = 1;
  dl->strides[0] = (int64_t)1 << 61;
}
static void spoil_byte_offset_huge(DLTensor *dl) { dl->byte_offset = UINT64_MAX; }
static void spoil_byte_offset_plus_extent(DLTensor *dl) {
  dl->byte_offset = (uint64_t)INT64_MAX - 2;
}
static void spoil_below_address_zero(DLTensor *dl) {
  /* data near address 0 with strides reaching 4 TiB below it. */
  dl->data = (void *)(uintptr_t)4096;
  dl->shape[0] = (int64_t)1 << 20;
  dl->shape[1] = 1;
  dl->strides[0] = -((int64_t)1 << 20);
}
static void spoil_above_address_max(DLTensor *dl) {
  dl->data = (void *)(UINTPTR_MAX - 64);
  dl->shape[0] = 1024;
}

typedef struct refusal {
  const char *name;
  spoil_fn spoil;
  tb_status status;
  const char *mentions[2];
} refusal;

static const refusal k_refusals[] = {
    {"ndim -1", spoil_ndim_negative, TB_ERR_INVALID, {"ndim = -1", NULL}},
    {"ndim 65", spoil_ndim_too_big, TB_ERR_INVALID, {"ndim = 65", NULL}},
    {"shape NULL", spoil_shape_null, TB_ERR_INVALID, {"shape is NULL", "ndim = 2"}},
    {"shape negative", spoil_shape_negative, TB_ERR_INVALID, {"shape[1] = -3", NULL}},
    {"lanes 2", spoil_lanes, TB_ERR_DTYPE, {"lanes = 2", NULL}},
    {"float 24", spoil_float24, TB_ERR_DTYPE, {"code = 2", "bits = 24"}},
    {"bool 16", spoil_bool16, TB_ERR_DTYPE, {"code = 6", "bits = 16"}},
    {"fp4 8 bits", spoil_fp4_as_byte, TB_ERR_DTYPE, {"code = 17", "bits = 8"}},
    {"fp6 8 bits", spoil_fp6_as_byte, TB_ERR_DTYPE, {"code = 15", "bits = 8"}},
    {"code 18", spoil_code_unknown, TB_ERR_DTYPE, {"code = 18", NULL}},
    {"device 99", spoil_device_unknown, TB_ERR_DEVICE, {"type = 99", NULL}},
    {"device id -1", spoil_device_id, TB_ERR_DEVICE, {"id = -1", NULL}},
    {"data NULL", spoil_data_null, TB_ERR_INVALID, {"data is NULL", "6 elements"}},
    {"numel overflow", spoil_numel_overflow, TB_ERR_OVERFLOW, {"shape[1] = 1099511627776", NULL}},
    {"reach overflow", spoil_reach_overflow, TB_ERR_OVERFLOW, {"strides[0] = 4294967296", NULL}},
    {"bytes overflow", spoil_bytes_overflow, TB_ERR_OVERFLOW, {"2305843009213693952", NULL}},
    {"byte_offset > INT64_MAX", spoil_byte_offset_huge, TB_ERR_OVERFLOW,
     {"byte_offset = 18446744073709551615", NULL}},
    {"byte_offset + extent", spoil_byte_offset_plus_extent, TB_ERR_OVERFLOW,
     {"byte_offset = 9223372036854775805", NULL}},
    {"below address 0", spoil_below_address_zero, TB_ERR_OVERFLOW, {"wraps around", NULL}},
    {"above address max", spoil_above_address_max, TB_ERR_OVERFLOW, {"wraps around", NULL}},
};

#define N_REFUSALS (sizeof k_refusals / sizeof k_refusals[0])

static void assert_refusal_message(const refusal *r) {
  for (int k = 0; k < 2; k++) {
    if (r->mentions[k] != NULL) assert_error_mentions(r->mentions[k]);
  }
  assert_error_mentions("dlpack import");
}

static void import_refuses_bad_fields_and_calls_the_deleter_once(void **state) {
  (void)state;
  for (size_t i = 0; i < N_REFUSALS; i++) {
    const refusal *r = &k_refusals[i];
    print_message("refusal: %s\n", r->name);
    for (int legacy = 0; legacy < 2; legacy++) {
      int calls = 0;
      test_allocator a;
      test_allocator_install(&a, -1);
      tb_tensor_t *t = NULL;
      if (legacy) {
        DLManagedTensor *m = legacy_2x3(&calls, NULL);
        r->spoil(&m->dl_tensor);
        assert_status(tb_from_dlpack(m, NULL, &t), r->status);
      } else {
        DLManagedTensorVersioned *m = versioned_2x3(&calls, NULL);
        r->spoil(&m->dl_tensor);
        assert_status(tb_from_dlpack_versioned(m, NULL, &t), r->status);
      }
      assert_refusal_message(r);
      assert_null(t);
      assert_int_equal(calls, 1);
      test_allocator_remove();
      assert_no_leak(&a);
    }
  }
}

/* A deleter for structs that carry their counter in manager_ctx and nothing
 * else the test must free but the block itself. */
static void bare_delete(DLManagedTensorVersioned *self) {
  int *calls = self->manager_ctx;
  (*calls)++;
  free(self);
}

static void import_other_major_touches_only_the_deleter(void **state) {
  (void)state;
  const uint32_t majors[] = {0, 2, UINT32_MAX};
  for (size_t i = 0; i < sizeof majors / sizeof majors[0]; i++) {
    /* Every byte after the deleter is garbage: a pointer there would crash,
     * a flag or ndim there would be reported instead of the version. */
    int calls = 0;
    DLManagedTensorVersioned *m = malloc(sizeof *m);
    assert_non_null(m);
    memset(m, 0xA5, sizeof *m);
    m->version = (DLPackVersion){majors[i], 0};
    m->manager_ctx = &calls;
    m->deleter = bare_delete;
    tb_tensor_t *t = NULL;
    assert_status(tb_from_dlpack_versioned(m, NULL, &t), TB_ERR_VERSION);
    char needle[48];
    snprintf(needle, sizeof needle, "version.major = %u", (unsigned)majors[i]);
    assert_error_mentions(needle);
    assert_null(t);
    assert_int_equal(calls, 1);
  }
  /* Stronger: a block that ends right after the deleter. A read of flags or
   * dl_tensor is out of bounds (caught by ASan / valgrind). */
  int calls = 0;
  size_t stable = offsetof(DLManagedTensorVersioned, flags);
  unsigned char *raw = malloc(stable);
  assert_non_null(raw);
  /* Written byte-wise: the block is smaller than the struct type. */
  DLPackVersion version = {2, 1};
  void *ctx = &calls;
  void (*deleter)(DLManagedTensorVersioned *) = bare_delete;
  memcpy(raw + offsetof(DLManagedTensorVersioned, version), &version, sizeof version);
  memcpy(raw + offsetof(DLManagedTensorVersioned, manager_ctx), &ctx, sizeof ctx);
  memcpy(raw + offsetof(DLManagedTensorVersioned, deleter), &deleter, sizeof deleter);
  tb_tensor_t *t = NULL;
  tb_import_options o = {.copy = TB_COPY_ALWAYS, .flags = TB_IMPORT_REQUIRE_WRITABLE};
  assert_status(tb_from_dlpack_versioned((DLManagedTensorVersioned *)(void *)raw, &o, &t),
                TB_ERR_VERSION);
  assert_error_mentions("version.major = 2");
  assert_int_equal(calls, 1);
}

static void import_other_major_without_deleter(void **state) {
  (void)state;
  DLManagedTensorVersioned m;
  memset(&m, 0xA5, sizeof m);
  m.version = (DLPackVersion){2, 0};
  m.deleter = NULL;
  tb_tensor_t *t = NULL;
  assert_status(tb_from_dlpack_versioned(&m, NULL, &t), TB_ERR_VERSION);
  assert_null(t);
}

static void import_refuses_flags_it_does_not_support(void **state) {
  (void)state;
  const struct {
    uint64_t flags;
    const char *needle;
  } cases[] = {
      {DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED, "IS_SUBBYTE_TYPE_PADDED"},
      {DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED | DLPACK_FLAG_BITMASK_READ_ONLY, "flags = 0x5"},
      {(uint64_t)1 << 3, "flags = 0x8"},
      {(uint64_t)1 << 7, "flags = 0x80"},
      {(uint64_t)1 << 63, "flags = 0x8000000000000000"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int calls = 0;
    test_allocator a;
    test_allocator_install(&a, -1);
    DLManagedTensorVersioned *m = versioned_2x3(&calls, NULL);
    m->flags = cases[i].flags;
    tb_tensor_t *t = NULL;
    assert_status(tb_from_dlpack_versioned(m, NULL, &t), TB_ERR_UNSUPPORTED);
    assert_error_mentions(cases[i].needle);
    assert_null(t);
    assert_int_equal(calls, 1);
    test_allocator_remove();
    assert_no_leak(&a);
  }
  /* Padded sub-byte data is refused even for fp4, the type it is about. */
  int calls = 0;
  uint8_t *packed = calloc(1, 4);
  DLManagedTensorVersioned *m =
      make_versioned(&calls, packed, packed, dt(TB_DL_FLOAT4_E2M1FN, 4), 1, (int64_t[]){4},
                     (int64_t[]){1}, DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED);
  tb_tensor_t *t = NULL;
  assert_status(tb_from_dlpack_versioned(m, NULL, &t), TB_ERR_UNSUPPORTED);
  assert_error_mentions("IS_SUBBYTE_TYPE_PADDED");
  assert_int_equal(calls, 1);
}

static void import_of_null_managed_is_invalid(void **state) {
  (void)state;
  tb_tensor_t *t = NULL;
  assert_status(tb_from_dlpack_versioned(NULL, NULL, &t), TB_ERR_INVALID);
  assert_error_mentions("managed is NULL");
  assert_status(tb_from_dlpack(NULL, NULL, &t), TB_ERR_INVALID);
  assert_error_mentions("managed is NULL");
  assert_null(t);
}

static void import_with_null_out_still_consumes(void **state) {
  (void)state;
  int calls = 0;
  assert_status(tb_from_dlpack_versioned(versioned_2x3(&calls, NULL), NULL, NULL),
                TB_ERR_INVALID);
  assert_error_mentions("out is NULL");
  assert_status(tb_from_dlpack(legacy_2x3(&calls, NULL), NULL, NULL), TB_ERR_INVALID);
  assert_int_equal(calls, 2);
}

static void import_refuses_bad_options_and_consumes(void **state) {
  (void)state;
  const struct {
    tb_import_options o;
    tb_status status;
    const char *needle;
  } cases[] = {
      {{.copy = (tb_copy_mode)3}, TB_ERR_INVALID, "options.copy = 3"},
      {{.layout = (tb_layout)5}, TB_ERR_INVALID, "options.layout = 5"},
      {{.flags = 0x40}, TB_ERR_INVALID, "options.flags = 0x40"},
      {{.alignment = 24}, TB_ERR_INVALID, "options.alignment = 24"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int calls = 0;
    tb_tensor_t *t = NULL;
    assert_status(tb_from_dlpack_versioned(versioned_2x3(&calls, NULL), &cases[i].o, &t),
                  cases[i].status);
    assert_error_mentions(cases[i].needle);
    assert_status(tb_from_dlpack(legacy_2x3(&calls, NULL), &cases[i].o, &t), cases[i].status);
    assert_error_mentions(cases[i].needle);
    assert_null(t);
    assert_int_equal(calls, 2);
  }
}

/* ------------------------------------------------------------------------ */
/* Import options                                                           */
/* ------------------------------------------------------------------------ */

static void import_require_writable_copies_read_only(void **state) {
  (void)state;
  int calls = 0;
  float *buf = iota_f32(6);
  DLManagedTensorVersioned *m =
      make_versioned(&calls, buf, buf, F32, 2, k_shape23, k_c23, DLPACK_FLAG_BITMASK_READ_ONLY);
  tb_import_options o = {.flags = TB_IMPORT_REQUIRE_WRITABLE};
  tb_tensor_t *t = NULL;
  assert_ok(tb_from_dlpack_versioned(m, &o, &t));
  assert_int_equal(calls, 1); /* copied: the producer is done */
  assert_false(tb_tensor_is_readonly(t));
  assert_true(get2f(t, 1, 2) == 5.0f);
  float one = 1.0f;
  assert_ok(tb_tensor_fill(t, &one, F32));
  tb_tensor_release(t);

  /* A writable producer is shared as it is. */
  float *wbuf;
  assert_ok(tb_from_dlpack_versioned(versioned_2x3(&calls, &wbuf), &o, &t));
  assert_ptr_equal(tb_tensor_data(t), wbuf);
  assert_int_equal(calls, 1);
  tb_tensor_release(t);
  assert_int_equal(calls, 2);

  o.copy = TB_COPY_NEVER;
  buf = iota_f32(6);
  m = make_versioned(&calls, buf, buf, F32, 2, k_shape23, k_c23, DLPACK_FLAG_BITMASK_READ_ONLY);
  t = NULL;
  assert_status(tb_from_dlpack_versioned(m, &o, &t), TB_ERR_COPY_REQUIRED);
  assert_error_mentions("writable");
  assert_null(t);
  assert_int_equal(calls, 3);
}

static void import_layout_request_copies_a_transposed_producer(void **state) {
  (void)state;
  int calls = 0;
  float *buf = iota_f32(6);
  /* The transpose of a C-order 3 x 2 matrix: a 2 x 3 F-order view. */
  DLManagedTensorVersioned *m =
      make_versioned(&calls, buf, buf, F32, 2, k_shape23, (int64_t[]){1, 2}, 0);
  tb_import_options o = {.layout = TB_LAYOUT_C};
  tb_tensor_t *t = NULL;
  assert_ok(tb_from_dlpack_versioned(m, &o, &t));
  assert_int_equal(calls, 1);
  assert_true(tb_tensor_is_contiguous(t, TB_ORDER_C));
  assert_int_equal(tb_tensor_strides(t)[0], 3);
  const float *d = tb_tensor_data(t);
  for (int i = 0; i < 2; i++) {
    for (int j = 0; j < 3; j++) assert_true(d[i * 3 + j] == (float)(i + 2 * j));
  }
  assert_int_equal((uintptr_t)d % TB_DATA_ALIGNMENT, 0);
  tb_tensor_release(t);

  /* Already F: asking for F shares. */
  buf = iota_f32(6);
  DLManagedTensor *l = make_legacy(&calls, buf, buf, F32, 2, k_shape23, (int64_t[]){1, 2});
  o.layout = TB_LAYOUT_F;
  assert_ok(tb_from_dlpack(l, &o, &t));
  assert_ptr_equal(tb_tensor_data(t), buf);
  assert_int_equal(calls, 1);
  tb_tensor_release(t);
  assert_int_equal(calls, 2);

  /* C order asked for an F producer, copy refused. */
  o = (tb_import_options){.layout = TB_LAYOUT_C, .copy = TB_COPY_NEVER};
  buf = iota_f32(6);
  l = make_legacy(&calls, buf, buf, F32, 2, k_shape23, (int64_t[]){1, 2});
  t = NULL;
  assert_status(tb_from_dlpack(l, &o, &t), TB_ERR_COPY_REQUIRED);
  assert_error_mentions("C-contiguous");
  assert_int_equal(calls, 3);
}

static void import_dtype_request_converts(void **state) {
  (void)state;
  int calls = 0;
  DLDataType f64 = F64;
  tb_import_options o = {.dtype = &f64};
  tb_tensor_t *t = NULL;
  assert_ok(tb_from_dlpack_versioned(versioned_2x3(&calls, NULL), &o, &t));
  assert_int_equal(calls, 1);
  assert_true(tb_dtype_equal(tb_tensor_dtype(t), F64));
  const double *d = tb_tensor_data(t);
  for (int i = 0; i < 6; i++) assert_true(d[i] == (double)i);
  tb_tensor_release(t);

  DLDataType i8 = dt(kDLInt, 8);
  o.dtype = &i8;
  assert_ok(tb_from_dlpack(legacy_2x3(&calls, NULL), &o, &t));
  assert_int_equal(calls, 2);
  assert_int_equal(((int8_t *)tb_tensor_data(t))[5], 5);
  tb_tensor_release(t);

  /* The producer's own dtype asks for nothing. */
  DLDataType f32 = F32;
  o = (tb_import_options){.dtype = &f32, .copy = TB_COPY_NEVER};
  float *buf;
  assert_ok(tb_from_dlpack_versioned(versioned_2x3(&calls, &buf), &o, &t));
  assert_ptr_equal(tb_tensor_data(t), buf);
  tb_tensor_release(t);
  assert_int_equal(calls, 3);

  /* A dtype the cast engine cannot reach fails, and still consumes. */
  DLDataType e4m3 = dt(TB_DL_FLOAT8_E4M3FN, 8);
  o = (tb_import_options){.dtype = &e4m3};
  t = NULL;
  assert_status(tb_from_dlpack_versioned(versioned_2x3(&calls, NULL), &o, &t), TB_ERR_DTYPE);
  assert_null(t);
  assert_int_equal(calls, 4);
}

static void import_alignment_request_copies_unaligned_data(void **state) {
  (void)state;
  int calls = 0;
  /* 64-aligned block, data 4 bytes in: float-aligned, not 16-aligned. */
  float *block = aligned_alloc(64, 64 * sizeof(float));
  assert_non_null(block);
  for (int i = 0; i < 64; i++) block[i] = (float)i;
  int64_t n = 8;
  DLManagedTensorVersioned *m = make_versioned(&calls, block + 1, block, F32, 1, &n, (int64_t[]){1}, 0);
  tb_import_options o = {.alignment = 16};
  tb_tensor_t *t = NULL;
  assert_ok(tb_from_dlpack_versioned(m, &o, &t));
  assert_int_equal(calls, 1);
  assert_int_equal((uintptr_t)tb_tensor_data(t) % TB_DATA_ALIGNMENT, 0);
  assert_true(((float *)tb_tensor_data(t))[0] == 1.0f);
  assert_true(((float *)tb_tensor_data(t))[7] == 8.0f);
  tb_tensor_release(t);

  /* byte_offset counts: data aligned, data + byte_offset not. */
  float *block2 = aligned_alloc(64, 64 * sizeof(float));
  assert_non_null(block2);
  memset(block2, 0, 64 * sizeof(float));
  m = make_versioned(&calls, block2, block2, F32, 1, &n, (int64_t[]){1}, 0);
  m->dl_tensor.byte_offset = 8;
  o.copy = TB_COPY_NEVER;
  t = NULL;
  assert_status(tb_from_dlpack_versioned(m, &o, &t), TB_ERR_COPY_REQUIRED);
  assert_error_mentions("aligned");
  assert_int_equal(calls, 2);

  /* Aligned data is shared. */
  float *block3 = aligned_alloc(64, 64 * sizeof(float));
  assert_non_null(block3);
  m = make_versioned(&calls, block3, block3, F32, 1, &n, (int64_t[]){1}, 0);
  o = (tb_import_options){.alignment = 64, .copy = TB_COPY_NEVER};
  assert_ok(tb_from_dlpack_versioned(m, &o, &t));
  assert_ptr_equal(tb_tensor_data(t), block3);
  assert_int_equal(calls, 2);
  tb_tensor_release(t);
  assert_int_equal(calls, 3);
}

static void import_copy_always_copies_unless_is_copied(void **state) {
  (void)state;
  int calls = 0;
  tb_import_options o = {.copy = TB_COPY_ALWAYS};
  float *buf;
  tb_tensor_t *t = NULL;
  assert_ok(tb_from_dlpack_versioned(versioned_2x3(&calls, &buf), &o, &t));
  assert_int_equal(calls, 1);
  assert_true(get2f(t, 1, 1) == 4.0f);
  tb_tensor_release(t);

  assert_ok(tb_from_dlpack(legacy_2x3(&calls, &buf), &o, &t));
  assert_int_equal(calls, 2);
  assert_true(get2f(t, 0, 2) == 2.0f);
  tb_tensor_release(t);

  /* IS_COPIED: the producer already made fresh memory for us alone. */
  buf = iota_f32(6);
  DLManagedTensorVersioned *m =
      make_versioned(&calls, buf, buf, F32, 2, k_shape23, k_c23, DLPACK_FLAG_BITMASK_IS_COPIED);
  assert_ok(tb_from_dlpack_versioned(m, &o, &t));
  assert_ptr_equal(tb_tensor_data(t), buf);
  assert_int_equal(calls, 2);
  tb_tensor_release(t);
  assert_int_equal(calls, 3);
}

static void import_copy_always_of_is_copied_still_meets_requests(void **state) {
  (void)state;
  /* IS_COPIED spares the copy that ALWAYS asks for, not the conversion the
   * caller asked for: the result must still have the requested dtype. */
  int calls = 0;
  float *buf = iota_f32(6);
  DLManagedTensorVersioned *m =
      make_versioned(&calls, buf, buf, F32, 2, k_shape23, k_c23, DLPACK_FLAG_BITMASK_IS_COPIED);
  DLDataType f64 = F64;
  tb_import_options o = {.copy = TB_COPY_ALWAYS, .dtype = &f64};
  tb_tensor_t *t = NULL;
  assert_ok(tb_from_dlpack_versioned(m, &o, &t));
  assert_true(tb_dtype_equal(tb_tensor_dtype(t), F64));
  assert_int_equal(calls, 1);
  tb_tensor_release(t);
  assert_int_equal(calls, 1);

  buf = iota_f32(6);
  m = make_versioned(&calls, buf, buf, F32, 2, k_shape23, (int64_t[]){1, 2},
                     DLPACK_FLAG_BITMASK_IS_COPIED | DLPACK_FLAG_BITMASK_READ_ONLY);
  o = (tb_import_options){.copy = TB_COPY_ALWAYS, .layout = TB_LAYOUT_C,
                          .flags = TB_IMPORT_REQUIRE_WRITABLE};
  assert_ok(tb_from_dlpack_versioned(m, &o, &t));
  assert_true(tb_tensor_is_contiguous(t, TB_ORDER_C));
  assert_false(tb_tensor_is_readonly(t));
  tb_tensor_release(t);
  assert_int_equal(calls, 2);
}

static void import_to_a_device_without_backend_fails(void **state) {
  (void)state;
  int calls = 0;
  DLDevice rocm = {kDLROCM, 0}; /* no backend in any build of this library */
  tb_import_options o = {.device = &rocm};
  tb_tensor_t *t = NULL;
  test_allocator a;
  test_allocator_install(&a, -1);
  assert_status(tb_from_dlpack_versioned(versioned_2x3(&calls, NULL), &o, &t), TB_ERR_DEVICE);
  assert_error_mentions("rocm");
  assert_int_equal(calls, 1);
  assert_status(tb_from_dlpack(legacy_2x3(&calls, NULL), &o, &t), TB_ERR_DEVICE);
  assert_int_equal(calls, 2);
  assert_null(t);
  test_allocator_remove();
  assert_no_leak(&a);

  /* The producer's own device is no request at all. */
  DLDevice host = cpu();
  o = (tb_import_options){.device = &host, .copy = TB_COPY_NEVER};
  float *buf;
  assert_ok(tb_from_dlpack_versioned(versioned_2x3(&calls, &buf), &o, &t));
  assert_ptr_equal(tb_tensor_data(t), buf);
  tb_tensor_release(t);
  assert_int_equal(calls, 3);
}

/* ------------------------------------------------------------------------ */
/* Round trips                                                              */
/* ------------------------------------------------------------------------ */

typedef enum release_order { RELEASE_ORIGINAL_FIRST, RELEASE_IMPORTED_FIRST } release_order;

/* Makes a tensor of `dtype` over malloc'd memory whose deleter counts into c
 * (the memory is free()d by the driver); returns a new reference to a view of it. */
typedef tb_tensor_t *(*maker_fn)(counted *c, DLDataType dtype);

static tb_tensor_t *wrap_counted(counted *c, DLDataType dtype, int32_t ndim,
                                 const int64_t *shape) {
  size_t item = tb_dtype_itemsize(dtype);
  assert_true(item > 0);
  size_t n = 1;
  for (int32_t d = 0; d < ndim; d++) n *= (size_t)shape[d];
  unsigned char *buf = malloc(n * item + 1);
  assert_non_null(buf);
  for (size_t i = 0; i < n * item; i++) buf[i] = (unsigned char)(i * 7 + 1);
  tb_tensor_t *t = NULL;
  assert_ok(tb_from_array(buf, 0, dtype, ndim, shape, NULL, cpu(), 0, counting_deleter, c, &t));
  return t;
}

static tb_tensor_t *make_matrix(counted *c, DLDataType dtype) {
  return wrap_counted(c, dtype, 2, (const int64_t[]){2, 3});
}

static tb_tensor_t *make_scalar(counted *c, DLDataType dtype) {
  return wrap_counted(c, dtype, 0, NULL);
}

static tb_tensor_t *make_empty(counted *c, DLDataType dtype) {
  return wrap_counted(c, dtype, 2, (const int64_t[]){3, 0});
}

static tb_tensor_t *make_stepped(counted *c, DLDataType dtype) {
  tb_tensor_t *t = wrap_counted(c, dtype, 2, (const int64_t[]){5, 7}), *a, *b;
  assert_ok(tb_tensor_slice(t, 0, 1, 5, 2, &a));
  assert_ok(tb_tensor_slice(a, 1, 2, INT64_MAX, 3, &b));
  tb_tensor_release(a);
  tb_tensor_release(t);
  return b;
}

static tb_tensor_t *make_transposed(counted *c, DLDataType dtype) {
  tb_tensor_t *t = wrap_counted(c, dtype, 3, (const int64_t[]){2, 3, 4}), *p;
  assert_ok(tb_tensor_permute(t, (const int32_t[]){2, 0, 1}, &p));
  tb_tensor_release(t);
  return p;
}

static tb_tensor_t *make_reversed(counted *c, DLDataType dtype) {
  tb_tensor_t *t = wrap_counted(c, dtype, 2, (const int64_t[]){3, 4}), *a, *b;
  assert_ok(tb_tensor_slice(t, 0, INT64_MAX, INT64_MIN, -1, &a));
  assert_ok(tb_tensor_slice(a, 1, INT64_MAX, INT64_MIN, -2, &b));
  tb_tensor_release(a);
  tb_tensor_release(t);
  return b;
}

static void assert_same_tensor(const tb_tensor_t *a, const tb_tensor_t *b) {
  assert_int_equal(tb_tensor_ndim(a), tb_tensor_ndim(b));
  for (int32_t d = 0; d < tb_tensor_ndim(a); d++) {
    assert_int_equal(tb_tensor_shape(a)[d], tb_tensor_shape(b)[d]);
    assert_int_equal(tb_tensor_strides(a)[d], tb_tensor_strides(b)[d]);
  }
  assert_true(tb_dtype_equal(tb_tensor_dtype(a), tb_tensor_dtype(b)));
  assert_int_equal(tb_tensor_device(a).device_type, tb_tensor_device(b).device_type);
  assert_int_equal(tb_tensor_device(a).device_id, tb_tensor_device(b).device_id);
  assert_int_equal(tb_tensor_is_readonly(a), tb_tensor_is_readonly(b));
  if (tb_tensor_numel(a) == 0) {
    assert_null(tb_tensor_data(b));
  } else {
    assert_ptr_equal(tb_tensor_data(a), tb_tensor_data(b));
  }
}

/* Exports t, imports it back, compares, releases in `order`. Steals t. */
static void round_trip(tb_tensor_t *t, counted *c, bool legacy, release_order order) {
  tb_tensor_t *back = NULL;
  if (legacy) {
    DLManagedTensor *l = NULL;
    assert_ok(tb_to_dlpack(t, NULL, &l));
    assert_exported_matches(&l->dl_tensor, t);
    assert_ok(tb_from_dlpack(l, NULL, &back));
  } else {
    DLManagedTensorVersioned *m = NULL;
    assert_ok(tb_to_dlpack_versioned(t, NULL, &m));
    assert_int_equal(m->version.major, 1);
    assert_int_equal(m->version.minor, 3);
    assert_int_equal(m->flags, 0);
    assert_exported_matches(&m->dl_tensor, t);
    assert_ok(tb_from_dlpack_versioned(m, NULL, &back));
  }
  assert_same_tensor(t, back);
  if (tb_tensor_numel(t) > 0) {
    /* A write through the import is seen through the original. */
    unsigned char *p = tb_tensor_data(back);
    *p = (unsigned char)(*p ^ 0x5A);
    assert_int_equal(*(unsigned char *)tb_tensor_data(t), *p);
  }
  tb_tensor_release(order == RELEASE_ORIGINAL_FIRST ? t : back);
  assert_int_equal(c->calls, 0);
  tb_tensor_release(order == RELEASE_ORIGINAL_FIRST ? back : t);
  assert_int_equal(c->calls, 1);
}

static void round_trip_every_way(maker_fn make, DLDataType dtype) {
  for (int legacy = 0; legacy < 2; legacy++) {
    for (int order = 0; order < 2; order++) {
      counted c = {0};
      test_allocator a;
      test_allocator_install(&a, -1);
      round_trip(make(&c, dtype), &c, legacy != 0, (release_order)order);
      test_allocator_remove();
      assert_no_leak(&a);
      free(c.last_data);
    }
  }
}

static const struct {
  const char *name;
  uint8_t code;
  uint8_t bits;
} k_byte_dtypes[] = {
    {"bool", TB_DL_BOOL, 8},
    {"int8", TB_DL_INT, 8},
    {"int16", TB_DL_INT, 16},
    {"int32", TB_DL_INT, 32},
    {"int64", TB_DL_INT, 64},
    {"uint8", TB_DL_UINT, 8},
    {"uint16", TB_DL_UINT, 16},
    {"uint32", TB_DL_UINT, 32},
    {"uint64", TB_DL_UINT, 64},
    {"float16", TB_DL_FLOAT, 16},
    {"bfloat16", TB_DL_BFLOAT, 16},
    {"float32", TB_DL_FLOAT, 32},
    {"float64", TB_DL_FLOAT, 64},
    {"complex64", TB_DL_COMPLEX, 64},
    {"complex128", TB_DL_COMPLEX, 128},
    {"float8_e3m4", TB_DL_FLOAT8_E3M4, 8},
    {"float8_e4m3", TB_DL_FLOAT8_E4M3, 8},
    {"float8_e4m3b11fnuz", TB_DL_FLOAT8_E4M3B11FNUZ, 8},
    {"float8_e4m3fn", TB_DL_FLOAT8_E4M3FN, 8},
    {"float8_e4m3fnuz", TB_DL_FLOAT8_E4M3FNUZ, 8},
    {"float8_e5m2", TB_DL_FLOAT8_E5M2, 8},
    {"float8_e5m2fnuz", TB_DL_FLOAT8_E5M2FNUZ, 8},
    {"float8_e8m0fnu", TB_DL_FLOAT8_E8M0FNU, 8},
};

static void round_trip_every_byte_dtype(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof k_byte_dtypes / sizeof k_byte_dtypes[0]; i++) {
    DLDataType dtype = dt(k_byte_dtypes[i].code, k_byte_dtypes[i].bits);
    print_message("dtype %s\n", k_byte_dtypes[i].name);
    assert_string_equal(tb_dtype_name(dtype), k_byte_dtypes[i].name);
    assert_int_equal(tb_dtype_itemsize(dtype), k_byte_dtypes[i].bits / 8);
    round_trip_every_way(make_matrix, dtype);
    round_trip_every_way(make_reversed, dtype);
  }
}

static void round_trip_every_layout(void **state) {
  (void)state;
  const maker_fn makers[] = {make_matrix, make_scalar, make_empty, make_stepped,
                             make_transposed, make_reversed};
  const DLDataType dtypes[] = {F32, dt(TB_DL_COMPLEX, 128), dt(TB_DL_BOOL, 8), I16};
  for (size_t m = 0; m < sizeof makers / sizeof makers[0]; m++) {
    for (size_t d = 0; d < sizeof dtypes / sizeof dtypes[0]; d++) {
      round_trip_every_way(makers[m], dtypes[d]);
    }
  }
}

static void round_trip_of_a_read_only_tensor_stays_read_only(void **state) {
  (void)state;
  int64_t buf[3] = {1, 2, 3};
  int64_t n = 3;
  tb_tensor_t *t, *back;
  assert_ok(tb_from_array(buf, 0, I64, 1, &n, NULL, cpu(), TB_FLAG_READONLY, NULL, NULL, &t));
  DLManagedTensorVersioned *m = NULL;
  assert_ok(tb_to_dlpack_versioned(t, NULL, &m));
  assert_ok(tb_from_dlpack_versioned(m, NULL, &back));
  assert_true(tb_tensor_is_readonly(back));
  assert_ptr_equal(tb_tensor_data(back), buf);
  tb_tensor_release(t);
  tb_tensor_release(back);
}

static void round_trip_of_packed_fp4(void **state) {
  (void)state;
  /* Storage-only sub-byte data travels whole and C-contiguous. */
  uint8_t packed[3] = {0x21, 0x43, 0x65};
  int64_t shape[2] = {2, 3};
  DLDataType fp4 = dt(TB_DL_FLOAT4_E2M1FN, 4);
  tb_tensor_t *t, *back;
  assert_ok(tb_from_array(packed, 0, fp4, 2, shape, NULL, cpu(), 0, NULL, NULL, &t));
  DLManagedTensorVersioned *m = NULL;
  assert_ok(tb_to_dlpack_versioned(t, NULL, &m));
  assert_int_equal(m->dl_tensor.dtype.bits, 4);
  assert_ptr_equal(m->dl_tensor.data, packed);
  assert_ok(tb_from_dlpack_versioned(m, NULL, &back));
  assert_ptr_equal(tb_tensor_data(back), packed);
  assert_int_equal(tb_tensor_nbytes(back), 3);
  tb_tensor_release(back);
  tb_tensor_release(t);
}

static void round_trip_on_a_device_address_with_negative_strides(void **state) {
  (void)state;
  /* Device memory is never touched by import or export: a made-up address
   * on the test backend's device is enough (CUDA memory needs a device
   * present now). The export points data at element 0 with byte_offset 0
   * (the documented form), and strides reach below it, as a CuPy or PyTorch
   * reversed view would. Importing must accept what exporting produced. */
  fake_devices_install();
  uintptr_t base = (uintptr_t)1 << 32;
  int64_t n = 16, s = -1;
  DLDevice gpu = {(DLDeviceType)FAKE_ADDRESS_DEVICE, 0};
  tb_tensor_t *t, *back = NULL;
  assert_ok(tb_from_array((void *)base, 15 * sizeof(float), F32, 1, &n, &s, gpu, 0, NULL, NULL,
                          &t));
  DLManagedTensorVersioned *m = NULL;
  assert_ok(tb_to_dlpack_versioned(t, NULL, &m));
  assert_ptr_equal(m->dl_tensor.data, (void *)(base + 15 * sizeof(float)));
  assert_int_equal(m->dl_tensor.byte_offset, 0);
  assert_int_equal(m->dl_tensor.strides[0], -1);
  assert_ok(tb_from_dlpack_versioned(m, NULL, &back));
  assert_int_equal(tb_tensor_device(back).device_type, FAKE_ADDRESS_DEVICE);
  assert_int_equal(tb_tensor_strides(back)[0], -1);
  assert_int_equal((uintptr_t)tb_tensor_base(back) + tb_tensor_byte_offset(back),
                   base + 15 * sizeof(float));
  tb_tensor_release(back);
  tb_tensor_release(t);
}

/* ------------------------------------------------------------------------ */
/* Allocation failures                                                      */
/* ------------------------------------------------------------------------ */

/* One DLPack path under a failing allocator. *calls counts the producer's
 * deleter where the path imports; paths clean up their own successes. */
typedef tb_status (*dl_path_fn)(int *calls);

static tb_tensor_t *g_src; /* made with the default allocator */

static tb_status path_export_versioned(int *calls) {
  (void)calls;
  DLManagedTensorVersioned *m = NULL;
  tb_status st;
  guarded_call(st, tb_to_dlpack_versioned(g_src, NULL, &m));
  if (st == TB_OK) m->deleter(m);
  return st;
}

static tb_status path_export_legacy_copy(int *calls) {
  (void)calls;
  DLManagedTensor *m = NULL;
  DLDataType f64 = F64;
  tb_export_options o = {.dtype = &f64, .layout = TB_LAYOUT_F};
  tb_status st;
  guarded_call(st, tb_to_dlpack(g_src, &o, &m));
  if (st == TB_OK) m->deleter(m);
  return st;
}

static tb_status path_import_versioned(int *calls) {
  tb_tensor_t *t = NULL;
  tb_status st;
  guarded_call(st, tb_from_dlpack_versioned(versioned_2x3(calls, NULL), NULL, &t));
  tb_tensor_release(t);
  return st;
}

static tb_status path_import_legacy(int *calls) {
  tb_tensor_t *t = NULL;
  tb_status st;
  guarded_call(st, tb_from_dlpack(legacy_2x3(calls, NULL), NULL, &t));
  tb_tensor_release(t);
  return st;
}

static tb_status path_import_converting(int *calls) {
  tb_tensor_t *t = NULL;
  DLDataType f64 = F64;
  tb_import_options o = {.dtype = &f64, .layout = TB_LAYOUT_F};
  tb_status st;
  guarded_call(st, tb_from_dlpack_versioned(versioned_2x3(calls, NULL), &o, &t));
  if (st == TB_OK && *calls != 1) st = TB_ERR_INVALID; /* must have been consumed */
  tb_tensor_release(t);
  return st;
}

static tb_status path_import_writable_copy(int *calls) {
  tb_tensor_t *t = NULL;
  float *buf = iota_f32(6);
  DLManagedTensorVersioned *m =
      make_versioned(calls, buf, buf, F32, 2, k_shape23, k_c23, DLPACK_FLAG_BITMASK_READ_ONLY);
  tb_import_options o = {.flags = TB_IMPORT_REQUIRE_WRITABLE};
  tb_status st;
  guarded_call(st, tb_from_dlpack_versioned(m, &o, &t));
  tb_tensor_release(t);
  return st;
}

static tb_status path_round_trip(int *calls) {
  (void)calls;
  DLManagedTensorVersioned *m = NULL;
  tb_tensor_t *back = NULL;
  tb_status st;
  guarded_call(st, tb_to_dlpack_versioned(g_src, NULL, &m));
  if (st != TB_OK) return st;
  guarded_call(st, tb_from_dlpack_versioned(m, NULL, &back)); /* consumes m on every path */
  tb_tensor_release(back);
  return st;
}

static tb_status path_from_dltensor(int *calls) {
  (void)calls;
  tb_tensor_t *t = NULL;
  tb_import_options o = {.copy = TB_COPY_ALWAYS};
  tb_status st;
  guarded_call(st, tb_from_dltensor(tb_tensor_dltensor(g_src), 0, &o, &t));
  tb_tensor_release(t);
  return st;
}

/* Fails each allocation of the path in turn, until the path succeeds. */
static void fail_every_allocation(dl_path_fn path, bool imports) {
  for (long fail_at = 0;; fail_at++) {
    test_allocator a;
    int calls = 0;
    test_allocator_install(&a, fail_at);
    tb_status st;
    guarded_call(st, path(&calls)); /* a success leaves the message untouched */
    bool reached = a.calls > fail_at;
    test_allocator_remove();
    if (st != TB_OK) {
      assert_true(reached);
      assert_int_equal(st, TB_ERR_NOMEM);
      assert_error_mentions("allocation of");
    } else {
      assert_false(reached);
      assert_true(fail_at > 0);
    }
    assert_int_equal(calls, imports ? 1 : 0);
    assert_no_leak(&a);
    if (st == TB_OK) return;
  }
}

static int make_src(void **state) {
  (void)state;
  int64_t shape[2] = {4, 6};
  float vals[24];
  for (int i = 0; i < 24; i++) vals[i] = (float)i;
  return tb_tensor_new(vals, F32, 2, shape, NULL, NULL, TB_ORDER_C, 0, &g_src) == TB_OK ? 0 : -1;
}

static int drop_src(void **state) {
  (void)state;
  tb_tensor_release(g_src);
  g_src = NULL;
  return 0;
}

static void export_survives_every_failed_allocation(void **state) {
  (void)state;
  fail_every_allocation(path_export_versioned, false);
  fail_every_allocation(path_export_legacy_copy, false);
  fail_every_allocation(path_round_trip, false);
}

static void import_survives_every_failed_allocation(void **state) {
  (void)state;
  fail_every_allocation(path_import_versioned, true);
  fail_every_allocation(path_import_legacy, true);
  fail_every_allocation(path_import_converting, true);
  fail_every_allocation(path_import_writable_copy, true);
  fail_every_allocation(path_from_dltensor, false);
}

/* ------------------------------------------------------------------------ */
/* Borrowed DLTensor                                                        */
/* ------------------------------------------------------------------------ */

static void from_dltensor_borrows(void **state) {
  (void)state;
  float buf[6] = {0, 1, 2, 3, 4, 5};
  int64_t shape[2] = {2, 3};
  DLTensor dl = {buf, {kDLCPU, 0}, 2, {kDLFloat, 32, 1}, shape, NULL, 0};
  tb_tensor_t *t;
  assert_ok(tb_from_dltensor(&dl, 0, NULL, &t));
  assert_ptr_equal(tb_tensor_data(t), buf);
  assert_false(tb_tensor_is_readonly(t));
  assert_c_order_2x3(t);
  float *d = tb_tensor_data(t);
  d[0] = 9.0f;
  assert_true(buf[0] == 9.0f);
  shape[0] = 99; /* shape was copied */
  assert_int_equal(tb_tensor_shape(t)[0], 2);
  tb_tensor_release(t); /* nothing to free: borrowed */

  assert_ok(tb_from_dltensor(&dl, TB_FLAG_READONLY, NULL, &t));
  assert_true(tb_tensor_is_readonly(t));
  float one = 1.0f;
  assert_status(tb_tensor_fill(t, &one, F32), TB_ERR_READONLY);
  tb_tensor_release(t);

  shape[0] = 2;
  tb_import_options o = {.flags = TB_IMPORT_REQUIRE_WRITABLE};
  assert_ok(tb_from_dltensor(&dl, TB_FLAG_READONLY, &o, &t));
  assert_false(tb_tensor_is_readonly(t));
  assert_true(tb_tensor_data(t) != (void *)buf);
  tb_tensor_release(t);

  t = NULL;
  assert_status(tb_from_dltensor(&dl, 2, NULL, &t), TB_ERR_INVALID);
  assert_error_mentions("flags = 0x2");
  assert_status(tb_from_dltensor(NULL, 0, NULL, &t), TB_ERR_INVALID);
  dl.ndim = 70;
  assert_status(tb_from_dltensor(&dl, 0, NULL, &t), TB_ERR_INVALID);
  assert_error_mentions("ndim = 70");
  assert_null(t);
}


/* TB_IMPORT_KEEP_ON_ERROR: every refusal leaves the struct with the caller
 * (deleter not run), on success the import owns it as usual. */
static void import_keep_on_error_leaves_refused_structs_with_the_caller(void **state) {
  (void)state;
  int calls = 0;
  tb_tensor_t *t = NULL;
  tb_import_options keep = {.flags = TB_IMPORT_KEEP_ON_ERROR};

  DLManagedTensorVersioned *m = versioned_2x3(&calls, NULL);
  m->dl_tensor.dtype.bits = 24; /* not a dtype */
  assert_status(tb_from_dlpack_versioned(m, &keep, &t), TB_ERR_DTYPE);
  assert_int_equal(calls, 0);
  m->deleter(m);
  assert_int_equal(calls, 1);

  m = versioned_2x3(&calls, NULL);
  m->version.major = 2;
  assert_status(tb_from_dlpack_versioned(m, &keep, &t), TB_ERR_VERSION);
  assert_int_equal(calls, 1);
  m->version.major = 1;
  m->deleter(m);
  assert_int_equal(calls, 2);

  m = versioned_2x3(&calls, NULL);
  m->flags = DLPACK_FLAG_BITMASK_READ_ONLY;
  tb_import_options never = {.flags = TB_IMPORT_KEEP_ON_ERROR | TB_IMPORT_REQUIRE_WRITABLE,
                             .copy = TB_COPY_NEVER};
  assert_status(tb_from_dlpack_versioned(m, &never, &t), TB_ERR_COPY_REQUIRED);
  assert_int_equal(calls, 2);
  m->deleter(m);
  assert_int_equal(calls, 3);

  /* A copy that fails on allocation after the struct was wrapped. */
  DLDataType f64 = F64;
  tb_import_options convert = {.flags = TB_IMPORT_KEEP_ON_ERROR, .dtype = &f64};
  for (long fail_at = 0;; fail_at++) {
    m = versioned_2x3(&calls, NULL);
    int before = calls;
    test_allocator a;
    test_allocator_install(&a, fail_at);
    tb_status st;
    guarded_call(st, tb_from_dlpack_versioned(m, &convert, &t));
    test_allocator_remove();
    if (st == TB_OK) {
      assert_int_equal(calls, before + 1); /* consumed: the copy is ours */
      tb_tensor_release(t);
      assert_int_equal(a.live_bytes, 0);
      break;
    }
    assert_int_equal(st, TB_ERR_NOMEM);
    assert_int_equal(calls, before);
    assert_int_equal(a.live_bytes, 0);
    m->deleter(m);
    assert_int_equal(calls, before + 1);
  }

  m = versioned_2x3(&calls, NULL);
  int before = calls;
  assert_ok(tb_from_dlpack_versioned(m, &keep, &t));
  assert_int_equal(calls, before);
  tb_tensor_release(t);
  assert_int_equal(calls, before + 1);
}

/* ------------------------------------------------------------------------ */
/* Devices that are not present; empty tensors with overflowing strides     */
/* ------------------------------------------------------------------------ */

/* A producer over made-up memory of `device`, whose deleter counts. */
static DLManagedTensorVersioned *versioned_on(int *calls, DLDevice device) {
  DLManagedTensorVersioned *m = make_versioned(calls, (void *)(uintptr_t)0x10000, NULL, F32, 2,
                                               k_shape23, k_c23, 0);
  m->dl_tensor.device = device;
  return m;
}

static DLManagedTensor *legacy_on(int *calls, DLDevice device) {
  DLManagedTensor *l =
      make_legacy(calls, (void *)(uintptr_t)0x10000, NULL, F32, 2, k_shape23, k_c23);
  l->dl_tensor.device = device;
  return l;
}

/* Imports of memory on `device` are refused with TB_ERR_DEVICE and `needle`
 * in the message, on every path: versioned, legacy, borrowed; the deleter
 * runs once, or not at all with TB_IMPORT_KEEP_ON_ERROR. */
static void assert_import_refused(DLDevice device, const char *needle) {
  int calls = 0;
  tb_tensor_t *t = NULL;
  assert_status(tb_from_dlpack_versioned(versioned_on(&calls, device), NULL, &t), TB_ERR_DEVICE);
  assert_error_mentions(needle);
  assert_int_equal(calls, 1);
  assert_status(tb_from_dlpack(legacy_on(&calls, device), NULL, &t), TB_ERR_DEVICE);
  assert_error_mentions(needle);
  assert_int_equal(calls, 2);
  tb_import_options keep = {.flags = TB_IMPORT_KEEP_ON_ERROR};
  DLManagedTensorVersioned *m = versioned_on(&calls, device);
  assert_status(tb_from_dlpack_versioned(m, &keep, &t), TB_ERR_DEVICE);
  assert_int_equal(calls, 2);
  m->deleter(m);
  DLManagedTensor *l = legacy_on(&calls, device);
  assert_status(tb_from_dlpack(l, &keep, &t), TB_ERR_DEVICE);
  assert_int_equal(calls, 3);
  l->deleter(l);
  assert_int_equal(calls, 4);
  /* Options that would copy change nothing: the memory cannot be read. */
  DLDevice host = cpu();
  tb_import_options to_cpu = {.device = &host};
  assert_status(tb_from_dlpack_versioned(versioned_on(&calls, device), &to_cpu, &t),
                TB_ERR_DEVICE);
  assert_int_equal(calls, 5);
  m = versioned_on(&calls, device); /* a borrowed import touches no deleter */
  assert_status(tb_from_dltensor(&m->dl_tensor, 0, NULL, &t), TB_ERR_DEVICE);
  assert_error_mentions(needle);
  assert_int_equal(calls, 5);
  m->deleter(m);
  assert_null(t);
}

static void import_of_cuda_memory_without_a_cuda_device_is_refused(void **state) {
  (void)state;
  if (tb_device_count(kDLCUDA) > 0) skip(); /* test_cuda covers a present device */
  DLDevice gpu = {kDLCUDA, 0};
  assert_import_refused(gpu, "no cuda device is present");
  gpu.device_id = 3;
  assert_import_refused(gpu, "no cuda device is present");
  /* An empty tensor too: the device, not the memory, is missing. */
  int calls = 0;
  tb_tensor_t *t = NULL;
  DLManagedTensorVersioned *m = make_versioned(&calls, NULL, NULL, F32, 1, (int64_t[]){0},
                                               (int64_t[]){1}, 0);
  m->dl_tensor.device = (DLDevice){kDLCUDA, 0};
  assert_status(tb_from_dlpack_versioned(m, NULL, &t), TB_ERR_DEVICE);
  assert_int_equal(calls, 1);
}

/* The siblings: every non-host device type that no backend serves here, and
 * OpenCL when no OpenCL device is present; a device id past the devices. */
static void import_of_memory_on_an_absent_device_is_refused(void **state) {
  (void)state;
  fake_devices_install();
  const int32_t none[] = {TB_DL_ROCM,   TB_DL_METAL, TB_DL_EXT_DEV, TB_DL_ONEAPI,
                          TB_DL_WEBGPU, TB_DL_HEXAGON, TB_DL_MAIA,  TB_DL_TRN};
  for (size_t i = 0; i < sizeof none / sizeof *none; i++) {
    char want[64];
    snprintf(want, sizeof want, "no %s device is present", tb_device_type_name(none[i]));
    assert_import_refused((DLDevice){(DLDeviceType)none[i], 0}, want);
  }
  /* OpenCL without a backend. (With the backend built, asking for devices
   * loads the ICD loader and its platforms, which LeakSanitizer does not
   * survive in this executable: test_tensor covers that case through
   * tb_from_array, which takes the same checks.) */
  if (tb_get_backend(kDLOpenCL) == NULL) {
    assert_import_refused((DLDevice){kDLOpenCL, 0}, "no opencl device is present");
  }
  assert_import_refused((DLDevice){(DLDeviceType)FAKE_ADDRESS_DEVICE, 2}, "vpi:2 is not present");
  /* A present device takes it, untouched. */
  int calls = 0;
  tb_tensor_t *t = NULL;
  DLDevice fake = {(DLDeviceType)FAKE_ADDRESS_DEVICE, 1};
  assert_ok(tb_from_dlpack_versioned(versioned_on(&calls, fake), NULL, &t));
  assert_int_equal(tb_tensor_device(t).device_id, 1);
  assert_null(tb_tensor_data(t));
  tb_tensor_release(t);
  assert_int_equal(calls, 1);
}

/* Pinned and managed CUDA memory is host memory: without a driver (or
 * without the CUDA backend) it imports as such, and the successful import
 * leaves the last error message exactly as it was (an early version left
 * "cuda: pointer_device: no CUDA driver or device in this process"). */
static void import_of_pinned_and_managed_memory_needs_no_driver(void **state) {
  (void)state;
  if (tb_device_count(kDLCUDA) > 0) skip(); /* with a driver the pointer is asked about */
  const int32_t types[] = {TB_DL_CUDA_HOST, TB_DL_CUDA_MANAGED, TB_DL_ROCM_HOST};
  int calls = 0;
  for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
    for (int legacy = 0; legacy < 2; legacy++) {
      float *buf;
      tb_tensor_t *t = NULL;
      tb_clear_error();
      if (legacy) {
        DLManagedTensor *l = legacy_2x3(&calls, &buf);
        l->dl_tensor.device = (DLDevice){(DLDeviceType)types[i], 0};
        assert_raw_ok(tb_from_dlpack(l, NULL, &t));
      } else {
        DLManagedTensorVersioned *m = versioned_2x3(&calls, &buf);
        m->dl_tensor.device = (DLDevice){(DLDeviceType)types[i], 0};
        assert_raw_ok(tb_from_dlpack_versioned(m, NULL, &t));
      }
      assert_string_equal(tb_last_error(), ""); /* untouched: still cleared */
      assert_int_equal(tb_tensor_device(t).device_type, types[i]);
      assert_ptr_equal(tb_tensor_data(t), buf);
      assert_true(get2f(t, 1, 2) == 5.0f);
      tb_tensor_t *c = NULL;
      assert_ok(tb_tensor_to(t, cpu(), NULL, TB_ORDER_F, 0, &c)); /* readable by the host */
      assert_true(get2f(c, 1, 0) == 3.0f);
      tb_tensor_release(c);
      tb_tensor_release(t);
    }
  }
  assert_int_equal(calls, 6);
}

/* The exact inputs of the empty-tensor overflow, through DLPack: a {5, 0}
 * float32 producer with strides {INT64_MAX, 1} is refused (its views would
 * compute 4 * INT64_MAX), with a message naming the field, on every path. */
static void import_of_empty_tensor_whose_views_would_overflow_is_refused(void **state) {
  (void)state;
  const int64_t shape[2] = {5, 0};
  const int64_t strides[][2] = {{INT64_MAX, 1}, {INT64_MIN, 1}, {(int64_t)1 << 61, 1}};
  int calls = 0;
  tb_tensor_t *t = NULL;
  for (size_t i = 0; i < sizeof strides / sizeof *strides; i++) {
    for (int null_data = 0; null_data < 2; null_data++) {
      float *buf = null_data ? NULL : iota_f32(1);
      int before = calls;
      DLManagedTensorVersioned *m = make_versioned(&calls, buf, buf, F32, 2, shape, strides[i], 0);
      assert_status(tb_from_dlpack_versioned(m, NULL, &t), TB_ERR_OVERFLOW);
      assert_error_mentions("strides[0]");
      assert_int_equal(calls, before + 1);
      buf = null_data ? NULL : iota_f32(1);
      DLManagedTensor *l = make_legacy(&calls, buf, buf, F32, 2, shape, strides[i]);
      assert_status(tb_from_dlpack(l, NULL, &t), TB_ERR_OVERFLOW);
      assert_error_mentions("strides[0]");
      assert_int_equal(calls, before + 2);
      DLTensor dl = {.data = NULL, .device = cpu(), .ndim = 2, .dtype = F32,
                     .shape = (int64_t *)(uintptr_t)shape,
                     .strides = (int64_t *)(uintptr_t)strides[i]};
      assert_status(tb_from_dltensor(&dl, 0, NULL, &t), TB_ERR_OVERFLOW);
    }
  }
  tb_import_options keep = {.flags = TB_IMPORT_KEEP_ON_ERROR};
  DLManagedTensorVersioned *m = make_versioned(&calls, NULL, NULL, F32, 2, shape, strides[0], 0);
  int before = calls;
  assert_status(tb_from_dlpack_versioned(m, &keep, &t), TB_ERR_OVERFLOW);
  assert_int_equal(calls, before);
  m->deleter(m);
  assert_null(t);
  /* Strides an empty tensor may have import, and views of it are exact. */
  const int64_t ok_strides[2] = {INT64_MAX / 16, 1};
  m = make_versioned(&calls, NULL, NULL, F32, 2, shape, ok_strides, 0);
  assert_ok(tb_from_dlpack_versioned(m, NULL, &t));
  tb_tensor_t *v = NULL;
  assert_ok(tb_tensor_select(t, 0, 4, &v));
  assert_int_equal(tb_tensor_byte_offset(v), tb_tensor_byte_offset(t));
  tb_tensor_release(v);
  assert_ok(tb_tensor_slice(t, 0, 0, 5, 2, &v));
  assert_int_equal(tb_tensor_strides(v)[0], 2 * (INT64_MAX / 16));
  DLManagedTensor *out = NULL;
  assert_ok(tb_to_dlpack(v, NULL, &out));
  assert_null(out->dl_tensor.data);
  assert_int_equal(out->dl_tensor.strides[0], 2 * (INT64_MAX / 16));
  out->deleter(out);
  tb_tensor_release(v);
  tb_tensor_release(t);
}

/* Successful calls leave the message untouched: a planted message survives
 * a whole share / view / export / import / copy round. */
static void successful_dlpack_calls_leave_the_message(void **state) {
  (void)state;
  assert_status(tb_from_dlpack_versioned(NULL, NULL, NULL), TB_ERR_INVALID);
  char before[256];
  snprintf(before, sizeof before, "%s", tb_last_error());
  assert_true(before[0] != '\0');
  int calls = 0;
  tb_tensor_t *t = NULL, *v = NULL, *back = NULL, *c = NULL;
  tb_import_options o = {.layout = TB_LAYOUT_F, .alignment = 16};
  assert_raw_ok(tb_from_dlpack_versioned(versioned_2x3(&calls, NULL), &o, &t));
  assert_raw_ok(tb_tensor_slice(t, 1, INT64_MAX, INT64_MIN, -1, &v));
  DLManagedTensorVersioned *m = NULL;
  tb_export_options eo = {.layout = TB_LAYOUT_C, .stream = -1};
  assert_raw_ok(tb_to_dlpack_versioned(v, &eo, &m));
  assert_raw_ok(tb_from_dlpack_versioned(m, NULL, &back));
  DLDataType f64 = F64;
  assert_raw_ok(tb_tensor_copy(back, &f64, TB_ORDER_C, 0, &c));
  assert_string_equal(tb_last_error(), before);
  tb_tensor_release(c);
  tb_tensor_release(back);
  tb_tensor_release(v);
  tb_tensor_release(t);
  assert_string_equal(tb_last_error(), before);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(export_versioned_is_one_allocation_freed_by_the_deleter),
      cmocka_unit_test(export_legacy_is_one_allocation_freed_by_the_deleter),
      cmocka_unit_test(export_of_a_sliced_view_points_at_its_first_element),
      cmocka_unit_test(export_of_a_negative_stride_view_points_at_its_first_element),
      cmocka_unit_test(export_of_an_empty_tensor_has_null_data),
      cmocka_unit_test(export_of_a_scalar_sets_strides_pointer),
      cmocka_unit_test(export_flags_read_only_tensors),
      cmocka_unit_test(export_copy_always_sets_is_copied),
      cmocka_unit_test(export_converting_dtype_copies),
      cmocka_unit_test(export_changing_layout_copies),
      cmocka_unit_test(export_copy_never_refuses_what_needs_a_copy),
      cmocka_unit_test(export_rejects_bad_arguments),
      cmocka_unit_test(export_keeps_storage_alive_after_release),
      cmocka_unit_test(export_deleter_may_run_on_another_thread),
      cmocka_unit_test(legacy_export_of_read_only_needs_permission_or_a_copy),
      cmocka_unit_test(export_on_a_handle_device_keeps_byte_offset),
      cmocka_unit_test(import_versioned_shares_memory_both_ways),
      cmocka_unit_test(import_legacy_shares_memory_both_ways),
      cmocka_unit_test(import_deleter_waits_for_the_last_view),
      cmocka_unit_test(import_read_only_refuses_writes),
      cmocka_unit_test(import_honours_byte_offset),
      cmocka_unit_test(import_null_strides_before_1_2_mean_c_order),
      cmocka_unit_test(import_null_strides_from_1_2_on_are_refused),
      cmocka_unit_test(import_negative_strides),
      cmocka_unit_test(import_scalar_and_empty),
      cmocka_unit_test(import_keeps_the_producer_dtype_and_device),
      cmocka_unit_test(import_of_a_producer_without_deleter),
      cmocka_unit_test(import_refuses_bad_fields_and_calls_the_deleter_once),
      cmocka_unit_test(import_other_major_touches_only_the_deleter),
      cmocka_unit_test(import_other_major_without_deleter),
      cmocka_unit_test(import_refuses_flags_it_does_not_support),
      cmocka_unit_test(import_of_null_managed_is_invalid),
      cmocka_unit_test(import_with_null_out_still_consumes),
      cmocka_unit_test(import_refuses_bad_options_and_consumes),
      cmocka_unit_test(import_require_writable_copies_read_only),
      cmocka_unit_test(import_layout_request_copies_a_transposed_producer),
      cmocka_unit_test(import_dtype_request_converts),
      cmocka_unit_test(import_alignment_request_copies_unaligned_data),
      cmocka_unit_test(import_copy_always_copies_unless_is_copied),
      cmocka_unit_test(import_copy_always_of_is_copied_still_meets_requests),
      cmocka_unit_test(import_to_a_device_without_backend_fails),
      cmocka_unit_test(import_of_cuda_memory_without_a_cuda_device_is_refused),
      cmocka_unit_test(import_of_memory_on_an_absent_device_is_refused),
      cmocka_unit_test(import_of_pinned_and_managed_memory_needs_no_driver),
      cmocka_unit_test(import_of_empty_tensor_whose_views_would_overflow_is_refused),
      cmocka_unit_test(successful_dlpack_calls_leave_the_message),
      cmocka_unit_test(round_trip_every_byte_dtype),
      cmocka_unit_test(round_trip_every_layout),
      cmocka_unit_test(round_trip_of_a_read_only_tensor_stays_read_only),
      cmocka_unit_test(round_trip_of_packed_fp4),
      cmocka_unit_test(round_trip_on_a_device_address_with_negative_strides),
      cmocka_unit_test_setup_teardown(export_survives_every_failed_allocation, make_src,
                                      drop_src),
      cmocka_unit_test_setup_teardown(import_survives_every_failed_allocation, make_src,
                                      drop_src),
      cmocka_unit_test(from_dltensor_borrows),
      cmocka_unit_test(import_keep_on_error_leaves_refused_structs_with_the_caller),
      cmocka_unit_test(export_with_null_out_is_invalid),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
