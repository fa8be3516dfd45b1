/*
 * The DLPack ABI as declared by <tensorbridge/dlpack_abi.h>, checked field by
 * field against the DLPack 1.3 layout on LP64 (docs: dlpack-abi.md).
 *
 * This file also checks the include orders a user may write: the system's
 * <dlpack/dlpack.h> first, then tensorbridge.h, then tensorbridge.h again
 * (support.h includes it), then dlpack.h again. The reverse order
 * (tensorbridge.h first) is compiled by fuzz/fuzz_dlpack_import.c.
 */
#if defined(__has_include)
#if __has_include(<dlpack/dlpack.h>)
#include <dlpack/dlpack.h>
#define TB_TEST_HAVE_SYSTEM_DLPACK 1
#endif
#endif
#ifndef TB_TEST_HAVE_SYSTEM_DLPACK
#define TB_TEST_HAVE_SYSTEM_DLPACK 0
#endif

#include "tensorbridge/tensorbridge.h"
#include "tensorbridge/tensorbridge.h" /* the include guard makes this a no-op */

#include "support.h" /* and a third time */

#if TB_TEST_HAVE_SYSTEM_DLPACK
#include <dlpack/dlpack.h> /* after tensorbridge.h: its own guard holds */
#endif

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The layout is fixed at compile time; say so where the compiler can. */
_Static_assert(sizeof(DLManagedTensorVersioned) == 80 || sizeof(void *) != 8,
               "DLManagedTensorVersioned is 80 bytes on LP64");
_Static_assert(offsetof(DLManagedTensorVersioned, dl_tensor) == 32 || sizeof(void *) != 8,
               "dl_tensor at 32 on LP64");

#define assert_offset(type, field, expected) \
  assert_int_equal(offsetof(type, field), (expected))

static void skip_unless_lp64(void) {
  if (sizeof(void *) != 8 || sizeof(long) != 8) skip();
}

static void dl_device_layout(void **state) {
  (void)state;
  assert_int_equal(sizeof(DLDevice), 8);
  assert_int_equal(_Alignof(DLDevice), 4);
  assert_offset(DLDevice, device_type, 0);
  assert_offset(DLDevice, device_id, 4);
  DLDevice d;
  assert_int_equal(sizeof d.device_type, 4);
  assert_int_equal(sizeof d.device_id, 4);
}

static void dl_data_type_layout(void **state) {
  (void)state;
  assert_int_equal(sizeof(DLDataType), 4);
  assert_offset(DLDataType, code, 0);
  assert_offset(DLDataType, bits, 1);
  assert_offset(DLDataType, lanes, 2);
  DLDataType t;
  assert_int_equal(sizeof t.code, 1);
  assert_int_equal(sizeof t.bits, 1);
  assert_int_equal(sizeof t.lanes, 2);
}

static void dl_tensor_layout(void **state) {
  (void)state;
  skip_unless_lp64();
  assert_int_equal(sizeof(DLTensor), 48);
  assert_offset(DLTensor, data, 0);
  assert_offset(DLTensor, device, 8);
  assert_offset(DLTensor, ndim, 16);
  assert_offset(DLTensor, dtype, 20);
  assert_offset(DLTensor, shape, 24);
  assert_offset(DLTensor, strides, 32);
  assert_offset(DLTensor, byte_offset, 40);
  DLTensor t;
  assert_int_equal(sizeof t.ndim, 4);
  assert_int_equal(sizeof t.byte_offset, 8);
  assert_int_equal(sizeof *t.shape, 8);
  assert_int_equal(sizeof *t.strides, 8);
}

static void dl_managed_tensor_layout(void **state) {
  (void)state;
  skip_unless_lp64();
  assert_int_equal(sizeof(DLManagedTensor), 64);
  assert_offset(DLManagedTensor, dl_tensor, 0);
  assert_offset(DLManagedTensor, manager_ctx, 48);
  assert_offset(DLManagedTensor, deleter, 56);
}

static void dl_pack_version_layout(void **state) {
  (void)state;
  assert_int_equal(sizeof(DLPackVersion), 8);
  assert_offset(DLPackVersion, major, 0);
  assert_offset(DLPackVersion, minor, 4);
  DLPackVersion v;
  assert_int_equal(sizeof v.major, 4);
  assert_int_equal(sizeof v.minor, 4);
}

static void dl_managed_tensor_versioned_layout(void **state) {
  (void)state;
  skip_unless_lp64();
  assert_int_equal(sizeof(DLManagedTensorVersioned), 80);
  assert_offset(DLManagedTensorVersioned, version, 0);
  assert_offset(DLManagedTensorVersioned, manager_ctx, 8);
  assert_offset(DLManagedTensorVersioned, deleter, 16);
  assert_offset(DLManagedTensorVersioned, flags, 24);
  assert_offset(DLManagedTensorVersioned, dl_tensor, 32);
  DLManagedTensorVersioned m;
  assert_int_equal(sizeof m.flags, 8);
  /* The DLTensor inside keeps its own layout. */
  assert_int_equal(offsetof(DLManagedTensorVersioned, dl_tensor) + offsetof(DLTensor, byte_offset),
                   72);
}

static void flag_values(void **state) {
  (void)state;
  assert_int_equal(DLPACK_FLAG_BITMASK_READ_ONLY, 1);
  assert_int_equal(DLPACK_FLAG_BITMASK_IS_COPIED, 2);
  assert_int_equal(DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED, 4);
  /* They fit the 64-bit flags field and do not overlap. */
  uint64_t all = DLPACK_FLAG_BITMASK_READ_ONLY | DLPACK_FLAG_BITMASK_IS_COPIED |
                 DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED;
  assert_int_equal(all, 7);
}

static void device_type_values(void **state) {
  (void)state;
  /* The enum constants every dlpack.h since 0.6 declares. */
  assert_int_equal(kDLCPU, 1);
  assert_int_equal(kDLCUDA, 2);
  assert_int_equal(kDLCUDAHost, 3);
  assert_int_equal(kDLOpenCL, 4);
  assert_int_equal(kDLVulkan, 7);
  assert_int_equal(kDLMetal, 8);
  assert_int_equal(kDLVPI, 9);
  assert_int_equal(kDLROCM, 10);
  assert_int_equal(kDLROCMHost, 11);
  assert_int_equal(kDLExtDev, 12);
  assert_int_equal(kDLCUDAManaged, 13);
  /* The library's names for all of DLPack 1.3. */
  assert_int_equal(TB_DL_CPU, 1);
  assert_int_equal(TB_DL_CUDA, 2);
  assert_int_equal(TB_DL_CUDA_HOST, 3);
  assert_int_equal(TB_DL_OPENCL, 4);
  assert_int_equal(TB_DL_VULKAN, 7);
  assert_int_equal(TB_DL_METAL, 8);
  assert_int_equal(TB_DL_VPI, 9);
  assert_int_equal(TB_DL_ROCM, 10);
  assert_int_equal(TB_DL_ROCM_HOST, 11);
  assert_int_equal(TB_DL_EXT_DEV, 12);
  assert_int_equal(TB_DL_CUDA_MANAGED, 13);
  assert_int_equal(TB_DL_ONEAPI, 14);
  assert_int_equal(TB_DL_WEBGPU, 15);
  assert_int_equal(TB_DL_HEXAGON, 16);
  assert_int_equal(TB_DL_MAIA, 17);
  assert_int_equal(TB_DL_TRN, 18);
  /* A newer device type travels through the 32-bit enum field. */
  DLDevice d = {(DLDeviceType)TB_DL_TRN, 3};
  assert_int_equal((int32_t)d.device_type, 18);
}

static void type_code_values(void **state) {
  (void)state;
  assert_int_equal(kDLInt, 0);
  assert_int_equal(kDLUInt, 1);
  assert_int_equal(kDLFloat, 2);
  assert_int_equal(kDLOpaqueHandle, 3);
  assert_int_equal(kDLBfloat, 4);
  assert_int_equal(kDLComplex, 5);
  const int codes[] = {
      TB_DL_INT,          TB_DL_UINT,           TB_DL_FLOAT,
      TB_DL_OPAQUE_HANDLE, TB_DL_BFLOAT,        TB_DL_COMPLEX,
      TB_DL_BOOL,         TB_DL_FLOAT8_E3M4,    TB_DL_FLOAT8_E4M3,
      TB_DL_FLOAT8_E4M3B11FNUZ, TB_DL_FLOAT8_E4M3FN, TB_DL_FLOAT8_E4M3FNUZ,
      TB_DL_FLOAT8_E5M2,  TB_DL_FLOAT8_E5M2FNUZ, TB_DL_FLOAT8_E8M0FNU,
      TB_DL_FLOAT6_E2M3FN, TB_DL_FLOAT6_E3M2FN, TB_DL_FLOAT4_E2M1FN,
  };
  for (int i = 0; i < (int)(sizeof codes / sizeof codes[0]); i++) {
    assert_int_equal(codes[i], i);
  }
  assert_int_equal(sizeof codes / sizeof codes[0], 18);
}

static void version_macros(void **state) {
  (void)state;
  assert_int_equal(TB_DLPACK_MAJOR, 1);
  assert_int_equal(TB_DLPACK_MINOR, 3);
  /*
   * One comparable number, major * 100 + minor: 0 when no dlpack.h was found,
   * below 100 for a 0.x header (Debian 12's 0.6, which publishes
   * DLPACK_VERSION = 60, gives 6), 100 and more for a 1.x header. A 0.x
   * header is always older than the versioned ABI this library declares.
   */
  int v = TB_DLPACK_SYSTEM_VERSION;
  assert_true(v >= 0);
#if TB_TEST_HAVE_SYSTEM_DLPACK
  assert_true(v > 0);
#if defined(DLPACK_MAJOR_VERSION)
  assert_int_equal(v, DLPACK_MAJOR_VERSION * 100 + DLPACK_MINOR_VERSION);
  assert_true(v >= 100);
#elif defined(DLPACK_VERSION)
  assert_int_equal(v, DLPACK_VERSION / 10); /* 0.6: 60 -> 6 */
  assert_true(v < 100);
#endif
#else
  assert_int_equal(v, 0);
#endif
}

static void exported_structs_report_this_abi(void **state) {
  (void)state;
  /* What the library fills in agrees with the declarations above. */
  float x = 1.0f;
  tb_tensor_t *t;
  assert_ok(tb_from_array(&x, 0, F32, 0, NULL, NULL, cpu(), 0, NULL, NULL, &t));
  DLManagedTensorVersioned *m = NULL;
  assert_ok(tb_to_dlpack_versioned(t, NULL, &m));
  const unsigned char *raw = (const unsigned char *)m;
  uint32_t major, minor;
  memcpy(&major, raw + 0, sizeof major);
  memcpy(&minor, raw + 4, sizeof minor);
  assert_int_equal(major, TB_DLPACK_MAJOR);
  assert_int_equal(minor, TB_DLPACK_MINOR);
  void *data;
  memcpy(&data, raw + offsetof(DLManagedTensorVersioned, dl_tensor), sizeof data);
  assert_ptr_equal(data, &x);
  m->deleter(m);
  tb_tensor_release(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(dl_device_layout),
      cmocka_unit_test(dl_data_type_layout),
      cmocka_unit_test(dl_tensor_layout),
      cmocka_unit_test(dl_managed_tensor_layout),
      cmocka_unit_test(dl_pack_version_layout),
      cmocka_unit_test(dl_managed_tensor_versioned_layout),
      cmocka_unit_test(flag_values),
      cmocka_unit_test(device_type_values),
      cmocka_unit_test(type_code_values),
      cmocka_unit_test(version_macros),
      cmocka_unit_test(exported_structs_report_this_abi),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
