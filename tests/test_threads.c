/* Reference counts are atomic: retain/release races from many threads still
 * run the owner's deleter exactly once. */
#include <stdatomic.h>
#include <stdlib.h>
#include <threads.h>

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
    thrd_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) {
      workers[i] = (worker){tb_tensor_retain(t), 0};
    }
    tb_tensor_release(t); /* the workers now hold the only references */
    for (int i = 0; i < THREADS; i++) {
      assert_int_equal(thrd_create(&threads[i], churn, &workers[i]), thrd_success);
    }
    for (int i = 0; i < THREADS; i++) {
      assert_int_equal(thrd_join(threads[i], NULL), thrd_success);
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
  thrd_t threads[THREADS];
  for (int i = 0; i < THREADS; i++) assert_ok(tb_tensor_select(t, 0, i, &workers[i].view));
  tb_tensor_release(t);
  assert_int_equal(atomic_load(&g_deleter_calls), 0);
  for (int i = 0; i < THREADS; i++) {
    assert_int_equal(thrd_create(&threads[i], drop_view, &workers[i]), thrd_success);
  }
  for (int i = 0; i < THREADS; i++) assert_int_equal(thrd_join(threads[i], NULL), thrd_success);
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
  thrd_t swapper, workers[3];
  int failures[3] = {0};
  for (int i = 0; i < 3; i++) {
    assert_int_equal(thrd_create(&workers[i], allocate_while_swapping, &failures[i]), thrd_success);
  }
  assert_int_equal(thrd_create(&swapper, swap_allocators, NULL), thrd_success);
  assert_int_equal(thrd_join(swapper, NULL), thrd_success);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(thrd_join(workers[i], NULL), thrd_success);
    assert_int_equal(failures[i], 0);
  }
  assert_ok(tb_set_allocator(NULL));
  /* Every object went back to the allocator that made it. */
  assert_int_equal(atomic_load(&g_alloc_a.allocs), atomic_load(&g_alloc_a.frees));
  assert_int_equal(atomic_load(&g_alloc_b.allocs), atomic_load(&g_alloc_b.frees));
  assert_int_equal(atomic_load(&g_alloc_a.live), 0);
  assert_int_equal(atomic_load(&g_alloc_b.live), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(concurrent_release_runs_deleter_once),
      cmocka_unit_test(views_released_on_many_threads_free_storage_once),
      cmocka_unit_test(allocator_swaps_race_allocations_safely),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
