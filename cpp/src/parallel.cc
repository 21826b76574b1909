#include "graphplat/parallel.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "graphplat/common.h"

namespace graphplat {

namespace {
std::atomic<int> g_default_threads{0};
}

int default_num_threads() {
  int n = g_default_threads.load();
  if (n <= 0) {
    n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    g_default_threads.store(n);
  }
  return n;
}

void set_default_num_threads(int n) {
  if (n < 1) throw InvalidArgument(cat("num_threads must be >= 1, got ", n));
  g_default_threads.store(n);
}

int resolve_threads(int n) {
  if (n < 0) throw InvalidArgument(cat("num_threads must be >= 0 (0 = default), got ", n));
  if (n > 1024) throw InvalidArgument(cat("num_threads must be <= 1024, got ", n));
  return n == 0 ? default_num_threads() : n;
}

int64_t exclusive_scan(const int64_t* counts, int64_t n, int64_t* offsets, int num_threads) {
  // Two-pass chunked scan; chunk boundaries do not affect the result.
  const int64_t kSerial = 1 << 16;
  if (n < kSerial || num_threads <= 1) {
    int64_t acc = 0;
    for (int64_t i = 0; i < n; ++i) {
      offsets[i] = acc;
      acc += counts[i];
    }
    offsets[n] = acc;
    return acc;
  }
  int t = num_threads;
  std::vector<int64_t> partial(t + 1, 0);
  int64_t chunk = (n + t - 1) / t;
#pragma omp parallel num_threads(t)
  {
    int id = omp_get_thread_num();
    int64_t lo = std::min(n, id * chunk), hi = std::min(n, lo + chunk);
    int64_t s = 0;
    for (int64_t i = lo; i < hi; ++i) s += counts[i];
    partial[id + 1] = s;
#pragma omp barrier
#pragma omp single
    for (int k = 0; k < t; ++k) partial[k + 1] += partial[k];
    int64_t acc = partial[id];
    for (int64_t i = lo; i < hi; ++i) {
      offsets[i] = acc;
      acc += counts[i];
    }
  }
  offsets[n] = partial[t];
  return partial[t];
}

void check_ids_in_range(Span<int64_t> ids, int64_t bound, const char* what, int num_threads) {
  int64_t first_bad = -1;
#pragma omp parallel for num_threads(num_threads) schedule(static) reduction(max : first_bad) if (ids.size > 100000)
  for (int64_t i = 0; i < ids.size; ++i) {
    int64_t v = ids[i];
    if (v < 0 || v >= bound) first_bad = std::max(first_bad, ids.size - i);
  }
  if (first_bad >= 0) {
    int64_t i = ids.size - first_bad;
    throw OutOfRange(cat(what, "[", i, "] = ", ids[i], " is out of range [0, ", bound, ")"));
  }
}

}  // namespace graphplat
