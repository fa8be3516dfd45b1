/*
 * libtensorbridge: the DLPack ABI as this library speaks it (DLPack 1.3).
 *
 * The system's <dlpack/dlpack.h> is included when the compiler can find it.
 * Whatever that header lacks (Debian 12 ships 0.6: no versioned struct, no
 * flags, no bool/float8 codes) is declared here, guarded on the header's own
 * version macros, so that a program which includes a newer dlpack.h before
 * this file sees no second declaration.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef TENSORBRIDGE_DLPACK_ABI_H
#define TENSORBRIDGE_DLPACK_ABI_H

#include <stddef.h>
#include <stdint.h>

#if !defined(DLPACK_DLPACK_H_) && defined(__has_include)
#if __has_include(<dlpack/dlpack.h>)
#include <dlpack/dlpack.h>
#endif
#endif

/*
 * TB_DLPACK_SYSTEM_VERSION: the version of the dlpack.h included, as
 * major * 100 + minor (0.6 -> 6, 1.3 -> 103), or 0 when there is none. DLPack
 * before 1.0 publishes DLPACK_VERSION as major * 100 + minor * 10 (0.6 -> 60);
 * 1.0 and later publish DLPACK_MAJOR_VERSION and DLPACK_MINOR_VERSION. The
 * declarations below are guarded on it.
 */
#if defined(DLPACK_MAJOR_VERSION)
#define TB_DLPACK_SYSTEM_VERSION (DLPACK_MAJOR_VERSION * 100 + DLPACK_MINOR_VERSION)
#elif defined(DLPACK_VERSION)
#define TB_DLPACK_SYSTEM_VERSION (DLPACK_VERSION / 10)
#else
#define TB_DLPACK_SYSTEM_VERSION 0 /* no dlpack.h at all */
#endif

#ifdef __cplusplus
extern "C" {
#endif

#if TB_DLPACK_SYSTEM_VERSION == 0
/* No dlpack.h was found: declare the 0.x core that every version shares. The
 * layouts are identical in every version since 0.6. Claim the header guard so
 * that a dlpack.h included later does not declare the same types twice. */
#define DLPACK_DLPACK_H_
#define DLPACK_EXTERN_C
#define DLPACK_DLL
typedef enum {
  kDLCPU = 1,
  kDLCUDA = 2,
  kDLCUDAHost = 3,
  kDLOpenCL = 4,
  kDLVulkan = 7,
  kDLMetal = 8,
  kDLVPI = 9,
  kDLROCM = 10,
  kDLROCMHost = 11,
  kDLExtDev = 12,
  kDLCUDAManaged = 13,
} DLDeviceType;

typedef struct {
  DLDeviceType device_type;
  int32_t device_id;
} DLDevice;

typedef enum {
  kDLInt = 0U,
  kDLUInt = 1U,
  kDLFloat = 2U,
  kDLOpaqueHandle = 3U,
  kDLBfloat = 4U,
  kDLComplex = 5U,
} DLDataTypeCode;

typedef struct {
  uint8_t code;
  uint8_t bits;
  uint16_t lanes;
} DLDataType;

typedef struct {
  void *data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t *shape;
  int64_t *strides;
  uint64_t byte_offset;
} DLTensor;

typedef struct DLManagedTensor {
  DLTensor dl_tensor;
  void *manager_ctx;
  void (*deleter)(struct DLManagedTensor *self);
} DLManagedTensor;
#endif /* no system header */

#if TB_DLPACK_SYSTEM_VERSION < 100
/* 1.0: the versioned ABI. */
typedef struct {
  uint32_t major;
  uint32_t minor;
} DLPackVersion;

typedef struct DLManagedTensorVersioned {
  DLPackVersion version;
  void *manager_ctx;
  void (*deleter)(struct DLManagedTensorVersioned *self);
  uint64_t flags;
  DLTensor dl_tensor;
} DLManagedTensorVersioned;
#endif

#ifndef DLPACK_FLAG_BITMASK_READ_ONLY
#define DLPACK_FLAG_BITMASK_READ_ONLY (1UL << 0UL)
#endif
#ifndef DLPACK_FLAG_BITMASK_IS_COPIED
#define DLPACK_FLAG_BITMASK_IS_COPIED (1UL << 1UL)
#endif
#ifndef DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED
#define DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED (1UL << 2UL)
#endif

#ifdef __cplusplus
}
#endif

/*
 * Every device type and type code of DLPack 1.3 under this library's own
 * names. The enum constants of older headers stop at 0.6's set, and enum
 * constants cannot be added to an enum declared elsewhere, so the library and
 * its users spell the newer values through these.
 */
enum {
  TB_DL_CPU = 1,
  TB_DL_CUDA = 2,
  TB_DL_CUDA_HOST = 3,
  TB_DL_OPENCL = 4,
  TB_DL_VULKAN = 7,
  TB_DL_METAL = 8,
  TB_DL_VPI = 9,
  TB_DL_ROCM = 10,
  TB_DL_ROCM_HOST = 11,
  TB_DL_EXT_DEV = 12,
  TB_DL_CUDA_MANAGED = 13,
  TB_DL_ONEAPI = 14,
  TB_DL_WEBGPU = 15,
  TB_DL_HEXAGON = 16,
  TB_DL_MAIA = 17,
  TB_DL_TRN = 18
};

enum {
  TB_DL_INT = 0,
  TB_DL_UINT = 1,
  TB_DL_FLOAT = 2,
  TB_DL_OPAQUE_HANDLE = 3,
  TB_DL_BFLOAT = 4,
  TB_DL_COMPLEX = 5,
  TB_DL_BOOL = 6,
  TB_DL_FLOAT8_E3M4 = 7,
  TB_DL_FLOAT8_E4M3 = 8,
  TB_DL_FLOAT8_E4M3B11FNUZ = 9,
  TB_DL_FLOAT8_E4M3FN = 10,
  TB_DL_FLOAT8_E4M3FNUZ = 11,
  TB_DL_FLOAT8_E5M2 = 12,
  TB_DL_FLOAT8_E5M2FNUZ = 13,
  TB_DL_FLOAT8_E8M0FNU = 14,
  TB_DL_FLOAT6_E2M3FN = 15,
  TB_DL_FLOAT6_E3M2FN = 16,
  TB_DL_FLOAT4_E2M1FN = 17
};

/* The DLPack version this library produces and understands. */
#define TB_DLPACK_MAJOR 1
#define TB_DLPACK_MINOR 3

#endif /* TENSORBRIDGE_DLPACK_ABI_H */
