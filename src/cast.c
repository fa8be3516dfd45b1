/*
 * Element conversion between the 15 castable dtypes (rules in cast.h).
 *
 * Design:
 *   - Dispatch happens once per call: tb__cast_loop picks one of 15 x 15
 *     loops from a table that X-macros generate. Each loop loads an element
 *     with memcpy (pointers may be unaligned for the type), widens it to one
 *     of four value classes, converts that to the target, and stores it with
 *     memcpy. The classes are u (uint64_t: bool, unsigned ints), s (int64_t:
 *     signed ints), d (double: float16, bfloat16, float32, float64) and z (two
 *     doubles: complex). Widening is exact, so every cast rounds at most once:
 *     into the target.
 *   - float16 and bfloat16 have no C type; they are stored as their bits and
 *     rounded by one routine from an exact (sign, 64-bit magnitude, binary
 *     exponent) form. Going through float32 or double first would round twice:
 *     int64 2^60 + 2^52 + 1 becomes 2^60 + 2^52 in float32, a tie for bfloat16
 *     that then rounds down, while the exact value lies above the tie and
 *     rounds up. The same happens to doubles just above a float16 tie.
 *   - float -> int saturates and maps NaN to 0. C leaves an out-of-range
 *     conversion undefined (NumPy inherits whatever the hardware does), so the
 *     value is clamped against exact power-of-two bounds before converting;
 *     saturation is the in-range answer that keeps the order of values and is
 *     the same on every platform.
 *   - int -> float32 does not trust C's 64-bit int -> float conversion to round
 *     once (valgrind, for one, emulates it through double); see
 *     tb_f32_from_magnitude.
 *   - int -> int wraps through unsigned arithmetic; signed targets are written
 *     as their unsigned bit pattern, so no conversion is implementation-defined.
 *   - Same-kind pairs copy bytes, so NaN payloads and bool bytes pass through.
 */
#include <string.h>

#include "cast.h"
#include "kernels/cast_ops.h"

/* The kind test is a constant, so each loop compiles to one of its branches. */
#define TB_CAST_LOOP(from, from_kind, cls, name, to, to_kind, type)                     \
  static void tb_cast_##from##_##to(const char *src, int64_t ss, char *dst, int64_t ds, \
                                    int64_t n) {                                        \
    if ((int)(from_kind) == (int)(to_kind)) {                                           \
      for (int64_t i = 0; i < n; i++) memcpy(dst + i * ds, src + i * ss, sizeof(type)); \
      return;                                                                           \
    }                                                                                   \
    for (int64_t i = 0; i < n; i++) {                                                   \
      const type r = tb_##to##_from_##cls(tb_load_##from(src + i * ss));                \
      memcpy(dst + i * ds, &r, sizeof r);                                               \
    }                                                                                   \
  }
#define TB_CAST_ROW(from, from_kind, cls, name) TB_TARGETS(TB_CAST_LOOP, from, from_kind, cls, name)

TB_SOURCES(TB_CAST_ROW)

#define TB_TABLE_ENTRY(from, from_kind, cls, name, to, to_kind, type) \
  [to_kind] = tb_cast_##from##_##to,
#define TB_TABLE_ROW(from, from_kind, cls, name) \
  [from_kind] = {TB_TARGETS(TB_TABLE_ENTRY, from, from_kind, cls, name)},

static const tb_cast_loop_fn tb_cast_loops[TB_K_COUNT][TB_K_COUNT] = {TB_SOURCES(TB_TABLE_ROW)};

#define TB_NAME_ENTRY(from, from_kind, cls, name) [from_kind] = name,
static const char *const tb_kind_names[TB_K_COUNT] = {TB_SOURCES(TB_NAME_ENTRY)};

/* ---- lookup ---- */

static bool tb_kind_valid(tb_cast_kind k) { return (int)k >= 0 && (int)k < (int)TB_K_COUNT; }

static bool tb_kind_is_complex(tb_cast_kind k) { return k == TB_K_C64 || k == TB_K_C128; }

tb_status tb__cast_loop(tb_cast_kind from, tb_cast_kind to, uint32_t cast_flags,
                        tb_cast_loop_fn *out) {
  if (!tb_kind_valid(from) || !tb_kind_valid(to)) {
    return tb__fail(TB_ERR_INVALID, "cast: kind pair (%d, %d) is out of range [0, %d)", (int)from,
                    (int)to, (int)TB_K_COUNT);
  }
  if (out == NULL) return tb__fail(TB_ERR_INVALID, "cast: out is NULL");
  if (tb_kind_is_complex(from) && !tb_kind_is_complex(to) && to != TB_K_BOOL &&
      (cast_flags & TB_CAST_DISCARD_IMAG) == 0) {
    return tb__fail(TB_ERR_DTYPE,
                    "cast: %s -> %s would discard the imaginary part of complex values; "
                    "pass TB_CAST_DISCARD_IMAG to keep the real part",
                    tb_kind_names[from], tb_kind_names[to]);
  }
  *out = tb_cast_loops[from][to];
  return TB_OK;
}
