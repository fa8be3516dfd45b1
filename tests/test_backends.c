/*
 * The device backends, through the public API only: one battery of tests
 * run on every device of every non-CPU device type present (OpenCL, CUDA,
 * CUDA host and managed memory, and any other type with a backend and a
 * device). A type without devices is skipped with a line saying why.
 *
 * Every result is compared bit for bit with what the CPU engine gives for
 * the same input, so a backend's kernels are held to the CPU's casting rules.
 *
 * Not passing silently: this executable fails when no device at all ran the
 * battery while the OpenCL backend is compiled in (tb_get_backend(kDLOpenCL)
 * is not NULL: that backend registers its table whenever it is built) and
 * either this machine has an OpenCL device (the test looks for one itself,
 * through the ICD loader, independently of the library) or the environment
 * says TB_EXPECT_OPENCL=1. It also fails when the library and the ICD
 * loader disagree on the number of OpenCL devices.
 *
 * The OpenCL-only tests use the ICD loader directly, opened with dlopen, to
 * make memory the way another program would (its own context).
 */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"
#include "tensorbridge/backend.h"

/* ------------------------------------------------------------------------ */
/* The device under test and the dtypes                                     */
/* ------------------------------------------------------------------------ */

static DLDevice g_dev; /* the battery's device */

/* Device types whose data is a handle (no pointer arithmetic), as in the
 * library's device table. */
static bool handle_device(int32_t type) {
  return type == TB_DL_OPENCL || type == TB_DL_VULKAN || type == TB_DL_METAL ||
         type == TB_DL_WEBGPU;
}

enum { KINDS = 15 };
static const char *const kind_names[KINDS] = {
    "bool",   "int8",   "int16",   "int32",    "int64",   "uint8",     "uint16",     "uint32",
    "uint64", "float16", "bfloat16", "float32", "float64", "complex64", "complex128",
};
enum { K_BOOL, K_I8, K_I16, K_I32, K_I64, K_U8, K_U16, K_U32, K_U64, K_F16, K_BF16, K_F32, K_F64,
       K_C64, K_C128 };

static DLDataType dtype_named(const char *name) {
  DLDataType d;
  assert_ok(tb_dtype_from_name(name, &d));
  return d;
}

static DLDataType kind_dtype(int k) { return dtype_named(kind_names[k]); }

static size_t kind_size(int k) { return tb_dtype_itemsize(kind_dtype(k)); }

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

static uint64_t next_random(uint64_t *state) { /* splitmix64 */
  uint64_t z = (*state += 0x9E3779B97F4A7C15u);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
  return z ^ (z >> 31);
}

static void random_bytes(uint64_t *rng, void *out, size_t n) {
  unsigned char *p = out;
  for (size_t i = 0; i < n; i++) p[i] = (unsigned char)next_random(rng);
}

/* A copy of any tensor as a C-contiguous host tensor of the same dtype. */
static tb_tensor_t *to_host(const tb_tensor_t *t) {
  tb_tensor_t *h;
  assert_ok(tb_tensor_to(t, cpu(), NULL, TB_ORDER_C, 0, &h));
  return h;
}

static tb_tensor_t *to_dev(const tb_tensor_t *t, const DLDataType *dtype) {
  tb_tensor_t *d;
  assert_ok(tb_tensor_to(t, g_dev, dtype, TB_ORDER_C, TB_CAST_DISCARD_IMAG, &d));
  assert_int_equal(tb_tensor_device(d).device_type, g_dev.device_type);
  assert_int_equal(tb_tensor_device(d).device_id, g_dev.device_id);
  return d;
}

/* Wraps a host buffer (not copied) as a C-order tensor. */
static tb_tensor_t *wrap_host(void *data, DLDataType dtype, int32_t ndim, const int64_t *shape) {
  tb_tensor_t *t;
  assert_ok(tb_from_array(data, 0, dtype, ndim, shape, NULL, cpu(), 0, NULL, NULL, &t));
  return t;
}

static tb_tensor_t *host_iota(DLDataType dtype, int32_t ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int32_t k = 0; k < ndim; k++) n *= shape[k];
  double *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
  for (int64_t i = 0; i < n; i++) v[i] = (double)(i * 3 - 7) / 2;
  tb_tensor_t *t;
  assert_ok(tb_tensor_new(v, F64, ndim, shape, NULL, &dtype, TB_ORDER_C, 0, &t));
  free(v);
  return t;
}

/* Asserts that two host tensors hold the same bytes in C order, naming the
 * first element that differs (and its source bits when src is given). */
static void assert_same_bytes(const char *what, const tb_tensor_t *got, const tb_tensor_t *expect,
                              const void *src, size_t src_item) {
  tb_tensor_t *g = to_host(got), *e = to_host(expect);
  size_t nbytes = (size_t)tb_tensor_nbytes(e);
  assert_int_equal(tb_tensor_nbytes(g), nbytes);
  const unsigned char *gp = tb_tensor_data(g), *ep = tb_tensor_data(e);
  if (nbytes > 0 && memcmp(gp, ep, nbytes) != 0) {
    /* Packed dtypes (itemsize 0) are compared byte by byte. */
    size_t item = tb_dtype_itemsize(tb_tensor_dtype(e));
    if (item == 0) item = 1;
    size_t i = 0;
    while (memcmp(gp + i * item, ep + i * item, item) == 0) i++;
    char line[400]; /* the name, then at most 3 x 16 bytes in hex */
    int n = snprintf(line, 240, "%s: element %zu differs: expected 0x", what, i);
    const unsigned char *sp = (const unsigned char *)src + i * src_item;
    for (size_t b = item; b-- > 0;) n += snprintf(line + n, 16, "%02x", ep[i * item + b]);
    n += snprintf(line + n, 16, ", got 0x");
    for (size_t b = item; b-- > 0;) n += snprintf(line + n, 16, "%02x", gp[i * item + b]);
    if (src != NULL) {
      n += snprintf(line + n, 16, ", source 0x");
      for (size_t b = src_item; b-- > 0;) n += snprintf(line + n, 16, "%02x", sp[b]);
    }
    print_error("%s\n", line);
    tb_tensor_release(g);
    tb_tensor_release(e);
    fail();
  }
  tb_tensor_release(g);
  tb_tensor_release(e);
}

/* ------------------------------------------------------------------------ */
/* Cast inputs: random bits, special values and rounding ties               */
/* ------------------------------------------------------------------------ */

static const double special_values[] = {
    0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1.5, 2.5, -2.5, 0.49999999999999994, 0.9999999, -0.9999999,
    127.0, 127.9, 128.0, -128.0, -128.9, -129.0, 255.0, 255.5, 256.0, -1e-300, 32767.0, 32768.0,
    -32768.5, -32769.0, 65504.0, 65519.99, 65520.0, 65535.0, 65536.0, 2147483647.0, 2147483647.5,
    2147483648.0, -2147483648.0, -2147483649.0, 4294967295.0, 4294967296.0,
    9223372036854775807.0, 9223372036854774784.0, -9223372036854775808.0, -9223372036854777856.0,
    18446744073709551615.0, 18446744073709549568.0, 1e20, -1e20, 1e300, -1e300,
    5.960464477539063e-8, 2.9802322387695312e-8, 2.9802322387695316e-8, 6.103515625e-05,
    6.097555160522461e-05, 1e-40, 1.401298464324817e-45, 7.006492321624085e-46, 1e-310,
    4.9406564584124654e-324,
    3.4028234663852886e38, 3.4028235677973366e38, 3.4028236e38, 3.3895313892515355e38,
    3.3961775292304071e38, 1.7976931348623157e308, 2.2250738585072014e-308, 3.0517578125e-05,
    0.1, -0.1, 1.0 / 3.0, 16777217.0, 9007199254740993.0, 33554435.0,
};

/* A value whose bits below a narrower format's last place are a tie
 * (100..0), just above it (100..01) or just below it (011..1). */
static uint64_t tie_tail(uint64_t *rng, uint64_t bits, int tail) {
  if (tail <= 0) return bits;
  uint64_t half = UINT64_C(1) << (tail - 1);
  uint64_t patterns[3] = {half, half | 1u, half - 1u};
  uint64_t mask = tail >= 64 ? ~UINT64_C(0) : (UINT64_C(1) << tail) - 1u;
  return (bits & ~mask) | patterns[next_random(rng) % 3];
}

/* Float bits (exp_bits, man_bits) with a random normal exponent and a
 * rounding tail for a random narrower format. */
static uint64_t float_tie(uint64_t *rng, int exp_bits, int man_bits) {
  static const int narrower[] = {7, 10, 23, 52};
  int choices = 0;
  while (choices < 4 && narrower[choices] < man_bits) choices++;
  uint64_t r = next_random(rng);
  uint64_t field_max = (UINT64_C(1) << exp_bits) - 2u; /* normal fields 1..max */
  uint64_t field = 1 + r % field_max;
  uint64_t frac = next_random(rng) & ((UINT64_C(1) << man_bits) - 1u);
  uint64_t bits = ((r >> 63) << (exp_bits + man_bits)) | (field << man_bits) | frac;
  if (choices == 0) return bits;
  return tie_tail(rng, bits, man_bits - narrower[next_random(rng) % (uint64_t)choices]);
}

/* An integer of `width` bits with a rounding tail for a random float. */
static uint64_t int_tie(uint64_t *rng, int width, bool is_signed) {
  static const int mantissas[] = {7, 10, 23, 52};
  int usable = width - (is_signed ? 1 : 0);
  int choices = 0;
  while (choices < 4 && mantissas[choices] + 2 <= usable) choices++;
  uint64_t v = next_random(rng);
  if (choices == 0) return v;
  int mt = mantissas[next_random(rng) % (uint64_t)choices];
  int top = mt + 1 + (int)(next_random(rng) % (uint64_t)(usable - mt - 1)); /* leading bit */
  uint64_t m = (top == 63 ? v : v & ((UINT64_C(1) << top) - 1u)) | (UINT64_C(1) << top);
  m = tie_tail(rng, m, top - mt);
  if (is_signed && (next_random(rng) & 1u)) m = 0u - m;
  return m;
}

static void store_bits(void *p, uint64_t bits, size_t size) {
  uint8_t b1 = (uint8_t)bits;
  uint16_t b2 = (uint16_t)bits;
  uint32_t b4 = (uint32_t)bits;
  switch (size) {
    case 1: memcpy(p, &b1, 1); break;
    case 2: memcpy(p, &b2, 2); break;
    case 4: memcpy(p, &b4, 4); break;
    default: memcpy(p, &bits, 8); break;
  }
}

/* n elements of kind k: one third random bits, one third special and
 * moderate values (converted by the CPU engine), one third rounding ties. */
static unsigned char *cast_source(int k, int64_t n, uint64_t *rng) {
  size_t item = kind_size(k);
  unsigned char *out = malloc((size_t)n * item);
  assert_non_null(out);
  random_bytes(rng, out, (size_t)n * item);
  /* The special and moderate values, converted by the CPU engine. */
  double *values = malloc((size_t)n * sizeof *values);
  const size_t nspecial = sizeof special_values / sizeof *special_values;
  for (int64_t i = 0; i < n; i++) {
    uint64_t r = next_random(rng);
    if ((size_t)i < nspecial) {
      values[i] = special_values[i];
    } else if (r & 1u) {
      values[i] = (double)(int64_t)(r >> 40) / 4096.0 - 2048.0; /* moderate, with fractions */
    } else {
      values[i] = special_values[r % nspecial] * ((r >> 8) & 1u ? -1.0 : 1.0);
    }
  }
  values[0] = (double)NAN; /* a quiet NaN and its negative */
  values[1] = -(double)NAN;
  values[2] = (double)INFINITY;
  values[3] = -(double)INFINITY;
  tb_tensor_t *conv;
  DLDataType dtype = kind_dtype(k);
  assert_ok(tb_tensor_new(values, F64, 1, &n, NULL, &dtype, TB_ORDER_C, 0, &conv));
  const unsigned char *cv = tb_tensor_data(conv);
  bool complex = k == K_C64 || k == K_C128;
  size_t part = complex ? item / 2 : item;
  for (int64_t i = 0; i < n; i++) {
    unsigned char *p = out + (size_t)i * item;
    switch (i % 3) {
      case 0:
        break; /* random bits */
      case 1:
        memcpy(p, cv + (size_t)i * item, item);
        if (complex) memcpy(p + part, cv + (size_t)((i * 7) % n) * item, part); /* non-zero imag */
        break;
      default:
        for (size_t q = 0; q < item / part; q++) {
          uint64_t bits;
          switch (k) {
            case K_F16: bits = float_tie(rng, 5, 10); break;
            case K_BF16: bits = float_tie(rng, 8, 7); break;
            case K_F32: case K_C64: bits = float_tie(rng, 8, 23); break;
            case K_F64: case K_C128: bits = float_tie(rng, 11, 52); break;
            case K_BOOL: bits = next_random(rng) & 1u; break;
            default: {
              bool sgn = k >= K_I8 && k <= K_I64;
              bits = int_tie(rng, (int)(8 * item), sgn);
            }
          }
          store_bits(p + q * part, bits, part);
        }
    }
  }
  tb_tensor_release(conv);
  free(values);
  return out;
}

/* ------------------------------------------------------------------------ */
/* The test's own OpenCL, as another program would use it                  */
/* ------------------------------------------------------------------------ */

/* OpenCL's handles are pointers and its integers fixed-size; the few
 * declarations needed are spelled here so that this test builds without
 * the OpenCL headers. */
typedef int32_t ocl_int;
typedef uint32_t ocl_uint;
typedef uint64_t ocl_bits;
#define OCL_DEVICE_TYPE_CPU (UINT64_C(1) << 1)
#define OCL_DEVICE_TYPE_GPU (UINT64_C(1) << 2)
#define OCL_DEVICE_TYPE_ACCELERATOR (UINT64_C(1) << 3)
#define OCL_DEVICE_AVAILABLE 0x1027u
#define OCL_MEM_READ_WRITE (UINT64_C(1) << 0)

#define OCL_FUNCTIONS(X)                                                                        \
  X(GetPlatformIDs, ocl_int, (ocl_uint, void **, ocl_uint *))                                   \
  X(GetDeviceIDs, ocl_int, (void *, ocl_bits, ocl_uint, void **, ocl_uint *))                   \
  X(GetDeviceInfo, ocl_int, (void *, ocl_uint, size_t, void *, size_t *))                       \
  X(CreateContext, void *, (const intptr_t *, ocl_uint, void *const *, void *, void *, ocl_int *)) \
  X(CreateCommandQueue, void *, (void *, void *, ocl_bits, ocl_int *))                          \
  X(CreateBuffer, void *, (void *, ocl_bits, size_t, void *, ocl_int *))                        \
  X(EnqueueWriteBuffer, ocl_int,                                                                \
    (void *, void *, ocl_uint, size_t, size_t, const void *, ocl_uint, const void *, void *))   \
  X(EnqueueReadBuffer, ocl_int,                                                                 \
    (void *, void *, ocl_uint, size_t, size_t, void *, ocl_uint, const void *, void *))         \
  X(ReleaseMemObject, ocl_int, (void *))                                                        \
  X(ReleaseCommandQueue, ocl_int, (void *))                                                     \
  X(ReleaseContext, ocl_int, (void *))

#define OCL_POINTER(name, ret, params) ret (*name) params;
static struct {
  void *lib;
  OCL_FUNCTIONS(OCL_POINTER)
  int ndevices;
  void *devices[64]; /* in the library's documented order */
} ocl;
#undef OCL_POINTER

/* Finds the OpenCL devices in the order the library documents: every
 * platform's GPUs, then CPUs, then accelerators. False without a loader. */
static bool ocl_open(void) {
  ocl.lib = dlopen("libOpenCL.so.1", RTLD_NOW | RTLD_LOCAL);
  if (ocl.lib == NULL) return false;
#define OCL_RESOLVE(name, ret, params)                \
  {                                                   \
    void *sym = dlsym(ocl.lib, "cl" #name);           \
    if (sym == NULL) return false;                    \
    memcpy(&ocl.name, &sym, sizeof ocl.name);         \
  }
  OCL_FUNCTIONS(OCL_RESOLVE)
#undef OCL_RESOLVE
  void *platforms[16];
  ocl_uint np = 0;
  if (ocl.GetPlatformIDs(16, platforms, &np) != 0) return true; /* no ICD: no device */
  if (np > 16) np = 16;
  const ocl_bits types[3] = {OCL_DEVICE_TYPE_GPU, OCL_DEVICE_TYPE_CPU, OCL_DEVICE_TYPE_ACCELERATOR};
  for (int t = 0; t < 3; t++) {
    for (ocl_uint p = 0; p < np; p++) {
      void *ids[64];
      ocl_uint nd = 0;
      if (ocl.GetDeviceIDs(platforms[p], types[t], 64, ids, &nd) != 0) continue;
      for (ocl_uint i = 0; i < nd && i < 64 && ocl.ndevices < 64; i++) {
        uint32_t available = 0;
        if (ocl.GetDeviceInfo(ids[i], OCL_DEVICE_AVAILABLE, sizeof available, &available, NULL) ==
                0 &&
            available) {
          ocl.devices[ocl.ndevices++] = ids[i];
        }
      }
    }
  }
  return true;
}

/* Releases the cl_mem a tensor wrapped, and counts the calls. */
static void release_cl_mem(void *data, void *ctx) {
  counting_deleter(data, ctx);
  ocl.ReleaseMemObject(data);
}

/* ------------------------------------------------------------------------ */
/* The battery                                                              */
/* ------------------------------------------------------------------------ */

typedef struct thread_job {
  int from, to;
  bool ok;
} thread_job;

/* One cast host -> device -> device -> host, compared with the CPU engine. */
static int cast_job(void *arg) {
  thread_job *job = arg;
  uint64_t rng = 1000u + (uint64_t)job->from * 31u + (uint64_t)job->to;
  int64_t n = 300;
  size_t item = kind_size(job->from);
  unsigned char *src = malloc((size_t)n * item);
  random_bytes(&rng, src, (size_t)n * item);
  DLDataType from = kind_dtype(job->from), to = kind_dtype(job->to);
  tb_tensor_t *h = NULL, *d = NULL, *dc = NULL, *back = NULL, *expect = NULL;
  /* No cmocka assertion off the main thread: the message rule (successful
   * calls leave this thread's message untouched) is folded into ok. */
  (void)tb_set_error(TB_ERR_INVALID, ok_guard_sentinel);
  job->ok = tb_from_array(src, 0, from, 1, &n, NULL, cpu(), 0, NULL, NULL, &h) == TB_OK &&
            tb_tensor_to(h, g_dev, NULL, TB_ORDER_C, 0, &d) == TB_OK &&
            tb_tensor_to(d, g_dev, &to, TB_ORDER_C, TB_CAST_DISCARD_IMAG, &dc) == TB_OK &&
            tb_tensor_to(dc, cpu(), NULL, TB_ORDER_C, 0, &back) == TB_OK &&
            tb_tensor_copy(h, &to, TB_ORDER_C, TB_CAST_DISCARD_IMAG, &expect) == TB_OK &&
            memcmp(tb_tensor_data(back), tb_tensor_data(expect),
                   (size_t)tb_tensor_nbytes(back)) == 0 &&
            strcmp(tb_last_error(), ok_guard_sentinel) == 0;
  tb_tensor_release(expect);
  tb_tensor_release(back);
  tb_tensor_release(dc);
  tb_tensor_release(d);
  tb_tensor_release(h);
  free(src);
  return 0;
}

/* First uses from several threads at once: a backend that builds or
 * loads anything lazily must do it once and safely. */
static void first_uses_race_safely(void **state) {
  (void)state;
  thread_job jobs[6] = {{K_U16, K_F16, false}, {K_I16, K_BF16, false}, {K_C64, K_I32, false},
                        {K_U16, K_F64, false}, {K_BF16, K_U8, false},  {K_I16, K_C128, false}};
  test_thread threads[6];
  for (int i = 0; i < 6; i++) {
    test_thread_start(&threads[i], cast_job, &jobs[i]);
  }
  for (int i = 0; i < 6; i++) (void)test_thread_join(&threads[i]);
  for (int i = 0; i < 6; i++) {
    if (!jobs[i].ok) {
      print_error("%s -> %s from a thread failed\n", kind_names[jobs[i].from],
                  kind_names[jobs[i].to]);
      fail();
    }
  }
}

/* Every dtype the library knows goes to the device and back unchanged. */
static void every_dtype_round_trips(void **state) {
  (void)state;
  static const char *const extra[] = {
      "float8_e3m4",   "float8_e4m3",     "float8_e4m3b11fnuz", "float8_e4m3fn",
      "float8_e4m3fnuz", "float8_e5m2",   "float8_e5m2fnuz",    "float8_e8m0fnu",
      "float6_e2m3fn", "float6_e3m2fn",   "float4_e2m1fn",
  };
  uint64_t rng = 42;
  int64_t shape[3] = {3, 5, 7};
  for (size_t i = 0; i < KINDS + sizeof extra / sizeof *extra; i++) {
    const char *name = i < KINDS ? kind_names[i] : extra[i - KINDS];
    DLDataType dtype = dtype_named(name);
    bool packed = tb_dtype_itemsize(dtype) == 0;
    unsigned char buf[105 * 16];
    tb_tensor_t *h = wrap_host(buf, dtype, 3, shape);
    size_t nbytes = (size_t)tb_tensor_nbytes(h);
    random_bytes(&rng, buf, nbytes);
    tb_tensor_t *d = to_dev(h, NULL), *back = to_host(d);
    if (handle_device(g_dev.device_type)) assert_null(tb_tensor_data(d));
    assert_true(tb_dtype_equal(tb_tensor_dtype(back), dtype));
    if (memcmp(tb_tensor_data(back), buf, nbytes) != 0) {
      print_error("%s did not round-trip\n", name);
      fail();
    }
    if (!packed) { /* Fortran order on the device, C order back */
      tb_tensor_t *df, *backf;
      assert_ok(tb_tensor_to(h, g_dev, NULL, TB_ORDER_F, 0, &df));
      assert_true(tb_tensor_is_contiguous(df, TB_ORDER_F));
      backf = to_host(df);
      assert_memory_equal(tb_tensor_data(backf), buf, nbytes);
      tb_tensor_release(backf);
      tb_tensor_release(df);
    }
    tb_tensor_release(back);
    tb_tensor_release(d);
    tb_tensor_release(h);
  }
}

typedef tb_status (*view_fn)(const tb_tensor_t *, tb_tensor_t **);
static tb_status view_steps(const tb_tensor_t *t, tb_tensor_t **out) {
  return tb_tensor_slice(t, 1, 1, INT64_MAX, 3, out);
}
static tb_status view_transpose(const tb_tensor_t *t, tb_tensor_t **out) {
  return tb_tensor_transpose(t, 0, 1, out);
}
static tb_status view_reversed(const tb_tensor_t *t, tb_tensor_t **out) {
  tb_tensor_t *r;
  tb_status st;
  guarded_call(st, tb_tensor_slice(t, 0, INT64_MAX, INT64_MIN, -1, &r));
  if (st != TB_OK) return st;
  guarded_call(st, tb_tensor_slice(r, 1, INT64_MAX, INT64_MIN, -2, out));
  tb_tensor_release(r);
  return st;
}
static tb_status view_mixed(const tb_tensor_t *t, tb_tensor_t **out) {
  tb_tensor_t *s;
  tb_status st;
  guarded_call(st, tb_tensor_slice(t, 0, -1, INT64_MIN, -2, &s));
  if (st != TB_OK) return st;
  guarded_call(st, tb_tensor_transpose(s, 0, 1, out));
  tb_tensor_release(s);
  return st;
}
static tb_status view_broadcast(const tb_tensor_t *t, tb_tensor_t **out) {
  tb_tensor_t *row;
  tb_status st;
  guarded_call(st, tb_tensor_select(t, 0, 2, &row));
  if (st != TB_OK) return st;
  int64_t shape[2] = {5, -1};
  guarded_call(st, tb_tensor_expand(row, 2, shape, out)); /* stride 0 */
  tb_tensor_release(row);
  return st;
}

/* Sliced, transposed, negative-stride and broadcast views, from the host to
 * the device and, as device views, back and within the device. */
static void strided_views_cross_both_ways(void **state) {
  (void)state;
  static const view_fn views[] = {view_steps, view_transpose, view_reversed, view_mixed,
                                  view_broadcast};
  static const char *const names[] = {"steps", "transpose", "reversed", "mixed", "broadcast"};
  int64_t shape[2] = {6, 8};
  DLDataType types[3] = {I32, dt(kDLComplex, 128), dt(kDLFloat, 16)};
  for (int t = 0; t < 3; t++) {
    tb_tensor_t *base = host_iota(types[t], 2, shape), *dbase = to_dev(base, NULL);
    for (size_t v = 0; v < sizeof views / sizeof *views; v++) {
      tb_tensor_t *hv, *dv, *expect, *d, *dense, *back, *fback, *fc;
      assert_ok(views[v](base, &hv));
      assert_ok(views[v](dbase, &dv));
      assert_ok(tb_tensor_copy(hv, NULL, TB_ORDER_C, 0, &expect));
      d = to_dev(hv, NULL); /* host view -> device */
      assert_same_bytes(names[v], d, expect, NULL, 0);
      assert_ok(tb_tensor_contiguous(dv, TB_ORDER_C, &dense)); /* on the device */
      assert_same_bytes(names[v], dense, expect, NULL, 0);
      back = to_host(dv); /* device view -> host */
      assert_same_bytes(names[v], back, expect, NULL, 0);
      assert_ok(tb_tensor_to(dv, cpu(), NULL, TB_ORDER_F, 0, &fback));
      assert_ok(tb_tensor_contiguous(fback, TB_ORDER_C, &fc));
      assert_same_bytes(names[v], fc, expect, NULL, 0);
      tb_tensor_release(fc);
      tb_tensor_release(fback);
      tb_tensor_release(back);
      tb_tensor_release(dense);
      tb_tensor_release(d);
      tb_tensor_release(expect);
      tb_tensor_release(dv);
      tb_tensor_release(hv);
    }
    tb_tensor_release(dbase);
    tb_tensor_release(base);
  }
  /* A sparse host source (mostly gaps) and a sparse device source. */
  int64_t n = 4000;
  tb_tensor_t *long_host = host_iota(F64, 1, &n), *sparse, *expect, *d, *dl, *dsparse, *back;
  assert_ok(tb_tensor_slice(long_host, 0, 3, INT64_MAX, 97, &sparse));
  assert_ok(tb_tensor_copy(sparse, NULL, TB_ORDER_C, 0, &expect));
  d = to_dev(sparse, NULL);
  assert_same_bytes("sparse host source", d, expect, NULL, 0);
  dl = to_dev(long_host, NULL);
  assert_ok(tb_tensor_slice(dl, 0, 3, INT64_MAX, 97, &dsparse));
  back = to_host(dsparse);
  assert_same_bytes("sparse device source", back, expect, NULL, 0);
  tb_tensor_release(back);
  tb_tensor_release(dsparse);
  tb_tensor_release(dl);
  tb_tensor_release(d);
  tb_tensor_release(expect);
  tb_tensor_release(sparse);
  tb_tensor_release(long_host);
}

/* Every pair of castable dtypes, converted on the way to the device, on the
 * device (dense and reversed sources) and on the way back, equals the CPU
 * engine's conversion of the same input bit for bit. */
static void casts_match_the_cpu_engine(void **state) {
  (void)state;
  const int64_t n = 240;
  uint64_t rng = 20240611;
  for (int s = 0; s < KINDS; s++) {
    unsigned char *src = cast_source(s, n, &rng);
    size_t item = kind_size(s);
    tb_tensor_t *h = wrap_host(src, kind_dtype(s), 1, &n), *hrev, *d, *drev;
    assert_ok(tb_tensor_slice(h, 0, INT64_MAX, INT64_MIN, -1, &hrev));
    d = to_dev(h, NULL);
    assert_ok(tb_tensor_slice(d, 0, INT64_MAX, INT64_MIN, -1, &drev));
    for (int t = 0; t < KINDS; t++) {
      if (t == s) continue;
      DLDataType to = kind_dtype(t);
      char what[96];
      tb_tensor_t *expect, *expect_rev, *got;
      assert_ok(tb_tensor_copy(h, &to, TB_ORDER_C, TB_CAST_DISCARD_IMAG, &expect));
      assert_ok(tb_tensor_copy(hrev, &to, TB_ORDER_C, TB_CAST_DISCARD_IMAG, &expect_rev));
      snprintf(what, sizeof what, "%s -> %s to the device", kind_names[s], kind_names[t]);
      got = to_dev(h, &to);
      assert_same_bytes(what, got, expect, src, item);
      tb_tensor_release(got);
      snprintf(what, sizeof what, "%s -> %s on the device", kind_names[s], kind_names[t]);
      got = to_dev(d, &to);
      assert_same_bytes(what, got, expect, src, item);
      tb_tensor_release(got);
      snprintf(what, sizeof what, "%s -> %s on the device, reversed", kind_names[s], kind_names[t]);
      got = to_dev(drev, &to);
      assert_same_bytes(what, got, expect_rev, NULL, 0);
      tb_tensor_release(got);
      snprintf(what, sizeof what, "%s -> %s to the host", kind_names[s], kind_names[t]);
      assert_ok(tb_tensor_to(d, cpu(), &to, TB_ORDER_C, TB_CAST_DISCARD_IMAG, &got));
      assert_same_bytes(what, got, expect, src, item);
      tb_tensor_release(got);
      tb_tensor_release(expect_rev);
      tb_tensor_release(expect);
    }
    tb_tensor_release(drev);
    tb_tensor_release(d);
    tb_tensor_release(hrev);
    tb_tensor_release(h);
    free(src);
  }
}

/* Signalling NaNs: every conversion makes them quiet (sign kept; payload
 * kept where the target is float32 or float64), on the CPU and the device
 * alike, whatever the compiler. */
static void signalling_nans_follow_the_cpu(void **state) {
  (void)state;
  static const struct {
    int from, to;
  } pairs[] = {{K_F32, K_F64},  {K_F32, K_C128}, {K_C64, K_C128}, {K_F16, K_F64},
               {K_BF16, K_F64}, {K_F16, K_C128}, {K_F64, K_F32},  {K_F64, K_C64},
               {K_C128, K_C64}, {K_F64, K_C128}, {K_C128, K_F64}, {K_F64, K_F16},
               {K_F32, K_BF16}, {K_F32, K_F16},  {K_C128, K_BF16}, {K_F64, K_BOOL}};
  uint64_t rng = 7;
  const int64_t n = 64;
  for (size_t p = 0; p < sizeof pairs / sizeof *pairs; p++) {
    int k = pairs[p].from;
    size_t item = kind_size(k);
    bool complex = k == K_C64 || k == K_C128;
    size_t part = complex ? item / 2 : item;
    int mb = part == 8 ? 52 : part == 4 ? 23 : k == K_F16 ? 10 : 7;
    int eb = (int)(8 * part) - 1 - mb;
    unsigned char *src = malloc((size_t)n * item);
    for (int64_t i = 0; i < n * (int64_t)(item / part); i++) {
      uint64_t payload = next_random(&rng) & ((UINT64_C(1) << (mb - 1)) - 1u);
      if (payload == 0) payload = 1;
      if (i % 4 == 3) payload |= UINT64_C(1) << (mb - 1); /* some quiet ones too */
      uint64_t sign = next_random(&rng) & 1u, field = (UINT64_C(1) << eb) - 1u;
      uint64_t bits = ((sign << eb | field) << mb) | payload;
      store_bits(src + (size_t)i * part, bits, part);
    }
    DLDataType to = kind_dtype(pairs[p].to);
    tb_tensor_t *h = wrap_host(src, kind_dtype(k), 1, &n), *d = to_dev(h, NULL), *expect, *got;
    char what[96];
    snprintf(what, sizeof what, "NaNs %s -> %s", kind_names[k], kind_names[pairs[p].to]);
    assert_ok(tb_tensor_copy(h, &to, TB_ORDER_C, TB_CAST_DISCARD_IMAG, &expect));
    got = to_dev(d, &to);
    assert_same_bytes(what, got, expect, src, item);
    tb_tensor_release(got);
    tb_tensor_release(expect);
    tb_tensor_release(d);
    tb_tensor_release(h);
    free(src);
  }
}

/* complex -> real needs TB_CAST_DISCARD_IMAG on the device as on the host. */
static void complex_to_real_needs_the_flag(void **state) {
  (void)state;
  int64_t n = 4;
  tb_tensor_t *h = host_iota(dt(kDLComplex, 64), 1, &n), *d = to_dev(h, NULL), *out = NULL;
  DLDataType f32 = F32, i16 = I16;
  assert_status(tb_tensor_to(d, g_dev, &f32, TB_ORDER_C, 0, &out), TB_ERR_DTYPE);
  assert_error_mentions("imaginary");
  assert_status(tb_tensor_to(d, cpu(), &i16, TB_ORDER_C, 0, &out), TB_ERR_DTYPE);
  assert_status(tb_tensor_to(h, g_dev, &f32, TB_ORDER_C, 0, &out), TB_ERR_DTYPE);
  assert_null(out);
  DLDataType f8 = dtype_named("float8_e5m2");
  assert_status(tb_tensor_to(d, g_dev, &f8, TB_ORDER_C, 0, &out), TB_ERR_DTYPE);
  tb_tensor_release(d);
  tb_tensor_release(h);
}

/* Writes into strided device views change only their elements: the same
 * writes on a host tensor give the same bytes everywhere. */
static void strided_destinations_keep_their_gaps(void **state) {
  (void)state;
  int64_t shape[2] = {6, 8}, small[2] = {3, 4};
  double seven = 7.0;
  tb_tensor_t *host, *dev, *hv, *dv, *hvt, *dvt, *src, *dsrc;
  assert_ok(tb_tensor_full(F32, 2, shape, cpu(), TB_ORDER_C, &seven, F64, &host));
  assert_ok(tb_tensor_full(F32, 2, shape, g_dev, TB_ORDER_C, &seven, F64, &dev));
  /* rows 4, 2, 0 and every other column from 1: a reversed, stepped view */
  assert_ok(tb_tensor_slice(host, 0, 4, INT64_MIN, -2, &hvt));
  assert_ok(tb_tensor_slice(dev, 0, 4, INT64_MIN, -2, &dvt));
  assert_ok(tb_tensor_slice(hvt, 1, 1, INT64_MAX, 2, &hv));
  assert_ok(tb_tensor_slice(dvt, 1, 1, INT64_MAX, 2, &dv));
  src = host_iota(F64, 2, small); /* a cast on the way, from the host */
  assert_ok(tb_tensor_copy_into(hv, src, 0));
  assert_ok(tb_tensor_copy_into(dv, src, 0));
  assert_same_bytes("host -> strided device view", dev, host, NULL, 0);
  tb_tensor_release(src);
  src = host_iota(I64, 2, small);
  dsrc = to_dev(src, NULL); /* then from the device, transposed, with a cast */
  tb_tensor_t *hsrc_t, *dsrc_t, *hv_t, *dv_t;
  assert_ok(tb_tensor_transpose(src, 0, 1, &hsrc_t));
  assert_ok(tb_tensor_transpose(dsrc, 0, 1, &dsrc_t));
  assert_ok(tb_tensor_transpose(hv, 0, 1, &hv_t));
  assert_ok(tb_tensor_transpose(dv, 0, 1, &dv_t));
  assert_ok(tb_tensor_copy_into(hv_t, hsrc_t, 0));
  assert_ok(tb_tensor_copy_into(dv_t, dsrc_t, 0));
  assert_same_bytes("device -> strided device view", dev, host, NULL, 0);
  /* and a strided host destination from the device keeps its gaps too */
  assert_ok(tb_tensor_fill(hv, &seven, F64));
  tb_tensor_t *host2;
  assert_ok(tb_tensor_copy(host, NULL, TB_ORDER_C, 0, &host2));
  tb_tensor_t *h2v, *h2vt;
  assert_ok(tb_tensor_slice(host2, 0, 4, INT64_MIN, -2, &h2vt));
  assert_ok(tb_tensor_slice(h2vt, 1, 1, INT64_MAX, 2, &h2v));
  assert_ok(tb_tensor_copy_into(h2v, dv, 0));
  assert_ok(tb_tensor_copy_into(hv, dv, 0));
  assert_same_bytes("device view -> strided host view", host2, host, NULL, 0);
  tb_tensor_release(h2v);
  tb_tensor_release(h2vt);
  tb_tensor_release(host2);
  tb_tensor_release(dv_t);
  tb_tensor_release(hv_t);
  tb_tensor_release(dsrc_t);
  tb_tensor_release(hsrc_t);
  tb_tensor_release(dsrc);
  tb_tensor_release(src);
  tb_tensor_release(dv);
  tb_tensor_release(hv);
  tb_tensor_release(dvt);
  tb_tensor_release(hvt);
  tb_tensor_release(dev);
  tb_tensor_release(host);
}

static void empty_and_zero_dim_tensors(void **state) {
  (void)state;
  int64_t shape[2] = {2, 0};
  DLDataType i64 = I64;
  tb_tensor_t *e, *he, *back, *cast;
  assert_ok(tb_tensor_zeros(F64, 2, shape, g_dev, TB_ORDER_C, &e));
  assert_int_equal(tb_tensor_numel(e), 0);
  back = to_host(e);
  assert_int_equal(tb_tensor_numel(back), 0);
  assert_int_equal(tb_tensor_shape(back)[0], 2);
  assert_ok(tb_tensor_to(e, g_dev, &i64, TB_ORDER_F, 0, &cast));
  assert_int_equal(tb_tensor_numel(cast), 0);
  assert_ok(tb_tensor_empty(F32, 2, shape, cpu(), TB_ORDER_C, &he));
  tb_tensor_t *d = to_dev(he, &i64);
  assert_int_equal(tb_tensor_numel(d), 0);
  tb_tensor_release(d);
  tb_tensor_release(he);
  tb_tensor_release(cast);
  tb_tensor_release(back);
  tb_tensor_release(e);
  /* 0-d: one element, no shape */
  double v = 2.75;
  tb_tensor_t *s, *si, *hs, *hsi, *z, *hz;
  assert_ok(tb_tensor_full(F32, 0, NULL, g_dev, TB_ORDER_C, &v, F64, &s));
  assert_int_equal(tb_tensor_ndim(s), 0);
  hs = to_host(s);
  assert_true(*(float *)tb_tensor_data(hs) == 2.75f);
  assert_ok(tb_tensor_to(s, g_dev, &i64, TB_ORDER_C, 0, &si));
  hsi = to_host(si);
  assert_int_equal(*(int64_t *)tb_tensor_data(hsi), 2);
  assert_ok(tb_tensor_zeros(dt(kDLComplex, 128), 0, NULL, g_dev, TB_ORDER_C, &z));
  hz = to_host(z);
  static const unsigned char zero16[16] = {0};
  assert_memory_equal(tb_tensor_data(hz), zero16, 16);
  tb_tensor_release(hz);
  tb_tensor_release(z);
  tb_tensor_release(hsi);
  tb_tensor_release(si);
  tb_tensor_release(hs);
  tb_tensor_release(s);
}

/* zeros and full on the device equal the CPU's, for every dtype, both
 * orders and values of several dtypes. */
static void zeros_and_full_on_the_device(void **state) {
  (void)state;
  int64_t shape[2] = {5, 3};
  const double dv = -2.75;
  const int64_t iv = -300;
  const double cv[2] = {1e10, -0.5};
  const struct {
    const void *value;
    DLDataType dtype;
  } values[3] = {{&dv, F64}, {&iv, I64}, {cv, dt(kDLComplex, 128)}};
  for (int k = 0; k < KINDS + 2; k++) {
    /* After the kinds: a float8 dtype, and a packed one (float4: two
     * elements a byte, zeroed as bytes). */
    DLDataType dtype = k < KINDS    ? kind_dtype(k)
                       : k == KINDS ? dtype_named("float8_e4m3fn")
                                    : dtype_named("float4_e2m1fn");
    /* Packed storage is C-contiguous only. */
    for (int order = 0; order < (k == KINDS + 1 ? 1 : 2); order++) {
      tb_tensor_t *z, *hz, *expect, *dirty;
      /* Device memory just given back, full of 0xFF bytes, is what the next
       * allocation of the same size is likely to get. */
      const uint8_t ones = 0xFF;
      int64_t bytes = tb_dtype_itemsize(dtype) > 0 ? 15 * (int64_t)tb_dtype_itemsize(dtype) : 8;
      assert_ok(tb_tensor_full(U8, 1, &bytes, g_dev, TB_ORDER_C, &ones, U8, &dirty));
      tb_tensor_release(dirty);
      assert_ok(tb_tensor_zeros(dtype, 2, shape, g_dev, (tb_order)order, &z));
      assert_ok(tb_tensor_zeros(dtype, 2, shape, cpu(), (tb_order)order, &expect));
      hz = to_host(z);
      assert_same_bytes("zeros", hz, expect, NULL, 0);
      tb_tensor_release(expect);
      tb_tensor_release(hz);
      tb_tensor_release(z);
      for (int i = 0; i < 3 && k < KINDS; i++) {
        tb_tensor_t *f, *fe;
        bool refused = i == 2 && k != K_BOOL && k != K_C64 && k != K_C128; /* complex -> real */
        tb_status st;
        guarded_call(st, tb_tensor_full(dtype, 2, shape, g_dev, (tb_order)order, values[i].value,
                                        values[i].dtype, &f));
        if (refused) {
          assert_int_equal(st, TB_ERR_DTYPE);
          continue;
        }
        assert_ok(st);
        assert_ok(tb_tensor_full(dtype, 2, shape, cpu(), (tb_order)order, values[i].value,
                                 values[i].dtype, &fe));
        assert_same_bytes("full", f, fe, NULL, 0);
        tb_tensor_release(fe);
        tb_tensor_release(f);
      }
    }
  }
}

/* A device allocation beyond what the device can give fails with a status
 * and a message, and leaves nothing allocated on the host. */
static void failed_device_allocations_are_reported(void **state) {
  (void)state;
  test_allocator a;
  test_allocator_install(&a, -1);
  int64_t huge = INT64_C(1) << 50; /* a pebibyte of bytes */
  tb_tensor_t *t = NULL;
  tb_clear_error();
  tb_status st;
  guarded_call(st, tb_tensor_empty(U8, 1, &huge, g_dev, TB_ORDER_C, &t));
  if (st != TB_ERR_NOMEM && st != TB_ERR_DEVICE) {
    print_error("expected TB_ERR_NOMEM or TB_ERR_DEVICE, got %s: %s\n", tb_status_name(st),
                tb_last_error());
    fail();
  }
  assert_null(t);
  /* the message names the backend: "opencl", "cuda" (also for cuda_host) */
  char backend[16];
  snprintf(backend, sizeof backend, "%s", tb_device_type_name(g_dev.device_type));
  backend[strcspn(backend, "_")] = '\0';
  assert_error_mentions(backend);
  int64_t shape[2] = {1 << 20, 1 << 20};
  assert_status(tb_tensor_zeros(F32, 2, shape, g_dev, TB_ORDER_C, &t), st);
  test_allocator_remove();
  assert_int_equal(a.live_bytes, 0);
  assert_int_equal(a.allocs, a.frees);
  /* the device still works */
  int64_t n = 3;
  tb_tensor_t *h = host_iota(F32, 1, &n), *d = to_dev(h, NULL), *back = to_host(d);
  assert_memory_equal(tb_tensor_data(back), tb_tensor_data(h), 12);
  tb_tensor_release(back);
  tb_tensor_release(d);
  tb_tensor_release(h);
}

typedef tb_status (*copy_case)(tb_tensor_t *const *in, tb_tensor_t **out);

static tb_status case_transposed_up(tb_tensor_t *const *in, tb_tensor_t **out) {
  DLDataType f64 = F64;
  return tb_tensor_to(in[0], g_dev, &f64, TB_ORDER_C, 0, out);
}
static tb_status case_sparse_up(tb_tensor_t *const *in, tb_tensor_t **out) {
  return tb_tensor_to(in[1], g_dev, NULL, TB_ORDER_C, 0, out);
}
static tb_status case_cast_down(tb_tensor_t *const *in, tb_tensor_t **out) {
  DLDataType i16 = I16;
  return tb_tensor_to(in[2], cpu(), &i16, TB_ORDER_F, 0, out);
}
static tb_status case_device_cast(tb_tensor_t *const *in, tb_tensor_t **out) {
  DLDataType c64 = dt(kDLComplex, 64);
  return tb_tensor_to(in[2], g_dev, &c64, TB_ORDER_C, 0, out);
}
static tb_status case_gapped_host_destination(tb_tensor_t *const *in, tb_tensor_t **out) {
  int64_t shape[1] = {24};
  tb_tensor_t *h, *every_other = NULL;
  tb_status st;
  guarded_call(st, tb_tensor_zeros(F32, 1, shape, cpu(), TB_ORDER_C, &h));
  if (st != TB_OK) return st;
  guarded_call(st, tb_tensor_slice(h, 0, 0, INT64_MAX, 2, &every_other));
  if (st == TB_OK) guarded_call(st, tb_tensor_copy_into(every_other, in[3], 0));
  tb_tensor_release(every_other);
  if (st != TB_OK) {
    tb_tensor_release(h);
    return st;
  }
  *out = h;
  return TB_OK;
}

/* Every host allocation a copy makes (tensor headers, storage records,
 * staging buffers) may fail: each failure gives TB_ERR_NOMEM and leaks
 * nothing, whichever path the copy takes. */
static void failed_host_allocations_leak_nothing(void **state) {
  (void)state;
  int64_t shape[2] = {3, 4}, n = 40000;
  tb_tensor_t *base = host_iota(F32, 2, shape), *in[4], *longh, *dflat;
  assert_ok(tb_tensor_transpose(base, 0, 1, &in[0]));
  longh = host_iota(F32, 1, &n);
  /* 13 elements 12 KiB apart: too sparse to upload whole, so it is staged */
  assert_ok(tb_tensor_slice(longh, 0, 0, INT64_MAX, 3333, &in[1]));
  tb_tensor_t *d = to_dev(base, NULL);
  assert_ok(tb_tensor_transpose(d, 0, 1, &in[2]));
  int64_t twelve = 12;
  assert_ok(tb_tensor_reshape(d, 1, &twelve, &dflat));
  in[3] = dflat;
  static const copy_case cases[] = {case_transposed_up, case_sparse_up, case_cast_down,
                                    case_device_cast, case_gapped_host_destination};
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    for (long fail_at = 0;; fail_at++) {
      test_allocator a;
      tb_tensor_t *out = NULL;
      test_allocator_install(&a, fail_at);
      tb_status st;
      guarded_call(st, cases[c](in, &out)); /* a success leaves the message untouched */
      bool reached = a.calls > fail_at;
      tb_tensor_release(out);
      test_allocator_remove();
      if (a.live_bytes != 0) {
        print_error("case %zu, failing allocation %ld: %ld bytes leaked\n", c, fail_at,
                    a.live_bytes);
        fail();
      }
      if (st == TB_OK) {
        assert_false(reached);
        break;
      }
      if (st != TB_ERR_NOMEM) {
        print_error("case %zu, failing allocation %ld: %s: %s\n", c, fail_at, tb_status_name(st),
                    tb_last_error());
        fail();
      }
    }
  }
  tb_tensor_release(d);
  for (int i = 0; i < 3; i++) tb_tensor_release(in[i]);
  tb_tensor_release(dflat);
  tb_tensor_release(longh);
  tb_tensor_release(base);
}

/* DLPack export shares the device memory: for a handle device data is the
 * storage's handle and byte_offset is kept; importing it back shares the
 * same handle. */
static void dlpack_shares_device_memory(void **state) {
  (void)state;
  int64_t shape[2] = {4, 6};
  tb_tensor_t *h = host_iota(F32, 2, shape), *d = to_dev(h, NULL), *view;
  assert_ok(tb_tensor_slice(d, 0, 1, INT64_MAX, 1, &view)); /* rows 1..3: offset 24 bytes */
  assert_int_equal(tb_tensor_byte_offset(view), 24);
  DLManagedTensorVersioned *m;
  assert_ok(tb_to_dlpack_versioned(view, NULL, &m));
  assert_int_equal(m->dl_tensor.device.device_type, g_dev.device_type);
  assert_int_equal(m->dl_tensor.device.device_id, g_dev.device_id);
  if (handle_device(g_dev.device_type)) {
    assert_ptr_equal(m->dl_tensor.data, tb_tensor_base(view));
    assert_int_equal(m->dl_tensor.byte_offset, 24);
  } else {
    assert_ptr_equal(m->dl_tensor.data, (char *)tb_tensor_base(view) + 24);
    assert_int_equal(m->dl_tensor.byte_offset, 0);
  }
  tb_tensor_t *back, *hb, *expect;
  assert_ok(tb_from_dlpack_versioned(m, NULL, &back));
  if (handle_device(g_dev.device_type)) {
    assert_ptr_equal(tb_tensor_base(back), tb_tensor_base(view));
    assert_int_equal(tb_tensor_byte_offset(back), 24);
  }
  /* writes through the import are seen through the original */
  double minus = -1.0;
  assert_ok(tb_tensor_fill(back, &minus, F64));
  hb = to_host(d);
  assert_ok(tb_tensor_copy(h, NULL, TB_ORDER_C, 0, &expect));
  for (int i = 6; i < 24; i++) ((float *)tb_tensor_data(expect))[i] = -1.0f;
  assert_same_bytes("write through a DLPack import", hb, expect, NULL, 0);
  tb_tensor_release(expect);
  tb_tensor_release(hb);
  tb_tensor_release(back); /* runs the export's deleter */
  /* the stream exchange with the library's own queue */
  tb_export_options o = {.stream = 1};
  assert_ok(tb_to_dlpack_versioned(view, &o, &m));
  m->deleter(m);
  tb_tensor_release(view);
  tb_tensor_release(d);
  tb_tensor_release(h);
}

/* Device ids outside the device list are refused with a message. */
static void absent_device_ids_are_refused(void **state) {
  (void)state;
  int32_t count = tb_device_count(g_dev.device_type);
  DLDevice absent = {g_dev.device_type, count};
  int64_t n = 4;
  tb_tensor_t *t = NULL, *h = host_iota(F32, 1, &n);
  assert_status(tb_tensor_empty(F32, 1, &n, absent, TB_ORDER_C, &t), TB_ERR_DEVICE);
  assert_error_mentions("not present");
  assert_status(tb_tensor_to(h, absent, NULL, TB_ORDER_C, 0, &t), TB_ERR_DEVICE);
  assert_null(t);
  tb_tensor_release(h);
}

/* The backend's stream functions on its default stream. */
static void streams_synchronize(void **state) {
  (void)state;
  const tb_device_vtable *b = tb_get_backend(g_dev.device_type);
  assert_non_null(b);
  int64_t n = 1000;
  tb_tensor_t *h = host_iota(F64, 1, &n), *d = to_dev(h, NULL);
  if (b->synchronize != NULL) assert_ok(b->synchronize(b, g_dev.device_id, NULL));
  if (b->stream_wait != NULL) assert_ok(b->stream_wait(b, g_dev.device_id, NULL, NULL));
  tb_tensor_release(d);
  tb_tensor_release(h);
}

/* Between two devices of the type, when there are two. */
static void copies_between_devices(void **state) {
  (void)state;
  if (tb_device_count(g_dev.device_type) < 2) skip();
  DLDevice other = {g_dev.device_type, g_dev.device_id == 0 ? 1 : 0};
  int64_t shape[2] = {5, 7};
  DLDataType f16 = dt(kDLFloat, 16);
  tb_tensor_t *h = host_iota(F32, 2, shape), *d = to_dev(h, NULL), *dt_, *o, *back, *expect;
  assert_ok(tb_tensor_transpose(d, 0, 1, &dt_));
  assert_ok(tb_tensor_to(dt_, other, &f16, TB_ORDER_C, 0, &o));
  back = to_host(o);
  tb_tensor_t *ht;
  assert_ok(tb_tensor_transpose(h, 0, 1, &ht));
  assert_ok(tb_tensor_copy(ht, &f16, TB_ORDER_C, 0, &expect));
  assert_same_bytes("between devices", back, expect, NULL, 0);
  tb_tensor_release(ht);
  tb_tensor_release(expect);
  tb_tensor_release(back);
  tb_tensor_release(o);
  tb_tensor_release(dt_);
  tb_tensor_release(d);
  tb_tensor_release(h);
}

/* OpenCL: memory another program made in a context of its own, wrapped
 * without a copy. Reads and writes reach it; the deleter runs once. */
static void opencl_foreign_memory_is_shared(void **state) {
  (void)state;
  if (g_dev.device_type != kDLOpenCL) skip();
  assert_true(g_dev.device_id < ocl.ndevices);
  void *device = ocl.devices[g_dev.device_id];
  ocl_int err = 0;
  void *ctx = ocl.CreateContext(NULL, 1, &device, NULL, NULL, &err);
  assert_non_null(ctx);
  void *queue = ocl.CreateCommandQueue(ctx, device, 0, &err);
  assert_non_null(queue);
  float init[24];
  for (int i = 0; i < 24; i++) init[i] = (float)i;
  void *mem = ocl.CreateBuffer(ctx, OCL_MEM_READ_WRITE, sizeof init, NULL, &err);
  assert_non_null(mem);
  assert_int_equal(ocl.EnqueueWriteBuffer(queue, mem, 1, 0, sizeof init, init, 0, NULL, NULL), 0);
  counted c = {0};
  int64_t shape[2] = {4, 5};
  tb_tensor_t *t, *back, *tt, *dcast, *expect, *ht;
  /* elements 2..21 of the buffer: byte_offset 8 */
  assert_ok(tb_from_array(mem, 8, F32, 2, shape, NULL, g_dev, 0, release_cl_mem, &c, &t));
  assert_ptr_equal(tb_tensor_base(t), mem);
  back = to_host(t);
  assert_memory_equal(tb_tensor_data(back), init + 2, 20 * sizeof(float));
  /* a transposed view of it onto the library's memory, with a cast */
  DLDataType f64 = F64;
  assert_ok(tb_tensor_transpose(t, 0, 1, &tt));
  assert_ok(tb_tensor_to(tt, g_dev, &f64, TB_ORDER_C, 0, &dcast));
  assert_ok(tb_tensor_transpose(back, 0, 1, &ht));
  assert_ok(tb_tensor_copy(ht, &f64, TB_ORDER_C, 0, &expect));
  assert_same_bytes("foreign memory -> device", dcast, expect, NULL, 0);
  /* writes from the library's memory into it, seen by the other program */
  double v = -1.5;
  tb_tensor_t *full;
  assert_ok(tb_tensor_full(F32, 2, shape, g_dev, TB_ORDER_C, &v, F64, &full));
  assert_ok(tb_tensor_copy_into(t, full, 0));
  float got[24];
  assert_int_equal(ocl.EnqueueReadBuffer(queue, mem, 1, 0, sizeof got, got, 0, NULL, NULL), 0);
  for (int i = 0; i < 24; i++) assert_true(got[i] == (i < 2 || i >= 22 ? (float)i : -1.5f));
  /* the backend's byte copy between the two contexts, through the host */
  const tb_device_vtable *b = tb_get_backend(kDLOpenCL);
  tb_tensor_t *h3 = host_iota(F32, 1, &(int64_t){3}), *d3 = to_dev(h3, NULL);
  test_allocator a;
  test_allocator_install(&a, 0); /* the bounce buffer cannot be had */
  assert_status(b->copy_bytes(b, mem, 4, g_dev, tb_tensor_base(d3), 0, g_dev, 12, NULL),
                TB_ERR_NOMEM);
  test_allocator_remove();
  assert_int_equal(a.live_bytes, 0);
  assert_ok(b->copy_bytes(b, mem, 4, g_dev, tb_tensor_base(d3), 0, g_dev, 12, NULL));
  assert_int_equal(ocl.EnqueueReadBuffer(queue, mem, 1, 0, sizeof got, got, 0, NULL, NULL), 0);
  const float *h3v = tb_tensor_data(h3);
  assert_true(got[0] == 0.0f && got[1] == h3v[0] && got[2] == h3v[1] && got[3] == h3v[2]);
  assert_true(got[4] == -1.5f);
  /* an OpenCL error names the call and the code */
  float one = 1.0f;
  assert_status(b->copy_bytes(b, mem, 4096, g_dev, &one, 0, cpu(), sizeof one, NULL),
                TB_ERR_DEVICE);
  assert_error_mentions("opencl: clEnqueueWriteBuffer(offset = 4096, nbytes = 4) failed: "
                        "CL_INVALID_VALUE (-30)");
  /* exported to DLPack with the other program's queue as the stream */
  DLManagedTensorVersioned *m;
  tb_export_options o = {.stream = (intptr_t)queue};
  assert_ok(tb_to_dlpack_versioned(full, &o, &m));
  m->deleter(m);
  tb_tensor_release(d3);
  tb_tensor_release(h3);
  tb_tensor_release(full);
  tb_tensor_release(expect);
  tb_tensor_release(ht);
  tb_tensor_release(dcast);
  tb_tensor_release(tt);
  tb_tensor_release(back);
  assert_int_equal(c.calls, 0);
  tb_tensor_release(t);
  assert_int_equal(c.calls, 1);
  assert_ptr_equal(c.last_data, mem);
  ocl.ReleaseCommandQueue(queue);
  ocl.ReleaseContext(ctx);
}

/* ------------------------------------------------------------------------ */
/* Every device of every type                                               */
/* ------------------------------------------------------------------------ */

static const int32_t device_types[] = {
    TB_DL_OPENCL, TB_DL_CUDA,   TB_DL_CUDA_HOST, TB_DL_CUDA_MANAGED, TB_DL_ROCM,
    TB_DL_ROCM_HOST, TB_DL_VULKAN, TB_DL_METAL,   TB_DL_VPI,          TB_DL_EXT_DEV,
    TB_DL_ONEAPI, TB_DL_WEBGPU, TB_DL_HEXAGON,   TB_DL_MAIA,         TB_DL_TRN,
};

int main(void) {
  const struct CMUnitTest battery[] = {
      cmocka_unit_test(first_uses_race_safely),
      cmocka_unit_test(every_dtype_round_trips),
      cmocka_unit_test(strided_views_cross_both_ways),
      cmocka_unit_test(casts_match_the_cpu_engine),
      cmocka_unit_test(signalling_nans_follow_the_cpu),
      cmocka_unit_test(complex_to_real_needs_the_flag),
      cmocka_unit_test(strided_destinations_keep_their_gaps),
      cmocka_unit_test(empty_and_zero_dim_tensors),
      cmocka_unit_test(zeros_and_full_on_the_device),
      cmocka_unit_test(failed_device_allocations_are_reported),
      cmocka_unit_test(failed_host_allocations_leak_nothing),
      cmocka_unit_test(dlpack_shares_device_memory),
      cmocka_unit_test(absent_device_ids_are_refused),
      cmocka_unit_test(streams_synchronize),
      cmocka_unit_test(copies_between_devices),
      cmocka_unit_test(opencl_foreign_memory_is_shared),
  };
  bool loader = ocl_open();
  int failures = 0, ran = 0;
  for (size_t i = 0; i < sizeof device_types / sizeof *device_types; i++) {
    int32_t type = device_types[i];
    const char *name = tb_device_type_name(type);
    /* Counting loads the driver the first time: no message may be left. */
    (void)tb_set_error(TB_ERR_INVALID, ok_guard_sentinel);
    int32_t count = tb_device_count(type);
    if (strcmp(tb_last_error(), ok_guard_sentinel) != 0) {
      printf("FAIL: tb_device_count(%s) changed the error message to \"%s\"\n", name,
             tb_last_error());
      failures++;
    }
    if (count == 0) {
      printf("skipping %s: %s\n", name,
             tb_get_backend(type) == NULL ? "no backend in this build"
                                          : "the backend found no device (driver missing?)");
      fflush(stdout);
      continue;
    }
    for (int32_t id = 0; id < count; id++) {
      char group[64];
      snprintf(group, sizeof group, "%s:%d", name, (int)id);
      g_dev = (DLDevice){(DLDeviceType)type, id};
      failures += cmocka_run_group_tests_name(group, battery, NULL, NULL);
      ran++;
    }
  }
  bool compiled = tb_get_backend(kDLOpenCL) != NULL;
  const char *expect_env = getenv("TB_EXPECT_OPENCL");
  bool expected = expect_env != NULL && strcmp(expect_env, "1") == 0;
  if (compiled && loader && ocl.ndevices != tb_device_count(kDLOpenCL)) {
    printf("FAIL: the ICD loader lists %d OpenCL device(s), the library %d\n", ocl.ndevices,
           (int)tb_device_count(kDLOpenCL));
    failures++;
  }
  if (ran == 0 && compiled && (ocl.ndevices > 0 || expected)) {
    printf("FAIL: the OpenCL backend is built%s, but no device ran the battery\n",
           expected ? " and TB_EXPECT_OPENCL=1" : " and this machine has an OpenCL device");
    failures++;
  }
  if (expected && !compiled) {
    printf("FAIL: TB_EXPECT_OPENCL=1 but the library was built without the OpenCL backend\n");
    failures++;
  }
  if (expected && compiled && tb_device_count(kDLOpenCL) == 0) {
    printf("FAIL: TB_EXPECT_OPENCL=1 but the library found no OpenCL device\n");
    failures++;
  }
  if (ran == 0) printf("no non-CPU device ran the battery\n");
  return failures == 0 ? 0 : 1;
}
