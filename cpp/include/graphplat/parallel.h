// Thin helpers over OpenMP: thread-count resolution and deterministic chunked scans.
#pragma once

#include <cstdint>
#include <vector>

namespace graphplat {

int default_num_threads();
void set_default_num_threads(int n);
// 0 -> default; otherwise n (validated >= 0 by callers).
int resolve_threads(int n);

// Exclusive prefix sum of counts into offsets (size n+1); returns the total.
int64_t exclusive_scan(const int64_t* counts, int64_t n, int64_t* offsets, int num_threads);

}  // namespace graphplat
