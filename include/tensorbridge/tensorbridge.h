/**
 * @file
 * @brief Zero-copy interchange between ndarrays and tensors: the main header of
 * libtensorbridge.
 *
 * The header to include: it brings in dlpack_abi.h (DLPack's types), the
 * generated tensorbridge/version.h, npy.h, safetensors.h and shm.h.
 * backend.h, the interface for backend authors, is included separately.
 *
 * Conventions used throughout this header:
 *   - Every fallible function returns a tb_status; TB_OK is 0. On failure a
 *     message naming the offending field and value is kept for the calling
 *     thread and returned by tb_last_error(). Outputs are written only on
 *     success.
 *   - Tensors are opaque, reference-counted handles. "Returns a new reference"
 *     means the caller must call tb_tensor_release() once; "borrows" means the
 *     function neither keeps nor releases the caller's reference; "steals"
 *     means the function takes over the caller's reference (or struct), on
 *     success and on failure alike.
 *   - Strides are counted in elements, as in DLPack, and may be negative or 0.
 *   - The library never prints, aborts or exits.
 *
 * See @ref mainpage "the overview" for these conventions at more length.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef TENSORBRIDGE_H
#define TENSORBRIDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dlpack_abi.h"
#include "tensorbridge/version.h"

/**
 * @defgroup tb_errors Version and errors
 * @brief The library's version, the status codes and the calling thread's
 * last error message.
 *
 * Every fallible function returns a tb_status; TB_OK is 0. On failure a
 * message naming the offending field and value is kept for the calling thread
 * (tb_last_error()); successful calls leave it untouched, and outputs are
 * written only on success. The TB_VERSION_* macros of tensorbridge/version.h
 * give the version a program was compiled against, tb_version() and
 * tb_version_number() that of the library it runs with.
 */

/**
 * @brief Marks the library's exported functions.
 *
 * `__declspec(dllexport)` while building the DLL on Windows,
 * `__declspec(dllimport)` when using it (neither when TB_STATIC is defined),
 * default visibility with GCC and Clang, and nothing elsewhere. Only
 * `tb_`-prefixed functions carry it.
 * @ingroup tb_errors
 */
#if defined(_WIN32) && defined(TB_BUILDING_LIBRARY) && !defined(TB_STATIC)
#define TB_API __declspec(dllexport)
#elif defined(_WIN32) && !defined(TB_STATIC)
#define TB_API __declspec(dllimport)
#elif defined(__GNUC__) || defined(__clang__)
#define TB_API __attribute__((visibility("default")))
#else
#define TB_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Version                                                                  */
/* ------------------------------------------------------------------------ */

/** @addtogroup tb_errors
 * @{ */

/**
 * The library's version as "MAJOR.MINOR.PATCH" (of the loaded library, which
 * may differ from the TB_VERSION_* macros the caller was compiled against).
 * @return A static string, never NULL.
 */
TB_API const char *tb_version(void);
/**
 * The loaded library's version as one number.
 * @return MAJOR * 10000 + MINOR * 100 + PATCH.
 */
TB_API int32_t tb_version_number(void);

/* ------------------------------------------------------------------------ */
/* Status and errors                                                        */
/* ------------------------------------------------------------------------ */

/**
 * What a fallible function returns: TB_OK (0) on success, else the kind of
 * failure, with a message for the calling thread in tb_last_error(). The
 * values are fixed.
 */
typedef enum tb_status {
  TB_OK = 0,               /**< success */
  TB_ERR_INVALID = 1,      /**< an argument is out of its domain */
  TB_ERR_NOMEM = 2,        /**< an allocation failed */
  TB_ERR_OVERFLOW = 3,     /**< a size or offset computation overflowed */
  TB_ERR_DTYPE = 4,        /**< dtype unknown, or not supported by the operation */
  TB_ERR_DEVICE = 5,       /**< device unknown, or no backend for it */
  TB_ERR_LAYOUT = 6,       /**< the layout does not allow the operation without a copy */
  TB_ERR_READONLY = 7,     /**< a write was asked through a read-only tensor */
  TB_ERR_UNSUPPORTED = 8,  /**< a valid request that this build cannot carry out */
  TB_ERR_VERSION = 9,      /**< an ABI version this library does not speak */
  TB_ERR_INDEX = 10,       /**< an index or dimension is out of range */
  TB_ERR_COPY_REQUIRED = 11, /**< the request needs a copy and copying was refused */
  TB_ERR_IO = 12,            /**< a system call on a file, socket or shared memory failed */
  TB_ERR_FORMAT = 13         /**< a file or handle is malformed (truncated, wrong magic, ...) */
} tb_status;

/**
 * A static, human-readable name for a status ("TB_ERR_NOMEM"); never NULL.
 * @param status any value; one that is not a tb_status gets
 *               "TB_STATUS_UNKNOWN".
 * @return The enumerator's name as a static string.
 */
TB_API const char *tb_status_name(tb_status status);

/**
 * The message of the last failure on the calling thread ("" when none).
 * Every function that returns a status other than TB_OK sets it; successful
 * calls leave it untouched. The pointer stays valid until the next failing
 * call on the same thread; copy it to keep it longer.
 * @return The calling thread's message, never NULL.
 */
TB_API const char *tb_last_error(void);
/** Resets the calling thread's message to "". */
TB_API void tb_clear_error(void);

/** @} */

/* ------------------------------------------------------------------------ */
/* Data types                                                               */
/* ------------------------------------------------------------------------ */

/**
 * @defgroup tb_dtypes Data types
 * @brief Names, sizes and checks of DLPack dtypes.
 *
 * dtypes are DLPack's DLDataType {code, bits, lanes}. The table knows every
 * code of DLPack 1.3. lanes must be 1. Casting copies are supported between
 * bool, int8..int64, uint8..uint64, float16, bfloat16, float32, float64,
 * complex64 and complex128; float8 dtypes are known by name and size and copy
 * only to themselves; float6/float4 are storage-only (whole contiguous tensors).
 * The type codes are the TB_DL_* constants of dlpack_abi.h.
 * @{
 */

/**
 * The canonical name ("float32", "bfloat16", "float8_e4m3fn", ...), or NULL
 * for a dtype the table does not know.
 * @param dtype any dtype.
 * @return A static string, or NULL.
 */
TB_API const char *tb_dtype_name(DLDataType dtype);
/**
 * Parses a canonical name; also accepts the aliases "float", "double",
 * "half", "int", "long", "complex", "cfloat", "cdouble", "bool_".
 * @param name a NUL-terminated name.
 * @param[out] out the dtype, lanes 1.
 * @retval TB_OK         *out is set.
 * @retval TB_ERR_DTYPE  the name is neither canonical nor an alias.
 * @retval TB_ERR_INVALID name or out is NULL.
 */
TB_API tb_status tb_dtype_from_name(const char *name, DLDataType *out);
/**
 * Bytes per element, or 0 for unknown dtypes and for the packed sub-byte
 * dtypes (float6, float4) whose elements are not byte-addressable.
 * @param dtype any dtype.
 * @return The element size in bytes, or 0.
 */
TB_API size_t tb_dtype_itemsize(DLDataType dtype);
/**
 * TB_OK when the table knows the dtype, else TB_ERR_DTYPE with a message.
 * @param dtype any dtype.
 * @return TB_OK or TB_ERR_DTYPE (lanes other than 1, or an unknown
 *         code and bits).
 */
TB_API tb_status tb_dtype_check(DLDataType dtype);
/**
 * True when both are equal field by field (code, bits and lanes).
 * @param a one dtype.
 * @param b the other.
 * @return Whether a and b are the same dtype.
 */
TB_API bool tb_dtype_equal(DLDataType a, DLDataType b);

/**
 * Convenience constructor for the common dtypes (no table lookup).
 * @param code a DLPack type code (TB_DL_FLOAT, ...).
 * @param bits bits per element.
 * @return The dtype {code, bits, 1}, known to the table or not.
 */
TB_API DLDataType tb_dtype(uint8_t code, uint8_t bits);

/** @} */

/* ------------------------------------------------------------------------ */
/* Allocator                                                                */
/* ------------------------------------------------------------------------ */

/**
 * @defgroup tb_alloc Allocator
 * @brief The replaceable allocator behind every host allocation.
 *
 * Every host allocation the library makes (tensor headers, storage records,
 * CPU data, scratch buffers) goes through the current allocator. Each object
 * remembers the allocator that made it, so the allocator may be changed at
 * any time; it must stay usable for as long as objects made by it live.
 * @{
 */

/**
 * A host allocator: two functions and the user data passed to both.
 * alloc returns memory aligned to at least `alignment` (a power of two) or
 * NULL; free receives the pointer and the size that was asked for.
 */
typedef struct tb_allocator {
  /** Returns `size` bytes aligned to at least `alignment` (a power of two),
   * or NULL on failure. */
  void *(*alloc)(void *user_data, size_t size, size_t alignment);
  /** Frees `ptr`, which alloc returned for `size` bytes. */
  void (*free)(void *user_data, void *ptr, size_t size);
  void *user_data; /**< passed to alloc and free as their first argument */
} tb_allocator;

/**
 * Installs a copy of *allocator; NULL restores the default (the C library's
 * aligned allocation). Both function pointers must be set. Thread-safe.
 * @param allocator the allocator to copy, or NULL for the default.
 * @retval TB_OK          installed.
 * @retval TB_ERR_INVALID alloc or free is NULL (the current allocator stays).
 */
TB_API tb_status tb_set_allocator(const tb_allocator *allocator);
/**
 * Writes the current allocator to *out.
 * @param[out] out receives the allocator's functions and user data.
 */
TB_API void tb_get_allocator(tb_allocator *out);

/** Alignment of data the library allocates on the host, in bytes. */
#define TB_DATA_ALIGNMENT 64

/** @} */

/* ------------------------------------------------------------------------ */
/* Threads                                                                  */
/* ------------------------------------------------------------------------ */

/**
 * @defgroup tb_threads Threads
 * @brief How large host copies run in parallel: the library's pool, or the
 * application's own.
 *
 * Large host copies, casts and transposes (a few MiB and more; small ones
 * never) are split into chunks that run in parallel. By default they run on
 * the library's own pool: worker threads started the first time such a copy
 * runs (never before), as many as tb_get_num_threads() - 1, the calling
 * thread being the last worker; they are named "tb-worker", sleep between
 * copies, have every signal blocked, and are joined when the library is
 * unloaded (or the process exits). After fork() the
 * child starts without workers and makes new ones when it needs them. A copy
 * that finds the pool busy (another thread's copy, or a copy started from
 * inside a chunk) runs on its calling thread alone.
 *
 * An application with a pool of its own installs a parallel-for instead:
 * the library then never starts a thread, and each large copy calls
 * parallel_for(ctx, n, task, arg) once, with 2 <= n <= 4 *
 * tb_get_num_threads() chunks (so set the thread count to the pool's width;
 * at a count of 1, parallel_for is never called). It must call
 * task(arg, i) exactly once for every i in [0, n), on any threads (the
 * calling one included) and in any order, and return after all have
 * returned. Chunks write disjoint memory and take no locks.
 *
 * See also @ref page_threads.
 * @{
 */

/**
 * One chunk of a parallel copy.
 * @param arg   the `arg` given to tb_parallel_for_fn.
 * @param index the chunk, in [0, n).
 */
typedef void (*tb_task_fn)(void *arg, int64_t index);
/**
 * An application's parallel-for: calls task(arg, i) exactly once for every
 * i in [0, n), on any threads and in any order, and returns after all have
 * returned.
 * @param ctx  the `ctx` given to tb_set_parallel_for().
 * @param n    the number of chunks, 2 <= n <= 4 * tb_get_num_threads().
 * @param task the chunk function.
 * @param arg  its argument.
 */
typedef void (*tb_parallel_for_fn)(void *ctx, int64_t n, tb_task_fn task, void *arg);

/**
 * Sets how many threads large copies use: 1 keeps every copy on the calling
 * thread (and starts no thread), n > 1 allows n (the calling thread
 * included, at most TB_MAX_THREADS), 0 restores the default: the environment
 * variable TB_NUM_THREADS when it holds a number >= 1, else the CPUs this
 * process may run on. TB_ERR_INVALID for n < 0 or n > TB_MAX_THREADS.
 * Thread-safe; copies already running keep their count.
 * @param n the thread count, or 0 for the default.
 * @retval TB_OK          set.
 * @retval TB_ERR_INVALID n < 0 or n > TB_MAX_THREADS.
 */
TB_API tb_status tb_set_num_threads(int32_t n);
/**
 * The number of threads large copies use now (>= 1).
 * @return The count set by tb_set_num_threads(), or the default.
 */
TB_API int32_t tb_get_num_threads(void);
/** The most threads tb_set_num_threads() accepts. */
#define TB_MAX_THREADS 256

/**
 * Installs parallel_for (with ctx, passed back to it) for every later large
 * copy; NULL restores the library's pool. Thread-safe: a copy runs with the
 * parallel-for installed when it started, so ctx must stay valid until the
 * copies started before the next call have returned.
 * @param parallel_for the application's parallel-for, or NULL.
 * @param ctx          passed to parallel_for as its first argument.
 */
TB_API void tb_set_parallel_for(tb_parallel_for_fn parallel_for, void *ctx);

/** @} */

/* ------------------------------------------------------------------------ */
/* Tensors                                                                  */
/* ------------------------------------------------------------------------ */

/**
 * @defgroup tb_tensors Tensors
 * @brief Making tensors, copying them, and reference counting.
 *
 * A tensor is an opaque, reference-counted handle over a storage: shape,
 * strides (in elements), dtype and device in DLPack's own types, and a byte
 * offset. Every function that hands out a tensor returns a new reference,
 * released once with tb_tensor_release(). See @ref page_ownership.
 * @{
 */

/** An opaque, reference-counted tensor handle. */
typedef struct tb_tensor tb_tensor_t;

/** Highest ndim a tensor may have (the same as NumPy 2). */
#define TB_MAX_NDIM 64

/** Flags for tb_from_array: the tensor is read-only. */
#define TB_FLAG_READONLY 1u

/** Memory order for new storage. */
typedef enum tb_order {
  TB_ORDER_C = 0, /**< row-major: the last index varies fastest */
  TB_ORDER_F = 1  /**< column-major: the first index varies fastest */
} tb_order;

/** Flags for casting copies. */
#define TB_CAST_DISCARD_IMAG 1u /**< allow complex -> real by dropping the imaginary part */

/**
 * Called exactly once, when the last reference to memory wrapped by
 * tb_from_array goes away. `data` is the pointer passed to tb_from_array.
 * It may run on any thread: the thread that releases the last reference.
 * @param data the `data` given to tb_from_array().
 * @param ctx  the `ctx` given to tb_from_array().
 */
typedef void (*tb_deleter_fn)(void *data, void *ctx);

/**
 * Shares memory the caller owns, without copying (the torch.from_numpy way):
 * writes through either side are seen by the other.
 * @param data        device pointer / handle of the memory (for CPU, an
 *                    address); may be NULL only when there are no elements
 * @param byte_offset bytes from data to the element at index (0, ..., 0)
 * @param dtype       the element type
 * @param ndim        number of dimensions, 0 .. TB_MAX_NDIM
 * @param shape       ndim extents (>= 0); copied
 * @param strides     ndim element strides, any sign, or NULL for C order; copied
 * @param device      where the memory is; memory the CPU cannot address needs
 *                    a backend with that device present (else TB_ERR_DEVICE)
 * @param flags       TB_FLAG_READONLY or 0
 * @param deleter     called once when the last reference goes; NULL deleter =
 *                    borrowed memory that the caller keeps alive long enough
 * @param ctx         passed to the deleter
 * @param[out] out    the new tensor
 * @return TB_OK, or the status of the first check that fails, with a message.
 * @par Ownership
 * On success *out is a new reference. On failure the deleter is
 * NOT called: the caller keeps ownership of data.
 */
TB_API tb_status tb_from_array(void *data, uint64_t byte_offset, DLDataType dtype,
                               int32_t ndim, const int64_t *shape,
                               const int64_t *strides, DLDevice device,
                               uint32_t flags, tb_deleter_fn deleter, void *ctx,
                               tb_tensor_t **out);

/**
 * Fresh uninitialised storage on `device`, laid out in `order`.
 * @param dtype     the element type
 * @param ndim      number of dimensions, 0 .. TB_MAX_NDIM
 * @param shape     ndim extents (>= 0)
 * @param device    where to allocate (through that device type's backend)
 * @param order     TB_ORDER_C or TB_ORDER_F
 * @param[out] out  the new tensor
 * @return TB_OK; TB_ERR_DEVICE when no backend serves the device or it is not
 *         present, TB_ERR_NOMEM, TB_ERR_OVERFLOW, TB_ERR_INVALID, TB_ERR_DTYPE.
 * @par Ownership
 * Returns a new reference.
 */
TB_API tb_status tb_tensor_empty(DLDataType dtype, int32_t ndim, const int64_t *shape,
                                 DLDevice device, tb_order order, tb_tensor_t **out);
/**
 * As tb_tensor_empty, filled with zero bits (0, 0.0, false).
 * @param dtype     the element type
 * @param ndim      number of dimensions, 0 .. TB_MAX_NDIM
 * @param shape     ndim extents (>= 0)
 * @param device    where to allocate
 * @param order     TB_ORDER_C or TB_ORDER_F
 * @param[out] out  the new tensor
 * @return TB_OK, or tb_tensor_empty()'s statuses.
 * @par Ownership
 * Returns a new reference.
 */
TB_API tb_status tb_tensor_zeros(DLDataType dtype, int32_t ndim, const int64_t *shape,
                                 DLDevice device, tb_order order, tb_tensor_t **out);
/**
 * As tb_tensor_empty, every element set to *value, one element of
 * value_dtype converted to dtype by the casting rules.
 * @param dtype       the element type
 * @param ndim        number of dimensions, 0 .. TB_MAX_NDIM
 * @param shape       ndim extents (>= 0)
 * @param device      where to allocate
 * @param order       TB_ORDER_C or TB_ORDER_F
 * @param value       one element of value_dtype, in host memory
 * @param value_dtype its type
 * @param[out] out    the new tensor
 * @return TB_OK, tb_tensor_empty()'s statuses, or TB_ERR_DTYPE when
 *         value_dtype does not convert to dtype.
 * @par Ownership
 * Returns a new reference.
 */
TB_API tb_status tb_tensor_full(DLDataType dtype, int32_t ndim, const int64_t *shape,
                                DLDevice device, tb_order order, const void *value,
                                DLDataType value_dtype, tb_tensor_t **out);

/**
 * Copies host memory into fresh storage (the torch.tensor way): the result is
 * independent of `data` afterwards. The source is described like
 * tb_from_array's (strides NULL = C order). dtype NULL keeps src_dtype;
 * otherwise each element is converted (cast_flags: TB_CAST_*).
 * @param data       the source elements, in host memory
 * @param src_dtype  their type
 * @param ndim       number of dimensions, 0 .. TB_MAX_NDIM
 * @param shape      ndim extents (>= 0)
 * @param strides    ndim element strides, or NULL for C order
 * @param dtype      the result's type, or NULL for src_dtype
 * @param order      the result's layout, TB_ORDER_C or TB_ORDER_F
 * @param cast_flags TB_CAST_* or 0
 * @param[out] out   the new CPU tensor
 * @return TB_OK, or the status of the failed check or copy.
 * @par Ownership
 * Borrows data for the duration of the call. Returns a new
 * reference.
 */
TB_API tb_status tb_tensor_new(const void *data, DLDataType src_dtype, int32_t ndim,
                               const int64_t *shape, const int64_t *strides,
                               const DLDataType *dtype, tb_order order,
                               uint32_t cast_flags, tb_tensor_t **out);

/**
 * Copies a tensor into fresh storage on its own device, in `order`,
 * converting to *dtype when dtype is not NULL (tb_tensor_to copies to another
 * device). The result is writable.
 * @param src        the tensor to copy
 * @param dtype      the result's type, or NULL for src's
 * @param order      the result's layout, TB_ORDER_C or TB_ORDER_F
 * @param cast_flags TB_CAST_* or 0
 * @param[out] out   the copy
 * @return TB_OK, or the status of the failed allocation or copy.
 * @par Ownership
 * Borrows src. Returns a new reference.
 */
TB_API tb_status tb_tensor_copy(const tb_tensor_t *src, const DLDataType *dtype,
                                tb_order order, uint32_t cast_flags, tb_tensor_t **out);

/**
 * Copies src's elements into dst (same shape, any layouts and dtypes),
 * converting each. Overlapping memory is handled as if through a temporary.
 * TB_ERR_READONLY when dst is read-only.
 * @param dst        the destination, written
 * @param src        the source
 * @param cast_flags TB_CAST_* or 0
 * @return TB_OK; TB_ERR_READONLY, TB_ERR_INVALID (NULL, different ndim or
 *         shape, unknown flags), or the copy's status.
 * @par Ownership
 * Borrows dst and src.
 */
TB_API tb_status tb_tensor_copy_into(tb_tensor_t *dst, const tb_tensor_t *src,
                                     uint32_t cast_flags);

/**
 * Sets every element of t to *value (one element of value_dtype, cast).
 * @param t           the tensor, written
 * @param value       one element of value_dtype, in host memory
 * @param value_dtype its type
 * @return TB_OK; TB_ERR_READONLY when t is read-only, TB_ERR_INVALID for
 *         NULL, or the copy's status.
 * @par Ownership
 * Borrows t.
 */
TB_API tb_status tb_tensor_fill(tb_tensor_t *t, const void *value, DLDataType value_dtype);

/**
 * Reference counting; atomic, safe from any thread. retain returns t.
 * @param t a tensor, or NULL (then nothing happens).
 * @return t.
 * @par Ownership
 * Returns a new reference: t itself, with one more reference to
 * release with tb_tensor_release().
 */
TB_API tb_tensor_t *tb_tensor_retain(tb_tensor_t *t);
/**
 * Drops one reference; NULL is accepted and ignored. The last reference to
 * a storage frees it (or runs the deleter given to tb_from_array()), on the
 * calling thread.
 * @param t a tensor, or NULL.
 * @par Ownership
 * Steals one reference: the caller must not use t through it
 * afterwards.
 */
TB_API void tb_tensor_release(tb_tensor_t *t);

/** @} */

/* ---- Queries (borrow t; never fail on a valid handle) ---- */

/**
 * @defgroup tb_queries Tensor queries
 * @ingroup tb_tensors
 * @brief Reading a tensor's fields.
 *
 * Each query borrows t and never fails on a valid handle; t must not be NULL.
 * @{
 */

/**
 * The number of dimensions.
 * @param t a valid tensor
 * @return ndim, 0 .. TB_MAX_NDIM.
 * @par Ownership
 * Borrows t.
 */
TB_API int32_t tb_tensor_ndim(const tb_tensor_t *t);
/**
 * The shape: an array of ndim values owned by t, valid while t lives.
 * @param t a valid tensor
 * @return The extents.
 * @par Ownership
 * Borrows t.
 */
TB_API const int64_t *tb_tensor_shape(const tb_tensor_t *t);
/**
 * The strides in elements: an array of ndim values owned by t, valid while t
 * lives.
 * @param t a valid tensor
 * @return The strides, always set.
 * @par Ownership
 * Borrows t.
 */
TB_API const int64_t *tb_tensor_strides(const tb_tensor_t *t);
/**
 * The element type.
 * @param t a valid tensor
 * @return The dtype.
 * @par Ownership
 * Borrows t.
 */
TB_API DLDataType tb_tensor_dtype(const tb_tensor_t *t);
/**
 * The device the memory is on.
 * @param t a valid tensor
 * @return The device.
 * @par Ownership
 * Borrows t.
 */
TB_API DLDevice tb_tensor_device(const tb_tensor_t *t);
/**
 * tb_tensor_dtype() for FFIs that cannot take small structs by value.
 * @param t        a valid tensor
 * @param[out] out the dtype
 * @par Ownership
 * Borrows t.
 */
TB_API void tb_tensor_dtype_p(const tb_tensor_t *t, DLDataType *out);
/**
 * tb_tensor_device() for FFIs that cannot take small structs by value.
 * @param t        a valid tensor
 * @param[out] out the device
 * @par Ownership
 * Borrows t.
 */
TB_API void tb_tensor_device_p(const tb_tensor_t *t, DLDevice *out);
/**
 * The storage's base pointer or handle, as in DLTensor; the element at
 * index (0, ..., 0) lies tb_tensor_byte_offset() bytes from it.
 * @param t a valid tensor
 * @return DLTensor's data.
 * @par Ownership
 * Borrows t.
 */
TB_API void *tb_tensor_base(const tb_tensor_t *t);
/**
 * The byte offset of the element at index (0, ..., 0) from
 * tb_tensor_base(), as in DLTensor.
 * @param t a valid tensor
 * @return DLTensor's byte_offset.
 * @par Ownership
 * Borrows t.
 */
TB_API uint64_t tb_tensor_byte_offset(const tb_tensor_t *t);
/**
 * Address of the element at index (0, ..., 0) for host-accessible devices
 * (CPU, CUDA host, CUDA managed, ROCm host); NULL for other devices.
 * @param t a valid tensor
 * @return The address, or NULL. A tensor without elements may have either
 *         (tb_tensor_empty() of no elements allocates nothing; an empty
 *         slice keeps its source's address): test tb_tensor_numel(), not
 *         this pointer.
 * @par Ownership
 * Borrows t; the memory stays valid while t lives.
 */
TB_API void *tb_tensor_data(const tb_tensor_t *t);
/**
 * The number of elements: the product of the extents (1 for ndim 0).
 * @param t a valid tensor
 * @return numel.
 * @par Ownership
 * Borrows t.
 */
TB_API int64_t tb_tensor_numel(const tb_tensor_t *t);
/**
 * numel * itemsize (packed sub-byte dtypes: rounded up to whole bytes).
 * @param t a valid tensor
 * @return The byte size of the elements.
 * @par Ownership
 * Borrows t.
 */
TB_API int64_t tb_tensor_nbytes(const tb_tensor_t *t);
/**
 * Whether the strides are the dense ones of `order`, as NumPy decides it:
 * extents of 1 may have any stride, and a tensor without elements is
 * contiguous in both orders.
 * @param t     a valid tensor
 * @param order TB_ORDER_C or TB_ORDER_F
 * @return True when t is contiguous in that order.
 * @par Ownership
 * Borrows t.
 */
TB_API bool tb_tensor_is_contiguous(const tb_tensor_t *t, tb_order order);
/**
 * Whether the library refuses writes through t (TB_FLAG_READONLY, a
 * read-only import or mapping, a tb_tensor_expand() result).
 * @param t a valid tensor
 * @return True when t is read-only.
 * @par Ownership
 * Borrows t.
 */
TB_API bool tb_tensor_is_readonly(const tb_tensor_t *t);
/**
 * True when a and b view the same storage (one made from the other by a
 * view, or both wrapping the same tb_from_array call).
 * @param a a valid tensor
 * @param b a valid tensor
 * @return Whether they share storage.
 * @par Ownership
 * Borrows a and b.
 */
TB_API bool tb_tensor_shares_storage(const tb_tensor_t *a, const tb_tensor_t *b);
/**
 * Every field in one standard struct, without copying: data is the storage
 * base, byte_offset the offset of element (0, ..., 0), strides always set.
 * Owned by t; valid while t lives. Do not write through it.
 * @param t a valid tensor
 * @return t's own DLTensor.
 * @par Ownership
 * Borrows t.
 */
TB_API const DLTensor *tb_tensor_dltensor(const tb_tensor_t *t);
/**
 * Address of the element at index[0..ndim) on a host-accessible device,
 * bounds-checked.
 * @param t        the tensor
 * @param index    ndim indices, each in [0, extent) (NULL allowed for ndim 0)
 * @param[out] out the element's address
 * @retval TB_OK          *out is set.
 * @retval TB_ERR_INDEX   an index is outside [0, extent).
 * @retval TB_ERR_DEVICE  the device is not host-accessible.
 * @retval TB_ERR_DTYPE   the dtype is packed (sub-byte).
 * @retval TB_ERR_INVALID a NULL argument.
 * @par Ownership
 * Borrows t; *out is valid while t lives.
 */
TB_API tb_status tb_tensor_element_ptr(const tb_tensor_t *t, const int64_t *index,
                                       void **out);

/** @} */

/* ---- Devices ---- */

/**
 * @defgroup tb_devices Devices
 * @brief Which devices are present, and copies between them.
 *
 * Device types are DLPack's (the TB_DL_* constants of dlpack_abi.h); each is
 * served by a backend (see @ref tb_backends): the CPU one is built in; CUDA
 * and OpenCL register themselves when the library was built with them and
 * their drivers load.
 * @{
 */

/**
 * Number of devices of a type present now: 0 when the type has no backend in
 * this build or its driver found none (never an error).
 * @param device_type a DLPack device type (TB_DL_CPU, TB_DL_CUDA, ...)
 * @return The count, >= 0.
 */
TB_API int32_t tb_device_count(int32_t device_type);
/**
 * tb_device_count(device_type) > 0: pick CUDA when present, CPU otherwise.
 * @param device_type a DLPack device type
 * @return Whether at least one such device is present.
 */
TB_API bool tb_device_available(int32_t device_type);
/**
 * A static name for a device type ("cpu", "cuda", "opencl", ...), or
 * "unknown".
 * @param device_type a DLPack device type
 * @return The name, never NULL.
 */
TB_API const char *tb_device_type_name(int32_t device_type);

/**
 * Copies a tensor to `device` (the .to(device) of frameworks), converting to
 * *dtype when dtype is not NULL, into fresh `order`-contiguous storage.
 * Strided sources are copied without a host round trip where the backend can.
 * Always copies, even to the same device.
 * @param src        the tensor to copy
 * @param device     the destination device
 * @param dtype      the result's type, or NULL for src's
 * @param order      the result's layout, TB_ORDER_C or TB_ORDER_F
 * @param cast_flags TB_CAST_* or 0
 * @param[out] out   the copy
 * @return TB_OK, or the status of the failed allocation or copy.
 * @par Ownership
 * Borrows src. Returns a new reference.
 */
TB_API tb_status tb_tensor_to(const tb_tensor_t *src, DLDevice device, const DLDataType *dtype,
                              tb_order order, uint32_t cast_flags, tb_tensor_t **out);

/** @} */

/* ------------------------------------------------------------------------ */
/* Views: share storage and keep it alive; each returns a new reference     */
/* ------------------------------------------------------------------------ */
/* Dimensions may be negative and then count from the end (-1 = last).      */

/**
 * @defgroup tb_views Views
 * @brief New shapes and strides over the same storage.
 *
 * Views share storage and keep it alive: the source may be released before
 * its views. Each returns a new reference, and keeps the source's read-only
 * flag. Dimensions may be negative and then count from the end (-1 = last).
 * Views need addressable elements: a packed sub-byte source (float6, float4)
 * gets TB_ERR_DTYPE. Out-of-range dimensions get TB_ERR_INDEX.
 * @{
 */

/**
 * Python's slicing on one dimension: start/stop count from the end when
 * negative and are clamped to the extent; step != 0, negative walks
 * backwards. Pass INT64_MIN / INT64_MAX for an open start or stop
 * (x[::-1] is start = INT64_MAX, stop = INT64_MIN, step = -1).
 * @param src      the source
 * @param dim      the dimension to slice
 * @param start    the first index
 * @param stop     the index where the slice stops (excluded)
 * @param step     the step, not 0
 * @param[out] out the view
 * @return TB_OK; TB_ERR_INVALID for step 0 or a NULL argument.
 * @par Ownership
 * Borrows src. Returns a new reference.
 */
TB_API tb_status tb_tensor_slice(const tb_tensor_t *src, int32_t dim, int64_t start,
                                 int64_t stop, int64_t step, tb_tensor_t **out);
/**
 * Picks one index of a dimension and drops that dimension (x[i]).
 * @param src      the source
 * @param dim      the dimension
 * @param index    the index, negative counting from the end
 * @param[out] out the view, with ndim - 1 dimensions
 * @return TB_OK; TB_ERR_INDEX for an index out of range.
 * @par Ownership
 * Borrows src. Returns a new reference.
 */
TB_API tb_status tb_tensor_select(const tb_tensor_t *src, int32_t dim, int64_t index,
                                  tb_tensor_t **out);
/**
 * Reorders dimensions: result dim i is src dim perm[i].
 * @param src      the source
 * @param perm     ndim dimensions, each once
 * @param[out] out the view
 * @return TB_OK; TB_ERR_INDEX for an entry out of range, TB_ERR_INVALID for a
 *         repeated one.
 * @par Ownership
 * Borrows src. Returns a new reference.
 */
TB_API tb_status tb_tensor_permute(const tb_tensor_t *src, const int32_t *perm,
                                   tb_tensor_t **out);
/**
 * Swaps two dimensions.
 * @param src      the source
 * @param dim0     one dimension
 * @param dim1     the other
 * @param[out] out the view
 * @return TB_OK; TB_ERR_INDEX for a dimension out of range.
 * @par Ownership
 * Borrows src. Returns a new reference.
 */
TB_API tb_status tb_tensor_transpose(const tb_tensor_t *src, int32_t dim0, int32_t dim1,
                                     tb_tensor_t **out);
/**
 * A view with a new shape and the same elements in C order. One extent may be
 * -1 (inferred). TB_ERR_LAYOUT when the strides cannot express it without a
 * copy; tb_tensor_contiguous() first, then reshape, always works.
 * @param src      the source
 * @param ndim     the new number of dimensions
 * @param shape    ndim extents, one of them possibly -1
 * @param[out] out the view
 * @return TB_OK; TB_ERR_LAYOUT as above, TB_ERR_INVALID when the element
 *         count differs.
 * @par Ownership
 * Borrows src. Returns a new reference.
 */
TB_API tb_status tb_tensor_reshape(const tb_tensor_t *src, int32_t ndim,
                                   const int64_t *shape, tb_tensor_t **out);
/**
 * src itself (a new reference) when already contiguous in `order`, else a
 * copy in that order.
 * @param src      the source
 * @param order    TB_ORDER_C or TB_ORDER_F
 * @param[out] out src, or the copy
 * @return TB_OK, or the copy's status.
 * @par Ownership
 * Borrows src. Returns a new reference (to src itself or to a copy).
 */
TB_API tb_status tb_tensor_contiguous(const tb_tensor_t *src, tb_order order,
                                      tb_tensor_t **out);
/**
 * Removes dimension dim, which must have extent 1.
 * @param src      the source
 * @param dim      the dimension
 * @param[out] out the view
 * @return TB_OK; TB_ERR_INVALID when the extent is not 1.
 * @par Ownership
 * Borrows src. Returns a new reference.
 */
TB_API tb_status tb_tensor_squeeze(const tb_tensor_t *src, int32_t dim, tb_tensor_t **out);
/**
 * Removes every dimension of extent 1.
 * @param src      the source
 * @param[out] out the view
 * @return TB_OK, or TB_ERR_INVALID / TB_ERR_DTYPE as for every view.
 * @par Ownership
 * Borrows src. Returns a new reference.
 */
TB_API tb_status tb_tensor_squeeze_all(const tb_tensor_t *src, tb_tensor_t **out);
/**
 * Inserts a dimension of extent 1 before dim (dim in [-(ndim+1), ndim]).
 * @param src      the source, with fewer than TB_MAX_NDIM dimensions
 * @param dim      where the new dimension goes
 * @param[out] out the view
 * @return TB_OK; TB_ERR_INDEX for dim out of range, TB_ERR_INVALID at
 *         TB_MAX_NDIM dimensions.
 * @par Ownership
 * Borrows src. Returns a new reference.
 */
TB_API tb_status tb_tensor_unsqueeze(const tb_tensor_t *src, int32_t dim, tb_tensor_t **out);
/**
 * Broadcasts to `shape` (NumPy's broadcast_to): new leading dimensions and
 * extents of 1 grow with stride 0; -1 keeps an extent. The result is
 * read-only, because its elements alias each other.
 * @param src      the source
 * @param ndim     the new number of dimensions, at least src's
 * @param shape    ndim extents
 * @param[out] out the read-only view
 * @return TB_OK; TB_ERR_INVALID for a shape src does not broadcast to,
 *         TB_ERR_OVERFLOW when its size overflows.
 * @par Ownership
 * Borrows src. Returns a new reference.
 */
TB_API tb_status tb_tensor_expand(const tb_tensor_t *src, int32_t ndim, const int64_t *shape,
                                  tb_tensor_t **out);
/**
 * The same bytes read as another dtype of the same element size (torch's
 * Tensor.view(dtype), NumPy's ndarray.view(dtype)): shape, strides, byte
 * offset, device and read-only flag are src's. TB_ERR_DTYPE when the sizes
 * differ, when either dtype is packed (sub-byte), and for a bool view of a
 * non-bool source (its bytes need not be 0 or 1).
 * @param src      the source
 * @param dtype    the new element type
 * @param[out] out the view
 * @return TB_OK or TB_ERR_DTYPE as above.
 * @par Ownership
 * Borrows src. Returns a new reference.
 */
TB_API tb_status tb_tensor_view_as(const tb_tensor_t *src, DLDataType dtype, tb_tensor_t **out);

/** @} */


/* ------------------------------------------------------------------------ */
/* DLPack export and import (DLPack 1.3 and the legacy struct)              */
/* ------------------------------------------------------------------------ */

/**
 * @defgroup tb_dlpack DLPack interchange
 * @brief Export to and import from DLPack consumers and producers (DLPack
 * 1.3 and the legacy struct).
 *
 * See @ref page_dlpack for how ownership passes in each direction.
 * @{
 */

/** Whether an operation may copy: the tri-state of the Python protocol's
 * `copy` argument. */
typedef enum tb_copy_mode {
  TB_COPY_IF_NEEDED = 0, /**< share when possible, copy when the request needs it */
  TB_COPY_ALWAYS = 1,    /**< always hand out fresh memory */
  TB_COPY_NEVER = 2      /**< share or fail with TB_ERR_COPY_REQUIRED */
} tb_copy_mode;

/** Layouts an export or import may ask for. */
typedef enum tb_layout {
  TB_LAYOUT_ANY = 0, /**< whatever strides the tensor has */
  TB_LAYOUT_C = 1,   /**< C-contiguous */
  TB_LAYOUT_F = 2    /**< Fortran-contiguous */
} tb_layout;

/** Export options; a NULL pointer means all defaults (zero-initialise and set
 * what you need). */
typedef struct tb_export_options {
  const DLDataType *dtype; /**< NULL: keep the tensor's dtype; else convert (a copy) */
  tb_layout layout;        /**< TB_LAYOUT_ANY by default */
  tb_copy_mode copy;       /**< TB_COPY_IF_NEEDED by default */
  uint32_t flags;          /**< TB_EXPORT_* */
  /**
   * The consumer's stream, as in DLPack's Python protocol: 0 = not given,
   * -1 = do not synchronize, 1 = the legacy default stream, 2 = the
   * per-thread default stream, other values a stream handle of the device's
   * kind (a cudaStream_t). For a device tensor the export makes that stream
   * wait for the library's pending work on the tensor (an event, no host
   * wait). CPU tensors accept only 0 and -1; pinned and managed memory
   * (kDLCUDAHost, kDLCUDAManaged) take streams like device memory.
   */
  intptr_t stream;
} tb_export_options;

/** Legacy structs cannot say "read-only". A read-only tensor is exported as a
 * legacy struct only with this flag (the caller accepts that a consumer may
 * write), or as a copy with TB_COPY_ALWAYS; otherwise TB_ERR_READONLY. */
#define TB_EXPORT_ALLOW_READONLY_LEGACY 1u

/**
 * Hands a tensor to a DLPack consumer. *out is one allocation holding the
 * struct, shape and strides, and keeps the tensor's storage alive until the
 * consumer calls out->deleter(out) (once, on any thread). Strides are always
 * set; byte_offset is 0 and data points at the element at index 0 where the
 * device's data is an address (a handle device such as OpenCL keeps
 * byte_offset); data is NULL when there are no elements. flags carry
 * DLPACK_FLAG_BITMASK_READ_ONLY for read-only tensors and
 * DLPACK_FLAG_BITMASK_IS_COPIED when this export made a copy. Borrows t.
 * @param t         the tensor to export
 * @param options   the export options, or NULL for the defaults
 * @param[out] out  the managed struct, for the consumer
 * @return TB_OK; TB_ERR_COPY_REQUIRED when the options need a copy and
 *         forbid it, TB_ERR_INVALID for bad options or a stream a CPU tensor
 *         cannot take, TB_ERR_NOMEM, or the copy's status.
 * @par Ownership
 * Borrows t: it may be released at once, since *out holds its own
 * reference. The caller owns *out until it (or the consumer it is handed to)
 * calls out->deleter(out) once.
 */
TB_API tb_status tb_to_dlpack_versioned(const tb_tensor_t *t, const tb_export_options *options,
                                        DLManagedTensorVersioned **out);
/**
 * The same as a legacy DLManagedTensor (no version, no flags).
 * @param t         the tensor to export
 * @param options   the export options, or NULL for the defaults
 * @param[out] out  the managed struct, for the consumer
 * @return As tb_to_dlpack_versioned(), and TB_ERR_READONLY for a read-only
 *         tensor without TB_EXPORT_ALLOW_READONLY_LEGACY or a copy.
 * @par Ownership
 * Borrows t. The caller owns *out until out->deleter(out) is
 * called once.
 */
TB_API tb_status tb_to_dlpack(const tb_tensor_t *t, const tb_export_options *options,
                              DLManagedTensor **out);

/** Import options; NULL means all defaults. */
typedef struct tb_import_options {
  const DLDevice *device;  /**< NULL: stay on the producer's device */
  const DLDataType *dtype; /**< NULL: keep the producer's dtype */
  tb_layout layout;        /**< required layout, TB_LAYOUT_ANY by default */
  uint32_t alignment;      /**< required data alignment in bytes (power of two), 0: none;
                              above TB_DATA_ALIGNMENT only with TB_COPY_NEVER (a copy could
                              not promise it): TB_ERR_UNSUPPORTED otherwise */
  tb_copy_mode copy;       /**< how requirements may be met; TB_COPY_IF_NEEDED by default */
  uint32_t flags;          /**< TB_IMPORT_* */
} tb_import_options;

/** The result must be writable: a read-only producer tensor is copied (or
 * refused with TB_COPY_NEVER). */
#define TB_IMPORT_REQUIRE_WRITABLE 1u
/** On any failure leave ownership with the caller: the producer's deleter is
 * not called (a Python consumer must leave a refused capsule unconsumed). On
 * success the import owns the struct as usual. */
#define TB_IMPORT_KEEP_ON_ERROR 2u

/**
 * Takes ownership of a producer's tensor and returns a tensor sharing its
 * memory (or a copy, when the options ask for one). Steals `managed` on every
 * path (unless options->flags has TB_IMPORT_KEEP_ON_ERROR, which keeps a
 * refused struct with the caller): its deleter runs exactly once, when the
 * last reference to the imported memory goes, or before this function
 * returns when the import is refused or a copy was made. Every field is
 * validated first (version, ndim, shape, strides, dtype, flags, device, data,
 * extent), each failure with its own status and a message naming the field
 * and value. A major version other
 * than 1 gets TB_ERR_VERSION and only the deleter is touched; flag bits other
 * than READ_ONLY and IS_COPIED (IS_SUBBYTE_TYPE_PADDED included: only packed
 * sub-byte data is supported) get TB_ERR_UNSUPPORTED. READ_ONLY gives a
 * read-only tensor. NULL strides mean C order for minor versions below 2.
 * @param managed  the producer's struct
 * @param options  the import options, or NULL for the defaults
 * @param[out] out the imported tensor
 * @return TB_OK; TB_ERR_VERSION, TB_ERR_UNSUPPORTED as above,
 *         TB_ERR_COPY_REQUIRED when the options need a copy and forbid it,
 *         or the status of the failed check or copy.
 * @par Ownership
 * Steals managed (see above; a NULL managed is TB_ERR_INVALID).
 * On success *out is a new reference.
 */
TB_API tb_status tb_from_dlpack_versioned(DLManagedTensorVersioned *managed,
                                          const tb_import_options *options, tb_tensor_t **out);
/**
 * The same for the legacy struct (NULL strides always mean C order).
 * @param managed  the producer's struct
 * @param options  the import options, or NULL for the defaults
 * @param[out] out the imported tensor
 * @return As tb_from_dlpack_versioned() (there is no version to check).
 * @par Ownership
 * Steals managed, as tb_from_dlpack_versioned() does. On success
 * *out is a new reference.
 */
TB_API tb_status tb_from_dlpack(DLManagedTensor *managed, const tb_import_options *options,
                                tb_tensor_t **out);
/**
 * Borrows a bare DLTensor: no ownership, the caller guarantees the memory
 * outlives every tensor made from it (when the options make the import a
 * copy, the memory is needed during the call only). flags:
 * TB_FLAG_READONLY or 0.
 * @param tensor   the struct; read during the call only
 * @param flags    TB_FLAG_READONLY or 0
 * @param options  the import options, or NULL for the defaults
 * @param[out] out the tensor over the same memory (or a copy, when the
 *                 options ask for one)
 * @return As tb_from_dlpack_versioned().
 * @par Ownership
 * Borrows tensor and its memory. On success *out is a new
 * reference.
 */
TB_API tb_status tb_from_dltensor(const DLTensor *tensor, uint32_t flags,
                                  const tb_import_options *options, tb_tensor_t **out);

/** @} */

/* ------------------------------------------------------------------------ */
/* Files and processes                                                      */
/* ------------------------------------------------------------------------ */

/**
 * @defgroup tb_files Files
 * @brief Tensors mapped from .npy and safetensors files, and saved to them.
 *
 * See @ref page_files.
 * @{
 */

/**
 * How a file is mapped (numpy.load's mmap_mode): READ shares the page cache
 * read-only ('r', the tensor is read-only); COPY is copy-on-write, writes
 * stay in this process ('c'); WRITE shares writes with the file ('r+').
 */
typedef enum tb_map_mode {
  TB_MAP_READ = 0,  /**< 'r': read-only, sharing the page cache */
  TB_MAP_COPY = 1,  /**< 'c': copy-on-write, writes stay in this process */
  TB_MAP_WRITE = 2  /**< 'r+': writes reach the file */
} tb_map_mode;

/** @} */

#ifdef __cplusplus
}
#endif

/* .npy files, safetensors files, tensors in shared memory. */
#include "tensorbridge/npy.h"
#include "tensorbridge/safetensors.h"
#include "tensorbridge/shm.h"

#endif /* TENSORBRIDGE_H */
