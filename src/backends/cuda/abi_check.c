/*
 * Build-time check of driver.h against the toolkit's cuda.h (compiled only
 * where cuda.h is found; never linked into the library): every constant has
 * cuda.h's value, and every entry point of tb_cu_api initialises from the
 * function cuda.h declares under that symbol, which the compiler accepts
 * only when the types are the same.
 */
#include <cuda.h>

#include "driver.h"

#define TB_SAME(ours, theirs) _Static_assert((ours) == (theirs), #ours " differs from cuda.h")

TB_SAME(TB_CU_SUCCESS, CUDA_SUCCESS);
TB_SAME(TB_CU_ERROR_INVALID_VALUE, CUDA_ERROR_INVALID_VALUE);
TB_SAME(TB_CU_ERROR_OUT_OF_MEMORY, CUDA_ERROR_OUT_OF_MEMORY);
TB_SAME(TB_CU_ERROR_INVALID_CONTEXT, CUDA_ERROR_INVALID_CONTEXT);
TB_SAME(TB_CU_IPC_HANDLE_SIZE, CU_IPC_HANDLE_SIZE);
TB_SAME(TB_CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS, CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS);
TB_SAME(TB_CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X, CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X);
TB_SAME(TB_CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY, CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY);
TB_SAME(TB_CU_POINTER_ATTRIBUTE_MEMORY_TYPE, CU_POINTER_ATTRIBUTE_MEMORY_TYPE);
TB_SAME(TB_CU_POINTER_ATTRIBUTE_IS_MANAGED, CU_POINTER_ATTRIBUTE_IS_MANAGED);
TB_SAME(TB_CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL);
TB_SAME(TB_CU_MEMORYTYPE_HOST, CU_MEMORYTYPE_HOST);
TB_SAME(TB_CU_MEMORYTYPE_DEVICE, CU_MEMORYTYPE_DEVICE);
TB_SAME(TB_CU_MEMORYTYPE_UNIFIED, CU_MEMORYTYPE_UNIFIED);
TB_SAME(TB_CU_MEMHOSTALLOC_PORTABLE, CU_MEMHOSTALLOC_PORTABLE);
TB_SAME(TB_CU_MEMHOSTALLOC_DEVICEMAP, CU_MEMHOSTALLOC_DEVICEMAP);
TB_SAME(TB_CU_MEM_ATTACH_GLOBAL, CU_MEM_ATTACH_GLOBAL);
TB_SAME(TB_CU_STREAM_DEFAULT, CU_STREAM_DEFAULT);
TB_SAME(TB_CU_EVENT_DISABLE_TIMING, CU_EVENT_DISABLE_TIMING);
/* CU_STREAM_LEGACY and CU_STREAM_PER_THREAD are pointer constants, which a
 * static assertion cannot compare (clang); they are (CUstream)0x1 and 0x2. */
_Static_assert(sizeof(tb_cu_result) == sizeof(CUresult), "CUresult's size");
_Static_assert(sizeof(tb_cu_ptr) == sizeof(CUdeviceptr), "CUdeviceptr's size");
/* CUipcMemHandle goes by value: the same size and alignment is the same ABI. */
_Static_assert(sizeof(tb_cu_ipc_mem_handle) == sizeof(CUipcMemHandle) &&
                   _Alignof(tb_cu_ipc_mem_handle) == _Alignof(CUipcMemHandle),
               "CUipcMemHandle's layout");

/* Same types: CUcontext is struct CUctx_st *, as is tb_cu_context, etc. */
static tb_cu_context tb_check_context(CUcontext c) { return c; }
static tb_cu_stream tb_check_stream(CUstream s) { return s; }
static tb_cu_event tb_check_event(CUevent e) { return e; }
static tb_cu_module tb_check_module(CUmodule m) { return m; }
static tb_cu_function tb_check_function(CUfunction f) { return f; }
static tb_cu_device tb_check_device(CUdevice d) { return d; }

#define TB_CU_INIT(field, symbol, params) .field = symbol,

extern const tb_cu_api tb_cuda_abi_check;
const tb_cu_api tb_cuda_abi_check = {TB_CU_FUNCTIONS(TB_CU_INIT)};

/* The optional entry points: those without a CUipcMemHandle in their type
 * as tb_cu_api declares them; the two with one, with cuda.h's struct in its
 * place (the layouts are the same, above). */
static tb_cu_result (*const tb_check_ipc_close)(tb_cu_ptr) = cuIpcCloseMemHandle;
static tb_cu_result (*const tb_check_address_range)(tb_cu_ptr *, size_t *, tb_cu_ptr) =
    cuMemGetAddressRange_v2;
static tb_cu_result (*const tb_check_ipc_get)(CUipcMemHandle *, tb_cu_ptr) = cuIpcGetMemHandle;
static tb_cu_result (*const tb_check_ipc_open)(tb_cu_ptr *, CUipcMemHandle, unsigned int) =
    cuIpcOpenMemHandle_v2;

void tb_cuda_abi_check_types(void);
void tb_cuda_abi_check_types(void) {
  (void)tb_check_context;
  (void)tb_check_stream;
  (void)tb_check_event;
  (void)tb_check_module;
  (void)tb_check_function;
  (void)tb_check_device;
  (void)tb_check_ipc_close;
  (void)tb_check_address_range;
  (void)tb_check_ipc_get;
  (void)tb_check_ipc_open;
}
