/* Shared-memory blocks and descriptor passing on POSIX (see platform/shm.h). */
#define _GNU_SOURCE /* memfd_create, F_ADD_SEALS, MSG_CMSG_CLOEXEC (Linux); harmless elsewhere */

#include "platform/shm.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "io/map.h" /* tb__fail_errno */

/* No SIGPIPE from a closed peer (the library installs no signal handler,
 * and must not let the default one end the process); where the flag does
 * not exist the caller's disposition applies. */
#ifdef MSG_NOSIGNAL
#define TB_SEND_FLAGS MSG_NOSIGNAL
#else
#define TB_SEND_FLAGS 0
#endif

/* Received descriptors are close-on-exec from the start where the kernel
 * can do it (Linux); elsewhere each is marked right after it arrives. */
#ifdef MSG_CMSG_CLOEXEC
#define TB_RECV_FLAGS MSG_CMSG_CLOEXEC
#else
#define TB_RECV_FLAGS 0
#endif

/* Room for this many descriptors in one message's control data: a handle
 * comes with one, and a message with a few more is refused as such rather
 * than as "cut". */
#define TB_MAX_RECEIVED_FDS 8

tb__shm_kind tb__shm_default_kind(void) {
#ifdef TB_HAVE_MEMFD_CREATE
  const char *kind = getenv("TB_SHM_KIND");
  if (kind != NULL && strcmp(kind, "shm_open") == 0) return TB__SHM_SHM_OPEN;
  return TB__SHM_MEMFD;
#else
  return TB__SHM_SHM_OPEN;
#endif
}

static tb_status tb_check_off_t(const char *what, uint64_t size) {
  const uint64_t max = sizeof(off_t) >= 8 ? (uint64_t)INT64_MAX : (uint64_t)INT32_MAX;
  if (size > max) {
    return tb__fail(TB_ERR_OVERFLOW, "%s: a shared block of %" PRIu64 " bytes exceeds off_t",
                    what, size);
  }
  return TB_OK;
}

static tb_status tb_size_block(const char *what, int fd, uint64_t size) {
  int r;
  do {
    r = ftruncate(fd, (off_t)size);
  } while (r != 0 && errno == EINTR);
  if (r != 0) return tb__fail_errno(what, "ftruncate of a new shared block", errno);
  return TB_OK;
}

#ifdef TB_HAVE_MEMFD_CREATE
/* -1 with errno when the kernel refuses memfds altogether. */
static int tb_memfd_open(void) {
  const unsigned flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
#ifdef MFD_NOEXEC_SEAL
  /* Data is never code: sealed non-executable where the kernel knows the
   * flag (6.3 and later; older ones answer EINVAL). */
  int fd = memfd_create("tb-shm", flags | MFD_NOEXEC_SEAL);
  if (fd >= 0 || errno != EINVAL) return fd;
#endif
  return memfd_create("tb-shm", flags);
}

/* Errors meaning "no memfds here" (missing syscall, a sandbox's filter, a
 * memfd policy), after which shm_open may still work. */
static bool tb_memfd_unavailable(int err) {
  return err == ENOSYS || err == EPERM || err == EACCES || err == EINVAL;
}

static tb_status tb_memfd_create(const char *what, uint64_t size, int *out, bool *unavailable) {
  *unavailable = false;
  int fd = tb_memfd_open();
  if (fd < 0) {
    int err = errno;
    if (tb_memfd_unavailable(err)) {
      *unavailable = true;
      return TB_OK;
    }
    return tb__fail_errno(what, "memfd_create", err);
  }
  tb_status st = tb_size_block(what, fd, size);
#ifdef F_ADD_SEALS
  /* Once sized, no process holding the descriptor can shrink the block
   * under another's mapping (an access past the end would be SIGBUS), grow
   * it, or change the seals. */
  if (st == TB_OK && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    st = tb__fail_errno(what, "sealing a new shared block (F_ADD_SEALS)", errno);
  }
#endif
  if (st != TB_OK) {
    close(fd);
    return st;
  }
  *out = fd;
  return TB_OK;
}
#endif

/* A name nobody else is likely to pick (O_EXCL makes it certain). */
static void tb_shm_name(char *name, size_t capacity) {
  static atomic_uint_fast64_t counter;
  uint64_t x = (uint64_t)atomic_fetch_add(&counter, 1) * 0x9E3779B97F4A7C15u;
  struct timespec now;
  if (clock_gettime(CLOCK_MONOTONIC, &now) == 0) {
    x ^= (uint64_t)now.tv_sec * 1000000007u + (uint64_t)now.tv_nsec;
  }
  x ^= (uint64_t)(uintptr_t)&now; /* the stack's address, randomised per process */
  /* splitmix64's finaliser spreads every input bit over the name */
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9u;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBu;
  x ^= x >> 31;
  (void)snprintf(name, capacity, "/tb-shm-%ld-%016" PRIx64, (long)getpid(), x);
}

static tb_status tb_posix_shm_create(const char *what, uint64_t size, int *out) {
  char name[64];
  int fd = -1;
  for (int attempt = 0; attempt < 64 && fd < 0; attempt++) {
    tb_shm_name(name, sizeof name);
    fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0 && errno != EEXIST && errno != EINTR) return tb__fail_errno(what, "shm_open", errno);
  }
  if (fd < 0) return tb__fail_errno(what, "shm_open (64 names taken)", EEXIST);
  /* Nameless from here on: the object lives as long as a descriptor or a
   * mapping of it, and nothing is left in /dev/shm whatever happens next. */
  if (shm_unlink(name) != 0) {
    int err = errno;
    close(fd);
    return tb__fail_errno(what, "shm_unlink of a new shared block", err);
  }
  /* POSIX has shm_open set FD_CLOEXEC; make sure of it. */
  int fdflags = fcntl(fd, F_GETFD);
  tb_status st = TB_OK;
  if (fdflags < 0 || fcntl(fd, F_SETFD, fdflags | FD_CLOEXEC) != 0) {
    st = tb__fail_errno(what, "fcntl(F_SETFD, FD_CLOEXEC)", errno);
  }
  if (st == TB_OK) st = tb_size_block(what, fd, size);
  if (st != TB_OK) {
    close(fd);
    return st;
  }
  *out = fd;
  return TB_OK;
}

tb_status tb__shm_block_create(const char *what, tb__shm_kind kind, uint64_t size, int *fd) {
  tb_status st = tb_check_off_t(what, size);
  if (st != TB_OK) return st;
#ifdef TB_HAVE_MEMFD_CREATE
  if (kind == TB__SHM_MEMFD) {
    bool unavailable;
    st = tb_memfd_create(what, size, fd, &unavailable);
    if (st != TB_OK || !unavailable) return st;
  }
#else
  (void)kind;
#endif
  return tb_posix_shm_create(what, size, fd);
}

tb_status tb__shm_map(const char *what, int fd, uint64_t size, bool writable, void **base) {
  if (size > (uint64_t)SIZE_MAX) {
    return tb__fail(TB_ERR_OVERFLOW, "%s: a shared block of %" PRIu64 " bytes cannot be mapped",
                    what, size);
  }
  const int prot = writable ? PROT_READ | PROT_WRITE : PROT_READ;
  void *p = mmap(NULL, (size_t)size, prot, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return tb__fail_errno(what, "mmap of the shared block", errno);
  *base = p;
  return TB_OK;
}

void tb__shm_unmap(void *base, uint64_t size) {
  if (base != NULL) (void)munmap(base, (size_t)size);
}

tb_status tb__shm_fd_size(const char *what, int fd, uint64_t *size) {
  char subject[48];
  (void)snprintf(subject, sizeof subject, "fstat(fd = %d)", fd);
  struct stat st;
  if (fstat(fd, &st) != 0) return tb__fail_errno(what, subject, errno);
  if (!S_ISREG(st.st_mode)) {
    return tb__fail(TB_ERR_INVALID,
                    "%s: fd = %d is not shared memory or a regular file (a socket, pipe, device "
                    "or directory: st_mode = 0%o)",
                    what, fd, (unsigned)st.st_mode);
  }
  *size = st.st_size > 0 ? (uint64_t)st.st_size : 0;
  return TB_OK;
}

tb_status tb__shm_fd_dup(const char *what, int fd, int *out) {
  int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (d < 0) {
    char subject[48];
    (void)snprintf(subject, sizeof subject, "dup of fd = %d", fd);
    return tb__fail_errno(what, subject, errno);
  }
  *out = d;
  return TB_OK;
}

void tb__shm_fd_close(int fd) {
  if (fd >= 0) (void)close(fd);
}

/* ---- sending ---- */

static tb_status tb_send_rest(const char *what, int socket, const unsigned char *p, size_t len) {
  while (len > 0) {
    ssize_t n = send(socket, p, len, TB_SEND_FLAGS);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return tb__fail_errno(what, "send", n < 0 ? errno : EIO);
    p += n;
    len -= (size_t)n;
  }
  return TB_OK;
}

tb_status tb__shm_send_fd(const char *what, int socket, const void *buf, size_t len, int fd) {
  union {
    struct cmsghdr align;
    unsigned char bytes[CMSG_SPACE(sizeof(int))];
  } control;
  memset(&control, 0, sizeof control);
  struct iovec iov = {.iov_base = (void *)(uintptr_t)buf, .iov_len = len};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.bytes,
                       .msg_controllen = sizeof control.bytes};
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  ssize_t n;
  do {
    n = sendmsg(socket, &msg, TB_SEND_FLAGS);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return tb__fail_errno(what, "sendmsg", errno);
  /* A stream socket may take part of it; the descriptor went with the
   * first byte. */
  return tb_send_rest(what, socket, (const unsigned char *)buf + n, len - (size_t)n);
}

/* ---- receiving ---- */

typedef struct tb_received {
  int fds[TB_MAX_RECEIVED_FDS];
  int count;
  bool cut; /* MSG_CTRUNC: control data did not fit */
} tb_received;

static void tb_received_close(tb_received *r) {
  for (int i = 0; i < r->count; i++) close(r->fds[i]);
  r->count = 0;
}

static void tb_received_add(tb_received *r, int fd) {
#ifndef MSG_CMSG_CLOEXEC
  int flags = fcntl(fd, F_GETFD);
  if (flags >= 0) (void)fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
#endif
  if (r->count < TB_MAX_RECEIVED_FDS) {
    r->fds[r->count++] = fd;
  } else {
    close(fd); /* cannot happen with control room for that many; never kept */
    r->cut = true;
  }
}

/* One recvmsg into p (up to len bytes), collecting every descriptor it
 * brings. *got is the bytes read (0: the peer closed, or an empty
 * datagram); *flags the message's msg_flags. */
static tb_status tb_recv_once(const char *what, int socket, void *p, size_t len, tb_received *r,
                              size_t *got, int *flags) {
  union {
    struct cmsghdr align;
    unsigned char bytes[CMSG_SPACE(sizeof(int) * TB_MAX_RECEIVED_FDS)];
  } control;
  struct iovec iov = {.iov_base = p, .iov_len = len};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.bytes,
                       .msg_controllen = sizeof control.bytes};
  ssize_t n;
  do {
    n = recvmsg(socket, &msg, TB_RECV_FLAGS);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return tb__fail_errno(what, "recvmsg", errno);
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = ((size_t)c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const unsigned char *data = CMSG_DATA(c);
    for (size_t i = 0; i < count; i++) {
      int fd;
      memcpy(&fd, data + i * sizeof(int), sizeof fd);
      tb_received_add(r, fd);
    }
  }
  if (msg.msg_flags & MSG_CTRUNC) r->cut = true;
  *got = (size_t)n;
  *flags = msg.msg_flags;
  return TB_OK;
}

static tb_status tb_peer_closed(const char *what, size_t got) {
  if (got == 0) {
    return tb__fail(TB_ERR_IO, "%s: the peer closed the socket (or sent an empty message) before "
                               "a handle",
                    what);
  }
  return tb__fail(TB_ERR_IO, "%s: the peer closed the socket after %zu bytes of a handle", what,
                  got);
}

/* Reads a stream until `want` bytes are in buf. */
static tb_status tb_recv_stream_until(const char *what, int socket, unsigned char *buf,
                                      size_t *have, size_t want, tb_received *r) {
  while (*have < want) {
    size_t got;
    int flags;
    tb_status st = tb_recv_once(what, socket, buf + *have, want - *have, r, &got, &flags);
    if (st != TB_OK) return st;
    if (got == 0) return tb_peer_closed(what, *have);
    *have += got;
  }
  return TB_OK;
}

static tb_status tb_recv_message(const char *what, int socket, unsigned char *buf,
                                 size_t capacity, size_t head, tb__shm_size_fn message_size,
                                 tb_received *r, size_t *len) {
  int type = 0;
  socklen_t type_len = sizeof type;
  if (getsockopt(socket, SOL_SOCKET, SO_TYPE, &type, &type_len) != 0) {
    return tb__fail_errno(what, "getsockopt(SO_TYPE)", errno);
  }
  if (type != SOCK_STREAM) {
    /* One message, delivered whole or cut (MSG_TRUNC). */
    size_t got;
    int flags;
    tb_status st = tb_recv_once(what, socket, buf, capacity, r, &got, &flags);
    if (st != TB_OK) return st;
    if (flags & MSG_TRUNC) {
      return tb__fail(TB_ERR_FORMAT,
                      "%s: the message is longer than any handle (%zu bytes; MSG_TRUNC)", what,
                      capacity);
    }
    if (got == 0) return tb_peer_closed(what, 0);
    *len = got;
    return TB_OK;
  }
  /* A stream has no message boundaries: read the head, learn the length
   * from it, and read exactly the rest (never into a next message). */
  size_t have = 0, size;
  tb_status st = tb_recv_stream_until(what, socket, buf, &have, head, r);
  if (st == TB_OK) st = message_size(what, buf, &size);
  if (st == TB_OK && size > capacity) {
    st = tb__fail(TB_ERR_FORMAT, "%s: a message of %zu bytes is longer than any handle (%zu)",
                  what, size, capacity);
  }
  if (st == TB_OK) st = tb_recv_stream_until(what, socket, buf, &have, size, r);
  if (st != TB_OK) return st;
  *len = size;
  return TB_OK;
}

tb_status tb__shm_recv_fd(const char *what, int socket, void *buf, size_t capacity, size_t head,
                          tb__shm_size_fn message_size, size_t *len, int *fd) {
  tb_received r = {.count = 0, .cut = false};
  size_t n = 0;
  tb_status st = tb_recv_message(what, socket, buf, capacity, head, message_size, &r, &n);
  if (st == TB_OK && r.cut) {
    st = tb__fail(TB_ERR_FORMAT,
                  "%s: the message's control data was cut (MSG_CTRUNC): more than %d descriptors "
                  "were attached",
                  what, TB_MAX_RECEIVED_FDS);
  }
  if (st == TB_OK && r.count != 1) {
    st = tb__fail(TB_ERR_FORMAT,
                  "%s: the message carries %d descriptors; a handle comes with exactly one", what,
                  r.count);
  }
  if (st != TB_OK) {
    tb_received_close(&r);
    return st;
  }
  *len = n;
  *fd = r.fds[0];
  return TB_OK;
}
