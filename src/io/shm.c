/*
 * Tensors in shared memory (see tensorbridge/shm.h): blocks made and mapped
 * by platform/shm.h, the handle's bytes, attaching, and the storage deleter
 * that unmaps a block and closes its descriptor at the last release.
 * CUDA device memory is shared by CUDA IPC instead, through the CUDA
 * backend's backends/cuda/ipc.h (in builds with it): this file keeps the
 * handle's bytes and their checks, the backend the driver calls.
 */
#include <inttypes.h>

#include "device.h"
#include "platform/shm.h"
#ifdef TB_WITH_CUDA
#include "backends/cuda/ipc.h"
#endif

static const unsigned char tb_shm_magic[4] = {'T', 'B', 'S', 'M'};
/* The part every version shares (magic to byte_offset), and the fixed part
 * of a CUDA handle (that, then device type, device id, CUipcMemHandle). */
enum { TB_SHM_HEAD = 32, TB_SHM_CUDA_HEAD = 104, TB_SHM_IPC_BYTES = 64 };
_Static_assert(TB_SHM_CUDA_HANDLE_SIZE(0) == TB_SHM_CUDA_HEAD, "shm.h's CUDA handle size");

/* What a shared storage's deleter owns: the descriptor and the mapping. */
typedef struct tb_shm_block {
  int fd;
  void *base;      /* NULL when nothing is mapped (a tensor without elements) */
  uint64_t size;   /* bytes of the block, as handles give it */
  uint64_t mapped; /* bytes mapped at base */
  tb_allocator allocator;
} tb_shm_block;

static void tb_shm_block_delete(void *data, void *ctx) {
  (void)data;
  tb_shm_block *b = ctx;
  tb__shm_unmap(b->base, b->mapped);
  tb__shm_fd_close(b->fd);
  tb_allocator allocator = b->allocator;
  tb__free(&allocator, b, sizeof *b);
}

static bool tb_shm_is_host_block(const tb_tensor_t *t) {
  return t != NULL && t->storage->deleter == tb_shm_block_delete;
}

TB_API bool tb_tensor_is_shared(const tb_tensor_t *t) {
#ifdef TB_WITH_CUDA
  if (tb__cuda_ipc_shared(t)) return true;
#endif
  return tb_shm_is_host_block(t);
}

/*
 * A tensor over the block fd refers to; takes fd (closed on failure). Maps
 * the block when the tensor has elements. The layout is tb__wrap's to
 * check: callers have made sure it lies inside the block.
 */
static tb_status tb_shm_make(const char *what, int fd, uint64_t block_size, bool writable,
                             DLDataType dtype, int32_t ndim, const int64_t *shape,
                             const int64_t *strides, uint64_t byte_offset, int64_t numel,
                             tb_tensor_t **out) {
  tb_allocator allocator;
  tb__allocator_current(&allocator);
  tb_shm_block *b = tb__alloc(&allocator, sizeof *b, _Alignof(tb_shm_block), "shared block");
  if (b == NULL) {
    tb__shm_fd_close(fd);
    return TB_ERR_NOMEM;
  }
  *b = (tb_shm_block){.fd = fd, .base = NULL, .size = block_size, .mapped = 0,
                      .allocator = allocator};
  tb_status st = TB_OK;
  if (numel > 0) {
    st = tb__shm_map(what, fd, block_size, writable, &b->base);
    if (st == TB_OK) b->mapped = block_size;
  }
  if (st == TB_OK) {
    const DLDevice cpu = {kDLCPU, 0};
    st = tb__wrap(what, b->base, byte_offset, dtype, ndim, shape, strides, cpu,
                  writable ? 0 : TB_FLAG_READONLY, tb_shm_block_delete, b, out);
  }
  if (st != TB_OK) tb_shm_block_delete(NULL, b);
  return st;
}

static tb_status tb_shm_new(const char *what, DLDataType dtype, int32_t ndim,
                            const int64_t *shape, tb_tensor_t **out) {
  if (out == NULL) return tb__fail(TB_ERR_INVALID, "%s: out is NULL", what);
  tb_status st = tb__check_ndim(what, ndim, shape);
  if (st != TB_OK) return st;
  int64_t strides[TB_MAX_NDIM];
  tb__contiguous_strides(ndim, shape, TB_ORDER_C, strides);
  tb_extent e;
  st = tb__layout_extent(what, dtype, ndim, shape, strides, &e);
  if (st != TB_OK) return st;
  int fd;
  st = tb__shm_block_create(what, tb__shm_default_kind(), (uint64_t)e.nbytes, &fd);
  if (st != TB_OK) return st;
  return tb_shm_make(what, fd, (uint64_t)e.nbytes, true, dtype, ndim, shape, strides, 0,
                     e.numel, out);
}

TB_API tb_status tb_shm_empty(DLDataType dtype, int32_t ndim, const int64_t *shape,
                              tb_tensor_t **out) {
  return tb_shm_new("shm_empty", dtype, ndim, shape, out);
}

/* CUDA device memory goes by CUDA IPC: whether this build and driver have
 * it (TB_OK), else why not. */
static tb_status tb_shm_cuda_available(const char *what, DLDevice device) {
#ifdef TB_WITH_CUDA
  (void)device;
  return tb__cuda_ipc_available(what);
#else
  return tb__fail(TB_ERR_UNSUPPORTED,
                  "%s: cuda:%d memory is shared by CUDA IPC, and this build has no CUDA backend",
                  what, (int)device.device_id);
#endif
}

/* Host memory, or CUDA device memory where CUDA IPC is available. */
static tb_status tb_shm_check_device(const char *what, DLDevice device) {
  if (device.device_type == kDLCUDA) return tb_shm_cuda_available(what, device);
  if (!tb__device_is_host(device)) {
    return tb__fail(TB_ERR_DEVICE, "%s: %s:%d memory cannot be put in shared memory (host "
                                   "memory only)",
                    what, tb__device_type_name((int32_t)device.device_type),
                    (int)device.device_id);
  }
  return TB_OK;
}

TB_API tb_status tb_shm_share(const tb_tensor_t *t, tb_tensor_t **out) {
  static const char what[] = "shm_share";
  if (t == NULL || out == NULL) {
    return tb__fail(TB_ERR_INVALID, "%s: %s is NULL", what, t == NULL ? "t" : "out");
  }
  if (tb_tensor_is_shared(t)) {
    *out = tb_tensor_retain((tb_tensor_t *)(uintptr_t)t);
    return TB_OK;
  }
  tb_status st = tb_shm_check_device(what, t->dl.device);
  if (st != TB_OK) return st;
  tb_tensor_t *s;
  if (t->dl.device.device_type == kDLCUDA) {
    /* Wrapped device memory: a copy in memory the library allocates, on
     * the same device, which CUDA IPC takes. */
    st = tb_tensor_empty(t->dl.dtype, t->dl.ndim, t->dl.shape, t->dl.device, TB_ORDER_C, &s);
    if (st == TB_OK && !tb_tensor_is_shared(s)) {
      tb_tensor_release(s);
      return tb__fail(TB_ERR_UNSUPPORTED,
                      "%s: cuda:%d memory allocated by the registered kDLCUDA backend \"%s\" "
                      "cannot be shared (CUDA IPC takes the built-in backend's memory only)",
                      what, (int)t->dl.device.device_id, tb_get_backend(kDLCUDA)->name);
    }
  } else {
    st = tb_shm_new(what, t->dl.dtype, t->dl.ndim, t->dl.shape, &s);
  }
  if (st != TB_OK) return st;
  st = tb_tensor_copy_into(s, t, 0);
  if (st != TB_OK) {
    tb_tensor_release(s);
    return st;
  }
  *out = s;
  return TB_OK;
}

/* ---- the handle (layout in tensorbridge/shm.h) ---- */

static void tb_put16(unsigned char *p, uint16_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
}
static void tb_put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void tb_put64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint16_t tb_get16(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t tb_get32(const unsigned char *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}
static uint64_t tb_get64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

/* The part every version shares; the dimensions follow at `dims`. */
static void tb_shm_put_head(unsigned char *buf, unsigned version, const tb_tensor_t *t,
                            uint64_t block_size, uint64_t offset, size_t dims) {
  const int32_t ndim = t->dl.ndim;
  memcpy(buf, tb_shm_magic, sizeof tb_shm_magic);
  tb_put16(buf + 4, (uint16_t)version);
  tb_put16(buf + 6, (uint16_t)ndim);
  buf[8] = t->dl.dtype.code;
  buf[9] = t->dl.dtype.bits;
  tb_put16(buf + 10, t->dl.dtype.lanes);
  tb_put32(buf + 12, t->flags & TB_FLAG_READONLY);
  tb_put64(buf + 16, block_size);
  tb_put64(buf + 24, offset);
  for (int32_t d = 0; d < ndim; d++) {
    tb_put64(buf + dims + 8 * (size_t)d, (uint64_t)t->dl.shape[d]);
    tb_put64(buf + dims + 8 * (size_t)(ndim + d), (uint64_t)t->dl.strides[d]);
  }
}

/* A CUDA tensor's handle (version 2): its allocation by CUDA IPC. */
static tb_status tb_shm_encode_cuda(const char *what, const tb_tensor_t *t, unsigned char *buf) {
#ifdef TB_WITH_CUDA
  tb_cuda_ipc_block b;
  tb_status st = tb__cuda_ipc_export(what, t, &b);
  if (st != TB_OK) return st;
  tb_shm_put_head(buf, TB_SHM_HANDLE_VERSION_CUDA, t, b.size, b.data_offset + t->dl.byte_offset,
                  TB_SHM_CUDA_HEAD);
  tb_put32(buf + 32, (uint32_t)kDLCUDA);
  tb_put32(buf + 36, (uint32_t)b.device_id);
  memcpy(buf + 40, b.handle, TB_SHM_IPC_BYTES);
  return TB_OK;
#else
  (void)buf;
  return tb_shm_cuda_available(what, t->dl.device); /* unreachable: none is shared */
#endif
}

static tb_status tb_shm_encode(const char *what, const tb_tensor_t *t, unsigned char *buf,
                               size_t capacity, size_t *len, int *fd) {
  if (t == NULL || buf == NULL || len == NULL || fd == NULL) {
    return tb__fail(TB_ERR_INVALID, "%s: %s is NULL", what,
                    t == NULL ? "t" : buf == NULL ? "buf" : len == NULL ? "len" : "fd");
  }
  const bool cuda = t->dl.device.device_type == kDLCUDA;
  if (!tb_tensor_is_shared(t)) {
    tb_status st = tb_shm_check_device(what, t->dl.device);
    if (st != TB_OK) return st;
    if (cuda) {
      return tb__fail(TB_ERR_INVALID,
                      "%s: the cuda:%d tensor wraps memory the library did not allocate, which "
                      "CUDA IPC cannot share (tb_shm_share gives a copy that it can)",
                      what, (int)t->dl.device.device_id);
    }
    return tb__fail(TB_ERR_INVALID,
                    "%s: the tensor is not in shared memory (tb_shm_share gives one that is)",
                    what);
  }
  const int32_t ndim = t->dl.ndim;
  const size_t size = cuda ? TB_SHM_CUDA_HANDLE_SIZE(ndim) : TB_SHM_HANDLE_SIZE(ndim);
  if (capacity < size) {
    return tb__fail(TB_ERR_INVALID, "%s: capacity = %zu is too small for the %zu-byte handle",
                    what, capacity, size);
  }
  if (cuda) {
    tb_status st = tb_shm_encode_cuda(what, t, buf);
    if (st != TB_OK) return st;
    *len = size;
    *fd = -1;
    return TB_OK;
  }
  const tb_shm_block *b = t->storage->deleter_ctx;
  /* Relative to the block: the tensor's data is its storage's base (the
   * mapping), or NULL for a tensor without elements. */
  uint64_t offset = t->dl.byte_offset;
  if (t->dl.data != NULL) offset += (uint64_t)((uintptr_t)t->dl.data - (uintptr_t)b->base);
  tb_shm_put_head(buf, TB_SHM_HANDLE_VERSION, t, b->size, offset, TB_SHM_HEAD);
  *len = size;
  *fd = b->fd;
  return TB_OK;
}

TB_API tb_status tb_shm_handle_encode(const tb_tensor_t *t, void *buf, size_t capacity,
                                      size_t *len, int *fd) {
  return tb_shm_encode("shm_handle_encode", t, buf, capacity, len, fd);
}

/* A handle read and checked, before any descriptor or driver is used. */
typedef struct tb_shm_desc {
  unsigned version; /* TB_SHM_HANDLE_VERSION (host) or _CUDA */
  DLDataType dtype;
  int32_t ndim;
  uint32_t flags;
  uint64_t block_size;
  uint64_t byte_offset;
  int64_t numel;
  int32_t device_id;                      /* CUDA */
  unsigned char ipc[TB_SHM_IPC_BYTES];    /* CUDA: the CUipcMemHandle */
  int64_t shape[TB_MAX_NDIM];
  int64_t strides[TB_MAX_NDIM];
} tb_shm_desc;

static size_t tb_shm_size_of(unsigned version, int32_t ndim) {
  return version == TB_SHM_HANDLE_VERSION_CUDA ? TB_SHM_CUDA_HANDLE_SIZE(ndim)
                                               : TB_SHM_HANDLE_SIZE(ndim);
}

/* The shared part's magic, version, ndim; *version and *ndim on success. */
static tb_status tb_shm_check_head(const char *what, const unsigned char *p, size_t len,
                                   unsigned *version, int32_t *ndim) {
  if (len < TB_SHM_HEAD) {
    return tb__fail(TB_ERR_FORMAT, "%s: the handle is %zu bytes, shorter than its %d-byte header "
                                   "(truncated)",
                    what, len, (int)TB_SHM_HEAD);
  }
  if (memcmp(p, tb_shm_magic, sizeof tb_shm_magic) != 0) {
    return tb__fail(TB_ERR_FORMAT,
                    "%s: magic = %02x %02x %02x %02x is not a shared-memory handle's (\"TBSM\")",
                    what, p[0], p[1], p[2], p[3]);
  }
  const unsigned v = tb_get16(p + 4);
  if (v != TB_SHM_HANDLE_VERSION && v != TB_SHM_HANDLE_VERSION_CUDA) {
    return tb__fail(TB_ERR_VERSION,
                    "%s: version = %u; this library reads versions %d (host memory) and %d "
                    "(CUDA device memory)",
                    what, v, TB_SHM_HANDLE_VERSION, TB_SHM_HANDLE_VERSION_CUDA);
  }
  const unsigned n = tb_get16(p + 6);
  if (n > TB_MAX_NDIM) {
    return tb__fail(TB_ERR_FORMAT, "%s: ndim = %u exceeds TB_MAX_NDIM = %d", what, n,
                    TB_MAX_NDIM);
  }
  *version = v;
  *ndim = (int32_t)n;
  return TB_OK;
}

/* The whole message's length from its head (stream sockets). */
static tb_status tb_shm_message_size(const char *what, const void *head, size_t *size) {
  unsigned version;
  int32_t ndim;
  tb_status st = tb_shm_check_head(what, head, TB_SHM_HEAD, &version, &ndim);
  if (st != TB_OK) return st;
  *size = tb_shm_size_of(version, ndim);
  return TB_OK;
}

/* A CUDA handle's own fields: device type and id, and for an empty
 * allocation an IPC handle of zeros (nothing to open). */
static tb_status tb_shm_decode_cuda(const char *what, const unsigned char *p, tb_shm_desc *d) {
  const uint32_t type = tb_get32(p + 32), id = tb_get32(p + 36);
  if (type != (uint32_t)kDLCUDA) {
    return tb__fail(TB_ERR_FORMAT,
                    "%s: device_type = %u; a version %d handle is CUDA device memory (%d)", what,
                    (unsigned)type, TB_SHM_HANDLE_VERSION_CUDA, (int)kDLCUDA);
  }
  if (id > (uint32_t)INT32_MAX) {
    return tb__fail(TB_ERR_FORMAT, "%s: device_id = %" PRId32 " is negative", what, (int32_t)id);
  }
  d->device_id = (int32_t)id;
  memcpy(d->ipc, p + 40, TB_SHM_IPC_BYTES);
  if (d->block_size == 0) {
    for (int i = 0; i < TB_SHM_IPC_BYTES; i++) {
      if (d->ipc[i] != 0) {
        return tb__fail(TB_ERR_FORMAT,
                        "%s: block_size = 0 (no allocation) but the CUDA IPC handle's byte %d "
                        "is 0x%02x, not 0",
                        what, i, d->ipc[i]);
      }
    }
  }
  return TB_OK;
}

/* Every field, and that the view lies inside the block. */
static tb_status tb_shm_decode(const char *what, const void *buf, size_t len, tb_shm_desc *d) {
  if (buf == NULL) return tb__fail(TB_ERR_INVALID, "%s: buf is NULL", what);
  const unsigned char *p = buf;
  tb_status st = tb_shm_check_head(what, p, len, &d->version, &d->ndim);
  if (st != TB_OK) return st;
  const bool cuda = d->version == TB_SHM_HANDLE_VERSION_CUDA;
  const size_t size = tb_shm_size_of(d->version, d->ndim);
  const size_t dims = cuda ? TB_SHM_CUDA_HEAD : TB_SHM_HEAD;
  if (len != size) {
    return tb__fail(TB_ERR_FORMAT, "%s: the %shandle is %zu bytes; ndim = %d needs %zu (%s)", what,
                    cuda ? "CUDA " : "", len, (int)d->ndim, size,
                    len < size ? "truncated" : "trailing bytes");
  }
  d->dtype = (DLDataType){.code = p[8], .bits = p[9], .lanes = tb_get16(p + 10)};
  d->flags = tb_get32(p + 12);
  d->block_size = tb_get64(p + 16);
  d->byte_offset = tb_get64(p + 24);
  d->device_id = 0;
  if ((d->flags & ~TB_FLAG_READONLY) != 0) {
    return tb__fail(TB_ERR_FORMAT, "%s: flags = 0x%x has unknown bits", what,
                    (unsigned)d->flags);
  }
  if (cuda && (st = tb_shm_decode_cuda(what, p, d)) != TB_OK) return st;
  for (int32_t i = 0; i < d->ndim; i++) {
    d->shape[i] = (int64_t)tb_get64(p + dims + 8 * (size_t)i);
    d->strides[i] = (int64_t)tb_get64(p + dims + 8 * (size_t)(d->ndim + i));
    if (d->shape[i] < 0) {
      return tb__fail(TB_ERR_FORMAT, "%s: shape[%d] = %" PRId64 " is negative", what, (int)i,
                      d->shape[i]);
    }
  }
  if (d->block_size > (uint64_t)INT64_MAX) {
    return tb__fail(TB_ERR_FORMAT, "%s: block_size = %" PRIu64 " exceeds int64", what,
                    d->block_size);
  }
  if (d->byte_offset > (uint64_t)INT64_MAX) {
    return tb__fail(TB_ERR_FORMAT, "%s: byte_offset = %" PRIu64 " exceeds int64", what,
                    d->byte_offset);
  }
  /* dtype, then shape x strides x itemsize, every product checked */
  tb_extent e;
  st = tb__layout_extent(what, d->dtype, d->ndim, d->shape, d->strides, &e);
  if (st != TB_OK) return st;
  d->numel = e.numel;
  if (e.numel == 0) return TB_OK; /* reaches no byte */
  const int64_t offset = (int64_t)d->byte_offset;
  int64_t lo, hi;
  if (tb__add_overflows(offset, e.low_byte, &lo) || lo < 0) {
    return tb__fail(TB_ERR_FORMAT,
                    "%s: the view reaches %" PRId64 " bytes below the block's start "
                    "(byte_offset = %" PRIu64 ", strides reach %" PRId64 " bytes back)",
                    what, -(offset + e.low_byte), d->byte_offset, -e.low_byte);
  }
  if (tb__add_overflows(offset, e.high_byte, &hi) || (uint64_t)hi > d->block_size) {
    return tb__fail(TB_ERR_FORMAT,
                    "%s: the view's bytes byte_offset = %" PRIu64 " + [%" PRId64 ", %" PRId64
                    ") reach past block_size = %" PRIu64,
                    what, d->byte_offset, e.low_byte, e.high_byte, d->block_size);
  }
  return TB_OK;
}

/* Opens a checked CUDA handle through the backend. */
static tb_status tb_shm_attach_cuda(const char *what, const tb_shm_desc *d, tb_tensor_t **out) {
  const bool writable = (d->flags & TB_FLAG_READONLY) == 0;
#ifdef TB_WITH_CUDA
  tb_cuda_ipc_block b = {.device_id = d->device_id, .size = d->block_size, .data_offset = 0};
  memcpy(b.handle, d->ipc, sizeof b.handle);
  return tb__cuda_ipc_attach(what, &b, writable, d->dtype, d->ndim, d->shape, d->strides,
                             d->byte_offset, out);
#else
  (void)writable;
  (void)out;
  return tb__fail(TB_ERR_DEVICE,
                  "%s: the handle names cuda:%d memory, and no cuda device is present (this "
                  "build has no CUDA backend)",
                  what, (int)d->device_id);
#endif
}

/* Attaches to fd as the handle in buf says; `owned`: fd is the caller's to
 * give (tb_shm_recv), taken on every path, else it is duplicated. A CUDA
 * handle takes no descriptor: fd must be -1. */
static tb_status tb_shm_attach_fd(const char *what, const void *buf, size_t len, int fd,
                                  bool owned, tb_tensor_t **out) {
  tb_shm_desc d;
  tb_status st = out == NULL ? tb__fail(TB_ERR_INVALID, "%s: out is NULL", what)
                             : tb_shm_decode(what, buf, len, &d);
  if (st == TB_OK && d.version == TB_SHM_HANDLE_VERSION_CUDA) {
    if (fd != -1) {
      st = tb__fail(TB_ERR_INVALID,
                    "%s: fd = %d given with a CUDA handle, which carries no descriptor (pass -1)",
                    what, fd);
    } else {
      return tb_shm_attach_cuda(what, &d, out);
    }
  }
  uint64_t held = 0;
  if (st == TB_OK && fd < 0) {
    st = tb__fail(TB_ERR_INVALID, "%s: fd = %d is not a descriptor", what, fd);
  }
  if (st == TB_OK) st = tb__shm_fd_size(what, fd, &held);
  if (st == TB_OK && held < d.block_size) {
    st = tb__fail(TB_ERR_INVALID,
                  "%s: fd = %d holds %" PRIu64 " bytes, fewer than block_size = %" PRIu64
                  " in the handle (the descriptor does not match it)",
                  what, fd, held, d.block_size);
  }
  int mine = fd;
  if (st == TB_OK && !owned) st = tb__shm_fd_dup(what, fd, &mine);
  if (st != TB_OK) {
    if (owned && fd >= 0) tb__shm_fd_close(fd);
    return st;
  }
  const bool writable = (d.flags & TB_FLAG_READONLY) == 0;
  return tb_shm_make(what, mine, d.block_size, writable, d.dtype, d.ndim, d.shape, d.strides,
                     d.byte_offset, d.numel, out);
}

TB_API tb_status tb_shm_attach(const void *buf, size_t len, int fd, tb_tensor_t **out) {
  return tb_shm_attach_fd("shm_attach", buf, len, fd, false, out);
}

/* ---- over a Unix socket ---- */

TB_API tb_status tb_shm_send(int socket, const tb_tensor_t *t) {
  static const char what[] = "shm_send";
  unsigned char buf[TB_SHM_HANDLE_MAX];
  size_t len;
  int fd;
  tb_status st = tb_shm_encode(what, t, buf, sizeof buf, &len, &fd);
  if (st != TB_OK) return st;
  if (fd < 0) {
    return tb__fail(TB_ERR_UNSUPPORTED,
                    "%s: a CUDA handle carries no descriptor to send; send the bytes of "
                    "tb_shm_handle_encode over any channel and tb_shm_attach them with fd = -1",
                    what);
  }
  return tb__shm_send_fd(what, socket, buf, len, fd);
}

TB_API tb_status tb_shm_recv(int socket, tb_tensor_t **out) {
  static const char what[] = "shm_recv";
  if (out == NULL) return tb__fail(TB_ERR_INVALID, "%s: out is NULL", what);
  unsigned char buf[TB_SHM_HANDLE_MAX];
  size_t len;
  int fd;
  tb_status st =
      tb__shm_recv_fd(what, socket, buf, sizeof buf, TB_SHM_HEAD, tb_shm_message_size, &len, &fd);
  if (st != TB_OK) return st;
  return tb_shm_attach_fd(what, buf, len, fd, true, out);
}
