/* Whole files read and mapped into memory (see map.h). POSIX: open, fstat, pread,
 * mmap, write. */
#if !defined(_POSIX_C_SOURCE) || _POSIX_C_SOURCE < 200809L
#undef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* XSI strerror_r, O_CLOEXEC, pread */
#endif

#include "io/map.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* strerror_r comes in two kinds: XSI's (returns 0 and fills the buffer),
 * which this file asks for above, and GNU's (returns the text, perhaps a
 * static string, and may leave the buffer alone), which glibc declares
 * instead wherever _GNU_SOURCE is defined: in the single-file bundle, whose
 * one translation unit defines it for shm_posix.c and thread_posix.c. Both
 * give the same text here. */
static const char *tb_strerror_text_xsi(int rc, const char *buf) { return rc == 0 ? buf : ""; }
static const char *tb_strerror_text_gnu(const char *text, const char *buf) {
  (void)buf;
  return text != NULL ? text : "";
}
#define TB_STRERROR_TEXT(result, buf) \
  _Generic((result), int: tb_strerror_text_xsi, default: tb_strerror_text_gnu)((result), (buf))

tb_status tb__fail_errno(const char *what, const char *subject, int err) {
  char reason[128];
  reason[0] = '\0';
  const char *text = TB_STRERROR_TEXT(strerror_r(err, reason, sizeof reason), reason);
  return tb__fail(TB_ERR_IO, "%s: %.200s: %s (errno %d)", what, subject, text, err);
}
#undef TB_STRERROR_TEXT

uint32_t tb__mapping_flags(tb_map_mode mode) { return mode == TB_MAP_READ ? TB_FLAG_READONLY : 0; }

tb_status tb__file_open(const char *what, const char *path, tb_map_mode mode, tb__file *out) {
  if (path == NULL || out == NULL) {
    return tb__fail(TB_ERR_INVALID, "%s: %s is NULL", what, path == NULL ? "path" : "out");
  }
  if (mode != TB_MAP_READ && mode != TB_MAP_COPY && mode != TB_MAP_WRITE) {
    return tb__fail(TB_ERR_INVALID, "%s: mode = %d is not TB_MAP_READ, TB_MAP_COPY or TB_MAP_WRITE",
                    what, (int)mode);
  }
  int fd = open(path, (mode == TB_MAP_WRITE ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return tb__fail_errno(what, path, errno);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return tb__fail_errno(what, path, err);
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return tb__fail(TB_ERR_IO, "%s: %.200s is not a regular file", what, path);
  }
  if (st.st_size < 0 || (uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
    close(fd);
    return tb__fail(TB_ERR_IO, "%s: %.200s: its size %lld cannot be mapped", what, path,
                    (long long)st.st_size);
  }
  *out = (tb__file){fd, (uint64_t)st.st_size, mode, what, path};
  return TB_OK;
}

tb_status tb__file_read(const tb__file *f, uint64_t offset, void *buf, size_t n) {
  char *p = buf;
  size_t done = 0;
  while (done < n) {
    const size_t chunk = n - done > (size_t)1 << 30 ? (size_t)1 << 30 : n - done;
    const uint64_t at = offset + done;
    ssize_t got = at > (uint64_t)INT64_MAX ? 0 : pread(f->fd, p + done, chunk, (off_t)at);
    if (got < 0) {
      if (errno == EINTR) continue;
      return tb__fail_errno(f->what, f->path, errno);
    }
    if (got == 0) {
      return tb__fail(TB_ERR_IO,
                      "%s: %.200s: the file ends at byte %llu, before the %zu bytes at %llu it "
                      "held when opened (it has shrunk)",
                      f->what, f->path, (unsigned long long)at, n, (unsigned long long)offset);
    }
    done += (size_t)got;
  }
  return TB_OK;
}

tb_status tb__file_write_all(int fd, const char *what, const char *path, const void *data,
                             uint64_t n) {
  const char *p = data;
  while (n > 0) {
    const size_t chunk = n > (uint64_t)1 << 30 ? (size_t)1 << 30 : (size_t)n;
    ssize_t wrote = write(fd, p, chunk);
    if (wrote < 0) {
      if (errno == EINTR) continue;
      return tb__fail_errno(what, path, errno);
    }
    if (wrote == 0) {
      return tb__fail(TB_ERR_IO, "%s: %.200s: the system wrote 0 of %zu bytes", what, path, chunk);
    }
    p += wrote;
    n -= (uint64_t)wrote;
  }
  return TB_OK;
}

tb_status tb__file_map(const tb__file *f, tb__mapping **out) {
  tb__mapping *m = malloc(sizeof *m);
  if (m == NULL) return tb__fail(TB_ERR_NOMEM, "%s: out of memory", f->what);
  m->base = NULL;
  m->size = f->size;
  m->mode = f->mode;
  if (m->size > 0) {
    int prot = f->mode == TB_MAP_READ ? PROT_READ : PROT_READ | PROT_WRITE;
    int flags = f->mode == TB_MAP_COPY ? MAP_PRIVATE : MAP_SHARED;
    void *p = mmap(NULL, (size_t)m->size, prot, flags, f->fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      free(m);
      return tb__fail_errno(f->what, f->path, err);
    }
    m->base = p;
    /* What was read and checked before still has to be there: the pages of
     * a mapping past the end of its file raise SIGBUS when read. */
    struct stat st;
    if (fstat(f->fd, &st) != 0) {
      int err = errno;
      tb__mapping_delete(m->base, m);
      return tb__fail_errno(f->what, f->path, err);
    }
    if (st.st_size < 0 || (uint64_t)st.st_size < m->size) {
      tb__mapping_delete(m->base, m);
      return tb__fail(TB_ERR_IO,
                      "%s: %.200s: the file has shrunk from %llu to %lld bytes while it was "
                      "being opened",
                      f->what, f->path, (unsigned long long)f->size, (long long)st.st_size);
    }
  }
  *out = m;
  return TB_OK;
}

void tb__file_close(tb__file *f) {
  if (f->fd >= 0) close(f->fd);
  f->fd = -1;
}

void tb__mapping_delete(void *data, void *ctx) {
  (void)data;
  tb__mapping *m = ctx;
  if (m == NULL) return;
  if (m->base != NULL) munmap(m->base, (size_t)m->size);
  free(m);
}
