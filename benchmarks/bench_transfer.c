/*
 * Host <-> GPU and on-GPU transfer throughput through the library, each as a
 * ratio to plain cudaMemcpy of the same bytes in the same direction with the
 * same kind of host memory, measured in the same run.
 *
 *   H2D / D2H, pageable host memory: tb_tensor_copy_into between a CPU tensor
 *     over malloc'd memory and a CUDA tensor (the library stages through its
 *     pinned buffers) vs cudaMemcpy from/to the same malloc'd memory; and
 *     tb_tensor_to (a fresh tensor each time, allocation included).
 *   H2D / D2H, pinned host memory: the same over cudaMallocHost memory
 *     wrapped as kDLCUDAHost vs cudaMemcpy from/to it.
 *   D2D: a same-dtype copy (a plain device copy in the library), and two
 *     kernels: a float32 transpose and a float32 -> bfloat16 cast, whose
 *     bytes read plus written are compared with cudaMemcpy's (which also
 *     reads and writes each byte once).
 *
 * Each figure is the best of several repetitions, timed on the host with
 * the device synchronised at the end of each (the library returns from
 * device-to-device copies with the work queued on its stream).
 *
 * Usage: bench_transfer [MiB ...]   (default: 64 256)
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

#define REPEATS 7

static void check_cuda(cudaError_t e, const char *what) {
  if (e != cudaSuccess) {
    fprintf(stderr, "%s: %s (%s)\n", what, cudaGetErrorName(e), cudaGetErrorString(e));
    exit(1);
  }
}

static void sync_device(void) { check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }

/* ---- what is timed ---- */

typedef enum op_kind { OP_MEMCPY, OP_COPY_INTO, OP_TO } op_kind;

typedef struct op {
  op_kind kind;
  /* OP_MEMCPY */
  void *dst;
  const void *src;
  size_t nbytes;
  enum cudaMemcpyKind dir;
  /* OP_COPY_INTO, OP_TO */
  tb_tensor_t *tdst;
  const tb_tensor_t *tsrc;
  DLDevice to_device;
} op;

static void run_once(const op *o) {
  switch (o->kind) {
    case OP_MEMCPY: check_cuda(cudaMemcpy(o->dst, o->src, o->nbytes, o->dir), "cudaMemcpy"); break;
    case OP_COPY_INTO:
      bench_check(tb_tensor_copy_into(o->tdst, o->tsrc, 0), "tb_tensor_copy_into");
      break;
    case OP_TO: {
      tb_tensor_t *t = NULL;
      bench_check(tb_tensor_to(o->tsrc, o->to_device, NULL, TB_ORDER_C, 0, &t), "tb_tensor_to");
      sync_device();
      tb_tensor_release(t);
      return;
    }
  }
  sync_device();
}

/* Best wall time over REPEATS, after one untimed warm-up run. */
static double best_time(const op *o) {
  run_once(o);
  double best = 1e30;
  for (int r = 0; r < REPEATS; r++) {
    double t0 = bench_now();
    run_once(o);
    double dt = bench_now() - t0;
    if (dt < best) best = dt;
  }
  return best;
}

static void report(const char *name, double bytes, double secs, double ref_secs) {
  double gbs = bytes / secs / 1e9;
  printf("  %-42s %8.2f GB/s   %5.2fx cudaMemcpy\n", name, gbs, ref_secs / secs);
}

/* ---- tensors over memory the benchmark owns ---- */

static tb_tensor_t *wrap(void *data, DLDataType dtype, int32_t ndim, const int64_t *shape,
                         DLDevice device) {
  tb_tensor_t *t = NULL;
  bench_check(tb_from_array(data, 0, dtype, ndim, shape, NULL, device, 0, NULL, NULL, &t), "from_array");
  return t;
}

static void run(size_t mib) {
  const size_t nbytes = mib << 20;
  const DLDataType u8 = {kDLUInt, 8, 1}, f32 = {kDLFloat, 32, 1}, bf16 = {kDLBfloat, 16, 1};
  const DLDevice cpu = {kDLCPU, 0}, gpu = {kDLCUDA, 0}, pinned_dev = {kDLCUDAHost, 0};
  int64_t n = (int64_t)nbytes;

  void *pageable = malloc(nbytes), *pinned = NULL, *d0 = NULL, *d1 = NULL;
  if (pageable == NULL) {
    fprintf(stderr, "out of host memory for %zu MiB\n", mib);
    exit(1);
  }
  memset(pageable, 0x5A, nbytes); /* pages present, as for real data */
  check_cuda(cudaMallocHost(&pinned, nbytes), "cudaMallocHost");
  memset(pinned, 0x3C, nbytes);
  check_cuda(cudaMalloc(&d0, nbytes), "cudaMalloc");
  check_cuda(cudaMalloc(&d1, nbytes), "cudaMalloc");
  check_cuda(cudaMemset(d0, 1, nbytes), "cudaMemset");

  tb_tensor_t *t_pageable = wrap(pageable, u8, 1, &n, cpu);
  tb_tensor_t *t_pinned = wrap(pinned, u8, 1, &n, pinned_dev);
  tb_tensor_t *t_d0 = wrap(d0, u8, 1, &n, gpu), *t_d1 = wrap(d1, u8, 1, &n, gpu);

  printf("%zu MiB\n", mib);
  double ref;
  const double b = (double)nbytes;

  ref = best_time(&(op){.kind = OP_MEMCPY,
                        .dst = d0,
                        .src = pageable,
                        .nbytes = nbytes,
                        .dir = cudaMemcpyHostToDevice});
  report("H2D pageable  copy_into", b,
         best_time(&(op){.kind = OP_COPY_INTO, .tdst = t_d0, .tsrc = t_pageable}), ref);
  report("H2D pageable  tensor_to (allocates)", b,
         best_time(&(op){.kind = OP_TO, .tsrc = t_pageable, .to_device = gpu}), ref);

  ref = best_time(&(op){.kind = OP_MEMCPY,
                        .dst = d0,
                        .src = pinned,
                        .nbytes = nbytes,
                        .dir = cudaMemcpyHostToDevice});
  report("H2D pinned    copy_into", b,
         best_time(&(op){.kind = OP_COPY_INTO, .tdst = t_d0, .tsrc = t_pinned}), ref);
  report("H2D pinned    tensor_to (allocates)", b,
         best_time(&(op){.kind = OP_TO, .tsrc = t_pinned, .to_device = gpu}), ref);

  ref = best_time(&(op){.kind = OP_MEMCPY,
                        .dst = pageable,
                        .src = d0,
                        .nbytes = nbytes,
                        .dir = cudaMemcpyDeviceToHost});
  report("D2H pageable  copy_into", b,
         best_time(&(op){.kind = OP_COPY_INTO, .tdst = t_pageable, .tsrc = t_d0}), ref);
  report("D2H pageable  tensor_to (allocates)", b,
         best_time(&(op){.kind = OP_TO, .tsrc = t_d0, .to_device = cpu}), ref);

  ref = best_time(&(op){.kind = OP_MEMCPY,
                        .dst = pinned,
                        .src = d0,
                        .nbytes = nbytes,
                        .dir = cudaMemcpyDeviceToHost});
  report("D2H pinned    copy_into", b,
         best_time(&(op){.kind = OP_COPY_INTO, .tdst = t_pinned, .tsrc = t_d0}), ref);

  /* Device to device: bytes read plus written on both sides. */
  ref = best_time(&(op){
      .kind = OP_MEMCPY, .dst = d1, .src = d0, .nbytes = nbytes, .dir = cudaMemcpyDeviceToDevice});
  report("D2D same dtype copy_into", 2 * b,
         best_time(&(op){.kind = OP_COPY_INTO, .tdst = t_d1, .tsrc = t_d0}), ref);

  /* float32 side x side transpose and float32 -> bfloat16 over the same memory. */
  int64_t side = 1;
  while ((side * 2) * (side * 2) * 4 <= (int64_t)nbytes) side *= 2;
  int64_t sq[2] = {side, side}, nf = (int64_t)(nbytes / 4);
  tb_tensor_t *a = wrap(d0, f32, 2, sq, gpu), *at = NULL, *c = wrap(d1, f32, 2, sq, gpu);
  bench_check(tb_tensor_transpose(a, 0, 1, &at), "transpose");
  double tbytes = 2.0 * (double)(side * side * 4);
  double ref_t = best_time(&(op){.kind = OP_MEMCPY,
                                 .dst = d1,
                                 .src = d0,
                                 .nbytes = (size_t)(side * side * 4),
                                 .dir = cudaMemcpyDeviceToDevice});
  char name[96];
  snprintf(name, sizeof name, "D2D f32 %lldx%lld transpose (kernel)", (long long)side,
           (long long)side);
  report(name, tbytes, best_time(&(op){.kind = OP_COPY_INTO, .tdst = c, .tsrc = at}), ref_t);

  tb_tensor_t *fs = wrap(d0, f32, 1, &nf, gpu), *hs = wrap(d1, bf16, 1, &nf, gpu);
  double cbytes = (double)nf * 6.0; /* 4 read, 2 written */
  double ref_c = best_time(&(op){.kind = OP_MEMCPY,
                                 .dst = d1,
                                 .src = d0,
                                 .nbytes = (size_t)(nf * 3),
                                 .dir = cudaMemcpyDeviceToDevice});
  report("D2D f32 -> bf16 cast (kernel)", cbytes,
         best_time(&(op){.kind = OP_COPY_INTO, .tdst = hs, .tsrc = fs}), ref_c);

  tb_tensor_release(hs);
  tb_tensor_release(fs);
  tb_tensor_release(c);
  tb_tensor_release(at);
  tb_tensor_release(a);
  tb_tensor_release(t_d1);
  tb_tensor_release(t_d0);
  tb_tensor_release(t_pinned);
  tb_tensor_release(t_pageable);
  check_cuda(cudaFree(d1), "cudaFree");
  check_cuda(cudaFree(d0), "cudaFree");
  check_cuda(cudaFreeHost(pinned), "cudaFreeHost");
  free(pageable);
}

int main(int argc, char **argv) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0 || tb_device_count(kDLCUDA) == 0) {
    printf("bench_transfer: no CUDA device (runtime sees %d, library sees %d); nothing to do\n",
           count, (int)tb_device_count(kDLCUDA));
    return 0;
  }
  check_cuda(cudaSetDevice(0), "cudaSetDevice");
  struct cudaDeviceProp prop;
  check_cuda(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  printf("bench_transfer on %s (sm_%d%d), best of %d\n", prop.name, prop.major, prop.minor,
         REPEATS);
  if (argc > 1) {
    for (int i = 1; i < argc; i++) {
      long mib = strtol(argv[i], NULL, 10);
      if (mib <= 0) {
        fprintf(stderr, "bench_transfer: '%s' is not a size in MiB\n", argv[i]);
        return 2;
      }
      run((size_t)mib);
    }
  } else {
    run(64);
    run(256);
  }
  return 0;
}
