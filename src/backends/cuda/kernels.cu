/*
 * The CUDA backend's copy kernels: strided copies with dtype conversion,
 * compiled at build time into a fatbin that the library embeds and loads
 * with cuModuleLoadData (see meson.build and copy.c).
 *
 * Conversions reproduce the CPU engine (src/cast.c) bit for bit: each source
 * element is widened exactly to one of four value classes (u: uint64_t for
 * bool and unsigned ints, s: int64_t for signed ints, d: double for the real
 * floats, z: two doubles for complex) and rounded once, into the target.
 * float16 and bfloat16 are rounded by the same integer routine as on the CPU,
 * from an exact (sign, 64-bit magnitude, binary exponent) form: a path through
 * float32 rounds twice for some int64 values (2^60 + 2^52 + 1 to bfloat16),
 * and CUDA's int64 -> half intrinsics do not promise a single rounding.
 * float32 <-> float64 use the hardware conversions for numbers and explicit
 * bit rules for NaN (made quiet, payload kept at the top, sign kept), which is
 * what the CPU engine gives and what the GPU's conversions do not promise;
 * every NaN that crosses a conversion comes out quiet, as cast.h says.
 *
 * Every kernel walks a linear index over up to TB_CUDA_MAX_DIMS collapsed
 * dimensions (kernel_abi.h), one element per thread per step of a grid-stride
 * loop, in 32-bit arithmetic: the host cuts launches below 2^31 elements and
 * hands over each extent's divisor as a multiplier and a shift.
 */
#include <stdint.h>

#include "kernel_abi.h"

namespace {

/* ---- bit views ---- */

__device__ __forceinline__ uint64_t bits64(double v) {
  return static_cast<uint64_t>(__double_as_longlong(v));
}
__device__ __forceinline__ double from_bits64(uint64_t b) {
  return __longlong_as_double(static_cast<long long>(b));
}

/* float -> double: exact for numbers; NaN made quiet, its payload moved to
 * the top of the wider fraction, sign kept. */
__device__ __forceinline__ double widen(float f) {
  const uint32_t b = __float_as_uint(f);
  if ((b & 0x7F800000u) == 0x7F800000u && (b & 0x007FFFFFu) != 0) {
    return from_bits64((static_cast<uint64_t>(b >> 31) << 63) | 0x7FF8000000000000ull |
                       (static_cast<uint64_t>(b & 0x007FFFFFu) << 29));
  }
  return static_cast<double>(f);
}

/* double -> float rounded to nearest even (overflow to +-inf, subnormals
 * kept); NaN made quiet with the top of its payload, sign kept. */
__device__ __forceinline__ float narrow(double v) {
  const uint64_t b = bits64(v);
  const uint64_t frac = b & 0x000FFFFFFFFFFFFFull;
  if ((b & 0x7FF0000000000000ull) == 0x7FF0000000000000ull && frac != 0) {
    return __uint_as_float((static_cast<uint32_t>(b >> 63) << 31) | 0x7FC00000u |
                           static_cast<uint32_t>(frac >> 29));
  }
  return __double2float_rn(v);
}

/* ---- float16 / bfloat16 ---- */

/*
 * The bits of (-1)^sign * m * 2^e rounded to nearest, ties to even, in a
 * 16-bit format with exp_bits/man_bits: the same routine as the CPU's
 * tb_half_round, step for step (subnormals and carries land on the right
 * pattern by plain addition; a carry past the largest exponent on infinity).
 */
__device__ __forceinline__ uint16_t half_round(uint32_t sign, uint64_t m, int32_t e,
                                               int32_t exp_bits, int32_t man_bits) {
  const int32_t bias = (1 << (exp_bits - 1)) - 1;
  const uint32_t inf = ((1u << exp_bits) - 1u) << man_bits;
  const uint32_t sign_bit = sign << (exp_bits + man_bits);
  if (m == 0) return static_cast<uint16_t>(sign_bit);
  const int32_t top = 63 - __clzll(static_cast<long long>(m)) + e;
  if (top > bias) return static_cast<uint16_t>(sign_bit | inf);
  const int32_t exponent = top > 1 - bias ? top : 1 - bias;
  const int32_t shift = exponent - man_bits - e;
  uint64_t r;
  if (shift <= 0) {
    r = m << -shift;
  } else if (shift > 64) {
    r = 0;
  } else {
    const uint64_t half = 1ull << (shift - 1);
    const uint64_t rest = m & ((half << 1) - 1u); /* wraps to all ones when shift = 64 */
    r = shift == 64 ? 0 : m >> shift;
    r += static_cast<uint64_t>(rest > half) | (static_cast<uint64_t>(rest == half) & r & 1u);
  }
  const uint32_t bits =
      (static_cast<uint32_t>(exponent + bias - 1) << man_bits) + static_cast<uint32_t>(r);
  return static_cast<uint16_t>(sign_bit | (bits < inf ? bits : inf));
}

__device__ __forceinline__ uint16_t half_from_double(double v, int32_t exp_bits, int32_t man_bits) {
  const uint64_t b = bits64(v);
  const uint32_t sign = static_cast<uint32_t>(b >> 63);
  const uint32_t field = static_cast<uint32_t>(b >> 52) & 0x7FFu;
  const uint64_t frac = b & 0x000FFFFFFFFFFFFFull;
  if (field == 0x7FFu) { /* infinity, or a quiet NaN without payload */
    const uint32_t quiet = frac != 0 ? 1u << (man_bits - 1) : 0u;
    const uint32_t inf = ((1u << exp_bits) - 1u) << man_bits;
    return static_cast<uint16_t>((sign << (exp_bits + man_bits)) | inf | quiet);
  }
  const uint64_t m = field != 0 ? frac | (1ull << 52) : frac;
  const int32_t e = static_cast<int32_t>(field != 0 ? field : 1u) - 1075;
  return half_round(sign, m, e, exp_bits, man_bits);
}

/* Exact; subnormals are scaled from an integer (independent of any
 * flush-to-zero mode), NaN bits are placed directly. */
__device__ __forceinline__ float f16_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t field = (h >> 10) & 0x1Fu;
  const uint32_t man = h & 0x3FFu;
  if (field == 0) {
    const float f = __uint2float_rn(man) * __uint_as_float(0x33800000u); /* 2^-24 */
    return sign != 0 ? -f : f;
  }
  return __uint_as_float(sign | (field == 0x1Fu ? 0x7F800000u : (field + 112u) << 23) | man << 13);
}

/* A 64-bit magnitude to float32 in one rounding: above 2^53 the bits below
 * the top 53 fold into a sticky bit, so the step to double is exact and the
 * step to float the only rounding (as the CPU's tb_f32_from_magnitude). */
__device__ __forceinline__ float f32_from_magnitude(uint64_t m) {
  if (m >> 53 == 0) return __double2float_rn(__ull2double_rn(m));
  const int drop = 11 - __clzll(static_cast<long long>(m));
  const uint64_t sticky = (m & ((1ull << drop) - 1u)) != 0;
  return __double2float_rn(
      __dmul_rn(__ull2double_rn((m >> drop) | sticky), __ull2double_rn(1ull << drop)));
}

/* ---- value classes ---- */

struct zval {
  double re, im;
};

struct c64 {
  float re, im;
};
struct c128 {
  double re, im;
};

template <class T>
__device__ __forceinline__ T load_as(const char *p) {
  return *reinterpret_cast<const T *>(p);
}
template <class T>
__device__ __forceinline__ void store_as(char *p, T v) {
  *reinterpret_cast<T *>(p) = v;
}

/* ---- sources: load() widens one element exactly to its class ---- */

struct src_bool {
  __device__ static uint64_t load(const char *p) { return load_as<uint8_t>(p) != 0; }
};
template <class T>
struct src_signed {
  __device__ static int64_t load(const char *p) { return static_cast<int64_t>(load_as<T>(p)); }
};
template <class T>
struct src_unsigned {
  __device__ static uint64_t load(const char *p) { return static_cast<uint64_t>(load_as<T>(p)); }
};
struct src_f16 {
  __device__ static double load(const char *p) { return widen(f16_to_float(load_as<uint16_t>(p))); }
};
struct src_bf16 {
  __device__ static double load(const char *p) {
    return widen(__uint_as_float(static_cast<uint32_t>(load_as<uint16_t>(p)) << 16));
  }
};
struct src_f32 {
  __device__ static double load(const char *p) { return widen(load_as<float>(p)); }
};
struct src_f64 {
  __device__ static double load(const char *p) { return load_as<double>(p); }
};
struct src_c64 {
  __device__ static zval load(const char *p) {
    return zval{widen(load_as<float>(p)), widen(load_as<float>(p + 4))};
  }
};
struct src_c128 {
  __device__ static zval load(const char *p) {
    return zval{load_as<double>(p), load_as<double>(p + 8)};
  }
};

/* ---- targets: put() converts a class value and stores it ---- */

struct dst_bool {
  __device__ static void put(char *p, uint64_t v) { store_as<uint8_t>(p, v != 0); }
  __device__ static void put(char *p, int64_t v) { store_as<uint8_t>(p, v != 0); }
  __device__ static void put(char *p, double v) { store_as<uint8_t>(p, v != 0); } /* NaN: 1 */
  __device__ static void put(char *p, zval v) { store_as<uint8_t>(p, v.re != 0 || v.im != 0); }
};

/* Integers wrap from integers (through their unsigned pattern) and saturate
 * from floats, NaN giving 0; complex sources give their real part. */
template <class T, class U>
struct dst_int_common {
  __device__ static void put(char *p, uint64_t v) { store_as<U>(p, static_cast<U>(v)); }
  __device__ static void put(char *p, int64_t v) {
    store_as<U>(p, static_cast<U>(static_cast<uint64_t>(v)));
  }
};

template <class T, class U, int64_t Min, int64_t Max>
struct dst_narrow_signed : dst_int_common<T, U> {
  using dst_int_common<T, U>::put;
  __device__ static void put(char *p, double v) {
    const double lo = static_cast<double>(Min), hi = static_cast<double>(Max);
    const double c = v < lo ? lo : v > hi ? hi : v;
    store_as<U>(p, isnan(v) ? U(0) : static_cast<U>(static_cast<T>(c)));
  }
  __device__ static void put(char *p, zval v) { put(p, v.re); }
};

template <class U, uint64_t Max>
struct dst_narrow_unsigned : dst_int_common<U, U> {
  using dst_int_common<U, U>::put;
  __device__ static void put(char *p, double v) {
    const double hi = static_cast<double>(Max);
    const double c = v > 0 ? (v < hi ? v : hi) : 0.0;
    store_as<U>(p, static_cast<U>(c));
  }
  __device__ static void put(char *p, zval v) { put(p, v.re); }
};

struct dst_i64 : dst_int_common<int64_t, uint64_t> {
  using dst_int_common<int64_t, uint64_t>::put;
  __device__ static void put(char *p, double v) {
    const double two63 = 9223372036854775808.0;
    const double c = v < -two63 ? -two63 : v;
    store_as<uint64_t>(p, isnan(v)     ? 0u
                          : v >= two63 ? static_cast<uint64_t>(INT64_MAX)
                                       : static_cast<uint64_t>(static_cast<int64_t>(c)));
  }
  __device__ static void put(char *p, zval v) { put(p, v.re); }
};

struct dst_u64 : dst_int_common<uint64_t, uint64_t> {
  using dst_int_common<uint64_t, uint64_t>::put;
  __device__ static void put(char *p, double v) {
    const double two64 = 18446744073709551616.0;
    store_as<uint64_t>(p, v >= two64 ? UINT64_MAX : static_cast<uint64_t>(v > 0 ? v : 0.0));
  }
  __device__ static void put(char *p, zval v) { put(p, v.re); }
};

template <int ExpBits, int ManBits>
struct dst_half {
  __device__ static void put(char *p, uint64_t v) {
    store_as<uint16_t>(p, half_round(0, v, 0, ExpBits, ManBits));
  }
  __device__ static void put(char *p, int64_t v) {
    const uint64_t magnitude = v < 0 ? 0u - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
    store_as<uint16_t>(p, half_round(v < 0, magnitude, 0, ExpBits, ManBits));
  }
  __device__ static void put(char *p, double v) {
    store_as<uint16_t>(p, half_from_double(v, ExpBits, ManBits));
  }
  __device__ static void put(char *p, zval v) { put(p, v.re); }
};

__device__ __forceinline__ float f32_from(uint64_t v) { return f32_from_magnitude(v); }
__device__ __forceinline__ float f32_from(int64_t v) {
  const float f =
      f32_from_magnitude(v < 0 ? 0u - static_cast<uint64_t>(v) : static_cast<uint64_t>(v));
  return v < 0 ? -f : f;
}
__device__ __forceinline__ float f32_from(double v) { return narrow(v); }

__device__ __forceinline__ double f64_from(uint64_t v) { return __ull2double_rn(v); }
__device__ __forceinline__ double f64_from(int64_t v) {
  return __ll2double_rn(static_cast<long long>(v));
}
/* A float64 that crosses a conversion comes out quiet (cast.h): a float64
 * source reaches a float64 target unconverted only through same-dtype copies. */
__device__ __forceinline__ double make_quiet(double v) {
  const uint64_t b = bits64(v);
  const bool nan = (b & 0x7FF0000000000000ull) == 0x7FF0000000000000ull &&
                   (b & 0x000FFFFFFFFFFFFFull) != 0;
  return nan ? from_bits64(b | 0x0008000000000000ull) : v;
}
__device__ __forceinline__ double f64_from(double v) { return make_quiet(v); }

struct dst_f32 {
  template <class V>
  __device__ static void put(char *p, V v) {
    store_as<float>(p, f32_from(v));
  }
  __device__ static void put(char *p, zval v) { store_as<float>(p, narrow(v.re)); }
};
struct dst_f64 {
  template <class V>
  __device__ static void put(char *p, V v) {
    store_as<double>(p, f64_from(v));
  }
  __device__ static void put(char *p, zval v) { store_as<double>(p, make_quiet(v.re)); }
};
/* Complex targets: each part as the matching real target; a real source's
 * imaginary part is +0. */
struct dst_c64 {
  template <class V>
  __device__ static void put(char *p, V v) {
    store_as<float>(p, f32_from(v));
    store_as<float>(p + 4, 0.0f);
  }
  __device__ static void put(char *p, zval v) {
    store_as<float>(p, narrow(v.re));
    store_as<float>(p + 4, narrow(v.im));
  }
};
struct dst_c128 {
  template <class V>
  __device__ static void put(char *p, V v) {
    store_as<double>(p, f64_from(v));
    store_as<double>(p + 8, 0.0);
  }
  __device__ static void put(char *p, zval v) {
    store_as<double>(p, make_quiet(v.re));
    store_as<double>(p + 8, make_quiet(v.im));
  }
};

/* ---- element operations ---- */

template <int Bytes>
struct move_bytes;
template <>
struct move_bytes<1> {
  __device__ static void run(const char *s, char *d) { store_as<uint8_t>(d, load_as<uint8_t>(s)); }
};
template <>
struct move_bytes<2> {
  __device__ static void run(const char *s, char *d) {
    store_as<uint16_t>(d, load_as<uint16_t>(s));
  }
};
template <>
struct move_bytes<4> {
  __device__ static void run(const char *s, char *d) {
    store_as<uint32_t>(d, load_as<uint32_t>(s));
  }
};
template <>
struct move_bytes<8> {
  __device__ static void run(const char *s, char *d) {
    store_as<uint64_t>(d, load_as<uint64_t>(s));
  }
};
template <>
struct move_bytes<16> { /* two 8-byte moves: complex128 is only 8-byte aligned */
  __device__ static void run(const char *s, char *d) {
    store_as<uint64_t>(d, load_as<uint64_t>(s));
    store_as<uint64_t>(d + 8, load_as<uint64_t>(s + 8));
  }
};

template <class From, class To>
struct cast_op {
  __device__ static void run(const char *s, char *d) { To::put(d, From::load(s)); }
};

/* ---- the index walk ---- */

/* n / extent for n < 2^31 by the host's precomputed multiplier and shift
 * (kernel_abi.h): no division instruction, no 64-bit emulation. */
__device__ __forceinline__ uint32_t divide(uint32_t n, uint32_t magic, uint32_t shift) {
  return (__umulhi(n, magic) + n) >> shift;
}

/* One grid-stride loop: element i's offsets on both sides from its linear
 * index, dimension ndim - 1 innermost. The host keeps numel below 2^31 and
 * the grid at most 2^16 blocks, so i + step never passes 2^32. */
template <class Op>
__device__ __forceinline__ void walk(const tb_cuda_kargs &a) {
  const char *src = reinterpret_cast<const char *>(a.src);
  char *dst = reinterpret_cast<char *>(a.dst);
  const uint32_t n = a.numel;
  const uint32_t step = gridDim.x * blockDim.x;
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    uint32_t rest = i;
    int64_t so = 0, doff = 0;
#ifdef __CUDACC__ /* host builds (emu/) know no such pragma */
#pragma unroll 1
#endif
    for (int k = a.ndim - 1; k > 0; k--) {
      const uint32_t q = divide(rest, a.magic[k], a.shift[k]);
      const uint32_t idx = rest - q * a.extent[k];
      rest = q;
      so += static_cast<int64_t>(idx) * a.src_strides[k];
      doff += static_cast<int64_t>(idx) * a.dst_strides[k];
    }
    so += static_cast<int64_t>(rest) * a.src_strides[0];
    doff += static_cast<int64_t>(rest) * a.dst_strides[0];
    Op::run(src + so, dst + doff);
  }
}

/* Each castable dtype: how it loads, how it stores, its size. */
#define TB_KIND(name, source, target, size) \
  struct kind_##name {                      \
    typedef source src;                     \
    typedef target dst;                     \
    enum { bytes = size };                  \
  };
typedef dst_narrow_signed<int8_t, uint8_t, INT8_MIN, INT8_MAX> dst_i8;
typedef dst_narrow_signed<int16_t, uint16_t, INT16_MIN, INT16_MAX> dst_i16;
typedef dst_narrow_signed<int32_t, uint32_t, INT32_MIN, INT32_MAX> dst_i32;
typedef dst_narrow_unsigned<uint8_t, UINT8_MAX> dst_u8;
typedef dst_narrow_unsigned<uint16_t, UINT16_MAX> dst_u16;
typedef dst_narrow_unsigned<uint32_t, UINT32_MAX> dst_u32;
typedef dst_half<5, 10> dst_f16;
typedef dst_half<8, 7> dst_bf16;
TB_KIND(bool, src_bool, dst_bool, 1)
TB_KIND(i8, src_signed<int8_t>, dst_i8, 1)
TB_KIND(i16, src_signed<int16_t>, dst_i16, 2)
TB_KIND(i32, src_signed<int32_t>, dst_i32, 4)
TB_KIND(i64, src_signed<int64_t>, dst_i64, 8)
TB_KIND(u8, src_unsigned<uint8_t>, dst_u8, 1)
TB_KIND(u16, src_unsigned<uint16_t>, dst_u16, 2)
TB_KIND(u32, src_unsigned<uint32_t>, dst_u32, 4)
TB_KIND(u64, src_unsigned<uint64_t>, dst_u64, 8)
TB_KIND(f16, src_f16, dst_f16, 2)
TB_KIND(bf16, src_bf16, dst_bf16, 2)
TB_KIND(f32, src_f32, dst_f32, 4)
TB_KIND(f64, src_f64, dst_f64, 8)
TB_KIND(c64, src_c64, dst_c64, 8)
TB_KIND(c128, src_c128, dst_c128, 16)

/* A pair's element operation; same-kind pairs move bits, so NaN payloads
 * and bool bytes pass through as on the CPU. */
template <class From, class To>
struct pair_op {
  typedef cast_op<typename From::src, typename To::dst> type;
};
template <class K>
struct pair_op<K, K> {
  typedef move_bytes<K::bytes> type;
};

}  // namespace

/* ---- the kernels ---- */

#define TB_COPY_KERNEL(bytes)                                         \
  extern "C" __global__ void __launch_bounds__(TB_CUDA_BLOCK)         \
      tb_cuda_copy_##bytes(const __grid_constant__ tb_cuda_kargs a) { \
    walk<move_bytes<bytes> >(a);                                      \
  }
TB_COPY_KERNEL(1)
TB_COPY_KERNEL(2)
TB_COPY_KERNEL(4)
TB_COPY_KERNEL(8)
TB_COPY_KERNEL(16)

/* Two lists of the same names (in tb_cast_kind order): a macro cannot expand
 * itself, so rows and columns need one each. */
#define TB_SOURCES(X)                                                                       \
  X(bool)                                                                                   \
  X(i8) X(i16) X(i32) X(i64) X(u8) X(u16) X(u32) X(u64) X(f16) X(bf16) X(f32) X(f64) X(c64) \
      X(c128)
#define TB_TARGETS(X, from)                                                                \
  X(from, bool)                                                                            \
  X(from, i8) X(from, i16) X(from, i32) X(from, i64) X(from, u8) X(from, u16) X(from, u32) \
      X(from, u64) X(from, f16) X(from, bf16) X(from, f32) X(from, f64) X(from, c64) X(from, c128)

#define TB_CAST_KERNEL(from, to)                                            \
  extern "C" __global__ void __launch_bounds__(TB_CUDA_BLOCK)               \
      tb_cuda_cast_##from##_##to(const __grid_constant__ tb_cuda_kargs a) { \
    walk<pair_op<kind_##from, kind_##to>::type>(a);                         \
  }
#define TB_CAST_ROW(from) TB_TARGETS(TB_CAST_KERNEL, from)

TB_SOURCES(TB_CAST_ROW)
