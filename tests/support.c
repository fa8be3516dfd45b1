#define _XOPEN_SOURCE 700 /* mkdtemp, realpath */

#include "support.h"

#include "fake_devices.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tensorbridge/backend.h"

const char ok_guard_sentinel[] = "support.c sentinel: no library call has failed since";

void ok_guard_begin(ok_guard *g) {
  (void)snprintf(g->saved, sizeof g->saved, "%s", tb_last_error());
  (void)tb_set_error(TB_ERR_INVALID, ok_guard_sentinel);
}

void ok_guard_end(ok_guard *g, tb_status st, const char *expr, const char *file, int line) {
  if (st != TB_OK) {
    print_error("%s returned %s, expected TB_OK: %s\n", expr, tb_status_name(st),
                tb_last_error());
    _fail(file, line);
  }
  if (strcmp(tb_last_error(), ok_guard_sentinel) != 0) {
    print_error("%s succeeded but changed the error message to \"%s\" (successful calls "
                "must leave it untouched)\n",
                expr, tb_last_error());
    _fail(file, line);
  }
  if (g->saved[0] == '\0') {
    tb_clear_error();
  } else {
    (void)tb_set_error(TB_ERR_INVALID, g->saved);
  }
}

void ok_guard_after(ok_guard *g, tb_status st, const char *expr, const char *file, int line) {
  if (st != TB_OK) {
    if (strcmp(tb_last_error(), ok_guard_sentinel) == 0) {
      print_error("%s returned %s without a message of its own\n", expr, tb_status_name(st));
      _fail(file, line);
    }
    return;
  }
  ok_guard_end(g, st, expr, file, line);
}

void fake_devices_install(void) { assert_ok(fake_devices_register()); }

void assert_error_mentions(const char *needle) {
  const char *msg = tb_last_error();
  if (strstr(msg, needle) == NULL) {
    print_error("error message \"%s\" does not mention \"%s\"\n", msg, needle);
    fail();
  }
}

char test_sentinel_object;

shm_handle shm_encode(const tb_tensor_t *t) {
  shm_handle h;
  memset(&h, 0, sizeof h);
  h.fd = -2;
  assert_ok(tb_shm_handle_encode(t, h.bytes, sizeof h.bytes, &h.len, &h.fd));
  return h;
}

void counting_deleter(void *data, void *ctx) {
  counted *c = ctx;
  c->calls++;
  c->last_data = data;
}

static void *counting_alloc(void *user, size_t size, size_t alignment) {
  test_allocator *a = user;
  long index = a->calls++;
  if (alignment > a->max_alignment) a->max_alignment = alignment;
  if (size > a->max_size) a->max_size = size;
  if (index == a->fail_at) return NULL;
  if (alignment < sizeof(void *)) alignment = sizeof(void *);
  size_t rounded = (size + alignment - 1) / alignment * alignment;
  void *p = aligned_alloc(alignment, rounded == 0 ? alignment : rounded);
  if (p == NULL) return NULL;
  a->allocs++;
  a->live_bytes += (long)size;
  return p;
}

static void counting_free(void *user, void *ptr, size_t size) {
  test_allocator *a = user;
  a->frees++;
  a->live_bytes -= (long)size;
  free(ptr);
}

void test_allocator_install(test_allocator *a, long fail_at) {
  *a = (test_allocator){.fail_at = fail_at};
  tb_allocator alloc = {counting_alloc, counting_free, a};
  assert_ok(tb_set_allocator(&alloc));
}

void test_allocator_remove(void) { assert_ok(tb_set_allocator(NULL)); }

static void *test_thread_main(void *arg) {
  test_thread *t = arg;
  t->result = t->fn(t->arg);
  return NULL;
}

void test_thread_start(test_thread *t, int (*fn)(void *), void *arg) {
  t->fn = fn;
  t->arg = arg;
  t->result = 0;
  assert_int_equal(pthread_create(&t->id, NULL, test_thread_main, t), 0);
}

int test_thread_join(test_thread *t) {
  assert_int_equal(pthread_join(t->id, NULL), 0);
  return t->result;
}

/* ---- files ---- */

static char g_scratch[4096]; /* the run's folder, canonical; "" before setup */

int scratch_setup(void **state) {
  (void)state;
  const char *base = getenv("TMPDIR");
  char tmpl[4096];
  const int n = snprintf(tmpl, sizeof tmpl, "%s/tb-test-XXXXXX",
                         base != NULL && base[0] != '\0' ? base : "/tmp");
  if (n < 0 || (size_t)n >= sizeof tmpl || mkdtemp(tmpl) == NULL) return -1;
  char *canonical = realpath(tmpl, NULL);
  if (canonical == NULL) {
    (void)rmdir(tmpl);
    return -1;
  }
  const size_t len = strlen(canonical);
  if (len >= sizeof g_scratch) {
    free(canonical);
    (void)rmdir(tmpl);
    return -1;
  }
  memcpy(g_scratch, canonical, len + 1);
  free(canonical);
  return 0;
}

int scratch_teardown(void **state) {
  (void)state;
  DIR *d = opendir(g_scratch);
  if (d == NULL) return -1;
  struct dirent *e;
  char path[8192];
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    snprintf(path, sizeof path, "%s/%s", g_scratch, e->d_name);
    if (rmdir(path) != 0) (void)unlink(path);
  }
  closedir(d);
  const int rc = rmdir(g_scratch);
  g_scratch[0] = '\0';
  return rc;
}

const char *scratch_dir(void) { return g_scratch; }

void scratch_path(char *out, size_t size, const char *name) {
  assert_true(g_scratch[0] != '\0'); /* the group setup is scratch_setup */
  const int n = snprintf(out, size, "%s/%s", g_scratch, name);
  assert_true(n >= 0 && (size_t)n < size);
}

int count_dir_entries(const char *dir) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
  }
  closedir(d);
  return n;
}

void write_file(const char *path, const void *bytes, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  if (n > 0) assert_int_equal(fwrite(bytes, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

unsigned char *read_file(const char *path, size_t *n) {
  int fd = open(path, O_RDONLY);
  assert_true(fd >= 0);
  struct stat st;
  assert_int_equal(fstat(fd, &st), 0);
  unsigned char *bytes = malloc((size_t)st.st_size + 1);
  assert_non_null(bytes);
  size_t got = 0;
  while (got < (size_t)st.st_size) {
    ssize_t r = read(fd, bytes + got, (size_t)st.st_size - got);
    assert_true(r > 0);
    got += (size_t)r;
  }
  close(fd);
  *n = got;
  return bytes;
}

int count_mappings(const char *path, uintptr_t *start, uintptr_t *end) {
  FILE *f = fopen("/proc/self/maps", "r");
  assert_non_null(f);
  char line[8192 + 256];
  int n = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    char *name = strchr(line, '/');
    if (name == NULL) continue;
    name[strcspn(name, "\n")] = '\0';
    if (strcmp(name, path) != 0) continue;
    if (n == 0 && start != NULL) {
      unsigned long long lo, hi;
      assert_int_equal(sscanf(line, "%llx-%llx", &lo, &hi), 2);
      *start = (uintptr_t)lo;
      *end = (uintptr_t)hi;
    }
    n++;
  }
  fclose(f);
  return n;
}
