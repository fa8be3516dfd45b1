/*
 * Whole files mapped into memory, for the file formats of io/ (npy.c,
 * safetensors.c). A mapping is owned by the storage of the tensors over it:
 * tb__mapping_delete is that storage's deleter, so the file is unmapped when
 * the last tensor (or view) goes, on whatever thread releases it.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef TB_IO_MAP_H
#define TB_IO_MAP_H

#include "internal.h"

typedef struct tb__mapping {
  void *base;      /* the first byte of the file; NULL for an empty file */
  uint64_t size;   /* bytes mapped: the file's size when it was mapped */
  tb_map_mode mode;
} tb__mapping;

/*
 * Maps all of the regular file at path with mode. TB_ERR_IO (naming `what`,
 * the path and the system's reason) when it cannot be opened, is not a
 * regular file, or cannot be mapped; TB_ERR_INVALID for a mode out of range.
 * An empty file gives a mapping with base NULL and size 0. The descriptor is
 * closed before returning: the mapping does not need it.
 */
TB_INTERNAL tb_status tb__map_file(const char *what, const char *path, tb_map_mode mode,
                                   tb__mapping **out);

/* Unmaps and frees m (a tb_deleter_fn: data is m->base, ctx is m). */
TB_INTERNAL void tb__mapping_delete(void *data, void *ctx);

/* The tensor flags a mapping in `mode` gives: TB_FLAG_READONLY for READ. */
TB_INTERNAL uint32_t tb__mapping_flags(tb_map_mode mode);

/* Fails with TB_ERR_IO naming `what`, `subject` and errno's text. */
TB_INTERNAL tb_status tb__fail_errno(const char *what, const char *subject, int err);

#endif /* TB_IO_MAP_H */
