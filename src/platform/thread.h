/*
 * The library's one door to the platform's threading: run-once, mutexes and
 * thread-local storage. Everything else in the library includes this header
 * instead of <pthread.h> or C11 <threads.h> (which macOS's libc lacks, and
 * whose calls ThreadSanitizer on glibc does not intercept), so that a port
 * to another platform is one new implementation file beside thread_posix.c
 * and one branch below.
 *
 * The library creates no threads of its own; when it needs them, they join
 * this layer.
 */
#ifndef TB_PLATFORM_THREAD_H
#define TB_PLATFORM_THREAD_H

#include <stdbool.h>

#include "../internal.h"

#if defined(_WIN32)
#error "src/platform/thread.h: no Windows implementation yet (add thread_win32.c: INIT_ONCE, SRWLOCK)"
#else
#include <pthread.h>

typedef pthread_once_t tb__once_flag;
#define TB__ONCE_INIT PTHREAD_ONCE_INIT

typedef pthread_mutex_t tb__mutex;

#define TB__THREAD_LOCAL _Thread_local
#endif

/* Runs fn exactly once per flag, however many threads call at the same time;
 * the others return only after it has finished. fn must not call tb__once on
 * the same flag (that deadlocks, as with every once primitive). */
TB_INTERNAL void tb__once(tb__once_flag *flag, void (*fn)(void));

/* A plain (non-recursive) mutex. Init returns false when the platform cannot
 * make one; lock returns false only on a misuse the platform detects. */
TB_INTERNAL bool tb__mutex_init(tb__mutex *m);
TB_INTERNAL bool tb__mutex_lock(tb__mutex *m);
TB_INTERNAL void tb__mutex_unlock(tb__mutex *m);
TB_INTERNAL void tb__mutex_destroy(tb__mutex *m);

#endif /* TB_PLATFORM_THREAD_H */
