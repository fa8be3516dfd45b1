/* The seed examples, ported to C: what torch.tensor, torch.from_numpy,
 * torch.Tensor and tensor.numpy() do, done with libtensorbridge. */
#include <string.h>

#include "support.h"

/* torch.tensor(np.array([1, 2, 3, 4, 5])): a copy that keeps int64. */
static void copy_of_int64_vector_keeps_values_and_dtype(void **state) {
  (void)state;
  int64_t a[5] = {1, 2, 3, 4, 5};
  int64_t n = 5;
  tb_tensor_t *t;
  assert_ok(tb_tensor_new(a, I64, 1, &n, NULL, NULL, TB_ORDER_C, 0, &t));
  assert_true(tb_dtype_equal(tb_tensor_dtype(t), I64));
  assert_int_equal(tb_tensor_ndim(t), 1);
  assert_int_equal(tb_tensor_shape(t)[0], 5);
  assert_memory_equal(tb_tensor_data(t), a, sizeof a);
  a[0] = 100; /* the copy does not follow its source */
  assert_int_equal(((int64_t *)tb_tensor_data(t))[0], 1);
  tb_tensor_release(t);
}

/* a = np.array([1., 2., 3., 4., 5.]); t = torch.from_numpy(a); a[0] = 100 */
static void shared_float64_vector_sees_the_owners_write(void **state) {
  (void)state;
  double a[5] = {1, 2, 3, 4, 5};
  int64_t n = 5;
  tb_tensor_t *t;
  assert_ok(tb_from_array(a, 0, F64, 1, &n, NULL, cpu(), 0, NULL, NULL, &t));
  assert_ptr_equal(tb_tensor_data(t), a);
  a[0] = 100;
  const double *v = tb_tensor_data(t);
  assert_true(v[0] == 100.0);
  assert_true(v[1] == 2.0 && v[4] == 5.0);
  tb_tensor_release(t);
}

/* A 2x3 int array, shared and copied: both keep shape (2, 3). */
static void two_by_three_int_array_shared_and_copied(void **state) {
  (void)state;
  int32_t a[2][3] = {{1, 2, 3}, {4, 5, 6}};
  int64_t shape[2] = {2, 3};
  tb_tensor_t *shared, *copied;
  assert_ok(tb_from_array(a, 0, I32, 2, shape, NULL, cpu(), 0, NULL, NULL, &shared));
  assert_ok(tb_tensor_new(a, I32, 2, shape, NULL, NULL, TB_ORDER_C, 0, &copied));
  tb_tensor_t *both[2] = {shared, copied};
  for (int i = 0; i < 2; i++) {
    assert_int_equal(tb_tensor_ndim(both[i]), 2);
    assert_int_equal(tb_tensor_shape(both[i])[0], 2);
    assert_int_equal(tb_tensor_shape(both[i])[1], 3);
    assert_int_equal(tb_tensor_numel(both[i]), 6);
    int64_t idx[2] = {1, 2};
    void *p;
    assert_ok(tb_tensor_element_ptr(both[i], idx, &p));
    assert_int_equal(*(int32_t *)p, 6);
  }
  a[1][2] = 60;
  int64_t idx[2] = {1, 2};
  void *p;
  assert_ok(tb_tensor_element_ptr(shared, idx, &p));
  assert_int_equal(*(int32_t *)p, 60);
  assert_ok(tb_tensor_element_ptr(copied, idx, &p));
  assert_int_equal(*(int32_t *)p, 6);
  tb_tensor_release(shared);
  tb_tensor_release(copied);
}

/* torch.from_numpy keeps int16 and int32 as they are. */
static void shared_path_preserves_int16_and_int32(void **state) {
  (void)state;
  int16_t a16[3] = {-1, 2, 30000};
  int32_t a32[3] = {-1, 2, 2000000000};
  int64_t n = 3;
  tb_tensor_t *t16, *t32;
  assert_ok(tb_from_array(a16, 0, I16, 1, &n, NULL, cpu(), 0, NULL, NULL, &t16));
  assert_ok(tb_from_array(a32, 0, I32, 1, &n, NULL, cpu(), 0, NULL, NULL, &t32));
  assert_string_equal(tb_dtype_name(tb_tensor_dtype(t16)), "int16");
  assert_string_equal(tb_dtype_name(tb_tensor_dtype(t32)), "int32");
  assert_int_equal(((int16_t *)tb_tensor_data(t16))[2], 30000);
  assert_int_equal(((int32_t *)tb_tensor_data(t32))[2], 2000000000);
  tb_tensor_release(t16);
  tb_tensor_release(t32);
}

/* torch.Tensor(int64 2x3 array): a copy converted to float32. */
static void int64_matrix_copied_as_float32(void **state) {
  (void)state;
  int64_t a[2][3] = {{1, 2, 3}, {4, 5, -6}};
  int64_t shape[2] = {2, 3};
  DLDataType f32;
  assert_ok(tb_dtype_from_name("float32", &f32));
  tb_tensor_t *t;
  assert_ok(tb_tensor_new(a, I64, 2, shape, NULL, &f32, TB_ORDER_C, 0, &t));
  assert_string_equal(tb_dtype_name(tb_tensor_dtype(t)), "float32");
  const float expect[6] = {1, 2, 3, 4, 5, -6};
  assert_memory_equal(tb_tensor_data(t), expect, sizeof expect);
  tb_tensor_release(t);
}

/* Keeps a tensor alive for as long as an array wrapping its data lives. */
static void release_tensor(void *data, void *ctx) {
  (void)data;
  tb_tensor_release(ctx);
}

/* t.numpy(): an array over the tensor's memory that keeps the tensor alive. */
static void tensor_turned_back_into_an_array_view(void **state) {
  (void)state;
  float src[4] = {1, 2, 3, 4};
  int64_t n = 4;
  tb_tensor_t *t, *array;
  assert_ok(tb_tensor_new(src, F32, 1, &n, NULL, NULL, TB_ORDER_C, 0, &t));
  const DLTensor *dl = tb_tensor_dltensor(t);
  assert_ok(tb_from_array(dl->data, dl->byte_offset, dl->dtype, dl->ndim, dl->shape, dl->strides,
                          dl->device, 0, release_tensor, tb_tensor_retain(t), &array));
  float *a = tb_tensor_data(array);
  assert_ptr_equal(a, tb_tensor_data(t)); /* no copy */
  a[0] = 10.0f;                           /* seen through the tensor */
  assert_true(((float *)tb_tensor_data(t))[0] == 10.0f);
  ((float *)tb_tensor_data(t))[1] = 20.0f; /* and the other way round */
  assert_true(a[1] == 20.0f);
  tb_tensor_release(t); /* the array's reference keeps the memory alive */
  assert_true(a[3] == 4.0f);
  tb_tensor_release(array);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(copy_of_int64_vector_keeps_values_and_dtype),
      cmocka_unit_test(shared_float64_vector_sees_the_owners_write),
      cmocka_unit_test(two_by_three_int_array_shared_and_copied),
      cmocka_unit_test(shared_path_preserves_int16_and_int32),
      cmocka_unit_test(int64_matrix_copied_as_float32),
      cmocka_unit_test(tensor_turned_back_into_an_array_view),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
