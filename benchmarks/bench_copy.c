/*
 * Copy-engine throughput against memcpy, measured in the same run.
 *
 * For float32 N x N (N = 4096, 8192): a contiguous copy, a 2-D transpose copy
 * (a C-order copy of a transposed view) and a float64 -> float32 cast.
 * Throughput counts bytes read plus bytes written; the reference is memcpy
 * of a buffer the size of the destination, whose throughput counts the same
 * way. Each figure is the best of several repetitions.
 *
 * Usage: bench_copy [N ...]   (default: 4096 8192)
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

#define REPEATS 5

typedef struct job {
  tb_tensor_t *dst;
  tb_tensor_t *src;
} job;

static double best_copy_into(job j) {
  double best = 1e30;
  for (int r = 0; r < REPEATS; r++) {
    double t0 = bench_now();
    bench_check(tb_tensor_copy_into(j.dst, j.src, 0), "copy_into");
    double dt = bench_now() - t0;
    if (dt < best) best = dt;
  }
  return best;
}

static double best_memcpy(void *dst, const void *src, size_t n) {
  double best = 1e30;
  for (int r = 0; r < REPEATS; r++) {
    double t0 = bench_now();
    memcpy(dst, src, n);
    double dt = bench_now() - t0;
    if (dt < best) best = dt;
  }
  return best;
}

static void report(const char *name, int64_t n, double bytes, double secs, double memcpy_gbs) {
  double gbs = bytes / secs / 1e9;
  printf("%-22s %6lld x %-6lld %8.2f GB/s   %5.2fx memcpy\n", name, (long long)n, (long long)n,
         gbs, gbs / memcpy_gbs);
}

static void run(int64_t n) {
  DLDevice cpu = {kDLCPU, 0};
  DLDataType f32 = {kDLFloat, 32, 1}, f64 = {kDLFloat, 64, 1};
  int64_t shape[2] = {n, n};
  tb_tensor_t *a, *b, *d64, *at;
  float one = 1.0f;
  bench_check(tb_tensor_full(f32, 2, shape, cpu, TB_ORDER_C, &one, f32, &a), "full");
  bench_check(tb_tensor_zeros(f32, 2, shape, cpu, TB_ORDER_C, &b), "zeros");
  bench_check(tb_tensor_full(f64, 2, shape, cpu, TB_ORDER_C, &one, f32, &d64), "full");
  bench_check(tb_tensor_transpose(a, 0, 1, &at), "transpose");

  size_t f32_bytes = (size_t)tb_tensor_nbytes(a);
  double memcpy_secs = best_memcpy(tb_tensor_data(b), tb_tensor_data(a), f32_bytes);
  double memcpy_gbs = 2.0 * (double)f32_bytes / memcpy_secs / 1e9;
  report("memcpy (reference)", n, 2.0 * (double)f32_bytes, memcpy_secs, memcpy_gbs);
  report("contiguous copy", n, 2.0 * (double)f32_bytes, best_copy_into((job){b, a}), memcpy_gbs);
  report("transpose copy", n, 2.0 * (double)f32_bytes, best_copy_into((job){b, at}), memcpy_gbs);
  report("float64->float32 cast", n, 3.0 * (double)f32_bytes, best_copy_into((job){b, d64}),
         memcpy_gbs);

  tb_tensor_release(at);
  tb_tensor_release(d64);
  tb_tensor_release(b);
  tb_tensor_release(a);
}

int main(int argc, char **argv) {
  printf("libtensorbridge %s copy benchmark (best of %d; GB/s counts bytes read + written)\n",
         tb_version(), REPEATS);
  if (argc > 1) {
    for (int i = 1; i < argc; i++) run(strtoll(argv[i], NULL, 10));
  } else {
    run(4096);
    run(8192);
  }
  return 0;
}
