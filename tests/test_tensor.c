/* Construction paths: from_array (share), tensor_new/copy (copy), empty,
 * zeros, full; queries; the DLTensor view; bad input. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

static void from_array_shares_memory_both_ways(void **state) {
  (void)state;
  float buf[6] = {0, 1, 2, 3, 4, 5};
  int64_t shape[2] = {2, 3};
  tb_tensor_t *t;
  assert_ok(tb_from_array(buf, 0, F32, 2, shape, NULL, cpu(), 0, NULL, NULL, &t));
  assert_ptr_equal(tb_tensor_data(t), buf);
  float *data = tb_tensor_data(t);
  buf[4] = 40.0f; /* the owner writes, the tensor sees it */
  assert_true(data[4] == 40.0f);
  data[1] = -1.0f; /* the tensor writes, the owner sees it */
  assert_true(buf[1] == -1.0f);
  tb_tensor_release(t);
}

static void from_array_deleter_runs_once_at_last_release(void **state) {
  (void)state;
  double *buf = malloc(4 * sizeof *buf);
  counted c = {0};
  int64_t n = 4;
  tb_tensor_t *t;
  assert_ok(tb_from_array(buf, 0, F64, 1, &n, NULL, cpu(), 0, counting_deleter, &c, &t));
  tb_tensor_retain(t);
  tb_tensor_release(t);
  assert_int_equal(c.calls, 0);
  tb_tensor_release(t);
  assert_int_equal(c.calls, 1);
  assert_ptr_equal(c.last_data, buf);
  free(buf);
}

static void from_array_failure_leaves_ownership_with_caller(void **state) {
  (void)state;
  int32_t buf[4];
  counted c = {0};
  int64_t shape[2] = {2, -4};
  tb_tensor_t *t = NULL;
  assert_status(tb_from_array(buf, 0, I32, 2, shape, NULL, cpu(), 0, counting_deleter, &c, &t),
                TB_ERR_INVALID);
  assert_error_mentions("shape[1] = -4");
  assert_null(t);
  assert_int_equal(c.calls, 0);
}

static void from_array_copies_shape_and_strides(void **state) {
  (void)state;
  int16_t buf[12];
  int64_t shape[2] = {3, 4};
  int64_t strides[2] = {1, 3}; /* Fortran order */
  tb_tensor_t *t;
  assert_ok(tb_from_array(buf, 0, I16, 2, shape, strides, cpu(), 0, NULL, NULL, &t));
  shape[0] = 99;
  strides[0] = 99;
  assert_int_equal(tb_tensor_shape(t)[0], 3);
  assert_int_equal(tb_tensor_strides(t)[0], 1);
  assert_true(tb_tensor_is_contiguous(t, TB_ORDER_F));
  assert_false(tb_tensor_is_contiguous(t, TB_ORDER_C));
  tb_tensor_release(t);
}

static void from_array_null_strides_mean_c_order(void **state) {
  (void)state;
  uint8_t buf[24];
  int64_t shape[3] = {2, 3, 4};
  tb_tensor_t *t;
  assert_ok(tb_from_array(buf, 0, U8, 3, shape, NULL, cpu(), 0, NULL, NULL, &t));
  const int64_t *s = tb_tensor_strides(t);
  assert_int_equal(s[0], 12);
  assert_int_equal(s[1], 4);
  assert_int_equal(s[2], 1);
  assert_true(tb_tensor_is_contiguous(t, TB_ORDER_C));
  tb_tensor_release(t);
}

static void from_array_negative_strides_reach_below_data(void **state) {
  (void)state;
  /* A NumPy-style reversed view: data points at the last element. */
  int32_t buf[5] = {10, 11, 12, 13, 14};
  int64_t n = 5, stride = -1;
  tb_tensor_t *t;
  assert_ok(tb_from_array(&buf[4], 0, I32, 1, &n, &stride, cpu(), 0, NULL, NULL, &t));
  assert_ptr_equal(tb_tensor_data(t), &buf[4]);
  const DLTensor *dl = tb_tensor_dltensor(t);
  assert_ptr_equal(dl->data, buf); /* the storage base covers every element */
  assert_int_equal(dl->byte_offset, 4 * sizeof(int32_t));
  for (int64_t i = 0; i < 5; i++) {
    void *p;
    assert_ok(tb_tensor_element_ptr(t, &i, &p));
    assert_int_equal(*(int32_t *)p, 14 - i);
  }
  tb_tensor_release(t);
}

static void from_array_honours_byte_offset(void **state) {
  (void)state;
  int64_t buf[4] = {1, 2, 3, 4};
  int64_t n = 2;
  tb_tensor_t *t;
  assert_ok(tb_from_array(buf, 2 * sizeof(int64_t), I64, 1, &n, NULL, cpu(), 0, NULL, NULL, &t));
  assert_ptr_equal(tb_tensor_data(t), &buf[2]);
  assert_ptr_equal(tb_tensor_base(t), buf);
  assert_int_equal(tb_tensor_byte_offset(t), 16);
  tb_tensor_release(t);
}

static void from_array_rejects_bad_input(void **state) {
  (void)state;
  float buf[4];
  int64_t shape[1] = {4};
  tb_tensor_t *t = NULL;
  assert_status(tb_from_array(NULL, 0, F32, 1, shape, NULL, cpu(), 0, NULL, NULL, &t),
                TB_ERR_INVALID);
  assert_error_mentions("data is NULL");
  assert_status(tb_from_array(buf, 0, F32, 65, shape, NULL, cpu(), 0, NULL, NULL, &t),
                TB_ERR_INVALID);
  assert_error_mentions("ndim = 65");
  assert_status(tb_from_array(buf, 0, F32, -1, shape, NULL, cpu(), 0, NULL, NULL, &t),
                TB_ERR_INVALID);
  assert_status(tb_from_array(buf, 0, F32, 1, NULL, NULL, cpu(), 0, NULL, NULL, &t),
                TB_ERR_INVALID);
  assert_error_mentions("shape is NULL");
  assert_status(tb_from_array(buf, 0, dt(kDLFloat, 24), 1, shape, NULL, cpu(), 0, NULL, NULL, &t),
                TB_ERR_DTYPE);
  assert_error_mentions("bits = 24");
  DLDataType lanes = {kDLFloat, 32, 4};
  assert_status(tb_from_array(buf, 0, lanes, 1, shape, NULL, cpu(), 0, NULL, NULL, &t),
                TB_ERR_DTYPE);
  assert_error_mentions("lanes = 4");
  DLDevice cpu36 = {kDLCPU, 36};
  assert_status(tb_from_array(buf, 0, F32, 1, shape, NULL, cpu36, 0, NULL, NULL, &t),
                TB_ERR_DEVICE);
  assert_error_mentions("cpu:36");
  DLDevice bogus = {(DLDeviceType)99, 0};
  assert_status(tb_from_array(buf, 0, F32, 1, shape, NULL, bogus, 0, NULL, NULL, &t),
                TB_ERR_DEVICE);
  assert_error_mentions("type = 99");
  assert_status(tb_from_array(buf, 0, F32, 1, shape, NULL, cpu(), 0x8, NULL, NULL, &t),
                TB_ERR_INVALID);
  assert_error_mentions("flags = 0x8");
  assert_status(tb_from_array(buf, 0, F32, 1, shape, NULL, cpu(), 0, NULL, NULL, NULL),
                TB_ERR_INVALID);
  /* A handle (an OpenCL cl_mem) cannot move its base below data for
   * negative strides: byte_offset must cover them. */
  int64_t stride = -1;
  DLDevice cl = {kDLOpenCL, 0};
  assert_status(tb_from_array(buf, 0, F32, 1, shape, &stride, cl, 0, NULL, NULL, &t),
                TB_ERR_INVALID);
  assert_error_mentions("below data");
  assert_error_mentions("handle");
  assert_null(t);
}

static void from_array_rejects_overflowing_extents(void **state) {
  (void)state;
  char buf[8];
  tb_tensor_t *t = NULL;
  /* numel * itemsize overflows int64 */
  int64_t big[2] = {INT64_MAX / 2, 4};
  assert_status(tb_from_array(buf, 0, F32, 2, big, NULL, cpu(), 0, NULL, NULL, &t),
                TB_ERR_OVERFLOW);
  /* numel itself overflows */
  int64_t huge[3] = {INT64_MAX / 2, 3, 1};
  assert_status(tb_from_array(buf, 0, U8, 3, huge, NULL, cpu(), 0, NULL, NULL, &t),
                TB_ERR_OVERFLOW);
  assert_error_mentions("shape[1]");
  /* shape x stride overflows although numel is small */
  int64_t shape[1] = {3};
  int64_t stride[1] = {INT64_MAX / 2 + 1};
  assert_status(tb_from_array(buf, 0, U8, 1, shape, stride, cpu(), 0, NULL, NULL, &t),
                TB_ERR_OVERFLOW);
  assert_error_mentions("strides[0]");
  /* the element offsets fit but their byte offsets do not */
  int64_t two[1] = {2};
  int64_t wide[1] = {INT64_MAX / 4};
  assert_status(tb_from_array(buf, 0, F64, 1, two, wide, cpu(), 0, NULL, NULL, &t),
                TB_ERR_OVERFLOW);
  /* byte_offset beyond int64 */
  assert_status(tb_from_array(buf, UINT64_MAX, U8, 1, two, NULL, cpu(), 0, NULL, NULL, &t),
                TB_ERR_OVERFLOW);
  assert_null(t);
}

static void from_array_accepts_device_pointers_without_touching_them(void **state) {
  (void)state;
  /* A handle that is not a host address: nothing may dereference it. The
   * fake backend's device serves no memory at all, so any touch fails. */
  fake_devices_install();
  void *handle = (void *)(uintptr_t)0x1000;
  int64_t shape[2] = {4, 4};
  counted c = {0};
  tb_tensor_t *t;
  DLDevice gpu = {(DLDeviceType)FAKE_ADDRESS_DEVICE, 1};
  assert_ok(tb_from_array(handle, 0, F32, 2, shape, NULL, gpu, 0, counting_deleter, &c, &t));
  assert_null(tb_tensor_data(t)); /* not host-accessible */
  assert_ptr_equal(tb_tensor_base(t), handle);
  DLDevice d = tb_tensor_device(t);
  assert_int_equal(d.device_type, FAKE_ADDRESS_DEVICE);
  assert_int_equal(d.device_id, 1);
  tb_tensor_t *copy = NULL;
  assert_status(tb_tensor_copy(t, NULL, TB_ORDER_C, 0, &copy), TB_ERR_UNSUPPORTED);
  assert_null(copy);
  tb_tensor_release(t);
  assert_int_equal(c.calls, 1);
}

/* Memory of a device nobody can reach (no backend, no device present, an id
 * past the devices present) is refused: nothing could read, copy or free it
 * through the library. The caller keeps ownership (no deleter call).
 * Host-accessible device types need no backend. */
static void from_array_refuses_memory_of_absent_devices(void **state) {
  (void)state;
  fake_devices_install();
  void *handle = (void *)(uintptr_t)0x1000;
  int64_t shape[1] = {4};
  counted c = {0};
  tb_tensor_t *t = NULL;
  /* ROCm, OpenCL-like handles of Metal, oneAPI, ...: no backend in any build. */
  const int32_t no_backend[] = {TB_DL_ROCM, TB_DL_METAL, TB_DL_ONEAPI, TB_DL_WEBGPU,
                                TB_DL_HEXAGON, TB_DL_MAIA, TB_DL_TRN, TB_DL_EXT_DEV};
  for (size_t i = 0; i < sizeof no_backend / sizeof *no_backend; i++) {
    DLDevice dev = {(DLDeviceType)no_backend[i], 0};
    assert_status(tb_from_array(handle, 0, F32, 1, shape, NULL, dev, 0, counting_deleter, &c, &t),
                  TB_ERR_DEVICE);
    char want[64];
    snprintf(want, sizeof want, "no %s device is present", tb_device_type_name(no_backend[i]));
    assert_error_mentions(want);
  }
  /* CUDA and OpenCL: refused exactly when no device is present. */
  const int32_t backed[] = {TB_DL_CUDA, TB_DL_OPENCL};
  for (size_t i = 0; i < sizeof backed / sizeof *backed; i++) {
    DLDevice dev = {(DLDeviceType)backed[i], 0};
    if (tb_device_count(backed[i]) > 0) continue; /* a real device: covered elsewhere */
    assert_status(tb_from_array(handle, 0, F32, 1, shape, NULL, dev, 0, counting_deleter, &c, &t),
                  TB_ERR_DEVICE);
    char want[64];
    snprintf(want, sizeof want, "no %s device is present", tb_device_type_name(backed[i]));
    assert_error_mentions(want);
  }
  /* A device id past those present. */
  DLDevice third = {(DLDeviceType)FAKE_ADDRESS_DEVICE, 2};
  assert_status(tb_from_array(handle, 0, F32, 1, shape, NULL, third, 0, counting_deleter, &c, &t),
                TB_ERR_DEVICE);
  assert_error_mentions("vpi:2 is not present (2 vpi devices found)");
  /* Empty tensors too: the device is what is missing, not the memory. */
  int64_t none[1] = {0};
  DLDevice rocm = {kDLROCM, 0};
  assert_status(tb_from_array(NULL, 0, F32, 1, none, NULL, rocm, 0, counting_deleter, &c, &t),
                TB_ERR_DEVICE);
  assert_null(t);
  assert_int_equal(c.calls, 0);
  /* Pinned, managed and ROCm host memory are host memory: no backend needed. */
  float buf[4] = {1, 2, 3, 4};
  const int32_t host[] = {TB_DL_CUDA_HOST, TB_DL_CUDA_MANAGED, TB_DL_ROCM_HOST};
  for (size_t i = 0; i < sizeof host / sizeof *host; i++) {
    DLDevice dev = {(DLDeviceType)host[i], 0};
    assert_ok(tb_from_array(buf, 0, F32, 1, shape, NULL, dev, 0, NULL, NULL, &t));
    assert_ptr_equal(tb_tensor_data(t), buf);
    tb_tensor_t *copy;
    assert_ok(tb_tensor_to(t, cpu(), NULL, TB_ORDER_C, 0, &copy)); /* read on the host */
    assert_true(((float *)tb_tensor_data(copy))[3] == 4.0f);
    tb_tensor_release(copy);
    tb_tensor_release(t);
  }
}

/*
 * Size-0 tensors are held to the same reach rule as the others, with each
 * extent 0 read as 1 (internal.h): otherwise their views compute offsets
 * and strides that overflow (select(t, 0, 4) = 4 * INT64_MAX).
 */
static void empty_tensors_refuse_strides_whose_reach_overflows(void **state) {
  (void)state;
  float buf[1];
  counted c = {0};
  tb_tensor_t *t = NULL;
  int64_t shape[2] = {5, 0};
  const int64_t bad[][2] = {{INT64_MAX, 1},
                            {INT64_MIN, 1},
                            {INT64_MAX / 4 + 1, 1}, /* 4 * stride overflows */
                            {(int64_t)1 << 59, 1}}; /* elements fit, bytes do not */
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    assert_status(
        tb_from_array(buf, 0, F32, 2, shape, bad[i], cpu(), 0, counting_deleter, &c, &t),
        TB_ERR_OVERFLOW);
    assert_error_mentions(i < 3 ? "strides[0]" : "byte extent");
    assert_null(t);
    assert_status(tb_from_array(NULL, 0, F32, 2, shape, bad[i], cpu(), 0, counting_deleter, &c, &t),
                  TB_ERR_OVERFLOW);
  }
  /* The same with the empty dimension first or elsewhere. */
  int64_t shape3[3] = {0, 3, 2};
  int64_t strides3[3] = {1, INT64_MAX / 2 + 1, 1};
  assert_status(tb_from_array(buf, 0, U8, 3, shape3, strides3, cpu(), 0, NULL, NULL, &t),
                TB_ERR_OVERFLOW);
  assert_error_mentions("strides[1]");
  assert_int_equal(c.calls, 0);
  /* Shapes whose non-zero extents overflow, as NumPy refuses them. */
  int64_t huge[3] = {0, (int64_t)1 << 62, 4};
  assert_status(tb_tensor_empty(F32, 3, huge, cpu(), TB_ORDER_C, &t), TB_ERR_OVERFLOW);
  assert_status(tb_tensor_empty(F32, 3, huge, cpu(), TB_ORDER_F, &t), TB_ERR_OVERFLOW);
  assert_status(tb_from_array(NULL, 0, F32, 3, huge, NULL, cpu(), 0, NULL, NULL, &t),
                TB_ERR_OVERFLOW);
  assert_null(t);
  /* The count of the non-zero extents too, strides 0 or not: a copy of the
   * tensor takes the C layout of its shape, which must fit (the fuzzer
   * found a {5, 0, 2^62} tensor with strides {1, 1, 0} that imported and
   * then could not be copied). */
  int64_t wide3[3] = {5, 0, (int64_t)1 << 62};
  int64_t zero_stride[3] = {1, 1, 0};
  assert_status(tb_from_array(NULL, 0, F32, 3, wide3, zero_stride, cpu(), 0, NULL, NULL, &t),
                TB_ERR_OVERFLOW);
  assert_error_mentions("shape[2]");
  int64_t big3[3] = {5, 0, (int64_t)1 << 58}; /* 5 * 2^58 * 4 bytes fit */
  assert_ok(tb_from_array(NULL, 0, F32, 3, big3, zero_stride, cpu(), 0, NULL, NULL, &t));
  tb_tensor_t *copy = NULL, *grown = NULL;
  assert_ok(tb_tensor_copy(t, NULL, TB_ORDER_C, 0, &copy));
  assert_int_equal(tb_tensor_numel(copy), 0);
  tb_tensor_release(copy);
  assert_ok(tb_tensor_copy(t, &(DLDataType){kDLFloat, 16, 1}, TB_ORDER_F, 0, &copy));
  tb_tensor_release(copy);
  /* An expand that would make such a shape is refused the same way. */
  assert_status(tb_tensor_expand(t, 4, (int64_t[]){64, 5, 0, (int64_t)1 << 58}, &grown),
                TB_ERR_OVERFLOW);
  assert_error_mentions("tensor_expand");
  assert_null(grown);
  tb_tensor_release(t);
  t = NULL;
  /* Only the strides of zero extents are free: no index multiplies them. */
  int64_t free_stride[2] = {1, INT64_MAX};
  assert_ok(tb_from_array(NULL, 0, F32, 2, shape, free_stride, cpu(), 0, NULL, NULL, &t));
  assert_int_equal(tb_tensor_strides(t)[1], INT64_MAX);
  tb_tensor_release(t);
  /* Large, representable reaches are fine, and so are extent-1 strides. */
  int64_t one[2] = {1, 0};
  int64_t wild[2] = {INT64_MIN, INT64_MAX};
  assert_ok(tb_from_array(NULL, 0, F64, 2, one, wild, cpu(), 0, NULL, NULL, &t));
  tb_tensor_release(t);
  int64_t fits[2] = {INT64_MAX / 4 / 4, 1}; /* 4 * stride * 4 bytes < 2^63 */
  assert_ok(tb_from_array(buf, 0, F32, 2, shape, fits, cpu(), 0, NULL, NULL, &t));
  tb_tensor_release(t);
}
static void readonly_tensor_refuses_writes(void **state) {
  (void)state;
  float buf[3] = {1, 2, 3};
  int64_t n = 3;
  tb_tensor_t *ro, *src;
  assert_ok(tb_from_array(buf, 0, F32, 1, &n, NULL, cpu(), TB_FLAG_READONLY, NULL, NULL, &ro));
  assert_true(tb_tensor_is_readonly(ro));
  float seven = 7.0f;
  assert_status(tb_tensor_fill(ro, &seven, F32), TB_ERR_READONLY);
  assert_ok(tb_tensor_full(F32, 1, &n, cpu(), TB_ORDER_C, &seven, F32, &src));
  assert_status(tb_tensor_copy_into(ro, src, 0), TB_ERR_READONLY);
  assert_true(buf[0] == 1.0f && buf[1] == 2.0f && buf[2] == 3.0f);
  /* A copy of a read-only tensor is writable. */
  tb_tensor_t *c;
  assert_ok(tb_tensor_copy(ro, NULL, TB_ORDER_C, 0, &c));
  assert_false(tb_tensor_is_readonly(c));
  tb_tensor_release(c);
  tb_tensor_release(src);
  tb_tensor_release(ro);
}

static void tensor_new_copies_and_is_independent(void **state) {
  (void)state;
  int64_t src[5] = {1, 2, 3, 4, 5};
  int64_t n = 5;
  tb_tensor_t *t;
  assert_ok(tb_tensor_new(src, I64, 1, &n, NULL, NULL, TB_ORDER_C, 0, &t));
  int64_t *data = tb_tensor_data(t);
  assert_ptr_not_equal(data, src);
  assert_memory_equal(data, src, sizeof src);
  src[0] = 100;
  assert_int_equal(data[0], 1);
  data[1] = -2;
  assert_int_equal(src[1], 2);
  assert_true(tb_dtype_equal(tb_tensor_dtype(t), I64));
  tb_tensor_release(t);
}

static void tensor_new_reads_strided_sources(void **state) {
  (void)state;
  /* The transpose of a 2x3 C array, described by strides. */
  int32_t src[6] = {0, 1, 2, 3, 4, 5};
  int64_t shape[2] = {3, 2};
  int64_t strides[2] = {1, 3};
  tb_tensor_t *t;
  assert_ok(tb_tensor_new(src, I32, 2, shape, strides, NULL, TB_ORDER_C, 0, &t));
  const int32_t expect[6] = {0, 3, 1, 4, 2, 5};
  assert_memory_equal(tb_tensor_data(t), expect, sizeof expect);
  tb_tensor_release(t);
  assert_ok(tb_tensor_new(src, I32, 2, shape, strides, NULL, TB_ORDER_F, 0, &t));
  assert_memory_equal(tb_tensor_data(t), src, sizeof src);
  assert_true(tb_tensor_is_contiguous(t, TB_ORDER_F));
  tb_tensor_release(t);
}

static void tensor_new_converts_dtype(void **state) {
  (void)state;
  int64_t src[6] = {1, -2, 3, 1LL << 40, 5, 6};
  int64_t shape[2] = {2, 3};
  DLDataType f32 = F32;
  tb_tensor_t *t;
  assert_ok(tb_tensor_new(src, I64, 2, shape, NULL, &f32, TB_ORDER_C, 0, &t));
  assert_true(tb_dtype_equal(tb_tensor_dtype(t), F32));
  const float *f = tb_tensor_data(t);
  for (int i = 0; i < 6; i++) assert_true(f[i] == (float)src[i]);
  assert_int_equal(tb_tensor_nbytes(t), 24);
  tb_tensor_release(t);
}

static void library_data_is_aligned(void **state) {
  (void)state;
  for (int64_t n = 1; n < 200; n += 37) {
    tb_tensor_t *t;
    assert_ok(tb_tensor_empty(U8, 1, &n, cpu(), TB_ORDER_C, &t));
    assert_int_equal((uintptr_t)tb_tensor_data(t) % TB_DATA_ALIGNMENT, 0);
    tb_tensor_release(t);
  }
}

static void zeros_and_full_fill_every_element(void **state) {
  (void)state;
  int64_t shape[2] = {3, 5};
  tb_tensor_t *z, *f;
  assert_ok(tb_tensor_zeros(F64, 2, shape, cpu(), TB_ORDER_F, &z));
  const double *zd = tb_tensor_data(z);
  for (int i = 0; i < 15; i++) assert_true(zd[i] == 0.0 && !signbit(zd[i]));
  int32_t seven = 7;
  assert_ok(tb_tensor_full(F32, 2, shape, cpu(), TB_ORDER_C, &seven, I32, &f));
  const float *fd = tb_tensor_data(f);
  for (int i = 0; i < 15; i++) assert_true(fd[i] == 7.0f);
  tb_tensor_release(z);
  tb_tensor_release(f);
}

static void zero_dim_tensor_holds_one_element(void **state) {
  (void)state;
  double v = 2.5;
  tb_tensor_t *t;
  assert_ok(tb_tensor_new(&v, F64, 0, NULL, NULL, NULL, TB_ORDER_C, 0, &t));
  assert_int_equal(tb_tensor_ndim(t), 0);
  assert_int_equal(tb_tensor_numel(t), 1);
  assert_int_equal(tb_tensor_nbytes(t), 8);
  assert_true(tb_tensor_is_contiguous(t, TB_ORDER_C));
  assert_true(tb_tensor_is_contiguous(t, TB_ORDER_F));
  void *p;
  assert_ok(tb_tensor_element_ptr(t, NULL, &p));
  assert_true(*(double *)p == 2.5);
  const DLTensor *dl = tb_tensor_dltensor(t);
  assert_int_equal(dl->ndim, 0);
  assert_non_null(dl->strides);
  tb_tensor_release(t);
}

static void size_zero_tensor_has_no_data(void **state) {
  (void)state;
  int64_t shape[3] = {4, 0, 3};
  tb_tensor_t *t, *c;
  assert_ok(tb_tensor_zeros(F32, 3, shape, cpu(), TB_ORDER_C, &t));
  assert_int_equal(tb_tensor_numel(t), 0);
  assert_int_equal(tb_tensor_nbytes(t), 0);
  assert_null(tb_tensor_data(t));
  assert_true(tb_tensor_is_contiguous(t, TB_ORDER_C));
  assert_true(tb_tensor_is_contiguous(t, TB_ORDER_F));
  assert_ok(tb_tensor_copy(t, NULL, TB_ORDER_F, 0, &c));
  assert_int_equal(tb_tensor_shape(c)[2], 3);
  /* Wrapping NULL is fine when there are no elements. */
  tb_tensor_t *w;
  assert_ok(tb_from_array(NULL, 0, F32, 3, shape, NULL, cpu(), 0, NULL, NULL, &w));
  tb_tensor_release(w);
  tb_tensor_release(c);
  tb_tensor_release(t);
}

static void dltensor_view_matches_the_tensor(void **state) {
  (void)state;
  int64_t shape[2] = {2, 3};
  tb_tensor_t *t, *v;
  assert_ok(tb_tensor_zeros(I16, 2, shape, cpu(), TB_ORDER_C, &t));
  assert_ok(tb_tensor_transpose(t, 0, 1, &v));
  const DLTensor *dl = tb_tensor_dltensor(v);
  assert_ptr_equal(dl->data, tb_tensor_base(t));
  assert_int_equal(dl->device.device_type, kDLCPU);
  assert_int_equal(dl->ndim, 2);
  assert_int_equal(dl->dtype.code, kDLInt);
  assert_int_equal(dl->dtype.bits, 16);
  assert_int_equal(dl->dtype.lanes, 1);
  assert_int_equal(dl->shape[0], 3);
  assert_int_equal(dl->strides[0], 1);
  assert_int_equal(dl->strides[1], 3);
  assert_int_equal(dl->byte_offset, 0);
  assert_ptr_equal(dl->shape, tb_tensor_shape(v));
  DLDataType d;
  DLDevice dev;
  tb_tensor_dtype_p(v, &d);
  tb_tensor_device_p(v, &dev);
  assert_true(tb_dtype_equal(d, I16));
  assert_int_equal(dev.device_type, kDLCPU);
  tb_tensor_release(v);
  tb_tensor_release(t);
}

static void element_ptr_checks_bounds(void **state) {
  (void)state;
  int64_t shape[2] = {2, 3};
  tb_tensor_t *t;
  assert_ok(tb_tensor_zeros(F32, 2, shape, cpu(), TB_ORDER_C, &t));
  void *p;
  int64_t ok[2] = {1, 2}, bad[2] = {1, 3}, neg[2] = {-1, 0};
  assert_ok(tb_tensor_element_ptr(t, ok, &p));
  assert_ptr_equal(p, (float *)tb_tensor_data(t) + 5);
  assert_status(tb_tensor_element_ptr(t, bad, &p), TB_ERR_INDEX);
  assert_error_mentions("index[1] = 3");
  assert_status(tb_tensor_element_ptr(t, neg, &p), TB_ERR_INDEX);
  tb_tensor_release(t);
}

static void copy_into_converts_between_layouts(void **state) {
  (void)state;
  int64_t shape[2] = {3, 4};
  tb_tensor_t *a, *b;
  int32_t src[12];
  for (int i = 0; i < 12; i++) src[i] = i * 3 - 7;
  assert_ok(tb_tensor_new(src, I32, 2, shape, NULL, NULL, TB_ORDER_C, 0, &a));
  assert_ok(tb_tensor_empty(F64, 2, shape, cpu(), TB_ORDER_F, &b));
  assert_ok(tb_tensor_copy_into(b, a, 0));
  for (int64_t i = 0; i < 3; i++) {
    for (int64_t j = 0; j < 4; j++) {
      int64_t idx[2] = {i, j};
      void *p;
      assert_ok(tb_tensor_element_ptr(b, idx, &p));
      assert_true(*(double *)p == (double)src[i * 4 + j]);
    }
  }
  tb_tensor_release(a);
  tb_tensor_release(b);
}

static void packed_subbyte_dtypes_are_storage_only(void **state) {
  (void)state;
  DLDataType fp4;
  assert_ok(tb_dtype_from_name("float4_e2m1fn", &fp4));
  int64_t shape[2] = {3, 5}; /* 15 elements of 4 bits: 8 bytes */
  tb_tensor_t *t, *c, *v;
  assert_ok(tb_tensor_zeros(fp4, 2, shape, cpu(), TB_ORDER_C, &t));
  assert_int_equal(tb_tensor_nbytes(t), 8);
  memset(tb_tensor_data(t), 0x5a, 8);
  assert_ok(tb_tensor_copy(t, NULL, TB_ORDER_C, 0, &c));
  assert_memory_equal(tb_tensor_data(c), tb_tensor_data(t), 8);
  assert_status(tb_tensor_transpose(t, 0, 1, &v), TB_ERR_DTYPE);
  assert_error_mentions("float4_e2m1fn");
  DLDataType f32 = F32;
  assert_status(tb_tensor_copy(t, &f32, TB_ORDER_C, 0, &v), TB_ERR_DTYPE);
  assert_status(tb_tensor_empty(fp4, 2, shape, cpu(), TB_ORDER_F, &v), TB_ERR_LAYOUT);
  tb_tensor_release(c);
  tb_tensor_release(t);
}

static void invalid_arguments_are_reported(void **state) {
  (void)state;
  int64_t n = 2;
  tb_tensor_t *t = NULL;
  assert_status(tb_tensor_empty(F32, 1, &n, cpu(), (tb_order)7, &t), TB_ERR_INVALID);
  assert_error_mentions("order = 7");
  assert_status(tb_tensor_empty(F32, 1, &n, (DLDevice){kDLROCM, 0}, TB_ORDER_C, &t),
                TB_ERR_DEVICE);
  assert_error_mentions("rocm:0");
  assert_status(tb_tensor_copy(NULL, NULL, TB_ORDER_C, 0, &t), TB_ERR_INVALID);
  assert_ok(tb_tensor_zeros(F32, 1, &n, cpu(), TB_ORDER_C, &t));
  assert_status(tb_tensor_copy_into(t, t, 0x10), TB_ERR_INVALID);
  assert_error_mentions("cast_flags");
  assert_status(tb_tensor_fill(t, NULL, F32), TB_ERR_INVALID);
  tb_tensor_release(NULL); /* accepted and ignored */
  tb_tensor_release(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(from_array_shares_memory_both_ways),
      cmocka_unit_test(from_array_deleter_runs_once_at_last_release),
      cmocka_unit_test(from_array_failure_leaves_ownership_with_caller),
      cmocka_unit_test(from_array_copies_shape_and_strides),
      cmocka_unit_test(from_array_null_strides_mean_c_order),
      cmocka_unit_test(from_array_negative_strides_reach_below_data),
      cmocka_unit_test(from_array_honours_byte_offset),
      cmocka_unit_test(from_array_rejects_bad_input),
      cmocka_unit_test(from_array_rejects_overflowing_extents),
      cmocka_unit_test(from_array_accepts_device_pointers_without_touching_them),
      cmocka_unit_test(from_array_refuses_memory_of_absent_devices),
      cmocka_unit_test(empty_tensors_refuse_strides_whose_reach_overflows),
      cmocka_unit_test(readonly_tensor_refuses_writes),
      cmocka_unit_test(tensor_new_copies_and_is_independent),
      cmocka_unit_test(tensor_new_reads_strided_sources),
      cmocka_unit_test(tensor_new_converts_dtype),
      cmocka_unit_test(library_data_is_aligned),
      cmocka_unit_test(zeros_and_full_fill_every_element),
      cmocka_unit_test(zero_dim_tensor_holds_one_element),
      cmocka_unit_test(size_zero_tensor_has_no_data),
      cmocka_unit_test(dltensor_view_matches_the_tensor),
      cmocka_unit_test(element_ptr_checks_bounds),
      cmocka_unit_test(copy_into_converts_between_layouts),
      cmocka_unit_test(packed_subbyte_dtypes_are_storage_only),
      cmocka_unit_test(invalid_arguments_are_reported),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
