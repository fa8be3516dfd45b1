/*
 * The dtype table: names, (code, bits) pairs, sizes, aliases, and the errors
 * for everything the table does not know.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "support.h"

/* The 26 dtypes of DLPack 1.3 this library knows, written out independently
 * of the library's own table. */
typedef struct dtype_row {
  const char *name;
  uint8_t code;
  uint8_t bits;
  size_t itemsize;
} dtype_row;

static const dtype_row known[] = {
    {"bool", TB_DL_BOOL, 8, 1},
    {"int8", TB_DL_INT, 8, 1},
    {"int16", TB_DL_INT, 16, 2},
    {"int32", TB_DL_INT, 32, 4},
    {"int64", TB_DL_INT, 64, 8},
    {"uint8", TB_DL_UINT, 8, 1},
    {"uint16", TB_DL_UINT, 16, 2},
    {"uint32", TB_DL_UINT, 32, 4},
    {"uint64", TB_DL_UINT, 64, 8},
    {"float16", TB_DL_FLOAT, 16, 2},
    {"bfloat16", TB_DL_BFLOAT, 16, 2},
    {"float32", TB_DL_FLOAT, 32, 4},
    {"float64", TB_DL_FLOAT, 64, 8},
    {"complex64", TB_DL_COMPLEX, 64, 8},
    {"complex128", TB_DL_COMPLEX, 128, 16},
    {"float8_e3m4", TB_DL_FLOAT8_E3M4, 8, 1},
    {"float8_e4m3", TB_DL_FLOAT8_E4M3, 8, 1},
    {"float8_e4m3b11fnuz", TB_DL_FLOAT8_E4M3B11FNUZ, 8, 1},
    {"float8_e4m3fn", TB_DL_FLOAT8_E4M3FN, 8, 1},
    {"float8_e4m3fnuz", TB_DL_FLOAT8_E4M3FNUZ, 8, 1},
    {"float8_e5m2", TB_DL_FLOAT8_E5M2, 8, 1},
    {"float8_e5m2fnuz", TB_DL_FLOAT8_E5M2FNUZ, 8, 1},
    {"float8_e8m0fnu", TB_DL_FLOAT8_E8M0FNU, 8, 1},
    {"float6_e2m3fn", TB_DL_FLOAT6_E2M3FN, 6, 0},
    {"float6_e3m2fn", TB_DL_FLOAT6_E3M2FN, 6, 0},
    {"float4_e2m1fn", TB_DL_FLOAT4_E2M1FN, 4, 0},
};

#define KNOWN_COUNT (sizeof known / sizeof known[0])

static DLDataType with_lanes(uint8_t code, uint8_t bits, uint16_t lanes) {
  DLDataType d = {code, bits, lanes};
  return d;
}

static void table_has_the_26_dtypes_of_dlpack_1_3(void **state) {
  (void)state;
  assert_int_equal(KNOWN_COUNT, 26);
}

static void every_name_parses_to_its_code_and_bits(void **state) {
  (void)state;
  for (size_t i = 0; i < KNOWN_COUNT; i++) {
    DLDataType d = with_lanes(0xff, 0xff, 0xffff);
    assert_ok(tb_dtype_from_name(known[i].name, &d));
    if (d.code != known[i].code || d.bits != known[i].bits) {
      print_error("%s parsed to (code %u, bits %u)\n", known[i].name, (unsigned)d.code,
                  (unsigned)d.bits);
    }
    assert_int_equal(d.code, known[i].code);
    assert_int_equal(d.bits, known[i].bits);
    assert_int_equal(d.lanes, 1);
  }
}

static void every_code_and_bits_names_back_to_its_name(void **state) {
  (void)state;
  for (size_t i = 0; i < KNOWN_COUNT; i++) {
    DLDataType d = tb_dtype(known[i].code, known[i].bits);
    assert_int_equal(d.lanes, 1);
    const char *name = tb_dtype_name(d);
    assert_non_null(name);
    assert_string_equal(name, known[i].name);
    assert_ok(tb_dtype_check(d));
    /* name -> dtype -> name is the identity. */
    DLDataType back;
    assert_ok(tb_dtype_from_name(name, &back));
    assert_true(tb_dtype_equal(back, d));
  }
}

static void itemsize_is_bytes_per_element_and_zero_when_packed(void **state) {
  (void)state;
  for (size_t i = 0; i < KNOWN_COUNT; i++) {
    DLDataType d = tb_dtype(known[i].code, known[i].bits);
    if (tb_dtype_itemsize(d) != known[i].itemsize) print_error("%s\n", known[i].name);
    assert_int_equal(tb_dtype_itemsize(d), known[i].itemsize);
    /* Whole-byte dtypes are bits / 8 bytes. */
    if (known[i].bits % 8 == 0) assert_int_equal(tb_dtype_itemsize(d), known[i].bits / 8);
  }
  assert_int_equal(tb_dtype_itemsize(dt(TB_DL_FLOAT6_E2M3FN, 6)), 0);
  assert_int_equal(tb_dtype_itemsize(dt(TB_DL_FLOAT4_E2M1FN, 4)), 0);
}

static void no_other_code_and_bits_pair_is_known(void **state) {
  (void)state;
  size_t found = 0;
  for (unsigned code = 0; code < 256; code++) {
    for (unsigned bits = 0; bits < 256; bits++) {
      DLDataType d = tb_dtype((uint8_t)code, (uint8_t)bits);
      const char *name = tb_dtype_name(d);
      if (name == NULL) {
        assert_int_equal(tb_dtype_itemsize(d), 0);
        continue;
      }
      found++;
      bool listed = false;
      for (size_t i = 0; i < KNOWN_COUNT; i++) {
        listed = listed || (known[i].code == code && known[i].bits == bits &&
                            strcmp(known[i].name, name) == 0);
      }
      if (!listed) print_error("unexpected dtype %s = (code %u, bits %u)\n", name, code, bits);
      assert_true(listed);
    }
  }
  assert_int_equal(found, KNOWN_COUNT);
}

static void aliases_parse_to_their_canonical_dtype(void **state) {
  (void)state;
  static const struct {
    const char *alias;
    const char *name;
  } aliases[] = {
      {"float", "float32"},     {"double", "float64"},    {"half", "float16"},
      {"long", "int64"},        {"int", "int32"},         {"cfloat", "complex64"},
      {"cdouble", "complex128"}, {"complex", "complex128"}, {"bool_", "bool"},
  };
  for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
    DLDataType a, c;
    assert_ok(tb_dtype_from_name(aliases[i].alias, &a));
    assert_ok(tb_dtype_from_name(aliases[i].name, &c));
    assert_true(tb_dtype_equal(a, c));
    /* The name of an alias's dtype is the canonical one. */
    assert_string_equal(tb_dtype_name(a), aliases[i].name);
  }
  DLDataType d;
  assert_ok(tb_dtype_from_name("float", &d));
  assert_int_equal(d.code, kDLFloat);
  assert_int_equal(d.bits, 32);
  assert_ok(tb_dtype_from_name("long", &d));
  assert_int_equal(d.code, kDLInt);
  assert_int_equal(d.bits, 64);
}

static void unknown_name_is_a_dtype_error_naming_it(void **state) {
  (void)state;
  static const char *const bad[] = {"float33", "Float32", "float32 ", "int128", "", "bfloat",
                                    "float8", "complex32", "uint"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    DLDataType d = with_lanes(7, 7, 7);
    tb_clear_error();
    assert_status(tb_dtype_from_name(bad[i], &d), TB_ERR_DTYPE);
    assert_true(strlen(tb_last_error()) > 0);
    if (bad[i][0] != '\0') assert_error_mentions(bad[i]);
    /* The output is written only on success. */
    assert_int_equal(d.code, 7);
    assert_int_equal(d.bits, 7);
    assert_int_equal(d.lanes, 7);
  }
}

static void from_name_with_null_arguments_is_invalid(void **state) {
  (void)state;
  DLDataType d;
  assert_status(tb_dtype_from_name(NULL, &d), TB_ERR_INVALID);
  assert_error_mentions("name");
  assert_status(tb_dtype_from_name("float32", NULL), TB_ERR_INVALID);
  assert_error_mentions("out");
}

static void check_rejects_lanes_other_than_one_naming_the_field(void **state) {
  (void)state;
  static const uint16_t lanes[] = {0, 2, 4, 16, 65535};
  for (size_t i = 0; i < sizeof lanes / sizeof lanes[0]; i++) {
    DLDataType d = with_lanes(kDLFloat, 32, lanes[i]);
    tb_clear_error();
    assert_status(tb_dtype_check(d), TB_ERR_DTYPE);
    assert_error_mentions("lanes");
    char value[16];
    snprintf(value, sizeof value, "%u", (unsigned)lanes[i]);
    assert_error_mentions(value);
    /* Vector dtypes are unknown everywhere else too. */
    assert_null(tb_dtype_name(d));
    assert_int_equal(tb_dtype_itemsize(d), 0);
  }
}

static void check_rejects_unknown_code_and_bits_naming_the_fields(void **state) {
  (void)state;
  static const struct {
    uint8_t code, bits;
  } bad[] = {
      {kDLFloat, 24}, {kDLFloat, 8}, {kDLInt, 1}, {kDLUInt, 128}, {kDLOpaqueHandle, 64},
      {kDLBfloat, 32}, {TB_DL_COMPLEX, 32}, {TB_DL_BOOL, 1}, {TB_DL_FLOAT8_E5M2, 16},
      {TB_DL_FLOAT4_E2M1FN, 8}, {18, 8}, {200, 32},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    DLDataType d = tb_dtype(bad[i].code, bad[i].bits);
    tb_clear_error();
    assert_status(tb_dtype_check(d), TB_ERR_DTYPE);
    char field[32];
    snprintf(field, sizeof field, "code = %u", (unsigned)bad[i].code);
    assert_error_mentions(field);
    snprintf(field, sizeof field, "bits = %u", (unsigned)bad[i].bits);
    assert_error_mentions(field);
    assert_null(tb_dtype_name(d));
    assert_int_equal(tb_dtype_itemsize(d), 0);
  }
}

static void unknown_dtype_is_refused_when_making_a_tensor(void **state) {
  (void)state;
  tb_tensor_t *t = NULL;
  assert_status(tb_tensor_empty(dt(kDLFloat, 24), 1, (int64_t[]){4}, cpu(), TB_ORDER_C, &t),
                TB_ERR_DTYPE);
  assert_error_mentions("bits = 24");
  assert_status(tb_tensor_empty(with_lanes(kDLFloat, 32, 4), 1, (int64_t[]){4}, cpu(), TB_ORDER_C,
                                &t),
                TB_ERR_DTYPE);
  assert_error_mentions("lanes");
  assert_null(t);
}

static void dtype_equal_compares_every_field(void **state) {
  (void)state;
  DLDataType a = with_lanes(kDLFloat, 32, 1);
  assert_true(tb_dtype_equal(a, a));
  assert_true(tb_dtype_equal(a, F32));
  assert_false(tb_dtype_equal(a, with_lanes(kDLInt, 32, 1)));
  assert_false(tb_dtype_equal(a, with_lanes(kDLFloat, 64, 1)));
  assert_false(tb_dtype_equal(a, with_lanes(kDLFloat, 32, 2)));
  /* Equality is by fields, whether or not the table knows the dtype. */
  assert_true(tb_dtype_equal(with_lanes(99, 3, 7), with_lanes(99, 3, 7)));
  assert_false(tb_dtype_equal(with_lanes(99, 3, 7), with_lanes(99, 3, 8)));
  /* float16 and bfloat16 share bits, not code. */
  assert_false(tb_dtype_equal(dt(kDLFloat, 16), dt(kDLBfloat, 16)));
}

static void tb_dtype_builds_single_lane_dtypes(void **state) {
  (void)state;
  DLDataType d = tb_dtype(kDLUInt, 16);
  assert_int_equal(d.code, kDLUInt);
  assert_int_equal(d.bits, 16);
  assert_int_equal(d.lanes, 1);
  assert_string_equal(tb_dtype_name(d), "uint16");
  /* No table lookup: unknown pairs are built as asked. */
  d = tb_dtype(77, 5);
  assert_int_equal(d.code, 77);
  assert_int_equal(d.bits, 5);
  assert_int_equal(d.lanes, 1);
}

static void tensors_carry_their_dtype(void **state) {
  (void)state;
  for (size_t i = 0; i < KNOWN_COUNT; i++) {
    DLDataType d = tb_dtype(known[i].code, known[i].bits);
    tb_tensor_t *t = NULL;
    assert_ok(tb_tensor_empty(d, 1, (int64_t[]){6}, cpu(), TB_ORDER_C, &t));
    assert_true(tb_dtype_equal(tb_tensor_dtype(t), d));
    DLDataType p;
    tb_tensor_dtype_p(t, &p);
    assert_true(tb_dtype_equal(p, d));
    assert_true(tb_dtype_equal(tb_tensor_dltensor(t)->dtype, d));
    /* nbytes: 6 elements, packed dtypes rounded up to whole bytes. */
    int64_t want = known[i].itemsize > 0 ? 6 * (int64_t)known[i].itemsize
                                         : (6 * known[i].bits + 7) / 8;
    assert_int_equal(tb_tensor_nbytes(t), want);
    tb_tensor_release(t);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(table_has_the_26_dtypes_of_dlpack_1_3),
      cmocka_unit_test(every_name_parses_to_its_code_and_bits),
      cmocka_unit_test(every_code_and_bits_names_back_to_its_name),
      cmocka_unit_test(itemsize_is_bytes_per_element_and_zero_when_packed),
      cmocka_unit_test(no_other_code_and_bits_pair_is_known),
      cmocka_unit_test(aliases_parse_to_their_canonical_dtype),
      cmocka_unit_test(unknown_name_is_a_dtype_error_naming_it),
      cmocka_unit_test(from_name_with_null_arguments_is_invalid),
      cmocka_unit_test(check_rejects_lanes_other_than_one_naming_the_field),
      cmocka_unit_test(check_rejects_unknown_code_and_bits_naming_the_fields),
      cmocka_unit_test(unknown_dtype_is_refused_when_making_a_tensor),
      cmocka_unit_test(dtype_equal_compares_every_field),
      cmocka_unit_test(tb_dtype_builds_single_lane_dtypes),
      cmocka_unit_test(tensors_carry_their_dtype),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
