/*
 * Shared by the OpenCL backend's files: the entry points loaded from the ICD
 * loader, the names of OpenCL error codes, and the kernel source.
 *
 * CL/cl.h is included for its types and constants only: the library never
 * links libOpenCL. The loader (libOpenCL.so.1) is opened with dlopen the
 * first time the backend is asked for its devices, and the OpenCL 1.2
 * functions below are looked up in it.
 */
#ifndef TB_OPENCL_INTERNAL_H
#define TB_OPENCL_INTERNAL_H

#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

#include "../../dtype.h"

/* X(name, return type, parameters): every OpenCL function the backend calls,
 * without its "cl" prefix. */
#define TB_CL_FUNCTIONS(X)                                                                         \
  X(GetPlatformIDs, cl_int, (cl_uint, cl_platform_id *, cl_uint *))                                \
  X(GetDeviceIDs, cl_int, (cl_platform_id, cl_device_type, cl_uint, cl_device_id *, cl_uint *))    \
  X(GetDeviceInfo, cl_int, (cl_device_id, cl_device_info, size_t, void *, size_t *))               \
  X(CreateContext, cl_context,                                                                     \
    (const cl_context_properties *, cl_uint, const cl_device_id *,                                 \
     void(CL_CALLBACK *)(const char *, const void *, size_t, void *), void *, cl_int *))           \
  X(ReleaseContext, cl_int, (cl_context))                                                          \
  X(CreateCommandQueue, cl_command_queue,                                                          \
    (cl_context, cl_device_id, cl_command_queue_properties, cl_int *))                             \
  X(ReleaseCommandQueue, cl_int, (cl_command_queue))                                               \
  X(GetCommandQueueInfo, cl_int,                                                                   \
    (cl_command_queue, cl_command_queue_info, size_t, void *, size_t *))                           \
  X(CreateBuffer, cl_mem, (cl_context, cl_mem_flags, size_t, void *, cl_int *))                    \
  X(ReleaseMemObject, cl_int, (cl_mem))                                                            \
  X(GetMemObjectInfo, cl_int, (cl_mem, cl_mem_info, size_t, void *, size_t *))                     \
  X(EnqueueReadBuffer, cl_int,                                                                     \
    (cl_command_queue, cl_mem, cl_bool, size_t, size_t, void *, cl_uint, const cl_event *,         \
     cl_event *))                                                                                  \
  X(EnqueueWriteBuffer, cl_int,                                                                    \
    (cl_command_queue, cl_mem, cl_bool, size_t, size_t, const void *, cl_uint, const cl_event *,   \
     cl_event *))                                                                                  \
  X(EnqueueCopyBuffer, cl_int,                                                                     \
    (cl_command_queue, cl_mem, cl_mem, size_t, size_t, size_t, cl_uint, const cl_event *,          \
     cl_event *))                                                                                  \
  X(CreateProgramWithSource, cl_program,                                                           \
    (cl_context, cl_uint, const char **, const size_t *, cl_int *))                                \
  X(BuildProgram, cl_int,                                                                          \
    (cl_program, cl_uint, const cl_device_id *, const char *,                                      \
     void(CL_CALLBACK *)(cl_program, void *), void *))                                             \
  X(GetProgramBuildInfo, cl_int,                                                                   \
    (cl_program, cl_device_id, cl_program_build_info, size_t, void *, size_t *))                   \
  X(ReleaseProgram, cl_int, (cl_program))                                                          \
  X(CreateKernel, cl_kernel, (cl_program, const char *, cl_int *))                                 \
  X(SetKernelArg, cl_int, (cl_kernel, cl_uint, size_t, const void *))                              \
  X(EnqueueNDRangeKernel, cl_int,                                                                  \
    (cl_command_queue, cl_kernel, cl_uint, const size_t *, const size_t *, const size_t *,         \
     cl_uint, const cl_event *, cl_event *))                                                       \
  X(Flush, cl_int, (cl_command_queue))                                                             \
  X(Finish, cl_int, (cl_command_queue))                                                            \
  X(EnqueueMarkerWithWaitList, cl_int, (cl_command_queue, cl_uint, const cl_event *, cl_event *))  \
  X(EnqueueBarrierWithWaitList, cl_int, (cl_command_queue, cl_uint, const cl_event *, cl_event *)) \
  X(ReleaseEvent, cl_int, (cl_event))

#define TB_CL_POINTER(name, ret, params) ret(CL_API_CALL *name) params;
typedef struct tb_cl_api {
  TB_CL_FUNCTIONS(TB_CL_POINTER)
} tb_cl_api;
#undef TB_CL_POINTER

/*
 * Opens the ICD loader and fills *api. Returns the dlopen handle, or NULL
 * (and leaves no error message) when the loader or a function is missing.
 */
TB_INTERNAL void *tb__cl_load_api(tb_cl_api *api);

/* "CL_OUT_OF_RESOURCES" for -5, ...; "CL_UNKNOWN_ERROR" for codes it does
 * not know. */
TB_INTERNAL const char *tb__cl_error_name(cl_int code);

/* The kernel source: the prelude's parts, then the instantiations. */
#define TB_CL_PRELUDE_PARTS 3
TB_INTERNAL extern const char *const tb__cl_prelude[TB_CL_PRELUDE_PARTS];

/* A castable dtype's name in kernel names ("f16") and its class ("d"). */
typedef struct tb_cl_kind_name {
  const char *name;
  const char *cls;
} tb_cl_kind_name;
TB_INTERNAL extern const tb_cl_kind_name tb__cl_kinds[TB_K_COUNT];

#endif
