/**
 * @file
 * @brief NumPy .npy files (included by tensorbridge/tensorbridge.h).
 *
 * NumPy's .npy files: one array, a short text header, then the elements.
 *
 * @code{.unparsed}
 *   magic    6 bytes "\x93NUMPY", then the format version: 1 byte major,
 *            1 byte minor (1.0, 2.0 or 3.0)
 *   length   little-endian header length: 2 bytes (1.0) or 4 bytes (2.0, 3.0)
 *   header   a Python dict literal {'descr': '<f4', 'fortran_order': False,
 *            'shape': (3, 4), }, ASCII (1.0, 2.0) or UTF-8 (3.0), padded
 *            with spaces and ended by '\n' so that the data starts at a
 *            multiple of 64 bytes
 *   data     the elements, C order or (fortran_order: True) F order
 * @endcode
 *
 * Loading maps the file (no copy: the tensor's elements are the file's
 * bytes); saving streams the elements to the file. Only the dtypes NumPy and
 * this library share are carried: bool, int8..int64, uint8..uint64,
 * float16, float32, float64, complex64, complex128, in the host's byte order.
 * See @ref page_files.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef TENSORBRIDGE_NPY_H
#define TENSORBRIDGE_NPY_H

#include "tensorbridge/tensorbridge.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @defgroup tb_npy .npy files
 * @ingroup tb_files
 * @brief NumPy's .npy files: parsed, mapped without a copy, and saved.
 *
 * A .npy file holds one array: a short text header, then the elements (see
 * npy.h for the layout). tb_npy_load() maps the file, so the tensor's
 * elements are the file's bytes; tb_npy_save() writes the bytes numpy.save
 * writes. Only the dtypes NumPy and this library share are carried: bool,
 * int8..int64, uint8..uint64, float16, float32, float64, complex64,
 * complex128, in the host's byte order.
 * @{
 */

/** The longest header read, in bytes (TB_ERR_FORMAT above it): far above any
 * NumPy writes (a 64-dimension shape needs about 2 KiB). */
#define TB_NPY_MAX_HEADER 1048576

/** What a .npy header says, as tb_npy_parse_header reads it. */
typedef struct tb_npy_header {
  DLDataType dtype;           /**< the descr as a DLPack dtype */
  int32_t ndim;               /**< 0 .. TB_MAX_NDIM */
  int64_t shape[TB_MAX_NDIM]; /**< ndim extents, each >= 0; the rest 0 */
  bool fortran_order;         /**< the data is in F order (else C order) */
  uint8_t version[2];         /**< {major, minor}: {1, 0}, {2, 0} or {3, 0} */
  uint64_t data_offset;       /**< bytes from the start of the file to the data */
  uint64_t data_nbytes;       /**< bytes of data the shape needs: numel * itemsize */
} tb_npy_header;

/**
 * Parses the start of a .npy file: the magic string, the version, the
 * header length and the header dict, reading nothing past bytes + size.
 * `size` may be the whole file or only its beginning; the header must lie
 * inside it, the data need not (compare data_offset + data_nbytes with the
 * file's size: tb_npy_load does). Borrows bytes; fills *out on success.
 *
 * The dict must hold exactly the keys 'descr', 'fortran_order' and 'shape',
 * in any order, each once: descr a typestr string ('<f4', '|b1', '<c16';
 * '<', '|', '=' or no byte order for the host's little-endian order),
 * fortran_order True or False, shape a tuple of non-negative integers
 * (() for 0-d, (3,) for one dimension). Python's whitespace may stand
 * between tokens, a trailing comma may end the dict or the tuple, and
 * spaces and newlines may follow the dict.
 *
 * @param bytes    the start of the file (NULL only when size is 0)
 * @param size     how many bytes may be read from bytes
 * @param[out] out what the header says
 *
 * Failures, each with a message naming the field and the value:
 * @retval TB_OK     *out is filled.
 * @retval TB_ERR_FORMAT    wrong magic, a version other than 1.0/2.0/3.0, a header
 *                    length reaching past `size`, a non-ASCII byte in a
 *                    1.0/2.0 header or invalid UTF-8 in a 3.0 one, a
 *                    malformed dict (unterminated string or tuple, nesting,
 *                    a missing, duplicate or unknown key, a value of the
 *                    wrong kind), more than TB_MAX_NDIM extents, a negative
 *                    or non-integer extent, or element data that would
 *                    start at an offset that is not a multiple of the
 *                    element size (NumPy pads headers to 64 bytes)
 * @retval TB_ERR_DTYPE     a descr this library cannot hold: the other byte
 *                    order, Python objects ('|O'), strings ('S', 'U'), void
 *                    ('V'), datetimes ('M', 'm'), structured or subarray
 *                    dtypes, float128 and other sizes
 * @retval TB_ERR_OVERFLOW  an extent, or the byte size of the shape (with each 0
 *                    extent read as 1, as NumPy checks empty shapes), that
 *                    does not fit int64 (or size_t)
 * @retval TB_ERR_INVALID   out is NULL, or bytes is NULL while size > 0
 * @par Ownership
 * Borrows bytes (no tensor is involved).
 */
TB_API tb_status tb_npy_parse_header(const void *bytes, size_t size, tb_npy_header *out);

/**
 * Loads the .npy file at `path` by mapping it into memory, with `mode` as
 * numpy.load's mmap_mode: TB_MAP_READ ('r') gives a read-only tensor;
 * TB_MAP_COPY ('c') a writable one whose writes stay in this process;
 * TB_MAP_WRITE ('r+') a writable one whose writes reach the file (the file
 * must be writable). Nothing is copied: the tensor's elements are the
 * mapped bytes of the file, starting at the header's data_offset, in C order
 * or, for fortran_order: True, F order (strides reversed). Bytes after the
 * data are ignored.
 *
 * On success *out is a new reference; the mapping belongs to the tensor's
 * storage and is unmapped when the last tensor or view over it is released
 * (on whichever thread releases it). The file may be renamed, replaced or
 * unlinked meanwhile; truncating it under a live mapping is the caller's
 * error (the system then raises SIGBUS on access, as for numpy.memmap).
 *
 * Failures: TB_ERR_IO (naming the path and the system's reason) when the
 * file cannot be opened, is not a regular file or cannot be mapped;
 * tb_npy_parse_header's statuses for its header, prefixed by the path;
 * TB_ERR_FORMAT when the file is shorter than the header plus the data the
 * shape needs (truncated); TB_ERR_INVALID for a NULL argument or a mode out
 * of range. Nothing stays mapped after a failure.
 *
 * @param path     the file
 * @param mode     TB_MAP_READ, TB_MAP_COPY or TB_MAP_WRITE
 * @param[out] out the tensor over the mapped file
 * @return TB_OK, or one of the failures above.
 * @par Ownership
 * On success *out is a new reference; it (with its views) owns the
 * mapping.
 */
TB_API tb_status tb_npy_load(const char *path, tb_map_mode mode, tb_tensor_t **out);

/**
 * Saves t as a .npy file at `path`, the bytes numpy.save writes for the
 * same array: format 1.0 (2.0 only for a header over 65535 bytes, which
 * TB_MAX_NDIM dimensions never need), the header padded so that the data
 * starts at a multiple of 64 bytes (with NumPy's spare room for growing the
 * first extent), then the elements in C order with fortran_order: False,
 * whatever t's strides. Borrows t.
 *
 * The elements are streamed: a C-contiguous tensor is written straight from
 * its memory; any other (transposed, stepped, negative or zero strides) is
 * copied to the file through a scratch buffer of at most 1 MiB, one C-order
 * block of whole rows at a time, never as a whole contiguous copy.
 *
 * The file is written under a temporary name in the same folder
 * (`path + ".tb-<pid>-<n>.tmp"`, created with mode 0666 less the umask) and
 * renamed to `path` once every byte is written and the file closed: a
 * reader never sees a partial file under `path`, a failure leaves an
 * existing file at `path` as it was and removes the temporary one, and a
 * tensor mapped from `path` itself may be saved back to it. `path` itself
 * is replaced, not written through: a symbolic link there is replaced by
 * the file. The folder must be writable. Like numpy.save, it does not call
 * fsync: surviving a system crash is the caller's affair.
 *
 * Failures: TB_ERR_DEVICE for memory the CPU cannot address (copy the
 * tensor to the CPU first, tb_tensor_to); TB_ERR_DTYPE for dtypes NumPy has
 * no typestr for (bfloat16, float8, float6, float4), naming the dtype;
 * TB_ERR_IO naming the path and the system's reason when a file cannot be
 * created, written (short writes, ENOSPC, EFBIG), closed or renamed;
 * TB_ERR_NOMEM; TB_ERR_INVALID for a NULL argument.
 *
 * @param path the file to write (replaced when it exists)
 * @param t    the tensor, in host-accessible memory
 * @return TB_OK, or one of the failures above.
 * @par Ownership
 * Borrows t.
 */
TB_API tb_status tb_npy_save(const char *path, const tb_tensor_t *t);

/** @} */

#ifdef __cplusplus
}
#endif

#endif /* TENSORBRIDGE_NPY_H */
