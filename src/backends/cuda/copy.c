/*
 * The CUDA backend's strided copy: layout and dtype work runs in kernels on
 * the device (kernels.cu), never on the host.
 *
 *   device <-> same device: the kernel reads and writes the tensors in place;
 *       queued on the stream, not waited for.
 *   host -> device: the source's byte span is uploaded as it is (through the
 *       pinned staging when pageable) into scratch device memory, and the
 *       kernel works from there. A source whose span is mostly gaps is left
 *       to the core, which packs it on the host first: uploading the gaps
 *       would cost more.
 *   device -> host: the kernel writes a scratch image of the destination's
 *       span, which is then downloaded. Only for destinations without gaps,
 *       since the download overwrites the whole span.
 *   Same dtype and the same dense layout on both sides: byte copies alone.
 *
 * What the kernels cannot take comes back as TB_ERR_UNSUPPORTED and the core
 * stages the copy through the host: more than TB_CUDA_MAX_DIMS dimensions
 * after merging, elements not aligned to their type, two different GPUs,
 * packed sub-byte dtypes, and scratch memory that cannot be had.
 */
#include <stdio.h>
#include <string.h>

#include "../../cast.h"
#include "../../dtype.h"
#include "cuda_internal.h"
#include "kernel_abi.h"

/* Blocks per launch at most: with TB_CUDA_BLOCK threads each and fewer than
 * 2^31 elements per launch, the kernels' 32-bit indices cannot wrap. */
#define TB_CUDA_MAX_BLOCKS 65536u

/* A host source whose span exceeds its elements' bytes by more than this
 * factor is packed by the core instead of uploaded whole. */
#define TB_CUDA_MAX_GAP_FACTOR 2

/* ---- the kernel for a dtype pair ---- */

typedef struct tb_cuda_op {
  int cast_from, cast_to; /* tb_cast_kind, or -1 for a plain move */
  int move;               /* index into tb_cuda_device.move, or -1 */
  size_t src_align, dst_align;
} tb_cuda_op;

/* The alignment each kind's loads and stores need (complex parts are loaded
 * one at a time, so complex needs its part's alignment only). */
static const uint8_t tb_kind_align[TB_CUDA_KINDS] = {1, 1, 2, 4, 8, 1, 2, 4, 8, 2, 2, 4, 8, 4, 8};

static int tb_move_index(size_t itemsize) {
  switch (itemsize) {
    case 1: return 0;
    case 2: return 1;
    case 4: return 2;
    case 8: return 3;
    case 16: return 4;
    default: return -1;
  }
}

static tb_status tb_cuda_select(const tb_copy_desc *d, const tb_dtype_info *si,
                                const tb_dtype_info *di, tb_cuda_op *op) {
  bool same = tb_dtype_equal(d->src_dtype, d->dst_dtype);
  *op = (tb_cuda_op){-1, -1, -1, 1, 1};
  if (si->cast_kind != TB_K_NONE && di->cast_kind != TB_K_NONE) {
    if (!same) {
      tb_cast_loop_fn unused; /* the CPU's verdict on the pair, and its message */
      tb_status st = tb__cast_loop(si->cast_kind, di->cast_kind, d->cast_flags, &unused);
      if (st != TB_OK) return st;
    }
    op->cast_from = (int)si->cast_kind;
    op->cast_to = (int)di->cast_kind;
    op->src_align = tb_kind_align[si->cast_kind];
    op->dst_align = tb_kind_align[di->cast_kind];
    return TB_OK;
  }
  if (!same) {
    return tb__fail(TB_ERR_DTYPE,
                    "copy: no conversion from %s to %s (float8/6/4 copy only to themselves)",
                    si->name, di->name);
  }
  op->move = tb_move_index(si->itemsize);
  if (op->move < 0) {
    return tb__fail(TB_ERR_UNSUPPORTED, "cuda copy: %s has no byte-addressable elements", si->name);
  }
  op->src_align = op->dst_align = si->itemsize < 8 ? si->itemsize : 8;
  return TB_OK;
}

static void tb_cuda_unload(tb_cu_module module) { (void)tb__cuda.cu.module_unload(module); }

/* Loads the embedded fatbin into dev's context (current) and looks up every
 * kernel; once per device. */
static tb_status tb_cuda_load_kernels(tb_cuda_device *dev) {
  static const char *const names[TB_CUDA_KINDS] = TB_CUDA_KIND_NAMES;
  static const int move_bytes[5] = {1, 2, 4, 8, 16};
  _Static_assert(TB_CUDA_KINDS == TB_CUDA_KIND_COUNT && TB_CUDA_KINDS == (int)TB_K_COUNT,
                 "one kernel column per castable dtype");
  const tb_cu_api *cu = &tb__cuda.cu;
  tb_cu_module module = NULL;
  TB_CU_TRY(cu->module_load_data(&module, tb_cuda_fatbin), "cuModuleLoadData",
            "the library's kernels (%zu-byte fatbin for sm_80, sm_90, PTX compute_75), cuda:%d",
            tb_cuda_fatbin_size, (int)dev->id);
  char name[64];
  for (int f = 0; f < TB_CUDA_KINDS; f++) {
    for (int t = 0; t < TB_CUDA_KINDS; t++) {
      (void)snprintf(name, sizeof name, "tb_cuda_cast_%s_%s", names[f], names[t]);
      tb_cu_result r = cu->module_get_function(&dev->cast[f][t], module, name);
      if (r != TB_CU_SUCCESS) {
        tb_cuda_unload(module);
        return tb__cuda_fail(r, "cuModuleGetFunction", "\"%s\", cuda:%d", name, (int)dev->id);
      }
    }
  }
  for (int m = 0; m < 5; m++) {
    (void)snprintf(name, sizeof name, "tb_cuda_copy_%d", move_bytes[m]);
    tb_cu_result r = cu->module_get_function(&dev->move[m], module, name);
    if (r != TB_CU_SUCCESS) {
      tb_cuda_unload(module);
      return tb__cuda_fail(r, "cuModuleGetFunction", "\"%s\", cuda:%d", name, (int)dev->id);
    }
  }
  dev->module = module;
  atomic_store_explicit(&dev->kernels_ready, true, memory_order_release);
  return TB_OK;
}

static tb_status tb_cuda_kernel(tb_cuda_device *dev, const tb_cuda_op *op, tb_cu_function *out) {
  if (!atomic_load_explicit(&dev->kernels_ready, memory_order_acquire)) {
    if (!tb__mutex_lock(&dev->lock)) {
      return tb__fail(TB_ERR_DEVICE, "cuda: cannot lock the state of cuda:%d", (int)dev->id);
    }
    tb_status st = TB_OK;
    if (!atomic_load_explicit(&dev->kernels_ready, memory_order_relaxed)) {
      st = tb_cuda_load_kernels(dev);
    }
    tb__mutex_unlock(&dev->lock);
    if (st != TB_OK) return st;
  }
  *out = op->move >= 0 ? dev->move[op->move] : dev->cast[op->cast_from][op->cast_to];
  return TB_OK;
}

/* ---- planning: the host engine's steps, in bytes ---- */

typedef tb_copy_dim tb_cuda_dim;

/* The core's plan (tb__copy_plan), applied to device addresses. */
static int32_t tb_cuda_plan(const tb_copy_desc *d, size_t src_item, size_t dst_item, tb_cu_ptr *src,
                            tb_cu_ptr *dst, tb_cuda_dim *dims) {
  int64_t src_shift, dst_shift;
  int32_t nd = tb__copy_plan(d, src_item, dst_item, &src_shift, &dst_shift, dims);
  *src += (uint64_t)src_shift;
  *dst += (uint64_t)dst_shift;
  return nd;
}

/* ---- launching ---- */

/* q = (umulhi(n, magic) + n) >> shift equals n / d for 0 <= n < 2^31 and
 * 1 <= d < 2^31 (the round-up multiplier method; the sum stays below 2^32
 * because umulhi(n, magic) < n). shift = ceil(log2 d); magic is below 2^32
 * because 2^shift < 2d. */
static void tb_cuda_divider(uint32_t d, uint32_t *magic, uint32_t *shift) {
  uint32_t s = 0;
  while (((uint64_t)1 << s) < d) s++;
  *magic = (uint32_t)(((((uint64_t)1 << s) - d) << 32) / d + 1);
  *shift = s;
}

static tb_status tb_cuda_launch(const tb_cuda_device *dev, tb_cu_function fn,
                                const tb_cuda_dim *dims, int32_t nd, tb_cu_ptr dst, tb_cu_ptr src,
                                int64_t numel, tb_cu_stream q) {
  tb_cuda_kargs a;
  memset(&a, 0, sizeof a);
  a.dst = dst;
  a.src = src;
  a.numel = (uint32_t)numel;
  a.ndim = nd > 0 ? nd : 1;
  if (nd == 0) a.extent[0] = 1;
  for (int32_t k = 0; k < nd; k++) {
    a.extent[k] = (uint32_t)dims[k].n;
    a.dst_strides[k] = dims[k].ds;
    a.src_strides[k] = dims[k].ss;
  }
  for (int32_t k = 0; k < a.ndim; k++) tb_cuda_divider(a.extent[k], &a.magic[k], &a.shift[k]);
  uint64_t blocks = ((uint64_t)numel + TB_CUDA_BLOCK - 1) / TB_CUDA_BLOCK;
  if (blocks > TB_CUDA_MAX_BLOCKS) blocks = TB_CUDA_MAX_BLOCKS;
  if (blocks > dev->max_grid_x) blocks = dev->max_grid_x;
  void *params[] = {&a};
  TB_CU_TRY(tb__cuda.cu.launch_kernel(fn, (unsigned int)blocks, 1, 1, TB_CUDA_BLOCK, 1, 1, 0, q,
                                      params, NULL),
            "cuLaunchKernel", "%llu blocks of %d threads, %lld elements, %d dims, cuda:%d",
            (unsigned long long)blocks, TB_CUDA_BLOCK, (long long)numel, (int)a.ndim, (int)dev->id);
  return TB_OK;
}

/* Launches in pieces of fewer than 2^31 elements, cutting the outermost
 * dimension (or, when one step of it alone is too big, each of its steps). */
static tb_status tb_cuda_launch_split(const tb_cuda_device *dev, tb_cu_function fn,
                                      const tb_cuda_dim *dims, int32_t nd, tb_cu_ptr dst,
                                      tb_cu_ptr src, tb_cu_stream q) {
  int64_t numel = 1;
  for (int32_t k = 0; k < nd; k++) numel *= dims[k].n;
  if (numel <= (int64_t)TB_CUDA_MAX_LAUNCH_ELEMS) {
    return tb_cuda_launch(dev, fn, dims, nd, dst, src, numel, q);
  }
  const int64_t outer = dims[0].n, inner = numel / outer;
  if (inner > (int64_t)TB_CUDA_MAX_LAUNCH_ELEMS) {
    for (int64_t j = 0; j < outer; j++) {
      tb_status st =
          tb_cuda_launch_split(dev, fn, dims + 1, nd - 1, dst + (uint64_t)(j * dims[0].ds),
                               src + (uint64_t)(j * dims[0].ss), q);
      if (st != TB_OK) return st;
    }
    return TB_OK;
  }
  const int64_t chunk = (int64_t)TB_CUDA_MAX_LAUNCH_ELEMS / inner;
  tb_cuda_dim part[TB_CUDA_MAX_DIMS];
  memcpy(part, dims, (size_t)nd * sizeof *part);
  for (int64_t j = 0; j < outer; j += chunk) {
    part[0].n = outer - j < chunk ? outer - j : chunk;
    tb_status st = tb_cuda_launch(dev, fn, part, nd, dst + (uint64_t)(j * dims[0].ds),
                                  src + (uint64_t)(j * dims[0].ss), part[0].n * inner, q);
    if (st != TB_OK) return st;
  }
  return TB_OK;
}

/* One side of a device-resident copy: the address of its element 0 (its
 * strides are the descriptor's). */
typedef struct tb_cuda_side {
  tb_cu_ptr first;
  size_t itemsize;
} tb_cuda_side;

/* The copy between two device-resident sides, queued on q (dev's context
 * current). */
static tb_status tb_cuda_run(tb_cuda_device *dev, const tb_copy_desc *d, const tb_cuda_op *op,
                             tb_cuda_side dst, tb_cuda_side src, tb_cu_stream q) {
  tb_cuda_dim dims[TB_MAX_NDIM];
  tb_cu_ptr s = src.first, t = dst.first;
  int32_t nd = tb_cuda_plan(d, src.itemsize, dst.itemsize, &s, &t, dims);
  if (tb_dtype_equal(d->src_dtype, d->dst_dtype)) {
    size_t item = src.itemsize;
    if (nd == 0 || (nd == 1 && dims[0].ss == (int64_t)item && dims[0].ds == (int64_t)item)) {
      uint64_t nbytes = (nd == 0 ? 1u : (uint64_t)dims[0].n) * item;
      TB_CU_TRY(tb__cuda.cu.memcpy_dtod_async(t, s, (size_t)nbytes, q), "cuMemcpyDtoDAsync",
                "dst = 0x%llx, src = 0x%llx, nbytes = %llu, cuda:%d", (unsigned long long)t,
                (unsigned long long)s, (unsigned long long)nbytes, (int)dev->id);
      return TB_OK;
    }
  }
  if (nd > TB_CUDA_MAX_DIMS) {
    return tb__fail(TB_ERR_UNSUPPORTED, "cuda copy: %d dimensions after merging (kernels take %d)",
                    (int)nd, TB_CUDA_MAX_DIMS);
  }
  if (s % op->src_align != 0 || t % op->dst_align != 0) {
    return tb__fail(TB_ERR_UNSUPPORTED, "cuda copy: elements at 0x%llx -> 0x%llx are not aligned",
                    (unsigned long long)s, (unsigned long long)t);
  }
  tb_cu_function fn = NULL;
  tb_status st = tb_cuda_kernel(dev, op, &fn);
  if (st != TB_OK) return st;
  return tb_cuda_launch_split(dev, fn, dims, nd, t, s, q);
}

/* ---- host <-> device ---- */

static uint64_t tb_span(const tb_extent *e) { return (uint64_t)(e->high_byte - e->low_byte); }

/* Same dtype, same strides wherever they matter, and no gaps: the copy is
 * one run of bytes. */
static bool tb_cuda_bytes_only(const tb_copy_desc *d, const tb_extent *src_extent) {
  if (!tb_dtype_equal(d->src_dtype, d->dst_dtype)) return false;
  for (int32_t i = 0; i < d->ndim; i++) {
    if (d->shape[i] != 1 && d->src_strides[i] != d->dst_strides[i]) return false;
  }
  return tb_span(src_extent) == (uint64_t)src_extent->nbytes;
}

/* Scratch device memory; TB_ERR_UNSUPPORTED when there is none to be had,
 * so that the core stages through the host instead. */
static tb_status tb_cuda_scratch(const tb_cuda_device *dev, uint64_t nbytes, tb_cu_ptr *out) {
  tb_cu_result r = tb__cuda.cu.mem_alloc(out, (size_t)nbytes);
  if (r == TB_CU_ERROR_OUT_OF_MEMORY) {
    return tb__fail(TB_ERR_UNSUPPORTED, "cuda copy: no %llu bytes of scratch memory on cuda:%d",
                    (unsigned long long)nbytes, (int)dev->id);
  }
  if (r != TB_CU_SUCCESS) {
    return tb__cuda_fail(r, "cuMemAlloc", "nbytes = %llu (scratch), cuda:%d",
                         (unsigned long long)nbytes, (int)dev->id);
  }
  return TB_OK;
}

/* Waits for q, then frees the scratch; keeps the first failure. */
static tb_status tb_cuda_scratch_free(const tb_cuda_device *dev, tb_cu_ptr p, tb_cu_stream q,
                                      tb_status st) {
  tb_cu_result r = tb__cuda.cu.stream_synchronize(q);
  if (r != TB_CU_SUCCESS && st == TB_OK) {
    st = tb__cuda_fail(r, "cuStreamSynchronize", "stream %p, cuda:%d", (void *)q, (int)dev->id);
  }
  r = tb__cuda.cu.mem_free(p);
  if (r != TB_CU_SUCCESS && st == TB_OK) {
    st = tb__cuda_fail(r, "cuMemFree", "0x%llx (scratch), cuda:%d", (unsigned long long)p,
                       (int)dev->id);
  }
  return st;
}

static tb_status tb_cuda_from_host(tb_cuda_device *dev, const tb_copy_desc *d, const tb_cuda_op *op,
                                   const tb_dtype_info *si, const tb_dtype_info *di,
                                   const tb_extent *se, const tb_extent *de, tb_cu_stream q) {
  const char *src_first = (const char *)d->src + d->src_byte_offset;
  tb_cu_ptr dst_first = (tb_cu_ptr)(uintptr_t)d->dst + d->dst_byte_offset;
  uint64_t span = tb_span(se);
  if (tb_cuda_bytes_only(d, se)) {
    return tb__cuda_to_device(dev, dst_first + (uint64_t)de->low_byte, src_first + se->low_byte,
                              d->src_device, span, q);
  }
  if (span > (uint64_t)TB_CUDA_MAX_GAP_FACTOR * (uint64_t)se->nbytes) {
    return tb__fail(TB_ERR_UNSUPPORTED, "cuda copy: the host source is mostly gaps");
  }
  tb_cu_ptr scratch;
  tb_status st = tb_cuda_scratch(dev, span, &scratch);
  if (st != TB_OK) return st;
  st = tb__cuda_to_device(dev, scratch, src_first + se->low_byte, d->src_device, span, q);
  if (st == TB_OK) {
    tb_cuda_side dst = {dst_first, di->itemsize};
    tb_cuda_side src = {scratch - (uint64_t)se->low_byte, si->itemsize};
    st = tb_cuda_run(dev, d, op, dst, src, q);
  }
  return tb_cuda_scratch_free(dev, scratch, q, st);
}

static tb_status tb_cuda_to_host_copy(tb_cuda_device *dev, const tb_copy_desc *d,
                                      const tb_cuda_op *op, const tb_dtype_info *si,
                                      const tb_dtype_info *di, const tb_extent *se,
                                      const tb_extent *de, tb_cu_stream q) {
  char *dst_first = (char *)d->dst + d->dst_byte_offset;
  tb_cu_ptr src_first = (tb_cu_ptr)(uintptr_t)d->src + d->src_byte_offset;
  uint64_t span = tb_span(de);
  if (span != (uint64_t)de->nbytes) {
    return tb__fail(TB_ERR_UNSUPPORTED, "cuda copy: the host destination has gaps");
  }
  if (tb_cuda_bytes_only(d, se)) {
    return tb__cuda_to_host(dev, dst_first + de->low_byte, d->dst_device,
                            src_first + (uint64_t)se->low_byte, span, q);
  }
  tb_cu_ptr scratch;
  tb_status st = tb_cuda_scratch(dev, span, &scratch);
  if (st != TB_OK) return st;
  tb_cuda_side dst = {scratch - (uint64_t)de->low_byte, di->itemsize};
  tb_cuda_side src = {src_first, si->itemsize};
  st = tb_cuda_run(dev, d, op, dst, src, q);
  if (st == TB_OK)
    st = tb__cuda_to_host(dev, dst_first + de->low_byte, d->dst_device, scratch, span, q);
  return tb_cuda_scratch_free(dev, scratch, q, st);
}

/* ---- the entry point ---- */

tb_status tb__cuda_copy_strided(const tb_device_vtable *self, const tb_copy_desc *d, void *stream) {
  (void)self;
  const tb_dtype_info *si = tb__dtype_info(d->src_dtype), *di = tb__dtype_info(d->dst_dtype);
  if (si == NULL || di == NULL || d->ndim < 0 || d->ndim > TB_MAX_NDIM ||
      (d->ndim > 0 && (d->shape == NULL || d->src_strides == NULL || d->dst_strides == NULL))) {
    return TB_ERR_UNSUPPORTED; /* the core's own checks word these */
  }
  tb_extent se, de;
  tb_status st =
      tb__layout_extent("copy source", d->src_dtype, d->ndim, d->shape, d->src_strides, &se);
  if (st == TB_OK) {
    st =
        tb__layout_extent("copy destination", d->dst_dtype, d->ndim, d->shape, d->dst_strides, &de);
  }
  if (st != TB_OK) return st;
  if (se.numel == 0) return TB_OK;
  tb_cuda_op op;
  if ((st = tb_cuda_select(d, si, di, &op)) != TB_OK) return st;

  bool dst_gpu = d->dst_device.device_type == kDLCUDA,
       src_gpu = d->src_device.device_type == kDLCUDA;
  if ((!dst_gpu && !src_gpu) || (!dst_gpu && !tb__device_is_host(d->dst_device)) ||
      (!src_gpu && !tb__device_is_host(d->src_device)) ||
      (dst_gpu && src_gpu && d->dst_device.device_id != d->src_device.device_id)) {
    return tb__fail(
        TB_ERR_UNSUPPORTED, "cuda copy: %s:%d -> %s:%d is staged by the core",
        tb__device_type_name((int32_t)d->src_device.device_type), (int)d->src_device.device_id,
        tb__device_type_name((int32_t)d->dst_device.device_type), (int)d->dst_device.device_id);
  }
  tb_cuda_device *dev;
  st = tb__cuda_device(dst_gpu ? d->dst_device.device_id : d->src_device.device_id, &dev);
  if (st == TB_OK) st = tb__cuda_enter(dev);
  if (st != TB_OK) return st;
  tb_cu_stream q = tb__cuda_stream(dev, stream);
  if (dst_gpu && src_gpu) {
    tb_cuda_side dst = {(tb_cu_ptr)(uintptr_t)d->dst + d->dst_byte_offset, di->itemsize};
    tb_cuda_side src = {(tb_cu_ptr)(uintptr_t)d->src + d->src_byte_offset, si->itemsize};
    st = tb_cuda_run(dev, d, &op, dst, src, q);
  } else if (dst_gpu) {
    st = tb_cuda_from_host(dev, d, &op, si, di, &se, &de, q);
  } else {
    st = tb_cuda_to_host_copy(dev, d, &op, si, di, &se, &de, q);
  }
  tb__cuda_leave(dev);
  return st;
}
