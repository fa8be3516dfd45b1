/*
 * libFuzzer target: DLPack import of producer structs built from arbitrary
 * bytes, legacy and versioned, with and without import options.
 *
 * The harness computes the memory an input's elements reach on its own, with
 * 128-bit arithmetic, and when that is small it allocates a buffer covering
 * exactly those bytes, so that AddressSanitizer reports any read outside
 * them. Otherwise `data` is a pointer that must never be dereferenced.
 * Properties checked on every input:
 *   - the producer's deleter runs exactly once, on success (at the last
 *     release) and on failure (before the import returns);
 *   - an import never succeeds where DLPack says it cannot (see input_valid);
 *     a plainly well-formed input is never refused (see input_tame);
 *   - a shared import covers exactly the producer's elements, and a copy of
 *     it reads every element (under ASan) and gets the right bytes;
 *   - an import meets the options it was given;
 *   - re-exporting an import and importing that again gives the same tensor;
 *   - a successful call leaves tb_last_error() untouched (a sentinel message
 *     is planted before each call), and a failing one replaces it;
 *   - memory is imported only for a device that is present: never CUDA
 *     device memory without a CUDA device, never as host-accessible memory;
 *   - an accepted tensor's reach, with every extent 0 read as 1, fits int64
 *     (the library's reach invariant: views of empty tensors cannot
 *     overflow).
 *
 * With -DTB_FUZZ_REPLAY a main() runs every file of the directories (or
 * files) named on the command line through the same entry point. Both hide
 * the machine's GPUs and OpenCL platforms (see LLVMFuzzerInitialize).
 *
 * Input format: see decode() below, and fuzz/make_corpus.py which writes it.
 */
#define _POSIX_C_SOURCE 200809L /* setenv */

/* tensorbridge.h before the system's dlpack.h: the include order that
 * tests/test_dlpack_abi.c does not compile. */
#include <tensorbridge/tensorbridge.h>
#include <tensorbridge/backend.h>

#include "fake_devices.h"
#if defined(__has_include)
#if __has_include(<dlpack/dlpack.h>)
#include <dlpack/dlpack.h>
#endif
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__extension__ typedef __int128 wide;

#include "replay.h"

/*
 * The machine's GPUs and OpenCL platforms are hidden from the process
 * (before the library first asks for them), unless TB_FUZZ_REAL_DEVICES=1:
 * the harness only ever hands the library host buffers or made-up handles,
 * so a real device adds nothing but a driver to load (PoCL's LLVM leaks at
 * exit under LeakSanitizer and trips valgrind inside ld.so) and results that
 * differ from machine to machine. Hidden, every CUDA and OpenCL import of
 * device memory takes the "no device is present" refusal.
 *
 * In their place, the made-up devices of tests/fake_devices.c: a handle type
 * (Vulkan: data is a VkBuffer) and an address type (VPI) that no build
 * serves, present, so that imports of them succeed, and touching nothing.
 */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  const char *real = getenv("TB_FUZZ_REAL_DEVICES");
  if (real == NULL || strcmp(real, "1") != 0) {
    (void)setenv("OCL_ICD_VENDORS", "/nonexistent/tb-fuzz", 1);
    (void)setenv("OCL_ICD_FILENAMES", "", 1);
    (void)setenv("CUDA_VISIBLE_DEVICES", "", 1);
  }
  if (fake_devices_register() != TB_OK) {
    fprintf(stderr, "fuzz_dlpack_import: registering the fake devices failed: %s\n",
            tb_last_error());
    abort();
  }
  return 0;
}

#define TB_FUZZ_NAME "fuzz_dlpack_import"
#include "fuzz_common.h"

/* ------------------------------------------------------------------------ */
/* Decoding                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct reader {
  const uint8_t *p;
  size_t n;
} reader;

/* Past the end every byte reads as 0, so every input decodes. */
static uint8_t get_u8(reader *r) {
  if (r->n == 0) return 0;
  r->n--;
  return *r->p++;
}

static uint64_t get_le(reader *r, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++) v |= (uint64_t)get_u8(r) << (8 * i);
  return v;
}

/* Values where arithmetic on shapes, strides and offsets tends to break. */
static const int64_t k_special[16] = {
    INT64_MAX,
    INT64_MIN,
    INT64_MAX / 2,
    (int64_t)1 << 31,
    (int64_t)1 << 32,
    (int64_t)1 << 40,
    (int64_t)1 << 62,
    -((int64_t)1 << 62),
    INT64_MAX - 1,
    (int64_t)1 << 20,
    (int64_t)1 << 30,
    -((int64_t)1 << 20),
    INT32_MAX,
    (int64_t)UINT32_MAX,
    (int64_t)1 << 61,
    -((int64_t)1 << 61),
};

/*
 * One tag byte: 0x00-0x7F the value itself; 0x80-0xBF -1 .. -64;
 * 0xC0-0xCF k_special; 0xD0-0xFF eight raw little-endian bytes follow.
 */
static int64_t get_coded(reader *r) {
  uint8_t t = get_u8(r);
  if (t < 0x80) return t;
  if (t < 0xC0) return -(int64_t)(t - 0x7F);
  if (t < 0xD0) return k_special[t - 0xC0];
  return (int64_t)get_le(r, 8);
}

/* More entries than TB_MAX_NDIM: a library that reads ndim = 70 entries
 * reads initialised memory, one that reads ndim = 127 reads past it. */
#define STORED_DIMS 72

enum { DATA_BUFFER = 0, DATA_NULL = 1, DATA_RAW = 2, DATA_MISALIGNED = 3 };

typedef struct input {
  bool legacy, strides_null, shape_null, use_options, no_deleter, reexport;
  int data_mode;
  uint32_t major, minor;
  uint64_t flags;
  DLDevice device;
  DLDataType dtype;
  int32_t ndim;
  int32_t stored; /* entries in shape[] and strides[] */
  int64_t shape[STORED_DIMS];
  int64_t strides[STORED_DIMS];
  uint64_t byte_offset;
  uint64_t raw_pointer;
  unsigned misalign;
  /* options */
  uint8_t opt_layout, opt_copy, opt_alignment_code;
  bool opt_writable, opt_has_dtype, opt_has_device;
  DLDataType opt_dtype;
  DLDevice opt_device;
} input;

static const DLDataType k_option_dtypes[] = {
    {6, 8, 1},  {0, 8, 1},  {0, 16, 1}, {0, 32, 1}, {0, 64, 1},  {1, 8, 1},
    {1, 64, 1}, {2, 16, 1}, {4, 16, 1}, {2, 32, 1}, {2, 64, 1},  {5, 64, 1},
    {5, 128, 1}, {10, 8, 1}, {17, 4, 1}, {2, 24, 1},
};

/*
 * sel          u8   bit0 legacy, bit1 strides NULL, bit2 shape NULL,
 *                   bits3-4 data mode, bit5 options, bit6 no deleter,
 *                   bit7 re-export the result
 * [versioned]  u32 major, u32 minor, u64 flags
 * device       i8 type, i8 id
 * dtype        u8 code, u8 bits, u16 lanes
 * ndim         i8 (0x7F: an i32 follows)
 * shape        min(max(ndim, 0), 72) coded values (absent when shape NULL)
 * strides      as many coded values (absent when strides NULL)
 * byte_offset  coded
 * [data RAW]   u64 pointer; [data MISALIGNED] u8 shift (1 + b % 15)
 * [options]    u8 a: layout a%3, copy (a/3)%3, writable (a/9)&1,
 *                    alignment {0,1,16,64,128}[(a/18)%5]
 *              u8 b: bit7 dtype from the table [b & 15], else bit6 raw
 *                    dtype (u8 code, u8 bits, u16 lanes) follows
 *              u8 c: bit0 device {c>>1 % 20, 0}
 */
static void decode(const uint8_t *bytes, size_t size, input *in) {
  reader r = {bytes, size};
  memset(in, 0, sizeof *in);
  uint8_t sel = get_u8(&r);
  in->legacy = sel & 1;
  in->strides_null = (sel >> 1) & 1;
  in->shape_null = (sel >> 2) & 1;
  in->data_mode = (sel >> 3) & 3;
  in->use_options = (sel >> 5) & 1;
  in->no_deleter = (sel >> 6) & 1;
  in->reexport = (sel >> 7) & 1;
  if (!in->legacy) {
    in->major = (uint32_t)get_le(&r, 4);
    in->minor = (uint32_t)get_le(&r, 4);
    in->flags = get_le(&r, 8);
  }
  in->device.device_type = (DLDeviceType)(int8_t)get_u8(&r);
  in->device.device_id = (int8_t)get_u8(&r);
  in->dtype.code = get_u8(&r);
  in->dtype.bits = get_u8(&r);
  in->dtype.lanes = (uint16_t)get_le(&r, 2);
  int8_t nd = (int8_t)get_u8(&r);
  in->ndim = nd == 0x7F ? (int32_t)get_le(&r, 4) : nd;
  in->stored = in->ndim < 0 ? 0 : in->ndim > STORED_DIMS ? STORED_DIMS : in->ndim;
  if (!in->shape_null) {
    for (int32_t d = 0; d < in->stored; d++) in->shape[d] = get_coded(&r);
  }
  if (!in->strides_null) {
    for (int32_t d = 0; d < in->stored; d++) in->strides[d] = get_coded(&r);
  }
  in->byte_offset = (uint64_t)get_coded(&r);
  if (in->data_mode == DATA_RAW) in->raw_pointer = get_le(&r, 8);
  if (in->data_mode == DATA_MISALIGNED) in->misalign = 1u + get_u8(&r) % 15u;
  if (in->use_options) {
    uint8_t a = get_u8(&r), b = get_u8(&r);
    in->opt_layout = a % 3;
    in->opt_copy = (a / 3) % 3;
    in->opt_writable = (a / 9) & 1;
    in->opt_alignment_code = (a / 18) % 5;
    if (b & 0x80) {
      in->opt_has_dtype = true;
      in->opt_dtype = k_option_dtypes[b & 15];
    } else if (b & 0x40) {
      in->opt_has_dtype = true;
      in->opt_dtype.code = get_u8(&r);
      in->opt_dtype.bits = get_u8(&r);
      in->opt_dtype.lanes = (uint16_t)get_le(&r, 2);
    }
    uint8_t c = get_u8(&r);
    if (c & 1) {
      in->opt_has_device = true;
      in->opt_device = (DLDevice){(DLDeviceType)((c >> 1) % 20), 0};
    }
  }
}

/* ------------------------------------------------------------------------ */
/* The harness's own knowledge of DLPack (from the 1.3 facts)               */
/* ------------------------------------------------------------------------ */

/* Bits of a known (code, bits) pair with lanes 1, or 0. */
static int dtype_bits(DLDataType t) {
  if (t.lanes != 1) return 0;
  switch (t.code) {
    case 0: /* int */
    case 1: /* uint */
      return (t.bits == 8 || t.bits == 16 || t.bits == 32 || t.bits == 64) ? t.bits : 0;
    case 2: /* float */
      return (t.bits == 16 || t.bits == 32 || t.bits == 64) ? t.bits : 0;
    case 4: /* bfloat */
      return t.bits == 16 ? 16 : 0;
    case 5: /* complex */
      return (t.bits == 64 || t.bits == 128) ? t.bits : 0;
    case 6: /* bool */
      return t.bits == 8 ? 8 : 0;
    default:
      if (t.code >= 7 && t.code <= 14) return t.bits == 8 ? 8 : 0;  /* float8 */
      if (t.code == 15 || t.code == 16) return t.bits == 6 ? 6 : 0; /* float6 */
      if (t.code == 17) return t.bits == 4 ? 4 : 0;                 /* float4 */
      return 0;
  }
}

static bool device_known(int32_t type) { return (type >= 1 && type <= 4) || (type >= 7 && type <= 18); }
static bool device_is_handle(int32_t type) { return type == 4 || type == 7 || type == 8 || type == 15; }

/* Memory the CPU reads: plain, CUDA pinned, ROCm pinned, CUDA managed. The
 * harness's buffers are host memory, so only these describe them truly. */
static bool device_is_host(int32_t type) { return type == 1 || type == 3 || type == 11 || type == 13; }

#define CAP ((wide)1 << 100) /* saturation: far beyond any 64-bit quantity */

static wide clamp(wide v) { return v > CAP ? CAP : v < -CAP ? -CAP : v; }
static wide sat_mul(wide a, wide b) {
  if (a == 0 || b == 0) return 0;
  wide aa = a < 0 ? -a : a, bb = b < 0 ? -b : b;
  if (aa > CAP / bb) return ((a < 0) != (b < 0)) ? -CAP : CAP;
  return a * b;
}

/* What the elements of an input reach, relative to its first element. */
typedef struct extent {
  bool shapes_ok;  /* every extent >= 0 */
  int bits;        /* 0: unknown dtype */
  wide itemsize;   /* bytes; 0 for packed sub-byte dtypes */
  wide numel;      /* saturated */
  wide prod_max1;  /* product of max(shape, 1), saturated */
  bool c_contig;   /* strides (or NULL) match C order where shape > 1 */
  wide lo, hi;     /* bytes [lo, hi) from the first element; 0, 0 when empty */
  /* The reach with every extent 0 read as 1, in elements and bytes (bytes
   * as elements for packed dtypes): what the library's views may compute,
   * empty tensors included. */
  wide vmin, vmax, vlo, vhi;
} extent;

static wide c_stride(const input *in, int32_t d) {
  wide s = 1;
  int32_t nd = in->ndim < in->stored ? in->ndim : in->stored;
  for (int32_t j = nd - 1; j > d; j--) {
    if (in->shape[j] > 1) s = sat_mul(s, in->shape[j]);
  }
  return s;
}

static wide stride_of(const input *in, int32_t d) {
  return in->strides_null ? c_stride(in, d) : in->strides[d];
}

static void measure(const input *in, extent *e) {
  memset(e, 0, sizeof *e);
  e->bits = dtype_bits(in->dtype);
  e->itemsize = e->bits >= 8 ? e->bits / 8 : 0;
  e->shapes_ok = true;
  e->numel = 1;
  e->prod_max1 = 1;
  e->c_contig = true;
  int32_t nd = in->stored < in->ndim ? in->stored : in->ndim;
  if (in->ndim < 0) nd = 0;
  for (int32_t d = 0; d < nd; d++) {
    if (in->shape[d] < 0) e->shapes_ok = false;
    e->numel = sat_mul(e->numel, in->shape[d]);
    e->prod_max1 = sat_mul(e->prod_max1, in->shape[d] > 1 ? in->shape[d] : 1);
    if (in->shape[d] > 1 && stride_of(in, d) != c_stride(in, d)) e->c_contig = false;
  }
  if (e->shapes_ok) {
    for (int32_t d = 0; d < nd; d++) {
      wide reach = sat_mul(in->shape[d] > 0 ? in->shape[d] - 1 : 0, stride_of(in, d));
      if (reach < 0) e->vmin = clamp(e->vmin + reach);
      else e->vmax = clamp(e->vmax + reach);
    }
    wide item = e->itemsize > 0 ? e->itemsize : 1;
    e->vlo = sat_mul(e->vmin, item);
    e->vhi = sat_mul(e->vmax + 1, item);
  }
  if (!e->shapes_ok || e->numel <= 0 || e->bits == 0) return;
  if (e->itemsize == 0) {
    e->lo = 0;
    e->hi = (sat_mul(e->numel, e->bits) + 7) / 8;
    return;
  }
  wide min_off = 0, max_off = 0;
  for (int32_t d = 0; d < nd; d++) {
    wide reach = sat_mul(in->shape[d] - 1, stride_of(in, d));
    if (reach < 0) min_off = clamp(min_off + reach);
    else max_off = clamp(max_off + reach);
  }
  e->lo = sat_mul(min_off, e->itemsize);
  e->hi = sat_mul(max_off + 1, e->itemsize);
}

/* The element-bytes of the input, when numel * itemsize is representable. */
static wide nbytes_of(const extent *e) {
  return e->itemsize > 0 ? sat_mul(e->numel, e->itemsize) : (sat_mul(e->numel, e->bits) + 7) / 8;
}

/*
 * Necessary for a successful import without options, straight from DLPack:
 * what a library that accepted anything else would get wrong.
 */
static bool input_valid(const input *in, const extent *e, uintptr_t data) {
  if (!in->legacy) {
    if (in->major != 1) return false;
    if ((in->flags & ~(uint64_t)3) != 0) return false;
  }
  if (in->ndim < 0 || in->ndim > TB_MAX_NDIM) return false;
  if (in->ndim > 0 && in->shape_null) return false;
  if (in->ndim > 0 && in->strides_null && !in->legacy && in->minor >= 2) return false;
  if (!device_known((int32_t)in->device.device_type)) return false;
  if (e->bits == 0 || !e->shapes_ok) return false;
  if (e->numel > INT64_MAX || nbytes_of(e) > INT64_MAX) return false;
  if (e->numel == 0) return true;
  if (e->itemsize == 0 && !e->c_contig) return false;
  if (data == 0) return false;
  if (!device_is_handle((int32_t)in->device.device_type)) {
    wide first = (wide)data + (wide)in->byte_offset;
    if (first + e->lo < 0 || first + e->hi > ((wide)1 << 64)) return false;
  }
  return true;
}

/* Plainly well formed: any DLPack consumer should take it. */
static bool input_tame(const input *in, const extent *e, uintptr_t data, bool real_buffer) {
  if (!input_valid(in, e, data) || !real_buffer) return false;
  if (in->device.device_id < 0) return false;
  /* The CPU is device 0; other ids name no device and are refused. */
  if (in->device.device_type == kDLCPU && in->device.device_id != 0) return false;
  if (e->prod_max1 * 16 > ((wide)1 << 62)) return false;
  /* Strides whose reach overflows are refused, empty tensors included. */
  if (e->vlo < -((wide)1 << 62) || e->vhi > ((wide)1 << 62)) return false;
  /* Memory of a device that is not present is refused (host-accessible
   * types are host memory and need none). */
  int32_t type = (int32_t)in->device.device_type;
  if (!device_is_host(type) && in->device.device_id >= tb_device_count(type)) return false;
  if (in->byte_offset > ((uint64_t)1 << 62)) return false;
  if (e->itemsize == 0 && !e->c_contig) return false;
  /* A handle has no address below it: byte_offset must cover the reach. */
  if (e->numel > 0 && device_is_handle((int32_t)in->device.device_type) &&
      (wide)in->byte_offset + e->lo < 0) {
    return false;
  }
  return true;
}

/* ------------------------------------------------------------------------ */
/* The producer                                                             */
/* ------------------------------------------------------------------------ */

static int g_deleter_calls;
static tb_status g_import_status; /* of the last input, for the replay's log */

/* What the producer allocated; freed by its deleter (or by the harness when
 * the input has no deleter). */
typedef struct producer {
  void *managed;
  int64_t *shape;
  int64_t *strides;
  void *buffer;
} producer;

static void producer_free(producer *p) {
  free(p->buffer);
  free(p->shape);
  free(p->strides);
  free(p->managed);
  free(p);
}

static void versioned_deleter(DLManagedTensorVersioned *self) {
  g_deleter_calls++;
  producer_free(self->manager_ctx);
}

static void legacy_deleter(DLManagedTensor *self) {
  g_deleter_calls++;
  producer_free(self->manager_ctx);
}

static int64_t *copy_dims(const int64_t *v, int32_t n) {
  /* Exactly n entries (malloc(0) for n == 0): any read past them is caught. */
  int64_t *p = malloc((size_t)n * sizeof *p);
  if (n > 0) {
    CHECK(p != NULL, "malloc");
    memcpy(p, v, (size_t)n * sizeof *p);
  }
  return p;
}

/* ------------------------------------------------------------------------ */
/* Checks on results                                                        */
/* ------------------------------------------------------------------------ */

/* Reads a little-endian-agnostic element's bytes at `index` (C order walk). */
static void check_copy_matches(const tb_tensor_t *src, const tb_tensor_t *copy) {
  const DLTensor *s = tb_tensor_dltensor(src);
  const DLTensor *c = tb_tensor_dltensor(copy);
  int64_t numel = tb_tensor_numel(src);
  CHECK(tb_tensor_numel(copy) == numel, "copy numel");
  if (numel == 0) return;
  size_t item = tb_dtype_itemsize(s->dtype);
  const unsigned char *sp = (const unsigned char *)tb_tensor_data(src);
  const unsigned char *cp = (const unsigned char *)tb_tensor_data(copy);
  CHECK(sp != NULL && cp != NULL, "host data");
  if (item == 0) {
    CHECK(memcmp(sp, cp, (size_t)tb_tensor_nbytes(src)) == 0, "packed copy bytes");
    return;
  }
  int64_t index[TB_MAX_NDIM] = {0};
  for (int64_t n = 0; n < numel; n++) {
    int64_t so = 0, co = 0;
    for (int32_t d = 0; d < s->ndim; d++) {
      so += index[d] * s->strides[d];
      co += index[d] * c->strides[d];
    }
    CHECK(memcmp(sp + so * (int64_t)item, cp + co * (int64_t)item, item) == 0, "copied element");
    for (int32_t d = s->ndim - 1; d >= 0; d--) {
      if (++index[d] < s->shape[d]) break;
      index[d] = 0;
    }
  }
}

/* Bytes [lo, hi) that t's elements occupy, as absolute addresses. */
static void element_range(const tb_tensor_t *t, wide *lo, wide *hi) {
  const DLTensor *dl = tb_tensor_dltensor(t);
  size_t item = tb_dtype_itemsize(dl->dtype);
  wide first = (wide)(uintptr_t)dl->data + (wide)dl->byte_offset;
  if (item == 0) {
    *lo = first;
    *hi = first + tb_tensor_nbytes(t);
    return;
  }
  wide min_off = 0, max_off = 0;
  for (int32_t d = 0; d < dl->ndim; d++) {
    wide reach = (wide)(dl->shape[d] - 1) * dl->strides[d];
    if (reach < 0) min_off += reach;
    else max_off += reach;
  }
  *lo = first + min_off * (wide)item;
  *hi = first + (max_off + 1) * (wide)item;
}

static bool same_layout(const tb_tensor_t *a, const tb_tensor_t *b) {
  if (tb_tensor_ndim(a) != tb_tensor_ndim(b)) return false;
  for (int32_t d = 0; d < tb_tensor_ndim(a); d++) {
    if (tb_tensor_shape(a)[d] != tb_tensor_shape(b)[d]) return false;
    if (tb_tensor_strides(a)[d] != tb_tensor_strides(b)[d]) return false;
  }
  return tb_dtype_equal(tb_tensor_dtype(a), tb_tensor_dtype(b)) &&
         tb_tensor_device(a).device_type == tb_tensor_device(b).device_type &&
         tb_tensor_device(a).device_id == tb_tensor_device(b).device_id;
}

/* Exports t both ways, checks the structs, imports the versioned one back. */
static void check_reexport(const tb_tensor_t *t) {
  const DLTensor *dl = tb_tensor_dltensor(t);
  DLManagedTensorVersioned *m = NULL;
  tb_status st;
  CALL(st, tb_to_dlpack_versioned(t, NULL, &m));
  CHECK(st == TB_OK, "re-export");
  CHECK(m->version.major == 1 && m->version.minor == 3, "exported version");
  uint64_t want_flags = tb_tensor_is_readonly(t) ? DLPACK_FLAG_BITMASK_READ_ONLY : 0;
  CHECK(m->flags == want_flags, "exported flags");
  CHECK(m->dl_tensor.ndim == dl->ndim && m->dl_tensor.strides != NULL, "exported ndim/strides");
  for (int32_t d = 0; d < dl->ndim; d++) {
    CHECK(m->dl_tensor.shape[d] == dl->shape[d] && m->dl_tensor.strides[d] == dl->strides[d],
          "exported shape/strides");
  }
  if (tb_tensor_numel(t) == 0) {
    CHECK(m->dl_tensor.data == NULL && m->dl_tensor.byte_offset == 0, "exported empty data");
  } else if (device_is_handle((int32_t)dl->device.device_type)) {
    CHECK(m->dl_tensor.data == dl->data && m->dl_tensor.byte_offset == dl->byte_offset,
          "exported handle");
  } else {
    CHECK((uintptr_t)m->dl_tensor.data == (uintptr_t)dl->data + dl->byte_offset &&
              m->dl_tensor.byte_offset == 0,
          "exported data at the first element");
  }
  tb_tensor_t *back = NULL;
  CALL(st, tb_from_dlpack_versioned(m, NULL, &back));
  CHECK(st == TB_OK, "re-import of an export");
  CHECK(same_layout(t, back), "re-import layout");
  CHECK(tb_tensor_is_readonly(t) == tb_tensor_is_readonly(back), "re-import read-only");
  if (tb_tensor_numel(t) > 0) {
    const DLTensor *b = tb_tensor_dltensor(back);
    CHECK((uintptr_t)b->data + b->byte_offset == (uintptr_t)dl->data + dl->byte_offset,
          "re-import first element");
  }
  tb_tensor_release(back);

  DLManagedTensor *l = NULL;
  tb_export_options allow = {.flags = TB_EXPORT_ALLOW_READONLY_LEGACY};
  CALL(st, tb_to_dlpack(t, &allow, &l));
  CHECK(st == TB_OK, "legacy re-export");
  l->deleter(l);
}

/* Exports a readable tensor as the options ask: copies must be flagged and
 * must meet the request. */
static void check_export_with(const tb_tensor_t *t, const tb_import_options *o) {
  tb_export_options eo = {.dtype = o->dtype, .layout = o->layout, .copy = o->copy};
  DLManagedTensorVersioned *m = NULL;
  tb_status st;
  CALL(st, tb_to_dlpack_versioned(t, &eo, &m));
  bool other_dtype = o->dtype != NULL && !tb_dtype_equal(*o->dtype, tb_tensor_dtype(t));
  bool other_layout = (o->layout == TB_LAYOUT_C && !tb_tensor_is_contiguous(t, TB_ORDER_C)) ||
                      (o->layout == TB_LAYOUT_F && !tb_tensor_is_contiguous(t, TB_ORDER_F));
  bool needs_copy = other_dtype || other_layout;
  if (st != TB_OK) {
    CHECK(m == NULL, "no export on failure");
    CHECK(st != TB_ERR_COPY_REQUIRED || (needs_copy && o->copy == TB_COPY_NEVER),
          "COPY_REQUIRED only when a copy is needed and refused");
    CHECK(st == TB_ERR_COPY_REQUIRED || st == TB_ERR_DTYPE || st == TB_ERR_LAYOUT,
          "export fails only for a refused copy or an impossible conversion");
    return;
  }
  CHECK(!(needs_copy && o->copy == TB_COPY_NEVER), "NEVER never copies");
  bool copied = (m->flags & DLPACK_FLAG_BITMASK_IS_COPIED) != 0;
  CHECK(copied == (needs_copy || o->copy == TB_COPY_ALWAYS), "IS_COPIED iff the export copied");
  if (o->dtype != NULL) CHECK(tb_dtype_equal(m->dl_tensor.dtype, *o->dtype), "export dtype met");
  CHECK(m->dl_tensor.byte_offset == 0, "export byte_offset");
  if (copied) {
    CHECK(!(m->flags & DLPACK_FLAG_BITMASK_READ_ONLY), "a copy is writable");
  }
  tb_tensor_t *back = NULL;
  CALL(st, tb_from_dlpack_versioned(m, NULL, &back));
  CHECK(st == TB_OK, "import of an export");
  if (o->layout == TB_LAYOUT_C) CHECK(tb_tensor_is_contiguous(back, TB_ORDER_C), "export C met");
  if (o->layout == TB_LAYOUT_F) CHECK(tb_tensor_is_contiguous(back, TB_ORDER_F), "export F met");
  tb_tensor_release(back);
}

/* ------------------------------------------------------------------------ */
/* The entry point                                                          */
/* ------------------------------------------------------------------------ */

#define SMALL_EXTENT ((wide)1 << 20)   /* bytes a real buffer may cover */
#define SMALL_COPY ((int64_t)1 << 16)  /* elements a copy may have */

int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size) {
  input in;
  decode(bytes, size, &in);
  extent e;
  measure(&in, &e);

  producer *p = calloc(1, sizeof *p);
  CHECK(p != NULL, "calloc");

  /* The element memory. */
  uintptr_t data = 0;
  bool real_buffer = false;
  wide buf_lo = 0, buf_hi = 0; /* absolute bytes the buffer covers */
  bool small = e.bits != 0 && e.shapes_ok && in.ndim >= 0 && in.ndim <= STORED_DIMS &&
               (e.itemsize > 0 || e.c_contig) && e.hi - e.lo <= SMALL_EXTENT;
  if ((in.data_mode == DATA_BUFFER || in.data_mode == DATA_MISALIGNED) && small) {
    size_t span = (size_t)(e.hi - e.lo);
    size_t shift = in.data_mode == DATA_MISALIGNED ? in.misalign : 0;
    unsigned char *buf = malloc(span + shift + (span + shift == 0));
    CHECK(buf != NULL, "malloc buffer");
    for (size_t i = 0; i < span; i++) buf[shift + i] = (unsigned char)(i * 131 + 7);
    p->buffer = buf;
    wide start = (wide)(uintptr_t)(buf + shift);
    if (e.numel > 0) {
      /* data + byte_offset + lo == start, as the producer would have it. */
      wide d = start - e.lo - (wide)in.byte_offset;
      data = (uintptr_t)(uint64_t)d; /* may wrap: then the input is not tame */
      real_buffer = d > 0 && d < ((wide)1 << 64);
    } else {
      data = (uintptr_t)start;
      real_buffer = true;
    }
    buf_lo = start;
    buf_hi = start + (wide)span;
  } else if (in.data_mode == DATA_RAW || in.data_mode == DATA_BUFFER ||
             in.data_mode == DATA_MISALIGNED) {
    /* Never dereferenced: either refused or imported without a read. */
    data = in.data_mode == DATA_RAW ? (uintptr_t)in.raw_pointer : (uintptr_t)0x1000;
  }
  bool valid = input_valid(&in, &e, data);
  bool tame = input_tame(&in, &e, data, real_buffer);

  /* Options only where a copy of the input is safe and small: a copy reads
   * the data through the declared device's backend, and a host buffer called
   * device memory (a cl_mem, a CUDA pointer) is a lie that no library can
   * detect (OpenCL's loader dereferences the handle). */
  bool options = in.use_options && real_buffer && e.numel <= SMALL_COPY &&
                 device_is_host((int32_t)in.device.device_type);
  tb_import_options o = {0};
  static const uint32_t alignments[5] = {0, 1, 16, 64, 128};
  if (options) {
    o.layout = (tb_layout)in.opt_layout;
    o.copy = (tb_copy_mode)in.opt_copy;
    o.flags = in.opt_writable ? TB_IMPORT_REQUIRE_WRITABLE : 0;
    o.alignment = alignments[in.opt_alignment_code];
    o.dtype = in.opt_has_dtype ? &in.opt_dtype : NULL;
    o.device = in.opt_has_device ? &in.opt_device : NULL;
  }

  /* The struct. */
  p->shape = in.shape_null ? NULL : copy_dims(in.shape, in.stored);
  p->strides = in.strides_null ? NULL : copy_dims(in.strides, in.stored);
  DLTensor dl = {
      .data = (void *)data,
      .device = in.device,
      .ndim = in.ndim,
      .dtype = in.dtype,
      .shape = p->shape,
      .strides = p->strides,
      .byte_offset = in.byte_offset,
  };
  g_deleter_calls = 0;
  tb_tensor_t *t = NULL;
  tb_status st;
  tb_status borrowed_st = TB_OK;
  if (in.legacy) {
    /* The borrowing import takes the same path without an owner: it must
     * agree with the owning one, and call nothing. */
    tb_tensor_t *b = NULL;
    CALL(borrowed_st, tb_from_dltensor(&dl, 0, options ? &o : NULL, &b));
    CHECK((borrowed_st == TB_OK) == (b != NULL), "borrowed output iff success");
    tb_tensor_release(b);
    CHECK(g_deleter_calls == 0, "a borrowed import calls no deleter");
    DLManagedTensor *m = malloc(sizeof *m);
    CHECK(m != NULL, "malloc");
    *m = (DLManagedTensor){dl, p, in.no_deleter ? NULL : legacy_deleter};
    p->managed = m;
    CALL(st, tb_from_dlpack(m, options ? &o : NULL, &t));
  } else if (in.major != TB_DLPACK_MAJOR) {
    /* Only the fields before `flags` exist: any other read is caught. */
    size_t stable = offsetof(DLManagedTensorVersioned, flags);
    unsigned char *raw = malloc(stable);
    CHECK(raw != NULL, "malloc");
    DLPackVersion v = {in.major, in.minor};
    void *ctx = p;
    void (*del)(DLManagedTensorVersioned *) = in.no_deleter ? NULL : versioned_deleter;
    memcpy(raw + offsetof(DLManagedTensorVersioned, version), &v, sizeof v);
    memcpy(raw + offsetof(DLManagedTensorVersioned, manager_ctx), &ctx, sizeof ctx);
    memcpy(raw + offsetof(DLManagedTensorVersioned, deleter), &del, sizeof del);
    p->managed = raw;
    CALL(st, tb_from_dlpack_versioned((DLManagedTensorVersioned *)(void *)raw, options ? &o : NULL,
                                      &t));
    CHECK(st == TB_ERR_VERSION, "another major is a version error");
  } else {
    DLManagedTensorVersioned *m = malloc(sizeof *m);
    CHECK(m != NULL, "malloc");
    *m = (DLManagedTensorVersioned){{in.major, in.minor}, p,
                                    in.no_deleter ? NULL : versioned_deleter, in.flags, dl};
    p->managed = m;
    CALL(st, tb_from_dlpack_versioned(m, options ? &o : NULL, &t));
  }

  g_import_status = st;
  if (in.legacy) CHECK(st == borrowed_st, "borrowed and owning imports agree");
  const int owed = in.no_deleter ? 0 : 1; /* deleter calls due by the end */
  if (st != TB_OK) {
    CHECK(t == NULL, "no output on failure");
    CHECK(g_deleter_calls == owed, "a refused import runs the deleter once");
    CHECK(tb_last_error()[0] != '\0', "a failure has a message");
    CHECK(!(tame && !options), "a well-formed input was refused");
    if (in.no_deleter) producer_free(p);
    return 0;
  }
  CHECK(t != NULL, "output on success");
  {
    /* The reach invariant, and no memory of an absent device. */
    CHECK(e.vmin >= INT64_MIN && e.vmax <= INT64_MAX &&
              (e.itemsize == 0 ||
               (e.vlo >= INT64_MIN && e.vhi <= INT64_MAX && e.vhi - e.vlo <= INT64_MAX)),
          "an accepted layout's reach (extents 0 read as 1) fits int64");
    DLDevice dev = tb_tensor_device(t);
    int32_t type = (int32_t)dev.device_type;
    CHECK(device_is_host(type) || dev.device_id < tb_device_count(type),
          "memory of a device that is not present was imported");
    if (!device_is_host(type)) {
      CHECK(tb_tensor_data(t) == NULL, "device memory is never host-accessible");
    }
    if (type == kDLCUDA) CHECK(tb_device_count(kDLCUDA) > 0, "CUDA memory without a CUDA device");
  }
  CHECK(g_deleter_calls <= owed, "the deleter ran at most once");
  const bool copied = g_deleter_calls == 1; /* the producer is done: a copy */
  const DLTensor *got = tb_tensor_dltensor(t);
  CHECK(got->ndim == in.ndim, "ndim");
  for (int32_t d = 0; d < in.ndim; d++) CHECK(got->shape[d] == in.shape[d], "shape");

  if (!options) {
    CHECK(valid, "an import DLPack forbids succeeded");
    CHECK(!copied, "no options, no copy");
    CHECK(tb_dtype_equal(got->dtype, in.dtype), "dtype");
    CHECK(got->device.device_type == in.device.device_type &&
              got->device.device_id == in.device.device_id,
          "device");
    bool readonly = !in.legacy && (in.flags & DLPACK_FLAG_BITMASK_READ_ONLY);
    CHECK(tb_tensor_is_readonly(t) == readonly, "READ_ONLY gives a read-only tensor");
    for (int32_t d = 0; d < in.ndim; d++) {
      if (!in.strides_null) CHECK(got->strides[d] == in.strides[d], "strides kept");
      else if (in.shape[d] > 1 && e.numel > 0) {
        /* (When empty, nothing is addressed and the strides may saturate.) */
        CHECK(got->strides[d] == c_stride(&in, d), "NULL strides are C order");
      }
    }
  } else {
    if (o.dtype != NULL) CHECK(tb_dtype_equal(got->dtype, *o.dtype), "options.dtype met");
    if (o.device != NULL) {
      CHECK(got->device.device_type == o.device->device_type &&
                got->device.device_id == o.device->device_id,
            "options.device met");
    }
    if (o.layout == TB_LAYOUT_C) CHECK(tb_tensor_is_contiguous(t, TB_ORDER_C), "layout C met");
    if (o.layout == TB_LAYOUT_F) CHECK(tb_tensor_is_contiguous(t, TB_ORDER_F), "layout F met");
    if (o.flags & TB_IMPORT_REQUIRE_WRITABLE) CHECK(!tb_tensor_is_readonly(t), "writable met");
    if (o.alignment > 1 && tb_tensor_numel(t) > 0 && tb_tensor_data(t) != NULL) {
      CHECK((uintptr_t)tb_tensor_data(t) % o.alignment == 0, "alignment met");
    }
    if (o.copy == TB_COPY_NEVER && !in.no_deleter) CHECK(!copied, "copy NEVER shares");
    bool is_copied = !in.legacy && (in.flags & DLPACK_FLAG_BITMASK_IS_COPIED);
    if (o.copy == TB_COPY_ALWAYS && !is_copied && !in.no_deleter) {
      CHECK(copied, "copy ALWAYS copies");
    }
  }

  /* A shared import covers exactly the producer's elements. (Without a
   * deleter a copy cannot be told from a share: skip when options were set.) */
  if (!copied && real_buffer && tb_tensor_numel(t) > 0 && !(options && in.no_deleter) &&
      !device_is_handle((int32_t)got->device.device_type)) {
    wide lo, hi;
    element_range(t, &lo, &hi);
    CHECK(lo >= buf_lo && hi <= buf_hi && lo < hi, "the import stays inside the buffer");
    if (!options) CHECK(hi - lo == e.hi - e.lo, "the import spans the producer's extent");
  }

  /* Read every element: only memory known to exist, and not too much of it. */
  /* CPU only: a copy is made on the tensor's own device, and pinned or
   * managed memory may have no backend in this build. */
  bool readable = (real_buffer || copied || tb_tensor_numel(t) == 0) &&
                  got->device.device_type == kDLCPU && got->device.device_id == 0 &&
                  tb_tensor_numel(t) <= SMALL_COPY;
  if (readable) {
    tb_tensor_t *c = NULL;
    tb_status cst;
    CALL(cst, tb_tensor_copy(t, NULL, TB_ORDER_C, 0, &c));
    CHECK(cst == TB_OK, "copy of an import");
    check_copy_matches(t, c);
    tb_tensor_release(c);
    if (options) check_export_with(t, &o);
  }

  if (in.reexport) check_reexport(t);

  CHECK(g_deleter_calls == (copied ? 1 : 0), "the deleter waits for the last reference");
  tb_tensor_release(t);
  CHECK(g_deleter_calls == owed, "the deleter ran exactly once");
  if (in.no_deleter) producer_free(p);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Replay: a plain program that runs a corpus (a meson test)                */
/* ------------------------------------------------------------------------ */

/* For the replay program (replay.c). */
tb_status tb_fuzz_last_status(void) { return g_import_status; }
