#include "graphplat/halfcast.h"

#include <algorithm>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define GRAPHPLAT_F16C 1
#endif

#include "graphplat/gather.h"
#include "graphplat/parallel.h"

namespace graphplat {

namespace {

// numpy's npy_floatbits_to_halfbits (round to nearest even; NaN keeps its sign and top
// payload bits and stays NaN; beyond the range -> inf), so a feature rounds to the same
// float16 in C++ as in numpy.
inline uint16_t to_float16(uint32_t f) {
  const uint32_t sign = (f >> 16) & 0x8000u;
  const uint32_t exp = f & 0x7f800000u;
  if (exp >= 0x47800000u) {  // inf, NaN, or too large
    const uint32_t man = f & 0x007fffffu;
    if (exp == 0x7f800000u && man != 0) {
      uint32_t h = 0x7c00u + (man >> 13);
      if (h == 0x7c00u) ++h;  // a NaN whose payload is in the low bits
      return static_cast<uint16_t>(sign + h);
    }
    return static_cast<uint16_t>(sign + 0x7c00u);
  }
  if (exp <= 0x38000000u) {  // a float16 subnormal or zero
    if (exp < 0x33000000u) return static_cast<uint16_t>(sign);  // rounds to +-0
    uint32_t man = (0x00800000u + (f & 0x007fffffu)) >> (113 - (exp >> 23));
    // ties to even; the shift may have dropped up to 11 set bits, which break the tie
    if ((man & 0x00003fffu) != 0x00001000u || (f & 0x000007ffu)) man += 0x00001000u;
    return static_cast<uint16_t>(sign + (man >> 13));  // a carry makes the smallest normal
  }
  const uint32_t h_exp = (exp - 0x38000000u) >> 13;
  uint32_t man = f & 0x007fffffu;
  if ((man & 0x00003fffu) != 0x00001000u) man += 0x00001000u;  // ties to even
  // a carry out of the mantissa raises the exponent (up to inf), as it should
  return static_cast<uint16_t>(sign + h_exp + (man >> 13));
}

// torch's rounding: the top 16 bits, rounded to nearest even; every NaN -> 0x7FC0.
inline uint16_t to_bfloat16(uint32_t f) {
  if ((f & 0x7fffffffu) > 0x7f800000u) return 0x7fc0u;
  return static_cast<uint16_t>((f + 0x7fffu + ((f >> 16) & 1u)) >> 16);
}

// numpy's npy_halfbits_to_floatbits (exact).
inline uint32_t from_float16(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = h & 0x7c00u;
  uint32_t man = h & 0x03ffu;
  if (exp == 0x7c00u) return sign + 0x7f800000u + (man << 13);
  if (exp != 0) return sign + ((static_cast<uint32_t>(h & 0x7fffu) + 0x1c000u) << 13);
  if (man == 0) return sign;
  man <<= 1;  // normalize a subnormal
  while ((man & 0x0400u) == 0) {
    man <<= 1;
    ++exp;
  }
  return sign + ((127 - 15 - exp) << 23) + ((man & 0x03ffu) << 13);
}

// One row of bfloat16 encoding, compiled twice: AVX2 (8 lanes and a native 32->16-bit pack)
// where the CPU has it, SSE2 otherwise; the loop is branch-free so both vectorize.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
void bfloat16_row(const float* src, uint16_t* out, int64_t width) {
  for (int64_t k = 0; k < width; ++k) {
    uint32_t f;
    std::memcpy(&f, src + k, 4);
    const uint32_t rounded = (f + 0x7fffu + ((f >> 16) & 1u)) >> 16;
    out[k] = static_cast<uint16_t>((f & 0x7fffffffu) > 0x7f800000u ? 0x7fc0u : rounded);
  }
}

// bfloat16 -> float32 is a shift; AVX2 doubles its lanes (1.4 -> 0.6 ms for 5.6M values).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
void bfloat16_decode(const uint16_t* src, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t bits = static_cast<uint32_t>(src[i]) << 16;
    std::memcpy(out + i, &bits, 4);
  }
}

void float16_row_scalar(const float* src, uint16_t* out, int64_t width) {
  for (int64_t k = 0; k < width; ++k) {
    uint32_t f;
    std::memcpy(&f, src + k, 4);
    out[k] = to_float16(f);
  }
}

void float16_decode_scalar(const uint16_t* src, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t bits = from_float16(src[i]);
    std::memcpy(out + i, &bits, 4);
  }
}

#ifdef GRAPHPLAT_F16C
// F16C converts 8 values per instruction where the scalar code branches per value (float16
// encoding 16 -> ~1.5 ms for 56k rows of 100 floats). Its conversions round like IEEE, as
// numpy's do, but quiet a NaN's payload where numpy keeps it: a group of 8 holding a NaN
// takes the scalar path, so the bits stay numpy's. MXCSR's flush-to-zero and
// denormals-are-zero modes do not apply to these conversions (tested with torch's
// set_flush_denormal).
__attribute__((target("avx,f16c"))) void float16_row_f16c(const float* src, uint16_t* out, int64_t width) {
  int64_t k = 0;
  for (; k + 8 <= width; k += 8) {
    const __m256 v = _mm256_loadu_ps(src + k);
    if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)) != 0) {
      float16_row_scalar(src + k, out + k, 8);
      continue;
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + k), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }
  float16_row_scalar(src + k, out + k, width - k);
}

__attribute__((target("avx,f16c"))) void float16_decode_f16c(const uint16_t* src, float* out, int64_t n) {
  int64_t i = 0;
  const __m128i magnitude = _mm_set1_epi16(0x7fff), inf = _mm_set1_epi16(0x7c00);
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    if (_mm_movemask_epi8(_mm_cmpgt_epi16(_mm_and_si128(h, magnitude), inf)) != 0) {  // a NaN
      float16_decode_scalar(src + i, out + i, 8);
      continue;
    }
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
  }
  float16_decode_scalar(src + i, out + i, n - i);
}

bool has_f16c() {
  static const bool ok = __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
  return ok;
}
#endif

void float16_row(const float* src, uint16_t* out, int64_t width) {
#ifdef GRAPHPLAT_F16C
  if (has_f16c()) return float16_row_f16c(src, out, width);
#endif
  float16_row_scalar(src, out, width);
}

void float16_decode(const uint16_t* src, float* out, int64_t n) {
#ifdef GRAPHPLAT_F16C
  if (has_f16c()) return float16_decode_f16c(src, out, n);
#endif
  float16_decode_scalar(src, out, n);
}

void check_rows(Span<int64_t> rows, int64_t limit, const char* what, int num_threads) {
  const int64_t bad = parallel_find_first(rows.size, num_threads, [&](int64_t i) {
    return rows.data[i] < 0 || rows.data[i] >= limit;
  });
  if (bad < rows.size)
    throw OutOfRange(cat(what, " ", rows.data[bad], " (at position ", bad, ") is out of range [0, ", limit, ")"));
}

}  // namespace

uint16_t float_to_half_bits(uint32_t f, HalfFormat fmt) {
  return fmt == HalfFormat::kFloat16 ? to_float16(f) : to_bfloat16(f);
}

uint32_t half_bits_to_float(uint16_t h, HalfFormat fmt) {
  return fmt == HalfFormat::kFloat16 ? from_float16(h) : static_cast<uint32_t>(h) << 16;
}

void encode_half_rows(const float* src, int64_t num_rows, int64_t width, Span<int64_t> rows,
                      uint16_t* out, int64_t num_out_rows, Span<int64_t> out_rows, HalfFormat fmt,
                      int num_threads) {
  const bool gather = rows.data != nullptr;
  const bool scatter = out_rows.data != nullptr;
  const int64_t n = gather ? rows.size : num_rows;
  if (gather) check_rows(rows, num_rows, "row", num_threads);
  if (scatter) {
    if (out_rows.size != n) throw InvalidArgument(cat("out_rows has ", out_rows.size, " entries but ", n, " rows are encoded"));
    check_rows(out_rows, num_out_rows, "out row", num_threads);
  } else if (n > num_out_rows) {
    throw InvalidArgument(cat("out has ", num_out_rows, " rows, need ", n));
  }
  void (*const row)(const float*, uint16_t*, int64_t) =
      fmt == HalfFormat::kFloat16 ? float16_row : bfloat16_row;
  if (!gather && !scatter) {  // one contiguous run of values (also 1-D arrays): vector-wide chunks
    parallel_for(n * width, int64_t(1) << 15, num_threads, [&](int64_t lo, int64_t hi) {
      row(src + lo, out + lo, hi - lo);
    });
    return;
  }
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 15) / std::max<int64_t>(width, 1));
  auto src_of = [&](int64_t i) { return src + (gather ? rows.data[i] : i) * width; };
  for_rows_prefetched(n, width * 4, grain, num_threads, src_of, [&](int64_t i) {
    row(src_of(i), out + (scatter ? out_rows.data[i] : i) * width, width);
  });
}

void decode_half(const uint16_t* src, int64_t n, float* out, HalfFormat fmt, int num_threads) {
  parallel_for(n, int64_t(1) << 15, num_threads, [&](int64_t lo, int64_t hi) {
    if (fmt == HalfFormat::kFloat16) {
      float16_decode(src + lo, out + lo, hi - lo);
      return;
    }
    bfloat16_decode(src + lo, out + lo, hi - lo);
  });
}

}  // namespace graphplat
