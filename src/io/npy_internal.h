/*
 * The .npy format inside the library: the header's text (npy_header.c:
 * parsing and writing it, no I/O) and a tensor over a file's bytes already
 * in memory (npy.c, which also reads, maps and saves files). The fuzz target
 * drives these entries directly.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef TB_IO_NPY_INTERNAL_H
#define TB_IO_NPY_INTERNAL_H

#include "internal.h"

/* The bytes before the header text: magic (6), version (2), length (2 or 4). */
#define TB__NPY_MAGIC "\x93NUMPY"
#define TB__NPY_MAGIC_LEN 6
/* numpy.save aligns the data to this many bytes. */
#define TB__NPY_ALIGN 64
/* The room numpy.save leaves after the dict for the growing extent's digits. */
#define TB__NPY_GROWTH_DIGITS 21
/* Enough for every header tb__npy_format_header writes: the dict with
 * TB_MAX_NDIM extents of 20 characters each, the growth room and padding. */
#define TB__NPY_HEADER_CAPACITY 2048

/* tb_npy_parse_header with `what` ("npy_load: <path>") prefixing messages. */
TB_INTERNAL tb_status tb__npy_parse(const char *what, const void *bytes, size_t size,
                                    tb_npy_header *out);

/* The most bytes tb__npy_header_end reads: magic, version, a 4-byte length. */
#define TB__NPY_PREFIX_MAX 12

/*
 * The first checks of tb__npy_parse, on the bytes before the header text of
 * a file of `size` bytes: of them it reads only the first
 * min(size, TB__NPY_PREFIX_MAX) at `bytes`. On success *data_offset is the
 * byte the header ends at (<= size), and tb__npy_parse over just the file's
 * first data_offset bytes says what it says over the whole file: so a
 * reader that does not map the file reads the prefix, then the header, and
 * parses that (npy.c).
 */
TB_INTERNAL tb_status tb__npy_header_end(const char *what, const void *bytes, size_t size,
                                         uint64_t *data_offset);

/* Writes the descr typestr of dtype ("<f4", "|b1": the host's byte order)
 * to out; false when NumPy has no such dtype. */
#define TB__NPY_DESCR_CAPACITY 8
TB_INTERNAL bool tb__npy_descr(DLDataType dtype, char out[TB__NPY_DESCR_CAPACITY]);

/*
 * Writes the whole header numpy.save writes for a C-order array of dtype and
 * shape (magic, version, length, dict, padding, '\n') into buf, whose
 * capacity is at least TB__NPY_HEADER_CAPACITY, and its length to *len (a
 * multiple of TB__NPY_ALIGN). TB_ERR_DTYPE (prefixed by `what`) for a dtype
 * NumPy has no typestr for. The shape must already be a valid layout.
 */
TB_INTERNAL tb_status tb__npy_format_header(const char *what, DLDataType dtype, int32_t ndim,
                                            const int64_t *shape, char *buf, size_t *len);

/*
 * A tensor over the .npy file whose `size` bytes are at `bytes` (host
 * memory), without copying: parses the header, checks that the data the
 * shape needs lies within `size` and is aligned in memory, and wraps it as
 * tb__wrap does (flags: TB_FLAG_READONLY or 0; deleter(bytes, ctx) runs
 * once at the last release). On failure the deleter is not called and the
 * caller keeps the memory. *out is a new reference.
 */
TB_INTERNAL tb_status tb__npy_from_bytes(const char *what, void *bytes, uint64_t size,
                                         uint32_t flags, tb_deleter_fn deleter, void *ctx,
                                         tb_tensor_t **out);

#endif /* TB_IO_NPY_INTERNAL_H */
