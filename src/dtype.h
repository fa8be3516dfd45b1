/* The dtype table. */
#ifndef TB_DTYPE_H
#define TB_DTYPE_H

#include "internal.h"

/* The dtypes the cast engine converts between, in a fixed order that indexes
 * its tables. */
typedef enum tb_cast_kind {
  TB_K_BOOL,
  TB_K_I8,
  TB_K_I16,
  TB_K_I32,
  TB_K_I64,
  TB_K_U8,
  TB_K_U16,
  TB_K_U32,
  TB_K_U64,
  TB_K_F16,
  TB_K_BF16,
  TB_K_F32,
  TB_K_F64,
  TB_K_C64,
  TB_K_C128,
  TB_K_COUNT,
  TB_K_NONE = -1 /* known dtype the cast engine does not convert */
} tb_cast_kind;

typedef struct tb_dtype_info {
  const char *name;
  uint8_t code;
  uint8_t bits;
  size_t itemsize;        /* 0 for packed sub-byte types */
  tb_cast_kind cast_kind;
} tb_dtype_info;

/* The table entry for dtype, or NULL (lanes != 1 or unknown pair). */
TB_INTERNAL const tb_dtype_info *tb__dtype_info(DLDataType dtype);
/* As above, but records a TB_ERR_DTYPE message prefixed by `what` on NULL. */
TB_INTERNAL tb_status tb__dtype_lookup(const char *what, DLDataType dtype,
                                       const tb_dtype_info **out);

#endif
