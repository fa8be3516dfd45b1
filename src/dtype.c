/* The dtype table: every DLPack 1.3 (code, bits) pair this library knows. */
#include <string.h>

#include "dtype.h"

/* Every dtype once: X(name, code, bits, itemsize, cast kind). The table and
 * the O(1) lookup below are both generated from this list. */
#define TB_DTYPE_LIST(X) \
  X(bool, TB_DL_BOOL, 8, 1, TB_K_BOOL) \
  X(int8, TB_DL_INT, 8, 1, TB_K_I8) \
  X(int16, TB_DL_INT, 16, 2, TB_K_I16) \
  X(int32, TB_DL_INT, 32, 4, TB_K_I32) \
  X(int64, TB_DL_INT, 64, 8, TB_K_I64) \
  X(uint8, TB_DL_UINT, 8, 1, TB_K_U8) \
  X(uint16, TB_DL_UINT, 16, 2, TB_K_U16) \
  X(uint32, TB_DL_UINT, 32, 4, TB_K_U32) \
  X(uint64, TB_DL_UINT, 64, 8, TB_K_U64) \
  X(float16, TB_DL_FLOAT, 16, 2, TB_K_F16) \
  X(bfloat16, TB_DL_BFLOAT, 16, 2, TB_K_BF16) \
  X(float32, TB_DL_FLOAT, 32, 4, TB_K_F32) \
  X(float64, TB_DL_FLOAT, 64, 8, TB_K_F64) \
  X(complex64, TB_DL_COMPLEX, 64, 8, TB_K_C64) \
  X(complex128, TB_DL_COMPLEX, 128, 16, TB_K_C128) \
  X(float8_e3m4, TB_DL_FLOAT8_E3M4, 8, 1, TB_K_NONE) \
  X(float8_e4m3, TB_DL_FLOAT8_E4M3, 8, 1, TB_K_NONE) \
  X(float8_e4m3b11fnuz, TB_DL_FLOAT8_E4M3B11FNUZ, 8, 1, TB_K_NONE) \
  X(float8_e4m3fn, TB_DL_FLOAT8_E4M3FN, 8, 1, TB_K_NONE) \
  X(float8_e4m3fnuz, TB_DL_FLOAT8_E4M3FNUZ, 8, 1, TB_K_NONE) \
  X(float8_e5m2, TB_DL_FLOAT8_E5M2, 8, 1, TB_K_NONE) \
  X(float8_e5m2fnuz, TB_DL_FLOAT8_E5M2FNUZ, 8, 1, TB_K_NONE) \
  X(float8_e8m0fnu, TB_DL_FLOAT8_E8M0FNU, 8, 1, TB_K_NONE) \
  X(float6_e2m3fn, TB_DL_FLOAT6_E2M3FN, 6, 0, TB_K_NONE) \
  X(float6_e3m2fn, TB_DL_FLOAT6_E3M2FN, 6, 0, TB_K_NONE) \
  X(float4_e2m1fn, TB_DL_FLOAT4_E2M1FN, 4, 0, TB_K_NONE)

/* The table's indices, one enumerator per dtype. */
enum {
#define TB_DTYPE_INDEX(name, code, bits, itemsize, kind) TB_DT_##name,
  TB_DTYPE_LIST(TB_DTYPE_INDEX)
#undef TB_DTYPE_INDEX
  TB_DTYPE_COUNT
};

static const tb_dtype_info tb_dtypes[TB_DTYPE_COUNT] = {
#define TB_DTYPE_ROW(name, code, bits, itemsize, kind) {#name, code, bits, itemsize, kind},
    TB_DTYPE_LIST(TB_DTYPE_ROW)
#undef TB_DTYPE_ROW
};

static const struct {
  const char *alias;
  const char *name;
} tb_dtype_aliases[] = {
    {"bool_", "bool"},         {"half", "float16"},      {"float", "float32"},
    {"double", "float64"},     {"int", "int32"},         {"long", "int64"},
    {"complex", "complex128"}, {"cfloat", "complex64"},  {"cdouble", "complex128"},
};

/* (code, bits) as one switch key; a duplicate pair in the list is a
 * compile error (duplicate case). */
#define TB_DTYPE_KEY(code, bits) (((unsigned)(code) << 8) | (unsigned)(bits))

const tb_dtype_info *tb__dtype_info(DLDataType dtype) {
  if (dtype.lanes != 1) return NULL;
  switch (TB_DTYPE_KEY(dtype.code, dtype.bits)) {
#define TB_DTYPE_CASE(name, code, bits, itemsize, kind) \
  case TB_DTYPE_KEY(code, bits):                        \
    return &tb_dtypes[TB_DT_##name];
    TB_DTYPE_LIST(TB_DTYPE_CASE)
#undef TB_DTYPE_CASE
    default:
      return NULL;
  }
}

tb_status tb__dtype_lookup(const char *what, DLDataType dtype, const tb_dtype_info **out) {
  const tb_dtype_info *info = tb__dtype_info(dtype);
  if (info == NULL) {
    if (dtype.lanes != 1) {
      return tb__fail(TB_ERR_DTYPE, "%s: dtype.lanes = %u is not supported (only 1)", what,
                      (unsigned)dtype.lanes);
    }
    return tb__fail(TB_ERR_DTYPE, "%s: dtype (code = %u, bits = %u) is not a known DLPack dtype",
                    what, (unsigned)dtype.code, (unsigned)dtype.bits);
  }
  *out = info;
  return TB_OK;
}

TB_API const char *tb_dtype_name(DLDataType dtype) {
  const tb_dtype_info *info = tb__dtype_info(dtype);
  return info != NULL ? info->name : NULL;
}

TB_API tb_status tb_dtype_from_name(const char *name, DLDataType *out) {
  if (name == NULL || out == NULL) {
    return tb__fail(TB_ERR_INVALID, "dtype_from_name: %s is NULL", name == NULL ? "name" : "out");
  }
  const char *canonical = name;
  for (size_t i = 0; i < sizeof tb_dtype_aliases / sizeof tb_dtype_aliases[0]; i++) {
    if (strcmp(name, tb_dtype_aliases[i].alias) == 0) canonical = tb_dtype_aliases[i].name;
  }
  for (size_t i = 0; i < (size_t)TB_DTYPE_COUNT; i++) {
    if (strcmp(canonical, tb_dtypes[i].name) == 0) {
      *out = (DLDataType){tb_dtypes[i].code, tb_dtypes[i].bits, 1};
      return TB_OK;
    }
  }
  return tb__fail(TB_ERR_DTYPE, "dtype_from_name: name = \"%.64s\" is not a known dtype", name);
}

TB_API size_t tb_dtype_itemsize(DLDataType dtype) {
  const tb_dtype_info *info = tb__dtype_info(dtype);
  return info != NULL ? info->itemsize : 0;
}

TB_API tb_status tb_dtype_check(DLDataType dtype) {
  const tb_dtype_info *info;
  return tb__dtype_lookup("dtype_check", dtype, &info);
}

TB_API bool tb_dtype_equal(DLDataType a, DLDataType b) {
  return a.code == b.code && a.bits == b.bits && a.lanes == b.lanes;
}

TB_API DLDataType tb_dtype(uint8_t code, uint8_t bits) { return (DLDataType){code, bits, 1}; }
