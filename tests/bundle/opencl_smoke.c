/*
 * The OpenCL backend from a bundle made with --with-opencl (scripts/bundle),
 * for scripts/test-bundle: a float32 matrix to the first OpenCL device and
 * back (plain transfers, then a transposed copy with a cast to float64,
 * which runs the backend's kernels). Exit 0 and "devices: N" when it works;
 * exit 77 when the machine has no OpenCL device.
 */
#include <stdio.h>

#include "tensorbridge.h"

#if !TB_BUNDLE_WITH_OPENCL
#error "this bundle was made without --with-opencl"
#endif

#define CHECK(call)                                                                   \
  do {                                                                                \
    if ((call) != TB_OK) {                                                            \
      fprintf(stderr, "opencl_smoke: %s: %s\n", #call, tb_last_error());              \
      return 1;                                                                       \
    }                                                                                 \
  } while (0)

int main(void) {
  int32_t devices = tb_device_count(kDLOpenCL);
  printf("devices: %d\n", (int)devices);
  if (devices <= 0) return 77;
  float host[3][4];
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 4; j++) host[i][j] = (float)(10 * i + j);
  int64_t shape[2] = {3, 4};
  DLDataType f32 = {kDLFloat, 32, 1}, f64 = {kDLFloat, 64, 1};
  DLDevice cpu = {kDLCPU, 0}, gpu = {kDLOpenCL, 0};
  tb_tensor_t *t, *on, *back, *tt, *cast, *cast_back;
  CHECK(tb_from_array(host, 0, f32, 2, shape, NULL, cpu, 0, NULL, NULL, &t));
  CHECK(tb_tensor_to(t, gpu, NULL, TB_ORDER_C, 0, &on));
  CHECK(tb_tensor_to(on, cpu, NULL, TB_ORDER_C, 0, &back));
  const float *b = tb_tensor_data(back);
  for (int k = 0; k < 12; k++) {
    if (b[k] != host[k / 4][k % 4]) {
      fprintf(stderr, "opencl_smoke: element %d came back as %g\n", k, (double)b[k]);
      return 1;
    }
  }
  /* On the device: a transposed view copied as float64 (a kernel). */
  CHECK(tb_tensor_transpose(on, 0, 1, &tt));
  CHECK(tb_tensor_to(tt, gpu, &f64, TB_ORDER_C, 0, &cast));
  CHECK(tb_tensor_to(cast, cpu, NULL, TB_ORDER_C, 0, &cast_back));
  const double *c = tb_tensor_data(cast_back);
  for (int k = 0; k < 12; k++) {
    if (c[k] != (double)host[k % 3][k / 3]) {
      fprintf(stderr, "opencl_smoke: transposed element %d is %g\n", k, c[k]);
      return 1;
    }
  }
  tb_tensor_release(cast_back);
  tb_tensor_release(cast);
  tb_tensor_release(tt);
  tb_tensor_release(back);
  tb_tensor_release(on);
  tb_tensor_release(t);
  printf("opencl: round trip and a transposed float32 -> float64 copy on %s device 0: OK\n",
         tb_device_type_name(kDLOpenCL));
  return 0;
}
