/*
 * Not a test: a program that leaks on purpose, for scripts/test. It uses the
 * OpenCL device when there is one (so that PoCL is loaded and the valgrind
 * suppressions for it are in play), then drops a tensor made by
 * tb_tensor_empty without releasing it. Under valgrind with the project's
 * suppressions it must fail with a "definitely lost" block allocated from
 * tb_tensor_empty: proof that the suppressions hide PoCL's leaks only.
 */
#include <stdio.h>

#include "tensorbridge/tensorbridge.h"

int main(void) {
  int64_t shape[2] = {4, 8};
  DLDataType f32 = {kDLFloat, 32, 1};
  DLDevice cpu = {kDLCPU, 0}, cl = {kDLOpenCL, 0};
  tb_tensor_t *t, *on_device, *leaked;
  if (tb_tensor_zeros(f32, 2, shape, cpu, TB_ORDER_C, &t) != TB_OK) goto fail;
  if (tb_device_count(kDLOpenCL) > 0) {
    if (tb_tensor_to(t, cl, NULL, TB_ORDER_C, 0, &on_device) != TB_OK) goto fail;
    tb_tensor_release(on_device);
  }
  tb_tensor_release(t);
  if (tb_tensor_empty(f32, 2, shape, cpu, TB_ORDER_C, &leaked) != TB_OK) goto fail;
  leaked = NULL; /* the only reference is gone: a definite leak */
  (void)leaked;
  return 0;
fail:
  fprintf(stderr, "leak_canary: %s\n", tb_last_error());
  return 2;
}
