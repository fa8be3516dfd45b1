/*
 * Statuses, the per-thread error message, the version, and the checks every
 * entry point makes on its arguments (sizes, ndim, devices, NULL outputs).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "support.h"

/* Copies the calling thread's message, which the next failure overwrites. */
static void save_error(char *buf, size_t size) { snprintf(buf, size, "%s", tb_last_error()); }

/* A pointer value no library call returns, to see that outputs stay put. */
static int sentinel_object;
#define SENTINEL ((tb_tensor_t *)(void *)&sentinel_object)

/* A call fails with TB_ERR_INVALID and leaves a message. */
#define EXPECT_INVALID(call)                  \
  do {                                        \
    tb_clear_error();                         \
    assert_status((call), TB_ERR_INVALID);    \
    assert_true(strlen(tb_last_error()) > 0); \
  } while (0)

static DLDevice device_of_type(int32_t type, int32_t id) {
  DLDevice d = {(DLDeviceType)type, id};
  return d;
}

/* ------------------------------------------------------------------------ */
/* Status names                                                             */
/* ------------------------------------------------------------------------ */

static void status_name_spells_every_status(void **state) {
  (void)state;
  static const struct {
    tb_status status;
    int value;
    const char *name;
  } rows[] = {
      {TB_OK, 0, "TB_OK"},
      {TB_ERR_INVALID, 1, "TB_ERR_INVALID"},
      {TB_ERR_NOMEM, 2, "TB_ERR_NOMEM"},
      {TB_ERR_OVERFLOW, 3, "TB_ERR_OVERFLOW"},
      {TB_ERR_DTYPE, 4, "TB_ERR_DTYPE"},
      {TB_ERR_DEVICE, 5, "TB_ERR_DEVICE"},
      {TB_ERR_LAYOUT, 6, "TB_ERR_LAYOUT"},
      {TB_ERR_READONLY, 7, "TB_ERR_READONLY"},
      {TB_ERR_UNSUPPORTED, 8, "TB_ERR_UNSUPPORTED"},
      {TB_ERR_VERSION, 9, "TB_ERR_VERSION"},
      {TB_ERR_INDEX, 10, "TB_ERR_INDEX"},
      {TB_ERR_COPY_REQUIRED, 11, "TB_ERR_COPY_REQUIRED"},
      {TB_ERR_IO, 12, "TB_ERR_IO"},
      {TB_ERR_FORMAT, 13, "TB_ERR_FORMAT"},
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    /* The enum values are part of the ABI. */
    assert_int_equal((int)rows[i].status, rows[i].value);
    assert_string_equal(tb_status_name(rows[i].status), rows[i].name);
  }
}

static void status_name_of_unknown_value_is_not_null(void **state) {
  (void)state;
  static const int unknown[] = {14, 15, 100, 255, 65536, INT32_MAX};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
    const char *name = tb_status_name((tb_status)unknown[i]);
    assert_non_null(name);
    assert_true(strlen(name) > 0);
    /* It is not the name of a real status. */
    for (int s = TB_OK; s <= TB_ERR_FORMAT; s++) {
      assert_string_not_equal(name, tb_status_name((tb_status)s));
    }
  }
}

/* ------------------------------------------------------------------------ */
/* The last-error message                                                   */
/* ------------------------------------------------------------------------ */

static void failing_call_sets_message_naming_field_and_value(void **state) {
  (void)state;
  float buf[8] = {0};
  tb_tensor_t *t = SENTINEL;
  tb_clear_error();
  assert_string_equal(tb_last_error(), "");
  assert_status(tb_from_array(buf, 0, F32, 2, (int64_t[]){2, -4}, NULL, cpu(), 0, NULL, NULL, &t),
                TB_ERR_INVALID);
  assert_error_mentions("shape[1] = -4");
  assert_ptr_equal(t, SENTINEL); /* outputs are written only on success */

  assert_status(tb_tensor_empty(F32, 3, (int64_t[]){1, 2, -7}, cpu(), TB_ORDER_C, &t),
                TB_ERR_INVALID);
  assert_error_mentions("shape[2] = -7");
  assert_ptr_equal(t, SENTINEL);
}

static void successful_call_leaves_message_untouched(void **state) {
  (void)state;
  char before[512];
  DLDataType d;
  assert_status(tb_dtype_from_name("no_such_dtype", &d), TB_ERR_DTYPE);
  save_error(before, sizeof before);
  const char *pointer = tb_last_error();
  assert_true(strlen(before) > 0);

  /* Raw checks, not assert_ok: its sentinel and restore would hide what
   * this test looks at (the very message and pointer from before). */
  tb_tensor_t *t = NULL, *v = NULL;
  assert_raw_ok(tb_tensor_zeros(F32, 2, (int64_t[]){2, 3}, cpu(), TB_ORDER_C, &t));
  assert_raw_ok(tb_tensor_transpose(t, 0, 1, &v));
  assert_raw_ok(tb_dtype_from_name("float64", &d));
  assert_raw_ok(tb_tensor_copy_into(t, t, 0));
  assert_string_equal(tb_last_error(), before);
  /* The pointer stays valid and unchanged until the next failure. */
  assert_ptr_equal(tb_last_error(), pointer);
  assert_string_equal(pointer, before);
  tb_tensor_release(v);
  tb_tensor_release(t);
  assert_string_equal(tb_last_error(), before);
}

/* One of each kind of successful call, where some of them ask a backend a
 * question whose answer may be a failure the library then recovers from
 * (where a pointer lives, whether a device exists, whether a strided copy
 * is taken): none may leave a message. The message from an earlier failure
 * must come out exactly as it went in. */
static int successes_of_every_kind(void *arg) {
  (void)arg;
  int failures = 0;
  char at_start[512];
  save_error(at_start, sizeof at_start);
#define RAW_OK(call)                                                                    \
  do {                                                                                  \
    tb_status st_ = (call);                                                             \
    if (st_ != TB_OK) {                                                                 \
      print_error("%s returned %s: %s\n", #call, tb_status_name(st_), tb_last_error()); \
      failures++;                                                                       \
    }                                                                                   \
  } while (0)
  float buf[6] = {0, 1, 2, 3, 4, 5};
  int64_t shape[2] = {2, 3};
  tb_tensor_t *t = NULL, *v = NULL, *c = NULL, *back = NULL, *pinned = NULL;
  RAW_OK(tb_from_array(buf, 0, F32, 2, shape, NULL, cpu(), 0, NULL, NULL, &t));
  /* Pinned and managed memory: host memory, with or without a driver. */
  RAW_OK(tb_from_array(buf, 0, F32, 2, shape, NULL, device_of_type(TB_DL_CUDA_HOST, 0), 0, NULL,
                       NULL, &pinned));
  RAW_OK(tb_tensor_slice(t, 1, INT64_MAX, INT64_MIN, -1, &v));
  RAW_OK(tb_tensor_to(pinned, cpu(), NULL, TB_ORDER_F, 0, &c));
  RAW_OK(tb_tensor_copy_into(c, v, 0));
  DLManagedTensorVersioned *m = NULL;
  RAW_OK(tb_to_dlpack_versioned(pinned, NULL, &m));
  RAW_OK(tb_from_dlpack_versioned(m, NULL, &back));
  tb_tensor_release(back);
  m = NULL;
  RAW_OK(tb_to_dlpack_versioned(v, NULL, &m));
  m->dl_tensor.device = device_of_type(TB_DL_CUDA_MANAGED, 0);
  RAW_OK(tb_from_dlpack_versioned(m, NULL, &back));
  tb_tensor_release(back);
  DLManagedTensor *l = NULL;
  RAW_OK(tb_to_dlpack(v, NULL, &l));
  RAW_OK(tb_from_dlpack(l, NULL, &back));
  tb_tensor_release(v);
  RAW_OK(tb_from_dltensor(tb_tensor_dltensor(pinned), TB_FLAG_READONLY, NULL, &v));
  tb_tensor_release(v);
  for (int32_t type = -1; type < 32; type++) (void)tb_device_count(type);
  DLDataType d;
  RAW_OK(tb_dtype_from_name("cdouble", &d));
  RAW_OK(tb_dtype_check(d));
  tb_tensor_release(back);
  tb_tensor_release(c);
  tb_tensor_release(pinned);
  tb_tensor_release(t);
#undef RAW_OK
  if (strcmp(tb_last_error(), at_start) != 0) {
    print_error("successful calls changed the message from \"%s\" to \"%s\"\n", at_start,
                tb_last_error());
    failures++;
  }
  return failures;
}

static void successful_calls_of_every_kind_leave_the_message(void **state) {
  (void)state;
  DLDataType d;
  assert_status(tb_dtype_from_name("a_failure_before", &d), TB_ERR_DTYPE);
  char before[512];
  save_error(before, sizeof before);
  assert_int_equal(successes_of_every_kind(NULL), 0);
  assert_string_equal(tb_last_error(), before);
  /* And from a fresh thread, whose message starts empty and must stay so;
   * this thread's is not touched either. */
  test_thread thread;
  test_thread_start(&thread, successes_of_every_kind, NULL);
  assert_int_equal(test_thread_join(&thread), 0);
  assert_string_equal(tb_last_error(), before);
  tb_clear_error();
  assert_int_equal(successes_of_every_kind(NULL), 0);
  assert_string_equal(tb_last_error(), "");
}

static void next_failure_replaces_the_message(void **state) {
  (void)state;
  DLDataType d;
  assert_status(tb_dtype_from_name("first_bad_name", &d), TB_ERR_DTYPE);
  assert_error_mentions("first_bad_name");
  assert_status(tb_dtype_from_name("second_bad_name", &d), TB_ERR_DTYPE);
  assert_error_mentions("second_bad_name");
  assert_null(strstr(tb_last_error(), "first_bad_name"));
}

static void clear_error_resets_the_message(void **state) {
  (void)state;
  DLDataType d;
  assert_status(tb_dtype_from_name("nope", &d), TB_ERR_DTYPE);
  assert_true(strlen(tb_last_error()) > 0);
  tb_clear_error();
  assert_non_null(tb_last_error());
  assert_string_equal(tb_last_error(), "");
  tb_clear_error(); /* clearing twice is fine */
  assert_string_equal(tb_last_error(), "");
}

static void long_input_in_a_message_stays_a_bounded_string(void **state) {
  (void)state;
  char name[4096];
  memset(name, 'x', sizeof name - 1);
  name[sizeof name - 1] = '\0';
  DLDataType d;
  assert_status(tb_dtype_from_name(name, &d), TB_ERR_DTYPE);
  size_t len = strlen(tb_last_error());
  assert_true(len > 0);
  assert_true(len < sizeof name);
  assert_error_mentions("xxxxxxxx");
}

/* What a thread saw of its own message. */
typedef struct thread_report {
  char before[512];
  char after[512];
  char name[64];
  tb_status status;
  int mismatches;
} thread_report;

static int fail_on_another_thread(void *arg) {
  thread_report *r = arg;
  save_error(r->before, sizeof r->before);
  DLDataType d;
  r->status = tb_dtype_from_name(r->name, &d);
  save_error(r->after, sizeof r->after);
  tb_clear_error(); /* clears this thread's message only */
  return 0;
}

static void message_is_per_thread(void **state) {
  (void)state;
  float buf[8] = {0};
  tb_tensor_t *t = NULL;
  assert_status(tb_from_array(buf, 0, F32, 2, (int64_t[]){2, -4}, NULL, cpu(), 0, NULL, NULL, &t),
                TB_ERR_INVALID);
  char mine[512];
  save_error(mine, sizeof mine);

  thread_report report = {.name = "bogus_dtype_on_thread"};
  test_thread thread;
  test_thread_start(&thread, fail_on_another_thread, &report);
  (void)test_thread_join(&thread);

  /* The other thread started with an empty message and saw only its own. */
  assert_string_equal(report.before, "");
  assert_int_equal(report.status, TB_ERR_DTYPE);
  assert_non_null(strstr(report.after, "bogus_dtype_on_thread"));
  assert_null(strstr(report.after, "shape[1]"));
  /* This thread's message survived the other's failure and its clear. */
  assert_string_equal(tb_last_error(), mine);
  assert_error_mentions("shape[1] = -4");
}

static int fail_repeatedly(void *arg) {
  thread_report *r = arg;
  for (int i = 0; i < 500; i++) {
    char name[96];
    snprintf(name, sizeof name, "%s_%d", r->name, i);
    DLDataType d;
    if (tb_dtype_from_name(name, &d) != TB_ERR_DTYPE || strstr(tb_last_error(), name) == NULL) {
      r->mismatches++;
    }
  }
  return 0;
}

static void concurrent_failures_keep_separate_messages(void **state) {
  (void)state;
  enum { THREADS = 4 };
  thread_report reports[THREADS];
  test_thread threads[THREADS];
  memset(reports, 0, sizeof reports);
  for (int i = 0; i < THREADS; i++) {
    snprintf(reports[i].name, sizeof reports[i].name, "thread%d_dtype", i);
    test_thread_start(&threads[i], fail_repeatedly, &reports[i]);
  }
  for (int i = 0; i < THREADS; i++) (void)test_thread_join(&threads[i]);
  for (int i = 0; i < THREADS; i++) assert_int_equal(reports[i].mismatches, 0);
}

/* ------------------------------------------------------------------------ */
/* Version                                                                  */
/* ------------------------------------------------------------------------ */

static void version_matches_the_header(void **state) {
  (void)state;
  assert_non_null(tb_version());
  assert_string_equal(tb_version(), TB_VERSION_STRING);
  assert_int_equal(tb_version_number(),
                   TB_VERSION_MAJOR * 10000 + TB_VERSION_MINOR * 100 + TB_VERSION_PATCH);
  int major = -1, minor = -1, patch = -1;
  char rest = 0;
  assert_int_equal(sscanf(tb_version(), "%d.%d.%d%c", &major, &minor, &patch, &rest), 3);
  assert_int_equal(major, TB_VERSION_MAJOR);
  assert_int_equal(minor, TB_VERSION_MINOR);
  assert_int_equal(patch, TB_VERSION_PATCH);
  assert_int_equal(tb_version_number(), major * 10000 + minor * 100 + patch);
}

/* ------------------------------------------------------------------------ */
/* Size checks                                                              */
/* ------------------------------------------------------------------------ */

static void element_count_overflow_is_refused(void **state) {
  (void)state;
  const int64_t shape[2] = {INT64_MAX / 2, 4};
  float buf[4] = {0};
  counted c = {0};
  tb_tensor_t *t = SENTINEL;
  assert_status(tb_tensor_empty(F32, 2, shape, cpu(), TB_ORDER_C, &t), TB_ERR_OVERFLOW);
  assert_error_mentions("overflow");
  assert_status(tb_tensor_empty(F32, 2, shape, cpu(), TB_ORDER_F, &t), TB_ERR_OVERFLOW);
  assert_status(tb_tensor_zeros(F32, 2, shape, cpu(), TB_ORDER_C, &t), TB_ERR_OVERFLOW);
  assert_status(tb_from_array(buf, 0, F32, 2, shape, NULL, cpu(), 0, counting_deleter, &c, &t),
                TB_ERR_OVERFLOW);
  assert_error_mentions("overflow");
  assert_ptr_equal(t, SENTINEL);
  /* On failure the caller keeps its memory: no deleter call. */
  assert_int_equal(c.calls, 0);
}

static void byte_size_overflow_is_refused(void **state) {
  (void)state;
  tb_tensor_t *t = SENTINEL;
  /* The element count fits in int64, its bytes do not. */
  assert_status(tb_tensor_empty(F32, 1, (int64_t[]){INT64_MAX / 4 + 1}, cpu(), TB_ORDER_C, &t),
                TB_ERR_OVERFLOW);
  assert_status(tb_tensor_empty(dt(TB_DL_COMPLEX, 128), 2, (int64_t[]){INT64_MAX / 32 + 1, 2}, cpu(),
                                TB_ORDER_C, &t),
                TB_ERR_OVERFLOW);
  assert_ptr_equal(t, SENTINEL);
}

static void stride_offset_overflow_is_refused(void **state) {
  (void)state;
  float buf[4] = {0};
  tb_tensor_t *t = SENTINEL;
  assert_status(tb_from_array(buf, 0, F32, 2, (int64_t[]){2, 2}, (int64_t[]){INT64_MAX, 1}, cpu(),
                              0, NULL, NULL, &t),
                TB_ERR_OVERFLOW);
  assert_status(tb_from_array(buf, 0, F32, 1, (int64_t[]){2}, (int64_t[]){INT64_MIN}, cpu(), 0,
                              NULL, NULL, &t),
                TB_ERR_OVERFLOW);
  assert_status(tb_from_array(buf, (uint64_t)INT64_MAX + 1, F32, 1, (int64_t[]){1}, NULL, cpu(), 0,
                              NULL, NULL, &t),
                TB_ERR_OVERFLOW);
  assert_error_mentions("byte_offset");
  assert_ptr_equal(t, SENTINEL);
}

static void ndim_above_the_maximum_is_invalid(void **state) {
  (void)state;
  int64_t shape[TB_MAX_NDIM + 1];
  for (int i = 0; i <= TB_MAX_NDIM; i++) shape[i] = 1;
  float buf[1] = {0};
  tb_tensor_t *t = SENTINEL;
  assert_int_equal(TB_MAX_NDIM, 64);
  assert_status(tb_tensor_empty(F32, 65, shape, cpu(), TB_ORDER_C, &t), TB_ERR_INVALID);
  assert_error_mentions("ndim = 65");
  assert_status(tb_from_array(buf, 0, F32, 65, shape, NULL, cpu(), 0, NULL, NULL, &t),
                TB_ERR_INVALID);
  assert_error_mentions("ndim = 65");
  assert_status(tb_tensor_empty(F32, -1, shape, cpu(), TB_ORDER_C, &t), TB_ERR_INVALID);
  assert_error_mentions("ndim = -1");
  assert_ptr_equal(t, SENTINEL);

  /* 64 itself is allowed, and nothing more can be added to it. */
  assert_ok(tb_tensor_empty(F32, 64, shape, cpu(), TB_ORDER_C, &t));
  assert_int_equal(tb_tensor_ndim(t), 64);
  assert_int_equal(tb_tensor_numel(t), 1);
  tb_tensor_t *u = NULL;
  assert_status(tb_tensor_unsqueeze(t, 0, &u), TB_ERR_INVALID);
  assert_status(tb_tensor_reshape(t, 65, shape, &u), TB_ERR_INVALID);
  assert_null(u);
  tb_tensor_release(t);
}

static void shape_null_with_positive_ndim_is_invalid(void **state) {
  (void)state;
  float buf[1] = {0};
  tb_tensor_t *t = SENTINEL;
  assert_status(tb_tensor_empty(F32, 2, NULL, cpu(), TB_ORDER_C, &t), TB_ERR_INVALID);
  assert_error_mentions("shape");
  assert_status(tb_from_array(buf, 0, F32, 1, NULL, NULL, cpu(), 0, NULL, NULL, &t),
                TB_ERR_INVALID);
  assert_error_mentions("shape");
  assert_ptr_equal(t, SENTINEL);
}

/* ------------------------------------------------------------------------ */
/* Devices, flags and data                                                  */
/* ------------------------------------------------------------------------ */

static void unknown_device_type_is_a_device_error(void **state) {
  (void)state;
  float buf[4] = {0};
  counted c = {0};
  tb_tensor_t *t = SENTINEL;
  assert_status(tb_from_array(buf, 0, F32, 1, (int64_t[]){4}, NULL, device_of_type(99, 0), 0,
                              counting_deleter, &c, &t),
                TB_ERR_DEVICE);
  assert_error_mentions("99");
  assert_status(tb_from_array(buf, 0, F32, 1, (int64_t[]){4}, NULL, device_of_type(0, 0), 0, NULL,
                              NULL, &t),
                TB_ERR_DEVICE);
  assert_status(tb_from_array(buf, 0, F32, 1, (int64_t[]){4}, NULL, device_of_type(kDLCPU, -1), 0,
                              NULL, NULL, &t),
                TB_ERR_DEVICE);
  assert_error_mentions("-1");
  assert_status(tb_tensor_empty(F32, 1, (int64_t[]){4}, device_of_type(99, 0), TB_ORDER_C, &t),
                TB_ERR_DEVICE);
  assert_error_mentions("99");
  assert_ptr_equal(t, SENTINEL);
  assert_int_equal(c.calls, 0);
}

static void unknown_flags_are_invalid(void **state) {
  (void)state;
  float buf[4] = {0};
  tb_tensor_t *t = SENTINEL;
  assert_status(tb_from_array(buf, 0, F32, 1, (int64_t[]){4}, NULL, cpu(), 0x8u, NULL, NULL, &t),
                TB_ERR_INVALID);
  assert_error_mentions("flags");
  assert_ptr_equal(t, SENTINEL);

  tb_tensor_t *a = NULL, *b = NULL;
  assert_ok(tb_tensor_zeros(F32, 1, (int64_t[]){4}, cpu(), TB_ORDER_C, &a));
  assert_ok(tb_tensor_zeros(F32, 1, (int64_t[]){4}, cpu(), TB_ORDER_C, &b));
  assert_status(tb_tensor_copy_into(a, b, 0x80u), TB_ERR_INVALID);
  assert_error_mentions("cast_flags");
  tb_tensor_release(b);
  tb_tensor_release(a);
}

static void null_data_with_elements_is_invalid(void **state) {
  (void)state;
  counted c = {0};
  tb_tensor_t *t = SENTINEL;
  assert_status(tb_from_array(NULL, 0, F32, 1, (int64_t[]){3}, NULL, cpu(), 0, counting_deleter,
                              &c, &t),
                TB_ERR_INVALID);
  assert_error_mentions("data");
  assert_ptr_equal(t, SENTINEL);
  assert_int_equal(c.calls, 0);
}

/* ------------------------------------------------------------------------ */
/* NULL outputs and inputs                                                  */
/* ------------------------------------------------------------------------ */

static void null_out_pointers_are_invalid(void **state) {
  (void)state;
  float buf[6] = {0};
  counted c = {0};
  tb_tensor_t *x = NULL;
  assert_ok(tb_tensor_zeros(F32, 2, (int64_t[]){2, 3}, cpu(), TB_ORDER_C, &x));
  const int64_t shape[2] = {2, 3};

  EXPECT_INVALID(tb_from_array(buf, 0, F32, 2, shape, NULL, cpu(), 0, counting_deleter, &c, NULL));
  EXPECT_INVALID(tb_tensor_empty(F32, 2, shape, cpu(), TB_ORDER_C, NULL));
  EXPECT_INVALID(tb_tensor_copy(x, NULL, TB_ORDER_C, 0, NULL));
  EXPECT_INVALID(tb_tensor_slice(x, 0, 0, 1, 1, NULL));
  EXPECT_INVALID(tb_tensor_select(x, 0, 0, NULL));
  EXPECT_INVALID(tb_tensor_permute(x, (int32_t[]){1, 0}, NULL));
  EXPECT_INVALID(tb_tensor_transpose(x, 0, 1, NULL));
  EXPECT_INVALID(tb_tensor_reshape(x, 1, (int64_t[]){6}, NULL));
  EXPECT_INVALID(tb_tensor_contiguous(x, TB_ORDER_C, NULL));
  EXPECT_INVALID(tb_tensor_squeeze_all(x, NULL));
  EXPECT_INVALID(tb_tensor_unsqueeze(x, 0, NULL));
  EXPECT_INVALID(tb_tensor_expand(x, 2, shape, NULL));
  EXPECT_INVALID(tb_tensor_element_ptr(x, (int64_t[]){0, 0}, NULL));
  EXPECT_INVALID(tb_dtype_from_name("float32", NULL));
  assert_error_mentions("out");
  assert_int_equal(c.calls, 0);
  tb_tensor_release(x);
}

/* tb_tensor_zeros and tb_tensor_full make the tensor through tb_tensor_empty
 * into a local and must still refuse a NULL out before writing through it. */
static void zeros_and_full_with_null_out_are_invalid(void **state) {
  (void)state;
  const int64_t shape[2] = {2, 3};
  const float one = 1.0f;
  EXPECT_INVALID(tb_tensor_zeros(F32, 2, shape, cpu(), TB_ORDER_C, NULL));
  EXPECT_INVALID(tb_tensor_full(F32, 2, shape, cpu(), TB_ORDER_C, &one, F32, NULL));
  EXPECT_INVALID(tb_tensor_zeros(F32, 0, NULL, cpu(), TB_ORDER_F, NULL));
}

static void null_inputs_are_invalid(void **state) {
  (void)state;
  tb_tensor_t *t = SENTINEL;
  void *p = NULL;
  float one = 1.0f;
  EXPECT_INVALID(tb_tensor_slice(NULL, 0, 0, 1, 1, &t));
  EXPECT_INVALID(tb_tensor_select(NULL, 0, 0, &t));
  EXPECT_INVALID(tb_tensor_permute(NULL, (int32_t[]){0}, &t));
  EXPECT_INVALID(tb_tensor_reshape(NULL, 1, (int64_t[]){1}, &t));
  EXPECT_INVALID(tb_tensor_contiguous(NULL, TB_ORDER_C, &t));
  EXPECT_INVALID(tb_tensor_copy(NULL, NULL, TB_ORDER_C, 0, &t));
  EXPECT_INVALID(tb_tensor_copy_into(NULL, NULL, 0));
  EXPECT_INVALID(tb_tensor_fill(NULL, &one, F32));
  EXPECT_INVALID(tb_tensor_element_ptr(NULL, NULL, &p));
  EXPECT_INVALID(tb_dtype_from_name(NULL, &(DLDataType){0, 0, 0}));
  assert_ptr_equal(t, SENTINEL);
  assert_null(p);

  tb_tensor_t *x = NULL;
  assert_ok(tb_tensor_zeros(F32, 1, (int64_t[]){2}, cpu(), TB_ORDER_C, &x));
  EXPECT_INVALID(tb_tensor_fill(x, NULL, F32));
  EXPECT_INVALID(tb_tensor_permute(x, NULL, &t));
  EXPECT_INVALID(tb_tensor_element_ptr(x, NULL, &p));
  EXPECT_INVALID(tb_tensor_reshape(x, 1, NULL, &t));
  EXPECT_INVALID(tb_tensor_expand(x, 1, NULL, &t));
  assert_ptr_equal(t, SENTINEL);
  assert_null(p);
  tb_tensor_release(x);
  /* Releasing NULL is a no-op. */
  tb_tensor_release(NULL);
}

static void allocator_without_functions_is_invalid(void **state) {
  (void)state;
  tb_allocator half = {NULL, NULL, NULL};
  tb_allocator before;
  tb_get_allocator(&before);
  EXPECT_INVALID(tb_set_allocator(&half));
  assert_error_mentions("alloc");
  /* The allocator in place did not change. */
  tb_allocator after;
  tb_get_allocator(&after);
  assert_ptr_equal(after.alloc, before.alloc);
  assert_ptr_equal(after.free, before.free);
  assert_ptr_equal(after.user_data, before.user_data);
}

/* Every allocation of tb_tensor_empty failing in turn: TB_ERR_NOMEM with a
 * message, and nothing left allocated. */
static void allocation_failure_is_nomem_with_a_message_and_no_leak(void **state) {
  (void)state;
  test_allocator a;
  test_allocator_install(&a, -1);
  tb_tensor_t *t = NULL;
  assert_ok(tb_tensor_empty(F32, 2, (int64_t[]){8, 8}, cpu(), TB_ORDER_C, &t));
  long needed = a.calls;
  tb_tensor_release(t);
  test_allocator_remove();
  assert_true(needed >= 1);

  for (long fail_at = 0; fail_at < needed; fail_at++) {
    test_allocator_install(&a, fail_at);
    t = SENTINEL;
    tb_clear_error();
    assert_status(tb_tensor_empty(F32, 2, (int64_t[]){8, 8}, cpu(), TB_ORDER_C, &t), TB_ERR_NOMEM);
    assert_true(strlen(tb_last_error()) > 0);
    assert_ptr_equal(t, SENTINEL);
    test_allocator_remove();
    assert_int_equal(a.allocs, a.frees);
    assert_int_equal(a.live_bytes, 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(status_name_spells_every_status),
      cmocka_unit_test(status_name_of_unknown_value_is_not_null),
      cmocka_unit_test(failing_call_sets_message_naming_field_and_value),
      cmocka_unit_test(successful_call_leaves_message_untouched),
      cmocka_unit_test(successful_calls_of_every_kind_leave_the_message),
      cmocka_unit_test(next_failure_replaces_the_message),
      cmocka_unit_test(clear_error_resets_the_message),
      cmocka_unit_test(long_input_in_a_message_stays_a_bounded_string),
      cmocka_unit_test(message_is_per_thread),
      cmocka_unit_test(concurrent_failures_keep_separate_messages),
      cmocka_unit_test(version_matches_the_header),
      cmocka_unit_test(element_count_overflow_is_refused),
      cmocka_unit_test(byte_size_overflow_is_refused),
      cmocka_unit_test(stride_offset_overflow_is_refused),
      cmocka_unit_test(ndim_above_the_maximum_is_invalid),
      cmocka_unit_test(shape_null_with_positive_ndim_is_invalid),
      cmocka_unit_test(unknown_device_type_is_a_device_error),
      cmocka_unit_test(unknown_flags_are_invalid),
      cmocka_unit_test(null_data_with_elements_is_invalid),
      cmocka_unit_test(null_out_pointers_are_invalid),
      cmocka_unit_test(null_inputs_are_invalid),
      cmocka_unit_test(allocator_without_functions_is_invalid),
      cmocka_unit_test(allocation_failure_is_nomem_with_a_message_and_no_leak),
      /* Last: should it dereference NULL, sanitizers end the process here. */
      cmocka_unit_test(zeros_and_full_with_null_out_are_invalid),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
