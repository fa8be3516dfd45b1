// A host-only stand-in for the CUDA driver (libcuda.so.1), for tests only:
// built as build/src/backends/cuda/emu/libcuda.so.1 and put first on
// LD_LIBRARY_PATH by the `cuda_emulated` test, it lets tests/test_cuda.c run
// the whole backend on a machine without a GPU. It is not part of the library.
//
// One device, with everything done synchronously on the calling thread:
//   - kernels.cu is compiled here as host C++ (the few CUDA built-ins it uses
//     are defined below with their documented semantics) and cuLaunchKernel
//     runs every thread of the grid in turn, so the conversions and the index
//     walk are the real ones;
//   - device memory is mapped PROT_NONE except while a driver call runs, so a
//     host access to it by the library crashes the test;
//   - calls are checked the way the real driver would fail them, and more
//     strictly where the backend promises more: a context must be current,
//     streams must exist, async copies to or from the host must use pinned
//     memory, cuMemcpyAsync is only for memory the driver knows, launches
//     must have the backend's shape, divisors and in-bounds extents;
//   - cuStreamWaitValue32 reports "not supported", cuMemGetInfo 1 GiB free.
// Diagnostics go to stderr prefixed "fake libcuda:".
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <vector>

// ---- the CUDA built-ins kernels.cu uses, on the host ----
#define __device__
#define __global__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(threads)
#define __grid_constant__
namespace {
struct emu_dim3 {
  unsigned x, y, z;
};
thread_local emu_dim3 blockIdx, threadIdx, gridDim, blockDim;
inline long long __double_as_longlong(double d) {
  long long r;
  memcpy(&r, &d, sizeof r);
  return r;
}
inline double __longlong_as_double(long long b) {
  double r;
  memcpy(&r, &b, sizeof r);
  return r;
}
inline unsigned __float_as_uint(float f) {
  unsigned r;
  memcpy(&r, &f, sizeof r);
  return r;
}
inline float __uint_as_float(unsigned b) {
  float r;
  memcpy(&r, &b, sizeof r);
  return r;
}
// Round to nearest even, as the host's IEEE conversions and multiply do.
inline float __double2float_rn(double d) { return static_cast<float>(d); }
inline float __uint2float_rn(unsigned u) { return static_cast<float>(u); }
inline double __ull2double_rn(unsigned long long u) { return static_cast<double>(u); }
inline double __ll2double_rn(long long v) { return static_cast<double>(v); }
inline double __dmul_rn(double a, double b) { return a * b; }
inline int __clzll(long long v) {
  return v == 0 ? 64 : __builtin_clzll(static_cast<unsigned long long>(v));
}
inline unsigned __umulhi(unsigned a, unsigned b) {
  return static_cast<unsigned>((static_cast<unsigned long long>(a) * b) >> 32);
}
}  // namespace

#include "../kernels.cu"

namespace {

typedef void (*kernel_fn)(const tb_cuda_kargs);
struct kernel_info {
  const char *name;
  kernel_fn fn;
  int src_bytes, dst_bytes, src_align, dst_align;
};
// Element size and the alignment the kernels' loads and stores need.
enum { SZ_bool = 1, SZ_i8 = 1, SZ_i16 = 2, SZ_i32 = 4, SZ_i64 = 8, SZ_u8 = 1, SZ_u16 = 2,
       SZ_u32 = 4, SZ_u64 = 8, SZ_f16 = 2, SZ_bf16 = 2, SZ_f32 = 4, SZ_f64 = 8, SZ_c64 = 8,
       SZ_c128 = 16 };
enum { AL_bool = 1, AL_i8 = 1, AL_i16 = 2, AL_i32 = 4, AL_i64 = 8, AL_u8 = 1, AL_u16 = 2,
       AL_u32 = 4, AL_u64 = 8, AL_f16 = 2, AL_bf16 = 2, AL_f32 = 4, AL_f64 = 8, AL_c64 = 4,
       AL_c128 = 8 };
#define EMU_CAST(from, to)                                                                  \
  {"tb_cuda_cast_" #from "_" #to, tb_cuda_cast_##from##_##to, SZ_##from, SZ_##to, AL_##from, \
   AL_##to},
#define EMU_ROW(from) TB_TARGETS(EMU_CAST, from)
const kernel_info kernels[] = {
    TB_SOURCES(EMU_ROW)
    {"tb_cuda_copy_1", tb_cuda_copy_1, 1, 1, 1, 1},
    {"tb_cuda_copy_2", tb_cuda_copy_2, 2, 2, 2, 2},
    {"tb_cuda_copy_4", tb_cuda_copy_4, 4, 4, 4, 4},
    {"tb_cuda_copy_8", tb_cuda_copy_8, 8, 8, 8, 8},
    {"tb_cuda_copy_16", tb_cuda_copy_16, 16, 16, 8, 8},
};

enum kind { DEVICE, PINNED, MANAGED };
struct allocation {
  size_t size, mapped;
  kind k;
};

std::recursive_mutex mu;
std::map<uintptr_t, allocation> allocations;
thread_local std::vector<void *> ctx_stack;
int the_context, the_module, streams[256], events[4096];
int n_streams, n_events;

typedef unsigned CUresult;
const CUresult OK = 0, INVALID_VALUE = 1, OUT_OF_MEMORY = 2, INVALID_CONTEXT = 201,
               INVALID_HANDLE = 400, NOT_FOUND = 500, NOT_SUPPORTED = 801;

CUresult fail(CUresult r, const char *why) {
  fprintf(stderr, "fake libcuda: %s\n", why);
  return r;
}

// Device memory is readable only while a driver call that touches it runs.
void protect_device_memory(int prot) {
  for (auto &a : allocations) {
    if (a.second.k == DEVICE) mprotect(reinterpret_cast<void *>(a.first), a.second.mapped, prot);
  }
}
struct device_access {
  std::lock_guard<std::recursive_mutex> lock{mu};
  device_access() { protect_device_memory(PROT_READ | PROT_WRITE); }
  ~device_access() { protect_device_memory(PROT_NONE); }
};

const allocation *find(uintptr_t p, size_t n) {
  auto it = allocations.upper_bound(p);
  if (it == allocations.begin()) return nullptr;
  --it;
  return p >= it->first && p + n <= it->first + it->second.size ? &it->second : nullptr;
}
bool gpu_reachable(uintptr_t p, size_t n) {
  const allocation *a = find(p, n);
  return a != nullptr && a->k != PINNED;
}
bool pinned(const void *p, size_t n) {
  const allocation *a = find(reinterpret_cast<uintptr_t>(p), n);
  return a != nullptr && a->k == PINNED;
}
bool have_context() { return !ctx_stack.empty(); }
bool known_stream(void *s) {
  if (s == nullptr || s == reinterpret_cast<void *>(1) || s == reinterpret_cast<void *>(2)) {
    return true;
  }
  for (int i = 0; i < n_streams; i++) {
    if (s == &streams[i]) return true;
  }
  return false;
}
CUresult check_call(void *stream) {
  if (!have_context()) return fail(INVALID_CONTEXT, "call without a current context");
  if (!known_stream(stream)) return fail(INVALID_HANDLE, "unknown stream");
  return OK;
}

CUresult allocate(void **p, size_t n, kind k) {
  if (!have_context()) return fail(INVALID_CONTEXT, "allocation without a current context");
  if (n == 0) return INVALID_VALUE;
  if (n > (static_cast<size_t>(8) << 30)) return OUT_OF_MEMORY;
  std::lock_guard<std::recursive_mutex> lock(mu);
  size_t mapped = (n + 4095) & ~static_cast<size_t>(4095);
  void *m = mmap(nullptr, mapped, k == DEVICE ? PROT_NONE : PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return OUT_OF_MEMORY;
  allocations[reinterpret_cast<uintptr_t>(m)] = allocation{n, mapped, k};
  *p = m;
  return OK;
}
CUresult release(void *p, bool host) {
  if (!have_context()) return fail(INVALID_CONTEXT, "free without a current context");
  std::lock_guard<std::recursive_mutex> lock(mu);
  auto it = allocations.find(reinterpret_cast<uintptr_t>(p));
  if (it == allocations.end() || (it->second.k == PINNED) != host) {
    return fail(INVALID_VALUE, "free of a pointer this allocator did not return");
  }
  munmap(p, it->second.mapped);
  allocations.erase(it);
  return OK;
}

// The address range a launch reaches on one side must lie in GPU memory.
bool launch_in_bounds(uint64_t first, const tb_cuda_kargs &a, const int64_t *strides,
                      int bytes) {
  int64_t lo = 0, hi = 0;
  for (int k = 0; k < a.ndim; k++) {
    int64_t reach = static_cast<int64_t>(a.extent[k] - 1) * strides[k];
    (reach < 0 ? lo : hi) += reach;
  }
  return gpu_reachable(static_cast<uintptr_t>(first + static_cast<uint64_t>(lo)),
                       static_cast<size_t>(hi - lo + bytes));
}

__attribute__((destructor)) void check_exit() {
  if (!ctx_stack.empty()) {
    fprintf(stderr, "fake libcuda: the main thread exits with a context still current\n");
    _exit(3);
  }
}

}  // namespace

extern "C" {
CUresult cuGetErrorName(CUresult e, const char **s) {
  switch (e) {
    case OK: *s = "CUDA_SUCCESS"; return OK;
    case INVALID_VALUE: *s = "CUDA_ERROR_INVALID_VALUE"; return OK;
    case OUT_OF_MEMORY: *s = "CUDA_ERROR_OUT_OF_MEMORY"; return OK;
    case INVALID_CONTEXT: *s = "CUDA_ERROR_INVALID_CONTEXT"; return OK;
    case INVALID_HANDLE: *s = "CUDA_ERROR_INVALID_HANDLE"; return OK;
    case NOT_FOUND: *s = "CUDA_ERROR_NOT_FOUND"; return OK;
    case NOT_SUPPORTED: *s = "CUDA_ERROR_NOT_SUPPORTED"; return OK;
    default: return INVALID_VALUE;
  }
}
CUresult cuGetErrorString(CUresult e, const char **s) {
  const char *name;
  if (cuGetErrorName(e, &name) != OK) return INVALID_VALUE;
  *s = "reported by the fake driver";
  return OK;
}
CUresult cuInit(unsigned flags) { return flags == 0 ? OK : INVALID_VALUE; }
CUresult cuDriverGetVersion(int *v) {
  *v = 13000;
  return OK;
}
CUresult cuDeviceGetCount(int *count) {
  *count = 1;
  return OK;
}
CUresult cuDeviceGet(int *device, int ordinal) {
  if (ordinal != 0) return INVALID_VALUE;
  *device = 0;
  return OK;
}
CUresult cuDeviceGetAttribute(int *value, unsigned attribute, int device) {
  (void)attribute;
  if (device != 0) return INVALID_VALUE;
  *value = 1;
  return OK;
}
CUresult cuDevicePrimaryCtxRetain(void **ctx, int device) {
  if (device != 0) return INVALID_VALUE;
  *ctx = &the_context;
  return OK;
}
CUresult cuDevicePrimaryCtxRelease_v2(int device) { return device == 0 ? OK : INVALID_VALUE; }
CUresult cuCtxPushCurrent_v2(void *ctx) {
  if (ctx != &the_context) return fail(INVALID_CONTEXT, "push of an unknown context");
  ctx_stack.push_back(ctx);
  return OK;
}
CUresult cuCtxPopCurrent_v2(void **ctx) {
  if (ctx_stack.empty()) return fail(INVALID_CONTEXT, "pop with no context current");
  if (ctx != nullptr) *ctx = ctx_stack.back();
  ctx_stack.pop_back();
  return OK;
}
CUresult cuCtxGetCurrent(void **ctx) {
  *ctx = ctx_stack.empty() ? nullptr : ctx_stack.back();
  return OK;
}
CUresult cuStreamCreate(void **stream, unsigned flags) {
  (void)flags;
  if (!have_context()) return fail(INVALID_CONTEXT, "stream without a current context");
  std::lock_guard<std::recursive_mutex> lock(mu);
  if (n_streams == 256) return OUT_OF_MEMORY;
  *stream = &streams[n_streams++];
  return OK;
}
CUresult cuStreamDestroy_v2(void *stream) { return check_call(stream); }
CUresult cuStreamSynchronize(void *stream) { return check_call(stream); }
CUresult cuStreamWaitEvent(void *stream, void *event, unsigned flags) {
  (void)event;
  (void)flags;
  return check_call(stream);
}
CUresult cuStreamWaitValue32_v2(void *stream, uintptr_t addr, unsigned value, unsigned flags) {
  (void)stream, (void)addr, (void)value, (void)flags;
  return NOT_SUPPORTED;
}
CUresult cuEventCreate(void **event, unsigned flags) {
  (void)flags;
  if (!have_context()) return fail(INVALID_CONTEXT, "event without a current context");
  std::lock_guard<std::recursive_mutex> lock(mu);
  *event = &events[n_events++ % 4096];
  return OK;
}
CUresult cuEventRecord(void *event, void *stream) {
  (void)event;
  return check_call(stream);
}
CUresult cuEventSynchronize(void *event) { return event != nullptr ? OK : INVALID_HANDLE; }
CUresult cuEventQuery(void *event) { return event != nullptr ? OK : INVALID_HANDLE; }
CUresult cuEventDestroy_v2(void *event) { return event != nullptr ? OK : INVALID_HANDLE; }
CUresult cuMemAlloc_v2(uintptr_t *p, size_t n) {
  return allocate(reinterpret_cast<void **>(p), n, DEVICE);
}
CUresult cuMemAllocManaged(uintptr_t *p, size_t n, unsigned flags) {
  if (flags != 1) return INVALID_VALUE; /* CU_MEM_ATTACH_GLOBAL */
  return allocate(reinterpret_cast<void **>(p), n, MANAGED);
}
CUresult cuMemHostAlloc(void **p, size_t n, unsigned flags) {
  (void)flags;
  return allocate(p, n, PINNED);
}
CUresult cuMemFree_v2(uintptr_t p) { return release(reinterpret_cast<void *>(p), false); }
CUresult cuMemFreeHost(void *p) { return release(p, true); }
CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total_bytes) {
  *free_bytes = static_cast<size_t>(1) << 30;
  *total_bytes = static_cast<size_t>(2) << 30;
  return OK;
}
CUresult cuMemcpyHtoDAsync_v2(uintptr_t dst, const void *src, size_t n, void *stream) {
  device_access access;
  if (CUresult r = check_call(stream)) return r;
  if (!gpu_reachable(dst, n)) return fail(INVALID_VALUE, "HtoD into memory that is not the GPU's");
  if (!pinned(src, n)) return fail(INVALID_VALUE, "async HtoD from memory that is not pinned");
  memcpy(reinterpret_cast<void *>(dst), src, n);
  return OK;
}
CUresult cuMemcpyDtoHAsync_v2(void *dst, uintptr_t src, size_t n, void *stream) {
  device_access access;
  if (CUresult r = check_call(stream)) return r;
  if (!gpu_reachable(src, n)) return fail(INVALID_VALUE, "DtoH from memory that is not the GPU's");
  if (!pinned(dst, n)) return fail(INVALID_VALUE, "async DtoH into memory that is not pinned");
  memcpy(dst, reinterpret_cast<void *>(src), n);
  return OK;
}
CUresult cuMemcpyDtoDAsync_v2(uintptr_t dst, uintptr_t src, size_t n, void *stream) {
  device_access access;
  if (CUresult r = check_call(stream)) return r;
  if (!gpu_reachable(dst, n) || !gpu_reachable(src, n)) {
    return fail(INVALID_VALUE, "DtoD outside the GPU's memory");
  }
  memmove(reinterpret_cast<void *>(dst), reinterpret_cast<void *>(src), n);
  return OK;
}
CUresult cuMemcpyAsync(uintptr_t dst, uintptr_t src, size_t n, void *stream) {
  device_access access;
  if (CUresult r = check_call(stream)) return r;
  if (find(dst, n) == nullptr || find(src, n) == nullptr) {
    return fail(INVALID_VALUE, "cuMemcpyAsync with memory the driver does not know");
  }
  memmove(reinterpret_cast<void *>(dst), reinterpret_cast<void *>(src), n);
  return OK;
}
CUresult cuMemcpyPeerAsync(uintptr_t dst, void *dst_ctx, uintptr_t src, void *src_ctx, size_t n,
                           void *stream) {
  (void)dst_ctx, (void)src_ctx, (void)dst, (void)src, (void)n, (void)stream;
  return fail(NOT_SUPPORTED, "one device: no peer copies");
}
CUresult cuPointerGetAttribute(void *data, unsigned attribute, uintptr_t p) {
  std::lock_guard<std::recursive_mutex> lock(mu);
  const allocation *a = find(p, 1);
  if (a == nullptr) return INVALID_VALUE;
  switch (attribute) {
    case 2: *static_cast<unsigned *>(data) = a->k == PINNED ? 1 : 2; return OK; /* MEMORY_TYPE */
    case 8: *static_cast<unsigned *>(data) = a->k == MANAGED; return OK; /* IS_MANAGED */
    case 9: *static_cast<int *>(data) = 0; return OK;                     /* DEVICE_ORDINAL */
    default: return INVALID_VALUE;
  }
}
CUresult cuModuleLoadData(void **module, const void *image) {
  if (!have_context()) return fail(INVALID_CONTEXT, "module load without a current context");
  uint32_t magic;
  memcpy(&magic, image, sizeof magic);
  if (magic != 0xBA55ED50u) return fail(INVALID_VALUE, "the image is not a fatbin");
  *module = &the_module;
  return OK;
}
CUresult cuModuleUnload(void *module) { return module == &the_module ? OK : INVALID_HANDLE; }
CUresult cuModuleGetFunction(void **function, void *module, const char *name) {
  if (module != &the_module) return INVALID_HANDLE;
  for (const kernel_info &k : kernels) {
    if (strcmp(k.name, name) == 0) {
      *function = const_cast<kernel_info *>(&k);
      return OK;
    }
  }
  return NOT_FOUND;
}
CUresult cuLaunchKernel(void *function, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                        unsigned by, unsigned bz, unsigned shared, void *stream, void **params,
                        void **extra) {
  device_access access;
  if (CUresult r = check_call(stream)) return r;
  if (gy != 1 || gz != 1 || by != 1 || bz != 1 || bx != TB_CUDA_BLOCK || gx == 0 || gx > 65536 ||
      shared != 0 || extra != nullptr || params == nullptr) {
    return fail(INVALID_VALUE, "launch shape");
  }
  const kernel_info *k = static_cast<const kernel_info *>(function);
  tb_cuda_kargs a;
  memcpy(&a, params[0], sizeof a);
  if (a.ndim < 1 || a.ndim > TB_CUDA_MAX_DIMS || a.numel == 0 ||
      a.numel > TB_CUDA_MAX_LAUNCH_ELEMS) {
    return fail(INVALID_VALUE, "launch arguments: ndim or numel");
  }
  uint64_t product = 1;
  for (int d = 0; d < a.ndim; d++) {
    uint32_t s = 0;
    while ((1ull << s) < a.extent[d]) s++;
    uint64_t magic = ((((1ull << s) - a.extent[d]) << 32) / (a.extent[d] ? a.extent[d] : 1)) + 1;
    if (a.extent[d] == 0 || a.magic[d] != magic || a.shift[d] != s) {
      return fail(INVALID_VALUE, "launch arguments: a divider");
    }
    product *= a.extent[d];
  }
  if (product != a.numel) return fail(INVALID_VALUE, "launch arguments: numel");
  if (static_cast<uint64_t>(gx - 1) * TB_CUDA_BLOCK >= a.numel) {
    return fail(INVALID_VALUE, "launch: blocks with no element");
  }
  if (!launch_in_bounds(a.src, a, a.src_strides, k->src_bytes) ||
      !launch_in_bounds(a.dst, a, a.dst_strides, k->dst_bytes)) {
    return fail(INVALID_VALUE, "launch: the kernel would reach outside the GPU's memory");
  }
  if (a.src % static_cast<uint64_t>(k->src_align) != 0 ||
      a.dst % static_cast<uint64_t>(k->dst_align) != 0) {
    return fail(INVALID_VALUE, "launch: misaligned elements");
  }
  gridDim = emu_dim3{gx, 1, 1};
  blockDim = emu_dim3{TB_CUDA_BLOCK, 1, 1};
  for (unsigned b = 0; b < gx; b++) {
    for (unsigned t = 0; t < TB_CUDA_BLOCK; t++) {
      blockIdx = emu_dim3{b, 0, 0};
      threadIdx = emu_dim3{t, 0, 0};
      k->fn(a);
    }
  }
  return OK;
}
}  // extern "C"
