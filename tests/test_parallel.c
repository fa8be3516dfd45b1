/*
 * Threads for large copies (tensorbridge.h, "Threads"): the thread count,
 * the embedder's parallel-for, the library's pool (started lazily, only when
 * allowed, surviving fork in the child, shared by concurrent callers), and
 * that a split copy gives the same bytes as an unsplit one.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "support.h"
#include "tensorbridge/tensorbridge.h"

/* Large enough to be split (the engine splits from 4 MiB moved). */
#define ROWS 1536
#define COLS 1280

static tb_tensor_t *random_f32(int32_t nd, const int64_t *shape, uint32_t seed) {
  tb_tensor_t *t = NULL;
  assert_ok(tb_tensor_empty(F32, nd, shape, cpu(), TB_ORDER_C, &t));
  float *p = tb_tensor_data(t);
  uint32_t x = seed;
  for (int64_t i = 0; i < tb_tensor_numel(t); i++) {
    x = x * 1664525u + 1013904223u;
    p[i] = (float)(x >> 8) * 0x1p-12f - 2048.0f;
  }
  return t;
}

/* src copied (converted to `to`, or not when to is NULL) into a fresh C-order tensor. */
static tb_tensor_t *copied(const tb_tensor_t *src, const DLDataType *to) {
  tb_tensor_t *out = NULL;
  assert_ok(tb_tensor_copy(src, to, TB_ORDER_C, 0, &out));
  return out;
}

static void assert_same_bytes(const tb_tensor_t *a, const tb_tensor_t *b) {
  assert_int_equal(tb_tensor_nbytes(a), tb_tensor_nbytes(b));
  assert_memory_equal(tb_tensor_data(a), tb_tensor_data(b), (size_t)tb_tensor_nbytes(a));
}

/* The library's worker threads in this process, by their name in /proc
 * (Linux; sanitizers and valgrind add threads of their own); -1 elsewhere. */
static int count_threads(void) {
  DIR *d = opendir("/proc/self/task");
  if (d == NULL) return -1;
  int n = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    if (e->d_name[0] == '.') continue;
    char path[300], name[32] = "";
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
    FILE *f = fopen(path, "r");
    if (f == NULL) continue;
    if (fgets(name, sizeof name, f) != NULL) n += strncmp(name, "tb-worker", 9) == 0;
    fclose(f);
  }
  closedir(d);
  return n;
}

static void large_transpose(void) {
  const int64_t shape[2] = {ROWS, COLS};
  tb_tensor_t *a = random_f32(2, shape, 1), *at = NULL;
  assert_ok(tb_tensor_transpose(a, 0, 1, &at));
  tb_tensor_release(copied(at, NULL));
  tb_tensor_release(at);
  tb_tensor_release(a);
}

/* First, while no other test has started the pool. */
static void workers_start_only_for_large_copies_when_allowed(void **state) {
  (void)state;
  const int before = count_threads();
  if (before < 0) skip();
  assert_ok(tb_set_num_threads(3));
  const int64_t small[2] = {64, 64};
  tb_tensor_t *s = random_f32(2, small, 2);
  tb_tensor_release(copied(s, NULL));
  tb_tensor_release(s);
  assert_int_equal(count_threads(), before); /* small copies never start one */
  assert_ok(tb_set_num_threads(1));
  large_transpose();
  assert_int_equal(count_threads(), before); /* 1: the calling thread only */
  assert_ok(tb_set_num_threads(3));
  large_transpose();
  assert_int_equal(count_threads(), before + 2); /* the caller is the third */
  large_transpose();
  assert_int_equal(count_threads(), before + 2); /* reused, not restarted */
  assert_ok(tb_set_num_threads(0));
}

static void the_thread_count_is_checked(void **state) {
  (void)state;
  assert_ok(tb_set_num_threads(0));
  assert_true(tb_get_num_threads() >= 1);
  assert_ok(tb_set_num_threads(5));
  assert_int_equal(tb_get_num_threads(), 5);
  assert_int_equal(tb_set_num_threads(-1), TB_ERR_INVALID);
  assert_error_mentions("n = -1");
  assert_int_equal(tb_set_num_threads(TB_MAX_THREADS + 1), TB_ERR_INVALID);
  assert_error_mentions("outside [0, 256]");
  assert_int_equal(tb_get_num_threads(), 5); /* a refused call changes nothing */
  assert_ok(tb_set_num_threads(0));
}

/* Every kind of large copy: the same bytes with 1 thread and with 4. */
static void split_copies_equal_unsplit_ones(void **state) {
  (void)state;
  const int64_t flat[1] = {(int64_t)3 << 20}, mat[2] = {ROWS, COLS}, nchw[4] = {4, 64, 48, 40};
  const int32_t perm[4] = {0, 2, 3, 1};
  const DLDataType f16 = dt(kDLFloat, 16), f64 = F64, i16 = I16;
  tb_tensor_t *v = random_f32(1, flat, 3), *m = random_f32(2, mat, 4), *img = random_f32(4, nchw, 5);
  tb_tensor_t *mt = NULL, *nhwc = NULL, *wide = NULL, *cols = NULL;
  assert_ok(tb_tensor_transpose(m, 0, 1, &mt));
  assert_ok(tb_tensor_permute(img, perm, &nhwc));
  wide = copied(v, &f64);
  assert_ok(tb_tensor_slice(m, 1, 1, COLS, 3, &cols)); /* strided rows, no transpose */
  struct {
    const tb_tensor_t *src;
    const DLDataType *to;
  } cases[] = {{v, NULL},   {v, &f16},  {wide, NULL}, {mt, NULL},   {mt, &f64},
               {nhwc, NULL}, {nhwc, &i16}, {cols, NULL}, {wide, &f16}};
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    assert_ok(tb_set_num_threads(1));
    tb_tensor_t *one = copied(cases[k].src, cases[k].to);
    assert_ok(tb_set_num_threads(4));
    tb_tensor_t *four = copied(cases[k].src, cases[k].to);
    assert_same_bytes(one, four);
    tb_tensor_release(one);
    tb_tensor_release(four);
  }
  assert_ok(tb_set_num_threads(0));
  tb_tensor_release(cols);
  tb_tensor_release(wide);
  tb_tensor_release(nhwc);
  tb_tensor_release(mt);
  tb_tensor_release(img);
  tb_tensor_release(m);
  tb_tensor_release(v);
}

/* An embedder's parallel-for: runs the chunks in reverse, on this thread,
 * and records what it was given. */
typedef struct recorder {
  int calls;
  int64_t last_n;
  int runs[4096];
} recorder;

static void reverse_for(void *ctx, int64_t n, tb_task_fn task, void *arg) {
  recorder *r = ctx;
  r->calls++;
  r->last_n = n;
  assert_true(n >= 2 && n <= 4096);
  for (int64_t i = n - 1; i >= 0; i--) {
    r->runs[i]++;
    task(arg, i);
  }
}

static void an_embedders_parallel_for_runs_every_chunk(void **state) {
  (void)state;
  static recorder r;
  memset(&r, 0, sizeof r);
  const int threads = count_threads();
  assert_ok(tb_set_num_threads(8));
  tb_set_parallel_for(reverse_for, &r);
  const int64_t mat[2] = {ROWS, COLS};
  tb_tensor_t *m = random_f32(2, mat, 6), *mt = NULL;
  assert_ok(tb_tensor_transpose(m, 0, 1, &mt));
  tb_tensor_t *got = copied(mt, NULL);
  assert_int_equal(r.calls, 1);
  for (int64_t i = 0; i < r.last_n; i++) assert_int_equal(r.runs[i], 1);
  assert_int_equal(count_threads(), threads); /* the library started none */
  const int64_t small[1] = {1000};
  tb_tensor_t *s = random_f32(1, small, 7);
  tb_tensor_release(copied(s, NULL));
  assert_int_equal(r.calls, 1); /* small copies stay on the caller */
  assert_ok(tb_set_num_threads(1));
  tb_tensor_release(copied(mt, NULL));
  assert_int_equal(r.calls, 1); /* and so does everything at 1 thread */
  tb_set_parallel_for(NULL, NULL);
  assert_ok(tb_set_num_threads(4));
  tb_tensor_t *pooled = copied(mt, NULL);
  assert_int_equal(r.calls, 1); /* NULL put the pool back */
  assert_same_bytes(got, pooled);
  /* The reference: element by element. */
  const float *a = tb_tensor_data(m), *b = tb_tensor_data(got);
  for (int64_t i = 0; i < ROWS; i++) {
    for (int64_t j = 0; j < COLS; j++) {
      if (b[j * ROWS + i] != a[i * COLS + j]) fail_msg("element (%lld, %lld)", (long long)j, (long long)i);
    }
  }
  assert_ok(tb_set_num_threads(0));
  tb_tensor_release(pooled);
  tb_tensor_release(s);
  tb_tensor_release(got);
  tb_tensor_release(mt);
  tb_tensor_release(m);
}

/* A destination whose rows are one row (stride 0) keeps the in-order last
 * write: such a copy is never split. */
static void a_self_overlapping_destination_is_not_split(void **state) {
  (void)state;
  assert_ok(tb_set_num_threads(4));
  const int64_t shape[2] = {2048, 1024};
  tb_tensor_t *src = random_f32(2, shape, 8), *dst = NULL;
  float *row = calloc(1024, sizeof *row);
  assert_non_null(row);
  const int64_t strides[2] = {0, 1};
  assert_ok(tb_from_array(row, 0, F32, 2, shape, strides, cpu(), 0, NULL, NULL, &dst));
  assert_ok(tb_tensor_copy_into(dst, src, 0));
  assert_memory_equal(row, (const float *)tb_tensor_data(src) + 2047 * 1024, 1024 * sizeof *row);
  assert_ok(tb_set_num_threads(0));
  tb_tensor_release(dst);
  tb_tensor_release(src);
  free(row);
}

static int copier(void *arg) {
  (void)arg;
  const int64_t mat[2] = {ROWS, COLS};
  tb_tensor_t *m = random_f32(2, mat, 9), *mt = NULL;
  if (tb_tensor_transpose(m, 0, 1, &mt) != TB_OK) return 1;
  int bad = 0;
  for (int k = 0; k < 3; k++) {
    tb_tensor_t *out = NULL;
    if (tb_tensor_copy(mt, NULL, TB_ORDER_C, 0, &out) != TB_OK) return 1;
    const float *a = tb_tensor_data(m), *b = tb_tensor_data(out);
    for (int64_t i = 0; i < ROWS; i += 7) {
      for (int64_t j = 0; j < COLS; j += 5) bad += b[j * ROWS + i] != a[i * COLS + j];
    }
    tb_tensor_release(out);
  }
  tb_tensor_release(mt);
  tb_tensor_release(m);
  return bad;
}

/* Callers racing for the pool: one gets it, the others copy alone. */
static void concurrent_large_copies_are_all_right(void **state) {
  (void)state;
  assert_ok(tb_set_num_threads(3));
  test_thread t[4];
  for (int i = 0; i < 4; i++) test_thread_start(&t[i], copier, NULL);
  for (int i = 0; i < 4; i++) assert_int_equal(test_thread_join(&t[i]), 0);
  assert_ok(tb_set_num_threads(0));
}

/* The pool's workers do not exist in a child: its large copies start new
 * ones (no deadlock on a lock held at fork, no wait for absent workers). */
static void a_forked_child_copies_in_parallel(void **state) {
  (void)state;
  if (getenv("TB_TEST_UNDER_QEMU") != NULL) {
    /* qemu-user 7.2 itself aborts when a forked child of a threaded
     * process starts threads (an assertion in its TCG loop). */
    print_message("skipped under qemu-user (TB_TEST_UNDER_QEMU): qemu cannot run it\n");
    skip();
  }
  assert_ok(tb_set_num_threads(3));
  large_transpose(); /* the parent's pool is up */
  fflush(NULL);
  const pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    const int before = count_threads();
    const int bad = copier(NULL);
    const int after = count_threads();
    const int code = bad != 0 ? 1 : (before >= 0 && after != before + 2) ? 2 : 0;
    /* Leave through exec: memory checkers would otherwise report, at the
     * child's exit, the parent's worker threads' records that fork copied
     * (threads that do not exist here, so nothing can free them). */
    execl("/bin/sh", "sh", "-c", code == 0 ? "exit 0" : code == 1 ? "exit 1" : "exit 2",
          (char *)NULL);
    _exit(3);
  }
  int status = 0;
  for (int waited = 0;; waited++) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    assert_int_equal(r, 0);
    if (waited > 1200) { /* 120 s: valgrind is slow, a deadlock is forever */
      kill(pid, SIGKILL);
      (void)waitpid(pid, &status, 0);
      fail_msg("the forked child did not finish its copies");
    }
    const struct timespec tenth = {0, 100000000};
    nanosleep(&tenth, NULL);
  }
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  large_transpose(); /* and the parent's pool still works */
  assert_ok(tb_set_num_threads(0));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(workers_start_only_for_large_copies_when_allowed),
      cmocka_unit_test(the_thread_count_is_checked),
      cmocka_unit_test(split_copies_equal_unsplit_ones),
      cmocka_unit_test(an_embedders_parallel_for_runs_every_chunk),
      cmocka_unit_test(a_self_overlapping_destination_is_not_split),
      cmocka_unit_test(concurrent_large_copies_are_all_right),
      cmocka_unit_test(a_forked_child_copies_in_parallel),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
