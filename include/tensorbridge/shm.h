/**
 * @file
 * @brief Tensors in shared memory (included by tensorbridge/tensorbridge.h).
 *
 * A shared tensor lives in a block of memory that is a file descriptor: an
 * anonymous memfd on Linux (memfd_create, sealed once sized against
 * shrinking, growing and further seals), else a POSIX shared-memory object
 * (shm_open under a random name that is shm_unlink'ed straight after it is
 * opened, so that nothing is ever left in /dev/shm, not even by a process
 * that is killed).
 * Another process attaches to it without copying: it receives the
 * descriptor (inherited across fork, or passed over a Unix socket with
 * SCM_RIGHTS) and a small handle, a byte string describing the tensor,
 * and maps the same pages. Writes are seen in every process that maps the
 * block. This is what torch.multiprocessing does with share_memory_() and
 * its "file_descriptor" strategy.
 *
 * Each tb_shm_empty, tb_shm_share copy and attach makes one storage: a
 * mapping and a descriptor of its own, unmapped and closed when the last
 * tensor over that storage (views included) is released. The memory itself
 * goes when no process maps it and no descriptor to it is open (one in
 * flight in a socket counts).
 *
 * The environment variable TB_SHM_KIND picks how new blocks are made:
 * "shm_open" uses the POSIX object even where memfd_create exists (the
 * tests run both), "memfd" or unset the memfd where this build and kernel
 * have it. It is read at each tb_shm_empty / tb_shm_share.
 *
 * CUDA device memory (kDLCUDA) is shared by CUDA IPC instead, with the same
 * calls: its handle (version 2, below) carries the allocation's
 * CUipcMemHandle and no descriptor, and tb_shm_attach in another process
 * opens it (cuIpcOpenMemHandle) as a kDLCUDA tensor over the same device
 * memory; the mapping is closed (cuIpcCloseMemHandle) when the last tensor
 * over it is released. Shared ("IPC-capable") CUDA tensors are those whose
 * memory the library allocated (tb_tensor_empty and every constructor on
 * kDLCUDA, tb_tensor_to, tb_shm_share: cuMemAlloc) and those attached, views
 * of either included, while the driver exports the IPC entry points; never
 * wrapped memory (tb_from_array, DLPack imports), which may be a piece of a
 * caching allocator's block or memory that legacy CUDA IPC refuses. Without
 * the IPC entry points in the driver, or in a build without the CUDA
 * backend, CUDA memory gets TB_ERR_UNSUPPORTED; other device memory always
 * TB_ERR_DEVICE.
 *
 * The CUDA driver's rules apply: a CUDA handle opens only in a process
 * other than the one that made it (there, use the tensor itself: attaching
 * is refused with TB_ERR_INVALID); a process that has initialised CUDA must
 * not hand its CUDA state to a child by fork() (start the other process
 * with exec, or fork before any CUDA call); the exporting process keeps the
 * tensor alive while others have it attached (freeing memory that another
 * process has open is undefined in CUDA). Writes on one side are seen on the
 * other once the writer's work is done: a copy from the host into device
 * memory returns when done; a device-to-device copy returns with its work
 * queued (README "Devices"), so the writer waits for it (a copy of the
 * result to the host does, or its own stream synchronisation) before it
 * tells the other process.
 *
 * See @ref page_shm.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef TENSORBRIDGE_SHM_H
#define TENSORBRIDGE_SHM_H

#include "tensorbridge/tensorbridge.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @defgroup tb_shm Shared memory
 * @brief Tensors in memory that other processes map too: memfd or POSIX
 * shared memory for host memory, CUDA IPC for CUDA device memory.
 *
 * A shared tensor lives in a block of memory that is a file descriptor (a
 * memfd on Linux, else a POSIX shared-memory object unlinked at once).
 * Another process attaches to it without copying: it receives the
 * descriptor (inherited across fork, or passed over a Unix socket with
 * tb_shm_send() / tb_shm_recv()) and a small handle describing the tensor,
 * and maps the same pages. CUDA device memory is shared by CUDA IPC with the
 * same calls; its handle carries no descriptor. shm.h gives every rule, and
 * @ref page_shm an overview.
 * @{
 */

/**
 * A fresh C-order CPU tensor in a new shared block, filled with zero bits
 * (the pages of a new block are zero). The block is exactly the tensor's
 * bytes (0 for a size-0 tensor: a descriptor, no mapping, data NULL).
 * Returns a new reference. TB_ERR_IO (with the system's reason) when the
 * block cannot be made, sized or mapped.
 * @param dtype    the element type
 * @param ndim     number of dimensions, 0 .. TB_MAX_NDIM
 * @param shape    ndim extents (>= 0)
 * @param[out] out the new shared tensor
 * @return TB_OK; TB_ERR_IO as above, or tb_tensor_empty()'s statuses.
 * @par Ownership
 * Returns a new reference.
 */
TB_API tb_status tb_shm_empty(DLDataType dtype, int32_t ndim, const int64_t *shape,
                              tb_tensor_t **out);

/**
 * The tensor in shared memory, as torch's share_memory_() (but not in
 * place): when t is already shared (tb_tensor_is_shared), *out is t itself,
 * a new reference to it; otherwise a copy of t's elements into a fresh
 * C-order shared block (tb_shm_empty), writable like every copy, whose
 * writes are not seen by t. Borrows t; returns a new reference.
 * Host-addressable memory (CPU, CUDA pinned and managed, ROCm host) is
 * copied to a CPU tensor. CUDA device memory that is already IPC-capable
 * (see the top of this file) is t itself; wrapped CUDA memory is copied
 * into fresh device memory of the library's on the same device (C order),
 * which is. CUDA without the driver's IPC entry points, in a build
 * without the CUDA backend, or under a kDLCUDA backend the application
 * registered in place of the built-in one (whose memory CUDA IPC cannot
 * take), gets TB_ERR_UNSUPPORTED; other devices TB_ERR_DEVICE.
 * @param t        the tensor to share
 * @param[out] out t itself, or its shared copy
 * @return TB_OK; TB_ERR_UNSUPPORTED, TB_ERR_DEVICE as above, TB_ERR_INVALID
 *         for a NULL argument, or tb_shm_empty()'s statuses.
 * @par Ownership
 * Borrows t. Returns a new reference (to t itself or to a copy).
 */
TB_API tb_status tb_shm_share(const tb_tensor_t *t, tb_tensor_t **out);

/**
 * True when t's storage is a shared block (made by tb_shm_empty or
 * tb_shm_share, or attached with tb_shm_attach / tb_shm_recv), or is CUDA
 * device memory CUDA IPC can share (allocated by the library or attached,
 * see the top of this file), views included; false for NULL and for every
 * other tensor. Borrows t.
 * @param t a tensor, or NULL
 * @return True for a shared tensor (as above), else false.
 * @par Ownership
 * Borrows t.
 */
TB_API bool tb_tensor_is_shared(const tb_tensor_t *t);

/**
 * @name Handles
 * The handle: a self-describing byte string, all integers little-endian.
 *
 * @code{.unparsed}
 *   offset  size      field
 *        0     4      magic "TBSM" (0x54 0x42 0x53 0x4D)
 *        4     2      version, 1
 *        6     2      ndim, 0..TB_MAX_NDIM
 *        8     1      dtype code (DLDataTypeCode)
 *        9     1      dtype bits
 *       10     2      dtype lanes, 1
 *       12     4      flags: TB_FLAG_READONLY or 0
 *       16     8      block_size: bytes of the shared block
 *       24     8      byte_offset: bytes from the block's first byte to the
 *                     element at index (0, ..., 0)
 *       32  8*ndim    shape, int64
 *  32+8*ndim 8*ndim   strides in elements, int64 (any sign)
 * @endcode
 *
 * Its length is TB_SHM_HANDLE_SIZE(ndim) exactly: 32 + 16 * ndim bytes. Only
 * the descriptor carries the memory; the handle says which part of it the
 * tensor is.
 *
 * A CUDA tensor's handle is version 2: the same first 32 bytes (block_size
 * is then the bytes of the CUDA allocation, byte_offset counts from its
 * base), then
 *
 * @code{.unparsed}
 *       32     4      device_type: kDLCUDA (2)
 *       36     4      device_id, 0..INT32_MAX
 *       40    64      CUipcMemHandle of the allocation (cuIpcGetMemHandle
 *                     of its base), opaque; all zero when block_size is 0
 *                     (an empty tensor: nothing to open)
 *      104  8*ndim    shape, int64
 * 104+8*ndim 8*ndim   strides in elements, int64 (any sign)
 * @endcode
 *
 * of length TB_SHM_CUDA_HANDLE_SIZE(ndim): 104 + 16 * ndim bytes. Version 1
 * handles are written and read as before. Every handle is at most
 * TB_SHM_HANDLE_MAX bytes.
 * @{
 */
/** The version of a host handle (a descriptor and a byte string). */
#define TB_SHM_HANDLE_VERSION 1
/** The version of a CUDA IPC handle (a byte string alone). */
#define TB_SHM_HANDLE_VERSION_CUDA 2
/** The length of a version 1 handle, in bytes: 32 + 16 * ndim.
 * @param ndim the tensor's number of dimensions */
#define TB_SHM_HANDLE_SIZE(ndim) (32 + 16 * (size_t)(ndim))
/** The length of a version 2 (CUDA) handle, in bytes: 104 + 16 * ndim.
 * @param ndim the tensor's number of dimensions */
#define TB_SHM_CUDA_HANDLE_SIZE(ndim) (104 + 16 * (size_t)(ndim))
/** The longest handle, in bytes: a buffer this large holds any handle. */
#define TB_SHM_HANDLE_MAX TB_SHM_CUDA_HANDLE_SIZE(TB_MAX_NDIM)
/** @} */

/**
 * Writes t's handle into buf (capacity bytes; TB_SHM_HANDLE_MAX always
 * suffices), its length to *len and the block's descriptor to *fd. The
 * descriptor is borrowed: it stays owned by t's storage and valid while t
 * or any tensor sharing its storage lives; send it (or dup it), never close
 * it. A CUDA tensor's handle (version 2) has no descriptor: *fd = -1; its
 * bytes alone name the memory, while t (or a tensor sharing its storage)
 * lives in this process. Borrows t. TB_ERR_INVALID when t is not shared
 * (tb_shm_share it first) or capacity is smaller than the handle (the
 * message gives its size); TB_ERR_UNSUPPORTED for CUDA memory without CUDA
 * IPC (see the top of this file), TB_ERR_DEVICE for other device memory; a
 * failing cuIpcGetMemHandle gives TB_ERR_DEVICE with the driver's error.
 * @param t         a shared tensor
 * @param buf       receives the handle
 * @param capacity  buf's size in bytes
 * @param[out] len  the handle's length
 * @param[out] fd   the block's descriptor (borrowed), or -1 for CUDA
 * @return TB_OK, or one of the failures above.
 * @par Ownership
 * Borrows t; *fd stays owned by t's storage.
 */
TB_API tb_status tb_shm_handle_encode(const tb_tensor_t *t, void *buf, size_t capacity,
                                      size_t *len, int *fd);

/**
 * A tensor over the block that fd refers to, described by the handle in
 * buf (len bytes). Borrows both: the descriptor is duplicated (close-on-
 * exec) and the caller keeps, and closes, its own. Returns a new
 * reference, a CPU tensor mapping the same pages as the sender's (another
 * mapping, so its data pointer differs even in the same process; writes
 * through either are seen through the other). A read-only handle gives a
 * read-only tensor mapped PROT_READ (and accepts a descriptor opened
 * read-only).
 *
 * The bytes are checked before the descriptor is touched, each failure
 * naming the field: TB_ERR_FORMAT for a length other than 32 + 16 * ndim
 * (truncated or trailing bytes), the magic, ndim above TB_MAX_NDIM,
 * unknown flag bits, a negative extent, a view reaching outside the block
 * (below its first byte or past block_size); TB_ERR_VERSION for another
 * version; TB_ERR_DTYPE for a dtype this library does not know (or lanes
 * other than 1); TB_ERR_OVERFLOW when shape x strides x itemsize overflows
 * int64. Then the descriptor: TB_ERR_IO (with errno's text) when fstat,
 * dup or mmap fail (a closed descriptor is EBADF); TB_ERR_INVALID when it
 * is not a regular file (a socket, pipe, device or directory), or holds
 * fewer bytes than block_size (a descriptor that lies about its extent).
 *
 * A CUDA handle (version 2) takes fd = -1 (another fd is TB_ERR_INVALID).
 * Its bytes are checked as strictly (TB_ERR_FORMAT for a device_type other
 * than kDLCUDA, a negative device_id, a non-zero IPC handle with
 * block_size 0, and the checks above); then TB_ERR_DEVICE when no CUDA
 * device device_id is present (or the build has no CUDA backend),
 * TB_ERR_UNSUPPORTED when the driver lacks the IPC entry points; the
 * allocation is opened on device device_id with its primary context current
 * (cuIpcOpenMemHandle, CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS), and refused with
 * TB_ERR_INVALID, the driver's error in the message, when the driver does
 * not open it: a handle this very process made (CUDA_ERROR_INVALID_CONTEXT),
 * or one that names no live allocation; or when the allocation it opens
 * holds fewer than block_size bytes (cuMemGetAddressRange). The result is
 * a kDLCUDA tensor (read-only for a read-only handle, by the library's
 * flag: the mapping itself is writable); opening the same handle again
 * shares the driver's mapping (its count of opens is the driver's).
 *
 * Any regular file is accepted, not only memfds and POSIX shared memory:
 * a file on disk attaches like numpy.memmap (mode 'r+'), sharing its page
 * cache. Only a memfd made by this library is sealed against shrinking;
 * the process that can write another kind of file can truncate it under
 * the mapping, and a later access then raises SIGBUS, as with any mapped
 * file.
 * @param buf      the handle
 * @param len      its length in bytes
 * @param fd       the block's descriptor (borrowed: duplicated), or -1 for a
 *                 CUDA handle
 * @param[out] out the attached tensor
 * @return TB_OK, or one of the failures above.
 * @par Ownership
 * Borrows buf and fd. Returns a new reference.
 */
TB_API tb_status tb_shm_attach(const void *buf, size_t len, int fd, tb_tensor_t **out);

/**
 * Sends t's handle and descriptor over a connected Unix-domain socket, in
 * one sendmsg: the handle bytes with the descriptor attached (SCM_RIGHTS).
 * Stream, datagram and seqpacket sockets all work; a blocking socket is
 * expected (a non-blocking one may fail with TB_ERR_IO, EAGAIN). No
 * SIGPIPE is raised where MSG_NOSIGNAL exists (Linux, the BSDs): a closed
 * peer is TB_ERR_IO (EPIPE). Borrows t, which may be released as soon as
 * this returns: the descriptor in flight keeps the block alive until the
 * receiver takes it (or the socket is closed unread). Statuses as
 * tb_shm_handle_encode's, and TB_ERR_IO for the socket; TB_ERR_UNSUPPORTED
 * for a CUDA tensor, whose handle carries no descriptor: send its
 * tb_shm_handle_encode bytes over any channel instead.
 * @param socket a connected Unix-domain socket
 * @param t      a shared tensor
 * @return TB_OK, or one of the failures above.
 * @par Ownership
 * Borrows t.
 */
TB_API tb_status tb_shm_send(int socket, const tb_tensor_t *t);

/**
 * Receives one tb_shm_send message and attaches to it (tb_shm_attach's
 * checks and statuses). Returns a new reference. The received descriptor
 * is close-on-exec and owned by the result; on every failure each
 * descriptor that arrived is closed. TB_ERR_FORMAT when the message carries
 * no descriptor or more than one, was cut (MSG_TRUNC, MSG_CTRUNC) or is
 * not a handle; TB_ERR_IO for the socket itself, and when the peer closed
 * it before a whole message. On a stream socket a failure may leave part
 * of a message unread: close the connection then.
 * @param socket   a connected Unix-domain socket
 * @param[out] out the attached tensor
 * @return TB_OK, or one of the failures above.
 * @par Ownership
 * Returns a new reference, which owns the received descriptor.
 */
TB_API tb_status tb_shm_recv(int socket, tb_tensor_t **out);

/** @} */

#ifdef __cplusplus
}
#endif

#endif /* TENSORBRIDGE_SHM_H */
