/**
 * @file
 * @brief The device backend interface of libtensorbridge, for backend authors.
 *
 * A backend is one table of function pointers serving one DLPack device type
 * (kDLCUDA, kDLOpenCL, a custom accelerator under kDLExtDev, ...). The
 * library keeps a registry keyed by device type; tb_register_backend adds or
 * replaces an entry at run time, so a Vulkan, ROCm or in-house backend plugs
 * in without changing the library. The CPU backend is built in; CUDA and
 * OpenCL register themselves when the library was built with them and their
 * drivers load.
 *
 * Every function receives the table itself (`self`, for user_data) and, where
 * work is queued, a stream: an opaque handle of the backend's own kind
 * (cudaStream_t, cl_command_queue, ...), NULL for the backend's default.
 * Functions return TB_OK or a status with a message set through
 * tb_set_error (below); a pair of devices a function cannot serve gets
 * TB_ERR_UNSUPPORTED.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef TENSORBRIDGE_BACKEND_H
#define TENSORBRIDGE_BACKEND_H

#include "tensorbridge.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @defgroup tb_backends Device backends
 * @brief The interface a backend implements to serve a DLPack device type.
 *
 * A backend is one table of function pointers, a tb_device_vtable, serving
 * one DLPack device type (kDLCUDA, kDLOpenCL, a custom accelerator under
 * kDLExtDev, ...). The library keeps a registry keyed by device type;
 * tb_register_backend() adds or replaces an entry at run time. The CPU
 * backend is built in; CUDA and OpenCL register themselves when the library
 * was built with them and their drivers load.
 *
 * Every function receives the table itself (`self`, for user_data) and, where
 * work is queued, a stream: an opaque handle of the backend's own kind
 * (cudaStream_t, cl_command_queue, ...), NULL for the backend's default.
 * Functions return TB_OK or a status with a message set through
 * tb_set_error(); a pair of devices a function cannot serve gets
 * TB_ERR_UNSUPPORTED. Include tensorbridge/backend.h for these declarations.
 * @{
 */

/** Bumped whenever tb_device_vtable changes shape. */
#define TB_BACKEND_ABI_VERSION 1

/**
 * One strided copy with an optional dtype conversion: `shape` elements from
 * src to dst. Each side is described as in DLTensor: a base pointer or handle,
 * the byte offset of the element at index 0, strides in elements (any sign),
 * dtype and device. Either side may be host memory (a host-accessible device)
 * or the backend's own device.
 */
typedef struct tb_copy_desc {
  int32_t ndim;               /**< the number of dimensions */
  const int64_t *shape;       /**< ndim extents, shared by both sides */
  void *dst;                  /**< the destination's base pointer or handle */
  uint64_t dst_byte_offset;   /**< bytes from dst to its element at index 0 */
  const int64_t *dst_strides; /**< ndim destination strides, in elements */
  DLDataType dst_dtype;       /**< the destination's element type */
  DLDevice dst_device;        /**< the destination's device */
  const void *src;            /**< the source's base pointer or handle */
  uint64_t src_byte_offset;   /**< bytes from src to its element at index 0 */
  const int64_t *src_strides; /**< ndim source strides, in elements */
  DLDataType src_dtype;       /**< the source's element type */
  DLDevice src_device;        /**< the source's device */
  uint32_t cast_flags;        /**< TB_CAST_* */
} tb_copy_desc;

/** A backend's table of functions (see struct tb_device_vtable). */
typedef struct tb_device_vtable tb_device_vtable;

/** A backend: the device type it serves and its functions. Required
 * functions must be set; optional ones may be NULL. */
struct tb_device_vtable {
  uint32_t abi_version; /**< TB_BACKEND_ABI_VERSION */
  int32_t device_type;  /**< the DLDeviceType served */
  const char *name;     /**< short, static: "cuda", "opencl" */
  void *user_data;      /**< the backend's own */

  /** Devices present now; 0 when none (the library then refuses work on
   * this type with TB_ERR_DEVICE). Required. */
  int32_t (*device_count)(const tb_device_vtable *self);

  /** nbytes of fresh device memory; *out receives the pointer or handle (NULL
   * for 0 bytes). Host memory the backend needs for itself should come from
   * `host` so that embedders' allocators see it. Required. */
  tb_status (*alloc)(const tb_device_vtable *self, int32_t device_id, uint64_t nbytes,
                     const tb_allocator *host, void **out);
  /** Frees what alloc returned. Required. */
  void (*free)(const tb_device_vtable *self, int32_t device_id, void *ptr, uint64_t nbytes,
               const tb_allocator *host);

  /** Copies nbytes from src + src_offset to dst + dst_offset. Each side is on
   * this backend's device or on the host; offsets are in bytes and must be
   * applied by the backend (handles such as cl_mem cannot be offset by the
   * caller). Returns once host memory involved may be reused. Required. */
  tb_status (*copy_bytes)(const tb_device_vtable *self, void *dst, uint64_t dst_offset,
                          DLDevice dst_device, const void *src, uint64_t src_offset,
                          DLDevice src_device, uint64_t nbytes, void *stream);

  /** A strided copy with conversion (see tb_copy_desc). Optional: when NULL or
   * when it returns TB_ERR_UNSUPPORTED, the library stages the copy through
   * contiguous host buffers with copy_bytes and its own CPU engine. */
  tb_status (*copy_strided)(const tb_device_vtable *self, const tb_copy_desc *desc,
                            void *stream);

  /** Waits until the work queued on `stream` is done. Optional. */
  tb_status (*synchronize)(const tb_device_vtable *self, int32_t device_id, void *stream);

  /** Makes work queued later on `consumer` wait for the work queued on
   * `producer` now, without blocking the host (an event recorded on one,
   * waited on by the other). Used for DLPack's stream exchange. Optional. */
  tb_status (*stream_wait)(const tb_device_vtable *self, int32_t device_id, void *producer,
                           void *consumer);

  /** Which device the memory at `ptr` lives on, asked when a tensor on this
   * device type is imported (DLPack): lets the library take the GPU of a
   * managed allocation, and refuse a pointer declared on the wrong GPU.
   * Optional; any status other than TB_OK means "unknown" and the declared
   * device is kept. */
  tb_status (*pointer_device)(const tb_device_vtable *self, const void *ptr, DLDevice *out);
};

/**
 * Adds a backend for backend->device_type, replacing any earlier one (tensors
 * already made keep using the table that made them, so it must stay valid for
 * as long as they live; normally it is static). Validates the ABI version and
 * the required functions. Thread-safe. Borrows backend for the process.
 * @param backend the table; it must stay valid while tensors made by it live
 * @retval TB_OK          registered.
 * @retval TB_ERR_VERSION abi_version is not TB_BACKEND_ABI_VERSION.
 * @retval TB_ERR_DEVICE  device_type is not a DLPack device type.
 * @retval TB_ERR_INVALID backend is NULL, or a required function is missing.
 */
TB_API tb_status tb_register_backend(const tb_device_vtable *backend);

/**
 * The registered backend for a device type, or NULL.
 * @param device_type a DLPack device type
 * @return The table, or NULL when none is registered.
 */
TB_API const tb_device_vtable *tb_get_backend(int32_t device_type);

/**
 * Records a message for the calling thread, as the library's own failures
 * do, and returns status: backends report errors through it.
 * @param status  the status to return
 * @param message the message (NULL records ""); copied, and cut at 511 bytes
 * @return status.
 */
TB_API tb_status tb_set_error(tb_status status, const char *message);

/** @} */

#ifdef __cplusplus
}
#endif

#endif /* TENSORBRIDGE_BACKEND_H */
