/*
 * The OpenCL backend (kDLOpenCL): DLTensor.data is a cl_mem.
 *
 * Loading: libOpenCL.so.1 is opened with dlopen the first time the backend
 * is asked anything (its device count, usually), never at library load and
 * never by programs that do not use OpenCL: loading an ICD such as PoCL
 * pulls in LLVM, which costs tens of milliseconds and tens of megabytes.
 * Without a loader or a device the backend reports 0 devices, so the library
 * refuses OpenCL work with TB_ERR_DEVICE; nothing is printed and no error
 * message is left behind.
 *
 * Devices: every platform's GPUs, then CPUs, then accelerators (each group
 * in platform order, then driver order); device_id indexes that list. Each
 * device gets a context and an in-order queue when first used (under the
 * device's mutex); the NULL stream means that queue, any other stream is a
 * cl_command_queue of the caller's.
 *
 * Copies: copy_bytes uses blocking reads and writes, clEnqueueCopyBuffer
 * within a context, and a host bounce buffer between contexts. copy_strided
 * moves dense runs with one read, write or buffer copy, and runs one kernel
 * per (source, destination) dtype pair (kernels.c) otherwise, on memory of
 * this backend's contexts; a host side is uploaded or downloaded as one
 * span, so layout and dtype work stay on the device. Device-to-device work
 * returns queued; work that touches host memory returns done. What it does
 * not take (memory from a context the caller made, more than 16 dimensions
 * after merging, misaligned elements, packed dtypes, host sources mostly
 * made of gaps, host destinations with gaps, two devices) returns
 * TB_ERR_UNSUPPORTED and the library stages the copy through the host.
 *
 * Kernels are built per device and per source dtype (14 casts in one
 * program), plus one program of plain moves, each the first time it is
 * needed, and kept for the life of the process.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "../../platform/thread.h"

#include "../../cast.h"
#include "../../device.h"
#include "opencl_internal.h"

#define TB_CL_MAX_PLATFORMS 16
#define TB_CL_MAX_DEVICES 64
#define TB_CL_MAX_NDIM 16      /* the kernels' tb_walk; more dimensions are staged */
#define TB_CL_MOVES TB_K_COUNT /* program slot of the move kernels */
#define TB_CL_MOVE_SIZES 5     /* 1, 2, 4, 8 and 16 bytes */
#define TB_CL_LOCAL_SIZE 64
#define TB_CL_MAX_GROUPS 65536 /* work items then loop over the rest */
#define TB_CL_BOUNCE_BYTES ((size_t)4 << 20)

/* Mirrors the kernels' tb_walk (kernels.c) field for field. */
typedef struct tb_cl_walk {
  cl_long shape[TB_CL_MAX_NDIM];
  cl_long dst_strides[TB_CL_MAX_NDIM];
  cl_long src_strides[TB_CL_MAX_NDIM];
  cl_long dst_off, src_off, numel;
  cl_int ndim, unused;
} tb_cl_walk;
_Static_assert(sizeof(tb_cl_walk) == 8 * (3 * TB_CL_MAX_NDIM + 4), "tb_walk has no padding");

typedef struct tb_cl_device {
  cl_platform_id platform;
  cl_device_id id;
  char label[128];    /* "opencl:0 (NVIDIA A100)" for messages */
  cl_ulong max_alloc; /* CL_DEVICE_MAX_MEM_ALLOC_SIZE */
  size_t local_size;  /* work-group size the kernels are launched with */
  bool has_compiler;  /* CL_DEVICE_COMPILER_AVAILABLE */
  bool has_markers;   /* OpenCL >= 1.2: clEnqueueMarkerWithWaitList */
  tb__mutex lock;         /* guards everything below but `ready` */
  atomic_bool ready;  /* context and queue made */
  cl_context context;
  cl_command_queue queue;
  cl_program programs[TB_K_COUNT + 1]; /* by source kind, then the moves */
  cl_kernel casts[TB_K_COUNT][TB_K_COUNT];
  cl_kernel moves[TB_CL_MOVE_SIZES];
} tb_cl_device;

static struct {
  void *lib;
  tb_cl_api api;
  int32_t count;
  tb_cl_device devices[TB_CL_MAX_DEVICES];
} tb_cl;

static tb__once_flag tb_cl_once = TB__ONCE_INIT;

#define CL (tb_cl.api)

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

static tb_status tb_cl_status(cl_int code) {
  switch (code) {
    case CL_OUT_OF_HOST_MEMORY:
    case CL_OUT_OF_RESOURCES:
    case CL_MEM_OBJECT_ALLOCATION_FAILURE:
    case CL_INVALID_BUFFER_SIZE:
      return TB_ERR_NOMEM;
    default:
      return TB_ERR_DEVICE;
  }
}

/* "opencl: clCreateBuffer(nbytes = 1024) failed: CL_OUT_OF_RESOURCES (-5)
 * on opencl:0 (name)": the call as call_fmt describes it. */
TB_PRINTF(3, 4)
static tb_status tb_cl_fail(cl_int code, const tb_cl_device *d, const char *call_fmt, ...) {
  char call[200];
  va_list args;
  va_start(args, call_fmt);
  (void)vsnprintf(call, sizeof call, call_fmt, args);
  va_end(args);
  return tb__fail(tb_cl_status(code), "opencl: %s failed: %s (%d)%s%s", call,
                  tb__cl_error_name(code), (int)code, d != NULL ? " on " : "",
                  d != NULL ? d->label : "");
}

/* ------------------------------------------------------------------------ */
/* Loading and devices                                                      */
/* ------------------------------------------------------------------------ */

static bool tb_cl_info(cl_device_id id, cl_device_info what, size_t size, void *out) {
  return CL.GetDeviceInfo(id, what, size, out, NULL) == CL_SUCCESS;
}

/* "OpenCL 1.2 ..." is at least 1.2. */
static bool tb_cl_version_at_least_1_2(cl_device_id id) {
  char version[128] = {0};
  unsigned major = 0, minor = 0;
  if (!tb_cl_info(id, CL_DEVICE_VERSION, sizeof version - 1, version) ||
      sscanf(version, "OpenCL %u.%u", &major, &minor) != 2) {
    return false;
  }
  return major > 1 || (major == 1 && minor >= 2);
}

static void tb_cl_add_device(cl_platform_id platform, cl_device_id id) {
  if (tb_cl.count == TB_CL_MAX_DEVICES) return;
  cl_bool available = CL_FALSE, compiler = CL_FALSE;
  if (!tb_cl_info(id, CL_DEVICE_AVAILABLE, sizeof available, &available) || !available) return;
  tb_cl_device *d = &tb_cl.devices[tb_cl.count];
  *d = (tb_cl_device){.platform = platform, .id = id};
  char name[96] = {0};
  size_t max_group = 0;
  if (!tb_cl_info(id, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof d->max_alloc, &d->max_alloc) ||
      !tb_cl_info(id, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof max_group, &max_group) ||
      !tb_cl_info(id, CL_DEVICE_COMPILER_AVAILABLE, sizeof compiler, &compiler)) {
    return;
  }
  /* A name longer than the buffer is refused with CL_INVALID_VALUE. */
  if (!tb_cl_info(id, CL_DEVICE_NAME, sizeof name - 1, name)) strcpy(name, "?");
  d->local_size = max_group < TB_CL_LOCAL_SIZE ? (max_group > 0 ? max_group : 1) : TB_CL_LOCAL_SIZE;
  d->has_compiler = compiler != CL_FALSE;
  d->has_markers = tb_cl_version_at_least_1_2(id);
  (void)snprintf(d->label, sizeof d->label, "opencl:%d (%s)", (int)tb_cl.count, name);
  if (!tb__mutex_init(&d->lock)) return;
  atomic_init(&d->ready, false);
  tb_cl.count++;
}

/* Runs once, on the first question asked of the backend. */
static void tb_cl_load(void) {
  tb_cl.lib = tb__cl_load_api(&tb_cl.api); /* kept open for the life of the process */
  if (tb_cl.lib == NULL) return;
  cl_platform_id platforms[TB_CL_MAX_PLATFORMS];
  cl_uint np = 0;
  /* No ICD installed gives CL_PLATFORM_NOT_FOUND_KHR: no devices. */
  if (CL.GetPlatformIDs(TB_CL_MAX_PLATFORMS, platforms, &np) != CL_SUCCESS || np == 0) return;
  if (np > TB_CL_MAX_PLATFORMS) np = TB_CL_MAX_PLATFORMS;
  static const cl_device_type types[] = {CL_DEVICE_TYPE_GPU, CL_DEVICE_TYPE_CPU,
                                         CL_DEVICE_TYPE_ACCELERATOR};
  for (size_t t = 0; t < sizeof types / sizeof *types; t++) {
    for (cl_uint p = 0; p < np; p++) {
      cl_device_id ids[TB_CL_MAX_DEVICES];
      cl_uint nd = 0;
      if (CL.GetDeviceIDs(platforms[p], types[t], TB_CL_MAX_DEVICES, ids, &nd) != CL_SUCCESS) {
        continue; /* CL_DEVICE_NOT_FOUND: none of this type */
      }
      if (nd > TB_CL_MAX_DEVICES) nd = TB_CL_MAX_DEVICES;
      for (cl_uint i = 0; i < nd; i++) tb_cl_add_device(platforms[p], ids[i]);
    }
  }
}

static int32_t tb_cl_count(void) {
  tb__once(&tb_cl_once, tb_cl_load);
  return tb_cl.count;
}

static tb_status tb_cl_device_at(const char *what, int32_t device_id, tb_cl_device **out) {
  int32_t count = tb_cl_count();
  if (device_id < 0 || device_id >= count) {
    return tb__fail(TB_ERR_DEVICE, "opencl: %s: device opencl:%d is not present (%d found)", what,
                    (int)device_id, (int)count);
  }
  *out = &tb_cl.devices[device_id];
  return TB_OK;
}

/* The device's context and queue, made on first use. */
static tb_status tb_cl_ready(tb_cl_device *d) {
  if (atomic_load_explicit(&d->ready, memory_order_acquire)) return TB_OK;
  tb_status st = TB_OK;
  (void)tb__mutex_lock(&d->lock);
  if (!atomic_load_explicit(&d->ready, memory_order_relaxed)) {
    cl_int err;
    const cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)d->platform,
                                           0};
    cl_context context = CL.CreateContext(props, 1, &d->id, NULL, NULL, &err);
    if (context == NULL) {
      st = tb_cl_fail(err, d, "clCreateContext");
    } else {
      cl_command_queue queue = CL.CreateCommandQueue(context, d->id, 0, &err);
      if (queue == NULL) {
        st = tb_cl_fail(err, d, "clCreateCommandQueue");
        CL.ReleaseContext(context);
      } else {
        d->context = context;
        d->queue = queue;
        atomic_store_explicit(&d->ready, true, memory_order_release);
      }
    }
  }
  tb__mutex_unlock(&d->lock);
  return st;
}

/* ------------------------------------------------------------------------ */
/* Memory and queues                                                        */
/* ------------------------------------------------------------------------ */

static cl_mem tb_cl_mem(const void *handle) { return (cl_mem)(uintptr_t)handle; }

static tb_status tb_cl_mem_context(tb_cl_device *d, cl_mem mem, cl_context *out) {
  cl_int err = CL.GetMemObjectInfo(mem, CL_MEM_CONTEXT, sizeof *out, out, NULL);
  if (err != CL_SUCCESS) {
    return tb_cl_fail(err, d, "clGetMemObjectInfo(%p, CL_MEM_CONTEXT)", (void *)mem);
  }
  return TB_OK;
}

/*
 * A queue that can reach `mem`: the caller's stream when given, the
 * device's queue for memory of the backend's context, else a temporary
 * queue on the memory's own context (memory a program made in a context of
 * its own and handed over with tb_from_array or DLPack). *temporary says
 * whether the caller must release it; work on it must be blocking.
 */
static tb_status tb_cl_queue_for(tb_cl_device *d, cl_mem mem, void *stream, cl_command_queue *out,
                                 bool *temporary) {
  *temporary = false;
  if (stream != NULL) {
    *out = (cl_command_queue)stream;
    return TB_OK;
  }
  tb_status st = tb_cl_ready(d);
  cl_context context;
  if (st == TB_OK) st = tb_cl_mem_context(d, mem, &context);
  if (st != TB_OK) return st;
  if (context == d->context) {
    *out = d->queue;
    return TB_OK;
  }
  cl_int err;
  cl_command_queue queue = CL.CreateCommandQueue(context, d->id, 0, &err);
  if (queue == NULL) {
    return tb_cl_fail(err, d,
                      "clCreateCommandQueue on the context of cl_mem %p (it must hold the device)",
                      (void *)mem);
  }
  *out = queue;
  *temporary = true;
  return TB_OK;
}

static int32_t tb_opencl_device_count(const tb_device_vtable *self) {
  (void)self;
  return tb_cl_count();
}

static tb_status tb_opencl_alloc(const tb_device_vtable *self, int32_t device_id, uint64_t nbytes,
                                 const tb_allocator *host, void **out) {
  (void)self;
  (void)host;
  tb_cl_device *d = NULL;
  tb_status st = tb_cl_device_at("alloc", device_id, &d);
  if (st != TB_OK) return st;
  if (nbytes == 0) {
    *out = NULL;
    return TB_OK;
  }
  if (nbytes > d->max_alloc || nbytes > SIZE_MAX) {
    return tb__fail(TB_ERR_NOMEM,
                    "opencl: alloc: nbytes = %" PRIu64
                    " exceeds CL_DEVICE_MAX_MEM_ALLOC_SIZE = %" PRIu64 " of %s",
                    nbytes, (uint64_t)d->max_alloc, d->label);
  }
  if ((st = tb_cl_ready(d)) != TB_OK) return st;
  cl_int err;
  cl_mem mem = CL.CreateBuffer(d->context, CL_MEM_READ_WRITE, (size_t)nbytes, NULL, &err);
  if (mem == NULL) return tb_cl_fail(err, d, "clCreateBuffer(nbytes = %" PRIu64 ")", nbytes);
  *out = mem;
  return TB_OK;
}

static void tb_opencl_free(const tb_device_vtable *self, int32_t device_id, void *ptr,
                           uint64_t nbytes, const tb_allocator *host) {
  (void)self;
  (void)device_id;
  (void)nbytes;
  (void)host;
  /* The runtime keeps the buffer until the commands queued on it are done. */
  if (ptr != NULL) CL.ReleaseMemObject(tb_cl_mem(ptr));
}

static tb_status tb_cl_write(tb_cl_device *d, cl_mem dst, uint64_t offset, const void *src,
                             uint64_t nbytes, void *stream) {
  cl_command_queue q = NULL; /* set when tb_cl_queue_for succeeds; gcc -O3 cannot tell */
  bool temporary;
  tb_status st = tb_cl_queue_for(d, dst, stream, &q, &temporary);
  if (st != TB_OK) return st;
  cl_int err =
      CL.EnqueueWriteBuffer(q, dst, CL_TRUE, (size_t)offset, (size_t)nbytes, src, 0, NULL, NULL);
  if (temporary) CL.ReleaseCommandQueue(q);
  if (err != CL_SUCCESS) {
    return tb_cl_fail(err, d, "clEnqueueWriteBuffer(offset = %" PRIu64 ", nbytes = %" PRIu64 ")",
                      offset, nbytes);
  }
  return TB_OK;
}

static tb_status tb_cl_read(tb_cl_device *d, void *dst, cl_mem src, uint64_t offset,
                            uint64_t nbytes, void *stream) {
  cl_command_queue q = NULL; /* set when tb_cl_queue_for succeeds; gcc -O3 cannot tell */
  bool temporary;
  tb_status st = tb_cl_queue_for(d, src, stream, &q, &temporary);
  if (st != TB_OK) return st;
  cl_int err =
      CL.EnqueueReadBuffer(q, src, CL_TRUE, (size_t)offset, (size_t)nbytes, dst, 0, NULL, NULL);
  if (temporary) CL.ReleaseCommandQueue(q);
  if (err != CL_SUCCESS) {
    return tb_cl_fail(err, d, "clEnqueueReadBuffer(offset = %" PRIu64 ", nbytes = %" PRIu64 ")",
                      offset, nbytes);
  }
  return TB_OK;
}

/* Between two contexts (two devices, or memory of a context the caller
 * made): through a host buffer from the library's allocator, in chunks. */
static tb_status tb_cl_bounce(tb_cl_device *dd, cl_mem dst, uint64_t dst_offset, tb_cl_device *sd,
                              cl_mem src, uint64_t src_offset, uint64_t nbytes) {
  tb_allocator allocator;
  tb__allocator_current(&allocator);
  size_t chunk = nbytes < TB_CL_BOUNCE_BYTES ? (size_t)nbytes : TB_CL_BOUNCE_BYTES;
  void *buffer = tb__alloc(&allocator, chunk, TB_DATA_ALIGNMENT, "opencl: copy between contexts");
  if (buffer == NULL) return TB_ERR_NOMEM;
  tb_status st = TB_OK;
  for (uint64_t done = 0; st == TB_OK && done < nbytes; done += chunk) {
    uint64_t n = nbytes - done < chunk ? nbytes - done : chunk;
    st = tb_cl_read(sd, buffer, src, src_offset + done, n, NULL);
    if (st == TB_OK) st = tb_cl_write(dd, dst, dst_offset + done, buffer, n, NULL);
  }
  tb__free(&allocator, buffer, chunk);
  return st;
}

static tb_status tb_opencl_copy_bytes(const tb_device_vtable *self, void *dst, uint64_t dst_offset,
                                      DLDevice dst_device, const void *src, uint64_t src_offset,
                                      DLDevice src_device, uint64_t nbytes, void *stream) {
  (void)self;
  bool dst_host = tb__device_is_host(dst_device), src_host = tb__device_is_host(src_device);
  if (nbytes == 0) return TB_OK;
  if (dst_host && src_host) {
    memcpy((char *)dst + dst_offset, (const char *)src + src_offset, (size_t)nbytes);
    return TB_OK;
  }
  if ((!dst_host && dst_device.device_type != kDLOpenCL) ||
      (!src_host && src_device.device_type != kDLOpenCL)) {
    return TB_ERR_UNSUPPORTED;
  }
  tb_cl_device *dd = NULL, *sd = NULL;
  tb_status st = TB_OK;
  if (!dst_host) st = tb_cl_device_at("copy", dst_device.device_id, &dd);
  if (st == TB_OK && !src_host) st = tb_cl_device_at("copy", src_device.device_id, &sd);
  if (st != TB_OK) return st;
  if (src_host) {
    const char *from = (const char *)src + src_offset;
    return tb_cl_write(dd, tb_cl_mem(dst), dst_offset, from, nbytes, stream);
  }
  if (dst_host) {
    char *to = (char *)dst + dst_offset;
    return tb_cl_read(sd, to, tb_cl_mem(src), src_offset, nbytes, stream);
  }
  /* Both on OpenCL devices: one copy on the device when both are buffers
   * of the same context. */
  cl_context dc, sc;
  if ((st = tb_cl_ready(dd)) != TB_OK || (st = tb_cl_ready(sd)) != TB_OK ||
      (st = tb_cl_mem_context(dd, tb_cl_mem(dst), &dc)) != TB_OK ||
      (st = tb_cl_mem_context(sd, tb_cl_mem(src), &sc)) != TB_OK) {
    return st;
  }
  if (dc != sc) {
    return tb_cl_bounce(dd, tb_cl_mem(dst), dst_offset, sd, tb_cl_mem(src), src_offset, nbytes);
  }
  cl_command_queue q = NULL; /* set when tb_cl_queue_for succeeds; gcc -O3 cannot tell */
  bool temporary;
  if ((st = tb_cl_queue_for(dd, tb_cl_mem(dst), stream, &q, &temporary)) != TB_OK) return st;
  cl_int err = CL.EnqueueCopyBuffer(q, tb_cl_mem(src), tb_cl_mem(dst), (size_t)src_offset,
                                    (size_t)dst_offset, (size_t)nbytes, 0, NULL, NULL);
  if (err == CL_SUCCESS && temporary) err = CL.Finish(q);
  if (temporary) CL.ReleaseCommandQueue(q);
  if (err != CL_SUCCESS) {
    return tb_cl_fail(err, dd,
                      "clEnqueueCopyBuffer(src_offset = %" PRIu64 ", dst_offset = %" PRIu64
                      ", nbytes = %" PRIu64 ")",
                      src_offset, dst_offset, nbytes);
  }
  return TB_OK;
}

/* ------------------------------------------------------------------------ */
/* Kernels                                                                  */
/* ------------------------------------------------------------------------ */

static const char *const tb_cl_move_instances =
    "TB_MOVE_KERNEL(1, uchar, 1)\n"
    "TB_MOVE_KERNEL(2, ushort, 1)\n"
    "TB_MOVE_KERNEL(4, uint, 1)\n"
    "TB_MOVE_KERNEL(8, ulong, 1)\n"
    "TB_MOVE_KERNEL(16, ulong, 2)\n";

/* The instantiations of program `slot`: the casts from one source kind, or
 * the moves. */
static void tb_cl_instances(int slot, char *out, size_t size) {
  if (slot == TB_CL_MOVES) {
    (void)snprintf(out, size, "%s", tb_cl_move_instances);
    return;
  }
  size_t used = 0;
  out[0] = '\0';
  for (int to = 0; to < TB_K_COUNT; to++) {
    if (to == slot) continue;
    int n = snprintf(out + used, size - used, "TB_CAST_KERNEL(%s, %s, %s)\n",
                     tb__cl_kinds[slot].name, tb__cl_kinds[slot].cls, tb__cl_kinds[to].name);
    if (n < 0 || (size_t)n >= size - used) break; /* cannot happen: the buffer fits all */
    used += (size_t)n;
  }
}

/* Builds program `slot`; called under d->lock. */
static tb_status tb_cl_build(tb_cl_device *d, int slot) {
  if (d->programs[slot] != NULL) return TB_OK;
  if (!d->has_compiler) return TB_ERR_UNSUPPORTED; /* staged through the host instead */
  char instances[1024];
  tb_cl_instances(slot, instances, sizeof instances);
  const char *parts[TB_CL_PRELUDE_PARTS + 1];
  for (int i = 0; i < TB_CL_PRELUDE_PARTS; i++) parts[i] = tb__cl_prelude[i];
  parts[TB_CL_PRELUDE_PARTS] = instances;
  const char *what = slot == TB_CL_MOVES ? "moves" : tb__cl_kinds[slot].name;
  cl_int err;
  cl_program program =
      CL.CreateProgramWithSource(d->context, TB_CL_PRELUDE_PARTS + 1, parts, NULL, &err);
  if (program == NULL) return tb_cl_fail(err, d, "clCreateProgramWithSource(%s kernels)", what);
  err = CL.BuildProgram(program, 1, &d->id, "", NULL, NULL);
  if (err != CL_SUCCESS) {
    char log[160] = {0};
    (void)CL.GetProgramBuildInfo(program, d->id, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
    for (char *c = log; *c != '\0'; c++) {
      if (*c == '\n') *c = ' ';
    }
    CL.ReleaseProgram(program);
    return tb_cl_fail(err, d, "clBuildProgram(%s kernels; log: %.150s)", what, log);
  }
  d->programs[slot] = program;
  return TB_OK;
}

/* The kernel in *slot_kernel, made from program `slot` on first use; under
 * d->lock. */
static tb_status tb_cl_kernel(tb_cl_device *d, int slot, const char *name, cl_kernel *cache) {
  if (*cache != NULL) return TB_OK;
  tb_status st = tb_cl_build(d, slot);
  if (st != TB_OK) return st;
  cl_int err;
  cl_kernel k = CL.CreateKernel(d->programs[slot], name, &err);
  if (k == NULL) return tb_cl_fail(err, d, "clCreateKernel(%s)", name);
  *cache = k;
  return TB_OK;
}

/* Sets the arguments and enqueues; under d->lock, since kernel objects and
 * their arguments are shared by every thread. */
static tb_status tb_cl_enqueue(tb_cl_device *d, cl_command_queue q, cl_kernel k, const char *name,
                               cl_mem dst, cl_mem src, const tb_cl_walk *w) {
  cl_int err = CL.SetKernelArg(k, 0, sizeof dst, &dst);
  if (err == CL_SUCCESS) err = CL.SetKernelArg(k, 1, sizeof src, &src);
  if (err == CL_SUCCESS) err = CL.SetKernelArg(k, 2, sizeof *w, w);
  if (err != CL_SUCCESS) return tb_cl_fail(err, d, "clSetKernelArg(%s)", name);
  /* A fixed work-group size, so that compilers that specialise on it (PoCL)
   * compile each kernel once; the grid is capped and work items loop. */
  size_t local = d->local_size;
  uint64_t groups = ((uint64_t)w->numel + local - 1) / local;
  if (groups > TB_CL_MAX_GROUPS) groups = TB_CL_MAX_GROUPS;
  size_t global = (size_t)groups * local;
  err = CL.EnqueueNDRangeKernel(q, k, 1, NULL, &global, &local, 0, NULL, NULL);
  if (err == CL_INVALID_WORK_GROUP_SIZE) {
    err = CL.EnqueueNDRangeKernel(q, k, 1, NULL, &global, NULL, 0, NULL, NULL);
  }
  if (err != CL_SUCCESS) {
    return tb_cl_fail(err, d, "clEnqueueNDRangeKernel(%s, %" PRId64 " elements)", name,
                      (int64_t)w->numel);
  }
  return TB_OK;
}

/* Runs the kernel for a dtype pair (or the move for one element size). */
static tb_status tb_cl_launch(tb_cl_device *d, cl_command_queue q, tb_cast_kind from,
                              tb_cast_kind to, size_t move_bytes, cl_mem dst, cl_mem src,
                              const tb_cl_walk *w) {
  char name[48];
  int slot;
  cl_kernel *cache;
  if (move_bytes != 0) {
    static const size_t sizes[TB_CL_MOVE_SIZES] = {1, 2, 4, 8, 16};
    int i = 0;
    while (sizes[i] != move_bytes) i++;
    slot = TB_CL_MOVES;
    cache = &d->moves[i];
    (void)snprintf(name, sizeof name, "tb_move_%zu", move_bytes);
  } else {
    slot = (int)from;
    cache = &d->casts[from][to];
    (void)snprintf(name, sizeof name, "tb_cast_%s_%s", tb__cl_kinds[from].name,
                   tb__cl_kinds[to].name);
  }
  (void)tb__mutex_lock(&d->lock);
  tb_status st = tb_cl_kernel(d, slot, name, cache);
  if (st == TB_OK) st = tb_cl_enqueue(d, q, *cache, name, dst, src, w);
  tb__mutex_unlock(&d->lock);
  return st;
}

/* ------------------------------------------------------------------------ */
/* Strided copies                                                           */
/* ------------------------------------------------------------------------ */

/*
 * The walk for desc: the core's plan (tb__copy_plan) with the start offsets
 * it implies. False when more than TB_CL_MAX_NDIM dimensions remain.
 */
static bool tb_cl_plan(const tb_copy_desc *desc, int64_t dst_item, int64_t src_item,
                       tb_cl_walk *w) {
  int64_t numel = 1;
  for (int32_t k = 0; k < desc->ndim; k++) numel *= desc->shape[k];
  *w = (tb_cl_walk){.dst_off = (int64_t)desc->dst_byte_offset,
                    .src_off = (int64_t)desc->src_byte_offset,
                    .numel = numel};
  if (numel == 0) return true; /* nothing to walk */
  tb_copy_dim dims[TB_MAX_NDIM];
  int64_t src_shift, dst_shift;
  int32_t nd = tb__copy_plan(desc, (size_t)src_item, (size_t)dst_item, &src_shift, &dst_shift, dims);
  if (nd > TB_CL_MAX_NDIM) return false;
  w->dst_off += dst_shift;
  w->src_off += src_shift;
  for (int32_t k = 0; k < nd; k++) {
    w->shape[k] = dims[k].n;
    w->dst_strides[k] = dims[k].ds;
    w->src_strides[k] = dims[k].ss;
  }
  w->ndim = nd;
  return true;
}

/* Whether every element offset on one side is a multiple of `align`. */
static bool tb_cl_aligned(int64_t offset, const cl_long *strides, int32_t ndim, int64_t align) {
  if (offset % align != 0) return false;
  for (int32_t k = 0; k < ndim; k++) {
    if (strides[k] % align != 0) return false;
  }
  return true;
}

/* The alignment a cast kernel needs of one element: its part's size. */
static int64_t tb_cl_part_size(const tb_dtype_info *info) {
  bool complex = info->cast_kind == TB_K_C64 || info->cast_kind == TB_K_C128;
  return complex ? (int64_t)info->itemsize / 2 : (int64_t)info->itemsize;
}

/* The extent of one side of a copy: the span of bytes [low, high) around
 * its element 0 that its elements reach. */
static tb_status tb_cl_host_span(const tb_copy_desc *desc, bool dst_side, tb_extent *e) {
  return tb__layout_extent("opencl copy", dst_side ? desc->dst_dtype : desc->src_dtype, desc->ndim,
                           desc->shape, dst_side ? desc->dst_strides : desc->src_strides, e);
}

/* Host source -> device: the source's span is uploaded into a temporary
 * buffer (taken from the host at creation, so the host may reuse it at
 * once) and the kernel reads it there. */
static tb_status tb_cl_from_host(tb_cl_device *d, cl_command_queue q, const tb_copy_desc *desc,
                                 tb_cast_kind from, tb_cast_kind to, size_t move, tb_cl_walk *w) {
  tb_extent e;
  tb_status st = tb_cl_host_span(desc, false, &e);
  if (st != TB_OK) return st;
  uint64_t span = (uint64_t)(e.high_byte - e.low_byte);
  /* A sparse source (a step of 100, say) would upload mostly gaps: staging
   * uploads only the destination's elements. */
  if (span > 4 * (uint64_t)e.nbytes + 65536 || span > d->max_alloc) return TB_ERR_UNSUPPORTED;
  const char *first = (const char *)desc->src + desc->src_byte_offset + e.low_byte;
  cl_int err;
  cl_mem tmp = CL.CreateBuffer(d->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, (size_t)span,
                               (void *)(uintptr_t)first, &err);
  if (tmp == NULL) {
    return tb_cl_fail(err, d, "clCreateBuffer(nbytes = %" PRIu64 ", from the host)", span);
  }
  w->src_off -= (cl_long)desc->src_byte_offset + e.low_byte;
  st = tb_cl_launch(d, q, from, to, move, tb_cl_mem(desc->dst), tmp, w);
  CL.ReleaseMemObject(tmp); /* freed by the runtime once the kernel is done */
  return st;
}

/* Device -> host destination without gaps: the kernel writes the span into
 * a temporary buffer, read back in one blocking read. A destination with
 * gaps is staged by the library, which keeps the gaps' bytes. */
static tb_status tb_cl_to_host(tb_cl_device *d, cl_command_queue q, const tb_copy_desc *desc,
                               tb_cast_kind from, tb_cast_kind to, size_t move, tb_cl_walk *w) {
  tb_extent e;
  tb_status st = tb_cl_host_span(desc, true, &e);
  if (st != TB_OK) return st;
  uint64_t span = (uint64_t)(e.high_byte - e.low_byte);
  if (span != (uint64_t)e.nbytes || span > d->max_alloc) return TB_ERR_UNSUPPORTED;
  cl_int err;
  cl_mem tmp = CL.CreateBuffer(d->context, CL_MEM_WRITE_ONLY, (size_t)span, NULL, &err);
  if (tmp == NULL) {
    return tb_cl_fail(err, d, "clCreateBuffer(nbytes = %" PRIu64 ", for the host)", span);
  }
  w->dst_off -= (cl_long)desc->dst_byte_offset + e.low_byte;
  st = tb_cl_launch(d, q, from, to, move, tmp, tb_cl_mem(desc->src), w);
  if (st == TB_OK) {
    char *first = (char *)desc->dst + desc->dst_byte_offset + e.low_byte;
    err = CL.EnqueueReadBuffer(q, tmp, CL_TRUE, 0, (size_t)span, first, 0, NULL, NULL);
    if (err != CL_SUCCESS) {
      st = tb_cl_fail(err, d, "clEnqueueReadBuffer(nbytes = %" PRIu64 ", to the host)", span);
    }
  }
  CL.ReleaseMemObject(tmp);
  return st;
}

/* A copy without conversion between two dense runs of bytes needs no
 * kernel: one write, read or buffer copy. */
static tb_status tb_cl_dense_move(tb_cl_device *d, cl_command_queue q, const tb_copy_desc *desc,
                                  const tb_cl_walk *w, uint64_t nbytes) {
  bool dst_host = tb__device_is_host(desc->dst_device);
  bool src_host = tb__device_is_host(desc->src_device);
  size_t doff = (size_t)w->dst_off, soff = (size_t)w->src_off, n = (size_t)nbytes;
  cl_int err;
  if (src_host) {
    err = CL.EnqueueWriteBuffer(q, tb_cl_mem(desc->dst), CL_TRUE, doff, n,
                                (const char *)desc->src + soff, 0, NULL, NULL);
    if (err != CL_SUCCESS) return tb_cl_fail(err, d, "clEnqueueWriteBuffer(nbytes = %zu)", n);
  } else if (dst_host) {
    err = CL.EnqueueReadBuffer(q, tb_cl_mem(desc->src), CL_TRUE, soff, n, (char *)desc->dst + doff,
                               0, NULL, NULL);
    if (err != CL_SUCCESS) return tb_cl_fail(err, d, "clEnqueueReadBuffer(nbytes = %zu)", n);
  } else {
    err = CL.EnqueueCopyBuffer(q, tb_cl_mem(desc->src), tb_cl_mem(desc->dst), soff, doff, n, 0,
                               NULL, NULL);
    if (err != CL_SUCCESS) return tb_cl_fail(err, d, "clEnqueueCopyBuffer(nbytes = %zu)", n);
  }
  return TB_OK;
}

/* Whether a device side's buffer belongs to the backend's context: only
 * there are the kernels built. */
static tb_status tb_cl_ours(tb_cl_device *d, const void *handle, bool *ours) {
  cl_context context;
  tb_status st = tb_cl_mem_context(d, tb_cl_mem(handle), &context);
  *ours = st == TB_OK && context == d->context;
  return st;
}

static tb_status tb_opencl_copy_strided(const tb_device_vtable *self, const tb_copy_desc *desc,
                                        void *stream) {
  (void)self;
  bool dst_host = tb__device_is_host(desc->dst_device);
  bool src_host = tb__device_is_host(desc->src_device);
  if ((dst_host && src_host) || (!dst_host && desc->dst_device.device_type != kDLOpenCL) ||
      (!src_host && desc->src_device.device_type != kDLOpenCL) ||
      (!dst_host && !src_host && desc->dst_device.device_id != desc->src_device.device_id)) {
    return TB_ERR_UNSUPPORTED; /* another device, or two OpenCL devices: staged */
  }
  tb_cl_device *d = NULL;
  int32_t device_id = dst_host ? desc->src_device.device_id : desc->dst_device.device_id;
  tb_status st = tb_cl_device_at("copy", device_id, &d);
  if (st != TB_OK) return st;
  const tb_dtype_info *si = tb__dtype_info(desc->src_dtype), *di = tb__dtype_info(desc->dst_dtype);
  if (si == NULL || di == NULL || si->itemsize == 0 || di->itemsize == 0) {
    return TB_ERR_UNSUPPORTED; /* the library reports unknown and packed dtypes */
  }
  size_t move = 0;
  tb_cast_kind from = si->cast_kind, to = di->cast_kind;
  if (tb_dtype_equal(desc->src_dtype, desc->dst_dtype)) {
    move = si->itemsize;
    if (move != 1 && move != 2 && move != 4 && move != 8 && move != 16) return TB_ERR_UNSUPPORTED;
  } else {
    if (from == TB_K_NONE || to == TB_K_NONE) return TB_ERR_UNSUPPORTED;
    tb_cast_loop_fn unused;
    if ((st = tb__cast_loop(from, to, desc->cast_flags, &unused)) != TB_OK) return st;
  }
  if (desc->ndim > TB_MAX_NDIM) return TB_ERR_UNSUPPORTED;
  tb_cl_walk w;
  if (!tb_cl_plan(desc, (int64_t)di->itemsize, (int64_t)si->itemsize, &w)) {
    return TB_ERR_UNSUPPORTED;
  }
  if (w.numel == 0) return TB_OK;
  /* Moves load whole elements (16 bytes as two 8-byte words); casts load
   * each part of an element on its own. */
  int64_t move_unit = move == 16 ? 8 : (int64_t)move;
  int64_t dst_align = move != 0 ? move_unit : tb_cl_part_size(di);
  int64_t src_align = move != 0 ? move_unit : tb_cl_part_size(si);
  /* Host spans are uploaded to offset 0 of a fresh buffer: only device
   * sides can be misaligned. */
  if ((!dst_host && !tb_cl_aligned(w.dst_off, w.dst_strides, w.ndim, dst_align)) ||
      (!src_host && !tb_cl_aligned(w.src_off, w.src_strides, w.ndim, src_align))) {
    return TB_ERR_UNSUPPORTED;
  }
  if ((st = tb_cl_ready(d)) != TB_OK) return st;
  bool ours = true;
  if (!dst_host && (st = tb_cl_ours(d, desc->dst, &ours)) != TB_OK) return st;
  if (ours && !src_host && (st = tb_cl_ours(d, desc->src, &ours)) != TB_OK) return st;
  if (!ours) return TB_ERR_UNSUPPORTED; /* a caller's context: staged with byte copies */
  cl_command_queue q = stream != NULL ? (cl_command_queue)stream : d->queue;
  if (move != 0 && (w.ndim == 0 || (w.ndim == 1 && w.dst_strides[0] == (cl_long)move &&
                                    w.src_strides[0] == (cl_long)move))) {
    return tb_cl_dense_move(d, q, desc, &w, (uint64_t)w.numel * move);
  }
  if (src_host) return tb_cl_from_host(d, q, desc, from, to, move, &w);
  if (dst_host) return tb_cl_to_host(d, q, desc, from, to, move, &w);
  return tb_cl_launch(d, q, from, to, move, tb_cl_mem(desc->dst), tb_cl_mem(desc->src), &w);
}

/* ------------------------------------------------------------------------ */
/* Streams                                                                  */
/* ------------------------------------------------------------------------ */

/* DLPack's stream values 1 and 2 (the legacy and per-thread default
 * streams) have no OpenCL meaning: they name the device's own queue, as
 * NULL does. */
static cl_command_queue tb_cl_stream(tb_cl_device *d, void *stream) {
  uintptr_t v = (uintptr_t)stream;
  return v == 0 || v == 1 || v == 2 ? d->queue : (cl_command_queue)stream;
}

static tb_status tb_opencl_synchronize(const tb_device_vtable *self, int32_t device_id,
                                       void *stream) {
  (void)self;
  tb_cl_device *d = NULL;
  tb_status st = tb_cl_device_at("synchronize", device_id, &d);
  if (st != TB_OK) return st;
  bool own = (uintptr_t)stream <= 2;
  /* The device's queue before its first use has nothing to wait for. */
  if (own && !atomic_load_explicit(&d->ready, memory_order_acquire)) return TB_OK;
  cl_command_queue q = tb_cl_stream(d, stream);
  cl_int err = CL.Finish(q);
  if (err != CL_SUCCESS) return tb_cl_fail(err, d, "clFinish(queue %p)", (void *)q);
  return TB_OK;
}

/*
 * The consumer's queue waits for what is queued on the producer's now. In
 * one context that is a marker event on the producer and a barrier on the
 * consumer waiting for it (OpenCL 1.2), the host not waiting; queues of
 * different contexts cannot share events, and devices older than 1.2 lack
 * the calls, so then the host waits for the producer (clFinish).
 */
static tb_status tb_opencl_stream_wait(const tb_device_vtable *self, int32_t device_id,
                                       void *producer, void *consumer) {
  (void)self;
  tb_cl_device *d = NULL;
  tb_status st = tb_cl_device_at("stream_wait", device_id, &d);
  if (st != TB_OK) return st;
  bool producer_own = (uintptr_t)producer <= 2, consumer_own = (uintptr_t)consumer <= 2;
  /* Nothing was ever queued on a device queue not made yet. */
  if (producer_own && !atomic_load_explicit(&d->ready, memory_order_acquire)) return TB_OK;
  if (consumer_own && (st = tb_cl_ready(d)) != TB_OK) return st;
  cl_command_queue p = tb_cl_stream(d, producer), c = tb_cl_stream(d, consumer);
  if (p == c) return TB_OK; /* in-order: already after */
  cl_context pc = d->context, cc = NULL;
  cl_int err = CL_SUCCESS;
  if (!producer_own) err = CL.GetCommandQueueInfo(p, CL_QUEUE_CONTEXT, sizeof pc, &pc, NULL);
  if (consumer_own) {
    cc = d->context;
  } else if (err == CL_SUCCESS) {
    err = CL.GetCommandQueueInfo(c, CL_QUEUE_CONTEXT, sizeof cc, &cc, NULL);
  }
  if (err != CL_SUCCESS) return tb_cl_fail(err, d, "clGetCommandQueueInfo(CL_QUEUE_CONTEXT)");
  if (pc != cc || !d->has_markers) {
    err = CL.Finish(p);
    if (err != CL_SUCCESS) return tb_cl_fail(err, d, "clFinish(producer queue %p)", (void *)p);
    return TB_OK;
  }
  cl_event done;
  err = CL.EnqueueMarkerWithWaitList(p, 0, NULL, &done);
  if (err != CL_SUCCESS) return tb_cl_fail(err, d, "clEnqueueMarkerWithWaitList(producer queue)");
  err = CL.Flush(p); /* the marker must reach the device for the consumer to progress */
  if (err == CL_SUCCESS) err = CL.EnqueueBarrierWithWaitList(c, 1, &done, NULL);
  CL.ReleaseEvent(done);
  if (err != CL_SUCCESS) {
    return tb_cl_fail(err, d, "clEnqueueBarrierWithWaitList(consumer queue %p)", (void *)c);
  }
  return TB_OK;
}

/* ------------------------------------------------------------------------ */
/* Registration                                                             */
/* ------------------------------------------------------------------------ */

static const tb_device_vtable tb_cl_backend = {
    .abi_version = TB_BACKEND_ABI_VERSION,
    .device_type = TB_DL_OPENCL,
    .name = "opencl",
    .device_count = tb_opencl_device_count,
    .alloc = tb_opencl_alloc,
    .free = tb_opencl_free,
    .copy_bytes = tb_opencl_copy_bytes,
    .copy_strided = tb_opencl_copy_strided,
    .synchronize = tb_opencl_synchronize,
    .stream_wait = tb_opencl_stream_wait,
};

void tb__opencl_register(void);

/*
 * Called by the registry while it registers the built-in backends, on the
 * first use of the registry. The table is registered whether or not a driver
 * is present: loading the driver is left to the first question asked of the
 * backend, so programs that never use OpenCL never load it.
 */
void tb__opencl_register(void) { (void)tb__backend_add(&tb_cl_backend); }
