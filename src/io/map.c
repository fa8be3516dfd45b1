/* Whole files mapped into memory (see map.h). POSIX: open, fstat, mmap. */
#if !defined(_POSIX_C_SOURCE) || _POSIX_C_SOURCE < 200809L
#undef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* XSI strerror_r, O_CLOEXEC */
#endif

#include "io/map.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

tb_status tb__fail_errno(const char *what, const char *subject, int err) {
  char reason[128];
  if (strerror_r(err, reason, sizeof reason) != 0) reason[0] = '\0';
  return tb__fail(TB_ERR_IO, "%s: %.200s: %s (errno %d)", what, subject, reason, err);
}

uint32_t tb__mapping_flags(tb_map_mode mode) { return mode == TB_MAP_READ ? TB_FLAG_READONLY : 0; }

tb_status tb__map_file(const char *what, const char *path, tb_map_mode mode, tb__mapping **out) {
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
  tb__mapping *m = malloc(sizeof *m);
  if (m == NULL) {
    close(fd);
    return tb__fail(TB_ERR_NOMEM, "%s: out of memory", what);
  }
  m->base = NULL;
  m->size = (uint64_t)st.st_size;
  m->mode = mode;
  if (m->size > 0) {
    int prot = mode == TB_MAP_READ ? PROT_READ : PROT_READ | PROT_WRITE;
    int flags = mode == TB_MAP_COPY ? MAP_PRIVATE : MAP_SHARED;
    void *p = mmap(NULL, (size_t)m->size, prot, flags, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      close(fd);
      free(m);
      return tb__fail_errno(what, path, err);
    }
    m->base = p;
  }
  close(fd);
  *out = m;
  return TB_OK;
}

void tb__mapping_delete(void *data, void *ctx) {
  (void)data;
  tb__mapping *m = ctx;
  if (m == NULL) return;
  if (m->base != NULL) munmap(m->base, (size_t)m->size);
  free(m);
}
