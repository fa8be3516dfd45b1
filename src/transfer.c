/*
 * Copies between any two devices. The rule: host pairs run on the CPU engine;
 * otherwise the device side's backend runs the strided copy itself when it
 * can, and when it cannot, the copy is staged through contiguous host buffers
 * with the backend's byte copies and the CPU engine does the layout and dtype
 * work. Staging moves a side's whole byte span [low, high), so it is correct
 * for any strides, gaps and negative strides included.
 */
#include <string.h>

#include "device.h"

/* One side of a copy: where its bytes live and which span its elements reach. */
typedef struct tb_side {
  void *base;
  uint64_t offset;     /* byte offset of the element at index 0 */
  const int64_t *strides;
  DLDataType dtype;
  DLDevice device;
  tb_extent extent;
} tb_side;

static tb_status tb_side_measure(const char *what, const tb_copy_desc *d, tb_side *s) {
  return tb__layout_extent(what, s->dtype, d->ndim, d->shape, s->strides, &s->extent);
}

static uint64_t tb_span(const tb_side *s) {
  return (uint64_t)(s->extent.high_byte - s->extent.low_byte);
}

/* A host buffer holding a copy of side s's span: the staged side addresses it
 * with the same strides and offset -low_byte. */
typedef struct tb_stage {
  void *host;
  uint64_t nbytes;
  tb_allocator allocator;
} tb_stage;

static tb_status tb_stage_alloc(const char *what, uint64_t nbytes, tb_stage *st) {
  tb__allocator_current(&st->allocator);
  st->nbytes = nbytes;
  st->host = tb__alloc(&st->allocator, (size_t)nbytes, TB_DATA_ALIGNMENT, what);
  return st->host != NULL ? TB_OK : TB_ERR_NOMEM;
}

static void tb_stage_free(tb_stage *st) { tb__free(&st->allocator, st->host, (size_t)st->nbytes); }

/* Byte copies between a device side's span and a host stage. */
static tb_status tb_span_transfer(const tb_device_vtable *b, const tb_side *s, tb_stage *st,
                                  bool to_host) {
  DLDevice host = {kDLCPU, 0};
  uint64_t at = s->offset - (uint64_t)(-s->extent.low_byte);
  if (to_host) {
    return b->copy_bytes(b, st->host, 0, host, s->base, at, s->device, st->nbytes, NULL);
  }
  return b->copy_bytes(b, s->base, at, s->device, st->host, 0, host, st->nbytes, NULL);
}

/* The side as seen through its host stage. */
static tb_side tb_side_on_stage(const tb_side *s, const tb_stage *st) {
  tb_side h = *s;
  h.base = st->host;
  h.offset = (uint64_t)(-s->extent.low_byte);
  h.device = (DLDevice){kDLCPU, 0};
  return h;
}

static tb_status tb_copy_sides_host(const tb_copy_desc *d, const tb_side *dst, const tb_side *src) {
  tb_copy_desc h = *d;
  h.dst = dst->base;
  h.dst_byte_offset = dst->offset;
  h.dst_device = dst->device;
  h.src = src->base;
  h.src_byte_offset = src->offset;
  h.src_device = src->device;
  return tb__copy_host(&h);
}

/* Brings src to the host when it lives on a device; *staged is then set. */
static tb_status tb_stage_source(const char *what, const tb_side *src, tb_side *host_src,
                                 tb_stage *stage, bool *staged) {
  *staged = false;
  *host_src = *src;
  if (tb__device_is_host(src->device)) return TB_OK;
  const tb_device_vtable *b;
  tb_status st = tb__device_lookup(what, src->device, &b);
  if (st != TB_OK) return st;
  if ((st = tb_stage_alloc(what, tb_span(src), stage)) != TB_OK) return st;
  *staged = true;
  if ((st = tb_span_transfer(b, src, stage, true)) != TB_OK) return st;
  *host_src = tb_side_on_stage(src, stage);
  return TB_OK;
}

static tb_status tb_copy_staged(const char *what, const tb_copy_desc *d, const tb_side *dst,
                                const tb_side *src) {
  tb_stage in = {0}, out = {0};
  bool staged_in = false, staged_out = false;
  tb_side host_src;
  tb_status st = tb_stage_source(what, src, &host_src, &in, &staged_in);
  if (st == TB_OK && tb__device_is_host(dst->device)) {
    st = tb_copy_sides_host(d, dst, &host_src);
  } else if (st == TB_OK) {
    const tb_device_vtable *b;
    st = tb__device_lookup(what, dst->device, &b);
    if (st == TB_OK) st = tb_stage_alloc(what, tb_span(dst), &out);
    staged_out = st == TB_OK;
    /* A destination with gaps keeps the bytes between its elements. */
    bool dense = tb_span(dst) == (uint64_t)dst->extent.nbytes;
    if (st == TB_OK && !dense) st = tb_span_transfer(b, dst, &out, true);
    tb_side host_dst = staged_out ? tb_side_on_stage(dst, &out) : *dst;
    if (st == TB_OK) st = tb_copy_sides_host(d, &host_dst, &host_src);
    if (st == TB_OK) st = tb_span_transfer(b, dst, &out, false);
  }
  if (staged_in) tb_stage_free(&in);
  if (staged_out) tb_stage_free(&out);
  return st;
}

/* The backend that may run the copy as a whole: the device side's, when the
 * other side is the host or the same device type. */
static const tb_device_vtable *tb_strided_backend(const tb_copy_desc *d) {
  bool dst_host = tb__device_is_host(d->dst_device), src_host = tb__device_is_host(d->src_device);
  if (dst_host && src_host) return &tb__cpu_backend;
  if (!dst_host && !src_host && d->dst_device.device_type != d->src_device.device_type) {
    return NULL;
  }
  const tb_device_vtable *b = tb_get_backend((int32_t)(dst_host ? d->src_device.device_type
                                                                : d->dst_device.device_type));
  return b != NULL && b->copy_strided != NULL ? b : NULL;
}

tb_status tb__copy(const char *what, const tb_copy_desc *d) {
  const tb_device_vtable *b = tb_strided_backend(d);
  if (b == &tb__cpu_backend) return b->copy_strided(b, d, NULL); /* never UNSUPPORTED */
  if (b != NULL) {
    /* A probe: TB_ERR_UNSUPPORTED (with the backend's reason as message)
     * means "stage it instead", and the copy may yet succeed, leaving the
     * message as it was before. */
    tb_error_save saved;
    tb__error_save(&saved);
    tb_status st = b->copy_strided(b, d, NULL);
    if (st != TB_ERR_UNSUPPORTED) return st;
    tb__error_restore(&saved);
  }
  tb_side dst = {d->dst, d->dst_byte_offset, d->dst_strides, d->dst_dtype, d->dst_device, {0}};
  tb_side src = {(void *)(uintptr_t)d->src, d->src_byte_offset, d->src_strides, d->src_dtype,
                 d->src_device, {0}};
  tb_status st = tb_side_measure(what, d, &dst);
  if (st == TB_OK) st = tb_side_measure(what, d, &src);
  if (st != TB_OK) return st;
  if (dst.extent.numel == 0) return TB_OK;
  return tb_copy_staged(what, d, &dst, &src);
}
