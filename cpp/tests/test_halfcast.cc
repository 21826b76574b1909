// float16/bfloat16 rounding of feature rows: known bit patterns, ties to even, NaN/inf,
// subnormals, and the fused gather/scatter with its range checks.
#include <cstring>
#include <limits>
#include <vector>

#include "check.h"
#include "graphplat/halfcast.h"

using namespace graphplat;

namespace {

uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

Span<int64_t> span_of(const std::vector<int64_t>& v) { return make_span(v.data(), static_cast<int64_t>(v.size())); }

}  // namespace

TEST_CASE(float16_known_values) {
  const auto f16 = [](float f) { return float_to_half_bits(bits_of(f), HalfFormat::kFloat16); };
  CHECK(f16(1.0f) == 0x3c00);
  CHECK(f16(-2.0f) == 0xc000);
  CHECK(f16(65504.0f) == 0x7bff);
  CHECK(f16(65520.0f) == 0x7c00);  // rounds up past the largest half: inf
  CHECK(f16(1e-8f) == 0x0000);     // below half the smallest subnormal
  CHECK(f16(5.9604645e-8f) == 0x0001);  // the smallest subnormal
  CHECK(f16(1.0f + 1.0f / 2048) == 0x3c00);  // a tie goes to the even neighbour
  CHECK(f16(1.0f + 3.0f / 2048) == 0x3c02);
  CHECK((f16(std::numeric_limits<float>::quiet_NaN()) & 0x7c00) == 0x7c00);
  CHECK((f16(std::numeric_limits<float>::quiet_NaN()) & 0x03ff) != 0);
  for (uint32_t h = 0; h < 0x7c00; ++h)  // every finite half survives the round trip
    CHECK(float_to_half_bits(half_bits_to_float(static_cast<uint16_t>(h), HalfFormat::kFloat16),
                             HalfFormat::kFloat16) == h);
}

TEST_CASE(bfloat16_known_values) {
  const auto bf = [](float f) { return float_to_half_bits(bits_of(f), HalfFormat::kBFloat16); };
  CHECK(bf(1.0f) == 0x3f80);
  CHECK(bf(-1.0f) == 0xbf80);
  CHECK(bf(std::numeric_limits<float>::quiet_NaN()) == 0x7fc0);
  CHECK(bf(-std::numeric_limits<float>::infinity()) == 0xff80);
  float tie;  // 1 + 2^-8: exactly between 0x3f80 and 0x3f81, goes to the even 0x3f80
  const uint32_t tie_bits = 0x3f808000u;
  std::memcpy(&tie, &tie_bits, 4);
  CHECK(bf(tie) == 0x3f80);
  CHECK(half_bits_to_float(0x3f80, HalfFormat::kBFloat16) == bits_of(1.0f));
}

TEST_CASE(encode_rows_gathers_scatters_and_checks_ranges) {
  const std::vector<float> src = {1, 2, 3, 4, 5, 6};  // 3 rows of 2
  const std::vector<int64_t> rows = {2, 0};
  const std::vector<int64_t> out_rows = {0, 2};
  std::vector<uint16_t> out(6, 0xffff);
  encode_half_rows(src.data(), 3, 2, span_of(rows), out.data(), 3, span_of(out_rows), HalfFormat::kBFloat16, 2);
  const auto bf = [](float f) { return float_to_half_bits(bits_of(f), HalfFormat::kBFloat16); };
  CHECK(out[0] == bf(5) && out[1] == bf(6) && out[4] == bf(1) && out[5] == bf(2));
  CHECK(out[2] == 0xffff && out[3] == 0xffff);  // row 1 untouched
  const std::vector<int64_t> bad = {3};
  CHECK_THROWS(OutOfRange, encode_half_rows(src.data(), 3, 2, span_of(bad), out.data(), 3, {nullptr, 0},
                                            HalfFormat::kFloat16, 1), "out of range");
  const std::vector<int64_t> bad_out = {0, 7};
  CHECK_THROWS(OutOfRange, encode_half_rows(src.data(), 3, 2, span_of(rows), out.data(), 3, span_of(bad_out),
                                            HalfFormat::kFloat16, 1), "out row 7");
  std::vector<float> back(6);
  std::vector<uint16_t> all(6);
  encode_half_rows(src.data(), 3, 2, {nullptr, 0}, all.data(), 3, {nullptr, 0}, HalfFormat::kFloat16, 1);
  decode_half(all.data(), 6, back.data(), HalfFormat::kFloat16, 1);
  CHECK(back == src);  // small integers are exact in float16
}
