// Row gather out[i] = src[rows[i]] and scatter out[rows[i]] = src[i] for fixed-size rows,
// in parallel (feature fetch, and merging the answers of several partitions).
#pragma once
#include <algorithm>
#include <cstdint>
#include "graphplat/common.h"
#include "graphplat/parallel.h"

namespace graphplat {

// row_op(i) for i in [0, n) in parallel chunks of `grain`, where row_op reads the source row
// at src_of(i) (src_row_bytes bytes). Source rows are random reads from a table far larger
// than the cache: the lines of the row kLookahead places ahead are requested while this one
// is handled (up to 8 lines; wider rows stream once their first lines arrive). Measured:
// 56k rows of 400 B out of 1.25M, 2.4 -> 1.4 ms on one thread. Every row loop over
// gathered rows (copies, half-precision encoding) goes through here.
template <class SrcOf, class RowOp>
void for_rows_prefetched(int64_t n, int64_t src_row_bytes, int64_t grain, int num_threads, SrcOf src_of,
                         RowOp row_op) {
  constexpr int64_t kLookahead = 8;
  const int64_t lines = std::min<int64_t>(8, (src_row_bytes + 63) / 64);
  parallel_for(n, grain, num_threads, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      if (i + kLookahead < hi) {
        const char* ahead = reinterpret_cast<const char*>(src_of(i + kLookahead));
        for (int64_t l = 0; l < lines; ++l) __builtin_prefetch(ahead + l * 64);
      }
      row_op(i);
    }
  });
}

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
