/*
 * Element conversion between the castable dtypes (dtype.h's tb_cast_kind).
 *
 * The rules (also in README.md):
 *   - to bool: x != 0 (NaN is true; a complex value is true when either part is).
 *   - from bool: 0 or 1.
 *   - int -> int: two's-complement wrap modulo 2^bits (NumPy's astype).
 *   - int -> float and float -> narrower float: round to nearest, ties to
 *     even, in a single rounding (no double rounding through an intermediate
 *     type); overflow gives +-inf; NaN stays NaN (sign kept), always quiet
 *     after a conversion (a same-dtype copy keeps the bits).
 *   - float -> int: truncate toward zero; values beyond the target's range
 *     saturate to its min/max; NaN gives 0. (NumPy leaves these undefined.)
 *   - real -> complex: imaginary part 0; complex -> complex: per part.
 *   - complex -> real (int, float): only with TB_CAST_DISCARD_IMAG, which
 *     keeps the real part and converts it as above.
 * These hold in the default floating-point environment (round to nearest
 * even, no flush-to-zero), which the library assumes and never changes;
 * the kernels and the scalar loops agree bit for bit there. The library is
 * not to be built with -ffast-math (NaN tests would fold away).
 */
#ifndef TB_CAST_H
#define TB_CAST_H

#include "dtype.h"

/* Converts n elements from src (byte stride ss) to dst (byte stride ds).
 * Strides may be negative or zero. Source and destination do not overlap. */
typedef void (*tb_cast_loop_fn)(const char *src, int64_t ss, char *dst, int64_t ds, int64_t n);

/*
 * The loop converting from `from` to `to`, or TB_ERR_DTYPE with a message
 * naming both dtypes when the pair is not castable under cast_flags
 * (complex -> real without TB_CAST_DISCARD_IMAG). Both kinds are valid
 * (not TB_K_NONE). from == to is allowed and copies.
 */
TB_INTERNAL tb_status tb__cast_loop(tb_cast_kind from, tb_cast_kind to, uint32_t cast_flags,
                                    tb_cast_loop_fn *out);

#endif
