/* Reference counts are atomic: retain/release races from many threads still
 * run the owner's deleter exactly once. The scripts/test command also runs
 * this suite under ThreadSanitizer, which must report nothing. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#define THREADS 8
#define ROUNDS 20000

static atomic_int g_deleter_calls;

static void atomic_counting_deleter(void *data, void *ctx) {
  (void)ctx;
  free(data);
  atomic_fetch_add(&g_deleter_calls, 1);
}

typedef struct worker {
  tb_tensor_t *t; /* one reference owned by this worker */
  int failures;
} worker;

/* Churns the count, makes and drops views, then drops its own reference. */
static int churn(void *arg) {
  worker *w = arg;
  for (int i = 0; i < ROUNDS; i++) {
    tb_tensor_retain(w->t);
    tb_tensor_release(w->t);
    if (i % 64 == 0) {
      tb_tensor_t *v;
      if (tb_tensor_slice(w->t, 0, 1, INT64_MAX, 2, &v) != TB_OK) {
        w->failures++;
        continue;
      }
      tb_tensor_release(v);
    }
  }
  tb_tensor_release(w->t);
  return 0;
}

static void concurrent_release_runs_deleter_once(void **state) {
  (void)state;
  for (int trial = 0; trial < 5; trial++) {
    atomic_store(&g_deleter_calls, 0);
    int64_t n = 64;
    float *buf = calloc((size_t)n, sizeof *buf);
    tb_tensor_t *t;
    assert_ok(tb_from_array(buf, 0, F32, 1, &n, NULL, cpu(), 0, atomic_counting_deleter, NULL,
                            &t));
    worker workers[THREADS];
    test_thread threads[THREADS];
    for (int i = 0; i < THREADS; i++) {
      workers[i] = (worker){tb_tensor_retain(t), 0};
    }
    tb_tensor_release(t); /* the workers now hold the only references */
    for (int i = 0; i < THREADS; i++) test_thread_start(&threads[i], churn, &workers[i]);
    for (int i = 0; i < THREADS; i++) {
      (void)test_thread_join(&threads[i]);
      assert_int_equal(workers[i].failures, 0);
    }
    assert_int_equal(atomic_load(&g_deleter_calls), 1);
  }
}

typedef struct view_worker {
  tb_tensor_t *view; /* a distinct view per thread over one storage */
} view_worker;

static int drop_view(void *arg) {
  view_worker *w = arg;
  tb_tensor_release(w->view);
  return 0;
}

static void views_released_on_many_threads_free_storage_once(void **state) {
  (void)state;
  atomic_store(&g_deleter_calls, 0);
  int64_t shape[2] = {THREADS, 4};
  int32_t *buf = calloc(THREADS * 4, sizeof *buf);
  tb_tensor_t *t;
  assert_ok(tb_from_array(buf, 0, I32, 2, shape, NULL, cpu(), 0, atomic_counting_deleter, NULL,
                          &t));
  view_worker workers[THREADS];
  test_thread threads[THREADS];
  for (int i = 0; i < THREADS; i++) assert_ok(tb_tensor_select(t, 0, i, &workers[i].view));
  tb_tensor_release(t);
  assert_int_equal(atomic_load(&g_deleter_calls), 0);
  for (int i = 0; i < THREADS; i++) test_thread_start(&threads[i], drop_view, &workers[i]);
  for (int i = 0; i < THREADS; i++) (void)test_thread_join(&threads[i]);
  assert_int_equal(atomic_load(&g_deleter_calls), 1);
}

/* An allocator whose counts are atomic, for use from several threads. */
typedef struct shared_alloc {
  atomic_long allocs, frees, live;
} shared_alloc;

static void *shared_alloc_fn(void *user, size_t size, size_t alignment) {
  shared_alloc *a = user;
  size_t rounded = (size + alignment - 1) / alignment * alignment;
  void *p = aligned_alloc(alignment, rounded == 0 ? alignment : rounded);
  if (p != NULL) {
    atomic_fetch_add(&a->allocs, 1);
    atomic_fetch_add(&a->live, (long)size);
  }
  return p;
}

static void shared_free_fn(void *user, void *ptr, size_t size) {
  shared_alloc *a = user;
  atomic_fetch_add(&a->frees, 1);
  atomic_fetch_sub(&a->live, (long)size);
  free(ptr);
}

static shared_alloc g_alloc_a, g_alloc_b;
static atomic_bool g_swapping;

static int swap_allocators(void *arg) {
  (void)arg;
  tb_allocator a = {shared_alloc_fn, shared_free_fn, &g_alloc_a};
  tb_allocator b = {shared_alloc_fn, shared_free_fn, &g_alloc_b};
  for (int i = 0; i < 2000; i++) (void)tb_set_allocator(i % 2 ? &a : &b);
  atomic_store(&g_swapping, false);
  return 0;
}

static int allocate_while_swapping(void *arg) {
  int *failures = arg;
  int64_t shape[2] = {3, 5};
  while (atomic_load(&g_swapping)) {
    tb_tensor_t *t, *v;
    if (tb_tensor_zeros(F32, 2, shape, cpu(), TB_ORDER_C, &t) != TB_OK) {
      (*failures)++;
      continue;
    }
    if (tb_tensor_transpose(t, 0, 1, &v) != TB_OK) (*failures)++;
    tb_tensor_release(t); /* possibly freed under another current allocator */
    tb_tensor_release(v);
  }
  return 0;
}

static void allocator_swaps_race_allocations_safely(void **state) {
  (void)state;
  atomic_store(&g_swapping, true);
  test_thread swapper, workers[3];
  int failures[3] = {0};
  for (int i = 0; i < 3; i++) test_thread_start(&workers[i], allocate_while_swapping, &failures[i]);
  test_thread_start(&swapper, swap_allocators, NULL);
  (void)test_thread_join(&swapper);
  for (int i = 0; i < 3; i++) {
    (void)test_thread_join(&workers[i]);
    assert_int_equal(failures[i], 0);
  }
  assert_ok(tb_set_allocator(NULL));
  /* Every object went back to the allocator that made it. */
  assert_int_equal(atomic_load(&g_alloc_a.allocs), atomic_load(&g_alloc_a.frees));
  assert_int_equal(atomic_load(&g_alloc_b.allocs), atomic_load(&g_alloc_b.frees));
  assert_int_equal(atomic_load(&g_alloc_a.live), 0);
  assert_int_equal(atomic_load(&g_alloc_b.live), 0);
}

/*
 * Eight threads share four tensors and one writable board, and hand each
 * other what they make: every round a thread retains and releases a source,
 * views it (transpose, strided slice or select), sometimes copies the view
 * with a dtype conversion, exports it (versioned and legacy DLPack) and
 * either imports it back itself or passes the struct to its neighbour, which
 * imports it or calls its deleter; views travel to the neighbour too. Each
 * thread also writes its own row of the board through a select view. At the
 * end every owner's deleter has run exactly once, every allocation has been
 * freed through the allocator that made it, and each row holds its writer's
 * last value. Under ThreadSanitizer this is the proof that the reference
 * counts publish what they free.
 */
#define SOURCES 4
#define SRC_ROWS 16
#define SRC_COLS 32
#define BOARD_COLS 64
#define EXCHANGE_ROUNDS 1500

typedef struct exchange_state {
  float *buffers[SOURCES];
  atomic_int deleter_calls[SOURCES + 1]; /* the board is the last */
  tb_tensor_t *board;
  _Atomic(tb_tensor_t *) view_box[THREADS];
  _Atomic(DLManagedTensorVersioned *) versioned_box[THREADS];
  _Atomic(DLManagedTensor *) legacy_box[THREADS];
} exchange_state;

static exchange_state g_ex;

static void exchange_deleter(void *data, void *ctx) {
  free(data);
  atomic_fetch_add(&g_ex.deleter_calls[(intptr_t)ctx], 1);
}

typedef struct exchange_worker {
  int id;
  tb_tensor_t *sources[SOURCES]; /* one reference each, owned by this worker */
  tb_tensor_t *board;            /* one reference */
  int failures;
  char first_failure[160];
} exchange_worker;

static void exchange_fail(exchange_worker *w, const char *what) {
  if (w->failures++ == 0) {
    snprintf(w->first_failure, sizeof w->first_failure, "%s: %s", what, tb_last_error());
  }
}

/* An element of any source holds source * 10000 + its index there, so a
 * value names the buffer it must lie in. */
static bool element_is_genuine(const float *p) {
  int k = (int)(*p / 10000.0f);
  if (k < 0 || k >= SOURCES) return false;
  const float *base = g_ex.buffers[k];
  return p >= base && p < base + SRC_ROWS * SRC_COLS && *p == (float)(k * 10000 + (p - base));
}

/* Checks a tensor that should share a source's memory, then releases it. */
static void check_shared_and_release(exchange_worker *w, tb_tensor_t *t, const char *what) {
  if (tb_tensor_numel(t) > 0 && !element_is_genuine(tb_tensor_data(t))) exchange_fail(w, what);
  tb_tensor_release(t);
}

static void import_versioned(exchange_worker *w, DLManagedTensorVersioned *m) {
  tb_tensor_t *t;
  if (tb_from_dlpack_versioned(m, NULL, &t) != TB_OK) {
    exchange_fail(w, "import");
    return;
  }
  check_shared_and_release(w, t, "imported data");
}

static tb_tensor_t *make_view(exchange_worker *w, tb_tensor_t *s, int round) {
  tb_tensor_t *v = NULL;
  tb_status st;
  switch (round % 3) {
    case 0: st = tb_tensor_transpose(s, 0, 1, &v); break;
    case 1: st = tb_tensor_slice(s, 1, 1, SRC_COLS - 1, 3, &v); break;
    default: st = tb_tensor_select(s, 0, round % SRC_ROWS, &v); break;
  }
  if (st != TB_OK) exchange_fail(w, "view");
  return st == TB_OK ? v : NULL;
}

static void copy_and_check(exchange_worker *w, tb_tensor_t *v) {
  DLDataType f64 = F64;
  tb_tensor_t *c;
  if (tb_tensor_copy(v, &f64, TB_ORDER_C, 0, &c) != TB_OK) {
    exchange_fail(w, "copy");
    return;
  }
  const float *first = tb_tensor_data(v);
  if (*(const double *)tb_tensor_data(c) != (double)*first || tb_tensor_shares_storage(c, v)) {
    exchange_fail(w, "copied value");
  }
  tb_tensor_release(c);
}

/* Receives what the neighbour left in this thread's boxes. */
static void collect(exchange_worker *w) {
  tb_tensor_t *v = atomic_exchange(&g_ex.view_box[w->id], NULL);
  if (v != NULL) {
    tb_tensor_t *vv;
    if (tb_tensor_slice(v, 0, INT64_MAX, INT64_MIN, -1, &vv) != TB_OK) {
      exchange_fail(w, "view of a received view");
    } else {
      check_shared_and_release(w, vv, "received view");
    }
    tb_tensor_release(v);
  }
  DLManagedTensorVersioned *m = atomic_exchange(&g_ex.versioned_box[w->id], NULL);
  if (m != NULL) import_versioned(w, m);
  DLManagedTensor *l = atomic_exchange(&g_ex.legacy_box[w->id], NULL);
  if (l != NULL) l->deleter(l); /* a consumer that declines */
}

static int exchange(void *arg) {
  exchange_worker *w = arg;
  int next = (w->id + 1) % THREADS;
  tb_tensor_t *row;
  if (tb_tensor_select(w->board, 0, w->id, &row) != TB_OK) {
    exchange_fail(w, "board row");
    row = NULL;
  }
  for (int r = 0; r < EXCHANGE_ROUNDS; r++) {
    tb_tensor_t *s = w->sources[(w->id + r) % SOURCES];
    tb_tensor_release(tb_tensor_retain(s));
    tb_tensor_t *v = make_view(w, s, r);
    if (v == NULL) continue;
    if (r % 8 == 0) copy_and_check(w, v);
    DLManagedTensorVersioned *m;
    if (tb_to_dlpack_versioned(v, NULL, &m) != TB_OK) {
      exchange_fail(w, "export");
    } else if (r % 2 == 0) {
      import_versioned(w, m);
    } else if ((m = atomic_exchange(&g_ex.versioned_box[next], m)) != NULL) {
      import_versioned(w, m); /* the neighbour had not taken the last one */
    }
    if (r % 4 == 1) {
      DLManagedTensor *l;
      tb_export_options allow = {.flags = TB_EXPORT_ALLOW_READONLY_LEGACY};
      if (tb_to_dlpack(v, &allow, &l) != TB_OK) {
        exchange_fail(w, "legacy export");
      } else if ((l = atomic_exchange(&g_ex.legacy_box[next], l)) != NULL) {
        l->deleter(l);
      }
    }
    tb_tensor_t *old = atomic_exchange(&g_ex.view_box[next], v); /* hands v over */
    if (old != NULL) check_shared_and_release(w, old, "view left in a box");
    int32_t value = r;
    if (row != NULL && tb_tensor_fill(row, &value, I32) != TB_OK) exchange_fail(w, "fill");
    collect(w);
  }
  tb_tensor_release(row);
  for (int k = 0; k < SOURCES; k++) tb_tensor_release(w->sources[k]);
  tb_tensor_release(w->board);
  return 0;
}

static void threads_exchange_views_copies_and_dlpack_structs(void **state) {
  (void)state;
  shared_alloc counts = {0};
  tb_allocator a = {shared_alloc_fn, shared_free_fn, &counts};
  assert_ok(tb_set_allocator(&a));
  memset(&g_ex, 0, sizeof g_ex);
  int64_t shape[2] = {SRC_ROWS, SRC_COLS}, board_shape[2] = {THREADS, BOARD_COLS};
  tb_tensor_t *sources[SOURCES], *board;
  for (int k = 0; k < SOURCES; k++) {
    float *buf = malloc(sizeof(float) * SRC_ROWS * SRC_COLS);
    assert_non_null(buf);
    for (int i = 0; i < SRC_ROWS * SRC_COLS; i++) buf[i] = (float)(k * 10000 + i);
    g_ex.buffers[k] = buf;
    assert_ok(tb_from_array(buf, 0, F32, 2, shape, NULL, cpu(), TB_FLAG_READONLY,
                            exchange_deleter, (void *)(intptr_t)k, &sources[k]));
  }
  int32_t *cells = calloc(THREADS * BOARD_COLS, sizeof *cells);
  assert_non_null(cells);
  assert_ok(tb_from_array(cells, 0, I32, 2, board_shape, NULL, cpu(), 0, exchange_deleter,
                          (void *)(intptr_t)SOURCES, &board));

  exchange_worker workers[THREADS];
  test_thread threads[THREADS];
  for (int i = 0; i < THREADS; i++) {
    workers[i] = (exchange_worker){.id = i, .board = tb_tensor_retain(board)};
    for (int k = 0; k < SOURCES; k++) workers[i].sources[k] = tb_tensor_retain(sources[k]);
  }
  for (int i = 0; i < THREADS; i++) test_thread_start(&threads[i], exchange, &workers[i]);
  for (int i = 0; i < THREADS; i++) (void)test_thread_join(&threads[i]);
  for (int i = 0; i < THREADS; i++) {
    if (workers[i].failures != 0) print_error("thread %d: %s\n", i, workers[i].first_failure);
    assert_int_equal(workers[i].failures, 0);
  }
  exchange_worker drain = {.id = 0};
  for (int i = 0; i < THREADS; i++) {
    drain.id = i;
    collect(&drain);
  }
  assert_int_equal(drain.failures, 0);

  /* Only this thread's references are left: nothing may have been freed. */
  for (int k = 0; k <= SOURCES; k++) assert_int_equal(atomic_load(&g_ex.deleter_calls[k]), 0);
  for (int i = 0; i < THREADS; i++) {
    for (int j = 0; j < BOARD_COLS; j++) assert_int_equal(cells[i * BOARD_COLS + j], EXCHANGE_ROUNDS - 1);
  }
  for (int k = 0; k < SOURCES; k++) tb_tensor_release(sources[k]);
  tb_tensor_release(board);
  for (int k = 0; k <= SOURCES; k++) assert_int_equal(atomic_load(&g_ex.deleter_calls[k]), 1);
  assert_ok(tb_set_allocator(NULL));
  assert_true(atomic_load(&counts.allocs) > THREADS * EXCHANGE_ROUNDS);
  assert_int_equal(atomic_load(&counts.allocs), atomic_load(&counts.frees));
  assert_int_equal(atomic_load(&counts.live), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(concurrent_release_runs_deleter_once),
      cmocka_unit_test(views_released_on_many_threads_free_storage_once),
      cmocka_unit_test(allocator_swaps_race_allocations_safely),
      cmocka_unit_test(threads_exchange_views_copies_and_dlpack_structs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
