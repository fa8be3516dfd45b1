#include "support.h"

#include "fake_devices.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void counting_deleter(void *data, void *ctx) {
  counted *c = ctx;
  c->calls++;
  c->last_data = data;
}

static void *counting_alloc(void *user, size_t size, size_t alignment) {
  test_allocator *a = user;
  long index = a->calls++;
  if (alignment > a->max_alignment) a->max_alignment = alignment;
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
