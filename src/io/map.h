/*
 * Whole files mapped into memory, for the file formats of io/ (npy.c,
 * safetensors.c), once their headers are read and checked. A mapping is
 * owned by the storage of the tensors over it: tb__mapping_delete is that
 * storage's deleter, so the file is unmapped when the last tensor (or view)
 * goes, on whatever thread releases it.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef TB_IO_MAP_H
#define TB_IO_MAP_H

#include "internal.h"

typedef struct tb__mapping {
  void *base;      /* the first byte of the file; NULL for an empty file */
  uint64_t size;   /* bytes mapped: the file's size when it was opened */
  tb_map_mode mode;
} tb__mapping;

/*
 * A file opened to be read and then mapped: its header is read with
 * tb__file_read (pread) into the caller's memory and checked there, and
 * only then is the file mapped, by tb__file_map, without touching any page
 * of the mapping: opening a file and releasing it faults nothing in, and
 * the data pages fault only when the caller reads them. `what` and `path`
 * (borrowed) prefix the messages of all three.
 */
typedef struct tb__file {
  int fd;
  uint64_t size; /* the file's size when it was opened */
  tb_map_mode mode;
  const char *what, *path;
} tb__file;

/*
 * Opens the regular file at path for mapping with mode. TB_ERR_IO (naming
 * `what`, the path and the system's reason) when it cannot be opened or is
 * not a regular file, or its size cannot be mapped; TB_ERR_INVALID for a
 * NULL path or a mode out of range. On success tb__file_close must follow.
 */
TB_INTERNAL tb_status tb__file_open(const char *what, const char *path, tb_map_mode mode,
                                    tb__file *out);

/* Reads the n bytes at offset into buf, through short reads and EINTR.
 * TB_ERR_IO when the system fails or the file ends before them (it has
 * shrunk since it was opened). */
TB_INTERNAL tb_status tb__file_read(const tb__file *f, uint64_t offset, void *buf, size_t n);

/*
 * Maps the f->size bytes of f with f->mode, touching none of them, and
 * checks that the file (fstat of the same descriptor) still holds them:
 * TB_ERR_IO, with nothing mapped, when it has shrunk (reading past its end
 * would raise SIGBUS) or it cannot be mapped. An empty file gives a mapping
 * with base NULL and size 0. The mapping does not need the descriptor.
 */
TB_INTERNAL tb_status tb__file_map(const tb__file *f, tb__mapping **out);

/* Writes all n bytes of data to fd, through short writes and EINTR: for the
 * savers of io/. TB_ERR_IO naming `what` and `path` when the system fails
 * or writes nothing. */
TB_INTERNAL tb_status tb__file_write_all(int fd, const char *what, const char *path,
                                         const void *data, uint64_t n);

/* Closes f's descriptor. */
TB_INTERNAL void tb__file_close(tb__file *f);

/* Unmaps and frees m (a tb_deleter_fn: data is m->base, ctx is m). */
TB_INTERNAL void tb__mapping_delete(void *data, void *ctx);

/* The tensor flags a mapping in `mode` gives: TB_FLAG_READONLY for READ. */
TB_INTERNAL uint32_t tb__mapping_flags(tb_map_mode mode);

/* Fails with TB_ERR_IO naming `what`, `subject` and errno's text. */
TB_INTERNAL tb_status tb__fail_errno(const char *what, const char *subject, int err);

#endif /* TB_IO_MAP_H */
