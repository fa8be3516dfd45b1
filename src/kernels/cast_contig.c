/*
 * Contiguous cast loops for every pair of castable kinds: the element
 * conversions of cast_ops.h (the same functions as cast.c's strided loops,
 * hence the same bits) with constant strides, which the compiler vectorises
 * where the conversion allows (this folder is compiled with vectorisation on
 * at every optimisation level, src/meson.build). The half-precision pairs
 * have hand-written kernels on top (cast_f16_*.c); these are the rest.
 */
#include "kernels/cast_ops.h"
#include "kernels/kernels.h"

/* The stored type of each kind, by name. */
#define TB_STORED_TYPEDEF(unused, name, kind, type) typedef type tb_stored_##name;
TB_TARGETS(TB_STORED_TYPEDEF, ~)

#define TB_CONTIG_LOOP(from, from_kind, cls, name, to, to_kind, type)                           \
  static void tb_contig_##from##_##to(const char *restrict src, int64_t ss, char *restrict dst, \
                                      int64_t ds, int64_t n) {                                  \
    (void)ss;                                                                                   \
    (void)ds;                                                                                   \
    if ((int)(from_kind) == (int)(to_kind)) {                                                   \
      memcpy(dst, src, (size_t)n * sizeof(type));                                               \
      return;                                                                                   \
    }                                                                                           \
    const int64_t from_size = (int64_t)sizeof(tb_stored_##from);                                \
    for (int64_t i = 0; i < n; i++) {                                                           \
      const type r = tb_##to##_from_##cls(tb_load_##from(src + i * from_size));                 \
      memcpy(dst + i * (int64_t)sizeof r, &r, sizeof r);                                        \
    }                                                                                           \
  }
#define TB_CONTIG_ROW(from, from_kind, cls, name) \
  TB_TARGETS(TB_CONTIG_LOOP, from, from_kind, cls, name)

TB_SOURCES(TB_CONTIG_ROW)

#define TB_CONTIG_ENTRY(from, from_kind, cls, name, to, to_kind, type) \
  [to_kind] = tb_contig_##from##_##to,
#define TB_CONTIG_TABLE_ROW(from, from_kind, cls, name) \
  [from_kind] = {TB_TARGETS(TB_CONTIG_ENTRY, from, from_kind, cls, name)},

static const tb_cast_loop_fn tb_contig_loops[TB_K_COUNT][TB_K_COUNT] = {
    TB_SOURCES(TB_CONTIG_TABLE_ROW)};

/*
 * Narrow sources, written in the narrow types: the generic loops widen every
 * integer to 64 bits first (exact, but no 64-bit integer -> float vector
 * conversion exists before AVX-512), so the compiler keeps them scalar.
 * These give the same values: an integer of at most 32 bits converts to
 * double exactly, and to float32 with the one rounding the generic path
 * makes (its double step being exact).
 */
#define TB_VIA_I32(x) ((int32_t)(x))
#define TB_VIA_I64(x) ((int64_t)(x))
#define TB_NARROW_LOOP(name, in_t, out_t, via) static TB_CONTIG_KERNEL(name, in_t, out_t, (out_t)via)
TB_NARROW_LOOP(tb_narrow_i8_f32, int8_t, float, TB_VIA_I32)
TB_NARROW_LOOP(tb_narrow_i16_f32, int16_t, float, TB_VIA_I32)
TB_NARROW_LOOP(tb_narrow_i32_f32, int32_t, float, TB_VIA_I32)
TB_NARROW_LOOP(tb_narrow_u8_f32, uint8_t, float, TB_VIA_I32)
TB_NARROW_LOOP(tb_narrow_u16_f32, uint16_t, float, TB_VIA_I32)
TB_NARROW_LOOP(tb_narrow_i8_f64, int8_t, double, TB_VIA_I32)
TB_NARROW_LOOP(tb_narrow_i16_f64, int16_t, double, TB_VIA_I32)
TB_NARROW_LOOP(tb_narrow_i32_f64, int32_t, double, TB_VIA_I32)
TB_NARROW_LOOP(tb_narrow_u8_f64, uint8_t, double, TB_VIA_I32)
TB_NARROW_LOOP(tb_narrow_u16_f64, uint16_t, double, TB_VIA_I32)
TB_NARROW_LOOP(tb_narrow_u32_f64, uint32_t, double, TB_VIA_I64)

tb_cast_loop_fn tb__contig_cast_generic(tb_cast_kind from, tb_cast_kind to) {
  if ((int)from < 0 || (int)from >= (int)TB_K_COUNT || (int)to < 0 || (int)to >= (int)TB_K_COUNT) {
    return NULL;
  }
  if (to == TB_K_F32 || to == TB_K_F64) {
    const bool f32 = to == TB_K_F32;
    switch (from) {
      case TB_K_I8: return f32 ? tb_narrow_i8_f32 : tb_narrow_i8_f64;
      case TB_K_I16: return f32 ? tb_narrow_i16_f32 : tb_narrow_i16_f64;
      case TB_K_I32: return f32 ? tb_narrow_i32_f32 : tb_narrow_i32_f64;
      case TB_K_U8: return f32 ? tb_narrow_u8_f32 : tb_narrow_u8_f64;
      case TB_K_U16: return f32 ? tb_narrow_u16_f32 : tb_narrow_u16_f64;
      case TB_K_U32: return f32 ? tb_contig_loops[from][to] : tb_narrow_u32_f64;
      default: break;
    }
  }
  return tb_contig_loops[from][to];
}
