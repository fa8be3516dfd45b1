/*
 * CUDA device memory shared between processes by CUDA IPC, through the
 * shared-memory handle API (tensorbridge/shm.h, version 2 handles).
 *
 * The other process is this executable started again with posix_spawn
 * ("--ipc-child"): a fresh process that initialises CUDA itself, as the
 * driver requires (a child forked after its parent used CUDA must not use
 * it, and a handle does not open in the process that made it). It gets the
 * handle's bytes over a socketpair on descriptor 3, attaches, reads the
 * tensor back to the host, writes values through a copy from the host,
 * releases, and answers on the same socket; the parent then reads what the
 * child wrote.
 *
 * Without a CUDA device (no backend, no driver, no GPU) the IPC tests skip
 * and the refusals are checked: the run still passes, so `shm_cuda` runs
 * in every build. Against the stand-in driver (`cuda_emulated_shm`) its
 * count of open IPC mappings shows that the last release closes; against
 * its build without the IPC entry points (`cuda_emulated_shm_noipc`,
 * TB_TEST_CUDA_NO_IPC=1) the library must load the driver and refuse only
 * IPC. TB_EXPECT_CUDA as in test_cuda.c: a device (any value but "0"), or
 * the stand-in ("emulated"), must be found.
 */
#include <dlfcn.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../src/backends/cuda/driver.h"
#include "support.h"
#include "tensorbridge/backend.h"
#include "tensorbridge/shm.h"

extern char **environ;

static char *g_self;        /* this executable, to start again */
static bool g_have_cuda;    /* the library sees a device */
static bool g_no_ipc;       /* TB_TEST_CUDA_NO_IPC: the driver has no IPC */
static long long (*fake_ipc_opens)(void); /* the stand-in's count; NULL on a real driver */

/* The test's own driver calls, for what the library does not say. */
static struct {
  tb_cu_result (*device_get)(tb_cu_device *, int);
  tb_cu_result (*primary_retain)(tb_cu_context *, tb_cu_device);
  tb_cu_result (*ctx_push)(tb_cu_context);
  tb_cu_result (*ctx_pop)(tb_cu_context *);
  tb_cu_result (*address_range)(tb_cu_ptr *, size_t *, tb_cu_ptr);
} cu;

static void load_driver_hooks(void) {
  void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) return;
  void *sym = dlsym(lib, "fake_cuda_ipc_opens");
  memcpy(&fake_ipc_opens, &sym, sizeof sym);
#define LOAD(field, name)            \
  sym = dlsym(lib, name);            \
  memcpy(&cu.field, &sym, sizeof sym);
  LOAD(device_get, "cuDeviceGet")
  LOAD(primary_retain, "cuDevicePrimaryCtxRetain")
  LOAD(ctx_push, "cuCtxPushCurrent_v2")
  LOAD(ctx_pop, "cuCtxPopCurrent_v2")
  LOAD(address_range, "cuMemGetAddressRange_v2")
#undef LOAD
}

static void probe(void) {
  const char *no_ipc = getenv("TB_TEST_CUDA_NO_IPC");
  g_no_ipc = no_ipc != NULL && strcmp(no_ipc, "1") == 0;
  g_have_cuda = tb_device_count(kDLCUDA) > 0;
  if (g_have_cuda) load_driver_hooks();
}

static long long ipc_opens(void) { return fake_ipc_opens != NULL ? fake_ipc_opens() : -1; }

/* cuMemGetAddressRange of p on device 0 (its primary context current). */
static tb_cu_result address_range(uintptr_t p) {
  tb_cu_device dev;
  tb_cu_context ctx, popped;
  if (cu.address_range == NULL || cu.device_get(&dev, 0) != TB_CU_SUCCESS ||
      cu.primary_retain(&ctx, dev) != TB_CU_SUCCESS || cu.ctx_push(ctx) != TB_CU_SUCCESS) {
    return 999;
  }
  tb_cu_ptr base;
  size_t size;
  tb_cu_result r = cu.address_range(&base, &size, (tb_cu_ptr)p);
  (void)cu.ctx_pop(&popped);
  return r;
}

#define REQUIRE_IPC()                                                              \
  do {                                                                             \
    if (!g_have_cuda) {                                                            \
      print_message("skipping: no CUDA device (the refusals are tested instead)\n"); \
      skip();                                                                      \
    }                                                                              \
    if (g_no_ipc) {                                                                \
      print_message("skipping: this driver has no CUDA IPC\n");                    \
      skip();                                                                      \
    }                                                                              \
  } while (0)

static DLDevice gpu(void) { return (DLDevice){kDLCUDA, 0}; }

/* Element i (C order) of a host tensor of int32 or float64. */
static double host_get(const tb_tensor_t *h, int64_t i) {
  DLDataType d = tb_tensor_dtype(h);
  return d.code == kDLInt ? ((const int32_t *)tb_tensor_data(h))[i]
                          : ((const double *)tb_tensor_data(h))[i];
}
static void host_set(tb_tensor_t *h, int64_t i, double v) {
  if (tb_tensor_dtype(h).code == kDLInt) {
    ((int32_t *)tb_tensor_data(h))[i] = (int32_t)v;
  } else {
    ((double *)tb_tensor_data(h))[i] = v;
  }
}

/* A host C-order tensor with element i = seed + i. */
static tb_status host_ramp(DLDataType dtype, int32_t ndim, const int64_t *shape, double seed,
                           tb_tensor_t **out) {
  tb_status st = tb_tensor_empty(dtype, ndim, shape, cpu(), TB_ORDER_C, out);
  if (st != TB_OK) return st;
  for (int64_t i = 0; i < tb_tensor_numel(*out); i++) host_set(*out, i, seed + (double)i);
  return TB_OK;
}

/* A CUDA tensor with element i = seed + i. */
static tb_tensor_t *gpu_ramp(DLDataType dtype, int32_t ndim, const int64_t *shape, double seed) {
  tb_tensor_t *h, *d;
  assert_ok(host_ramp(dtype, ndim, shape, seed, &h));
  assert_ok(tb_tensor_to(h, gpu(), NULL, TB_ORDER_C, 0, &d));
  tb_tensor_release(h);
  return d;
}

/* t's elements in C order, through a host copy. */
static tb_tensor_t *to_host(const tb_tensor_t *t) {
  tb_tensor_t *h;
  assert_ok(tb_tensor_to(t, cpu(), NULL, TB_ORDER_C, 0, &h));
  return h;
}

/* ---- the other process ---- */

enum { MAX_VALUES = 64 };
typedef struct child_request {
  uint32_t handle_len;
  uint32_t attach_twice; /* attach a second time and compare */
  double write_seed;     /* NAN: write nothing */
  unsigned char handle[TB_SHM_HANDLE_MAX];
} child_request;

typedef struct child_reply {
  int32_t status; /* tb_shm_attach's */
  char message[512];
  int32_t device_type, device_id, ndim;
  int64_t numel;
  int32_t reencoded_same; /* tb_shm_handle_encode of the attached tensor gave the same bytes */
  int32_t second_same;    /* a second attach has the same data pointer */
  int64_t opens_attached; /* the stand-in's open mappings while attached (-1: real driver) */
  int64_t opens_after;    /* and after the last release (or the failed attach) */
  uint32_t range_after;   /* cuMemGetAddressRange of the data pointer after the release */
  int64_t count;          /* values read, at most MAX_VALUES */
  double values[MAX_VALUES];
} child_reply;

static int child_answer(int sock, const child_reply *r) {
  return send(sock, r, sizeof *r, 0) == (ssize_t)sizeof *r ? 0 : 3;
}

static void child_note(child_reply *r, tb_status st) {
  r->status = (int32_t)st;
  (void)snprintf(r->message, sizeof r->message, "%s", tb_last_error());
}

static int child_main(void) {
  const int sock = 3;
  child_request q;
  if (recv(sock, &q, sizeof q, 0) != (ssize_t)sizeof q) return 2;
  g_have_cuda = tb_device_count(kDLCUDA) > 0;
  if (g_have_cuda) load_driver_hooks();
  child_reply r;
  memset(&r, 0, sizeof r);
  tb_tensor_t *a = NULL;
  tb_status st = tb_shm_attach(q.handle, q.handle_len, -1, &a);
  child_note(&r, st);
  if (st != TB_OK) {
    r.opens_after = ipc_opens();
    return child_answer(sock, &r);
  }
  DLDevice dev = tb_tensor_device(a);
  r.device_type = (int32_t)dev.device_type;
  r.device_id = dev.device_id;
  r.ndim = tb_tensor_ndim(a);
  r.numel = tb_tensor_numel(a);
  unsigned char again[TB_SHM_HANDLE_MAX];
  size_t len = 0;
  int fd = 0;
  if (tb_shm_handle_encode(a, again, sizeof again, &len, &fd) == TB_OK && fd == -1) {
    r.reencoded_same = len == q.handle_len && memcmp(again, q.handle, len) == 0;
  }
  if (q.attach_twice) {
    tb_tensor_t *b;
    if (tb_shm_attach(q.handle, q.handle_len, -1, &b) == TB_OK) {
      r.second_same = tb_tensor_base(a) == tb_tensor_base(b);
      tb_tensor_release(b);
    }
  }
  tb_tensor_t *h = NULL;
  if ((st = tb_tensor_to(a, cpu(), NULL, TB_ORDER_C, 0, &h)) != TB_OK) {
    child_note(&r, st);
  } else {
    for (int64_t i = 0; i < r.numel && i < MAX_VALUES; i++) r.values[r.count++] = host_get(h, i);
    tb_tensor_release(h);
  }
  if (st == TB_OK && !isnan(q.write_seed)) {
    tb_tensor_t *w;
    DLDataType dtype = tb_tensor_dtype(a);
    if ((st = host_ramp(dtype, r.ndim, tb_tensor_shape(a), q.write_seed, &w)) == TB_OK) {
      st = tb_tensor_copy_into(a, w, 0);
      tb_tensor_release(w);
    }
    if (st != TB_OK) child_note(&r, st);
  }
  r.opens_attached = ipc_opens();
  uintptr_t p = (uintptr_t)tb_tensor_base(a);
  tb_tensor_release(a);
  r.opens_after = ipc_opens();
  r.range_after = p != 0 ? address_range(p) : 0;
  return child_answer(sock, &r);
}

/* Starts the other process, hands it the handle, and waits for its reply. */
static void run_child(const unsigned char *handle, size_t len, bool attach_twice,
                      double write_seed, child_reply *r) {
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  posix_spawn_file_actions_t fa;
  assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
  assert_int_equal(posix_spawn_file_actions_adddup2(&fa, sv[1], 3), 0);
  static char child_flag[] = "--ipc-child";
  char *argv[] = {g_self, child_flag, NULL};
  pid_t pid;
  assert_int_equal(posix_spawn(&pid, g_self, &fa, NULL, argv, environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  close(sv[1]);
  child_request q;
  memset(&q, 0, sizeof q);
  assert_true(len <= sizeof q.handle);
  q.handle_len = (uint32_t)len;
  q.attach_twice = attach_twice;
  q.write_seed = write_seed;
  memcpy(q.handle, handle, len);
  assert_int_equal(send(sv[0], &q, sizeof q, 0), (ssize_t)sizeof q);
  memset(r, 0, sizeof *r);
  ssize_t n = recv(sv[0], r, sizeof *r, 0);
  close(sv[0]);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    print_error("the other process ended with status 0x%x\n", (unsigned)status);
    fail();
  }
  assert_int_equal(n, (ssize_t)sizeof *r);
}

static void assert_child_ok(const child_reply *r) {
  if (r->status != TB_OK) {
    print_error("the other process: %s: %s\n", tb_status_name((tb_status)r->status), r->message);
    fail();
  }
}

static void assert_child_mentions(const child_reply *r, tb_status expected, const char *needle) {
  if (r->status != (int32_t)expected || strstr(r->message, needle) == NULL) {
    print_error("the other process got %s (\"%s\"), expected %s mentioning \"%s\"\n",
                tb_status_name((tb_status)r->status), r->message, tb_status_name(expected),
                needle);
    fail();
  }
}

/* ---- the handle's bytes ---- */

static uint64_t get64(const unsigned char *p) { return get_le(p, 8); }
static uint32_t get32(const unsigned char *p) { return (uint32_t)get_le(p, 4); }

/* A version 2 handle written by hand: int32, C order, over an allocation
 * of block_size bytes whose IPC handle is 64 bytes of `fill`. */
static size_t hand_made(unsigned char *buf, int32_t ndim, const int64_t *shape,
                        uint64_t block_size, uint64_t byte_offset, unsigned char fill) {
  memset(buf, 0, TB_SHM_HANDLE_MAX);
  memcpy(buf, "TBSM", 4);
  put_le(buf + 4, TB_SHM_HANDLE_VERSION_CUDA, 2);
  put_le(buf + 6, (uint64_t)ndim, 2);
  buf[8] = kDLInt;
  buf[9] = 32;
  put_le(buf + 10, 1, 2);
  put_le(buf + 16, block_size, 8);
  put_le(buf + 24, byte_offset, 8);
  put_le(buf + 32, kDLCUDA, 4);
  put_le(buf + 36, 0, 4);
  memset(buf + 40, fill, 64);
  int64_t stride = 1;
  for (int32_t d = ndim - 1; d >= 0; d--) {
    put_le(buf + 104 + 8 * (size_t)d, (uint64_t)shape[d], 8);
    put_le(buf + 104 + 8 * (size_t)(ndim + d), (uint64_t)stride, 8);
    stride *= shape[d];
  }
  return TB_SHM_CUDA_HANDLE_SIZE(ndim);
}

/* ---- tests ---- */

static void library_cuda_tensors_are_shared(void **state) {
  (void)state;
  REQUIRE_IPC();
  const int64_t shape[2] = {3, 4};
  tb_tensor_t *t = gpu_ramp(I32, 2, shape, 5);
  assert_true(tb_tensor_is_shared(t));
  tb_tensor_t *s;
  assert_ok(tb_shm_share(t, &s));
  assert_ptr_equal(s, t); /* already shared: itself */
  tb_tensor_release(s);
  tb_tensor_t *row;
  assert_ok(tb_tensor_select(t, 0, 1, &row));
  assert_true(tb_tensor_is_shared(row)); /* views too */

  shm_handle ht = shm_encode(t);
  unsigned char *const buf = ht.bytes;
  assert_int_equal(ht.len, TB_SHM_CUDA_HANDLE_SIZE(2));
  assert_int_equal(ht.len, 104 + 32);
  assert_int_equal(ht.fd, -1);
  assert_memory_equal(buf, "TBSM", 4);
  assert_int_equal(buf[4] | (buf[5] << 8), 2);
  assert_int_equal(buf[6], 2);
  assert_int_equal(get64(buf + 16), 48); /* the allocation's bytes */
  assert_int_equal(get64(buf + 24), 0);
  assert_int_equal(get32(buf + 32), kDLCUDA);
  assert_int_equal(get32(buf + 36), 0);
  bool nonzero = false;
  for (int i = 0; i < 64; i++) nonzero |= buf[40 + i] != 0;
  assert_true(nonzero);
  assert_int_equal(get64(buf + 104), 3);
  assert_int_equal(get64(buf + 112), 4);
  assert_int_equal(get64(buf + 120), 4);
  assert_int_equal(get64(buf + 128), 1);
  /* the row: the same allocation, 16 bytes in */
  const shm_handle hr = shm_encode(row);
  assert_int_equal(hr.len, TB_SHM_CUDA_HANDLE_SIZE(1));
  assert_int_equal(hr.fd, -1);
  assert_int_equal(get64(hr.bytes + 24), 16);
  assert_memory_equal(hr.bytes + 40, buf + 40, 64);
  size_t len;
  int fd;
  assert_status(tb_shm_handle_encode(t, buf, TB_SHM_CUDA_HANDLE_SIZE(2) - 1, &len, &fd),
                TB_ERR_INVALID);
  assert_error_mentions("capacity = 135");
  /* no descriptor to send over a socket */
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
  assert_status(tb_shm_send(sv[0], t), TB_ERR_UNSUPPORTED);
  assert_error_mentions("fd = -1");
  close(sv[0]);
  close(sv[1]);

  /* Wrapped device memory is not shared; tb_shm_share copies it into the
   * library's own, on the same device. */
  tb_tensor_t *w;
  assert_ok(tb_from_array(tb_tensor_base(t), tb_tensor_byte_offset(t), I32, 2, shape, NULL, gpu(),
                          0, NULL, NULL, &w));
  assert_false(tb_tensor_is_shared(w));
  assert_status(tb_shm_handle_encode(w, ht.bytes, sizeof ht.bytes, &len, &fd), TB_ERR_INVALID);
  assert_error_mentions("did not allocate");
  assert_ok(tb_shm_share(w, &s));
  assert_ptr_not_equal(s, w);
  assert_true(tb_tensor_is_shared(s));
  assert_int_equal(tb_tensor_device(s).device_type, kDLCUDA);
  assert_ptr_not_equal(tb_tensor_base(s), tb_tensor_base(w));
  tb_tensor_t *h = to_host(s);
  for (int64_t i = 0; i < 12; i++) assert_true(host_get(h, i) == 5.0 + (double)i);
  tb_tensor_release(h);
  tb_tensor_release(s);
  tb_tensor_release(w);
  tb_tensor_release(row);
  tb_tensor_release(t);
}

static void another_process_writes_what_this_one_reads(void **state) {
  (void)state;
  REQUIRE_IPC();
  const int64_t shape[2] = {4, 5};
  tb_tensor_t *t = gpu_ramp(I32, 2, shape, 7);
  const shm_handle hd = shm_encode(t);
  child_reply r;
  run_child(hd.bytes, hd.len, true, 100, &r);
  assert_child_ok(&r);
  assert_int_equal(r.device_type, kDLCUDA);
  assert_int_equal(r.device_id, 0);
  assert_int_equal(r.ndim, 2);
  assert_int_equal(r.numel, 20);
  assert_int_equal(r.count, 20);
  for (int i = 0; i < 20; i++) assert_true(r.values[i] == 7.0 + i); /* it read ours */
  assert_true(r.reencoded_same); /* an attached tensor hands the same handle on */
  assert_true(r.second_same);    /* the driver's one mapping, opened twice */
  if (r.opens_attached >= 0) {   /* the stand-in counts opens */
    assert_int_equal(r.opens_attached, 1);
    assert_int_equal(r.opens_after, 0); /* closed at the last release */
  }
  assert_int_not_equal(r.range_after, TB_CU_SUCCESS); /* unmapped there */
  tb_tensor_t *h = to_host(t);
  for (int64_t i = 0; i < 20; i++) assert_true(host_get(h, i) == 100.0 + (double)i);
  tb_tensor_release(h);
  assert_int_equal(ipc_opens() > 0, false); /* this process opened nothing */
  tb_tensor_release(t);
}

static void a_view_travels_with_its_offset(void **state) {
  (void)state;
  REQUIRE_IPC();
  const int64_t shape[2] = {6, 8};
  tb_tensor_t *t = gpu_ramp(F64, 2, shape, 0);
  tb_tensor_t *rows, *v;
  assert_ok(tb_tensor_slice(t, 0, 1, 6, 2, &rows)); /* rows 1, 3, 5 */
  assert_ok(tb_tensor_slice(rows, 1, 6, 0, -2, &v)); /* columns 6, 4, 2 */
  assert_true(tb_tensor_is_shared(v));
  const shm_handle hd = shm_encode(v);
  assert_int_equal(get64(hd.bytes + 16), 6 * 8 * 8);
  assert_int_equal(get64(hd.bytes + 24), (1 * 8 + 6) * 8); /* element (1, 6) */
  assert_int_equal((int64_t)get64(hd.bytes + 104 + 16), 16);
  assert_int_equal((int64_t)get64(hd.bytes + 104 + 24), -2);
  child_reply r;
  run_child(hd.bytes, hd.len, false, 1000, &r);
  assert_child_ok(&r);
  assert_int_equal(r.numel, 9);
  const int rows_of[3] = {1, 3, 5}, cols_of[3] = {6, 4, 2};
  for (int i = 0; i < 3; i++) {
    for (int j = 0; j < 3; j++) {
      assert_true(r.values[i * 3 + j] == (double)(rows_of[i] * 8 + cols_of[j]));
    }
  }
  tb_tensor_t *h = to_host(t);
  for (int64_t k = 0; k < 48; k++) {
    double expected = (double)k;
    for (int i = 0; i < 3; i++) {
      for (int j = 0; j < 3; j++) {
        if (k == rows_of[i] * 8 + cols_of[j]) expected = 1000.0 + (double)(i * 3 + j);
      }
    }
    if (host_get(h, k) != expected) {
      print_error("element %lld is %g, expected %g\n", (long long)k, host_get(h, k), expected);
      fail();
    }
  }
  tb_tensor_release(h);
  tb_tensor_release(v);
  tb_tensor_release(rows);
  tb_tensor_release(t);
}

static void empty_tensors_share_no_allocation(void **state) {
  (void)state;
  REQUIRE_IPC();
  const int64_t shape[2] = {0, 3};
  tb_tensor_t *t;
  assert_ok(tb_tensor_empty(I32, 2, shape, gpu(), TB_ORDER_C, &t));
  assert_true(tb_tensor_is_shared(t));
  const shm_handle hd = shm_encode(t);
  assert_int_equal(get64(hd.bytes + 16), 0);
  for (int i = 0; i < 64; i++) assert_int_equal(hd.bytes[40 + i], 0);
  child_reply r;
  run_child(hd.bytes, hd.len, false, NAN, &r);
  assert_child_ok(&r);
  assert_int_equal(r.numel, 0);
  assert_int_equal(r.device_type, kDLCUDA);
  if (r.opens_attached >= 0) assert_int_equal(r.opens_attached, 0);
  tb_tensor_release(t);
}

static void attaching_in_the_same_process_is_refused(void **state) {
  (void)state;
  REQUIRE_IPC();
  const int64_t shape[1] = {16};
  tb_tensor_t *t = gpu_ramp(I32, 1, shape, 0), *out = SENTINEL_TENSOR;
  const shm_handle hd = shm_encode(t);
  assert_status(tb_shm_attach(hd.bytes, hd.len, -1, &out), TB_ERR_INVALID);
  assert_error_mentions("CUDA_ERROR_INVALID_CONTEXT");
  assert_error_mentions("other than the one that made it");
  assert_ptr_equal(out, SENTINEL_TENSOR);
  if (fake_ipc_opens != NULL) assert_int_equal(ipc_opens(), 0);
  tb_tensor_release(t);
}

/* One change to a valid handle and what attaching it must say. */
typedef struct mutation {
  size_t at;      /* byte offset of the field */
  int width;      /* 2, 4 or 8 */
  uint64_t value;
  int64_t len_change;
  int fd;
  tb_status status;
  const char *mentions;
} mutation;

static void hostile_cuda_handles_are_refused(void **state) {
  (void)state;
  REQUIRE_IPC();
  const int64_t shape[2] = {4, 6};
  tb_tensor_t *t = gpu_ramp(I32, 2, shape, 0);
  const shm_handle hd = shm_encode(t);
  const unsigned char *const good = hd.bytes;
  const size_t len = hd.len;
  const size_t shape0 = 104, stride0 = 104 + 16;
  const mutation cases[] = {
      {0, 0, 0, -1, -1, TB_ERR_FORMAT, "truncated"},
      {0, 0, 0, -60, -1, TB_ERR_FORMAT, "truncated"},
      {0, 0, 0, +8, -1, TB_ERR_FORMAT, "trailing bytes"},
      {4, 2, 3, 0, -1, TB_ERR_VERSION, "version = 3"},
      {6, 2, 3, 0, -1, TB_ERR_FORMAT, "ndim = 3 needs"},
      {8, 1, 77, 0, -1, TB_ERR_DTYPE, "77"},
      {12, 4, 0x10, 0, -1, TB_ERR_FORMAT, "flags = 0x10"},
      {16, 8, 95, 0, -1, TB_ERR_FORMAT, "reach past block_size = 95"},
      {16, 8, UINT64_C(1) << 63, 0, -1, TB_ERR_FORMAT, "exceeds int64"},
      {24, 8, 4, 0, -1, TB_ERR_FORMAT, "reach past block_size"},
      {24, 8, UINT64_C(1) << 63, 0, -1, TB_ERR_FORMAT, "byte_offset"},
      {32, 4, kDLCUDAHost, 0, -1, TB_ERR_FORMAT, "device_type = 3"},
      {32, 4, kDLCPU, 0, -1, TB_ERR_FORMAT, "device_type = 1"},
      {36, 4, 0xffffffffu, 0, -1, TB_ERR_FORMAT, "device_id = -1 is negative"},
      {36, 4, 5, 0, -1, TB_ERR_DEVICE, "not present"},
      {shape0, 8, (uint64_t)-4, 0, -1, TB_ERR_FORMAT, "shape[0] = -4 is negative"},
      {shape0, 8, 5, 0, -1, TB_ERR_FORMAT, "reach past block_size = 96"},
      {stride0, 8, (uint64_t)-6, 0, -1, TB_ERR_FORMAT, "below the block's start"},
      {stride0, 8, UINT64_C(1) << 61, 0, -1, TB_ERR_OVERFLOW, ""},
      {0, 0, 0, 0, 0, TB_ERR_INVALID, "fd = 0 given with a CUDA handle"},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    const mutation *m = &cases[k];
    unsigned char bad[TB_SHM_HANDLE_MAX + 8];
    memset(bad, 0, sizeof bad);
    memcpy(bad, good, len);
    put_le(bad + m->at, m->value, m->width);
    tb_tensor_t *out = SENTINEL_TENSOR;
    tb_status st = tb_shm_attach(bad, (size_t)((int64_t)len + m->len_change), m->fd, &out);
    if (st != m->status || strstr(tb_last_error(), m->mentions) == NULL) {
      print_error("case %zu: %s (\"%s\"), expected %s mentioning \"%s\"\n", k,
                  tb_status_name(st), tb_last_error(), tb_status_name(m->status), m->mentions);
      fail();
    }
    assert_ptr_equal(out, SENTINEL_TENSOR);
  }
  /* An empty allocation with a non-zero IPC handle. */
  unsigned char hand[TB_SHM_HANDLE_MAX];
  const int64_t none[1] = {0};
  tb_tensor_t *out = SENTINEL_TENSOR;
  size_t hlen = hand_made(hand, 1, none, 0, 0, 0x5a);
  assert_status(tb_shm_attach(hand, hlen, -1, &out), TB_ERR_FORMAT);
  assert_error_mentions("block_size = 0 (no allocation)");
  assert_status(tb_shm_attach(NULL, hlen, -1, &out), TB_ERR_INVALID);
  assert_ptr_equal(out, SENTINEL_TENSOR);
  assert_status(tb_shm_attach(good, len, -1, NULL), TB_ERR_INVALID);

  /* What only the driver can tell, in another process: IPC bytes that name
   * no allocation, and a handle claiming more bytes than its allocation. */
  child_reply r;
  unsigned char forged[TB_SHM_HANDLE_MAX];
  memcpy(forged, good, len);
  for (int i = 0; i < 64; i++) forged[40 + i] ^= 0x5a;
  run_child(forged, len, false, NAN, &r);
  assert_child_mentions(&r, TB_ERR_INVALID, "cuIpcOpenMemHandle");
  memcpy(forged, good, len);
  /* 64 MiB more than the allocation: past any rounding a real driver's
   * cuMemGetAddressRange might report; the view still fits. */
  put_le(forged + 16, 96 + (UINT64_C(64) << 20), 8);
  run_child(forged, len, false, NAN, &r);
  assert_child_mentions(&r, TB_ERR_INVALID, "fewer than block_size = 67108960");
  if (r.opens_after >= 0 && fake_ipc_opens != NULL) assert_int_equal(r.opens_after, 0);
  /* the tensor is still there, untouched */
  tb_tensor_t *h = to_host(t);
  for (int64_t i = 0; i < 24; i++) assert_true(host_get(h, i) == (double)i);
  tb_tensor_release(h);
  tb_tensor_release(t);
}

/* Old host handles (version 1) still attach beside the CUDA kind. */
static void host_handles_keep_version_1(void **state) {
  (void)state;
  const int64_t shape[1] = {3};
  tb_tensor_t *s, *a;
  assert_ok(tb_shm_empty(I32, 1, shape, &s));
  const shm_handle hd = shm_encode(s);
  assert_int_equal(hd.len, TB_SHM_HANDLE_SIZE(1));
  assert_int_equal(hd.bytes[4], 1);
  assert_true(hd.fd >= 0);
  assert_ok(tb_shm_attach(hd.bytes, hd.len, hd.fd, &a));
  assert_int_equal(tb_tensor_device(a).device_type, kDLCPU);
  tb_tensor_release(a);
  /* version 2 sizes, and nothing larger than the maximum */
  assert_true(TB_SHM_CUDA_HANDLE_SIZE(TB_MAX_NDIM) <= TB_SHM_HANDLE_MAX);
  assert_true(TB_SHM_HANDLE_SIZE(TB_MAX_NDIM) <= TB_SHM_HANDLE_MAX);
  tb_tensor_release(s);
}

/* ---- without CUDA IPC: no backend, no device, or a driver without it ---- */

static tb_status host_alloc(const tb_device_vtable *self, int32_t id, uint64_t nbytes,
                            const tb_allocator *host, void **out) {
  (void)self, (void)id, (void)host;
  *out = nbytes > 0 ? calloc(1, (size_t)nbytes) : NULL;
  return TB_OK;
}
static void host_free(const tb_device_vtable *self, int32_t id, void *p, uint64_t nbytes,
                      const tb_allocator *host) {
  (void)self, (void)id, (void)nbytes, (void)host;
  free(p);
}
static int32_t one_device(const tb_device_vtable *self) {
  (void)self;
  return 1;
}
static tb_status no_copy(const tb_device_vtable *self, void *dst, uint64_t dst_offset,
                         DLDevice dst_device, const void *src, uint64_t src_offset,
                         DLDevice src_device, uint64_t nbytes, void *stream) {
  (void)self, (void)dst, (void)dst_offset, (void)dst_device, (void)src, (void)src_offset;
  (void)src_device, (void)nbytes, (void)stream;
  return tb_set_error(TB_ERR_UNSUPPORTED, "test backend: no copies");
}
/* A stand-in kDLCUDA backend for a build without the CUDA backend, so that
 * CUDA tensors exist to be refused. */
static const tb_device_vtable test_cuda_backend = {
    .abi_version = TB_BACKEND_ABI_VERSION,
    .device_type = kDLCUDA,
    .name = "test_cuda",
    .device_count = one_device,
    .alloc = host_alloc,
    .free = host_free,
    .copy_bytes = no_copy,
};

static void refusals_without_cuda_ipc(void **state) {
  (void)state;
  unsigned char hand[TB_SHM_HANDLE_MAX];
  const int64_t shape[1] = {4};
  size_t hlen = hand_made(hand, 1, shape, 16, 0, 0x11);
  tb_tensor_t *out = SENTINEL_TENSOR;
  if (g_have_cuda && !g_no_ipc) {
    print_message("skipping: this driver has CUDA IPC (the other tests use it)\n");
    skip();
  }
  if (g_no_ipc) {
    /* The driver loaded without the IPC entry points: all else works. */
    assert_true(g_have_cuda);
    tb_tensor_t *t = gpu_ramp(I32, 1, shape, 3);
    tb_tensor_t *h = to_host(t);
    assert_true(host_get(h, 3) == 6.0);
    tb_tensor_release(h);
    assert_false(tb_tensor_is_shared(t));
    unsigned char buf[TB_SHM_HANDLE_MAX];
    size_t len;
    int fd;
    assert_status(tb_shm_handle_encode(t, buf, sizeof buf, &len, &fd), TB_ERR_UNSUPPORTED);
    assert_error_mentions("does not export cuIpc");
    assert_status(tb_shm_share(t, &out), TB_ERR_UNSUPPORTED);
    assert_ptr_equal(out, SENTINEL_TENSOR);
    assert_status(tb_shm_attach(hand, hlen, -1, &out), TB_ERR_UNSUPPORTED);
    assert_error_mentions("CUDA IPC");
    assert_ptr_equal(out, SENTINEL_TENSOR);
    tb_tensor_release(t);
    return;
  }
  /* No device: a CUDA handle names memory nothing here can reach. */
  assert_status(tb_shm_attach(hand, hlen, -1, &out), TB_ERR_DEVICE);
  assert_error_mentions("no cuda device is present");
  assert_ptr_equal(out, SENTINEL_TENSOR);
  if (tb_get_backend(kDLCUDA) != NULL) return; /* a CUDA build without a device: no tensor */
  /* A build without the CUDA backend: CUDA tensors of another backend get
   * TB_ERR_UNSUPPORTED, with the reason. */
  assert_ok(tb_register_backend(&test_cuda_backend));
  tb_tensor_t *t;
  assert_ok(tb_tensor_empty(I32, 1, shape, gpu(), TB_ORDER_C, &t));
  assert_false(tb_tensor_is_shared(t));
  unsigned char buf[TB_SHM_HANDLE_MAX];
  size_t len;
  int fd;
  assert_status(tb_shm_handle_encode(t, buf, sizeof buf, &len, &fd), TB_ERR_UNSUPPORTED);
  assert_error_mentions("no CUDA backend");
  assert_status(tb_shm_share(t, &out), TB_ERR_UNSUPPORTED);
  assert_error_mentions("no CUDA backend");
  assert_ptr_equal(out, SENTINEL_TENSOR);
  assert_status(tb_shm_attach(hand, hlen, -1, &out), TB_ERR_DEVICE);
  assert_error_mentions("no CUDA backend");
  assert_ptr_equal(out, SENTINEL_TENSOR);
  tb_tensor_release(t);
}

static bool expectation_met(void) {
  const char *expect = getenv("TB_EXPECT_CUDA");
  if (expect == NULL || *expect == '\0' || strcmp(expect, "0") == 0) return true;
  if (!g_have_cuda) {
    fprintf(stderr, "TB_EXPECT_CUDA=%s, but no CUDA device\n", expect);
    return false;
  }
  if (strcmp(expect, "emulated") == 0 && fake_ipc_opens == NULL) {
    fprintf(stderr, "TB_EXPECT_CUDA=emulated, but libcuda.so.1 is not the stand-in driver\n");
    return false;
  }
  return true;
}

int main(int argc, char **argv) {
  g_self = argv[0];
  if (argc > 1 && strcmp(argv[1], "--ipc-child") == 0) return child_main();
  probe();
  if (!expectation_met()) return 1;
  if (argc > 1) cmocka_set_test_filter(argv[1]);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(library_cuda_tensors_are_shared),
      cmocka_unit_test(another_process_writes_what_this_one_reads),
      cmocka_unit_test(a_view_travels_with_its_offset),
      cmocka_unit_test(empty_tensors_share_no_allocation),
      cmocka_unit_test(attaching_in_the_same_process_is_refused),
      cmocka_unit_test(hostile_cuda_handles_are_refused),
      cmocka_unit_test(host_handles_keep_version_1),
      cmocka_unit_test(refusals_without_cuda_ipc),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
