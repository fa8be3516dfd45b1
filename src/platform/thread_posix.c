/* src/platform/thread.h on POSIX threads. */
#if !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#endif
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include "thread.h"

void tb__once(tb__once_flag *flag, void (*fn)(void)) {
  /* pthread_once fails only for an invalid flag, which the library never passes. */
  (void)pthread_once(flag, fn);
}

bool tb__mutex_init(tb__mutex *m) { return pthread_mutex_init(m, NULL) == 0; }
bool tb__mutex_lock(tb__mutex *m) { return pthread_mutex_lock(m) == 0; }
bool tb__mutex_trylock(tb__mutex *m) { return pthread_mutex_trylock(m) == 0; }
void tb__mutex_unlock(tb__mutex *m) { (void)pthread_mutex_unlock(m); }
void tb__mutex_destroy(tb__mutex *m) { (void)pthread_mutex_destroy(m); }

bool tb__cond_init(tb__cond *c) { return pthread_cond_init(c, NULL) == 0; }
void tb__cond_wait(tb__cond *c, tb__mutex *m) { (void)pthread_cond_wait(c, m); }
void tb__cond_broadcast(tb__cond *c) { (void)pthread_cond_broadcast(c); }
void tb__cond_signal(tb__cond *c) { (void)pthread_cond_signal(c); }
void tb__cond_destroy(tb__cond *c) { (void)pthread_cond_destroy(c); }

bool tb__thread_start(tb__thread *t, const char *name, void *(*fn)(void *), void *arg) {
  /* A new thread inherits the creating thread's mask: block everything
   * around the creation, then put the caller's mask back. */
  sigset_t all, old;
  sigfillset(&all);
  static const int synchronous[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP};
  for (size_t i = 0; i < sizeof synchronous / sizeof *synchronous; i++) {
    sigdelset(&all, synchronous[i]);
  }
  if (pthread_sigmask(SIG_SETMASK, &all, &old) != 0) return false;
  const bool ok = pthread_create(t, NULL, fn, arg) == 0;
  (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
#if defined(__linux__)
  if (ok) (void)pthread_setname_np(*t, name); /* at most 15 characters */
#else
  (void)name;
#endif
  return ok;
}

void tb__thread_join(tb__thread t) { (void)pthread_join(t, NULL); }

bool tb__at_fork(void (*prepare)(void), void (*parent)(void), void (*child)(void)) {
  return pthread_atfork(prepare, parent, child) == 0;
}

int tb__cancel_disable(void) {
  int old = PTHREAD_CANCEL_ENABLE;
  (void)pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
  return old;
}

void tb__cancel_restore(int previous) { (void)pthread_setcancelstate(previous, NULL); }

int32_t tb__cpu_count(void) {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n >= 1) return (int32_t)n;
  }
#endif
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n >= 1 && n <= INT32_MAX ? (int32_t)n : 1;
}
