#include "support.h"

#include <stdlib.h>
#include <string.h>

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
  assert_int_equal(tb_set_allocator(&alloc), TB_OK);
}

void test_allocator_remove(void) { assert_int_equal(tb_set_allocator(NULL), TB_OK); }
