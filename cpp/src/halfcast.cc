#include "graphplat/halfcast.h"

#include <algorithm>
#include <cstring>

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

void float16_row(const float* src, uint16_t* out, int64_t width) {
  for (int64_t k = 0; k < width; ++k) {
    uint32_t f;
    std::memcpy(&f, src + k, 4);
    out[k] = to_float16(f);
  }
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
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 15) / std::max<int64_t>(width, 1));
  void (*const row)(const float*, uint16_t*, int64_t) =
      fmt == HalfFormat::kFloat16 ? float16_row : bfloat16_row;
  parallel_for(n, grain, num_threads, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i)
      row(src + (gather ? rows.data[i] : i) * width, out + (scatter ? out_rows.data[i] : i) * width, width);
  });
}

void decode_half(const uint16_t* src, int64_t n, float* out, HalfFormat fmt, int num_threads) {
  auto run = [&](auto decode) {
    parallel_for(n, int64_t(1) << 15, num_threads, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        const uint32_t bits = decode(src[i]);
        std::memcpy(out + i, &bits, 4);
      }
    });
  };
  if (fmt == HalfFormat::kFloat16) run([](uint16_t h) { return from_float16(h); });
  else run([](uint16_t h) { return static_cast<uint32_t>(h) << 16; });
}

}  // namespace graphplat
