/*
 * The device layer: one table of function pointers per DLPack device type
 * (the public tb_device_vtable of tensorbridge/backend.h). Core code talks to
 * memory only through these; it never includes a backend's headers.
 */
#ifndef TB_DEVICE_H
#define TB_DEVICE_H

#include "internal.h"
#include "tensorbridge/backend.h"

/* The backend for a device, or TB_ERR_DEVICE (prefixed by `what`) when the
 * type has none or the device id is not present. */
TB_INTERNAL tb_status tb__device_lookup(const char *what, DLDevice device,
                                        const tb_device_vtable **out);

/*
 * Runs one copy between any two devices: host pairs through the CPU engine,
 * a device side through its backend's strided copy, or, when the backend has
 * none, staged through contiguous host buffers with its byte copies.
 */
TB_INTERNAL tb_status tb__copy(const char *what, const tb_copy_desc *desc);

/* The built-in CPU backend. */
TB_INTERNAL extern const tb_device_vtable tb__cpu_backend;

/* One dimension of a planned copy, strides in bytes. */
typedef struct tb_copy_dim {
  int64_t n;
  int64_t ss; /* source stride */
  int64_t ds; /* destination stride */
} tb_copy_dim;

/*
 * The plan every strided copy starts from (copy.c), in bytes: extent-1
 * dimensions dropped; destination strides made non-negative by walking such
 * a dimension backwards, which moves the start offsets by *src_shift and
 * *dst_shift bytes; the smallest destination stride innermost; neighbours
 * that step through memory as one merged. Returns the dimensions left, at
 * most desc->ndim (0: a single element). The extents were validated, so
 * nothing overflows.
 */
TB_INTERNAL int32_t tb__copy_plan(const tb_copy_desc *desc, size_t src_item, size_t dst_item,
                                  int64_t *src_shift, int64_t *dst_shift, tb_copy_dim *dims);

/* The host strided copy engine (copy.c); both sides host-addressable. */
TB_INTERNAL tb_status tb__copy_host(const tb_copy_desc *desc);

/* Backends compiled into this build register themselves here (device.c
 * calls it once, before the first lookup), each through tb__backend_add. */
TB_INTERNAL void tb__register_builtin_backends(void);

/* tb_register_backend without the one-time registration of the built-in
 * backends: what built-in backends call (calling the public function from
 * inside that one-time step would wait on itself). */
TB_INTERNAL tb_status tb__backend_add(const tb_device_vtable *backend);

#endif
