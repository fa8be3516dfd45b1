/**
 * @file
 * @brief The DLPack ABI as libtensorbridge speaks it (DLPack 1.3).
 *
 * The system's `<dlpack/dlpack.h>` is included when the compiler can find it.
 * Whatever that header lacks (Debian 12 ships 0.6: no versioned struct, no
 * flags, no bool/float8 codes) is declared here, guarded on the header's own
 * version macros, so that a program which includes a newer dlpack.h before
 * this file sees no second declaration.
 *
 * The types declared here are DLPack's own, with DLPack's names and layouts;
 * the DLPack specification (https://dmlc.github.io/dlpack/latest/, and the
 * comments of its dlpack.h) is their reference. This reference shows them as
 * declared here when no dlpack.h is found at all.
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

/**
 * @defgroup tb_dlpack_abi DLPack ABI
 * @ingroup tb_dlpack
 * @brief DLPack's types and constants, declared here where the system's
 * dlpack.h lacks them.
 *
 * Which declarations a program gets depends on the dlpack.h found: all of
 * them without one, the 1.0 additions (DLPackVersion,
 * DLManagedTensorVersioned, the DLPACK_FLAG_BITMASK_* flags) with a 0.x one,
 * none with 1.0 or later. The TB_DL_* constants and TB_DLPACK_MAJOR /
 * TB_DLPACK_MINOR are always this header's. The DLPack specification
 * (https://dmlc.github.io/dlpack/latest/) defines every type and field.
 * @{
 */

/**
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
/** dlpack.h's include guard, claimed when no dlpack.h was found, so that one
 * included later declares nothing twice. */
#define DLPACK_DLPACK_H_
/** As in dlpack.h (declared only when no dlpack.h was found): empty here. */
#define DLPACK_EXTERN_C
/** As in dlpack.h (declared only when no dlpack.h was found): empty here. */
#define DLPACK_DLL
/** DLPack's device types of 0.6 (the later ones are the TB_DL_* constants). */
typedef enum {
  kDLCPU = 1,          /**< CPU memory */
  kDLCUDA = 2,         /**< CUDA device memory */
  kDLCUDAHost = 3,     /**< CUDA pinned host memory */
  kDLOpenCL = 4,       /**< OpenCL memory: data is a cl_mem handle */
  kDLVulkan = 7,       /**< Vulkan buffer: data is a handle */
  kDLMetal = 8,        /**< Metal buffer: data is a handle */
  kDLVPI = 9,          /**< Verilog simulator (VPI) memory */
  kDLROCM = 10,        /**< ROCm (HIP) device memory */
  kDLROCMHost = 11,    /**< ROCm pinned host memory */
  kDLExtDev = 12,      /**< reserved for devices outside DLPack's list */
  kDLCUDAManaged = 13, /**< CUDA managed (unified) memory */
} DLDeviceType;

/** A device: its type and its index among the devices of that type. */
typedef struct {
  DLDeviceType device_type; /**< the device type (or a TB_DL_* value) */
  int32_t device_id;        /**< the index of the device; 0 for CPU memory */
} DLDevice;

/** DLPack's type codes of 0.6 (the later ones are the TB_DL_* constants). */
typedef enum {
  kDLInt = 0U,          /**< signed integer */
  kDLUInt = 1U,         /**< unsigned integer */
  kDLFloat = 2U,        /**< IEEE floating point */
  kDLOpaqueHandle = 3U, /**< an opaque handle */
  kDLBfloat = 4U,       /**< bfloat16 */
  kDLComplex = 5U,      /**< complex: two floats of bits / 2 each */
} DLDataTypeCode;

/** An element type: {code, bits, lanes}. */
typedef struct {
  uint8_t code;   /**< the type code (DLDataTypeCode or a TB_DL_* code) */
  uint8_t bits;   /**< bits per lane */
  uint16_t lanes; /**< lanes of a vector type; 1 for scalars, the only value
                       this library takes */
} DLDataType;

/** A strided tensor: memory, device, shape, strides and element type. */
typedef struct {
  void *data;           /**< base pointer, or handle for handle devices (OpenCL, ...) */
  DLDevice device;      /**< where the memory is */
  int32_t ndim;         /**< the number of dimensions */
  DLDataType dtype;     /**< the element type */
  int64_t *shape;       /**< ndim extents */
  int64_t *strides;     /**< ndim strides in elements, or NULL for C order
                             (allowed by DLPack before 1.2) */
  uint64_t byte_offset; /**< bytes from data to the element at index (0, ..., 0) */
} DLTensor;

/** The legacy (pre-1.0) managed tensor: a DLTensor with its producer's
 * context and deleter. */
typedef struct DLManagedTensor {
  DLTensor dl_tensor; /**< the tensor */
  void *manager_ctx;  /**< the producer's context, for its deleter */
  /** Called once by the consumer when it is done with the tensor (may be
   * NULL: nothing to free). */
  void (*deleter)(struct DLManagedTensor *self);
} DLManagedTensor;
#endif /* no system header */

#if TB_DLPACK_SYSTEM_VERSION < 100
/* 1.0: the versioned ABI. */
/** A DLPack ABI version (declared when the system's dlpack.h is older than 1.0). */
typedef struct {
  uint32_t major; /**< incompatible ABI changes */
  uint32_t minor; /**< compatible additions */
} DLPackVersion;

/** The managed tensor of DLPack 1.x: a version, flags, and a DLTensor with
 * its producer's context and deleter (declared when the system's dlpack.h is
 * older than 1.0). */
typedef struct DLManagedTensorVersioned {
  DLPackVersion version; /**< the producer's DLPack version; first, the one
                              field stable across major versions */
  void *manager_ctx;     /**< the producer's context, for its deleter */
  /** Called once by the consumer when it is done with the tensor (may be
   * NULL: nothing to free). */
  void (*deleter)(struct DLManagedTensorVersioned *self);
  uint64_t flags;        /**< DLPACK_FLAG_BITMASK_* bits */
  DLTensor dl_tensor;    /**< the tensor */
} DLManagedTensorVersioned;
#endif

#ifndef DLPACK_FLAG_BITMASK_READ_ONLY
/** DLManagedTensorVersioned flag: the consumer must not write the memory. */
#define DLPACK_FLAG_BITMASK_READ_ONLY (1UL << 0UL)
#endif
#ifndef DLPACK_FLAG_BITMASK_IS_COPIED
/** DLManagedTensorVersioned flag: the producer made this memory for the
 * consumer alone (a copy), so the consumer may write it. */
#define DLPACK_FLAG_BITMASK_IS_COPIED (1UL << 1UL)
#endif
#ifndef DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED
/** DLManagedTensorVersioned flag: sub-byte elements are padded to a byte each
 * rather than packed (this library takes packed data only). */
#define DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED (1UL << 2UL)
#endif

#ifdef __cplusplus
}
#endif

/**
 * Every device type and type code of DLPack 1.3 under this library's own
 * names. The enum constants of older headers stop at 0.6's set, and enum
 * constants cannot be added to an enum declared elsewhere, so the library and
 * its users spell the newer values through these.
 */
enum {
  TB_DL_CPU = 1,           /**< kDLCPU: CPU memory */
  TB_DL_CUDA = 2,          /**< kDLCUDA: CUDA device memory */
  TB_DL_CUDA_HOST = 3,     /**< kDLCUDAHost: CUDA pinned host memory */
  TB_DL_OPENCL = 4,        /**< kDLOpenCL: OpenCL memory (a cl_mem handle) */
  TB_DL_VULKAN = 7,        /**< kDLVulkan: Vulkan buffer (a handle) */
  TB_DL_METAL = 8,         /**< kDLMetal: Metal buffer (a handle) */
  TB_DL_VPI = 9,           /**< kDLVPI: Verilog simulator memory */
  TB_DL_ROCM = 10,         /**< kDLROCM: ROCm device memory */
  TB_DL_ROCM_HOST = 11,    /**< kDLROCMHost: ROCm pinned host memory */
  TB_DL_EXT_DEV = 12,      /**< kDLExtDev: devices outside DLPack's list */
  TB_DL_CUDA_MANAGED = 13, /**< kDLCUDAManaged: CUDA managed memory */
  TB_DL_ONEAPI = 14,       /**< kDLOneAPI: oneAPI (SYCL) unified shared memory */
  TB_DL_WEBGPU = 15,       /**< kDLWebGPU: WebGPU buffer (a handle) */
  TB_DL_HEXAGON = 16,      /**< kDLHexagon: Qualcomm Hexagon DSP */
  TB_DL_MAIA = 17,         /**< kDLMAIA: Microsoft MAIA */
  TB_DL_TRN = 18           /**< kDLTrn: AWS Trainium */
};

/** The type codes of DLPack 1.3 under this library's names (see the device
 * types above for why). */
enum {
  TB_DL_INT = 0,                 /**< kDLInt: signed integer */
  TB_DL_UINT = 1,                /**< kDLUInt: unsigned integer */
  TB_DL_FLOAT = 2,               /**< kDLFloat: IEEE floating point */
  TB_DL_OPAQUE_HANDLE = 3,       /**< kDLOpaqueHandle: an opaque handle */
  TB_DL_BFLOAT = 4,              /**< kDLBfloat: bfloat16 */
  TB_DL_COMPLEX = 5,             /**< kDLComplex: complex64, complex128 */
  TB_DL_BOOL = 6,                /**< kDLBool: bool, 8 bits */
  TB_DL_FLOAT8_E3M4 = 7,         /**< kDLFloat8_e3m4 */
  TB_DL_FLOAT8_E4M3 = 8,         /**< kDLFloat8_e4m3 */
  TB_DL_FLOAT8_E4M3B11FNUZ = 9,  /**< kDLFloat8_e4m3b11fnuz */
  TB_DL_FLOAT8_E4M3FN = 10,      /**< kDLFloat8_e4m3fn */
  TB_DL_FLOAT8_E4M3FNUZ = 11,    /**< kDLFloat8_e4m3fnuz */
  TB_DL_FLOAT8_E5M2 = 12,        /**< kDLFloat8_e5m2 */
  TB_DL_FLOAT8_E5M2FNUZ = 13,    /**< kDLFloat8_e5m2fnuz */
  TB_DL_FLOAT8_E8M0FNU = 14,     /**< kDLFloat8_e8m0fnu */
  TB_DL_FLOAT6_E2M3FN = 15,      /**< kDLFloat6_e2m3fn: 6 bits, packed */
  TB_DL_FLOAT6_E3M2FN = 16,      /**< kDLFloat6_e3m2fn: 6 bits, packed */
  TB_DL_FLOAT4_E2M1FN = 17       /**< kDLFloat4_e2m1fn: 4 bits, packed */
};

/** The DLPack major version this library produces and understands. */
#define TB_DLPACK_MAJOR 1
/** The DLPack minor version this library produces and understands. */
#define TB_DLPACK_MINOR 3

/** @} */

#endif /* TENSORBRIDGE_DLPACK_ABI_H */
