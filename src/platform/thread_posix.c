/* src/platform/thread.h on POSIX threads. */
#include "thread.h"

void tb__once(tb__once_flag *flag, void (*fn)(void)) {
  /* pthread_once fails only for an invalid flag, which the library never passes. */
  (void)pthread_once(flag, fn);
}

bool tb__mutex_init(tb__mutex *m) { return pthread_mutex_init(m, NULL) == 0; }
bool tb__mutex_lock(tb__mutex *m) { return pthread_mutex_lock(m) == 0; }
void tb__mutex_unlock(tb__mutex *m) { (void)pthread_mutex_unlock(m); }
void tb__mutex_destroy(tb__mutex *m) { (void)pthread_mutex_destroy(m); }
