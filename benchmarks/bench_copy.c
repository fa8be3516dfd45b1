/*
 * Copy-engine throughput against memcpy, measured in the same run.
 *
 * For float32 N x N (N = 4096, 8192): a contiguous copy, a 2-D transpose copy
 * (a C-order copy of a transposed view) and a float64 -> float32 cast.
 * Throughput counts bytes read plus bytes written; the reference is memcpy
 * of a buffer the size of the destination, whose throughput counts the same
 * way. Each figure is the best of several repetitions.
 *
 * Then the four float16/bfloat16 <-> float32 casts of 2^24 contiguous
 * elements (random values in [-4, 4)), best of HALF_REPEATS short runs, in
 * milliseconds and against memcpy of the float32 buffer (GB/s counting bytes
 * read + written on both sides). TB_CPU_LEVEL=c|avx2 picks the kernel level.
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
#define HALF_REPEATS 30

typedef struct job {
  tb_tensor_t *dst;
  tb_tensor_t *src;
} job;

static double best_copy_into_of(job j, int repeats) {
  double best = 1e30;
  for (int r = 0; r < repeats; r++) {
    double t0 = bench_now();
    bench_check(tb_tensor_copy_into(j.dst, j.src, 0), "copy_into");
    double dt = bench_now() - t0;
    if (dt < best) best = dt;
  }
  return best;
}

static double best_copy_into(job j) { return best_copy_into_of(j, REPEATS); }

static double best_memcpy_of(void *dst, const void *src, size_t n, int repeats) {
  double best = 1e30;
  for (int r = 0; r < repeats; r++) {
    double t0 = bench_now();
    memcpy(dst, src, n);
    double dt = bench_now() - t0;
    if (dt < best) best = dt;
  }
  return best;
}

static double best_memcpy(void *dst, const void *src, size_t n) {
  return best_memcpy_of(dst, src, n, REPEATS);
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

static void report_half(const char *name, double bytes, double secs, double memcpy_gbs) {
  double gbs = bytes / secs / 1e9;
  printf("%-22s 2^24 elements %7.2f ms %8.2f GB/s   %5.2fx memcpy\n", name, secs * 1e3, gbs,
         gbs / memcpy_gbs);
}

static void run_half_casts(void) {
  const DLDevice cpu = {kDLCPU, 0};
  const DLDataType f32 = {kDLFloat, 32, 1}, f16 = {kDLFloat, 16, 1}, bf16 = {kDLBfloat, 16, 1};
  const int64_t n = INT64_C(1) << 24;
  tb_tensor_t *a, *b, *h, *bh;
  bench_check(tb_tensor_empty(f32, 1, &n, cpu, TB_ORDER_C, &a), "empty");
  bench_check(tb_tensor_zeros(f32, 1, &n, cpu, TB_ORDER_C, &b), "zeros");
  bench_check(tb_tensor_zeros(f16, 1, &n, cpu, TB_ORDER_C, &h), "zeros");
  bench_check(tb_tensor_zeros(bf16, 1, &n, cpu, TB_ORDER_C, &bh), "zeros");
  float *x = tb_tensor_data(a);
  uint32_t seed = 12345;
  for (int64_t i = 0; i < n; i++) {
    seed = seed * 1664525u + 1013904223u;
    x[i] = ((float)(seed >> 8) * 0x1p-24f - 0.5f) * 8.0f;
  }
  const double f32_bytes = 4.0 * (double)n, half_bytes = 2.0 * (double)n;
  double memcpy_secs = best_memcpy_of(tb_tensor_data(b), x, (size_t)f32_bytes, HALF_REPEATS);
  double memcpy_gbs = 2.0 * f32_bytes / memcpy_secs / 1e9;
  report_half("memcpy f32 (reference)", 2.0 * f32_bytes, memcpy_secs, memcpy_gbs);
  report_half("float32->float16", f32_bytes + half_bytes,
              best_copy_into_of((job){h, a}, HALF_REPEATS), memcpy_gbs);
  report_half("float16->float32", f32_bytes + half_bytes,
              best_copy_into_of((job){b, h}, HALF_REPEATS), memcpy_gbs);
  report_half("float32->bfloat16", f32_bytes + half_bytes,
              best_copy_into_of((job){bh, a}, HALF_REPEATS), memcpy_gbs);
  report_half("bfloat16->float32", f32_bytes + half_bytes,
              best_copy_into_of((job){b, bh}, HALF_REPEATS), memcpy_gbs);
  tb_tensor_release(bh);
  tb_tensor_release(h);
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
  run_half_casts();
  return 0;
}
