#include "graphplat/gather.h"

#include <cstring>

#include "graphplat/parallel.h"

namespace graphplat {

namespace {

// out row dst_of(i) = source row src_of(i) for i in [0, n), in parallel, prefetching ahead.
template <class SrcOf, class DstOf>
void copy_rows(int64_t n, int64_t row_bytes, int64_t grain, int num_threads, SrcOf src_of, DstOf dst_of) {
  for_rows_prefetched(n, row_bytes, grain, num_threads, src_of, [&](int64_t i) {
    std::memcpy(dst_of(i), src_of(i), static_cast<size_t>(row_bytes));
  });
}

}  // namespace

void gather_rows(const char* src, int64_t num_rows, int64_t row_bytes, Span<int64_t> rows, char* out,
                 int num_threads) {
  const int64_t n = rows.size;
  const int64_t bad = parallel_find_first(n, num_threads, [&](int64_t i) {
    return rows.data[i] < 0 || rows.data[i] >= num_rows;
  });
  if (bad < n)
    throw OutOfRange(cat("row ", rows.data[bad], " (at position ", bad, ") is out of range [0, ", num_rows, ")"));
  // ~64 KiB of output per chunk keeps scheduling overhead small for narrow rows.
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(row_bytes, 1));
  if (row_bytes == 8) {  // ids and other 1-D 64-bit arrays: a fixed-size copy the compiler inlines
    parallel_for(n, grain, num_threads, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) std::memcpy(out + i * 8, src + rows.data[i] * 8, 8);
    });
    return;
  }
  copy_rows(n, row_bytes, grain, num_threads, [&](int64_t i) { return src + rows.data[i] * row_bytes; },
            [&](int64_t i) { return out + i * row_bytes; });
}

void scatter_rows(const char* src, int64_t row_bytes, Span<int64_t> rows, char* out,
                  int64_t num_out_rows, int num_threads) {
  const int64_t n = rows.size;
  const int64_t bad = parallel_find_first(n, num_threads, [&](int64_t i) {
    return rows.data[i] < 0 || rows.data[i] >= num_out_rows;
  });
  if (bad < n)
    throw OutOfRange(cat("row ", rows.data[bad], " (at position ", bad, ") is out of range [0, ",
                         num_out_rows, ")"));
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(row_bytes, 1));
  if (row_bytes == 8) {  // see gather_rows
    parallel_for(n, grain, num_threads, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) std::memcpy(out + rows.data[i] * 8, src + i * 8, 8);
    });
    return;
  }
  parallel_for(n, grain, num_threads, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i)
      std::memcpy(out + rows.data[i] * row_bytes, src + i * row_bytes, static_cast<size_t>(row_bytes));
  });
}

void gather_scatter_rows(const char* src, int64_t num_rows, int64_t row_bytes, Span<int64_t> rows,
                         char* out, int64_t num_out_rows, Span<int64_t> out_rows, int num_threads) {
  const int64_t n = rows.size;
  if (out_rows.size != n)
    throw InvalidArgument(cat("out_rows has ", out_rows.size, " entries but rows has ", n));
  const int64_t bad = parallel_find_first(n, num_threads, [&](int64_t i) {
    return rows.data[i] < 0 || rows.data[i] >= num_rows;
  });
  if (bad < n)
    throw OutOfRange(cat("row ", rows.data[bad], " (at position ", bad, ") is out of range [0, ", num_rows, ")"));
  const int64_t bad_out = parallel_find_first(n, num_threads, [&](int64_t i) {
    return out_rows.data[i] < 0 || out_rows.data[i] >= num_out_rows;
  });
  if (bad_out < n)
    throw OutOfRange(cat("out row ", out_rows.data[bad_out], " (at position ", bad_out,
                         ") is out of range [0, ", num_out_rows, ")"));
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(row_bytes, 1));
  copy_rows(n, row_bytes, grain, num_threads, [&](int64_t i) { return src + rows.data[i] * row_bytes; },
            [&](int64_t i) { return out + out_rows.data[i] * row_bytes; });
}

}  // namespace graphplat
