/*
 * .npy files (tensorbridge/npy.h): loaded by reading the header (pread)
 * and mapping the file, the tensor over the mapped bytes (zero copy); saved
 * by streaming the elements.
 *
 * Saving writes a temporary file next to the target, `path` +
 * ".tb-<pid>-<n>.tmp" (O_EXCL, mode 0666 less the umask), and renames it to
 * `path` only once every byte is written and the descriptor closed without
 * error. So no file under `path` is ever partial: a failure (a short write,
 * ENOSPC, EFBIG) removes the temporary file and leaves whatever was at
 * `path` before, and a tensor mapped from `path` can be saved back to
 * `path` (its mapping keeps the old file's pages; truncating the file in
 * place would pull them away from under it).
 *
 * POSIX: open, write, close, rename, unlink.
 */
#if !defined(_POSIX_C_SOURCE) || _POSIX_C_SOURCE < 200809L
#undef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* O_CLOEXEC */
#endif

#include "io/map.h"
#include "io/npy_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* Loading                                                                  */
/* ------------------------------------------------------------------------ */

/* Fails unless the data header h (of a file of `size` bytes) describes
 * lies within the file. */
static tb_status tb_npy_check_size(const char *what, const tb_npy_header *h, uint64_t size) {
  /* parse checked data_offset <= size. */
  if (h->data_nbytes > size - h->data_offset) {
    return tb__fail(TB_ERR_FORMAT,
                    "%s: truncated: the shape needs %" PRIu64 " bytes of %s data after the %" PRIu64
                    "-byte header, and %" PRIu64 " follow",
                    what, h->data_nbytes, tb_dtype_name(h->dtype), h->data_offset,
                    size - h->data_offset);
  }
  return TB_OK;
}

/* The tensor over the data of the file at `bytes` whose header is h: checks
 * the data's alignment in memory, then wraps it (see tb__npy_from_bytes). */
static tb_status tb_npy_wrap(const char *what, const tb_npy_header *h, void *bytes, uint32_t flags,
                             tb_deleter_fn deleter, void *ctx, tb_tensor_t **out) {
  const uintptr_t itemsize = h->dtype.bits / 8u;
  if (((uintptr_t)bytes + (uintptr_t)h->data_offset) % itemsize != 0) {
    return tb__fail(TB_ERR_FORMAT,
                    "%s: the data at %p + %" PRIu64 " is not aligned to its element size %u", what,
                    bytes, h->data_offset, (unsigned)itemsize);
  }
  int64_t f_strides[TB_MAX_NDIM];
  if (h->fortran_order) tb__contiguous_strides(h->ndim, h->shape, TB_ORDER_F, f_strides);
  return tb__wrap(what, bytes, h->data_offset, h->dtype, h->ndim, h->shape,
                  h->fortran_order ? f_strides : NULL, (DLDevice){kDLCPU, 0}, flags, deleter, ctx,
                  out);
}

tb_status tb__npy_from_bytes(const char *what, void *bytes, uint64_t size, uint32_t flags,
                             tb_deleter_fn deleter, void *ctx, tb_tensor_t **out) {
  if (out == NULL) return tb__fail(TB_ERR_INVALID, "%s: out is NULL", what);
  tb_npy_header h;
  tb_status st = tb__npy_parse(what, bytes, size > SIZE_MAX ? SIZE_MAX : (size_t)size, &h);
  if (st == TB_OK) st = tb_npy_check_size(what, &h, size);
  if (st == TB_OK) st = tb_npy_wrap(what, &h, bytes, flags, deleter, ctx, out);
  return st;
}

/* Reads the header of `file` with pread (the prefix, then the whole header
 * into a buffer) and parses it there, as tb__npy_parse over the mapped
 * file would. */
static tb_status tb_npy_read_header(const char *what, const tb__file *file, tb_npy_header *h) {
  unsigned char head[TB__NPY_PREFIX_MAX];
  const size_t size = (size_t)file->size; /* tb__file_open checked it fits */
  const size_t first = size < sizeof head ? size : sizeof head;
  uint64_t data_offset = 0;
  tb_status st = tb__file_read(file, 0, head, first);
  if (st == TB_OK) st = tb__npy_header_end(what, head, size, &data_offset);
  if (st != TB_OK) return st;
  tb_allocator a;
  tb__allocator_current(&a);
  unsigned char *header = tb__alloc(&a, (size_t)data_offset, 16, what);
  if (header == NULL) return TB_ERR_NOMEM;
  st = tb__file_read(file, 0, header, (size_t)data_offset);
  if (st == TB_OK) st = tb__npy_parse(what, header, (size_t)data_offset, h);
  tb__free(&a, header, (size_t)data_offset);
  return st;
}

TB_API tb_status tb_npy_load(const char *path, tb_map_mode mode, tb_tensor_t **out) {
  static const char what[] = "npy_load";
  if (out == NULL) return tb__fail(TB_ERR_INVALID, "%s: out is NULL", what);
  tb__file file;
  tb_status st = tb__file_open(what, path, mode, &file);
  if (st != TB_OK) return st;
  char prefix[256];
  (void)snprintf(prefix, sizeof prefix, "%s: %.200s", what, path);
  tb_npy_header h;
  st = tb_npy_read_header(prefix, &file, &h);
  if (st == TB_OK) st = tb_npy_check_size(prefix, &h, file.size);
  /* Only a file whose header and size are right is mapped, and nothing of
   * the mapping is read here: the data's pages fault in when it is. */
  tb__mapping *m = NULL;
  if (st == TB_OK) st = tb__file_map(&file, &m);
  tb__file_close(&file);
  if (st != TB_OK) return st;
  st = tb_npy_wrap(prefix, &h, m->base, tb__mapping_flags(mode), tb__mapping_delete, m, out);
  if (st != TB_OK) tb__mapping_delete(m->base, m); /* the tensor did not take it */
  return st;
}

/* ------------------------------------------------------------------------ */
/* Saving                                                                   */
/* ------------------------------------------------------------------------ */

/* The scratch buffer a non-contiguous tensor is copied through. */
#define TB_NPY_BLOCK_BYTES ((int64_t)1 << 20)

/* Writes all n bytes; write errors are "npy_save (write)"'s. */
static tb_status tb_npy_write_all(int fd, const char *path, const void *data, uint64_t n) {
  return tb__file_write_all(fd, "npy_save (write)", path, data, n);
}

/*
 * A non-contiguous tensor in C order through a scratch tensor of at most
 * TB_NPY_BLOCK_BYTES: `split` is the first dimension whose one index (all
 * the dimensions after it) fits the block, and each block is `per`
 * consecutive indices of it, below one index of every dimension before it
 * (select, then slice), copied by the copy engine and written out.
 */
static tb_status tb_npy_write_blocks(int fd, const char *path, const tb_tensor_t *t) {
  const int32_t ndim = tb_tensor_ndim(t);
  const int64_t *shape = tb_tensor_shape(t);
  int32_t split = ndim - 1;
  int64_t row = (int64_t)tb_dtype_itemsize(tb_tensor_dtype(t)), whole;
  while (split > 0 && !tb__mul_overflows(row, shape[split], &whole) &&
         whole <= TB_NPY_BLOCK_BYTES) {
    row = whole;
    split--;
  }
  const int64_t per =
      TB_NPY_BLOCK_BYTES / row < shape[split] ? TB_NPY_BLOCK_BYTES / row : shape[split];
  int64_t block_shape[TB_MAX_NDIM];
  block_shape[0] = per;
  for (int32_t d = split + 1; d < ndim; d++) block_shape[d - split] = shape[d];
  tb_tensor_t *scratch;
  tb_status st = tb_tensor_empty(tb_tensor_dtype(t), ndim - split, block_shape,
                                 (DLDevice){kDLCPU, 0}, TB_ORDER_C, &scratch);
  if (st != TB_OK) return st;
  int64_t index[TB_MAX_NDIM] = {0}; /* over dimensions [0, split) */
  for (;;) {
    /* One index of every dimension before split. */
    tb_tensor_t *outer = NULL;
    for (int32_t d = 0; d < split && st == TB_OK; d++) {
      tb_tensor_t *next;
      st = tb_tensor_select(outer != NULL ? outer : t, 0, index[d], &next);
      tb_tensor_release(outer);
      outer = st == TB_OK ? next : NULL;
    }
    const tb_tensor_t *rows = outer != NULL ? outer : t;
    for (int64_t start = 0; st == TB_OK && start < shape[split]; start += per) {
      const int64_t n = shape[split] - start < per ? shape[split] - start : per;
      tb_tensor_t *src = NULL, *dst = NULL;
      st = tb_tensor_slice(rows, 0, start, start + n, 1, &src);
      if (st == TB_OK) st = tb_tensor_slice(scratch, 0, 0, n, 1, &dst);
      if (st == TB_OK) st = tb_tensor_copy_into(dst, src, 0);
      if (st == TB_OK) {
        st = tb_npy_write_all(fd, path, tb_tensor_data(scratch), (uint64_t)(n * row));
      }
      tb_tensor_release(dst);
      tb_tensor_release(src);
    }
    tb_tensor_release(outer);
    if (st != TB_OK) break;
    /* The next index of [0, split), last dimension fastest. */
    int32_t d = split - 1;
    while (d >= 0 && ++index[d] == shape[d]) index[d--] = 0;
    if (d < 0) break;
  }
  tb_tensor_release(scratch);
  return st;
}

static tb_status tb_npy_write_elements(int fd, const char *path, const tb_tensor_t *t) {
  const int64_t nbytes = tb_tensor_nbytes(t);
  if (nbytes == 0) return TB_OK;
  if (tb_tensor_is_contiguous(t, TB_ORDER_C)) {
    return tb_npy_write_all(fd, path, tb_tensor_data(t), (uint64_t)nbytes);
  }
  return tb_npy_write_blocks(fd, path, t);
}

/* Distinguishes the temporary files of one process's concurrent saves. */
static atomic_uint_fast64_t tb_npy_temp_serial;

/* Creates path's temporary sibling; *name (from allocator a, *name_size
 * bytes) and *fd on success. */
static tb_status tb_npy_create_temp(const char *path, const tb_allocator *a, char **name,
                                    size_t *name_size, int *fd) {
  const size_t size = strlen(path) + 64;
  char *tmp = tb__alloc(a, size, 1, "npy_save: the temporary file's name");
  if (tmp == NULL) return TB_ERR_NOMEM;
  for (int attempt = 0; attempt < 64; attempt++) {
    unsigned long long serial = atomic_fetch_add(&tb_npy_temp_serial, 1);
    (void)snprintf(tmp, size, "%s.tb-%ld-%llu.tmp", path, (long)getpid(), serial);
    int f = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (f >= 0) {
      *name = tmp;
      *name_size = size;
      *fd = f;
      return TB_OK;
    }
    if (errno != EEXIST) {
      int err = errno;
      tb__free(a, tmp, size);
      return tb__fail_errno("npy_save (create)", path, err);
    }
  }
  tb__free(a, tmp, size);
  return tb__fail(TB_ERR_IO,
                  "npy_save (create): %.200s: 64 temporary names beside it exist already", path);
}

TB_API tb_status tb_npy_save(const char *path, const tb_tensor_t *t) {
  static const char what[] = "npy_save";
  if (path == NULL || t == NULL) {
    return tb__fail(TB_ERR_INVALID, "%s: %s is NULL", what, path == NULL ? "path" : "t");
  }
  const DLDevice device = tb_tensor_device(t);
  if (!tb__device_is_host(device)) {
    return tb__fail(TB_ERR_DEVICE,
                    "%s: the tensor is on %s:%d, whose memory the CPU cannot read: copy it to the "
                    "CPU first (tb_tensor_to)",
                    what, tb__device_type_name((int32_t)device.device_type), (int)device.device_id);
  }
  char header[TB__NPY_HEADER_CAPACITY];
  size_t header_len;
  tb_status st = tb__npy_format_header(what, tb_tensor_dtype(t), tb_tensor_ndim(t),
                                       tb_tensor_shape(t), header, &header_len);
  if (st != TB_OK) return st;
  tb_allocator a;
  tb__allocator_current(&a);
  char *tmp = NULL;
  size_t tmp_size = 0;
  int fd = -1;
  st = tb_npy_create_temp(path, &a, &tmp, &tmp_size, &fd);
  if (st != TB_OK) return st;
  st = tb_npy_write_all(fd, path, header, header_len);
  if (st == TB_OK) st = tb_npy_write_elements(fd, path, t);
  /* close reports the errors of file systems that write late (NFS). */
  if (close(fd) != 0 && st == TB_OK) st = tb__fail_errno("npy_save (close)", path, errno);
  if (st == TB_OK && rename(tmp, path) != 0) st = tb__fail_errno("npy_save (rename)", path, errno);
  if (st != TB_OK) (void)unlink(tmp);
  tb__free(&a, tmp, tmp_size);
  return st;
}
