// Row gather out[i] = src[rows[i]] and scatter out[rows[i]] = src[i] for fixed-size rows,
// in parallel (feature fetch, and merging the answers of several partitions).
#pragma once
#include <cstdint>
#include "graphplat/common.h"

namespace graphplat {

// Copies row rows[i] (row_bytes bytes each) of src (num_rows rows) to out + i * row_bytes.
// Throws IndexError-like OutOfRange naming the first row out of [0, num_rows).
void gather_rows(const char* src, int64_t num_rows, int64_t row_bytes, Span<int64_t> rows, char* out,
                 int num_threads);

// The inverse: copies row i of src (n = rows.size rows) to out row rows[i] (out has
// num_out_rows rows). rows must be distinct for a deterministic result; OutOfRange names
// the first row out of [0, num_out_rows).
void scatter_rows(const char* src, int64_t row_bytes, Span<int64_t> rows, char* out,
                  int64_t num_out_rows, int num_threads);

// out[out_rows[i]] = src[rows[i]] (one copy instead of a gather then a scatter); both
// index arrays are range-checked before anything is written.
void gather_scatter_rows(const char* src, int64_t num_rows, int64_t row_bytes, Span<int64_t> rows,
                         char* out, int64_t num_out_rows, Span<int64_t> out_rows, int num_threads);

}  // namespace graphplat
