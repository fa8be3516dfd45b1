/*
 * The CUDA backend on a real GPU: transfers (pageable, pinned, managed),
 * the device kernels' conversions against the CPU engine bit for bit, strided
 * device copies, the DLPack stream exchange on a real stream, pointer
 * classification, imported device memory and context hygiene.
 *
 * Every test skips, with the reason printed once, when tb_device_count(kDLCUDA)
 * is 0 (no backend in this build, no driver, or no device). The test talks to
 * the driver itself for what the library does not offer (streams, raw
 * allocations): it opens libcuda.so.1 with dlopen like the library does, so
 * it builds and runs without any CUDA library or header.
 *
 * Against the stand-in driver (src/backends/cuda/emu, the `cuda_emulated`
 * test), queued work runs late on a worker thread, so a missing
 * synchronisation in the library reads stale data and fails a test; the
 * stand-in's misuse reports (memory freed while queued work uses it) fail the
 * test that made them (no_driver_misuse), and a few tests use its
 * fake_cuda_configure to shrink the device or make a call fail. With
 * TB_EXPECT_CUDA set (not "0"), finding no device is a failure rather than a
 * skip; with TB_EXPECT_CUDA=emulated, so is finding a driver other than the
 * stand-in.
 *
 * An argument, when given, is a cmocka test-name filter ("pointer*").
 */
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../src/backends/cuda/driver.h"
#include "support.h"
#include "tensorbridge/backend.h"

/* ---- the test's own handle on the driver ---- */

#define T_CU_NOT_READY 600u
#define T_CU_STREAM_NON_BLOCKING 0x1u
#define T_CU_STREAM_WAIT_VALUE_GEQ 0x0u

#define T_CU_FUNCTIONS(X)                                                                \
  X(init, cuInit, (unsigned int flags))                                                  \
  X(device_get, cuDeviceGet, (tb_cu_device * device, int ordinal))                       \
  X(primary_retain, cuDevicePrimaryCtxRetain, (tb_cu_context * ctx, tb_cu_device dev))   \
  X(primary_release, cuDevicePrimaryCtxRelease_v2, (tb_cu_device dev))                   \
  X(ctx_push, cuCtxPushCurrent_v2, (tb_cu_context ctx))                                  \
  X(ctx_pop, cuCtxPopCurrent_v2, (tb_cu_context * ctx))                                  \
  X(ctx_get_current, cuCtxGetCurrent, (tb_cu_context * ctx))                             \
  X(stream_create, cuStreamCreate, (tb_cu_stream * s, unsigned int flags))               \
  X(stream_destroy, cuStreamDestroy_v2, (tb_cu_stream s))                                \
  X(stream_synchronize, cuStreamSynchronize, (tb_cu_stream s))                           \
  X(stream_wait_value32, cuStreamWaitValue32_v2,                                         \
    (tb_cu_stream s, tb_cu_ptr addr, uint32_t value, unsigned int flags))                \
  X(event_create, cuEventCreate, (tb_cu_event * e, unsigned int flags))                  \
  X(event_record, cuEventRecord, (tb_cu_event e, tb_cu_stream s))                        \
  X(event_query, cuEventQuery, (tb_cu_event e))                                          \
  X(event_destroy, cuEventDestroy_v2, (tb_cu_event e))                                   \
  X(mem_alloc, cuMemAlloc_v2, (tb_cu_ptr * p, size_t n))                                 \
  X(mem_free, cuMemFree_v2, (tb_cu_ptr p))                                               \
  X(mem_host_alloc, cuMemHostAlloc, (void **p, size_t n, unsigned int flags))            \
  X(mem_free_host, cuMemFreeHost, (void *p))                                             \
  X(mem_alloc_managed, cuMemAllocManaged, (tb_cu_ptr * p, size_t n, unsigned int flags)) \
  X(mem_get_info, cuMemGetInfo_v2, (size_t * free_bytes, size_t * total_bytes))          \
  X(memcpy_dtoh_async, cuMemcpyDtoHAsync_v2, (void *dst, tb_cu_ptr src, size_t n, tb_cu_stream s))

#define T_CU_FIELD(field, symbol, params) tb_cu_result(*field) params;
static struct { T_CU_FUNCTIONS(T_CU_FIELD) } cu;
#undef T_CU_FIELD

static bool g_have_cuda;   /* the library sees a device */
static bool g_have_driver; /* and this test reached the driver too */
static char g_reason[512];
static tb_cu_context g_ctx; /* device 0's primary context */

/* The stand-in driver's test hooks (fake_libcuda.cpp); NULL on a real one. */
static long long (*fake_configure)(const char *key, long long value);
static unsigned long long (*fake_misuses)(void);

static bool load_test_driver(void) {
  void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) return false;
#define T_CU_LOAD(field, symbol, params) \
  {                                      \
    void *sym = dlsym(lib, #symbol);     \
    if (sym == NULL) return false;       \
    memcpy(&cu.field, &sym, sizeof sym); \
  }
  T_CU_FUNCTIONS(T_CU_LOAD)
#undef T_CU_LOAD
  void *hook = dlsym(lib, "fake_cuda_configure");
  memcpy(&fake_configure, &hook, sizeof hook);
  hook = dlsym(lib, "fake_cuda_misuses");
  memcpy(&fake_misuses, &hook, sizeof hook);
  tb_cu_device dev;
  return cu.init(0) == TB_CU_SUCCESS && cu.device_get(&dev, 0) == TB_CU_SUCCESS &&
         cu.primary_retain(&g_ctx, dev) == TB_CU_SUCCESS;
}

static void probe_cuda(void) {
  if (tb_get_backend(kDLCUDA) == NULL) {
    (void)snprintf(g_reason, sizeof g_reason,
                   "this build of libtensorbridge has no CUDA backend "
                   "(-Dcuda=disabled, or nvcc was not found)");
    return;
  }
  if (tb_device_count(kDLCUDA) == 0) {
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
      const char *why = dlerror();
      (void)snprintf(g_reason, sizeof g_reason, "libcuda.so.1 does not load (%s)",
                     why != NULL ? why : "no reason given");
    } else {
      (void)snprintf(g_reason, sizeof g_reason,
                     "the CUDA driver loads but reports no usable device "
                     "(tb_device_count(kDLCUDA) == 0)");
    }
    return;
  }
  g_have_cuda = true;
  g_have_driver = load_test_driver();
}

#define REQUIRE_CUDA()                                                                        \
  do {                                                                                        \
    if (!g_have_cuda) skip();                                                                 \
    if (!g_have_driver) {                                                                     \
      print_error("the library sees a GPU but this test could not open the driver itself\n"); \
      fail();                                                                                 \
    }                                                                                         \
  } while (0)

/* For tests of what only the stand-in can arrange (a failing call, a
 * smaller device). */
#define REQUIRE_STAND_IN()                                                          \
  do {                                                                              \
    if (fake_configure == NULL || fake_misuses == NULL) {                           \
      print_message("skipping: needs the stand-in driver's fake_cuda_configure\n"); \
      skip();                                                                       \
    }                                                                               \
  } while (0)

#define CU_OK(expr)                                                     \
  do {                                                                  \
    tb_cu_result cu_r_ = (expr);                                        \
    if (cu_r_ != TB_CU_SUCCESS) {                                       \
      print_error("%s returned CUresult %u\n", #expr, (unsigned)cu_r_); \
      fail();                                                           \
    }                                                                   \
  } while (0)

/* After every test: the stand-in's misuse reports (printed as they happen,
 * "fake libcuda: MISUSE: ...") fail the test that made them, and its
 * configuration goes back to the defaults. */
static int no_driver_misuse(void **state) {
  (void)state;
  if (fake_configure == NULL || fake_misuses == NULL) return 0;
  (void)fake_configure("reset", 0);
  unsigned long long n = fake_misuses();
  if (n != 0) {
    print_error("the stand-in driver reported %llu misuse(s) of the driver during this test\n", n);
    return -1;
  }
  return 0;
}

static void enter_ctx(void) { CU_OK(cu.ctx_push(g_ctx)); }
static void leave_ctx(void) {
  tb_cu_context popped;
  CU_OK(cu.ctx_pop(&popped));
}

/* ---- helpers ---- */

static DLDevice gpu(void) { return (DLDevice){kDLCUDA, 0}; }

static const DLDataType *castable(int k) {
  static DLDataType kinds[15];
  static bool ready = false;
  if (!ready) {
    const DLDataType list[15] = {{TB_DL_BOOL, 8, 1}, {kDLInt, 8, 1},      {kDLInt, 16, 1},
                                 {kDLInt, 32, 1},    {kDLInt, 64, 1},     {kDLUInt, 8, 1},
                                 {kDLUInt, 16, 1},   {kDLUInt, 32, 1},    {kDLUInt, 64, 1},
                                 {kDLFloat, 16, 1},  {kDLBfloat, 16, 1},  {kDLFloat, 32, 1},
                                 {kDLFloat, 64, 1},  {kDLComplex, 64, 1}, {kDLComplex, 128, 1}};
    memcpy(kinds, list, sizeof kinds);
    ready = true;
  }
  return &kinds[k];
}

static uint64_t g_rng = UINT64_C(0x243F6A8885A308D3);
static uint64_t rnd(void) { /* xorshift64* */
  g_rng ^= g_rng >> 12;
  g_rng ^= g_rng << 25;
  g_rng ^= g_rng >> 27;
  return g_rng * UINT64_C(2685821657736338717);
}
static double rnd_unit(void) { return (double)(rnd() >> 11) * 0x1p-53; }

static tb_tensor_t *to(const tb_tensor_t *t, DLDevice device, const DLDataType *dtype) {
  tb_tensor_t *out = NULL;
  assert_ok(tb_tensor_to(t, device, dtype, TB_ORDER_C, TB_CAST_DISCARD_IMAG, &out));
  return out;
}

static tb_tensor_t *host_empty(DLDataType dtype, int32_t ndim, const int64_t *shape) {
  tb_tensor_t *t = NULL;
  assert_ok(tb_tensor_empty(dtype, ndim, shape, cpu(), TB_ORDER_C, &t));
  return t;
}

/* Host tensor of n elements of `dtype` whose bytes are random. */
static tb_tensor_t *random_host(DLDataType dtype, int64_t n) {
  tb_tensor_t *t = host_empty(dtype, 1, &n);
  unsigned char *p = tb_tensor_data(t);
  for (int64_t i = 0; i < tb_tensor_nbytes(t); i++) p[i] = (unsigned char)(rnd() >> 56);
  return t;
}

static void assert_same_bytes(const tb_tensor_t *a, const tb_tensor_t *b) {
  assert_int_equal(tb_tensor_nbytes(a), tb_tensor_nbytes(b));
  assert_true(tb_tensor_is_contiguous(a, TB_ORDER_C) && tb_tensor_is_contiguous(b, TB_ORDER_C));
  assert_memory_equal(tb_tensor_data(a), tb_tensor_data(b), (size_t)tb_tensor_nbytes(a));
}

/* Writes `values` (n of src_dtype) converted by the CPU into dst's elements
 * [at, at + n), dst being a 1-D host tensor. */
static void put_converted(tb_tensor_t *dst, int64_t at, const void *values, DLDataType src_dtype,
                          int64_t n) {
  DLDataType dtype = tb_tensor_dtype(dst);
  tb_tensor_t *t = NULL;
  assert_ok(
      tb_tensor_new(values, src_dtype, 1, &n, NULL, &dtype, TB_ORDER_C, TB_CAST_DISCARD_IMAG, &t));
  size_t item = tb_dtype_itemsize(dtype);
  memcpy((char *)tb_tensor_data(dst) + (size_t)at * item, tb_tensor_data(t), (size_t)n * item);
  tb_tensor_release(t);
}

static double bits_to_double(uint64_t b) {
  double d;
  memcpy(&d, &b, sizeof d);
  return d;
}

#define N_DOUBLE_SPECIALS 64
#define N_INT_SPECIALS 48

/* Values at the edges of every conversion rule: signed zeros, infinities,
 * NaNs with payloads, integer range limits, rounding ties of float16,
 * bfloat16 and float32, subnormals. */
static int double_specials(double *v) {
  const double list[] = {0.0,
                         -0.0,
                         INFINITY,
                         -INFINITY,
                         1.0,
                         -1.0,
                         0.5,
                         1.5,
                         2.5,
                         -2.5,
                         127.5,
                         128.0,
                         -128.5,
                         -129.0,
                         255.5,
                         256.0,
                         32767.5,
                         65504.0,
                         65519.99,
                         65520.0,
                         65536.0,
                         2147483647.0,
                         2147483647.5,
                         2147483648.0,
                         -2147483648.0,
                         -2147483649.0,
                         4294967295.0,
                         4294967296.0,
                         0x1p63,
                         -0x1p63,
                         0x1p64,
                         1.8e19,
                         0x1.fffffep127,
                         3.5e38,
                         1e-8,
                         0x1p-24,
                         0x1.8p-25,
                         0x1p-25,
                         0x1p-149,
                         0x1p-150,
                         1e-310,
                         0x1.fffffffffffffp1023,
                         1.0 + 0x1p-11,
                         1.0 + 0x3p-12,
                         1.0 + 0x1p-8,
                         1.0 + 0x3p-9,
                         0.1,
                         -0.1,
                         3.14159,
                         1e10,
                         -1e10,
                         16777217.0,
                         0x1.000001p0,
                         0x1.0000010000001p0,
                         -65505.0,
                         0x1.ffcp15 + 16.0};
  int n = (int)(sizeof list / sizeof list[0]);
  memcpy(v, list, sizeof list);
  v[n++] = bits_to_double(UINT64_C(0x7FF8000000000000)); /* quiet NaN */
  v[n++] = bits_to_double(UINT64_C(0xFFF8000000000123)); /* negative, payload */
  v[n++] = bits_to_double(UINT64_C(0x7FF0000000000001)); /* signalling */
  v[n++] = bits_to_double(UINT64_C(0x7FF4000000000000));
  return n;
}

static int int_specials(int64_t *v) {
  const int64_t list[] = {0,
                          1,
                          -1,
                          127,
                          128,
                          -128,
                          -129,
                          255,
                          256,
                          32767,
                          32768,
                          -32768,
                          65504,
                          65519,
                          65520,
                          65535,
                          65536,
                          2047,
                          2049,
                          2051,
                          4097,
                          16777217,
                          16777219,
                          INT32_MAX,
                          INT32_MIN,
                          (int64_t)UINT32_MAX,
                          (INT64_C(1) << 53) + 1,
                          (INT64_C(1) << 60) + (INT64_C(1) << 52) + 1,
                          (INT64_C(1) << 60) + (INT64_C(1) << 52),
                          INT64_MAX,
                          INT64_MIN,
                          INT64_MIN + 1,
                          -(INT64_C(1) << 60) - (INT64_C(1) << 52) - 1,
                          (INT64_C(1) << 62) + (INT64_C(1) << 38) + 1,
                          (INT64_C(1) << 62) + (INT64_C(1) << 38),
                          (INT64_C(1) << 40) + (INT64_C(1) << 32) + 1};
  memcpy(v, list, sizeof list);
  return (int)(sizeof list / sizeof list[0]);
}

/* n elements of dtype: the specials, moderate random values (where the
 * integer and rounding rules bite), then random bits. */
static tb_tensor_t *conversion_source(DLDataType dtype, int64_t n) {
  tb_tensor_t *t = random_host(dtype, n);
  double d[N_DOUBLE_SPECIALS];
  int64_t k[N_INT_SPECIALS];
  int nd = double_specials(d), nk = int_specials(k);
  put_converted(t, 0, d, F64, nd);
  put_converted(t, nd, k, I64, nk);
  int64_t at = nd + nk, moderate = n / 2 - at;
  double *m = malloc((size_t)moderate * sizeof *m);
  assert_non_null(m);
  static const double scale[] = {300.0, 70000.0, 0x1p33, 0x1p65, 4.0};
  for (int64_t i = 0; i < moderate; i++) {
    double s = scale[rnd() % 5];
    m[i] = (rnd_unit() * 2.0 - 1.0) * s;
    if (i % 7 == 0) m[i] = floor(m[i]) + 0.5; /* ties */
  }
  put_converted(t, at, m, F64, moderate);
  free(m);
  return t;
}

/* Element-wise, bit for bit (NaN payloads included: the CPU engine makes
 * every converted NaN quiet and keeps the rest of its bits, and so do the
 * kernels); the first mismatches are printed with their source bytes. */
static void assert_converted_equal(const tb_tensor_t *expect, const tb_tensor_t *got,
                                   const tb_tensor_t *src, const char *what) {
  size_t item = tb_dtype_itemsize(tb_tensor_dtype(expect));
  size_t src_item = tb_dtype_itemsize(tb_tensor_dtype(src));
  const unsigned char *e = tb_tensor_data(expect), *g = tb_tensor_data(got),
                      *s = tb_tensor_data(src);
  int64_t n = tb_tensor_numel(expect), bad = 0;
  assert_int_equal(n, tb_tensor_numel(got));
  for (int64_t i = 0; i < n; i++) {
    size_t at = (size_t)i * item;
    if (memcmp(e + at, g + at, item) == 0) continue;
    if (bad++ < 8) {
      print_error("%s: element %lld: src", what, (long long)i);
      for (size_t b = 0; b < src_item; b++) print_error(" %02x", s[(size_t)i * src_item + b]);
      print_error("; cpu");
      for (size_t b = 0; b < item; b++) print_error(" %02x", e[at + b]);
      print_error("; gpu");
      for (size_t b = 0; b < item; b++) print_error(" %02x", g[at + b]);
      print_error("\n");
    }
  }
  if (bad != 0) {
    print_error("%s: %lld elements differ\n", what, (long long)bad);
    fail();
  }
}

/* ---- tests ---- */

static void registry_reports_cuda(void **state) {
  (void)state;
  REQUIRE_CUDA();
  const tb_device_vtable *b = tb_get_backend(kDLCUDA);
  assert_non_null(b);
  assert_string_equal(b->name, "cuda");
  assert_non_null(b->copy_strided);
  assert_non_null(b->stream_wait);
  assert_true(tb_device_available(kDLCUDA));
  assert_int_equal(tb_device_count(kDLCUDAHost), tb_device_count(kDLCUDA));
  assert_int_equal(tb_device_count(kDLCUDAManaged), tb_device_count(kDLCUDA));
  /* A device past the last one is refused by the core with the count. */
  int64_t n = 4;
  tb_tensor_t *t = NULL;
  DLDevice absent = {kDLCUDA, tb_device_count(kDLCUDA)};
  assert_status(tb_tensor_empty(F32, 1, &n, absent, TB_ORDER_C, &t), TB_ERR_DEVICE);
  assert_error_mentions("not present");
}

static void every_dtype_round_trips(void **state) {
  (void)state;
  REQUIRE_CUDA();
  for (int k = 0; k < 15; k++) {
    tb_tensor_t *h = random_host(*castable(k), 1000 + k);
    tb_tensor_t *d = to(h, gpu(), NULL);
    tb_tensor_t *d2 = NULL;
    assert_ok(tb_tensor_copy(d, NULL, TB_ORDER_C, 0, &d2)); /* device to device */
    tb_tensor_t *back = to(d2, cpu(), NULL);
    assert_same_bytes(h, back);
    tb_tensor_release(back);
    tb_tensor_release(d2);
    tb_tensor_release(d);
    tb_tensor_release(h);
  }
  /* float8 copies only to itself, bit for bit, through the move kernels. */
  DLDataType f8 = {TB_DL_FLOAT8_E4M3FN, 8, 1};
  int64_t shape[2] = {33, 17};
  tb_tensor_t *h = random_host(f8, 33 * 17), *h2 = NULL, *d, *dtr = NULL, *dc = NULL, *back,
              *ht = NULL, *hc = NULL;
  assert_ok(tb_tensor_reshape(h, 2, shape, &h2));
  d = to(h2, gpu(), NULL);
  assert_ok(tb_tensor_transpose(d, 0, 1, &dtr));
  assert_ok(tb_tensor_copy(dtr, NULL, TB_ORDER_C, 0, &dc));
  back = to(dc, cpu(), NULL);
  assert_ok(tb_tensor_transpose(h2, 0, 1, &ht));
  assert_ok(tb_tensor_copy(ht, NULL, TB_ORDER_C, 0, &hc));
  assert_same_bytes(hc, back);
  DLDataType f32 = F32;
  assert_status(tb_tensor_copy(d, &f32, TB_ORDER_C, 0, &dc), TB_ERR_DTYPE);
  tb_tensor_release(hc);
  tb_tensor_release(ht);
  tb_tensor_release(back);
  tb_tensor_release(dc);
  tb_tensor_release(dtr);
  tb_tensor_release(d);
  tb_tensor_release(h2);
  tb_tensor_release(h);
}

/* Every (source, target) pair of the 15 castable dtypes, three ways: on the
 * device (kernel), host -> device with the conversion, device -> host with
 * the conversion; each against the CPU engine. */
static void kernel_casts_match_the_cpu(void **state) {
  (void)state;
  REQUIRE_CUDA();
  const int64_t n = 8192;
  char what[96];
  for (int s = 0; s < 15; s++) {
    DLDataType sd = *castable(s);
    tb_tensor_t *h = conversion_source(sd, n);
    tb_tensor_t *d = to(h, gpu(), NULL);
    for (int t = 0; t < 15; t++) {
      DLDataType td = *castable(t);
      tb_tensor_t *expect = to(h, cpu(), &td);
      tb_tensor_t *dd = NULL;
      assert_ok(tb_tensor_copy(d, &td, TB_ORDER_C, TB_CAST_DISCARD_IMAG, &dd));
      tb_tensor_t *got = to(dd, cpu(), NULL);
      (void)snprintf(what, sizeof what, "device %s -> %s", tb_dtype_name(sd), tb_dtype_name(td));
      assert_converted_equal(expect, got, h, what);
      tb_tensor_release(got);
      tb_tensor_release(dd);

      tb_tensor_t *up = to(h, gpu(), &td);
      got = to(up, cpu(), NULL);
      (void)snprintf(what, sizeof what, "upload %s -> %s", tb_dtype_name(sd), tb_dtype_name(td));
      assert_converted_equal(expect, got, h, what);
      tb_tensor_release(got);
      tb_tensor_release(up);

      got = to(d, cpu(), &td);
      (void)snprintf(what, sizeof what, "download %s -> %s", tb_dtype_name(sd), tb_dtype_name(td));
      assert_converted_equal(expect, got, h, what);
      tb_tensor_release(got);
      tb_tensor_release(expect);
    }
    tb_tensor_release(d);
    tb_tensor_release(h);
  }
  /* complex -> real still needs the flag on the device. */
  DLDataType c64 = *castable(13), f32 = F32;
  tb_tensor_t *h = random_host(c64, 8), *d = to(h, gpu(), NULL), *out = NULL;
  assert_status(tb_tensor_copy(d, &f32, TB_ORDER_C, 0, &out), TB_ERR_DTYPE);
  assert_error_mentions("TB_CAST_DISCARD_IMAG");
  assert_null(out);
  tb_tensor_release(d);
  tb_tensor_release(h);
}

/* Runs `view` on a CPU tensor and on its device copy, copies each to a fresh
 * tensor of `dtype` in `order` on its own side, and compares. */
typedef tb_status (*view_fn)(const tb_tensor_t *src, tb_tensor_t **out);

static void check_view_copy(tb_tensor_t *host, view_fn view, DLDataType dtype, tb_order order,
                            const char *what) {
  tb_tensor_t *dev = to(host, gpu(), NULL), *hv = NULL, *dv = NULL, *hc = NULL, *dc = NULL;
  assert_ok(view(host, &hv));
  assert_ok(view(dev, &dv));
  assert_ok(tb_tensor_copy(hv, &dtype, order, 0, &hc));
  assert_ok(tb_tensor_copy(dv, &dtype, order, 0, &dc));
  tb_tensor_t *back = NULL;
  assert_ok(tb_tensor_to(dc, cpu(), NULL, order, 0, &back));
  assert_int_equal(tb_tensor_nbytes(hc), tb_tensor_nbytes(back));
  if (memcmp(tb_tensor_data(hc), tb_tensor_data(back), (size_t)tb_tensor_nbytes(hc)) != 0) {
    print_error("%s: the device copy differs from the CPU's\n", what);
    fail();
  }
  /* The same view uploaded from the host (strided upload with conversion). */
  tb_tensor_t *up = NULL, *up_back = NULL;
  assert_ok(tb_tensor_to(hv, gpu(), &dtype, order, 0, &up));
  assert_ok(tb_tensor_to(up, cpu(), NULL, order, 0, &up_back));
  if (memcmp(tb_tensor_data(hc), tb_tensor_data(up_back), (size_t)tb_tensor_nbytes(hc)) != 0) {
    print_error("%s: the strided upload differs from the CPU's copy\n", what);
    fail();
  }
  /* And downloaded from the device view (strided download with conversion). */
  tb_tensor_t *down = NULL;
  assert_ok(tb_tensor_to(dv, cpu(), &dtype, order, 0, &down));
  if (memcmp(tb_tensor_data(hc), tb_tensor_data(down), (size_t)tb_tensor_nbytes(hc)) != 0) {
    print_error("%s: the strided download differs from the CPU's copy\n", what);
    fail();
  }
  tb_tensor_release(down);
  tb_tensor_release(up_back);
  tb_tensor_release(up);
  tb_tensor_release(back);
  tb_tensor_release(dc);
  tb_tensor_release(hc);
  tb_tensor_release(dv);
  tb_tensor_release(hv);
  tb_tensor_release(dev);
}

static tb_status view_transpose(const tb_tensor_t *t, tb_tensor_t **out) {
  return tb_tensor_transpose(t, 0, 1, out);
}
static tb_status view_reverse_step3(const tb_tensor_t *t, tb_tensor_t **out) {
  return tb_tensor_slice(t, 0, INT64_MAX, INT64_MIN, -3, out);
}
static tb_status view_permute(const tb_tensor_t *t, tb_tensor_t **out) {
  const int32_t perm[3] = {2, 0, 1};
  return tb_tensor_permute(t, perm, out);
}
static tb_status view_broadcast(const tb_tensor_t *t, tb_tensor_t **out) {
  const int64_t shape[2] = {300, -1};
  return tb_tensor_expand(t, 2, shape, out);
}
static tb_status view_inner_slice(const tb_tensor_t *t, tb_tensor_t **out) {
  tb_tensor_t *a = NULL;
  tb_status st = tb_tensor_slice(t, 1, 3, 40, 2, &a);
  if (st == TB_OK) st = tb_tensor_slice(a, 0, INT64_MAX, INT64_MIN, -1, out);
  tb_tensor_release(a);
  return st;
}
/* 13 dimensions of 2 in reverse order: nothing merges, more than the
 * kernels take; the core stages this one through the host. */
static tb_status view_reverse_13(const tb_tensor_t *t, tb_tensor_t **out) {
  int32_t perm[13];
  for (int i = 0; i < 13; i++) perm[i] = 12 - i;
  return tb_tensor_permute(t, perm, out);
}

static tb_tensor_t *host_iota(DLDataType dtype, int32_t ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int32_t i = 0; i < ndim; i++) n *= shape[i];
  double *v = malloc((size_t)n * sizeof *v);
  assert_non_null(v);
  for (int64_t i = 0; i < n; i++) v[i] = (double)(i % 1999) - 700.25;
  tb_tensor_t *t = NULL;
  assert_ok(tb_tensor_new(v, F64, ndim, shape, NULL, &dtype, TB_ORDER_C, 0, &t));
  free(v);
  return t;
}

static void strided_device_copies_match_the_cpu(void **state) {
  (void)state;
  REQUIRE_CUDA();
  DLDataType f16 = {kDLFloat, 16, 1}, bf16 = {kDLBfloat, 16, 1};
  int64_t s2[2] = {37, 1000}, s1 = 100003, s3[3] = {7, 11, 513}, b2[2] = {1, 5};
  int64_t s13[13];
  for (int i = 0; i < 13; i++) s13[i] = 2;
  tb_tensor_t *t;

  t = host_iota(F32, 2, s2);
  check_view_copy(t, view_transpose, F32, TB_ORDER_C, "transpose f32");
  check_view_copy(t, view_transpose, F64, TB_ORDER_C, "transpose f32 -> f64");
  check_view_copy(t, view_inner_slice, f16, TB_ORDER_F, "sliced f32 -> f16, F order");
  tb_tensor_release(t);

  t = host_iota(I16, 1, &s1);
  check_view_copy(t, view_reverse_step3, F32, TB_ORDER_C, "reversed step -3 i16 -> f32");
  check_view_copy(t, view_reverse_step3, I16, TB_ORDER_C, "reversed step -3 i16");
  tb_tensor_release(t);

  t = host_iota(U8, 3, s3);
  check_view_copy(t, view_permute, I32, TB_ORDER_F, "permuted u8 -> i32, F order");
  tb_tensor_release(t);

  t = host_iota(f16, 2, b2);
  check_view_copy(t, view_broadcast, bf16, TB_ORDER_C, "broadcast f16 -> bf16");
  tb_tensor_release(t);

  t = host_iota(I32, 13, s13);
  check_view_copy(t, view_reverse_13, I32, TB_ORDER_C, "13-D reversed i32 (staged)");
  check_view_copy(t, view_reverse_13, F64, TB_ORDER_C, "13-D reversed i32 -> f64 (staged)");
  tb_tensor_release(t);
}

/* A kernel writing into a strided destination leaves the gaps alone; so does
 * a download into a host destination with gaps (staged by the core). */
static void strided_destinations_keep_their_gaps(void **state) {
  (void)state;
  REQUIRE_CUDA();
  int64_t n = 1000, half = 500;
  tb_tensor_t *h = host_iota(F64, 1, &n), *src = host_iota(F32, 1, &half);
  tb_tensor_t *d = to(h, gpu(), NULL), *dsrc = to(src, gpu(), NULL), *dv = NULL, *hv = NULL;
  assert_ok(tb_tensor_slice(d, 0, 0, n, 2, &dv));
  assert_ok(tb_tensor_slice(h, 0, 0, n, 2, &hv));
  assert_ok(tb_tensor_copy_into(dv, dsrc, 0)); /* f32 -> f64 into every other element */
  assert_ok(tb_tensor_copy_into(hv, src, 0));
  tb_tensor_t *back = to(d, cpu(), NULL);
  assert_same_bytes(h, back);
  tb_tensor_release(back);

  /* device -> host view with gaps, then host -> device from a mostly-gaps view */
  tb_tensor_t *h2 = host_iota(F64, 1, &n), *h2v = NULL, *every5 = NULL, *d5 = NULL;
  assert_ok(tb_tensor_slice(h2, 0, 0, n, 2, &h2v));
  assert_ok(tb_tensor_copy_into(h2v, dsrc, 0));
  assert_same_bytes(h, h2);
  assert_ok(tb_tensor_slice(h, 0, 1, n, 5, &every5));
  d5 = to(every5, gpu(), NULL);
  back = to(d5, cpu(), NULL);
  tb_tensor_t *expect = to(every5, cpu(), NULL);
  assert_same_bytes(expect, back);
  tb_tensor_release(expect);
  tb_tensor_release(back);
  tb_tensor_release(d5);
  tb_tensor_release(every5);
  tb_tensor_release(h2v);
  tb_tensor_release(h2);
  tb_tensor_release(hv);
  tb_tensor_release(dv);
  tb_tensor_release(dsrc);
  tb_tensor_release(d);
  tb_tensor_release(src);
  tb_tensor_release(h);
}

/* Pageable host memory moves through two 4 MiB pinned buffers: sizes below,
 * at and across chunk boundaries, and an odd offset into the host buffer. */
static void pageable_transfers_cross_staging_chunks(void **state) {
  (void)state;
  REQUIRE_CUDA();
  const int64_t mib = 1 << 20;
  const int64_t sizes[] = {1, 4095, 4 * mib, 4 * mib + 1, 8 * mib, 8 * mib + 12345, 21 * mib + 7};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    tb_tensor_t *h = random_host(U8, sizes[i] + 3), *hv = NULL;
    assert_ok(tb_tensor_slice(h, 0, 3, INT64_MAX, 1, &hv)); /* starts at an odd address */
    tb_tensor_t *d = to(hv, gpu(), NULL), *back = to(d, cpu(), NULL);
    assert_memory_equal(tb_tensor_data(hv), tb_tensor_data(back), (size_t)sizes[i]);
    tb_tensor_release(back);
    tb_tensor_release(d);
    tb_tensor_release(hv);
    tb_tensor_release(h);
  }
  /* Back to back: a transfer is done with the staging buffers when it returns. */
  int64_t na = 8 * mib + 12345, nb = 4 * mib + 1;
  tb_tensor_t *a = random_host(U8, na), *b = random_host(U8, nb);
  tb_tensor_t *da = to(a, gpu(), NULL), *db = to(b, gpu(), NULL);
  tb_tensor_t *ba = host_empty(U8, 1, &na), *bb = host_empty(U8, 1, &nb);
  assert_ok(tb_tensor_copy_into(ba, da, 0));
  assert_ok(tb_tensor_copy_into(bb, db, 0));
  assert_same_bytes(a, ba);
  assert_same_bytes(b, bb);
  tb_tensor_release(bb);
  tb_tensor_release(ba);
  tb_tensor_release(db);
  tb_tensor_release(da);
  tb_tensor_release(b);
  tb_tensor_release(a);
}

static void pinned_memory_is_used_directly(void **state) {
  (void)state;
  REQUIRE_CUDA();
  DLDevice pinned = {kDLCUDAHost, 0};
  int64_t n = 3 * (1 << 20) + 5;
  tb_tensor_t *p = NULL;
  assert_ok(tb_tensor_empty(I32, 1, &n, pinned, TB_ORDER_C, &p));
  int32_t *v = tb_tensor_data(p); /* host-accessible */
  assert_non_null(v);
  for (int64_t i = 0; i < n; i++) v[i] = (int32_t)(i * 2654435761u);
  tb_tensor_t *d = to(p, gpu(), NULL);
  /* The upload is done when it returns: the source may change at once. */
  memset(v, 0x5A, (size_t)n * 4);
  tb_tensor_t *back = NULL;
  assert_ok(tb_tensor_to(d, pinned, NULL, TB_ORDER_C, 0, &back));
  for (int64_t i = 0; i < n; i++) v[i] = (int32_t)(i * 2654435761u);
  assert_memory_equal(tb_tensor_data(back), v, (size_t)n * 4); /* read as soon as it returns */
  /* pinned <-> CPU is host memory on both sides */
  tb_tensor_t *h = to(back, cpu(), NULL);
  assert_memory_equal(tb_tensor_data(h), v, (size_t)n * 4);
  /* pinned with a conversion, both ways */
  DLDataType f64 = F64;
  tb_tensor_t *df = to(p, gpu(), &f64), *pf = NULL;
  assert_ok(tb_tensor_to(df, pinned, NULL, TB_ORDER_C, 0, &pf));
  const double *w = tb_tensor_data(pf);
  for (int64_t i = 0; i < n; i += 4099) assert_true(w[i] == (double)v[i]);
  tb_tensor_release(pf);
  tb_tensor_release(df);
  tb_tensor_release(h);
  tb_tensor_release(back);
  tb_tensor_release(d);
  tb_tensor_release(p);
}

static void managed_memory_works_from_both_sides(void **state) {
  (void)state;
  REQUIRE_CUDA();
  DLDevice managed = {kDLCUDAManaged, 0};
  int64_t n = 100000; /* small: managed memory is never oversubscribed here */
  tb_tensor_t *m = NULL;
  tb_status st = tb_tensor_empty(F32, 1, &n, managed, TB_ORDER_C, &m);
  if (st == TB_ERR_UNSUPPORTED) {
    print_message("skipping managed memory: %s\n", tb_last_error());
    skip();
  }
  assert_ok(st);
  float *v = tb_tensor_data(m);
  assert_non_null(v);
  for (int64_t i = 0; i < n; i++) v[i] = (float)i * 0.5f;
  DLDataType f16 = {kDLFloat, 16, 1};
  tb_tensor_t *d = to(m, gpu(), &f16); /* managed -> device with a conversion */
  tb_tensor_t *m2 = NULL;
  DLDataType f32 = F32;
  assert_ok(tb_tensor_to(d, managed, &f32, TB_ORDER_C, 0, &m2)); /* kernel into managed */
  const float *w = tb_tensor_data(m2);
  for (int64_t i = 0; i < n; i++) {
    float expect = (float)i * 0.5f;
    if (expect <= 1024.0f) assert_true(w[i] == expect); /* halves are exact in float16 to 1024 */
  }
  tb_tensor_release(m2);
  tb_tensor_release(d);
  tb_tensor_release(m);
}

/* ---- the stream exchange ---- */

typedef struct watchdog {
  uint32_t *flag; /* read by the device: written with atomic stores */
  atomic_bool stop, fired;
} watchdog;

static void sleep_ms(long ms) {
  struct timespec t = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000 * 1000};
  while (nanosleep(&t, &t) != 0) continue; /* EINTR: sleep the rest */
}

/* Releases the blocked legacy stream after 10 s if the test has not: a
 * library call that waited on the host would otherwise hang forever. */
static void *watchdog_run(void *arg) {
  watchdog *w = arg;
  for (int i = 0; i < 1000 && !atomic_load(&w->stop); i++) sleep_ms(10);
  if (!atomic_load(&w->stop)) {
    atomic_store(&w->fired, true);
    __atomic_store_n(w->flag, 1u, __ATOMIC_RELEASE);
  }
  return NULL;
}

static void export_makes_the_consumer_stream_wait(void **state) {
  (void)state;
  REQUIRE_CUDA();
  const int64_t n = 1 << 20;
  tb_tensor_t *h = host_iota(F64, 1, &n), *src = to(h, gpu(), NULL), *dst = NULL;
  assert_ok(tb_tensor_empty(F32, 1, &n, gpu(), TB_ORDER_C, &dst));
  assert_ok(tb_tensor_copy_into(dst, src, 0)); /* loads the kernels */
  float minus_one = -1.0f;
  assert_ok(tb_tensor_fill(dst, &minus_one, F32));

  enter_ctx();
  tb_cu_stream consumer = NULL;
  tb_cu_event done = NULL;
  void *flag_mem = NULL, *out = NULL;
  CU_OK(cu.stream_create(&consumer, T_CU_STREAM_NON_BLOCKING));
  CU_OK(cu.event_create(&done, TB_CU_EVENT_DISABLE_TIMING));
  CU_OK(
      cu.mem_host_alloc(&flag_mem, 64, TB_CU_MEMHOSTALLOC_PORTABLE | TB_CU_MEMHOSTALLOC_DEVICEMAP));
  CU_OK(cu.mem_host_alloc(&out, (size_t)n * 4, TB_CU_MEMHOSTALLOC_PORTABLE));
  static watchdog w; /* outlives this frame should an assertion leave it */
  w.flag = flag_mem;
  __atomic_store_n(w.flag, 0u, __ATOMIC_RELEASE);
  atomic_init(&w.stop, false);
  atomic_init(&w.fired, false);
  /* Hold the legacy default stream until the flag is set; the library's
   * stream is a blocking stream, so its next work waits behind this. */
  tb_cu_result r = cu.stream_wait_value32(TB_CU_STREAM_LEGACY, (tb_cu_ptr)(uintptr_t)flag_mem, 1,
                                          T_CU_STREAM_WAIT_VALUE_GEQ);
  if (r != TB_CU_SUCCESS) {
    print_message("cuStreamWaitValue32 unavailable (CUresult %u): checking ordering only\n", r);
  }
  pthread_t dog;
  assert_int_equal(pthread_create(&dog, NULL, watchdog_run, &w), 0);

  assert_ok(tb_tensor_copy_into(dst, src, 0)); /* queued, must not wait on the host */
  DLManagedTensorVersioned *m = NULL;
  tb_export_options o = {.stream = (intptr_t)consumer};
  assert_ok(tb_to_dlpack_versioned(dst, &o, &m));
  CU_OK(
      cu.memcpy_dtoh_async(out, (tb_cu_ptr)(uintptr_t)m->dl_tensor.data, (size_t)n * 4, consumer));
  CU_OK(cu.event_record(done, consumer));
  tb_cu_result early = T_CU_NOT_READY;
  if (r == TB_CU_SUCCESS) {
    sleep_ms(100);
    early = cu.event_query(done);
  }
  __atomic_store_n(w.flag, 1u, __ATOMIC_RELEASE);
  atomic_store(&w.stop, true);
  assert_int_equal(pthread_join(dog, NULL), 0);
  CU_OK(cu.stream_synchronize(consumer));
  if (early != T_CU_NOT_READY) {
    print_error("the consumer's work finished (CUresult %u) while the library's was held\n",
                (unsigned)early);
    fail();
  }
  assert_false(atomic_load(&w.fired)); /* nothing waited on the host while blocked */
  const float *got = out;
  for (int64_t i = 0; i < n; i++) {
    if (got[i] != (float)((double)(i % 1999) - 700.25)) {
      print_error("element %lld = %g: the consumer read before the producer wrote\n", (long long)i,
                  (double)got[i]);
      fail();
    }
  }
  m->deleter(m);
  CU_OK(cu.mem_free_host(out));
  CU_OK(cu.mem_free_host(flag_mem));
  CU_OK(cu.event_destroy(done));
  CU_OK(cu.stream_destroy(consumer));
  leave_ctx();
  tb_tensor_release(dst);
  tb_tensor_release(src);
  tb_tensor_release(h);
}

static void export_accepts_the_special_streams(void **state) {
  (void)state;
  REQUIRE_CUDA();
  int64_t n = 64;
  tb_tensor_t *h = host_iota(F32, 1, &n), *d = to(h, gpu(), NULL);
  const intptr_t streams[] = {0, -1, 1, 2};
  for (size_t i = 0; i < 4; i++) {
    DLManagedTensorVersioned *m = NULL;
    tb_export_options o = {.stream = streams[i]};
    assert_ok(tb_to_dlpack_versioned(d, &o, &m));
    assert_int_equal(m->dl_tensor.device.device_type, kDLCUDA);
    m->deleter(m);
  }
  tb_tensor_release(d);
  tb_tensor_release(h);
}

/* ---- imported memory, pointers, contexts, errors ---- */

static void free_device_memory(void *data, void *ctx) {
  int *calls = ctx;
  (*calls)++;
  tb_cu_context popped;
  if (cu.ctx_push(g_ctx) == TB_CU_SUCCESS) {
    (void)cu.mem_free((tb_cu_ptr)(uintptr_t)data);
    (void)cu.ctx_pop(&popped);
  }
}

static void free_versioned(DLManagedTensorVersioned *self) {
  free_device_memory(self->dl_tensor.data, self->manager_ctx);
  free(self);
}

static void imported_device_memory_is_usable(void **state) {
  (void)state;
  REQUIRE_CUDA();
  int64_t n = 4096;
  int calls = 0;
  tb_cu_ptr raw = 0;
  enter_ctx();
  CU_OK(cu.mem_alloc(&raw, (size_t)n * 8));
  leave_ctx();
  tb_tensor_t *t = NULL, *h = host_iota(F64, 1, &n);
  assert_ok(tb_from_array((void *)(uintptr_t)raw, 0, F64, 1, &n, NULL, gpu(), 0, free_device_memory,
                          &calls, &t));
  assert_ok(tb_tensor_copy_into(t, h, 0));
  tb_tensor_t *back = to(t, cpu(), NULL);
  assert_same_bytes(h, back);
  tb_tensor_release(back);
  tb_tensor_release(t);
  assert_int_equal(calls, 1);

  /* A DLPack producer's CUDA tensor (what CuPy or PyTorch hand over). */
  DLManagedTensorVersioned *m = calloc(1, sizeof *m);
  assert_non_null(m);
  static int64_t shape[1];
  shape[0] = n;
  enter_ctx();
  CU_OK(cu.mem_alloc(&raw, (size_t)n * 8));
  leave_ctx();
  m->version = (DLPackVersion){1, 1};
  m->manager_ctx = &calls;
  m->deleter = free_versioned;
  m->dl_tensor = (DLTensor){
      .data = (void *)(uintptr_t)raw, .device = gpu(), .ndim = 1, .dtype = F64, .shape = shape};
  tb_tensor_t *d = to(h, gpu(), NULL);
  DLManagedTensorVersioned *mine = NULL;
  assert_ok(tb_to_dlpack_versioned(d, NULL, &mine));
  tb_tensor_t *imported = NULL;
  assert_ok(tb_from_dlpack_versioned(m, NULL, &imported));
  assert_ok(tb_tensor_copy_into(imported, d, 0));
  back = to(imported, cpu(), NULL);
  assert_same_bytes(h, back);
  tb_tensor_release(back);
  tb_tensor_release(imported);
  assert_int_equal(calls, 2);
  mine->deleter(mine);
  tb_tensor_release(d);
  tb_tensor_release(h);
}

/* tb__cuda_pointer_device is internal: reachable when the test links the
 * static library (the `cuda_internal` test), absent (NULL) otherwise. */
tb_status tb__cuda_pointer_device(const void *ptr, DLDevice *out) __attribute__((weak));

static void pointer_device_resolution(void **state) {
  (void)state;
  REQUIRE_CUDA();
  if (tb__cuda_pointer_device == NULL) {
    print_message("skipping pointer classification: internal, linked only in cuda_internal\n");
    skip();
  }
  tb_cu_ptr d = 0, m = 0;
  void *p = NULL;
  enter_ctx();
  CU_OK(cu.mem_alloc(&d, 256));
  CU_OK(cu.mem_host_alloc(&p, 256, TB_CU_MEMHOSTALLOC_PORTABLE));
  tb_cu_result mr = cu.mem_alloc_managed(&m, 256, TB_CU_MEM_ATTACH_GLOBAL);
  leave_ctx();
  DLDevice dev = {kDLCPU, -1};
  assert_ok(tb__cuda_pointer_device((void *)(uintptr_t)(d + 128), &dev));
  assert_int_equal(dev.device_type, kDLCUDA);
  assert_int_equal(dev.device_id, 0);
  assert_ok(tb__cuda_pointer_device(p, &dev));
  assert_int_equal(dev.device_type, kDLCUDAHost);
  if (mr == TB_CU_SUCCESS) {
    assert_ok(tb__cuda_pointer_device((void *)(uintptr_t)m, &dev));
    assert_int_equal(dev.device_type, kDLCUDAManaged);
    assert_int_equal(dev.device_id, 0);
  }
  char *heap = malloc(64);
  assert_non_null(heap);
  tb_status st = tb__cuda_pointer_device(heap, &dev);
  if (st == TB_OK) { /* a driver with HMM may know all host memory */
    print_message("note: the driver classifies malloc'd memory as device type %d\n",
                  (int)dev.device_type);
    assert_int_equal(dev.device_type, kDLCUDAHost);
  } else {
    assert_int_equal(st, TB_ERR_INVALID);
    assert_error_mentions("not memory the CUDA driver");
  }
  free(heap);
  /* and the library's own allocations */
  int64_t n = 16;
  tb_tensor_t *t = NULL;
  assert_ok(tb_tensor_empty(F32, 1, &n, (DLDevice){kDLCUDAManaged, 0}, TB_ORDER_C, &t));
  assert_ok(tb__cuda_pointer_device(tb_tensor_base(t), &dev));
  assert_int_equal(dev.device_type, kDLCUDAManaged);
  tb_tensor_release(t);
  enter_ctx();
  CU_OK(cu.mem_free(d));
  CU_OK(cu.mem_free_host(p));
  if (mr == TB_CU_SUCCESS) CU_OK(cu.mem_free(m));
  leave_ctx();
}

/* DLPack import asks the backend where the data lives: a managed tensor
 * declared on the wrong GPU takes its real one, a device pointer declared on
 * a GPU it does not live on is refused (and the producer's deleter runs). */
static void import_resolves_the_device_of_the_data(void **state) {
  (void)state;
  REQUIRE_CUDA();
  int64_t n = 8;
  int32_t count = tb_device_count(kDLCUDA);
  tb_tensor_t *managed = NULL, *dev = NULL, *back = NULL;
  assert_ok(tb_tensor_empty(F32, 1, &n, (DLDevice){kDLCUDAManaged, 0}, TB_ORDER_C, &managed));
  DLManagedTensorVersioned *m = NULL;
  assert_ok(tb_to_dlpack_versioned(managed, NULL, &m));
  m->dl_tensor.device.device_id = count; /* a producer's wrong guess */
  assert_ok(tb_from_dlpack_versioned(m, NULL, &back));
  assert_int_equal(tb_tensor_device(back).device_type, kDLCUDAManaged);
  assert_int_equal(tb_tensor_device(back).device_id, 0);
  tb_tensor_release(back);

  assert_ok(tb_tensor_empty(F32, 1, &n, (DLDevice){kDLCUDA, 0}, TB_ORDER_C, &dev));
  assert_ok(tb_to_dlpack_versioned(dev, NULL, &m));
  m->dl_tensor.device.device_id = count; /* cuda:0 memory declared elsewhere */
  assert_status(tb_from_dlpack_versioned(m, NULL, &back), TB_ERR_DEVICE);
  assert_error_mentions("lives on cuda:0");
  tb_tensor_release(dev);
  tb_tensor_release(managed);
}

static void library_restores_the_current_context(void **state) {
  (void)state;
  REQUIRE_CUDA();
  int64_t n = 1000;
  tb_tensor_t *h = host_iota(F32, 1, &n);
  tb_cu_context before = (tb_cu_context)(uintptr_t)1, after = (tb_cu_context)(uintptr_t)2;
  CU_OK(cu.ctx_get_current(&before));
  tb_tensor_t *d = to(h, gpu(), NULL), *back = to(d, cpu(), NULL);
  CU_OK(cu.ctx_get_current(&after));
  assert_ptr_equal(before, after);
  enter_ctx(); /* with a context pushed by the caller, the same holds */
  tb_tensor_t *d2 = to(back, gpu(), NULL);
  CU_OK(cu.ctx_get_current(&after));
  assert_ptr_equal(after, g_ctx);
  leave_ctx();
  tb_tensor_release(d2);
  tb_tensor_release(back);
  tb_tensor_release(d);
  tb_tensor_release(h);
}

static void driver_failures_name_the_call(void **state) {
  (void)state;
  REQUIRE_CUDA();
  int64_t n = INT64_C(1) << 50; /* a petabyte of bytes */
  tb_tensor_t *t = NULL;
  assert_status(tb_tensor_empty(U8, 1, &n, gpu(), TB_ORDER_C, &t), TB_ERR_NOMEM);
  assert_error_mentions("cuMemAlloc");
  assert_error_mentions("CUDA_ERROR_OUT_OF_MEMORY");
  assert_null(t);
}

/* Releasing a tensor waits for the library's work still queued on it (a
 * kernel reading it, a device copy out of it): the stand-in reports a free
 * of memory that queued work uses, and a GPU would read freed memory. */
static void freeing_waits_for_queued_work(void **state) {
  (void)state;
  REQUIRE_CUDA();
  const int64_t n = 1 << 16;
  DLDataType f32 = F32;
  tb_tensor_t *h = host_iota(F64, 1, &n), *d = to(h, gpu(), NULL), *d2 = NULL, *d3 = NULL;
  assert_ok(tb_tensor_copy(d, &f32, TB_ORDER_C, 0, &d2)); /* a kernel, left queued */
  tb_tensor_release(d);
  assert_ok(tb_tensor_copy(d2, NULL, TB_ORDER_C, 0, &d3)); /* a device copy, left queued */
  tb_tensor_release(d2);
  tb_tensor_t *back = to(d3, cpu(), NULL), *expect = to(h, cpu(), &f32);
  assert_same_bytes(expect, back);
  tb_tensor_release(expect);
  tb_tensor_release(back);
  tb_tensor_release(d3);
  tb_tensor_release(h);
}

/* A download into pageable memory that fails part way (its third chunk's
 * copy, here) returns with nothing still in flight into the staging
 * buffers: the next transfer through them moves its own bytes. */
static void failed_download_leaves_no_copy_in_flight(void **state) {
  (void)state;
  REQUIRE_CUDA();
  REQUIRE_STAND_IN();
  const int64_t mib = 1 << 20, n = 12 * mib, n2 = 8 * mib;
  tb_tensor_t *h = random_host(U8, n), *h2 = random_host(U8, n2), *out = host_empty(U8, 1, &n);
  tb_tensor_t *d = to(h, gpu(), NULL);
  assert_int_equal(fake_configure("fail.cuMemcpyDtoHAsync_v2", 3), 0);
  assert_status(tb_tensor_copy_into(out, d, 0), TB_ERR_DEVICE);
  assert_error_mentions("cuMemcpyDtoHAsync");
  assert_error_mentions("CUDA_ERROR_UNKNOWN");
  tb_tensor_t *d2 = to(h2, gpu(), NULL), *back = to(d2, cpu(), NULL);
  assert_same_bytes(h2, back);
  tb_tensor_release(back);
  tb_tensor_release(d2);
  tb_tensor_release(d);
  tb_tensor_release(out);
  tb_tensor_release(h2);
  tb_tensor_release(h);
}

/* A device with room for the tensors but not for the scratch span of a
 * converting upload or download: the core stages those copies through the
 * host instead, with the same results; and an allocation past what is left
 * fails with the driver's out-of-memory. */
static void copies_without_room_for_scratch_are_staged(void **state) {
  (void)state;
  REQUIRE_CUDA();
  REQUIRE_STAND_IN();
  size_t free_bytes = 0, total = 0;
  enter_ctx();
  CU_OK(cu.mem_get_info(&free_bytes, &total));
  leave_ctx();
  const int64_t n = 1 << 16; /* 256 KiB as float32; a float64 span is 512 KiB */
  const long long room = n * 4 + 4096;
  (void)fake_configure("memory", (long long)(total - free_bytes) + room);
  enter_ctx();
  CU_OK(cu.mem_get_info(&free_bytes, &total));
  leave_ctx();
  assert_int_equal(free_bytes, (size_t)room);
  DLDataType f32 = F32, f64 = F64;
  /* Each direction would want 512 KiB of scratch for the float64 side. */
  tb_tensor_t *h = host_iota(F64, 1, &n), *d = to(h, gpu(), &f32), *back = to(d, cpu(), &f64);
  assert_same_bytes(h, back); /* the values are exact in float32 */
  tb_tensor_t *more = NULL;
  assert_status(tb_tensor_empty(F32, 1, &n, gpu(), TB_ORDER_C, &more), TB_ERR_NOMEM);
  assert_error_mentions("cuMemAlloc");
  assert_error_mentions("CUDA_ERROR_OUT_OF_MEMORY");
  tb_tensor_release(back);
  tb_tensor_release(d);
  tb_tensor_release(h);
}

/* Launches are cut below 2^31 elements: a 1-D copy of 2^31 + 3 and a 2-D
 * one whose rows alone stay below the limit. Needs about 7 GiB free. */
static void copies_over_two_billion_elements(void **state) {
  (void)state;
  REQUIRE_CUDA();
  size_t free_bytes = 0, total = 0;
  enter_ctx();
  CU_OK(cu.mem_get_info(&free_bytes, &total));
  leave_ctx();
  if (free_bytes < ((size_t)7 << 30)) {
    print_message("skipping the 2^31-element copies: %zu MiB free on the device\n",
                  free_bytes >> 20);
    skip();
  }
  DLDataType i8 = {kDLInt, 8, 1};
  uint8_t five = 5;
  int64_t one = 1, big = (INT64_C(1) << 31) + 3;
  tb_tensor_t *s = NULL, *sb = NULL, *ds = NULL, *dst = NULL, *back = NULL;
  assert_ok(tb_tensor_new(&five, U8, 1, &one, NULL, NULL, TB_ORDER_C, 0, &s));
  ds = to(s, gpu(), NULL);
  assert_ok(tb_tensor_expand(ds, 1, &big, &sb)); /* stride 0: one byte read everywhere */
  assert_ok(tb_tensor_zeros(i8, 1, &big, gpu(), TB_ORDER_C, &dst));
  assert_ok(tb_tensor_copy_into(dst, sb, 0)); /* u8 -> i8: a kernel, two launches */
  back = to(dst, cpu(), NULL);
  const int8_t *v = tb_tensor_data(back);
  for (int64_t i = 0; i < big; i++) {
    if (v[i] != 5) {
      print_error("element %lld = %d after a split launch\n", (long long)i, v[i]);
      fail();
    }
  }
  tb_tensor_release(back);
  tb_tensor_release(dst);
  tb_tensor_release(sb);

  /* rows of 2^30 + 1 distinct values, three rows: three launches */
  int64_t row = (INT64_C(1) << 30) + 1, shape[2] = {3, row};
  tb_tensor_t *pattern = host_empty(U8, 1, &row), *dp, *dp2 = NULL, *dp3 = NULL;
  uint8_t *pv = tb_tensor_data(pattern);
  for (int64_t i = 0; i < row; i++) pv[i] = (uint8_t)(i * 7 + (i >> 12));
  dp = to(pattern, gpu(), NULL);
  int64_t shape1[2] = {1, row};
  assert_ok(tb_tensor_reshape(dp, 2, shape1, &dp2));
  assert_ok(tb_tensor_expand(dp2, 2, shape, &dp3));
  assert_ok(tb_tensor_empty(i8, 2, shape, gpu(), TB_ORDER_C, &dst));
  assert_ok(tb_tensor_copy_into(dst, dp3, 0));
  back = to(dst, cpu(), NULL);
  v = tb_tensor_data(back);
  for (int64_t r = 0; r < 3; r++) {
    for (int64_t i = 0; i < row; i++) {
      if ((uint8_t)v[r * row + i] != pv[i]) {
        print_error("row %lld element %lld wrong after a split launch\n", (long long)r,
                    (long long)i);
        fail();
      }
    }
  }
  tb_tensor_release(back);
  tb_tensor_release(dst);
  tb_tensor_release(dp3);
  tb_tensor_release(dp2);
  tb_tensor_release(dp);
  tb_tensor_release(pattern);
  tb_tensor_release(ds);
  tb_tensor_release(s);
}

/* TB_EXPECT_CUDA: a device (any value but "0"), or the stand-in driver
 * ("emulated"), must be found; without one the run fails instead of
 * skipping. */
static bool expectation_met(void) {
  const char *expect = getenv("TB_EXPECT_CUDA");
  if (expect == NULL || *expect == '\0' || strcmp(expect, "0") == 0) return true;
  if (!g_have_cuda) {
    fprintf(stderr, "TB_EXPECT_CUDA=%s, but no CUDA device: %s\n", expect, g_reason);
    return false;
  }
  if (strcmp(expect, "emulated") == 0 && (fake_configure == NULL || fake_misuses == NULL)) {
    fprintf(stderr, "TB_EXPECT_CUDA=emulated, but libcuda.so.1 is not the stand-in driver\n");
    return false;
  }
  return true;
}

#define CUDA_TEST(f) cmocka_unit_test_teardown(f, no_driver_misuse)

int main(int argc, char **argv) {
  probe_cuda();
  if (!expectation_met()) return 1;
  if (!g_have_cuda) printf("skipping CUDA tests: %s\n", g_reason);
  if (argc > 1) cmocka_set_test_filter(argv[1]);
  const struct CMUnitTest tests[] = {
      CUDA_TEST(registry_reports_cuda),
      CUDA_TEST(every_dtype_round_trips),
      CUDA_TEST(kernel_casts_match_the_cpu),
      CUDA_TEST(strided_device_copies_match_the_cpu),
      CUDA_TEST(strided_destinations_keep_their_gaps),
      CUDA_TEST(pageable_transfers_cross_staging_chunks),
      CUDA_TEST(pinned_memory_is_used_directly),
      CUDA_TEST(managed_memory_works_from_both_sides),
      CUDA_TEST(export_makes_the_consumer_stream_wait),
      CUDA_TEST(export_accepts_the_special_streams),
      CUDA_TEST(imported_device_memory_is_usable),
      CUDA_TEST(pointer_device_resolution),
      CUDA_TEST(import_resolves_the_device_of_the_data),
      CUDA_TEST(library_restores_the_current_context),
      CUDA_TEST(driver_failures_name_the_call),
      CUDA_TEST(freeing_waits_for_queued_work),
      CUDA_TEST(failed_download_leaves_no_copy_in_flight),
      CUDA_TEST(copies_without_room_for_scratch_are_staged),
      CUDA_TEST(copies_over_two_billion_elements),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  /* 77: meson's "skipped" when there was nothing to run. */
  return failed == 0 && !g_have_cuda ? 77 : failed;
}
