/*
 * The slice of the CUDA driver API (libcuda.so.1) the backend uses, declared
 * here rather than taken from cuda.h: the library loads the driver with
 * dlopen, so the C side needs no CUDA header and no CUDA library at build or
 * run time. Values and signatures are the driver's stable ABI; abi_check.c
 * compares every one of them against cuda.h at build time wherever the
 * toolkit is installed.
 *
 * Types keep cuda.h's struct tags (struct CUctx_st, ...), so a handle from an
 * application that uses cuda.h is the same type here. Enumerations are plain
 * unsigned ints: GCC and Clang give cuda.h's enums (all values non-negative)
 * that underlying type, which keeps the function types identical.
 */
#ifndef TB_CUDA_DRIVER_H
#define TB_CUDA_DRIVER_H

#include <stddef.h>

typedef unsigned int tb_cu_result;    /* CUresult */
typedef int tb_cu_device;             /* CUdevice */
typedef unsigned long long tb_cu_ptr; /* CUdeviceptr (64-bit builds) */
typedef struct CUctx_st *tb_cu_context;
typedef struct CUmod_st *tb_cu_module;
typedef struct CUfunc_st *tb_cu_function;
typedef struct CUevent_st *tb_cu_event;
typedef struct CUstream_st *tb_cu_stream;

/* CUresult values the backend tells apart. */
#define TB_CU_SUCCESS 0u
#define TB_CU_ERROR_INVALID_VALUE 1u
#define TB_CU_ERROR_OUT_OF_MEMORY 2u
#define TB_CU_ERROR_INVALID_CONTEXT 201u

/* CUdevice_attribute */
#define TB_CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X 5u
#define TB_CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY 83u

/* CUpointer_attribute */
#define TB_CU_POINTER_ATTRIBUTE_MEMORY_TYPE 2u
#define TB_CU_POINTER_ATTRIBUTE_IS_MANAGED 8u
#define TB_CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL 9u

/* CUmemorytype */
#define TB_CU_MEMORYTYPE_HOST 1u
#define TB_CU_MEMORYTYPE_DEVICE 2u
#define TB_CU_MEMORYTYPE_UNIFIED 4u

/* Flags */
#define TB_CU_MEMHOSTALLOC_PORTABLE 0x01u
#define TB_CU_MEMHOSTALLOC_DEVICEMAP 0x02u
#define TB_CU_MEM_ATTACH_GLOBAL 0x1u
#define TB_CU_STREAM_DEFAULT 0x0u /* synchronizes with the legacy default stream */
#define TB_CU_EVENT_DISABLE_TIMING 0x2u

/* CUDA IPC: the opaque handle of a cuMemAlloc allocation (CUipcMemHandle,
 * passed by value to cuIpcOpenMemHandle), and the one flag that opens it. */
#define TB_CU_IPC_HANDLE_SIZE 64
#define TB_CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS 0x1u
typedef struct tb_cu_ipc_mem_handle {
  char reserved[TB_CU_IPC_HANDLE_SIZE];
} tb_cu_ipc_mem_handle;

/* The special stream handles; DLPack's stream values 1 and 2 are these. */
#define TB_CU_STREAM_LEGACY ((tb_cu_stream)0x1)
#define TB_CU_STREAM_PER_THREAD ((tb_cu_stream)0x2)

/*
 * X(field, exported symbol, parameter list). The symbols are the versions
 * cuda.h maps the plain names to (cuMemAlloc -> cuMemAlloc_v2), without the
 * per-thread-default-stream variants: a NULL stream never reaches the driver
 * from this backend, so those would change nothing.
 */
#define TB_CU_FUNCTIONS(X)                                                                        \
  X(get_error_name, cuGetErrorName, (tb_cu_result error, const char **str))                       \
  X(get_error_string, cuGetErrorString, (tb_cu_result error, const char **str))                   \
  X(init, cuInit, (unsigned int flags))                                                           \
  X(driver_get_version, cuDriverGetVersion, (int *version))                                       \
  X(device_get_count, cuDeviceGetCount, (int *count))                                             \
  X(device_get, cuDeviceGet, (tb_cu_device * device, int ordinal))                                \
  X(device_get_attribute, cuDeviceGetAttribute,                                                   \
    (int *value, unsigned int attribute, tb_cu_device device))                                    \
  X(primary_ctx_retain, cuDevicePrimaryCtxRetain, (tb_cu_context * ctx, tb_cu_device dev))        \
  X(primary_ctx_release, cuDevicePrimaryCtxRelease_v2, (tb_cu_device dev))                        \
  X(ctx_push, cuCtxPushCurrent_v2, (tb_cu_context ctx))                                           \
  X(ctx_pop, cuCtxPopCurrent_v2, (tb_cu_context * ctx))                                           \
  X(stream_create, cuStreamCreate, (tb_cu_stream * stream, unsigned int flags))                   \
  X(stream_destroy, cuStreamDestroy_v2, (tb_cu_stream stream))                                    \
  X(stream_synchronize, cuStreamSynchronize, (tb_cu_stream stream))                               \
  X(stream_wait_event, cuStreamWaitEvent,                                                         \
    (tb_cu_stream stream, tb_cu_event event, unsigned int flags))                                 \
  X(event_create, cuEventCreate, (tb_cu_event * event, unsigned int flags))                       \
  X(event_record, cuEventRecord, (tb_cu_event event, tb_cu_stream stream))                        \
  X(event_synchronize, cuEventSynchronize, (tb_cu_event event))                                   \
  X(event_destroy, cuEventDestroy_v2, (tb_cu_event event))                                        \
  X(mem_alloc, cuMemAlloc_v2, (tb_cu_ptr * ptr, size_t nbytes))                                   \
  X(mem_free, cuMemFree_v2, (tb_cu_ptr ptr))                                                      \
  X(mem_host_alloc, cuMemHostAlloc, (void **ptr, size_t nbytes, unsigned int flags))              \
  X(mem_free_host, cuMemFreeHost, (void *ptr))                                                    \
  X(mem_alloc_managed, cuMemAllocManaged, (tb_cu_ptr * ptr, size_t nbytes, unsigned int flags))   \
  X(memcpy_htod_async, cuMemcpyHtoDAsync_v2,                                                      \
    (tb_cu_ptr dst, const void *src, size_t nbytes, tb_cu_stream stream))                         \
  X(memcpy_dtoh_async, cuMemcpyDtoHAsync_v2,                                                      \
    (void *dst, tb_cu_ptr src, size_t nbytes, tb_cu_stream stream))                               \
  X(memcpy_dtod_async, cuMemcpyDtoDAsync_v2,                                                      \
    (tb_cu_ptr dst, tb_cu_ptr src, size_t nbytes, tb_cu_stream stream))                           \
  X(memcpy_async, cuMemcpyAsync,                                                                  \
    (tb_cu_ptr dst, tb_cu_ptr src, size_t nbytes, tb_cu_stream stream))                           \
  X(memcpy_peer_async, cuMemcpyPeerAsync,                                                         \
    (tb_cu_ptr dst, tb_cu_context dst_ctx, tb_cu_ptr src, tb_cu_context src_ctx, size_t nbytes,   \
     tb_cu_stream stream))                                                                        \
  X(pointer_get_attribute, cuPointerGetAttribute,                                                 \
    (void *data, unsigned int attribute, tb_cu_ptr ptr))                                          \
  X(module_load_data, cuModuleLoadData, (tb_cu_module * module, const void *image))               \
  X(module_unload, cuModuleUnload, (tb_cu_module module))                                         \
  X(module_get_function, cuModuleGetFunction,                                                     \
    (tb_cu_function * function, tb_cu_module module, const char *name))                           \
  X(launch_kernel, cuLaunchKernel,                                                                \
    (tb_cu_function f, unsigned int grid_x, unsigned int grid_y, unsigned int grid_z,             \
     unsigned int block_x, unsigned int block_y, unsigned int block_z, unsigned int shared_bytes, \
     tb_cu_stream stream, void **params, void **extra))

/*
 * Entry points only CUDA IPC needs (io/shm.c's CUDA handles): a driver that
 * lacks any of them still loads, the fields stay NULL and only the IPC path
 * fails, with TB_ERR_UNSUPPORTED (ipc.c).
 */
#define TB_CU_OPTIONAL_FUNCTIONS(X)                                                           \
  X(ipc_get_mem_handle, cuIpcGetMemHandle, (tb_cu_ipc_mem_handle * handle, tb_cu_ptr ptr))    \
  X(ipc_open_mem_handle, cuIpcOpenMemHandle_v2,                                               \
    (tb_cu_ptr * ptr, tb_cu_ipc_mem_handle handle, unsigned int flags))                       \
  X(ipc_close_mem_handle, cuIpcCloseMemHandle, (tb_cu_ptr ptr))                               \
  X(mem_get_address_range, cuMemGetAddressRange_v2, (tb_cu_ptr * base, size_t *size, tb_cu_ptr ptr))

#define TB_CU_FIELD(field, symbol, params) tb_cu_result(*field) params;

/* The driver's entry points, resolved once when the driver is loaded
 * (backend.c): the required ones, then the optional ones (NULL when the
 * driver does not export them). */
typedef struct tb_cu_api {
  TB_CU_FUNCTIONS(TB_CU_FIELD)
  TB_CU_OPTIONAL_FUNCTIONS(TB_CU_FIELD)
} tb_cu_api;

#undef TB_CU_FIELD

#endif
