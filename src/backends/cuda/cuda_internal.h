/*
 * Shared by the CUDA backend's files: the loaded driver, the per-device
 * state and the helpers that wrap every driver call in a checked, named
 * failure.
 *
 * Contexts: each device's primary context (the one the CUDA runtime, PyTorch
 * and CuPy use too), retained on first use of the device and kept for the
 * process. Every entry point pushes it around its driver calls and pops it
 * before returning, so the calling thread's current context is what it was.
 *
 * Streams: the library queues its work on one stream per device, created
 * with CU_STREAM_DEFAULT flags, so the legacy default stream (stream 0 of
 * code that uses the runtime without per-thread streams) waits for it and it
 * waits for the legacy default stream. Device-to-device copies return with
 * their kernels queued; anything that reads or writes host-accessible memory
 * (pageable, pinned or managed) waits for its work before returning. DLPack
 * export makes the consumer's stream wait for the library's stream with an
 * event (tb_cuda_stream_wait). Memory the library allocated is freed only
 * after its stream drains; memory it wraps (tb_from_array, DLPack imports)
 * goes back through the owner's deleter, which the core calls without that
 * wait, as CuPy and PyTorch do with theirs.
 */
#ifndef TB_CUDA_INTERNAL_H
#define TB_CUDA_INTERNAL_H

#include "../../platform/thread.h"

#include "../../device.h"
#include "driver.h"

/* Pageable host memory moves through two pinned buffers of this size. */
#define TB_CUDA_STAGE_BYTES ((size_t)4 << 20)

/* The castable dtypes (tb_cast_kind); kernel_abi.h spells their names. */
#define TB_CUDA_KINDS 15

typedef struct tb_cuda_device {
  int32_t id;
  tb_cu_device handle;
  /* Set once under `lock`; read without it after `ready` is seen. */
  tb__mutex lock;
  atomic_bool ready;
  tb_cu_context ctx;
  tb_cu_stream stream;
  bool managed_ok; /* CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY */
  uint32_t max_grid_x; /* CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X: launches stay within it */
  /* The kernels, loaded under `lock` on the first strided copy. */
  atomic_bool kernels_ready;
  tb_cu_module module;
  tb_cu_function cast[TB_CUDA_KINDS][TB_CUDA_KINDS];
  tb_cu_function move[5]; /* 1, 2, 4, 8, 16 bytes */
  /* Pinned staging, allocated on first use, used under `stage_lock`. */
  tb__mutex stage_lock;
  void *stage[2];
  tb_cu_event stage_done[2];
} tb_cuda_device;

/* The driver and the devices, found once on first use (tb__cuda_count). */
typedef struct tb_cuda_state {
  tb_cu_api cu;
  int32_t count;
  tb_cuda_device *devices;
} tb_cuda_state;

TB_INTERNAL extern tb_cuda_state tb__cuda;

/* ---- errors ---- */

/* Turns a failed driver call into a status and a message naming the call,
 * its arguments (`args`, printf-style) and the CUresult's name and text:
 * "cuda: cuMemAlloc(nbytes = 64) on cuda:0 failed: CUDA_ERROR_OUT_OF_MEMORY
 * (out of memory)". Out-of-memory gives TB_ERR_NOMEM, all else TB_ERR_DEVICE. */
TB_INTERNAL tb_status tb__cuda_fail(tb_cu_result r, const char *call, const char *fmt, ...)
    TB_PRINTF(3, 4);

/* Evaluates a driver call once; on failure returns from the enclosing
 * function with tb__cuda_fail's status. For paths with nothing to undo. */
#define TB_CU_TRY(call_expr, name, ...)                                               \
  do {                                                                                \
    tb_cu_result tb_cu_r_ = (call_expr);                                              \
    if (tb_cu_r_ != TB_CU_SUCCESS) return tb__cuda_fail(tb_cu_r_, name, __VA_ARGS__); \
  } while (0)

/* ---- devices and contexts ---- */

/* Loads the driver and counts the devices on the first call (thread-safe);
 * 0 when there is no driver or no device. */
TB_INTERNAL int32_t tb__cuda_count(void);

/* The device's state, initialising it (primary context, stream) on first
 * use; TB_ERR_DEVICE for an id out of range. */
TB_INTERNAL tb_status tb__cuda_device(int32_t id, tb_cuda_device **out);

/* Makes dev's primary context current for the calling thread until the
 * matching tb__cuda_leave (which restores the previous one). */
TB_INTERNAL tb_status tb__cuda_enter(const tb_cuda_device *dev);
TB_INTERNAL void tb__cuda_leave(const tb_cuda_device *dev);

/* The stream to queue on: the caller's, or the device's own for NULL. */
static inline tb_cu_stream tb__cuda_stream(const tb_cuda_device *dev, void *stream) {
  return stream != NULL ? (tb_cu_stream)stream : dev->stream;
}

/* ---- transfers (backend.c), with dev's context current ---- */

/* nbytes between device memory of dev and host memory of any host-accessible
 * device type; pageable memory goes through the pinned staging buffers.
 * Returns once the host memory may be reused (the stream is synchronised). */
TB_INTERNAL tb_status tb__cuda_to_device(tb_cuda_device *dev, tb_cu_ptr dst, const void *src,
                                         DLDevice src_device, uint64_t nbytes, tb_cu_stream stream);
TB_INTERNAL tb_status tb__cuda_to_host(tb_cuda_device *dev, void *dst, DLDevice dst_device,
                                       tb_cu_ptr src, uint64_t nbytes, tb_cu_stream stream);

/* ---- for the core ---- */

/* The kDLCUDA table: storage whose backend it is holds cuMemAlloc memory
 * (ipc.c tells IPC-capable tensors by it). */
TB_INTERNAL extern const tb_device_vtable tb__cuda_backend;

/* The registry's call for built-in backends (see backend.c). */
TB_INTERNAL void tb__cuda_register(void);

/* The device a pointer the CUDA driver knows lives on (backend.c says which
 * device types it reports); for the core's import path. */
TB_INTERNAL tb_status tb__cuda_pointer_device(const void *ptr, DLDevice *out);

/* ---- the strided copy (copy.c) ---- */

TB_INTERNAL tb_status tb__cuda_copy_strided(const tb_device_vtable *self, const tb_copy_desc *desc,
                                            void *stream);

/* ---- the embedded kernels (generated from kernels.cu at build time) ---- */

TB_INTERNAL extern const unsigned char tb_cuda_fatbin[];
TB_INTERNAL extern const size_t tb_cuda_fatbin_size;

#endif
