// Parallel loops on a small persistent thread pool, built so that a busy machine cannot
// stall them: the calling thread claims work like any worker, and a loop only waits for
// pieces another thread has actually started. With OpenMP's fork/join, every barrier
// waited for every team thread, so when the trainer (or anything else) held a core, a
// sampling batch paid a scheduler time slice per barrier: 20x slower, measured.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

namespace graphplat {

int default_num_threads();
void set_default_num_threads(int n);
// 0 -> default; otherwise n (1..1024), else InvalidArgument.
int resolve_threads(int n);

// Runs task(i) for every i in [0, num_tasks) on up to num_threads threads, the caller
// included. Returns when all tasks are done; rethrows the first exception a task threw.
void run_tasks(int64_t num_tasks, int num_threads, const std::function<void(int64_t)>& task);

// body(begin, end) over [0, n) in chunks of at least `grain` items, claimed dynamically.
template <class Body>
void parallel_for(int64_t n, int64_t grain, int num_threads, Body&& body) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t max_chunks = std::max<int64_t>(1, static_cast<int64_t>(num_threads) * 8);
  const int64_t chunks = std::min<int64_t>((n + grain - 1) / grain, max_chunks);
  if (chunks <= 1 || num_threads <= 1) {
    body(int64_t(0), n);
    return;
  }
  const int64_t step = (n + chunks - 1) / chunks;
  run_tasks(chunks, num_threads, [&](int64_t c) {
    const int64_t lo = c * step, hi = std::min(n, lo + step);
    if (lo < hi) body(lo, hi);
  });
}

// Smallest i in [0, n) with pred(i), or n when there is none (independent of scheduling).
template <class Pred>
int64_t parallel_find_first(int64_t n, int num_threads, Pred&& pred) {
  std::atomic<int64_t> first{n};
  parallel_for(n, 1 << 15, num_threads, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi && i < first.load(std::memory_order_relaxed); ++i)
      if (pred(i)) {
        int64_t cur = first.load();
        while (i < cur && !first.compare_exchange_weak(cur, i)) {
        }
        return;
      }
  });
  return first.load();
}

// Exclusive prefix sum of counts into offsets (size n+1); returns the total.
int64_t exclusive_scan(const int64_t* counts, int64_t n, int64_t* offsets, int num_threads);

// Fixed chunking of [0, n) into k nearly equal ranges (results that depend on chunk
// boundaries, such as per-chunk counts, use this so they do not depend on scheduling).
inline int64_t chunk_begin(int64_t n, int64_t k, int64_t c) { return n * c / k; }

}  // namespace graphplat
