// A host-only stand-in for the CUDA driver (libcuda.so.1), for tests only:
// built as build/src/backends/cuda/emu/libcuda.so.1 and put first on
// LD_LIBRARY_PATH by the `cuda_emulated` test, it lets tests/test_cuda.c run
// the whole backend on a machine without a GPU. It is not part of the library.
//
// One device that works asynchronously, like a GPU, and lazily, so that a
// missing synchronisation shows:
//   - work queued on a stream (copies, launches, event records, waits on
//     events and on values) runs later on one worker thread, in order per
//     stream. Streams created without CU_STREAM_NON_BLOCKING (the backend's),
//     and the per-thread default stream, synchronise with the legacy default
//     stream both ways. The worker runs an item only when a host thread waits
//     for it (cuStreamSynchronize, cuEventSynchronize: then only that stream's
//     work and what it depends on) or once it has been queued for `lag_ms`
//     (500 ms; then the newest such item first), so host memory that queued
//     work has not written yet reads stale, a staging buffer refilled too
//     early is copied with the wrong bytes, and a stream that does not wait
//     for another's event runs before that stream's work. cuEventQuery says
//     CUDA_ERROR_NOT_READY until the event's work is done;
//     cuStreamWaitValue32 holds its stream until the value is there;
//   - kernels.cu is compiled here as host C++ (the few CUDA built-ins it uses
//     are defined below with their documented semantics) and a launch runs
//     every thread of the grid in turn, so the conversions and the index
//     walk are the real ones;
//   - device memory is a memfd mapped twice: PROT_NONE at the address the
//     library gets, so a host access to it crashes the test, and read-write
//     at another address that only the worker uses. It starts filled with
//     0xA5 bytes, not zeros;
//   - cuMemFree or cuMemFreeHost of memory that queued work still uses is a
//     misuse (the backend promises to drain first): it is reported on stderr
//     and counted, and the memory stays mapped until that work is done;
//     fake_cuda_misuses() hands the count to the test, which fails then;
//   - CUDA IPC works across processes as the real driver's does: a device
//     allocation keeps its memfd open, and cuIpcGetMemHandle's 64 bytes name
//     it (the exporter's pid, the descriptor's number, the size and a random
//     token that is also in the memfd's name); cuIpcOpenMemHandle in another
//     process opens /proc/<pid>/fd/<n>, checks the name and size, and maps
//     it as device memory (PROT_NONE to the library, like the exporter's).
//     As with the real driver, a handle does not open in the process that
//     made it (CUDA_ERROR_INVALID_CONTEXT), bytes that name no live
//     allocation get CUDA_ERROR_INVALID_VALUE, opening an open handle again
//     returns the same pointer and counts the opens, cuIpcCloseMemHandle
//     unmaps at the last close (then cuMemGetAddressRange says
//     CUDA_ERROR_NOT_FOUND), and opened memory is not cuMemFree's to free.
//     fake_cuda_ipc_opens() says how many opens are not closed yet. Built
//     with FAKE_CUDA_NO_IPC (libcuda.so.1 in noipc/), the stand-in exports
//     none of the four IPC entry points, as an old or reduced driver;
//   - calls are checked the way the real driver would fail them, and more
//     strictly where the backend promises more: a context must be current,
//     streams and events must exist, async copies to or from the host must
//     use pinned memory, cuMemcpyAsync is only for memory the driver knows,
//     launches must have the backend's shape (at most 65536 blocks, and no
//     more than CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X), divisors and in-bounds
//     extents.
// fake_cuda_configure(key, value) lets a test set what the device reports
// and does (it returns the previous value, -1 for an unknown key):
//   "memory"        bytes of device memory (2 GiB; managed memory counts too),
//                   which cuMemAlloc enforces and cuMemGetInfo reports;
//   "attribute.N"   what cuDeviceGetAttribute says for attribute N (realistic
//                   grid and block limits, 1 for the rest);
//   "lag_ms"        how long queued work waits when nobody asks for it;
//   "fail.SYMBOL"   the n-th next call of the entry point SYMBOL (as
//                   exported, e.g. cuMemcpyDtoHAsync_v2) fails with
//                   CUDA_ERROR_UNKNOWN;
//   "reset"         everything back to the defaults (tests/test_cuda.c does
//                   this after every test).
// FAKE_CUDA_CONFIG="key=value,..." in the environment sets the same for a
// whole run, read at cuInit (so before the library first looks at the
// device's attributes, which it does once), and "reset" goes back to it.
// Diagnostics go to stderr prefixed "fake libcuda:".
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
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

typedef unsigned CUresult;
const CUresult OK = 0, INVALID_VALUE = 1, OUT_OF_MEMORY = 2, INVALID_CONTEXT = 201,
               MAP_FAILED_ = 205, INVALID_HANDLE = 400, NOT_FOUND = 500, NOT_READY = 600,
               NOT_SUPPORTED = 801, UNKNOWN = 999;

typedef std::chrono::steady_clock clock_type;

// ---- memory ----

enum kind { DEVICE, PINNED, MANAGED };
// One allocation: `base` is what the library sees, `alias` what the worker
// reads and writes (the same address for host-accessible memory). Unmapped
// when the last reference goes: the allocation table's, or queued work's.
struct memory {
  uintptr_t base = 0;
  char *alias = nullptr;
  size_t size = 0, mapped = 0;
  kind k = DEVICE;
  int fd = -1;            // device memory's memfd, which IPC handles name
  uint64_t token = 0;     // in the memfd's name too
  bool imported = false;  // opened with cuIpcOpenMemHandle
  memory() = default;
  memory(const memory &) = delete;
  memory &operator=(const memory &) = delete;
  ~memory() {
    munmap(reinterpret_cast<void *>(base), mapped);
    if (alias != reinterpret_cast<char *>(base)) munmap(alias, mapped);
    if (fd >= 0) close(fd);
  }
  char *at(uintptr_t p) const { return alias + (p - base); }
};
typedef std::shared_ptr<memory> memory_ref;

// ---- streams, queued work, events ----

struct stream;
struct dep {  // done once stream s has finished its item seq
  stream *s;
  uint64_t seq;
};
struct work {
  uint64_t seq = 0;
  clock_type::time_point due;
  const char *what = "";
  std::vector<dep> deps;                // on other streams
  std::vector<memory_ref> uses;         // kept mapped until done
  std::function<void()> run;            // empty for markers (event records, waits)
  const uint32_t *wait_addr = nullptr;  // cuStreamWaitValue32
  uint32_t wait_value = 0;
  unsigned wait_op = 0;
};
struct stream {
  bool blocking, legacy;
  bool destroyed = false;
  std::deque<std::unique_ptr<work>> queue;  // the front one runs first
  uint64_t last = 0, done = 0;              // seqs of the last queued and last finished items
  stream(bool b, bool l) : blocking(b), legacy(l) {}
};
struct event {
  stream *s = nullptr;  // null: never recorded
  uint64_t seq = 0;
};

int attribute_default(unsigned attribute) {
  switch (attribute) {
    case 1: return 1024;        // MAX_THREADS_PER_BLOCK
    case 2: return 1024;        // MAX_BLOCK_DIM_X
    case 3: return 1024;        // MAX_BLOCK_DIM_Y
    case 4: return 64;          // MAX_BLOCK_DIM_Z
    case 5: return 2147483647;  // MAX_GRID_DIM_X
    case 6: return 65535;       // MAX_GRID_DIM_Y
    case 7: return 65535;       // MAX_GRID_DIM_Z
    case 75: return 9;          // COMPUTE_CAPABILITY_MAJOR
    case 76: return 0;          // COMPUTE_CAPABILITY_MINOR
    default: return 1;
  }
}

const long long default_memory = 2ll << 30, default_lag_ms = 500;

struct driver {
  std::mutex mu;
  std::condition_variable wake;  // for the worker
  std::condition_variable done;  // for host threads waiting on work
  std::thread worker;
  bool stop = false;
  uint64_t seq = 0;
  std::map<uintptr_t, memory_ref> allocations;
  size_t used = 0;  // device and managed bytes
  stream legacy{true, true}, per_thread{true, false};
  std::vector<std::unique_ptr<stream>> created;  // kept after destruction: work may be queued
  std::set<void *> live_streams;
  std::set<event *> events;
  std::vector<const std::vector<dep> *> waiters;  // what blocked host threads wait for
  long long memory_total = default_memory, lag_ms = default_lag_ms;
  std::map<unsigned, int> attributes;
  std::map<std::string, long long> faults;
  unsigned long long misuses = 0;
  // Opened IPC handles: by base, the (pid, token) they came from and the
  // count of opens not closed yet; by (pid, token), the base.
  struct opened {
    std::pair<uint32_t, uint64_t> key;
    long long opens;
  };
  std::map<uintptr_t, opened> ipc_by_base;
  std::map<std::pair<uint32_t, uint64_t>, uintptr_t> ipc_by_key;
  uint64_t token_seed = 0;

  ~driver() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    wake.notify_all();
    if (worker.joinable()) worker.join();
    for (event *e : events) delete e;
    // Work still queued at exit is dropped, as a context's teardown would.
  }
  template <class F>
  void each_stream(F f) {
    f(&legacy);
    f(&per_thread);
    for (auto &s : created) f(s.get());
  }
};
driver D;
int the_context, the_module;
thread_local std::vector<void *> ctx_stack;

CUresult fail(CUresult r, const char *why) {
  fprintf(stderr, "fake libcuda: %s\n", why);
  return r;
}
void misuse(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void misuse(const char *fmt, ...) {
  char text[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  fprintf(stderr, "fake libcuda: MISUSE: %s\n", text);
  D.misuses++;
}

// A failure the test asked for with "fail.SYMBOL" (D.mu held).
CUresult injected(const char *symbol) {
  auto it = D.faults.find(symbol);
  if (it == D.faults.end() || --it->second > 0) return OK;
  D.faults.erase(it);
  fprintf(stderr, "fake libcuda: %s fails, as the test asked\n", symbol);
  return UNKNOWN;
}

// ---- the worker (D.mu held unless said otherwise) ----

bool satisfied(const dep &d) { return d.s->done >= d.seq; }
bool value_reached(const work &w) {
  uint32_t v = __atomic_load_n(w.wait_addr, __ATOMIC_ACQUIRE);
  switch (w.wait_op) {
    case 0: return static_cast<int32_t>(v - w.wait_value) >= 0;  // GEQ
    case 1: return v == w.wait_value;                            // EQ
    case 2: return (v & w.wait_value) != 0;                      // AND
    default: return ~(v | w.wait_value) != 0;                    // NOR
  }
}
bool ready(const work &w) {
  for (const dep &d : w.deps) {
    if (!satisfied(d)) return false;
  }
  return w.wait_addr == nullptr || value_reached(w);
}
// The stream whose front item to run next for target t to get done; null
// when t is done or waits for a value. Dependencies always name earlier
// items, so this ends.
stream *needed(const dep &t) {
  if (satisfied(t)) return nullptr;
  const work &w = *t.s->queue.front();
  for (const dep &d : w.deps) {
    if (!satisfied(d)) return needed(d);
  }
  return w.wait_addr == nullptr || value_reached(w) ? t.s : nullptr;
}
// What waiting host threads need first; else, of the items past their lag,
// the one queued last: a stream's work never happens to run after another
// stream's earlier work unless it waits for it.
stream *choose(clock_type::time_point now, clock_type::time_point *next, bool *poll) {
  for (const std::vector<dep> *targets : D.waiters) {
    for (const dep &t : *targets) {
      if (stream *s = needed(t)) return s;
    }
  }
  stream *best = nullptr;
  D.each_stream([&](stream *s) {
    if (s->queue.empty()) return;
    const work &w = *s->queue.front();
    if (w.wait_addr != nullptr) *poll = true;
    if (w.due > now) {
      *next = std::min(*next, w.due);
    } else if (ready(w) && (best == nullptr || w.seq > best->queue.front()->seq)) {
      best = s;
    }
  });
  return best;
}
void worker_main() {
  std::unique_lock<std::mutex> lock(D.mu);
  while (!D.stop) {
    clock_type::time_point now = clock_type::now(), next = now + std::chrono::hours(1);
    bool poll = false;
    stream *s = choose(now, &next, &poll);
    if (s == nullptr) {
      if (poll) next = std::min(next, now + std::chrono::milliseconds(1));
      D.wake.wait_until(lock, next);
      continue;
    }
    work *w = s->queue.front().get();
    if (w->run) {  // only the worker takes items off the queues
      lock.unlock();
      w->run();
      lock.lock();
    }
    s->done = w->seq;
    s->queue.pop_front();  // drops its references to memory
    D.done.notify_all();
  }
}
void enqueue(stream *s, std::unique_ptr<work> w) {
  w->seq = ++D.seq;
  w->due = clock_type::now() + std::chrono::milliseconds(D.lag_ms);
  if (s->legacy) {  // waits for every blocking stream's earlier work
    D.each_stream([&](stream *t) {
      if (t != s && t->blocking && t->done < t->last) w->deps.push_back(dep{t, t->last});
    });
  } else if (s->blocking && D.legacy.done < D.legacy.last) {
    w->deps.push_back(dep{&D.legacy, D.legacy.last});
  }
  s->last = w->seq;
  s->queue.push_back(std::move(w));
  if (!D.worker.joinable()) D.worker = std::thread(worker_main);
  D.wake.notify_one();
}
void wait_for(std::unique_lock<std::mutex> &lock, const std::vector<dep> &targets) {
  auto all_done = [&] {
    for (const dep &t : targets) {
      if (!satisfied(t)) return false;
    }
    return true;
  };
  if (all_done()) return;
  D.waiters.push_back(&targets);
  D.wake.notify_one();
  D.done.wait(lock, all_done);
  D.waiters.erase(std::find(D.waiters.begin(), D.waiters.end(), &targets));
}

// ---- checks (D.mu held) ----

const memory_ref *find(uintptr_t p, size_t n) {
  auto it = D.allocations.upper_bound(p);
  if (it == D.allocations.begin()) return nullptr;
  --it;
  const memory &m = *it->second;
  return p >= m.base && p + n <= m.base + m.size ? &it->second : nullptr;
}
const memory_ref *gpu_reachable(uintptr_t p, size_t n) {
  const memory_ref *m = find(p, n);
  return m != nullptr && (*m)->k != PINNED ? m : nullptr;
}
const memory_ref *pinned(const void *p, size_t n) {
  const memory_ref *m = find(reinterpret_cast<uintptr_t>(p), n);
  return m != nullptr && (*m)->k == PINNED ? m : nullptr;
}
bool have_context() { return !ctx_stack.empty(); }
stream *find_stream(void *s) {
  if (s == nullptr || s == reinterpret_cast<void *>(1)) return &D.legacy;
  if (s == reinterpret_cast<void *>(2)) return &D.per_thread;
  return D.live_streams.count(s) != 0 ? static_cast<stream *>(s) : nullptr;
}
CUresult check_call(void *handle, stream **s) {
  if (!have_context()) return fail(INVALID_CONTEXT, "call without a current context");
  if ((*s = find_stream(handle)) == nullptr) return fail(INVALID_HANDLE, "unknown stream");
  return OK;
}
event *find_event(void *e) {
  return D.events.count(static_cast<event *>(e)) != 0 ? static_cast<event *>(e) : nullptr;
}
int attribute(unsigned a) {
  auto it = D.attributes.find(a);
  return it != D.attributes.end() ? it->second : attribute_default(a);
}

// A device allocation's memfd name, which an IPC handle's opener checks:
// "fake libcuda device memory <pid>-<token>".
std::string memfd_name(uint32_t pid, uint64_t token) {
  char name[96];
  snprintf(name, sizeof name, "fake libcuda device memory %u-%016llx", pid,
           static_cast<unsigned long long>(token));
  return name;
}
// Tokens no other allocation (of this process or, by the pid in the name,
// another) shares; random enough that a stale handle does not match.
uint64_t next_token() {
  if (D.token_seed == 0) {
    D.token_seed = static_cast<uint64_t>(clock_type::now().time_since_epoch().count()) ^
                   (static_cast<uint64_t>(getpid()) << 32) ^ 0x9E3779B97F4A7C15ull;
  }
  uint64_t x = (D.token_seed += 0x9E3779B97F4A7C15ull);  // splitmix64
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return (x ^ (x >> 31)) | 1;
}

CUresult allocate(void **p, size_t n, kind k, const char *symbol) {
  if (!have_context()) return fail(INVALID_CONTEXT, "allocation without a current context");
  if (n == 0) return INVALID_VALUE;
  std::lock_guard<std::mutex> lock(D.mu);
  if (CUresult r = injected(symbol)) return r;
  if (k == PINNED ? n > (static_cast<size_t>(8) << 30)
                  : n > static_cast<size_t>(D.memory_total) -
                            std::min(D.used, static_cast<size_t>(D.memory_total))) {
    return OUT_OF_MEMORY;
  }
  auto m = std::make_shared<memory>();
  m->size = n;
  m->mapped = (n + 4095) & ~static_cast<size_t>(4095);
  m->k = k;
  void *base = MAP_FAILED, *alias = MAP_FAILED;
  if (k == DEVICE) {
    m->token = next_token();
    int fd = memfd_create(memfd_name(getpid(), m->token).c_str(), MFD_CLOEXEC);
    if (fd < 0) return OUT_OF_MEMORY;
    m->fd = fd;  // closed with the memory
    if (ftruncate(fd, static_cast<off_t>(m->mapped)) == 0) {
      base = mmap(nullptr, m->mapped, PROT_NONE, MAP_SHARED, fd, 0);
      alias = mmap(nullptr, m->mapped, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    }
    if (base == MAP_FAILED || alias == MAP_FAILED) {
      if (base != MAP_FAILED) munmap(base, m->mapped);
      if (alias != MAP_FAILED) munmap(alias, m->mapped);
      return OUT_OF_MEMORY;
    }
    memset(alias, 0xA5, m->mapped);  // not the zeros a missed write could pass for
  } else {
    base = alias =
        mmap(nullptr, m->mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) return OUT_OF_MEMORY;
  }
  m->base = reinterpret_cast<uintptr_t>(base);
  m->alias = static_cast<char *>(alias);
  if (k != PINNED) D.used += n;
  D.allocations[m->base] = m;
  *p = base;
  return OK;
}
CUresult release(void *p, bool host, const char *symbol) {
  if (!have_context()) return fail(INVALID_CONTEXT, "free without a current context");
  std::lock_guard<std::mutex> lock(D.mu);
  auto it = D.allocations.find(reinterpret_cast<uintptr_t>(p));
  if (it == D.allocations.end() || (it->second->k == PINNED) != host) {
    return fail(INVALID_VALUE, "free of a pointer this allocator did not return");
  }
  if (it->second->imported) {
    return fail(INVALID_VALUE, "cuMemFree of memory opened with cuIpcOpenMemHandle (that is "
                               "cuIpcCloseMemHandle's to close)");
  }
  const work *user = nullptr;
  D.each_stream([&](stream *s) {
    for (const auto &w : s->queue) {
      for (const memory_ref &m : w->uses) {
        if (m == it->second && user == nullptr) user = w.get();
      }
    }
  });
  if (user != nullptr) {
    misuse("%s(%p, %zu bytes) while queued work (%s) still uses it: wait for that work first",
           symbol, p, it->second->size, user->what);
  }
  if (!host) D.used -= it->second->size;
  D.allocations.erase(it);  // unmapped once the work that uses it is done
  return OK;
}

// The address range a launch reaches on one side must lie in GPU memory.
const memory_ref *launch_in_bounds(uint64_t first, const tb_cuda_kargs &a, const int64_t *strides,
                                   int bytes) {
  int64_t lo = 0, hi = 0;
  for (int k = 0; k < a.ndim; k++) {
    int64_t reach = static_cast<int64_t>(a.extent[k] - 1) * strides[k];
    (reach < 0 ? lo : hi) += reach;
  }
  return gpu_reachable(static_cast<uintptr_t>(first + static_cast<uint64_t>(lo)),
                       static_cast<size_t>(hi - lo + bytes));
}

// Queues a copy of n bytes between two known allocations.
CUresult queue_copy(stream *s, const char *what, const memory_ref &dst_mem, uintptr_t dst,
                    const memory_ref &src_mem, uintptr_t src, size_t n) {
  std::unique_ptr<work> w(new work);
  w->what = what;
  w->uses = {dst_mem, src_mem};
  char *to = dst_mem->at(dst);
  const char *from = src_mem->at(src);
  w->run = [to, from, n] { memmove(to, from, n); };
  enqueue(s, std::move(w));
  return OK;
}

// fake_cuda_configure's work (D.mu held); false for an unknown key.
bool configure(const std::string &key, long long value, long long *previous) {
  if (key == "memory") {
    *previous = D.memory_total;
    D.memory_total = value;
  } else if (key == "lag_ms") {
    *previous = D.lag_ms;
    D.lag_ms = value;
  } else if (key.compare(0, 10, "attribute.") == 0) {
    unsigned a = static_cast<unsigned>(strtoul(key.c_str() + 10, nullptr, 10));
    *previous = attribute(a);
    D.attributes[a] = static_cast<int>(value);
  } else if (key.compare(0, 5, "fail.") == 0) {
    auto it = D.faults.find(key.substr(5));
    *previous = it != D.faults.end() ? it->second : 0;
    if (value > 0) {
      D.faults[key.substr(5)] = value;
    } else if (it != D.faults.end()) {
      D.faults.erase(it);
    }
  } else {
    return false;
  }
  return true;
}
// FAKE_CUDA_CONFIG="key=value,key=value": the configuration of a whole run,
// set before the library first looks at the device (it reads attributes
// once), and what "reset" goes back to. A key it does not know ends the
// process: a test run must not pass with the configuration it did not ask for.
std::vector<std::pair<std::string, long long>> environment_config;
void reset() {
  D.memory_total = default_memory;
  D.lag_ms = default_lag_ms;
  D.attributes.clear();
  D.faults.clear();
  long long previous;
  for (const auto &kv : environment_config) configure(kv.first, kv.second, &previous);
}
void read_environment() {  // once, from cuInit
  const char *text = getenv("FAKE_CUDA_CONFIG");
  if (text == nullptr) return;
  std::lock_guard<std::mutex> lock(D.mu);
  std::string all = text;
  for (size_t at = 0; at < all.size();) {
    size_t end = all.find(',', at);
    if (end == std::string::npos) end = all.size();
    std::string item = all.substr(at, end - at);
    size_t eq = item.find('=');
    char *rest = nullptr;
    long long value = eq == std::string::npos ? 0 : strtoll(item.c_str() + eq + 1, &rest, 0);
    long long previous;
    if (eq == std::string::npos || *rest != '\0' ||
        !configure(item.substr(0, eq), value, &previous)) {
      fprintf(stderr, "fake libcuda: FAKE_CUDA_CONFIG: cannot use \"%s\"\n", item.c_str());
      _exit(2);
    }
    environment_config.emplace_back(item.substr(0, eq), value);
    at = end + 1;
  }
  fprintf(stderr, "fake libcuda: configured by FAKE_CUDA_CONFIG=%s\n", text);
}
std::once_flag environment_read;

__attribute__((destructor)) void check_exit() {
  if (!ctx_stack.empty()) {
    fprintf(stderr, "fake libcuda: the main thread exits with a context still current\n");
    _exit(3);
  }
}

}  // namespace

extern "C" {
// ---- for tests ----
__attribute__((visibility("default"))) long long fake_cuda_configure(const char *key,
                                                                     long long value) {
  std::lock_guard<std::mutex> lock(D.mu);
  long long previous = 0;
  if (strcmp(key, "reset") == 0) {
    reset();
  } else if (!configure(key, value, &previous)) {
    fprintf(stderr, "fake libcuda: fake_cuda_configure: unknown key \"%s\"\n", key);
    return -1;
  }
  D.wake.notify_one();
  return previous;
}
// Misuses found since the last call (each was printed when found).
__attribute__((visibility("default"))) unsigned long long fake_cuda_misuses(void) {
  std::lock_guard<std::mutex> lock(D.mu);
  unsigned long long n = D.misuses;
  D.misuses = 0;
  return n;
}

// ---- the driver API ----
CUresult cuGetErrorName(CUresult e, const char **s) {
  switch (e) {
    case OK: *s = "CUDA_SUCCESS"; return OK;
    case INVALID_VALUE: *s = "CUDA_ERROR_INVALID_VALUE"; return OK;
    case OUT_OF_MEMORY: *s = "CUDA_ERROR_OUT_OF_MEMORY"; return OK;
    case INVALID_CONTEXT: *s = "CUDA_ERROR_INVALID_CONTEXT"; return OK;
    case MAP_FAILED_: *s = "CUDA_ERROR_MAP_FAILED"; return OK;
    case INVALID_HANDLE: *s = "CUDA_ERROR_INVALID_HANDLE"; return OK;
    case NOT_FOUND: *s = "CUDA_ERROR_NOT_FOUND"; return OK;
    case NOT_READY: *s = "CUDA_ERROR_NOT_READY"; return OK;
    case NOT_SUPPORTED: *s = "CUDA_ERROR_NOT_SUPPORTED"; return OK;
    case UNKNOWN: *s = "CUDA_ERROR_UNKNOWN"; return OK;
    default: return INVALID_VALUE;
  }
}
CUresult cuGetErrorString(CUresult e, const char **s) {
  const char *name;
  if (cuGetErrorName(e, &name) != OK) return INVALID_VALUE;
  *s = "reported by the fake driver";
  return OK;
}
CUresult cuInit(unsigned flags) {
  std::call_once(environment_read, read_environment);
  // Each device allocation holds a descriptor (its memfd): room for many.
  static std::once_flag limit_raised;
  std::call_once(limit_raised, [] {
    struct rlimit l;
    if (getrlimit(RLIMIT_NOFILE, &l) == 0 && l.rlim_cur < l.rlim_max) {
      l.rlim_cur = l.rlim_max;
      (void)setrlimit(RLIMIT_NOFILE, &l);
    }
  });
  return flags == 0 ? OK : INVALID_VALUE;
}
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
CUresult cuDeviceGetAttribute(int *value, unsigned a, int device) {
  if (device != 0) return INVALID_VALUE;
  std::lock_guard<std::mutex> lock(D.mu);
  *value = attribute(a);
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
CUresult cuStreamCreate(void **handle, unsigned flags) {
  if (!have_context()) return fail(INVALID_CONTEXT, "stream without a current context");
  if ((flags & ~1u) != 0) return INVALID_VALUE;
  std::lock_guard<std::mutex> lock(D.mu);
  D.created.emplace_back(new stream((flags & 1u) == 0, false)); /* CU_STREAM_NON_BLOCKING */
  *handle = D.created.back().get();
  D.live_streams.insert(*handle);
  return OK;
}
// The stream's queued work still runs, as the real driver's does.
CUresult cuStreamDestroy_v2(void *handle) {
  std::lock_guard<std::mutex> lock(D.mu);
  stream *s;
  if (CUresult r = check_call(handle, &s)) return r;
  if (s == &D.legacy || s == &D.per_thread)
    return fail(INVALID_HANDLE, "destroy of a default stream");
  s->destroyed = true;
  D.live_streams.erase(handle);
  return OK;
}
CUresult cuStreamSynchronize(void *handle) {
  std::unique_lock<std::mutex> lock(D.mu);
  stream *s;
  if (CUresult r = check_call(handle, &s)) return r;
  if (CUresult r = injected("cuStreamSynchronize")) return r;
  std::vector<dep> targets{dep{s, s->last}};
  if (s->legacy) {  // and what the legacy stream would wait for
    D.each_stream([&](stream *t) {
      if (t->blocking) targets.push_back(dep{t, t->last});
    });
  }
  wait_for(lock, targets);
  return OK;
}
CUresult cuStreamWaitEvent(void *handle, void *ev, unsigned flags) {
  std::lock_guard<std::mutex> lock(D.mu);
  stream *s;
  if (CUresult r = check_call(handle, &s)) return r;
  event *e = find_event(ev);
  if (e == nullptr) return fail(INVALID_HANDLE, "cuStreamWaitEvent: unknown event");
  if (flags != 0) return INVALID_VALUE;
  if (CUresult r = injected("cuStreamWaitEvent")) return r;
  std::unique_ptr<work> w(new work);
  w->what = "cuStreamWaitEvent";
  if (e->s != nullptr && !satisfied(dep{e->s, e->seq})) w->deps.push_back(dep{e->s, e->seq});
  enqueue(s, std::move(w));
  return OK;
}
CUresult cuStreamWaitValue32_v2(void *handle, uintptr_t addr, unsigned value, unsigned flags) {
  std::lock_guard<std::mutex> lock(D.mu);
  stream *s;
  if (CUresult r = check_call(handle, &s)) return r;
  const memory_ref *m = find(addr, 4);
  if (m == nullptr || addr % 4 != 0) return fail(INVALID_VALUE, "cuStreamWaitValue32: address");
  unsigned op = flags & ~(1u << 30); /* CU_STREAM_WAIT_VALUE_FLUSH */
  if (op > 3) return INVALID_VALUE;
  std::unique_ptr<work> w(new work);
  w->what = "cuStreamWaitValue32";
  w->uses = {*m};
  w->wait_addr = reinterpret_cast<const uint32_t *>((*m)->at(addr));
  w->wait_value = value;
  w->wait_op = op;
  enqueue(s, std::move(w));
  return OK;
}
CUresult cuEventCreate(void **handle, unsigned flags) {
  (void)flags;
  if (!have_context()) return fail(INVALID_CONTEXT, "event without a current context");
  std::lock_guard<std::mutex> lock(D.mu);
  if (CUresult r = injected("cuEventCreate")) return r;
  event *e = new event;
  D.events.insert(e);
  *handle = e;
  return OK;
}
CUresult cuEventRecord(void *ev, void *handle) {
  std::lock_guard<std::mutex> lock(D.mu);
  stream *s;
  if (CUresult r = check_call(handle, &s)) return r;
  event *e = find_event(ev);
  if (e == nullptr) return fail(INVALID_HANDLE, "cuEventRecord: unknown event");
  if (CUresult r = injected("cuEventRecord")) return r;
  std::unique_ptr<work> w(new work);
  w->what = "cuEventRecord";
  enqueue(s, std::move(w));
  e->s = s;
  e->seq = s->last;
  return OK;
}
CUresult cuEventSynchronize(void *ev) {
  std::unique_lock<std::mutex> lock(D.mu);
  event *e = find_event(ev);
  if (e == nullptr) return fail(INVALID_HANDLE, "cuEventSynchronize: unknown event");
  if (CUresult r = injected("cuEventSynchronize")) return r;
  if (e->s != nullptr) wait_for(lock, std::vector<dep>{dep{e->s, e->seq}});
  return OK;
}
CUresult cuEventQuery(void *ev) {
  std::lock_guard<std::mutex> lock(D.mu);
  event *e = find_event(ev);
  if (e == nullptr) return fail(INVALID_HANDLE, "cuEventQuery: unknown event");
  return e->s == nullptr || satisfied(dep{e->s, e->seq}) ? OK : NOT_READY;
}
// Waits already queued on the event keep what they captured.
CUresult cuEventDestroy_v2(void *ev) {
  std::lock_guard<std::mutex> lock(D.mu);
  event *e = find_event(ev);
  if (e == nullptr) return fail(INVALID_HANDLE, "cuEventDestroy: unknown event");
  D.events.erase(e);
  delete e;
  return OK;
}
CUresult cuMemAlloc_v2(uintptr_t *p, size_t n) {
  return allocate(reinterpret_cast<void **>(p), n, DEVICE, "cuMemAlloc_v2");
}
CUresult cuMemAllocManaged(uintptr_t *p, size_t n, unsigned flags) {
  if (flags != 1) return INVALID_VALUE; /* CU_MEM_ATTACH_GLOBAL */
  return allocate(reinterpret_cast<void **>(p), n, MANAGED, "cuMemAllocManaged");
}
CUresult cuMemHostAlloc(void **p, size_t n, unsigned flags) {
  (void)flags;
  return allocate(p, n, PINNED, "cuMemHostAlloc");
}
CUresult cuMemFree_v2(uintptr_t p) {
  return release(reinterpret_cast<void *>(p), false, "cuMemFree");
}
CUresult cuMemFreeHost(void *p) { return release(p, true, "cuMemFreeHost"); }
CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total_bytes) {
  std::lock_guard<std::mutex> lock(D.mu);
  size_t total = static_cast<size_t>(D.memory_total);
  *free_bytes = total - std::min(D.used, total);
  *total_bytes = total;
  return OK;
}
CUresult cuMemcpyHtoDAsync_v2(uintptr_t dst, const void *src, size_t n, void *handle) {
  std::lock_guard<std::mutex> lock(D.mu);
  stream *s;
  if (CUresult r = check_call(handle, &s)) return r;
  const memory_ref *d = gpu_reachable(dst, n), *h = pinned(src, n);
  if (d == nullptr) return fail(INVALID_VALUE, "HtoD into memory that is not the GPU's");
  if (h == nullptr) return fail(INVALID_VALUE, "async HtoD from memory that is not pinned");
  if (CUresult r = injected("cuMemcpyHtoDAsync_v2")) return r;
  return queue_copy(s, "cuMemcpyHtoDAsync", *d, dst, *h, reinterpret_cast<uintptr_t>(src), n);
}
CUresult cuMemcpyDtoHAsync_v2(void *dst, uintptr_t src, size_t n, void *handle) {
  std::lock_guard<std::mutex> lock(D.mu);
  stream *s;
  if (CUresult r = check_call(handle, &s)) return r;
  const memory_ref *d = gpu_reachable(src, n), *h = pinned(dst, n);
  if (d == nullptr) return fail(INVALID_VALUE, "DtoH from memory that is not the GPU's");
  if (h == nullptr) return fail(INVALID_VALUE, "async DtoH into memory that is not pinned");
  if (CUresult r = injected("cuMemcpyDtoHAsync_v2")) return r;
  return queue_copy(s, "cuMemcpyDtoHAsync", *h, reinterpret_cast<uintptr_t>(dst), *d, src, n);
}
CUresult cuMemcpyDtoDAsync_v2(uintptr_t dst, uintptr_t src, size_t n, void *handle) {
  std::lock_guard<std::mutex> lock(D.mu);
  stream *s;
  if (CUresult r = check_call(handle, &s)) return r;
  const memory_ref *d = gpu_reachable(dst, n), *from = gpu_reachable(src, n);
  if (d == nullptr || from == nullptr) return fail(INVALID_VALUE, "DtoD outside the GPU's memory");
  if (CUresult r = injected("cuMemcpyDtoDAsync_v2")) return r;
  return queue_copy(s, "cuMemcpyDtoDAsync", *d, dst, *from, src, n);
}
CUresult cuMemcpyAsync(uintptr_t dst, uintptr_t src, size_t n, void *handle) {
  std::lock_guard<std::mutex> lock(D.mu);
  stream *s;
  if (CUresult r = check_call(handle, &s)) return r;
  const memory_ref *d = find(dst, n), *from = find(src, n);
  if (d == nullptr || from == nullptr) {
    return fail(INVALID_VALUE, "cuMemcpyAsync with memory the driver does not know");
  }
  if (CUresult r = injected("cuMemcpyAsync")) return r;
  return queue_copy(s, "cuMemcpyAsync", *d, dst, *from, src, n);
}
CUresult cuMemcpyPeerAsync(uintptr_t dst, void *dst_ctx, uintptr_t src, void *src_ctx, size_t n,
                           void *stream) {
  (void)dst_ctx, (void)src_ctx, (void)dst, (void)src, (void)n, (void)stream;
  return fail(NOT_SUPPORTED, "one device: no peer copies");
}
CUresult cuPointerGetAttribute(void *data, unsigned attr, uintptr_t p) {
  std::lock_guard<std::mutex> lock(D.mu);
  const memory_ref *m = find(p, 1);
  if (m == nullptr) return INVALID_VALUE;
  switch (attr) {
    case 2: *static_cast<unsigned *>(data) = (*m)->k == PINNED ? 1 : 2; return OK; /* MEMORY_TYPE */
    case 8: *static_cast<unsigned *>(data) = (*m)->k == MANAGED; return OK;        /* IS_MANAGED */
    case 9: *static_cast<int *>(data) = 0; return OK; /* DEVICE_ORDINAL */
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
                        unsigned by, unsigned bz, unsigned shared, void *handle, void **params,
                        void **extra) {
  std::lock_guard<std::mutex> lock(D.mu);
  stream *s;
  if (CUresult r = check_call(handle, &s)) return r;
  unsigned max_blocks = static_cast<unsigned>(std::max(1, std::min(65536, attribute(5))));
  if (gy != 1 || gz != 1 || by != 1 || bz != 1 || bx != TB_CUDA_BLOCK || gx == 0 ||
      gx > max_blocks || shared != 0 || extra != nullptr || params == nullptr) {
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
    uint32_t sh = 0;
    while ((1ull << sh) < a.extent[d]) sh++;
    uint64_t magic = ((((1ull << sh) - a.extent[d]) << 32) / (a.extent[d] ? a.extent[d] : 1)) + 1;
    if (a.extent[d] == 0 || a.magic[d] != magic || a.shift[d] != sh) {
      return fail(INVALID_VALUE, "launch arguments: a divider");
    }
    product *= a.extent[d];
  }
  if (product != a.numel) return fail(INVALID_VALUE, "launch arguments: numel");
  if (static_cast<uint64_t>(gx - 1) * TB_CUDA_BLOCK >= a.numel) {
    return fail(INVALID_VALUE, "launch: blocks with no element");
  }
  const memory_ref *src = launch_in_bounds(a.src, a, a.src_strides, k->src_bytes),
                   *dst = launch_in_bounds(a.dst, a, a.dst_strides, k->dst_bytes);
  if (src == nullptr || dst == nullptr) {
    return fail(INVALID_VALUE, "launch: the kernel would reach outside the GPU's memory");
  }
  if (a.src % static_cast<uint64_t>(k->src_align) != 0 ||
      a.dst % static_cast<uint64_t>(k->dst_align) != 0) {
    return fail(INVALID_VALUE, "launch: misaligned elements");
  }
  if (CUresult r = injected("cuLaunchKernel")) return r;
  // The worker walks the same offsets from the read-write aliases.
  a.src = reinterpret_cast<uintptr_t>((*src)->at(a.src));
  a.dst = reinterpret_cast<uintptr_t>((*dst)->at(a.dst));
  std::unique_ptr<work> w(new work);
  w->what = k->name;
  w->uses = {*src, *dst};
  w->run = [k, a, gx] {
    gridDim = emu_dim3{gx, 1, 1};
    blockDim = emu_dim3{TB_CUDA_BLOCK, 1, 1};
    for (unsigned b = 0; b < gx; b++) {
      for (unsigned t = 0; t < TB_CUDA_BLOCK; t++) {
        blockIdx = emu_dim3{b, 0, 0};
        threadIdx = emu_dim3{t, 0, 0};
        k->fn(a);
      }
    }
  };
  enqueue(s, std::move(w));
  return OK;
}
CUresult cuMemGetAddressRange_v2(uintptr_t *base, size_t *size, uintptr_t p) {
  if (!have_context()) return fail(INVALID_CONTEXT, "cuMemGetAddressRange without a context");
  std::lock_guard<std::mutex> lock(D.mu);
  const memory_ref *m = find(p, 1);
  if (m == nullptr || (*m)->k == PINNED) return NOT_FOUND;
  if (base != nullptr) *base = (*m)->base;
  if (size != nullptr) *size = (*m)->size;
  return OK;
}

#ifndef FAKE_CUDA_NO_IPC
// ---- CUDA IPC (see the top of this file) ----
struct fake_ipc_handle {
  char magic[8];  // "FAKEIPC1"
  uint32_t pid;
  int32_t fd;
  uint64_t size;
  uint64_t token;
  unsigned char zero[32];
};
static_assert(sizeof(fake_ipc_handle) == 64, "CUipcMemHandle is 64 bytes");
struct CUipcMemHandle_st {
  char reserved[64];
};
const char ipc_magic[8] = {'F', 'A', 'K', 'E', 'I', 'P', 'C', '1'};

CUresult cuIpcGetMemHandle(CUipcMemHandle_st *handle, uintptr_t p) {
  if (!have_context()) return fail(INVALID_CONTEXT, "cuIpcGetMemHandle without a context");
  if (handle == nullptr) return INVALID_VALUE;
  std::lock_guard<std::mutex> lock(D.mu);
  auto it = D.allocations.find(p);
  if (it == D.allocations.end() || it->second->k != DEVICE || it->second->imported) {
    return fail(INVALID_VALUE,
                "cuIpcGetMemHandle of a pointer that is not the base of a cuMemAlloc allocation");
  }
  fake_ipc_handle h;
  memset(&h, 0, sizeof h);
  memcpy(h.magic, ipc_magic, sizeof h.magic);
  h.pid = static_cast<uint32_t>(getpid());
  h.fd = it->second->fd;
  h.size = it->second->size;
  h.token = it->second->token;
  memcpy(handle->reserved, &h, sizeof h);
  return OK;
}
// Maps another process's allocation: its memfd through /proc, checked by
// name and size; NOT_FOUND-like failures are the real driver's
// CUDA_ERROR_INVALID_VALUE.
static CUresult ipc_map(const fake_ipc_handle &h, uintptr_t *out) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%u/fd/%d", h.pid, h.fd);
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return fail(INVALID_VALUE, "cuIpcOpenMemHandle: the handle names no live allocation");
  char self[64], target[160];
  snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(self, target, sizeof target - 1);
  target[n > 0 ? n : 0] = '\0';
  std::string expected = "/memfd:" + memfd_name(h.pid, h.token) + " (deleted)";
  struct stat st;
  auto m = std::make_shared<memory>();
  m->size = static_cast<size_t>(h.size);
  m->mapped = (m->size + 4095) & ~static_cast<size_t>(4095);
  if (expected != target || fstat(fd, &st) != 0 || static_cast<size_t>(st.st_size) != m->mapped) {
    close(fd);
    return fail(INVALID_VALUE, "cuIpcOpenMemHandle: the handle names no live allocation");
  }
  void *base = mmap(nullptr, m->mapped, PROT_NONE, MAP_SHARED, fd, 0);
  void *alias = mmap(nullptr, m->mapped, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (base == MAP_FAILED || alias == MAP_FAILED) {
    if (base != MAP_FAILED) munmap(base, m->mapped);
    if (alias != MAP_FAILED) munmap(alias, m->mapped);
    return fail(MAP_FAILED_, "cuIpcOpenMemHandle: mmap failed");
  }
  m->base = reinterpret_cast<uintptr_t>(base);
  m->alias = static_cast<char *>(alias);
  m->k = DEVICE;
  m->imported = true;
  D.allocations[m->base] = m;
  *out = m->base;
  return OK;
}
CUresult cuIpcOpenMemHandle_v2(uintptr_t *p, CUipcMemHandle_st handle, unsigned flags) {
  if (!have_context()) return fail(INVALID_CONTEXT, "cuIpcOpenMemHandle without a context");
  if (p == nullptr || flags != 1) return INVALID_VALUE; /* CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS */
  fake_ipc_handle h;
  memcpy(&h, handle.reserved, sizeof h);
  static const unsigned char zero[sizeof h.zero] = {};
  if (memcmp(h.magic, ipc_magic, sizeof h.magic) != 0 || memcmp(h.zero, zero, sizeof zero) != 0 ||
      h.size == 0 || h.fd < 0 || h.token == 0) {
    return fail(INVALID_VALUE, "cuIpcOpenMemHandle: not a memory handle");
  }
  if (h.pid == static_cast<uint32_t>(getpid())) {
    return fail(INVALID_CONTEXT, "cuIpcOpenMemHandle in the process that made the handle");
  }
  std::lock_guard<std::mutex> lock(D.mu);
  auto key = std::make_pair(h.pid, h.token);
  auto it = D.ipc_by_key.find(key);
  if (it != D.ipc_by_key.end()) {  // open already: the same pointer, one more open
    D.ipc_by_base[it->second].opens++;
    *p = it->second;
    return OK;
  }
  uintptr_t base;
  if (CUresult r = ipc_map(h, &base)) return r;
  D.ipc_by_key[key] = base;
  D.ipc_by_base[base] = driver::opened{key, 1};
  *p = base;
  return OK;
}
CUresult cuIpcCloseMemHandle(uintptr_t p) {
  if (!have_context()) return fail(INVALID_CONTEXT, "cuIpcCloseMemHandle without a context");
  std::lock_guard<std::mutex> lock(D.mu);
  auto it = D.ipc_by_base.find(p);
  if (it == D.ipc_by_base.end()) {
    return fail(INVALID_VALUE, "cuIpcCloseMemHandle of a pointer cuIpcOpenMemHandle did not return");
  }
  if (--it->second.opens > 0) return OK;
  D.ipc_by_key.erase(it->second.key);
  D.ipc_by_base.erase(it);
  D.allocations.erase(p);  // unmapped once the work that uses it is done
  return OK;
}
#endif

// Opens of IPC handles not closed yet (for tests).
__attribute__((visibility("default"))) long long fake_cuda_ipc_opens(void) {
  std::lock_guard<std::mutex> lock(D.mu);
  long long n = 0;
  for (const auto &kv : D.ipc_by_base) n += kv.second.opens;
  return n;
}
}  // extern "C"
