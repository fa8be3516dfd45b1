/*
 * The CUDA backend: kDLCUDA (device memory), kDLCUDAHost (pinned host memory)
 * and kDLCUDAManaged (managed memory), over the driver API loaded at run time
 * (driver.h). Contexts and streams are described in cuda_internal.h; the
 * strided copy with its kernels lives in copy.c.
 */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

tb_cuda_state tb__cuda;

/* ---- errors ---- */

tb_status tb__cuda_fail(tb_cu_result r, const char *call, const char *fmt, ...) {
  char args[256];
  va_list ap;
  va_start(ap, fmt);
  (void)vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  const char *name = NULL, *text = NULL;
  if (tb__cuda.cu.get_error_name == NULL || tb__cuda.cu.get_error_name(r, &name) != TB_CU_SUCCESS) {
    name = NULL;
  }
  if (tb__cuda.cu.get_error_string == NULL ||
      tb__cuda.cu.get_error_string(r, &text) != TB_CU_SUCCESS) {
    text = NULL;
  }
  tb_status st = r == TB_CU_ERROR_OUT_OF_MEMORY ? TB_ERR_NOMEM : TB_ERR_DEVICE;
  if (name != NULL) {
    return tb__fail(st, "cuda: %s(%s) failed: %s (%s)", call, args, name,
                    text != NULL ? text : "no description");
  }
  return tb__fail(st, "cuda: %s(%s) failed: CUresult %u", call, args, r);
}

/* ---- the driver ---- */

#define TB_CU_ENTRY(field, symbol, params) {#symbol, offsetof(tb_cu_api, field)},
static const struct {
  const char *symbol;
  size_t offset;
} tb_cu_symbols[] = {TB_CU_FUNCTIONS(TB_CU_ENTRY)},
  tb_cu_optional_symbols[] = {TB_CU_OPTIONAL_FUNCTIONS(TB_CU_ENTRY)};
#undef TB_CU_ENTRY

_Static_assert(sizeof(void *) == sizeof(tb_cu_result(*)(void)),
               "dlsym's object pointers must hold function pointers (POSIX)");

/* Opens libcuda.so.1 and resolves every entry point into *api; false (and
 * the library closed again) when any required one is missing. Optional ones
 * that are missing stay NULL. Never the unversioned libcuda.so, which may
 * be the toolkit's link-time stub. */
static bool tb_cuda_load_driver(tb_cu_api *api) {
  void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) return false;
  for (size_t i = 0; i < sizeof tb_cu_symbols / sizeof tb_cu_symbols[0]; i++) {
    void *sym = dlsym(lib, tb_cu_symbols[i].symbol);
    if (sym == NULL) {
      (void)dlclose(lib);
      return false;
    }
    /* ISO C has no object-to-function pointer conversion; copy the bits. */
    memcpy((char *)api + tb_cu_symbols[i].offset, &sym, sizeof sym);
  }
  for (size_t i = 0; i < sizeof tb_cu_optional_symbols / sizeof tb_cu_optional_symbols[0]; i++) {
    void *sym = dlsym(lib, tb_cu_optional_symbols[i].symbol);
    if (sym != NULL) memcpy((char *)api + tb_cu_optional_symbols[i].offset, &sym, sizeof sym);
  }
  return true; /* the library stays loaded for the life of the process */
}

/* ---- devices and contexts ---- */

static tb_status tb_cuda_device_init(tb_cuda_device *dev) {
  const tb_cu_api *cu = &tb__cuda.cu;
  tb_cu_context ctx = NULL;
  TB_CU_TRY(cu->primary_ctx_retain(&ctx, dev->handle), "cuDevicePrimaryCtxRetain", "device = %d",
            (int)dev->id);
  tb_cu_result r = cu->ctx_push(ctx);
  if (r != TB_CU_SUCCESS) {
    (void)cu->primary_ctx_release(dev->handle);
    return tb__cuda_fail(r, "cuCtxPushCurrent", "primary context of cuda:%d", (int)dev->id);
  }
  const char *call = "cuStreamCreate";
  tb_cu_stream stream = NULL;
  int managed = 0, grid_x = 0;
  r = cu->stream_create(&stream, TB_CU_STREAM_DEFAULT);
  if (r == TB_CU_SUCCESS) {
    call = "cuDeviceGetAttribute";
    r = cu->device_get_attribute(&managed, TB_CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY, dev->handle);
  }
  if (r == TB_CU_SUCCESS) {
    r = cu->device_get_attribute(&grid_x, TB_CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X, dev->handle);
  }
  if (r != TB_CU_SUCCESS && stream != NULL) (void)cu->stream_destroy(stream);
  tb_cu_context popped;
  (void)cu->ctx_pop(&popped);
  if (r != TB_CU_SUCCESS) {
    (void)cu->primary_ctx_release(dev->handle);
    return tb__cuda_fail(r, call, "cuda:%d", (int)dev->id);
  }
  dev->ctx = ctx;
  dev->stream = stream;
  dev->managed_ok = managed != 0;
  dev->max_grid_x = grid_x > 0 ? (uint32_t)grid_x : 1u;
  atomic_store_explicit(&dev->ready, true, memory_order_release);
  return TB_OK;
}

tb_status tb__cuda_device(int32_t id, tb_cuda_device **out) {
  if (id < 0 || id >= tb__cuda_count()) {
    return tb__fail(TB_ERR_DEVICE, "cuda: device %d is not present (%d found)", (int)id,
                    (int)tb__cuda.count);
  }
  tb_cuda_device *dev = &tb__cuda.devices[id];
  if (!atomic_load_explicit(&dev->ready, memory_order_acquire)) {
    tb_status st = TB_OK;
    if (!tb__mutex_lock(&dev->lock)) {
      return tb__fail(TB_ERR_DEVICE, "cuda: cannot lock the state of cuda:%d", (int)id);
    }
    if (!atomic_load_explicit(&dev->ready, memory_order_relaxed)) st = tb_cuda_device_init(dev);
    tb__mutex_unlock(&dev->lock);
    if (st != TB_OK) return st;
  }
  *out = dev;
  return TB_OK;
}

tb_status tb__cuda_enter(const tb_cuda_device *dev) {
  TB_CU_TRY(tb__cuda.cu.ctx_push(dev->ctx), "cuCtxPushCurrent", "primary context of cuda:%d",
            (int)dev->id);
  return TB_OK;
}

void tb__cuda_leave(const tb_cuda_device *dev) {
  (void)dev;
  tb_cu_context popped;
  /* Pops what tb__cuda_enter pushed; it cannot fail while that is on top. */
  (void)tb__cuda.cu.ctx_pop(&popped);
}

/* ---- pinned staging for pageable host memory ---- */

static tb_status tb_cuda_stage_ready(tb_cuda_device *dev) {
  const tb_cu_api *cu = &tb__cuda.cu;
  for (int k = 0; k < 2; k++) {
    if (dev->stage[k] == NULL) {
      TB_CU_TRY(
          cu->mem_host_alloc(&dev->stage[k], TB_CUDA_STAGE_BYTES, TB_CU_MEMHOSTALLOC_PORTABLE),
          "cuMemHostAlloc", "nbytes = %zu, staging buffer %d of cuda:%d", TB_CUDA_STAGE_BYTES, k,
          (int)dev->id);
    }
    if (dev->stage_done[k] == NULL) {
      TB_CU_TRY(cu->event_create(&dev->stage_done[k], TB_CU_EVENT_DISABLE_TIMING), "cuEventCreate",
                "staging event %d of cuda:%d", k, (int)dev->id);
    }
  }
  return TB_OK;
}

static size_t tb_chunk(uint64_t nbytes, uint64_t at) {
  uint64_t left = nbytes - at;
  return left < TB_CUDA_STAGE_BYTES ? (size_t)left : TB_CUDA_STAGE_BYTES;
}

/* Waits for the stream and folds its failure into st (the first failure
 * wins): every staged transfer ends here, so no copy into or out of a
 * staging buffer is still running when the next caller takes the lock. */
static tb_status tb_cuda_drain(const tb_cuda_device *dev, tb_cu_stream stream, tb_status st) {
  tb_cu_result r = tb__cuda.cu.stream_synchronize(stream);
  if (r != TB_CU_SUCCESS && st == TB_OK) {
    st = tb__cuda_fail(r, "cuStreamSynchronize", "stream %p of cuda:%d", (void *)stream,
                       (int)dev->id);
  }
  return st;
}

/* Host -> pinned buffer k (CPU) while the DMA from buffer k ^ 1 runs. */
static tb_status tb_cuda_stage_in(tb_cuda_device *dev, tb_cu_ptr dst, const char *src,
                                  uint64_t nbytes, tb_cu_stream stream) {
  const tb_cu_api *cu = &tb__cuda.cu;
  tb_status st = tb_cuda_stage_ready(dev);
  bool busy[2] = {false, false};
  int k = 0;
  for (uint64_t at = 0; st == TB_OK && at < nbytes; at += tb_chunk(nbytes, at), k ^= 1) {
    size_t len = tb_chunk(nbytes, at);
    tb_cu_result r = busy[k] ? cu->event_synchronize(dev->stage_done[k]) : TB_CU_SUCCESS;
    if (r != TB_CU_SUCCESS) {
      st = tb__cuda_fail(r, "cuEventSynchronize", "staging event %d of cuda:%d", k, (int)dev->id);
      break;
    }
    memcpy(dev->stage[k], src + at, len);
    r = cu->memcpy_htod_async(dst + at, dev->stage[k], len, stream);
    if (r != TB_CU_SUCCESS) {
      st = tb__cuda_fail(r, "cuMemcpyHtoDAsync", "dst = 0x%llx, nbytes = %zu, cuda:%d",
                         (unsigned long long)(dst + at), len, (int)dev->id);
      break;
    }
    r = cu->event_record(dev->stage_done[k], stream);
    if (r != TB_CU_SUCCESS) {
      st = tb__cuda_fail(r, "cuEventRecord", "staging event %d of cuda:%d", k, (int)dev->id);
      break;
    }
    busy[k] = true;
  }
  return tb_cuda_drain(dev, stream, st);
}

/* Queues chunk j of a device -> pinned transfer into buffer j & 1. */
static tb_status tb_cuda_stage_issue(tb_cuda_device *dev, tb_cu_ptr src, uint64_t nbytes,
                                     uint64_t j, tb_cu_stream stream) {
  const tb_cu_api *cu = &tb__cuda.cu;
  uint64_t at = j * TB_CUDA_STAGE_BYTES;
  size_t len = tb_chunk(nbytes, at);
  int k = (int)(j & 1u);
  TB_CU_TRY(cu->memcpy_dtoh_async(dev->stage[k], src + at, len, stream), "cuMemcpyDtoHAsync",
            "src = 0x%llx, nbytes = %zu, cuda:%d", (unsigned long long)(src + at), len,
            (int)dev->id);
  TB_CU_TRY(cu->event_record(dev->stage_done[k], stream), "cuEventRecord",
            "staging event %d of cuda:%d", k, (int)dev->id);
  return TB_OK;
}

/* Chunk j + 1 is in flight while the CPU copies chunk j out of its buffer. */
static tb_status tb_cuda_stage_out(tb_cuda_device *dev, char *dst, tb_cu_ptr src, uint64_t nbytes,
                                   tb_cu_stream stream) {
  const tb_cu_api *cu = &tb__cuda.cu;
  uint64_t chunks = (nbytes + TB_CUDA_STAGE_BYTES - 1) / TB_CUDA_STAGE_BYTES;
  tb_status st = tb_cuda_stage_ready(dev);
  for (uint64_t j = 0; st == TB_OK && j < chunks && j < 2; j++) {
    st = tb_cuda_stage_issue(dev, src, nbytes, j, stream);
  }
  for (uint64_t j = 0; st == TB_OK && j < chunks; j++) {
    int k = (int)(j & 1u);
    tb_cu_result r = cu->event_synchronize(dev->stage_done[k]);
    if (r != TB_CU_SUCCESS) {
      st = tb__cuda_fail(r, "cuEventSynchronize", "staging event %d of cuda:%d", k, (int)dev->id);
      break;
    }
    uint64_t at = j * TB_CUDA_STAGE_BYTES;
    memcpy(dst + at, dev->stage[k], tb_chunk(nbytes, at));
    if (j + 2 < chunks) st = tb_cuda_stage_issue(dev, src, nbytes, j + 2, stream);
  }
  return tb_cuda_drain(dev, stream, st);
}

/* Host memory the driver can reach directly: pinned (kDLCUDAHost, or CPU
 * memory someone registered), managed, or anything else CUDA allocated.
 * Plain pageable memory is unknown to the driver and the query fails (the
 * failure is not sticky and leaves no error behind). */
static bool tb_cuda_host_is_mapped(const void *ptr, DLDevice device) {
  if (device.device_type == kDLCUDAHost || device.device_type == kDLCUDAManaged) return true;
  unsigned int type = 0;
  return tb__cuda.cu.pointer_get_attribute(&type, TB_CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
                                           (tb_cu_ptr)(uintptr_t)ptr) == TB_CU_SUCCESS &&
         type != 0;
}

static tb_status tb_lock_staging(tb_cuda_device *dev) {
  if (!tb__mutex_lock(&dev->stage_lock)) {
    return tb__fail(TB_ERR_DEVICE, "cuda: cannot lock the staging buffers of cuda:%d",
                    (int)dev->id);
  }
  return TB_OK;
}

tb_status tb__cuda_to_device(tb_cuda_device *dev, tb_cu_ptr dst, const void *src,
                             DLDevice src_device, uint64_t nbytes, tb_cu_stream stream) {
  if (nbytes == 0) return TB_OK;
  if (tb_cuda_host_is_mapped(src, src_device)) {
    TB_CU_TRY(tb__cuda.cu.memcpy_async(dst, (tb_cu_ptr)(uintptr_t)src, (size_t)nbytes, stream),
              "cuMemcpyAsync", "dst = 0x%llx (cuda:%d), src = %p (%s), nbytes = %llu",
              (unsigned long long)dst, (int)dev->id, src,
              tb__device_type_name((int32_t)src_device.device_type), (unsigned long long)nbytes);
    return tb_cuda_drain(dev, stream, TB_OK);
  }
  tb_status st = tb_lock_staging(dev);
  if (st != TB_OK) return st;
  st = tb_cuda_stage_in(dev, dst, (const char *)src, nbytes, stream);
  tb__mutex_unlock(&dev->stage_lock);
  return st;
}

tb_status tb__cuda_to_host(tb_cuda_device *dev, void *dst, DLDevice dst_device, tb_cu_ptr src,
                           uint64_t nbytes, tb_cu_stream stream) {
  if (nbytes == 0) return TB_OK;
  if (tb_cuda_host_is_mapped(dst, dst_device)) {
    TB_CU_TRY(tb__cuda.cu.memcpy_async((tb_cu_ptr)(uintptr_t)dst, src, (size_t)nbytes, stream),
              "cuMemcpyAsync", "dst = %p (%s), src = 0x%llx (cuda:%d), nbytes = %llu", dst,
              tb__device_type_name((int32_t)dst_device.device_type), (unsigned long long)src,
              (int)dev->id, (unsigned long long)nbytes);
    return tb_cuda_drain(dev, stream, TB_OK);
  }
  tb_status st = tb_lock_staging(dev);
  if (st != TB_OK) return st;
  st = tb_cuda_stage_out(dev, (char *)dst, src, nbytes, stream);
  tb__mutex_unlock(&dev->stage_lock);
  return st;
}

/* ---- the vtables' functions ---- */

static int32_t tb_cuda_count(const tb_device_vtable *self) {
  (void)self;
  return tb__cuda_count();
}

typedef enum tb_cuda_memory {
  TB_CUDA_DEVICE_MEMORY,
  TB_CUDA_PINNED,
  TB_CUDA_MANAGED
} tb_cuda_memory;

static tb_cuda_memory tb_memory_of(const tb_device_vtable *self) {
  return self->device_type == kDLCUDAHost      ? TB_CUDA_PINNED
         : self->device_type == kDLCUDAManaged ? TB_CUDA_MANAGED
                                               : TB_CUDA_DEVICE_MEMORY;
}

static tb_status tb_cuda_alloc_in(tb_cuda_device *dev, tb_cuda_memory kind, size_t n, void **out) {
  const tb_cu_api *cu = &tb__cuda.cu;
  tb_cu_ptr p = 0;
  switch (kind) {
    case TB_CUDA_PINNED:
      TB_CU_TRY(
          cu->mem_host_alloc(out, n, TB_CU_MEMHOSTALLOC_PORTABLE | TB_CU_MEMHOSTALLOC_DEVICEMAP),
          "cuMemHostAlloc", "nbytes = %zu, cuda_host:%d", n, (int)dev->id);
      return TB_OK;
    case TB_CUDA_MANAGED:
      if (!dev->managed_ok) {
        return tb__fail(TB_ERR_UNSUPPORTED, "cuda: cuda:%d cannot allocate managed memory",
                        (int)dev->id);
      }
      TB_CU_TRY(cu->mem_alloc_managed(&p, n, TB_CU_MEM_ATTACH_GLOBAL), "cuMemAllocManaged",
                "nbytes = %zu, cuda_managed:%d", n, (int)dev->id);
      break;
    case TB_CUDA_DEVICE_MEMORY:
      TB_CU_TRY(cu->mem_alloc(&p, n), "cuMemAlloc", "nbytes = %zu, cuda:%d", n, (int)dev->id);
      break;
  }
  *out = (void *)(uintptr_t)p;
  return TB_OK;
}

static tb_status tb_cuda_alloc(const tb_device_vtable *self, int32_t device_id, uint64_t nbytes,
                               const tb_allocator *host, void **out) {
  (void)host; /* the driver allocates its own bookkeeping */
  if (nbytes == 0) {
    *out = NULL;
    return TB_OK;
  }
  if (nbytes > SIZE_MAX) {
    return tb__fail(TB_ERR_OVERFLOW, "cuda alloc: nbytes = %llu exceeds the address space",
                    (unsigned long long)nbytes);
  }
  tb_cuda_device *dev;
  tb_status st = tb__cuda_device(device_id, &dev);
  if (st == TB_OK) st = tb__cuda_enter(dev);
  if (st != TB_OK) return st;
  st = tb_cuda_alloc_in(dev, tb_memory_of(self), (size_t)nbytes, out);
  tb__cuda_leave(dev);
  return st;
}

/* Frees after the library's queued work on the device is done, since a
 * kernel may still read the memory; failures have nowhere to go (free
 * returns nothing) and leave the memory to the driver's teardown. */
static void tb_cuda_free(const tb_device_vtable *self, int32_t device_id, void *ptr,
                         uint64_t nbytes, const tb_allocator *host) {
  (void)nbytes;
  (void)host;
  tb_cuda_device *dev;
  if (ptr == NULL || tb__cuda_device(device_id, &dev) != TB_OK || tb__cuda_enter(dev) != TB_OK) {
    return;
  }
  const tb_cu_api *cu = &tb__cuda.cu;
  (void)cu->stream_synchronize(dev->stream);
  if (tb_memory_of(self) == TB_CUDA_PINNED) {
    (void)cu->mem_free_host(ptr);
  } else {
    (void)cu->mem_free((tb_cu_ptr)(uintptr_t)ptr);
  }
  tb__cuda_leave(dev);
}

/* Device to device across two GPUs: the source's queued work first, then a
 * peer copy on the destination's stream, waited for (a rare path kept
 * simple; `stream` names one device's stream and cannot serve both). */
static tb_status tb_cuda_copy_peer(tb_cu_ptr dst, int32_t dst_id, tb_cu_ptr src, int32_t src_id,
                                   uint64_t nbytes) {
  tb_cuda_device *sd, *dd;
  tb_status st = tb__cuda_device(src_id, &sd);
  if (st == TB_OK) st = tb__cuda_device(dst_id, &dd);
  if (st == TB_OK) st = tb__cuda_enter(sd);
  if (st != TB_OK) return st;
  st = tb_cuda_drain(sd, sd->stream, TB_OK);
  tb__cuda_leave(sd);
  if (st == TB_OK) st = tb__cuda_enter(dd);
  if (st != TB_OK) return st;
  tb_cu_result r =
      tb__cuda.cu.memcpy_peer_async(dst, dd->ctx, src, sd->ctx, (size_t)nbytes, dd->stream);
  if (r != TB_CU_SUCCESS) {
    st = tb__cuda_fail(r, "cuMemcpyPeerAsync", "cuda:%d <- cuda:%d, nbytes = %llu", (int)dst_id,
                       (int)src_id, (unsigned long long)nbytes);
  }
  st = tb_cuda_drain(dd, dd->stream, st);
  tb__cuda_leave(dd);
  return st;
}

static tb_status tb_cuda_copy_bytes(const tb_device_vtable *self, void *dst, uint64_t dst_offset,
                                    DLDevice dst_device, const void *src, uint64_t src_offset,
                                    DLDevice src_device, uint64_t nbytes, void *stream) {
  (void)self;
  if (nbytes == 0) return TB_OK;
  if (nbytes > SIZE_MAX) {
    return tb__fail(TB_ERR_OVERFLOW, "cuda copy: nbytes = %llu exceeds the address space",
                    (unsigned long long)nbytes);
  }
  bool dst_gpu = dst_device.device_type == kDLCUDA, src_gpu = src_device.device_type == kDLCUDA;
  if ((!dst_gpu && !tb__device_is_host(dst_device)) ||
      (!src_gpu && !tb__device_is_host(src_device))) {
    return tb__fail(TB_ERR_UNSUPPORTED, "cuda copy: %s -> %s is not a pair the CUDA backend serves",
                    tb__device_type_name((int32_t)src_device.device_type),
                    tb__device_type_name((int32_t)dst_device.device_type));
  }
  if (!dst_gpu && !src_gpu) { /* pinned or managed memory on both sides: plain host memory */
    memcpy((char *)dst + dst_offset, (const char *)src + src_offset, (size_t)nbytes);
    return TB_OK;
  }
  tb_cu_ptr d = (tb_cu_ptr)(uintptr_t)dst + dst_offset, s = (tb_cu_ptr)(uintptr_t)src + src_offset;
  if (dst_gpu && src_gpu && dst_device.device_id != src_device.device_id) {
    return tb_cuda_copy_peer(d, dst_device.device_id, s, src_device.device_id, nbytes);
  }
  tb_cuda_device *dev;
  tb_status st = tb__cuda_device(dst_gpu ? dst_device.device_id : src_device.device_id, &dev);
  if (st == TB_OK) st = tb__cuda_enter(dev);
  if (st != TB_OK) return st;
  tb_cu_stream q = tb__cuda_stream(dev, stream);
  if (dst_gpu && src_gpu) {
    tb_cu_result r = tb__cuda.cu.memcpy_dtod_async(d, s, (size_t)nbytes, q);
    if (r != TB_CU_SUCCESS) {
      st = tb__cuda_fail(
          r, "cuMemcpyDtoDAsync", "dst = 0x%llx, src = 0x%llx, nbytes = %llu, cuda:%d",
          (unsigned long long)d, (unsigned long long)s, (unsigned long long)nbytes, (int)dev->id);
    }
  } else if (dst_gpu) {
    st = tb__cuda_to_device(dev, d, (const char *)src + src_offset, src_device, nbytes, q);
  } else {
    st = tb__cuda_to_host(dev, (char *)dst + dst_offset, dst_device, s, nbytes, q);
  }
  tb__cuda_leave(dev);
  return st;
}

static tb_status tb_cuda_synchronize(const tb_device_vtable *self, int32_t device_id,
                                     void *stream) {
  (void)self;
  tb_cuda_device *dev;
  tb_status st = tb__cuda_device(device_id, &dev);
  if (st == TB_OK) st = tb__cuda_enter(dev);
  if (st != TB_OK) return st;
  st = tb_cuda_drain(dev, tb__cuda_stream(dev, stream), TB_OK);
  tb__cuda_leave(dev);
  return st;
}

/* An event recorded on the producer, waited for by the consumer; the host
 * never blocks. Destroying the event right away is allowed: the driver
 * keeps it until the wait no longer needs it. */
static tb_status tb_cuda_stream_wait_in(const tb_cuda_device *dev, tb_cu_stream producer,
                                        tb_cu_stream consumer) {
  const tb_cu_api *cu = &tb__cuda.cu;
  tb_cu_event ev = NULL;
  TB_CU_TRY(cu->event_create(&ev, TB_CU_EVENT_DISABLE_TIMING), "cuEventCreate", "cuda:%d",
            (int)dev->id);
  tb_status st = TB_OK;
  tb_cu_result r = cu->event_record(ev, producer);
  if (r != TB_CU_SUCCESS) {
    st = tb__cuda_fail(r, "cuEventRecord", "producer stream %p, cuda:%d", (void *)producer,
                       (int)dev->id);
  } else if ((r = cu->stream_wait_event(consumer, ev, 0)) != TB_CU_SUCCESS) {
    st = tb__cuda_fail(r, "cuStreamWaitEvent", "consumer stream %p, cuda:%d", (void *)consumer,
                       (int)dev->id);
  }
  (void)cu->event_destroy(ev);
  return st;
}

static tb_status tb_cuda_stream_wait(const tb_device_vtable *self, int32_t device_id,
                                     void *producer, void *consumer) {
  (void)self;
  tb_cuda_device *dev;
  tb_status st = tb__cuda_device(device_id, &dev);
  if (st != TB_OK) return st;
  tb_cu_stream p = tb__cuda_stream(dev, producer), c = tb__cuda_stream(dev, consumer);
  if (p == c) return TB_OK; /* one stream runs in order */
  if ((st = tb__cuda_enter(dev)) != TB_OK) return st;
  st = tb_cuda_stream_wait_in(dev, p, c);
  tb__cuda_leave(dev);
  return st;
}

/* ---- pointer classification (for the core's import path) ---- */

/*
 * The device a CUDA-known pointer lives on: {kDLCUDAManaged, ordinal} for
 * managed memory, {kDLCUDAHost, 0} for pinned host memory (DLPack's
 * convention: pinned memory belongs to no one device), {kDLCUDA, ordinal}
 * for device memory. TB_ERR_DEVICE when CUDA is not loaded or has no device;
 * TB_ERR_INVALID when the driver does not know the pointer (pageable host
 * memory, a stale pointer). Device 0's primary context is made current for
 * the queries, as the driver asks for a context. Thread-safe.
 */
tb_status tb__cuda_pointer_device(const void *ptr, DLDevice *out) {
  if (tb__cuda_count() == 0) {
    return tb__fail(TB_ERR_DEVICE,
                    "cuda: pointer_device: no CUDA driver or device in this process");
  }
  tb_cuda_device *dev;
  tb_status st = tb__cuda_device(0, &dev);
  if (st == TB_OK) st = tb__cuda_enter(dev);
  if (st != TB_OK) return st;
  const tb_cu_api *cu = &tb__cuda.cu;
  tb_cu_ptr p = (tb_cu_ptr)(uintptr_t)ptr;
  unsigned int type = 0;
  int ordinal = 0;
  /* Documented as "a boolean" without a width: a zeroed 8-byte slot reads
   * nonzero for true whether the driver writes 1, 4 or 8 bytes. */
  uint64_t managed = 0;
  tb_cu_result r = cu->pointer_get_attribute(&type, TB_CU_POINTER_ATTRIBUTE_MEMORY_TYPE, p);
  const char *attr = "CU_POINTER_ATTRIBUTE_MEMORY_TYPE";
  if (r == TB_CU_SUCCESS) {
    attr = "CU_POINTER_ATTRIBUTE_IS_MANAGED";
    r = cu->pointer_get_attribute(&managed, TB_CU_POINTER_ATTRIBUTE_IS_MANAGED, p);
  }
  if (r == TB_CU_SUCCESS) {
    attr = "CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL";
    r = cu->pointer_get_attribute(&ordinal, TB_CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, p);
  }
  tb__cuda_leave(dev);
  if (r == TB_CU_ERROR_INVALID_VALUE) {
    return tb__fail(
        TB_ERR_INVALID,
        "cuda: pointer %p is not memory the CUDA driver allocated, mapped or registered", ptr);
  }
  if (r != TB_CU_SUCCESS)
    return tb__cuda_fail(r, "cuPointerGetAttribute", "%s, ptr = %p", attr, ptr);
  if (ordinal < 0 || ordinal >= tb__cuda.count) ordinal = 0; /* managed memory may report none */
  if (managed != 0) {
    *out = (DLDevice){kDLCUDAManaged, ordinal};
  } else if (type == TB_CU_MEMORYTYPE_HOST) {
    *out = (DLDevice){kDLCUDAHost, 0};
  } else {
    *out = (DLDevice){kDLCUDA, ordinal};
  }
  return TB_OK;
}

/* ---- registration ---- */

static tb_status tb_cuda_pointer_device(const tb_device_vtable *self, const void *ptr,
                                        DLDevice *out) {
  (void)self;
  return tb__cuda_pointer_device(ptr, out);
}

const tb_device_vtable tb__cuda_backend = {
    .abi_version = TB_BACKEND_ABI_VERSION,
    .device_type = kDLCUDA,
    .name = "cuda",
    .device_count = tb_cuda_count,
    .alloc = tb_cuda_alloc,
    .free = tb_cuda_free,
    .copy_bytes = tb_cuda_copy_bytes,
    .copy_strided = tb__cuda_copy_strided,
    .synchronize = tb_cuda_synchronize,
    .stream_wait = tb_cuda_stream_wait,
    .pointer_device = tb_cuda_pointer_device,
};

/* Pinned and managed memory are host-accessible: the core copies between
 * them and the CPU itself, and sends pairs with kDLCUDA to the table above.
 * Their copy_bytes serves the byte copies it may still ask of them. */
static const tb_device_vtable tb_cuda_host_backend = {
    .abi_version = TB_BACKEND_ABI_VERSION,
    .device_type = kDLCUDAHost,
    .name = "cuda_host",
    .device_count = tb_cuda_count,
    .alloc = tb_cuda_alloc,
    .free = tb_cuda_free,
    .copy_bytes = tb_cuda_copy_bytes,
    .stream_wait = tb_cuda_stream_wait,
    .pointer_device = tb_cuda_pointer_device,
};

static const tb_device_vtable tb_cuda_managed_backend = {
    .abi_version = TB_BACKEND_ABI_VERSION,
    .device_type = kDLCUDAManaged,
    .name = "cuda_managed",
    .device_count = tb_cuda_count,
    .alloc = tb_cuda_alloc,
    .free = tb_cuda_free,
    .copy_bytes = tb_cuda_copy_bytes,
    .stream_wait = tb_cuda_stream_wait,
    .pointer_device = tb_cuda_pointer_device,
};

/*
 * Finds the driver and the devices, once, on the first question asked of a
 * CUDA device type (never at load time: a process that does not use CUDA
 * never loads the driver or initialises it, which also keeps fork() safe for
 * it). Leaves tb__cuda.count at 0 when the driver does not load, cuInit
 * fails or no device is present; requests then get the core's TB_ERR_DEVICE
 * "cuda:N is not present". The device array lives as long as the process
 * (calloc, not the library's allocator, which an embedder may swap or audit
 * for leaks).
 */
static void tb_cuda_discover(void) {
  tb_cu_api api;
  memset(&api, 0, sizeof api);
  if (!tb_cuda_load_driver(&api)) return;
  int count = 0;
  if (api.init(0) != TB_CU_SUCCESS || api.device_get_count(&count) != TB_CU_SUCCESS || count <= 0) {
    return;
  }
  tb_cuda_device *devices = calloc((size_t)count, sizeof *devices);
  if (devices == NULL) return;
  for (int i = 0; i < count; i++) {
    tb_cuda_device *dev = &devices[i];
    dev->id = i;
    if (api.device_get(&dev->handle, i) != TB_CU_SUCCESS ||
        !tb__mutex_init(&dev->lock) ||
        !tb__mutex_init(&dev->stage_lock)) {
      free(devices); /* glibc's mutexes hold no resources; nothing else to undo */
      return;
    }
    atomic_init(&dev->ready, false);
    atomic_init(&dev->kernels_ready, false);
  }
  tb__cuda.cu = api;
  tb__cuda.devices = devices;
  tb__cuda.count = count;
}

static tb__once_flag tb_cuda_discovered = TB__ONCE_INIT;

int32_t tb__cuda_count(void) {
  tb__once(&tb_cuda_discovered, tb_cuda_discover);
  return tb__cuda.count;
}

/* Registration, from the registry's one-time set-up of the built-in
 * backends: three pointer stores; the driver is only looked for on first use
 * (above). */
void tb__cuda_register(void) {
  (void)tb__backend_add(&tb__cuda_backend);
  (void)tb__backend_add(&tb_cuda_host_backend);
  (void)tb__backend_add(&tb_cuda_managed_backend);
}
