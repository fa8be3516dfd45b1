/*
 * Parallel chunks (core/parallel.c): the library's thread pool, or the
 * embedder's parallel-for (tensorbridge.h, "Threads").
 */
#ifndef TB_CORE_PARALLEL_H
#define TB_CORE_PARALLEL_H

#include "internal.h"

/* The thread count in use (tb_get_num_threads). */
TB_INTERNAL int32_t tb__parallel_threads(void);

/*
 * Runs task(arg, i) for every i in [0, n), on up to tb__parallel_threads()
 * threads (the caller's included), and returns when all have returned.
 * n <= 1, a thread count of 1, a busy pool (another copy, or a call from
 * inside a task) or a pool that cannot start threads: all run on the
 * calling thread, in order. Tasks must not fail, block on each other, or
 * write the same memory.
 */
TB_INTERNAL void tb__parallel_for(int64_t n, tb_task_fn task, void *arg);

#endif
