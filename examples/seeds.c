/*
 * The seeds' story in C: share memory with a tensor, copy it, convert it,
 * view it, and watch which side sees a write.
 *
 *   torch.from_numpy(a)  -> tb_from_array   (shares: writes are seen both ways)
 *   torch.tensor(a)      -> tb_tensor_new   (copies: independent afterwards)
 *   torch.Tensor(a)      -> tb_tensor_new with a dtype (copies and converts)
 *   t[:, ::-1], t.T      -> tb_tensor_slice / tb_tensor_transpose (views)
 */
#include <stdio.h>
#include <stdlib.h>

#include "tensorbridge/tensorbridge.h"

#define CHECK(call)                                                                   \
  do {                                                                                \
    tb_status st_ = (call);                                                           \
    if (st_ != TB_OK) {                                                               \
      fprintf(stderr, "%s failed: %s: %s\n", #call, tb_status_name(st_), tb_last_error()); \
      exit(1);                                                                        \
    }                                                                                 \
  } while (0)

/* Prints a 1-D or 2-D tensor of any castable dtype, via a float64 copy. */
static void show(const char *label, const tb_tensor_t *t) {
  DLDataType f64 = {kDLFloat, 64, 1};
  tb_tensor_t *c;
  CHECK(tb_tensor_copy(t, &f64, TB_ORDER_C, 0, &c));
  const double *v = tb_tensor_data(c);
  int32_t nd = tb_tensor_ndim(t);
  int64_t rows = nd == 2 ? tb_tensor_shape(t)[0] : 1;
  int64_t cols = nd == 0 ? 1 : tb_tensor_shape(t)[nd - 1];
  printf("  %-38s %-8s [", label, tb_dtype_name(tb_tensor_dtype(t)));
  for (int64_t r = 0; r < rows; r++) {
    printf(r > 0 ? "; " : "");
    for (int64_t k = 0; k < cols; k++) printf(k > 0 ? " %g" : "%g", v[r * cols + k]);
  }
  printf("]\n");
  tb_tensor_release(c);
}

static int g_deleter_calls;
static void owner_deleter(void *data, void *ctx) {
  (void)ctx;
  g_deleter_calls++;
  free(data);
}

int main(void) {
  printf("libtensorbridge %s\n\n", tb_version());
  DLDevice cpu = {kDLCPU, 0};

  printf("1. Share (torch.from_numpy): one buffer, two names\n");
  double *a = malloc(5 * sizeof *a);
  for (int i = 0; i < 5; i++) a[i] = i + 1;
  int64_t n = 5;
  tb_tensor_t *shared;
  CHECK(tb_from_array(a, 0, (DLDataType){kDLFloat, 64, 1}, 1, &n, NULL, cpu, 0, owner_deleter,
                      NULL, &shared));
  show("tensor before a[0] = 100:", shared);
  a[0] = 100;
  show("tensor after  a[0] = 100:", shared);
  ((double *)tb_tensor_data(shared))[4] = -5;
  printf("  %-38s a[4] = %g (same pointer: %s)\n\n", "array after tensor[4] = -5:", a[4],
         tb_tensor_data(shared) == (void *)a ? "yes" : "no");

  printf("2. Copy (torch.tensor): independent afterwards\n");
  int64_t b[5] = {1, 2, 3, 4, 5};
  tb_tensor_t *copied;
  CHECK(tb_tensor_new(b, (DLDataType){kDLInt, 64, 1}, 1, &n, NULL, NULL, TB_ORDER_C, 0, &copied));
  b[0] = 100;
  show("copy after b[0] = 100:", copied);
  printf("\n");

  printf("3. Convert (torch.Tensor): int64 2x3 copied as float32\n");
  int64_t m[2][3] = {{1, 2, 3}, {4, 5, 6}};
  int64_t shape[2] = {2, 3};
  DLDataType f32;
  CHECK(tb_dtype_from_name("float32", &f32));
  tb_tensor_t *converted;
  CHECK(tb_tensor_new(m, (DLDataType){kDLInt, 64, 1}, 2, shape, NULL, &f32, TB_ORDER_C, 0,
                      &converted));
  show("converted:", converted);
  printf("\n");

  printf("4. Views share storage: transpose, reversed slice\n");
  tb_tensor_t *transposed, *reversed;
  CHECK(tb_tensor_transpose(converted, 0, 1, &transposed));
  CHECK(tb_tensor_slice(converted, 1, INT64_MAX, INT64_MIN, -1, &reversed));
  show("converted.T:", transposed);
  show("converted[:, ::-1]:", reversed);
  float *first = tb_tensor_data(converted);
  first[0] = 42;
  show("converted.T after converted[0,0]=42:", transposed);
  const int64_t *st = tb_tensor_strides(reversed);
  printf("  %-38s (%lld, %lld) elements\n\n", "strides of converted[:, ::-1]:", (long long)st[0],
         (long long)st[1]);

  printf("5. Ownership: the owner's deleter runs once, at the last release\n");
  tb_tensor_t *view;
  CHECK(tb_tensor_slice(shared, 0, 1, 3, 1, &view));
  tb_tensor_release(shared);
  printf("  %-38s deleter calls = %d\n", "released the tensor, a view remains:", g_deleter_calls);
  tb_tensor_release(view);
  printf("  %-38s deleter calls = %d\n", "released the view:", g_deleter_calls);

  tb_tensor_release(reversed);
  tb_tensor_release(transposed);
  tb_tensor_release(converted);
  tb_tensor_release(copied);
  return 0;
}
