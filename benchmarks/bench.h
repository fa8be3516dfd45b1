/* What every benchmark program needs: a monotonic clock and a status check
 * that ends the program with the library's message. Header-only: each
 * benchmark is one program of its own. */
#ifndef TB_BENCH_H
#define TB_BENCH_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "tensorbridge/tensorbridge.h"

/* Seconds on the monotonic clock. */
static inline double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Exits with the status name and message when st is not TB_OK. */
static inline void bench_check(tb_status st, const char *what) {
  if (st != TB_OK) {
    fprintf(stderr, "%s: %s: %s\n", what, tb_status_name(st), tb_last_error());
    exit(1);
  }
}

#endif
