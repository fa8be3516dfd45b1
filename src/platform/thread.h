/*
 * The library's one door to the platform's threading: run-once, mutexes and
 * thread-local storage. Everything else in the library includes this header
 * instead of <pthread.h> or C11 <threads.h> (which macOS's libc lacks, and
 * whose calls ThreadSanitizer on glibc does not intercept), so that a port
 * to another platform is one new implementation file beside thread_posix.c
 * and one branch below.
 *
 * The only threads the library starts are core/parallel.c's pool workers
 * (through tb__thread_start, below).
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
#define TB__MUTEX_INIT PTHREAD_MUTEX_INITIALIZER
typedef pthread_cond_t tb__cond;
typedef pthread_t tb__thread;

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
/* True when the mutex was free and is now held by the caller. */
TB_INTERNAL bool tb__mutex_trylock(tb__mutex *m);

/* Condition variables, used with a tb__mutex as usual (spurious wakeups
 * happen: wait in a loop). */
TB_INTERNAL bool tb__cond_init(tb__cond *c);
TB_INTERNAL void tb__cond_wait(tb__cond *c, tb__mutex *m);
TB_INTERNAL void tb__cond_broadcast(tb__cond *c);
TB_INTERNAL void tb__cond_signal(tb__cond *c);
TB_INTERNAL void tb__cond_destroy(tb__cond *c);

/* Starts fn(arg) on a new thread with every asynchronous signal blocked (a
 * library's thread must not take the application's signals; the synchronous
 * ones, SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGTRAP, stay open so that a fault
 * in a worker reaches the application's handler as it would on the calling
 * thread: a blocked one kills the process), named `name` where the
 * platform keeps names (at most 15 characters; shown by top, ps and gdb).
 * False when the platform refuses (no thread was started). */
TB_INTERNAL bool tb__thread_start(tb__thread *t, const char *name, void *(*fn)(void *),
                                  void *arg);
TB_INTERNAL void tb__thread_join(tb__thread t);

/* Registers handlers run around fork(): prepare in the parent before, parent
 * after, child in the child (its only thread). Unregistered when the library
 * is unloaded (glibc ties them to the calling shared object). */
TB_INTERNAL bool tb__at_fork(void (*prepare)(void), void (*parent)(void), void (*child)(void));

/* Turns off the calling thread's cancellation (pthread_cancel) and returns
 * the previous state, for tb__cancel_restore. */
TB_INTERNAL int tb__cancel_disable(void);
TB_INTERNAL void tb__cancel_restore(int previous);

/* The CPUs this process may run on (its affinity mask), at least 1. */
TB_INTERNAL int32_t tb__cpu_count(void);

#endif /* TB_PLATFORM_THREAD_H */
