/**
 * @file
 * @brief Reading and writing safetensors files (included by
 * tensorbridge/tensorbridge.h).
 *
 * A safetensors file is an 8-byte little-endian header length N, N bytes of
 * JSON naming each tensor's dtype, shape and byte range, and the data
 * section those ranges cover, every tensor dense in C order:
 * @code{.unparsed}
 *   {"__metadata__": {"format": "pt"},
 *    "w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}, ...}
 * @endcode
 *
 * Reading maps the file once and hands out each entry as a read-only tensor
 * over that mapping, without copying: all of them share one storage, which
 * owns the mapping, so the file stays mapped while any entry (or a view of
 * one) lives and is unmapped when the last one goes, whether the handle was
 * closed before or not.
 *
 * Dtypes (safetensors name <-> library dtype):
 * @code{.unparsed}
 *   BOOL bool, U8 uint8, I8 int8, U16 uint16, I16 int16, U32 uint32,
 *   I32 int32, U64 uint64, I64 int64, F16 float16, BF16 bfloat16,
 *   F32 float32, F64 float64, C64 complex64,
 *   F8_E4M3 float8_e4m3fn, F8_E5M2 float8_e5m2, F8_E8M0 float8_e8m0fnu,
 *   F8_E4M3FNUZ float8_e4m3fnuz, F8_E5M2FNUZ float8_e5m2fnuz,
 *   F4 float4_e2m1fn, F6_E2M3 float6_e2m3fn, F6_E3M2 float6_e3m2fn.
 * @endcode
 * F4 and F6 data is packed (two F4 elements a byte, four F6 in three) and
 * carried as opaque bytes, unchanged: the library's float4/float6 tensors
 * are storage-only. safetensors fixes no order of the elements inside a
 * byte (PyTorch's float4_e2m1fn_x2, the usual producer, keeps the first in
 * the low nibble); as in the reference implementation, an entry's bits must
 * fill whole bytes (an even count of F4 elements, a multiple of 4 of F6).
 * Other library dtypes (complex128, float8_e3m4, float8_e4m3,
 * float8_e4m3b11fnuz) have no safetensors name and are refused by
 * tb_safetensors_save with TB_ERR_DTYPE.
 *
 * Checks (all at open, none deferred to tb_safetensors_get): the file is at
 * least 8 bytes; N is at most TB_SAFETENSORS_MAX_HEADER (the reference's
 * limit) and within the file; the header is valid UTF-8, starts with '{'
 * and is one JSON object followed only by whitespace (strict JSON: no
 * trailing commas, valid escapes, paired surrogates, nesting at most 128
 * deep). Every key but `"__metadata__"` is an entry: an object with exactly
 * the fields dtype (a known name), shape (at most TB_MAX_NDIM integers in
 * [0, INT64_MAX]) and data_offsets (two integers [begin, end]); no key
 * appears twice, at any level. Each entry's end - begin is its element count
 * times its element size, and the entries, sorted by offset, cover the data
 * section exactly: no overlap, no hole, nothing after the last. `"__metadata__"`
 * is an object of strings, or null (no metadata). Each failure gets its own
 * message naming the entry, field and value:
 *   - TB_ERR_FORMAT      malformed file, JSON or entry (the common case)
 *   - TB_ERR_DTYPE       a dtype string this library does not know
 *   - TB_ERR_OVERFLOW    a shape whose element count or byte size overflows
 *                        int64 (size-0 shapes too, counting their non-zero
 *                        extents, as everywhere in the library)
 *   - TB_ERR_UNSUPPORTED valid safetensors the C API cannot express: more than
 *                        TB_MAX_NDIM dimensions, or a name, metadata key or
 *                        value holding U+0000 (C strings end there)
 *   - TB_ERR_IO          the file cannot be opened, read or mapped
 *
 * The reference implementation is laxer in a few places this reader refuses:
 * a duplicate entry name (the reference keeps the last), duplicate metadata
 * keys, unknown fields in an entry (the reference ignores them) and
 * whitespace before the opening '{'.
 *
 * Alignment: an entry whose data is not aligned to its element size in
 * memory (possible in files written by other writers, since the data section
 * starts at 8 + N; the reference writer pads N to a multiple of 8 and orders
 * entries so that it never happens) is not handed out as an unaligned typed
 * tensor: tb_safetensors_get copies it into fresh aligned memory, read-only
 * like every entry, each time it is asked for. Every other non-empty entry
 * is zero-copy.
 *
 * Threads: a handle is immutable once made; every function but close may be
 * called on it from any number of threads at once.
 *
 * See @ref page_files.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef TENSORBRIDGE_SAFETENSORS_H
#define TENSORBRIDGE_SAFETENSORS_H

#include "tensorbridge/tensorbridge.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @defgroup tb_safetensors safetensors files
 * @ingroup tb_files
 * @brief Files in the safetensors format: opened and checked at once, entries
 * handed out without copying, written as the reference writer does.
 *
 * tb_safetensors_open() maps a file (tb_safetensors_parse() takes one already
 * in memory) and checks its whole header; tb_safetensors_get() hands out each
 * entry as a read-only tensor over the mapping. All entries share one
 * storage, which owns the mapping: the file stays mapped while any entry (or
 * a view of one) lives, whether the handle was closed or not. safetensors.h
 * lists the dtypes and every check.
 * @{
 */

/** The largest header length accepted and written, in bytes (the reference
 * implementation's limit). */
#define TB_SAFETENSORS_MAX_HEADER 100000000

/** An open safetensors file (or buffer): its parsed header. Opaque. */
typedef struct tb_safetensors tb_safetensors;

/**
 * Maps the file at path read-only, then parses and checks its whole header
 * (see above). On success *out is a new handle, closed with
 * tb_safetensors_close; on failure nothing stays mapped.
 * @param path     the file
 * @param[out] out the new handle
 * @return TB_OK, or a failure listed in safetensors.h (TB_ERR_FORMAT,
 *         TB_ERR_DTYPE, TB_ERR_OVERFLOW, TB_ERR_UNSUPPORTED, TB_ERR_IO), or
 *         TB_ERR_INVALID for a NULL argument.
 */
TB_API tb_status tb_safetensors_open(const char *path, tb_safetensors **out);

/**
 * The same for a safetensors file already in memory: data[0, size), which
 * is borrowed, never written, and never read outside that range. The caller
 * keeps those bytes alive and unchanged for as long as the handle or any
 * tensor from it lives (its entries point into them, as tb_from_array with
 * no deleter). Parsing alone reads only the first 8 + N bytes.
 * @param data     the file's bytes (NULL only when size is 0)
 * @param size     their number
 * @param[out] out the new handle
 * @return As tb_safetensors_open().
 */
TB_API tb_status tb_safetensors_parse(const void *data, size_t size, tb_safetensors **out);

/**
 * Frees the handle (NULL is ignored). Tensors already handed out stay
 * valid: the mapping goes with the last of them (or now, when none lives).
 * Names, keys and values the handle returned are freed with it.
 * @param f the handle, or NULL
 */
TB_API void tb_safetensors_close(tb_safetensors *f);

/**
 * The number of entries (tensors), metadata not counted.
 * @param f the handle (NULL counts 0)
 * @return The count.
 */
TB_API int64_t tb_safetensors_count(const tb_safetensors *f);

/**
 * The name of entry index, in [0, count), or NULL out of range. Entries are
 * in the order of their data in the file (by data_offsets; entries at the
 * same offset, which only size-0 ones can share, in header order): for
 * files of the reference writer, the header's order. Owned by f.
 * @param f     the handle
 * @param index the entry
 * @return The name, valid until tb_safetensors_close(f), or NULL.
 */
TB_API const char *tb_safetensors_name(const tb_safetensors *f, int64_t index);

/**
 * The index of the entry called name; TB_ERR_INDEX when there is none.
 * @param f          the handle
 * @param name       the entry's name
 * @param[out] index its index, in [0, count)
 * @retval TB_OK          *index is set.
 * @retval TB_ERR_INDEX   no entry has that name.
 * @retval TB_ERR_INVALID a NULL argument.
 */
TB_API tb_status tb_safetensors_find(const tb_safetensors *f, const char *name, int64_t *index);

/**
 * The entry called name as a read-only tensor (a new reference; release
 * it with tb_tensor_release): dense C-order strides, on the CPU, its data
 * inside the mapping (or the caller's buffer, for tb_safetensors_parse) at
 * 8 + N + begin: no copy, except for a misaligned entry (see above).
 * Writes through it fail with TB_ERR_READONLY; tb_tensor_copy gives a
 * writable copy. It keeps the mapping alive after tb_safetensors_close.
 * TB_ERR_INDEX when no entry has that name.
 * @param f        the handle
 * @param name     the entry's name
 * @param[out] out the entry
 * @return TB_OK; TB_ERR_INDEX as above, TB_ERR_INVALID for a NULL argument,
 *         TB_ERR_NOMEM.
 * @par Ownership
 * Returns a new reference, which keeps the mapping alive; f stays
 * the caller's.
 */
TB_API tb_status tb_safetensors_get(const tb_safetensors *f, const char *name,
                                    tb_tensor_t **out);
/**
 * The same by index, in [0, count) (TB_ERR_INDEX otherwise).
 * @param f        the handle
 * @param index    the entry
 * @param[out] out the entry
 * @return TB_OK; TB_ERR_INDEX as above, TB_ERR_INVALID for a NULL argument,
 *         TB_ERR_NOMEM.
 * @par Ownership
 * Returns a new reference, as tb_safetensors_get() does.
 */
TB_API tb_status tb_safetensors_get_index(const tb_safetensors *f, int64_t index,
                                          tb_tensor_t **out);

/**
 * The number of `"__metadata__"` items (0 when the file has none).
 * @param f the handle (NULL counts 0)
 * @return The count.
 */
TB_API int64_t tb_safetensors_metadata_count(const tb_safetensors *f);
/**
 * The key of item index, in [0, metadata count), sorted by key (bytewise);
 * NULL out of range. Owned by f.
 * @param f     the handle
 * @param index the item
 * @return The key, valid until tb_safetensors_close(f), or NULL.
 */
TB_API const char *tb_safetensors_metadata_key(const tb_safetensors *f, int64_t index);
/**
 * The value of item index, in [0, metadata count), sorted by key (bytewise);
 * NULL out of range. Owned by f.
 * @param f     the handle
 * @param index the item
 * @return The value, valid until tb_safetensors_close(f), or NULL.
 */
TB_API const char *tb_safetensors_metadata_value(const tb_safetensors *f, int64_t index);
/**
 * The value stored under key (owned by f); TB_ERR_INDEX when there is none.
 * @param f          the handle
 * @param key        the key
 * @param[out] value the value, valid until tb_safetensors_close(f)
 * @retval TB_OK          *value is set.
 * @retval TB_ERR_INDEX   no item has that key.
 * @retval TB_ERR_INVALID a NULL argument.
 */
TB_API tb_status tb_safetensors_metadata_get(const tb_safetensors *f, const char *key,
                                             const char **value);

/**
 * Writes n tensors under their names, and n_meta metadata items, to a new
 * safetensors file at path, which the reference implementation reads back
 * equal. Borrows everything.
 * @param path        the file to write (replaced when it exists)
 * @param n           the number of tensors
 * @param names       names[n]: unique names, non-empty, valid UTF-8, not
 *                    `"__metadata__"`
 * @param tensors     tensors[n]: tensors of a safetensors dtype (see above)
 *                    in host-accessible memory, any strides (written in C
 *                    order)
 * @param n_meta      the number of metadata items
 * @param meta_keys   meta_keys[n_meta]: unique keys, valid UTF-8; with
 *                    n_meta = 0 the file has no `"__metadata__"`
 * @param meta_values meta_values[n_meta]: their values, valid UTF-8
 *
 * The layout is the reference writer's, byte for byte for the same input
 * (with at most one metadata item, whose order the reference leaves to its
 * hash map): entries sorted by dtype, widest element first, then by name,
 * so that each lies aligned to its element size; the header padded with
 * spaces to a multiple of 8; JSON strings escaped as serde_json does.
 * Dense C-order tensors are written straight from their memory, others
 * through a bounded buffer (1 MiB), never a whole contiguous copy.
 * The file is written under a temporary name in the same folder and renamed
 * to path once complete, so path holds either its old content or the whole
 * new file, never a part. Failures: TB_ERR_INVALID for bad arguments (a
 * duplicate name, a header above TB_SAFETENSORS_MAX_HEADER, ...),
 * TB_ERR_DTYPE for a dtype safetensors has no name for, or packed data that
 * does not fill whole bytes, TB_ERR_DEVICE for memory the CPU cannot
 * address, TB_ERR_IO for a failed system call.
 * @return TB_OK, or one of the failures above.
 * @par Ownership
 * Borrows every tensor (and every string).
 */
TB_API tb_status tb_safetensors_save(const char *path, int64_t n, const char *const *names,
                                     const tb_tensor_t *const *tensors, int64_t n_meta,
                                     const char *const *meta_keys,
                                     const char *const *meta_values);

/** @} */

#ifdef __cplusplus
}
#endif

#endif /* TENSORBRIDGE_SAFETENSORS_H */
