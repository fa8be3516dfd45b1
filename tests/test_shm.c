/*
 * Tensors in shared memory (tensorbridge/shm.h): blocks made both ways
 * (memfd and shm_open, through TB_SHM_KIND), attached in the same process
 * and in forked children (an inherited descriptor, and through sockets of
 * every type, both directions), the deleter's unmap and close at the last
 * release, a killed child, hostile handles, descriptors and messages, and
 * tb_shm_share.
 *
 * Forked children never use cmocka's asserts: they compute an exit code
 * and leave with _exit; the parent always reaps them (wait_child).
 */
#define _GNU_SOURCE /* F_GET_SEALS, memfd_create for the tests' own blocks */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "support.h"

/* ---- helpers ---- */

/* The kinds, as TB_SHM_KIND spells them (the prestate of parametrised tests). */
static const char kind_memfd[] = "memfd";
static const char kind_shm_open[] = "shm_open";

static int set_kind(void **state) {
  assert_int_equal(setenv("TB_SHM_KIND", (const char *)*state, 1), 0);
  return 0;
}
static int unset_kind(void **state) {
  (void)state;
  unsetenv("TB_SHM_KIND");
  return 0;
}

/* Lines of /proc/self/maps naming a block ("memfd:tb-shm" or
 * "/dev/shm/tb-shm-..."): one per mapping. */
static int count_block_maps(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  assert_non_null(f);
  char line[1024];
  int n = 0;
  while (fgets(line, sizeof line, f) != NULL) n += strstr(line, "tb-shm") != NULL;
  fclose(f);
  return n;
}

/* Open descriptors of this process (the listing's own included, always). */
static int count_fds(void) { return count_dir_entries("/proc/self/fd"); }

static bool fd_is_open(int fd) { return fcntl(fd, F_GETFD) != -1 || errno != EBADF; }

/* The descriptor's target, as the kernel names it. */
static void fd_target(int fd, char *buf, size_t size) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(path, buf, size - 1);
  assert_true(n > 0);
  buf[n] = '\0';
}

/* Whether this system makes memfds (the library falls back to shm_open
 * where its build or the kernel has none). */
static bool memfds_exist(void) {
#ifdef MFD_CLOEXEC
  const int fd = memfd_create("tb-shm-probe", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return false;
  close(fd);
  return true;
#else
  return false;
#endif
}

/* The block's descriptor is of the kind TB_SHM_KIND asked for (shm_open
 * where there are no memfds). */
static void assert_block_kind(int fd, const char *kind) {
  char target[256];
  fd_target(fd, target, sizeof target);
  const bool memfd = strcmp(kind, kind_memfd) == 0 && memfds_exist();
  const char *want = memfd ? "memfd:tb-shm" : "/dev/shm/tb-shm-";
  if (strstr(target, want) == NULL) {
    print_error("fd %d is \"%s\", not a %s block (\"%s\")\n", fd, target, kind, want);
    fail();
  }
  assert_non_null(strstr(target, "(deleted)")); /* nameless: nothing in /dev/shm */
}

static int block_fd(const tb_tensor_t *t) { return shm_encode(t).fd; }

static tb_tensor_t *shm_iota_f32(int32_t ndim, const int64_t *shape) {
  tb_tensor_t *t;
  assert_ok(tb_shm_empty(F32, ndim, shape, &t));
  float *x = tb_tensor_data(t);
  for (int64_t i = 0; i < tb_tensor_numel(t); i++) x[i] = (float)i;
  return t;
}

static float f32_at(const tb_tensor_t *t, const int64_t *index) {
  void *p;
  assert_ok(tb_tensor_element_ptr(t, index, &p));
  return *(const float *)p;
}

/* Reaps a child (never a zombie), killing it after 120 s (valgrind is
 * slow; a hang is forever). Its exit code, or 100 + signal. */
static int wait_child(pid_t pid) {
  int status = 0;
  for (int waited = 0;; waited++) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    assert_int_equal(r, 0);
    if (waited > 1200) {
      kill(pid, SIGKILL);
      (void)waitpid(pid, &status, 0);
      fail_msg("the forked child did not finish");
    }
    const struct timespec tenth = {0, 100000000};
    nanosleep(&tenth, NULL);
  }
  if (WIFSIGNALED(status)) return 100 + WTERMSIG(status);
  assert_true(WIFEXITED(status));
  return WEXITSTATUS(status);
}

static pid_t fork_child(void) {
  fflush(NULL);
  const pid_t pid = fork();
  assert_true(pid >= 0);
  return pid;
}

/* Sends bytes with nfds descriptors attached, as a hostile peer might. */
static void send_raw(int sock, const void *buf, size_t len, const int *fds, int nfds) {
  union {
    struct cmsghdr align;
    unsigned char bytes[CMSG_SPACE(sizeof(int) * 16)];
  } control;
  memset(&control, 0, sizeof control);
  struct iovec iov = {.iov_base = (void *)(uintptr_t)buf, .iov_len = len};
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (nfds > 0) {
    assert_true(nfds <= 16);
    msg.msg_control = control.bytes;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
  }
  assert_int_equal(sendmsg(sock, &msg, 0), (ssize_t)len);
}

/* ---- one process ---- */

static void empty_is_zero_filled_c_order_and_shared(void **state) {
  const char *kind = *state;
  const int64_t shape[3] = {2, 3, 4};
  tb_tensor_t *t;
  assert_ok(tb_shm_empty(F64, 3, shape, &t));
  assert_true(tb_tensor_is_shared(t));
  assert_int_equal(tb_tensor_device(t).device_type, kDLCPU);
  assert_true(tb_dtype_equal(tb_tensor_dtype(t), F64));
  assert_int_equal(tb_tensor_strides(t)[0], 12);
  assert_int_equal(tb_tensor_strides(t)[1], 4);
  assert_int_equal(tb_tensor_strides(t)[2], 1);
  assert_true(tb_tensor_is_contiguous(t, TB_ORDER_C));
  assert_false(tb_tensor_is_readonly(t));
  const double *x = tb_tensor_data(t);
  assert_non_null(x);
  for (int i = 0; i < 24; i++) assert_true(x[i] == 0.0);
  assert_int_equal((uintptr_t)x % 4096, 0); /* a mapping starts on a page */

  const int fd = block_fd(t);
  assert_block_kind(fd, kind);
  assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
  struct stat st;
  assert_int_equal(fstat(fd, &st), 0);
  assert_int_equal(st.st_size, 24 * 8); /* exactly the tensor's bytes */
#ifdef F_GET_SEALS
  if (strcmp(kind, kind_memfd) == 0 && memfds_exist()) {
    const int seals = fcntl(fd, F_GET_SEALS);
    assert_true(seals >= 0);
    assert_int_equal(seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
                     F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
    assert_int_equal(ftruncate(fd, 8), -1); /* nobody can shrink it under a mapping */
    assert_int_equal(errno, EPERM);
  }
#endif
  /* Views are shared too; other tensors are not. */
  tb_tensor_t *v, *plain;
  assert_ok(tb_tensor_select(t, 0, 1, &v));
  assert_true(tb_tensor_is_shared(v));
  assert_ok(tb_tensor_zeros(F64, 3, shape, cpu(), TB_ORDER_C, &plain));
  assert_false(tb_tensor_is_shared(plain));
  assert_false(tb_tensor_is_shared(NULL));
  tb_tensor_release(plain);
  tb_tensor_release(v);
  tb_tensor_release(t);
}

static void a_size_zero_tensor_has_a_block_but_no_mapping(void **state) {
  (void)state;
  const int maps = count_block_maps();
  const int64_t shape[2] = {0, 3};
  tb_tensor_t *t, *a;
  assert_ok(tb_shm_empty(I32, 2, shape, &t));
  assert_true(tb_tensor_is_shared(t));
  assert_null(tb_tensor_data(t));
  assert_int_equal(count_block_maps(), maps);
  const shm_handle h = shm_encode(t);
  assert_int_equal(h.len, TB_SHM_HANDLE_SIZE(2));
  assert_ok(tb_shm_attach(h.bytes, h.len, h.fd, &a));
  assert_int_equal(tb_tensor_numel(a), 0);
  assert_int_equal(tb_tensor_shape(a)[1], 3);
  assert_true(tb_tensor_is_shared(a));
  tb_tensor_release(a);
  tb_tensor_release(t);
}

/* Attaching gives another mapping of the same pages: the data pointers
 * differ (two mappings in one address space), and that is expected; the
 * memory is one, so a write through either is read through the other. */
static void attach_in_one_process_maps_the_same_pages(void **state) {
  const char *kind = *state;
  const int64_t shape[2] = {4, 5};
  tb_tensor_t *t, *a;
  assert_ok(tb_shm_empty(I32, 2, shape, &t));
  int32_t *x = tb_tensor_data(t);
  for (int i = 0; i < 20; i++) x[i] = 3 * i;
  const shm_handle h = shm_encode(t);
  const int fd = h.fd;
  assert_int_equal(h.len, 32 + 16 * 2);
  assert_memory_equal(h.bytes, "TBSM", 4);
  const int maps = count_block_maps();
  assert_ok(tb_shm_attach(h.bytes, h.len, fd, &a));
  assert_int_equal(count_block_maps(), maps + 1);
  int32_t *y = tb_tensor_data(a);
  assert_ptr_not_equal(x, y);
  assert_true(tb_tensor_is_shared(a));
  assert_false(tb_tensor_shares_storage(t, a)); /* a storage of its own over the same pages */
  assert_int_equal(tb_tensor_ndim(a), 2);
  assert_int_equal(tb_tensor_shape(a)[0], 4);
  assert_int_equal(tb_tensor_shape(a)[1], 5);
  assert_int_equal(tb_tensor_strides(a)[0], 5);
  assert_true(tb_dtype_equal(tb_tensor_dtype(a), I32));
  for (int i = 0; i < 20; i++) assert_int_equal(y[i], 3 * i);
  x[7] = -77;
  assert_int_equal(y[7], -77);
  y[19] = 1234;
  assert_int_equal(x[19], 1234);
  const int32_t nine = 9;
  assert_ok(tb_tensor_fill(a, &nine, I32)); /* library writes too */
  for (int i = 0; i < 20; i++) assert_int_equal(x[i], 9);

  /* The attached tensor holds a descriptor of its own, of the same kind. */
  const int afd = block_fd(a);
  assert_int_not_equal(afd, fd);
  assert_block_kind(afd, kind);
  tb_tensor_release(a);
  assert_false(fd_is_open(afd));
  assert_true(fd_is_open(fd)); /* the caller's, borrowed, untouched */
  assert_int_equal(x[0], 9);
  tb_tensor_release(t);
}

static void a_view_travels_with_its_offset_and_strides(void **state) {
  (void)state;
  const int64_t shape[2] = {6, 8};
  tb_tensor_t *t = shm_iota_f32(2, shape), *rows, *v, *a, *tr, *ta;
  /* rows 1, 3, 5; columns 7 down to 0: a byte offset and a negative stride */
  assert_ok(tb_tensor_slice(t, 0, 1, 6, 2, &rows));
  assert_ok(tb_tensor_slice(rows, 1, INT64_MAX, INT64_MIN, -1, &v));
  const shm_handle hv = shm_encode(v);
  assert_ok(tb_shm_attach(hv.bytes, hv.len, hv.fd, &a));
  assert_int_equal(tb_tensor_shape(a)[0], 3);
  assert_int_equal(tb_tensor_shape(a)[1], 8);
  assert_int_equal(tb_tensor_strides(a)[0], 16);
  assert_int_equal(tb_tensor_strides(a)[1], -1);
  for (int64_t i = 0; i < 3; i++) {
    for (int64_t j = 0; j < 8; j++) {
      const int64_t idx[2] = {i, j};
      assert_true(f32_at(a, idx) == (float)((2 * i + 1) * 8 + (7 - j)));
    }
  }
  /* a[2][0] is t[5][7] */
  const int64_t a20[2] = {2, 0};
  void *p;
  assert_ok(tb_tensor_element_ptr(a, a20, &p));
  *(float *)p = -1.5f;
  assert_true(((const float *)tb_tensor_data(t))[5 * 8 + 7] == -1.5f);
  /* and a transpose */
  assert_ok(tb_tensor_transpose(t, 0, 1, &tr));
  const shm_handle htr = shm_encode(tr);
  assert_ok(tb_shm_attach(htr.bytes, htr.len, htr.fd, &ta));
  const int64_t idx[2] = {3, 4};
  assert_true(f32_at(ta, idx) == 4 * 8 + 3);
  tb_tensor_release(ta);
  tb_tensor_release(tr);
  tb_tensor_release(a);
  tb_tensor_release(v);
  tb_tensor_release(rows);
  tb_tensor_release(t);
}

static void a_read_only_view_attaches_read_only(void **state) {
  (void)state;
  const int64_t shape[1] = {4}, wide[2] = {3, 4};
  tb_tensor_t *t = shm_iota_f32(1, shape), *e, *a;
  assert_ok(tb_tensor_expand(t, 2, wide, &e)); /* aliasing elements: read-only */
  assert_true(tb_tensor_is_readonly(e));
  const shm_handle h = shm_encode(e);
  assert_int_equal(h.bytes[12], TB_FLAG_READONLY);
  assert_ok(tb_shm_attach(h.bytes, h.len, h.fd, &a));
  assert_true(tb_tensor_is_readonly(a));
  assert_int_equal(tb_tensor_strides(a)[0], 0);
  const int64_t idx[2] = {2, 3};
  assert_true(f32_at(a, idx) == 3.0f);
  ((float *)tb_tensor_data(t))[3] = 30.0f;
  assert_true(f32_at(a, idx) == 30.0f);
  const float one = 1;
  assert_status(tb_tensor_fill(a, &one, F32), TB_ERR_READONLY);
  /* A read-only handle takes a descriptor opened read-only. */
  char path[64];
  tb_tensor_t *b;
  snprintf(path, sizeof path, "/proc/self/fd/%d", h.fd);
  const int ro = open(path, O_RDONLY | O_CLOEXEC);
  assert_true(ro >= 0);
  assert_ok(tb_shm_attach(h.bytes, h.len, ro, &b));
  assert_true(f32_at(b, idx) == 30.0f);
  tb_tensor_release(b);
  close(ro);
  tb_tensor_release(a);
  tb_tensor_release(e);
  tb_tensor_release(t);
}

static void a_packed_dtype_travels_whole(void **state) {
  (void)state;
  DLDataType f4;
  assert_ok(tb_dtype_from_name("float4_e2m1fn", &f4));
  const int64_t shape[1] = {5};
  tb_tensor_t *t, *a;
  assert_ok(tb_shm_empty(f4, 1, shape, &t));
  unsigned char *x = tb_tensor_data(t);
  x[0] = 0x21;
  x[2] = 0x07;
  const shm_handle h = shm_encode(t);
  struct stat st;
  assert_int_equal(fstat(h.fd, &st), 0);
  assert_int_equal(st.st_size, 3); /* 5 x 4 bits, rounded up */
  assert_ok(tb_shm_attach(h.bytes, h.len, h.fd, &a));
  const unsigned char *y = tb_tensor_data(a);
  assert_int_equal(y[0], 0x21);
  assert_int_equal(y[2], 0x07);
  tb_tensor_release(a);
  tb_tensor_release(t);
}

static void the_last_release_unmaps_and_closes(void **state) {
  const char *kind = *state;
  const int maps = count_block_maps(), fds = count_fds();
  const int64_t shape[2] = {64, 64};
  tb_tensor_t *t = shm_iota_f32(2, shape), *v, *a;
  const int fd = block_fd(t);
  assert_block_kind(fd, kind);
  assert_int_equal(count_block_maps(), maps + 1);
  assert_int_equal(count_fds(), fds + 1);
  assert_ok(tb_tensor_select(t, 0, 63, &v));
  const shm_handle hv = shm_encode(v);
  assert_int_equal(hv.fd, fd); /* a view's block is its base's */
  assert_ok(tb_shm_attach(hv.bytes, hv.len, fd, &a));
  assert_int_equal(count_block_maps(), maps + 2);
  assert_int_equal(count_fds(), fds + 2);
  const int afd = block_fd(a);

  tb_tensor_release(t); /* the view keeps the block */
  assert_int_equal(count_block_maps(), maps + 2);
  assert_true(fd_is_open(fd));
  const int64_t last[1] = {63};
  assert_true(f32_at(v, last) == 63 * 64 + 63);
  tb_tensor_release(v); /* the last of that storage: unmapped, closed */
  assert_int_equal(count_block_maps(), maps + 1);
  assert_int_equal(fcntl(fd, F_GETFD), -1);
  assert_int_equal(errno, EBADF);
  assert_int_equal(count_fds(), fds + 1);
  /* The attached mapping still reads the memory: it holds its own. */
  assert_true(f32_at(a, last) == 63 * 64 + 63);
  tb_tensor_release(a);
  assert_int_equal(count_block_maps(), maps);
  assert_false(fd_is_open(afd));
  assert_int_equal(count_fds(), fds);
}

/* Every failure path frees what it took: the header, the block's record,
 * the descriptor and the mapping. */
static void failed_constructions_free_what_they_took(void **state) {
  (void)state;
  const int maps = count_block_maps(), fds = count_fds();
  const int64_t shape[1] = {1000};
  tb_tensor_t *t = shm_iota_f32(1, shape);
  const shm_handle h = shm_encode(t);
  tb_tensor_t *out;
  /* Call 0 is the block's record, call 1 the tensor's header (after the
   * block is made and mapped). */
  for (long fail_at = 0; fail_at < 2; fail_at++) {
    for (int attach = 0; attach < 2; attach++) {
      test_allocator a;
      test_allocator_install(&a, fail_at);
      out = SENTINEL_TENSOR;
      tb_status st =
          attach ? tb_shm_attach(h.bytes, h.len, h.fd, &out) : tb_shm_empty(F32, 1, shape, &out);
      test_allocator_remove();
      assert_int_equal(st, TB_ERR_NOMEM);
      assert_ptr_equal(out, SENTINEL_TENSOR);
      assert_int_equal(a.calls, fail_at + 1);
      assert_int_equal(a.live_bytes, 0);
      assert_int_equal(count_block_maps(), maps + 1); /* t's own, no more */
      assert_int_equal(count_fds(), fds + 1);
    }
  }
  /* An overflowing shape is refused before any block is made. */
  const int64_t huge[2] = {INT64_MAX / 2, 3};
  out = SENTINEL_TENSOR;
  assert_status(tb_shm_empty(F32, 2, huge, &out), TB_ERR_OVERFLOW);
  assert_ptr_equal(out, SENTINEL_TENSOR);
  assert_status(tb_shm_empty(F32, 1, shape, NULL), TB_ERR_INVALID);
  assert_int_equal(count_fds(), fds + 1);
  tb_tensor_release(t);
  assert_int_equal(count_block_maps(), maps);
  assert_int_equal(count_fds(), fds);
}

/* Send, then release: the descriptor in flight keeps the block alive. */
static void a_sent_block_outlives_its_sender(void **state) {
  (void)state;
  const int maps = count_block_maps();
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
  const int64_t shape[1] = {100};
  tb_tensor_t *t = shm_iota_f32(1, shape), *r;
  assert_ok(tb_shm_send(sv[0], t));
  tb_tensor_release(t);
  assert_int_equal(count_block_maps(), maps);
  assert_ok(tb_shm_recv(sv[1], &r));
  const float *x = tb_tensor_data(r);
  for (int i = 0; i < 100; i++) assert_true(x[i] == (float)i);
  /* The received descriptor is close-on-exec. */
  assert_true(fcntl(block_fd(r), F_GETFD) & FD_CLOEXEC);
  tb_tensor_release(r);
  close(sv[0]);
  close(sv[1]);
}

/* ---- across processes ---- */

/* The child: attach from the handle and descriptor it inherited, check the
 * parent's values, write its own, release, leave. Children release the
 * references fork copied (`inherited`) too, so that a memory checker finds
 * nothing left at their _exit. */
static int child_writes_inherited(const unsigned char *buf, size_t len, int fd,
                                  tb_tensor_t *inherited) {
  tb_tensor_t *a;
  tb_status st = tb_shm_attach(buf, len, fd, &a);
  tb_tensor_release(inherited); /* closes this process's fd, after the attach dup'ed it */
  if (st != TB_OK) return 1;
  float *x = tb_tensor_data(a);
  int code = 0;
  for (int i = 0; i < 50; i++) {
    if (x[i] != (float)i) code = 2;
    x[i] = 100.0f + (float)i;
  }
  tb_tensor_release(a);
  return code;
}

static void a_forked_child_writes_through_an_inherited_fd(void **state) {
  const char *kind = *state;
  const int64_t shape[1] = {50};
  tb_tensor_t *t = shm_iota_f32(1, shape);
  const shm_handle h = shm_encode(t);
  assert_block_kind(h.fd, kind);
  const pid_t pid = fork_child();
  if (pid == 0) _exit(child_writes_inherited(h.bytes, h.len, h.fd, t));
  assert_int_equal(wait_child(pid), 0);
  const float *x = tb_tensor_data(t);
  for (int i = 0; i < 50; i++) assert_true(x[i] == 100.0f + (float)i);
  tb_tensor_release(t);
}

static int child_writes_received(int sock, tb_tensor_t *inherited) {
  tb_tensor_release(inherited); /* the socket brings all the child uses */
  tb_tensor_t *r;
  if (tb_shm_recv(sock, &r) != TB_OK) return 1;
  int code = tb_tensor_is_shared(r) ? 0 : 3;
  float *x = tb_tensor_data(r);
  for (int i = 0; i < 32; i++) {
    if (x[i] != (float)i) code = 2;
    x[i] = -(float)i - 1.0f;
  }
  tb_tensor_release(r);
  return code;
}

static void a_forked_child_writes_through_a_socket(void **state) {
  (void)state;
  const int types[3] = {SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM};
  for (int k = 0; k < 3; k++) {
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, types[k], 0, sv), 0);
    const int64_t shape[2] = {4, 8};
    tb_tensor_t *t = shm_iota_f32(2, shape);
    const pid_t pid = fork_child();
    if (pid == 0) {
      close(sv[0]);
      _exit(child_writes_received(sv[1], t));
    }
    close(sv[1]);
    assert_ok(tb_shm_send(sv[0], t));
    assert_int_equal(wait_child(pid), 0);
    const float *x = tb_tensor_data(t);
    for (int i = 0; i < 32; i++) assert_true(x[i] == -(float)i - 1.0f);
    close(sv[0]);
    tb_tensor_release(t);
  }
}

/* The other way round: the child makes the block and sends it; the parent
 * writes and the child checks what it reads. */
static int child_shares_back(int sock) {
  const int64_t shape[1] = {16};
  tb_tensor_t *t;
  if (tb_shm_empty(I64, 1, shape, &t) != TB_OK) return 1;
  int64_t *x = tb_tensor_data(t);
  for (int i = 0; i < 16; i++) x[i] = 7 * i;
  int code = tb_shm_send(sock, t) == TB_OK ? 0 : 2;
  char go = 0;
  if (code == 0 && read(sock, &go, 1) != 1) code = 3;
  for (int i = 0; code == 0 && i < 16; i++) {
    if (x[i] != 1000 + i) code = 4;
  }
  tb_tensor_release(t);
  return code;
}

static void a_child_shares_back_to_its_parent(void **state) {
  (void)state;
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  const pid_t pid = fork_child();
  if (pid == 0) {
    close(sv[0]);
    _exit(child_shares_back(sv[1]));
  }
  close(sv[1]);
  tb_tensor_t *r;
  assert_ok(tb_shm_recv(sv[0], &r));
  assert_true(tb_dtype_equal(tb_tensor_dtype(r), I64));
  int64_t *x = tb_tensor_data(r);
  for (int i = 0; i < 16; i++) assert_int_equal(x[i], 7 * i);
  for (int i = 0; i < 16; i++) x[i] = 1000 + i;
  assert_int_equal(write(sv[0], "g", 1), 1);
  assert_int_equal(wait_child(pid), 0); /* the child read the parent's writes */
  tb_tensor_release(r);
  close(sv[0]);
}

/* /dev/shm entries whose name holds "tb-shm-<pid>-". */
static int dev_shm_entries_of(pid_t pid) {
  char prefix[48];
  snprintf(prefix, sizeof prefix, "tb-shm-%ld-", (long)pid);
  DIR *d = opendir("/dev/shm");
  if (d == NULL) return 0; /* no /dev/shm: nothing can be left there */
  int n = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;) n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
  closedir(d);
  return n;
}

/* The child attaches the parent's block, makes a few of its own, writes,
 * says so, and waits to be killed. */
static int child_waits_to_be_killed(int sock) {
  tb_tensor_t *r, *own[4];
  if (tb_shm_recv(sock, &r) != TB_OK) return 1;
  ((float *)tb_tensor_data(r))[0] = 42.0f;
  const int64_t shape[1] = {1024};
  for (int i = 0; i < 4; i++) {
    if (tb_shm_empty(F32, 1, shape, &own[i]) != TB_OK) return 2;
    ((float *)tb_tensor_data(own[i]))[i] = 1.0f;
  }
  if (write(sock, "r", 1) != 1) return 3;
  for (;;) pause();
}

static void a_killed_child_leaves_nothing_behind(void **state) {
  const char *kind = *state;
  const pid_t self = getpid();
  assert_int_equal(dev_shm_entries_of(self), 0);
  const int maps = count_block_maps();
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  const int64_t shape[1] = {256};
  tb_tensor_t *t = shm_iota_f32(1, shape);
  assert_block_kind(block_fd(t), kind);
  assert_int_equal(dev_shm_entries_of(self), 0); /* unlinked as soon as opened */
  const pid_t pid = fork_child();
  if (pid == 0) {
    close(sv[0]);
    _exit(child_waits_to_be_killed(sv[1]));
  }
  close(sv[1]);
  assert_ok(tb_shm_send(sv[0], t));
  char ready = 0;
  assert_int_equal(read(sv[0], &ready, 1), 1);
  assert_int_equal(ready, 'r');
  /* Alive with five blocks mapped (its kind from the inherited TB_SHM_KIND): none has a name. */
  assert_int_equal(dev_shm_entries_of(pid), 0);
  assert_int_equal(kill(pid, SIGKILL), 0);
  assert_int_equal(wait_child(pid), 100 + SIGKILL);
  close(sv[0]);
  assert_int_equal(dev_shm_entries_of(pid), 0);
  assert_int_equal(dev_shm_entries_of(self), 0);
  /* The parent's tensor still works, the child's write in it. */
  const float *x = tb_tensor_data(t);
  assert_true(x[0] == 42.0f);
  for (int i = 1; i < 256; i++) assert_true(x[i] == (float)i);
  const float two = 2;
  assert_ok(tb_tensor_fill(t, &two, F32));
  assert_true(x[255] == 2.0f);
  tb_tensor_release(t);
  assert_int_equal(count_block_maps(), maps);
}

/* ---- hostile input ---- */

static void expect_refused(const shm_handle *h, size_t len, int fd, tb_status status,
                           const char *needle) {
  const int fds = count_fds(), maps = count_block_maps();
  tb_tensor_t *out = SENTINEL_TENSOR;
  assert_status(tb_shm_attach(h->bytes, len, fd, &out), status);
  assert_error_mentions(needle);
  assert_ptr_equal(out, SENTINEL_TENSOR);
  assert_int_equal(count_fds(), fds);
  assert_int_equal(count_block_maps(), maps);
}

/* good with `bytes` bytes at `at` replaced by v (little-endian): refused. */
static void expect_patched_refused(const shm_handle *good, size_t at, uint64_t v, int bytes,
                                   tb_status status, const char *needle) {
  shm_handle h = *good;
  put_le(h.bytes + at, v, bytes);
  expect_refused(&h, h.len, h.fd, status, needle);
}

static void hostile_handle_bytes_are_refused(void **state) {
  (void)state;
  const int64_t shape[2] = {3, 4};
  tb_tensor_t *t = shm_iota_f32(2, shape);
  const shm_handle good = shm_encode(t);
  shm_handle h;
  assert_int_equal(good.len, 64);

  expect_patched_refused(&good, 0, 'X', 1, TB_ERR_FORMAT, "magic");
  /* Version 2 is the CUDA kind (test_shm_cuda.c): 3 is nobody's. */
  expect_patched_refused(&good, 4, 3, 2, TB_ERR_VERSION, "version = 3");
  expect_refused(&good, 31, good.fd, TB_ERR_FORMAT, "shorter than its 32-byte header");
  expect_refused(&good, 0, good.fd, TB_ERR_FORMAT, "truncated");
  expect_refused(&good, good.len - 8, good.fd, TB_ERR_FORMAT, "truncated");
  expect_refused(&good, good.len + 8, good.fd, TB_ERR_FORMAT, "trailing bytes");
  expect_patched_refused(&good, 6, 65, 2, TB_ERR_FORMAT, "ndim = 65");
  /* ndim 3 with the bytes of 2 */
  expect_patched_refused(&good, 6, 3, 2, TB_ERR_FORMAT, "ndim = 3 needs 80");
  expect_patched_refused(&good, 12, 0x10, 4, TB_ERR_FORMAT, "flags = 0x10");
  expect_patched_refused(&good, 8, 99, 1, TB_ERR_DTYPE, "code = 99");
  expect_patched_refused(&good, 10, 4, 2, TB_ERR_DTYPE, "lanes = 4");
  expect_patched_refused(&good, 32 + 8, (uint64_t)-3, 8, TB_ERR_FORMAT, "shape[1] = -3");
  /* shape x strides overflows: 2^40 rows 2^40 elements apart */
  h = good;
  put_le(h.bytes + 32, (uint64_t)1 << 40, 8);
  put_le(h.bytes + 48, (uint64_t)1 << 40, 8);
  expect_refused(&h, h.len, h.fd, TB_ERR_OVERFLOW, "strides[0]");
  /* x itemsize overflows */
  expect_patched_refused(&good, 48, (uint64_t)1 << 62, 8, TB_ERR_OVERFLOW, "overflows int64");
  expect_patched_refused(&good, 16, (uint64_t)1 << 63, 8, TB_ERR_FORMAT, "block_size");
  expect_patched_refused(&good, 24, (uint64_t)1 << 63, 8, TB_ERR_FORMAT, "byte_offset");
  /* views reaching past the block's end or below its start: 48 bytes from
   * offset 4 in a 48-byte block; rows 5 apart (3 rows reach 56 bytes);
   * columns backwards from byte 0 */
  expect_patched_refused(&good, 24, 4, 8, TB_ERR_FORMAT, "reach past block_size = 48");
  expect_patched_refused(&good, 48, 5, 8, TB_ERR_FORMAT, "block_size = 48");
  expect_patched_refused(&good, 48 + 8, (uint64_t)-1, 8, TB_ERR_FORMAT, "below the block's start");
  /* a block_size the descriptor does not have */
  expect_patched_refused(&good, 16, 4096, 8, TB_ERR_INVALID, "fewer than block_size = 4096");

  tb_tensor_t *out = SENTINEL_TENSOR;
  assert_status(tb_shm_attach(NULL, good.len, good.fd, &out), TB_ERR_INVALID);
  assert_error_mentions("buf is NULL");
  assert_status(tb_shm_attach(good.bytes, good.len, good.fd, NULL), TB_ERR_INVALID);
  assert_error_mentions("out is NULL");
  assert_ptr_equal(out, SENTINEL_TENSOR);
  /* and the good one attaches */
  assert_ok(tb_shm_attach(good.bytes, good.len, good.fd, &out));
  tb_tensor_release(out);
  tb_tensor_release(t);
}

static void hostile_descriptors_are_refused(void **state) {
  (void)state;
  const int64_t shape[1] = {1024}, small_shape[1] = {16};
  tb_tensor_t *t = shm_iota_f32(1, shape), *small;
  const shm_handle good = shm_encode(t);
  /* a closed descriptor */
  const int closed = dup(good.fd);
  assert_true(closed >= 0);
  close(closed);
  char ebadf[160];
  snprintf(ebadf, sizeof ebadf, "fstat(fd = %d): %s", closed, strerror(EBADF));
  expect_refused(&good, good.len, closed, TB_ERR_IO, ebadf);
  expect_refused(&good, good.len, -1, TB_ERR_INVALID, "fd = -1");
  /* a smaller block than the handle says: it lies about its extent */
  assert_ok(tb_shm_empty(F32, 1, small_shape, &small));
  const int small_fd = block_fd(small);
  expect_refused(&good, good.len, small_fd, TB_ERR_INVALID,
                 "holds 64 bytes, fewer than block_size = 4096");
  /* not a file at all */
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  expect_refused(&good, good.len, sv[0], TB_ERR_INVALID, "not shared memory or a regular file");
  close(sv[0]);
  close(sv[1]);
  /* a writable handle over a descriptor opened read-only: mmap refuses */
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", good.fd);
  const int ro = open(path, O_RDONLY | O_CLOEXEC);
  assert_true(ro >= 0);
  expect_refused(&good, good.len, ro, TB_ERR_IO, "mmap");
  close(ro);
  tb_tensor_release(small);
  tb_tensor_release(t);
}

/* Decided: any regular file attaches (numpy.memmap's 'r+'), not only
 * shared-memory objects; its writes reach the file. */
static void a_regular_file_attaches_like_memmap(void **state) {
  (void)state;
  char path[] = "/tmp/tb-shm-test-XXXXXX";
  const int fd = mkstemp(path);
  assert_true(fd >= 0);
  unlink(path);
  const double values[3] = {1.5, -2.5, 8.0};
  assert_int_equal(write(fd, values, sizeof values), (ssize_t)sizeof values);
  /* A handle for it, written by hand as the header documents. */
  shm_handle h;
  memset(&h, 0, sizeof h);
  memcpy(h.bytes, "TBSM", 4);
  put_le(h.bytes + 4, 1, 2);
  put_le(h.bytes + 6, 1, 2);
  h.bytes[8] = kDLFloat;
  h.bytes[9] = 64;
  put_le(h.bytes + 10, 1, 2);
  put_le(h.bytes + 16, sizeof values, 8);
  put_le(h.bytes + 32, 3, 8);
  put_le(h.bytes + 40, 1, 8);
  h.len = TB_SHM_HANDLE_SIZE(1);
  tb_tensor_t *a;
  assert_ok(tb_shm_attach(h.bytes, h.len, fd, &a));
  assert_true(tb_tensor_is_shared(a));
  double *x = tb_tensor_data(a);
  for (int i = 0; i < 3; i++) assert_true(x[i] == values[i]);
  x[1] = 99.0;
  double back;
  assert_int_equal(pread(fd, &back, sizeof back, 8), (ssize_t)sizeof back);
  assert_true(back == 99.0);
  tb_tensor_release(a);
  close(fd);
}

static void expect_recv_refused(int sock, tb_status status, const char *needle, int fds) {
  tb_tensor_t *out = SENTINEL_TENSOR;
  assert_status(tb_shm_recv(sock, &out), status);
  assert_error_mentions(needle);
  assert_ptr_equal(out, SENTINEL_TENSOR);
  assert_int_equal(count_fds(), fds); /* every descriptor that came is closed */
}

static void hostile_messages_are_refused_and_their_fds_closed(void **state) {
  (void)state;
  const int64_t shape[1] = {8};
  tb_tensor_t *t = shm_iota_f32(1, shape);
  const shm_handle good = shm_encode(t);
  int many[10];
  for (int i = 0; i < 10; i++) many[i] = good.fd;

  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
  int fds = count_fds();
  send_raw(sv[0], good.bytes, good.len, NULL, 0);
  expect_recv_refused(sv[1], TB_ERR_FORMAT, "carries 0 descriptors", fds);
  send_raw(sv[0], good.bytes, good.len, many, 2);
  expect_recv_refused(sv[1], TB_ERR_FORMAT, "carries 2 descriptors", fds);
  send_raw(sv[0], good.bytes, good.len, many, 10);
  if (getenv("TB_TEST_UNDER_QEMU") != NULL) {
    /* qemu-user receives the ten itself and hands over the eight that fit
     * without MSG_CTRUNC, keeping the other two open in the process: the
     * message is refused all the same, for its count. */
    expect_recv_refused(sv[1], TB_ERR_FORMAT, "carries 8 descriptors", fds + 2);
    fds += 2;
  } else {
    expect_recv_refused(sv[1], TB_ERR_FORMAT, "MSG_CTRUNC", fds);
  }
  unsigned char junk[TB_SHM_HANDLE_MAX + 100];
  memset(junk, 0xAB, sizeof junk);
  send_raw(sv[0], junk, 40, many, 1);
  expect_recv_refused(sv[1], TB_ERR_FORMAT, "magic", fds);
  send_raw(sv[0], junk, sizeof junk, many, 1);
  expect_recv_refused(sv[1], TB_ERR_FORMAT, "MSG_TRUNC", fds);
  shm_handle bad = good;
  put_le(bad.bytes + 24, 8, 8); /* past the block */
  send_raw(sv[0], bad.bytes, bad.len, many, 1);
  expect_recv_refused(sv[1], TB_ERR_FORMAT, "reach past block_size", fds);
  close(sv[0]);
  expect_recv_refused(sv[1], TB_ERR_IO, "closed the socket", fds - 1);
  close(sv[1]);

  /* A stream: the head says how much follows. */
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  const int sfds = count_fds();
  shm_handle wide = good;
  put_le(wide.bytes + 6, 65, 2);
  send_raw(sv[0], wide.bytes, 32, many, 1);
  expect_recv_refused(sv[1], TB_ERR_FORMAT, "ndim = 65", sfds);
  send_raw(sv[0], good.bytes, 40, many, 1); /* 40 of 48 bytes, then the peer goes */
  close(sv[0]);
  expect_recv_refused(sv[1], TB_ERR_IO, "after 40 bytes", sfds - 1);
  close(sv[1]);

  /* Not a socket at all. */
  expect_recv_refused(good.fd, TB_ERR_IO, "getsockopt", count_fds());
  assert_status(tb_shm_recv(good.fd, NULL), TB_ERR_INVALID);
  /* Sending needs a shared tensor and a socket. */
  tb_tensor_t *plain;
  assert_ok(tb_tensor_zeros(F32, 1, shape, cpu(), TB_ORDER_C, &plain));
  assert_status(tb_shm_send(-1, plain), TB_ERR_INVALID);
  assert_error_mentions("not in shared memory");
  assert_status(tb_shm_send(good.fd, t), TB_ERR_IO);
  assert_error_mentions("sendmsg");
  tb_tensor_release(plain);
  tb_tensor_release(t);
}

/* ---- tb_shm_share ---- */

static void share_copies_a_strided_tensor_into_c_order(void **state) {
  (void)state;
  const int64_t shape[2] = {5, 6};
  tb_tensor_t *t, *tr, *v, *s;
  assert_ok(tb_tensor_empty(F32, 2, shape, cpu(), TB_ORDER_C, &t));
  float *x = tb_tensor_data(t);
  for (int i = 0; i < 30; i++) x[i] = (float)i * 0.5f;
  assert_ok(tb_tensor_transpose(t, 0, 1, &tr));       /* 6 x 5 */
  assert_ok(tb_tensor_slice(tr, 1, 4, INT64_MIN, -2, &v)); /* columns 4, 2, 0 */
  assert_false(tb_tensor_is_shared(v));
  assert_ok(tb_shm_share(v, &s));
  assert_true(tb_tensor_is_shared(s));
  assert_false(tb_tensor_shares_storage(s, v));
  assert_true(tb_tensor_is_contiguous(s, TB_ORDER_C));
  assert_int_equal(tb_tensor_shape(s)[0], 6);
  assert_int_equal(tb_tensor_shape(s)[1], 3);
  assert_int_equal(tb_tensor_strides(s)[0], 3);
  for (int64_t i = 0; i < 6; i++) {
    for (int64_t j = 0; j < 3; j++) {
      const int64_t idx[2] = {i, j};
      assert_true(f32_at(s, idx) == f32_at(v, idx));
      assert_true(f32_at(s, idx) == (float)((4 - 2 * j) * 6 + i) * 0.5f);
    }
  }
  /* a copy: its writes stay its own */
  ((float *)tb_tensor_data(s))[0] = -1.0f;
  assert_true(x[4 * 6] == 12.0f);
  tb_tensor_release(s);
  tb_tensor_release(v);
  tb_tensor_release(tr);
  tb_tensor_release(t);
}

static void share_returns_a_shared_tensor_itself(void **state) {
  (void)state;
  const int64_t shape[2] = {3, 3};
  tb_tensor_t *t = shm_iota_f32(2, shape), *s, *v, *sv;
  const int maps = count_block_maps(), fds = count_fds();
  assert_ok(tb_shm_share(t, &s));
  assert_ptr_equal(s, t); /* a new reference to t itself */
  assert_true(tb_tensor_shares_storage(s, t));
  assert_int_equal(count_block_maps(), maps);
  assert_int_equal(count_fds(), fds);
  tb_tensor_release(s);
  assert_ok(tb_tensor_select(t, 1, 2, &v));
  assert_ok(tb_shm_share(v, &sv));
  assert_ptr_equal(sv, v);
  tb_tensor_release(sv);
  tb_tensor_release(v);
  assert_true(((const float *)tb_tensor_data(t))[8] == 8.0f); /* t still holds it */
  assert_status(tb_shm_share(NULL, &s), TB_ERR_INVALID);
  assert_status(tb_shm_share(t, NULL), TB_ERR_INVALID);
  tb_tensor_release(t);
}

static void device_and_unshared_tensors_are_refused(void **state) {
  (void)state;
  fake_devices_install();
  static float memory[4];
  const int64_t shape[1] = {4};
  const DLDevice fake = {(DLDeviceType)FAKE_ADDRESS_DEVICE, 0};
  tb_tensor_t *d, *out = SENTINEL_TENSOR, *plain;
  assert_ok(tb_from_array(memory, 0, F32, 1, shape, NULL, fake, 0, NULL, NULL, &d));
  assert_status(tb_shm_share(d, &out), TB_ERR_DEVICE);
  assert_error_mentions("host memory only");
  unsigned char buf[TB_SHM_HANDLE_MAX];
  size_t len = 12345; /* refusals leave *len and *fd as they are */
  int fd = -7;
  assert_status(tb_shm_handle_encode(d, buf, sizeof buf, &len, &fd), TB_ERR_DEVICE);
  assert_int_equal(len, 12345);
  assert_int_equal(fd, -7);
  assert_ptr_equal(out, SENTINEL_TENSOR);
  tb_tensor_release(d);
  if (tb_device_count(kDLCUDA) > 0) {
    const DLDevice gpu = {kDLCUDA, 0};
    /* Memory the library allocated on a CUDA device is shared through CUDA
     * IPC (test_shm_cuda.c): share returns it, and its handle has no fd. */
    assert_ok(tb_tensor_empty(F32, 1, shape, gpu, TB_ORDER_C, &d));
    assert_ok(tb_shm_share(d, &out));
    assert_ptr_equal(out, d);
    tb_tensor_release(out);
    assert_ok(tb_shm_handle_encode(d, buf, sizeof buf, &len, &fd));
    assert_int_equal(fd, -1);
    tb_tensor_release(d);
  } else {
    print_message("no CUDA device: CUDA tensors are left to test_shm_cuda.c\n");
  }
  len = 12345; /* again: the CUDA branch's success wrote them */
  fd = -7;
  assert_ok(tb_tensor_zeros(F32, 1, shape, cpu(), TB_ORDER_C, &plain));
  assert_status(tb_shm_handle_encode(plain, buf, sizeof buf, &len, &fd), TB_ERR_INVALID);
  assert_error_mentions("not in shared memory");
  tb_tensor_t *s;
  assert_ok(tb_shm_share(plain, &s));
  assert_status(tb_shm_handle_encode(s, buf, TB_SHM_HANDLE_SIZE(1) - 1, &len, &fd),
                TB_ERR_INVALID);
  assert_error_mentions("capacity = 47");
  assert_status(tb_shm_handle_encode(s, NULL, 0, &len, &fd), TB_ERR_INVALID);
  assert_int_equal(len, 12345);
  assert_int_equal(fd, -7);
  tb_tensor_release(s);
  tb_tensor_release(plain);
}

#define BOTH_KINDS(f)                                                                          \
  cmocka_unit_test_prestate_setup_teardown(f, set_kind, unset_kind, (void *)(uintptr_t)kind_memfd),      \
      cmocka_unit_test_prestate_setup_teardown(f, set_kind, unset_kind, (void *)(uintptr_t)kind_shm_open)

int main(void) {
  const struct CMUnitTest tests[] = {
      BOTH_KINDS(empty_is_zero_filled_c_order_and_shared),
      cmocka_unit_test(a_size_zero_tensor_has_a_block_but_no_mapping),
      BOTH_KINDS(attach_in_one_process_maps_the_same_pages),
      cmocka_unit_test(a_view_travels_with_its_offset_and_strides),
      cmocka_unit_test(a_read_only_view_attaches_read_only),
      cmocka_unit_test(a_packed_dtype_travels_whole),
      BOTH_KINDS(the_last_release_unmaps_and_closes),
      cmocka_unit_test(failed_constructions_free_what_they_took),
      cmocka_unit_test(a_sent_block_outlives_its_sender),
      BOTH_KINDS(a_forked_child_writes_through_an_inherited_fd),
      cmocka_unit_test(a_forked_child_writes_through_a_socket),
      cmocka_unit_test(a_child_shares_back_to_its_parent),
      BOTH_KINDS(a_killed_child_leaves_nothing_behind),
      cmocka_unit_test(hostile_handle_bytes_are_refused),
      cmocka_unit_test(hostile_descriptors_are_refused),
      cmocka_unit_test(a_regular_file_attaches_like_memmap),
      cmocka_unit_test(hostile_messages_are_refused_and_their_fds_closed),
      cmocka_unit_test(share_copies_a_strided_tensor_into_c_order),
      cmocka_unit_test(share_returns_a_shared_tensor_itself),
      cmocka_unit_test(device_and_unshared_tensors_are_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
