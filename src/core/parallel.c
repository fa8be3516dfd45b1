/*
 * The pool behind tb__parallel_for, and the configuration calls of
 * tensorbridge.h ("Threads").
 *
 * One job at a time: the caller that takes `job` publishes (task, arg, n)
 * under the pool's lock, bumps the generation and wakes the workers; workers
 * and caller then claim chunk indices from one atomic counter until none are
 * left, and the caller waits until every participating worker has reported.
 * A caller that finds `job` taken runs its chunks alone: no caller ever
 * waits for another's copy, and a task that copies (nested) cannot deadlock.
 *
 * Workers start lazily (the first job that wants them), never more than the
 * thread count asks for, and stay asleep on `wake` between jobs. fork():
 * the prepare handler takes both locks, so the child inherits a pool at
 * rest, with no job half-published; the child then forgets the workers
 * (they do not exist there) and renews the condition variables. The
 * destructor joins the workers when the library is unloaded or the process
 * exits.
 */
#include <stdlib.h>

#include "core/parallel.h"
#include "platform/thread.h"

static void tb_pool_init(void);
static tb__once_flag tb_pool_once = TB__ONCE_INIT;
/* Every entry point runs this first: the fork handlers are registered before
 * any of the locks below can be held. */
static void tb_pool_ensure(void) { tb__once(&tb_pool_once, tb_pool_init); }

/* ---- configuration ---- */

static tb__mutex tb_config_lock = TB__MUTEX_INIT;
static int32_t tb_threads_asked;           /* 0: the default */
static tb_parallel_for_fn tb_user_for;     /* NULL: the pool */
static void *tb_user_ctx;
static atomic_int tb_threads_default = 0;  /* 0 until computed */

static int32_t tb_default_threads(void) {
  int n = atomic_load_explicit(&tb_threads_default, memory_order_relaxed);
  if (n > 0) return (int32_t)n;
  n = (int)tb__cpu_count();
  const char *env = getenv("TB_NUM_THREADS");
  if (env != NULL && *env != '\0') {
    char *end;
    const long v = strtol(env, &end, 10);
    if (*end == '\0' && v >= 1) n = v > TB_MAX_THREADS ? TB_MAX_THREADS : (int)v;
  }
  if (n > TB_MAX_THREADS) n = TB_MAX_THREADS;
  atomic_store_explicit(&tb_threads_default, n, memory_order_relaxed);
  return (int32_t)n;
}

TB_API tb_status tb_set_num_threads(int32_t n) {
  tb_pool_ensure();
  if (n < 0 || n > TB_MAX_THREADS) {
    return tb__fail(TB_ERR_INVALID, "set_num_threads: n = %d is outside [0, %d]", (int)n,
                    TB_MAX_THREADS);
  }
  (void)tb__mutex_lock(&tb_config_lock);
  tb_threads_asked = n;
  tb__mutex_unlock(&tb_config_lock);
  return TB_OK;
}

TB_API int32_t tb_get_num_threads(void) { return tb__parallel_threads(); }

TB_API void tb_set_parallel_for(tb_parallel_for_fn parallel_for, void *ctx) {
  tb_pool_ensure();
  (void)tb__mutex_lock(&tb_config_lock);
  tb_user_for = parallel_for;
  tb_user_ctx = parallel_for != NULL ? ctx : NULL;
  tb__mutex_unlock(&tb_config_lock);
}

int32_t tb__parallel_threads(void) {
  tb_pool_ensure();
  (void)tb__mutex_lock(&tb_config_lock);
  const int32_t asked = tb_threads_asked;
  tb__mutex_unlock(&tb_config_lock);
  return asked > 0 ? asked : tb_default_threads();
}

/* ---- the pool ---- */

typedef struct tb_pool {
  tb__mutex lock;       /* everything below but `next` */
  tb__cond wake;        /* a new generation, or quit */
  tb__cond done;        /* pending reached 0 */
  int32_t nworkers;     /* started and not joined */
  int32_t participants; /* workers 0 .. participants - 1 take the current job */
  int32_t pending;      /* participants still working on it */
  uint64_t generation;  /* jobs published so far */
  bool quit;
  tb_task_fn task;
  void *arg;
  int64_t n;
  atomic_int_fast64_t next; /* the next chunk to claim */
  tb__thread threads[TB_MAX_THREADS - 1];
  uint64_t born[TB_MAX_THREADS - 1]; /* the generation each worker started at */
} tb_pool;

static tb_pool tb_the_pool = {.lock = TB__MUTEX_INIT};
static tb__mutex tb_job_lock = TB__MUTEX_INIT; /* held by the caller running a job */
static bool tb_pool_ready;

static void tb_claim_chunks(tb_pool *p, tb_task_fn task, void *arg, int64_t n) {
  for (;;) {
    const int64_t i = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
    if (i >= n) return;
    task(arg, i);
  }
}

static void *tb_worker_main(void *ctx) {
  tb_pool *p = &tb_the_pool;
  const int32_t me = (int32_t)(intptr_t)ctx;
  (void)tb__mutex_lock(&p->lock);
  uint64_t seen = p->born[me];
  for (;;) {
    while (!p->quit && p->generation == seen) tb__cond_wait(&p->wake, &p->lock);
    /* A job published before quit is finished first: its caller waits. */
    if (p->generation == seen) break; /* quit, and nothing pending */
    seen = p->generation;
    if (me >= p->participants) continue;
    tb_task_fn task = p->task;
    void *arg = p->arg;
    const int64_t n = p->n;
    tb__mutex_unlock(&p->lock);
    tb_claim_chunks(p, task, arg, n);
    (void)tb__mutex_lock(&p->lock);
    if (--p->pending == 0) tb__cond_signal(&p->done);
  }
  tb__mutex_unlock(&p->lock);
  return NULL;
}

/* The three locks, in the one order anything takes more than one of them
 * (nothing takes the configuration lock while holding another). */
static void tb_fork_prepare(void) {
  (void)tb__mutex_lock(&tb_config_lock);
  (void)tb__mutex_lock(&tb_job_lock);
  (void)tb__mutex_lock(&tb_the_pool.lock);
}

static void tb_fork_parent(void) {
  tb__mutex_unlock(&tb_the_pool.lock);
  tb__mutex_unlock(&tb_job_lock);
  tb__mutex_unlock(&tb_config_lock);
}

static void tb_fork_child(void) {
  tb_pool *p = &tb_the_pool;
  p->nworkers = 0; /* they stayed in the parent */
  p->participants = 0;
  p->pending = 0;
  /* Waiters of the parent's workers may be recorded inside: start afresh. */
  (void)tb__cond_init(&p->wake);
  (void)tb__cond_init(&p->done);
  tb__mutex_unlock(&p->lock);
  tb__mutex_unlock(&tb_job_lock);
  tb__mutex_unlock(&tb_config_lock);
}

static void tb_pool_init(void) {
  tb_pool *p = &tb_the_pool;
  if (!tb__cond_init(&p->wake)) return;
  if (!tb__cond_init(&p->done)) {
    tb__cond_destroy(&p->wake);
    return;
  }
  atomic_init(&p->next, 0);
  tb_pool_ready = tb__at_fork(tb_fork_prepare, tb_fork_parent, tb_fork_child);
}

__attribute__((destructor)) static void tb_pool_stop(void) {
  tb_pool *p = &tb_the_pool;
  (void)tb__mutex_lock(&p->lock);
  const int32_t n = p->nworkers;
  p->quit = true;
  if (n > 0) tb__cond_broadcast(&p->wake);
  tb__mutex_unlock(&p->lock);
  for (int32_t i = 0; i < n; i++) tb__thread_join(p->threads[i]);
  (void)tb__mutex_lock(&p->lock);
  p->nworkers = 0;
  tb__mutex_unlock(&p->lock);
}

static void tb_run_inline(int64_t n, tb_task_fn task, void *arg) {
  for (int64_t i = 0; i < n; i++) task(arg, i);
}

void tb__parallel_for(int64_t n, tb_task_fn task, void *arg) {
  if (n <= 1) {
    tb_run_inline(n, task, arg);
    return;
  }
  tb_pool_ensure();
  (void)tb__mutex_lock(&tb_config_lock);
  const tb_parallel_for_fn user = tb_user_for;
  void *const user_ctx = tb_user_ctx;
  const int32_t asked = tb_threads_asked;
  tb__mutex_unlock(&tb_config_lock);
  const int32_t threads = asked > 0 ? asked : tb_default_threads();
  if (threads <= 1) {
    tb_run_inline(n, task, arg);
    return;
  }
  if (user != NULL) {
    user(user_ctx, n, task, arg);
    return;
  }
  if (!tb_pool_ready || !tb__mutex_trylock(&tb_job_lock)) {
    tb_run_inline(n, task, arg);
    return;
  }
  /* A caller cancelled inside the waits below would leave both locks held
   * (and every later fork and the destructor blocked): no cancellation
   * until the job is over. */
  const int cancel = tb__cancel_disable();
  tb_pool *p = &tb_the_pool;
  (void)tb__mutex_lock(&p->lock);
  const int32_t want = (int64_t)(threads - 1) < n - 1 ? threads - 1 : (int32_t)(n - 1);
  while (!p->quit && p->nworkers < want) {
    const int32_t k = p->nworkers;
    p->born[k] = p->generation;
    if (!tb__thread_start(&p->threads[k], "tb-worker", tb_worker_main, (void *)(intptr_t)k)) break;
    p->nworkers++;
  }
  /* None once the destructor has begun: its workers are leaving. */
  const int32_t helpers = p->quit ? 0 : p->nworkers < want ? p->nworkers : want;
  if (helpers == 0) {
    tb__mutex_unlock(&p->lock);
    tb__mutex_unlock(&tb_job_lock);
    tb__cancel_restore(cancel);
    tb_run_inline(n, task, arg);
    return;
  }
  p->task = task;
  p->arg = arg;
  p->n = n;
  atomic_store_explicit(&p->next, 0, memory_order_relaxed);
  p->participants = helpers;
  p->pending = helpers;
  p->generation++;
  tb__cond_broadcast(&p->wake);
  tb__mutex_unlock(&p->lock);

  tb_claim_chunks(p, task, arg, n);

  (void)tb__mutex_lock(&p->lock);
  while (p->pending > 0) tb__cond_wait(&p->done, &p->lock);
  tb__mutex_unlock(&p->lock);
  tb__mutex_unlock(&tb_job_lock);
  tb__cancel_restore(cancel);
}
