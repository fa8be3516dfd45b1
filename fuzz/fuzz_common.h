/*
 * What the fuzz targets share: CHECK (abort, naming the target, the check and
 * the library's last message) and CALL (a status-returning call with a
 * sentinel message planted: success must leave it, failure must replace it,
 * the rule the header promises of every call). Define TB_FUZZ_NAME (a string
 * literal) before including.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef TB_FUZZ_COMMON_H
#define TB_FUZZ_COMMON_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensorbridge/backend.h" /* tb_set_error, to plant the sentinel */
#include "tensorbridge/tensorbridge.h"

#ifndef TB_FUZZ_NAME
#error "define TB_FUZZ_NAME before including fuzz_common.h"
#endif

#define CHECK(cond, what)                                                                  \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      fprintf(stderr, TB_FUZZ_NAME ": %s:%d: %s failed (%s); last error: %s\n", __FILE__, \
              __LINE__, #cond, (what), tb_last_error());                                   \
      abort();                                                                             \
    }                                                                                      \
  } while (0)

static const char k_sentinel[] = TB_FUZZ_NAME ": sentinel";

static inline void plant(void) { (void)tb_set_error(TB_ERR_INVALID, k_sentinel); }

static inline bool untouched(void) { return strcmp(tb_last_error(), k_sentinel) == 0; }

#define CALL(st, call)                                                                     \
  do {                                                                                     \
    plant();                                                                               \
    (st) = (call);                                                                         \
    CHECK((st) != TB_OK || untouched(), "a successful call leaves the message untouched"); \
    CHECK((st) == TB_OK || !untouched(), "a failing call sets its own message");           \
  } while (0)

#endif /* TB_FUZZ_COMMON_H */
