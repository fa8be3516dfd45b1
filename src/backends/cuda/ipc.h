/*
 * CUDA IPC for io/shm.c: all that the shared-memory layer sees of the CUDA
 * backend (no driver type, no CUDA header). Declared only in builds with
 * the backend (TB_WITH_CUDA); shm.c dispatches a handle of the CUDA kind
 * here and keeps the byte format, its checks and the layout to itself.
 *
 * IPC-capable ("shared", tb_tensor_is_shared) are the kDLCUDA tensors whose
 * storage is either
 *   - memory this library allocated on a CUDA device (tb_tensor_empty and
 *     every other constructor, tb_tensor_to, tb_shm_share: cuMemAlloc, the
 *     only allocator cuIpcGetMemHandle accepts), views included, or
 *   - a mapping tb_shm_attach opened (cuIpcOpenMemHandle), views included,
 * and only while the driver exports the four IPC entry points. Memory that
 * was wrapped (tb_from_array, DLPack imports) never is, even when it came
 * from cuMemAlloc: it may be a suballocation of a caching allocator, or
 * come from cuMemCreate or a stream-ordered pool, which legacy IPC refuses.
 */
#ifndef TB_CUDA_IPC_H
#define TB_CUDA_IPC_H

#include "../../internal.h"

/* The opaque CUipcMemHandle's bytes. */
#define TB_CUDA_IPC_HANDLE_BYTES 64

/* What a handle of the CUDA kind says about the memory under a tensor. */
typedef struct tb_cuda_ipc_block {
  int32_t device_id;
  uint64_t size;        /* bytes of the allocation (0: none, an empty tensor) */
  uint64_t data_offset; /* the tensor's data pointer minus the allocation's base */
  unsigned char handle[TB_CUDA_IPC_HANDLE_BYTES]; /* all zero when size is 0 */
} tb_cuda_ipc_block;

/* True for an IPC-capable tensor (above); never loads the driver for
 * anything but a kDLCUDA tensor. */
TB_INTERNAL bool tb__cuda_ipc_shared(const tb_tensor_t *t);

/* TB_OK when this process's driver can share and attach CUDA memory, else
 * TB_ERR_UNSUPPORTED naming the missing entry point (TB_ERR_DEVICE when no
 * driver or device is present). */
TB_INTERNAL tb_status tb__cuda_ipc_available(const char *what);

/* The allocation under an IPC-capable tensor t (cuIpcGetMemHandle of its
 * base, or the handle it was attached with). */
TB_INTERNAL tb_status tb__cuda_ipc_export(const char *what, const tb_tensor_t *t,
                                          tb_cuda_ipc_block *out);

/*
 * Opens block's allocation (cuIpcOpenMemHandle on block->device_id, with
 * CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS) and makes a kDLCUDA tensor over it
 * with the layout given (checked by the caller to lie within block->size);
 * the storage closes the mapping (cuIpcCloseMemHandle) at its last release.
 * block->data_offset is ignored: byte_offset counts from the base. Refused
 * with TB_ERR_INVALID when the driver will not open the handle (one made
 * in this very process among them) or when the allocation it opens holds
 * fewer than block->size bytes.
 */
TB_INTERNAL tb_status tb__cuda_ipc_attach(const char *what, const tb_cuda_ipc_block *block,
                                          bool writable, DLDataType dtype, int32_t ndim,
                                          const int64_t *shape, const int64_t *strides,
                                          uint64_t byte_offset, tb_tensor_t **out);

#endif
