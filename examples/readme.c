/* The README's example, built and run by the tests so that it stays true. */
#include <stdio.h>
#include <tensorbridge/tensorbridge.h>

int main(void) {
  double a[5] = {1, 2, 3, 4, 5};
  int64_t n = 5;
  DLDevice cpu = {kDLCPU, 0};
  DLDataType f64 = {kDLFloat, 64, 1}, f32 = {kDLFloat, 32, 1};
  tb_tensor_t *shared, *copy, *rev;
  if (tb_from_array(a, 0, f64, 1, &n, NULL, cpu, 0, NULL, NULL, &shared) != TB_OK ||
      tb_tensor_copy(shared, &f32, TB_ORDER_C, 0, &copy) != TB_OK ||
      tb_tensor_slice(shared, 0, INT64_MAX, INT64_MIN, -1, &rev) != TB_OK) {
    fprintf(stderr, "error: %s\n", tb_last_error());
    return 1;
  }
  a[0] = 100; /* seen through `shared` and `rev`, not through `copy` */
  int64_t last = 4;
  void *r4;
  tb_tensor_element_ptr(rev, &last, &r4); /* rev[4] is a[0] */
  printf("%g %g %g\n", ((double *)tb_tensor_data(shared))[0], *(double *)r4,
         ((float *)tb_tensor_data(copy))[0]);
  tb_tensor_release(rev); tb_tensor_release(copy); tb_tensor_release(shared);
  return 0; /* prints: 100 100 1 */
}
