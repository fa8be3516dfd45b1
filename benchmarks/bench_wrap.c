/*
 * Per-call cost of the library's small-object paths, against one heap
 * allocation measured in the same run.
 *
 * On a 4 x 4 float32 tensor:
 *   from_array      tb_from_array over caller memory + tb_tensor_release
 *                   (the deleter runs once per call);
 *   view            tb_tensor_transpose + tb_tensor_release;
 *   dlpack trip     tb_to_dlpack_versioned + tb_from_dlpack_versioned +
 *                   tb_tensor_release (export and import back, zero-copy);
 * and the reference, malloc + free of 160 bytes (about a 2-D tensor header)
 * through a volatile function pointer so the pair is not optimised away.
 * Each figure is the best of many short runs, so that other load on a shared
 * machine disturbs it least; the ratio is the operation over the reference.
 *
 * Usage: bench_wrap [calls_per_run [runs]]   (default: 20000 200)
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench.h"

static long deleted;
static void count_delete(void *data, void *ctx) {
  (void)data;
  (void)ctx;
  deleted++;
}

static float buffer[16];
static const int64_t shape[2] = {4, 4};
static const int64_t strides[2] = {4, 1};

static void op_malloc(tb_tensor_t *base) {
  (void)base;
  static void *(*volatile alloc)(size_t) = malloc;
  static void (*volatile release)(void *) = free;
  void *p = alloc(160);
  if (p == NULL) exit(1);
  release(p);
}

static void op_from_array(tb_tensor_t *base) {
  (void)base;
  tb_tensor_t *t;
  bench_check(tb_from_array(buffer, 0, tb_dtype(kDLFloat, 32), 2, shape, strides,
                      (DLDevice){kDLCPU, 0}, 0, count_delete, NULL, &t),
        "from_array");
  tb_tensor_release(t);
}

static void op_view(tb_tensor_t *base) {
  tb_tensor_t *t;
  bench_check(tb_tensor_transpose(base, 0, 1, &t), "transpose");
  tb_tensor_release(t);
}

static void op_dlpack_trip(tb_tensor_t *base) {
  DLManagedTensorVersioned *m;
  bench_check(tb_to_dlpack_versioned(base, NULL, &m), "to_dlpack_versioned");
  tb_tensor_t *t;
  bench_check(tb_from_dlpack_versioned(m, NULL, &t), "from_dlpack_versioned");
  tb_tensor_release(t);
}

/* Best time of one call, in ns, over `runs` runs of `calls` calls. */
static double best_ns(void (*op)(tb_tensor_t *), tb_tensor_t *base, long calls, int runs) {
  double best = 1e30;
  for (int r = 0; r < runs; r++) {
    double t0 = bench_now();
    for (long i = 0; i < calls; i++) op(base);
    double dt = (bench_now() - t0) / (double)calls;
    if (dt < best) best = dt;
  }
  return best * 1e9;
}

int main(int argc, char **argv) {
  long calls = argc > 1 ? atol(argv[1]) : 20000;
  int runs = argc > 2 ? atoi(argv[2]) : 200;
  if (calls <= 0 || runs <= 0) {
    fprintf(stderr, "usage: bench_wrap [calls_per_run [runs]]\n");
    return 2;
  }
  tb_tensor_t *base;
  bench_check(tb_from_array(buffer, 0, tb_dtype(kDLFloat, 32), 2, shape, strides,
                      (DLDevice){kDLCPU, 0}, 0, NULL, NULL, &base),
        "from_array");
  static const struct {
    const char *name;
    void (*op)(tb_tensor_t *);
  } ops[] = {
      {"from_array + release", op_from_array},
      {"transpose view + release", op_view},
      {"DLPack export + import + release", op_dlpack_trip},
  };
  printf("libtensorbridge %s, best of %d runs x %ld calls, 4 x 4 float32\n\n",
         tb_version(), runs, calls);
  printf("| operation | ns per call | malloc + free (ns) | ratio |\n|---|---:|---:|---:|\n");
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    /* Measured in alternation with its reference, so both see the same load. */
    double reference = 1e30, cost = 1e30;
    for (int round = 0; round < 5; round++) {
      double r = best_ns(op_malloc, base, calls, runs / 5 + 1);
      double c = best_ns(ops[i].op, base, calls, runs / 5 + 1);
      if (r < reference) reference = r;
      if (c < cost) cost = c;
    }
    printf("| %s | %.1f | %.1f | %.2f |\n", ops[i].name, cost, reference, cost / reference);
  }
  tb_tensor_release(base);
  if (deleted == 0) {
    fprintf(stderr, "bench_wrap: the deleter never ran\n");
    return 1;
  }
  return 0;
}
