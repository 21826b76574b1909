// float32 <-> 16-bit float formats for features moved and cached in half the bytes:
// IEEE float16 (rounded like numpy's astype(float16)) and bfloat16 (float32's top 16 bits,
// rounded to nearest even like torch; NaN -> 0x7FC0). Fused with the row gather and scatter
// of gather.h, so a feature answer is read once and written once.
#pragma once
#include <cstdint>
#include "graphplat/common.h"

namespace graphplat {

enum class HalfFormat { kFloat16, kBFloat16 };

// One value's bit pattern (exposed for the unit tests).
uint16_t float_to_half_bits(uint32_t f, HalfFormat fmt);
uint32_t half_bits_to_float(uint16_t h, HalfFormat fmt);

// out row out_rows[i] (row i when out_rows is empty) = encode(src row rows[i]) (row i when
// rows is empty; then n = num_rows), rows of `width` floats. Both index arrays are
// range-checked (OutOfRange) before anything is written.
void encode_half_rows(const float* src, int64_t num_rows, int64_t width, Span<int64_t> rows,
                      uint16_t* out, int64_t num_out_rows, Span<int64_t> out_rows, HalfFormat fmt,
                      int num_threads);

// out[i] = decode(src[i]) for n values.
void decode_half(const uint16_t* src, int64_t n, float* out, HalfFormat fmt, int num_threads);

}  // namespace graphplat
