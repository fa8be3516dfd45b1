/* Helpers shared by the test executables. */
#ifndef TB_TEST_SUPPORT_H
#define TB_TEST_SUPPORT_H

#include <pthread.h>
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

/*
 * Asserts that a call succeeds and, as the header promises of every
 * successful call, leaves tb_last_error() untouched. Before the call a
 * sentinel message is planted (tb_set_error, the public call that records a
 * message); after a TB_OK the message must still be exactly the sentinel.
 * Then the message from before is put back, so that a test may still read
 * an earlier failure's message after an assert_ok.
 */
typedef struct ok_guard {
  char saved[512]; /* the library's message capacity */
} ok_guard;
/* The planted message. */
extern const char ok_guard_sentinel[];
void ok_guard_begin(ok_guard *g);
void ok_guard_end(ok_guard *g, tb_status st, const char *expr, const char *file, int line);
#define assert_ok(expr)                                                                   \
  do {                                                                                    \
    ok_guard tb_guard_;                                                                   \
    ok_guard_begin(&tb_guard_);                                                           \
    ok_guard_end(&tb_guard_, (expr), #expr, __FILE__, __LINE__);                          \
  } while (0)
/* A successful call checked without assert_ok's sentinel and restore: for
 * tests that plant a message themselves and look at it afterwards. */
#define assert_raw_ok(expr) assert_int_equal((expr), TB_OK)

/* For a call that may fail (under a failing allocator, say): `st = (expr)`,
 * and when it returns TB_OK the message must be untouched, as assert_ok
 * checks. A failure keeps its own message for the test to look at. */
void ok_guard_after(ok_guard *g, tb_status st, const char *expr, const char *file, int line);
#define guarded_call(st, expr)                                                            \
  do {                                                                                    \
    ok_guard tb_guard_;                                                                   \
    ok_guard_begin(&tb_guard_);                                                           \
    (st) = (expr);                                                                        \
    ok_guard_after(&tb_guard_, (st), #expr, __FILE__, __LINE__);                          \
  } while (0)
/* The same for a call that returns no status (a query, a release): it must
 * leave the message untouched. */
#define assert_untouched(stmt)                                                            \
  do {                                                                                    \
    ok_guard tb_guard_;                                                                   \
    ok_guard_begin(&tb_guard_);                                                           \
    stmt;                                                                                 \
    ok_guard_end(&tb_guard_, TB_OK, #stmt, __FILE__, __LINE__);                           \
  } while (0)

/*
 * Test-only backends for device types that no build of the library serves:
 * TB_DL_VPI (data is an address) and TB_DL_VULKAN (data is a handle), two
 * devices each. They let tests wrap and import made-up device memory now
 * that the library refuses memory of a device that is not present. Nothing
 * touches the memory: alloc and copies answer TB_ERR_UNSUPPORTED. Installed
 * for the rest of the process.
 */
void fake_devices_install(void);
#define FAKE_ADDRESS_DEVICE TB_DL_VPI
#define FAKE_HANDLE_DEVICE TB_DL_VULKAN

/*
 * An address that no call hands out, planted in an output before a call
 * that must fail: outputs are written only on success (the header's rule),
 * so it must still be there afterwards. Compared, never dereferenced.
 */
extern char test_sentinel_object;
#define SENTINEL_TENSOR ((tb_tensor_t *)(void *)&test_sentinel_object)

/* Little-endian integers of `bytes` bytes (0 to 8), as the file formats and
 * the shared-memory handles store them. */
static inline void put_le(unsigned char *p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static inline uint64_t get_le(const unsigned char *p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

/* A shared-memory handle (tensorbridge/shm.h) and its descriptor. */
typedef struct shm_handle {
  unsigned char bytes[TB_SHM_HANDLE_MAX];
  size_t len;
  int fd; /* borrowed from the tensor's storage; -1 for a CUDA handle */
} shm_handle;
/* t's handle; the test fails where tb_shm_handle_encode does. len and fd
 * start as 0 and -2 (neither a descriptor nor CUDA's -1), so what they hold
 * afterwards is what the call wrote. */
shm_handle shm_encode(const tb_tensor_t *t);

/* Asserts that the last error message contains `needle`. */
void assert_error_mentions(const char *needle);

/* A deleter that counts its calls in a `counted` (the ctx). */
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
  size_t max_size;      /* largest size asked for */
} test_allocator;
/* Installs a fresh counting allocator failing at call `fail_at` (-1: never). */
void test_allocator_install(test_allocator *a, long fail_at);
/* Restores the default allocator. */
void test_allocator_remove(void);

/* A thread running fn(arg), on POSIX threads (ThreadSanitizer models them;
 * it does not intercept C11 <threads.h>). Start fails the test if the thread
 * cannot be made; join returns fn's result. */
typedef struct test_thread {
  pthread_t id;
  int (*fn)(void *);
  void *arg;
  int result;
} test_thread;
void test_thread_start(test_thread *t, int (*fn)(void *), void *arg);
int test_thread_join(test_thread *t);

/*
 * A scratch folder for the run, for suites that write files. The group
 * setup makes it under $TMPDIR (else /tmp); the group teardown removes it
 * with the files and empty folders left in it:
 *   return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
 * Its path is canonical (realpath), as /proc/self/maps names its files.
 */
int scratch_setup(void **state);
int scratch_teardown(void **state);
/* The folder's path. */
const char *scratch_dir(void);
/* The path of `name` in the folder, into out[size]; the test fails where it
 * does not fit. */
void scratch_path(char *out, size_t size, const char *name);
/* Declares `char var[]` holding the path of `name` in the folder. */
#define SCRATCH_PATH(var, name) \
  char var[8192];               \
  scratch_path(var, sizeof var, name)

/* Names in a folder other than . and .. (the test fails where it cannot be
 * opened). */
int count_dir_entries(const char *dir);

/* Writes n bytes to path, replacing what was there. */
void write_file(const char *path, const void *bytes, size_t n);
/* The whole file with plain read(), as another process would see it:
 * malloc'ed (a byte more than *n, so never NULL), *n its size. */
unsigned char *read_file(const char *path, size_t *n);

/* Lines of /proc/self/maps that name exactly `path` (canonical; a deleted
 * file's "path (deleted)" is not it): one per mapping of the file. Where
 * start is not NULL, the first one's range goes to *start and *end. */
int count_mappings(const char *path, uintptr_t *start, uintptr_t *end);

static inline DLDevice cpu(void) { return (DLDevice){kDLCPU, 0}; }
static inline DLDataType dt(uint8_t code, uint8_t bits) { return tb_dtype(code, bits); }
#define F32 dt(kDLFloat, 32)
#define F64 dt(kDLFloat, 64)
#define I16 dt(kDLInt, 16)
#define I32 dt(kDLInt, 32)
#define I64 dt(kDLInt, 64)
#define U8 dt(kDLUInt, 8)

#endif
