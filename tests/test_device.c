/* The device layer through a backend registered at run time: a mock
 * accelerator under kDLExtDev whose memory the library must never touch
 * directly (tb_tensor_data is NULL for it), so every transfer goes through
 * the vtable: byte copies and the library's staging, or the backend's own
 * strided copy when it has one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"
#include "tensorbridge/backend.h"

typedef struct mock_stats {
  int allocs, frees, copy_bytes, copy_strided, stream_waits;
  void *last_consumer;
  bool strided_supported; /* whether copy_strided handles same-dtype copies */
} mock_stats;

static mock_stats g_mock;

static int32_t mock_count(const tb_device_vtable *self) {
  (void)self;
  return 2;
}

static tb_status mock_alloc(const tb_device_vtable *self, int32_t id, uint64_t nbytes,
                            const tb_allocator *host, void **out) {
  (void)self;
  (void)id;
  (void)host;
  if (nbytes == 0) {
    *out = NULL;
    return TB_OK;
  }
  *out = malloc((size_t)nbytes);
  if (*out == NULL) return tb_set_error(TB_ERR_NOMEM, "mock alloc failed");
  g_mock.allocs++;
  return TB_OK;
}

static void mock_free(const tb_device_vtable *self, int32_t id, void *ptr, uint64_t nbytes,
                      const tb_allocator *host) {
  (void)self;
  (void)id;
  (void)nbytes;
  (void)host;
  if (ptr != NULL) g_mock.frees++;
  free(ptr);
}

static tb_status mock_copy_bytes(const tb_device_vtable *self, void *dst, uint64_t dst_offset,
                                 DLDevice dst_device, const void *src, uint64_t src_offset,
                                 DLDevice src_device, uint64_t nbytes, void *stream) {
  (void)self;
  (void)dst_device;
  (void)src_device;
  (void)stream;
  g_mock.copy_bytes++;
  memcpy((char *)dst + dst_offset, (const char *)src + src_offset, (size_t)nbytes);
  return TB_OK;
}

/* Handles only same-dtype copies within the mock device, to prove both that
 * the library calls it and that TB_ERR_UNSUPPORTED falls back to staging.
 * Like the built-in backends it says why through tb_set_error: the copy
 * that then succeeds by staging must leave no trace of that message. */
static tb_status mock_copy_strided(const tb_device_vtable *self, const tb_copy_desc *d,
                                   void *stream) {
  (void)self;
  (void)stream;
  if (!g_mock.strided_supported || d->src_device.device_type != d->dst_device.device_type ||
      !tb_dtype_equal(d->src_dtype, d->dst_dtype)) {
    return tb_set_error(TB_ERR_UNSUPPORTED, "mock copy_strided: staged by the core instead");
  }
  g_mock.copy_strided++;
  size_t item = tb_dtype_itemsize(d->src_dtype);
  int64_t index[8] = {0}, numel = 1;
  for (int32_t k = 0; k < d->ndim; k++) numel *= d->shape[k];
  for (int64_t n = 0; n < numel; n++) {
    int64_t so = 0, dso = 0;
    for (int32_t k = 0; k < d->ndim; k++) {
      so += index[k] * d->src_strides[k];
      dso += index[k] * d->dst_strides[k];
    }
    memcpy((char *)d->dst + d->dst_byte_offset + dso * (int64_t)item,
           (const char *)d->src + d->src_byte_offset + so * (int64_t)item, item);
    for (int32_t k = d->ndim - 1; k >= 0 && ++index[k] == d->shape[k]; k--) index[k] = 0;
  }
  return TB_OK;
}

static tb_status mock_stream_wait(const tb_device_vtable *self, int32_t id, void *producer,
                                  void *consumer) {
  (void)self;
  (void)id;
  (void)producer;
  g_mock.stream_waits++;
  g_mock.last_consumer = consumer;
  return TB_OK;
}

/* Knows no pointer: a probe that fails with a message, which the import
 * that goes on with the declared device must take back. Counts its calls. */
static int g_pointer_probes;
static tb_status mock_pointer_device(const tb_device_vtable *self, const void *ptr,
                                     DLDevice *out) {
  (void)self;
  (void)ptr;
  (void)out;
  g_pointer_probes++;
  return tb_set_error(TB_ERR_INVALID, "mock pointer_device: unknown pointer");
}

static const tb_device_vtable g_mock_backend = {
    .abi_version = TB_BACKEND_ABI_VERSION,
    .device_type = TB_DL_EXT_DEV,
    .name = "mock",
    .device_count = mock_count,
    .alloc = mock_alloc,
    .free = mock_free,
    .copy_bytes = mock_copy_bytes,
    .copy_strided = mock_copy_strided,
    .stream_wait = mock_stream_wait,
    .pointer_device = mock_pointer_device,
};

static DLDevice ext(int32_t id) { return (DLDevice){(DLDeviceType)TB_DL_EXT_DEV, id}; }

static int register_mock(void **state) {
  (void)state;
  memset(&g_mock, 0, sizeof g_mock);
  return tb_register_backend(&g_mock_backend) == TB_OK ? 0 : -1;
}

/* Reads back any tensor as float64 values on the host. */
static void host_values(const tb_tensor_t *t, double *out) {
  DLDataType f64 = F64;
  tb_tensor_t *h;
  assert_ok(tb_tensor_to(t, cpu(), &f64, TB_ORDER_C, TB_CAST_DISCARD_IMAG, &h));
  memcpy(out, tb_tensor_data(h), (size_t)tb_tensor_nbytes(h));
  tb_tensor_release(h);
}

static tb_tensor_t *iota(DLDataType dtype, int32_t ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int32_t k = 0; k < ndim; k++) n *= shape[k];
  double *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
  for (int64_t i = 0; i < n; i++) v[i] = (double)(i * 3 - 5);
  tb_tensor_t *t;
  assert_ok(tb_tensor_new(v, F64, ndim, shape, NULL, &dtype, TB_ORDER_C, 0, &t));
  free(v);
  return t;
}

static void registry_validates_backends(void **state) {
  (void)state;
  assert_int_equal(tb_device_count(TB_DL_CPU), 1);
  assert_true(tb_device_available(TB_DL_CPU));
  assert_int_equal(tb_device_count(TB_DL_VULKAN), 0);
  assert_false(tb_device_available(TB_DL_VULKAN));
  assert_int_equal(tb_device_count(12345), 0);
  assert_string_equal(tb_device_type_name(TB_DL_CUDA), "cuda");
  assert_string_equal(tb_device_type_name(77), "unknown");
  tb_device_vtable bad = g_mock_backend;
  bad.abi_version = 99;
  assert_status(tb_register_backend(&bad), TB_ERR_VERSION);
  assert_error_mentions("abi_version = 99");
  bad = g_mock_backend;
  bad.copy_bytes = NULL;
  assert_status(tb_register_backend(&bad), TB_ERR_INVALID);
  assert_error_mentions("copy_bytes");
  bad = g_mock_backend;
  bad.device_type = 99;
  assert_status(tb_register_backend(&bad), TB_ERR_DEVICE);
  assert_status(tb_register_backend(NULL), TB_ERR_INVALID);
  assert_ok(tb_register_backend(&g_mock_backend));
  assert_int_equal(tb_device_count(TB_DL_EXT_DEV), 2);
  assert_ptr_equal(tb_get_backend(TB_DL_EXT_DEV), &g_mock_backend);
}

static void transfer_round_trips_strided_sources(void **state) {
  (void)state;
  int64_t shape[2] = {3, 5};
  tb_tensor_t *src = iota(I32, 2, shape), *tr, *rev;
  assert_ok(tb_tensor_transpose(src, 0, 1, &tr));
  assert_ok(tb_tensor_slice(tr, 1, INT64_MAX, INT64_MIN, -1, &rev)); /* negative strides */
  double expect[15], got[15];
  host_values(rev, expect);
  tb_tensor_t *dev, *back;
  assert_ok(tb_tensor_to(rev, ext(1), NULL, TB_ORDER_C, 0, &dev));
  assert_null(tb_tensor_data(dev)); /* not host memory: never dereferenced */
  assert_int_equal(tb_tensor_device(dev).device_id, 1);
  assert_true(tb_tensor_is_contiguous(dev, TB_ORDER_C));
  assert_ok(tb_tensor_to(dev, cpu(), NULL, TB_ORDER_C, 0, &back));
  host_values(back, got);
  assert_memory_equal(got, expect, sizeof expect);
  tb_tensor_release(back);
  tb_tensor_release(dev);
  tb_tensor_release(rev);
  tb_tensor_release(tr);
  tb_tensor_release(src);
  assert_int_equal(g_mock.allocs, g_mock.frees);
}

static void transfer_converts_dtype_on_the_way(void **state) {
  (void)state;
  int64_t shape[1] = {6};
  tb_tensor_t *src = iota(I64, 1, shape), *dev, *dev2;
  DLDataType f32 = F32, c128 = dt(kDLComplex, 128);
  assert_ok(tb_tensor_to(src, ext(0), &f32, TB_ORDER_C, 0, &dev));
  assert_true(tb_dtype_equal(tb_tensor_dtype(dev), F32));
  /* device -> device with a cast: no strided kernel for it, so it stages */
  int before = g_mock.copy_strided;
  assert_ok(tb_tensor_to(dev, ext(1), &c128, TB_ORDER_F, 0, &dev2));
  assert_int_equal(g_mock.copy_strided, before);
  double got[6];
  host_values(dev2, got);
  for (int i = 0; i < 6; i++) assert_true(got[i] == (double)(i * 3 - 5));
  tb_tensor_release(dev2);
  tb_tensor_release(dev);
  tb_tensor_release(src);
}

static void backend_strided_copy_is_used_when_offered(void **state) {
  (void)state;
  g_mock.strided_supported = true;
  int64_t shape[2] = {4, 4};
  tb_tensor_t *src = iota(F32, 2, shape), *dev, *devt, *dense;
  assert_ok(tb_tensor_to(src, ext(0), NULL, TB_ORDER_C, 0, &dev));
  assert_ok(tb_tensor_transpose(dev, 0, 1, &devt));
  int bytes_before = g_mock.copy_bytes;
  assert_ok(tb_tensor_contiguous(devt, TB_ORDER_C, &dense));
  assert_int_equal(g_mock.copy_strided, 1);
  assert_int_equal(g_mock.copy_bytes, bytes_before); /* no staging */
  double a[16], b[16];
  host_values(devt, a);
  host_values(dense, b);
  assert_memory_equal(a, b, sizeof a);
  g_mock.strided_supported = false;
  tb_tensor_release(dense);
  tb_tensor_release(devt);
  tb_tensor_release(dev);
  tb_tensor_release(src);
}

static void strided_device_destination_keeps_its_gaps(void **state) {
  (void)state;
  int64_t n = 8, half = 4;
  tb_tensor_t *dev, *every_other, *src;
  double seven = 7.0;
  assert_ok(tb_tensor_full(I16, 1, &n, ext(0), TB_ORDER_C, &seven, F64, &dev));
  assert_ok(tb_tensor_slice(dev, 0, 0, INT64_MAX, 2, &every_other));
  src = iota(I16, 1, &half); /* -5, -2, 1, 4 */
  assert_ok(tb_tensor_copy_into(every_other, src, 0));
  double got[8];
  host_values(dev, got);
  const double expect[8] = {-5, 7, -2, 7, 1, 7, 4, 7};
  assert_memory_equal(got, expect, sizeof expect);
  tb_tensor_release(src);
  tb_tensor_release(every_other);
  tb_tensor_release(dev);
}

static void zeros_zero_dim_and_empty_on_device(void **state) {
  (void)state;
  int64_t shape[2] = {2, 0};
  tb_tensor_t *z, *e, *s, *back;
  assert_ok(tb_tensor_zeros(F64, 2, shape, ext(0), TB_ORDER_C, &e));
  assert_int_equal(tb_tensor_numel(e), 0);
  assert_ok(tb_tensor_to(e, cpu(), NULL, TB_ORDER_C, 0, &back));
  tb_tensor_release(back);
  double v = 2.5;
  assert_ok(tb_tensor_full(F32, 0, NULL, ext(1), TB_ORDER_C, &v, F64, &s));
  double got;
  host_values(s, &got);
  assert_true(got == 2.5);
  int64_t three = 3;
  assert_ok(tb_tensor_zeros(U8, 1, &three, ext(0), TB_ORDER_C, &z));
  double zs[3];
  host_values(z, zs);
  assert_true(zs[0] == 0 && zs[1] == 0 && zs[2] == 0);
  tb_tensor_release(z);
  tb_tensor_release(s);
  tb_tensor_release(e);
}

static void absent_devices_are_refused(void **state) {
  (void)state;
  int64_t n = 4;
  tb_tensor_t *t = NULL, *src = iota(F32, 1, &n);
  assert_status(tb_tensor_empty(F32, 1, &n, ext(2), TB_ORDER_C, &t), TB_ERR_DEVICE);
  assert_error_mentions("ext_dev:2 is not present");
  assert_status(tb_tensor_to(src, (DLDevice){kDLROCM, 0}, NULL, TB_ORDER_C, 0, &t),
                TB_ERR_DEVICE);
  assert_error_mentions("rocm:0");
  assert_null(t);
  tb_tensor_release(src);
}

static void wrapped_device_memory_is_freed_by_its_owner(void **state) {
  (void)state;
  /* Memory some other program allocated on the device, wrapped without copy. */
  float host[4] = {1, 2, 3, 4};
  void *devmem = malloc(sizeof host);
  memcpy(devmem, host, sizeof host);
  counted c = {0};
  int64_t n = 4;
  tb_tensor_t *t, *back;
  assert_ok(tb_from_array(devmem, 0, F32, 1, &n, NULL, ext(1), 0, counting_deleter, &c, &t));
  assert_ok(tb_tensor_to(t, cpu(), NULL, TB_ORDER_C, 0, &back));
  assert_memory_equal(tb_tensor_data(back), host, sizeof host);
  tb_tensor_release(t);
  assert_int_equal(c.calls, 1);
  assert_ptr_equal(c.last_data, devmem);
  free(devmem);
  tb_tensor_release(back);
}

static void staging_survives_every_failed_allocation(void **state) {
  (void)state;
  int64_t shape[2] = {3, 4};
  tb_tensor_t *src = iota(F32, 2, shape), *srct;
  assert_ok(tb_tensor_transpose(src, 0, 1, &srct));
  for (long fail_at = 0;; fail_at++) {
    test_allocator a;
    tb_tensor_t *dev = NULL;
    test_allocator_install(&a, fail_at);
    tb_status st;
    guarded_call(st, tb_tensor_to(srct, ext(0), NULL, TB_ORDER_C, 0, &dev));
    bool reached = a.calls > fail_at;
    tb_tensor_release(dev);
    test_allocator_remove();
    assert_int_equal(a.live_bytes, 0);
    if (st == TB_OK) {
      assert_false(reached);
      break;
    }
    assert_int_equal(st, TB_ERR_NOMEM);
  }
  assert_int_equal(g_mock.allocs, g_mock.frees);
  tb_tensor_release(srct);
  tb_tensor_release(src);
}

static void export_makes_the_consumer_stream_wait(void **state) {
  (void)state;
  int64_t n = 4;
  tb_tensor_t *src = iota(F32, 1, &n), *dev;
  assert_ok(tb_tensor_to(src, ext(0), NULL, TB_ORDER_C, 0, &dev));
  DLManagedTensorVersioned *m;
  tb_export_options o = {.stream = 0x1234};
  assert_ok(tb_to_dlpack_versioned(dev, &o, &m));
  assert_int_equal(g_mock.stream_waits, 1);
  assert_ptr_equal(g_mock.last_consumer, (void *)0x1234);
  assert_int_equal(m->dl_tensor.device.device_type, TB_DL_EXT_DEV);
  m->deleter(m);
  o.stream = -1; /* no synchronization asked */
  assert_ok(tb_to_dlpack_versioned(dev, &o, &m));
  assert_int_equal(g_mock.stream_waits, 1);
  m->deleter(m);
  o.stream = 2;
  assert_status(tb_to_dlpack_versioned(src, &o, &m), TB_ERR_INVALID);
  assert_error_mentions("stream = 2");
  tb_tensor_release(dev);
  tb_tensor_release(src);
}

/* Successful calls leave tb_last_error() untouched, also where the library
 * asked a backend something that failed and carried on (a strided copy the
 * backend does not take, a pointer it does not know), and in the queries. */
static void recovered_probes_leave_the_message(void **state) {
  (void)state;
  assert_status(tb_tensor_copy(NULL, NULL, TB_ORDER_C, 0, NULL), TB_ERR_INVALID);
  char before[256];
  snprintf(before, sizeof before, "%s", tb_last_error());
  int64_t shape[2] = {3, 4};
  tb_tensor_t *src = iota(F32, 2, shape), *srct, *dev, *back;
  assert_raw_ok(tb_tensor_transpose(src, 0, 1, &srct));
  /* copy_strided answers UNSUPPORTED with a message; the copy stages. */
  assert_raw_ok(tb_tensor_to(srct, ext(0), NULL, TB_ORDER_C, 0, &dev));
  assert_raw_ok(tb_tensor_to(dev, cpu(), &(DLDataType){kDLFloat, 64, 1}, TB_ORDER_F, 0, &back));
  assert_string_equal(tb_last_error(), before);
  /* The DLPack import asks pointer_device, which fails: the declared device
   * stays, the message too. */
  DLManagedTensorVersioned *m = NULL;
  assert_raw_ok(tb_to_dlpack_versioned(dev, NULL, &m));
  int probes = g_pointer_probes;
  tb_tensor_t *imported = NULL;
  assert_raw_ok(tb_from_dlpack_versioned(m, NULL, &imported));
  assert_int_equal(g_pointer_probes, probes + 1);
  assert_int_equal(tb_tensor_device(imported).device_type, TB_DL_EXT_DEV);
  assert_string_equal(tb_last_error(), before);
  /* Queries of every device type, present or not. */
  for (int32_t type = -1; type < 40; type++) {
    (void)tb_get_backend(type);
    (void)tb_device_type_name(type);
    (void)tb_device_count(type);
    (void)tb_device_available(type);
  }
  assert_string_equal(tb_last_error(), before);
  /* The same with assert_ok's own sentinel. */
  assert_untouched((void)tb_device_count(kDLCUDA));
  assert_untouched((void)tb_device_count(kDLCUDAHost));
  assert_untouched((void)tb_device_count(kDLOpenCL));
  tb_tensor_release(imported);
  tb_tensor_release(back);
  tb_tensor_release(dev);
  tb_tensor_release(srct);
  tb_tensor_release(src);
  assert_string_equal(tb_last_error(), before);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(registry_validates_backends),
      cmocka_unit_test(transfer_round_trips_strided_sources),
      cmocka_unit_test(transfer_converts_dtype_on_the_way),
      cmocka_unit_test(backend_strided_copy_is_used_when_offered),
      cmocka_unit_test(strided_device_destination_keeps_its_gaps),
      cmocka_unit_test(zeros_zero_dim_and_empty_on_device),
      cmocka_unit_test(absent_devices_are_refused),
      cmocka_unit_test(wrapped_device_memory_is_freed_by_its_owner),
      cmocka_unit_test(staging_survives_every_failed_allocation),
      cmocka_unit_test(export_makes_the_consumer_stream_wait),
      cmocka_unit_test(recovered_probes_leave_the_message),
  };
  return cmocka_run_group_tests(tests, register_mock, NULL);
}
