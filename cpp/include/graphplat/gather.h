// Row gather: out[i] = src[rows[i]] for fixed-size rows, in parallel (feature fetch).
#pragma once
#include <cstdint>
#include "graphplat/common.h"

namespace graphplat {

// Copies row rows[i] (row_bytes bytes each) of src (num_rows rows) to out + i * row_bytes.
// Throws IndexError-like OutOfRange naming the first row out of [0, num_rows).
void gather_rows(const char* src, int64_t num_rows, int64_t row_bytes, Span<int64_t> rows, char* out,
                 int num_threads);

}  // namespace graphplat
