/*
 * CUDA IPC (ipc.h): the driver side of io/shm.c's CUDA handles. Exporting
 * asks cuIpcGetMemHandle for the base of the allocation under a tensor;
 * attaching opens such a handle with cuIpcOpenMemHandle, checks with
 * cuMemGetAddressRange that the mapping is as large as the handle says, and
 * wraps it in a storage whose deleter calls cuIpcCloseMemHandle. Every call
 * runs with the device's primary context current, as the rest of the
 * backend's do (the driver refuses IPC calls without a context).
 *
 * The driver, not the library, counts opens: opening a handle this process
 * has open already returns the same pointer with its count raised, and
 * each close lowers it, so two attaches of one handle (a tensor and a view
 * of it, say) are two storages that each close once.
 */
#include <stdio.h>

#include "cuda_internal.h"
#include "ipc.h"

/* What an attached storage's deleter owns: the mapping and the handle it
 * was opened with (re-encoding an attached tensor hands the same one on). */
typedef struct tb_cuda_ipc_mapping {
  tb_cuda_ipc_block block; /* data_offset unused */
  tb_cu_ptr base;          /* 0 when nothing was opened (size 0) */
  tb_allocator allocator;
} tb_cuda_ipc_mapping;

/* Waits for the library's queued work on the device (it may use the
 * mapping), then closes it; failures have nowhere to go, as in free. */
static void tb_cuda_ipc_close(void *data, void *ctx) {
  (void)data;
  tb_cuda_ipc_mapping *m = ctx;
  tb_cuda_device *dev;
  if (m->base != 0 && tb__cuda_device(m->block.device_id, &dev) == TB_OK &&
      tb__cuda_enter(dev) == TB_OK) {
    (void)tb__cuda.cu.stream_synchronize(dev->stream);
    (void)tb__cuda.cu.ipc_close_mem_handle(m->base);
    tb__cuda_leave(dev);
  }
  tb_allocator allocator = m->allocator;
  tb__free(&allocator, m, sizeof *m);
}

static bool tb_cuda_ipc_driver_has_it(void) {
  const tb_cu_api *cu = &tb__cuda.cu;
  return cu->ipc_get_mem_handle != NULL && cu->ipc_open_mem_handle != NULL &&
         cu->ipc_close_mem_handle != NULL && cu->mem_get_address_range != NULL;
}

bool tb__cuda_ipc_shared(const tb_tensor_t *t) {
  if (t == NULL || t->dl.device.device_type != kDLCUDA) return false;
  const tb_storage *s = t->storage;
  if (s->deleter == tb_cuda_ipc_close) return true;
  /* A CUDA tensor exists, so the driver was loaded already. */
  return s->backend == &tb__cuda_backend && tb_cuda_ipc_driver_has_it();
}

tb_status tb__cuda_ipc_available(const char *what) {
  if (tb__cuda_count() == 0) {
    return tb__fail(TB_ERR_DEVICE,
                    "%s: no cuda device is present (no driver, or it found no device)", what);
  }
#define TB_CU_MISSING(field, symbol, params)                                                \
  if (tb__cuda.cu.field == NULL) {                                                          \
    return tb__fail(TB_ERR_UNSUPPORTED,                                                     \
                    "%s: the CUDA driver does not export %s, which sharing CUDA memory "    \
                    "between processes (CUDA IPC) needs",                                   \
                    what, #symbol);                                                         \
  }
  TB_CU_OPTIONAL_FUNCTIONS(TB_CU_MISSING)
#undef TB_CU_MISSING
  return TB_OK;
}

static tb_status tb_cuda_ipc_get(const char *what, int32_t device_id, tb_cu_ptr base,
                                 unsigned char *handle) {
  tb_cuda_device *dev;
  tb_status st = tb__cuda_ipc_available(what);
  if (st == TB_OK) st = tb__cuda_device(device_id, &dev);
  if (st == TB_OK) st = tb__cuda_enter(dev);
  if (st != TB_OK) return st;
  tb_cu_ipc_mem_handle h;
  tb_cu_result r = tb__cuda.cu.ipc_get_mem_handle(&h, base);
  tb__cuda_leave(dev);
  if (r != TB_CU_SUCCESS) {
    return tb__cuda_fail(r, "cuIpcGetMemHandle", "ptr = 0x%llx, cuda:%d", (unsigned long long)base,
                         (int)device_id);
  }
  memcpy(handle, h.reserved, TB_CUDA_IPC_HANDLE_BYTES);
  return TB_OK;
}

tb_status tb__cuda_ipc_export(const char *what, const tb_tensor_t *t, tb_cuda_ipc_block *out) {
  const tb_storage *s = t->storage;
  uint64_t base;
  if (s->deleter == tb_cuda_ipc_close) {
    const tb_cuda_ipc_mapping *m = s->deleter_ctx;
    *out = m->block;
    base = m->base;
  } else {
    memset(out, 0, sizeof *out);
    out->device_id = s->device.device_id;
    out->size = s->nbytes;
    base = (uint64_t)(uintptr_t)s->data;
    if (base != 0) {
      tb_status st = tb_cuda_ipc_get(what, out->device_id, (tb_cu_ptr)base, out->handle);
      if (st != TB_OK) return st;
    }
  }
  out->data_offset = t->dl.data != NULL ? (uint64_t)(uintptr_t)t->dl.data - base : 0;
  return TB_OK;
}

/* A driver failure to open the handle is the handle's fault (TB_ERR_INVALID,
 * as a descriptor that does not match a host handle), with the driver's
 * words and, for the one case a caller can fix, what to do. */
static tb_status tb_cuda_ipc_refused(const char *what, tb_cu_result r, int32_t device_id) {
  tb_status st = tb__cuda_fail(r, "cuIpcOpenMemHandle",
                               "cuda:%d, flags = CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS",
                               (int)device_id);
  if (st == TB_ERR_NOMEM) return st;
  tb_error_save cause;
  tb__error_save(&cause);
  return tb__fail(TB_ERR_INVALID, "%s: the CUDA handle does not open in this process: %s%s", what,
                  cause.text,
                  r == TB_CU_ERROR_INVALID_CONTEXT
                      ? " (the driver opens a CUDA IPC handle only in a process other than "
                        "the one that made it; there, use the tensor itself)"
                      : "");
}

/* Opens m's handle (with dev's context current) and checks the mapping. */
static tb_status tb_cuda_ipc_open(const char *what, tb_cuda_ipc_mapping *m) {
  const tb_cu_api *cu = &tb__cuda.cu;
  tb_cu_ipc_mem_handle h;
  memcpy(h.reserved, m->block.handle, TB_CUDA_IPC_HANDLE_BYTES);
  tb_cu_ptr p = 0;
  tb_cu_result r = cu->ipc_open_mem_handle(&p, h, TB_CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS);
  if (r != TB_CU_SUCCESS) return tb_cuda_ipc_refused(what, r, m->block.device_id);
  tb_cu_ptr range_base = 0;
  size_t range_size = 0;
  r = cu->mem_get_address_range(&range_base, &range_size, p);
  tb_status st = TB_OK;
  if (r != TB_CU_SUCCESS) {
    st = tb__cuda_fail(r, "cuMemGetAddressRange", "ptr = 0x%llx (opened from a CUDA handle)",
                       (unsigned long long)p);
  } else if (range_base != p || (uint64_t)range_size < m->block.size) {
    st = tb__fail(TB_ERR_INVALID,
                  "%s: the allocation the CUDA handle opens holds %zu bytes from its base, "
                  "fewer than block_size = %llu in the handle (the handle does not match it)",
                  what, range_base == p ? range_size : (size_t)0,
                  (unsigned long long)m->block.size);
  }
  if (st != TB_OK) {
    (void)cu->ipc_close_mem_handle(p);
    return st;
  }
  m->base = p;
  return TB_OK;
}

tb_status tb__cuda_ipc_attach(const char *what, const tb_cuda_ipc_block *block, bool writable,
                              DLDataType dtype, int32_t ndim, const int64_t *shape,
                              const int64_t *strides, uint64_t byte_offset, tb_tensor_t **out) {
  tb_cuda_device *dev;
  tb_status st = tb__cuda_ipc_available(what);
  if (st == TB_OK) st = tb__cuda_device(block->device_id, &dev);
  if (st != TB_OK) return st;
  tb_allocator allocator;
  tb__allocator_current(&allocator);
  tb_cuda_ipc_mapping *m =
      tb__alloc(&allocator, sizeof *m, _Alignof(tb_cuda_ipc_mapping), "CUDA IPC mapping");
  if (m == NULL) return TB_ERR_NOMEM;
  *m = (tb_cuda_ipc_mapping){.block = *block, .base = 0, .allocator = allocator};
  m->block.data_offset = 0;
  if (block->size > 0) {
    st = tb__cuda_enter(dev);
    if (st == TB_OK) {
      st = tb_cuda_ipc_open(what, m);
      tb__cuda_leave(dev);
    }
  }
  if (st == TB_OK) {
    const DLDevice device = {kDLCUDA, block->device_id};
    st = tb__wrap(what, (void *)(uintptr_t)m->base, byte_offset, dtype, ndim, shape, strides,
                  device, writable ? 0 : TB_FLAG_READONLY, tb_cuda_ipc_close, m, out);
  }
  if (st != TB_OK) tb_cuda_ipc_close(NULL, m);
  return st;
}
