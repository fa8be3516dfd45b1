/*
 * The device layer: one table of function pointers per DLPack device type.
 * Core code talks to memory only through these; it never includes a backend's
 * headers. Only the CPU backend exists so far.
 */
#ifndef TB_DEVICE_H
#define TB_DEVICE_H

#include "internal.h"

/*
 * One strided copy, with an optional dtype conversion: `shape` elements from
 * src to dst, each side described as in DLTensor (a base pointer or handle,
 * a byte offset to the element at index 0, strides in elements).
 */
typedef struct tb_copy_desc {
  int32_t ndim;
  const int64_t *shape;
  void *dst;
  uint64_t dst_byte_offset;
  const int64_t *dst_strides;
  DLDataType dst_dtype;
  DLDevice dst_device;
  const void *src;
  uint64_t src_byte_offset;
  const int64_t *src_strides;
  DLDataType src_dtype;
  DLDevice src_device;
  uint32_t cast_flags;
} tb_copy_desc;

struct tb_device_vtable {
  int32_t device_type;
  const char *name;
  /* nbytes of fresh memory on device_id (NULL for 0 bytes). Host memory the
   * backend needs comes from `allocator`. */
  tb_status (*alloc)(const tb_device_vtable *self, int32_t device_id, uint64_t nbytes,
                     const tb_allocator *allocator, void **out);
  void (*free)(const tb_device_vtable *self, int32_t device_id, void *ptr, uint64_t nbytes,
               const tb_allocator *allocator);
  /* A strided copy with conversion between this device and itself or the
   * host, enqueued on `stream` (NULL: the device's default). */
  tb_status (*copy)(const tb_device_vtable *self, const tb_copy_desc *desc, void *stream);
  /* Waits for the work queued on `stream`. */
  tb_status (*synchronize)(const tb_device_vtable *self, int32_t device_id, void *stream);
};

/* The backend for a device type, or NULL when none is registered. */
TB_INTERNAL const tb_device_vtable *tb__device_backend(int32_t device_type);
/* As above, but TB_ERR_DEVICE with a message prefixed by `what` when none. */
TB_INTERNAL tb_status tb__device_lookup(const char *what, DLDevice device,
                                        const tb_device_vtable **out);
/* The backend that copies between two devices (host-accessible pairs go to
 * the CPU backend), or TB_ERR_DEVICE. */
TB_INTERNAL tb_status tb__device_copy_backend(const char *what, DLDevice dst, DLDevice src,
                                              const tb_device_vtable **out);

TB_INTERNAL extern const tb_device_vtable tb__cpu_backend;

/* The host strided copy engine (copy.c), with pointers already addressable. */
TB_INTERNAL tb_status tb__copy_host(const tb_copy_desc *desc);

#endif
