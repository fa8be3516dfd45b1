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
