/* Helpers shared by the test executables. */
#ifndef TB_TEST_SUPPORT_H
#define TB_TEST_SUPPORT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tensorbridge/tensorbridge.h"

/* Asserts a status, printing the library's message when it differs. */
#define assert_status(expr, expected)                                                     \
  do {                                                                                    \
    tb_status tb_st_ = (expr);                                                            \
    if (tb_st_ != (expected)) {                                                           \
      print_error("%s returned %s, expected %s: %s\n", #expr, tb_status_name(tb_st_),    \
                  tb_status_name(expected), tb_last_error());                             \
    }                                                                                     \
    assert_int_equal(tb_st_, (expected));                                                 \
  } while (0)
#define assert_ok(expr) assert_status((expr), TB_OK)

/* Asserts that the last error message contains `needle`. */
void assert_error_mentions(const char *needle);

/* A deleter that counts its calls in an int (the ctx). */
typedef struct counted {
  int calls;
  void *last_data;
} counted;
void counting_deleter(void *data, void *ctx);

/* An allocator that counts live allocations and can fail the Nth call. */
typedef struct test_allocator {
  long allocs;         /* calls to alloc that succeeded */
  long frees;          /* calls to free */
  long live_bytes;     /* bytes still allocated */
  long fail_at;        /* fail the call with this index (0-based); -1 never */
  long calls;          /* calls to alloc, successful or not */
  size_t max_alignment; /* largest alignment asked for */
} test_allocator;
/* Installs a fresh counting allocator failing at call `fail_at` (-1: never). */
void test_allocator_install(test_allocator *a, long fail_at);
/* Restores the default allocator. */
void test_allocator_remove(void);

static inline DLDevice cpu(void) { return (DLDevice){kDLCPU, 0}; }
static inline DLDataType dt(uint8_t code, uint8_t bits) { return tb_dtype(code, bits); }
#define F32 dt(kDLFloat, 32)
#define F64 dt(kDLFloat, 64)
#define I16 dt(kDLInt, 16)
#define I32 dt(kDLInt, 32)
#define I64 dt(kDLInt, 64)
#define U8 dt(kDLUInt, 8)

#endif
